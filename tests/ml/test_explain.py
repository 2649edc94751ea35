"""Per-feature contributions: exact sums to the margin, the right method per model, fast preprocessing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xgboost
from imblearn.over_sampling import SMOTE

from ml.features.window import WINDOW_FEATURES, window_features
from ml.models.explain import (
    METHOD_LINEAR,
    METHOD_PATH,
    METHOD_TREE_SHAP,
    fast_pipeline,
    make_explainer,
    margin,
    single_threaded,
)
from ml.models.zoo import build_pipeline, classifier_specs
from ml.tasks import CLASSIFICATION

ROWS = 8
SEED = 7


@pytest.fixture(scope="module")
def window(small_clicks):
    return window_features(small_clicks, 3)


@pytest.fixture(scope="module")
def rows(window) -> pd.DataFrame:
    return window.features.sample(ROWS, random_state=SEED)


@pytest.fixture(scope="module")
def baseline(window) -> pd.DataFrame:
    """A typical session: the median number and the most common code."""
    typical = {}
    for spec in WINDOW_FEATURES:
        column = window.features[spec.name]
        typical[spec.name] = [column.mode()[0] if spec.kind == "categorical" else float(column.median())]
    return pd.DataFrame(typical)


@pytest.fixture(scope="module")
def codes(window) -> dict[str, list[int]]:
    return {s.name: sorted(window.features[s.name].unique().tolist()) for s in WINDOW_FEATURES if s.kind != "numeric"}


def _fit(window, name: str, **params) -> object:
    spec = next(s for s in classifier_specs(SEED) if s.name == name)
    pipeline = build_pipeline(spec, WINDOW_FEATURES, SEED).set_params(**params)
    return pipeline.fit(window.features, window.converted.to_numpy().astype(int))


@pytest.fixture(scope="module")
def pipelines(trained_registry, window) -> dict[str, object]:
    """Saved logreg and XGBoost runs, plus a forest behind SMOTE, the nested SVM and the blend fitted here."""
    latest = {m: trained_registry.latest(CLASSIFICATION, m) for m in ("logreg", "xgboost")}
    saved = {m: trained_registry.load(run).pipeline for m, run in latest.items()}
    forest = _fit(
        window, "forest", model__n_estimators=30, model__max_depth=6, model__min_samples_leaf=10, sampler=SMOTE()
    )
    svm = _fit(window, "svm", model__calibratedclassifiercv__estimator__C=0.1)
    blend = _fit(window, "blend", model__xgboost__n_estimators=50)
    return {**saved, "forest": forest, "svm": svm, "blend": blend}


@pytest.mark.parametrize(
    ("name", "method"),
    [
        ("xgboost", METHOD_TREE_SHAP),
        ("logreg", METHOD_LINEAR),
        ("forest", METHOD_PATH),
        ("svm", METHOD_PATH),
        ("blend", METHOD_PATH),
    ],
)
def test_contributions_sum_to_the_models_margin(pipelines, rows, baseline, codes, name, method):
    pipeline = pipelines[name]
    explainer = make_explainer(pipeline, baseline, codes, check=rows)
    assert explainer.method == method
    expected_p = pipeline.predict_proba(rows)[:, 1]
    for i in range(len(rows)):
        contributions, p = explainer.explain(rows.iloc[[i]])
        assert p[0] == pytest.approx(expected_p[i], abs=1e-9)
        assert contributions.margin == pytest.approx(float(margin(expected_p[i])), abs=1e-6)
        assert contributions.features == tuple(s.name for s in WINDOW_FEATURES)
        assert np.abs(contributions.values).sum() > 0  # a real session differs from the typical one somewhere


def test_extra_rows_are_scored_in_the_same_call(pipelines, rows, baseline, codes):
    for name in ("xgboost", "forest"):
        explainer = make_explainer(pipelines[name], baseline, codes)
        _, p = explainer.explain(rows.iloc[[0]], also=rows.iloc[1:])
        assert np.allclose(p, pipelines[name].predict_proba(rows)[:, 1], atol=1e-9)


def _preprocessed(pipeline, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    preprocess = pipeline.named_steps["preprocess"]
    return preprocess.transform(frame), preprocess.get_feature_names_out()


def test_xgboost_contributions_are_the_boosters_own_pred_contribs(pipelines, rows, baseline, codes):
    pipeline = pipelines["xgboost"]
    explainer = make_explainer(pipeline, baseline, codes)
    contributions, _ = explainer.explain(rows.iloc[[0]])
    transformed, names = _preprocessed(pipeline, rows.iloc[[0]])
    booster_contribs = (
        pipeline.named_steps["model"].get_booster().predict(xgboost.DMatrix(transformed), pred_contribs=True)[0]
    )
    by_name = dict(zip(contributions.features, contributions.values, strict=True))
    assert by_name["w_price_mean"] == pytest.approx(booster_contribs[list(names).index("w_price_mean")], abs=1e-6)
    country_columns = [i for i, n in enumerate(names) if n.startswith("country_")]
    assert len(country_columns) > 1  # one-hot columns summed back to one feature
    assert by_name["country"] == pytest.approx(booster_contribs[country_columns].sum(), abs=1e-6)
    assert contributions.base == pytest.approx(booster_contribs[-1], abs=1e-5)  # the bias column


def test_logistic_contributions_are_coefficient_times_distance_from_the_typical_session(
    pipelines, rows, baseline, codes
):
    pipeline = pipelines["logreg"]
    contributions, _ = make_explainer(pipeline, baseline, codes).explain(rows.iloc[[0]])
    x, names = _preprocessed(pipeline, rows.iloc[[0]])
    b, _ = _preprocessed(pipeline, baseline)
    coef = pipeline.named_steps["model"].coef_[0]
    column = list(names).index("first_price")
    by_name = dict(zip(contributions.features, contributions.values, strict=True))
    assert by_name["first_price"] == pytest.approx(coef[column] * (x[0, column] - b[0, column]), abs=1e-12)
    assert contributions.base == pytest.approx(float(margin(pipeline.predict_proba(baseline)[0, 1])), abs=1e-12)


@pytest.mark.parametrize("name", ["logreg", "forest", "svm"])
def test_moving_one_feature_from_the_baseline_credits_only_that_feature(pipelines, baseline, codes, name):
    pipeline = pipelines[name]
    explainer = make_explainer(pipeline, baseline, codes)
    row = baseline.copy()
    row["first_price"] = row["first_price"] + 15.0
    contributions, _ = explainer.explain(row)
    moved = contributions.features.index("first_price")
    others = np.delete(contributions.values, moved)
    assert np.allclose(others, 0.0, atol=1e-9)  # BLAS may round identical rows differently
    change = margin(pipeline.predict_proba(row)[0, 1]) - margin(pipeline.predict_proba(baseline)[0, 1])
    assert contributions.values[moved] == pytest.approx(float(change), abs=1e-9)


def test_compiled_preprocessing_reproduces_the_pipeline_and_falls_back_on_unknown_codes(
    pipelines, rows, baseline, codes
):
    pipeline = pipelines["logreg"]
    fast = fast_pipeline(pipeline, baseline, codes, check=rows)
    assert fast.compiled is not None
    preprocess = pipeline.named_steps["preprocess"]
    assert np.allclose(fast.transform(rows), preprocess.transform(rows), atol=1e-12)
    unseen = rows.iloc[[0]].copy()
    unseen["country"] = 99  # not in the lookup table: the real transformers handle it
    assert fast.compiled(unseen, 1) is None
    assert np.allclose(fast.transform(unseen), preprocess.transform(unseen), atol=1e-12)


def test_single_threaded_copy_leaves_the_fitted_model_alone(pipelines):
    forest = pipelines["forest"].named_steps["model"]
    forest.set_params(n_jobs=2)
    private = single_threaded(forest)
    assert private.n_jobs == 1 and forest.n_jobs == 2
    assert private is not forest


def test_margin_is_the_logit_and_stays_finite():
    assert margin(0.5) == pytest.approx(0.0)
    assert margin(0.25) == pytest.approx(np.log(1 / 3))
    assert np.isfinite(margin(np.array([0.0, 1.0]))).all()
