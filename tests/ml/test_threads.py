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


def test_tasks_of_uneven_length_keep_their_order_and_the_first_error_is_raised(monkeypatch):
    """Threads take the next task when free: results come back in the tasks' order whoever ran them."""
    import time

    monkeypatch.setenv(threads.ENV_FEATURE_THREADS, "2")

    def task(value, seconds):
        def run():
            time.sleep(seconds)
            return value

        return run

    assert threads.run_parallel(*(task(i, 0.05 if i == 0 else 0.001) for i in range(6))) == list(range(6))
    started = []

    def failing():
        started.append("failing")
        raise KeyError("no such column")

    def later():
        started.append("later")
        return 1

    with pytest.raises(KeyError, match="no such column"):
        threads.run_parallel(failing, task(2, 0.2), later, later)
    assert started.count("later") <= 1  # after the failure, no further task starts


def test_one_thread_runs_the_tasks_in_order(monkeypatch):
    monkeypatch.setenv(threads.ENV_FEATURE_THREADS, "1")
    seen = []
    assert threads.run_parallel(*(lambda i=i: seen.append(i) or i for i in range(4))) == [0, 1, 2, 3]
    assert seen == [0, 1, 2, 3]
