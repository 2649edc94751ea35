"""The app shell: factory, settings, IDs, URL state, tab rendering."""

from __future__ import annotations

import re
from datetime import date

import pytest

from dashboard import datasets as dataset_panel
from dashboard import filter_bar, ids
from dashboard.app_factory import max_request_bytes, render_tab
from dashboard.datasets.layout import event_value_rows
from dashboard.layout import shell
from dashboard.tabs import TAB_IDS, TABS
from dashboard.tabs.leaderboard.training_panel import training_panel
from dashboard.url_state import ViewState, parse_search, to_search
from ml.config import BUNDLED_DATASET_KEY, get_settings
from ml.features.kpis import SessionFilter

ID_PATTERN = re.compile(r"^[a-z]+(-[a-z0-9]+)+$")


def _collect_ids(component, found: list) -> list:
    component_id = getattr(component, "id", None)
    if component_id is not None:
        found.append(component_id)
    children = getattr(component, "children", None)
    if children is None:
        return found
    for child in children if isinstance(children, list | tuple) else [children]:
        if hasattr(child, "to_plotly_json"):
            _collect_ids(child, found)
    return found


SHELL_PARTS = ("app", "data", "filter", "train")


def all_layout_ids(context) -> list:
    tabs = [(t.TAB_ID, t.LABEL) for t in TABS]
    found = _collect_ids(shell(context, tabs, training_panel(context), dataset_panel.panel(context)), [])
    _collect_ids(event_value_rows("event", [["view", 3], ["cart", 1]], ["view", "cart"]), found)
    for field in filter_bar.dimension_fields(context.dataset(), ViewState()):
        _collect_ids(field, found)
    for tab in TABS:
        _collect_ids(tab.layout(context, BUNDLED_DATASET_KEY), found)
    return found


def test_component_ids_are_unique_across_all_layouts(context):
    found = [str(i) for i in all_layout_ids(context)]
    duplicates = {i for i in found if found.count(i) > 1}
    assert not duplicates


def test_component_ids_come_from_the_ids_module_and_follow_the_naming_rule(context):
    declared = {v for k, v in vars(ids).items() if k.isupper() and isinstance(v, str)}
    for component_id in all_layout_ids(context):
        if isinstance(component_id, dict):
            assert component_id["type"].startswith(tuple(f"{t}-" for t in (*TAB_IDS, *SHELL_PARTS))), component_id
            continue
        assert component_id in declared, f"{component_id} is not a constant in dashboard/ids.py"
        assert ID_PATTERN.match(component_id), component_id


def test_the_factory_builds_an_app_with_a_wsgi_server_and_every_tab(app):
    assert app.server is not None and app.title == "Clickstream conversion analytics"
    assert [t.TAB_ID for t in TABS] == ["kpi", "eda", "segments", "products", "leaderboard", "whatif", "scoring"]
    client = app.server.test_client()
    assert client.get("/").status_code == 200
    assert client.get("/assets/00-bootswatch-cerulean-5.3.8.min.css").status_code == 200


def test_the_served_page_references_no_other_host(app):
    page = app.server.test_client().get("/").get_data(as_text=True)
    urls = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert urls and all(u.startswith("/") for u in urls), urls


def test_safe_defaults_bind_locally_with_debug_off(monkeypatch):
    for name in ("HOST", "PORT", "DASH_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    settings = get_settings()
    assert (settings.host, settings.port, settings.debug) == ("127.0.0.1", 8050, False)
    assert settings.max_upload_bytes == 50 * 1024 * 1024


def test_environment_overrides_host_port_debug_and_paths(monkeypatch, tmp_path):
    monkeypatch.setenv("HOST", "0.0.0.0")
    monkeypatch.setenv("PORT", "9001")
    monkeypatch.setenv("DASH_DEBUG", "true")
    monkeypatch.setenv("CLICKSTREAM_MODELS_DIR", str(tmp_path / "m"))
    monkeypatch.setenv("CLICKSTREAM_CACHE_DIR", str(tmp_path / "c"))
    monkeypatch.setenv("CLICKSTREAM_DATA", str(tmp_path / "clicks.parquet"))
    settings = get_settings()
    assert (settings.host, settings.port, settings.debug) == ("0.0.0.0", 9001, True)
    assert settings.models_dir == tmp_path / "m" and settings.cache_dir == tmp_path / "c"
    assert settings.data_file == tmp_path / "clicks.parquet" and not settings.uses_bundled_data


def test_view_state_round_trips_through_the_url():
    state = ViewState(
        tab="eda",
        filter=SessionFilter(start=date(2008, 5, 1), end=date(2008, 5, 31), country=(9, 29), main_category=(1,)),
    )
    search = to_search(state)
    assert search == "?tab=eda&from=2008-05-01&to=2008-05-31&country=9,29&category=1"
    assert parse_search(search, TAB_IDS) == state
    assert to_search(ViewState()) == ""


def test_the_dataset_and_its_own_dimensions_are_in_the_url():
    state = ViewState(dataset="shop-oct", filter=SessionFilter(main_brand=(3, 7), main_category=(2,)))
    search = to_search(state)
    assert search == "?dataset=shop-oct&brand=3,7&category=2"
    assert parse_search(search, TAB_IDS, ("main_category", "main_brand")) == state


def test_a_damaged_url_falls_back_to_defaults_instead_of_failing():
    state = parse_search("?tab=nope&from=2008-13-45&country=x,29,&colour=", TAB_IDS)
    assert state.tab == "kpi"
    assert state.filter == SessionFilter(country=(29,))


def test_the_filter_bar_shows_the_url_filter_and_reads_it_back(context):
    state = parse_search("?from=2008-06-01&to=2008-06-30&country=29", TAB_IDS)
    dropdowns = [field.children[1] for field in filter_bar.dimension_fields(context.dataset(), state)]
    assert [d.id["name"] for d in dropdowns] == ["country", "main_category", "main_colour"]
    assert [d.value for d in dropdowns] == [[29], [], []]
    _, _, start, end, _ = filter_bar.date_props(context.dataset(), state)
    assert filter_bar.read(start, end, [d.value for d in dropdowns], [d.id for d in dropdowns]) == state.filter


@pytest.mark.parametrize("tab_id", TAB_IDS)
def test_every_tab_renders_and_shows_only_its_shell_parts(context, tab_id):
    content, bar_style, panel_style = render_tab(context, tab_id)
    assert content.to_plotly_json()["props"], tab_id
    assert (bar_style == {}) == (tab_id in ("kpi", "eda", "products"))
    assert (panel_style == {}) == (tab_id == "leaderboard")


def test_requests_larger_than_the_biggest_allowed_upload_are_refused_unread(app, dash_settings):
    limit = max_request_bytes(dash_settings)
    assert app.server.config["MAX_CONTENT_LENGTH"] == limit
    assert limit > dash_settings.max_upload_bytes * 4 // 3  # a file at the upload limit still fits
    client = app.server.test_client()
    too_big = b"x" * (limit + 1)
    response = client.post("/_dash-update-component", data=too_big, content_type="application/json")
    assert response.status_code == 413
