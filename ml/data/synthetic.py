"""A large synthetic click set for benchmarks: bundled sessions resampled with new IDs.

Whole sessions are drawn with replacement, so every session keeps its real
click sequence; only the session IDs are new. Used by ``bench/`` to measure
features, KPIs, segments and scoring at 10 million clicks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.data import schema as S
from ml.data.clicks import index_clicks


def resample_sessions(clicks: pd.DataFrame, target_clicks: int, seed: int = 0) -> pd.DataFrame:
    """Draw whole sessions with replacement until about ``target_clicks`` clicks."""
    indexed = index_clicks(clicks)
    rng = np.random.default_rng(seed)
    mean_len = indexed.lengths.mean()
    n_draw = int(target_clicks / mean_len * 1.05) + 1
    picks = rng.integers(0, indexed.n_sessions, size=n_draw)
    lengths = indexed.lengths[picks]
    keep = np.searchsorted(np.cumsum(lengths), target_clicks) + 1
    picks, lengths = picks[:keep], lengths[:keep]
    rows = np.repeat(indexed.starts[picks], lengths) + (
        np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    )
    out = indexed.clicks.take(rows).reset_index(drop=True)
    out[S.SESSION_ID] = np.repeat(np.arange(1, len(picks) + 1, dtype=np.int64), lengths)
    return out
