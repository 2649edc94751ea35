"""EDA tab: distributions, heatmaps, top products, sessions by dimension, hour and weekday, all filtered.

Works on whatever dataset is active: the UCI-only charts (category x colour,
catalogue page x photo location) appear when the profile has those columns,
the event-log charts (events by type, sessions by hour, cart and purchase
rates) when it has event types and timestamps; every chart left out is named
in one line at the top. Every figure reads the dataset's EDA cubes
(``ml.features.eda``), built once per dataset, so a filter change costs the
number of distinct cube keys, not the number of events.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import Input, Output, State, dcc, html, no_update

from dashboard import filter_bar, ids
from dashboard.components import graph_panel
from dashboard.context import AppContext
from dashboard.tabs.eda.label_note import label_note
from dashboard.tabs.eda.views import (
    COUNTS,
    NORMALISE,
    category_colour_view,
    conversion_title,
    correlation_view,
    cubes_of,
    default_dimension,
    dimension_view,
    events_view,
    hour_view,
    page_location_view,
    price_view,
    session_length_view,
    top_products_view,
    unit,
    weekday_view,
)
from dashboard.tabs.kpi import toggle_code
from ml.config import BUNDLED_DATASET_KEY
from ml.features import eda
from ml.features.prepared import PreparedData

TAB_ID = "eda"
LABEL = "EDA"
USES_FILTERS = True

__all__ = [
    "COUNTS",
    "LABEL",
    "NORMALISE",
    "TAB_ID",
    "USES_FILTERS",
    "category_colour_view",
    "correlation_view",
    "dimension_view",
    "events_view",
    "hour_view",
    "label_note",
    "layout",
    "page_location_view",
    "price_view",
    "register_callbacks",
    "session_length_view",
    "top_products_view",
    "weekday_view",
]

# Graphs that follow the filter bar only, with their view and the optional chart they need (None: always shown).
FILTER_ONLY_VIEWS = (
    (ids.EDA_PRICE_GRAPH, price_view, "prices"),
    (ids.EDA_SESSION_LENGTH_GRAPH, session_length_view, None),
    (ids.EDA_PAGE_LOCATION_GRAPH, page_location_view, "page_location"),
    (ids.EDA_EVENTS_GRAPH, events_view, "events"),
    (ids.EDA_HOUR_GRAPH, hour_view, "hours"),
    (ids.EDA_CORRELATION_GRAPH, correlation_view, None),
    (ids.EDA_WEEKDAY_GRAPH, weekday_view, None),
)
OPTIONAL_CHARTS = ("prices", "category_colour", "page_location", "events", "hours", "cart_rate", "purchase_rate")


# ---------------------------------------------------------------- layout
def _radio(component_id: str, label: str, options: dict[str, str], value: str) -> html.Div:
    """Inline radio buttons with a visible label, named for screen readers as a group."""
    return html.Div(
        [
            html.Span(label, className="small text-muted me-2"),
            dbc.RadioItems(
                id=component_id,
                options=[{"label": text, "value": key} for key, text in options.items()],
                value=value,
                inline=True,
                className="small d-inline-block",
            ),
        ],
        role="radiogroup",
        className="d-flex align-items-center",
        **{"aria-label": label},
    )


def left_out_notes(data: PreparedData) -> list[str]:
    """One line per chart the dataset lacks the columns for."""
    cubes = cubes_of(data)
    return [note for chart in OPTIONAL_CHARTS if (note := cubes.missing_note(chart))]


def _left_out(data: PreparedData) -> html.Div:
    notes = left_out_notes(data)
    items = [html.Li(note) for note in notes]
    return html.Div(
        html.Ul(items, className="mb-0 ps-3") if items else None,
        id=ids.EDA_LEFT_OUT_NOTE,
        className="small text-muted mb-2",
    )


def _dimension_picker(data: PreparedData) -> html.Div:
    choices = eda.dimension_choices(cubes_of(data))
    return html.Div(
        [
            dbc.Label("By", html_for=ids.EDA_DIMENSION_PICK, className="small mb-0 me-1"),
            dcc.Dropdown(
                id=ids.EDA_DIMENSION_PICK,
                options=[{"label": title, "value": column} for column, title in choices.items()],
                value=default_dimension(data),
                clearable=False,
                searchable=False,
                style={"minWidth": "9rem"},
            ),
        ],
        className="d-flex align-items-center",
    )


def panels(data: PreparedData) -> list[dbc.Col]:
    """The chart panels this dataset can fill, in reading order."""
    cubes = cubes_of(data)
    what = unit(data)
    of_filtered = f"{what} of the filtered sessions"
    title = conversion_title(data)
    shown: list[tuple[object, int]] = []
    if cubes.available("prices"):
        subtitle = f"share of each category's {of_filtered}"
        if len(set(cubes.prices["category"])) > 6:
            subtitle += "; the 6 categories with most priced events"
        shown.append((graph_panel(ids.EDA_PRICE_GRAPH, "Price by category", subtitle), 6))
    length_note = f"sessions by {what} (40+ grouped); line: {title.lower()}"
    shown.append((graph_panel(ids.EDA_SESSION_LENGTH_GRAPH, "Session length", length_note), 6))
    if cubes.available("category_colour"):
        normalise = _radio(
            ids.EDA_CATEGORY_COLOUR_NORM, "Show", {NORMALISE: "% of category", COUNTS: "Clicks"}, NORMALISE
        )
        shown.append(
            (graph_panel(ids.EDA_CATEGORY_COLOUR_GRAPH, "Category x colour", of_filtered, controls=normalise), 6)
        )
    if cubes.available("page_location"):
        shown.append((graph_panel(ids.EDA_PAGE_LOCATION_GRAPH, "Catalogue page x photo location", of_filtered), 6))
    if cubes.available("events"):
        shown.append((graph_panel(ids.EDA_EVENTS_GRAPH, "Events by type", "events; label: share of sessions"), 6))
    if cubes.available("hours"):
        hour_note = f"hour of the session's first event; line: {title.lower()}"
        shown.append((graph_panel(ids.EDA_HOUR_GRAPH, "Sessions by hour", hour_note), 6))
    metrics = {m: eda.TOP_METRIC_TITLES[m] for m in eda.top_metrics(cubes)}
    top_metric = _radio(ids.EDA_TOP_PRODUCTS_METRIC, "Rank by", metrics, "views")
    shown.append((graph_panel(ids.EDA_TOP_PRODUCTS_GRAPH, "Top products", of_filtered, controls=top_metric), 6))
    if eda.dimension_choices(cubes):
        dimension_note = f"sessions; bar label: {title.lower()} · click to filter"
        shown.append(
            (
                graph_panel(ids.EDA_DIMENSION_GRAPH, "Sessions by", dimension_note, controls=_dimension_picker(data)),
                6,
            )
        )
    weekday_note = f"day of the first {what[:-1]}; line: {title.lower()}"
    shown.append((graph_panel(ids.EDA_WEEKDAY_GRAPH, "Sessions by day of week", weekday_note), 6))
    return [dbc.Col(panel, lg=width, className="mb-3") for panel, width in shown]


def layout(context: AppContext, key: str = BUNDLED_DATASET_KEY) -> html.Div:
    data = context.dataset(key)
    sample = f"Pearson r; fixed-seed sample of at most {eda.CORRELATION_SAMPLE:,} sessions"
    return html.Div(
        [
            _left_out(data),
            dbc.Row(panels(data), className="g-3"),
            dbc.Row(
                [
                    dbc.Col(
                        graph_panel(
                            ids.EDA_CORRELATION_GRAPH, "Correlation of whole-session features", sample, height=560
                        ),
                        lg=7,
                    ),
                    dbc.Col(label_note(data, context.settings.window), lg=5),
                ],
                className="g-3 mb-3",
            ),
        ]
    )


# ---------------------------------------------------------------- callbacks
def cross_filter(click: dict | None, dimension: str | None, names: list[dict], values: list) -> list:
    """The filter bar's dimension values after a click on a bar of ``dimension`` (others unchanged)."""
    if not click or not click.get("points") or dimension is None:
        return [no_update] * len(names)
    pairs = zip(names, values, strict=True)
    return [toggle_code(value, click) if name["name"] == dimension else no_update for name, value in pairs]


def register_callbacks(app, context: AppContext) -> None:
    # Build the bundled dataset's cubes now, at start-up, so the first visit to the tab does not wait
    # for them (0.05 s on the bundled data, about 3 s at 10M clicks); another dataset's on first use.
    # Not on a thread: the background callback manager forks worker processes, and a fork mid-build
    # could inherit a held lock.
    cubes_of(context.dataset(BUNDLED_DATASET_KEY))
    dataset = State(ids.APP_DATASET_STORE, "data")

    for graph_id, view, _ in FILTER_ONLY_VIEWS:

        def update(start, end, values, names, key, view=view):
            return view(context.dataset(key), filter_bar.read(start, end, values, names))

        app.callback(Output(graph_id, "figure"), *filter_bar.INPUTS, dataset)(update)

    @app.callback(
        Output(ids.EDA_CATEGORY_COLOUR_GRAPH, "figure"),
        *filter_bar.INPUTS,
        Input(ids.EDA_CATEGORY_COLOUR_NORM, "value"),
        dataset,
    )
    def update_category_colour(start, end, values, names, mode, key):
        return category_colour_view(context.dataset(key), filter_bar.read(start, end, values, names), mode)

    @app.callback(
        Output(ids.EDA_TOP_PRODUCTS_GRAPH, "figure"),
        *filter_bar.INPUTS,
        Input(ids.EDA_TOP_PRODUCTS_METRIC, "value"),
        dataset,
    )
    def update_top_products(start, end, values, names, by, key):
        return top_products_view(context.dataset(key), filter_bar.read(start, end, values, names), by)

    @app.callback(
        Output(ids.EDA_DIMENSION_GRAPH, "figure"),
        *filter_bar.INPUTS,
        Input(ids.EDA_DIMENSION_PICK, "value"),
        dataset,
    )
    def update_dimension(start, end, values, names, dimension, key):
        return dimension_view(context.dataset(key), filter_bar.read(start, end, values, names), dimension)

    @app.callback(
        Output(filter_bar.DIMENSIONS_ALL, "value", allow_duplicate=True),
        Input(ids.EDA_DIMENSION_GRAPH, "clickData"),
        State(ids.EDA_DIMENSION_PICK, "value"),
        State(filter_bar.DIMENSIONS_ALL, "id"),
        State(filter_bar.DIMENSIONS_ALL, "value"),
        prevent_initial_call=True,
    )
    def cross_filter_dimension(click, dimension, names, values):
        # Every click gives a new clickData (a second click on the same bar toggles it back off).
        return cross_filter(click, dimension, names or [], values or [])
