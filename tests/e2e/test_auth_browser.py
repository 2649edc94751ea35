"""Login and roles in a real browser: the login form, a viewer's tabs, an analyst's, and Log out.

The app has a users file, so it asks for a login; every callback the page makes
afterwards must pass the server's role check (a 401 or 403 would show in the
browser console, which the page watch fails on).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ml.serving.users import ANALYST, VIEWER, UserStore
from tests.e2e.conftest import AppServer, save_screenshot, serve, wait_for_dash, watched_page

PASSWORD = "browser test password"
VIEWER_TABS = ["KPIs", "EDA", "Segments", "Products", "What-if"]
ALL_TABS = ["KPIs", "EDA", "Segments", "Products", "Model leaderboard", "What-if", "Batch scoring"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, chromium_path: str) -> Iterator[AppServer]:
    tmp = tmp_path_factory.mktemp("auth-app")
    store = UserStore(tmp / "users.json")  # the file start_app points the app at
    store.add("vera", VIEWER, PASSWORD)
    store.add("ann", ANALYST, PASSWORD)
    yield from serve(tmp)


@pytest.fixture
def page(browser, server: AppServer):
    yield from watched_page(browser, server)


def log_in(page, server: AppServer, name: str, path: str = "/") -> None:
    page.goto(server.url + path)
    assert "/login" in page.url
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_selector(".nav-tabs")
    wait_for_dash(page)


def tab_labels(page) -> list[str]:
    return [t.strip() for t in page.locator(".nav-tabs .nav-link").all_inner_texts()]


def test_a_viewer_logs_in_sees_the_viewer_tabs_and_logs_out(page, server: AppServer):
    page.goto(server.url + "/")
    assert page.url.startswith(server.url + "/login")
    page.get_by_label("User name").focus()
    save_screenshot(page, "login")
    log_in(page, server, "vera", "/?tab=eda")
    assert page.url.endswith("/?tab=eda")  # back where the login was asked for
    assert tab_labels(page) == VIEWER_TABS
    assert page.locator(".user-menu").inner_text().replace("\n", " ").startswith("vera · viewer")
    assert page.locator("#train-start-button").count() == 0
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/login")
    page.goto(server.url + "/")
    assert "/login" in page.url  # the session is over


def test_a_viewer_sent_to_an_analyst_tab_gets_the_kpis(page, server: AppServer):
    log_in(page, server, "vera", "/?tab=leaderboard")
    assert tab_labels(page) == VIEWER_TABS
    assert page.locator("#kpi-cards-row").count() == 1
    assert page.locator("#leaderboard-summary-div").count() == 0


def test_an_analyst_sees_every_tab_and_the_leaderboard_works(page, server: AppServer):
    log_in(page, server, "ann")
    assert tab_labels(page) == ALL_TABS
    page.get_by_role("tab", name="Model leaderboard").click()
    page.wait_for_selector("#leaderboard-summary-div")
    wait_for_dash(page)
    assert page.locator("#train-start-button").is_visible()
    page.get_by_role("tab", name="Batch scoring").click()
    page.wait_for_selector("#scoring-file-upload")
    wait_for_dash(page)
