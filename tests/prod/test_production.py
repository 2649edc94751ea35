"""The production stack as a team runs it: gunicorn with 2 workers, a Celery worker, the real Redis.

Started by the test as subprocesses (see ``stack.py``), on a small data file
and private folders. The Train callback is driven with the HTTP requests the
browser sends, each on a new connection, so start, progress polls and cancel
land on either gunicorn worker; the access log says which one answered.
"""

from __future__ import annotations

import time
import uuid

import pytest
import redis

from dashboard import ids
from dashboard.background import HEARTBEAT_TTL_S
from ml.serving.locking import REDIS_LOCK_NAME, REDIS_LOCK_TTL_S
from ml.serving.registry import STAGING_DIR, ModelStore, Registry
from tests.ml.factories import lowercase_form
from tests.prod.stack import DashHTTP, Stack

TINY = ["classification:logreg", "regression:linear", "clustering:kmeans"]
LONG = ["classification:svm", "classification:forest", "classification:xgboost", "regression:svr"]
START = f"{ids.TRAIN_BUTTON}.n_clicks"


@pytest.fixture(scope="module")
def stack(tmp_path_factory, small_clicks, redis_url):
    root = tmp_path_factory.mktemp("prod")
    data = root / "small.csv"
    lowercase_form(small_clicks).to_csv(data, index=False)
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    stack = Stack(root, redis_url, prefix, data)
    try:
        stack.start_worker()
        stack.start_web()
        yield stack
    finally:
        stack.stop()
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)


def registry_of(stack: Stack) -> Registry:
    return ModelStore(stack.models_dir).registry("small")  # the data file's dataset key


def lock_holder(stack: Stack) -> bytes | None:
    return redis.Redis.from_url(stack.redis_url).get(f"{stack.prefix}{REDIS_LOCK_NAME}")


class TrainJob:
    """One press of Train on one page load, and the polls that follow it."""

    def __init__(self, stack: Stack, models: list[str], mode: str = "quick"):
        self.stack = stack
        self.http = DashHTTP(stack.base)
        self.spec = self.http.spec(ids.TRAIN_MESSAGE)
        self.values = {
            START: 1,
            f"{ids.TRAIN_WINDOW}.value": 3,
            f"{ids.TRAIN_MODELS}.value": models,
            f"{ids.TRAIN_MODE}.value": mode,
        }
        status, started, tag = self.http.post(self.http.body(self.spec, self.values, START))
        assert status == 200 and "cacheKey" in started, started
        self.handles = {"cacheKey": started["cacheKey"], "job": started["job"]}
        self.started_tag = tag
        self.progress_tags: list[str] = []
        self.last_progress: list[dict] | None = None

    def poll(self) -> dict:
        status, answer, tag = self.http.post(self.http.body(self.spec, self.values, START), **self.handles)
        assert status in (200, 204), (status, answer)
        progress = answer.get("progress", {}).get(f"{ids.TRAIN_PROGRESS_STORE}.data")
        if progress:
            self.progress_tags.append(tag)
            self.last_progress = progress[0] if isinstance(progress[0], list) else progress
        return answer

    def wait(self, until, timeout: float, every: float = 0.5) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answer = self.poll()
            if until(answer, self):
                return answer
            time.sleep(every)
        raise AssertionError(f"timed out; last progress {self.last_progress}")

    def fitting(self) -> bool:
        return bool(self.last_progress) and any(s["state"] == "fitting" for s in self.last_progress)

    def cancel(self) -> int:
        spec = next(s for s in self.http.specs if s["output"] == f"{ids.TRAIN_CANCEL}.id")
        body = self.http.body(spec, {f"{ids.TRAIN_CANCEL}.n_clicks": 1}, f"{ids.TRAIN_CANCEL}.n_clicks")
        status, _answer, _tag = self.http.post(body, cancelJob=self.handles["job"])
        return status


def figure(name: str, seconds: float) -> None:
    """A measured duration, printed for docs/RELIABILITY.md (``pytest -s`` shows it)."""
    print(f"FIGURE {name}: {seconds:.1f} s")


def finished(answer: dict, _job: TrainJob) -> bool:
    return "response" in answer or "sideUpdate" in answer


def message_of(answer: dict) -> str:
    return str(answer.get("response", {}).get(ids.TRAIN_MESSAGE, {}).get("children"))


def test_a_job_started_through_one_worker_reports_progress_through_the_other(stack):
    started = time.monotonic()
    job = TrainJob(stack, TINY)
    answer = job.wait(finished, timeout=240)
    figure("tiny job (3 quick models, 2,500 sessions) start to answer", time.monotonic() - started)
    assert "Trained 3 models" in message_of(answer)
    runs = registry_of(stack).runs()
    assert sorted(r.model for r in runs) == ["kmeans", "linear", "logreg"]
    started_by = stack.pid_of(job.started_tag)
    reported_by = {stack.pid_of(tag) for tag in job.progress_tags}
    assert started_by and None not in reported_by
    # Progress lives in Redis, so the worker that did not start the job reports it too.
    assert reported_by - {started_by}, f"every progress answer came from the starting worker {started_by}"
    assert "succeeded" in stack.log_text("celery")  # the job ran on the Celery worker, not in gunicorn
    assert lock_holder(stack) is None


def test_cancel_stops_the_job_at_once_and_saves_nothing(stack):
    before = [r.run_id for r in registry_of(stack).runs()]
    job = TrainJob(stack, LONG, mode="full")
    job.wait(lambda _a, j: j.fitting(), timeout=180)
    assert lock_holder(stack) is not None
    cancelled = time.monotonic()
    assert job.cancel() in (200, 204)
    # The worker turns Dash's SIGTERM into an exception: the lock goes now, not when it expires.
    deadline = time.monotonic() + REDIS_LOCK_TTL_S / 2
    while lock_holder(stack) is not None and time.monotonic() < deadline:
        time.sleep(0.25)
    assert lock_holder(stack) is None, "the cancelled job still holds the training lock"
    figure("cancel to training lock released", time.monotonic() - cancelled)
    staging = registry_of(stack).root / STAGING_DIR
    assert not staging.exists() or not any(staging.iterdir())
    assert [r.run_id for r in registry_of(stack).runs()] == before
    assert "JobTerminated" not in stack.log_text("celery")  # unwound cleanly, not a crash


def test_a_worker_killed_mid_job_leaves_the_job_reported_failed_and_nothing_half_written(stack):
    before = [r.run_id for r in registry_of(stack).runs()]
    job = TrainJob(stack, LONG, mode="full")
    job.wait(lambda _a, j: j.fitting(), timeout=180)
    staging = registry_of(stack).root / STAGING_DIR
    stack.kill_worker()  # the Celery main process and the child running the job, SIGKILL
    killed = time.monotonic()
    answer = job.wait(finished, timeout=HEARTBEAT_TTL_S + 30)
    figure("worker killed to job reported failed", time.monotonic() - killed)
    shown = str(answer.get("sideUpdate", {}).get(ids.TRAIN_MESSAGE, {}).get("children"))
    assert "the worker running it was lost" in shown and "Nothing from this job was saved" in shown
    assert [r.run_id for r in registry_of(stack).runs()] == before  # no half run is visible
    # A new worker and the next job: the dead job's lock expired, its staging folder is removed.
    stack.start_worker()
    deadline = time.monotonic() + REDIS_LOCK_TTL_S + 10
    while lock_holder(stack) is not None and time.monotonic() < deadline:
        time.sleep(0.5)
    figure("worker killed to its training lock expired (worker restarted meanwhile)", time.monotonic() - killed)
    answer = TrainJob(stack, ["classification:logreg"]).wait(finished, timeout=240)
    assert "Trained 1 model" in message_of(answer)
    assert not staging.exists() or not any(staging.iterdir())
    assert len(registry_of(stack).runs()) == len(before) + 1


def test_restarting_the_app_loses_no_finished_runs(stack):
    before = {r.run_id for r in registry_of(stack).runs()}
    assert before
    stack.stop()
    restarted = time.monotonic()
    stack.start_worker()
    stack.start_web()
    figure("restart of Celery worker and gunicorn (2 workers) until both answer", time.monotonic() - restarted)
    assert {r.run_id for r in registry_of(stack).runs()} == before
    job = TrainJob(stack, ["clustering:kmeans"])  # and the restarted stack trains again
    assert "Trained 1 model" in message_of(job.wait(finished, timeout=240))
    assert before < {r.run_id for r in registry_of(stack).runs()}
