"""Product recommendations from browsing patterns: next viewed, also viewed, popular, and a blend.

``ProductRecommender`` learns four ways to suggest products to a visitor who
has seen some, all from one pass over the event log:

- ``next_view`` ("next viewed"): how many sessions went straight from product A
  to product B, where "next" means the next *distinct* product (immediate
  repeats of A are skipped) and a session counts a given A → B step once. The
  score is the share of A's next steps that went to B, P(next = B | A); the
  support is the number of sessions.
- ``co_occurrence`` ("also viewed in the same session"): in how many sessions
  A and B were both seen, each session counting a pair once (the support).
  The score is the **cosine** similarity of the two products' session
  vectors, support / sqrt(sessions(A) x sessions(B)). Cosine rather than lift:
  lift divides by sessions(B) in full, so a pair of rare products seen together
  once or twice outranks every well-supported pair; cosine discounts
  popularity only by its square root, which keeps popular but genuinely
  related products in the list (lift is available as ``similarity="lift"``).
- ``popularity``: the share of sessions that saw the product. It is the
  baseline the others must beat, and the fallback that fills a list when a
  product has too little history: pairs seen in fewer than ``min_support``
  sessions are ignored, and the slots left are filled with the most popular
  products, marked ``popularity_fallback``.
- ``blend``: (1 - ``blend_weight``) x next-view share + ``blend_weight`` x the
  co-occurrence similarity normalised to sum to 1 over each product's row, so
  that both read as a distribution over the next product.

With carts and purchases in the log, a session's tie to a product is its
strongest event (by default view 1, cart 2, purchase 3) in the co-occurrence
vectors, so products bought together weigh more than products merely viewed
together; next-view steps follow the sequence of products touched by any of
the three event types. A frame without an event-type column holds views only.

For a visitor who has seen several products the lists of the seen products
are blended with recency weights (``recency_decay`` per product further back),
so the product seen last counts most; products already seen are never
suggested. The defaults (``recency_decay=0.2``, ``blend_weight=0.5``,
``min_support=2``) were chosen on a split inside the bundled data's training
period (train April–June, validate July), not on the August test period.
``rank`` scores many visitors at once with sparse matrix products, which is
what the evaluation uses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from ml.data import schema as S
from ml.data.clicks import position_in_group
from ml.features.products import ProductLog, product_log
from ml.models.ranking import block_size, csr_keys, lookup, pair_keys, top_n, values_on

NEXT_VIEW = "next_view"
CO_OCCURRENCE = "co_occurrence"
POPULARITY = "popularity"
BLEND = "blend"
METHODS = (NEXT_VIEW, CO_OCCURRENCE, POPULARITY, BLEND)
FALLBACK = "popularity_fallback"  # the method of a row that popularity filled in
SIMILARITIES = ("cosine", "lift")
DEFAULT_EVENT_WEIGHTS: Mapping[int, float] = {S.EVENT_VIEW: 1.0, S.EVENT_CART: 2.0, S.EVENT_PURCHASE: 3.0}
MAX_RECENCY = 50  # products further back than this all get the weight of the 50th
RECOMMENDATION_COLUMNS = ("product", "score", "support", "method")


@dataclass(frozen=True)
class Histories:
    """What each of ``n_cases`` visitors has seen: one row per (case, product), sorted by case.

    ``product`` is a code of the recommender's catalogue (-1 for a product it
    does not know, which is then ignored); ``recency`` is 0 for the product
    seen last, 1 for the one before, and so on.
    """

    case: np.ndarray
    product: np.ndarray
    recency: np.ndarray
    n_cases: int


@dataclass(frozen=True)
class RankedLists:
    """Top-n suggestions for every case, sorted by (case, rank); ``fallback`` marks popularity fill-ins."""

    case: np.ndarray
    rank: np.ndarray
    product: np.ndarray
    score: np.ndarray
    support: np.ndarray
    fallback: np.ndarray
    method: str


def _filtered(rows: np.ndarray, cols: np.ndarray, score: np.ndarray, support: np.ndarray, keep: np.ndarray, n: int):
    """A (score, support) pair of n x n CSR matrices with one pattern: the kept off-diagonal entries."""
    keep = keep & (rows != cols)
    shape = (n, n)
    scores = sp.csr_matrix((score[keep], (rows[keep], cols[keep])), shape=shape)
    supports = sp.csr_matrix((support[keep].astype(np.float64), (rows[keep], cols[keep])), shape=shape)
    scores.sort_indices()
    supports.sort_indices()
    return scores, supports


def _row_normalised(matrix: sp.csr_matrix) -> sp.csr_matrix:
    totals = np.asarray(matrix.sum(axis=1)).ravel()
    scale = np.divide(1.0, totals, out=np.zeros_like(totals), where=totals > 0)
    return sp.csr_matrix(sp.diags(scale) @ matrix)


def _first_of_value(keys: np.ndarray) -> np.ndarray:
    """Whether each key is the first of its value (hash based, order kept)."""
    return ~pd.Series(keys).duplicated(keep="first").to_numpy()


class ProductRecommender(BaseEstimator):
    """Next-viewed, also-viewed and popular products, learnt from an event log (see the module docstring)."""

    def __init__(
        self,
        min_support: int = 2,
        similarity: str = "cosine",
        recency_decay: float = 0.2,
        blend_weight: float = 0.5,
        event_weights: Mapping[int, float] | None = None,
    ) -> None:
        self.min_support = min_support
        self.similarity = similarity
        self.recency_decay = recency_decay
        self.blend_weight = blend_weight
        self.event_weights = event_weights

    # ------------------------------------------------------------ fitting
    def _check_params(self) -> None:
        problems = []
        if int(self.min_support) < 1:
            problems.append(f"min_support must be at least 1, not {self.min_support}")
        if self.similarity not in SIMILARITIES:
            problems.append(f"similarity must be one of {SIMILARITIES}, not {self.similarity!r}")
        if not 0 < self.recency_decay <= 1:
            problems.append(f"recency_decay must be in (0, 1], not {self.recency_decay}")
        if not 0 <= self.blend_weight <= 1:
            problems.append(f"blend_weight must be in [0, 1], not {self.blend_weight}")
        if problems:
            raise ValueError("; ".join(problems))

    def fit(self, events: pd.DataFrame) -> ProductRecommender:
        """Learn the next-view, co-occurrence and popularity tables from ``events``."""
        self._check_params()
        log = product_log(events)
        if not log.n_products:
            raise ValueError("the events hold no product views, carts or purchases to learn from")
        n, session = log.n_products, log.indexed.session
        pair_session, pair_product, pair_weight = self._session_products(log)
        sessions = np.bincount(pair_product, minlength=n)
        # Codes in popularity order (most sessions first, ties by product id): sorting by code then
        # breaks ties between equal scores in favour of the more popular product.
        order = np.lexsort((np.arange(n), -sessions))
        recode = np.empty(n, dtype=np.int64)
        recode[order] = np.arange(n)
        product, pair_product = recode[log.product], recode[pair_product]
        self.products_ = log.products[order]
        self.popularity_ = sessions[order]
        self.n_sessions_ = log.n_sessions
        self.next_scores_, self.next_counts_ = self._next_view(session, product, n)
        self.co_scores_, self.co_counts_ = self._co_occurrence(pair_session, pair_product, pair_weight, n)
        weight = float(self.blend_weight)
        blend = sp.csr_matrix((1 - weight) * self.next_scores_ + weight * _row_normalised(self.co_scores_))
        blend.sort_indices()
        # Every next-view pair is also a co-occurrence pair, so the blend's support is the co-occurrence one.
        self.blend_scores_ = blend
        counts = values_on(blend, self.co_counts_)
        self.blend_counts_ = sp.csr_matrix((counts, blend.indices, blend.indptr), shape=blend.shape)
        return self

    def _session_products(self, log: ProductLog) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each (session, product) pair once, with the weight of its strongest event."""
        weights = {**DEFAULT_EVENT_WEIGHTS, **(self.event_weights or {})}
        table = np.zeros(max(weights) + 1, dtype=np.float64)
        for code, value in weights.items():
            table[code] = value
        event_weight = table[log.event_type]
        session, product = log.indexed.session, log.product
        if not len(event_weight) or (event_weight == event_weight[0]).all():
            first = ~log.indexed.is_review  # the first event of each (session, product)
            return session[first], product[first], event_weight[first]
        width = max(log.n_products, 1)
        codes, unique_keys = pd.factorize(pair_keys(session, product, width))
        pair_weight = np.zeros(len(unique_keys), dtype=np.float64)
        np.maximum.at(pair_weight, codes, event_weight)
        return unique_keys // width, unique_keys % width, pair_weight

    def _next_view(self, session: np.ndarray, product: np.ndarray, n: int) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        if len(product) < 2:
            return _filtered(*(np.zeros(0, dtype=np.int64),) * 4, np.zeros(0, dtype=bool), n)
        # The first event of each run of one product, then each run's successor in the same session.
        runs = np.flatnonzero(np.r_[True, (product[1:] != product[:-1]) | (session[1:] != session[:-1])])
        same = session[runs[1:]] == session[runs[:-1]]
        step_session = session[runs[1:]][same]
        a, b = product[runs[:-1]][same], product[runs[1:]][same]
        steps = pair_keys(a, b, n)
        if (int(session[-1]) + 1) * n * n < 2**62:
            first = _first_of_value(step_session * (n * n) + steps)  # a session counts a step once
        else:
            first = ~pd.DataFrame({"s": step_session, "k": steps}).duplicated().to_numpy()
        a, b = a[first], b[first]
        counts = sp.coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n)).tocsr().tocoo()
        leaving = np.bincount(a, minlength=n).astype(np.float64)
        share = counts.data / leaving[counts.row]
        return _filtered(counts.row, counts.col, share, counts.data, counts.data >= self.min_support, n)

    def _co_occurrence(
        self, pair_session: np.ndarray, pair_product: np.ndarray, pair_weight: np.ndarray, n: int
    ) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        shape = (self.n_sessions_, n)
        seen = sp.csr_matrix((np.ones(len(pair_session)), (pair_session, pair_product)), shape=shape)
        support = sp.csr_matrix(seen.T @ seen)
        support.sort_indices()
        coo = support.tocoo()
        sessions = self.popularity_.astype(np.float64)
        if self.similarity == "lift":
            score = coo.data * self.n_sessions_ / (sessions[coo.row] * sessions[coo.col])
        elif (pair_weight != 1).any():
            weighted = sp.csr_matrix((pair_weight, (pair_session, pair_product)), shape=shape)
            norms = np.sqrt(np.bincount(pair_product, weights=pair_weight**2, minlength=n))
            score = values_on(support, sp.csr_matrix(weighted.T @ weighted)) / (norms[coo.row] * norms[coo.col])
        else:
            score = coo.data / np.sqrt(sessions[coo.row] * sessions[coo.col])
        return _filtered(coo.row, coo.col, score, coo.data, coo.data >= self.min_support, n)

    # ------------------------------------------------------------ ranking
    def _fitted(self) -> None:
        if not hasattr(self, "products_"):
            raise NotFittedError("ProductRecommender is not fitted yet; call fit(events) first")

    def _tables(self, method: str) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        return {
            NEXT_VIEW: (self.next_scores_, self.next_counts_),
            CO_OCCURRENCE: (self.co_scores_, self.co_counts_),
            BLEND: (self.blend_scores_, self.blend_counts_),
        }[method]

    def codes(self, product_ids: Sequence[object]) -> np.ndarray:
        """Catalogue codes of product ids (-1 for a product the recommender has not seen)."""
        self._fitted()
        return self.products_.get_indexer(pd.Index([str(p) for p in product_ids])).astype(np.int64)

    def rank(self, histories: Histories, n: int = 10, method: str = BLEND) -> RankedLists:
        """The top ``n`` suggestions for every case of ``histories``, never a product the case has seen."""
        self._fitted()
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; choose from {METHODS}")
        parts, block = [], block_size(len(self.products_))
        for first in range(0, histories.n_cases, block):
            lo, hi = np.searchsorted(histories.case, [first, first + block])
            chunk = Histories(
                case=histories.case[lo:hi] - first,
                product=histories.product[lo:hi],
                recency=histories.recency[lo:hi],
                n_cases=min(block, histories.n_cases - first),
            )
            lists = self._rank_chunk(chunk, n, method)
            parts.append((lists[0] + first, *lists[1:]))
        case, rank, product, score, support, fallback = (
            [np.concatenate(column) for column in zip(*parts, strict=True)] if parts else [np.zeros(0)] * 6
        )
        return RankedLists(
            case=case.astype(np.int64),
            rank=rank.astype(np.int64),
            product=product.astype(np.int64),
            score=score.astype(np.float64),
            support=support.astype(np.float64),
            fallback=fallback.astype(bool),
            method=method,
        )

    def _rank_chunk(self, histories: Histories, n: int, method: str) -> tuple[np.ndarray, ...]:
        m, width = histories.n_cases, len(self.products_)
        known = histories.product >= 0
        case, product = histories.case[known], histories.product[known]
        weight = float(self.recency_decay) ** np.minimum(histories.recency[known], MAX_RECENCY)
        weight = weight / np.bincount(case, weights=weight, minlength=m)[case]
        seen = sp.csr_matrix((np.ones(len(case)), (case, product)), shape=(m, width))
        if method == POPULARITY:
            rows = cols = np.zeros(0, dtype=np.int64)
            vals = sups = np.zeros(0)
        else:
            recent = sp.csr_matrix((weight, (case, product)), shape=(m, width))
            rows, cols, vals, sups = top_n(recent, seen, *self._tables(method), n)
        listed = np.bincount(rows, minlength=m)
        # Fill the slots left with the most popular products not seen and not listed: the first
        # n + (products seen) codes, which are in popularity order, always hold enough of them.
        short = np.flatnonzero(listed < n)
        fill_rows = np.repeat(short, np.minimum(n + np.diff(seen.indptr)[short], width))
        fill_cols = position_in_group(fill_rows)
        taken = np.sort(np.r_[csr_keys(seen), pair_keys(rows, cols, width)])
        unused = ~lookup(taken, taken, pair_keys(fill_rows, fill_cols, width))[1]
        fill_rows, fill_cols = fill_rows[unused], fill_cols[unused]
        fill_rank = listed[fill_rows] + position_in_group(fill_rows)
        keep = fill_rank < n
        fill_rows, fill_cols, fill_rank = fill_rows[keep], fill_cols[keep], fill_rank[keep]
        popularity = self.popularity_[fill_cols].astype(np.float64)
        all_rows, all_ranks = np.r_[rows, fill_rows], np.r_[position_in_group(rows), fill_rank]
        order = np.lexsort((all_ranks, all_rows))
        return (
            all_rows[order],
            all_ranks[order],
            np.r_[cols, fill_cols][order],
            np.r_[vals, popularity / max(self.n_sessions_, 1)][order],
            np.r_[sups, popularity][order],
            np.r_[np.zeros(len(rows), dtype=bool), np.full(len(fill_rows), method != POPULARITY)][order],
        )

    # ------------------------------------------------------------ one visitor
    def _frame(self, lists: RankedLists) -> pd.DataFrame:
        columns = {
            "product": self.products_[lists.product].astype(str),
            "score": lists.score,
            "support": lists.support,
            "method": np.where(lists.fallback, FALLBACK, lists.method),
        }
        return pd.DataFrame(columns)[list(RECOMMENDATION_COLUMNS)]

    def recommend(self, product_id: object, n: int = 10, method: str = BLEND) -> pd.DataFrame:
        """Up to ``n`` products to show beside ``product_id``: product, score, support, method.

        Rows that popularity filled in (too little history) have method
        ``popularity_fallback``; an unknown product gets popularity only.
        """
        return self.recommend_for_session([product_id], n=n, method=method)

    def recommend_for_session(self, products_seen: Sequence[object], n: int = 10, method: str = BLEND) -> pd.DataFrame:
        """Up to ``n`` products for a visitor who saw ``products_seen`` (oldest first), none of them again."""
        codes = self.codes(list(products_seen))
        # The last time a product was seen is what counts for recency.
        last = pd.Series(np.arange(len(codes))).groupby(codes).max().sort_values(ascending=False)
        histories = Histories(
            case=np.zeros(len(last), dtype=np.int64),
            product=last.index.to_numpy(dtype=np.int64),
            recency=np.arange(len(last), dtype=np.int64),
            n_cases=1,
        )
        return self._frame(self.rank(histories, n=n, method=method))


def with_product_attributes(
    recommendations: pd.DataFrame,
    products: pd.DataFrame,
    columns: Sequence[str] = (S.CATEGORY, "mean_price", "views"),
) -> pd.DataFrame:
    """Recommendations with each product's attributes from ``product_table`` beside them."""
    present = [c for c in columns if c in products]
    return recommendations.join(products[present], on="product")


def session_histories(events: pd.DataFrame, products: pd.Index) -> tuple[Histories, np.ndarray]:
    """What every session of ``events`` saw, as ``Histories`` over the catalogue ``products``, and its session ids.

    Each product appears once, at its last sighting (recency 0 = seen last);
    products the catalogue does not know are kept as -1 and ignored when ranking.
    """
    log = product_log(events, products=products)
    indexed = log.indexed
    session = indexed.session
    pairs = pd.DataFrame({"s": session, "p": indexed.product_code})
    last = np.flatnonzero(~pairs.duplicated(keep="last").to_numpy())
    case = session[last]
    position = position_in_group(case)
    size = np.bincount(case, minlength=indexed.n_sessions)
    histories = Histories(
        case=case.astype(np.int64),
        product=log.product[last],
        recency=(size[case] - 1 - position).astype(np.int64),
        n_cases=indexed.n_sessions,
    )
    return histories, indexed.session_ids.to_numpy()


def recommend_sessions(
    model: ProductRecommender, events: pd.DataFrame, n: int = 3, method: str = BLEND, separator: str = "; "
) -> pd.DataFrame:
    """Per session of ``events``: the top ``n`` products it has not seen yet, from all it saw, joined by ``separator``.

    Columns ``session_id`` and ``recommended_products``; sessions without a
    product event are not listed. Products new to the model count for nothing,
    so a session of new products only gets the most popular ones.
    """
    histories, session_ids = session_histories(events, model.products_)
    lists = model.rank(histories, n=n, method=method)
    names = model.products_.to_numpy().astype(str)[lists.product]
    joined = pd.Series(names).groupby(lists.case, sort=True).agg(separator.join)
    column = np.full(histories.n_cases, "", dtype=object)
    column[joined.index.to_numpy()] = joined.to_numpy()
    return pd.DataFrame({"session_id": session_ids, "recommended_products": column})
