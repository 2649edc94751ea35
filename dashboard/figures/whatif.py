"""Figures of the what-if tab: P(convert) against the threshold, contributions, sensitivity.

The waterfall is in one unit: P(convert) on the axis, each input's bar in
percentage points. Each figure is written as plain dicts and returned as the
JSON-ready figure Dash sends (``style.figure_dict``: no figure object to
validate, no ``update_layout``/``add_vline`` round trips): they are redrawn on
every slider move and must stay within a few milliseconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from dashboard.figures.style import (
    ACCENT,
    MUTED,
    NEGATIVE,
    POSITIVE,
    PRIMARY,
    SECONDARY,
    TEMPLATE_NAME,
    Figure,
    figure_dict,
)
from ml.models.explain import Contributions, probability
from ml.serving.whatif import Control, SensitivityLine, format_value

THRESHOLD_LINE = {"color": ACCENT, "width": 2, "dash": "dash"}


def probability_figure(p: float, threshold: float) -> Figure:
    """A bullet gauge of P(convert) on 0-100% with the model's threshold marked."""
    colour = POSITIVE if p >= threshold else PRIMARY
    gauge = {
        "shape": "bullet",
        "axis": {"range": [0, 1], "tickformat": ".0%", "dtick": 0.25},
        "bar": {"color": colour, "thickness": 0.6},
        "bgcolor": "#eef1f4",
        "borderwidth": 0,
        "threshold": {"line": {"color": ACCENT, "width": 3}, "thickness": 0.9, "value": threshold},
    }
    indicator = {"type": "indicator", "mode": "gauge", "value": p, "gauge": gauge}
    indicator["domain"] = {"x": [0.02, 0.98], "y": [0.35, 1]}
    layout = {"template": TEMPLATE_NAME, "height": 70, "margin": {"l": 8, "r": 8, "t": 4, "b": 4}}
    return figure_dict([indicator], layout)


UNCHANGED_PP = 0.0005  # steps smaller than 0.05 percentage points are folded into one "unchanged" row


@dataclass(frozen=True)
class WaterfallSteps:
    """A session's P built from the base P in percentage-point steps, one per input (largest first)."""

    names: tuple[str, ...]  # feature names, in drawing order
    steps: tuple[float, ...]  # change of P (0..1) each adds, in that order
    unchanged: tuple[str, ...]  # inputs whose step is under 0.05 pp, folded into one row
    unchanged_step: float  # their (tiny) sum, so the steps still add up exactly
    base_p: float
    p: float


def percentage_point_steps(contributions: Contributions) -> WaterfallSteps:
    """Log-odds contributions as P steps: add them largest first, and take the change of P at each step.

    The steps add up exactly to P(session) - P(base), so the axis is P
    throughout. The split of a shared change between inputs follows the
    order (as any additive split on the P scale must); the order is by size.
    """
    order = list(np.argsort(-np.abs(contributions.values), kind="stable"))
    running = contributions.base + np.concatenate([[0.0], np.cumsum(contributions.values[order])])
    p_running = probability(running)
    steps = np.diff(p_running)
    names, kept, unchanged = [], [], []
    for position, step in zip(order, steps, strict=True):
        name = contributions.features[position]
        if abs(step) < UNCHANGED_PP:
            unchanged.append(name)
        else:
            names.append(name)
            kept.append(float(step))
    folded = float(p_running[-1] - p_running[0] - sum(kept))  # the folded rows' tiny sum: the total stays exact
    return WaterfallSteps(
        tuple(names), tuple(kept), tuple(unchanged), folded, float(p_running[0]), float(p_running[-1])
    )


def _pp(step: float) -> str:
    return f"{100 * step:+.1f} pp"


def waterfall_figure(
    contributions: Contributions,
    labels: Mapping[str, str],
    threshold: float,
    top: int | None = None,
) -> Figure:
    """Horizontal waterfall on a P(convert) axis, in percentage points from the base P to this session's P.

    Inputs are added largest first; inputs that change nothing are one
    "unchanged" row; with ``top``, the smaller rest is summed. The dashed line
    is the threshold: a total right of it predicts conversion.
    """
    w = percentage_point_steps(contributions)
    names, steps = list(w.names), list(w.steps)
    y = [labels.get(n, n) for n in names]
    if top is not None and len(steps) > top:
        rest = sum(steps[top:])
        y, steps = [*y[:top], f"{len(names) - top} other inputs"], [*steps[:top], rest]
    measure = ["relative"] * len(steps)
    text = [_pp(s) for s in steps]
    if w.unchanged:
        n = len(w.unchanged)
        y.append(f"{n} input{'s' if n != 1 else ''} unchanged (under 0.05 pp each)")
        steps.append(w.unchanged_step)
        measure.append("relative")
        text.append("±0 pp")
    y.append(f"This session (P {w.p:.1%})")
    measure.append("total")
    steps.append(0.0)
    text.append(f"{_pp(w.p - w.base_p)} in all")
    running = w.base_p + np.concatenate([[0.0], np.cumsum(steps)])
    low, high = min(running.min(), threshold), max(running.max(), threshold)
    pad = max((high - low) * 0.25, 0.01)  # room for the step labels outside the bars
    trace = {
        "type": "waterfall",
        "orientation": "h",
        "base": w.base_p,
        "measure": measure,
        "y": y,
        "x": steps,
        "text": text,
        "textposition": "outside",
        "cliponaxis": False,
        "connector": {"line": {"color": "#ced4da", "width": 1}},
        "increasing": {"marker": {"color": POSITIVE}},
        "decreasing": {"marker": {"color": NEGATIVE}},
        "totals": {"marker": {"color": SECONDARY}},
        "hovertemplate": "%{y}<br>%{text}<extra></extra>",
    }
    lines = [
        {"x": w.base_p, "text": f"{contributions.base_label.lower()} {w.base_p:.1%}", "color": MUTED, "dash": "dot"},
        {"x": threshold, "text": f"threshold {threshold:.1%}", "color": ACCENT, "dash": "dash"},
    ]
    layout = {
        "template": TEMPLATE_NAME,
        "showlegend": False,
        "margin": {"l": 10, "r": 60, "t": 40, "b": 40},
        "xaxis": {
            "title": {"text": "P(convert); bars are percentage points (pp) each input adds"},
            "range": [max(low - pad, 0.0), min(high + pad, 1.0)],
            "tickformat": ".0%" if high - low > 0.05 else ".1%",
            "zeroline": False,
        },
        "yaxis": {"autorange": "reversed", "automargin": True},
        "shapes": [
            {
                "type": "line",
                "x0": line["x"],
                "x1": line["x"],
                "yref": "paper",
                "y0": 0,
                "y1": 1,
                "line": {"color": line["color"], "width": 2, "dash": line["dash"]},
            }
            for line in lines
        ],
        "annotations": [
            {
                "x": line["x"],
                "y": 1,
                "yref": "paper",
                "yanchor": "bottom",
                "yshift": 14 * row,  # stacked, so the two labels never overlap
                "xanchor": "right" if line["x"] > (low + high) / 2 else "left",
                "text": line["text"],
                "showarrow": False,
                "font": {"color": line["color"], "size": 11},
            }
            for row, line in enumerate(lines)
        ],
    }
    return figure_dict([trace], layout)


def _threshold_layout(threshold: float) -> tuple[list[dict], list[dict]]:
    shape = {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": threshold, "y1": threshold}
    note = {
        "xref": "paper",
        "x": 1,
        "xanchor": "right",
        "y": threshold,
        "yanchor": "bottom",
        "text": f"threshold {threshold:.1%}",
        "showarrow": False,
        "font": {"color": ACCENT, "size": 11},
    }
    return [{**shape, "line": THRESHOLD_LINE}], [note]


def sensitivity_figure(line: SensitivityLine, threshold: float) -> Figure:
    """P(convert) across one feature's values, the others held; the current value highlighted."""
    control = line.control
    shapes, notes = _threshold_layout(threshold)
    hover = "%{x}<br>P(convert) %{y:.1%}<extra></extra>"
    if control.is_numeric:
        xs = [float(v) for v in line.x]
        current = {"x": [float(line.current)], "y": [line.current_p]}
        traces = [
            {
                "type": "scatter",
                "x": xs,
                "y": line.p,
                "mode": "lines",
                "line": {"color": PRIMARY, "width": 2},
                "hovertemplate": hover,
            },
            {
                "type": "scatter",
                **current,
                "mode": "markers",
                "marker": {"color": SECONDARY, "size": 11, "line": {"color": "white", "width": 2}},
                "hovertemplate": "this session<br>" + hover,
            },
        ]
        shapes.append(
            {
                "type": "line",
                "x0": float(line.current),
                "x1": float(line.current),
                "yref": "paper",
                "y0": 0,
                "y1": 1,
                "line": {"color": MUTED, "width": 1, "dash": "dot"},
            }
        )
        xaxis = _numeric_axis(control)
    else:
        names = [format_value(control, v) for v in line.x]
        colours = [SECONDARY if v == line.current else PRIMARY for v in line.x]
        traces = [{"type": "bar", "x": names, "y": line.p, "marker": {"color": colours}, "hovertemplate": hover}]
        xaxis = {"title": {"text": control.label}, "type": "category", "tickangle": -30 if len(names) > 6 else 0}
    low, high = float(np.min(line.p)), float(np.max(line.p))
    y_low, y_high = min(low, threshold), max(high, threshold)
    pad = max((y_high - y_low) * 0.2, 0.02)
    y_range = [max(y_low - pad, 0.0) if control.is_numeric else 0.0, y_high + pad]  # bars start at zero
    layout = {
        "template": TEMPLATE_NAME,
        "showlegend": False,
        "margin": {"l": 50, "r": 20, "t": 20, "b": 50},
        "xaxis": xaxis,
        "yaxis": {"title": {"text": "P(convert)"}, "tickformat": ".0%", "range": y_range},
        "shapes": shapes,
        "annotations": notes,
        "bargap": 0.3,
    }
    return figure_dict(traces, layout)


def _numeric_axis(control: Control) -> dict:
    axis: dict = {"title": {"text": control.label}}
    if control.unit == "share":
        axis["tickformat"] = ".0%"
    elif control.unit == "usd":
        axis["tickprefix"] = "$"
    if control.positions:
        axis.update(tickmode="array", tickvals=list(control.positions))
        axis["ticktext"] = [format_value(control, v) for v in control.positions]
    return axis
