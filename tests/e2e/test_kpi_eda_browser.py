"""The KPI and EDA tabs in a real browser: numbers, filters, cross-filtering, shared URLs."""

from __future__ import annotations

import io
import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from dashboard import ids
from dashboard.figures.kpi import CHOSEN, NOT_CHOSEN
from ml.config import get_settings
from ml.data.loading import load_events
from ml.data.synthetic_logs import multi_category_store_log
from ml.features import kpis
from ml.features.kpis import SessionFilter, session_kpis
from ml.features.prepared import prepare_file
from ml.features.sessions import session_features
from ml.serving.datasets import DatasetStore
from tests.e2e.conftest import save_screenshot, serve, wait_for_dash, watched_page

ALL = "/?dates=all"  # every date; the landing view is the latest 4 complete weeks
LANDING = SessionFilter(start=date(2008, 7, 14), end=date(2008, 8, 10))


@pytest.fixture(scope="module")
def sessions(bundled_clicks):
    return session_features(bundled_clicks)


def by_id(component_id) -> str:
    """A CSS selector for a component, string or pattern-matching ID (Dash writes the latter as sorted JSON)."""
    if isinstance(component_id, dict):
        return "[id='" + json.dumps(component_id, sort_keys=True, separators=(",", ":")) + "']"
    return f"#{component_id}"


COUNTRY_GRAPH = by_id(ids.kpi_breakdown("country"))
CATEGORY_GRAPH = by_id(ids.kpi_breakdown("main_category"))
COUNTRY_FILTER = by_id(ids.filter_dimension("country"))
CATEGORY_FILTER = by_id(ids.filter_dimension("main_category"))
KPI_GRAPHS = (
    f"#{ids.KPI_TREND_GRAPH}",
    f"#{ids.KPI_FUNNEL_GRAPH}",
    COUNTRY_GRAPH,
    CATEGORY_GRAPH,
    by_id(ids.kpi_breakdown("main_colour")),
)


def open_view(page, url: str) -> None:
    """Open a URL and wait until the KPI cards and every KPI graph are drawn."""
    page.goto(url)
    page.wait_for_selector(".kpi-card .kpi-value")
    for graph in KPI_GRAPHS:
        page.wait_for_selector(f"{graph} .main-svg")
    wait_for_dash(page)


def card_value(page, title: str) -> str:
    card = page.locator(".kpi-card", has=page.locator(".kpi-title", has_text=title)).first
    return card.locator(".kpi-value").inner_text().strip()


def expected_cards(sessions, filt: SessionFilter) -> dict[str, str]:
    """What the cards must show: the KPIs ml computes from session rows, formatted."""
    k = session_kpis(sessions, filt)
    return {
        "Sessions": f"{k['sessions']:,.0f}",
        "Clicks": f"{k['clicks']:,.0f}",
        "Bounce rate": f"{k['bounce_rate']:.1%}",
        "Conversion (proxy)": f"{k['conversion_rate']:.1%}",
        "Potential revenue": f"${k['revenue']:,.0f}",
    }


def assert_cards(page, sessions, filt: SessionFilter) -> None:
    for title, value in expected_cards(sessions, filt).items():
        assert card_value(page, title) == value, title


def set_dates(page, start: str, end: str) -> None:
    for selector, value in ((f"#{ids.FILTER_DATES}", start), (f"#{ids.FILTER_DATES}-end-date", end)):
        field = page.locator(selector)
        field.fill(value)
        field.press("Enter")
    page.keyboard.press("Escape")
    wait_for_dash(page)


def card_change(page, title: str) -> str:
    card = page.locator(".kpi-card", has=page.locator(".kpi-title", has_text=title)).first
    return card.locator(".kpi-footer").inner_text().strip()


def test_the_landing_view_compares_the_latest_four_weeks_with_the_four_before(page, app_server, sessions):
    open_view(page, app_server.url + "/")
    assert page.locator(f"#{ids.FILTER_DATES}").input_value() == "2008-07-14"
    assert page.locator(f"#{ids.FILTER_DATES}-end-date").input_value() == "2008-08-10"
    note = page.locator(f"#{ids.KPI_COMPARE_NOTE}").inner_text()
    assert "The latest 4 complete weeks, 14 Jul–10 Aug 2008; compared with the 4 complete weeks before" in note
    assert_cards(page, sessions, LANDING)
    june = session_kpis(sessions, SessionFilter(start=date(2008, 6, 16), end=date(2008, 7, 13)))
    now = session_kpis(sessions, LANDING)
    pp = (now["conversion_rate"] - june["conversion_rate"]) * 100
    sign = "+" if round(pp, 1) > 0 else "−"
    assert f"{sign}{abs(pp):.1f} pp from {june['conversion_rate']:.1%}" in card_change(page, "Conversion (proxy)")
    assert f"from {june['sessions']:,.0f}" in card_change(page, "Sessions")
    assert "no earlier period" not in page.locator(f"#{ids.KPI_CARDS}").inner_text()
    assert "Trend alerts:" in page.locator(f"#{ids.KPI_ALERTS}").inner_text()
    save_screenshot(page, "kpi")


def test_all_dates_show_the_whole_dataset(page, app_server, sessions):
    open_view(page, app_server.url + ALL)
    assert card_value(page, "Sessions") == "24,026"
    assert card_value(page, "Clicks") == "165,474"
    assert_cards(page, sessions, SessionFilter())
    header = page.locator(f"#{ids.APP_DATASET_INFO}").inner_text()
    assert "24,026 sessions" in header and "165,474 events" in header and "Conversion (proxy)" in header
    assert page.locator(f"#{ids.FILTER_DATES}").get_attribute("placeholder") == "YYYY-MM-DD"  # the format to type


def test_a_period_just_after_the_data_starts_shows_no_change_over_missing_days(page, app_server, sessions):
    open_view(page, app_server.url + "/?from=2008-04-10&to=2008-05-10")
    cards = page.locator(f"#{ids.KPI_CARDS}").inner_text()
    assert "122.6%" not in cards
    assert card_change(page, "Sessions") == "not compared: the data covers 9 of the 31 days before"
    covered = session_kpis(sessions, SessionFilter(start=date(2008, 4, 1), end=date(2008, 4, 9)))
    assert f"from {covered['conversion_rate']:.1%}" in card_change(page, "Conversion (proxy)")
    assert "only for 9 days" in page.locator(f"#{ids.KPI_COMPARE_NOTE}").inner_text()


def test_changing_the_date_filter_changes_the_cards(page, app_server, sessions):
    open_view(page, app_server.url + ALL)
    set_dates(page, "2008-06-01", "2008-06-30")
    june = SessionFilter(start=date(2008, 6, 1), end=date(2008, 6, 30))
    assert card_value(page, "Sessions") != "24,026"
    assert_cards(page, sessions, june)
    assert "from=2008-06-01" in page.url and "to=2008-06-30" in page.url
    assert (
        "compared with the 30 days before, 02 May–31 May 2008" in page.locator(f"#{ids.KPI_COMPARE_NOTE}").inner_text()
    )


def test_dates_typed_with_slashes_are_read_as_iso(page, app_server, sessions):
    open_view(page, app_server.url + ALL)
    set_dates(page, "2008/06/01", "2008.6.30")
    assert page.locator(f"#{ids.FILTER_DATES}").input_value() == "2008-06-01"
    assert "from=2008-06-01" in page.url and "to=2008-06-30" in page.url
    assert_cards(page, sessions, SessionFilter(start=date(2008, 6, 1), end=date(2008, 6, 30)))


def test_the_trend_frequency_and_breakdowns_live_in_the_url(page, app_server):
    page.goto(app_server.url + "/?from=2008-04-10&to=2008-05-10&freq=W&by=country,main_colour")
    for graph in (f"#{ids.KPI_TREND_GRAPH}", COUNTRY_GRAPH, by_id(ids.kpi_breakdown("main_colour"))):
        page.wait_for_selector(f"{graph} .main-svg")
    wait_for_dash(page)
    assert page.locator(f"#{ids.KPI_TREND_FREQ} input[value='W']").is_checked()
    assert page.locator(CATEGORY_GRAPH).count() == 0 and page.locator(COUNTRY_GRAPH).count() == 1
    patterns = page.locator(f"#{ids.KPI_TREND_GRAPH} .js-plotly-plot").evaluate(
        "el => el._fullData[0].marker.pattern.shape"
    )
    assert patterns[0] == "/" and patterns[-1] == "/" and set(patterns[1:-1]) == {""}  # partial weeks hatched
    page.locator(f"#{ids.KPI_TREND_FREQ} label", has_text="Daily").click()
    wait_for_dash(page)
    assert "freq=" not in page.url and "by=country,main_colour" in page.url and "from=2008-04-10" in page.url


def test_clicking_a_bar_filters_the_whole_tab(page, app_server, sessions):
    open_view(page, app_server.url + ALL)
    labels = page.locator(f"{CATEGORY_GRAPH} .js-plotly-plot").evaluate("el => el._fullData[0].y")
    index = labels.index("skirts")
    point = page.locator(f"{CATEGORY_GRAPH} g.trace.bars g.point").nth(index)
    point.scroll_into_view_if_needed()
    bar = point.bounding_box()
    page.mouse.click(bar["x"] + bar["width"] / 2, bar["y"] + bar["height"] / 2)  # as a user clicks
    wait_for_dash(page)
    assert "skirts" in page.locator(CATEGORY_FILTER).inner_text()
    assert "category=2" in page.url
    assert_cards(page, sessions, SessionFilter(main_category=(2,)))
    # The other breakdowns follow the filter too: country bars now sum to the skirt sessions.
    country_total = page.locator(f"{COUNTRY_GRAPH} .js-plotly-plot").evaluate(
        "el => el._fullData[0].x.reduce((a, b) => a + b, 0)"
    )
    skirts = session_kpis(sessions, SessionFilter(main_category=(2,)))["sessions"]
    assert country_total <= skirts and country_total > 0.9 * skirts  # top-12 countries hold nearly all
    # The clicked breakdown keeps every bar: skirts highlighted, the others grey.
    bars = page.locator(f"{CATEGORY_GRAPH} .js-plotly-plot").evaluate(
        "el => [el._fullData[0].y, el._fullData[0].marker.color]"
    )
    colours = dict(zip(*bars, strict=True))
    assert set(colours) == {"trousers", "skirts", "blouses", "sale"}
    assert colours["skirts"] == CHOSEN and colours["trousers"] == NOT_CHOSEN
    save_screenshot(page, "kpi-cross-filter")


def test_the_csv_downloads_say_what_they_hold(page, app_server):
    open_view(page, app_server.url + "/?from=2008-05-01&to=2008-05-31&country=29")
    with page.expect_download(timeout=30_000) as info:
        page.locator(f"#{ids.KPI_EXPORT_BUTTON}").click()
    download = info.value
    assert download.suggested_filename == "kpi-breakdown_bundled_2008-05-01_2008-05-31_country-29.csv"
    text = Path(download.path()).read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[2] == "# Period: 2008-05-01 to 2008-05-31" and "Country = Poland" in lines[3]
    table = pd.read_csv(io.StringIO(text), comment="#")
    assert (table["share_pct"] == table["share_pct"].round(1)).all()
    with page.expect_download(timeout=30_000) as info:
        page.locator(f"#{ids.KPI_ALERTS_BUTTON}").click()
    alerts = info.value
    assert alerts.suggested_filename.startswith("kpi-alerts_bundled_2008-05-01_2008-05-31")
    assert "# Rule: |robust z| >= 3.5" in Path(alerts.path()).read_text(encoding="utf-8")


def test_the_tabs_switch_with_the_arrow_keys(page, app_server):
    open_view(page, app_server.url + ALL)
    active = f"#{ids.APP_TABS} .nav-link.active"
    page.wait_for_selector(f"{active}[tabindex='0']")  # the active tab is in the Tab order, the others not
    tabs = page.locator(f"#{ids.APP_TABS} .nav-link").count()
    assert page.locator(f"#{ids.APP_TABS} .nav-link[tabindex='-1']").count() == tabs - 1
    page.locator(active).focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_selector(f"{active}:text-is('EDA')", timeout=30_000)
    page.wait_for_url("**tab=eda**", timeout=30_000)
    page.keyboard.press("ArrowLeft")
    page.wait_for_selector(f"{active}:text-is('KPIs')", timeout=30_000)
    wait_for_dash(page)


@pytest.fixture(scope="module")
def shop_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("shop-data") / "shop-2019-10.csv"
    multi_category_store_log(20_000, seed=1).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def shop_server(tmp_path_factory, shop_file, chromium_path):
    """An app whose dataset list holds the shop log (added as the data control adds it), beside the bundled data."""
    root = tmp_path_factory.mktemp("shop-app")
    settings = get_settings().with_overrides(datasets_dir=root / "datasets")
    DatasetStore.for_settings(settings).add(load_events(shop_file), "Shop October 2019", key="shop")
    yield from serve(root, {"CLICKSTREAM_DATASETS_DIR": str(root / "datasets")})


@pytest.fixture
def shop_page(browser, shop_server):
    yield from watched_page(browser, shop_server)


def test_the_purchase_funnel_ends_on_the_conversion_card(shop_page, shop_server, shop_file):
    page = shop_page
    page.goto(shop_server.url + "/?dataset=shop")
    page.wait_for_selector(".kpi-card .kpi-value")
    page.wait_for_selector(f"#{ids.KPI_FUNNEL_GRAPH} .main-svg")
    wait_for_dash(page)
    data = prepare_file(shop_file)
    start, end = (
        page.locator(f"#{ids.FILTER_DATES}").input_value(),
        page.locator(f"#{ids.FILTER_DATES}-end-date").input_value(),
    )
    assert (start, end) == ("2019-10-21", "2019-10-27")  # 3 complete weeks: the latest one against the one before
    filt = SessionFilter(start=date.fromisoformat(start), end=date.fromisoformat(end))
    expected = session_kpis(data.sessions, filt)
    assert card_value(page, "Conversion (purchases)") == f"{expected['conversion_rate']:.1%}"
    assert " pp from " in card_change(page, "Conversion (purchases)")
    steps = page.locator(f"#{ids.KPI_FUNNEL_GRAPH} .js-plotly-plot").evaluate(
        "el => [el._fullData[0].y, el._fullData[0].x]"
    )
    assert list(steps[0]) == ["Sessions", "Viewed a product", "Added to cart", "Purchased (converted)"]
    assert f"{steps[1][-1] / steps[1][0]:.1%}" == card_value(page, "Conversion (purchases)")
    assert steps[1][-1] == kpis.funnel(data.cube, filt)["sessions"].iloc[-1]
    save_screenshot(page, "kpi-purchases")


def test_a_shared_url_reopens_the_same_view(page, app_server, sessions):
    open_view(page, app_server.url + "/?from=2008-05-01&to=2008-05-31&country=29,9&category=1,3")
    assert page.locator(f"#{ids.FILTER_DATES}").input_value() == "2008-05-01"
    assert page.locator(f"#{ids.FILTER_DATES}-end-date").input_value() == "2008-05-31"
    countries = page.locator(COUNTRY_FILTER).inner_text()
    assert "Poland" in countries and "Czech Republic" in countries
    categories = page.locator(CATEGORY_FILTER).inner_text()
    assert "trousers" in categories and "blouses" in categories
    may = SessionFilter(start=date(2008, 5, 1), end=date(2008, 5, 31), country=(9, 29), main_category=(1, 3))
    assert_cards(page, sessions, may)


def test_the_eda_tab_renders_every_figure(page, app_server):
    open_view(page, app_server.url + "/")
    page.get_by_role("tab", name="EDA").click()
    page.wait_for_selector(f"#{ids.APP_TAB_CONTENT} .js-plotly-plot .main-svg")
    wait_for_dash(page)
    assert "tab=eda" in page.url
    graphs = page.locator(f"#{ids.APP_TAB_CONTENT} .js-plotly-plot")
    assert graphs.count() >= 8
    traces = page.evaluate(
        f"[...document.querySelectorAll('#{ids.APP_TAB_CONTENT} .js-plotly-plot')]"
        ".map(g => [g.parentElement.id, g.data.length])"
    )
    assert all(n > 0 for _, n in traces), traces
    assert "converted" in page.locator(f"#{ids.APP_TAB_CONTENT}").inner_text().lower()
    left_out = page.locator(f"#{ids.EDA_LEFT_OUT_NOTE}").inner_text()
    assert "Events by type: left out" in left_out and "Sessions by hour: left out" in left_out  # views only, no times
    assert page.locator(f"#{ids.EDA_DIMENSION_GRAPH}").is_visible()
    save_screenshot(page, "eda")


def test_a_bar_of_the_eda_dimension_chart_filters_by_that_dimension(page, app_server):
    page.goto(app_server.url + "/?tab=eda")
    graph = f"#{ids.EDA_DIMENSION_GRAPH}"
    page.wait_for_selector(f"{graph} .main-svg")
    wait_for_dash(page)
    labels = page.locator(f"{graph} .js-plotly-plot").evaluate("el => el._fullData[0].y")
    point = page.locator(f"{graph} g.trace.bars g.point").nth(labels.index("Poland"))
    point.scroll_into_view_if_needed()
    bar = point.bounding_box()
    # Near the bar's start: the longest bar's middle lies under the chart's toolbar in this narrow panel.
    page.mouse.click(bar["x"] + min(10, bar["width"] / 2), bar["y"] + bar["height"] / 2)
    wait_for_dash(page)
    assert "Poland" in page.locator(COUNTRY_FILTER).inner_text()
    assert "country=29" in page.url


def test_every_tab_opens_with_a_clean_console(page, app_server):
    """With no model trained yet, every tab renders something and nothing errors."""
    open_view(page, app_server.url + "/")
    for name in ("EDA", "Segments", "Model leaderboard", "What-if", "Batch scoring", "KPIs"):
        page.get_by_role("tab", name=name).click()
        wait_for_dash(page, timeout_ms=60_000)
        assert page.locator(f"#{ids.APP_TAB_CONTENT}").inner_text().strip(), name
    # The page fixture fails the test on any console error or request to another host.
