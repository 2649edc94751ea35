"""Figures of the KPI tab: trend (partial weeks hatched, alert markers), breakdown bars, funnel.

Each figure is written as plain dicts and returned as the JSON-ready figure
Dash sends (``style.figure_dict``: no figure object to validate, no subplot
helpers or ``update_layout`` round trips): they are redrawn on every filter change.

Breakdown bars cross-filter: the values in the filter are drawn in colour and
the others in grey, all still shown, so a click shows the choice in context.
Colours are Okabe-Ito's, which colour-blind readers tell apart.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from dashboard.figures.style import (
    SECONDARY_Y,
    TEMPLATE_NAME,
    Figure,
    empty_figure,
    figure_dict,
    sessions_with_rate_parts,
)

NO_SESSIONS = "No sessions match the filters"
# Okabe-Ito (Okabe & Ito 2008), a palette colour-blind readers tell apart.
OKABE_ITO = {
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
    "black": "#000000",
}
CHOSEN = OKABE_ITO["blue"]
NOT_CHOSEN = "#cfd4d9"  # grey: the values outside the filter, still shown for context
ALERT = OKABE_ITO["vermillion"]
# Steps from the first to the last (the conversion step in orange); text colours keep 4.5:1 on each.
FUNNEL_COLOURS = [OKABE_ITO["blue"], OKABE_ITO["sky_blue"], "#a9d6f2", OKABE_ITO["orange"]]
FUNNEL_TEXT = ["white", "black", "black", "black"]


def trend_figure(trend: pd.DataFrame, freq: str, conversion_title: str, alerts: pd.DataFrame | None = None) -> Figure:
    """Sessions per day or week as bars, conversion rate as a line on a second axis.

    Weeks the filter or the data cover only partly (``trend["partial"]``) are
    hatched and say so in the hover. ``alerts`` (``anomalies.kpi_alerts``) adds
    a marker on each flagged day, its hover explaining the flag (daily view).
    """
    if trend.empty or trend["sessions"].sum() == 0:
        return empty_figure(NO_SESSIONS)
    unit = "week of" if freq == "W" else "day"
    partial = trend["partial"] if "partial" in trend else pd.Series(False, index=trend.index)
    days = trend["days"] if "days" in trend else pd.Series(7, index=trend.index)
    notes = [f"<br><i>partial week: {d} of 7 days</i>" if p else "" for p, d in zip(partial, days, strict=True)]
    traces, layout = sessions_with_rate_parts(
        trend["period"],
        trend["sessions"],
        trend["conversion_rate"],
        conversion_title,
        bar_hover=f"{unit} %{{x|%a %d %b %Y}}<br>%{{y:,}} sessions%{{customdata}}<extra></extra>",
        rate_hover=f"{unit} %{{x|%a %d %b %Y}}<br>{conversion_title}: %{{y:.1%}}<extra></extra>",
        customdata=notes,
        line_mode="lines+markers" if len(trend) < 40 else "lines",
    )
    if partial.any():
        traces[0]["marker"]["pattern"] = {
            "shape": ["/" if p else "" for p in partial],
            "fgcolor": "white",
            "fillmode": "overlay",
            "solidity": 0.4,
        }
        layout["annotations"] = [
            {
                "text": "hatched: partial week",
                "xref": "paper",
                "yref": "paper",
                "x": 1,
                "y": 1.02,
                "xanchor": "right",
                "yanchor": "bottom",
                "showarrow": False,
                "font": {"size": 11},
            }
        ]
    if alerts is not None and freq == "D":
        traces += _alert_markers(alerts)
    layout.update(template=TEMPLATE_NAME, bargap=0.15, hovermode="x unified")
    return figure_dict(traces, layout)


def _alert_markers(alerts: pd.DataFrame) -> list[dict]:
    """A marker trace per metric with flagged days: sessions on the left axis, conversion on the right."""
    flagged = alerts[alerts["flag"]]
    traces = []
    for metric, axis, symbol, name in (
        ("sessions", "y", "triangle-down", "Alert: sessions"),
        ("conversion_rate", SECONDARY_Y, "diamond", "Alert: conversion"),
    ):
        rows = flagged[flagged["metric"] == metric]
        if rows.empty:
            continue
        traces.append(
            {
                "type": "scatter",
                "x": rows["date"],
                "y": rows["value"],
                "mode": "markers",
                "name": name,
                "marker": {"symbol": symbol, "size": 12, "color": ALERT, "line": {"color": "black", "width": 1}},
                "customdata": rows[["explanation"]].to_numpy().tolist(),
                "hovertemplate": "<b>flagged</b>: %{customdata[0]}<br>far from the recent level<extra></extra>",
                "xaxis": "x",
                "yaxis": axis,
            }
        )
    return traces


def breakdown_figure(
    table: pd.DataFrame,
    selected: Sequence[int],
    conversion_title: str,
    top: int = 12,
    revenue: str = "Potential revenue",
) -> Figure:
    """Sessions per value (largest first): the values in the filter in colour, the others in grey.

    ``table`` is the breakdown without the dimension's own filter, so every
    value stays visible. The chosen values are always among the bars shown.
    Each bar carries its code as ``customdata`` so a click can filter by it.
    """
    if table.empty:
        return empty_figure(NO_SESSIONS)
    chosen = set(selected)
    head = table.head(top)
    extra = table[table["code"].isin(chosen) & ~table["code"].isin(head["code"])]
    shown = pd.concat([head, extra]).iloc[::-1]
    colours = [CHOSEN if not chosen or code in chosen else NOT_CHOSEN for code in shown["code"]]
    action = ["click to remove from the filter" if code in chosen else "click to filter" for code in shown["code"]]
    hover = (
        "<b>%{y}</b><br>%{x:,} sessions (%{customdata[1]:.1%})"
        f"<br>{conversion_title}: %{{customdata[2]:.1%}}"
        f"<br>{revenue}: %{{customdata[3]:,.0f}}<extra>%{{customdata[4]}}</extra>"
    )
    bar = {
        "type": "bar",
        "x": shown["sessions"],
        "y": shown["label"],
        "orientation": "h",
        "marker": {"color": colours},
        # Plain lists, not a NumPy array: Plotly sends arrays as typed arrays, and the
        # browser's click events leave typed-array customdata out.
        "customdata": [
            [*row, note]
            for row, note in zip(
                shown[["code", "share", "conversion_rate", "revenue"]].to_numpy().tolist(), action, strict=True
            )
        ],
        "hovertemplate": hover,
        "text": [f"{rate:.0%}" for rate in shown["conversion_rate"]],
        "textposition": "auto",
        "insidetextanchor": "end",
    }
    hidden = len(table) - len(shown)
    title = (f"Sessions (top {len(shown)} of {len(table)})" if hidden else "Sessions") + (
        "; grey: not in the filter" if chosen else ""
    )
    layout = {
        "template": TEMPLATE_NAME,
        "xaxis": {"title": {"text": title}},
        "yaxis": {"type": "category"},  # labels such as category IDs are names, not numbers
        "margin": {"l": 10, "r": 10, "t": 10, "b": 40},
        "clickmode": "event",
    }
    return figure_dict([bar], layout)


def funnel_figure(funnel: pd.DataFrame) -> Figure:
    """Sessions reaching each step (browse or purchase funnel), with step conversion in the hover."""
    if funnel.empty or funnel["sessions"].iloc[0] == 0:
        return empty_figure(NO_SESSIONS)
    trace = {
        "type": "funnel",
        "y": funnel["step"],
        "x": funnel["sessions"],
        "texttemplate": "%{value:,.0f}<br>%{percentInitial:.0%}",
        "customdata": funnel[["of_previous"]].to_numpy(),
        "hovertemplate": "<b>%{y}</b><br>%{x:,} sessions<br>%{percentInitial:.1%} of all, "
        "%{customdata[0]:.1%} of previous step<extra></extra>",
        "marker": {"color": FUNNEL_COLOURS[-len(funnel) :]},
        "textfont": {"color": FUNNEL_TEXT[-len(funnel) :]},
        "connector": {"line": {"color": "#dee2e6"}},
    }
    return figure_dict([trace], {"template": TEMPLATE_NAME, "margin": {"l": 10, "r": 10, "t": 10, "b": 10}})
