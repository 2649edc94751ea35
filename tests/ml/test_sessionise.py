"""Sessions cut from a visitor's events by inactivity: the boundary, the option, IDs independent of row order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.data.loading import load_events
from ml.data.profiles import VISITOR_LOG, profile_from_dict, profile_to_toml
from ml.data.sessionise import cut_sessions, positions_in_sessions
from ml.data.synthetic_logs import visitor_log
from tests.ml.event_logs import multi_csv, visitor_csv, write_table

T0 = 1569924000000  # 2019-10-01 10:00:00 UTC, in ms
MINUTE = 60_000


def _times(*offsets_ms: int) -> np.ndarray:
    return (np.asarray(offsets_ms, dtype=np.int64) + T0).astype("datetime64[ms]")


def test_exactly_the_gap_apart_is_the_same_session_and_one_second_more_is_a_new_one():
    users = pd.Series(["a", "a", "a", "a"])
    times = _times(0, 30 * MINUTE, 60 * MINUTE + 1000, 90 * MINUTE + 1000)
    assert cut_sessions(users, times, 30.0).tolist() == ["a:1", "a:1", "a:2", "a:2"]


def test_each_visitor_is_cut_on_their_own():
    users = pd.Series(["b", "a", "b", "a"])
    times = _times(0, 0, 10 * MINUTE, 45 * MINUTE)  # b's 10 minutes: one session; a's 45: two
    assert cut_sessions(users, times, 30.0).tolist() == ["b:1", "a:1", "b:1", "a:2"]


def test_no_events_give_no_sessions():
    assert cut_sessions(pd.Series([], dtype="string"), np.array([], dtype="datetime64[ms]"), 30.0).tolist() == []


@pytest.mark.parametrize(
    ("gap_ms", "sessions"),
    [(30 * MINUTE, 1), (30 * MINUTE + 1000, 2), (30 * MINUTE + 1, 2), (29 * MINUTE, 1)],
    ids=["exactly 30 min", "30 min + 1 s", "30 min + 1 ms", "29 min"],
)
def test_the_boundary_through_the_visitor_log(tmp_path: Path, gap_ms: int, sessions: int):
    path = visitor_csv(tmp_path, {"timestamp": T0}, {"timestamp": T0 + gap_ms, "itemid": "502"})
    assert load_events(path).n_sessions == sessions


@pytest.mark.parametrize(("gap_minutes", "sessions"), [(10, 3), (20, 2), (45, 1)])
def test_a_custom_session_gap(tmp_path: Path, gap_minutes: float, sessions: int):
    # Pauses of 15 and 25 minutes.
    path = visitor_csv(
        tmp_path,
        {"timestamp": T0},
        {"timestamp": T0 + 15 * MINUTE, "itemid": "502"},
        {"timestamp": T0 + 40 * MINUTE, "itemid": "503"},
    )
    assert load_events(path, session_gap_minutes=gap_minutes).n_sessions == sessions
    # The same limit from a profile file.
    toml = tmp_path / "visitors.toml"
    toml.write_text(
        profile_to_toml(profile_from_dict({**_visitor_profile_dict(), "sessions": {"gap_minutes": gap_minutes}}))
    )
    assert load_events(path, profile=toml).n_sessions == sessions


def _visitor_profile_dict() -> dict:
    return {
        "name": "visitors",
        "columns": dict(VISITOR_LOG.columns),
        "event_types": {k: list(v) for k, v in VISITOR_LOG.events.items()},
        "timestamp": {"format": VISITOR_LOG.timestamp_format},
    }


def test_session_ids_count_each_visitors_sessions_in_time_order_whatever_the_row_order(tmp_path: Path):
    events = [
        {"timestamp": T0 + 3 * 60 * MINUTE, "visitorid": "42", "itemid": "3"},  # the third visit, first in the file
        {"timestamp": T0 + 60 * MINUTE, "visitorid": "42", "itemid": "2"},
        {"timestamp": T0, "visitorid": "42", "itemid": "1"},
        {"timestamp": T0 + 5 * MINUTE, "visitorid": "42", "itemid": "1"},
        {"timestamp": T0 + 60 * MINUTE, "visitorid": "9", "itemid": "2"},
    ]
    loaded = load_events(visitor_csv(tmp_path, *events))
    by_item_time = loaded.events.set_index(["product_id", "timestamp"])["session_id"]
    at = pd.Timestamp("2019-10-01 10:00")
    assert by_item_time[("1", at)] == "42:1"
    assert by_item_time[("1", at + pd.Timedelta(minutes=5))] == "42:1"
    assert by_item_time[("2", at + pd.Timedelta(hours=1))].tolist() == ["42:2", "9:1"]
    assert by_item_time[("3", at + pd.Timedelta(hours=3))] == "42:3"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_session_ids_are_the_same_for_shuffled_rows(tmp_path: Path, seed: int):
    raw = visitor_log(2000, seed=seed)

    def ids(frame: pd.DataFrame, name: str) -> pd.Series:
        events = load_events(write_table(frame, tmp_path / name)).events
        return events.set_index(["user_id", "timestamp", "product_id", "event_type"])["session_id"].sort_index()

    pd.testing.assert_series_equal(ids(raw.sample(frac=1.0, random_state=seed), "b.csv"), ids(raw, "a.csv"))


def test_cutting_recovers_the_generated_visits():
    """The synthetic visitor log's visits are days apart, so 30 idle minutes cut exactly one session per visit."""
    raw = visitor_log(3000, seed=6)
    loaded = load_events(raw.to_csv(index=False).encode())
    assert loaded.n_sessions == 3000 // 6
    assert loaded.events["session_id"].str.fullmatch(r"\d+:\d+").all()


def test_visitor_ids_with_leading_zeros_are_different_visitors(tmp_path: Path):
    path = visitor_csv(tmp_path, {"visitorid": "007"}, {"visitorid": "7"})
    assert sorted(load_events(path).events["session_id"]) == ["007:1", "7:1"]


def test_a_session_over_midnight_stays_one_session(tmp_path: Path):
    midnight = 1569974400000  # 2019-10-02 00:00:00 UTC
    path = visitor_csv(
        tmp_path, {"timestamp": midnight - 5 * MINUTE}, {"timestamp": midnight + 5 * MINUTE, "itemid": "9"}
    )
    events = load_events(path).events
    assert events["session_id"].nunique() == 1
    assert sorted(events["date"].dt.day) == [1, 2]


def test_rows_with_a_missing_session_but_a_user_are_sessionised(tmp_path: Path):
    path = multi_csv(
        tmp_path,
        {"event_time": "2019-10-01 10:00:00 UTC", "user_session": "s-1"},
        {"event_time": "2019-10-01 10:01:00 UTC", "user_session": "", "user_id": "9", "product_id": "1"},
        {"event_time": "2019-10-01 10:02:00 UTC", "user_session": "", "user_id": "9", "product_id": "2"},
        {"event_time": "2019-10-01 12:00:00 UTC", "user_session": "", "user_id": "9", "product_id": "3"},
    )
    events = load_events(path).events.sort_values("timestamp")
    assert events["session_id"].tolist() == ["s-1", "9:1", "9:1", "9:2"]
    assert events["order"].tolist() == [1, 1, 2, 1]


def test_positions_follow_the_sort_keys_with_ties_broken_by_the_next_key():
    sessions = np.array([1, 0, 0, 1, 0])
    times = np.array([5, 7, 7, 1, 3])
    kinds = np.array([0, 1, 0, 0, 2])
    assert positions_in_sessions(sessions, [times, kinds]).tolist() == [2, 3, 2, 1, 1]
    assert positions_in_sessions(np.array([], dtype=np.int64), [np.array([])]).tolist() == []
