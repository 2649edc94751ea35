"""Data prepared once for interactive use: events, the session table and the KPI cube.

The dashboard prepares each dataset once (or reads its prepared tables from
disk); every request then reads these in-memory tables instead of
recomputing per click. Heavier extras (the event index, EDA aggregates,
segment bases) are built lazily, once, on first use.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd

from ml.config import BUNDLED_DATASET_KEY
from ml.data import schema as S
from ml.data.clicks import IndexedClicks, index_clicks
from ml.data.codes import Codebook
from ml.data.loading import LoadedEvents, load_events
from ml.data.memory import reusing_freed_memory
from ml.features import kpis
from ml.features.labels import LabelDefinition, choose_definition, label_source
from ml.features.sessions import session_features

log = logging.getLogger(__name__)


@dataclass
class PreparedData:
    """One dataset, ready for KPIs, EDA, segments and the model tabs."""

    loaded: LoadedEvents
    display_name: str
    sessions: pd.DataFrame
    definition: LabelDefinition
    cube: pd.DataFrame
    seconds: float
    key: str = BUNDLED_DATASET_KEY
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @classmethod
    def from_tables(
        cls, loaded: LoadedEvents, sessions: pd.DataFrame, cube: pd.DataFrame, *, display_name: str, key: str
    ) -> PreparedData:
        """A dataset whose session table and cube were prepared before (read from disk)."""
        return cls(
            loaded=loaded,
            display_name=display_name,
            sessions=sessions,
            definition=choose_definition(loaded.events),
            cube=cube,
            seconds=0.0,
            key=key,
        )

    @property
    def clicks(self) -> pd.DataFrame:
        return self.loaded.events

    @property
    def indexed(self) -> IndexedClicks:
        """The events sorted and indexed by session (built on first use)."""
        return self.once("indexed", lambda d: index_clicks(d.loaded.events))

    @property
    def codebooks(self) -> Mapping[str, Codebook]:
        """Labels for the coded columns (category and dimensions), with the weekday names."""
        return {**self.loaded.codebooks, "day_of_week": S.DAY_OF_WEEK_NAMES}

    @property
    def has_purchases(self) -> bool:
        return self.definition.name == "purchases"

    @cached_property
    def info(self) -> dict[str, object]:
        """What the header shows about the dataset in use."""
        dates = self.sessions["date"]
        return {
            "key": self.key,
            "name": self.display_name,
            "source": self.loaded.source,
            "profile": self.loaded.profile.name,
            "profile_title": self.loaded.profile.title,
            "clicks": len(self.loaded.events),
            "sessions": len(self.sessions),
            "first_date": dates.min().date(),
            "last_date": dates.max().date(),
            "label_title": self.definition.title,
            "label_source": label_source(self.definition),
            "label_text": self.definition.converted_text,
            "basket_text": self.definition.basket_text,
            "data_hash": self.loaded.data_hash,
        }

    def once(self, name: str, build: Callable[[PreparedData], object]) -> object:
        """Build an extra table on first use and keep it (thread-safe)."""
        cache = self.__dict__.setdefault("_extras", {})
        if name not in cache:
            with self._lock:
                if name not in cache:
                    start = time.perf_counter()
                    cache[name] = build(self)
                    log.info("prepared %s of %s in %.2f s", name, self.key, time.perf_counter() - start)
        return cache[name]


@reusing_freed_memory
def prepare(loaded: LoadedEvents, display_name: str | None = None, key: str = BUNDLED_DATASET_KEY) -> PreparedData:
    """Sessions and the KPI cube from loaded events."""
    start = time.perf_counter()
    indexed = index_clicks(loaded.events)
    definition = choose_definition(loaded.events)
    sessions = session_features(indexed, definition)
    cube = kpis.build_cube(sessions)
    seconds = time.perf_counter() - start
    log.info("prepared %s sessions from %s events in %.2f s", f"{len(sessions):,}", f"{len(loaded.events):,}", seconds)
    data = PreparedData(
        loaded=loaded,
        display_name=display_name or loaded.source,
        sessions=sessions,
        definition=definition,
        cube=cube,
        seconds=seconds,
        key=key,
    )
    data.once("indexed", lambda _: indexed)
    return data


def prepare_file(path: Path, display_name: str | None = None) -> PreparedData:
    return prepare(load_events(path), display_name)
