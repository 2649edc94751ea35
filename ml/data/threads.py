"""Run independent numpy steps side by side on a small shared thread pool.

numpy releases the GIL inside sorts, gathers and reductions over large arrays,
so two independent steps of feature building (gathering columns, counting
codes, reducing prices) run in parallel threads on two cores. Every step
writes only its own result, so the output is the same whatever the thread
count. ``CLICKSTREAM_FEATURE_THREADS`` sets the count (default: up to 2, the
cores this process may use); ``1`` runs everything in order in the caller's
thread. A step that itself asks for parallel steps runs them in order, so the
pool never waits on itself. A forked child (a Celery prefork worker, a
diskcache job process) starts with no pool: the parent's pool threads do not
exist there, and a task handed to that pool would wait forever.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

ENV_FEATURE_THREADS = "CLICKSTREAM_FEATURE_THREADS"
DEFAULT_MAX_THREADS = 2

_pool: dict[int, ThreadPoolExecutor] = {}  # by thread count: one pool for the process
_pool_lock = threading.Lock()
_inside = threading.local()


def _forget_the_parents_pool() -> None:
    global _pool_lock  # noqa: PLW0603 - the one place the lock is replaced: a new process
    _pool.clear()  # its threads stayed in the parent; a new pool is made on first use
    _pool_lock = threading.Lock()  # it may have been held by a parent's thread at the fork


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_the_parents_pool)


def feature_threads() -> int:
    """How many threads feature building may use (``CLICKSTREAM_FEATURE_THREADS``, else up to 2)."""
    raw = os.environ.get(ENV_FEATURE_THREADS, "").strip()
    if raw:
        try:
            return max(int(raw), 1)
        except ValueError as exc:
            raise ValueError(f"environment variable {ENV_FEATURE_THREADS}={raw!r} is not an integer") from exc
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(min(usable, DEFAULT_MAX_THREADS), 1)


def _executor(size: int) -> ThreadPoolExecutor:
    with _pool_lock:
        if size not in _pool:
            # The caller's thread works too, so the pool has one thread fewer.
            _pool[size] = ThreadPoolExecutor(max_workers=size - 1, thread_name_prefix="features")
        return _pool[size]


def _marked(task: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        _inside.active = True
        try:
            return task()
        finally:
            _inside.active = False

    return run


def run_parallel(*tasks: Callable[[], Any]) -> list[Any]:
    """Each task's result, in order; the tasks run on the pool when there is more than one thread.

    The caller's thread and the pool's take the next task not yet started,
    one at a time, so tasks of uneven length still keep both cores busy: list
    the longest first. If a task raises, no further task starts and the
    first error is raised once the running ones have finished.
    """
    size = feature_threads()
    if size < 2 or len(tasks) < 2 or getattr(_inside, "active", False):
        return [task() for task in tasks]
    results: list[Any] = [None] * len(tasks)
    failures: list[BaseException] = []
    taken = itertools.count()  # next() on a count is atomic: each task goes to one thread

    def drain() -> None:
        while not failures:
            index = next(taken)
            if index >= len(tasks):
                return
            try:
                results[index] = tasks[index]()
            except BaseException as exc:  # re-raised in the caller's thread below
                failures.append(exc)
                return

    pool = _executor(size)
    helpers = [pool.submit(_marked(drain)) for _ in range(min(size - 1, len(tasks) - 1))]
    _marked(drain)()  # the caller's thread works too
    for helper in helpers:
        helper.result()
    if failures:
        raise failures[0]
    return results
