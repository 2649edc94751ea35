"""The app shell: header with the dataset in use, the shared filter bar, the tabs."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard import ids
from dashboard.auth import user_menu
from dashboard.context import AppContext
from ml.data import schema as S

PRODUCT_NAME = "Clickstream conversion analytics"


def dataset_badge(context: AppContext) -> html.Div:
    info = context.data.info
    label_note = f"{info['label_title']}: {info['label_text']}"
    return html.Div(
        [
            html.Span(info["name"], className="fw-semibold"),
            html.Span(f" · {info['clicks']:,} clicks · {info['sessions']:,} sessions · "),
            html.Span(f"{info['first_date']:%d %b %Y} – {info['last_date']:%d %b %Y} · "),
            html.Span(info["label_title"], title=label_note, className="badge bg-warning text-dark"),
        ],
        id=ids.APP_DATASET_INFO,
        className="small dataset-info",
    )


def header(context: AppContext) -> dbc.Navbar:
    return dbc.Navbar(
        dbc.Container(
            [
                html.Div(
                    [html.Span(PRODUCT_NAME, className="navbar-brand mb-0 h1"), dataset_badge(context)],
                    className="d-flex flex-column",
                ),
                user_menu(),
            ],
            fluid=True,
        ),
        id=ids.APP_HEADER,
        color="primary",
        dark=True,
        className="mb-3",
    )


def _options(codes, names) -> list[dict]:
    return [{"label": names.get(int(c), f"code {c}"), "value": int(c)} for c in codes]


def _field(label: str, component: object, component_id: str, **width: int) -> dbc.Col:
    return dbc.Col([dbc.Label(label, html_for=component_id, className="small mb-0"), component], **width)


def _multi_dropdown(component_id: str, codes, names, placeholder: str) -> dcc.Dropdown:
    return dcc.Dropdown(id=component_id, options=_options(codes, names), multi=True, placeholder=placeholder)


def filter_bar(context: AppContext) -> dbc.Card:
    """Date range, countries, categories, colours: applied to the KPI and EDA tabs."""
    sessions = context.data.sessions
    info = context.data.info
    dates = dcc.DatePickerRange(
        id=ids.FILTER_DATES,
        min_date_allowed=info["first_date"],
        max_date_allowed=info["last_date"],
        initial_visible_month=info["last_date"],
        display_format="YYYY-MM-DD",
        start_date_placeholder_text="first day",
        end_date_placeholder_text="last day",
        clearable=True,
        first_day_of_week=1,
    )
    countries = sessions["country"].value_counts().index  # most sessions first
    categories = sorted(sessions["main_category"].unique())
    colours = sessions["main_colour"].value_counts().index
    return dbc.Card(
        dbc.CardBody(
            dbc.Row(
                [
                    _field("Dates", dates, ids.FILTER_DATES, lg=3, md=6),
                    _field(
                        "Countries",
                        _multi_dropdown(ids.FILTER_COUNTRIES, countries, S.COUNTRY_NAMES, "All countries"),
                        ids.FILTER_COUNTRIES,
                        lg=3,
                        md=6,
                    ),
                    _field(
                        "Main category",
                        _multi_dropdown(ids.FILTER_CATEGORIES, categories, S.CATEGORY_NAMES, "All categories"),
                        ids.FILTER_CATEGORIES,
                        lg=2,
                        md=4,
                    ),
                    _field(
                        "Main colour",
                        _multi_dropdown(ids.FILTER_COLOURS, colours, S.COLOUR_NAMES, "All colours"),
                        ids.FILTER_COLOURS,
                        lg=2,
                        md=4,
                    ),
                    dbc.Col(
                        [
                            dbc.Button(
                                "Reset filters", id=ids.FILTER_RESET, color="secondary", outline=True, size="sm"
                            ),
                            html.Div(id=ids.FILTER_SUMMARY, className="small text-muted mt-1"),
                        ],
                        lg=2,
                        md=4,
                        className="d-flex flex-column justify-content-end",
                    ),
                ],
                className="g-2 align-items-end",
            )
        ),
        id=ids.FILTER_BAR,
        className="mb-3 filter-bar",
    )


def shell(context: AppContext, tabs: list[tuple[str, str]], train_panel: object) -> html.Div:
    """Header, filter bar, tab strip, the Train panel and the content area the active tab renders into.

    The Train panel stays mounted on every tab (shown only with the leaderboard),
    so a running job keeps reporting and lands even if the user looks elsewhere.
    """
    return html.Div(
        [
            dcc.Location(id=ids.APP_URL, refresh=False),
            dcc.Store(id=ids.APP_MODELS_STORE, data=context.models.version()),
            dcc.Store(id=ids.APP_SEGMENT_STORE, storage_type="session"),
            # This browser tab's upload and scoring job; in the shell so they outlive a tab switch.
            dcc.Store(id=ids.SCORING_UPLOAD_STORE, storage_type="memory"),
            dcc.Store(id=ids.SCORING_RESULT_STORE, storage_type="memory"),
            dcc.Store(id=ids.SCORING_REQUEST_STORE, storage_type="memory"),
            header(context),
            dbc.Container(
                [
                    filter_bar(context),
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
