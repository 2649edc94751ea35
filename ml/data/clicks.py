"""Index canonical events once, as flat numpy arrays sorted by (session, order).

Every per-session computation in ``ml`` (session features, window features,
targets) works on ``IndexedClicks`` with ``np.add.reduceat``-style reductions
over contiguous session blocks, so nothing loops over sessions in Python.
(The UCI file's events are all clicks on products, hence the name.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.data import schema as S


@dataclass(frozen=True)
class IndexedClicks:
    """Clicks sorted by session then order, with per-session block offsets.

    ``session`` maps each click to its session position ``0..n_sessions-1``;
    ``starts``/``lengths`` delimit each session's block; ``rank`` is a click's
    0-based position within its session; ``event`` is each event's type code
    (all views when the frame has no event column); ``is_review`` marks a view of
    a product the session has already viewed.
    """

    clicks: pd.DataFrame  # sorted canonical clicks, fresh RangeIndex
    session_ids: pd.Index
    session: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    rank: np.ndarray
    product_code: np.ndarray
    event: np.ndarray
    is_review: np.ndarray

    @property
    def n_sessions(self) -> int:
        return len(self.starts)

    def column(self, name: str) -> np.ndarray:
        return self.clicks[name].to_numpy()

    def per_session_sum(self, values: np.ndarray) -> np.ndarray:
        """Sum of a per-click array over each session block."""
        if not len(values):
            return np.zeros(0, dtype=np.float64)
        return np.add.reduceat(values, self.starts)

    def first(self, name: str) -> np.ndarray:
        """The value of a column at each session's first click."""
        return self.clicks[name].to_numpy()[self.starts]


def _is_sorted(session_codes: np.ndarray, order: np.ndarray) -> bool:
    if len(session_codes) < 2:
        return True
    ds = np.diff(session_codes)
    if (ds < 0).any():
        return False
    same = ds == 0
    return bool((np.diff(order)[same] > 0).all())


def index_clicks(clicks: pd.DataFrame) -> IndexedClicks:
    """Sort clicks by (session, order) and compute block offsets and re-view flags."""
    codes, uniques = pd.factorize(clicks[S.SESSION_ID], sort=False)
    order = clicks[S.ORDER].to_numpy()
    if _is_sorted(codes, order):
        ordered = clicks.reset_index(drop=True)
    else:
        perm = np.lexsort((order, codes))
        ordered = clicks.take(perm).reset_index(drop=True)
        codes = codes[perm]
        # Renumber sessions so codes follow the sorted order of first appearance.
        first_pos = np.full(len(uniques), -1)
        boundaries = np.flatnonzero(np.r_[True, np.diff(codes) != 0])
        first_pos[codes[boundaries]] = np.arange(len(boundaries))
        uniques = uniques[codes[boundaries]]
        codes = first_pos[codes]
    n = len(codes)
    starts = np.flatnonzero(np.r_[True, np.diff(codes) != 0]) if n else np.zeros(0, dtype=np.int64)
    lengths = np.diff(np.r_[starts, n]).astype(np.int64)
    session = codes.astype(np.int64)
    rank = np.arange(n, dtype=np.int64) - np.repeat(starts, lengths)
    product_code = ordered[S.PRODUCT].cat.codes.to_numpy().astype(np.int64)
    n_products = max(len(ordered[S.PRODUCT].cat.categories), 1)
    has_events = S.EVENT_TYPE in ordered
    event = ordered[S.EVENT_TYPE].to_numpy().astype(np.int8) if has_events else np.zeros(n, dtype=np.int8)
    is_view = event == S.EVENT_VIEW
    pair_key = session * n_products + product_code
    is_review = np.zeros(n, dtype=bool)
    is_review[is_view] = pd.Series(pair_key[is_view]).duplicated(keep="first").to_numpy()
    return IndexedClicks(
        clicks=ordered,
        session_ids=pd.Index(uniques, name=S.SESSION_ID),
        session=session,
        starts=starts,
        lengths=lengths,
        rank=rank,
        product_code=product_code,
        event=event,
        is_review=is_review,
    )


def code_counts(indexed: IndexedClicks, codes: np.ndarray, n_codes: int) -> np.ndarray:
    """Clicks per (session, code): an ``n_sessions x (n_codes + 1)`` count matrix."""
    flat = indexed.session * (n_codes + 1) + codes.astype(np.int64)
    counts = np.bincount(flat, minlength=indexed.n_sessions * (n_codes + 1))
    return counts.reshape(indexed.n_sessions, n_codes + 1)


def dominant_code(indexed: IndexedClicks, codes: np.ndarray, n_codes: int) -> np.ndarray:
    """Most-clicked code per session; ties go to the code the session viewed first."""
    counts = code_counts(indexed, codes, n_codes)
    flat = indexed.session * (n_codes + 1) + codes.astype(np.int64)
    first_seen = np.full(counts.size, np.iinfo(np.int64).max // 4, dtype=np.int64)
    is_first = ~pd.Series(flat).duplicated(keep="first").to_numpy()
    first_seen[flat[is_first]] = indexed.rank[is_first]
    score = counts * (1 << 20) - np.minimum(first_seen.reshape(counts.shape), (1 << 20) - 1)
    return score.argmax(axis=1)


def session_code_pairs(indexed: IndexedClicks, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct (session, code) pairs of any code column, however many codes it has.

    Returns the pair's session, code and event count, sorted by session. Dense
    count matrices would need sessions x codes cells (a shop has thousands of
    brands); pairs need at most one row per event.
    """
    codes = codes.astype(np.int64)
    low = int(codes.min()) if len(codes) else 0
    span = int(codes.max()) - low + 1 if len(codes) else 1
    pair = indexed.session * span + (codes - low)
    unique_pairs, counts = np.unique(pair, return_counts=True)
    return unique_pairs // span, unique_pairs % span + low, counts


def distinct_per_session(indexed: IndexedClicks, codes: np.ndarray) -> np.ndarray:
    """How many distinct codes each session has."""
    sessions, _, _ = session_code_pairs(indexed, codes)
    return np.bincount(sessions, minlength=indexed.n_sessions)


def dominant_code_sparse(indexed: IndexedClicks, codes: np.ndarray) -> np.ndarray:
    """Most frequent code per session, ties to the code seen first: ``dominant_code`` for any number of codes."""
    codes = codes.astype(np.int64)
    if not len(codes):
        return np.zeros(0, dtype=np.int64)
    low = int(codes.min())
    span = int(codes.max()) - low + 1
    pair = indexed.session * span + (codes - low)
    unique_pairs, first_index, counts = np.unique(pair, return_index=True, return_counts=True)
    sessions = unique_pairs // span
    first_rank = indexed.rank[first_index]
    order = np.lexsort((first_rank, -counts, sessions))
    chosen = order[np.r_[True, np.diff(sessions[order]) != 0]]
    out = np.zeros(indexed.n_sessions, dtype=np.int64)
    out[sessions[chosen]] = unique_pairs[chosen] % span + low
    return out


def position_in_group(groups: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within each run of equal values of a grouped array (a click's rank, for any blocks)."""
    if not len(groups):
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    return np.arange(len(groups)) - np.repeat(starts, np.diff(np.r_[starts, len(groups)]))
