"""Transition features on hand-made sessions, and the 19 older window features pinned on the bundled data."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from ml.data import schema as S
from ml.features.transitions import (
    TRANSITION_COLUMNS,
    TRANSITION_FEATURE_NAMES,
    TRANSITION_FEATURES,
    product_code_parts,
    transition_features,
)
from ml.features.window import FEATURE_SPECS, WINDOW_FEATURE_NAMES, feature_ranges, window_features
from tests.ml.factories import make_clicks

M = "page2_clothing_model"


@pytest.fixture
def two_sessions() -> pd.DataFrame:
    return make_clicks(
        {
            # A10 -> A12 is a neighbour step (same letter, 2 apart); A12 -> B11 changes letter.
            1: [
                {M: "A10", "price": 40, "colour": 2, "model_photography": 1},
                {M: "A12", "price": 55, "colour": 2, "model_photography": 2},
                {M: "B11", "price": 30, "colour": 3, "model_photography": 2, "page1_main_category": 2},
                {M: "A11", "price": 99, "colour": 2, "model_photography": 1},  # after the window
            ],
            # P5 -> P8 is 3 apart (not a neighbour), P8 -> P7 is 1 apart; a constant colour and photo.
            2: [
                {M: "P5", "price": 20, "colour": 4, "day": 3, "page1_main_category": 4},
                {M: "P8", "price": 20, "colour": 4, "day": 3, "page1_main_category": 4},
                {M: "P7", "price": 25, "colour": 4, "day": 3, "page1_main_category": 4},
            ],
        }
    )


def test_transition_features_match_hand_computed_values(two_sessions):
    features = window_features(two_sessions, 3).features
    expected = pd.DataFrame(
        {
            "w_catalogue_neighbours": [1, 1],
            "w_price_net_change": [30.0 - 40.0, 25.0 - 20.0],
            "w_colour_repeats": [1, 2],
            "w_photo_switches": [1, 0],
            "day_of_month": [14, 3],
        },
        index=pd.Index([1, 2], name=S.SESSION_ID),
    )
    pd.testing.assert_frame_equal(features[list(TRANSITION_FEATURE_NAMES)], expected, check_dtype=False)


def test_a_one_click_window_has_no_steps(two_sessions):
    features = window_features(two_sessions, 1).features
    assert (features[["w_catalogue_neighbours", "w_colour_repeats", "w_photo_switches"]] == 0).all().all()
    assert (features["w_price_net_change"] == 0).all()
    assert features["day_of_month"].tolist() == [14, 3]


def test_product_codes_split_into_catalogue_letter_and_number():
    letters, numbers = product_code_parts(np.array([["A13", "P12"], ["C5", "sku-9"], ["12345", "B20"]], dtype=object))
    assert letters.tolist() == [["A", "P"], ["C", ""], ["", "B"]]
    np.testing.assert_array_equal(numbers, [[13.0, 12.0], [5.0, np.nan], [np.nan, 20.0]])


def test_codes_that_are_not_catalogue_codes_are_never_neighbours():
    grids = {
        S.CLOTHING_MODEL: np.array([["sku-1", "sku-2", "sku-3"], ["A1", "A2", "A2"]], dtype=object),
        S.PRICE: np.array([[10.0, 10.0, 10.0], [1.0, 2.0, 3.0]]),
        S.COLOUR: np.ones((2, 3), dtype=np.int8),
        S.PHOTOGRAPHY: np.ones((2, 3), dtype=np.int8),
        S.DAY: np.full((2, 3), 5, dtype=np.int8),
    }
    features = transition_features(grids)
    assert list(features) == list(TRANSITION_FEATURE_NAMES)
    assert features["w_catalogue_neighbours"].tolist() == [0, 1]  # the same product twice is no neighbour
    with pytest.raises(KeyError, match=S.PHOTOGRAPHY):
        transition_features({k: v for k, v in grids.items() if k != S.PHOTOGRAPHY})


def test_transition_features_are_window_features_with_ranges(bundled_clicks):
    assert set(TRANSITION_COLUMNS) <= set(S.CLICK_COLUMNS)
    assert WINDOW_FEATURE_NAMES[-len(TRANSITION_FEATURES) :] == TRANSITION_FEATURE_NAMES
    assert all(FEATURE_SPECS[f.name] == f for f in TRANSITION_FEATURES)
    features = window_features(bundled_clicks, 3).features
    ranges = feature_ranges(features, 3)
    assert ranges["w_catalogue_neighbours"] == {"kind": "numeric", "min": 0.0, "max": 2.0, "step": 1.0, "typical": 0.0}
    assert ranges["day_of_month"]["min"] == 1 and ranges["day_of_month"]["max"] == 31


# The 19 window features as they were before the transition features were added: a digest of each
# column's values on the bundled data (k = 3), rows in session order. A change here changes models.
OLD_WINDOW_FEATURE_DIGESTS = {
    "country": "b6f265cc55514c0d",
    "day_of_week": "1c805d6cf5e321df",
    "month": "8df642eb19b6fda1",
    "first_category": "b77510a7145dcf49",
    "last_category": "d6f94f2c424f6a7b",
    "first_page": "5a0d1eba0914cf94",
    "first_price": "a3cd9da05b4f3427",
    "w_price_mean": "41bf70df61da7f8a",
    "w_price_min": "03dcba6bb73acf72",
    "w_price_max": "8fd3a4ed98860a7e",
    "w_premium_share": "2224de2f3ede87f6",
    "w_sale_share": "10e452822cd17bd3",
    "w_profile_share": "97bd057e5d18b43a",
    "w_top_row_share": "c1a58e0b9a7290bb",
    "w_n_categories": "17fb015b4a67f61e",
    "w_n_colours": "caeadfc52d691c90",
    "w_max_page": "d65b55f8f6f71741",
    "w_page_changes": "9bb1b11d14383ade",
    "w_category_switches": "2c32169b02980ca8",
}


def _digest(column: pd.Series) -> str:
    values = np.round(column.to_numpy(dtype=np.float64), 9)
    return hashlib.sha256(column.index.to_numpy(dtype=np.int64).tobytes() + values.tobytes()).hexdigest()[:16]


def test_the_nineteen_older_window_features_are_unchanged_on_the_bundled_data(bundled_clicks):
    features = window_features(bundled_clicks, 3).features.sort_index()
    assert len(features) == 13_990
    assert WINDOW_FEATURE_NAMES[: len(OLD_WINDOW_FEATURE_DIGESTS)] == tuple(OLD_WINDOW_FEATURE_DIGESTS)
    digests = {name: _digest(features[name]) for name in OLD_WINDOW_FEATURE_DIGESTS}
    changed = [name for name, digest in digests.items() if digest != OLD_WINDOW_FEATURE_DIGESTS[name]]
    assert not changed, f"window features changed on the bundled data: {changed}"
