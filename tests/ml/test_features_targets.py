"""Session features and the proxy targets, on hand-made sessions and on the bundled data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.data.clicks import index_clicks
from ml.features.labels import INPUT_LABEL, REVIEW_PROXY, choose_definition
from ml.features.sessions import session_features
from ml.features.window import (
    STATUS_CONVERTED_IN_WINDOW,
    STATUS_SCORED,
    STATUS_TOO_SHORT,
    WINDOW_FEATURE_NAMES,
    feature_ranges,
    window_features,
)
from tests.ml.factories import make_clicks

M = "page2_clothing_model"


@pytest.fixture
def three_sessions() -> pd.DataFrame:
    return make_clicks(
        {
            # re-views A1 (price 30) twice and B2 (price 50) once: converts, basket 30 + 50
            10: [
                {M: "A1", "price": 30},
                {M: "B2", "price": 50, "page1_main_category": 2},
                {M: "A1", "price": 30},
                {M: "B2", "price": 50, "page1_main_category": 2},
                {M: "A1", "price": 30},
            ],
            # one click: a bounce
            20: [{M: "C3", "price": 60, "page1_main_category": 3}],
            # three distinct products, no re-view
            30: [
                {M: "P1", "price": 20, "page1_main_category": 4, "price_2": 1},
                {M: "P2", "price": 22, "page1_main_category": 4, "page": 3},
                {M: "A5", "price": 70, "colour": 5},
            ],
        }
    )


def test_review_proxy_marks_re_viewing_sessions_and_sums_distinct_reviewed_prices(three_sessions):
    sessions = session_features(three_sessions)
    assert sessions.loc[10, "converted"]
    assert sessions.loc[10, "basket_value"] == 80.0  # A1 + B2, each counted once
    assert sessions.loc[10, "n_reviews"] == 3
    assert not sessions.loc[20, "converted"] and sessions.loc[20, "basket_value"] == 0.0
    assert not sessions.loc[30, "converted"] and sessions.loc[30, "basket_value"] == 0.0


def test_whole_session_features_describe_the_visit(three_sessions):
    s = session_features(three_sessions)
    assert s.loc[10, "n_clicks"] == 5 and s.loc[10, "n_products"] == 2
    assert s.loc[30, "n_categories"] == 2 and s.loc[30, "n_colours"] == 2
    assert s.loc[30, "sale_share"] == pytest.approx(2 / 3)
    assert s.loc[30, "premium_share"] == pytest.approx(1 / 3)
    assert s.loc[30, "main_category"] == 4
    assert s.loc[30, "max_page"] == 3
    assert s.loc[30, "price_min"] == 20 and s.loc[30, "price_max"] == 70
    assert s.loc[30, "price_mean"] == pytest.approx((20 + 22 + 70) / 3)
    assert s.loc[10, "day_of_week"] == 2  # 2008-05-14 was a Wednesday


def test_main_category_ties_go_to_the_category_viewed_first():
    clicks = make_clicks(
        {1: [{M: "C1", "page1_main_category": 3}, {M: "A1", "page1_main_category": 1}]},
    )
    assert session_features(clicks).loc[1, "main_category"] == 3


def test_features_do_not_depend_on_row_order(bundled_clicks):
    expected = session_features(bundled_clicks)
    shuffled = bundled_clicks.sample(frac=1.0, random_state=7)
    pd.testing.assert_frame_equal(session_features(shuffled).sort_index(), expected.sort_index())


def test_bundled_data_matches_the_documented_proxy_rate(bundled_clicks):
    sessions = session_features(bundled_clicks)
    assert len(sessions) == 24_026
    assert sessions["converted"].mean() == pytest.approx(0.2516, abs=0.001)
    assert (sessions.loc[sessions["converted"], "basket_value"] > 0).all()
    assert (sessions.loc[~sessions["converted"], "basket_value"] == 0).all()


def test_window_population_excludes_short_and_already_converted_sessions(three_sessions):
    window = window_features(three_sessions, 3)
    assert window.status[10] == STATUS_CONVERTED_IN_WINDOW  # A1 re-viewed at click 3
    assert window.status[20] == STATUS_TOO_SHORT
    assert window.status[30] == STATUS_SCORED
    assert list(window.features.index) == [30]
    assert list(window.features.columns) == list(WINDOW_FEATURE_NAMES)
    row = window.features.loc[30]
    assert row["first_category"] == 4 and row["last_category"] == 1
    assert row["w_sale_share"] == pytest.approx(2 / 3)
    assert row["w_max_page"] == 3 and row["w_page_changes"] == 2
    assert row["w_n_categories"] == 2 and row["w_category_switches"] == 1


def test_window_of_two_keeps_a_session_that_converts_later(three_sessions):
    window = window_features(three_sessions, 2)
    assert window.status[10] == STATUS_SCORED
    assert bool(window.converted[10]) and window.basket_value[10] == 80.0


def test_bundled_window_population_counts(bundled_clicks):
    window = window_features(bundled_clicks, 3)
    counts = window.status.value_counts()
    assert counts[STATUS_SCORED] == 13_990
    assert counts[STATUS_TOO_SHORT] + counts[STATUS_CONVERTED_IN_WINDOW] + counts[STATUS_SCORED] == 24_026
    assert window.converted.mean() == pytest.approx(0.2865, abs=0.001)


def test_window_must_be_positive(three_sessions):
    with pytest.raises(ValueError, match="at least 1"):
        window_features(three_sessions, 0)


def test_real_label_column_overrides_the_proxy(three_sessions):
    clicks = three_sessions.copy()
    clicks["converted"] = np.where(clicks["session_id"] == 20, 1, 0).astype("int8")
    clicks["revenue"] = np.where(clicks["session_id"] == 20, 99.5, 0.0)
    definition = choose_definition(clicks)
    assert definition is INPUT_LABEL
    sessions = session_features(clicks, definition)
    assert sessions.loc[20, "converted"] and sessions.loc[20, "basket_value"] == 99.5
    assert not sessions.loc[10, "converted"] and sessions.loc[10, "basket_value"] == 0.0
    # With a real label nothing is known to convert inside the window.
    assert window_features(clicks, 3, definition).status[10] == STATUS_SCORED
    assert choose_definition(three_sessions) is REVIEW_PROXY


def test_feature_ranges_bound_every_window_feature(bundled_clicks):
    features = window_features(bundled_clicks, 3).features
    ranges = feature_ranges(features, 3)
    assert set(ranges) == set(WINDOW_FEATURE_NAMES)
    assert ranges["w_sale_share"]["step"] == pytest.approx(1 / 3)
    assert ranges["w_max_page"]["min"] == 1 and ranges["w_max_page"]["max"] == 5
    assert ranges["country"]["typical"] == 29  # Poland dominates the bundled data
    assert 18 <= ranges["first_price"]["typical"] <= 82


def test_indexing_handles_string_session_ids_and_unsorted_input():
    clicks = make_clicks({"b-2": [{M: "A1"}, {M: "A2"}], "a-1": [{M: "B1"}, {M: "B1"}]})
    reversed_rows = clicks.iloc[::-1].reset_index(drop=True)
    indexed = index_clicks(reversed_rows)
    assert sorted(indexed.session_ids) == ["a-1", "b-2"]
    sessions = session_features(indexed)
    assert sessions.loc["a-1", "converted"] and not sessions.loc["b-2", "converted"]
