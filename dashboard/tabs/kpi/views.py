"""What the KPI tab shows for a filter, as pure functions of the prepared data (the callbacks call these).

The ``*_outputs`` functions are what the callbacks return, kept per dataset
and filter in a bounded memo (``dashboard.view_cache``): the same view asked
again (the landing view, a shared link, a filter set back) is not recomputed.
Their answers are shared between requests and must not be changed.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
import pandas as pd
from dash import html

from dashboard.figures.kpi import breakdown_figure, funnel_figure, trend_figure
from dashboard.figures.style import Figure
from dashboard.filter_bar import coverage
from dashboard.tabs.kpi.cards import card_specs, kpi_cards
from dashboard.view_cache import figure_json, memo
from ml.config import ALERT_THRESHOLD, ALERT_WINDOW, VIEW_CACHE_SIZE
from ml.features import anomalies, kpis, periods
from ml.features.kpis import SessionFilter
from ml.features.prepared import PreparedData

ALL_DATES_LINK = "?dates=all"


def revenue_label(data: PreparedData) -> str:
    return "Potential revenue" if data.definition.is_proxy else "Revenue"


def comparison(data: PreparedData, filt: SessionFilter) -> kpis.KpiComparison:
    return kpis.kpi_summary(data.cube, filt, coverage(data))


def cards_view(data: PreparedData, filt: SessionFilter) -> tuple:
    """Cards and the funnel for a filter."""
    return kpi_cards(comparison(data, filt), card_specs(data)), funnel_figure(kpis.funnel(data.cube, filt))


def _span(start, end) -> str:
    return f"{start:%d %b}–{end:%d %b %Y}"


def period_note(data: PreparedData, filt: SessionFilter) -> list:
    """The line above the cards: which period is shown, what it is compared with, how to see all dates."""
    covered = coverage(data)
    if covered is None:
        return ["No sessions in this dataset."]
    plan = periods.plan(filt.start, filt.end, covered)
    if filt.start is None and filt.end is None:
        shown = f"All dates ({_span(covered.first, covered.last)}); no earlier period to compare."
        return [shown]
    if plan.start is None:
        return [f"{plan.reason.capitalize()}."]
    default = periods.default_period(covered)
    is_default = (plan.start, plan.end) == default and (filt.start, filt.end) == default
    weeks = plan.length // 7
    weeks_text = f"{weeks} complete week{'s' if weeks != 1 else ''}"
    shown = (
        f"The latest {weeks_text}, {_span(plan.start, plan.end)}"
        if is_default
        else (f"{_span(plan.start, plan.end)} ({plan.length} days)")
    )
    clipped = (filt.start and filt.start < plan.start) or (filt.end and filt.end > plan.end)
    if clipped:
        shown += f" (the part of {filt.start or '…'}–{filt.end or '…'} the data covers)"
    if plan.kind == periods.FULL:
        against = (
            f"compared with the {weeks_text} before, {_span(plan.previous_start, plan.previous_end)}"
            if is_default
            else f"compared with the {plan.length} days before, {_span(plan.previous_start, plan.previous_end)}"
        )
    elif plan.kind == periods.PARTIAL:
        against = (
            f"the {plan.length} days before ({_span(plan.previous_start, plan.previous_end)}) are covered by the data "
            f"only for {plan.compared_days} days ({_span(plan.compared_start, plan.compared_end)}): rates and averages "
            "are compared with those days, totals are not compared"
        )
    else:
        against = plan.reason
    return [f"{shown}; {against}. ", html.A("Show all dates", href=ALL_DATES_LINK, className="kpi-all-dates")]


def breakdown_view(data: PreparedData, filt: SessionFilter, dimension: str) -> Figure:
    """Bars for one dimension: the other filters apply, its own values are highlighted, not removed."""
    context_filter = filt.replace(**{dimension: ()})
    table = kpis.breakdown(data.cube, context_filter, dimension, data.codebooks)
    return breakdown_figure(table, filt.codes_for(dimension), data.definition.title, revenue=revenue_label(data))


def alerts_for(
    data: PreparedData,
    filt: SessionFilter,
    window: int = ALERT_WINDOW,
    threshold: float = ALERT_THRESHOLD,
    keep: int = VIEW_CACHE_SIZE,
) -> pd.DataFrame:
    """``anomalies.kpi_alerts`` for the filter: scored once per dimension filter (every date), cut to its dates."""
    every_date = filt.replace(start=None, end=None)
    label = data.definition.title.lower()
    scored = memo(
        data,
        "kpi-alerts",
        (every_date, window, threshold),
        lambda: anomalies.kpi_alerts(data.cube, every_date, window, threshold, conversion_label=label),
        keep,
    )
    return anomalies.alerts_between(scored, filt.start, filt.end)


def trend_view(
    data: PreparedData,
    filt: SessionFilter,
    freq: str,
    window: int = ALERT_WINDOW,
    threshold: float = ALERT_THRESHOLD,
    alerts: pd.DataFrame | None = None,
) -> Figure:
    """The trend; in the daily view with alert markers (``alerts`` if computed already)."""
    trend = kpis.trend(data.cube, filt, freq, coverage(data))
    if freq == "D" and alerts is None:
        alerts = alerts_for(data, filt, window, threshold)
    return trend_figure(trend, freq, data.definition.title, alerts if freq == "D" else None)


def alerts_summary(alerts: pd.DataFrame, threshold: float, window: int) -> list:
    """A line under the trend: how many days are flagged and by what rule, the latest few named."""
    flagged = anomalies.flagged_days(alerts)
    rule = f"|robust z| ≥ {threshold:g} against the median of the {window} days before"
    if flagged.empty:
        return [html.Span(f"Trend alerts: no day flagged ({rule}).")]
    items = [
        html.Li(f"{row.date:%a %d %b %Y}: {row.explanation}", className="kpi-alert-item")
        for row in flagged.head(5).itertuples()
    ]
    more = f" (latest {len(items)} listed)" if len(flagged) > len(items) else ""
    days = flagged["date"].nunique()
    return [
        html.Span(f"Trend alerts: {len(flagged)} flag(s) on {days} day(s){more}; {rule}.", className="kpi-alert-count"),
        html.Ul(items, className="mb-0 small"),
    ]


def toggle_code(current: list[int] | None, click: dict | None) -> list[int]:
    """Add the clicked bar's code to a filter, or remove it if it is already there."""
    values = list(current or [])
    code = int(click["points"][0]["customdata"][0])
    return [v for v in values if v != code] if code in values else [*values, code]


def compare_alert(note: list) -> dbc.Alert:
    return dbc.Alert(note, color="light", className="py-1 px-2 mb-2 small kpi-compare")


# ---------------------------------------------------------------- what the callbacks return (memoised)
def cards_outputs(data: PreparedData, filt: SessionFilter, keep: int = VIEW_CACHE_SIZE) -> tuple:
    """The cards, the funnel figure and the period note for a filter (``keep``: the memo's size)."""

    def build() -> tuple:
        cards, funnel = cards_view(data, filt)
        return cards, figure_json(funnel), compare_alert(period_note(data, filt))

    return memo(data, "kpi-cards", (filt,), build, keep)


def breakdown_outputs(data: PreparedData, filt: SessionFilter, dimension: str, keep: int = VIEW_CACHE_SIZE) -> dict:
    """One dimension's breakdown figure for a filter."""

    def build() -> dict:
        return figure_json(breakdown_view(data, filt, dimension))

    return memo(data, "kpi-breakdown", (filt, dimension), build, keep)


def trend_outputs(
    data: PreparedData, filt: SessionFilter, freq: str, window: int, threshold: float, keep: int = VIEW_CACHE_SIZE
) -> tuple:
    """The trend figure (daily or weekly, alert markers in the daily view) and the alerts line under it."""

    def build() -> tuple:
        alerts = alerts_for(data, filt, window, threshold, keep)
        figure = trend_view(data, filt, freq, window, threshold, alerts)
        summary = alerts_summary(alerts, threshold, window)
        if freq == "W":
            summary.append(html.Div("Markers on flagged days are drawn in the daily view.", className="text-muted"))
        return figure_json(figure), summary

    return memo(data, "kpi-trend", (filt, freq, window, threshold), build, keep)
