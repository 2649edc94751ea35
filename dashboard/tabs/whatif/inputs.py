"""The what-if inputs: one per model feature, generated from the run's metadata and codebooks.

A code is a dropdown of its decoded names. A number is a slider bounded and
stepped as in training; a fine slider (many steps) also has a number box that
applies on Enter and refuses text that is not a number with a message beside
it (the slider's own box silently turned text into its minimum).
"""

from __future__ import annotations

import json
import math

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard import ids
from ml.serving.whatif import Control, format_value


def dom_id(component_id: dict) -> str:
    """The id a pattern-matching component gets in the page (Dash's JSON of it, keys sorted), for ``html_for``."""
    return json.dumps(component_id, sort_keys=True, separators=(",", ":"))


def _box_text(control: Control, value: object) -> str:
    number = float(value)
    return f"{round(number):d}" if control.integer else f"{number:.2f}".rstrip("0").rstrip(".")


def feature_input(control: Control, value: object) -> html.Div:
    """A dropdown of decoded names for a code; a slider (and for a fine one, a number box) for a number."""
    label = dbc.Label(control.label, className="whatif-label small mb-0", id=ids.whatif_label(control.name))
    labelled_by = {"aria-labelledby": ids.whatif_label(control.name)}
    if not control.is_numeric:
        component = dcc.Dropdown(
            id=ids.whatif_feature(control.name),
            options=[{"label": name, "value": code} for code, name in control.options],
            value=value,
            clearable=False,
            searchable=len(control.options) > 10,
        )
        return html.Div([label, html.Div(component, **labelled_by, role="group")], className="whatif-control")
    slider = dcc.Slider(
        id=ids.whatif_feature(control.name),
        min=control.minimum,
        max=control.maximum,
        step=control.step,
        value=value if control.positions else round(float(value), 2),
        marks={p: format_value(control, p) for p in control.positions or (control.minimum, control.maximum)},
        allow_direct_input=False,
        className="whatif-slider flex-grow-1",
    )
    if control.positions:
        return html.Div([label, html.Div(slider, **labelled_by, role="group")], className="whatif-control")
    box = dbc.Input(
        id=ids.whatif_number(control.name),
        type="text",
        inputMode="decimal",
        value=_box_text(control, value),
        size="sm",
        className="whatif-number",
        style={"width": "6.5rem"},
        debounce=True,
    )
    box_label = dbc.Label(
        f"{control.label}: type a number and press Enter",
        html_for=dom_id(ids.whatif_number(control.name)),
        className="visually-hidden",
    )
    note = html.Div(id=ids.whatif_number_note(control.name), className="small text-danger", role="status")
    row = html.Div(
        [html.Div(slider, **labelled_by, role="group", className="flex-grow-1"), html.Div([box_label, box, note])],
        className="d-flex align-items-start gap-2",
    )
    return html.Div([label, row], className="whatif-control")


def parse_number(
    text: object, minimum: float, maximum: float, integer: bool = False
) -> tuple[float | None, str | None]:
    """A typed number for a slider: (value inside [minimum, maximum], note) or (None, why it was refused)."""
    raw = str(text if text is not None else "").strip().replace(",", "").lstrip("$").rstrip("%").strip()
    try:
        number = float(raw)
    except ValueError:
        number = math.nan
    if not raw or not math.isfinite(number):
        shown = str(text if text is not None else "").strip() or "an empty box"
        return None, f"'{shown}' is not a number: type one between {minimum:g} and {maximum:g}, then press Enter."
    value = min(max(number, minimum), maximum)
    value = float(round(value)) if integer else value
    note = None
    if value != number:
        note = f"{number:g} is outside {minimum:g}–{maximum:g}, the range seen in training: set to {value:g}."
    return value, note


def number_box_view(
    triggered_by_box: bool, text: object, slider_value: object, minimum: float, maximum: float, step: float | None
) -> tuple[object, str, str | None, bool]:
    """The number box callback's body: (slider value or None to keep, box text, note, box invalid)."""
    integer = step is not None and float(step).is_integer() and float(minimum).is_integer()
    if not triggered_by_box:
        number = float(slider_value) if slider_value is not None else minimum
        shown = f"{round(number):d}" if integer else f"{number:.2f}".rstrip("0").rstrip(".")
        return None, shown, None, False
    value, note = parse_number(text, minimum, maximum, integer)
    if value is None:
        return None, str(text or ""), note, True
    shown = f"{round(value):d}" if integer else f"{value:.2f}".rstrip("0").rstrip(".")
    return value, shown, note, bool(note)
