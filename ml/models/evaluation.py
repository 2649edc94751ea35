"""Metrics, decision thresholds, curve data and timing for fitted models.

Pure functions of true values and predictions: the training loop calls them
for each CV fold and for the held-out sessions, and saves the curve data beside
each model so the leaderboard can draw ROC, PR, calibration, gains and
residual plots without refitting anything.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.inspection import permutation_importance
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
    precision_recall_curve,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

from ml.config import CURVE_POINTS, STORED_PREDICTIONS


def classification_metrics(y_true: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    """Threshold-free (ROC-AUC, PR-AUC, Brier) and thresholded (F1, ...) metrics."""
    y_true = np.asarray(y_true).astype(int)
    predicted = (np.asarray(p) >= threshold).astype(int)
    both_classes = len(np.unique(y_true)) == 2
    return {
        "roc_auc": float(roc_auc_score(y_true, p)) if both_classes else float("nan"),
        "pr_auc": float(average_precision_score(y_true, p)) if both_classes else float("nan"),
        "brier": float(brier_score_loss(y_true, p)),
        "accuracy": float(accuracy_score(y_true, predicted)),
        "precision": float(precision_score(y_true, predicted, zero_division=0)),
        "recall": float(recall_score(y_true, predicted, zero_division=0)),
        "f1": float(f1_score(y_true, predicted, zero_division=0)),
    }


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    mse = float(mean_squared_error(y_true, y_pred))
    return {
        "r2": float(r2_score(y_true, y_pred)) if len(y_true) > 1 else float("nan"),
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
    }


def best_f1_threshold(y_true: np.ndarray, p: np.ndarray) -> float:
    """The probability cut-off with the highest F1 on validation predictions."""
    precision, recall, thresholds = precision_recall_curve(y_true, p)
    if not len(thresholds):
        return 0.5
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0)
    return float(thresholds[int(np.argmax(f1[:-1]))])


def summarise_folds(fold_metrics: Sequence[Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and standard deviation of each metric across CV folds."""
    frame = pd.DataFrame(list(fold_metrics))
    return {col: {"mean": float(frame[col].mean()), "std": float(frame[col].std(ddof=0))} for col in frame}


def _thin(*arrays: np.ndarray, points: int = CURVE_POINTS) -> list[list[float]]:
    n = len(arrays[0])
    idx = np.unique(np.linspace(0, n - 1, min(n, points)).astype(int)) if n else np.zeros(0, dtype=int)
    return [np.round(np.asarray(a, dtype=float)[idx], 6).tolist() for a in arrays]


def _sample_rows(n: int, size: int, seed: int) -> np.ndarray:
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def classification_curves(y_true: np.ndarray, p: np.ndarray, seed: int = 0) -> dict[str, object]:
    """ROC, precision-recall, calibration and cumulative-gains data, plus a sample of predictions."""
    y_true = np.asarray(y_true).astype(int)
    p = np.asarray(p, dtype=float)
    fpr, tpr, _ = roc_curve(y_true, p)
    precision, recall, _ = precision_recall_curve(y_true, p)
    prob_true, prob_pred = calibration_curve(y_true, p, n_bins=10, strategy="quantile")
    order = np.argsort(-p, kind="stable")
    gains = np.r_[0, np.cumsum(y_true[order])] / max(y_true.sum(), 1)
    population = np.arange(len(p) + 1) / max(len(p), 1)
    keep = _sample_rows(len(p), STORED_PREDICTIONS, seed)
    fpr_s, tpr_s = _thin(fpr, tpr)
    rec_s, prec_s = _thin(recall[::-1], precision[::-1])
    pop_s, gains_s = _thin(population, gains)
    return {
        "roc": {"fpr": fpr_s, "tpr": tpr_s},
        "pr": {"recall": rec_s, "precision": prec_s, "base_rate": float(y_true.mean())},
        "calibration": {"mean_predicted": prob_pred.round(6).tolist(), "observed": prob_true.round(6).tolist()},
        "gains": {"population": pop_s, "gain": gains_s},
        "predictions": {"y_true": y_true[keep].tolist(), "p": p[keep].round(6).tolist()},
    }


def regression_curves(y_true: np.ndarray, y_pred: np.ndarray, seed: int = 0) -> dict[str, object]:
    """A sample of (actual, predicted) pairs for predicted-vs-actual and residual plots."""
    keep = _sample_rows(len(y_true), STORED_PREDICTIONS, seed)
    actual = np.asarray(y_true, dtype=float)[keep]
    predicted = np.asarray(y_pred, dtype=float)[keep]
    return {"predictions": {"actual": actual.round(4).tolist(), "predicted": predicted.round(4).tolist()}}


def predict_latency_ms(predict: callable, X: pd.DataFrame, rows: int = 1000, repeats: int = 5) -> float:
    """Median wall time, in milliseconds, to predict ``rows`` rows."""
    batch = X.iloc[np.arange(rows) % len(X)]
    predict(batch)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        predict(batch)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000.0)


def feature_importance(
    pipeline: object,
    X: pd.DataFrame,
    y: np.ndarray,
    scoring: str,
    seed: int,
    max_rows: int = 2000,
) -> list[dict[str, float]]:
    """Permutation importance of each input feature on held-out rows, largest first.

    The same method for every model, so importances are comparable across the
    leaderboard; measured on held-out sessions, not on training data.
    """
    keep = _sample_rows(len(X), max_rows, seed)
    result = permutation_importance(
        pipeline, X.iloc[keep], np.asarray(y)[keep], scoring=scoring, n_repeats=3, random_state=seed, n_jobs=1
    )
    rows = [
        {"feature": name, "importance": float(m), "std": float(s)}
        for name, m, s in zip(X.columns, result.importances_mean, result.importances_std, strict=True)
    ]
    return sorted(rows, key=lambda r: -r["importance"])
