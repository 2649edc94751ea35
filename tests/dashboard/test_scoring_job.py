"""The scoring job's state on the server: what any page shows, Cancel from any page, and whose upload it is.

Real uploads (bytes as the browser sends them) and real models (the shared
``trained_registry``); the job runs in-process, its job file is the one the
tab polls. The browser side (a reload while a job runs) is in
``tests/e2e/test_scoring_browser.py``.
"""

from __future__ import annotations

import time

import pandas as pd
import pytest
from dash import no_update

from dashboard.tabs import scoring
from dashboard.tabs.scoring.job import HIDDEN, POLL_IDLE_MS, POLL_RUNNING_MS, job_view, run_job, scoring_board
from dashboard.uploads import INPUT_FILE, RESULTS_FILE, UploadGone, UploadStore, run_scoring_job
from ml.config import BUNDLED_DATASET_KEY
from ml.serving import jobs
from tests.dashboard.test_scoring_tab import text_of
from tests.dashboard.test_uploads import data_url
from tests.ml.factories import lowercase_form

OWNER = jobs.LOCAL_OWNER


@pytest.fixture
def scored_settings(dash_settings, tmp_path, trained_registry):
    return dash_settings.with_overrides(cache_dir=tmp_path / "cache", models_dir=trained_registry.root.parent)


@pytest.fixture(scope="module")
def small_csv(small_clicks: pd.DataFrame) -> bytes:
    return lowercase_form(small_clicks[small_clicks["session_id"] <= 60]).to_csv(index=False).encode()


@pytest.fixture
def uploaded(scored_settings, trained_registry, small_csv) -> dict:
    """This tab's upload store after a valid upload (made without login: owner ``None``)."""
    _, upload = scoring.receive_upload(scored_settings, trained_registry, data_url(small_csv), "may.csv", None)
    assert upload["valid"]
    return upload


def request_for(upload: dict, **extra: object) -> dict:
    return {"id": upload["id"], "upload": upload, "dataset": BUNDLED_DATASET_KEY, "by": OWNER, **extra}


def view(settings, upload, result=None, request=None, uploader=None, now=None):
    job = scoring_board(settings).current(BUNDLED_DATASET_KEY, OWNER, now=now)
    return job_view(settings, job, upload, result, request, uploader, now=now)


# ---------------------------------------------------------------- the job's side
def test_a_finished_job_keeps_its_answer_and_upload_in_the_job_file(scored_settings, uploaded):
    progress = []
    answer = run_job(scored_settings, request_for(uploaded), progress.append)
    assert answer["ok"] and progress[-1] == (100, "done")
    job = scoring_board(scored_settings).current(BUNDLED_DATASET_KEY, OWNER)
    assert job["state"] == jobs.DONE and job["result"] == answer and job["upload"] == uploaded
    assert job["progress"] == [100, "done"]  # the last progress the job wrote, as JSON


def test_a_cancel_from_any_page_stops_the_job_before_anything_is_written(scored_settings, uploaded, monkeypatch):
    board = scoring_board(scored_settings)
    real = run_scoring_job

    def cancel_while_reading(settings, upload_id, set_progress, **kwargs):
        def progress(step):
            set_progress(step)
            if step[0] == 10:  # another page presses Cancel while the file is read
                board.cancel(BUNDLED_DATASET_KEY, OWNER, "cancelled from another tab")

        return real(settings, upload_id, progress, **kwargs)

    monkeypatch.setattr("dashboard.tabs.scoring.job.run_scoring_job", cancel_while_reading)
    answer = run_job(scored_settings, request_for(uploaded))
    assert answer["cancelled"] and not answer["ok"]
    folder = UploadStore.for_settings(scored_settings).folder(uploaded["id"])
    assert (folder / INPUT_FILE).exists() and not (folder / RESULTS_FILE).exists()  # kept for another Score
    job = board.current(BUNDLED_DATASET_KEY, OWNER)
    assert job["state"] == jobs.CANCELLED
    monkeypatch.undo()
    assert run_job(scored_settings, request_for(uploaded))["ok"]  # Score again works on the kept input


def test_a_job_whose_worker_died_reads_as_failed(scored_settings, uploaded):
    board = scoring_board(scored_settings)
    board.start(BUNDLED_DATASET_KEY, OWNER, "scoring may.csv", upload=uploaded)
    later = time.time() + jobs.STALE_S + 5  # no heartbeat since
    _, _, style, score_off, cancel_off, interval, note, *_ = view(scored_settings, uploaded, now=later)
    assert style == HIDDEN and not score_off and cancel_off and interval == POLL_IDLE_MS
    assert "worker running it was lost" in text_of(note)


# ---------------------------------------------------------------- what a page shows
def test_a_running_job_shows_its_progress_and_offers_cancel_after_a_reload(scored_settings, uploaded):
    board = scoring_board(scored_settings)
    job = board.start(BUNDLED_DATASET_KEY, OWNER, "scoring may.csv", upload=uploaded)
    board.progress(BUNDLED_DATASET_KEY, OWNER, job["job_id"], [40, "scoring 60 sessions"])
    # A reloaded page has empty stores: it gets the upload back, shows the bar, Score off, Cancel on.
    value, label, style, score_off, cancel_off, interval, note, upload, result = view(scored_settings, None)
    assert (value, label, style) == (40, "scoring 60 sessions", {})
    assert score_off and not cancel_off and interval == POLL_RUNNING_MS and note is None
    assert upload == uploaded and result is no_update
    # The page that started it shows the same, and keeps its own stores.
    same = view(scored_settings, uploaded)
    assert same[:7] == (40, "scoring 60 sessions", {}, True, False, POLL_RUNNING_MS, None) and same[7] is no_update


def test_a_page_with_another_upload_is_told_of_the_running_job_and_waits(scored_settings, uploaded, small_csv):
    board = scoring_board(scored_settings)
    board.start(BUNDLED_DATASET_KEY, OWNER, "scoring may.csv", upload=uploaded)
    other = {"id": "B" * 32, "filename": "june.csv", "valid": True}
    *_, score_off, cancel_off, _interval, note, upload, _result = view(scored_settings, other)
    assert score_off and not cancel_off and upload is no_update
    assert "Scoring may.csv" in text_of(note) and "another tab" in text_of(note)


def test_a_finished_job_gives_a_reloaded_page_its_results_and_old_notes_do_not_linger(scored_settings, uploaded):
    answer = run_job(scored_settings, request_for(uploaded))
    *_, note, upload, result = view(scored_settings, None)
    assert upload == uploaded and result == answer and note is None
    assert scoring.results_view(upload, result)[0] is False  # the results are shown again
    # The page that has them already gets nothing new; a new upload sees no note of the old job.
    assert view(scored_settings, uploaded, result=answer)[8] is no_update
    fresh = view(scored_settings, {"id": "C" * 32, "filename": "new.csv", "valid": True})
    assert fresh[6] is None and fresh[3] is False and fresh[7] is no_update
    # Once the results have expired, a reloaded page starts empty.
    UploadStore.for_settings(scored_settings).remove(uploaded["id"])
    assert view(scored_settings, None)[7:] == (no_update, no_update)


def test_a_failed_or_cancelled_job_says_so_on_its_upload_only(scored_settings, uploaded):
    board = scoring_board(scored_settings)
    job = board.start(BUNDLED_DATASET_KEY, OWNER, "scoring may.csv", upload=uploaded)
    board.finish(BUNDLED_DATASET_KEY, OWNER, job["job_id"], jobs.FAILED, "no trained classification model")
    assert "no trained" in text_of(view(scored_settings, uploaded)[6])
    job = board.start(BUNDLED_DATASET_KEY, OWNER, "scoring may.csv", upload=uploaded)
    board.cancel(BUNDLED_DATASET_KEY, OWNER, "Scoring cancelled: nothing was written.")
    assert "cancelled" in text_of(view(scored_settings, uploaded)[6])
    assert view(scored_settings, {"id": "D" * 32, "valid": True})[6] is None


def test_a_score_press_counts_as_running_until_its_worker_writes_the_job(scored_settings, uploaded):
    now = time.time()
    pending = view(scored_settings, uploaded, request=request_for(uploaded, requested=now), now=now)
    assert pending[3] is True and pending[4] is True and pending[5] == POLL_RUNNING_MS
    stale = view(scored_settings, uploaded, request=request_for(uploaded, requested=now - 60), now=now)
    assert stale[3] is False  # the worker never came: Score is offered again


# ---------------------------------------------------------------- whose upload it is
def test_another_users_upload_cannot_be_scored_read_or_deleted(scored_settings, trained_registry, small_csv):
    store = UploadStore.for_settings(scored_settings)
    theirs = store.save(small_csv, "theirs.csv", owner="ann")
    assert store.owned(theirs, "ann").name == theirs
    with pytest.raises(UploadGone, match="another user"):
        store.owned(theirs, "bob")
    answer = run_scoring_job(scored_settings, theirs, lambda _: None, uploader="bob")
    assert not answer["ok"] and "another user" in answer["message"]
    assert (store.folder(theirs) / INPUT_FILE).exists()
    # Replaying ann's store value as the "previous upload" of bob's tab (no login here: owner None) deletes nothing.
    scoring.receive_upload(scored_settings, trained_registry, data_url(small_csv), "mine.csv", {"id": theirs})
    assert store.folder(theirs).is_dir()
    # Nor can her results be downloaded by a page of another user.
    run_scoring_job(scored_settings, theirs, lambda _: None, uploader="ann")
    _, note = scoring.download_results(scored_settings, {"id": theirs, "ok": True, "filename": "theirs.csv"})
    assert "another user" in text_of(note)
