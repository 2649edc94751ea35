"""Decisions by capacity: the saved table equals a hand count on the held-out sessions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ml.models.capacity import at_share, at_threshold, capacity_table, residual_interval, top_share_mask
from ml.models.training_data import TrainConfig, prepare_training_data
from ml.tasks import CLASSIFICATION
from tests.conftest import FIXTURE_MODELS


def test_a_small_table_by_hand():
    y = [1, 0, 1, 1, 0, 0, 0, 1, 0, 0]
    p = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05]
    row = at_share(capacity_table(y, p), 0.3)  # the top 3 sessions: 0.9 (yes), 0.8 (no), 0.7 (yes)
    assert row["flagged"] == 3 and row["converted"] == 2
    assert row["precision"] == pytest.approx(2 / 3) and row["recall"] == pytest.approx(2 / 4)
    assert row["lift"] == pytest.approx((2 / 3) / 0.4) and row["threshold"] == 0.7
    assert top_share_mask(p, 0.3).tolist() == [True, True, True] + [False] * 7
    rule = at_threshold(y, p, 0.55)
    assert rule["flagged"] == 4 and rule["converted"] == 3 and rule["share"] == 0.4


def test_ties_at_the_cut_flag_exactly_the_share():
    row = at_share(capacity_table([1, 0, 1, 0], [0.5, 0.5, 0.5, 0.5]), 0.5)
    assert row["flagged"] == 2 and row["converted"] == 1  # stable order: the first two


def test_the_saved_capacity_table_equals_a_hand_count_on_held_out_sessions(trained_registry, small_clicks):
    """Rebuild the held-out split the job used, score it with the saved model, count by hand."""
    run = trained_registry.latest(CLASSIFICATION, "logreg")
    loaded = trained_registry.load(run)
    data = prepare_training_data(
        small_clicks, TrainConfig(quick=True, models=FIXTURE_MODELS), source="small sample", data_hash="small"
    )
    p = loaded.pipeline.predict_proba(data.X_test)[:, 1]
    y = data.y_test
    assert run.metadata["capacity"]["sessions"] == len(y)
    for share in (0.05, 0.10, 0.25, 0.50):
        k = math.ceil(share * len(y))
        top = np.argsort(-p, kind="stable")[:k]
        hits = int(y[top].sum())
        saved = at_share(run.metadata["capacity"], share)
        assert saved["flagged"] == k
        assert saved["converted"] == hits
        assert saved["precision"] == pytest.approx(hits / k)
        assert saved["lift"] == pytest.approx((hits / k) / y.mean())
    rule = run.metadata["threshold_rule"]
    flagged = p >= run.metadata["threshold"]
    assert rule["flagged"] == int(flagged.sum()) and rule["converted"] == int(y[flagged].sum())


def test_residual_interval_holds_its_coverage():
    rng = np.random.default_rng(0)
    actual = rng.normal(100, 30, 1000)
    interval = residual_interval(actual, np.full(1000, 100.0), coverage=0.8)
    inside = ((actual - 100 >= interval["low"]) & (actual - 100 <= interval["high"])).mean()
    assert inside == pytest.approx(0.8, abs=0.01) and interval["n"] == 1000
