"""Batch scoring tab: upload a click file, read its validation report, score it, download the scores.

The upload is decoded and kept on the server (``dashboard.uploads``); the
browser holds only its random id, in a memory store of its own tab. A file
with problems gets the engine's full problem list and how to fix it, and is
not scored. Scoring runs as a background callback (diskcache, or Celery with Redis): it
reads the upload from its temporary folder, scores with the saved models,
writes the CSV ``python -m ml score`` would write (formulas neutralised),
deletes the input, and returns a small summary and the first rows to preview.
"""

from __future__ import annotations

import logging
import time

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import Input, Output, State, dcc, html, no_update

from dashboard import ids
from dashboard.components import graph_panel
from dashboard.context import AppContext
from dashboard.figures.scoring import column_defs, p_convert_histogram, report_card, results_summary
from dashboard.tabs.leaderboard.training_panel import owner_name
from dashboard.tabs.scoring.job import POLL_IDLE_MS, POLL_RUNNING_MS, job_view, run_job, scoring_board
from dashboard.tabs.scoring.rules import model_choices, model_note, pin_choice, rule_card, rule_note
from dashboard.upload_guard import register_upload_guard
from dashboard.uploads import (
    PREVIEW_ROWS,
    SCORING_CANCELLED,
    UploadGone,
    UploadStore,
    check_upload,
    display_name,
    download_name,
    model_info,
    problems_data,
    report_data,
    results_file,
    target_csv,
    target_download_name,
    upload_owner,
)
from ml.config import BUNDLED_DATASET_KEY, Settings
from ml.data.reading import format_size
from ml.errors import ValidationError
from ml.serving.registry import Registry
from ml.serving.scoring import RULE_CAPACITY

log = logging.getLogger(__name__)

TAB_ID = "scoring"
LABEL = "Batch scoring"
USES_FILTERS = False
TRAIN_TAB = "leaderboard"  # where the Train panel lives

ACCEPT = ".csv,.txt,.gz,.parquet"


# ---------------------------------------------------------------- callback bodies
def _scored(upload: dict | None, result: dict | None) -> bool:
    return bool(upload and result and result.get("ok") and result.get("id") == upload.get("id"))


def readiness(registry: Registry, upload: dict | None, result: dict | None) -> tuple[bool, bool, object]:
    """(hide the Score area, show the no-model alert, which model will score)."""
    info = model_info(registry)
    if info is None:
        return True, True, None
    valid = bool(upload and upload.get("valid"))
    return not valid or _scored(upload, result), False, model_note(info)


def results_view(upload: dict | None, result: dict | None) -> tuple[bool, object, go.Figure | object, object]:
    """(hide the results, summary, P(convert) histogram, preview rows) for this tab's latest job."""
    if not _scored(upload, result):
        return True, None, no_update, []
    hist = result["histogram"]
    figure = p_convert_histogram(hist["counts"], hist["edges"], result["models"]["threshold"])
    return False, results_summary(result), figure, result["preview"]


def receive_upload(
    settings: Settings, registry: Registry, contents: str | None, filename: str | None, previous: dict | None
) -> tuple[dbc.Card, dict]:
    """The upload callback's body: (report card, this tab's upload store: small JSON with the report's data)."""
    if previous:
        # This tab's earlier upload is replaced (only if it is this user's: a copied store value deletes nothing).
        UploadStore.for_settings(settings).remove(previous.get("id"), owner=upload_owner())
    name = display_name(filename)
    invalid = {"id": None, "filename": name, "valid": False}
    try:
        checked = check_upload(settings, registry, contents, name)
    except ValidationError as exc:
        report = problems_data(exc, name)
        return report_card(report), {**invalid, "report": report}
    except Exception as exc:  # the tab must answer; the traceback goes to the log
        log.exception("could not read the upload %s", name)
        report = problems_data(ValidationError([], name), name, f"{type(exc).__name__}: {exc}")
        return report_card(report), {**invalid, "report": report}
    report = report_data(checked)
    return report_card(report), {"id": checked.upload_id, "filename": name, "valid": True, "report": report}


def report_view(upload: dict | None) -> object:
    """The latest upload's report, drawn from its data in the tab's store (back after a tab switch)."""
    return report_card(upload["report"]) if upload and upload.get("report") else _placeholder()


def download_targets(
    settings: Settings, result: dict | None, rule: str | None, percent: float | None
) -> tuple[object, object]:
    """The ranked target list (rank, session, P, decile, segment) under the chosen rule, or why not."""
    rule = rule or RULE_CAPACITY
    try:
        text, n = target_csv(settings, result, rule, percent)
    except UploadGone as exc:
        return no_update, dbc.Alert(str(exc).capitalize() + ".", color="warning", className="py-1 mb-0")
    name = target_download_name(result.get("filename"), rule, percent)
    note = dbc.Alert(f"Target list: {n:,} sessions, best first.", color="success", className="py-1 mb-0")
    return dcc.send_string(text, filename=name, type="text/csv"), note


def download_results(settings: Settings, result: dict | None) -> tuple[object, object]:
    """The results CSV of this tab's latest job, or a note that it has expired."""
    try:
        path = results_file(settings, result)
    except UploadGone as exc:
        return no_update, dbc.Alert(str(exc).capitalize() + ".", color="warning", className="py-1 mb-0")
    return dcc.send_file(str(path), filename=download_name(result.get("filename")), type="text/csv"), None


# ---------------------------------------------------------------- layout
def _upload_card(context: AppContext) -> dbc.Card:
    limit = format_size(context.settings.max_upload_bytes)
    box = dcc.Upload(
        id=ids.SCORING_UPLOAD,
        children=html.Div(
            [
                html.Strong("Drop a click file here"),
                html.Span(" or "),
                html.Span("choose one", className="text-primary text-decoration-underline"),
            ]
        ),
        accept=ACCEPT,
        max_size=context.settings.max_upload_bytes,
        multiple=False,
        className="scoring-upload",
        className_active="scoring-upload-active",
    )
    no_model = dbc.Alert(
        [
            html.Div("No trained model yet: the validation report works, scoring needs a model.", className="mb-2"),
            dbc.Button("Train models", id=ids.SCORING_TRAIN_BUTTON, color="warning", size="sm"),
        ],
        id=ids.SCORING_NO_MODEL,
        color="warning",
        is_open=False,
        className="mt-3 mb-0",
    )
    return dbc.Card(
        [
            dbc.CardHeader(html.H6("1. Upload a click file", className="mb-0")),
            dbc.CardBody(
                [
                    box,
                    html.Div(
                        f"CSV (the UCI ';' file or the lowercase comma form, plain or .gz) or Parquet; up to {limit}. "
                        "The file is read as data only and deleted from the server after scoring "
                        "(results after an hour).",
                        className="small text-muted mt-2",
                    ),
                    dbc.Alert(id=ids.SCORING_REJECT_NOTE, color="danger", is_open=False, className="mt-2 mb-0 small"),
                    no_model,
                ]
            ),
        ],
        className="mb-3",
    )


def _placeholder() -> dbc.Card:
    return dbc.Card(
        dbc.CardBody(
            [
                html.H6("2. Validation report", className="card-title"),
                html.P(
                    "Upload a file to see its rows, sessions, dates and every problem found, before anything is "
                    "scored. Sessions too short to score, or already converted in the first clicks, are counted "
                    "and kept in the download with their status.",
                    className="text-muted mb-0",
                ),
            ]
        ),
        className="h-100",
    )


def layout(context: AppContext, key: str = BUNDLED_DATASET_KEY) -> html.Div:
    grid = dag.AgGrid(
        id=ids.SCORING_PREVIEW,
        columnDefs=column_defs(),
        rowData=[],
        defaultColDef={
            "sortable": True,
            "resizable": True,
            "flex": 1,
            "wrapHeaderText": True,
            "autoHeaderHeight": True,
        },
        dashGridOptions={
            "domLayout": "autoHeight",
            "pagination": True,
            "paginationPageSize": 10,
            "paginationPageSizeSelector": [10, 25, 50],
        },
        className="scoring-grid",
    )
    score_area = html.Div(
        dbc.Card(
            dbc.CardBody(
                [
                    html.H6("3. Score", className="mb-0 me-3"),
                    html.Div(
                        [
                            dbc.Button("Score", id=ids.SCORING_SCORE_BUTTON, color="primary", className="me-2"),
                            dbc.Button("Cancel", id=ids.SCORING_CANCEL, color="danger", outline=True, disabled=True),
                        ],
                        className="me-3",
                    ),
                    dbc.Progress(
                        id=ids.SCORING_PROGRESS, value=0, className="flex-grow-1", style={"visibility": "hidden"}
                    ),
                ],
                className="d-flex align-items-center",
            ),
            className="mb-3",
        ),
        id=ids.SCORING_SCORE_AREA,
        hidden=True,
    )
    results = html.Div(
        [
            html.Div(id=ids.SCORING_SUMMARY),
            dbc.Row(
                [
                    dbc.Col(
                        graph_panel(ids.SCORING_HISTOGRAM, "P(convert) of scored sessions", "dashed: threshold"), lg=3
                    ),
                    dbc.Col(
                        dbc.Card(
                            [
                                dbc.CardHeader(
                                    [
                                        html.H6(f"Preview: the first {PREVIEW_ROWS} sessions", className="mb-0"),
                                        dbc.Button(
                                            "Download target list (CSV)",
                                            id=ids.SCORING_TARGETS_BUTTON,
                                            color="success",
                                            size="sm",
                                            className="ms-auto me-2",
                                        ),
                                        dbc.Button(
                                            "Download all scores (CSV)",
                                            id=ids.SCORING_DOWNLOAD_BUTTON,
                                            color="primary",
                                            size="sm",
                                        ),
                                    ],
                                    className="d-flex align-items-center",
                                ),
                                dbc.CardBody([grid, html.Div(id=ids.SCORING_DOWNLOAD_NOTE, className="mt-2")]),
                            ],
                            className="h-100",
                        ),
                        lg=9,
                    ),
                ],
                className="g-3",
            ),
            dcc.Download(id=ids.SCORING_DOWNLOAD),
            dcc.Download(id=ids.SCORING_TARGETS_DOWNLOAD),
        ],
        id=ids.SCORING_RESULTS,
        hidden=True,
    )
    return html.Div(
        [
            dbc.Row(
                [
                    dbc.Col([_upload_card(context), rule_card()], lg=4),
                    dbc.Col(dcc.Loading(html.Div(_placeholder(), id=ids.SCORING_REPORT), type="dot"), lg=8),
                ],
                className="g-3 mb-3",
            ),
            score_area,
            html.Div(id=ids.SCORING_JOB_NOTE),
            results,
            dcc.Interval(id=ids.SCORING_POLL, interval=POLL_IDLE_MS),  # reads the job's state on the server
        ]
    )


# ---------------------------------------------------------------- callbacks
def register_callbacks(app, context: AppContext) -> None:
    board = scoring_board(context.settings)
    register_upload_guard(
        app,
        ids.SCORING_UPLOAD,
        ids.SCORING_REJECT_NOTE,
        ids.SCORING_UPLOAD_STORE,
        "Split it into smaller files, or score it with python -m ml score.",
    )

    @app.callback(
        Output(ids.SCORING_UPLOAD_STORE, "data"),
        Output(ids.SCORING_UPLOAD, "contents"),
        Output(ids.SCORING_JOB_NOTE, "children", allow_duplicate=True),
        Input(ids.SCORING_UPLOAD, "contents"),
        State(ids.SCORING_UPLOAD, "filename"),
        State(ids.SCORING_UPLOAD_STORE, "data"),
        State(ids.APP_DATASET_STORE, "data"),
        prevent_initial_call=True,
    )
    def upload_file(contents, filename, previous, dataset):
        if contents is None:
            return no_update, no_update, no_update
        _, upload = receive_upload(context.settings, context.registry_for(dataset), contents, filename, previous)
        return upload, None, None  # small JSON; the browser drops its copy of the bytes; the last job's note goes

    @app.callback(
        Output(ids.SCORING_REPORT, "children"),
        Input(ids.SCORING_UPLOAD_STORE, "data"),
        Input(ids.SCORING_REPORT, "id"),  # also when the tab is shown again: the report comes back
    )
    def show_report(upload, _mounted):
        return report_view(upload)

    @app.callback(
        Output(ids.SCORING_REQUEST_STORE, "data"),
        Output(ids.SCORING_SCORE_BUTTON, "disabled", allow_duplicate=True),
        Output(ids.SCORING_POLL, "interval", allow_duplicate=True),
        Input(ids.SCORING_SCORE_BUTTON, "n_clicks"),
        State(ids.SCORING_UPLOAD_STORE, "data"),
        State(ids.SCORING_MODEL_DROPDOWN, "value"),
        State(ids.APP_DATASET_STORE, "data"),
        prevent_initial_call=True,
    )
    def request_scoring(n_clicks, upload, run_id, dataset):
        # The job listens to this shell-level store, not to the button: re-rendering the tab
        # re-inserts the button, which would otherwise start (and spend) a worker process.
        if not n_clicks or not upload or not upload.get("valid"):
            return no_update, no_update, no_update
        request = {
            "id": upload["id"],
            "upload": upload,  # small JSON (the report's data): a reloaded page gets it back from the job file
            "press": n_clicks,
            "dataset": context.known(dataset),
            "run_id": run_id,
            "by": owner_name(),
            "uploader": upload_owner(),
            "requested": time.time(),
        }
        return request, True, POLL_RUNNING_MS  # the job file takes over from the next poll

    @app.callback(
        Output(ids.SCORING_RESULT_STORE, "data"),
        Input(ids.SCORING_REQUEST_STORE, "data"),
        background=True,
        manager=context.background_manager,
        interval=500,
        cancel=[Input(ids.SCORING_CANCEL, "n_clicks")],
        prevent_initial_call=True,
    )
    def score_upload(request):
        # Progress, Score/Cancel and notes come from the job file (show_job), so every page shows the same.
        if not request:
            return no_update
        return run_job(context.settings, {**request, "dataset": context.known(request.get("dataset"))})

    @app.callback(
        Output(ids.SCORING_JOB_NOTE, "children", allow_duplicate=True),
        Input(ids.SCORING_CANCEL, "n_clicks"),
        State(ids.APP_DATASET_STORE, "data"),
        prevent_initial_call=True,
    )
    def cancel_scoring(n_clicks, dataset):
        if not n_clicks:
            return no_update
        board.cancel(context.known(dataset), owner_name(), SCORING_CANCELLED)  # every page reads it at once
        return dbc.Alert(SCORING_CANCELLED, color="info", className="mb-3")

    @app.callback(
        Output(ids.SCORING_PROGRESS, "value"),
        Output(ids.SCORING_PROGRESS, "label"),
        Output(ids.SCORING_PROGRESS, "style"),
        Output(ids.SCORING_SCORE_BUTTON, "disabled"),
        Output(ids.SCORING_CANCEL, "disabled"),
        Output(ids.SCORING_POLL, "interval"),
        Output(ids.SCORING_JOB_NOTE, "children"),
        Output(ids.SCORING_UPLOAD_STORE, "data", allow_duplicate=True),
        Output(ids.SCORING_RESULT_STORE, "data", allow_duplicate=True),
        # Only the tab's own interval is an input: the shell's stores outlive the tab, so as inputs they
        # would fire this callback while the tab (and its interval) is not shown.
        Input(ids.SCORING_POLL, "n_intervals"),
        State(ids.SCORING_REQUEST_STORE, "data"),
        State(ids.SCORING_UPLOAD_STORE, "data"),
        State(ids.APP_DATASET_STORE, "data"),
        State(ids.SCORING_RESULT_STORE, "data"),
        prevent_initial_call="initial_duplicate",  # on mount too: a reloaded page shows the job at once
    )
    def show_job(_tick, request, upload, dataset, result):
        key = context.known(dataset)
        job = board.current(key, owner_name())
        request = request if request and request.get("dataset") == key else None
        return job_view(context.settings, job, upload, result, request, upload_owner())

    @app.callback(
        Output(ids.SCORING_SCORE_AREA, "hidden"),
        Output(ids.SCORING_NO_MODEL, "is_open"),
        Output(ids.SCORING_MODEL_NOTE, "children"),
        Input(ids.SCORING_UPLOAD_STORE, "data"),
        Input(ids.SCORING_RESULT_STORE, "data"),
        Input(ids.APP_MODELS_STORE, "data"),
        Input(ids.SCORING_MODEL_DROPDOWN, "value"),
        State(ids.APP_DATASET_STORE, "data"),
    )
    def show_readiness(upload, result, _models_version, _run_id, dataset):
        return readiness(context.registry_for(dataset), upload, result)

    @app.callback(
        Output(ids.SCORING_MODEL_DROPDOWN, "options"),
        Output(ids.SCORING_MODEL_DROPDOWN, "value"),
        Input(ids.APP_MODELS_STORE, "data"),
        Input(ids.SCORING_RESULT_STORE, "data"),  # a scoring job may have pinned the model
        State(ids.APP_DATASET_STORE, "data"),
    )
    def list_models(_version, _result, dataset):
        return model_choices(context.registry_for(dataset))

    @app.callback(
        Output(ids.SCORING_MODEL_DROPDOWN, "options", allow_duplicate=True),
        Input(ids.SCORING_MODEL_DROPDOWN, "value"),
        State(ids.APP_DATASET_STORE, "data"),
        prevent_initial_call=True,
    )
    def pin_model_choice(run_id, dataset):
        registry = context.registry_for(dataset)
        if not pin_choice(registry, run_id, owner_name()):
            return no_update
        return model_choices(registry)[0]  # the labels now say which one is pinned

    @app.callback(
        Output(ids.SCORING_RULE_NOTE, "children"),
        Input(ids.SCORING_MODEL_DROPDOWN, "value"),
        Input(ids.SCORING_RULE_RADIO, "value"),
        Input(ids.SCORING_CAPACITY_SLIDER, "value"),
        Input(ids.SCORING_RESULT_STORE, "data"),
        State(ids.APP_DATASET_STORE, "data"),
    )
    def show_rule(run_id, rule, percent, result, dataset):
        return rule_note(context.registry_for(dataset), run_id, rule, percent, result)

    @app.callback(
        Output(ids.SCORING_TARGETS_DOWNLOAD, "data"),
        Output(ids.SCORING_DOWNLOAD_NOTE, "children", allow_duplicate=True),
        Input(ids.SCORING_TARGETS_BUTTON, "n_clicks"),
        State(ids.SCORING_RESULT_STORE, "data"),
        State(ids.SCORING_RULE_RADIO, "value"),
        State(ids.SCORING_CAPACITY_SLIDER, "value"),
        prevent_initial_call=True,
    )
    def download_target_list(n_clicks, result, rule, percent):
        if not n_clicks:
            return no_update, no_update
        return download_targets(context.settings, result, rule, percent)

    @app.callback(
        Output(ids.SCORING_RESULTS, "hidden"),
        Output(ids.SCORING_SUMMARY, "children"),
        Output(ids.SCORING_HISTOGRAM, "figure"),
        Output(ids.SCORING_PREVIEW, "rowData"),
        Input(ids.SCORING_UPLOAD_STORE, "data"),
        Input(ids.SCORING_RESULT_STORE, "data"),
    )
    def show_results(upload, result):
        return results_view(upload, result)

    @app.callback(
        Output(ids.SCORING_DOWNLOAD, "data"),
        Output(ids.SCORING_DOWNLOAD_NOTE, "children"),
        Input(ids.SCORING_DOWNLOAD_BUTTON, "n_clicks"),
        State(ids.SCORING_RESULT_STORE, "data"),
        prevent_initial_call=True,
    )
    def download(n_clicks, result):
        if not n_clicks:
            return no_update, no_update
        return download_results(context.settings, result)

    @app.callback(
        Output(ids.APP_TABS, "active_tab", allow_duplicate=True),
        Input(ids.SCORING_TRAIN_BUTTON, "n_clicks"),
        prevent_initial_call=True,
    )
    def go_to_training(n_clicks):
        return TRAIN_TAB if n_clicks else no_update
