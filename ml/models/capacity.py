"""Decisions by capacity: "contact the top N% of sessions", with what it buys on held-out data.

A probability helps nobody by itself; a marketer has a budget for N contacts.
For each share of sessions (the top 1%, 2%, ... by P(convert)), the table
says which P that share starts at, how many sessions it flags, how many of them
converted on held-out data (precision), what share of all conversions they hold
(recall) and the lift over contacting sessions at random. It is computed once
at training time from every held-out session and saved with the model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

CAPACITY_SHARES = tuple(round(s / 100, 2) for s in range(1, 101))  # 1% .. 100%
ROW_KEYS = ("share", "flagged", "threshold", "converted", "precision", "recall", "lift")


def capacity_table(y_true: Sequence[int], p: Sequence[float], shares: Sequence[float] = CAPACITY_SHARES) -> dict:
    """Metrics of flagging the top ``share`` of sessions by ``p``, for each share.

    Ties at the cut are broken by order (a stable sort), so the flagged count is
    exactly ``ceil(share * n)``. Returns JSON-friendly lists aligned with ``shares``.
    """
    y = np.asarray(y_true).astype(int)
    prob = np.asarray(p, dtype=float)
    n = len(y)
    order = np.argsort(-prob, kind="stable")
    hits = np.cumsum(y[order])
    positives = int(y.sum())
    base_rate = positives / n if n else float("nan")
    out: dict[str, list] = {k: [] for k in ROW_KEYS}
    for share in shares:
        flagged = min(n, max(1, int(np.ceil(share * n)))) if n else 0
        converted = int(hits[flagged - 1]) if flagged else 0
        precision = converted / flagged if flagged else float("nan")
        out["share"].append(float(share))
        out["flagged"].append(flagged)
        out["threshold"].append(float(prob[order[flagged - 1]]) if flagged else float("nan"))
        out["converted"].append(converted)
        out["precision"].append(precision)
        out["recall"].append(converted / positives if positives else float("nan"))
        out["lift"].append(precision / base_rate if base_rate else float("nan"))
    return {**out, "sessions": n, "positives": positives, "base_rate": base_rate}


def at_share(table: Mapping[str, Sequence[float]], share: float) -> dict[str, float]:
    """The row of a capacity table for the share closest to ``share`` (0..1)."""
    shares = np.asarray(table["share"], dtype=float)
    i = int(np.argmin(np.abs(shares - share)))
    return {k: table[k][i] for k in ROW_KEYS} | {"sessions": table["sessions"], "base_rate": table["base_rate"]}


def share_at_or_above(table: Mapping[str, Sequence[float]], p: float) -> float:
    """The smallest capacity share whose cut ``p`` clears: "this P is in the top N% of held-out sessions".

    Read from the table to its 1% resolution; 1.0 when ``p`` is below every cut.
    """
    for share, cut in zip(table["share"], table["threshold"], strict=True):
        if p >= cut:
            return float(share)
    return 1.0


def at_threshold(y_true: Sequence[int], p: Sequence[float], threshold: float) -> dict[str, float]:
    """What the decision threshold flags on the same sessions: share, precision, recall, lift."""
    y = np.asarray(y_true).astype(int)
    prob = np.asarray(p, dtype=float)
    flagged = prob >= threshold
    n, k, positives = len(y), int(flagged.sum()), int(y.sum())
    converted = int(y[flagged].sum())
    base = positives / n if n else float("nan")
    precision = converted / k if k else float("nan")
    return {
        "share": k / n if n else float("nan"),
        "flagged": k,
        "threshold": float(threshold),
        "converted": converted,
        "precision": precision,
        "recall": converted / positives if positives else float("nan"),
        "lift": precision / base if base and k else float("nan"),
        "sessions": n,
        "base_rate": base,
    }


def top_share_mask(p: Sequence[float], share: float) -> np.ndarray:
    """Which of ``p`` are in the top ``share`` (stable order on ties): the sessions a capacity rule targets."""
    prob = np.asarray(p, dtype=float)
    n = len(prob)
    k = min(n, max(0, int(np.ceil(share * n))))
    mask = np.zeros(n, dtype=bool)
    mask[np.argsort(-prob, kind="stable")[:k]] = True
    return mask


def residual_interval(actual: Sequence[float], predicted: Sequence[float], coverage: float = 0.8) -> dict[str, float]:
    """Held-out residual quantiles, so a prediction is shown as a range: [pred + low, pred + high]."""
    residuals = np.asarray(actual, dtype=float) - np.asarray(predicted, dtype=float)
    tail = (1 - coverage) / 2
    if not len(residuals):
        return {"coverage": coverage, "low": float("nan"), "high": float("nan"), "n": 0}
    low, high = np.quantile(residuals, [tail, 1 - tail])
    return {"coverage": coverage, "low": float(low), "high": float(high), "n": len(residuals)}
