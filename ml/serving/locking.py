"""One training job at a time per model store, across processes, workers and machines.

Two kinds of lock, chosen by ``lock_for(settings)``:

- ``FileTrainingLock`` (the default, one machine): an OS file lock
  (``fcntl.flock`` on POSIX, ``msvcrt.locking`` on Windows) on a file in the
  models folder, released by the kernel when the job's process ends, even when
  it is killed by a cancel: a stale lock cannot block later jobs.
- ``RedisTrainingLock`` (when ``REDIS_URL`` is set: every gunicorn worker and
  Celery worker, on any machine): a Redis key set with ``NX`` and a short
  expiry that a thread of the job renews. A job that ends releases it; a job
  whose process is killed stops renewing it, and it expires within
  ``REDIS_LOCK_TTL_S``.

Asking whether a job runs never writes: a read-only models folder only means
no job can run (``ModelStoreReadOnly`` when one is started).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from ml.errors import ClickstreamError

log = logging.getLogger(__name__)

LOCK_FILE = ".training.lock"
REDIS_LOCK_NAME = "training-lock"
REDIS_LOCK_TTL_S = 20.0  # how long a killed job's lock outlives it
REDIS_RENEW_EVERY_S = 4.0

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


class ModelStoreReadOnly(ClickstreamError):
    """The model store cannot be written, so no training job can save its models."""

    def __init__(self, reason: str = "permission denied"):
        super().__init__(
            f"The model store is read-only ({reason}), so trained models cannot be saved; the models in use "
            "are unchanged. Ask the administrator to make the models folder (CLICKSTREAM_MODELS_DIR) writable."
        )


def _lock_path(models_dir: Path) -> Path:
    models_dir.mkdir(parents=True, exist_ok=True)
    return models_dir / LOCK_FILE


def _read_only(exc: OSError) -> ModelStoreReadOnly:
    reason = "read-only file system" if exc.errno == errno.EROFS else "permission denied"
    return ModelStoreReadOnly(reason)


def _read_owner(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}


@contextmanager
def training_lock(models_dir: Path, description: str) -> Iterator[None]:
    """Hold the training lock for the block, or raise ``TrainingBusy`` at once."""
    try:
        path = _lock_path(models_dir)
        fh = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the whole block
    except PermissionError as exc:
        raise _read_only(exc) from exc
    except OSError as exc:
        if exc.errno == errno.EROFS:
            raise _read_only(exc) from exc
        raise
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


def running_job(models_dir: Path | object) -> dict | None:
    """The owner of the training lock if a job is running, else ``None``.

    ``models_dir`` is a models folder (its file lock), or the app's ``Settings``
    (the lock ``lock_for`` picks: Redis when ``REDIS_URL`` is set). Never
    writes: on a read-only folder, or with no lock file yet, no job is running.
    """
    if not isinstance(models_dir, (str, Path)):
        return lock_for(models_dir).owner()
    return FileTrainingLock(Path(models_dir)).owner()


class FileTrainingLock:
    """The training lock as an OS lock on ``<models_dir>/.training.lock`` (one machine)."""

    def __init__(self, models_dir: Path):
        self.models_dir = Path(models_dir)

    def hold(self, description: str):
        return training_lock(self.models_dir, description)

    def owner(self) -> dict | None:
        path = self.models_dir / LOCK_FILE
        try:
            fh = open(path, encoding="utf-8")  # noqa: SIM115 - read-only: flock needs no write access
        except OSError:  # no lock file yet (no job ever ran), or a folder we cannot read
            return None
        with fh:
            if _try_lock(fh):
                _unlock(fh)
                return None
        return _read_owner(path) or {"description": "a training job"}


# Compare-and-act scripts: only the holder (by its token) renews or releases the lock.
_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


class RedisTrainingLock:
    """The training lock as a Redis key, shared by every process on every machine using the same Redis."""

    def __init__(
        self, url: str, prefix: str = "", ttl_s: float = REDIS_LOCK_TTL_S, renew_s: float = REDIS_RENEW_EVERY_S
    ):
        import redis  # only when Redis is configured

        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self.key = f"{prefix}{REDIS_LOCK_NAME}"
        self.ttl_ms = int(ttl_s * 1000)
        self.renew_s = renew_s

    @contextmanager
    def hold(self, description: str) -> Iterator[None]:
        owner = {
            "pid": os.getpid(),
            "host": os.uname().nodename if hasattr(os, "uname") else "",
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "description": description,
            "token": secrets.token_hex(16),
        }
        value = json.dumps(owner)
        if not self.client.set(self.key, value, nx=True, px=self.ttl_ms):
            raise TrainingBusy(self.owner() or {})
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(self.renew_s):
                try:
                    if not self.client.eval(_RENEW, 1, self.key, value, self.ttl_ms):
                        log.error("the training lock %s was lost (expired or taken over)", self.key)
                        return
                except Exception:  # a Redis hiccup: try again at the next beat, the TTL covers it
                    log.warning("could not renew the training lock", exc_info=True)

        renewer = threading.Thread(target=renew, name="training-lock-renew", daemon=True)
        renewer.start()
        try:
            yield
        finally:
            stop.set()
            try:
                self.client.eval(_RELEASE, 1, self.key, value)
            except Exception:  # it expires by itself
                log.warning("could not release the training lock; it expires in %d s", self.ttl_ms // 1000)

    def owner(self) -> dict | None:
        try:
            raw = self.client.get(self.key)
        except Exception:
            log.warning("cannot reach Redis to ask whether a training job runs", exc_info=True)
            return None
        if raw is None:
            return None
        try:
            owner = json.loads(raw)
        except ValueError:
            return {"description": "a training job"}
        owner.pop("token", None)
        return owner


def lock_for(settings) -> FileTrainingLock | RedisTrainingLock:
    """The training lock of the settings' model store: Redis when ``redis_url`` is set, else the file lock."""
    url = getattr(settings, "redis_url", "")
    if url:
        return RedisTrainingLock(url, getattr(settings, "redis_prefix", ""))
    return FileTrainingLock(settings.models_dir)
