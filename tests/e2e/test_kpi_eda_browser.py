"""The KPI and EDA tabs in a real browser: numbers, filters, cross-filtering, shared URLs."""

from __future__ import annotations

import json
from datetime import date

import pytest

from dashboard import ids
from ml.features.kpis import SessionFilter, session_kpis
from ml.features.sessions import session_features
from tests.e2e.conftest import save_screenshot, wait_for_dash


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


def test_app_starts_and_the_kpi_tab_shows_the_whole_dataset(page, app_server, sessions):
    open_view(page, app_server.url + "/")
    assert card_value(page, "Sessions") == "24,026"
    assert card_value(page, "Clicks") == "165,474"
    assert_cards(page, sessions, SessionFilter())
    header = page.locator(f"#{ids.APP_DATASET_INFO}").inner_text()
    assert "24,026 sessions" in header and "165,474 events" in header and "Conversion (proxy)" in header
    save_screenshot(page, "kpi")


def test_changing_the_date_filter_changes_the_cards(page, app_server, sessions):
    open_view(page, app_server.url + "/")
    set_dates(page, "2008-06-01", "2008-06-30")
    june = SessionFilter(start=date(2008, 6, 1), end=date(2008, 6, 30))
    assert card_value(page, "Sessions") != "24,026"
    assert_cards(page, sessions, june)
    assert "from=2008-06-01" in page.url and "to=2008-06-30" in page.url
    assert "vs 02 May–31 May" in page.locator(f"#{ids.KPI_CARDS}").inner_text()


def test_clicking_a_bar_filters_the_whole_tab(page, app_server, sessions):
    open_view(page, app_server.url + "/")
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
