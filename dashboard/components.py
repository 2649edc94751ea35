"""Small component builders shared by the tabs: KPI cards, notes, alerts, graph panels."""

from __future__ import annotations

import math

import dash_bootstrap_components as dbc
from dash import dcc, html

GRAPH_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}


def format_change(change: float | None, good_when_up: bool = True) -> tuple[str, str]:
    """Text and Bootstrap colour for a relative change (green when it moves the good way)."""
    if change is None or math.isnan(change):
        return "no earlier period to compare", "text-muted"
    arrow = "▲" if change > 0 else ("▼" if change < 0 else "■")
    good = (change > 0) == good_when_up
    colour = "text-muted" if change == 0 else ("text-success" if good else "text-danger")
    return f"{arrow} {abs(change):.1%}", colour


def kpi_card(
    title: str,
    value: str,
    change: float | None,
    comparison: str,
    good_when_up: bool = True,
    help_text: str | None = None,
) -> dbc.Card:
    """A KPI card: title, big value, and the change against the previous period."""
    change_text, colour = format_change(change, good_when_up)
    footer = [html.Span(change_text, className=f"kpi-change {colour}")]
    if change is not None:
        footer.append(html.Span(f" vs {comparison}", className="text-muted"))
    return dbc.Card(
        dbc.CardBody(
            [
                html.Div(title, className="kpi-title text-muted", title=help_text or title),
                html.Div(value, className="kpi-value"),
                html.Div(footer, className="kpi-footer small"),
            ]
        ),
        className="kpi-card h-100",
    )


def graph_panel(
    graph_id: str, title: str, subtitle: str | None = None, controls: object = None, height: int = 360
) -> dbc.Card:
    """A card holding one graph, with a title and optional controls on the right."""
    header = [html.Div([html.H6(title, className="mb-0"), html.Small(subtitle, className="text-muted")])]
    if controls is not None:
        header.append(html.Div(controls, className="ms-auto"))
    return dbc.Card(
        [
            dbc.CardHeader(header, className="d-flex align-items-center gap-2"),
            dbc.CardBody(
                dcc.Loading(
                    dcc.Graph(id=graph_id, config=GRAPH_CONFIG, style={"height": f"{height}px"}),
                    type="dot",
                    delay_show=300,
                ),
                className="p-1",
            ),
        ],
        className="h-100",
    )


def coming_next(title: str, text: str) -> dbc.Card:
    """The card a tab shows until it is built."""
    return dbc.Card(
        dbc.CardBody([html.H5(f"{title}: coming next", className="card-title"), html.P(text, className="mb-0")]),
        className="mt-3 border-info",
    )


def error_alert(message: str, title: str = "Something went wrong") -> dbc.Alert:
    return dbc.Alert([html.Strong(title + ": "), message], color="danger", className="mb-2")
