"""Uploads are parsed in worker processes, not on the thread that answers the request.

A parse holds the GIL for long stretches and may take up to about twice the
size limit in memory; in a worker process it slows no other user's callback,
and its memory goes back to the system when the worker is replaced. At most
``limits.max_parses`` parses run at once on the machine, across all the web
server's worker processes (the gate: lock files in the cache folder, since
memory is the machine's); a further upload waits ``limits.parse_wait_s``
seconds and is then told the server is busy. A worker that dies (killed for memory, say) is reported as a
message and replaced; the server keeps serving.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from ml.config import Settings
from ml.data.limits import parse_gate
from ml.data.loading import LoadedEvents, load_events
from ml.errors import Problem, ServerBusy, ValidationError

log = logging.getLogger(__name__)

PARSE_SLOTS_DIRNAME = "parse-slots"
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
                initializer=_exit_with_parent,
                initargs=(os.getpid(),),
            )
            _pools[workers] = pool
        return pool


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
        try:
            future = pool.submit(load_events, data, name=filename, max_bytes=settings.max_upload_bytes, limits=limits)
            return future.result()
        except BrokenProcessPool as exc:
            log.error("the parse worker stopped while reading %s: %s", filename, exc)
            _discard(limits.max_parses, pool)
            message = (
                "the worker process reading the file stopped (out of memory?) and nothing was kept; "
                "try a smaller file, or score it on the server with python -m ml score"
            )
            raise ValidationError([Problem(message)], source=filename) from exc


def shutdown_pools() -> None:
    """Stop the worker processes (tests and the benchmark)."""
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.shutdown(wait=True, cancel_futures=True)
