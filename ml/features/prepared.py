"""Data prepared once for interactive use: clicks, the session table and the KPI cube.

The dashboard builds one ``PreparedData`` at start-up; every request then reads
these in-memory tables instead of recomputing per click. Heavier extras (EDA
aggregates) are built lazily, once, on first use.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd

from ml.data.clicks import IndexedClicks, index_clicks
from ml.data.loading import LoadedEvents, load_events
from ml.features import kpis
from ml.features.labels import LabelDefinition, choose_definition, label_source
from ml.features.sessions import session_features

log = logging.getLogger(__name__)


@dataclass
class PreparedData:
    """One click set, ready for KPIs, EDA and segments."""

    loaded: LoadedEvents
    indexed: IndexedClicks
    display_name: str
    sessions: pd.DataFrame
    definition: LabelDefinition
    cube: pd.DataFrame
    seconds: float
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def clicks(self) -> pd.DataFrame:
        return self.loaded.clicks

    @cached_property
    def info(self) -> dict[str, object]:
        """What the header shows about the dataset in use."""
        dates = self.sessions["date"]
        return {
            "name": self.display_name,
            "source": self.loaded.source,
            "clicks": len(self.loaded.clicks),
            "sessions": len(self.sessions),
            "first_date": dates.min().date(),
            "last_date": dates.max().date(),
            "label_title": self.definition.title,
            "label_source": label_source(self.definition),
            "label_text": self.definition.converted_text,
            "basket_text": self.definition.basket_text,
            "data_hash": self.loaded.data_hash,
        }

    def once(self, name: str, build: callable) -> object:
        """Build an extra table on first use and keep it (thread-safe)."""
        cache = self.__dict__.setdefault("_extras", {})
        if name not in cache:
            with self._lock:
                if name not in cache:
                    start = time.perf_counter()
                    cache[name] = build(self)
                    log.info("prepared %s in %.2f s", name, time.perf_counter() - start)
        return cache[name]


def prepare(loaded: LoadedEvents, display_name: str | None = None) -> PreparedData:
    """Sessions and the KPI cube from loaded clicks."""
    start = time.perf_counter()
    indexed = index_clicks(loaded.clicks)
    definition = choose_definition(loaded.clicks)
    sessions = session_features(indexed, definition)
    cube = kpis.build_cube(sessions)
    seconds = time.perf_counter() - start
    log.info("prepared %s sessions from %s clicks in %.2f s", f"{len(sessions):,}", f"{len(loaded.clicks):,}", seconds)
    return PreparedData(
        loaded=loaded,
        indexed=indexed,
        display_name=display_name or loaded.source,
        sessions=sessions,
        definition=definition,
        cube=cube,
        seconds=seconds,
    )


def prepare_file(path: Path, display_name: str | None = None) -> PreparedData:
    return prepare(load_events(path), display_name)
