"""A short train-and-score round trip on a small sample, and how training reports and stops."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.data import schema as S
from ml.errors import NoModelError
from ml.features.window import STATUS_SCORED, WINDOW_FEATURE_NAMES
from ml.serving.locking import TrainingBusy, training_lock
from ml.serving.registry import Registry
from ml.serving.scoring import SCORE_COLUMNS, load_scoring_models, score_clicks, score_summary
from ml.serving.training import TrainConfig, TrainingCancelled, TrainingDataError, select_models, train
from ml.tasks import CLASSIFICATION, CLUSTERING, REGRESSION


def test_metadata_records_what_a_run_needs_to_be_trusted_and_reused(trained_registry):
    run = trained_registry.latest(CLASSIFICATION, "xgboost")
    meta = run.metadata
    assert meta["window"] == 3
    assert [f["name"] for f in meta["features"]] == list(WINDOW_FEATURE_NAMES)
    assert meta["label"]["name"] == "review" and meta["label"]["source"] == "proxy"
    assert meta["data"]["hash"] == "small" and meta["data"]["test_sessions"] > 0
    assert 0.0 < meta["threshold"] < 1.0
    assert {"scikit-learn", "xgboost", "imbalanced-learn"} <= set(meta["versions"])
    test, cv = meta["metrics"]["test"], meta["metrics"]["cv"]
    for name in ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "brier"):
        assert 0.0 <= test[name] <= 1.0
        assert set(cv[name]) == {"mean", "std"}
    assert meta["metrics"]["fit_seconds"] > 0 and meta["metrics"]["predict_ms_per_1000"] > 0
    assert {r["feature"] for r in meta["feature_importance"]} == set(WINDOW_FEATURE_NAMES)
    assert set(meta["feature_ranges"]) == set(WINDOW_FEATURE_NAMES)
    curves = trained_registry.curves(run)
    assert {"roc", "pr", "calibration", "gains", "predictions"} <= set(curves)
    assert len(curves["predictions"]["p"]) == meta["data"]["test_sessions"]


def test_regression_and_clustering_runs_carry_their_metrics(trained_registry):
    linear = trained_registry.latest(REGRESSION, "linear").metadata
    assert set(linear["metrics"]["test"]) == {"r2", "mae", "mse", "rmse"}
    assert linear["metrics"]["test"]["rmse"] == pytest.approx(np.sqrt(linear["metrics"]["test"]["mse"]))
    kmeans = trained_registry.latest(CLUSTERING, "kmeans").metadata
    assert {"silhouette", "davies_bouldin", "inertia"} <= set(kmeans["metrics"]["test"])
    assert str(kmeans["params"]["k"]) in kmeans["silhouette_by_k"]
    assert len(kmeans["segments"]) == kmeans["params"]["k"]
    dbscan = trained_registry.latest(CLUSTERING, "dbscan").metadata
    assert 0.0 <= dbscan["metrics"]["test"]["noise_share"] <= 1.0


def test_scoring_gives_one_row_per_session_with_status_and_segment(trained_registry, bundled_clicks):
    models = load_scoring_models(trained_registry)
    sample = bundled_clicks[bundled_clicks[S.SESSION_ID].between(5000, 5060)]  # a few hundred clicks
    scores = score_clicks(sample, models)
    assert tuple(scores.columns) == SCORE_COLUMNS
    assert len(scores) == sample[S.SESSION_ID].nunique()
    assert scores["clicks"].sum() == len(sample)
    scored = scores[scores["status"] == STATUS_SCORED]
    assert len(scored) and scored["p_convert"].between(0, 1).all()
    assert (scored["predicted_converted"] == (scored["p_convert"] >= models.threshold)).all()
    np.testing.assert_allclose(
        scored["expected_revenue"], scored["p_convert"] * scored["predicted_basket_value"], atol=0.01
    )
    unscored = scores[scores["status"] != STATUS_SCORED]
    assert unscored["p_convert"].isna().all() and unscored["predicted_converted"].isna().all()
    assert scores["clicks"][scores["status"] == "too short"].lt(3).all()
    personas = {s["persona"] for s in models.segmenter.metadata["segments"]}
    assert set(scores["segment"]) <= personas and len(set(scores["segment"])) > 1  # e.g. "bargain hunters"
    assert score_summary(scores)["sessions"] == len(scores)


def test_scoring_uses_the_models_own_window(trained_registry, small_clicks):
    models = load_scoring_models(trained_registry)
    scores = score_clicks(small_clicks, models)
    assert (scores.loc[scores["clicks"] < models.window, "status"] == "too short").all()


def test_training_reports_each_model_from_waiting_to_done(small_clicks, tmp_path):
    seen: list[list[dict]] = []
    train(
        small_clicks,
        Registry(tmp_path),
        TrainConfig(quick=True, models=("tree", "regression:ridge")),
        source="t",
        data_hash="t",
        progress=seen.append,
    )
    states = {(s["task"], s["model"]): [] for s in seen[0]}
    for snapshot in seen:
        for s in snapshot:
            states[(s["task"], s["model"])].append(s["state"])
    for history in states.values():
        assert history[0] == "waiting" and history[-1] == "done" and "fitting" in history
    fitting = [s for snap in seen for s in snap if s["state"] == "fitting"]
    assert any("fold" in s["detail"] and s["steps"] > 1 for s in fitting)


def test_a_failing_model_is_reported_and_the_others_are_saved(small_clicks, tmp_path, monkeypatch):
    from ml.serving import training

    def broken(*args, **kwargs):
        raise RuntimeError("solver exploded")

    monkeypatch.setattr(training, "train_dbscan", broken)
    registry = Registry(tmp_path)
    result = train(
        small_clicks, registry, TrainConfig(quick=True, models=("logreg", "dbscan")), source="t", data_hash="t"
    )
    states = {s["model"]: s for s in result.statuses}
    assert states["dbscan"]["state"] == "failed" and "solver exploded" in states["dbscan"]["detail"]
    assert states["logreg"]["state"] == "done"
    assert [r.model for r in registry.runs()] == ["logreg"]


def test_a_cancelled_job_saves_nothing_and_keeps_the_models_in_use(small_clicks, tmp_path):
    registry = Registry(tmp_path)
    train(small_clicks, registry, TrainConfig(quick=True, models=("logreg",)), source="t", data_hash="t")
    before = [r.run_id for r in registry.runs()]
    calls = {"n": 0}

    def stop_after_a_few_checks() -> bool:
        calls["n"] += 1
        return calls["n"] > 8  # after the first model is done, during the second

    with pytest.raises(TrainingCancelled):
        train(
            small_clicks,
            registry,
            TrainConfig(quick=True, models=("tree", "logreg", "xgboost")),
            source="t",
            data_hash="t",
            should_stop=stop_after_a_few_checks,
        )
    assert [r.run_id for r in registry.runs()] == before
    assert not any((tmp_path / ".staging").iterdir())


def test_training_is_refused_while_another_job_holds_the_lock(small_clicks, tmp_path):
    with training_lock(tmp_path, "someone else"), pytest.raises(TrainingBusy):
        train(small_clicks, Registry(tmp_path), TrainConfig(quick=True, models=("logreg",)), source="t", data_hash="t")


def test_too_few_sessions_is_a_clear_error(small_clicks, tmp_path):
    tiny = small_clicks[small_clicks[S.SESSION_ID] <= 20]
    with pytest.raises(TrainingDataError, match="too few sessions"):
        train(tiny, Registry(tmp_path), TrainConfig(quick=True, models=("logreg",)), source="t", data_hash="t")


def test_model_names_resolve_per_task():
    assert [(t, m) for t, m, _ in select_models(["xgboost"])] == [(CLASSIFICATION, "xgboost"), (REGRESSION, "xgboost")]
    assert [(t, m) for t, m, _ in select_models(["regression:forest"])] == [(REGRESSION, "forest")]
    with pytest.raises(ValueError, match="unknown model 'boosting'"):
        select_models(["boosting"])


def test_scoring_without_models_says_how_to_train(tmp_path):
    with pytest.raises(NoModelError, match="python -m ml train"):
        load_scoring_models(Registry(tmp_path))


def test_scoring_a_file_with_string_ids_keeps_them(trained_registry, bundled_clicks):
    sample = bundled_clicks[bundled_clicks[S.SESSION_ID] <= 30].copy()
    sample[S.SESSION_ID] = "visit-" + sample[S.SESSION_ID].astype(str)
    scores = score_clicks(sample, load_scoring_models(trained_registry))
    assert scores["session_id"].str.startswith("visit-").all()
    assert isinstance(scores, pd.DataFrame)
