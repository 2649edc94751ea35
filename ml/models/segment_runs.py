"""Segments of any dataset's sessions per setting, computed once and cached in memory and on disk.

The segments tab asks for one setting at a time (K-Means with some k, or
DBSCAN with some eps and min_samples). Each setting's labels, metrics,
profiles, projection sample and representative early-window session per
segment are built once per data set and kept in a small LRU, so moving a
slider back is instant. What every setting shares (silhouette by k, the PCA
projection, the default eps) is built once per data set.

Given a ``cache_dir``, both are also kept on disk, one folder per dataset key
and data hash, so a restart (or another worker) reads them instead of fitting
again: the segments tab's first visit then costs a file read.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import joblib
import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

from ml.config import RANDOM_SEED
from ml.features.window import window_features
from ml.models.segments import (
    DEFAULT_MIN_SAMPLES,
    NOISE,
    best_k,
    dbscan_on_scaled,
    default_eps,
    kmeans_on_scaled,
    sample_rows,
    scaler_pipeline,
    segment_inputs,
    segment_profiles,
    silhouette_by_k,
)

if TYPE_CHECKING:
    from ml.features.prepared import PreparedData

EXPLORE_K_RANGE = (2, 10)  # the k slider of the segments tab
DISPLAY_POINTS = 5_000  # projection points sent to the browser
PCA_SAMPLE = 50_000  # sessions the projection is fitted on
RUN_CACHE_SIZE = 32  # settings kept per data set
DISK_CACHE_VERSION = 2  # bump when SegmentBase or SegmentRun change shape: old files are then ignored

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SegmentSetting:
    """One choice on the segments tab; hashable, so it keys the run cache."""

    method: str  # "kmeans" or "dbscan"
    k: int = 0
    eps: float = 0.0
    min_samples: int = DEFAULT_MIN_SAMPLES

    @classmethod
    def kmeans(cls, k: int) -> SegmentSetting:
        return cls("kmeans", k=int(k))

    @classmethod
    def dbscan(cls, eps: float, min_samples: int = DEFAULT_MIN_SAMPLES) -> SegmentSetting:
        return cls("dbscan", eps=round(float(eps), 2), min_samples=int(min_samples))

    @property
    def params(self) -> dict[str, float | int]:
        return {"k": self.k} if self.method == "kmeans" else {"eps": self.eps, "min_samples": self.min_samples}


@dataclass(frozen=True)
class SegmentBase:
    """What every setting shares, computed once per data set."""

    scaled: np.ndarray  # scaled segment inputs, one row per row of ``data.sessions``
    silhouette_by_k: dict[int, float]
    best_k: int
    default_eps: float  # for DEFAULT_MIN_SAMPLES
    display_positions: np.ndarray  # rows shown in the scatter (fixed-seed sample)
    display_xy: np.ndarray  # their PCA coordinates
    explained: tuple[float, float]  # variance share of each PCA axis


@dataclass(frozen=True)
class SegmentRun:
    """Everything the segments tab shows for one setting."""

    setting: SegmentSetting
    labels: np.ndarray  # one per row of ``data.sessions``; segments numbered by size (0 largest), noise -1
    metrics: dict[str, float]
    note: str
    # segment_profiles plus "scoreable" (sessions in the window population) and "scoreable_rate"
    # (the share of those that converted after the window)
    profiles: pd.DataFrame
    display: pd.DataFrame  # x, y, segment of at most DISPLAY_POINTS sessions
    # The what-if start of each segment: the window features of its representative session; None if unscoreable.
    typical: dict[int, dict[str, float | int] | None]
    window: int
    seconds: float
    # Each segment's representative session: the scoreable session nearest the segment's centre (None if none).
    representatives: dict[int, object] | None = None
    from_disk: bool = False  # read from the disk cache rather than computed in this process


class RunCache:
    """The last ``size`` runs by key (thread-safe); one build at a time, so no setting is fitted twice."""

    def __init__(self, size: int = RUN_CACHE_SIZE):
        self.size = size
        self._runs: OrderedDict[object, SegmentRun] = OrderedDict()
        self._lock = threading.Lock()
        self._build_lock = threading.Lock()

    def _lookup(self, key: object) -> SegmentRun | None:
        with self._lock:
            if key in self._runs:
                self._runs.move_to_end(key)
                return self._runs[key]
        return None

    def get(self, key: object, build: Callable[[], SegmentRun]) -> SegmentRun:
        run = self._lookup(key)
        if run is not None:
            return run
        with self._build_lock:
            run = self._lookup(key) or build()
            with self._lock:
                self._runs[key] = run
                while len(self._runs) > self.size:
                    self._runs.popitem(last=False)
        return run


def _build_base(data: PreparedData, seed: int) -> SegmentBase:
    scaled = scaler_pipeline().fit_transform(segment_inputs(data.sessions))
    scores = silhouette_by_k(data.sessions, seed, EXPLORE_K_RANGE)
    pca = PCA(n_components=2, random_state=seed).fit(scaled[sample_rows(len(scaled), PCA_SAMPLE, seed)])
    positions = sample_rows(len(scaled), DISPLAY_POINTS, seed)
    ratio = pca.explained_variance_ratio_
    return SegmentBase(
        scaled=scaled,
        silhouette_by_k=scores,
        best_k=best_k(scores),
        default_eps=default_eps(scaled, DEFAULT_MIN_SAMPLES, seed),
        display_positions=positions,
        display_xy=pca.transform(scaled[positions]),
        explained=(float(ratio[0]), float(ratio[1])),
    )


def segment_base(data: PreparedData, seed: int = RANDOM_SEED, cache_dir: Path | None = None) -> SegmentBase:
    """Scaled features, silhouette by k and the fitted projection, built once per data set (and kept on disk)."""
    return data.once(
        f"segments.base.{seed}", lambda d: on_disk(cache_dir, d, f"base-s{seed}.joblib", lambda: _build_base(d, seed))
    )


def _window(data: PreparedData, window: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    def build(d: PreparedData) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        windowed = window_features(d.indexed, window, d.definition)
        positions = d.sessions.index.get_indexer(windowed.features.index)
        return windowed.features, positions, windowed.converted.to_numpy().astype(bool)

    return data.once(f"segments.window.{window}", build)


def window_population(data: PreparedData, window: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Window features of the scoreable sessions and their row positions in ``data.sessions`` (built once)."""
    features, positions, _ = _window(data, window)
    return features, positions


def window_converted(data: PreparedData, window: int) -> np.ndarray:
    """Whether each session of the window population converted after its first ``window`` clicks."""
    return _window(data, window)[2]


def _numbered_by_size(labels: np.ndarray) -> np.ndarray:
    """Relabel groups 0, 1, ... from the largest; noise stays -1."""
    out = np.full(len(labels), NOISE, dtype=np.int32)
    mask = labels != NOISE
    counts = np.bincount(labels[mask])
    present = np.flatnonzero(counts)
    rank = np.full(len(counts), NOISE, dtype=np.int32)
    rank[present[np.argsort(-counts[present], kind="stable")]] = np.arange(len(present), dtype=np.int32)
    out[mask] = rank[labels[mask]]
    return out


def representative_rows(scaled: np.ndarray, labels: np.ndarray, candidates: np.ndarray) -> dict[int, int]:
    """Per segment, the candidate row nearest the segment's centre (the mean of all its rows, scaled).

    ``candidates`` are the rows that may represent a segment (the scoreable
    sessions); a segment with none is left out. Nearest the centre rather than
    the exact medoid, which would cost the square of the segment's size.
    """
    out: dict[int, int] = {}
    cand_labels = labels[candidates]
    for seg in np.unique(cand_labels):
        members = scaled[labels == seg]
        centre = members.mean(axis=0)
        rows = candidates[cand_labels == seg]
        distances = ((scaled[rows] - centre) ** 2).sum(axis=1)
        out[int(seg)] = int(rows[int(np.argmin(distances))])
    return out


def _plain(value: object) -> float | int:
    value = value.item() if hasattr(value, "item") else value
    return value if isinstance(value, int) else round(float(value), 4)


def build_segment_run(
    data: PreparedData, setting: SegmentSetting, window: int, seed: int, cache_dir: Path | None = None
) -> SegmentRun:
    """One setting computed afresh, bypassing the run cache (``segment_run`` caches it; benchmarks time this)."""
    start = time.perf_counter()
    base = segment_base(data, seed, cache_dir)
    if setting.method == "kmeans":
        labels, _, metrics, note = kmeans_on_scaled(base.scaled, setting.k, seed)
    elif setting.method == "dbscan":
        labels, _, metrics, note = dbscan_on_scaled(base.scaled, setting.eps, setting.min_samples, seed)
    else:
        raise ValueError(f"unknown segmentation method {setting.method!r}; use 'kmeans' or 'dbscan'")
    labels = _numbered_by_size(labels)
    profiles = segment_profiles(data.sessions, labels, dict(data.codebooks))
    features, positions = window_population(data, window)
    converted = window_converted(data, window)
    window_labels = labels[positions]
    counts = pd.Series(window_labels).value_counts()
    rates = pd.Series(converted).groupby(window_labels).mean()
    profiles["scoreable"] = [int(counts.get(seg, 0)) for seg in profiles.index]
    profiles["scoreable_rate"] = [float(rates.get(seg, np.nan)) for seg in profiles.index]
    rows = representative_rows(base.scaled, labels, positions)
    where = {row: i for i, row in enumerate(positions)}
    typical: dict[int, dict[str, float | int] | None] = {}
    representatives: dict[int, object] = {}
    for seg in profiles.index:
        row = rows.get(int(seg))
        if row is None:
            typical[int(seg)] = None
            representatives[int(seg)] = None
            continue
        i = where[row]
        typical[int(seg)] = {name: _plain(features[name].iat[i]) for name in features.columns}
        session_id = data.sessions.index[row]
        representatives[int(seg)] = session_id.item() if hasattr(session_id, "item") else session_id
    xy = base.display_xy
    display = pd.DataFrame(
        {"x": xy[:, 0], "y": xy[:, 1], "segment": labels[base.display_positions]},
        index=data.sessions.index[base.display_positions],
    )
    return SegmentRun(
        setting,
        labels,
        metrics,
        note,
        profiles,
        display,
        typical,
        window,
        time.perf_counter() - start,
        representatives,
    )


def segment_run(
    data: PreparedData,
    setting: SegmentSetting,
    window: int,
    seed: int = RANDOM_SEED,
    cache_dir: Path | None = None,
) -> SegmentRun:
    """Labels, metrics, profiles, display sample and representative sessions for a setting, cached per setting.

    With ``cache_dir``, a run computed once is read back from disk by later processes.
    """
    cache = data.once("segments.runs", lambda _: RunCache(RUN_CACHE_SIZE))
    name = f"run-{setting.method}-k{setting.k}-e{setting.eps:g}-m{setting.min_samples}-w{window}-s{seed}.joblib"

    def build() -> SegmentRun:
        return on_disk(cache_dir, data, name, lambda: build_segment_run(data, setting, window, seed, cache_dir))

    return cache.get((setting, window, seed), build)


# ---------------------------------------------------------------- the disk cache
def disk_folder(cache_dir: Path, data: PreparedData) -> Path:
    """Where a dataset's segment files live: one folder per dataset key, one below it per data hash."""
    return Path(cache_dir) / data.key / f"v{DISK_CACHE_VERSION}-{data.loaded.data_hash[:24]}"


def _read(path: Path) -> object | None:
    try:
        return joblib.load(path)
    except FileNotFoundError:
        return None
    except Exception as exc:  # a damaged or foreign file costs one rebuild, never a crash
        log.warning("ignoring the unreadable segment cache file %s: %s", path, exc)
        return None


def _write(path: Path, value: object) -> None:
    """Write atomically; drop the folders of older data of the same dataset. Errors only cost the next start."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        joblib.dump(value, tmp)
        os.replace(tmp, path)
        for old in path.parent.parent.iterdir():
            if old.is_dir() and old != path.parent:
                shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        log.warning("could not keep the segment cache file %s: %s", path, exc)


def on_disk(cache_dir: Path | None, data: PreparedData, name: str, build: Callable[[], object]) -> object:
    """``build()``, read from ``cache_dir`` when an earlier process wrote it for the same data, else written there."""
    if cache_dir is None:
        return build()
    path = disk_folder(cache_dir, data) / name
    found = _read(path)
    if isinstance(found, SegmentRun):
        return replace(found, from_disk=True)
    if found is not None:
        return found
    value = build()
    _write(path, value)
    return value
