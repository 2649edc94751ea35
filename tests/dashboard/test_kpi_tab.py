"""KPI tab: the numbers equal ml's, figures build, cross-filter and export work as plain functions."""

from __future__ import annotations

import io
from datetime import date

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from dashboard import filter_bar
from dashboard.figures.kpi import CHOSEN, NOT_CHOSEN, breakdown_figure, funnel_figure, trend_figure
from dashboard.tabs import TAB_IDS
from dashboard.tabs.kpi import (
    alerts_for,
    alerts_summary,
    breakdown_view,
    cards_view,
    controls_from_url,
    period_note,
    toggle_code,
    trend_view,
    url_with_controls,
)
from dashboard.tabs.kpi import export as kpi_export
from dashboard.tabs.kpi.cards import CardSpec, card_sentence, change_phrase, footer, verdict
from dashboard.url_state import ViewState, parse_search, to_search
from ml.data.synthetic_logs import multi_category_store_log
from ml.features import kpis
from ml.features.kpis import Delta, KpiComparison, SessionFilter, session_kpis
from ml.features.prepared import prepare_file

NON_TRIVIAL = SessionFilter(
    start=date(2008, 5, 10), end=date(2008, 7, 20), country=(29, 9, 24), main_category=(1, 3), main_colour=(2, 3, 6)
)


def _card_texts(cards) -> dict[str, str]:
    out = {}
    for col in cards:
        body = col.children.children.children
        out[body[0].children] = body[1].children
    return out


def _footers(cards) -> dict[str, str]:
    """Each card's change line as text."""
    out = {}
    for col in cards:
        body = col.children.children.children
        out[body[0].children] = "".join(span.children for span in body[2].children)
    return out


def _text(component) -> str:
    if isinstance(component, str):
        return component
    if isinstance(component, list | tuple):
        return "".join(_text(c) for c in component)
    children = getattr(component, "children", None)
    return "" if children is None else _text(children)


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """A prepared event log with carts and purchases (30 days of October 2019)."""
    path = tmp_path_factory.mktemp("shop") / "shop.csv"
    multi_category_store_log(20_000, seed=1).to_csv(path, index=False)
    data = prepare_file(path, "shop")
    assert data.has_purchases
    return data


def test_cards_show_what_ml_computes_for_a_non_trivial_filter(context):
    cards = _card_texts(cards_view(context.dataset(), NON_TRIVIAL)[0])
    expected = session_kpis(context.dataset().sessions, NON_TRIVIAL)
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
        from_cube = kpis.kpi_summary(context.dataset().cube, filt).current
        direct = session_kpis(context.dataset().sessions, filt)
        assert from_cube == pytest.approx(direct, nan_ok=True)


def test_changes_compare_with_the_previous_period_of_equal_length(context):
    june = SessionFilter(start=date(2008, 6, 1), end=date(2008, 6, 30))
    comparison = kpis.kpi_summary(context.dataset().cube, june)
    may = session_kpis(context.dataset().sessions, SessionFilter(start=date(2008, 5, 2), end=date(2008, 5, 31)))
    assert comparison.previous == pytest.approx(may, nan_ok=True)
    assert comparison.change("sessions") == pytest.approx(
        (comparison.current["sessions"] - may["sessions"]) / may["sessions"]
    )
    first_days = kpis.kpi_summary(context.dataset().cube, SessionFilter(start=date(2008, 4, 1), end=date(2008, 4, 10)))
    assert first_days.previous is None and first_days.change("sessions") is None


def test_a_period_starting_just_after_the_data_does_not_compare_31_days_with_9(context):
    """/?from=2008-04-10&to=2008-05-10: the 31 days before start on 10 Mar, the data on 1 Apr."""
    filt = SessionFilter(start=date(2008, 4, 10), end=date(2008, 5, 10))
    cards = cards_view(context.dataset(), filt)[0]
    footers = _footers(cards)
    for total in ("Sessions", "Clicks", "Potential revenue"):
        assert footers[total] == "not compared: the data covers 9 of the 31 days before", total
        assert "%" not in footers[total]
    covered = session_kpis(context.dataset().sessions, SessionFilter(start=date(2008, 4, 1), end=date(2008, 4, 9)))
    assert f"from {covered['conversion_rate']:.1%}" in footers["Conversion (proxy)"]
    assert footers["Conversion (proxy)"].endswith("(9 earlier days)")
    note = _text(period_note(context.dataset(), filt))
    assert "covered by the data only for 9 days (01 Apr–09 Apr 2008)" in note and "totals are not compared" in note


def test_the_landing_view_is_the_latest_four_complete_weeks_against_the_four_before(context):
    state = filter_bar.with_default_dates(context.dataset(), parse_search("", TAB_IDS))
    assert (state.filter.start, state.filter.end) == (date(2008, 7, 14), date(2008, 8, 10))
    note = _text(period_note(context.dataset(), state.filter))
    assert note.startswith("The latest 4 complete weeks, 14 Jul–10 Aug 2008; compared with the 4 complete weeks")
    assert "16 Jun–13 Jul 2008" in note and "Show all dates" in note
    cards = cards_view(context.dataset(), state.filter)[0]
    assert not any(f.startswith(("not compared", "no earlier")) for f in _footers(cards).values())
    everything = filter_bar.with_default_dates(context.dataset(), parse_search("?dates=all", TAB_IDS))
    assert everything.all_dates and everything.filter == SessionFilter()
    assert _text(period_note(context.dataset(), everything.filter)).startswith("All dates (01 Apr–13 Aug 2008)")
    start, end = filter_bar.default_dates(context.dataset())
    assert (start, end) == ("2008-07-14", "2008-08-10")  # what Reset puts back


def _comparison(previous: float, current: float) -> KpiComparison:
    return KpiComparison({"conversion_rate": current}, {"conversion_rate": previous}, None)


def test_rate_changes_read_in_percentage_points_with_the_previous_value():
    spec = CardSpec("conversion_rate", "Conversion", "{:.1%}")
    comparison = _comparison(0.263, 0.228)
    assert card_sentence(spec, comparison) == "Conversion 22.8% (−3.5 pp from 26.3%)"
    delta = comparison.delta("conversion_rate")
    assert delta == Delta("pp", pytest.approx(-3.5), 0.263, 0.228)
    assert change_phrase(spec, delta) == "−3.5 pp from 26.3%"
    assert verdict(spec, delta) == "worse"
    assert "".join(s.children for s in footer(spec, comparison)).startswith("▼ −3.5 pp from 26.3% worse")
    bounce = CardSpec("bounce_rate", "Bounce rate", "{:.1%}", good_when_up=False)
    falling = KpiComparison({"bounce_rate": 0.20}, {"bounce_rate": 0.25}, None)
    assert "".join(s.children for s in footer(bounce, falling)).startswith("▼ −5.0 pp from 25.0% better")
    sessions = CardSpec("sessions", "Sessions", "{:,.0f}")
    growth = KpiComparison({"sessions": 1100.0}, {"sessions": 1000.0}, None)
    assert card_sentence(sessions, growth) == "Sessions 1,100 (+10.0% from 1,000)"


def test_the_funnel_ends_on_the_conversion_card_for_the_proxy_and_for_purchases(context, shop):
    for data, filt in ((context.dataset(), NON_TRIVIAL), (context.dataset(), SessionFilter()), (shop, SessionFilter())):
        cards = _card_texts(cards_view(data, filt)[0])
        table = kpis.funnel(data.cube, filt)
        last = table["sessions"].iloc[-1] / table["sessions"].iloc[0]
        assert cards[data.definition.title] == f"{last:.1%}"
        assert table["step"].iloc[-1].endswith("(converted)") or "converted" in table["step"].iloc[-1]
        assert last == pytest.approx(session_kpis(data.sessions, filt)["conversion_rate"])
    shop_steps = list(kpis.funnel(shop.cube, SessionFilter())["step"])
    assert shop_steps == ["Sessions", "Viewed a product", "Added to cart", "Purchased (converted)"]


def test_purchase_cards_equal_the_engine_for_a_filter(shop):
    filt = SessionFilter(start=date(2019, 10, 8), end=date(2019, 10, 21), main_category=(1, 2))
    cards = _card_texts(cards_view(shop, filt)[0])
    expected = session_kpis(shop.sessions, filt)
    assert cards["Conversion (purchases)"] == f"{expected['conversion_rate']:.1%}"
    assert cards["Revenue"] == f"{expected['revenue']:,.0f}"
    assert cards["Orders"] == f"{expected['orders']:,.0f}"
    assert cards["Cart rate"] == f"{expected['cart_rate']:.1%}"
    footers = _footers(cards_view(shop, filt)[0])
    assert " pp from " in footers["Cart rate"] and " pp from " in footers["Cart abandonment"]


def _views(data, filt):
    cards, funnel = cards_view(data, filt)
    breakdowns = [breakdown_view(data, filt, d) for d in kpis.dimensions_of(data.cube)]
    return cards, [go.Figure(f) for f in (funnel, *breakdowns)]  # figure dicts, validated


def test_the_view_builds_every_figure_and_an_empty_filter_says_so(context):
    cards, figures = _views(context.dataset(), NON_TRIVIAL)
    assert len(cards) == 7 and len(figures) == 4 and all(isinstance(f, go.Figure) for f in figures)
    nothing = SessionFilter(start=date(2009, 1, 1), end=date(2009, 1, 31))
    _, empty = _views(context.dataset(), nothing)
    assert all(f.layout.annotations and "No sessions" in f.layout.annotations[0].text for f in empty)


def test_breakdown_bars_carry_codes_as_plain_lists_for_click_events(context):
    table = kpis.breakdown(context.dataset().cube, SessionFilter(), "main_category")
    fig = go.Figure(breakdown_figure(table, (2,), "Conversion (proxy)"))
    bar = fig.data[0]
    # Plain sequences, not a NumPy array: the browser drops typed-array customdata from click events.
    assert isinstance(bar.customdata, tuple | list) and not isinstance(bar.customdata, np.ndarray)
    codes = [int(row[0]) for row in bar.customdata]
    assert sorted(codes) == [1, 2, 3, 4]
    assert set(bar.y) == {"trousers", "skirts", "blouses", "sale"}  # decoded, not codes
    colours = dict(zip(bar.y, bar.marker.color, strict=True))
    assert colours["skirts"] != colours["trousers"]  # the filtered value stands out


def test_cross_filtering_greys_the_other_bars_instead_of_removing_them(context):
    filt = SessionFilter(main_category=(2,), country=(29,))
    bar = go.Figure(breakdown_view(context.dataset(), filt, "main_category")).data[0]
    colours = dict(zip(bar.y, bar.marker.color, strict=True))
    assert set(colours) == {"trousers", "skirts", "blouses", "sale"}  # every category still drawn
    assert colours["skirts"] == CHOSEN and {colours[c] for c in ("trousers", "blouses", "sale")} == {NOT_CHOSEN}
    # The bars follow the other filters (Poland), not their own: each bar is its category's Polish sessions.
    poland = {int(row[0]): row for row in bar.customdata}
    expected = session_kpis(context.dataset().sessions, SessionFilter(main_category=(1,), country=(29,)))["sessions"]
    assert bar.x[list(bar.y).index("trousers")] == expected
    assert poland[2][4] == "click to remove from the filter" and poland[1][4] == "click to filter"
    # A chosen value outside the top bars is still drawn.
    rare = kpis.breakdown(context.dataset().cube, SessionFilter(), "country").iloc[-1]
    shown = go.Figure(breakdown_view(context.dataset(), SessionFilter(country=(int(rare["code"]),)), "country")).data[0]
    assert rare["label"] in shown.y


def test_a_bar_click_toggles_its_code_in_the_filter():
    click = {"points": [{"customdata": [2, 0.2, 0.25, 1000.0], "y": "skirts"}]}
    assert toggle_code([1], click) == [1, 2]
    assert toggle_code([1, 2], click) == [1]
    assert toggle_code(None, click) == [2]


def test_partial_weeks_at_the_edges_are_hatched_and_say_so(context):
    june = SessionFilter(start=date(2008, 6, 4), end=date(2008, 6, 30))  # Wed 4 Jun .. Mon 30 Jun
    bars = go.Figure(trend_view(context.dataset(), june, "W")).data[0]
    shapes = list(bars.marker.pattern.shape)
    assert shapes == ["/", "", "", "", "/"]
    assert "partial week: 5 of 7 days" in bars.customdata[0] and bars.customdata[1] == ""
    assert "partial week: 1 of 7 days" in bars.customdata[-1]
    whole = SessionFilter(start=date(2008, 6, 2), end=date(2008, 6, 29))
    assert go.Figure(trend_view(context.dataset(), whole, "W")).data[0].marker.pattern.shape is None


def test_view_controls_and_all_dates_round_trip_through_the_url(context):
    state = ViewState(
        tab="kpi",
        filter=SessionFilter(start=date(2008, 5, 1), end=date(2008, 5, 31), main_category=(2,)),
        extra=(("freq", "W"), ("by", "country,main_colour")),
    )
    search = to_search(state)
    assert search == "?from=2008-05-01&to=2008-05-31&category=2&freq=W&by=country,main_colour"
    assert parse_search(search, TAB_IDS) == state
    assert controls_from_url(context.dataset(), search) == ("W", ["country", "main_colour"])
    assert url_with_controls(context.dataset(), search, "W", ["country", "main_colour"]) == search
    # Back to the defaults: the controls leave the URL, the filters stay.
    assert url_with_controls(context.dataset(), search, "D", ["country", "main_category", "main_colour"]) == (
        "?from=2008-05-01&to=2008-05-31&category=2"
    )
    assert controls_from_url(context.dataset(), "?freq=hourly&by=nope") == (
        "D",
        ["country", "main_category", "main_colour"],
    )
    every = ViewState(all_dates=True, extra=(("freq", "W"),))
    assert to_search(every) == "?dates=all&freq=W" and parse_search("?dates=all&freq=W", TAB_IDS) == every
    assert to_search(ViewState()) == ""
    # The filter bar's view keeps the URL's controls; an empty date range is all dates.
    shown = filter_bar.view_of("kpi", None, None, [[2]], [{"name": "main_category"}], "bundled", "?freq=W")
    assert to_search(shown) == "?dates=all&category=2&freq=W"


def test_trend_is_daily_or_weekly(context):
    daily = go.Figure(trend_view(context.dataset(), SessionFilter(start=date(2008, 6, 1), end=date(2008, 6, 30)), "D"))
    weekly = go.Figure(trend_view(context.dataset(), SessionFilter(start=date(2008, 6, 1), end=date(2008, 6, 30)), "W"))
    assert len(daily.data[0].x) == 30
    assert len(weekly.data[0].x) in (5, 6)
    whole = go.Figure(trend_figure(kpis.trend(context.dataset().cube, SessionFilter(), "W"), "W", "Conversion (proxy)"))
    assert whole.data[0].type == "bar"


def test_funnel_steps_never_grow(context):
    table = kpis.funnel(context.dataset().cube, NON_TRIVIAL)
    assert list(table["sessions"]) == sorted(table["sessions"], reverse=True)
    assert go.Figure(funnel_figure(table)).data[0].type == "funnel"


def test_export_is_the_breakdown_for_the_filter_without_formula_cells(context):
    table = kpis.breakdown_export(context.dataset().cube, NON_TRIVIAL)
    assert set(table["dimension"]) == {"Country", "Main category", "Main colour"}
    for _, part in table.groupby("dimension"):
        assert part["sessions"].sum() == session_kpis(context.dataset().sessions, NON_TRIVIAL)["sessions"]


def test_the_csv_names_its_period_and_filters_first_and_holds_rounded_values(context):
    download = kpi_export.breakdown_csv(context.dataset(), "bundled", NON_TRIVIAL)
    assert download["filename"] == (
        "kpi-breakdown_bundled_2008-05-10_2008-07-20_country-9-24-29_category-1-3_colour-2-3-6.csv"
    )
    lines = download["content"].splitlines()
    assert lines[0] == "# KPI breakdown by every dimension"
    assert lines[2] == "# Period: 2008-05-10 to 2008-07-20"
    assert (
        lines[3].startswith("# Filters: Country = ")
        and "Poland" in lines[3]
        and "Main category = trousers, blouses" in lines[3]
    )
    assert lines[4].startswith("# Conversion (proxy): ")
    table = pd.read_csv(io.StringIO(download["content"]), comment="#")
    assert list(table.columns[:5]) == ["dimension", "code", "label", "sessions", "share_pct"]
    assert (table["share_pct"] == table["share_pct"].round(1)).all()
    assert (table["conversion_rate_pct"] == table["conversion_rate_pct"].round(1)).all()
    assert (table["revenue"] == table["revenue"].round(2)).all()
    countries = table[table["dimension"] == "Country"]
    assert countries["share_pct"].sum() == pytest.approx(100, abs=0.5)
    everything = kpi_export.breakdown_csv(context.dataset(), "bundled", SessionFilter())
    assert everything["filename"] == "kpi-breakdown_bundled_all-dates.csv"
    assert "# Period: 2008-04-01 to 2008-08-13 (all dates)" in everything["content"]


def test_csv_cells_that_look_like_formulas_are_neutralised():
    table = pd.DataFrame({"label": ["=HYPERLINK(1)", "+1", "skirts"], "sessions": [1, 2, 3]})
    text = kpi_export.with_preamble(["# note"], table)
    assert text == "# note\nlabel,sessions\n'=HYPERLINK(1),1\n'+1,2\nskirts,3\n"


def test_trend_alerts_mark_a_flagged_day_explain_it_and_download(context):
    window, threshold = 28, 2.5  # a lower threshold than the default, so the bundled data has flags
    filt = SessionFilter(start=date(2008, 5, 1), end=date(2008, 8, 13))
    alerts = alerts_for(context.dataset(), filt, window, threshold)
    flagged = alerts[alerts["flag"]]
    assert len(flagged) > 0
    fig = go.Figure(trend_view(context.dataset(), filt, "D", window, threshold))
    markers = [t for t in fig.data if t.name and t.name.startswith("Alert")]
    assert sum(len(t.x) for t in markers) == len(flagged)
    assert all("vs usual" in row[0] for t in markers for row in t.customdata)
    download = kpi_export.alerts_csv(context.dataset(), "bundled", filt, alerts, "rule")
    table = pd.read_csv(io.StringIO(download["content"]), comment="#")
    assert len(table) == len(flagged) and download["filename"].startswith("kpi-alerts_bundled_2008-05-01_2008-08-13")
    assert set(table.columns) == {"date", "metric", "value", "usual", "robust_z", "explanation"}
    summary = _text(alerts_summary(alerts, threshold, window))
    assert f"{len(flagged)} flag(s)" in summary
    assert not [
        t
        for t in go.Figure(trend_view(context.dataset(), filt, "W", window, threshold)).data
        if t.name.startswith("Alert")
    ]


def test_a_url_without_dates_opens_on_the_default_period_and_dates_all_on_everything(context):
    from dashboard.navigation import view_from_url

    landing = view_from_url(context, "?freq=W")
    assert (landing.filter.start, landing.filter.end) == (date(2008, 7, 14), date(2008, 8, 10))
    assert landing.extra == (("freq", "W"),) and not landing.all_dates
    everything = view_from_url(context, "?dates=all")
    assert everything.filter == SessionFilter() and everything.all_dates
    named = view_from_url(context, "?from=2008-06-01&to=2008-06-30")
    assert (named.filter.start, named.filter.end) == (date(2008, 6, 1), date(2008, 6, 30))
    # The filter bar shows the landing period and reads back the same view, so the URL is not rewritten.
    _, _, start, end, _ = filter_bar.date_props(context.dataset(), landing)
    assert (start, end) == ("2008-07-14", "2008-08-10")
    assert filter_bar.view_of("kpi", start, end, [], [], "bundled", "?freq=W") == landing


def test_a_url_with_new_filters_on_the_same_tab_leaves_the_tab_and_dataset_alone(context, monkeypatch):
    """Back/forward between filters re-renders the filter bar only (a rebuilt tab computes every view twice)."""
    from types import SimpleNamespace

    from dash import no_update

    from dashboard import ids, navigation
    from ml.config import BUNDLED_DATASET_KEY as KEY

    monkeypatch.setattr(navigation, "ctx", SimpleNamespace(triggered_id=ids.APP_URL))
    names = [f"{o.component_id}.{o.component_property}" for o in navigation.OUTPUTS]

    def outputs(search, tab, current):
        return dict(
            zip(names, navigation.sync_view(context, search, tab, current, None, None, [], [], current), strict=True)
        )

    same = outputs("?tab=kpi&from=2008-06-01&to=2008-06-30&country=29", "kpi", KEY)
    assert same[f"{ids.APP_TABS}.active_tab"] is no_update
    assert same[f"{ids.APP_DATASET_STORE}.data"] is no_update
    assert same[f"{ids.FILTER_BAR_BODY}.children"] is not no_update  # the bar shows the URL's filters
    # Another tab in the URL, or the first render, still sets them.
    assert outputs("?tab=eda", "kpi", KEY)[f"{ids.APP_TABS}.active_tab"] == "eda"
    first = outputs("?tab=kpi&country=29", None, None)
    assert first[f"{ids.APP_TABS}.active_tab"] == "kpi" and first[f"{ids.APP_DATASET_STORE}.data"] == KEY
