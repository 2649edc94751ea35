"""The dataset's champion model on the segments tab: P per session, per-segment lift, and what-if starts.

The champion classifier scores every scoreable session of the dataset once
(per run id, kept on the dataset) so the capacity slider only regroups numbers.
When the model's metadata says which sessions it was tested on (same data
hash, label and window), the lift uses those held-out sessions only; otherwise
every scoreable session, and the text says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dashboard.context import AppContext
from ml.errors import ClickstreamError
from ml.features.prepared import PreparedData
from ml.models.segment_lift import held_out_positions, segment_lift
from ml.models.segment_runs import SegmentRun
from ml.serving.whatif import cached_window_features
from ml.tasks import CLASSIFICATION

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChampionScores:
    """The champion's P for every scoreable session of a dataset (at the model's window)."""

    run_id: str
    title: str
    window: int
    session_ids: pd.Index  # the scoreable sessions
    positions: np.ndarray  # their rows in ``data.sessions``
    p: np.ndarray
    converted: np.ndarray  # converted after the window (the label the model predicts)
    held_out: np.ndarray | None  # positions (into the arrays above) of the model's held-out sessions

    @property
    def population(self) -> str:
        """Which sessions the lift numbers come from, in words."""
        if self.held_out is not None:
            return f"the model's {len(self.held_out):,} held-out sessions"
        return f"all {len(self.p):,} scoreable sessions (the model's test split cannot be told apart)"

    def p_of(self, session_id: object) -> float | None:
        """The P of one session, or None when it is not scoreable at the model's window."""
        where = self.session_ids.get_indexer([session_id])[0]
        return None if where < 0 else float(self.p[where])


def _score(data: PreparedData, run) -> ChampionScores | None:
    meta = run.metadata
    windowed = cached_window_features(data, run.window)
    names = [f["name"] for f in meta.get("features", [])]
    missing = [n for n in names if n not in windowed.features]
    if not names or missing:
        log.warning("the champion %s needs features this dataset lacks: %s", run.info.run_id, missing[:5])
        return None
    p = run.pipeline.predict_proba(windowed.features[names])[:, 1] if len(windowed.features) else np.zeros(0)
    converted = windowed.converted.to_numpy().astype(int)
    same_data = (meta.get("data") or {}).get("hash") == data.loaded.data_hash
    same_label = (meta.get("label") or {}).get("name") == data.definition.name
    held_out = held_out_positions(converted, meta) if same_data and same_label else None
    return ChampionScores(
        run_id=run.info.run_id,
        title=str(meta.get("title", run.info.model)),
        window=run.window,
        session_ids=windowed.features.index,
        positions=data.sessions.index.get_indexer(windowed.features.index),
        p=p,
        converted=converted,
        held_out=held_out,
    )


def champion_scores(context: AppContext, key: object) -> ChampionScores | None:
    """The dataset's champion classifier's scores, or None when it has no usable model."""
    try:
        run = context.registry_for(key).loaded_champion(CLASSIFICATION)
    except ClickstreamError as exc:  # a broken artifact: the tab works without the model
        log.warning("no champion model for the segments tab: %s", exc)
        return None
    if run is None:
        return None
    data = context.dataset(key)
    return data.once(f"segments.champion.{run.info.run_id}", lambda d: _score(d, run))


def lift_table(scores: ChampionScores, run: SegmentRun, share: float) -> pd.DataFrame:
    """Per-segment lift of targeting the top ``share`` of the population by the champion's P."""
    rows = scores.held_out if scores.held_out is not None else np.arange(len(scores.p))
    segments = run.labels[scores.positions[rows]]
    return segment_lift(segments, scores.p[rows], scores.converted[rows], share)
