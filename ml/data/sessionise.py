"""Cut sessions from a visitor's events by inactivity, and number events within sessions.

A visitor's events, in time order, start a new session after a gap longer
than the inactivity limit (30 minutes by default, as web analytics tools do).
Session IDs are ``<visitor>:<n>``, ``n`` counting the visitor's sessions from 1
in time order, so the same file always gives the same IDs, whatever the order
of its rows. Everything is one sort and a few vectorised passes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.data.clicks import sorted_rows
from ml.data.codes import text_from_codes


def cut_sessions(users: pd.Series, timestamps: np.ndarray, gap_minutes: float) -> pd.Series:
    """Session ID per event (``"<user>:<n>"``), a new session after more than ``gap_minutes`` idle.

    ``users`` must have no missing values; ``timestamps`` is ``datetime64``.
    """
    n = len(users)
    if n == 0:
        return pd.Series([], dtype="string")
    # The users' order does not change any ID (an ID names its user and the session's number in time order).
    user_codes, user_labels = pd.factorize(users, sort=False)
    times = timestamps.astype("datetime64[ms]").astype(np.int64)
    order, sorted_users = sorted_rows(user_codes, times)  # np.lexsort((times, user_codes)), faster
    sorted_times = times[order]
    gap_ms = gap_minutes * 60_000.0
    new_user = np.r_[True, sorted_users[1:] != sorted_users[:-1]]
    new_session = new_user | np.r_[True, np.diff(sorted_times) > gap_ms]
    session_index = np.cumsum(new_session) - 1  # global session number in (user, time) order
    # The n-th session of its user: session number minus the number of sessions before the user's first.
    first_session_of_user = session_index[new_user]
    user_block = np.cumsum(new_user) - 1
    number_within_user = session_index - first_session_of_user[user_block] + 1
    starts = np.flatnonzero(new_session)
    labels = (
        pd.Index(np.asarray(user_labels, dtype=object)[sorted_users[starts]]).astype(str)
        + ":"
        + pd.Index(number_within_user[starts]).astype(str)
    )
    per_event = np.empty(n, dtype=np.int64)
    per_event[order] = session_index
    return pd.Series(text_from_codes(per_event, labels, "string"))


def positions_in_sessions(session_codes: np.ndarray, sort_keys: list[np.ndarray]) -> np.ndarray:
    """1-based position of each event within its session, ordered by ``sort_keys`` (most significant first)."""
    n = len(session_codes)
    if n == 0:
        return np.zeros(0, dtype=np.int32)
    order = np.lexsort((*reversed(sort_keys), session_codes))
    sorted_sessions = session_codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_sessions[1:] != sorted_sessions[:-1]])
    lengths = np.diff(np.r_[starts, n])
    rank = np.arange(n) - np.repeat(starts, lengths)
    out = np.empty(n, dtype=np.int32)
    out[order] = rank + 1
    return out
