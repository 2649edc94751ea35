"""Top-n selection for many cases at once, and the key helpers it rests on.

A case's scores are one row of ``recent @ table`` (its seen products,
weighted, times a product-to-product table). ``top_n`` returns each row's
best ``n`` entries, the seen products left out, best first and ties in column
order (the recommender numbers products by popularity, so ties go to the more
popular one). A small catalogue is scored densely, where a per-row partition
finds the n-th best score in linear time; a large one stays sparse and is
sorted. Both give the same lists; the split only bounds time and memory.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ml.data.clicks import position_in_group

DENSE_MAX_PRODUCTS = 2048  # catalogues up to this size are scored as dense rows
DENSE_CELLS = 1 << 22  # cases x products per dense block (32 MB of float64)
SPARSE_CHUNK_CASES = 20_000  # cases per sparse block; case rows then fit in int16 for a radix sort


def pair_keys(rows: np.ndarray, cols: np.ndarray, width: int) -> np.ndarray:
    """One int64 per (row, column) pair, ordered as the pairs are (row first)."""
    return rows.astype(np.int64) * width + cols.astype(np.int64)


def csr_keys(matrix: sp.csr_matrix) -> np.ndarray:
    """Sorted pair keys of a CSR matrix's stored entries, in storage order (sorts its indices in place)."""
    matrix.sort_indices()
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    return pair_keys(rows, matrix.indices, matrix.shape[1])


def lookup(sorted_keys: np.ndarray, values: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``values`` at the ``wanted`` keys (0 where absent) and whether each was found."""
    if not len(sorted_keys):
        return np.zeros(len(wanted), dtype=values.dtype), np.zeros(len(wanted), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_keys, wanted), len(sorted_keys) - 1)
    found = sorted_keys[at] == wanted
    return np.where(found, values[at], 0), found


def values_on(pattern: sp.csr_matrix, values: sp.csr_matrix) -> np.ndarray:
    """The entries of ``values`` at the stored positions of ``pattern`` (0 where ``values`` has none)."""
    return lookup(csr_keys(values), values.data, csr_keys(pattern))[0]


def block_size(width: int) -> int:
    """How many cases to score per block for a catalogue of ``width`` products."""
    return max(1, DENSE_CELLS // max(width, 1)) if width <= DENSE_MAX_PRODUCTS else SPARSE_CHUNK_CASES


def _top_n_dense(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's best ``n`` positive entries of a dense block (0 = no candidate)."""
    width = scores.shape[1]
    k = min(n, width)
    # The k-th best score of each row (0, "no candidate", when the row has k or fewer products).
    threshold = np.partition(scores, width - k, axis=1)[:, width - k] if k < width else np.zeros(len(scores))
    chosen = scores > threshold[:, None]
    ties = (scores == threshold[:, None]) & (scores > 0)
    room = k - chosen.sum(axis=1)
    chosen |= ties & (np.cumsum(ties, axis=1) <= room[:, None])  # ties in column order
    rows, cols = np.nonzero(chosen & (scores > 0))
    vals = scores[rows, cols]
    order = np.lexsort((cols, -vals, rows))
    return rows[order], cols[order], vals[order]


def _top_n_sparse(scores: sp.csr_matrix, seen_keys: np.ndarray, n: int) -> tuple[np.ndarray, ...]:
    """Each row's best ``n`` stored entries of a sparse block, the ``seen_keys`` left out."""
    m = scores.shape[0]
    keys = csr_keys(scores)
    fresh = np.ones(len(keys), dtype=bool)
    _, is_seen = lookup(keys, np.zeros(len(keys)), seen_keys)
    fresh[np.searchsorted(keys, seen_keys[is_seen])] = False
    rows = np.repeat(np.arange(m, dtype=np.int16), np.diff(scores.indptr))[fresh]
    cols, vals = scores.indices[fresh].astype(np.int64), scores.data[fresh]
    # Best score first within each row; the stable sorts keep ties in column order.
    order = np.argsort(-vals, kind="stable")
    order = order[np.argsort(rows[order], kind="stable")]
    order = order[position_in_group(rows[order]) < n]
    return rows[order].astype(np.int64), cols[order], vals[order]


def top_n(
    recent: sp.csr_matrix,
    seen: sp.csr_matrix,
    score_table: sp.csr_matrix,
    support_table: sp.csr_matrix,
    n: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rows, columns, scores and supports of each case's best ``n``, sorted by (row, rank).

    A case's score for product c is ``(recent @ score_table)[case, c]``, its
    support ``(seen @ support_table)[case, c]``; products in ``seen`` are left out.
    """
    width = recent.shape[1]
    if width <= DENSE_MAX_PRODUCTS:
        scores = np.asarray(recent @ score_table.toarray())
        seen_coo = seen.tocoo()
        scores[seen_coo.row, seen_coo.col] = 0.0
        rows, cols, vals = _top_n_dense(scores, n)
        supports = np.asarray(seen @ support_table.toarray())[rows, cols]
        return rows.astype(np.int64), cols.astype(np.int64), vals, supports
    rows, cols, vals = _top_n_sparse(sp.csr_matrix(recent @ score_table), csr_keys(seen), n)
    support = sp.csr_matrix(seen @ support_table)
    supports = lookup(csr_keys(support), support.data, pair_keys(rows, cols, width))[0]
    return rows, cols, vals, supports
