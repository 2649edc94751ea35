"""Nothing after click k reaches a feature, and shuffled labels give chance-level models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.data import schema as S
from ml.data.clicks import index_clicks
from ml.features.transitions import TRANSITION_FEATURE_NAMES
from ml.features.window import WINDOW_FEATURE_NAMES, window_features
from ml.models.zoo import classifier_specs
from ml.serving.registry import Registry
from ml.serving.training import TrainConfig, train

WINDOW = 3
ATTRIBUTES = (S.COUNTRY, S.CATEGORY, S.COLOUR, S.LOCATION, S.PHOTOGRAPHY, S.PRICE, S.PRICE_2, S.PAGE)


def _rank(clicks: pd.DataFrame) -> np.ndarray:
    """0-based position of each row within its session, in the frame's own row order."""
    indexed = index_clicks(clicks)
    rank = pd.Series(indexed.rank, index=pd.MultiIndex.from_frame(indexed.clicks[[S.SESSION_ID, S.ORDER]]))
    keys = pd.MultiIndex.from_frame(clicks[[S.SESSION_ID, S.ORDER]])
    return rank.reindex(keys).to_numpy()


def _scramble(clicks: pd.DataFrame, rows: np.ndarray, seed: int) -> pd.DataFrame:
    """Replace every attribute of the given rows with random valid values (new products too)."""
    rng = np.random.default_rng(seed)
    out = clicks.copy()
    n = int(rows.sum())
    for column in ATTRIBUTES:
        if column == S.PRICE:
            values = rng.integers(18, 83, size=n).astype(float)
        else:
            low, high = S.CODE_RANGES[column].low, S.CODE_RANGES[column].high
            values = rng.integers(low, high + 1, size=n)
        out.loc[rows, column] = values.astype(out[column].dtype)
    models = out[S.CLOTHING_MODEL].astype(str).to_numpy()
    models[rows] = [f"Z{i % 7}" for i in range(n)]  # re-views after the window, on purpose
    out[S.CLOTHING_MODEL] = pd.Categorical(models)
    later_day = out[S.DATE] + pd.Timedelta(days=3)
    out.loc[rows, S.DATE] = later_day[rows]
    for column, part in ((S.YEAR, later_day.dt.year), (S.MONTH, later_day.dt.month), (S.DAY, later_day.dt.day)):
        out.loc[rows, column] = part[rows].astype(out[column].dtype)
    return out


def test_changing_any_click_after_the_window_leaves_feature_rows_identical(bundled_clicks):
    clicks = bundled_clicks.sample(frac=1.0, random_state=3).reset_index(drop=True)  # not sorted
    after_window = _rank(clicks) >= WINDOW
    before = window_features(clicks, WINDOW)
    changed = window_features(_scramble(clicks, after_window, seed=1), WINDOW)
    assert set(TRANSITION_FEATURE_NAMES) <= set(before.features.columns)  # the transitions are checked too
    pd.testing.assert_frame_equal(changed.features.sort_index(), before.features.sort_index())
    pd.testing.assert_series_equal(changed.status.sort_index(), before.status.sort_index())
    # The labels do change: the scramble really touched what comes after the window.
    assert not changed.converted.sort_index().equals(before.converted.sort_index())


def test_dropping_every_click_after_the_window_leaves_feature_rows_identical(bundled_clicks):
    before = window_features(bundled_clicks, WINDOW)
    truncated = bundled_clicks[_rank(bundled_clicks) < WINDOW]
    after = window_features(truncated, WINDOW)
    pd.testing.assert_frame_equal(after.features.sort_index(), before.features.sort_index())


def test_changing_a_click_inside_the_window_does_change_features(bundled_clicks):
    """The control for the two tests above: they would notice a change if there was one."""
    inside = _rank(bundled_clicks) == WINDOW - 1
    before = window_features(bundled_clicks, WINDOW)
    changed = window_features(_scramble(bundled_clicks, inside, seed=2), WINDOW)
    common = before.features.index.intersection(changed.features.index)
    differs = (changed.features.loc[common] != before.features.loc[common]).any(axis=1)
    assert differs.mean() > 0.5


def test_every_feature_column_reads_the_window(bundled_clicks):
    """The control, column by column: scrambling the window's clicks changes each feature somewhere."""
    inside = _rank(bundled_clicks) < WINDOW
    before = window_features(bundled_clicks, WINDOW)
    changed = window_features(_scramble(bundled_clicks, inside, seed=3), WINDOW)
    common = before.features.index.intersection(changed.features.index)
    differs = (changed.features.loc[common] != before.features.loc[common]).mean()
    assert list(differs.index) == list(WINDOW_FEATURE_NAMES)
    assert (differs > 0.05).all(), differs[differs <= 0.05]


def _session_labels(clicks: pd.DataFrame, labels: pd.Series) -> pd.DataFrame:
    out = clicks.copy()
    out[S.LABEL_CONVERTED] = clicks[S.SESSION_ID].map(labels).astype("int8").to_numpy()
    return out


@pytest.fixture(scope="module")
def proxy_labels(bundled_clicks: pd.DataFrame) -> pd.Series:
    window = window_features(bundled_clicks, WINDOW)
    return window.converted.astype(int)


def _best_held_out_auc(clicks: pd.DataFrame, tmp_path, label: str | None) -> float:
    classifiers = tuple(spec.name for spec in classifier_specs(0))
    config = TrainConfig(
        window=WINDOW, quick=True, label=label, models=tuple(f"classification:{m}" for m in classifiers)
    )
    result = train(clicks, Registry(tmp_path), config, source="test", data_hash="test")
    scores = [s["score"] for s in result.statuses if s["state"] == "done"]
    assert len(scores) == len(classifiers), result.statuses
    return max(scores)


def test_shuffled_labels_give_chance_level_roc_auc(bundled_clicks, proxy_labels, tmp_path):
    """With labels shuffled across sessions, even the best classifier must score about 0.5."""
    population = bundled_clicks[bundled_clicks[S.SESSION_ID].isin(proxy_labels.index)]
    rng = np.random.default_rng(11)
    shuffled = pd.Series(rng.permutation(proxy_labels.to_numpy()), index=proxy_labels.index)
    auc = _best_held_out_auc(_session_labels(population, shuffled), tmp_path, label="input")
    assert 0.45 <= auc <= 0.55


def test_real_proxy_labels_score_above_chance_but_not_implausibly_high(bundled_clicks, proxy_labels, tmp_path):
    """The honest early-prediction task scores near 0.6; far higher would mean leakage."""
    population = bundled_clicks[bundled_clicks[S.SESSION_ID].isin(proxy_labels.index)]
    auc = _best_held_out_auc(_session_labels(population, proxy_labels), tmp_path, label="input")
    assert 0.55 < auc < 0.75
