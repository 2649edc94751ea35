"""KPI tab: the numbers equal ml's, figures build, cross-filter and export work as plain functions."""

from __future__ import annotations

from datetime import date

import numpy as np
import plotly.graph_objects as go
import pytest

from dashboard.figures.kpi import breakdown_figure, funnel_figure, trend_figure
from dashboard.tabs.kpi import breakdown_view, cards_view, toggle_code, trend_view
from ml.features import kpis
from ml.features.kpis import SessionFilter, session_kpis

NON_TRIVIAL = SessionFilter(
    start=date(2008, 5, 10), end=date(2008, 7, 20), country=(29, 9, 24), main_category=(1, 3), main_colour=(2, 3, 6)
)


def _card_texts(cards) -> dict[str, str]:
    out = {}
    for col in cards:
        body = col.children.children.children
        out[body[0].children] = body[1].children
    return out


def test_cards_show_what_ml_computes_for_a_non_trivial_filter(context):
    cards = _card_texts(cards_view(context.data, NON_TRIVIAL)[0])
    expected = session_kpis(context.data.sessions, NON_TRIVIAL)
    assert expected["sessions"] > 100  # the filter keeps a real slice of the data
    assert cards["Sessions"] == f"{expected['sessions']:,.0f}"
    assert cards["Clicks"] == f"{expected['clicks']:,.0f}"
    assert cards["Clicks per session"] == f"{expected['clicks_per_session']:,.2f}"
    assert cards["Bounce rate"] == f"{expected['bounce_rate']:.1%}"
    assert cards["Conversion (proxy)"] == f"{expected['conversion_rate']:.1%}"
    assert cards["Potential revenue"] == f"${expected['revenue']:,.0f}"
    assert cards["Revenue per converting session"] == f"${expected['revenue_per_converting_session']:,.2f}"


def test_the_cube_agrees_with_session_rows_for_every_kpi(context):
    for filt in (SessionFilter(), NON_TRIVIAL, SessionFilter(country=(29,), start=date(2008, 8, 1))):
        from_cube = kpis.kpi_summary(context.data.cube, filt).current
        direct = session_kpis(context.data.sessions, filt)
        assert from_cube == pytest.approx(direct, nan_ok=True)


def test_changes_compare_with_the_previous_period_of_equal_length(context):
    june = SessionFilter(start=date(2008, 6, 1), end=date(2008, 6, 30))
    comparison = kpis.kpi_summary(context.data.cube, june)
    may = session_kpis(context.data.sessions, SessionFilter(start=date(2008, 5, 2), end=date(2008, 5, 31)))
    assert comparison.previous == pytest.approx(may, nan_ok=True)
    assert comparison.change("sessions") == pytest.approx(
        (comparison.current["sessions"] - may["sessions"]) / may["sessions"]
    )
    first_days = kpis.kpi_summary(context.data.cube, SessionFilter(start=date(2008, 4, 1), end=date(2008, 4, 10)))
    assert first_days.previous is None and first_days.change("sessions") is None


def _views(data, filt):
    cards, funnel = cards_view(data, filt)
    breakdowns = [breakdown_view(data, filt, d) for d in kpis.dimensions_of(data.cube)]
    return cards, [funnel, *breakdowns]


def test_the_view_builds_every_figure_and_an_empty_filter_says_so(context):
    cards, figures = _views(context.data, NON_TRIVIAL)
    assert len(cards) == 7 and len(figures) == 4 and all(isinstance(f, go.Figure) for f in figures)
    nothing = SessionFilter(start=date(2009, 1, 1), end=date(2009, 1, 31))
    _, empty = _views(context.data, nothing)
    assert all(f.layout.annotations and "No sessions" in f.layout.annotations[0].text for f in empty)


def test_breakdown_bars_carry_codes_as_plain_lists_for_click_events(context):
    table = kpis.breakdown(context.data.cube, SessionFilter(), "main_category")
    fig = breakdown_figure(table, (2,), "Conversion (proxy)")
    bar = fig.data[0]
    # Plain sequences, not a NumPy array: the browser drops typed-array customdata from click events.
    assert isinstance(bar.customdata, tuple | list) and not isinstance(bar.customdata, np.ndarray)
    codes = [int(row[0]) for row in bar.customdata]
    assert sorted(codes) == [1, 2, 3, 4]
    assert set(bar.y) == {"trousers", "skirts", "blouses", "sale"}  # decoded, not codes
    colours = dict(zip(bar.y, bar.marker.color, strict=True))
    assert colours["skirts"] != colours["trousers"]  # the filtered value stands out


def test_a_bar_click_toggles_its_code_in_the_filter():
    click = {"points": [{"customdata": [2, 0.2, 0.25, 1000.0], "y": "skirts"}]}
    assert toggle_code([1], click) == [1, 2]
    assert toggle_code([1, 2], click) == [1]
    assert toggle_code(None, click) == [2]


def test_trend_is_daily_or_weekly(context):
    daily = trend_view(context.data, SessionFilter(start=date(2008, 6, 1), end=date(2008, 6, 30)), "D")
    weekly = trend_view(context.data, SessionFilter(start=date(2008, 6, 1), end=date(2008, 6, 30)), "W")
    assert len(daily.data[0].x) == 30
    assert len(weekly.data[0].x) in (5, 6)
    assert isinstance(
        trend_figure(kpis.trend(context.data.cube, SessionFilter(), "W"), "W", "Conversion (proxy)"), go.Figure
    )


def test_funnel_steps_never_grow(context):
    table = kpis.funnel(context.data.cube, NON_TRIVIAL)
    assert list(table["sessions"]) == sorted(table["sessions"], reverse=True)
    assert isinstance(funnel_figure(table), go.Figure)


def test_export_is_the_breakdown_for_the_filter_without_formula_cells(context):
    table = kpis.breakdown_export(context.data.cube, NON_TRIVIAL)
    assert set(table["dimension"]) == {"Country", "Main category", "Main colour"}
    for _, part in table.groupby("dimension"):
        assert part["sessions"].sum() == session_kpis(context.data.sessions, NON_TRIVIAL)["sessions"]
