"""The app factory: the datasets, the shell, every tab's callbacks, the background manager."""

from __future__ import annotations

import logging

import dash
from dash import Input, Output, no_update

from dashboard import datasets as dataset_panel
from dashboard import filter_bar, ids, navigation
from dashboard.auth import init_auth, may_use_tab, visible_tabs
from dashboard.background import background_manager, on_callback_error
from dashboard.context import AppContext
from dashboard.layout import PRODUCT_NAME, shell
from dashboard.model_refresh import register_model_refresh
from dashboard.request_limits import bound_request_bodies
from dashboard.server_errors import register_error_handlers
from dashboard.tabs import TABS
from dashboard.tabs.leaderboard.training_panel import register_training_callbacks, training_panel
from ml.config import BUNDLED_DATASET_KEY, PROJECT_ROOT, Settings, get_settings
from ml.features.prepared import PreparedData
from ml.serving.datasets import DatasetStore

log = logging.getLogger(__name__)

HIDDEN = {"display": "none"}
TRAIN_PANEL_TAB = "leaderboard"


def render_tab(context: AppContext, tab_id: str | None, dataset: str | None = None) -> tuple:
    """The active tab's content for a dataset, and which shell parts (filter bar, Train panel) it shows."""
    tab = next((t for t in TABS if tab_id == t.TAB_ID), TABS[0])
    bar_style = {} if tab.USES_FILTERS else HIDDEN
    panel_style = {} if tab.TAB_ID == TRAIN_PANEL_TAB else HIDDEN
    return tab.layout(context, context.known(dataset)), bar_style, panel_style


def _register_shell_callbacks(app: dash.Dash, context: AppContext) -> None:
    @app.callback(
        Output(ids.APP_TAB_CONTENT, "children"),
        Output(ids.FILTER_BAR, "style"),
        Output(ids.TRAIN_PANEL, "style"),
        Input(ids.APP_TABS, "active_tab"),
        Input(ids.APP_DATASET_STORE, "data"),
    )
    def show_tab(tab_id, dataset):
        if dataset is None:
            return no_update, no_update, no_update  # the dataset is known once the URL is read
        return render_tab(context, tab_id if may_use_tab(tab_id) else None, dataset)  # a tab the role lacks: the first

    navigation.register_callbacks(app, context)
    filter_bar.register_callbacks(app, context)


REQUEST_OVERHEAD_BYTES = 1024 * 1024


def max_request_bytes(settings: Settings) -> int:
    """The largest HTTP request the app reads: one upload at the limit, base64-encoded, plus slack."""
    return settings.max_upload_bytes * 4 // 3 + REQUEST_OVERHEAD_BYTES


def create_app(settings: Settings | None = None, data: PreparedData | None = None) -> dash.Dash:
    """Build the app: the datasets (the bundled one prepared now, or ``data``), the layout and all callbacks."""
    settings = settings or get_settings()
    datasets = DatasetStore.for_settings(settings)
    if data is not None:
        datasets.remember(BUNDLED_DATASET_KEY, data)
    datasets.prepared(BUNDLED_DATASET_KEY)  # served from memory from the first request
    manager = background_manager(settings)  # diskcache in the cache folder, or Celery when REDIS_URL is set
    context = AppContext(settings=settings, datasets=datasets, background_manager=manager)
    app = dash.Dash(
        __name__,
        title=PRODUCT_NAME,
        assets_folder=str(PROJECT_ROOT / "assets"),
        serve_locally=True,
        suppress_callback_exceptions=True,  # tab content is rendered on demand
        background_callback_manager=manager,
        on_error=on_callback_error,  # a background job whose worker was lost is reported in its panel
        update_title=None,
    )
    # No request body may exceed what the largest allowed upload needs (base64 is 4/3 of the
    # bytes, plus the callback's JSON); 413 before reading more, for chunked bodies too.
    bound_request_bodies(app.server, max_request_bytes(settings))
    init_auth(app, settings, PRODUCT_NAME)  # login, roles and the check in front of every callback
    # A function, so every page load shows the registry and any running job as they are now.
    register_error_handlers(app.server)  # /_dash-component-suites/../../app.py: 404, not 500
    app.layout = lambda: shell(
        context,
        visible_tabs(TABS),
        training_panel(context) if may_use_tab(TRAIN_PANEL_TAB) else None,
        dataset_panel.panel(context),
    )
    _register_shell_callbacks(app, context)
    register_training_callbacks(app, context)
    register_model_refresh(app, context)
    dataset_panel.register_callbacks(app, context)
    for tab in TABS:
        tab.register_callbacks(app, context)
    app.context = context  # for tests and the benchmark
    return app
