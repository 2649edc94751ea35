"""EDA tab: distributions, heatmaps, top products and sessions by country and weekday, all filtered.

Every figure reads the EDA cubes of ``ml.eda`` (built once per data set, warmed
in the background when the app starts), so a filter change costs the number of
distinct cube keys, not the number of clicks. A note says which columns make
the label and which features the models may use.
"""

from __future__ import annotations

from collections.abc import Callable

import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import Input, Output, State, html, no_update

from dashboard import filter_bar, ids
from dashboard.components import graph_panel
from dashboard.context import AppContext
from dashboard.figures.eda import (
    category_colour_figure,
    correlation_figure,
    page_location_figure,
    price_figure,
    sessions_and_rate_figure,
    top_products_figure,
)
from dashboard.figures.kpi import breakdown_figure
from dashboard.tabs.kpi import toggle_code
from ml.config import BUNDLED_DATASET_KEY
from ml.data import schema as S
from ml.features import eda, kpis
from ml.features.kpis import SessionFilter
from ml.features.window import WINDOW_FEATURES

TAB_ID = "eda"
LABEL = "EDA"
USES_FILTERS = True

NORMALISE = "share"
COUNTS = "views"


# ---------------------------------------------------------------- views (callback bodies)
def _title(context: AppContext) -> str:
    return context.data.definition.title


def price_view(context: AppContext, filt: SessionFilter) -> go.Figure:
    return price_figure(eda.price_distribution(eda.eda_cubes(context.data), filt))


def session_length_view(context: AppContext, filt: SessionFilter) -> go.Figure:
    table = eda.session_lengths(eda.eda_cubes(context.data), filt)
    return sessions_and_rate_figure(table, "Clicks in the session", "clicks", _title(context))


def page_location_view(context: AppContext, filt: SessionFilter) -> go.Figure:
    return page_location_figure(eda.page_location(eda.eda_cubes(context.data), filt))


def category_colour_view(context: AppContext, filt: SessionFilter, mode: str | None = NORMALISE) -> go.Figure:
    table = eda.category_colour(eda.eda_cubes(context.data), filt)
    return category_colour_figure(table, normalise=mode != COUNTS)


def correlation_view(context: AppContext, filt: SessionFilter) -> go.Figure:
    return correlation_figure(eda.correlation(eda.eda_cubes(context.data), filt))


def top_products_view(context: AppContext, filt: SessionFilter, by: str | None = "views") -> go.Figure:
    by = by if by in eda.TOP_METRICS else "views"
    table = eda.top_products(eda.eda_cubes(context.data), filt, by=by)
    return top_products_figure(table, by, eda.MIN_REVIEW_SESSIONS)


def country_view(context: AppContext, filt: SessionFilter) -> go.Figure:
    table = kpis.breakdown(eda.eda_cubes(context.data).keys, filt, "country")
    return breakdown_figure(table, filt.codes_for("country"), _title(context), top=15)


def weekday_view(context: AppContext, filt: SessionFilter) -> go.Figure:
    table = eda.sessions_by_weekday(eda.eda_cubes(context.data), filt)
    table["label"] = table["label"].str[:3]  # Mon, Tue, ...: fits a narrow panel without rotating
    return sessions_and_rate_figure(table, "Day of the week", "", _title(context))


FILTER_ONLY_VIEWS: tuple[tuple[str, Callable[[AppContext, SessionFilter], go.Figure]], ...] = (
    (ids.EDA_PRICE_GRAPH, price_view),
    (ids.EDA_SESSION_LENGTH_GRAPH, session_length_view),
    (ids.EDA_PAGE_LOCATION_GRAPH, page_location_view),
    (ids.EDA_CORRELATION_GRAPH, correlation_view),
    (ids.EDA_COUNTRY_GRAPH, country_view),
    (ids.EDA_WEEKDAY_GRAPH, weekday_view),
)


# ---------------------------------------------------------------- layout
def label_note(context: AppContext) -> dbc.Card:
    """Which columns define the label in use, which are not labels, and what the models may read."""
    definition, window = context.data.definition, context.settings.window
    column = {name: html.Code(S.DISPLAY_HEADER[name]) for name in S.DISPLAY_HEADER}
    if definition.is_proxy:
        label = [
            html.Li(
                [
                    html.Strong("Converted: "),
                    "the session views a clothing model it already viewed in the same session (a re-view), "
                    "derived from ",
                    column[S.CLOTHING_MODEL],
                    " + ",
                    column[S.SESSION_ID],
                    " + ",
                    column[S.ORDER],
                    ". There are no purchases in the data, so this is a proxy for purchase intent.",
                ]
            ),
            html.Li(
                [html.Strong("Basket value: "), "the sum of ", column[S.PRICE], " of the distinct re-viewed models."]
            ),
        ]
    else:
        label = [
            html.Li([html.Strong("A real label column from the input file is in use, not the re-view proxy.")]),
            html.Li([html.Strong("Converted: "), definition.converted_text + "."]),
            html.Li([html.Strong("Basket value: "), definition.basket_text + "."]),
        ]
    label.append(
        html.Li(
            [
                html.Strong("Not labels: "),
                column[S.PRICE_2],
                " (product above its category's average price) and reaching ",
                column[S.PAGE],
                " 4 (catalogue layout) describe products and layout, not visitors; "
                "the product code determines both, so they would leak.",
            ]
        )
    )
    features = [
        dbc.Badge(spec.label, color="light", text_color="dark", className="me-1 mb-1 border")
        for spec in WINDOW_FEATURES
    ]
    return dbc.Card(
        [
            dbc.CardHeader(html.H6(f"The label: {definition.title}", className="mb-0")),
            dbc.CardBody(
                [
                    html.Ul(label, className="small ps-3 mb-2"),
                    html.Div(
                        [
                            html.Strong(f"Model inputs: the first {window} clicks of a session only. "),
                            f"Sessions shorter than {window} clicks, or that converted within them, are not scored. "
                            "The whole-session features on this tab describe visits; they are not model inputs.",
                        ],
                        className="small mb-2",
                    ),
                    html.Div(features),
                ]
            ),
        ],
        id=ids.EDA_LABEL_NOTE,
        className="h-100",
    )


def _radio(component_id: str, options: dict[str, str], value: str) -> dbc.RadioItems:
    return dbc.RadioItems(
        id=component_id,
        options=[{"label": label, "value": key} for key, label in options.items()],
        value=value,
        inline=True,
        className="small",
    )


def layout(context: AppContext, key: str = BUNDLED_DATASET_KEY) -> html.Div:
    top_metric = _radio(ids.EDA_TOP_PRODUCTS_METRIC, {"views": "Views", "review_rate": "Re-view rate"}, "views")
    normalise = _radio(ids.EDA_CATEGORY_COLOUR_NORM, {NORMALISE: "% of category", COUNTS: "Clicks"}, NORMALISE)
    clicks_note = "clicks of the filtered sessions"
    return html.Div(
        [
            dbc.Row(
                [
                    dbc.Col(
                        graph_panel(
                            ids.EDA_PRICE_GRAPH, "Price by category", f"share of each category's {clicks_note}"
                        ),
                        lg=6,
                    ),
                    dbc.Col(
                        graph_panel(ids.EDA_SESSION_LENGTH_GRAPH, "Session length", "sessions by clicks (40+ grouped)"),
                        lg=6,
                    ),
                ],
                className="g-3 mb-3",
            ),
            dbc.Row(
                [
                    dbc.Col(
                        graph_panel(
                            ids.EDA_CATEGORY_COLOUR_GRAPH, "Category x colour", clicks_note, controls=normalise
                        ),
                        lg=6,
                    ),
                    dbc.Col(
                        graph_panel(ids.EDA_PAGE_LOCATION_GRAPH, "Catalogue page x photo location", clicks_note),
                        lg=6,
                    ),
                ],
                className="g-3 mb-3",
            ),
            dbc.Row(
                [
                    dbc.Col(
                        graph_panel(ids.EDA_TOP_PRODUCTS_GRAPH, "Top products", clicks_note, controls=top_metric),
                        lg=6,
                    ),
                    dbc.Col(
                        graph_panel(
                            ids.EDA_COUNTRY_GRAPH,
                            "Sessions by country",
                            f"label: {_title(context).lower()} · click to filter",
                        ),
                        lg=3,
                    ),
                    dbc.Col(
                        graph_panel(ids.EDA_WEEKDAY_GRAPH, "Sessions by day of week", "day of the first click"), lg=3
                    ),
                ],
                className="g-3 mb-3",
            ),
            dbc.Row(
                [
                    dbc.Col(
                        graph_panel(
                            ids.EDA_CORRELATION_GRAPH,
                            "Correlation of whole-session features",
                            f"Pearson r; fixed-seed sample of at most {eda.CORRELATION_SAMPLE:,} sessions",
                            height=560,
                        ),
                        lg=7,
                    ),
                    dbc.Col(label_note(context), lg=5),
                ],
                className="g-3 mb-3",
            ),
        ]
    )


# ---------------------------------------------------------------- callbacks
def register_callbacks(app, context: AppContext) -> None:
    # Build the cubes now, at start-up, so the first visit to the tab does not wait for them
    # (0.05 s on the bundled data, about 3 s at 10M clicks). Not on a thread: the background
    # callback manager forks worker processes, and a fork mid-build could inherit a held lock.
    eda.eda_cubes(context.data)

    for graph_id, view in FILTER_ONLY_VIEWS:

        def update(start, end, values, names, view=view):
            return view(context, filter_bar.read(start, end, values, names))

        app.callback(Output(graph_id, "figure"), *filter_bar.INPUTS)(update)

    @app.callback(
        Output(ids.EDA_CATEGORY_COLOUR_GRAPH, "figure"),
        *filter_bar.INPUTS,
        Input(ids.EDA_CATEGORY_COLOUR_NORM, "value"),
    )
    def update_category_colour(start, end, values, names, mode):
        return category_colour_view(context, filter_bar.read(start, end, values, names), mode)

    @app.callback(
        Output(ids.EDA_TOP_PRODUCTS_GRAPH, "figure"), *filter_bar.INPUTS, Input(ids.EDA_TOP_PRODUCTS_METRIC, "value")
    )
    def update_top_products(start, end, values, names, by):
        return top_products_view(context, filter_bar.read(start, end, values, names), by)

    @app.callback(
        Output(ids.filter_dimension("country"), "value", allow_duplicate=True),
        Output(ids.EDA_COUNTRY_GRAPH, "clickData"),
        Input(ids.EDA_COUNTRY_GRAPH, "clickData"),
        State(ids.filter_dimension("country"), "value"),
        prevent_initial_call=True,
    )
    def cross_filter_country(click, current):
        if not click or not click.get("points"):
            return no_update, no_update
        return toggle_code(current, click), None
