"""Index canonical events once, as flat numpy arrays sorted by (session, order).

Every per-session computation in ``ml`` (session features, window features,
targets) works on ``IndexedClicks`` with ``np.add.reduceat``-style reductions
over contiguous session blocks, so nothing loops over sessions in Python.
(The UCI file's events are all clicks on products, hence the name.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from ml.data import schema as S
from ml.data.memory import reusing_freed_memory
from ml.data.threads import run_parallel


@dataclass(frozen=True, eq=False)
class SessionSlice:
    """Some consecutive sessions of an index, with what the count helpers read (``code_counts``, ...).

    ``session``, ``starts`` and ``rank`` count from the slice's own first
    session and row; ``rows`` and ``sessions`` say where the slice lies in the index.
    """

    session: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    rank: np.ndarray
    rows: slice
    sessions: slice

    @property
    def n_sessions(self) -> int:
        return len(self.starts)


@dataclass(frozen=True, eq=False)
class IndexedClicks:
    """Clicks in (session, order) order, with per-session block offsets.

    ``session`` maps each click to its session position ``0..n_sessions-1``;
    ``starts``/``lengths`` delimit each session's block; ``rank`` is a click's
    0-based position within its session; ``event`` is each event's type code
    (all views when the frame has no event column); ``is_review`` marks a view of
    a product the session has already viewed.

    The events stay as given in ``source``; ``source_rows`` says which source
    row sits at each sorted position (``None`` when the source was already in
    order). Columns are put in order one at a time, when first asked for
    (``column``); the whole sorted frame (``clicks``) is built only when a caller
    wants it, so the features of ten million events never copy every column.
    """

    source: pd.DataFrame
    source_rows: np.ndarray | None
    session_ids: pd.Index
    session: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    rank: np.ndarray
    product_code: np.ndarray
    event: np.ndarray
    is_review: np.ndarray
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def n_sessions(self) -> int:
        return len(self.starts)

    @cached_property
    def clicks(self) -> pd.DataFrame:
        """The sorted canonical clicks with a fresh RangeIndex (built on first use)."""
        if self.source_rows is None:
            return self.source.reset_index(drop=True)
        return self.source.take(self.source_rows).reset_index(drop=True)

    def rows(self, positions: np.ndarray) -> np.ndarray:
        """The source rows of sorted positions."""
        return positions if self.source_rows is None else gather(self.source_rows, positions)

    def column(self, name: str, dtype: type | None = None) -> np.ndarray:
        """A column's values in sorted order (gathered once, then kept)."""
        key = ("column", name, dtype)
        if key not in self._cache:
            if "clicks" in self.__dict__:
                self._cache[key] = self.clicks[name].to_numpy(dtype=dtype)
            else:
                self._cache[key] = self.at(name, None, dtype)
        return self._cache[key]

    def prefetch(self, names: Sequence[str]) -> None:
        """Put several one-byte columns in order now (then ``column`` finds them kept)."""
        if self.source_rows is None or "clicks" in self.__dict__:
            return
        wanted = [name for name in names if ("column", name, None) not in self._cache]
        for name, values in gather_one_byte_columns(self.source, self.source_rows, wanted).items():
            self._cache[("column", name, None)] = values

    def at(
        self, name: str, positions: np.ndarray | None, dtype: type | None = None, rows: np.ndarray | None = None
    ) -> np.ndarray:
        """A column's values at some sorted positions (all when None), without sorting the whole column.

        ``rows`` is ``self.rows(positions)`` when the caller has it already.
        """
        key = ("column", name, dtype)
        if key in self._cache:
            values = self._cache[key]
            return values if positions is None else gather(values, positions)
        series = self.source[name]
        if rows is None:
            rows = self.source_rows if positions is None else self.rows(positions)
        if isinstance(series.dtype, pd.CategoricalDtype) and dtype is None:
            # Gather the codes, not a text value per row.
            codes = series.cat.codes.to_numpy()
            picked = pd.Categorical.from_codes(codes if rows is None else gather(codes, rows), dtype=series.dtype)
            return picked.to_numpy()
        values = series.to_numpy(dtype=dtype)
        return values if rows is None else gather(values, rows)

    def once(self, key: object, build: Callable[[], object]) -> object:
        """A value derived from these clicks, computed on first use (session targets, say)."""
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def per_session_count(self, values: np.ndarray) -> np.ndarray:
        """Sum of a per-click bool or integer array over each session block, as int64 (exact)."""
        if not len(values):
            return np.zeros(self.n_sessions, dtype=np.int64)
        return np.add.reduceat(values, self.starts, dtype=np.int64)

    def per_session_sum(self, values: np.ndarray) -> np.ndarray:
        """Sum of a per-click array over each session block."""
        if not len(values):
            return np.zeros(0, dtype=np.float64)
        return np.add.reduceat(values, self.starts)

    def first(self, name: str) -> np.ndarray:
        """The value of a column at each session's first click."""
        return self.at(name, self.starts)

    def session_slices(self, max_rows: int) -> list[SessionSlice]:
        """The sessions in consecutive slices of about ``max_rows`` events (a longer session is a slice alone).

        Per-session work slice by slice keeps every temporary small: the
        allocator reuses small blocks, while each fresh full-length array costs
        the kernel a first touch of its pages.
        """
        n = len(self.session)
        cuts = np.unique(np.r_[np.searchsorted(self.starts, np.arange(0, n, max(max_rows, 1))), self.n_sessions])
        slices = []
        for first, last in zip(cuts[:-1].tolist(), cuts[1:].tolist(), strict=True):
            row_first = int(self.starts[first])
            row_last = int(self.starts[last]) if last < self.n_sessions else n
            slices.append(
                SessionSlice(
                    session=self.session[row_first:row_last] - first,
                    starts=self.starts[first:last] - row_first,
                    lengths=self.lengths[first:last],
                    rank=self.rank[row_first:row_last],
                    rows=slice(row_first, row_last),
                    sessions=slice(first, last),
                )
            )
        return slices


def one_byte_columns(frame: pd.DataFrame, names: Sequence[str]) -> list[str]:
    """The one-byte numeric columns among ``names`` (codes that most features read)."""
    return [
        name
        for name in names
        if name in frame
        and isinstance(frame[name].dtype, np.dtype)
        and frame[name].dtype.itemsize == 1
        and frame[name].dtype.kind in "iub"
    ]


def gather_one_byte_columns(frame: pd.DataFrame, rows: np.ndarray, names: Sequence[str]) -> dict[str, np.ndarray]:
    """The one-byte numeric columns among ``names``, each taken at ``rows`` (other columns are left out)."""
    return {name: gather(frame[name].to_numpy(), rows) for name in one_byte_columns(frame, names)}


def gather(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``values[rows]`` through ``np.take`` when ``rows`` are integers: the same values, faster.

    numpy's fancy indexing goes through its general iterator, while ``take``
    copies straight along the index: about twice as fast for one-byte values
    and a quarter faster for eight-byte ones on ten million shuffled rows.
    """
    rows = np.asarray(rows)
    if rows.dtype.kind not in "iu":
        return values[rows]  # a mask (take would read True as row 1)
    return np.take(values, rows, axis=0)


def _bits(span: int) -> int:
    """Bits needed for the values 0 .. span - 1."""
    return max(int(span) - 1, 0).bit_length()


def counting_rows(
    keys: np.ndarray, span: int, order: np.ndarray, blocks: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Rows in (key block, order) order by a counting sort, when each key's orders are distinct and consecutive.

    ``keys`` lie in ``0 .. span - 1``; ``blocks`` lists the present keys in the
    order their blocks should come (ascending when None). Each row goes straight
    to its slot, ``block start + order - the key's lowest order``: no sort at
    all. Returns the rows, the blocks and their starts, or None when some key's orders
    are not distinct and consecutive (then two rows would share a slot, or a
    slot stays empty, which the check sees), so the caller sorts instead.
    Exactly what a stable sort by (block, order) gives whenever it answers.
    """
    n = len(keys)
    counts = np.bincount(keys, minlength=span)
    if blocks is None:
        blocks = np.flatnonzero(counts)
    block_counts = counts[blocks]
    lowest = np.full(span, np.iinfo(order.dtype).max, dtype=order.dtype)
    np.minimum.at(lowest, keys, order)
    block_starts = np.cumsum(block_counts) - block_counts
    base = np.zeros(span, dtype=np.int64)
    base[blocks] = block_starts - lowest[blocks]
    slot = np.take(base, keys)
    slot += order
    if int(slot.max()) >= n:
        return None
    # Each block's slots start at its own start; if every slot is filled, each block filled exactly its own.
    rows = np.full(n, -1, dtype=np.int64)
    rows[slot] = np.arange(n, dtype=np.int64)
    if int(rows.min()) < 0:
        return None
    return rows, blocks, block_starts


def sorted_rows(groups: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row numbers in (group, order, row) order, a stable sort by group then order, and the sorted groups.

    When each group's orders are distinct and consecutive (positions within a
    session), a counting sort (``counting_rows``). Otherwise group and order
    (both integers) and the row number are packed into one int64 when they fit,
    which numpy sorts several times faster than ``np.lexsort`` sorts two keys;
    the row number in the lowest bits keeps the sort stable. Otherwise ``np.lexsort``.
    """
    n = len(groups)
    if n == 0:
        return np.zeros(0, dtype=np.int64), groups[:0]
    g_low, g_span = int(groups.min()), int(groups.max()) - int(groups.min()) + 1
    o_low, o_span = int(order.min()), int(order.max()) - int(order.min()) + 1
    if g_span <= 2 * n + 1024 and o_span <= n and np.issubdtype(order.dtype, np.integer):
        counted = counting_rows(groups.astype(np.int64) - g_low, g_span, order)
        if counted is not None:
            rows, blocks, block_starts = counted
            return rows, np.repeat(blocks + g_low, np.diff(np.r_[block_starts, n]))
    row_bits, order_bits = _bits(n), _bits(o_span)
    if _bits(g_span) + order_bits + row_bits > 62:
        if order_bits + row_bits > 62 or _bits(g_span) + row_bits > 62:
            rows = np.lexsort((order, groups))
            return rows, groups[rows]
        # Too wide for one key (millisecond times, say): rank rows by (order, row) first, then sort
        # (group, rank), both packed; the ranks are distinct, so the second sort needs no row number.
        by_order = _stable_order(order)
        packed = np.empty(n, dtype=np.int64)
        packed[by_order] = np.arange(n, dtype=np.int64)
        packed += (groups.astype(np.int64) - g_low) << row_bits
        packed.sort()
        sorted_groups = packed >> row_bits
        sorted_groups += g_low
        packed &= (1 << row_bits) - 1
        return by_order[packed], sorted_groups
    packed = groups.astype(np.int64) - g_low
    packed <<= order_bits
    packed += order.astype(np.int64) - o_low
    packed <<= row_bits
    packed += np.arange(n, dtype=np.int64)
    packed.sort()
    sorted_groups = packed >> (order_bits + row_bits)
    sorted_groups += g_low
    packed &= (1 << row_bits) - 1
    return packed, sorted_groups


def _stable_order(order: np.ndarray) -> np.ndarray:
    """Rows by (order, row): a stable sort, merge or packed, whichever suits the values.

    Exports come in time order, give or take: a value rarely lies far below the
    largest one before it. Then numpy's stable (merge) sort, which finds and
    merges the near-sorted runs, is several times faster than sorting packed
    keys; on values in random order it is about twice as slow. Both give the same rows.
    """
    n = len(order)
    span = int(order.max()) - int(order.min()) + 1
    lag = np.maximum.accumulate(order)
    lag -= order
    if float(lag.mean()) * 1000 < span:
        return np.argsort(order, kind="stable")
    return sorted_rows(np.zeros(n, dtype=np.int64), order)[0]


def first_appearance_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``pd.factorize(values, sort=False)`` of int64 values: codes in order of first appearance, and the values.

    Values spanning a range not much wider than their count are numbered with a
    lookup table (no hashing); others go through ``pd.factorize``.
    """
    n = len(values)
    low = int(values.min()) if n else 0
    span = int(values.max()) - low + 1 if n else 0
    if not n or span > 4 * n + 1024:
        codes, uniques = pd.factorize(values, sort=False)
        return codes.astype(np.int64), np.asarray(uniques)
    offset = values - low
    present = _in_first_appearance_order(offset, span)
    code_of = np.empty(span, dtype=np.int64)
    code_of[present] = np.arange(len(present), dtype=np.int64)
    return np.take(code_of, offset), present + low


def _in_first_appearance_order(offset: np.ndarray, span: int) -> np.ndarray:
    """The distinct values of ``offset`` (all in ``0 .. span - 1``) in order of first appearance."""
    n = len(offset)
    first_row = np.full(span, n, dtype=np.int64)
    np.minimum.at(first_row, offset, np.arange(n, dtype=np.int64))
    is_first = np.zeros(n, dtype=bool)
    is_first[first_row[first_row < n]] = True
    return offset[is_first]


def _is_sorted(session_codes: np.ndarray, order: np.ndarray) -> bool:
    if len(session_codes) < 2:
        return True
    ds = np.diff(session_codes)
    if (ds < 0).any():
        return False
    same = ds == 0
    return bool((np.diff(order)[same] > 0).all())


def _contiguous_sorted(values: np.ndarray, order: np.ndarray) -> bool:
    """Whether each session's rows are one run with increasing order (what ``_is_sorted`` says of codes)."""
    if len(values) < 2:
        return True
    same = values[1:] == values[:-1]
    if not bool((np.diff(order)[same] > 0).all()):
        return False
    run_values = values[np.r_[True, ~same]]
    return len(np.unique(run_values)) == len(run_values)


def _session_blocks(clicks: pd.DataFrame) -> tuple[np.ndarray | None, pd.Index, np.ndarray]:
    """Source rows in (session, order) order, sessions in order of first appearance; their IDs and block starts.

    Exactly what ``pd.factorize`` then ``np.lexsort((order, codes))`` give, faster
    (see ``first_appearance_codes``, ``counting_rows`` and ``sorted_rows``);
    ``None`` for rows when the clicks are in that order already.
    """
    ids = clicks[S.SESSION_ID]
    order = clicks[S.ORDER].to_numpy()
    n = len(ids)
    if ids.dtype == np.int64 and n:
        values = ids.to_numpy()
        if _contiguous_sorted(values, order):
            starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
            return None, pd.Index(values[starts], name=S.SESSION_ID), starts
        low = int(values.min())
        span = int(values.max()) - low + 1
        if span <= 2 * n + 1024 and np.issubdtype(order.dtype, np.integer):
            # Straight to (first appearance, order) without numbering the sessions first.
            offset = values - low
            counted = counting_rows(offset, span, order, blocks=_in_first_appearance_order(offset, span))
            if counted is not None:
                rows, blocks, starts = counted
                return rows, pd.Index(blocks + low, name=S.SESSION_ID), starts
        codes, uniques = first_appearance_codes(values)
    else:
        codes, uniques = pd.factorize(ids, sort=False)
        if _is_sorted(codes, order):
            starts = np.flatnonzero(np.r_[True, np.diff(codes) != 0]) if n else np.zeros(0, dtype=np.int64)
            return None, pd.Index(uniques, name=S.SESSION_ID), starts
    rows, sorted_codes = sorted_rows(codes, order)
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    return rows, pd.Index(uniques, name=S.SESSION_ID), starts


def review_flags(session: np.ndarray, product_code: np.ndarray, n_products: int, is_view: np.ndarray) -> np.ndarray:
    """Views of a product the session has already viewed (rows in session, rank order)."""
    is_review = np.zeros(len(session), dtype=bool)
    all_views = bool(is_view.all())
    views = None if all_views else np.flatnonzero(is_view)  # None: every row
    if not len(session) or (views is not None and not len(views)):
        return is_review
    pair_key = session * n_products if views is None else session[views] * n_products
    pair_key += product_code if views is None else product_code[views]
    if _bits(int(pair_key.max()) + 1) > 62:
        repeats = pd.Series(pair_key).duplicated(keep="first").to_numpy()
        is_review[slice(None) if views is None else views] = repeats
        return is_review
    # A stable sort of the (session, product) pairs (see ``_pair_runs``): a repeat follows its pair's first view.
    by_pair = np.argsort(pair_key, kind="stable")
    sorted_pairs = np.take(pair_key, by_pair)
    repeat = sorted_pairs[1:] == sorted_pairs[:-1]
    positions = by_pair[1:][repeat]
    is_review[positions if views is None else views[positions]] = True
    return is_review


def _review_flags_in_parts(
    session: np.ndarray, starts: np.ndarray, product_code: np.ndarray, n_products: int, is_view: np.ndarray
) -> np.ndarray:
    """``review_flags`` of the two halves of the sessions side by side (a session's flags read only its own rows)."""
    n = len(session)
    middle = int(np.searchsorted(starts, n // 2))  # the first session starting at or after the middle row
    cut = int(starts[middle]) if middle < len(starts) else n
    first, second = run_parallel(
        lambda: review_flags(session[:cut], product_code[:cut], n_products, is_view[:cut]),
        lambda: review_flags(session[cut:], product_code[cut:], n_products, is_view[cut:]),
    )
    return np.concatenate([first, second])


@reusing_freed_memory
def index_clicks(clicks: pd.DataFrame) -> IndexedClicks:
    """Sort clicks by (session, order) and compute block offsets and re-view flags."""
    rows, session_ids, starts = _session_blocks(clicks)
    n = len(clicks)
    lengths = np.diff(np.r_[starts, n]).astype(np.int64)
    session = np.repeat(np.arange(len(starts), dtype=np.int64), lengths)
    products = clicks[S.PRODUCT].cat
    n_products = max(len(products.categories), 1)

    def in_order(values: np.ndarray) -> np.ndarray:
        return values if rows is None else gather(values, rows)

    def product_codes() -> np.ndarray:
        return in_order(products.codes.to_numpy()).astype(np.int64)

    def events() -> np.ndarray:
        if S.EVENT_TYPE not in clicks:
            return np.zeros(n, dtype=np.int8)
        return in_order(clicks[S.EVENT_TYPE].to_numpy()).astype(np.int8, copy=False)

    def ranks() -> np.ndarray:
        rank = np.repeat(starts, lengths)
        return np.subtract(np.arange(n, dtype=np.int64), rank, out=rank)

    def sessions() -> np.ndarray:
        return np.repeat(np.arange(len(starts), dtype=np.int64), lengths)

    # Most features read the one-byte columns and the prices: put them in order now, one task each.
    eager = [] if rows is None else [c for c in one_byte_columns(clicks, clicks.columns) if c != S.EVENT_TYPE]
    if rows is not None and S.PRICE in clicks and clicks[S.PRICE].dtype == np.float64:
        eager.insert(0, S.PRICE)

    def column(name: str) -> Callable[[], np.ndarray]:
        return lambda: gather(clicks[name].to_numpy(), rows)

    # Longest first: each thread takes the next task when it is free.
    product_code, session, rank, event, *columns = run_parallel(
        product_codes, sessions, ranks, events, *map(column, eager)
    )
    is_review = _review_flags_in_parts(session, starts, product_code, n_products, event == S.EVENT_VIEW)
    return IndexedClicks(
        source=clicks,
        source_rows=rows,
        session_ids=session_ids,
        session=session,
        starts=starts,
        lengths=lengths,
        rank=rank,
        product_code=product_code,
        event=event,
        is_review=is_review,
        _cache={("column", name, None): values for name, values in zip(eager, columns, strict=True)},
    )


RANK_CAP = 1 << 20  # dominant_code's tie-break reads ranks up to this


def code_cells(indexed: IndexedClicks | SessionSlice, codes: np.ndarray, n_codes: int) -> np.ndarray:
    """Each click's (code, session) cell of the count matrix."""
    flat = codes.astype(np.int64) * indexed.n_sessions
    flat += indexed.session
    return flat


def code_counts(
    indexed: IndexedClicks | SessionSlice, codes: np.ndarray, n_codes: int, flat: np.ndarray | None = None
) -> np.ndarray:
    """Clicks per (code, session): an ``(n_codes + 1) x n_sessions`` count matrix.

    Code-major, so one code's counts over the sessions are contiguous and sums over the codes add whole rows.
    """
    if flat is None:
        flat = code_cells(indexed, codes, n_codes)
    counts = np.bincount(flat, minlength=indexed.n_sessions * (n_codes + 1))
    return counts.reshape(n_codes + 1, indexed.n_sessions)


def dominant_code(
    indexed: IndexedClicks | SessionSlice,
    codes: np.ndarray,
    n_codes: int,
    counts: np.ndarray | None = None,
    flat: np.ndarray | None = None,
) -> np.ndarray:
    """Most-clicked code per session; ties go to the code the session viewed first.

    ``counts`` is ``code_counts(indexed, codes, n_codes)`` when the caller has it already (and
    ``flat`` the clicks' count-matrix cells).
    """
    if counts is None:
        counts = code_counts(indexed, codes, n_codes)
    if not indexed.n_sessions:
        return np.zeros(0, dtype=np.int64)
    if int(indexed.lengths.max()) >= RANK_CAP:
        # Ranks past the cap tie in the score below; keep exactly what it gives.
        flat = code_cells(indexed, codes, n_codes)
        first_seen = np.full(counts.size, np.iinfo(np.int64).max // 4, dtype=np.int64)
        np.minimum.at(first_seen, flat, indexed.rank)
        score = counts * RANK_CAP - np.minimum(first_seen.reshape(counts.shape), RANK_CAP - 1)
        return score.argmax(axis=0)
    # Per click: its code's count, less its rank. A session's highest value is the first click on its most
    # clicked code, on the one clicked first among equals: the rule above.
    if flat is None:
        flat = code_cells(indexed, codes, n_codes)
    key = np.take(counts.ravel(), flat)
    key *= RANK_CAP
    key -= indexed.rank
    best_rank = (-np.maximum.reduceat(key, indexed.starts)) & (RANK_CAP - 1)
    return codes[indexed.starts + best_rank].astype(np.int64)


def _pair_runs(pair: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct keys of rows in session order, ascending, with each key's first row and row count.

    A stable sort: the first row of a key comes first. The rows are in session
    order, so keys led by the session come in ascending runs, which numpy's
    stable (merge) sort finds and merges several times faster than it sorts
    random keys.
    """
    by_pair = np.argsort(pair, kind="stable")
    keys = np.take(pair, by_pair)
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    return keys[starts], by_pair[starts], np.diff(np.r_[starts, len(pair)])


def _unique_pairs(indexed: IndexedClicks, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (session, code) pairs sorted by session then code, with each pair's first click and click count.

    What ``np.unique(pair, return_index=True, return_counts=True)`` gives, through ``_pair_runs``.
    """
    codes = codes.astype(np.int64)
    low = int(codes.min())
    span = int(codes.max()) - low + 1
    pair = indexed.session * span
    pair += codes - low
    if _bits(int(pair.max()) + 1) > 62:
        unique_pairs, first_index, counts = np.unique(pair, return_index=True, return_counts=True)
    else:
        unique_pairs, first_index, counts = _pair_runs(pair)
    return unique_pairs // span, unique_pairs % span + low, first_index, counts


def session_code_pairs(indexed: IndexedClicks, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct (session, code) pairs of any code column, however many codes it has.

    Returns the pair's session, code and event count, sorted by session. Dense
    count matrices would need sessions x codes cells (a shop has thousands of
    brands); pairs need at most one row per event.
    """
    if not len(codes):
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    sessions, pair_codes, _, counts = _unique_pairs(indexed, codes)
    return sessions, pair_codes, counts


def distinct_per_session(indexed: IndexedClicks, codes: np.ndarray) -> np.ndarray:
    """How many distinct codes each session has."""
    sessions, _, _ = session_code_pairs(indexed, codes)
    return np.bincount(sessions, minlength=indexed.n_sessions)


def dominant_code_sparse(indexed: IndexedClicks, codes: np.ndarray) -> np.ndarray:
    """Most frequent code per session, ties to the code seen first: ``dominant_code`` for any number of codes."""
    return distinct_and_dominant(indexed, codes)[1]


def distinct_and_dominant(indexed: IndexedClicks, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``distinct_per_session`` and ``dominant_code_sparse`` of one code column, from one sort."""
    if not len(codes):
        return np.zeros(indexed.n_sessions, dtype=np.int64), np.zeros(0, dtype=np.int64)
    sessions, pair_codes, first_index, counts = _unique_pairs(indexed, codes)
    distinct = np.bincount(sessions, minlength=indexed.n_sessions)
    first_rank = indexed.rank[first_index]
    out = np.zeros(indexed.n_sessions, dtype=np.int64)
    if int(indexed.lengths.max()) >= RANK_CAP:
        order = np.lexsort((first_rank, -counts, sessions))
        chosen = order[np.r_[True, np.diff(sessions[order]) != 0]]
    else:
        # Pairs are sorted by session: the highest (count, -first rank) of each session's run of pairs.
        key = counts * RANK_CAP - first_rank
        runs = np.flatnonzero(np.r_[True, sessions[1:] != sessions[:-1]])
        best = np.maximum.reduceat(key, runs)
        chosen = np.flatnonzero(key == np.repeat(best, np.diff(np.r_[runs, len(key)])))
    out[sessions[chosen]] = pair_codes[chosen]
    return distinct, out


def position_in_group(groups: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within each run of equal values of a grouped array (a click's rank, for any blocks)."""
    if not len(groups):
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    return np.arange(len(groups)) - np.repeat(starts, np.diff(np.r_[starts, len(groups)]))
