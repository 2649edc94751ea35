"""Freed memory kept for reuse while features are built (ml.data.memory): nothing else changes."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest

from ml.data import memory
from ml.data.clicks import index_clicks, review_flags
from ml.features.sessions import session_features
from ml.features.window import window_features


def _huge_pages() -> bool | None:
    previous = memory._set_huge_pages(True)
    if previous is not None:
        memory._set_huge_pages(previous)
    return previous


def test_the_settings_come_back_when_the_outermost_call_returns():
    before = _huge_pages()

    @memory.reusing_freed_memory
    def inner():
        assert memory.active()
        if before is not None:
            assert _huge_pages() is False  # NumPy's huge-page advice is off inside
        return np.ones(1 << 22).sum()

    @memory.reusing_freed_memory
    def outer():
        first = inner()
        assert memory.active()  # still inside the outer call
        return first + inner()

    assert outer() == 2 * (1 << 22)
    assert not memory.active()
    assert _huge_pages() == before


def test_an_error_inside_still_restores_the_settings():
    before = _huge_pages()

    @memory.reusing_freed_memory
    def broken():
        raise ValueError("bad column")

    with pytest.raises(ValueError, match="bad column"):
        broken()
    assert not memory.active()
    assert _huge_pages() == before


def test_calls_on_two_threads_share_one_span():
    inside = threading.Barrier(2)
    seen = []

    @memory.reusing_freed_memory
    def work():
        inside.wait(timeout=10)
        seen.append(memory._depth)
        inside.wait(timeout=10)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert seen == [2, 2]
    assert not memory.active()


def _shuffled(clicks: pd.DataFrame, seed: int) -> pd.DataFrame:
    return clicks.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def test_features_are_the_same_with_and_without_reuse(monkeypatch, small_clicks):
    clicks = _shuffled(small_clicks, 3)
    with_reuse = index_clicks(clicks)
    sessions, window = session_features(with_reuse), window_features(with_reuse, 3)
    monkeypatch.setattr(memory, "_LIBC", None)
    monkeypatch.setattr(memory, "_set_huge_pages", lambda enabled: None)
    plain = index_clicks.__wrapped__(clicks)
    pd.testing.assert_frame_equal(session_features.__wrapped__(plain), sessions, check_exact=True)
    pd.testing.assert_frame_equal(window_features.__wrapped__(plain, 3).features, window.features, check_exact=True)


def test_re_views_flagged_in_two_halves_are_the_flags_of_the_whole(small_clicks):
    indexed = index_clicks(_shuffled(small_clicks, 5))
    n_products = int(indexed.product_code.max()) + 1
    whole = review_flags(indexed.session, indexed.product_code, n_products, indexed.event == 0)
    np.testing.assert_array_equal(indexed.is_review, whole)
    assert whole.any()


def _child_reports(queue) -> None:
    queue.put((memory._depth, memory.active(), _huge_pages()))


def test_a_child_forked_during_a_call_starts_with_the_defaults():
    import multiprocessing

    before = _huge_pages()
    context = multiprocessing.get_context("fork")
    queue = context.Queue()

    @memory.reusing_freed_memory
    def fork_inside():
        child = context.Process(target=_child_reports, args=(queue,))
        child.start()
        child.join(30)
        return queue.get(timeout=5)

    depth, active, huge_pages = fork_inside()
    assert (depth, active) == (0, False)
    assert huge_pages == before
