"""The feature thread pool in forked processes (Celery prefork workers, diskcache job processes)."""

from __future__ import annotations

import multiprocessing

import pytest

from ml.data import threads


def _in_child(queue) -> None:
    queue.put(threads.run_parallel(lambda: 1, lambda: 2, lambda: 3))


def test_a_forked_child_runs_parallel_steps_although_the_parent_made_the_pool(monkeypatch):
    monkeypatch.setenv(threads.ENV_FEATURE_THREADS, "2")
    assert threads.run_parallel(lambda: "a", lambda: "b") == ["a", "b"]  # the parent's pool now has a thread
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_in_child, args=(queue,))
    child.start()
    child.join(30)
    if child.is_alive():  # the parent's pool has no thread in the child: its steps would wait forever
        child.kill()
        pytest.fail("run_parallel in a forked child waited on the parent's pool threads")
    assert queue.get(timeout=5) == [1, 2, 3]
