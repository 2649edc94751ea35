"""KPI tab: cards with changes against the previous period, trend, breakdowns, funnel, export.

With purchases in the data the cards are real: conversion rate, revenue,
orders, average order value, cart rate and cart abandonment, and the funnel is
view -> cart -> purchase. Without them the cards are the re-view proxy's,
named as a proxy. Breakdowns are by the dataset's dimensions; the user picks
which, and clicking a bar filters the whole tab.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import ALL, MATCH, Input, Output, State, ctx, dcc, html, no_update

from dashboard import filter_bar, ids
from dashboard.components import graph_panel, kpi_card
from dashboard.context import AppContext
from dashboard.figures.kpi import breakdown_figure, funnel_figure, trend_figure
from ml.config import BUNDLED_DATASET_KEY
from ml.data.export import to_csv_text
from ml.features import kpis
from ml.features.kpis import KpiComparison, SessionFilter, dimension_title, dimensions_of
from ml.features.prepared import PreparedData

TAB_ID = "kpi"
LABEL = "KPIs"
USES_FILTERS = True
DEFAULT_BREAKDOWNS = 3
BREAKDOWNS_ALL = {"type": ids.KPI_BREAKDOWN_GRAPH, "name": ALL}


@dataclass(frozen=True)
class CardSpec:
    key: str
    title: str
    fmt: str
    good_when_up: bool = True
    help_text: str | None = None


def card_specs(data: PreparedData) -> tuple[CardSpec, ...]:
    """The cards for a dataset: real purchase KPIs when it has purchases, the proxy's otherwise."""
    title = data.definition.title
    if data.has_purchases:
        return (
            CardSpec("sessions", "Sessions", "{:,.0f}"),
            CardSpec("conversion_rate", title, "{:.1%}", help_text="sessions with a purchase"),
            CardSpec("revenue", "Revenue", "{:,.0f}", help_text="sum of purchase prices"),
            CardSpec(
                "orders",
                "Orders",
                "{:,.0f}",
                help_text="distinct orders (one per purchasing session when the data has no order IDs)",
            ),
            CardSpec("average_order_value", "Average order value", "{:,.2f}", help_text="revenue / orders"),
            CardSpec("cart_rate", "Cart rate", "{:.1%}", help_text="sessions that added to cart"),
            CardSpec(
                "cart_abandonment",
                "Cart abandonment",
                "{:.1%}",
                good_when_up=False,
                help_text="sessions with a cart but no purchase / sessions with a cart",
            ),
            CardSpec("bounce_rate", "Bounce rate", "{:.1%}", good_when_up=False, help_text="sessions with one event"),
        )
    return (
        CardSpec("sessions", "Sessions", "{:,.0f}"),
        CardSpec("clicks", "Clicks", "{:,.0f}"),
        CardSpec("clicks_per_session", "Clicks per session", "{:,.2f}"),
        CardSpec("bounce_rate", "Bounce rate", "{:.1%}", good_when_up=False, help_text="sessions with one click"),
        CardSpec("conversion_rate", title, "{:.1%}", help_text="sessions that re-viewed a product"),
        CardSpec("revenue", "Potential revenue", "${:,.0f}", help_text="sum of basket values (proxy)"),
        CardSpec(
            "revenue_per_converting_session",
            "Revenue per converting session",
            "${:,.2f}",
            help_text="potential revenue / converting sessions",
        ),
    )


def _value(spec: CardSpec, value: float) -> str:
    return "–" if math.isnan(value) else spec.fmt.format(value)


def comparison_text(comparison: KpiComparison) -> str:
    prev = comparison.previous_filter
    if prev is None:
        return "the previous period"
    return f"{prev.start:%d %b}–{prev.end:%d %b}"


def kpi_cards(comparison: KpiComparison, specs: tuple[CardSpec, ...]) -> list[dbc.Col]:
    """One card per KPI, with its change against the previous period of equal length."""
    against = comparison_text(comparison)
    return [
        dbc.Col(
            kpi_card(
                spec.title,
                _value(spec, comparison.current[spec.key]),
                comparison.change(spec.key),
                against,
                good_when_up=spec.good_when_up,
                help_text=spec.help_text,
            ),
            xs=6,
            md=3,
            xl=True,
            className="mb-2",
        )
        for spec in specs
    ]


def revenue_label(data: PreparedData) -> str:
    return "Potential revenue" if data.definition.is_proxy else "Revenue"


def cards_view(data: PreparedData, filt: SessionFilter) -> tuple:
    """Cards and the funnel for a filter."""
    comparison = kpis.kpi_summary(data.cube, filt)
    return kpi_cards(comparison, card_specs(data)), funnel_figure(kpis.funnel(data.cube, filt))


def breakdown_view(data: PreparedData, filt: SessionFilter, dimension: str) -> go.Figure:
    table = kpis.breakdown(data.cube, filt, dimension, data.codebooks)
    return breakdown_figure(table, filt.codes_for(dimension), data.definition.title, revenue=revenue_label(data))


def trend_view(data: PreparedData, filt: SessionFilter, freq: str) -> go.Figure:
    return trend_figure(kpis.trend(data.cube, filt, freq), freq, data.definition.title)


def toggle_code(current: list[int] | None, click: dict | None) -> list[int]:
    """Add the clicked bar's code to a filter, or remove it if it is already there."""
    values = list(current or [])
    code = int(click["points"][0]["customdata"][0])
    return [v for v in values if v != code] if code in values else [*values, code]


def breakdown_panels(data: PreparedData, dimensions: list[str]) -> list[dbc.Col]:
    title = data.definition.title
    note = f"sessions; bar label = {title.lower()}; click a bar to filter"
    return [
        dbc.Col(graph_panel(ids.kpi_breakdown(d), f"By {dimension_title(d).lower()}", note), lg=4, className="mb-3")
        for d in dimensions
    ]


def layout(context: AppContext, key: str = BUNDLED_DATASET_KEY) -> html.Div:
    data = context.dataset(key)
    freq = dbc.RadioItems(
        id=ids.KPI_TREND_FREQ,
        options=[{"label": "Daily", "value": "D"}, {"label": "Weekly", "value": "W"}],
        value="D",
        inline=True,
        className="small",
    )
    title = data.definition.title
    dimensions = list(dimensions_of(data.cube))
    chosen = dimensions[:DEFAULT_BREAKDOWNS]
    picker = html.Div(
        [
            dbc.Label("Break down by", html_for=ids.KPI_BREAKDOWN_PICK, className="small mb-0 me-2"),
            dcc.Dropdown(
                id=ids.KPI_BREAKDOWN_PICK,
                options=[{"label": dimension_title(d), "value": d} for d in dimensions],
                value=chosen,
                multi=True,
                clearable=False,
                style={"minWidth": "18rem"},
            ),
        ],
        className="d-flex align-items-center mb-2",
    )
    funnel_title = "Purchase funnel" if data.has_purchases else "Browse funnel"
    if data.definition.is_proxy:
        note = (
            f" {title} is a proxy: the data has no purchases. A session converts when it views a product it "
            "already viewed; its basket value is the sum of those products' prices. Main values are the ones a "
            "session viewed most."
        )
    else:
        note = f" {title}: {data.definition.converted_text}; revenue is {data.definition.basket_text}."
    return html.Div(
        [
            dbc.Row(id=ids.KPI_CARDS, className="g-2 mb-2"),
            dbc.Row(
                [
                    dbc.Col(graph_panel(ids.KPI_TREND_GRAPH, f"Sessions and {title.lower()}", controls=freq), lg=8),
                    dbc.Col(graph_panel(ids.KPI_FUNNEL_GRAPH, funnel_title, "sessions reaching each step"), lg=4),
                ],
                className="g-3 mb-3",
            ),
            picker,
            dbc.Row(breakdown_panels(data, chosen), id=ids.KPI_BREAKDOWNS, className="g-3"),
            html.Div(
                [
                    dbc.Button("Export breakdown (CSV)", id=ids.KPI_EXPORT_BUTTON, color="primary", outline=True),
                    dcc.Download(id=ids.KPI_EXPORT_DOWNLOAD),
                    html.Small(note, className="text-muted ms-2"),
                ],
                className="d-flex align-items-center",
            ),
        ]
    )


def register_callbacks(app, context: AppContext) -> None:
    dataset = State(ids.APP_DATASET_STORE, "data")

    @app.callback(
        Output(ids.KPI_CARDS, "children"), Output(ids.KPI_FUNNEL_GRAPH, "figure"), *filter_bar.INPUTS, dataset
    )
    def update_kpis(start, end, values, names, key):
        return cards_view(context.dataset(key), filter_bar.read(start, end, values, names))

    @app.callback(Output(BREAKDOWNS_ALL, "figure"), *filter_bar.INPUTS, Input(BREAKDOWNS_ALL, "id"), dataset)
    def update_breakdowns(start, end, values, names, graphs, key):
        data, filt = context.dataset(key), filter_bar.read(start, end, values, names)
        known = dimensions_of(data.cube)  # graphs of the dataset shown before a switch: their tab renders anew
        return [breakdown_view(data, filt, g["name"]) if g and g["name"] in known else no_update for g in graphs or ()]

    @app.callback(
        Output(ids.KPI_BREAKDOWNS, "children"),
        Input(ids.KPI_BREAKDOWN_PICK, "value"),
        dataset,
        prevent_initial_call=True,
    )
    def choose_breakdowns(chosen, key):
        data = context.dataset(key)
        return breakdown_panels(data, [d for d in chosen or () if d in dimensions_of(data.cube)])

    @app.callback(
        Output(ids.KPI_TREND_GRAPH, "figure"), *filter_bar.INPUTS, Input(ids.KPI_TREND_FREQ, "value"), dataset
    )
    def update_trend(start, end, values, names, freq, key):
        return trend_view(context.dataset(key), filter_bar.read(start, end, values, names), freq or "D")

    @app.callback(
        Output({"type": ids.FILTER_DIMENSION, "name": MATCH}, "value", allow_duplicate=True),
        Output({"type": ids.KPI_BREAKDOWN_GRAPH, "name": MATCH}, "clickData"),
        Input({"type": ids.KPI_BREAKDOWN_GRAPH, "name": MATCH}, "clickData"),
        State({"type": ids.FILTER_DIMENSION, "name": MATCH}, "value"),
        prevent_initial_call=True,
    )
    def cross_filter(click, current):
        if not click or not click.get("points"):
            return no_update, no_update
        return toggle_code(current, click), None

    @app.callback(
        Output(ids.KPI_EXPORT_DOWNLOAD, "data"),
        Input(ids.KPI_EXPORT_BUTTON, "n_clicks"),
        *filter_bar.STATES,
        dataset,
        prevent_initial_call=True,
    )
    def export_breakdown(n_clicks, start, end, values, names, key):
        if not n_clicks or ctx.triggered_id != ids.KPI_EXPORT_BUTTON:
            return no_update
        data = context.dataset(key)
        table = kpis.breakdown_export(data.cube, filter_bar.read(start, end, values, names), data.codebooks)
        return {"content": to_csv_text(table), "filename": "kpi-breakdown.csv", "type": "text/csv"}
