"""The add-data panel: a modal with the upload (or a database source), the report, the mapping form,
the preparing job and the list of datasets. Only analysts and admins get it (and the Add data button).
"""

from __future__ import annotations

import json

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard import ids
from dashboard.datasets.mapping import TIMESTAMP_FORMAT_TITLES
from ml.config import Settings
from ml.data.profiles import DEFAULT_SESSION_GAP_MINUTES, FIELD_TITLES, FIELDS, MAX_SESSION_GAP_MINUTES
from ml.data.reading import format_size

ACCEPT = ".csv,.txt,.gz,.parquet"
NOT_IN_FILE = "— not in the file —"


def dom_id(component_id: dict) -> str:
    """The DOM id Dash gives a pattern-matching ID (sorted keys, compact JSON), for a label's ``html_for``."""
    return json.dumps(component_id, sort_keys=True, separators=(",", ":"))


def _upload_box(settings: Settings) -> html.Div:
    limit = format_size(settings.max_upload_bytes)
    return html.Div(
        [
            dcc.Upload(
                id=ids.DATA_UPLOAD,
                children=html.Div(
                    [
                        html.Span("Drag and drop an event log here, or "),
                        html.A("choose a file", href="#", className="fw-semibold"),
                        html.Div(f"CSV, gzip CSV or Parquet, up to {limit}", className="small text-muted"),
                    ]
                ),
                accept=ACCEPT,
                max_size=settings.max_upload_bytes,
                multiple=False,
                className="data-upload border rounded p-3 text-center",
                style={"borderStyle": "dashed"},
            ),
            dbc.Alert(id=ids.DATA_REJECT_NOTE, color="warning", is_open=False, className="mt-2 mb-0 small"),
        ],
        className="mb-2",
    )


def _sql_source() -> dbc.Card:
    return dbc.Card(
        dbc.CardBody(
            [
                html.Div("Or read a database table or query", className="fw-semibold small mb-1"),
                dbc.Label("SQLAlchemy URL", html_for=ids.DATA_SQL_URL, className="small mb-0"),
                dbc.Input(
                    id=ids.DATA_SQL_URL,
                    placeholder="postgresql+psycopg://reader@db.example/shop",
                    type="text",
                    size="sm",
                    autoComplete="off",
                ),
                dbc.Row(
                    [
                        dbc.Col(
                            [
                                dbc.Label("Table", html_for=ids.DATA_SQL_TABLE, className="small mb-0"),
                                dbc.Input(id=ids.DATA_SQL_TABLE, placeholder="events", size="sm"),
                            ],
                            md=4,
                        ),
                        dbc.Col(
                            [
                                dbc.Label("or one SELECT query", html_for=ids.DATA_SQL_QUERY, className="small mb-0"),
                                dbc.Textarea(id=ids.DATA_SQL_QUERY, rows=2, size="sm"),
                            ],
                            md=8,
                        ),
                    ],
                    className="g-2 mt-1",
                ),
                dbc.Button("Read from the database", id=ids.DATA_SQL_BUTTON, size="sm", className="mt-2"),
                html.Div(
                    "Read only; connect as a role that may only read. The password is never shown or kept.",
                    className="small text-muted mt-1",
                ),
            ]
        ),
        className="mb-2",
    )


def mapping_form() -> html.Div:
    """A column choice per canonical field, the event values, dimensions, session gap and time format."""
    fields = [
        dbc.Col(
            [
                dbc.Label(FIELD_TITLES[name], html_for=dom_id(ids.data_map_field(name)), className="small mb-0"),
                dbc.Select(
                    id=ids.data_map_field(name),
                    options=[{"label": NOT_IN_FILE, "value": ""}],
                    value="",
                    placeholder=NOT_IN_FILE,  # what the select shows while no column is chosen
                    size="sm",
                ),
            ],
            md=3,
            sm=6,
        )
        for name in FIELDS
    ]
    return html.Div(
        dbc.Card(
            [
                dbc.CardHeader(html.H6("Map the columns", className="mb-0")),
                dbc.CardBody(
                    [
                        html.P(
                            "Say which column holds each field (a product, and a session ID or a user with event "
                            "times, are needed), which event values mean view, cart and purchase, and which columns "
                            "to filter and break down by.",
                            className="small",
                        ),
                        dbc.Row(fields, className="g-2 mb-2"),
                        html.Div(id=ids.DATA_MAP_EVENTS, className="mb-2"),
                        dbc.Label(
                            "Dimensions (filters and breakdowns)",
                            html_for=ids.DATA_MAP_DIMENSIONS,
                            className="small mb-0",
                        ),
                        dbc.Checklist(
                            id=ids.DATA_MAP_DIMENSIONS, options=[], value=[], inline=True, className="small mb-2"
                        ),
                        dbc.Row(
                            [
                                dbc.Col(
                                    [
                                        dbc.Label(
                                            "Session gap (minutes)", html_for=ids.DATA_MAP_GAP, className="small mb-0"
                                        ),
                                        dbc.Input(
                                            id=ids.DATA_MAP_GAP,
                                            type="number",
                                            min=1,
                                            max=MAX_SESSION_GAP_MINUTES,
                                            step=1,
                                            value=DEFAULT_SESSION_GAP_MINUTES,
                                            size="sm",
                                        ),
                                        html.Div("cuts sessions where the file has none", className="small text-muted"),
                                    ],
                                    md=3,
                                ),
                                dbc.Col(
                                    [
                                        dbc.Label(
                                            "Event time format",
                                            html_for=ids.DATA_MAP_TIME_FORMAT,
                                            className="small mb-0",
                                        ),
                                        dbc.Select(
                                            id=ids.DATA_MAP_TIME_FORMAT,
                                            options=[
                                                {"label": t, "value": v} for v, t in TIMESTAMP_FORMAT_TITLES.items()
                                            ],
                                            value="auto",
                                            size="sm",
                                        ),
                                    ],
                                    md=4,
                                ),
                                dbc.Col(
                                    [
                                        dbc.Label("Profile name", html_for=ids.DATA_MAP_NAME, className="small mb-0"),
                                        dbc.Input(id=ids.DATA_MAP_NAME, value="", size="sm", maxLength=60),
                                    ],
                                    md=5,
                                ),
                            ],
                            className="g-2 mb-2",
                        ),
                        dbc.Button(
                            "Apply mapping", id=ids.DATA_MAP_APPLY, color="primary", size="sm", className="me-2"
                        ),
                        dbc.Button("Save as profile", id=ids.DATA_MAP_SAVE, color="secondary", outline=True, size="sm"),
                        html.Div(id=ids.DATA_MAP_NOTE, className="mt-2", **{"aria-live": "polite"}),
                    ]
                ),
            ],
            className="mb-2 data-mapping",
        ),
        id=ids.DATA_MAPPING,
        hidden=True,
    )


def event_value_rows(column: str, values: list[list[object]], guesses: list[str]) -> html.Div:
    """One choice (view / cart / purchase / other) per distinct value of the event column."""
    choices = [
        {"label": "other (counted, not used)", "value": ""},
        {"label": "view", "value": "view"},
        {"label": "cart", "value": "cart"},
        {"label": "purchase", "value": "purchase"},
    ]
    rows = [
        html.Tr(
            [
                html.Td(str(value)),
                html.Td(f"{int(count):,}"),
                html.Td(
                    [
                        dbc.Label(
                            f"What the event value {value} means",
                            html_for=dom_id(ids.data_map_event(i)),
                            className="visually-hidden",
                        ),
                        dbc.Select(id=ids.data_map_event(i), options=choices, value=guess, size="sm"),
                    ]
                ),
            ]
        )
        for i, ((value, count), guess) in enumerate(zip(values, guesses, strict=True))
    ]
    head = html.Thead(html.Tr([html.Th(f"Value of '{column}'"), html.Th("Rows"), html.Th("Means")]))
    return html.Div(
        [
            html.Div("Event types", className="small fw-semibold"),
            dbc.Table([head, html.Tbody(rows)], size="sm", className="small mb-0 data-event-values"),
        ]
    )


def _actions() -> html.Div:
    return html.Div(
        [
            dbc.Button("Keep", id=ids.DATA_KEEP, color="primary", className="me-2", style={"display": "none"}),
            dbc.Button(
                "Keep without the invalid rows",
                id=ids.DATA_KEEP_DROPPING,
                color="warning",
                className="me-2",
                style={"display": "none"},
            ),
            dbc.Button(
                "Refuse",
                id=ids.DATA_REFUSE,
                color="secondary",
                outline=True,
                className="me-2",
                style={"display": "none"},
            ),
            dbc.Button(
                "Map the columns myself", id=ids.DATA_MAP_OPEN, color="link", size="sm", style={"display": "none"}
            ),
        ],
        className="mb-2",
    )


def _job() -> html.Div:
    return html.Div(
        [
            html.Div(
                [
                    dbc.Progress(id=ids.DATA_PROGRESS, value=0, className="flex-grow-1", style={"height": "1.2rem"}),
                    dbc.Button(
                        "Cancel", id=ids.DATA_PREPARE_CANCEL, color="danger", outline=True, size="sm", disabled=True
                    ),
                ],
                className="d-flex align-items-center gap-2 mb-2",
            ),
            html.Div(id=ids.DATA_JOB_NOTE, **{"aria-live": "polite"}),
            dbc.Button("Activate", id=ids.DATA_ACTIVATE, color="success", className="mb-2", style={"display": "none"}),
        ]
    )


def panel(settings: Settings) -> html.Div:
    """The modal and its stores (kept in the shell, so a running job reports even when the modal is closed)."""
    body = [
        dbc.Row(
            dbc.Col(
                [
                    dbc.Label("Dataset name", html_for=ids.DATA_NAME, className="small mb-0"),
                    dbc.Input(id=ids.DATA_NAME, placeholder="taken from the file name", maxLength=80, size="sm"),
                ],
                md=6,
            ),
            className="mb-2",
        ),
        _upload_box(settings),
        _sql_source() if settings.allow_sql_sources else None,
        dcc.Loading(html.Div(id=ids.DATA_REPORT), type="dot"),
        _actions(),
        mapping_form(),
        _job(),
        html.H6("Datasets", className="mt-3"),
        html.Div(id=ids.DATA_DELETE_NOTE, **{"aria-live": "polite"}),
        html.Div(id=ids.DATA_LIST),
    ]
    return html.Div(
        [
            dcc.Store(id=ids.DATA_INTAKE_STORE, storage_type="memory"),
            dcc.Store(id=ids.DATA_KEEP_REQUEST_STORE, storage_type="memory"),
            dcc.Store(id=ids.DATA_JOB_STORE, storage_type="memory"),
            dcc.Store(id=ids.DATA_DELETE_STORE, storage_type="memory"),
            dcc.ConfirmDialog(id=ids.DATA_DELETE_CONFIRM, message=""),
            dbc.Modal(
                [
                    dbc.ModalHeader(dbc.ModalTitle("Add data")),
                    dbc.ModalBody(body),
                    dbc.ModalFooter(dbc.Button("Close", id=ids.DATA_CLOSE, color="secondary")),
                ],
                id=ids.DATA_MODAL,
                is_open=False,
                size="xl",
                scrollable=True,
            ),
        ]
    )
