"""What a canonical event frame holds, and so which features can be computed from it.

The bundled UCI file has its own codebook columns (country, colour, photo
location, photography, price band, catalogue page) and keeps its own features;
any other event log gets features of what its profile maps: event types,
categories, prices when it has them, times when it has them, and its
dimensions. The layout is read off the frame's columns, so a file to score and
the data a model was trained on give the same feature columns when they have
the same profile.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.data import schema as S

FAMILY_UCI = "uci553"
FAMILY_EVENTS = "events"
UCI_DIMENSION_COLUMNS = (S.COUNTRY, S.COLOUR, S.LOCATION, S.PHOTOGRAPHY, S.PRICE_2, S.PAGE)
CORE_COLUMNS = frozenset(
    {
        S.SESSION_ID,
        S.ORDER,
        S.DATE,
        S.YEAR,
        S.MONTH,
        S.DAY,
        S.TIMESTAMP,
        S.EVENT_TYPE,
        S.PRODUCT,
        S.CATEGORY,
        S.PRICE,
        S.USER_ID,
        S.TRANSACTION,
        S.LABEL_CONVERTED,
        S.LABEL_REVENUE,
    }
)
TOP_CODES = 30  # categorical features keep the 30 most frequent codes; the rest pool into 0
TOP_SHARES = 3  # share features for the 3 most frequent values of the category and each dimension


@dataclass(frozen=True)
class FeatureLayout:
    """Which feature family applies and which optional inputs the events have."""

    family: str
    dimensions: tuple[str, ...]
    has_time: bool
    has_price: bool

    def to_dict(self) -> dict[str, object]:
        return {
            "family": self.family,
            "dimensions": list(self.dimensions),
            "has_time": self.has_time,
            "has_price": self.has_price,
        }


def dimension_columns(frame: pd.DataFrame) -> tuple[str, ...]:
    """The frame's dimension columns: coded columns beyond the canonical fields, in frame order."""
    return tuple(str(c) for c in frame.columns if c not in CORE_COLUMNS)


def layout_of(frame: pd.DataFrame) -> FeatureLayout:
    """The feature layout of a canonical event frame."""
    dimensions = dimension_columns(frame)
    is_uci = set(UCI_DIMENSION_COLUMNS) <= set(dimensions)
    prices = frame[S.PRICE].to_numpy() if S.PRICE in frame else np.zeros(0)
    return FeatureLayout(
        family=FAMILY_UCI if is_uci else FAMILY_EVENTS,
        dimensions=UCI_DIMENSION_COLUMNS if is_uci else dimensions,
        has_time=S.TIMESTAMP in frame,
        has_price=bool(len(prices)) and not bool(np.isnan(prices).all()),
    )


def pool_codes(codes: np.ndarray, top: int = TOP_CODES) -> np.ndarray:
    """Codes beyond the ``top`` most frequent (codes are numbered by frequency) become 0, "other"."""
    return np.where(codes > top, 0, codes).astype(np.int32)
