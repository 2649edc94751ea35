"""The saved recommender: one run per dataset in its registry, refitted when the data changes, and in the scores."""

from __future__ import annotations

import pandas as pd
import pytest

from ml.data import schema as S
from ml.features.products import product_table
from ml.models.recommend import ProductRecommender, recommend_sessions
from ml.serving.recommendations import (
    RECOMMENDER_MODEL,
    fit_and_save,
    format_evaluation,
    labelled_products,
    load_saved,
    recommendation_lists,
    recommender_for,
)
from ml.serving.registry import ModelStore
from ml.serving.scoring import SCORE_COLUMNS, load_scoring_models, score_clicks
from ml.tasks import RECOMMENDATION
from tests.ml.factories import make_clicks


def _log(sessions: dict[int, str]) -> pd.DataFrame:
    """Clicks from ``{session_id: "ABCB"}``: one view per letter, product ids are the letters."""
    return make_clicks({sid: [{"page2_clothing_model": p} for p in seq] for sid, seq in sessions.items()})


# A is followed by B in three sessions and by C in one; D and E are seen with C only.
HAND = {1: "AB", 2: "AB", 3: "ABC", 4: "AC", 5: "CDE", 6: "CDE", 7: "B"}


def test_the_recommender_is_saved_per_dataset_and_found_again(tmp_path, small_clicks):
    store = ModelStore(tmp_path)
    first = recommender_for(store.registry("bundled"), small_clicks, data_hash="h1")
    assert store.registry("other").runs(RECOMMENDATION) == []  # another dataset has none
    runs = store.registry("bundled").runs(RECOMMENDATION, RECOMMENDER_MODEL)
    assert [r.run_id for r in runs] == [first.run_id]
    assert store.registry("bundled").runs() == []  # model listings (leaderboards, versions) do not see it
    meta = runs[0].metadata
    assert meta["dataset"]["hash"] == "h1" and meta["evaluation"]["n_cases"] == first.n_cases > 0
    again = recommender_for(store.registry("bundled"), small_clicks, data_hash="h1")
    assert again.run_id == first.run_id  # loaded, not refitted
    pd.testing.assert_frame_equal(again.evaluation, first.evaluation)
    assert list(again.model.products_) == list(first.model.products_)
    assert set(first.evaluation["method"]) == {"popularity", "co_occurrence", "next_view", "blend"}


def test_other_data_or_a_broken_artifact_is_refitted(tmp_path, small_clicks):
    registry = ModelStore(tmp_path).registry("bundled")
    first = fit_and_save(registry, small_clicks, data_hash="h1")
    assert load_saved(registry, "h2") is None
    second = recommender_for(registry, small_clicks, data_hash="h2")
    assert second.run_id != first.run_id and load_saved(registry, "h2").run_id == second.run_id
    (registry.runs(RECOMMENDATION)[0].path / "model.joblib").write_bytes(b"not a model")
    assert load_saved(registry) is None  # logged and treated as missing
    assert recommender_for(registry, small_clicks, data_hash="h2").run_id not in (first.run_id, second.run_id)


def test_lists_carry_score_support_and_the_suggestions_attributes():
    events = _log(HAND)
    model = ProductRecommender(min_support=1).fit(events)
    products = labelled_products(product_table(events), {S.CATEGORY: {1: "trousers"}})
    lists = recommendation_lists(model, products, "A", n=3)
    viewed_next = lists["next_view"]
    assert list(viewed_next["product"][:2]) == ["B", "C"]
    assert viewed_next["support"].iloc[0] == 3 and viewed_next["score"].iloc[0] == pytest.approx(3 / 4)
    assert viewed_next["method"].iloc[2] == "popularity_fallback"  # A has only two successors
    assert {"views", "sessions", "mean_price", S.CATEGORY} <= set(viewed_next.columns)
    assert set(viewed_next[S.CATEGORY]) == {"trousers"}
    also = lists["co_occurrence"]
    assert also["product"].iloc[0] == "B" and also["support"].iloc[0] == 3


def test_recommend_sessions_gives_three_unseen_products_per_session():
    events = _log(HAND)
    model = ProductRecommender(min_support=1).fit(events)
    new = _log({10: "A", 11: "CD", 12: "Z"})  # Z is a product the model never saw
    out = recommend_sessions(model, new, n=3).set_index("session_id")["recommended_products"]
    assert out[10].split("; ")[0] == "B"  # A's most common next product
    assert "C" not in out[11].split("; ") and "D" not in out[11].split("; ")
    assert out[11].split("; ")[0] == "E"
    assert len(out[12].split("; ")) == 3  # popularity only
    assert all(len(v.split("; ")) == 3 for v in out)


def test_scores_carry_recommended_products_from_the_saved_recommender(trained_registry, bundled_clicks, tmp_path):
    sample = bundled_clicks[bundled_clicks[S.SESSION_ID].between(5000, 5060)]
    without = score_clicks(sample, load_scoring_models(trained_registry))
    assert tuple(without.columns) == SCORE_COLUMNS and without["recommended_products"].isna().all()
    # The shared registry is read-only: save a recommender beside a copy of its models.
    models = load_scoring_models(trained_registry)
    saved = fit_and_save(ModelStore(tmp_path).registry("bundled"), bundled_clicks, data_hash="full")
    scores = score_clicks(sample, type(models)(models.classifier, models.regressor, models.segmenter, saved.model))
    assert tuple(scores.columns) == SCORE_COLUMNS
    lists = scores.set_index("session_id")["recommended_products"].str.split("; ")
    assert (lists.str.len() == 3).all()
    seen = sample.groupby(S.SESSION_ID)[S.PRODUCT].agg(lambda s: set(s.astype(str)))
    assert all(not (set(lists[sid]) & seen[sid]) for sid in lists.index)  # never a product the session saw
    expected = saved.model.recommend_for_session(list(sample.loc[sample[S.SESSION_ID] == 5000, S.PRODUCT]), n=3)
    assert lists[5000] == list(expected["product"])


def test_one_day_of_data_is_saved_without_an_evaluation_and_says_why(tmp_path):
    events = _log(HAND)
    assert events[S.DATE].nunique() == 1
    saved = recommender_for(ModelStore(tmp_path).registry("one-day"), events, data_hash="d")
    assert saved.evaluation.empty and "two distinct dates" in saved.problem
    assert list(saved.model.recommend("A", n=2, method="next_view")["product"]) == ["B", "C"]  # the lists work
    again = load_saved(ModelStore(tmp_path).registry("one-day"), "d")
    assert again.run_id == saved.run_id and again.problem == saved.problem
    assert format_evaluation(again.evaluation, 0, "", 10, again.problem).startswith("No evaluation: a time split")
