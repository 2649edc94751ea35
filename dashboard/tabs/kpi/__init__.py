"""KPI tab: cards with changes against the earlier period, trend with alerts, breakdowns, funnel, exports.

With purchases in the data the cards are real: conversion rate, revenue,
orders, average order value, cart rate and cart abandonment, and the funnel is
view -> cart -> purchase. Without them the cards are the re-view proxy's,
named as a proxy. The funnel's last step is the conversion card's numerator.
Breakdowns are by the dataset's dimensions; the user picks which, and clicking
a bar filters the whole tab (the bar stays, highlighted; the others turn grey).
The daily/weekly choice and the chosen breakdowns live in the URL
(``freq=W``, ``by=country,main_colour``) beside the filters.

Helpers: ``cards`` (card specs and texts), ``views`` (what each callback
returns), ``export`` (the CSV downloads).
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import ALL, MATCH, Input, Output, State, ctx, dcc, html, no_update

from dashboard import filter_bar, ids
from dashboard.components import graph_panel
from dashboard.context import AppContext
from dashboard.tabs.kpi import export
from dashboard.tabs.kpi.cards import CardSpec, card_specs, kpi_cards  # noqa: F401 (the tab's public helpers)
from dashboard.tabs.kpi.views import (  # noqa: F401
    alerts_for,
    alerts_summary,
    breakdown_outputs,
    breakdown_view,
    cards_outputs,
    cards_view,
    compare_alert,
    period_note,
    revenue_label,
    toggle_code,
    trend_outputs,
    trend_view,
)
from dashboard.url_state import query_of, with_params
from ml.config import BUNDLED_DATASET_KEY
from ml.features.kpis import dimension_title, dimensions_of
from ml.features.prepared import PreparedData

TAB_ID = "kpi"
LABEL = "KPIs"
USES_FILTERS = True
DEFAULT_BREAKDOWNS = 3
DEFAULT_FREQ = "D"
FREQS = ("D", "W")
BREAKDOWNS_ALL = {"type": ids.KPI_BREAKDOWN_GRAPH, "name": ALL}


def default_breakdowns(data: PreparedData) -> list[str]:
    return list(dimensions_of(data.cube))[:DEFAULT_BREAKDOWNS]


def controls_from_url(data: PreparedData, search: str | None) -> tuple[str, list[str]]:
    """The trend frequency and the breakdowns a URL asks for (defaults for anything missing or unknown)."""
    query = query_of(search)
    freq = query.get("freq", DEFAULT_FREQ)
    known = dimensions_of(data.cube)
    chosen = [d for d in query.get("by", "").split(",") if d in known]
    return (freq if freq in FREQS else DEFAULT_FREQ), (chosen or default_breakdowns(data))


def url_with_controls(data: PreparedData, search: str | None, freq: str | None, chosen: list[str] | None) -> str:
    """``search`` with the view controls written in (defaults left out)."""
    by = [d for d in chosen or () if d in dimensions_of(data.cube)]
    return with_params(
        search,
        freq=freq if freq in FREQS and freq != DEFAULT_FREQ else None,
        by=",".join(by) if by and by != default_breakdowns(data) else None,
    )


def breakdown_panels(data: PreparedData, dimensions: list[str]) -> list[dbc.Col]:
    title = data.definition.title
    note = f"sessions; bar label = {title.lower()}; click a bar to filter (grey bars: not in the filter)"
    return [
        dbc.Col(graph_panel(ids.kpi_breakdown(d), f"By {dimension_title(d).lower()}", note), lg=4, className="mb-3")
        for d in dimensions
    ]


def layout(context: AppContext, key: str = BUNDLED_DATASET_KEY) -> html.Div:
    data = context.dataset(key)
    freq = dbc.RadioItems(
        id=ids.KPI_TREND_FREQ,
        options=[{"label": "Daily", "value": "D"}, {"label": "Weekly", "value": "W"}],
        value=DEFAULT_FREQ,
        inline=True,
        className="small",
        inputClassName="kpi-freq-input",
    )
    freq_group = html.Div(freq, role="radiogroup", **{"aria-label": "Trend per day or per week"})
    title = data.definition.title
    dimensions = list(dimensions_of(data.cube))
    chosen = default_breakdowns(data)
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
    alerts = html.Div(
        [
            html.Div(id=ids.KPI_ALERTS, className="small kpi-alerts flex-grow-1", **{"aria-live": "polite"}),
            dbc.Button(
                "Download flagged days (CSV)", id=ids.KPI_ALERTS_BUTTON, color="secondary", outline=True, size="sm"
            ),
            dcc.Download(id=ids.KPI_ALERTS_DOWNLOAD),
        ],
        className="d-flex align-items-start gap-2 mt-1",
    )
    return html.Div(
        [
            html.Div(id=ids.KPI_COMPARE_NOTE, className="kpi-compare small mb-2", **{"aria-live": "polite"}),
            dbc.Row(id=ids.KPI_CARDS, className="g-2 mb-2"),
            dbc.Row(
                [
                    dbc.Col(
                        [
                            # In a plain div, so the panel's full height leaves room for the alerts below it.
                            html.Div(
                                graph_panel(ids.KPI_TREND_GRAPH, f"Sessions and {title.lower()}", controls=freq_group)
                            ),
                            alerts,
                        ],
                        lg=8,
                    ),
                    dbc.Col(
                        graph_panel(
                            ids.KPI_FUNNEL_GRAPH, funnel_title, f"sessions reaching each step; last = {title.lower()}"
                        ),
                        lg=4,
                    ),
                ],
                className="g-3 mb-3",
            ),
            picker,
            dbc.Row(breakdown_panels(data, chosen), id=ids.KPI_BREAKDOWNS, className="g-3"),
            html.Div(
                [
                    dbc.Button("Export breakdown (CSV)", id=ids.KPI_EXPORT_BUTTON, color="primary", outline=True),
                    dcc.Download(id=ids.KPI_EXPORT_DOWNLOAD),
                    html.Small(note, className="kpi-note ms-2"),
                ],
                className="d-flex align-items-center",
            ),
        ]
    )


def alert_rule(context: AppContext) -> str:
    s = context.settings
    return f"|robust z| >= {s.alert_threshold:g} against the median and MAD of the {s.alert_window} days before"


def register_callbacks(app, context: AppContext) -> None:
    dataset = State(ids.APP_DATASET_STORE, "data")

    @app.callback(
        Output(ids.KPI_CARDS, "children"),
        Output(ids.KPI_FUNNEL_GRAPH, "figure"),
        Output(ids.KPI_COMPARE_NOTE, "children"),
        *filter_bar.INPUTS,
        dataset,
    )
    def update_kpis(start, end, values, names, key):
        filt = filter_bar.read(start, end, values, names)
        return cards_outputs(context.dataset(key), filt, context.settings.view_cache_size)

    @app.callback(Output(BREAKDOWNS_ALL, "figure"), *filter_bar.INPUTS, Input(BREAKDOWNS_ALL, "id"), dataset)
    def update_breakdowns(start, end, values, names, graphs, key):
        data, filt = context.dataset(key), filter_bar.read(start, end, values, names)
        known = dimensions_of(data.cube)  # graphs of the dataset shown before a switch: their tab renders anew
        names_shown = [g["name"] if g else None for g in graphs or ()]
        keep = context.settings.view_cache_size
        return [breakdown_outputs(data, filt, name, keep) if name in known else no_update for name in names_shown]

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
        Output(ids.KPI_TREND_GRAPH, "figure"),
        Output(ids.KPI_ALERTS, "children"),
        *filter_bar.INPUTS,
        Input(ids.KPI_TREND_FREQ, "value"),
        dataset,
    )
    def update_trend(start, end, values, names, freq, key):
        data, filt = context.dataset(key), filter_bar.read(start, end, values, names)
        s = context.settings
        return trend_outputs(data, filt, freq or DEFAULT_FREQ, s.alert_window, s.alert_threshold, s.view_cache_size)

    @app.callback(
        Output(ids.APP_URL, "search", allow_duplicate=True),
        Output(ids.KPI_TREND_FREQ, "value"),
        Output(ids.KPI_BREAKDOWN_PICK, "value"),
        Input(ids.KPI_TREND_FREQ, "value"),
        Input(ids.KPI_BREAKDOWN_PICK, "value"),
        State(ids.APP_URL, "search"),
        dataset,
        prevent_initial_call="initial_duplicate",
    )
    def keep_controls_in_url(freq, chosen, search, key):
        """On the tab's first render the URL sets the controls; after that the controls write the URL."""
        data = context.dataset(key)
        # The tab's first render reports both controls as changed; a user changes one at a time.
        first_render = len(ctx.triggered_prop_ids) != 1
        if not first_render:
            new = url_with_controls(data, search, freq, chosen)
            return (new if new != (search or "") else no_update), no_update, no_update
        url_freq, url_chosen = controls_from_url(data, search)
        return (
            no_update,
            url_freq if url_freq != freq else no_update,
            url_chosen if url_chosen != list(chosen or ()) else no_update,
        )

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
        return export.breakdown_csv(data, data.key, filter_bar.read(start, end, values, names))

    @app.callback(
        Output(ids.KPI_ALERTS_DOWNLOAD, "data"),
        Input(ids.KPI_ALERTS_BUTTON, "n_clicks"),
        *filter_bar.STATES,
        dataset,
        prevent_initial_call=True,
    )
    def export_alerts(n_clicks, start, end, values, names, key):
        if not n_clicks or ctx.triggered_id != ids.KPI_ALERTS_BUTTON:
            return no_update
        data, filt = context.dataset(key), filter_bar.read(start, end, values, names)
        s = context.settings
        alerts = alerts_for(data, filt, s.alert_window, s.alert_threshold, s.view_cache_size)
        return export.alerts_csv(data, data.key, filt, alerts, alert_rule(context))
