"""Figures of the KPI tab: trend, breakdown bars (clickable for cross-filtering), browse funnel."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go

from dashboard.figures.style import ACCENT, MUTED, PRIMARY, empty_figure, sessions_with_rate, styled

NO_SESSIONS = "No sessions match the filters"


def trend_figure(trend: pd.DataFrame, freq: str, conversion_title: str) -> go.Figure:
    """Sessions per day or week as bars, conversion rate as a line on a second axis."""
    if trend.empty or trend["sessions"].sum() == 0:
        return empty_figure(NO_SESSIONS)
    unit = "week of" if freq == "W" else "day"
    fig = sessions_with_rate(
        trend["period"],
        trend["sessions"],
        trend["conversion_rate"],
        conversion_title,
        bar_hover=f"{unit} %{{x|%a %d %b %Y}}<br>%{{y:,}} sessions<extra></extra>",
        rate_hover=f"{unit} %{{x|%a %d %b %Y}}<br>{conversion_title}: %{{y:.1%}}<extra></extra>",
        line_mode="lines+markers" if len(trend) < 40 else "lines",
    )
    return styled(fig, bargap=0.15, hovermode="x unified")


def breakdown_figure(
    table: pd.DataFrame,
    selected: Sequence[int],
    conversion_title: str,
    top: int = 12,
    revenue: str = "Potential revenue",
) -> go.Figure:
    """Sessions per value (largest first), coloured by whether the value is in the filter.

    Each bar carries its code as ``customdata`` so a click can filter by it.
    """
    if table.empty:
        return empty_figure(NO_SESSIONS)
    shown = table.head(top).iloc[::-1]
    colours = [PRIMARY if not selected or code in selected else MUTED for code in shown["code"]]
    hover = (
        "<b>%{y}</b><br>%{x:,} sessions (%{customdata[1]:.1%})"
        f"<br>{conversion_title}: %{{customdata[2]:.1%}}"
        f"<br>{revenue}: %{{customdata[3]:,.0f}}<extra>click to filter</extra>"
    )
    fig = go.Figure(
        go.Bar(
            x=shown["sessions"],
            y=shown["label"],
            orientation="h",
            marker_color=colours,
            # Plain lists, not a NumPy array: Plotly sends arrays as typed arrays, and the
            # browser's click events leave typed-array customdata out.
            customdata=shown[["code", "share", "conversion_rate", "revenue"]].to_numpy().tolist(),
            hovertemplate=hover,
            text=[f"{rate:.0%}" for rate in shown["conversion_rate"]],
            textposition="auto",
            insidetextanchor="end",
        )
    )
    hidden = len(table) - len(shown)
    return styled(
        fig,
        xaxis_title=f"Sessions (top {len(shown)} of {len(table)})" if hidden else "Sessions",
        yaxis={"type": "category"},  # labels such as category IDs are names, not numbers
        margin={"l": 10, "r": 10, "t": 10, "b": 40},
        clickmode="event",
    )


def funnel_figure(funnel: pd.DataFrame) -> go.Figure:
    """Sessions reaching each step (browse or purchase funnel), with step conversion in the hover."""
    if funnel.empty or funnel["sessions"].iloc[0] == 0:
        return empty_figure(NO_SESSIONS)
    fig = go.Figure(
        go.Funnel(
            y=funnel["step"],
            x=funnel["sessions"],
            texttemplate="%{value:,.0f}<br>%{percentInitial:.0%}",
            customdata=funnel[["of_previous"]].to_numpy(),
            hovertemplate="<b>%{y}</b><br>%{x:,} sessions<br>%{percentInitial:.1%} of all, "
            "%{customdata[0]:.1%} of previous step<extra></extra>",
            marker={"color": [PRIMARY, "#52b5ed", "#7fc8f1", ACCENT][-len(funnel) :]},
            connector={"line": {"color": "#dee2e6"}},
        )
    )
    return styled(fig, margin={"l": 10, "r": 10, "t": 10, "b": 10})
