"""Fit one supervised model: grid search over session-grouped folds, threshold, refit, held-out test.

The search is our own loop rather than GridSearchCV so it can report every
fold to the progress bar and stop between folds. The threshold is chosen on the
out-of-fold predictions of the best setting; the held-out sessions are touched
once, by the refitted model.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold

from ml.features.window import FeatureSpec
from ml.models.capacity import at_threshold, capacity_table, residual_interval
from ml.models.evaluation import (
    best_f1_threshold,
    classification_curves,
    classification_metrics,
    feature_importance,
    predict_latency_ms,
    regression_curves,
    regression_metrics,
    summarise_folds,
)
from ml.models.training_data import TrainConfig, TrainingData
from ml.models.zoo import ModelSpec, build_pipeline, describe_params, expand_grid

Report = Callable[[int, int, str], None]


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
    features: Sequence[FeatureSpec],
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
            pipeline = build_pipeline(spec, features, config.seed).set_params(**params)
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


def _refit(
    spec: ModelSpec, params: dict, X: pd.DataFrame, y: np.ndarray, seed: int, features: Sequence[FeatureSpec]
) -> tuple[object, float]:
    rows = _cap_rows(np.arange(len(y)), spec.max_train_rows, seed)
    pipeline = build_pipeline(spec, features, seed).set_params(**params)
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

    params, oof, grid_results = _search(
        spec, data.X_train, data.y_train, data.class_folds, config, _proba, auc, report, data.specs
    )
    threshold = best_f1_threshold(data.y_train, oof)
    cv = summarise_folds([classification_metrics(data.y_train[va], oof[va], threshold) for _, va in data.class_folds])
    pipeline, fit_seconds = _refit(spec, params, data.X_train, data.y_train, config.seed, data.specs)
    p_test = _proba(pipeline, data.X_test)
    metadata = {
        "params": describe_params(params),
        "grid": grid_results,
        "threshold": threshold,
        # What "contact the top N%" and the threshold flag on every held-out session.
        "capacity": capacity_table(data.y_test, p_test),
        "threshold_rule": at_threshold(data.y_test, p_test, threshold),
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

    params, oof, grid_results = _search(spec, X_train, y_train, folds, config, _predict, r2, report, data.specs)
    pipeline, fit_seconds = _refit(spec, params, X_train, y_train, config.seed, data.specs)
    y_pred = _predict(pipeline, X_test)
    notes = [spec.note] if spec.note else []
    notes.append(f"trained on the {len(X_train):,} training sessions that convert after the window")
    metadata = {
        "params": describe_params(params),
        "grid": grid_results,
        "target": "basket_value",
        # Held-out residual quantiles: predictions are shown as a range, not to the cent.
        "interval": residual_interval(y_test, y_pred),
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
