"""Uploads are parsed in worker processes, not on the thread that answers the request.

A parse holds the GIL for long stretches and may take up to about twice the
size limit in memory; in a worker process it slows no other user's callback,
and its memory goes back to the system when the worker is replaced. At most
``limits.max_parses`` parses run at once on the machine, across all the web
server's worker processes (the gate: lock files in the cache folder, since
memory is the machine's); a further upload waits ``limits.parse_wait_s``
seconds and is then told the server is busy. A worker that dies (killed for memory, say) is reported as a
message and replaced; the server keeps serving.

A worker hands the events back through a file in the cache folder (pickle
protocol 5, streamed from the arrays), not through the pool's pipe: there they
would be pickled with protocol 4 in memory, the pickle and a copy of every
array's bytes held until it is done, twice the events on top of them.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from ml.config import Settings
from ml.data.limits import parse_gate
from ml.data.loading import LoadedEvents, load_events
from ml.data.memory import return_freed_memory
from ml.errors import Problem, ServerBusy, ValidationError

log = logging.getLogger(__name__)

PARSE_SLOTS_DIRNAME = "parse-slots"
PARSE_RESULTS_DIRNAME = "parse-results"
STALE_RESULT_S = 3600.0  # a result file this old was left by a server that stopped mid-parse
TASKS_PER_WORKER = 20  # then the worker is replaced, giving its memory back
PARENT_CHECK_S = 1.0  # how often an idle parse worker checks that its server is still there

_pools: dict[int, ProcessPoolExecutor] = {}
_pools_lock = threading.Lock()


def _pool(workers: int) -> ProcessPoolExecutor:
    with _pools_lock:
        pool = _pools.get(workers)
        if pool is None:
            # spawn: a fork of a threaded server could copy a held lock into the child.
            context = multiprocessing.get_context("spawn")
            pool = ProcessPoolExecutor(
                workers,
                mp_context=context,
                max_tasks_per_child=TASKS_PER_WORKER,
                initializer=_start_worker,
                initargs=(os.getpid(),),
            )
            _pools[workers] = pool
        return pool


def _start_worker(parent: int) -> None:
    """A parse worker gives freed memory back at once (its peak is then one file's) and leaves with its server."""
    return_freed_memory()
    _exit_with_parent(parent)


def _exit_with_parent(parent: int) -> None:
    """In a parse worker: leave as soon as the server process that started it is gone.

    A server killed without a clean shutdown (SIGKILL, out of memory, a test's
    terminate) would otherwise leave its idle workers behind, each holding the
    memory of its last parse, for ever (seen: 420 MB each).
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_S)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _discard(workers: int, pool: ProcessPoolExecutor) -> None:
    with _pools_lock:
        if _pools.get(workers) is pool:
            del _pools[workers]
    pool.shutdown(wait=False, cancel_futures=True)


def parse_upload(data: bytes, filename: str, settings: Settings) -> LoadedEvents:
    """``load_events`` of an upload's bytes in a worker process, under the upload limits.

    A busy server or a worker that died is reported as a one-problem
    ``ValidationError``, so the upload's report shows it like any other problem.
    """
    try:
        return _parse(data, filename, settings)
    except ServerBusy as exc:
        raise ValidationError([Problem(str(exc))], source=filename) from exc


def upload_gate(settings: Settings):
    """The machine-wide gate of upload parses (shared by every web worker using this cache folder)."""
    return parse_gate(settings.limits.max_parses, settings.cache_dir / PARSE_SLOTS_DIRNAME)


def _parse(data: bytes, filename: str, settings: Settings) -> LoadedEvents:
    limits = settings.limits
    with upload_gate(settings).slot(limits.parse_wait_s):
        pool = _pool(limits.max_parses)
        result = _result_file(settings)
        try:
            options = {"name": filename, "max_bytes": settings.max_upload_bytes, "limits": limits}
            if result is None:
                return pool.submit(load_events, data, **options).result()
            returned = pool.submit(_load_into, result, data, **options).result()
            return returned if returned is not None else _read_result(result)
        except BrokenProcessPool as exc:
            log.error("the parse worker stopped while reading %s: %s", filename, exc)
            _discard(limits.max_parses, pool)
            message = (
                "the worker process reading the file stopped (out of memory?) and nothing was kept; "
                "try a smaller file, or score it on the server with python -m ml score"
            )
            raise ValidationError([Problem(message)], source=filename) from exc
        finally:
            if result is not None:
                result.unlink(missing_ok=True)


def _result_file(settings: Settings) -> Path | None:
    """A new empty file for a worker's events (only this user may read it); ``None`` where none can be made."""
    folder = settings.cache_dir / PARSE_RESULTS_DIRNAME
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _remove_stale_results(folder)
        handle, name = tempfile.mkstemp(prefix="events-", suffix=".pickle", dir=folder)
    except OSError as exc:
        log.warning("no file for a parse result in %s (%s): the events come back through the pipe", folder, exc)
        return None
    os.close(handle)
    return Path(name)


def _remove_stale_results(folder: Path) -> None:
    now = time.time()
    for path in folder.glob("events-*.pickle"):
        try:
            if now - path.stat().st_mtime > STALE_RESULT_S:
                path.unlink()
        except OSError:
            continue  # removed by another server process meanwhile


def _load_into(result: Path, data: bytes, **options: object) -> LoadedEvents | None:
    """In a parse worker: ``load_events``, the events written to ``result`` (``None`` back), or returned if that fails.

    Pickle protocol 5 writes each array's bytes straight to the file, so this
    costs no memory beyond the events; a file that cannot be written (a full
    disk) is left empty, and the events go back through the pipe.
    """
    loaded = load_events(data, **options)
    try:
        with result.open("wb") as stream:
            pickle.dump(loaded, stream, protocol=5)
    except OSError as exc:
        log.warning("the parse result could not be written to %s (%s): returned through the pipe", result, exc)
        return loaded
    return None


def _read_result(result: Path) -> LoadedEvents:
    with result.open("rb") as stream:
        return pickle.load(stream)  # written by our own parse worker, to a file made for this call


def shutdown_pools() -> None:
    """Stop the worker processes (tests and the benchmark)."""
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.shutdown(wait=True, cancel_futures=True)
