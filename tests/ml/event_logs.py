"""Small hand-made event logs in the built-in export forms, written as real files, for the profile tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
import pytest

from ml.data.loading import LoadedEvents, load_events
from ml.data.profiles import DataProfile, profile_from_dict
from ml.errors import Problem, ValidationError

MULTI_COLUMNS = (
    "event_time",
    "event_type",
    "product_id",
    "category_id",
    "category_code",
    "brand",
    "price",
    "user_id",
    "user_session",
)
VISITOR_COLUMNS = ("timestamp", "visitorid", "event", "itemid", "transactionid")
MULTI_DEFAULTS = {
    "event_time": "2019-10-01 10:00:00 UTC",
    "event_type": "view",
    "product_id": "1001",
    "category_id": "2053013555631882655",
    "category_code": "electronics.smartphone",
    "brand": "samsung",
    "price": "100.50",
    "user_id": "512000001",
    "user_session": "s-1",
}
VISITOR_DEFAULTS = {
    "timestamp": "1569924000000",  # 2019-10-01 10:00:00 UTC in milliseconds
    "visitorid": "7",
    "event": "view",
    "itemid": "501",
    "transactionid": "",
}


# A shop export with a session column, ISO times, prices and a revenue column (for purchase rows).
ORDERS_PROFILE: DataProfile = profile_from_dict(
    {
        "name": "orders",
        "columns": {
            "session_id": "visit",
            "timestamp": "ts",
            "event_type": "kind",
            "product_id": "sku",
            "price": "price",
            "revenue": "revenue",
        },
        "event_types": {"view": "view", "cart": "cart", "purchase": "buy"},
    }
)


def csv_text(rows: Sequence[Mapping[str, object]], columns: Sequence[str], *, sep: str = ",") -> str:
    """A CSV with ``columns`` as header and one line per row (missing keys are empty cells)."""
    lines = [sep.join(columns)] + [sep.join(str(row.get(c, "")) for c in columns) for row in rows]
    return "\n".join(lines) + "\n"


def multi_rows(*overrides: Mapping[str, object]) -> list[dict[str, object]]:
    """Multi-category-store rows: the defaults with each row's overrides."""
    return [{**MULTI_DEFAULTS, **row} for row in overrides]


def visitor_rows(*overrides: Mapping[str, object]) -> list[dict[str, object]]:
    return [{**VISITOR_DEFAULTS, **row} for row in overrides]


def multi_csv(tmp_path: Path, *overrides: Mapping[str, object], name: str = "events.csv") -> Path:
    path = tmp_path / name
    path.write_text(csv_text(multi_rows(*overrides), MULTI_COLUMNS), encoding="utf-8")
    return path


def visitor_csv(tmp_path: Path, *overrides: Mapping[str, object], name: str = "visitors.csv") -> Path:
    path = tmp_path / name
    path.write_text(csv_text(visitor_rows(*overrides), VISITOR_COLUMNS), encoding="utf-8")
    return path


def write_table(frame: pd.DataFrame, path: Path) -> Path:
    """Write a raw log as the file name says: ``.csv``, ``.csv.gz`` or ``.parquet``."""
    if path.name.endswith(".parquet"):
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False, compression="gzip" if path.name.endswith(".gz") else None)
    return path


def problems_of(source: Path | bytes, **kwargs: object) -> tuple[Problem, ...]:
    with pytest.raises(ValidationError) as info:
        load_events(source, **kwargs)
    assert info.value.problems, "a ValidationError must carry at least one problem"
    return info.value.problems


def find(problems: Sequence[Problem], column: str | None, text: str) -> Problem:
    """The one problem on ``column`` whose message contains ``text``."""
    hits = [p for p in problems if p.column == column and text in p.message]
    listing = "\n".join(p.describe() for p in problems)
    assert len(hits) == 1, f"expected one problem on {column!r} containing {text!r}, got:\n{listing}"
    return hits[0]


def canonical(loaded: LoadedEvents) -> pd.DataFrame:
    """The events sorted by session and position, with a fresh index, for comparing two loads."""
    return loaded.events.sort_values(["session_id", "order"], kind="stable").reset_index(drop=True)
