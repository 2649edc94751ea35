"""Train the model zoo on a click set and save every model to the registry.

Honest validation: 20% of the scoreable sessions are held out (stratified);
the rest go through k-fold CV grouped by session for the grid search, and the
decision threshold is chosen on the out-of-fold predictions. The held-out
sessions are touched once, by the refitted best setting. Progress is reported
per model and per fold; a stop request is honoured between folds, and the
runs of a job reach the registry only when the whole job finishes.
"""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from ml.config import KMEANS_K_RANGE, RANDOM_SEED
from ml.data import schema as S
from ml.data.codes import codebook_from_json, codebook_to_json
from ml.data.loading import LoadedEvents
from ml.errors import ClickstreamError
from ml.features.sessions import segment_feature_names
from ml.features.window import FeatureSpec
from ml.models import segments
from ml.models.evaluation import predict_latency_ms
from ml.models.supervised import train_classifier, train_regressor
from ml.models.training_data import (  # re-exported: callers import the job's types from here
    TrainConfig,
    TrainingData,
    TrainingDataError,
    prepare_training_data,
)
from ml.models.zoo import all_specs
from ml.serving.registry import Registry, Staging, StorageFull, is_no_space, new_run_id
from ml.tasks import CLASSIFICATION, CLUSTERING, PRIMARY_METRIC, REGRESSION

log = logging.getLogger(__name__)

CLUSTER_MODELS = {"kmeans": "K-Means", "dbscan": "DBSCAN"}
DBSCAN_MIN_SAMPLES = 20

__all__ = ["TrainConfig", "TrainingCancelled", "TrainingDataError", "TrainingResult", "select_models", "train"]

ProgressCallback = Callable[[list[dict]], None]
StopCheck = Callable[[], bool]


class TrainingCancelled(ClickstreamError):
    """The job was asked to stop; nothing it trained was saved."""


def model_catalogue(seed: int = RANDOM_SEED) -> list[tuple[str, str, str]]:
    """Every trainable model as (task, name, title), in training order."""
    supervised = [(s.task, s.name, s.title) for s in all_specs(seed).values()]
    return supervised + [(CLUSTERING, name, title) for name, title in CLUSTER_MODELS.items()]


def select_models(names: Sequence[str], seed: int = RANDOM_SEED) -> list[tuple[str, str, str]]:
    """Resolve names like ``xgboost`` (every task) or ``regression:xgboost`` to catalogue entries."""
    catalogue = model_catalogue(seed)
    if not names:
        return catalogue
    chosen: list[tuple[str, str, str]] = []
    for raw in names:
        name = raw.strip().lower().replace("/", ":")
        task, _, model = name.rpartition(":")
        hits = [e for e in catalogue if e[1] == model and (not task or e[0] == task)]
        if not hits:
            choices = ", ".join(sorted({e[1] for e in catalogue}))
            raise ValueError(f"unknown model {raw!r}; choose from {choices} (optionally task:name)")
        chosen += [h for h in hits if h not in chosen]
    return [e for e in catalogue if e in chosen]


# ---------------------------------------------------------------- progress
@dataclass
class ModelStatus:
    task: str
    model: str
    title: str
    state: str = "waiting"  # waiting | fitting | done | failed | cancelled
    step: int = 0
    steps: int = 0
    detail: str = ""
    metric: str = ""
    score: float | None = None
    run_id: str | None = None


class _Reporter:
    def __init__(
        self, entries: list[tuple[str, str, str]], progress: ProgressCallback | None, should_stop: StopCheck | None
    ):
        self.statuses = {(t, m): ModelStatus(t, m, title) for t, m, title in entries}
        self.progress = progress
        self.should_stop = should_stop

    def snapshot(self) -> list[dict]:
        return [asdict(s) for s in self.statuses.values()]

    def emit(self) -> None:
        if self.progress is not None:
            self.progress(self.snapshot())

    def check_stop(self) -> None:
        if self.should_stop is not None and self.should_stop():
            raise TrainingCancelled("training was cancelled; no model from this job was saved")

    def update(self, key: tuple[str, str], **changes: object) -> None:
        self.check_stop()
        status = self.statuses[key]
        for name, value in changes.items():
            setattr(status, name, value)
        self.emit()


# ---------------------------------------------------------------- data
def library_versions() -> dict[str, str]:
    import imblearn
    import joblib
    import sklearn
    import xgboost

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "scikit-learn": sklearn.__version__,
        "xgboost": xgboost.__version__,
        "imbalanced-learn": imblearn.__version__,
        "joblib": joblib.__version__,
    }


def dataset_description(registry: Registry, loaded: LoadedEvents) -> dict[str, object]:
    """What a run records about the data it was trained on."""
    return {
        "key": registry.root.name,
        "profile": loaded.profile.name,
        "profile_title": loaded.profile.title,
        "hash": loaded.data_hash,
        "source": loaded.source,
        "skipped_rows": loaded.skipped_rows,
    }


def run_codebooks(
    specs: Sequence[FeatureSpec], codebooks: Mapping[str, Mapping[int, str]] | None
) -> dict[str, dict[str, str]]:
    """The codebooks a run's categorical features (and its segment profiles) need, as JSON."""
    books = dict(codebooks) if codebooks else {k: v for k, v in S.CODEBOOK.items()}
    books.setdefault("day_of_week", S.DAY_OF_WEEK_NAMES)
    wanted = {s.codebook for s in specs if s.codebook} | {S.CATEGORY, S.COUNTRY}
    return {name: codebook_to_json(books[name]) for name in sorted(wanted) if name in books}


def _codebooks(data: TrainingData) -> dict[str, dict[int, str]]:
    return {name: codebook_from_json(book) for name, book in data.extra.get("codebooks", {}).items()}


def _base_metadata(task: str, model: str, title: str, data: TrainingData, config: TrainConfig) -> dict:
    return {
        "schema_version": 1,
        "task": task,
        "model": model,
        "title": title,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "window": data.window,
        "label": data.label,
        "primary_metric": PRIMARY_METRIC[task],
        "features": [f.to_dict() for f in data.specs]
        if task != CLUSTERING
        else list(segment_feature_names(data.sessions)),
        "feature_ranges": data.ranges if task != CLUSTERING else {},
        "feature_layout": data.layout,
        "codebooks": data.extra.get("codebooks", {}),
        "dataset": data.extra.get("dataset", {}),
        "data": data.summary,
        "validation": {
            "held_out": f"{config.test_size:.0%} of scoreable sessions, stratified by the label",
            "cv": f"{config.folds}-fold CV grouped by session on the remaining sessions",
            "threshold": "maximum F1 on out-of-fold predictions" if task == CLASSIFICATION else None,
            "seed": config.seed,
        },
        "quick": config.quick,
        "versions": library_versions(),
    }


# ---------------------------------------------------------------- clustering
def train_kmeans(data: TrainingData, config: TrainConfig, report) -> tuple[object, dict, dict]:
    k_range = (KMEANS_K_RANGE[0], 5) if config.quick else KMEANS_K_RANGE
    report(1, 3, f"silhouette for k = {k_range[0]}..{k_range[1]}")
    scores = segments.silhouette_by_k(data.sessions, config.seed, k_range)
    k = segments.best_k(scores)
    report(2, 3, f"fitting k = {k}")
    start = time.perf_counter()
    result = segments.fit_kmeans(data.sessions, k, config.seed)
    fit_seconds = time.perf_counter() - start
    features = segments.segment_inputs(data.sessions)
    metadata = {
        "params": result.params,
        "metrics": {
            "test": result.metrics,
            "fit_seconds": fit_seconds,
            "predict_ms_per_1000": predict_latency_ms(result.pipeline.predict, features),
        },
        "silhouette_by_k": {str(kk): v for kk, v in scores.items()},
        "segments": segments.profile_records(segments.segment_profiles(data.sessions, result.labels, _codebooks(data))),
        "notes": [f"k chosen by silhouette over {k_range[0]}..{k_range[1]}", result.note],
    }
    report(3, 3, "done")
    return result.pipeline, metadata, {}


def train_dbscan(data: TrainingData, config: TrainConfig, report) -> tuple[object, dict, dict]:
    report(1, 1, "fitting")
    start = time.perf_counter()
    result = segments.fit_dbscan(data.sessions, None, DBSCAN_MIN_SAMPLES, config.seed)
    metadata = {
        "params": result.params,
        "metrics": {"test": result.metrics, "fit_seconds": time.perf_counter() - start},
        "notes": ["eps from the median distance to the min_samples-th neighbour", result.note],
    }
    return result.pipeline, metadata, {}


# ---------------------------------------------------------------- the job
@dataclass
class TrainingResult:
    job_id: str
    statuses: list[dict]
    run_ids: list[str]
    seconds: float
    data: dict


def _train_one(
    entry: tuple[str, str, str],
    data: TrainingData,
    config: TrainConfig,
    specs: dict,
    reporter: _Reporter,
    staging: Staging,
) -> None:
    task, name, title = entry
    key = (task, name)

    def report(step: int, steps: int, detail: str) -> None:
        reporter.update(key, state="fitting", step=step, steps=steps, detail=detail)

    if task == CLASSIFICATION:
        pipeline, meta, curves = train_classifier(specs[key], data, config, report)
    elif task == REGRESSION:
        pipeline, meta, curves = train_regressor(specs[key], data, config, report)
    elif name == "kmeans":
        pipeline, meta, curves = train_kmeans(data, config, report)
    else:
        pipeline, meta, curves = train_dbscan(data, config, report)
    metadata = {**_base_metadata(task, name, title, data, config), **meta}
    run_id = staging.save(task, name, pipeline, metadata, curves)
    metric = PRIMARY_METRIC[task]
    reporter.update(
        key, state="done", detail="saved", metric=metric, score=meta["metrics"]["test"].get(metric), run_id=run_id
    )


def train(
    clicks: pd.DataFrame,
    registry: Registry,
    config: TrainConfig,
    *,
    source: str,
    data_hash: str,
    progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
    dataset: Mapping[str, object] | None = None,
    codebooks: Mapping[str, Mapping[int, str]] | None = None,
) -> TrainingResult:
    """Train the chosen models, report progress, and commit their runs together at the end.

    A model that fails is reported as failed with its reason and the others go
    on. A cancel (``should_stop`` returning true, or the process being killed)
    leaves the registry as it was. ``dataset`` (key, profile, hash, source,
    skipped rows) and ``codebooks`` (how text values were coded) are saved with
    every run, so scoring can code a new file the same way and refuse one of
    another profile.
    """
    entries = select_models(config.models, config.seed)
    job_id = new_run_id()
    started = time.perf_counter()
    registry.check_writable()  # a read-only or full store says so now, not after the training
    with registry.lock.hold(f"job {job_id}, {len(entries)} models"):
        registry.clean_stale_staging(max_age_seconds=0)  # we hold the lock: leftovers are dead jobs'
        reporter = _Reporter(entries, progress, should_stop)
        reporter.emit()
        data = prepare_training_data(clicks, config, source, data_hash)
        data.extra["dataset"] = dict(dataset or {"key": None, "profile": "uci553", "hash": data_hash, "source": source})
        data.extra["codebooks"] = run_codebooks(data.specs, codebooks)
        specs = all_specs(config.seed)
        with registry.staging(job_id) as staging:
            for entry in entries:
                reporter.check_stop()
                try:
                    _train_one(entry, data, config, specs, reporter, staging)
                except TrainingCancelled:
                    raise
                except Exception as exc:
                    if is_no_space(exc):  # the disk is full: the whole job goes, with one message
                        log.error("training job %s stopped: no space left while saving %s/%s", job_id, *entry[:2])
                        raise StorageFull(entry[2]) from None
                    # one model's failure must not sink the job
                    log.exception("training %s/%s failed", entry[0], entry[1])
                    reporter.update((entry[0], entry[1]), state="failed", detail=f"{type(exc).__name__}: {exc}")
            run_ids = [s.run_id for s in reporter.statuses.values() if s.run_id]
    return TrainingResult(job_id, reporter.snapshot(), run_ids, time.perf_counter() - started, data.summary)
