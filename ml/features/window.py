"""Early-window features: what a shop knows of a session after its first ``k`` clicks.

Window features read only the first ``k`` clicks of a session; the training
population is the sessions with at least ``k`` clicks that had not converted
inside the window. Everything is vectorised over sorted click arrays.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.data import schema as S
from ml.data.clicks import IndexedClicks, index_clicks
from ml.features.labels import TARGET_BASKET, TARGET_CONVERTED, LabelDefinition, SessionTargets, session_targets

# Session status in the early-prediction framing.
STATUS_SCORED = "scored"
STATUS_TOO_SHORT = "too short"
STATUS_CONVERTED_IN_WINDOW = "already converted in window"
STATUSES = (STATUS_SCORED, STATUS_TOO_SHORT, STATUS_CONVERTED_IN_WINDOW)


@dataclass(frozen=True)
class FeatureSpec:
    """What a model input is, for pipelines and for generating what-if controls."""

    name: str
    kind: str  # "numeric" or "categorical"
    label: str
    codebook: str | None = None  # schema.CODEBOOK key for decoded names
    integer: bool = False

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "kind": self.kind,
            "label": self.label,
            "codebook": self.codebook,
            "integer": self.integer,
        }


WINDOW_FEATURES: tuple[FeatureSpec, ...] = (
    FeatureSpec("country", "categorical", "Country", codebook=S.COUNTRY),
    FeatureSpec("day_of_week", "categorical", "Day of week", codebook="day_of_week"),
    FeatureSpec("month", "numeric", "Month", integer=True),
    FeatureSpec("first_category", "categorical", "First click: category", codebook=S.CATEGORY),
    FeatureSpec("last_category", "categorical", "Last click in window: category", codebook=S.CATEGORY),
    FeatureSpec("first_page", "numeric", "First click: catalogue page", integer=True),
    FeatureSpec("first_price", "numeric", "First click: price (USD)"),
    FeatureSpec("w_price_mean", "numeric", "Mean price viewed (USD)"),
    FeatureSpec("w_price_min", "numeric", "Lowest price viewed (USD)"),
    FeatureSpec("w_price_max", "numeric", "Highest price viewed (USD)"),
    FeatureSpec("w_premium_share", "numeric", "Share of above-average-price views"),
    FeatureSpec("w_sale_share", "numeric", "Share of sale views"),
    FeatureSpec("w_profile_share", "numeric", "Share of profile photos"),
    FeatureSpec("w_top_row_share", "numeric", "Share of top-row photos"),
    FeatureSpec("w_n_categories", "numeric", "Distinct categories", integer=True),
    FeatureSpec("w_n_colours", "numeric", "Distinct colours", integer=True),
    FeatureSpec("w_max_page", "numeric", "Deepest catalogue page", integer=True),
    FeatureSpec("w_page_changes", "numeric", "Page changes", integer=True),
    FeatureSpec("w_category_switches", "numeric", "Category switches", integer=True),
)
WINDOW_FEATURE_NAMES = tuple(f.name for f in WINDOW_FEATURES)
FEATURE_SPECS: Mapping[str, FeatureSpec] = {f.name: f for f in WINDOW_FEATURES}


# ---------------------------------------------------------------- early window
@dataclass(frozen=True)
class WindowData:
    """Early-window features for the sessions that can be scored, and every session's status."""

    features: pd.DataFrame  # index: session_id of scoreable sessions; WINDOW_FEATURE_NAMES
    status: pd.Series  # index: every session_id; one of STATUSES
    n_clicks: pd.Series  # index: every session_id
    converted: pd.Series  # index: scoreable sessions; did the session convert after the window
    basket_value: pd.Series  # index: scoreable sessions
    window: int
    definition: LabelDefinition


def _distinct_per_row(matrix: np.ndarray) -> np.ndarray:
    if matrix.shape[1] == 0:
        return np.zeros(matrix.shape[0], dtype=np.int64)
    ordered = np.sort(matrix, axis=1)
    return 1 + (np.diff(ordered, axis=1) != 0).sum(axis=1)


def _changes_per_row(matrix: np.ndarray) -> np.ndarray:
    return (np.diff(matrix, axis=1) != 0).sum(axis=1)


def window_status(indexed: IndexedClicks, targets: SessionTargets, window: int) -> np.ndarray:
    """Status of each session: scored, too short, or already converted inside the window."""
    status = np.full(indexed.n_sessions, STATUS_SCORED, dtype=object)
    status[targets.conversion_rank < window] = STATUS_CONVERTED_IN_WINDOW
    status[indexed.lengths < window] = STATUS_TOO_SHORT
    return status


def window_features(
    data: pd.DataFrame | IndexedClicks,
    window: int,
    definition: LabelDefinition | None = None,
) -> WindowData:
    """Features from the first ``window`` clicks of each scoreable session.

    Only clicks with rank < ``window`` are read; the targets (whether the session
    converts later, and its basket value) come from the whole session.
    """
    if window < 1:
        raise ValueError(f"the observation window must be at least 1 click, got {window}")
    indexed = data if isinstance(data, IndexedClicks) else index_clicks(data)
    targets = session_targets(indexed, definition)
    status = window_status(indexed, targets, window)
    scoreable = status == STATUS_SCORED
    ids = indexed.session_ids[scoreable]

    # Rows of the first `window` clicks of scoreable sessions, reshaped to (sessions, window).
    click_rows = (indexed.starts[scoreable][:, None] + np.arange(window)[None, :]).ravel()
    clicks = indexed.clicks

    def grid(name: str) -> np.ndarray:
        return clicks[name].to_numpy()[click_rows].reshape(-1, window)

    category, colour, page, price = grid(S.CATEGORY), grid(S.COLOUR), grid(S.PAGE), grid(S.PRICE)
    first = indexed.starts[scoreable]
    dates = clicks[S.DATE].to_numpy()[first]
    features = pd.DataFrame(
        {
            "country": clicks[S.COUNTRY].to_numpy()[first],
            "day_of_week": pd.DatetimeIndex(dates).day_of_week.to_numpy().astype(np.int8),
            "month": clicks[S.MONTH].to_numpy()[first],
            "first_category": category[:, 0],
            "last_category": category[:, -1],
            "first_page": page[:, 0],
            "first_price": price[:, 0],
            "w_price_mean": price.mean(axis=1),
            "w_price_min": price.min(axis=1),
            "w_price_max": price.max(axis=1),
            "w_premium_share": (grid(S.PRICE_2) == S.PREMIUM_PRICE_2).mean(axis=1),
            "w_sale_share": (category == S.SALE_CATEGORY).mean(axis=1),
            "w_profile_share": (grid(S.PHOTOGRAPHY) == S.PROFILE_PHOTOGRAPHY).mean(axis=1),
            "w_top_row_share": np.isin(grid(S.LOCATION), S.TOP_ROW_LOCATIONS).mean(axis=1),
            "w_n_categories": _distinct_per_row(category),
            "w_n_colours": _distinct_per_row(colour),
            "w_max_page": page.max(axis=1),
            "w_page_changes": _changes_per_row(page),
            "w_category_switches": _changes_per_row(category),
        },
        index=ids,
    )
    return WindowData(
        features=features[list(WINDOW_FEATURE_NAMES)],
        status=pd.Series(status, index=indexed.session_ids, name="status"),
        n_clicks=pd.Series(indexed.lengths, index=indexed.session_ids, name="clicks"),
        converted=pd.Series(targets.converted[scoreable], index=ids, name=TARGET_CONVERTED),
        basket_value=pd.Series(targets.basket_value[scoreable], index=ids, name=TARGET_BASKET),
        window=window,
        definition=targets.definition,
    )


# ---------------------------------------------------------------- ranges for what-if controls
def _step(spec: FeatureSpec, values: pd.Series, window: int) -> float:
    if spec.integer:
        return 1.0
    if spec.name.endswith("_share"):
        return round(1.0 / window, 6)
    if np.allclose(values, np.round(values)):
        return 1.0
    return float(max((values.max() - values.min()) / 100.0, 0.01))


def feature_ranges(features: pd.DataFrame, window: int) -> dict[str, dict[str, object]]:
    """Range, step and typical value of each window feature, as seen in training.

    Saved with every model so the what-if tab can bound its sliders and start
    from a typical session without reading the training data again.
    """
    ranges: dict[str, dict[str, object]] = {}
    for spec in WINDOW_FEATURES:
        values = features[spec.name]
        if spec.kind == "categorical":
            counts = values.value_counts()
            ranges[spec.name] = {
                "kind": "categorical",
                "values": [int(v) for v in counts.index],
                "counts": [int(c) for c in counts.to_numpy()],
                "typical": int(counts.index[0]),
            }
        else:
            step = _step(spec, values, window)
            median = float(np.round(values.median() / step) * step)
            ranges[spec.name] = {
                "kind": "numeric",
                "min": float(values.min()),
                "max": float(values.max()),
                "step": step,
                "typical": median,
            }
    return ranges
