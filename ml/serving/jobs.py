"""Job state on the server: what a training or scoring job is doing, readable from any process or browser tab.

A job writes one small JSON file, ``<root>/<dataset>/<kind>-<owner>.json``:
its id, state (``running``, ``done``, ``failed``, ``cancelled``), progress,
final message, the worker's host and pid and whether a cancel was asked for.
Any page (after a reload, or in another browser tab) reads it to show the
running job and offer Cancel; the job reads it between steps to honour that
Cancel. While it runs, the job renews ``updated`` every ``BEAT_S`` (a thread,
``JobBoard.beating``). A ``running`` job that is lost reads as ``failed`` with
the board's ``lost_message``: its process is gone (same host: its pid; killed,
out of memory, or the server restarted) or it has not beaten for ``STALE_S``
(another machine, or a process that hangs). Only a Cancel makes a job
``cancelled``. Files are replaced atomically under a per-job ``flock``, so a
reader never sees half a file and a progress write never undoes a Cancel.
Measured durations of finished jobs are kept per dataset and mode
(``timings.json``), so the UI can say how long a job takes on this machine.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

RUNNING = "running"
DONE = "done"
FAILED = "failed"
CANCELLED = "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)
TIMINGS_FILE = "timings.json"
SAFE_NAME = re.compile(r"[^a-z0-9_-]+")
LOCAL_OWNER = "local"  # the app without login: one user
BEAT_S = 2.0  # a running job renews its file this often
STALE_S = 20.0  # a running job whose file is older than this is lost (its worker died or hangs)
HOST = socket.gethostname()
LOST_MESSAGE = "The job stopped: the worker running it was lost (killed, restarted or out of memory)."


def _safe(name: object) -> str:
    return SAFE_NAME.sub("-", str(name or LOCAL_OWNER).lower()).strip("-")[:64] or LOCAL_OWNER


def _pid_alive(pid: object) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError, TypeError):
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _write_atomic(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps(payload, default=str), encoding="utf-8")
    os.replace(tmp, path)


def _read(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One writer at a time for a job file (the job, its heartbeat thread, a Cancel from any worker)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def lost_reason(state: dict, now: float | None = None) -> str | None:
    """Why a ``running`` job is lost (its process ended, or it stopped beating), or ``None`` if it lives."""
    now = time.time() if now is None else now
    if state.get("host", HOST) == HOST and not _pid_alive(state.get("pid")):
        return "its process ended"
    updated = state.get("updated")
    if isinstance(updated, (int, float)) and now - updated > STALE_S:
        return f"no heartbeat for {now - updated:.0f} s"
    return None


@dataclass(frozen=True)
class JobBoard:
    """The job files of one kind of job (``training``, ``scoring``) under a cache folder."""

    root: Path
    kind: str
    lost_message: str = LOST_MESSAGE

    def path(self, dataset: str, owner: str | None) -> Path:
        return self.root / _safe(dataset) / f"{self.kind}-{_safe(owner)}.json"

    # ---------------------------------------------------------------- the job's side
    def start(self, dataset: str, owner: str | None, description: str = "", **extra: object) -> dict:
        """Record a new running job (replacing the owner's previous one); returns its state."""
        now = time.time()
        state = {
            "job_id": uuid.uuid4().hex[:12],
            "kind": self.kind,
            "dataset": dataset,
            "owner": owner or LOCAL_OWNER,
            "state": RUNNING,
            "description": description,
            "started": now,
            "updated": now,
            "host": HOST,
            "pid": os.getpid(),
            "progress": None,
            "message": None,
            "cancel": False,
            **extra,
        }
        path = self.path(dataset, owner)
        with _locked(path):
            _write_atomic(path, state)
        return state

    def _change(self, dataset: str, owner: str | None, job_id: str, **changes: object) -> dict | None:
        path = self.path(dataset, owner)
        with _locked(path):
            state = _read(path)
            if state is None or state.get("job_id") != job_id:
                return None  # another job replaced it: leave that one alone
            if state.get("state") in FINISHED:
                return None  # it ended already (a Cancel, or its last word): the first end stands
            state.update(changes, updated=time.time())
            _write_atomic(path, state)
            return state

    @contextlib.contextmanager
    def beating(self, dataset: str, owner: str | None, job_id: str) -> Iterator[None]:
        """Renew the job's ``updated`` every ``BEAT_S`` while the block runs (a daemon thread)."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(BEAT_S):
                try:
                    self._change(dataset, owner, job_id)
                except OSError as exc:  # a full or missing cache folder: STALE_S covers a missed beat
                    log.warning("could not renew the job file of %s: %s", job_id, exc)

        thread = threading.Thread(target=beat, name=f"job-beat-{job_id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()

    def progress(self, dataset: str, owner: str | None, job_id: str, progress: object) -> None:
        self._change(dataset, owner, job_id, progress=progress)

    def finish(self, dataset: str, owner: str | None, job_id: str, state: str, message: str, **extra: object) -> None:
        """Record the job's end (``done``, ``failed`` or ``cancelled``) and what to tell the user."""
        self._change(dataset, owner, job_id, state=state, message=message, finished=time.time(), **extra)

    def cancel_requested(self, dataset: str, owner: str | None, job_id: str) -> bool:
        state = _read(self.path(dataset, owner))
        return bool(state and state.get("job_id") == job_id and (state.get("cancel") or state["state"] == CANCELLED))

    # ---------------------------------------------------------------- the page's side
    def current(self, dataset: str, owner: str | None, now: float | None = None) -> dict | None:
        """The owner's latest job on a dataset; a running one whose worker was lost reads as failed."""
        state = _read(self.path(dataset, owner))
        if state is None:
            return None
        reason = lost_reason(state, now) if state.get("state") == RUNNING else None
        if reason:
            state = {**state, "state": FAILED, "message": self.lost_message, "colour": "danger", "lost": reason}
        return state

    def cancel(self, dataset: str, owner: str | None, message: str) -> dict | None:
        """Ask the running job to stop, and mark it cancelled at once for every page.

        The file's own state counts, not ``current``: Dash's cancel may have
        killed the job's process a moment before this runs, and that job was
        cancelled, not lost.
        """
        state = _read(self.path(dataset, owner))
        if state is None or state.get("state") != RUNNING:
            return self.current(dataset, owner)
        return self._change(
            dataset, owner, state["job_id"], cancel=True, state=CANCELLED, message=message, finished=time.time()
        )

    # ---------------------------------------------------------------- timings
    def record_timing(self, dataset: str, mode: str, seconds: float, items: int) -> None:
        """Keep how long the last finished job of a mode took here (seconds, and for how many items)."""
        path = self.root / _safe(dataset) / f"{self.kind}.{TIMINGS_FILE}"
        timings = _read(path) or {}
        timings[mode] = {"seconds": float(seconds), "items": int(items), "measured": time.time()}
        try:
            _write_atomic(path, timings)
        except OSError as exc:
            log.warning("could not keep the job timing in %s: %s", path, exc)

    def timing(self, dataset: str, mode: str) -> dict | None:
        """The last measured duration of a mode on a dataset, or ``None`` when it never ran here."""
        timings = _read(self.root / _safe(dataset) / f"{self.kind}.{TIMINGS_FILE}") or {}
        found = timings.get(mode)
        return found if isinstance(found, dict) and "seconds" in found else None


def awaiting_worker(request: dict | None, job: dict | None, wait_s: float, now: float | None = None) -> bool:
    """Whether a job request (``{"requested": time, ...}``) is still waiting for its worker to write its job.

    True for ``wait_s`` seconds after the request, unless a job started since
    (its file is newer): a page counts such a request as running, so a second
    press cannot start a second job.
    """
    now = time.time() if now is None else now
    if not request or now - float(request.get("requested", 0)) >= wait_s:
        return False
    return job is None or float(job.get("started", 0)) < float(request.get("requested", 0)) - 1


def format_duration(seconds: float) -> str:
    """``"45 s"``, ``"3 min 47 s"``, ``"1 h 02 min"``."""
    seconds = max(0, round(float(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
