"""Figures of the what-if tab: P(convert) against the threshold, contributions, sensitivity.

Each figure is built in one ``go.Figure(data, layout)`` call (no
``update_layout``/``add_vline`` round trips): they are redrawn on every slider
move and must stay within a few milliseconds.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go

from dashboard.figures.style import ACCENT, MUTED, NEGATIVE, POSITIVE, PRIMARY, SECONDARY, TEMPLATE_NAME
from ml.models.explain import Contributions, margin, probability
from ml.serving.whatif import Control, SensitivityLine, format_value

THRESHOLD_LINE = {"color": ACCENT, "width": 2, "dash": "dash"}


def probability_figure(p: float, threshold: float) -> go.Figure:
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
    indicator = go.Indicator(mode="gauge", value=p, gauge=gauge, domain={"x": [0.02, 0.98], "y": [0.35, 1]})
    layout = {"template": TEMPLATE_NAME, "height": 70, "margin": {"l": 8, "r": 8, "t": 4, "b": 4}}
    return go.Figure([indicator], layout)


def _waterfall_order(contributions: Contributions, top: int | None) -> tuple[list[int], float]:
    """Feature positions by size of contribution; the rest summed when ``top`` is set."""
    order = list(np.argsort(-np.abs(contributions.values), kind="stable"))
    if top is None or len(order) <= top:
        return order, 0.0
    return order[:top], float(contributions.values[order[top:]].sum())


def probability_ticks(low: float, high: float, count: int = 6) -> tuple[list[float], list[str]]:
    """Tick positions on a log-odds axis at round probabilities, labelled as percentages."""
    p_low, p_high = float(probability(low)), float(probability(high))
    step = next((s for s in (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1) if (p_high - p_low) / s <= count), 0.2)
    ticks = np.arange(np.ceil(p_low / step) * step, p_high + 1e-12, step)
    ticks = ticks[(ticks > 0) & (ticks < 1)]
    decimals = 1 if step < 0.01 else 0
    return [float(margin(t)) for t in ticks], [f"{t:.{decimals}%}" for t in ticks]


def waterfall_figure(
    contributions: Contributions,
    labels: Mapping[str, str],
    threshold: float,
    top: int | None = None,
) -> go.Figure:
    """Horizontal waterfall in log-odds from the base value: each feature (largest first), then this session.

    Bars start at the base (the typical session or the model's average), so
    the axis spans only the path of the running total and small steps stay
    readable. Ticks are labelled with the probability at that log-odds. The
    dashed line is the threshold: a total right of it predicts conversion.
    """
    order, rest = _waterfall_order(contributions, top)
    steps = [float(contributions.values[i]) for i in order]
    y = [labels.get(contributions.features[i], contributions.features[i]) for i in order]
    if top is not None and len(contributions.features) > top:
        y.append(f"{len(contributions.features) - top} other features")
        steps.append(rest)
    base, total = contributions.base, contributions.margin
    y.append(f"This session (P {probability(total):.1%})")
    running = base + np.concatenate([[0.0], np.cumsum(steps)])
    cut = float(margin(threshold))
    low, high = min(running.min(), cut), max(running.max(), cut)
    pad = max((high - low) * 0.2, 0.02)  # room for the step labels outside the bars
    tickvals, ticktext = probability_ticks(low - pad, high + pad)
    trace = go.Waterfall(
        orientation="h",
        base=base,
        measure=[*(["relative"] * len(steps)), "total"],
        y=y,
        x=[*steps, 0.0],
        text=[*(f"{s:+.3f}" if abs(s) >= 5e-4 else "" for s in steps), f"{total - base:+.3f}"],
        textposition="outside",
        cliponaxis=False,
        connector={"line": {"color": "#ced4da", "width": 1}},
        increasing={"marker": {"color": POSITIVE}},
        decreasing={"marker": {"color": NEGATIVE}},
        totals={"marker": {"color": SECONDARY}},
        hovertemplate="%{y}<br>%{x:+.3f} log-odds<extra></extra>",
    )
    lines = [
        {
            "x": base,
            "text": f"{contributions.base_label.lower()} {probability(base):.1%}",
            "color": MUTED,
            "dash": "dot",
        },
        {"x": cut, "text": f"threshold {threshold:.1%}", "color": ACCENT, "dash": "dash"},
    ]
    layout = {
        "template": TEMPLATE_NAME,
        "showlegend": False,
        "margin": {"l": 10, "r": 50, "t": 40, "b": 40},
        "xaxis": {
            "title": {"text": "P(convert), on a log-odds scale"},
            "range": [low - pad, high + pad],
            "tickvals": tickvals,
            "ticktext": ticktext,
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
    return go.Figure([trace], layout)


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


def sensitivity_figure(line: SensitivityLine, threshold: float) -> go.Figure:
    """P(convert) across one feature's values, the others held; the current value highlighted."""
    control = line.control
    shapes, notes = _threshold_layout(threshold)
    hover = "%{x}<br>P(convert) %{y:.1%}<extra></extra>"
    if control.is_numeric:
        xs = [float(v) for v in line.x]
        current = {"x": [float(line.current)], "y": [line.current_p]}
        traces = [
            go.Scatter(x=xs, y=line.p, mode="lines", line={"color": PRIMARY, "width": 2}, hovertemplate=hover),
            go.Scatter(
                **current,
                mode="markers",
                marker={"color": SECONDARY, "size": 11, "line": {"color": "white", "width": 2}},
                hovertemplate="this session<br>" + hover,
            ),
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
        traces = [go.Bar(x=names, y=line.p, marker_color=colours, hovertemplate=hover)]
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
    return go.Figure(traces, layout)


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
