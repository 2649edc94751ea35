"""Bounded memo of what a callback returns, for views that are pure functions of their inputs.

The KPI views are functions of the prepared dataset and the filter (plus the
trend frequency and the alert settings); the what-if update is a function of
the prepared model and the inputs. Many requests ask for the same answer (the
landing view, a shared link, a slider moved back), so each answer is kept in a
small least-recently-used table: the memo of a dataset lives on that
dataset's prepared tables (``PreparedData.once``), so it goes with them and a
new dataset never sees an old one's answers, and its keys carry the data hash
too. Tables are bounded (``size`` entries, ``Settings.view_cache_size``,
environment variable ``CLICKSTREAM_VIEW_CACHE``), so a process serving many
different filters holds at most that many answers; size 0 keeps nothing and
computes every answer afresh (what ``bench/bench_load.py --no-memo`` measures).

Cached answers are shared between requests: they are returned as they are and
must not be changed by the caller (the callbacks hand them to Dash, which only
serialises them). Figures are kept as Plotly's JSON-ready dict
(``figure_json``), which Dash serialises without copying the figure again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

import plotly.graph_objects as go

from ml.config import VIEW_CACHE_SIZE
from ml.features.prepared import PreparedData

T = TypeVar("T")


class ViewCache:
    """A thread-safe LRU table: ``get(key, build)`` returns the kept answer or builds and keeps it (size 0: none)."""

    def __init__(self, size: int = VIEW_CACHE_SIZE) -> None:
        if size < 0:
            raise ValueError("a view cache cannot hold fewer than no answers")
        self.size = size
        self._items: OrderedDict[Hashable, object] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable, build: Callable[[], T]) -> T:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]  # type: ignore[return-value]
            self.misses += 1
        value = build()
        if not self.size:
            return value  # outside the lock: two threads may build the same answer once each
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def dataset_cache(data: PreparedData, size: int = VIEW_CACHE_SIZE) -> ViewCache:
    """The view cache of one prepared dataset (made on first use with ``size``, dropped with the dataset)."""
    return data.once("view-cache", lambda _: ViewCache(size))  # type: ignore[return-value]


def memo(data: PreparedData, name: str, key: tuple, build: Callable[[], T], size: int = VIEW_CACHE_SIZE) -> T:
    """``build()``, kept per dataset under ``name`` and ``key`` (with the dataset's data hash)."""
    return dataset_cache(data, size).get((name, data.loaded.data_hash, *key), build)


def figure_json(figure: go.Figure | dict) -> dict:
    """A figure as the JSON-ready dict Dash sends (what Dash would make of the ``go.Figure`` itself)."""
    return figure.to_plotly_json() if isinstance(figure, go.Figure) else figure
