"""Segments of the bundled (or uploaded) sessions per setting, computed once and cached.

The segments tab asks for one setting at a time (K-Means with some k, or
DBSCAN with some eps and min_samples). Each setting's labels, metrics,
profiles, projection sample and typical early-window session per segment are
built once per data set and kept in a small LRU, so moving a slider back is
instant. What every setting shares (silhouette by k, the PCA projection, the
default eps) is built once per data set.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

from ml.config import RANDOM_SEED
from ml.features.window import feature_ranges, window_features
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
    profiles: pd.DataFrame  # segment_profiles plus "scoreable" (sessions in the window population)
    display: pd.DataFrame  # x, y, segment of at most DISPLAY_POINTS sessions
    typical: dict[int, dict[str, float | int] | None]  # window feature -> typical value; None if unscoreable
    window: int
    seconds: float


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


def segment_base(data: PreparedData, seed: int = RANDOM_SEED) -> SegmentBase:
    """Scaled features, silhouette by k and the fitted projection, built once per data set."""
    return data.once(f"segments.base.{seed}", lambda d: _build_base(d, seed))


def window_population(data: PreparedData, window: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Window features of the scoreable sessions and their row positions in ``data.sessions`` (built once)."""

    def build(d: PreparedData) -> tuple[pd.DataFrame, np.ndarray]:
        features = window_features(d.indexed, window, d.definition).features
        return features, d.sessions.index.get_indexer(features.index)

    return data.once(f"segments.window.{window}", build)


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


def typical_session(features: pd.DataFrame, window: int) -> dict[str, float | int] | None:
    """The typical value of every window feature (as the what-if tab starts from), or None if empty."""
    if features.empty:
        return None
    typical = {}
    for name, spec in feature_ranges(features, window).items():
        value = spec["typical"]
        typical[name] = value if isinstance(value, int) else round(float(value), 4)
    return typical


def build_segment_run(data: PreparedData, setting: SegmentSetting, window: int, seed: int) -> SegmentRun:
    """One setting computed afresh, bypassing the cache (``segment_run`` caches it; benchmarks time this)."""
    start = time.perf_counter()
    base = segment_base(data, seed)
    if setting.method == "kmeans":
        labels, _, metrics, note = kmeans_on_scaled(base.scaled, setting.k, seed)
    elif setting.method == "dbscan":
        labels, _, metrics, note = dbscan_on_scaled(base.scaled, setting.eps, setting.min_samples, seed)
    else:
        raise ValueError(f"unknown segmentation method {setting.method!r}; use 'kmeans' or 'dbscan'")
    labels = _numbered_by_size(labels)
    profiles = segment_profiles(data.sessions, labels)
    features, positions = window_population(data, window)
    window_labels = labels[positions]
    groups = dict(list(features.groupby(window_labels)))
    profiles["scoreable"] = [len(groups.get(seg, ())) for seg in profiles.index]
    typical = {int(seg): typical_session(groups.get(seg, features.iloc[:0]), window) for seg in profiles.index}
    xy = base.display_xy
    display = pd.DataFrame(
        {"x": xy[:, 0], "y": xy[:, 1], "segment": labels[base.display_positions]},
        index=data.sessions.index[base.display_positions],
    )
    return SegmentRun(setting, labels, metrics, note, profiles, display, typical, window, time.perf_counter() - start)


def segment_run(data: PreparedData, setting: SegmentSetting, window: int, seed: int = RANDOM_SEED) -> SegmentRun:
    """Labels, metrics, profiles, display sample and typical sessions for a setting, cached per setting."""
    cache = data.once("segments.runs", lambda _: RunCache(RUN_CACHE_SIZE))
    return cache.get((setting, window, seed), lambda: build_segment_run(data, setting, window, seed))
