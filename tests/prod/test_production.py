"""The production stack as a team runs it: gunicorn with 2 workers, a Celery worker, the real Redis.

Started by the test as subprocesses (see ``stack.py``), on a small data file
and private folders. The Train panel is driven with the HTTP requests the
browser sends, each on a new connection, so they land on either gunicorn
worker (the access log says which one answered):

1. the Train press (a normal callback) writes the request store;
2. the request store starts the background callback (``cacheKey``/``job``),
   which runs on the Celery worker; the browser polls it until it answers;
3. the panel polls the job's state on the server (``ids.TRAIN_POLL`` ->
   the status table, bar, message and buttons), read from the job file in
   the shared cache folder, so any worker shows any job's progress;
4. Cancel sends the panel's Cancel callback (marks the job file cancelled)
   and Dash's own cancel (``cancelJob``: SIGTERM to the Celery job).
"""

from __future__ import annotations

import base64
import json
import time
import uuid

import pytest
import redis

from dashboard import ids
from dashboard.background import HEARTBEAT_TTL_S
from ml.serving import jobs
from ml.serving.locking import REDIS_LOCK_NAME, REDIS_LOCK_TTL_S
from ml.serving.registry import STAGING_DIR, ModelStore
from tests.ml.factories import lowercase_form
from tests.prod.stack import DashHTTP, Stack

TINY = ["classification:logreg", "regression:linear", "clustering:kmeans"]
LONG = ["classification:svm", "classification:forest", "classification:xgboost", "regression:svr"]
PRESS = f"{ids.TRAIN_BUTTON}.n_clicks"
REQUEST = f"{ids.TRAIN_REQUEST_STORE}.data"
POLL = f"{ids.TRAIN_POLL}.n_intervals"
CANCEL = f"{ids.TRAIN_CANCEL}.n_clicks"


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


def runs_of(stack: Stack) -> set[str]:
    """Every complete run in the stack's model store, whichever dataset key it is under."""
    store = ModelStore(stack.models_dir)
    keys = set(store.datasets()) | {"bundled"}
    return {r.run_id for key in keys for r in store.registry(key).runs()}


def staging_left(stack: Stack) -> list[str]:
    return [str(p) for p in stack.models_dir.rglob(f"{STAGING_DIR}/*")]


def lock_holder(stack: Stack) -> bytes | None:
    return redis.Redis.from_url(stack.redis_url).get(f"{stack.prefix}{REDIS_LOCK_NAME}")


def job_files(stack: Stack) -> list[dict]:
    """The training job files the panel polls (what every page shows), read as the web workers read them."""
    found = []
    for path in sorted((stack.root / "cache" / "jobs").glob("*/training-*.json")):
        board = jobs.JobBoard(path.parent.parent, "training")
        found.append(board.current(path.parent.name, path.stem.removeprefix("training-")))
    return found


def badges(component: object) -> list[str]:
    """The state badges of the panel's status table (one per model row)."""
    found: list[str] = []
    if isinstance(component, dict):
        if component.get("type") == "Badge":
            found.append(str(component.get("props", {}).get("children")))
        for value in component.get("props", {}).values() if "props" in component else component.values():
            found += badges(value)
    elif isinstance(component, list):
        for item in component:
            found += badges(item)
    return found


def callback_spec(http: DashHTTP, output: str, trigger: str) -> dict:
    """The app's callback that writes ``output`` when ``trigger`` (``id.property``) changes."""
    for spec in http.specs:
        outputs = spec["output"]
        if (f"{output}." in outputs) and any(f"{d['id']}.{d['property']}" == trigger for d in spec["inputs"]):
            return spec
    raise AssertionError(f"no callback with output {output} and input {trigger}")


class Panel:
    """One page load's Train panel: press Train, poll the job as the browser does, Cancel."""

    def __init__(self, stack: Stack):
        self.stack = stack
        self.http = DashHTTP(stack.base)
        self.request: dict | None = None
        self.handles: dict | None = None
        self.started_tag: str | None = None
        self.answer: dict | None = None  # the background callback's final answer
        self.view: dict = {}
        self.views: list[tuple[str, dict]] = []  # (access-log tag, panel view) of each poll

    def _spec(self, output: str, trigger: str) -> dict:
        return callback_spec(self.http, output, trigger)

    def train(self, models: list[str], mode: str = "quick") -> None:
        values = {
            PRESS: 1,
            f"{ids.TRAIN_WINDOW}.value": 3,
            f"{ids.TRAIN_MODELS}.value": models,
            f"{ids.TRAIN_MODE}.value": mode,
        }
        status, answer, _ = self.http.post(self.http.body(self._spec(ids.TRAIN_REQUEST_STORE, PRESS), values, PRESS))
        assert status == 200, (status, answer)
        self.request = answer["response"][ids.TRAIN_REQUEST_STORE]["data"]
        assert self.request["models"] == models
        spec = self._spec(ids.APP_MODELS_STORE, REQUEST)
        status, started, tag = self.http.post(self.http.body(spec, {REQUEST: self.request}, REQUEST))
        assert status == 200 and "cacheKey" in started, started
        self.handles = {"cacheKey": started["cacheKey"], "job": started["job"]}
        self.started_tag = tag
        self.answer = None

    def poll_job(self) -> dict | None:
        """One poll of the background callback (as the browser sends while it runs); its answer once done."""
        if self.answer is not None or self.handles is None:
            return self.answer
        spec = self._spec(ids.APP_MODELS_STORE, REQUEST)
        status, answer, _ = self.http.post(self.http.body(spec, {REQUEST: self.request}, REQUEST), **self.handles)
        assert status in (200, 204), (status, answer)
        if "response" in answer or "sideUpdate" in answer:
            self.answer = answer
        return self.answer

    def poll_panel(self) -> dict:
        """One tick of the panel's poll: the job as the server's job file says."""
        spec = self._spec(ids.TRAIN_STATUS, POLL)
        status, answer, tag = self.http.post(self.http.body(spec, {POLL: 1, REQUEST: self.request}, POLL))
        assert status == 200, (status, answer)
        out = answer["response"]
        message = out[ids.TRAIN_MESSAGE]["children"]
        self.view = {
            "states": badges(out[ids.TRAIN_STATUS]["children"]),
            "message": json.dumps(message) if message else "",
            "colour": (message or {}).get("props", {}).get("color") if isinstance(message, dict) else None,
            "train_disabled": out[ids.TRAIN_BUTTON]["disabled"],
            "cancel_disabled": out[ids.TRAIN_CANCEL]["disabled"],
        }
        self.views.append((tag, self.view))
        return self.view

    def wait(self, until, timeout: float, every: float = 0.5) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll_job()
            view = self.poll_panel()
            if until(view):
                return view
            time.sleep(every)
        raise AssertionError(f"timed out; the panel last showed {self.view}")

    def cancel(self, with_dash_cancel: bool = True) -> None:
        """Press Cancel: the panel's callback (the job file), and Dash's cancel of this page's job."""
        spec = self._spec(ids.TRAIN_MESSAGE, CANCEL)
        status, answer, _ = self.http.post(self.http.body(spec, {CANCEL: 1}, CANCEL))
        assert status == 200 and "cancelled" in json.dumps(answer), answer
        if with_dash_cancel:
            spec = next(s for s in self.http.specs if s["output"] == f"{ids.TRAIN_CANCEL}.id")
            status, _, _ = self.http.post(self.http.body(spec, {CANCEL: 1}, CANCEL), cancelJob=self.handles["job"])
            assert status in (200, 204)


def figure(name: str, seconds: float) -> None:
    """A measured duration, printed for docs/RELIABILITY.md (``pytest -s`` shows it)."""
    print(f"FIGURE {name}: {seconds:.1f} s")


def fitting(view: dict) -> bool:
    return "fitting" in view["states"]


def test_a_job_started_through_one_worker_reports_progress_through_the_other(stack):
    started = time.monotonic()
    panel = Panel(stack)
    panel.train(TINY)
    view = panel.wait(lambda v: "Trained 3 models" in v["message"], timeout=240)
    figure("tiny job (3 quick models, 2,500 sessions) press to the panel saying trained", time.monotonic() - started)
    assert view["states"] == ["done", "done", "done"] and view["colour"] == "success"
    assert not view["train_disabled"] and view["cancel_disabled"]
    assert len(runs_of(stack)) == 3
    # The job's progress is in the job file on the shared cache folder: both workers showed its rows.
    started_by = stack.pid_of(panel.started_tag)
    for _ in range(60):  # gunicorn may hand a quick run of polls to one worker: poll until the other answered too
        if {stack.pid_of(tag) for tag, v in panel.views if v["states"]} - {started_by}:
            break
        panel.poll_panel()
        time.sleep(0.05)
    for _ in range(40):  # the access log line of the last answer may still be on its way
        showing = {stack.pid_of(tag) for tag, v in panel.views if v["states"]}
        if None not in showing:
            break
        time.sleep(0.05)
    running = {stack.pid_of(tag) for tag, v in panel.views if {"waiting", "fitting"} & set(v["states"])}
    assert started_by and None not in showing
    assert showing - {started_by}, f"every progress answer came from the starting worker {started_by}"
    assert running, "no poll saw the job while it ran"
    deadline = time.monotonic() + 60
    while panel.poll_job() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    # the pages' model lists refresh
    assert ids.APP_MODELS_STORE in (panel.answer or {}).get("response", {}), panel.answer
    assert "succeeded" in stack.log_text("celery")  # the job ran on the Celery worker, not in gunicorn
    assert lock_holder(stack) is None
    assert [j["state"] for j in job_files(stack)] == ["done"]


def test_a_scoring_job_runs_on_the_celery_worker_and_a_reloaded_page_gets_its_results(stack, small_clicks):
    if not any(r.startswith("2") for r in runs_of(stack)):  # models, when this test runs alone
        panel = Panel(stack)
        panel.train(TINY)
        panel.wait(lambda v: "Trained 3 models" in v["message"], timeout=240)
    http = DashHTTP(stack.base)
    csv = lowercase_form(small_clicks[small_clicks["session_id"] <= 60]).to_csv(index=False).encode()
    contents = "data:text/csv;base64," + base64.b64encode(csv).decode("ascii")
    upload_in = f"{ids.SCORING_UPLOAD}.contents"
    spec = callback_spec(http, ids.SCORING_UPLOAD_STORE, upload_in)
    values = {upload_in: contents, f"{ids.SCORING_UPLOAD}.filename": "sixty.csv"}
    status, answer, _ = http.post(http.body(spec, values, upload_in))
    assert status == 200, answer
    upload = answer["response"][ids.SCORING_UPLOAD_STORE]["data"]
    assert upload["valid"], upload
    press = f"{ids.SCORING_SCORE_BUTTON}.n_clicks"
    spec = callback_spec(http, ids.SCORING_REQUEST_STORE, press)
    status, answer, _ = http.post(http.body(spec, {press: 1, f"{ids.SCORING_UPLOAD_STORE}.data": upload}, press))
    request = answer["response"][ids.SCORING_REQUEST_STORE]["data"]
    request_in = f"{ids.SCORING_REQUEST_STORE}.data"
    job_spec = callback_spec(http, ids.SCORING_RESULT_STORE, request_in)
    status, started, _ = http.post(http.body(job_spec, {request_in: request}, request_in))
    assert status == 200 and "cacheKey" in started, started
    # A reloaded page (empty stores, no Dash handle of the job) polls the job file through either worker.
    poll_in = f"{ids.SCORING_POLL}.n_intervals"
    poll_spec = callback_spec(http, ids.SCORING_PROGRESS, poll_in)
    deadline, restored, tags = time.monotonic() + 180, None, []
    while time.monotonic() < deadline and restored is None:
        status, answer, tag = http.post(http.body(poll_spec, {poll_in: 1}, poll_in))
        assert status == 200, answer
        tags.append(tag)
        result = answer["response"].get(ids.SCORING_RESULT_STORE, {}).get("data")
        restored = result if result and result.get("ok") else None
        time.sleep(0.3)
    assert restored is not None, "the reloaded page never got the job's results"
    assert restored["id"] == upload["id"] and restored["summary"]["status_counts"]["scored"] > 0
    assert answer["response"][ids.SCORING_UPLOAD_STORE]["data"]["filename"] == "sixty.csv"
    # Any worker gives a reloaded page the results: poll until both have (gunicorn may favour one for a while).
    with_results = [tags[-1]]
    for _ in range(60):
        pids = {stack.pid_of(t) for t in with_results}
        if len(pids - {None}) == 2:
            break
        status, again, tag = http.post(http.body(poll_spec, {poll_in: 1}, poll_in))
        if (again["response"].get(ids.SCORING_RESULT_STORE, {}).get("data") or {}).get("id") == upload["id"]:
            with_results.append(tag)
        tags.append(tag)
        time.sleep(0.05)
    time.sleep(0.2)  # the access-log line of the last answer
    assert len({stack.pid_of(t) for t in with_results} - {None}) == 2, "one worker never showed the results"
    assert len({stack.pid_of(t) for t in tags}) == 2 or len(tags) < 4  # any worker answers the poll
    board = jobs.JobBoard(stack.root / "cache" / "jobs", "scoring")
    job = board.current("bundled", jobs.LOCAL_OWNER)
    assert job["state"] == jobs.DONE
    gunicorn = {int(pid) for pid in stack.worker_pids_seen() if pid.isdigit()}
    assert job["pid"] not in gunicorn  # scored on the Celery worker, not in a web worker


@pytest.mark.parametrize("where", ["the page that started it", "another page"])
def test_cancel_stops_the_job_no_row_says_fitting_and_the_lock_is_released(stack, where):
    before = runs_of(stack)
    panel = Panel(stack)
    panel.train(LONG, mode="full")
    panel.wait(fitting, timeout=180)
    assert lock_holder(stack) is not None
    assert not panel.view["cancel_disabled"]
    cancelled = time.monotonic()
    if where == "the page that started it":
        panel.cancel()  # the job file and Dash's cancel (SIGTERM on the worker)
    else:
        other = Panel(stack)  # a reload or another tab: no Dash handle of the job, only its file
        other.request = panel.request
        other.cancel(with_dash_cancel=False)
    deadline = time.monotonic() + REDIS_LOCK_TTL_S / 2 + 60
    while lock_holder(stack) is not None and time.monotonic() < deadline:
        time.sleep(0.25)
    assert lock_holder(stack) is None, "the cancelled job still holds the training lock"
    figure(f"cancel from {where} to training lock released", time.monotonic() - cancelled)
    time.sleep(jobs.BEAT_S * 2)  # a heartbeat or a late progress write must not undo the cancel
    view = panel.poll_panel()
    assert view["states"] and not {"fitting", "waiting", "done"} & set(view["states"]), view
    assert "cancelled" in view["message"] and "lost" not in view["message"]
    assert not view["train_disabled"] and view["cancel_disabled"]
    assert [j["state"] for j in job_files(stack)] == ["cancelled"]
    assert not staging_left(stack)
    assert runs_of(stack) == before
    assert "JobTerminated" not in stack.log_text("celery")  # unwound cleanly, not a crash


def test_a_worker_killed_mid_job_leaves_the_job_reported_failed_and_nothing_half_written(stack):
    before = runs_of(stack)
    panel = Panel(stack)
    panel.train(LONG, mode="full")
    panel.wait(fitting, timeout=180)
    stack.kill_worker()  # the Celery main process and the child running the job, SIGKILL
    killed = time.monotonic()
    view = panel.wait(lambda v: "lost" in v["message"], timeout=jobs.STALE_S + 30)
    figure("worker killed to the panel (job file) reporting the job failed", time.monotonic() - killed)
    assert "Training failed" in view["message"] and "Nothing from this job was saved" in view["message"]
    assert "cancelled" not in view["message"] and view["colour"] == "danger"
    assert view["states"] and set(view["states"]) == {"failed"}, view  # no row says fitting or waiting
    assert view["cancel_disabled"]  # Train waits until the dead job's Redis lock expired (below)
    assert [j["state"] for j in job_files(stack)] == ["failed"]
    # The tab that started it: Dash's Celery manager reports the job lost once its heartbeat expired.
    deadline = time.monotonic() + HEARTBEAT_TTL_S + 30
    while panel.poll_job() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    figure("worker killed to the background callback answering 'lost'", time.monotonic() - killed)
    shown = json.dumps((panel.answer or {}).get("sideUpdate", {}).get(ids.TRAIN_MESSAGE, {}))
    assert "the worker running it was lost" in shown, panel.answer
    assert runs_of(stack) == before  # no half run is visible
    # A new worker and the next job: the dead job's lock expired, its staging folder is removed.
    stack.start_worker()
    deadline = time.monotonic() + REDIS_LOCK_TTL_S + 10
    while lock_holder(stack) is not None and time.monotonic() < deadline:
        time.sleep(0.5)
    figure("worker killed to its training lock expired (worker restarted meanwhile)", time.monotonic() - killed)
    view = panel.poll_panel()  # the failure stays on the page; Train is offered again
    assert "the worker running it was lost" in view["message"] and set(view["states"]) == {"failed"}
    assert not view["train_disabled"] and view["cancel_disabled"]
    again = Panel(stack)
    again.train(["classification:logreg"])
    view = again.wait(lambda v: "Trained 1 model" in v["message"], timeout=240)
    assert "lost" not in view["message"]  # the old job's alert does not linger into the next
    assert not staging_left(stack)
    assert len(runs_of(stack)) == len(before) + 1


def test_restarting_the_app_loses_no_finished_runs(stack):
    before = runs_of(stack)
    assert before
    stack.stop()
    restarted = time.monotonic()
    stack.start_worker()
    stack.start_web()
    figure("restart of Celery worker and gunicorn (2 workers) until both answer", time.monotonic() - restarted)
    assert runs_of(stack) == before
    panel = Panel(stack)
    view = panel.poll_panel()  # the last job's outcome is still shown after the restart
    assert "Trained 1 model" in view["message"]
    panel.train(["clustering:kmeans"])  # and the restarted stack trains again
    panel.wait(lambda v: "Trained 1 model" in v["message"] and v["states"] == ["done"], timeout=240)
    assert before < runs_of(stack)
