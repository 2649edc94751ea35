"""Contrast of the theme colours the KPI tab and the shell tabs use: WCAG 2.1 AA, computed, not eyeballed.

The colours are read from ``assets/30-kpi.css`` (its custom properties) and
from the figure module, so changing either without keeping 4.5:1 fails here.
"""

from __future__ import annotations

import re

import pytest

from dashboard.figures.kpi import CHOSEN, FUNNEL_COLOURS, FUNNEL_TEXT, NOT_CHOSEN, OKABE_ITO
from ml.config import PROJECT_ROOT

CSS = PROJECT_ROOT / "assets" / "30-kpi.css"
NAMED = {"white": "#ffffff", "black": "#000000"}


def _block(text: str, selector: str) -> str:
    start = text.index(selector + " {")
    return text[start : text.index("}", start)]


def theme(dark: bool = False) -> dict[str, str]:
    """The colour custom properties of the light theme (``:root``), or with the dark theme's overrides."""
    text = CSS.read_text(encoding="utf-8")
    colours = dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-fA-F]{6})", _block(text, ":root")))
    if dark:
        colours |= dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-fA-F]{6})", _block(text, '[data-bs-theme="dark"]')))
    return colours


def luminance(colour: str) -> float:
    """Relative luminance (WCAG 2.1)."""
    colour = NAMED.get(colour, colour).lstrip("#")
    channels = [int(colour[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_contrast_formula_matches_known_values():
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)  # the classic just-failing grey
    assert contrast("#2fa4e7", "#ffffff") == pytest.approx(2.77, abs=0.01)  # the old inactive tab colour


TEXT_PAIRS = [
    ("kpi-good", "kpi-card-bg"),  # a change for the better
    ("kpi-bad", "kpi-card-bg"),  # a change for the worse
    ("kpi-neutral", "kpi-card-bg"),  # unchanged / not compared
    ("kpi-title", "kpi-card-bg"),  # card titles
    ("kpi-note", "kpi-card-bg"),
    ("kpi-note", "app-body-bg"),  # notes under the tab, on the page background
    ("kpi-neutral", "app-body-bg"),  # the alerts line
    ("app-tab-inactive", "app-body-bg"),  # inactive shell tabs
    ("badge-proxy-text", "badge-proxy-bg"),  # the "Conversion (proxy)" badge
    ("badge-label-text", "badge-label-bg"),  # the "Conversion (purchases)" badge
]


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
@pytest.mark.parametrize(("text", "background"), TEXT_PAIRS)
def test_kpi_and_tab_text_colours_reach_4_5_to_1(text, background, dark):
    colours = theme(dark)
    assert contrast(colours[text], colours[background]) >= 4.5, (text, colours[text], background)


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_the_focus_ring_reaches_3_to_1_on_every_background(dark):
    colours = theme(dark)
    for background in ("kpi-card-bg", "app-body-bg"):
        assert contrast(colours["app-focus"], colours[background]) >= 3.0


def test_the_dark_theme_overrides_every_colour_whose_background_changes():
    light, dark = theme(), theme(dark=True)
    assert dark["kpi-card-bg"] != light["kpi-card-bg"] and dark["app-body-bg"] != light["app-body-bg"]
    for role in ("kpi-good", "kpi-bad", "kpi-neutral", "kpi-title", "kpi-note", "app-tab-inactive"):
        assert dark[role] != light[role], role


def test_good_and_bad_are_okabe_ito_hues():
    colours = theme()
    assert colours["kpi-good"].lower() == OKABE_ITO["blue"].lower()
    assert colours["badge-proxy-bg"].lower() == OKABE_ITO["orange"].lower()
    # The bad colour is Okabe-Ito vermillion darkened for text: same hue order (red > green > blue).
    r, g, b = (int(colours["kpi-bad"][i : i + 2], 16) for i in (1, 3, 5))
    assert r > g > b


def test_funnel_labels_and_breakdown_bars_are_readable():
    for fill, text in zip(FUNNEL_COLOURS, FUNNEL_TEXT, strict=True):
        assert contrast(fill, text) >= 4.5, (fill, text)
    assert contrast(CHOSEN, "#ffffff") >= 3.0  # chosen bars stand out from the page (non-text: 3:1)
    assert contrast(CHOSEN, NOT_CHOSEN) >= 3.0  # and from the greyed-out bars


def test_figures_good_and_bad_colours_are_okabe_ito_not_red_and_green():
    """The what-if waterfall, the gauge and the leaderboard's signed bars use the colour-blind-safe pair."""
    from dashboard.figures import style

    assert style.POSITIVE.lower() == OKABE_ITO["bluish_green"].lower()
    assert style.NEGATIVE.lower() == OKABE_ITO["vermillion"].lower()
