"""The app shell: header with the data control, the shared filter bar, the tabs.

The data control names the dataset in use (name, profile, events, sessions,
dates, the conversion label) and lists the datasets to switch to, the bundled
one first; "Add data" opens the add-data panel for analysts. What the shell
shows of a dataset is rendered by callbacks, so a page opened on
``?dataset=...`` shows that dataset from the start.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard import filter_bar, ids
from dashboard.auth import user_menu
from dashboard.context import AppContext
from dashboard.model_refresh import POLL_MS as MODELS_POLL_MS
from ml.serving.datasets import DatasetInfo

PRODUCT_NAME = "Clickstream conversion analytics"


def dataset_option(info: DatasetInfo) -> dict[str, str]:
    """One entry of the dataset dropdown."""
    return {"label": f"{info.name} · {info.profile_title} · {info.sessions:,} sessions", "value": info.key}


def dataset_options(context: AppContext) -> list[dict[str, str]]:
    return [dataset_option(info) for info in context.datasets.list()]


def label_badge(title: str, text: str, is_proxy: bool) -> html.Span:
    """The conversion label in use, named as a proxy or as purchases wherever a conversion number appears."""
    colour = "badge bg-warning text-dark" if is_proxy else "badge bg-light text-dark"
    return html.Span(title, title=text, className=f"{colour} label-badge")


def dataset_summary(context: AppContext, key: str) -> list:
    """The line under the data control: profile, events, sessions, dates, label."""
    data = context.dataset(key)
    info = data.info
    counts = data.once("event-counts", lambda d: d.loaded.event_counts())  # counted once per dataset
    kinds = ", ".join(f"{counts[k]:,} {k}s" for k in ("view", "cart", "purchase") if counts.get(k))
    return [
        html.Span(info["profile_title"], className="fw-semibold"),
        html.Span(f" · {info['clicks']:,} events ({kinds}) · {info['sessions']:,} sessions · "),
        html.Span(f"{info['first_date']:%d %b %Y} – {info['last_date']:%d %b %Y} · "),
        label_badge(info["label_title"], f"{info['label_title']}: {info['label_text']}", data.definition.is_proxy),
    ]


def data_control(can_add: bool = True) -> html.Div:
    """The dataset dropdown, its summary line and the Add data button (options filled by a callback)."""
    return html.Div(
        [
            html.Div(
                [
                    dbc.Label("Dataset", html_for=ids.DATA_SELECT, className="visually-hidden"),
                    dcc.Dropdown(
                        id=ids.DATA_SELECT,
                        clearable=False,
                        searchable=False,
                        className="data-select",
                        style={"minWidth": "22rem"},
                    ),
                    dbc.Button("Add data", id=ids.DATA_ADD_BUTTON, color="light", outline=True, size="sm")
                    if can_add
                    else None,
                ],
                className="d-flex align-items-center gap-2",
            ),
            html.Div(id=ids.DATA_INFO, className="small dataset-info mt-1", **{"aria-live": "polite"}),
        ],
        id=ids.APP_DATASET_INFO,
    )


def theme_toggle() -> html.Button:
    """Light/dark theme switch; assets/30-theme.js applies and remembers it and keeps aria-pressed in step."""
    return html.Button(
        "Dark theme",
        id=ids.THEME_TOGGLE,
        type="button",
        className="btn btn-sm btn-outline-light theme-toggle",
        title="Switch between the light and the dark theme (remembered in this browser)",
    )


def header(can_add: bool = True) -> dbc.Navbar:
    return dbc.Navbar(
        dbc.Container(
            [
                html.Div(
                    [html.Span(PRODUCT_NAME, className="navbar-brand mb-0 h1"), data_control(can_add)],
                    className="d-flex flex-column",
                ),
                html.Div([theme_toggle(), user_menu()], className="d-flex align-items-center gap-2"),
            ],
            fluid=True,
        ),
        id=ids.APP_HEADER,
        color="primary",
        dark=True,
        className="mb-3",
    )


def shell(context: AppContext, tabs: list[tuple[str, str]], train_panel: object, data_panel: object = None) -> html.Div:
    """Header, filter bar, tab strip, the Train panel and the content area the active tab renders into.

    The Train panel stays mounted on every tab (shown only with the leaderboard),
    so a running job keeps reporting and lands even if the user looks elsewhere. So does the
    add-data panel (``dashboard.datasets``), for the roles that may add data.
    """
    return html.Div(
        [
            dcc.Location(id=ids.APP_URL, refresh=False),
            dcc.Store(id=ids.APP_DATASET_STORE, storage_type="memory"),
            dcc.Store(id=ids.APP_MODELS_STORE, data=context.registry_for().version()),
            dcc.Interval(id=ids.APP_MODELS_POLL, interval=MODELS_POLL_MS),
            dcc.Store(id=ids.APP_SEGMENT_STORE, storage_type="session"),
            # This browser tab's upload and scoring job; in the shell so they outlive a tab switch.
            dcc.Store(id=ids.SCORING_UPLOAD_STORE, storage_type="memory"),
            dcc.Store(id=ids.SCORING_RESULT_STORE, storage_type="memory"),
            dcc.Store(id=ids.SCORING_REQUEST_STORE, storage_type="memory"),
            header(can_add=data_panel is not None),
            data_panel,
            dbc.Container(
                [
                    filter_bar.bar(),
                    dbc.Tabs(
                        [dbc.Tab(label=label, tab_id=tab_id) for tab_id, label in tabs],
                        id=ids.APP_TABS,
                        active_tab=tabs[0][0],
                        className="mb-3",
                    ),
                    html.Div(train_panel, id=ids.TRAIN_PANEL, style={"display": "none"}),
                    html.Div(id=ids.APP_TAB_CONTENT),
                ],
                fluid=True,
                className="pb-4",
            ),
        ]
    )
