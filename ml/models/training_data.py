"""What a training job works on: the configuration, and the split, folds and targets built once.

20% of the scoreable sessions are held out (stratified by the label); the rest
are cut into k folds grouped by session for the grid search. Everything here is
computed once per job and shared by every model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from ml.config import CV_FOLDS, DEFAULT_WINDOW, RANDOM_SEED, TEST_SIZE
from ml.data.clicks import index_clicks
from ml.data.memory import reusing_freed_memory
from ml.errors import ClickstreamError
from ml.features.labels import choose_definition, label_source
from ml.features.sessions import session_features
from ml.features.window import FeatureSpec, feature_ranges, window_features

MIN_TRAINING_SESSIONS = 50


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
    specs: tuple[FeatureSpec, ...] = ()
    layout: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)


@reusing_freed_memory
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
        ranges=feature_ranges(X_train, config.window, window.specs),
        label={**definition.describe(), "source": label_source(definition)},
        window=config.window,
        specs=window.specs,
        layout=window.layout.to_dict() if window.layout else {},
    )
