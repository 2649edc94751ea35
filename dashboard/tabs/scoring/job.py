"""The scoring job's state on the server: progress, Cancel and results that outlive the browser tab.

A Score press starts a background callback (diskcache or Celery); the job
writes its state to a job file per dataset and user (``ml.serving.jobs``):
the upload it scores (with its report), its progress, and at the end its small
answer (summary, histogram, preview rows). The tab polls that file. So after a
reload, or in another browser tab of the same user, the tab shows the running
job's progress and offers Cancel, and a finished job's results come back while
they are kept on the server. Cancel marks the job cancelled at once (every
page sees it); the job stops at its next step and writes nothing; in the tab
that started it Dash also stops the worker. A job whose worker died reads as
failed. A finished job of another upload says nothing: old alerts never linger
into a new upload.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import dash_bootstrap_components as dbc
from dash import html, no_update

from dashboard.background import SCORING_LOST, JobTerminated
from dashboard.tabs.leaderboard.training_panel import PENDING_SECONDS, POLL_IDLE_MS, POLL_RUNNING_MS
from dashboard.uploads import SCORING_CANCELLED, UploadGone, UploadStore, run_scoring_job
from ml.config import Settings
from ml.serving import jobs

HIDDEN = {"visibility": "hidden"}


def scoring_board(settings: Settings) -> jobs.JobBoard:
    return jobs.JobBoard(settings.cache_dir / "jobs", "scoring", lost_message=SCORING_LOST)


# ---------------------------------------------------------------- the job (runs in the worker process)
def run_job(settings: Settings, request: dict, set_progress: Callable[[tuple], None] = lambda _: None) -> dict:
    """Score the upload a Score press names, keeping the job's state in its job file; returns the job's answer."""
    board = scoring_board(settings)
    dataset, owner = request["dataset"], request.get("by")
    upload = request.get("upload") or {"id": request.get("id")}
    job = board.start(dataset, owner, f"scoring {upload.get('filename') or 'a file'}", upload=upload)
    job_id = job["job_id"]

    def report(progress: tuple) -> None:
        board.progress(dataset, owner, job_id, list(progress))
        set_progress(progress)

    try:
        with board.beating(dataset, owner, job_id):
            answer = run_scoring_job(
                settings,
                request.get("id"),
                report,
                dataset=dataset,
                run_id=request.get("run_id"),
                by=owner,
                uploader=request.get("uploader"),
                should_stop=lambda: board.cancel_requested(dataset, owner, job_id),
            )
    except JobTerminated:  # Dash's cancel on Celery (SIGTERM): every page reads cancelled
        board.finish(dataset, owner, job_id, jobs.CANCELLED, SCORING_CANCELLED)
        raise
    except BaseException:  # SystemExit, KeyboardInterrupt: the worker is going away mid-job
        board.finish(dataset, owner, job_id, jobs.FAILED, SCORING_LOST, lost="worker stopped")
        raise
    if answer.get("cancelled"):
        board.finish(dataset, owner, job_id, jobs.CANCELLED, SCORING_CANCELLED)
    elif answer.get("ok"):
        board.finish(dataset, owner, job_id, jobs.DONE, "scored", result=answer)
    else:
        board.finish(dataset, owner, job_id, jobs.FAILED, answer.get("message") or "Scoring failed.", result=answer)
    return answer


# ---------------------------------------------------------------- what a page shows
def _results_kept(settings: Settings, upload_id: object, uploader: str | None) -> bool:
    try:
        UploadStore.for_settings(settings).owned(upload_id, uploader)
    except UploadGone:
        return False
    return True


def job_view(
    settings: Settings,
    job: dict | None,
    upload: dict | None,
    result: dict | None,
    request: dict | None,
    uploader: str | None,
    now: float | None = None,
) -> tuple:
    """What the Score area shows for the user's scoring job on this dataset.

    Returns (bar value, bar label, bar style, Score disabled, Cancel disabled,
    poll interval, job note, upload store, result store); the two stores are
    ``no_update`` unless this page lost them (a reload, another tab) and the
    job still has them on the server.
    """
    now = time.time() if now is None else now
    if jobs.awaiting_worker(request, job, PENDING_SECONDS, now):
        return 0, "starting…", {}, True, True, POLL_RUNNING_MS, None, no_update, no_update
    if job is None:
        return 0, "", HIDDEN, False, True, POLL_IDLE_MS, None, no_update, no_update
    job_upload = job.get("upload") or {}
    page_id = (upload or {}).get("id")
    adopt = page_id is None and job_upload.get("id") and _results_kept(settings, job_upload.get("id"), uploader)
    mine = adopt or (page_id is not None and page_id == job_upload.get("id"))
    new_upload = job_upload if adopt else no_update
    state = job.get("state")
    if state == jobs.RUNNING:
        progress = job.get("progress")
        value, label = progress[:2] if isinstance(progress, list) and len(progress) >= 2 else (0, "starting…")
        note = None
        if not mine:
            name = job_upload.get("filename") or "a file"
            note = dbc.Alert(
                f"Scoring {name} (started in another tab or before a reload) is running; "
                "Cancel stops it. Score this file when it has finished.",
                color="info",
                className="mb-3",
            )
        return value, label, {}, True, False, POLL_RUNNING_MS, note, new_upload, no_update
    if not mine:  # a finished job of another upload: nothing lingers
        return 0, "", HIDDEN, False, True, POLL_IDLE_MS, None, no_update, no_update
    answer = job.get("result")
    new_result = answer if answer and answer != result else no_update
    if state == jobs.DONE:
        note = None
    elif state == jobs.CANCELLED:
        note = dbc.Alert(job.get("message") or SCORING_CANCELLED, color="info", className="mb-3")
    else:
        text = job.get("message") or "Scoring failed; nothing was written."
        note = dbc.Alert(html.Pre(text, className="mb-0 scoring-message"), color="danger", className="mb-3")
    return 0, "", HIDDEN, False, True, POLL_IDLE_MS, note, new_upload, new_result
