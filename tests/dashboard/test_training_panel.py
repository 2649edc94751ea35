"""The Train panel's background job, run as Dash runs it: a function in a worker process."""

from __future__ import annotations

import multiprocessing
import time

import pytest

from dashboard.tabs.leaderboard.training_panel import check_request, overall_progress, run_training_job, status_table
from ml.config import BUNDLED_DATASET_KEY
from ml.data import schema as S
from ml.serving import jobs
from ml.serving.locking import running_job, training_lock
from ml.serving.registry import STAGING_DIR, ModelStore
from tests.ml.factories import lowercase_form

TINY_MODELS = ["classification:logreg", "regression:linear", "clustering:kmeans"]


@pytest.fixture(scope="module")
def small_data_file(tmp_path_factory, small_clicks):
    path = tmp_path_factory.mktemp("data") / "small.csv"
    lowercase_form(small_clicks).to_csv(path, index=False)
    return path


@pytest.fixture
def job_settings(dash_settings, small_data_file, tmp_path):
    return dash_settings.with_overrides(
        data_file=small_data_file, models_dir=tmp_path / "models", cache_dir=tmp_path / "cache"
    )


def registry_for(settings):
    """The registry the panel trains into: the bundled dataset's (the data file the settings name)."""
    return ModelStore(settings.models_dir).registry(BUNDLED_DATASET_KEY)


def _message_text(message) -> str:
    return str(message.children)


def test_the_job_runs_to_completion_and_lands_in_the_registry(job_settings):
    progress: list[list] = []
    message, version = run_training_job(job_settings, progress.append, 3, TINY_MODELS, "quick")
    registry = registry_for(job_settings)
    runs = registry.runs()
    assert sorted(r.model for r in runs) == ["kmeans", "linear", "logreg"]
    assert version == runs[0].run_id
    assert "Trained 3 models" in _message_text(message) and message.color == "success"
    final = progress[-1][0]
    assert [s["state"] for s in final] == ["done", "done", "done"]
    assert any(s["state"] == "fitting" for snapshot in progress for s in snapshot[0])
    assert running_job(job_settings.models_dir) is None  # the lock is released


def test_a_second_request_while_a_job_runs_is_refused(job_settings):
    with training_lock(job_settings.models_dir, "job from another tab"):
        message, version = run_training_job(job_settings, lambda _: None, 3, TINY_MODELS, "quick")
    assert "already running" in _message_text(message) and message.color == "warning"
    assert version.__class__.__name__ == "NoUpdate"
    assert registry_for(job_settings).runs() == []


def _train_forever(settings) -> None:
    run_training_job(settings, lambda _: None, 3, ["classification:svm", "classification:forest"], "full")


def test_a_killed_job_leaves_no_run_and_the_models_in_use_stay(job_settings):
    """Dash cancels a background job by killing its process: nothing of that job may land."""
    run_training_job(job_settings, lambda _: None, 3, ["classification:logreg"], "quick")
    registry = registry_for(job_settings)
    before = [r.run_id for r in registry.runs()]
    worker = multiprocessing.get_context("fork").Process(target=_train_forever, args=(job_settings,))
    worker.start()
    deadline = time.monotonic() + 60
    while running_job(job_settings.models_dir) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert running_job(job_settings.models_dir) is not None, "the job never started"
    staging = registry.root / STAGING_DIR
    # Mid-fit: the job has prepared its data and opened its staging folder (slow on a busy machine).
    while not (staging.exists() and any(staging.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    worker.kill()
    worker.join(10)
    assert [r.run_id for r in registry.runs()] == before
    assert registry.champion("classification").run_id == before[0]
    assert running_job(job_settings.models_dir) is None  # the kernel released the lock
    assert any((registry_for(job_settings).root / STAGING_DIR).iterdir())  # the dead job's staging, invisible
    # The next job cleans up after the dead one and lands normally.
    message, _ = run_training_job(job_settings, lambda _: None, 3, ["classification:tree"], "quick")
    assert message.color == "success"
    assert not any((registry_for(job_settings).root / STAGING_DIR).iterdir())
    assert len(registry.runs()) == 2


@pytest.mark.parametrize(
    ("window", "models", "expected"),
    [
        (None, TINY_MODELS, "whole number"),
        ("three", TINY_MODELS, "whole number"),
        (0, TINY_MODELS, "between 1 and"),
        (99, TINY_MODELS, "between 1 and"),
        (3, [], "at least one model"),
    ],
)
def test_bad_requests_get_a_message_and_train_nothing(job_settings, window, models, expected):
    assert expected in check_request(window, models)[1]
    message, _ = run_training_job(job_settings, lambda _: None, window, models, "quick")
    assert expected in _message_text(message)
    assert not job_settings.models_dir.exists() or registry_for(job_settings).runs() == []


def test_too_little_data_for_the_window_is_a_clear_message(job_settings, small_clicks, tmp_path):
    tiny = tmp_path / "tiny.csv"
    lowercase_form(small_clicks[small_clicks[S.SESSION_ID] <= 40]).to_csv(tiny, index=False)
    settings = job_settings.with_overrides(data_file=tiny)
    message, _ = run_training_job(settings, lambda _: None, 10, ["classification:logreg"], "quick")
    assert "too few sessions" in _message_text(message) and message.color == "danger"
    assert registry_for(settings).runs() == []


def test_progress_counts_finished_models_and_fold_progress():
    statuses = [
        {
            "task": "classification",
            "title": "A",
            "state": "done",
            "step": 6,
            "steps": 6,
            "detail": "",
            "metric": "roc_auc",
            "score": 0.6,
        },
        {
            "task": "regression",
            "title": "B",
            "state": "fitting",
            "step": 3,
            "steps": 6,
            "detail": "fold 3/5",
            "metric": "",
            "score": None,
        },
        {
            "task": "clustering",
            "title": "C",
            "state": "waiting",
            "step": 0,
            "steps": 0,
            "detail": "",
            "metric": "",
            "score": None,
        },
        {
            "task": "classification",
            "title": "D",
            "state": "failed",
            "step": 1,
            "steps": 6,
            "detail": "boom",
            "metric": "",
            "score": None,
        },
    ]
    value, label = overall_progress(statuses)
    assert value == pytest.approx(100 * (1 + 0.5 + 0 + 1) / 4)
    assert label == "2 of 4 models"
    table = str(status_table(statuses))
    assert "roc_auc 0.600" in table and "fit 3 of 6: fold 3/5" in table and "boom" in table
    assert overall_progress(None) == (0.0, "")


# ---------------------------------------------------------------- job state on the server
def test_the_job_state_is_on_the_server_and_quick_states_its_measured_time(job_settings):
    from dashboard.tabs.leaderboard.training_panel import job_board, mode_options

    board = job_board(job_settings)
    before = {o["value"]: o["label"] for o in mode_options(board, BUNDLED_DATASET_KEY)}
    assert "not run on this dataset here yet" in before["quick"] and "not run" in before["full"]
    run_training_job(job_settings, lambda _: None, 3, TINY_MODELS, "quick", owner="ann")
    job = board.current(BUNDLED_DATASET_KEY, "ann")
    assert job["state"] == "done" and "Trained 3 models" in job["message"]
    assert [s["state"] for s in job["progress"]] == ["done", "done", "done"]
    assert board.current(BUNDLED_DATASET_KEY, "bob") is None  # another user's page shows no job of ann's
    timing = board.timing(BUNDLED_DATASET_KEY, "quick")
    assert timing["items"] == 3 and 0 < timing["seconds"] < 600
    after = {o["value"]: o["label"] for o in mode_options(board, BUNDLED_DATASET_KEY)}
    assert f"last run here: {jobs.format_duration(timing['seconds'])} for 3 models" in after["quick"]
    assert "not run" in after["full"]  # only what was measured


def _train_slowly(settings) -> None:
    run_training_job(settings, lambda _: None, 3, ["classification:svm", "classification:forest"], "full", owner="ann")


def test_cancel_from_another_page_stops_the_job_and_no_row_says_fitting(job_settings):
    from dashboard.tabs.leaderboard.training_panel import job_board, job_view

    board = job_board(job_settings)
    worker = multiprocessing.get_context("fork").Process(target=_train_slowly, args=(job_settings,))
    worker.start()
    deadline = time.monotonic() + 120
    job = None
    while time.monotonic() < deadline:
        job = board.current(BUNDLED_DATASET_KEY, "ann")
        if job and job.get("progress") and any(s["state"] == "fitting" for s in job["progress"]):
            break
        time.sleep(0.1)
    assert job and job["state"] == "running", job
    table, _, _, message, _, train_disabled, cancel_disabled, _ = job_view(job, None, None)
    assert train_disabled and not cancel_disabled and message is None  # a reloaded page: progress and Cancel
    board.cancel(BUNDLED_DATASET_KEY, "ann", "Training cancelled.")  # what the Cancel button of any page does
    worker.join(120)
    assert worker.exitcode == 0  # it stopped by itself, at its next step
    assert registry_for(job_settings).runs() == []
    job = board.current(BUNDLED_DATASET_KEY, "ann")
    assert job["state"] == "cancelled"
    table, _, _, message, _, train_disabled, cancel_disabled, _ = job_view(job, None, None)
    assert "fitting" not in str(table) and "waiting" not in str(table) and "cancelled" in str(table)
    assert not train_disabled and cancel_disabled and "cancelled" in str(message)
    assert running_job(job_settings.models_dir) is None


FITTING_ROW = {
    "task": "classification",
    "title": "A",
    "state": "fitting",
    "step": 1,
    "steps": 5,
    "detail": "",
    "metric": "",
    "score": None,
}


def test_a_killed_worker_reads_as_failed_and_a_new_press_clears_the_old_alert(job_settings):
    from dashboard.background import TRAINING_LOST
    from dashboard.tabs.leaderboard.training_panel import job_board, job_view

    board = job_board(job_settings)
    job = board.start(BUNDLED_DATASET_KEY, "ann", "test", pid=2**22 + 12345)  # no such process
    board.progress(BUNDLED_DATASET_KEY, "ann", job["job_id"], [FITTING_ROW])
    state = board.current(BUNDLED_DATASET_KEY, "ann")
    assert state["state"] == "failed" and state["message"] == TRAINING_LOST and state["lost"] == "its process ended"
    table, _, _, message, _, train_disabled, cancel_disabled, _ = job_view(state, None, None)
    assert "fitting" not in str(table) and "not saved (worker lost)" in str(table)
    assert "the worker running it was lost" in str(message) and "'danger'" in str(message)
    assert not train_disabled and cancel_disabled
    pressed = {"requested": time.time() + 5}  # a Train press after that job
    view = job_view(state, pressed, None)
    assert "Starting" in str(view[3]) and view[5] is True  # the old job's alert is gone; no second press


def test_a_job_on_another_machine_that_stopped_beating_reads_as_failed(job_settings):
    from dashboard.tabs.leaderboard.training_panel import job_board

    board = job_board(job_settings)
    job = board.start(BUNDLED_DATASET_KEY, "ann", "test", host="another-machine", pid=1)  # its pid means nothing here
    board.progress(BUNDLED_DATASET_KEY, "ann", job["job_id"], [FITTING_ROW])
    assert board.current(BUNDLED_DATASET_KEY, "ann")["state"] == "running"
    later = time.time() + jobs.STALE_S + 1
    state = board.current(BUNDLED_DATASET_KEY, "ann", now=later)
    assert state["state"] == "failed" and state["lost"].startswith("no heartbeat")


def test_a_running_job_beats_so_a_long_step_is_not_taken_for_a_lost_one(job_settings, monkeypatch):
    from dashboard.tabs.leaderboard.training_panel import job_board

    monkeypatch.setattr(jobs, "BEAT_S", 0.05)
    board = job_board(job_settings)
    job = board.start(BUNDLED_DATASET_KEY, "ann", "test")
    first = board.current(BUNDLED_DATASET_KEY, "ann")["updated"]
    with board.beating(BUNDLED_DATASET_KEY, "ann", job["job_id"]):
        time.sleep(0.5)  # one long fit: no progress written
    assert board.current(BUNDLED_DATASET_KEY, "ann")["updated"] > first


def test_a_cancel_stands_against_a_late_progress_write_and_a_process_already_killed(job_settings):
    from dashboard.tabs.leaderboard.training_panel import CANCEL_TEXT, job_board

    board = job_board(job_settings)
    job = board.start(BUNDLED_DATASET_KEY, "ann", "test", pid=2**22 + 12345)  # Dash's cancel killed it first
    board.cancel(BUNDLED_DATASET_KEY, "ann", CANCEL_TEXT)
    board.progress(BUNDLED_DATASET_KEY, "ann", job["job_id"], [FITTING_ROW])  # a write that was on its way
    board.finish(BUNDLED_DATASET_KEY, "ann", job["job_id"], "done", "Trained 1 model")
    state = board.current(BUNDLED_DATASET_KEY, "ann")
    assert state["state"] == "cancelled" and state["message"] == CANCEL_TEXT and state["progress"] is None
