"""The Train panel: train models on the active dataset from the browser, as a Dash background callback.

The job's state lives on the server (``ml.serving.jobs``), not in the browser
tab that started it: the job writes its per-model progress and its final
message to a small JSON file per dataset and user, and the panel polls that
file. So after a reload, or in another browser tab, the panel shows the
running job and offers Cancel. Cancel marks the job cancelled at once (every
page sees it) and the job stops at its next step; in the tab that started it,
Dash also stops the worker (on Celery, SIGTERM unwinds the job), so nothing of
the job lands either way. While it runs the job renews its file every few
seconds; a job whose worker died (killed, out of memory, machine gone) reads as
failed, with a message saying the worker was lost and nothing was saved. The quick
and full options say how long they took the last time they ran here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import dash_bootstrap_components as dbc
from dash import Input, Output, State, ctx, dcc, html, no_update

from dashboard import ids
from dashboard.auth.session import signed_in_user
from dashboard.background import TRAINING_LOST, JobTerminated
from dashboard.context import AppContext
from ml.config import BUNDLED_DATASET_KEY, Settings
from ml.errors import ClickstreamError, ValidationError
from ml.serving import jobs
from ml.serving.datasets import DatasetStore
from ml.serving.locking import TrainingBusy, running_job
from ml.serving.training import TrainConfig, TrainingCancelled, dataset_description, model_catalogue, train
from ml.tasks import CLASSIFICATION, CLUSTERING, REGRESSION

log = logging.getLogger(__name__)

MAX_WINDOW = 20
PROGRESS_INTERVAL_S = 0.3
POLL_RUNNING_MS = 1000
POLL_IDLE_MS = 5000
PENDING_SECONDS = 30  # a Train press waits this long for its worker before the button is offered again
TASK_NAMES = {CLASSIFICATION: "Classifier", REGRESSION: "Basket value", CLUSTERING: "Segments"}
STATE_COLOURS = {"waiting": "secondary", "fitting": "info", "done": "success", "failed": "danger", "cancelled": "dark"}
MODES = {
    "quick": "Quick: one setting per model",
    "full": "Full grid: several settings per model, each cross-validated",
}
CANCEL_TEXT = "Training cancelled: nothing from this job was saved; the models in use are unchanged."


def model_options() -> list[dict[str, str]]:
    return [
        {"label": f"{TASK_NAMES[task]}: {title}", "value": f"{task}:{name}"} for task, name, title in model_catalogue()
    ]


def job_board(settings: Settings) -> jobs.JobBoard:
    return jobs.JobBoard(settings.cache_dir / "jobs", "training", lost_message=TRAINING_LOST)


def owner_name() -> str:
    """Who is asking: the logged-in user's name, or the one local user of an app without login."""
    user = signed_in_user()
    return user.name if user is not None else jobs.LOCAL_OWNER


def mode_options(board: jobs.JobBoard, dataset: str) -> list[dict[str, str]]:
    """The quick/full choice, each with how long it took on this machine (measured, never guessed)."""
    options = []
    for mode, text in MODES.items():
        timing = board.timing(dataset, mode)
        if timing:
            n = timing["items"]
            when = f"last run here: {jobs.format_duration(timing['seconds'])} for {n} model{'s' if n != 1 else ''}"
        else:
            when = "not run on this dataset here yet; the first run is timed"
        options.append({"label": f"{text} ({when})", "value": mode})
    return options


def training_panel(context: AppContext) -> dbc.Card:
    """Window, models, quick or full grids, Train and Cancel, and the progress of the job."""
    options = model_options()
    return dbc.Card(
        [
            dbc.CardHeader(html.H6("Train models", className="mb-0")),
            dbc.CardBody(
                [
                    dbc.Row(
                        [
                            dbc.Col(
                                [
                                    dbc.Label("Observation window k (clicks)", html_for=ids.TRAIN_WINDOW),
                                    dbc.Input(
                                        id=ids.TRAIN_WINDOW,
                                        type="number",
                                        min=1,
                                        max=MAX_WINDOW,
                                        step=1,
                                        value=context.settings.window,
                                    ),
                                ],
                                md=3,
                            ),
                            dbc.Col(
                                [
                                    dbc.Label("Hyper-parameters", html_for=ids.TRAIN_MODE),
                                    dbc.RadioItems(
                                        id=ids.TRAIN_MODE,
                                        options=mode_options(job_board(context.settings), BUNDLED_DATASET_KEY),
                                        value="quick",
                                    ),
                                ],
                                md=6,
                            ),
                            dbc.Col(
                                [
                                    dbc.Button("Train", id=ids.TRAIN_BUTTON, color="primary", className="me-2"),
                                    dbc.Button(
                                        "Cancel", id=ids.TRAIN_CANCEL, color="danger", outline=True, disabled=True
                                    ),
                                ],
                                md=3,
                                className="d-flex align-items-end justify-content-md-end mt-2 mt-md-0",
                            ),
                        ],
                        className="g-3 mb-2",
                    ),
                    dbc.Label("Models", html_for=ids.TRAIN_MODELS),
                    dbc.Checklist(
                        id=ids.TRAIN_MODELS,
                        options=options,
                        value=[o["value"] for o in options],
                        inline=True,
                        className="small mb-2",
                    ),
                    html.Div(id=ids.TRAIN_NOTICE),
                    dbc.Progress(
                        id=ids.TRAIN_PROGRESS_BAR,
                        value=0,
                        className="mb-2",
                        style={"height": "1.2rem"},
                    ),
                    html.Div(id=ids.TRAIN_STATUS),
                    html.Div(id=ids.TRAIN_MESSAGE, **{"aria-live": "polite"}),
                    dcc.Store(id=ids.TRAIN_REQUEST_STORE),
                    dcc.Interval(id=ids.TRAIN_POLL, interval=POLL_IDLE_MS),
                ]
            ),
        ],
        className="mb-3",
    )


# ---------------------------------------------------------------- progress display (pure)
def overall_progress(statuses: list[dict] | None) -> tuple[float, str]:
    """Share of the job done (models done or failed count fully; fitting counts its folds)."""
    if not statuses:
        return 0.0, ""
    done = 0.0
    for s in statuses:
        if s["state"] in ("done", "failed"):
            done += 1
        elif s["state"] == "fitting" and s["steps"]:
            done += s["step"] / s["steps"]
    finished = sum(s["state"] in ("done", "failed") for s in statuses)
    return 100.0 * done / len(statuses), f"{finished} of {len(statuses)} models"


def as_cancelled(
    statuses: list[dict] | None, state: str = "cancelled", detail: str = "not saved (cancelled)"
) -> list[dict] | None:
    """A cancelled or failed job's rows: nothing is still waiting or fitting, and nothing of it was saved."""
    if not statuses:
        return statuses
    stopped = ("waiting", "fitting", "done")
    return [{**s, "state": state, "detail": detail} if s["state"] in stopped else s for s in statuses]


def status_table(statuses: list[dict] | None) -> html.Div | dbc.Table:
    """One row per model: task, model, state, what it is doing or its score."""
    if not statuses:
        return html.Div()
    rows = []
    for s in statuses:
        if s["state"] == "done" and s["score"] is not None:
            detail = (
                f"{s['metric']} {s['score']:.3f} (held-out)"
                if s["task"] != CLUSTERING
                else f"{s['metric']} {s['score']:.3f}"
            )
        elif s["state"] == "fitting":
            detail = f"fit {s['step']} of {s['steps']}: {s['detail']}"
        else:
            detail = s["detail"]
        rows.append(
            html.Tr(
                [
                    html.Td(TASK_NAMES[s["task"]]),
                    html.Td(s["title"]),
                    html.Td(dbc.Badge(s["state"], color=STATE_COLOURS.get(s["state"], "secondary"))),
                    html.Td(detail, className="small"),
                ]
            )
        )
    header = html.Thead(html.Tr([html.Th("Task"), html.Th("Model"), html.Th("State"), html.Th("Detail")]))
    return dbc.Table([header, html.Tbody(rows)], size="sm", hover=True, className="mb-2 train-status")


def _alert(text: str, colour: str) -> dbc.Alert:
    return dbc.Alert(text, color=colour, className="mb-0", dismissable=True)


def job_view(job: dict | None, request: dict | None, other: dict | None, now: float | None = None) -> tuple:
    """What the panel shows for the owner's latest job on this dataset.

    Returns (status table, bar value, bar label, message, notice, Train disabled,
    Cancel disabled, poll interval). A Train press whose worker has not written
    its job yet counts as running (so the button cannot start a second job).
    """
    now = time.time() if now is None else now
    pending = jobs.awaiting_worker(request, job, PENDING_SECONDS, now)
    notice = None
    if other and not (job and job.get("state") == jobs.RUNNING):
        notice = dbc.Alert(
            f"A training job is running ({other.get('description', '')}, started {other.get('started', '?')}). "
            "Its models appear when it finishes; one job runs at a time.",
            color="info",
            className="mb-2",
        )
    if pending:
        message = dbc.Alert("Starting the training job…", color="info", className="mb-0")
        return html.Div(), 0.0, "", message, notice, True, True, POLL_RUNNING_MS
    if job is None:
        return html.Div(), 0.0, "", None, notice, bool(other), True, POLL_IDLE_MS
    statuses = job.get("progress")
    state = job.get("state")
    if state == jobs.CANCELLED:
        statuses = as_cancelled(statuses)
    elif state == jobs.FAILED:  # a failed job saves nothing (a partial failure is "done" with a warning)
        lost = bool(job.get("lost"))
        statuses = as_cancelled(statuses, "failed", "not saved (worker lost)" if lost else "not saved (job failed)")
    value, label = overall_progress(statuses)
    running = state == jobs.RUNNING
    if running:
        message = None  # a new job: the last job's alert is gone
    else:
        colour = job.get("colour") or {"done": "success", "failed": "danger", "cancelled": "info"}.get(state, "info")
        message = _alert(job.get("message") or "", colour) if job.get("message") else None
    interval = POLL_RUNNING_MS if running else POLL_IDLE_MS
    return status_table(statuses), value, label, message, notice, running or bool(other), not running, interval


# ---------------------------------------------------------------- the job (runs in the worker process)
def _throttled(report: Callable[[list[dict]], None]) -> Callable[[list[dict]], None]:
    """Forward progress at once when a model changes state, else at most every 0.3 s."""
    last = {"time": 0.0, "states": None}

    def forward(statuses: list[dict]) -> None:
        states = [s["state"] for s in statuses]
        now = time.monotonic()
        if states != last["states"] or now - last["time"] >= PROGRESS_INTERVAL_S:
            last.update(time=now, states=states)
            report(statuses)

    return forward


def check_request(window: object, models: list[str] | None) -> tuple[int, str | None]:
    """The window as an int, or a message saying what is wrong with the request."""
    try:
        k = int(window)
    except (TypeError, ValueError):
        return 0, "The observation window must be a whole number of clicks."
    if not 1 <= k <= MAX_WINDOW:
        return k, f"The observation window must be between 1 and {MAX_WINDOW} clicks."
    if not models:
        return k, "Choose at least one model to train."
    return k, None


def _train_on(
    settings: Settings,
    datasets: DatasetStore,
    dataset: str,
    config: TrainConfig,
    report: Callable[[list[dict]], None],
    should_stop: Callable[[], bool],
) -> tuple[str, str, str, object]:
    """Train on a dataset: (message, alert colour, job state, new registry version or no_update)."""
    try:
        registry = datasets.registry(dataset)
        loaded = datasets.prepared(dataset).loaded
        result = train(
            loaded.clicks,
            registry,
            config,
            source=loaded.source,
            data_hash=loaded.data_hash,
            progress=_throttled(report),
            should_stop=should_stop,
            dataset=dataset_description(registry, loaded),
            codebooks=loaded.codebooks,
        )
    except TrainingCancelled:
        return CANCEL_TEXT, "info", jobs.CANCELLED, no_update
    except TrainingBusy as exc:
        return str(exc).capitalize() + ".", "warning", jobs.FAILED, no_update
    except ValidationError as exc:
        return f"The data cannot be used: {exc.report()}", "danger", jobs.FAILED, no_update
    except ClickstreamError as exc:
        return str(exc), "danger", jobs.FAILED, no_update
    except Exception as exc:  # the job must always answer; the traceback goes to the log
        log.exception("training job failed")
        text = f"Training failed ({type(exc).__name__}: {exc}); the models in use are unchanged."
        return text, "danger", jobs.FAILED, no_update
    report(result.statuses)
    failed = [s["title"] for s in result.statuses if s["state"] == "failed"]
    n = len(result.run_ids)
    took = jobs.format_duration(result.seconds)
    text = f"Trained {n} model{'s' if n != 1 else ''} in {took} (window k = {config.window})."
    if failed:
        text += f" Failed: {', '.join(failed)} (see the table for the reason)."
    else:
        mode = "quick" if config.quick else "full"
        job_board(settings).record_timing(dataset, mode, result.seconds, len(result.statuses))
    runs = registry.runs()
    return text, "warning" if failed else "success", jobs.DONE, runs[0].run_id if runs else ""


def run_training_job(
    settings: Settings,
    set_progress: Callable[[list], None],
    window: object,
    models: list[str] | None,
    mode: str | None,
    dataset: str = BUNDLED_DATASET_KEY,
    owner: str | None = None,
    datasets: DatasetStore | None = None,
) -> tuple[object, object]:
    """Train what the panel asks for on a dataset; returns (message, new registry version or no_update).

    The job's progress and outcome are also written to its job file, which is
    what every open page shows.
    """
    board = job_board(settings)
    mode = "full" if mode == "full" else "quick"
    job = board.start(dataset, owner, f"{len(models or [])} models, {mode}, on {dataset}")
    try:
        with board.beating(dataset, owner, job["job_id"]):
            return _run_job(settings, board, job, set_progress, window, models, mode, dataset, owner, datasets)
    except JobTerminated:  # Dash's cancel on Celery (SIGTERM): the job unwound; every page reads cancelled
        board.finish(dataset, owner, job["job_id"], jobs.CANCELLED, CANCEL_TEXT, colour="info")
        raise
    except BaseException:  # SystemExit, KeyboardInterrupt: the worker is going away mid-job
        board.finish(dataset, owner, job["job_id"], jobs.FAILED, TRAINING_LOST, colour="danger", lost="worker stopped")
        raise


def _run_job(settings, board, job, set_progress, window, models, mode, dataset, owner, datasets):

    def report(statuses: list[dict]) -> None:
        board.progress(dataset, owner, job["job_id"], statuses)
        set_progress([statuses])

    k, problem = check_request(window, models)
    if problem:
        text, colour, state, version = problem, "warning", jobs.FAILED, no_update
    else:
        config = TrainConfig(window=k, models=tuple(models), quick=mode != "full")
        text, colour, state, version = _train_on(
            settings,
            datasets or DatasetStore.for_settings(settings),
            dataset,
            config,
            report,
            lambda: board.cancel_requested(dataset, owner, job["job_id"]),
        )
    board.finish(dataset, owner, job["job_id"], state, text, colour=colour)
    return _alert(text, colour), version


# ---------------------------------------------------------------- callbacks
def register_training_callbacks(app, context: AppContext) -> None:
    board = job_board(context.settings)

    @app.callback(
        Output(ids.TRAIN_REQUEST_STORE, "data"),
        Output(ids.TRAIN_BUTTON, "disabled", allow_duplicate=True),
        Output(ids.TRAIN_MESSAGE, "children", allow_duplicate=True),
        Input(ids.TRAIN_BUTTON, "n_clicks"),
        State(ids.TRAIN_WINDOW, "value"),
        State(ids.TRAIN_MODELS, "value"),
        State(ids.TRAIN_MODE, "value"),
        State(ids.APP_DATASET_STORE, "data"),
        prevent_initial_call=True,
    )
    def request_training(n_clicks, window, models, mode, dataset):
        # A normal callback first: it knows who is asking (the worker has no request) and clears old alerts.
        if not n_clicks:
            return no_update, no_update, no_update
        request = {
            "window": window,
            "models": models,
            "mode": mode,
            "dataset": context.known(dataset),
            "owner": owner_name(),
            "requested": time.time(),
        }
        return request, True, dbc.Alert("Starting the training job…", color="info", className="mb-0")

    @app.callback(
        Output(ids.APP_MODELS_STORE, "data", allow_duplicate=True),
        Input(ids.TRAIN_REQUEST_STORE, "data"),
        background=True,
        manager=context.background_manager,
        interval=1000,
        cancel=[Input(ids.TRAIN_CANCEL, "n_clicks")],
        prevent_initial_call=True,
    )
    def start_training(request):
        if not request:
            return no_update
        _, version = run_training_job(
            context.settings,
            lambda _: None,
            request.get("window"),
            request.get("models"),
            request.get("mode"),
            dataset=context.known(request.get("dataset")),
            owner=request.get("owner"),
            datasets=context.datasets,
        )
        return version

    @app.callback(
        Output(ids.TRAIN_MESSAGE, "children", allow_duplicate=True),
        Input(ids.TRAIN_CANCEL, "n_clicks"),
        State(ids.APP_DATASET_STORE, "data"),
        prevent_initial_call=True,
    )
    def cancel_training(n_clicks, dataset):
        if not n_clicks or ctx.triggered_id != ids.TRAIN_CANCEL:
            return no_update
        board.cancel(context.known(dataset), owner_name(), CANCEL_TEXT)
        return _alert(CANCEL_TEXT, "info")

    @app.callback(
        Output(ids.TRAIN_STATUS, "children"),
        Output(ids.TRAIN_PROGRESS_BAR, "value"),
        Output(ids.TRAIN_PROGRESS_BAR, "label"),
        Output(ids.TRAIN_MESSAGE, "children"),
        Output(ids.TRAIN_NOTICE, "children"),
        Output(ids.TRAIN_BUTTON, "disabled"),
        Output(ids.TRAIN_CANCEL, "disabled"),
        Output(ids.TRAIN_POLL, "interval"),
        Output(ids.TRAIN_MODE, "options"),
        Input(ids.TRAIN_POLL, "n_intervals"),
        Input(ids.APP_DATASET_STORE, "data"),
        State(ids.TRAIN_REQUEST_STORE, "data"),
    )
    def show_job(_tick, dataset, request):
        key = context.known(dataset)
        job = board.current(key, owner_name())
        other = running_job(context.settings)  # any job holding the lock (Redis when REDIS_URL is set), any dataset
        return (*job_view(job, request, other), mode_options(board, key))
