"""Evaluate the recommender on a later period than it learnt from, against the popularity baseline.

The split is by time, as the recommender would be used: it learns from the
sessions that started before a cut date and is judged on the sessions that
started on or after it. A session belongs to the period of its first event,
so no test session is in training; events of a training session dated on or
after the cut are dropped too, so nothing from the test period reaches
training. The default cut holds out the last 20% of the distinct dates.

**One case per test session** that sees at least two distinct products. With
the session's distinct products d1, d2, ..., dm in the order it first saw them,
the history is d1 .. dh with h = ceil(m / 2), the first half of what it saw,
and the target is d(h+1), the next product it had not seen yet. The
recommender gets every event before the target's first event (so a product
re-viewed in between counts as the most recent one) and must put the target in
its top k, never suggesting a product already seen. One case per session
keeps long sessions from outweighing short ones; cutting at the half uses the
session's own history as it grows (for m = 2 that is the landing product
alone, the "viewed this, next viewed" situation). A target that training never
saw stays in as a miss.

Per method: hit rate@k (share of cases whose target is in the top k), MRR@k
(mean of 1 / rank of the target, 0 when it is not in the top k), catalogue
coverage (share of training products that appear in any case's top k) and the
share of list slots popularity had to fill in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.data import schema as S
from ml.data.clicks import position_in_group
from ml.features.products import product_log
from ml.models.ranking import lookup, pair_keys
from ml.models.recommend import (
    BLEND,
    CO_OCCURRENCE,
    NEXT_VIEW,
    POPULARITY,
    Histories,
    ProductRecommender,
    RankedLists,
)

HOLDOUT_SHARE = 0.2  # share of the distinct dates held out by default
EVALUATED_METHODS = (POPULARITY, CO_OCCURRENCE, NEXT_VIEW, BLEND)
CASE_RULE = (
    "one case per test session with 2+ distinct products: history = the first ceil(m/2) of its m distinct "
    "products (every event before the target), target = the next distinct product"
)


@dataclass(frozen=True)
class TimeSplit:
    """Training events (sessions started before ``cut_date``, events before it) and test events."""

    train: pd.DataFrame
    test: pd.DataFrame
    cut_date: pd.Timestamp


@dataclass(frozen=True)
class EvaluationCases:
    """One next-product case per row of ``session_ids``: the history seen and the target's catalogue code."""

    histories: Histories
    target: np.ndarray  # catalogue code of the target, -1 if training never saw it
    session_ids: np.ndarray


@dataclass(frozen=True)
class RecommendEvaluation:
    """The metrics table (one row per method) and what it was computed on."""

    table: pd.DataFrame
    n_cases: int
    cut_date: pd.Timestamp
    train_sessions: int
    test_sessions: int
    k: int
    case_rule: str = CASE_RULE


def default_cut_date(events: pd.DataFrame, holdout: float = HOLDOUT_SHARE) -> pd.Timestamp:
    """The first of the last ``holdout`` share of distinct dates (at least one date is held out)."""
    dates = np.sort(events[S.DATE].dropna().unique())
    if len(dates) < 2:
        raise ValueError("a time split needs events on at least two distinct dates")
    held_out = min(max(1, round(holdout * len(dates))), len(dates) - 1)
    return pd.Timestamp(dates[len(dates) - held_out])


def time_split(events: pd.DataFrame, cut_date: object | None = None) -> TimeSplit:
    """Split sessions by the date of their first event; training keeps only events before the cut."""
    cut = default_cut_date(events) if cut_date is None else pd.Timestamp(cut_date)
    dates = events[S.DATE]
    started = dates.groupby(events[S.SESSION_ID], sort=False).transform("min")
    is_test = (started >= cut).to_numpy()
    train = events[~is_test & (dates < cut).to_numpy()]
    return TimeSplit(train=train, test=events[is_test], cut_date=cut)


def history_size_of(distinct: np.ndarray) -> np.ndarray:
    """How many of a session's distinct products are its history: the first half, rounded up."""
    return np.ceil(distinct / 2).astype(np.int64)


def next_product_cases(test_events: pd.DataFrame, products: pd.Index) -> EvaluationCases:
    """The cases of the module docstring, with product codes of the catalogue ``products``."""
    log = product_log(test_events, products=products)
    indexed = log.indexed
    session, rank = indexed.session, indexed.rank
    first_seen = np.flatnonzero(~indexed.is_review)
    distinct_index = position_in_group(session[first_seen])
    distinct = np.bincount(session[first_seen], minlength=indexed.n_sessions)
    history_size = history_size_of(distinct)
    at_target = distinct_index == history_size[session[first_seen]]
    target_event = first_seen[at_target]
    case_session = session[target_event]  # sorted: one target per session with 2+ products
    n_cases = len(case_session)
    case_of = np.full(indexed.n_sessions, -1, dtype=np.int64)
    case_of[case_session] = np.arange(n_cases)
    target_rank = np.full(indexed.n_sessions, -1, dtype=np.int64)
    target_rank[case_session] = rank[target_event]
    before = np.flatnonzero(rank < target_rank[session])
    # Each product once, at its last sighting before the target; recency 0 = seen last.
    pairs = pd.DataFrame({"s": session[before], "p": indexed.product_code[before]})
    last = before[~pairs.duplicated(keep="last").to_numpy()]
    case = case_of[session[last]]
    position = position_in_group(case)
    size = np.bincount(case, minlength=n_cases)
    return EvaluationCases(
        histories=Histories(
            case=case,
            product=log.product[last],
            recency=size[case] - 1 - position,
            n_cases=n_cases,
        ),
        target=log.product[target_event],
        session_ids=indexed.session_ids.to_numpy()[case_session],
    )


def ranking_metrics(lists: RankedLists, target: np.ndarray, k: int, n_products: int) -> dict[str, float]:
    """Hit rate@k, MRR@k, catalogue coverage and fallback share of top-k lists for one target per case."""
    n_cases = len(target)
    top = lists.rank < k
    keys = pair_keys(lists.case[top], lists.product[top], n_products)
    order = np.argsort(keys, kind="stable")
    known = np.flatnonzero(target >= 0)
    rank, hit = lookup(keys[order], lists.rank[top][order], pair_keys(known, target[known], n_products))
    reciprocal = np.where(hit, 1.0 / (rank + 1), 0.0)
    return {
        "hit_rate": float(hit.sum() / n_cases) if n_cases else math.nan,
        "mrr": float(reciprocal.sum() / n_cases) if n_cases else math.nan,
        "coverage": float(len(np.unique(lists.product[top])) / n_products) if n_products else math.nan,
        "fallback_share": float(lists.fallback[top].mean()) if top.any() else math.nan,
        "cases": n_cases,
    }


def evaluate(
    events: pd.DataFrame,
    cut_date: object | None = None,
    k: int = 10,
    recommender: ProductRecommender | None = None,
) -> RecommendEvaluation:
    """Fit on sessions before the cut, score the next-product cases after it, per method (see module docstring)."""
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    split = time_split(events, cut_date)
    if split.train.empty or split.test.empty:
        raise ValueError(f"the cut {split.cut_date.date()} leaves no training or no test sessions")
    model = (recommender or ProductRecommender()).fit(split.train)
    cases = next_product_cases(split.test, model.products_)
    rows = []
    for method in EVALUATED_METHODS:
        lists = model.rank(cases.histories, n=k, method=method)
        rows.append({"method": method, **ranking_metrics(lists, cases.target, k, len(model.products_))})
    table = pd.DataFrame(rows)
    baseline = table.loc[table["method"] == POPULARITY, "hit_rate"].iloc[0]
    table["lift_vs_popularity"] = table["hit_rate"] / baseline if baseline > 0 else math.nan
    return RecommendEvaluation(
        table=table,
        n_cases=len(cases.target),
        cut_date=split.cut_date,
        train_sessions=int(split.train[S.SESSION_ID].nunique()),
        test_sessions=int(split.test[S.SESSION_ID].nunique()),
        k=k,
    )
