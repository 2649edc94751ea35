"""KPI tab: cards with changes against the previous period, trend, breakdowns, funnel, export."""

from __future__ import annotations

import math
from dataclasses import dataclass

import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import Input, Output, State, ctx, dcc, html, no_update

from dashboard import ids
from dashboard.components import graph_panel, kpi_card
from dashboard.context import AppContext
from dashboard.figures.kpi import breakdown_figure, funnel_figure, trend_figure
from dashboard.url_state import filter_from_inputs
from ml.data.export import to_csv_text
from ml.features import kpis
from ml.features.kpis import KpiComparison, SessionFilter

TAB_ID = "kpi"
LABEL = "KPIs"
USES_FILTERS = True

FILTER_INPUTS = [
    Input(ids.FILTER_DATES, "start_date"),
    Input(ids.FILTER_DATES, "end_date"),
    Input(ids.FILTER_COUNTRIES, "value"),
    Input(ids.FILTER_CATEGORIES, "value"),
    Input(ids.FILTER_COLOURS, "value"),
]
BREAKDOWNS = (
    (ids.KPI_COUNTRY_GRAPH, "country", ids.FILTER_COUNTRIES),
    (ids.KPI_CATEGORY_GRAPH, "main_category", ids.FILTER_CATEGORIES),
    (ids.KPI_COLOUR_GRAPH, "main_colour", ids.FILTER_COLOURS),
)


@dataclass(frozen=True)
class CardSpec:
    key: str
    title: str
    fmt: str
    good_when_up: bool = True
    help_text: str | None = None


def card_specs(conversion_title: str) -> tuple[CardSpec, ...]:
    return (
        CardSpec("sessions", "Sessions", "{:,.0f}"),
        CardSpec("clicks", "Clicks", "{:,.0f}"),
        CardSpec("clicks_per_session", "Clicks per session", "{:,.2f}"),
        CardSpec("bounce_rate", "Bounce rate", "{:.1%}", good_when_up=False, help_text="sessions with one click"),
        CardSpec("conversion_rate", conversion_title, "{:.1%}", help_text="sessions that re-viewed a product"),
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


def kpi_cards(comparison: KpiComparison, conversion_title: str) -> list[dbc.Col]:
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
        for spec in card_specs(conversion_title)
    ]


def kpi_view(context: AppContext, filt: SessionFilter) -> tuple:
    """Cards, three breakdowns and the funnel for a filter (the body of the main KPI callback)."""
    cube = context.data.cube
    title = context.data.definition.title
    comparison = kpis.kpi_summary(cube, filt)
    selected = {"country": filt.countries, "main_category": filt.categories, "main_colour": filt.colours}
    figures = [
        breakdown_figure(kpis.breakdown(cube, filt, dimension), selected[dimension], title)
        for _, dimension, _ in BREAKDOWNS
    ]
    return (kpi_cards(comparison, title), *figures, funnel_figure(kpis.funnel(cube, filt)))


def trend_view(context: AppContext, filt: SessionFilter, freq: str) -> go.Figure:
    return trend_figure(kpis.trend(context.data.cube, filt, freq), freq, context.data.definition.title)


def toggle_code(current: list[int] | None, click: dict | None) -> list[int]:
    """Add the clicked bar's code to a filter, or remove it if it is already there."""
    values = list(current or [])
    code = int(click["points"][0]["customdata"][0])
    return [v for v in values if v != code] if code in values else [*values, code]


def layout(context: AppContext) -> html.Div:
    freq = dbc.RadioItems(
        id=ids.KPI_TREND_FREQ,
        options=[{"label": "Daily", "value": "D"}, {"label": "Weekly", "value": "W"}],
        value="D",
        inline=True,
        className="small",
    )
    title = context.data.definition.title
    breakdown_note = f"sessions; bar label = {title.lower()}; click a bar to filter"
    return html.Div(
        [
            dbc.Row(id=ids.KPI_CARDS, className="g-2 mb-2"),
            dbc.Row(
                [
                    dbc.Col(graph_panel(ids.KPI_TREND_GRAPH, f"Sessions and {title.lower()}", controls=freq), lg=8),
                    dbc.Col(graph_panel(ids.KPI_FUNNEL_GRAPH, "Browse funnel", "sessions reaching each step"), lg=4),
                ],
                className="g-3 mb-3",
            ),
            dbc.Row(
                [
                    dbc.Col(graph_panel(ids.KPI_COUNTRY_GRAPH, "By country", breakdown_note), lg=4),
                    dbc.Col(graph_panel(ids.KPI_CATEGORY_GRAPH, "By main category", breakdown_note), lg=4),
                    dbc.Col(graph_panel(ids.KPI_COLOUR_GRAPH, "By main colour", breakdown_note), lg=4),
                ],
                className="g-3 mb-3",
            ),
            html.Div(
                [
                    dbc.Button("Export breakdown (CSV)", id=ids.KPI_EXPORT_BUTTON, color="primary", outline=True),
                    dcc.Download(id=ids.KPI_EXPORT_DOWNLOAD),
                    html.Small(
                        f" {title} is a proxy: the data has no purchases. A session converts when it views a "
                        "product it already viewed; its basket value is the sum of those products' prices. "
                        "Main category and colour are the ones a session viewed most.",
                        className="text-muted ms-2",
                    ),
                ],
                className="d-flex align-items-center",
            ),
        ]
    )


def register_callbacks(app, context: AppContext) -> None:
    outputs = [Output(ids.KPI_CARDS, "children")] + [Output(g, "figure") for g, _, _ in BREAKDOWNS]
    outputs.append(Output(ids.KPI_FUNNEL_GRAPH, "figure"))

    @app.callback(outputs, FILTER_INPUTS)
    def update_kpis(start, end, countries, categories, colours):
        return kpi_view(context, filter_from_inputs(start, end, countries, categories, colours))

    @app.callback(Output(ids.KPI_TREND_GRAPH, "figure"), [*FILTER_INPUTS, Input(ids.KPI_TREND_FREQ, "value")])
    def update_trend(start, end, countries, categories, colours, freq):
        return trend_view(context, filter_from_inputs(start, end, countries, categories, colours), freq or "D")

    for graph_id, _, filter_id in BREAKDOWNS:

        @app.callback(
            Output(filter_id, "value", allow_duplicate=True),
            Output(graph_id, "clickData"),
            Input(graph_id, "clickData"),
            State(filter_id, "value"),
            prevent_initial_call=True,
        )
        def cross_filter(click, current):
            if not click or not click.get("points"):
                return no_update, no_update
            return toggle_code(current, click), None

    @app.callback(
        Output(ids.KPI_EXPORT_DOWNLOAD, "data"),
        Input(ids.KPI_EXPORT_BUTTON, "n_clicks"),
        [State(i.component_id, i.component_property) for i in FILTER_INPUTS],
        prevent_initial_call=True,
    )
    def export_breakdown(n_clicks, start, end, countries, categories, colours):
        if not n_clicks or ctx.triggered_id != ids.KPI_EXPORT_BUTTON:
            return no_update
        filt = filter_from_inputs(start, end, countries, categories, colours)
        table = kpis.breakdown_export(context.data.cube, filt)
        return {"content": to_csv_text(table), "filename": "kpi-breakdown.csv", "type": "text/csv"}
