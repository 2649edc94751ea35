"""The Train panel: train models from the browser as a Dash background callback.

The job runs in a worker process on the diskcache manager: it reads the data
file from disk, trains through ``ml.training.train`` (which holds the registry's
training lock and commits runs only at the end), reports per-model progress,
and returns a small message plus the registry's new version. Cancel kills the
worker; the lock dies with it and no run of the job becomes visible.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import dash_bootstrap_components as dbc
from dash import Input, Output, State, ctx, dcc, html, no_update

from dashboard import ids
from dashboard.context import AppContext
from ml.config import Settings
from ml.data.loading import load_events
from ml.errors import ClickstreamError, ValidationError
from ml.serving.locking import TrainingBusy, running_job
from ml.serving.registry import registry_for
from ml.serving.training import TrainConfig, dataset_description, model_catalogue, train
from ml.tasks import CLASSIFICATION, CLUSTERING, REGRESSION

log = logging.getLogger(__name__)

MAX_WINDOW = 20
PROGRESS_INTERVAL_S = 0.3
TASK_NAMES = {CLASSIFICATION: "Classifier", REGRESSION: "Basket value", CLUSTERING: "Segments"}
STATE_COLOURS = {"waiting": "secondary", "fitting": "info", "done": "success", "failed": "danger"}


def model_options() -> list[dict[str, str]]:
    return [
        {"label": f"{TASK_NAMES[task]}: {title}", "value": f"{task}:{name}"} for task, name, title in model_catalogue()
    ]


def training_panel(context: AppContext) -> dbc.Card:
    """Window, models, quick or full grids, Train and Cancel, and the progress of the job."""
    options = model_options()
    busy = running_job(context.settings)  # the Redis lock when REDIS_URL is set, else the file lock
    notice = (
        dbc.Alert(
            f"A training job is running ({busy.get('description', '')}, started {busy.get('started', '?')}). "
            "Its models appear here when it finishes.",
            color="info",
            className="mb-2",
        )
        if busy
        else None
    )
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
                                        options=[
                                            {"label": "Quick: one setting per model (seconds)", "value": "quick"},
                                            {"label": "Full grid (about a minute)", "value": "full"},
                                        ],
                                        value="quick",
                                    ),
                                ],
                                md=5,
                            ),
                            dbc.Col(
                                [
                                    dbc.Button("Train", id=ids.TRAIN_BUTTON, color="primary", className="me-2"),
                                    dbc.Button(
                                        "Cancel", id=ids.TRAIN_CANCEL, color="danger", outline=True, disabled=True
                                    ),
                                ],
                                md=4,
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
                    notice,
                    dbc.Progress(id=ids.TRAIN_PROGRESS_BAR, value=0, className="mb-2", style={"height": "1.2rem"}),
                    html.Div(id=ids.TRAIN_STATUS),
                    html.Div(id=ids.TRAIN_MESSAGE),
                    dcc.Store(id=ids.TRAIN_PROGRESS_STORE),
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


# ---------------------------------------------------------------- the job (runs in the worker process)
def _throttled(set_progress: Callable[[list], None]) -> Callable[[list[dict]], None]:
    """Forward progress at once when a model changes state, else at most every 0.3 s."""
    last = {"time": 0.0, "states": None}

    def report(statuses: list[dict]) -> None:
        states = [s["state"] for s in statuses]
        now = time.monotonic()
        if states != last["states"] or now - last["time"] >= PROGRESS_INTERVAL_S:
            last.update(time=now, states=states)
            set_progress([statuses])

    return report


def _alert(text: str, colour: str) -> dbc.Alert:
    return dbc.Alert(text, color=colour, className="mb-0", dismissable=True)


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


def run_training_job(
    settings: Settings,
    set_progress: Callable[[list], None],
    window: object,
    models: list[str] | None,
    mode: str | None,
) -> tuple[object, object]:
    """Train what the panel asks for; returns (message, new registry version or no_update)."""
    k, problem = check_request(window, models)
    if problem:
        return _alert(problem, "warning"), no_update
    registry = registry_for(settings)
    try:
        loaded = load_events(settings.data_file)
        config = TrainConfig(window=k, models=tuple(models), quick=mode != "full")
        result = train(
            loaded.clicks,
            registry,
            config,
            source=loaded.source,
            data_hash=loaded.data_hash,
            progress=_throttled(set_progress),
            dataset=dataset_description(registry, loaded),
            codebooks=loaded.codebooks,
        )
    except TrainingBusy as exc:
        return _alert(str(exc).capitalize() + ".", "warning"), no_update
    except ValidationError as exc:
        return _alert(f"The data file cannot be used: {exc.report()}", "danger"), no_update
    except ClickstreamError as exc:
        return _alert(str(exc), "danger"), no_update
    except Exception as exc:  # the job must always answer; the traceback goes to the log
        log.exception("training job failed")
        return _alert(
            f"Training failed ({type(exc).__name__}: {exc}); the models in use are unchanged.", "danger"
        ), no_update
    set_progress([result.statuses])
    failed = [s["title"] for s in result.statuses if s["state"] == "failed"]
    n = len(result.run_ids)
    text = f"Trained {n} model{'s' if n != 1 else ''} in {result.seconds:.0f} s (window k = {k})."
    if failed:
        text += f" Failed: {', '.join(failed)} (see the table for the reason)."
    version = registry.runs()[0].run_id if registry.runs() else ""
    return _alert(text, "warning" if failed else "success"), version


# ---------------------------------------------------------------- callbacks
def register_training_callbacks(app, context: AppContext) -> None:
    @app.callback(
        Output(ids.TRAIN_MESSAGE, "children"),
        Output(ids.APP_MODELS_STORE, "data"),
        Input(ids.TRAIN_BUTTON, "n_clicks"),
        State(ids.TRAIN_WINDOW, "value"),
        State(ids.TRAIN_MODELS, "value"),
        State(ids.TRAIN_MODE, "value"),
        background=True,
        manager=context.background_manager,
        interval=500,
        running=[
            (Output(ids.TRAIN_BUTTON, "disabled"), True, False),
            (Output(ids.TRAIN_CANCEL, "disabled"), False, True),
        ],
        cancel=[Input(ids.TRAIN_CANCEL, "n_clicks")],
        progress=[Output(ids.TRAIN_PROGRESS_STORE, "data")],
        prevent_initial_call=True,
    )
    def start_training(set_progress, n_clicks, window, models, mode):
        if not n_clicks:
            return no_update, no_update
        return run_training_job(context.settings, set_progress, window, models, mode)

    @app.callback(
        Output(ids.TRAIN_MESSAGE, "children", allow_duplicate=True),
        Input(ids.TRAIN_CANCEL, "n_clicks"),
        prevent_initial_call=True,
    )
    def announce_cancel(n_clicks):
        if not n_clicks or ctx.triggered_id != ids.TRAIN_CANCEL:
            return no_update
        return _alert("Training cancelled: nothing from this job was saved; the models in use are unchanged.", "info")

    @app.callback(
        Output(ids.TRAIN_STATUS, "children"),
        Output(ids.TRAIN_PROGRESS_BAR, "value"),
        Output(ids.TRAIN_PROGRESS_BAR, "label"),
        Input(ids.TRAIN_PROGRESS_STORE, "data"),
    )
    def show_progress(statuses):
        value, label = overall_progress(statuses)
        return status_table(statuses), value, label
