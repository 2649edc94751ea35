"""Per-segment lift of a capacity rule: "target the top N% of sessions by P(convert)", segment by segment.

A marketer who contacts the top N% of sessions by the model's P wants to know,
per segment, how many of its sessions that rule reaches and how well those
convert against contacting at random. The rule is applied to one population
(the model's held-out sessions when they can be told, else every scoreable
session) exactly as ``ml.models.capacity`` applies it, so the segments' counts
add up to the capacity table's row for that share.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from ml.models.capacity import top_share_mask


def held_out_positions(y: Sequence[int], metadata: Mapping[str, object]) -> np.ndarray | None:
    """Positions in the window population of the sessions a model was tested on, or None if they cannot be told.

    Training holds out sessions with ``train_test_split(range(population),
    test_size, stratify=y, random_state=seed)``; the metadata records the
    population, the held-out count and the seed, which reproduce the split when
    ``y`` is the same population's labels in the same order (same data, window
    and label: the caller checks the data hash, window and label name).
    """
    data = metadata.get("data") or {}
    validation = metadata.get("validation") or {}
    y = np.asarray(y).astype(int)
    n_test, population, seed = data.get("test_sessions"), data.get("population"), validation.get("seed")
    if n_test is None or population is None or seed is None or int(population) != len(y) or not 0 < n_test < len(y):
        return None
    _, test = train_test_split(np.arange(len(y)), test_size=int(n_test), stratify=y, random_state=int(seed))
    return np.sort(test)


def segment_lift(segments: Sequence[int], p: Sequence[float], y: Sequence[int], share: float) -> pd.DataFrame:
    """Per segment: sessions, conversion rate, how many the top ``share`` by ``p`` flags, their precision and lift.

    ``lift`` is the flagged sessions' conversion rate over the whole
    population's (1.0 = no better than contacting at random). ``attrs`` holds the
    population's totals: sessions, flagged, converted among them, base rate,
    the P the rule starts at, and the overall precision and lift.
    """
    seg = np.asarray(segments)
    y = np.asarray(y).astype(int)
    prob = np.asarray(p, dtype=float)
    flagged = top_share_mask(prob, share)
    n = len(y)
    base_rate = float(y.mean()) if n else float("nan")
    frame = pd.DataFrame({"segment": seg, "y": y, "flagged": flagged, "hit": flagged & (y == 1)})
    grouped = frame.groupby("segment", sort=True)
    out = pd.DataFrame(
        {
            "sessions": grouped.size(),
            "converted": grouped["y"].sum(),
            "flagged": grouped["flagged"].sum().astype(int),
            "flagged_converted": grouped["hit"].sum().astype(int),
        }
    )
    out["conversion_rate"] = out["converted"] / out["sessions"]
    out["flagged_share"] = out["flagged"] / out["sessions"]
    out["precision"] = out["flagged_converted"] / out["flagged"].where(out["flagged"] > 0)
    out["lift"] = out["precision"] / base_rate if base_rate else np.nan
    total_flagged = int(flagged.sum())
    precision = float(y[flagged].mean()) if total_flagged else float("nan")
    out.attrs.update(
        share=float(share),
        sessions=n,
        flagged=total_flagged,
        flagged_converted=int(y[flagged].sum()),
        base_rate=base_rate,
        threshold=float(prob[flagged].min()) if total_flagged else float("nan"),
        precision=precision,
        lift=precision / base_rate if base_rate else float("nan"),
    )
    return out
