"""The app factory: data prepared once, the shell, every tab's callbacks, the background manager."""

from __future__ import annotations

import logging
from datetime import date

import dash
import diskcache
from dash import DiskcacheManager, Input, Output, ctx, no_update

from dashboard import ids
from dashboard.auth import init_auth, may_use_tab, visible_tabs
from dashboard.context import AppContext
from dashboard.layout import PRODUCT_NAME, shell
from dashboard.tabs import TAB_IDS, TABS
from dashboard.training_panel import register_training_callbacks, training_panel
from dashboard.url_state import ViewState, filter_from_inputs, parse_search, to_search
from ml.config import BUNDLED_DATA_NAME, PROJECT_ROOT, Settings, get_settings
from ml.features.prepared import PreparedData, prepare_file
from ml.serving.registry import registry_for

log = logging.getLogger(__name__)

FILTER_OUTPUTS = (
    (ids.FILTER_DATES, "start_date"),
    (ids.FILTER_DATES, "end_date"),
    (ids.FILTER_COUNTRIES, "value"),
    (ids.FILTER_CATEGORIES, "value"),
    (ids.FILTER_COLOURS, "value"),
)


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def filter_values(state: ViewState) -> tuple:
    """Component values for the filter bar from a view state (empty lists show as "all")."""
    f = state.filter
    return _iso(f.start), _iso(f.end), list(f.countries), list(f.categories), list(f.colours)


def sync_url(search: str | None, tab: str | None, *filter_inputs: object) -> tuple:
    """Keep the URL query and the view in step, in one callback so there is no cycle.

    On page load (or back/forward) the URL sets the tab and filters; after that,
    every change of tab or filter rewrites the URL without reloading the page.
    """
    if ctx.triggered_id in (None, ids.APP_URL):
        state = parse_search(search, TAB_IDS)
        return (no_update, state.tab, *filter_values(state))
    state = ViewState(tab=tab or TAB_IDS[0], filter=filter_from_inputs(*filter_inputs))
    new_search = to_search(state)
    unchanged = (no_update,) * (1 + len(FILTER_OUTPUTS))
    return (new_search if new_search != (search or "") else no_update, *unchanged)


def filter_summary(context: AppContext, *filter_inputs: object) -> str:
    filt = filter_from_inputs(*filter_inputs)
    shown = int(context.data.cube.loc[filt.mask(context.data.cube), "sessions"].sum())
    total = len(context.data.sessions)
    return f"{shown:,} of {total:,} sessions" if shown != total else f"all {total:,} sessions"


HIDDEN = {"display": "none"}
TRAIN_PANEL_TAB = "leaderboard"


def render_tab(context: AppContext, tab_id: str | None) -> tuple:
    """The active tab's content, and which shell parts (filter bar, Train panel) it shows."""
    tab = next((t for t in TABS if tab_id == t.TAB_ID), TABS[0])
    bar_style = {} if tab.USES_FILTERS else HIDDEN
    panel_style = {} if tab.TAB_ID == TRAIN_PANEL_TAB else HIDDEN
    return tab.layout(context), bar_style, panel_style


def _register_shell_callbacks(app: dash.Dash, context: AppContext) -> None:
    filter_inputs = [Input(i, p) for i, p in FILTER_OUTPUTS]

    @app.callback(
        Output(ids.APP_TAB_CONTENT, "children"),
        Output(ids.FILTER_BAR, "style"),
        Output(ids.TRAIN_PANEL, "style"),
        Input(ids.APP_TABS, "active_tab"),
    )
    def show_tab(tab_id):
        return render_tab(context, tab_id if may_use_tab(tab_id) else None)  # a tab the role lacks: the first

    app.callback(
        Output(ids.APP_URL, "search"),
        Output(ids.APP_TABS, "active_tab"),
        *[Output(i, p) for i, p in FILTER_OUTPUTS],
        Input(ids.APP_URL, "search"),
        Input(ids.APP_TABS, "active_tab"),
        *filter_inputs,
    )(sync_url)

    @app.callback(
        *[Output(i, p, allow_duplicate=True) for i, p in FILTER_OUTPUTS],
        Input(ids.FILTER_RESET, "n_clicks"),
        prevent_initial_call=True,
    )
    def reset_filters(_):
        return None, None, [], [], []

    @app.callback(Output(ids.FILTER_SUMMARY, "children"), *filter_inputs)
    def summarise_filter(*values):
        return filter_summary(context, *values)


REQUEST_OVERHEAD_BYTES = 1024 * 1024


def max_request_bytes(settings: Settings) -> int:
    """The largest HTTP request the app reads: one upload at the limit, base64-encoded, plus slack."""
    return settings.max_upload_bytes * 4 // 3 + REQUEST_OVERHEAD_BYTES


def create_app(settings: Settings | None = None, data: PreparedData | None = None) -> dash.Dash:
    """Build the app: prepare the data once, then the layout and all callbacks."""
    settings = settings or get_settings()
    if data is None:
        name = BUNDLED_DATA_NAME if settings.uses_bundled_data else settings.data_file.name
        data = prepare_file(settings.data_file, display_name=name)
    settings.cache_dir.mkdir(parents=True, exist_ok=True)
    manager = DiskcacheManager(diskcache.Cache(str(settings.cache_dir / "background")))
    context = AppContext(settings=settings, data=data, registry=registry_for(settings), background_manager=manager)
    app = dash.Dash(
        __name__,
        title=PRODUCT_NAME,
        assets_folder=str(PROJECT_ROOT / "assets"),
        serve_locally=True,
        suppress_callback_exceptions=True,  # tab content is rendered on demand
        background_callback_manager=manager,
        update_title=None,
    )
    init_auth(app, settings, PRODUCT_NAME)  # login, roles and the check in front of every callback
    # A function, so every page load shows the registry and any running job as they are now.
    # No request body may exceed what the largest allowed upload needs (base64 is 4/3 of the
    # bytes, plus the callback's JSON); Flask answers 413 before reading more.
    app.server.config["MAX_CONTENT_LENGTH"] = max_request_bytes(settings)
    app.layout = lambda: shell(
        context, visible_tabs(TABS), training_panel(context) if may_use_tab(TRAIN_PANEL_TAB) else None
    )
    _register_shell_callbacks(app, context)
    register_training_callbacks(app, context)
    for tab in TABS:
        tab.register_callbacks(app, context)
    app.context = context  # for tests and the benchmark
    return app
