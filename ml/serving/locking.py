"""One training job at a time per models folder, across processes.

The lock is an OS file lock (``fcntl.flock`` on POSIX, ``msvcrt.locking`` on
Windows), so it is released by the kernel when the job's process ends, even
when it is killed by a cancel: a stale lock cannot block later jobs.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from ml.errors import ClickstreamError

LOCK_FILE = ".training.lock"

try:  # POSIX
    import fcntl

    def _try_lock(fh: IO[str]) -> bool:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _unlock(fh: IO[str]) -> None:
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

except ImportError:  # pragma: no cover - Windows
    import msvcrt

    def _try_lock(fh: IO[str]) -> bool:
        try:
            fh.seek(0)
            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(fh: IO[str]) -> None:
        fh.seek(0)
        msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)


class TrainingBusy(ClickstreamError):
    """Another training job holds the lock."""

    def __init__(self, owner: dict):
        self.owner = owner
        started = owner.get("started", "an unknown time")
        who = owner.get("description") or "another job"
        super().__init__(f"a training job is already running ({who}, started {started}); wait for it or cancel it")


def _lock_path(models_dir: Path) -> Path:
    models_dir.mkdir(parents=True, exist_ok=True)
    return models_dir / LOCK_FILE


def _read_owner(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}


@contextmanager
def training_lock(models_dir: Path, description: str) -> Iterator[None]:
    """Hold the training lock for the block, or raise ``TrainingBusy`` at once."""
    path = _lock_path(models_dir)
    fh = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the whole block
    try:
        if not _try_lock(fh):
            raise TrainingBusy(_read_owner(path))
        fh.seek(0)
        fh.truncate()
        owner = {
            "pid": os.getpid(),
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "description": description,
        }
        fh.write(json.dumps(owner))
        fh.flush()
        try:
            yield
        finally:
            fh.seek(0)
            fh.truncate()
            fh.flush()
            _unlock(fh)
    finally:
        fh.close()


@contextmanager
def file_lock(path: Path, timeout_s: float = 10.0) -> Iterator[None]:
    """Hold an exclusive OS lock on ``path`` for the block, waiting up to ``timeout_s`` for it.

    For short read-modify-write steps on a small file (the users file) that two
    commands might run at once.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    with open(path, "a+", encoding="utf-8") as fh:
        while not _try_lock(fh):
            if time.monotonic() > deadline:
                raise ClickstreamError(f"{path} is locked by another process; try again")
            time.sleep(0.05)
        try:
            yield
        finally:
            _unlock(fh)


def running_job(models_dir: Path) -> dict | None:
    """The owner of the training lock if a job is running, else ``None``."""
    path = _lock_path(models_dir)
    with open(path, "a+", encoding="utf-8") as fh:
        if _try_lock(fh):
            _unlock(fh)
            return None
    return _read_owner(path) or {"description": "a training job"}
