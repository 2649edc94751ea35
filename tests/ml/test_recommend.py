"""Recommender: counts against hand counts, fallback, no self-recommendation, the time split and metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from ml.data import schema as S
from ml.features.products import product_table
from ml.models import ranking
from ml.models.recommend import (
    BLEND,
    CO_OCCURRENCE,
    FALLBACK,
    METHODS,
    NEXT_VIEW,
    POPULARITY,
    Histories,
    ProductRecommender,
    RankedLists,
    with_product_attributes,
)
from ml.models.recommend_evaluation import (
    default_cut_date,
    evaluate,
    next_product_cases,
    ranking_metrics,
    time_split,
)
from tests.ml.factories import make_clicks


def _log(sessions: dict[int, str], **overrides: object) -> pd.DataFrame:
    """Clicks from ``{session_id: "ABCB"}``: one view per letter, product ids are the letters."""
    return make_clicks({sid: [{"page2_clothing_model": p, **overrides} for p in seq] for sid, seq in sessions.items()})


# s1 A A B C B: runs A B C B -> steps A>B, B>C, C>B; s2 A B A B -> A>B (once), B>A; s3 B>C; s4 A>C; s5 D alone.
HAND_LOG = {1: "AABCB", 2: "ABAB", 3: "BC", 4: "AC", 5: "D"}


@pytest.fixture(scope="module")
def hand_model() -> ProductRecommender:
    return ProductRecommender(min_support=1).fit(_log(HAND_LOG))


def _dense(model: ProductRecommender, matrix) -> pd.DataFrame:
    names = list(model.products_)
    return pd.DataFrame(matrix.toarray(), index=names, columns=names).loc[list("ABCD"), list("ABCD")]


def test_next_view_counts_match_a_hand_count(hand_model: ProductRecommender):
    counts = _dense(hand_model, hand_model.next_counts_)
    expected = pd.DataFrame(0.0, index=list("ABCD"), columns=list("ABCD"))
    expected.loc["A", "B"] = 2  # sessions 1 and 2 (session 2 twice, counted once)
    expected.loc["A", "C"] = 1
    expected.loc["B", "C"] = 2
    expected.loc["B", "A"] = 1
    expected.loc["C", "B"] = 1
    pd.testing.assert_frame_equal(counts, expected)
    shares = _dense(hand_model, hand_model.next_scores_)
    assert shares.loc["A", "B"] == pytest.approx(2 / 3)  # A's next steps: A>B twice, A>C once
    assert shares.loc["B", "C"] == pytest.approx(2 / 3)


def test_co_occurrence_counts_each_session_once_and_scores_cosine(hand_model: ProductRecommender):
    support = _dense(hand_model, hand_model.co_counts_)
    # Sessions: {A,B,C}, {A,B}, {B,C}, {A,C}, {D}.
    assert support.loc["A", "B"] == 2 and support.loc["A", "C"] == 2 and support.loc["B", "C"] == 2
    assert support.loc["D"].sum() == 0
    assert np.all(np.diag(support.to_numpy()) == 0)
    cosine = _dense(hand_model, hand_model.co_scores_)
    assert cosine.loc["A", "B"] == pytest.approx(2 / np.sqrt(3 * 3))
    lift_model = ProductRecommender(min_support=1, similarity="lift").fit(_log(HAND_LOG))
    assert _dense(lift_model, lift_model.co_scores_).loc["A", "B"] == pytest.approx(2 * 5 / (3 * 3))


def test_popularity_counts_sessions_and_orders_the_catalogue(hand_model: ProductRecommender):
    assert list(hand_model.products_) == ["A", "B", "C", "D"]  # 3, 3, 3 sessions (ties by id), then 1
    assert list(hand_model.popularity_) == [3, 3, 3, 1]
    top = hand_model.recommend("D", method=POPULARITY)
    assert list(top["product"]) == ["A", "B", "C"]
    assert set(top["method"]) == {POPULARITY}


def test_too_little_history_falls_back_to_popularity():
    model = ProductRecommender(min_support=2).fit(_log(HAND_LOG))
    for_a = model.recommend("A", n=10, method=NEXT_VIEW)
    assert list(for_a["product"]) == ["B", "C", "D"]  # only A>B has two sessions
    assert list(for_a["method"]) == [NEXT_VIEW, FALLBACK, FALLBACK]
    for_d = model.recommend("D", n=2, method=CO_OCCURRENCE)  # D was never seen with anything
    assert list(for_d["product"]) == ["A", "B"] and set(for_d["method"]) == {FALLBACK}
    unknown = model.recommend("no such product", n=3)
    assert list(unknown["product"]) == ["A", "B", "C"] and set(unknown["method"]) == {FALLBACK}
    assert list(unknown.columns) == ["product", "score", "support", "method"]


def test_recommend_for_session_excludes_what_was_seen_and_weighs_the_last_product(hand_model: ProductRecommender):
    lists = hand_model.recommend_for_session(["C", "A"], n=3, method=NEXT_VIEW)
    assert "A" not in set(lists["product"]) and "C" not in set(lists["product"])
    assert lists["product"].iloc[0] == "B"  # A (seen last) goes on to B; C also to B
    assert lists["method"].iloc[0] == NEXT_VIEW


def test_no_product_is_ever_recommended_to_itself(small_clicks: pd.DataFrame):
    model = ProductRecommender().fit(small_clicks)
    n = len(model.products_)
    every_product = Histories(case=np.arange(n), product=np.arange(n), recency=np.zeros(n, int), n_cases=n)
    for method in METHODS:
        lists = model.rank(every_product, n=10, method=method)
        assert not np.any(lists.product == lists.case), method
        assert np.all(np.bincount(lists.case, minlength=n) == 10), method
    assert model.recommend(model.products_[0], method=BLEND)["product"].ne(model.products_[0]).all()


def test_dense_and_sparse_ranking_give_the_same_lists(small_clicks: pd.DataFrame, monkeypatch: pytest.MonkeyPatch):
    model = ProductRecommender().fit(small_clicks)
    cases = next_product_cases(small_clicks, model.products_).histories
    dense = model.rank(cases, method=BLEND)
    monkeypatch.setattr(ranking, "DENSE_MAX_PRODUCTS", 0)
    sparse = model.rank(cases, method=BLEND)
    np.testing.assert_array_equal(dense.product, sparse.product)
    np.testing.assert_allclose(dense.score, sparse.score)
    np.testing.assert_allclose(dense.support, sparse.support)


def test_carts_and_purchases_weigh_more_in_co_occurrence():
    clicks = _log({1: "AB", 2: "AC", 3: "BC"})
    plain = ProductRecommender(min_support=1).fit(clicks)
    assert plain.recommend("A", n=2, method=CO_OCCURRENCE)["score"].nunique() == 1  # B and C tie at 1/2
    bought = pd.concat([clicks, clicks[clicks[S.SESSION_ID] == 1].iloc[[1]].assign(order=3)], ignore_index=True)
    bought[S.EVENT_TYPE] = np.array([0] * len(clicks) + [S.EVENT_PURCHASE], dtype=np.int8)  # session 1 buys B
    model = ProductRecommender(min_support=1).fit(bought)
    top = model.recommend("A", n=2, method=CO_OCCURRENCE)
    assert list(top["product"]) == ["B", "C"]
    # Session vectors A = (1, 1, 0), B = (3, 0, 1): cosine 3 / (sqrt 2 x sqrt 10).
    assert top["score"].iloc[0] == pytest.approx(3 / np.sqrt(2 * 10))


def test_product_table_for_views_and_for_carts_and_purchases():
    clicks = _log({1: "AAB", 2: "A", 3: "B"}, colour=5)
    table = product_table(clicks)
    assert table.loc["A", "views"] == 3 and table.loc["A", "sessions"] == 2
    assert table.loc["A", "session_share"] == pytest.approx(2 / 3)
    assert table.loc["A", "review_rate"] == pytest.approx(1 / 2)
    assert table.loc["A", "mean_price"] == 40 and table.loc["A", S.CATEGORY] == 1
    assert table.loc["A", S.COLOUR] == 5
    events = clicks.assign(**{S.EVENT_TYPE: np.array([0, 1, 0, 0, 2], dtype=np.int8)})  # A carted, B bought
    table = product_table(events)
    assert "review_rate" not in table
    assert table.loc["A", "views"] == 2 and table.loc["A", "cart_rate"] == pytest.approx(1 / 2)
    assert table.loc["B", "purchase_rate"] == pytest.approx(1 / 2) and table.loc["B", "purchases"] == 1
    lists = with_product_attributes(ProductRecommender(min_support=1).fit(events).recommend("A"), table)
    assert {S.CATEGORY, "mean_price", "views"} <= set(lists.columns)


# ---------------------------------------------------------------- time split and evaluation
def _dated(sessions: dict[int, tuple[str, list[int]]]) -> pd.DataFrame:
    """Clicks from ``{session_id: (products, [day of each click])}``, all in May 2008."""
    return make_clicks(
        {
            sid: [{"page2_clothing_model": p, "day": d} for p, d in zip(seq, days, strict=True)]
            for sid, (seq, days) in sessions.items()
        }
    )


def test_the_time_split_keeps_every_test_session_out_of_training():
    clicks = _dated(
        {1: ("AB", [10, 10]), 2: ("AC", [12, 12]), 3: ("BC", [14, 15]), 4: ("CA", [15, 15]), 5: ("AB", [16, 16])}
    )
    split = time_split(clicks, "2008-05-15")
    train_ids, test_ids = set(split.train[S.SESSION_ID]), set(split.test[S.SESSION_ID])
    assert train_ids == {1, 2, 3} and test_ids == {4, 5}
    assert not train_ids & test_ids
    assert (split.train[S.DATE] < split.cut_date).all()  # session 3's click on the 15th is dropped
    assert len(split.train) == 5
    assert default_cut_date(clicks) == pd.Timestamp("2008-05-16")  # 5 dates: the last one held out


def test_cases_take_the_first_half_of_the_distinct_products_as_history():
    clicks = _log({1: "ABACD", 2: "ABC", 3: "AB", 4: "A", 5: "AAB"})
    products = pd.Index(list("ABCD"))
    cases = next_product_cases(clicks, products)
    assert list(cases.session_ids) == [1, 2, 3, 5]
    assert list(products[cases.target]) == ["C", "C", "B", "B"]
    history = pd.DataFrame({"case": cases.histories.case, "p": products[cases.histories.product]})
    history["recency"] = cases.histories.recency
    first = history[history["case"] == 0].set_index("p")["recency"].to_dict()
    assert first == {"A": 0, "B": 1}  # A B A before C: A was seen last
    assert history.groupby("case").size().tolist() == [2, 2, 1, 1]


def test_hit_rate_and_mrr_match_a_hand_computation():
    lists = RankedLists(
        case=np.array([0, 0, 1, 1, 2, 2]),
        rank=np.array([0, 1, 0, 1, 0, 1]),
        product=np.array([5, 7, 3, 4, 1, 2]),
        score=np.ones(6),
        support=np.ones(6),
        fallback=np.array([False, False, False, True, False, False]),
        method=NEXT_VIEW,
    )
    target = np.array([7, 9, 1])  # rank 2, a miss, rank 1
    metrics = ranking_metrics(lists, target, k=2, n_products=10)
    assert metrics["hit_rate"] == pytest.approx(2 / 3)
    assert metrics["mrr"] == pytest.approx((1 / 2 + 0 + 1) / 3)
    assert metrics["coverage"] == pytest.approx(6 / 10)
    assert metrics["fallback_share"] == pytest.approx(1 / 6)
    assert ranking_metrics(lists, target, k=1, n_products=10)["hit_rate"] == pytest.approx(1 / 3)


@pytest.mark.parametrize("text_ids", [False, True], ids=["int-ids", "text-ids"])
def test_evaluate_end_to_end_on_a_tiny_log(text_ids: bool):
    # Training (May 14): A>B twice, A>C once; B is never followed. Testing (May 20): A then C; B then A.
    clicks = _dated(
        {
            1: ("AB", [14, 14]),
            2: ("AB", [14, 14]),
            3: ("AC", [14, 14]),
            4: ("AC", [20, 20]),
            5: ("BA", [20, 20]),
        }
    )
    if text_ids:
        clicks[S.SESSION_ID] = ("visit-" + clicks[S.SESSION_ID].astype(str)).astype("string")
    result = evaluate(clicks, cut_date="2008-05-20", k=10, recommender=ProductRecommender(min_support=1))
    table = result.table.set_index("method")
    assert result.n_cases == 2 and result.train_sessions == 3 and result.test_sessions == 2
    # Next view: after A, [B 2/3, C 1/3] -> C at rank 2; after B nothing, so popularity [A, C] -> A at rank 1.
    assert table.loc[NEXT_VIEW, "hit_rate"] == 1.0
    assert table.loc[NEXT_VIEW, "mrr"] == pytest.approx((1 / 2 + 1) / 2)
    assert table.loc[NEXT_VIEW, "fallback_share"] == pytest.approx(2 / 4)
    assert table.loc[POPULARITY, "mrr"] == pytest.approx((1 / 2 + 1) / 2)  # [B, C] and [A, C]


def test_on_the_bundled_data_the_best_method_beats_popularity_twice(bundled_clicks: pd.DataFrame):
    result = evaluate(bundled_clicks, cut_date="2008-08-01", k=10)
    table = result.table.set_index("method")
    assert result.cut_date == pd.Timestamp("2008-08-01")
    assert result.n_cases > 1000
    best = table.drop(index=POPULARITY)["hit_rate"].max()
    assert best >= 2 * table.loc[POPULARITY, "hit_rate"]
    assert table["coverage"].between(0, 1).all() and (table["mrr"] <= table["hit_rate"]).all()


def test_estimator_conventions_and_parameter_checks(hand_model: ProductRecommender):
    fresh = clone(hand_model)
    assert fresh.get_params()["min_support"] == 1 and not hasattr(fresh, "products_")
    fitted = [name for name in vars(hand_model) if name not in fresh.get_params()]
    assert fitted and all(name.endswith("_") for name in fitted)
    with pytest.raises(ValueError, match=r"min_support.*similarity.*recency_decay"):
        ProductRecommender(min_support=0, similarity="jaccard", recency_decay=0).fit(_log(HAND_LOG))
    with pytest.raises(NotFittedError):
        ProductRecommender().recommend("A")
