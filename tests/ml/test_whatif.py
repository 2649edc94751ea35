"""What-if engine: controls from saved metadata, predictions, sensitivity, real sessions as starting points."""

from __future__ import annotations

import numpy as np
import pytest

from ml.data import schema as S
from ml.features.prepared import prepare
from ml.features.window import FEATURE_SPECS, STATUS_CONVERTED_IN_WINDOW, STATUS_TOO_SHORT, window_features
from ml.serving import whatif as W
from ml.serving.scoring import best_regressor, load_scoring_models
from ml.tasks import CLASSIFICATION, REGRESSION


@pytest.fixture(scope="module")
def classifier(trained_registry):
    return trained_registry.load(trained_registry.latest(CLASSIFICATION, "xgboost"))


@pytest.fixture(scope="module")
def model(trained_registry, classifier) -> W.WhatIfModel:
    regressor = best_regressor(trained_registry.latest_per_model(REGRESSION), classifier.metadata["window"])
    return W.prepare_model(classifier, trained_registry.load(regressor))


@pytest.fixture(scope="module")
def prepared(bundled):
    return prepare(bundled, display_name="bundled")


def test_controls_match_the_saved_ranges(classifier):
    ranges = classifier.metadata["feature_ranges"]
    controls = W.controls_from_metadata(classifier.metadata)
    assert [c.name for c in controls] == [f["name"] for f in classifier.metadata["features"]]
    for control in controls:
        saved = ranges[control.name]
        assert control.label == FEATURE_SPECS[control.name].label
        assert control.typical == saved["typical"]
        if saved["kind"] == "numeric":
            assert control.is_numeric
            assert (control.minimum, control.maximum, control.step) == (saved["min"], saved["max"], saved["step"])
            assert control.integer == FEATURE_SPECS[control.name].integer
            if control.positions:
                assert control.positions[0] == saved["min"] and control.positions[-1] == saved["max"]
                assert np.allclose(np.diff(control.positions), saved["step"], atol=1e-5)
        else:
            assert not control.is_numeric
            assert sorted(code for code, _ in control.options) == sorted(saved["values"])
            book = S.CODEBOOK[FEATURE_SPECS[control.name].codebook]
            assert all(name == book[code] for code, name in control.options)


def test_sliders_are_stepped_sensibly(classifier):
    controls = {c.name: c for c in W.controls_from_metadata(classifier.metadata)}
    share = controls["w_sale_share"]
    assert share.positions == pytest.approx((0.0, 1 / 3, 2 / 3, 1.0), abs=1e-5)  # k = 3 clicks: thirds
    assert controls["first_page"].positions == (1.0, 2.0, 3.0, 4.0, 5.0)
    assert controls["w_price_mean"].positions == ()  # a fine slider, not a row of marks
    weekdays = [name for _, name in controls["day_of_week"].options]
    assert weekdays == sorted(weekdays, key=list(S.DAY_OF_WEEK_NAMES.values()).index)  # Monday first
    countries = [code for code, _ in controls["country"].options]
    ranges = classifier.metadata["feature_ranges"]["country"]
    assert countries == ranges["values"]  # many codes: most frequent first


def test_values_read_as_people_read_them(classifier):
    controls = {c.name: c for c in W.controls_from_metadata(classifier.metadata)}
    assert W.format_value(controls["w_sale_share"], 1 / 3) == "33%"
    assert W.format_value(controls["w_price_mean"], 44.5) == "$44.50"
    assert W.format_value(controls["first_price"], 43.0) == "$43"
    assert W.format_value(controls["w_max_page"], 3.0) == "3"
    assert W.format_value(controls["first_category"], 2) == "skirts"
    assert W.format_value(controls["country"], 29) == "Poland"


def test_values_outside_the_training_range_are_clipped(model):
    controls = {c.name: c for c in model.controls}
    price = controls["w_price_max"]
    values, clipped = W.clip_values(
        model.controls, {"w_price_max": price.maximum + 100, "w_max_page": 2.4, "country": 999, "month": None}
    )
    assert values["w_price_max"] == price.maximum
    assert values["w_max_page"] == 2.0  # integers are rounded
    assert values["country"] == controls["country"].typical  # a code never seen in training
    assert values["month"] == controls["month"].typical
    assert values["first_price"] == controls["first_price"].typical  # missing: typical
    assert set(clipped) == {"w_price_max", "w_max_page", "country"}
    frame = W.feature_frame(model.controls, values, rows=3)
    assert len(frame) == 3 and frame["country"].dtype == np.int64 and frame["w_price_max"].dtype == np.float64


def test_prediction_bundle(model, classifier, trained_registry):
    values = W.typical_values(model.controls)
    values["w_price_mean"] = 60.0
    result = W.predict(model, values)
    row = W.feature_frame(model.controls, result.values)
    assert 0.0 <= result.p <= 1.0
    assert result.p == pytest.approx(classifier.pipeline.predict_proba(row)[0, 1], abs=1e-9)
    assert result.predicted == (result.p >= classifier.metadata["threshold"])
    assert result.basket == pytest.approx(max(model.regressor.pipeline.predict(row)[0], 0.0), abs=1e-9)
    assert result.expected_revenue == pytest.approx(result.p * result.basket)
    assert result.sensitivity is None
    no_basket = W.prepare_model(classifier, None)
    assert W.predict(no_basket, values).expected_revenue is None


def test_the_regressor_is_the_one_scoring_uses(trained_registry, model):
    assert model.regressor.info.run_id == load_scoring_models(trained_registry).regressor.info.run_id
    assert best_regressor(trained_registry.latest_per_model(REGRESSION), model.window + 1) is None


@pytest.mark.parametrize("feature", ["w_price_mean", "w_sale_share", "country"])
def test_sensitivity_at_the_current_value_equals_the_single_prediction(model, feature):
    values = W.typical_values(model.controls)
    values["first_price"] = 61.0
    line = W.predict(model, values, sensitivity_feature=feature).sensitivity
    single = W.predict(model, values)  # the row alone, in its own model call
    assert line.current_p == pytest.approx(single.p, abs=1e-9)
    assert line.current == single.values[feature]
    control = model.control(feature)
    if control.is_numeric:
        assert min(line.x) == control.minimum and max(line.x) == control.maximum
        assert list(line.x) == sorted(line.x)
    else:
        assert len(line.x) == min(len(control.options), W.SENSITIVITY_MAX_CODES)
    assert ((line.p >= 0) & (line.p <= 1)).all()


def test_a_real_session_starts_from_its_true_window_features(prepared):
    window = window_features(prepared.indexed, 3, prepared.definition)
    session_id = window.features.index[10]
    start = W.session_start(prepared, 3, str(session_id))
    assert start.values is not None
    expected = window.features.loc[session_id]
    assert start.values == pytest.approx({name: float(v) for name, v in expected.items()})
    assert start.converted == bool(window.converted[session_id])
    assert f"Session {session_id}" in start.message
    assert W.cached_window_features(prepared, 3) is W.cached_window_features(prepared, 3)  # built once


def test_sessions_that_cannot_start_say_why(prepared):
    status = W.cached_window_features(prepared, 3).status
    short = status.index[status == STATUS_TOO_SHORT][0]
    start = W.session_start(prepared, 3, short)
    assert start.values is None and "too short" in start.message and "first 3" in start.message
    converted = status.index[status == STATUS_CONVERTED_IN_WINDOW][0]
    assert "already converted" in W.session_start(prepared, 3, converted).message
    assert "no session" in W.session_start(prepared, 3, 10_000_000).message
    assert "whole numbers" in W.session_start(prepared, 3, "abc").message
    assert "type a session" in W.session_start(prepared, 3, " ").message.lower()
