"""EDA cubes: filtered queries agree with direct computations from clicks and sessions."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from ml.data import schema as S
from ml.data.clicks import index_clicks
from ml.features import eda
from ml.features.eda import EdaCubes, build_eda_cubes
from ml.features.kpis import SessionFilter
from ml.features.prepared import PreparedData, prepare
from ml.features.sessions import session_features
from tests.ml.factories import make_clicks

NOBODY = SessionFilter(country=(1,))  # no session comes from Australia in the hand-made data


def _cubes(clicks: pd.DataFrame, **kwargs: object) -> EdaCubes:
    indexed = index_clicks(clicks)
    return build_eda_cubes(indexed, session_features(indexed), **kwargs)


@pytest.fixture(scope="module")
def small() -> EdaCubes:
    """Three sessions: a trousers re-view, a skirt viewed three times, one sale click."""
    return _cubes(
        make_clicks(
            {
                1: [
                    {"page2_clothing_model": "A1", "price": 40, "location": 2},
                    {"page2_clothing_model": "A2", "price": 50, "colour": 3, "page": 2},
                    {"page2_clothing_model": "A1", "price": 40, "location": 2},
                ],
                2: [
                    {"page2_clothing_model": "B1", "page1_main_category": 2, "colour": 3, "day": 15, "country": 9}
                    for _ in range(3)
                ],
                3: [{"page2_clothing_model": "P1", "page1_main_category": 4, "month": 6, "day": 1, "price": 20}],
            }
        )
    )


def test_price_distribution_counts_clicks_per_category_and_price(small: EdaCubes):
    table = eda.price_distribution(small, SessionFilter()).set_index(["category_label", "price"])
    assert table.loc[("trousers", 40.0), "views"] == 2
    assert table.loc[("trousers", 50.0), "share"] == pytest.approx(1 / 3)
    assert table.loc[("trousers", 50.0), "category_median"] == 40.0
    assert table.loc[("sale", 20.0), "price_label"] == "$20"
    assert table["views"].sum() == 7


def test_top_products_by_views_and_by_review_rate(small: EdaCubes):
    by_views = eda.top_products(small, SessionFilter(), by="views")
    assert list(by_views["product"]) == ["B1", "A1", "A2", "P1"]
    b1 = by_views.iloc[0]
    assert (b1["views"], b1["review_clicks"], b1["sessions"], b1["reviewing_sessions"]) == (3, 2, 1, 1)
    assert b1["category_label"] == "skirts"

    by_rate = eda.top_products(small, SessionFilter(), by="review_rate", min_sessions=1)
    assert list(by_rate["product"][:2]) == ["B1", "A1"]  # both re-viewed by every viewer; more views first
    assert list(by_rate["review_rate"]) == [1.0, 1.0, 0.0, 0.0]
    assert eda.top_products(small, SessionFilter(), by="review_rate", min_sessions=2).empty

    trousers_only = eda.top_products(small, SessionFilter(country=(29,), main_category=(1,)))
    assert set(trousers_only["product"]) == {"A1", "A2"}
    with pytest.raises(ValueError, match="unknown metric"):
        eda.top_products(small, SessionFilter(), by="price")


def test_session_lengths_caps_long_sessions():
    clicks = make_clicks(
        {1: [{"page2_clothing_model": f"A{i}"} for i in range(45)], 2: [{"page2_clothing_model": "A1"}]}
    )
    table = eda.session_lengths(_cubes(clicks), SessionFilter())
    assert list(table["label"]) == ["1", "40+"]
    assert list(table["sessions"]) == [1, 1]
    assert list(table["conversion_rate"]) == [0.0, 0.0]


def test_heatmap_tables_and_weekdays(small: EdaCubes):
    grid = eda.page_location(small, SessionFilter()).set_index(["page", "location"])
    assert len(grid) == 2 * 2  # every (page, location) seen in the data, zeros included
    assert grid.loc[(1, 2), "views"] == 2
    assert grid.loc[(2, 2), "views"] == 0
    assert grid.loc[(2, 1), "location_label"] == "top left"

    colours = eda.category_colour(small, SessionFilter()).set_index(["category_label", "colour_label"])
    assert colours.loc[("trousers", "black"), "share_of_category"] == pytest.approx(2 / 3)
    assert colours.loc[("skirts", "blue"), "views"] == 3

    weekdays = eda.sessions_by_weekday(small, SessionFilter()).set_index("label")
    assert len(weekdays) == 7
    assert weekdays.loc["Wednesday", "sessions"] == 1  # 14 May 2008
    assert weekdays.loc["Sunday", "sessions"] == 1  # 1 June 2008
    assert weekdays.loc["Monday", "sessions"] == 0


def test_a_filter_without_sessions_gives_empty_tables(small: EdaCubes):
    assert eda.price_distribution(small, NOBODY).empty
    assert eda.session_lengths(small, NOBODY).empty
    assert eda.category_colour(small, NOBODY).empty
    assert eda.top_products(small, NOBODY).empty
    assert eda.page_location(small, NOBODY)["views"].sum() == 0
    assert eda.sessions_by_weekday(small, NOBODY)["sessions"].sum() == 0
    matrix = eda.correlation(small, NOBODY)
    assert matrix.empty
    assert matrix.attrs["sessions"] == 0


def test_price_bins_are_round_and_few():
    assert eda.price_bin_width(np.array([18.0, 82.0])) == 1.0
    assert eda.price_bin_width(np.array([0.0, 1000.0])) == 10.0
    assert eda.price_bin_width(np.array([1.0, 6.0])) == 1.0  # whole dollars are never split
    assert eda.price_bin_width(np.array([1.0, 6.5])) == 0.1
    assert eda.price_bin_width(np.array([5.25])) == 0.01


# ---------------------------------------------------------------- bundled data
FILTER = SessionFilter(start=date(2008, 5, 1), end=date(2008, 6, 30), country=(9, 29), main_category=(1, 3))


@pytest.fixture(scope="module")
def prepared(bundled) -> PreparedData:
    return prepare(bundled)


@pytest.fixture(scope="module")
def cubes(prepared: PreparedData) -> EdaCubes:
    return eda.eda_cubes(prepared)


@pytest.fixture(scope="module")
def kept(prepared: PreparedData) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The sessions passing FILTER and their clicks, selected directly."""
    sessions = prepared.sessions[FILTER.mask(prepared.sessions)]
    clicks = prepared.clicks[prepared.clicks[S.SESSION_ID].isin(sessions.index)]
    return sessions, clicks


def test_cubes_are_built_once(prepared: PreparedData, cubes: EdaCubes):
    assert eda.eda_cubes(prepared) is cubes
    assert cubes.n_sessions == len(prepared.sessions)


def test_filtered_click_counts_match_the_clicks_of_filtered_sessions(cubes: EdaCubes, kept):
    sessions, clicks = kept
    assert 0 < len(sessions) < cubes.n_sessions / 4  # a non-trivial filter
    prices = eda.price_distribution(cubes, FILTER).set_index(["category", "price"])["views"]
    direct = clicks.groupby([S.CATEGORY, S.PRICE]).size()
    pd.testing.assert_series_equal(prices, direct, check_names=False, check_index_type=False)

    colours = eda.category_colour(cubes, FILTER).set_index(["category", "colour"])["views"]
    pd.testing.assert_series_equal(
        colours, clicks.groupby([S.CATEGORY, S.COLOUR]).size(), check_names=False, check_index_type=False
    )
    grid = eda.page_location(cubes, FILTER)
    assert grid["views"].sum() == len(clicks)
    direct_grid = clicks.groupby([S.PAGE, S.LOCATION]).size()
    merged = grid.set_index(["page", "location"])["views"]
    assert (merged.loc[direct_grid.index].to_numpy() == direct_grid.to_numpy()).all()


def test_filtered_products_match_a_direct_count(cubes: EdaCubes, kept):
    _, clicks = kept
    per_session = clicks.groupby([S.CLOTHING_MODEL, S.SESSION_ID], observed=True).size()
    direct = pd.DataFrame(
        {
            "views": per_session.groupby(level=0, observed=True).sum(),
            "sessions": per_session.groupby(level=0, observed=True).size(),
            "reviewing_sessions": (per_session > 1).groupby(level=0, observed=True).sum(),
        }
    )
    top = eda.top_products(cubes, FILTER, by="views", n=10_000).set_index("product")
    assert len(top) == len(direct)
    for column in direct:
        assert (top.loc[direct.index.astype(str), column].to_numpy() == direct[column].to_numpy()).all(), column
    assert (top["review_clicks"] == top["views"] - top["sessions"]).all()


def test_top_products_are_ordered_and_respect_the_minimum(cubes: EdaCubes):
    by_views = eda.top_products(cubes, FILTER, by="views", n=15)
    assert len(by_views) == 15
    assert by_views["views"].is_monotonic_decreasing
    by_rate = eda.top_products(cubes, FILTER, by="review_rate", n=15)
    assert by_rate["review_rate"].is_monotonic_decreasing
    assert (by_rate["sessions"] >= eda.MIN_REVIEW_SESSIONS).all()
    assert not by_rate["category_label"].str.startswith("code").any()


def test_filtered_session_tables_match_the_sessions(cubes: EdaCubes, kept):
    sessions, _ = kept
    lengths = eda.session_lengths(cubes, FILTER).set_index("length")
    capped = sessions["n_clicks"].clip(upper=eda.MAX_SESSION_LENGTH)
    assert (lengths["sessions"] == capped.value_counts().sort_index()).all()
    assert (lengths["conversions"] == sessions.groupby(capped)["converted"].sum()).all()
    assert lengths["sessions"].sum() == len(sessions)

    weekdays = eda.sessions_by_weekday(cubes, FILTER).set_index("day_of_week")["sessions"]
    direct = sessions["day_of_week"].value_counts().reindex(range(7), fill_value=0)
    assert (weekdays.to_numpy() == direct.to_numpy()).all()


def test_correlation_is_symmetric_with_unit_diagonal_and_matches_pandas(cubes: EdaCubes, kept):
    sessions, _ = kept
    matrix = eda.correlation(cubes, FILTER)
    assert matrix.attrs["sessions"] == len(sessions)  # the bundled data is smaller than the sample cap
    values = matrix.to_numpy()
    np.testing.assert_allclose(values, values.T, atol=1e-12)
    np.testing.assert_allclose(np.diag(values), 1.0)
    assert "Converted (label)" in matrix.columns
    names = {label: name for name, label in eda.CORRELATION_FEATURES.items()}
    direct = sessions[[names[c] for c in matrix.columns]].astype(float).corr()
    np.testing.assert_allclose(values, direct.to_numpy(), atol=1e-9)


def test_correlation_sample_is_capped_and_reproducible(prepared: PreparedData):
    indexed = index_clicks(prepared.clicks)
    first = build_eda_cubes(indexed, prepared.sessions, prepared.cube, sample_size=1000)
    second = build_eda_cubes(indexed, prepared.sessions, prepared.cube, sample_size=1000)
    assert len(first.sample) == 1000
    pd.testing.assert_frame_equal(first.sample, second.sample)
    assert eda.correlation(first, SessionFilter()).attrs == {"sessions": 1000, "sample": 1000}


# ---------------------------------------------------------------- any profile: a generated shop log
@pytest.fixture(scope="module")
def shop() -> PreparedData:
    from ml.data.loading import load_events
    from ml.data.synthetic_logs import multi_category_store_log

    raw = multi_category_store_log(8000, seed=7).to_csv(index=False).encode()
    return prepare(load_events(raw, name="store.csv"), key="store")


@pytest.fixture(scope="module")
def shop_cubes(shop: PreparedData) -> EdaCubes:
    return eda.eda_cubes(shop)


SHOP_FILTER_DAYS = {"start": date(2019, 10, 5), "end": date(2019, 10, 20)}


def _shop_kept(shop: PreparedData, filt: SessionFilter) -> tuple[pd.DataFrame, pd.DataFrame]:
    sessions = shop.sessions[filt.mask(shop.sessions)]
    return sessions, shop.clicks[shop.clicks[S.SESSION_ID].isin(sessions.index)]


def test_a_shop_log_has_the_generic_cubes_and_not_the_uci_ones(shop_cubes: EdaCubes):
    assert shop_cubes.category_colour is None and shop_cubes.page_location is None
    assert shop_cubes.prices is not None and shop_cubes.hours is not None
    assert shop_cubes.event_types == (S.EVENT_VIEW, S.EVENT_CART, S.EVENT_PURCHASE)
    assert shop_cubes.missing_note("events") is None
    assert "colour column" in shop_cubes.missing_note("category_colour")
    with pytest.raises(ValueError, match="left out"):
        eda.category_colour(shop_cubes, SessionFilter())
    assert eda.top_metrics(shop_cubes) == ("views", "review_rate", "cart_rate", "purchase_rate")


def test_events_by_type_match_a_hand_count(shop: PreparedData, shop_cubes: EdaCubes):
    brand = int(shop.sessions["main_brand"].value_counts().index[1])
    filt = SessionFilter(**SHOP_FILTER_DAYS, main_brand=(brand,))
    sessions, clicks = _shop_kept(shop, filt)
    assert 0 < len(sessions) < len(shop.sessions) / 3
    table = eda.events_by_type(shop_cubes, filt).set_index("label")
    direct = clicks.groupby(S.EVENT_TYPE).size()
    assert table.loc["view", "events"] == direct[S.EVENT_VIEW]
    assert table.loc["cart", "events"] == direct[S.EVENT_CART]
    assert table.loc["purchase", "events"] == direct[S.EVENT_PURCHASE]
    purchasing = clicks.loc[clicks[S.EVENT_TYPE] == S.EVENT_PURCHASE, S.SESSION_ID].nunique()
    assert table.loc["purchase", "sessions"] == purchasing
    assert table.loc["purchase", "session_share"] == pytest.approx(purchasing / len(sessions))


def test_sessions_by_hour_match_the_session_table(shop: PreparedData, shop_cubes: EdaCubes):
    filt = SessionFilter(**SHOP_FILTER_DAYS)
    sessions, _ = _shop_kept(shop, filt)
    table = eda.sessions_by_hour(shop_cubes, filt).set_index("hour")
    assert list(table.index) == list(range(24))
    direct = sessions["hour"].value_counts().reindex(range(24), fill_value=0)
    assert (table["sessions"] == direct).all()
    converted = sessions.groupby("hour")["converted"].mean()
    np.testing.assert_allclose(table.loc[converted.index, "conversion_rate"], converted)


def test_product_cart_and_purchase_rates_match_a_hand_count(shop: PreparedData, shop_cubes: EdaCubes):
    filt = SessionFilter(**SHOP_FILTER_DAYS)
    _, clicks = _shop_kept(shop, filt)
    top = eda.top_products(shop_cubes, filt, by="purchase_rate", n=5, min_sessions=5).set_index("product")
    assert len(top) == 5 and top["purchase_rate"].is_monotonic_decreasing
    for product, row in top.iterrows():
        mine = clicks[clicks[S.PRODUCT].astype(str) == product]
        viewing = mine.loc[mine[S.EVENT_TYPE] == S.EVENT_VIEW, S.SESSION_ID].nunique()
        buying = mine.loc[mine[S.EVENT_TYPE] == S.EVENT_PURCHASE, S.SESSION_ID].nunique()
        carting = mine.loc[mine[S.EVENT_TYPE] == S.EVENT_CART, S.SESSION_ID].nunique()
        assert (row["sessions"], row["purchasing_sessions"], row["carting_sessions"]) == (viewing, buying, carting)
        assert row["purchase_rate"] == pytest.approx(buying / viewing)
        assert row["category_label"] != "" and not row["category_label"].startswith("code ")


def test_dimension_breakdown_decodes_the_profile_dimension(shop: PreparedData, shop_cubes: EdaCubes):
    assert eda.dimension_choices(shop_cubes) == {"main_category": "Main category", "main_brand": "Main brand"}
    table = eda.dimension_breakdown(shop_cubes, SessionFilter(), "main_brand")
    assert table["sessions"].sum() == len(shop.sessions)
    assert {"apple", "samsung"} <= set(table["label"])


def test_views_only_data_leaves_out_the_event_charts(cubes: EdaCubes):
    assert cubes.views_only
    assert cubes.missing_note("events") == (
        "Events by type: left out, this dataset has no event types other than views (carts, purchases)."
    )
    assert cubes.missing_note("hours") == "Sessions by hour: left out, this dataset has no event timestamps."
    assert cubes.missing_note("prices") is None
