"""Small hand-made click frames for unit tests."""

from __future__ import annotations

import pandas as pd

from ml.data import schema as S
from ml.data.validation import validate_frame

DEFAULTS = {
    "year": 2008,
    "month": 5,
    "day": 14,  # a Wednesday
    "country": 29,
    "page1_main_category": 1,
    "colour": 2,
    "location": 1,
    "model_photography": 1,
    "price": 40,
    "price_2": 2,
    "page": 1,
}


def make_clicks(sessions: dict[object, list[dict]]) -> pd.DataFrame:
    """Canonical clicks from ``{session_id: [click overrides, ...]}``.

    Each click needs at least ``page2_clothing_model``; ``order`` follows list position.
    """
    rows = []
    for session_id, clicks in sessions.items():
        for order, overrides in enumerate(clicks, start=1):
            rows.append({**DEFAULTS, "order": order, "session_id": session_id, **overrides})
    return validate_frame(pd.DataFrame(rows), source="test").clicks


def lowercase_form(clicks: pd.DataFrame) -> pd.DataFrame:
    """Canonical clicks as the common lowercase comma form names them (no derived date)."""
    renames = {S.CATEGORY: "page1_main_category", S.CLOTHING_MODEL: "page2_clothing_model"}
    return clicks.drop(columns=[S.DATE, S.EVENT_TYPE]).rename(columns=renames)
