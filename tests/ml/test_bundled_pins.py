"""The bundled data gives exactly the features, statuses, labels and KPI values it gave before event logs.

``data/bundled_pins.json`` was recorded from the UCI-only engine (commit 7951d57):
one hash per column of the session table and of the window features for
k = 1, 3 and 5, the session statuses and targets, and the KPI totals for three
filters. New columns may be added beside the pinned ones; no pinned value may change.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from ml.features import kpis
from ml.features.sessions import session_features
from ml.features.window import window_features

PINS = json.loads((Path(__file__).parent / "data" / "bundled_pins.json").read_text(encoding="utf-8"))
FILTERS = {
    "all": kpis.SessionFilter(),
    "june": kpis.SessionFilter(start=date(2008, 6, 1), end=date(2008, 6, 30)),
    "poland_skirts": kpis.SessionFilter(country=(29,), main_category=(2,)),
}
PINNED_KPIS = (
    "sessions",
    "clicks",
    "bounces",
    "conversions",
    "revenue",
    "clicks_per_session",
    "bounce_rate",
    "conversion_rate",
    "revenue_per_converting_session",
    "revenue_per_session",
)


def column_pin(values: pd.Series) -> dict[str, str]:
    digest = hashlib.sha256(pd.util.hash_pandas_object(values, index=True).to_numpy().tobytes()).hexdigest()
    return {"dtype": str(values.dtype), "hash": digest}


@pytest.fixture(scope="module")
def sessions(bundled_clicks: pd.DataFrame) -> pd.DataFrame:
    return session_features(bundled_clicks)


def test_every_pinned_session_feature_is_unchanged(sessions: pd.DataFrame):
    changed = [c for c, pin in PINS["sessions"].items() if column_pin(sessions[c]) != pin]
    assert not changed, f"session features changed: {changed}"


@pytest.mark.parametrize("window", [1, 3, 5])
def test_every_pinned_window_feature_status_and_label_is_unchanged(bundled_clicks: pd.DataFrame, window: int):
    pins = PINS[f"window_{window}"]
    data = window_features(bundled_clicks, window)
    columns = {c: data.features[c] for c in pins if not c.startswith("__")}
    columns |= {
        "__status__": data.status.astype(str),
        "__converted__": data.converted,
        "__basket__": data.basket_value,
    }
    changed = [name for name, values in columns.items() if column_pin(values) != pins[name]]
    assert not changed, f"window {window}: changed {changed}"
    assert {k: int(v) for k, v in data.status.value_counts().items()} == pins["__status_counts__"]


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_kpi_values_are_unchanged(sessions: pd.DataFrame, name: str):
    current = kpis.kpi_summary(kpis.build_cube(sessions), FILTERS[name]).current
    for kpi in PINNED_KPIS:
        assert round(current[kpi], 9) == PINS["kpis"][name][kpi], kpi  # pinned to 9 decimals
