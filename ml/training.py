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
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold, StratifiedGroupKFold, train_test_split

from ml import segments
from ml.clicks import index_clicks
from ml.config import CV_FOLDS, DEFAULT_WINDOW, KMEANS_K_RANGE, RANDOM_SEED, TEST_SIZE
from ml.errors import ClickstreamError
from ml.evaluation import (
    PRIMARY_METRIC,
    best_f1_threshold,
    classification_curves,
    classification_metrics,
    feature_importance,
    predict_latency_ms,
    regression_curves,
    regression_metrics,
    summarise_folds,
)
from ml.features import WINDOW_FEATURES, feature_ranges, session_features, window_features
from ml.locking import training_lock
from ml.registry import Registry, Staging, new_run_id
from ml.targets import choose_definition
from ml.zoo import (
    CLASSIFICATION,
    CLUSTERING,
    REGRESSION,
    ModelSpec,
    all_specs,
    build_pipeline,
    describe_params,
    expand_grid,
)

log = logging.getLogger(__name__)

CLUSTER_MODELS = {"kmeans": "K-Means", "dbscan": "DBSCAN"}
DBSCAN_MIN_SAMPLES = 20
MIN_TRAINING_SESSIONS = 50

ProgressCallback = Callable[[list[dict]], None]
StopCheck = Callable[[], bool]


class TrainingCancelled(ClickstreamError):
    """The job was asked to stop; nothing it trained was saved."""


class TrainingDataError(ClickstreamError):
    """The data cannot support training (too few sessions, one class only)."""


@dataclass(frozen=True)
class TrainConfig:
    """What to train and how. ``models`` empty means every model."""

    window: int = DEFAULT_WINDOW
    models: tuple[str, ...] = ()
    quick: bool = False
    seed: int = RANDOM_SEED
    folds: int = CV_FOLDS
    test_size: float = TEST_SIZE
    label: str | None = None


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
@dataclass
class TrainingData:
    """Everything the model loops need, computed once per job."""

    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: np.ndarray
    y_test: np.ndarray
    basket_train: np.ndarray
    basket_test: np.ndarray
    sessions: pd.DataFrame
    class_folds: list[tuple[np.ndarray, np.ndarray]]
    summary: dict
    ranges: dict
    label: dict
    window: int
    extra: dict = field(default_factory=dict)


def prepare_training_data(clicks: pd.DataFrame, config: TrainConfig, source: str, data_hash: str) -> TrainingData:
    indexed = index_clicks(clicks)
    definition = choose_definition(clicks, config.label)
    window = window_features(indexed, config.window, definition)
    X = window.features
    y = window.converted.to_numpy().astype(int)
    positives = int(y.sum())
    if len(X) < MIN_TRAINING_SESSIONS or positives < config.folds or len(X) - positives < config.folds:
        raise TrainingDataError(
            f"too few sessions to train with a {config.window}-click window: {len(X):,} sessions "
            f"with at least {config.window} clicks that had not converted inside it, "
            f"{positives:,} of which convert later; need at least {MIN_TRAINING_SESSIONS} "
            f"and {config.folds} of each class"
        )
    train_idx, test_idx = train_test_split(
        np.arange(len(X)), test_size=config.test_size, stratify=y, random_state=config.seed
    )
    X_train, X_test = X.iloc[train_idx], X.iloc[test_idx]
    cv = StratifiedGroupKFold(n_splits=config.folds, shuffle=True, random_state=config.seed)
    folds = list(cv.split(X_train, y[train_idx], groups=X_train.index.to_numpy()))
    basket = window.basket_value.to_numpy()
    status_counts = window.status.value_counts()
    summary = {
        "source": source,
        "hash": data_hash,
        "clicks": len(clicks),
        "sessions": len(window.status),
        "population": len(X),
        "too_short": int(status_counts.get("too short", 0)),
        "converted_in_window": int(status_counts.get("already converted in window", 0)),
        "train_sessions": len(train_idx),
        "test_sessions": len(test_idx),
        "positive_rate": float(y.mean()),
        "first_date": str(clicks["date"].min().date()),
        "last_date": str(clicks["date"].max().date()),
    }
    return TrainingData(
        X_train=X_train,
        X_test=X_test,
        y_train=y[train_idx],
        y_test=y[test_idx],
        basket_train=basket[train_idx],
        basket_test=basket[test_idx],
        sessions=session_features(indexed, definition),
        class_folds=folds,
        summary=summary,
        ranges=feature_ranges(X_train, config.window),
        label={**definition.describe(), "source": "proxy" if definition.is_proxy else "input"},
        window=config.window,
    )


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
        "features": [f.to_dict() for f in WINDOW_FEATURES] if task != CLUSTERING else list(segments.SEGMENT_FEATURES),
        "feature_ranges": data.ranges if task != CLUSTERING else {},
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


# ---------------------------------------------------------------- supervised search
def _cap_rows(train_rows: np.ndarray, cap: int | None, seed: int) -> np.ndarray:
    if cap is None or len(train_rows) <= cap:
        return train_rows
    return np.sort(np.random.default_rng(seed).choice(train_rows, size=cap, replace=False))


def _search(
    spec: ModelSpec,
    X: pd.DataFrame,
    y: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    config: TrainConfig,
    predict: Callable[[object, pd.DataFrame], np.ndarray],
    score: Callable[[np.ndarray, np.ndarray], float],
    report: Callable[[int, int, str], None],
) -> tuple[dict, np.ndarray, list[dict]]:
    """Grid search over settings x folds; returns best params, its OOF predictions, all results."""
    settings = expand_grid(spec.quick_grid if config.quick else spec.grid)
    steps = len(settings) * len(folds) + 1
    results = []
    best: tuple[float, dict, np.ndarray] | None = None
    for si, params in enumerate(settings):
        oof = np.zeros(len(y), dtype=float)
        fold_scores = []
        for fi, (train_rows, valid_rows) in enumerate(folds):
            report(si * len(folds) + fi + 1, steps, f"setting {si + 1}/{len(settings)}, fold {fi + 1}/{len(folds)}")
            rows = _cap_rows(train_rows, spec.max_train_rows, config.seed + fi)
            pipeline = build_pipeline(spec, WINDOW_FEATURES, config.seed).set_params(**params)
            pipeline.fit(X.iloc[rows], y[rows])
            oof[valid_rows] = predict(pipeline, X.iloc[valid_rows])
            fold_scores.append(score(y[valid_rows], oof[valid_rows]))
        mean = float(np.mean(fold_scores))
        results.append({"params": describe_params(params), "mean": mean, "std": float(np.std(fold_scores))})
        if best is None or mean > best[0]:
            best = (mean, params, oof)
    assert best is not None
    report(steps, steps, "refit on all training sessions")
    return best[1], best[2], results


def _refit(spec: ModelSpec, params: dict, X: pd.DataFrame, y: np.ndarray, seed: int) -> tuple[object, float]:
    rows = _cap_rows(np.arange(len(y)), spec.max_train_rows, seed)
    pipeline = build_pipeline(spec, WINDOW_FEATURES, seed).set_params(**params)
    start = time.perf_counter()
    pipeline.fit(X.iloc[rows], y[rows])
    return pipeline, time.perf_counter() - start


def _proba(pipeline: object, X: pd.DataFrame) -> np.ndarray:
    return pipeline.predict_proba(X)[:, 1]


def _predict(pipeline: object, X: pd.DataFrame) -> np.ndarray:
    return pipeline.predict(X)


def train_classifier(spec: ModelSpec, data: TrainingData, config: TrainConfig, report) -> tuple[object, dict, dict]:
    def auc(y_true: np.ndarray, p: np.ndarray) -> float:
        return classification_metrics(y_true, p, 0.5)["roc_auc"]

    params, oof, grid_results = _search(spec, data.X_train, data.y_train, data.class_folds, config, _proba, auc, report)
    threshold = best_f1_threshold(data.y_train, oof)
    cv = summarise_folds([classification_metrics(data.y_train[va], oof[va], threshold) for _, va in data.class_folds])
    pipeline, fit_seconds = _refit(spec, params, data.X_train, data.y_train, config.seed)
    p_test = _proba(pipeline, data.X_test)
    metadata = {
        "params": describe_params(params),
        "grid": grid_results,
        "threshold": threshold,
        "metrics": {
            "test": classification_metrics(data.y_test, p_test, threshold),
            "cv": cv,
            "fit_seconds": fit_seconds,
            "predict_ms_per_1000": predict_latency_ms(lambda b: _proba(pipeline, b), data.X_test),
        },
        "feature_importance": feature_importance(pipeline, data.X_test, data.y_test, "roc_auc", config.seed),
        "notes": [spec.note] if spec.note else [],
    }
    return pipeline, metadata, classification_curves(data.y_test, p_test, config.seed)


def train_regressor(spec: ModelSpec, data: TrainingData, config: TrainConfig, report) -> tuple[object, dict, dict]:
    """Basket value of the sessions that convert after the window, from window features."""
    train_rows = np.flatnonzero(data.y_train == 1)
    test_rows = np.flatnonzero(data.y_test == 1)
    X_train, y_train = data.X_train.iloc[train_rows], data.basket_train[train_rows]
    X_test, y_test = data.X_test.iloc[test_rows], data.basket_test[test_rows]
    cv = GroupKFold(n_splits=config.folds, shuffle=True, random_state=config.seed)
    folds = list(cv.split(X_train, y_train, groups=X_train.index.to_numpy()))

    def r2(y_true: np.ndarray, y_pred: np.ndarray) -> float:
        return regression_metrics(y_true, y_pred)["r2"]

    params, oof, grid_results = _search(spec, X_train, y_train, folds, config, _predict, r2, report)
    pipeline, fit_seconds = _refit(spec, params, X_train, y_train, config.seed)
    y_pred = _predict(pipeline, X_test)
    notes = [spec.note] if spec.note else []
    notes.append(f"trained on the {len(X_train):,} training sessions that convert after the window")
    metadata = {
        "params": describe_params(params),
        "grid": grid_results,
        "target": "basket_value",
        "metrics": {
            "test": regression_metrics(y_test, y_pred),
            "cv": summarise_folds([regression_metrics(y_train[va], oof[va]) for _, va in folds]),
            "fit_seconds": fit_seconds,
            "predict_ms_per_1000": predict_latency_ms(lambda b: _predict(pipeline, b), X_test),
        },
        "feature_importance": feature_importance(pipeline, X_test, y_test, "r2", config.seed),
        "notes": notes,
    }
    return pipeline, metadata, regression_curves(y_test, y_pred, config.seed)


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
    features = data.sessions[list(segments.SEGMENT_FEATURES)]
    metadata = {
        "params": result.params,
        "metrics": {
            "test": result.metrics,
            "fit_seconds": fit_seconds,
            "predict_ms_per_1000": predict_latency_ms(result.pipeline.predict, features),
        },
        "silhouette_by_k": {str(kk): v for kk, v in scores.items()},
        "segments": segments.profile_records(segments.segment_profiles(data.sessions, result.labels)),
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
) -> TrainingResult:
    """Train the chosen models, report progress, and commit their runs together at the end.

    A model that fails is reported as failed with its reason and the others go
    on. A cancel (``should_stop`` returning true, or the process being killed)
    leaves the registry as it was.
    """
    entries = select_models(config.models, config.seed)
    job_id = new_run_id()
    started = time.perf_counter()
    with training_lock(registry.root, f"job {job_id}, {len(entries)} models"):
        registry.clean_stale_staging(max_age_seconds=0)  # we hold the lock: leftovers are dead jobs'
        reporter = _Reporter(entries, progress, should_stop)
        reporter.emit()
        data = prepare_training_data(clicks, config, source, data_hash)
        specs = all_specs(config.seed)
        with registry.staging(job_id) as staging:
            for entry in entries:
                reporter.check_stop()
                try:
                    _train_one(entry, data, config, specs, reporter, staging)
                except TrainingCancelled:
                    raise
                except Exception as exc:  # one model's failure must not sink the job
                    log.exception("training %s/%s failed", entry[0], entry[1])
                    reporter.update((entry[0], entry[1]), state="failed", detail=f"{type(exc).__name__}: {exc}")
            run_ids = [s.run_id for s in reporter.statuses.values() if s.run_id]
    return TrainingResult(job_id, reporter.snapshot(), run_ids, time.perf_counter() - started, data.summary)
