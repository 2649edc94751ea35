"""The datasets the product knows: the bundled one, and every event log added from the dashboard.

Each added dataset is a folder ``<datasets_dir>/<key>/`` holding its canonical
events (``events.parquet``), how they were read and coded (``dataset.json``:
profile, source, codebooks, dimensions, skipped rows, problems), and its
prepared tables (``sessions.parquet``, ``cube.parquet``) so that a restart or
another worker process reads them instead of preparing them again. A dataset
is written in a staging folder and moved into place with one rename, so a
crash never leaves half a dataset; deleting one also deletes its models.

The bundled file is always listed first; its prepared tables are cached in the
same folder structure under the key ``bundled``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from ml.config import BUNDLED_DATA_FILE, BUNDLED_DATA_NAME, BUNDLED_DATASET_KEY, Settings
from ml.data.codes import codebook_from_json, codebook_to_json
from ml.data.loading import LoadedEvents, load_events
from ml.data.profiles import BUILTIN_PROFILES, DataProfile
from ml.errors import ClickstreamError, Problem
from ml.features.prepared import PreparedData, prepare
from ml.serving.registry import DATASET_KEY, ModelStore, Registry, dataset_key

log = logging.getLogger(__name__)

INFO_FILE = "dataset.json"
EVENTS_FILE = "events.parquet"
SESSIONS_FILE = "sessions.parquet"
CUBE_FILE = "cube.parquet"
STAGING = ".staging"
INFO_VERSION = 1

Progress = Callable[[int, str], None]


class DatasetError(ClickstreamError):
    """A dataset is unknown, cannot be written, or cannot be deleted."""


@dataclass(frozen=True)
class DatasetInfo:
    """What the data control shows about a dataset, and what it needs to load it again."""

    key: str
    name: str
    profile: str
    profile_title: str
    source: str
    input_form: str
    rows: int
    sessions: int
    first_date: str | None
    last_date: str | None
    events: dict[str, int]
    label_title: str
    label_source: str
    dimensions: tuple[str, ...]
    skipped_rows: int = 0
    problems: tuple[str, ...] = ()
    created: str = ""
    owner: str | None = None
    bundled: bool = False
    data_hash: str = ""

    @property
    def has_purchases(self) -> bool:
        return self.events.get("purchase", 0) > 0

    def to_dict(self) -> dict[str, object]:
        return {
            "key": self.key,
            "name": self.name,
            "profile": self.profile,
            "profile_title": self.profile_title,
            "source": self.source,
            "input_form": self.input_form,
            "rows": self.rows,
            "sessions": self.sessions,
            "first_date": self.first_date,
            "last_date": self.last_date,
            "events": dict(self.events),
            "label_title": self.label_title,
            "label_source": self.label_source,
            "dimensions": list(self.dimensions),
            "skipped_rows": self.skipped_rows,
            "problems": list(self.problems),
            "created": self.created,
            "owner": self.owner,
            "bundled": self.bundled,
            "data_hash": self.data_hash,
        }

    @classmethod
    def from_dict(cls, data: dict) -> DatasetInfo:
        return cls(
            key=str(data["key"]),
            name=str(data["name"]),
            profile=str(data["profile"]),
            profile_title=str(data.get("profile_title", data["profile"])),
            source=str(data.get("source", "")),
            input_form=str(data.get("input_form", "")),
            rows=int(data["rows"]),
            sessions=int(data["sessions"]),
            first_date=data.get("first_date"),
            last_date=data.get("last_date"),
            events={str(k): int(v) for k, v in data.get("events", {}).items()},
            label_title=str(data.get("label_title", "")),
            label_source=str(data.get("label_source", "")),
            dimensions=tuple(data.get("dimensions", ())),
            skipped_rows=int(data.get("skipped_rows", 0)),
            problems=tuple(data.get("problems", ())),
            created=str(data.get("created", "")),
            owner=data.get("owner"),
            bundled=bool(data.get("bundled", False)),
            data_hash=str(data.get("data_hash", "")),
        )


def describe(key: str, name: str, prepared: PreparedData, **extra: object) -> DatasetInfo:
    """The info of a prepared dataset."""
    loaded = prepared.loaded
    summary = loaded.summary()
    return DatasetInfo(
        key=key,
        name=name,
        profile=loaded.profile.name,
        profile_title=loaded.profile.title,
        source=loaded.source,
        input_form=loaded.input_form,
        rows=len(loaded.events),
        sessions=len(prepared.sessions),
        first_date=summary["first_date"],
        last_date=summary["last_date"],
        events=loaded.event_counts(),
        label_title=prepared.definition.title,
        label_source=prepared.info["label_source"],
        dimensions=tuple(loaded.dimensions),
        skipped_rows=loaded.skipped_rows,
        problems=tuple(p.describe() for p in loaded.skipped_problems),
        data_hash=loaded.data_hash,
        **extra,  # type: ignore[arg-type]
    )


def _profile_from_saved(data: dict) -> DataProfile:
    if data.get("name") in BUILTIN_PROFILES:
        return BUILTIN_PROFILES[data["name"]]
    return DataProfile(
        name=str(data["name"]),
        title=str(data.get("title", data["name"])),
        columns=dict(data.get("columns", {})),
        fallbacks=dict(data.get("fallbacks", {})),
        session_key=tuple(data.get("session_key", ())),
        events={k: tuple(v) for k, v in data.get("events", {}).items()},
        default_event=str(data.get("default_event", "view")),
        dimensions=dict(data.get("dimensions", {})),
        codebooks={k: dict(v) for k, v in data.get("codebooks", {}).items()},
        timestamp_format=str(data.get("timestamp_format", "auto")),
        session_gap_minutes=float(data.get("session_gap_minutes", 30.0)),
    )


def _write_json(path: Path, payload: dict) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(payload, fh, indent=1, default=str)
        fh.flush()
        os.fsync(fh.fileno())


@dataclass
class DatasetStore:
    """Every dataset: listing, adding, loading (with prepared tables from disk) and deleting.

    ``prepared(key)`` keeps the few most recently used datasets in memory, per
    process; everything else is on disk, so any worker can answer for any dataset.
    """

    root: Path
    models: ModelStore
    bundled_file: Path = BUNDLED_DATA_FILE
    bundled_name: str = BUNDLED_DATA_NAME
    keep_in_memory: int = 3
    _cache: dict[str, PreparedData] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def for_settings(cls, settings: Settings) -> DatasetStore:
        bundled_name = BUNDLED_DATA_NAME if settings.uses_bundled_data else settings.data_file.name
        return cls(
            root=settings.datasets_dir,
            models=ModelStore.for_settings(settings),
            bundled_file=settings.data_file,
            bundled_name=bundled_name,
        )

    # ------------------------------------------------------------------ listing
    def keys(self) -> list[str]:
        """The bundled dataset's key first, then every added dataset, oldest first."""
        added = [info.key for info in self._added()]
        return [BUNDLED_DATASET_KEY, *added]

    def list(self) -> list[DatasetInfo]:
        return [self.info(BUNDLED_DATASET_KEY), *self._added()]

    def _added(self) -> list[DatasetInfo]:
        if not self.root.is_dir():
            return []
        infos = []
        for folder in self.root.iterdir():
            if folder.name == BUNDLED_DATASET_KEY or not DATASET_KEY.match(folder.name):
                continue
            info = self._read_info(folder)
            if info is not None:
                infos.append(info)
        return sorted(infos, key=lambda i: (i.created, i.key))

    @staticmethod
    def _read_info(folder: Path) -> DatasetInfo | None:
        try:
            data = json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))
            return DatasetInfo.from_dict(data["info"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("dataset folder %s is unreadable: %s", folder.name, exc)
            return None

    def exists(self, key: str) -> bool:
        return key == BUNDLED_DATASET_KEY or (self.root / key / INFO_FILE).is_file()

    def info(self, key: str) -> DatasetInfo:
        if key == BUNDLED_DATASET_KEY:  # described once per prepared data (counting 10M events takes a while)
            name = self.bundled_name
            return self.prepared(key).once(f"dataset-info:{name}", lambda p: describe(key, name, p, bundled=True))
        info = self._read_info(self.root / key) if DATASET_KEY.match(key) else None
        if info is None:
            raise DatasetError(f"there is no dataset '{key}'")
        return info

    # ------------------------------------------------------------------ loading
    def remember(self, key: str, data: PreparedData) -> None:
        """Keep an already prepared dataset in memory (the app factory's, or a test's)."""
        with self._lock:
            self._cache[key] = data

    def prepared(self, key: str, progress: Progress | None = None) -> PreparedData:
        """The dataset's events, session table and KPI cube (from memory, disk, or prepared now)."""
        with self._lock:
            if key in self._cache:
                data = self._cache.pop(key)
                self._cache[key] = data  # most recently used last
                return data
        data = self._load(key, progress)
        with self._lock:
            self._cache[key] = data
            while len(self._cache) > self.keep_in_memory:
                self._cache.pop(next(iter(self._cache)))
        return data

    def _load(self, key: str, progress: Progress | None) -> PreparedData:
        folder = self.root / key
        if key == BUNDLED_DATASET_KEY:
            loaded = load_events(self.bundled_file)
            name = self.bundled_name
        else:
            if not DATASET_KEY.match(key) or not (folder / INFO_FILE).is_file():
                raise DatasetError(f"there is no dataset '{key}'")
            loaded, name = self._read_events(folder)
        tables = self._read_tables(folder, loaded.data_hash)
        if tables is not None:
            sessions, cube = tables
            return PreparedData.from_tables(loaded, sessions, cube, display_name=name, key=key)
        if progress:
            progress(60, "building the session table and the KPI cube")
        data = prepare(loaded, display_name=name, key=key)
        self._write_tables(folder, data)
        return data

    @staticmethod
    def _read_events(folder: Path) -> tuple[LoadedEvents, str]:
        meta = json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))
        events = pd.read_parquet(folder / EVENTS_FILE)
        saved = meta["loaded"]
        loaded = LoadedEvents(
            events=events,
            source=saved["source"],
            input_form=saved["input_form"],
            warnings=tuple(saved.get("warnings", ())),
            label_source=saved.get("label_source", "proxy"),
            data_hash=saved["data_hash"],
            n_bytes=int(saved.get("n_bytes", 0)),
            profile=_profile_from_saved(saved["profile"]),
            codebooks={name: codebook_from_json(book) for name, book in saved.get("codebooks", {}).items()},
            dimensions=tuple(saved.get("dimensions", ())),
            skipped_rows=int(saved.get("skipped_rows", 0)),
            skipped_problems=tuple(Problem(text) for text in saved.get("skipped_problems", ())),
            other_events=dict(saved.get("other_events", {})),
        )
        return loaded, str(meta["info"]["name"])

    @staticmethod
    def _read_tables(folder: Path, data_hash: str) -> tuple[pd.DataFrame, pd.DataFrame] | None:
        marker = folder / "tables.json"
        try:
            if json.loads(marker.read_text(encoding="utf-8")).get("data_hash") != data_hash:
                return None
            return pd.read_parquet(folder / SESSIONS_FILE), pd.read_parquet(folder / CUBE_FILE)
        except (OSError, ValueError):
            return None

    @staticmethod
    def _write_tables(folder: Path, data: PreparedData) -> None:
        """Keep the prepared tables on disk; a folder that cannot be written only costs the next start."""
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".tables-{uuid.uuid4().hex[:8]}"
            tmp.mkdir()
            data.sessions.to_parquet(tmp / SESSIONS_FILE)
            data.cube.to_parquet(tmp / CUBE_FILE)
            for name in (SESSIONS_FILE, CUBE_FILE):
                os.replace(tmp / name, folder / name)
            _write_json(tmp / "tables.json", {"data_hash": data.loaded.data_hash, "written": time.time()})
            os.replace(tmp / "tables.json", folder / "tables.json")
            shutil.rmtree(tmp, ignore_errors=True)
        except OSError as exc:
            log.warning("could not keep the prepared tables of %s on disk: %s", folder.name, exc)

    # ------------------------------------------------------------------ adding and deleting
    def new_key(self, name: str) -> str:
        """A key for a new dataset from its name, unique among the datasets."""
        base = dataset_key(name)
        if base == BUNDLED_DATASET_KEY:
            base = f"{base}-copy"
        key, n = base, 2
        while self.exists(key):
            key, n = f"{base[:60]}-{n}", n + 1
        return key

    def add(
        self,
        loaded: LoadedEvents,
        name: str,
        *,
        owner: str | None = None,
        key: str | None = None,
        progress: Progress | None = None,
    ) -> DatasetInfo:
        """Prepare and keep a loaded event log as a new dataset; returns its info."""
        key = key or self.new_key(name)
        if self.exists(key):
            raise DatasetError(f"a dataset '{key}' exists already")
        staging = self.root / STAGING / f"{key}-{uuid.uuid4().hex[:8]}"
        try:
            staging.mkdir(parents=True)
            if progress:
                progress(20, "writing the events")
            loaded.events.to_parquet(staging / EVENTS_FILE)
            if progress:
                progress(40, "building the session table and the KPI cube")
            data = prepare(loaded, display_name=name, key=key)
            data.sessions.to_parquet(staging / SESSIONS_FILE)
            data.cube.to_parquet(staging / CUBE_FILE)
            _write_json(staging / "tables.json", {"data_hash": loaded.data_hash, "written": time.time()})
            info = describe(key, name, data, created=datetime.now(UTC).isoformat(timespec="seconds"), owner=owner)
            _write_json(
                staging / INFO_FILE,
                {"version": INFO_VERSION, "info": info.to_dict(), "loaded": _loaded_to_dict(loaded)},
            )
            if progress:
                progress(90, "saving")
            os.replace(staging, self.root / key)
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise DatasetError(f"the dataset could not be saved ({exc.strerror or exc}); nothing was kept") from exc
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        with self._lock:
            self._cache[key] = data
        log.info("added dataset %s (%s events, %s sessions)", key, f"{info.rows:,}", f"{info.sessions:,}")
        return info

    def delete(self, key: str) -> None:
        """Delete an added dataset and its models (the bundled one cannot be deleted)."""
        if key == BUNDLED_DATASET_KEY:
            raise DatasetError("the bundled dataset cannot be deleted")
        folder = self.root / key
        if not DATASET_KEY.match(key) or not folder.is_dir():
            raise DatasetError(f"there is no dataset '{key}'")
        trash = self.root / STAGING / f"deleted-{key}-{uuid.uuid4().hex[:8]}"
        try:
            trash.parent.mkdir(parents=True, exist_ok=True)
            os.replace(folder, trash)  # gone from the list at once, even if the removal below is slow
        except OSError as exc:
            raise DatasetError(f"the dataset could not be deleted ({exc.strerror or exc})") from exc
        shutil.rmtree(trash, ignore_errors=True)
        shutil.rmtree(self.models.root / key, ignore_errors=True)
        with self._lock:
            self._cache.pop(key, None)

    def registry(self, key: str) -> Registry:
        """The model registry of a dataset."""
        return self.models.registry(key)


def _loaded_to_dict(loaded: LoadedEvents) -> dict[str, object]:
    return {
        "source": loaded.source,
        "input_form": loaded.input_form,
        "warnings": list(loaded.warnings),
        "label_source": loaded.label_source,
        "data_hash": loaded.data_hash,
        "n_bytes": loaded.n_bytes,
        "profile": loaded.profile.to_dict(),
        "codebooks": {name: codebook_to_json(book) for name, book in loaded.codebooks.items()},
        "dimensions": list(loaded.dimensions),
        "skipped_rows": loaded.skipped_rows,
        "skipped_problems": [p.describe() for p in loaded.skipped_problems],
        "other_events": dict(loaded.other_events),
    }
