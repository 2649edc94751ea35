"""The what-if tab in a real browser, on an app whose models were trained beforehand by the command line."""

from __future__ import annotations

import json

import pytest

from dashboard import ids
from tests.e2e.conftest import (
    save_screenshot,
    serve,
    train_models,
    wait_for_dash,
    watched_page,
)

TRAIN_MODELS = "logreg,xgboost,regression:linear,kmeans"


@pytest.fixture(scope="module")
def trained_server(tmp_path_factory, chromium_path):
    """The app with a models folder trained by ``python -m ml train --quick`` before it starts."""
    tmp = tmp_path_factory.mktemp("whatif-app")
    train_models(tmp / "models", TRAIN_MODELS)
    yield from serve(tmp)


@pytest.fixture
def page(browser, trained_server):
    yield from watched_page(browser, trained_server)


def feature_selector(name: str) -> str:
    """CSS selector of a generated input (Dash writes a dict ID as JSON with sorted keys)."""
    component_id = json.dumps(ids.whatif_feature(name), sort_keys=True, separators=(",", ":"))
    return f"[id='{component_id}']"


def probability_text(page) -> str:
    return page.locator(f"#{ids.WHATIF_PROBABILITY_TEXT}").inner_text().strip()


def open_whatif(page, url: str) -> None:
    page.goto(url + "/?tab=whatif")
    page.wait_for_selector(f"{feature_selector('first_price')} [role=slider]", timeout=60_000)
    page.wait_for_function(
        f"() => document.querySelector('#{ids.WHATIF_PROBABILITY_TEXT}').innerText.includes('%')", timeout=60_000
    )
    wait_for_dash(page)


def test_moving_a_slider_changes_p_convert(page, trained_server):
    open_whatif(page, trained_server.url)
    assert "ROC-AUC" in page.locator(f"#{ids.WHATIF_MODEL_INFO}").inner_text()
    before = probability_text(page)
    thumb = page.locator(f"{feature_selector('w_price_mean')} [role=slider]")
    start = float(thumb.get_attribute("aria-valuenow"))
    thumb.focus()
    for _ in range(12):
        page.keyboard.press("ArrowRight")
    page.wait_for_function(
        f"before => document.querySelector('#{ids.WHATIF_PROBABILITY_TEXT}').innerText.trim() !== before",
        arg=before,
        timeout=30_000,
    )
    wait_for_dash(page)
    assert float(thumb.get_attribute("aria-valuenow")) > start
    after = probability_text(page)
    assert after != before and 0 <= float(after.rstrip("%")) <= 100
    assert page.locator(f"#{ids.WHATIF_WATERFALL_GRAPH} .main-svg").count() > 0


def test_a_segment_picked_on_the_segments_tab_is_where_the_whatif_starts(page, trained_server):
    page.goto(trained_server.url + "/?tab=segments")
    button = page.locator(f"[id*='{ids.SEGMENTS_OPEN_WHATIF}']").last
    button.wait_for(timeout=60_000)
    wait_for_dash(page)
    button.click()
    page.wait_for_function("() => window.location.search.includes('tab=whatif')", timeout=30_000)
    page.wait_for_selector(f"#{ids.WHATIF_START_NOTE} .alert", timeout=60_000)
    wait_for_dash(page)
    segment = page.evaluate(f"JSON.parse(window.sessionStorage.getItem('{ids.APP_SEGMENT_STORE}'))")
    note = page.locator(f"#{ids.WHATIF_START_NOTE}").inner_text()
    assert f"segment {segment['segment']}" in note and segment["persona"] in note
    assert page.locator(f"#{ids.WHATIF_START_RADIO} input[value=segment]").is_checked()
    typical = segment["typical"]
    for name in ("first_page", "w_n_colours", "w_max_page", "first_price", "w_sale_share"):
        thumb = page.locator(f"{feature_selector(name)} [role=slider]")
        low, high = float(thumb.get_attribute("aria-valuemin")), float(thumb.get_attribute("aria-valuemax"))
        expected = min(max(float(typical[name]), low), high)
        assert float(thumb.get_attribute("aria-valuenow")) == pytest.approx(expected, abs=0.005), name  # cents
    category = {1: "trousers", 2: "skirts", 3: "blouses", 4: "sale"}[int(typical["first_category"])]
    assert category in page.locator(feature_selector("first_category")).inner_text()
    assert "%" in probability_text(page)
    save_screenshot(page, "whatif")


def number_box(name: str) -> str:
    component_id = json.dumps(ids.whatif_number(name), sort_keys=True, separators=(",", ":"))
    return f"[id='{component_id}']"


def note_of(name: str) -> str:
    component_id = json.dumps(ids.whatif_number_note(name), sort_keys=True, separators=(",", ":"))
    return f"[id='{component_id}']"


def test_the_number_box_applies_on_enter_and_refuses_text(page, trained_server):
    open_whatif(page, trained_server.url)
    thumb = page.locator(f"{feature_selector('w_price_mean')} [role=slider]")
    box = page.locator(number_box("w_price_mean"))
    low, high = float(thumb.get_attribute("aria-valuemin")), float(thumb.get_attribute("aria-valuemax"))
    target = round(low + (high - low) * 0.75, 2)
    box.fill(f"{target}")
    box.press("Enter")
    page.wait_for_function(
        "([sel, v]) => Math.abs(parseFloat(document.querySelector(sel).getAttribute('aria-valuenow')) - v) < 0.01",
        arg=[f"{feature_selector('w_price_mean')} [role=slider]", target],
        timeout=30_000,
    )
    wait_for_dash(page)
    box.fill("lots")
    box.press("Enter")
    page.wait_for_function(
        "sel => document.querySelector(sel).innerText.includes('not a number')",
        arg=note_of("w_price_mean"),
        timeout=30_000,
    )
    assert float(thumb.get_attribute("aria-valuenow")) == pytest.approx(target, abs=0.01)  # unchanged by text
    assert "'lots' is not a number" in page.locator(note_of("w_price_mean")).inner_text()


def test_the_waterfall_is_in_percentage_points_and_the_capacity_rank_is_shown(page, trained_server):
    open_whatif(page, trained_server.url)
    texts = page.evaluate(f"document.querySelector('#{ids.WHATIF_WATERFALL_GRAPH} .js-plotly-plot').data[0].text")
    assert texts and all(t.endswith("pp") or t.endswith("pp in all") for t in texts), texts
    capacity = page.locator(f"#{ids.WHATIF_CAPACITY_TEXT}").inner_text()
    assert "of the" in capacity and "held-out sessions" in capacity and "Targeting the top 10%" in capacity
    basket = page.locator(f"#{ids.WHATIF_BASKET_TEXT}").inner_text()
    assert "–" in basket and "." not in basket  # a range of whole dollars, not to the cent
