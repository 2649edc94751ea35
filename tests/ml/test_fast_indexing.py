"""The fast event index (packed sorts, lazy columns, threads) gives exactly what the reference algorithms give.

The references are the implementations the fast ones replaced: ``pd.factorize``
then ``np.lexsort`` for the session order, ``duplicated`` for re-views,
``np.unique`` for per-session pairs and a score matrix for dominant codes. They
run here on small shuffled logs; the features of a shuffled log must equal those
of the same log in order.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from ml.data import schema as S
from ml.data.clicks import (
    distinct_per_session,
    dominant_code,
    dominant_code_sparse,
    first_appearance_codes,
    index_clicks,
    sorted_rows,
)
from ml.data.loading import load_events
from ml.data.sessionise import cut_sessions
from ml.data.synthetic_logs import multi_category_store_log, visitor_log
from ml.data.threads import ENV_FEATURE_THREADS
from ml.features.sessions import session_features
from ml.features.window import window_features


def shuffled(frame: pd.DataFrame, seed: int = 7) -> pd.DataFrame:
    return frame.take(np.random.default_rng(seed).permutation(len(frame))).reset_index(drop=True)


@pytest.fixture(scope="module")
def uci_shuffled(small_clicks: pd.DataFrame) -> pd.DataFrame:
    return shuffled(small_clicks)


@pytest.fixture(scope="module")
def store_events() -> pd.DataFrame:
    raw = multi_category_store_log(6_000, seed=3)
    return load_events(raw.to_csv(index=False).encode(), name="store.csv").events


# ---------------------------------------------------------------- references
def reference_index(clicks: pd.DataFrame) -> dict[str, np.ndarray]:
    codes, uniques = pd.factorize(clicks[S.SESSION_ID], sort=False)
    perm = np.lexsort((clicks[S.ORDER].to_numpy(), codes))
    ordered = clicks.take(perm).reset_index(drop=True)
    codes = codes[perm]
    starts = np.flatnonzero(np.r_[True, np.diff(codes) != 0])
    lengths = np.diff(np.r_[starts, len(codes)])
    session = codes.astype(np.int64)
    product = ordered[S.PRODUCT].cat.codes.to_numpy().astype(np.int64)
    views = ordered[S.EVENT_TYPE].to_numpy() == S.EVENT_VIEW
    key = session * max(len(ordered[S.PRODUCT].cat.categories), 1) + product
    review = np.zeros(len(key), dtype=bool)
    review[views] = pd.Series(key[views]).duplicated(keep="first").to_numpy()
    return {
        "rows": perm,
        "session_ids": np.asarray(uniques),
        "session": session,
        "starts": starts,
        "rank": np.arange(len(codes)) - np.repeat(starts, lengths),
        "product_code": product,
        "is_review": review,
    }


def reference_dominant(session: np.ndarray, rank: np.ndarray, codes: np.ndarray, n_sessions: int) -> np.ndarray:
    """Most frequent code per session, ties to the code seen first, by a plain score per (session, code)."""
    frame = pd.DataFrame({"s": session, "c": codes.astype(np.int64), "r": rank})
    per = frame.groupby(["s", "c"]).agg(n=("r", "size"), first=("r", "min")).reset_index()
    per = per.sort_values(["s", "n", "first"], ascending=[True, False, True]).drop_duplicates("s")
    out = np.zeros(n_sessions, dtype=np.int64)
    out[per["s"].to_numpy()] = per["c"].to_numpy()
    return out


# ---------------------------------------------------------------- the index
@pytest.mark.parametrize("log", ["uci", "store"])
def test_the_index_of_a_shuffled_log_is_the_reference_index(log, uci_shuffled, store_events):
    clicks = uci_shuffled if log == "uci" else shuffled(store_events)
    expected = reference_index(clicks)
    indexed = index_clicks(clicks)
    np.testing.assert_array_equal(indexed.source_rows, expected["rows"])
    np.testing.assert_array_equal(np.asarray(indexed.session_ids), expected["session_ids"])
    for name in ("session", "starts", "rank", "product_code", "is_review"):
        np.testing.assert_array_equal(getattr(indexed, name), expected[name], err_msg=name)
    pd.testing.assert_frame_equal(indexed.clicks, clicks.take(expected["rows"]).reset_index(drop=True))
    for column in (S.PRICE, S.CATEGORY, S.PRODUCT, S.DATE):
        np.testing.assert_array_equal(indexed.column(column), indexed.clicks[column].to_numpy(), err_msg=column)


def test_repeated_positions_within_a_session_keep_the_reference_index(uci_shuffled):
    """A session whose positions are not 1..length cannot take the counting sort: the sorted path gives the same."""
    clicks = uci_shuffled.copy()
    first = clicks[S.SESSION_ID].iloc[0]
    rows = np.flatnonzero(clicks[S.SESSION_ID].to_numpy() == first)
    clicks.loc[rows[-1], S.ORDER] = clicks.loc[rows[0], S.ORDER]  # a tie: row order decides
    expected = reference_index(clicks)
    indexed = index_clicks(clicks)
    np.testing.assert_array_equal(indexed.source_rows, expected["rows"])
    np.testing.assert_array_equal(np.asarray(indexed.session_ids), expected["session_ids"])
    np.testing.assert_array_equal(indexed.starts, expected["starts"])


def test_sorted_logs_are_not_copied(small_clicks):
    indexed = index_clicks(small_clicks)
    assert indexed.source_rows is None
    np.testing.assert_array_equal(indexed.session_ids, pd.unique(small_clicks[S.SESSION_ID]))


@pytest.mark.parametrize(
    ("n", "groups", "order"),
    [(2_000, 40, 12), (50_000, 9_000, 300), (30_000, 500, 10**13), (20_000, 10**6, 2**40), (5, 1, 1)],
)
def test_sorted_rows_is_a_stable_lexsort(n, groups, order):
    rng = np.random.default_rng(n)
    g = rng.integers(-groups // 2, groups // 2 + 1, n)
    o = rng.integers(0, order, n)
    o[::5] = o[0]  # ties keep row order
    rows, sorted_groups = sorted_rows(g, o)
    expected = np.lexsort((o, g))
    np.testing.assert_array_equal(rows, expected)
    np.testing.assert_array_equal(sorted_groups, g[expected])


@pytest.mark.parametrize("defect", [None, "tie", "gap"])
def test_sorted_rows_of_positions_within_groups_is_a_stable_lexsort(defect):
    """Positions 1..length per group take the counting sort; a tie or a gap sends them to the packed sort."""
    rng = np.random.default_rng(5)
    lengths = rng.integers(1, 9, 3_000)
    lengths[0] = 4
    g = np.repeat(rng.permutation(len(lengths)) * 2 - 1_000, lengths)  # gaps between the group values
    o = (np.arange(len(g)) - np.repeat(np.cumsum(lengths) - lengths, lengths) + 3).astype(np.int32)
    if defect == "tie":
        o[1] = o[0]
    elif defect == "gap":
        o[0] += 100
    perm = rng.permutation(len(g))
    g, o = g[perm], o[perm]
    rows, sorted_groups = sorted_rows(g, o)
    expected = np.lexsort((o, g))
    np.testing.assert_array_equal(rows, expected)
    np.testing.assert_array_equal(sorted_groups, g[expected])


@pytest.mark.parametrize("spread", [10, 10**15])  # a lookup table, or pd.factorize
def test_first_appearance_codes_are_factorize(spread):
    values = np.random.default_rng(1).integers(0, spread, 5_000) * 3 + 11
    codes, uniques = first_appearance_codes(values)
    expected_codes, expected_uniques = pd.factorize(values, sort=False)
    np.testing.assert_array_equal(codes, expected_codes)
    np.testing.assert_array_equal(uniques, expected_uniques)


def test_dominant_codes_follow_the_tie_rule(uci_shuffled, store_events):
    indexed = index_clicks(uci_shuffled)
    for column, n_codes in ((S.CATEGORY, 4), (S.COLOUR, 14)):
        codes = indexed.column(column)
        expected = reference_dominant(indexed.session, indexed.rank, codes, indexed.n_sessions)
        np.testing.assert_array_equal(dominant_code(indexed, codes, n_codes), expected, err_msg=column)
        np.testing.assert_array_equal(dominant_code_sparse(indexed, codes), expected, err_msg=column)
    store = index_clicks(shuffled(store_events))
    brand = store.column("brand")
    expected = reference_dominant(store.session, store.rank, brand, store.n_sessions)
    np.testing.assert_array_equal(dominant_code_sparse(store, brand), expected)
    distinct = pd.DataFrame({"s": store.session, "p": store.product_code}).drop_duplicates()["s"]
    np.testing.assert_array_equal(
        distinct_per_session(store, store.product_code), np.bincount(distinct, minlength=store.n_sessions)
    )


# ---------------------------------------------------------------- features
@pytest.mark.parametrize("log", ["uci", "store"])
def test_features_of_a_shuffled_log_equal_those_in_order(log, small_clicks, store_events):
    in_order = small_clicks if log == "uci" else store_events
    mixed = shuffled(in_order, seed=11)
    sessions = session_features(mixed)
    expected = session_features(in_order)
    pd.testing.assert_frame_equal(sessions.loc[expected.index], expected, check_exact=True)
    window, reference = window_features(mixed, 3), window_features(in_order, 3)
    pd.testing.assert_frame_equal(window.features.loc[reference.features.index], reference.features, check_exact=True)
    pd.testing.assert_series_equal(window.status.loc[reference.status.index], reference.status)
    pd.testing.assert_series_equal(window.converted.loc[reference.converted.index], reference.converted)


@pytest.mark.parametrize("log", ["uci", "store"])
def test_one_thread_and_two_give_the_same_features(log, uci_shuffled, store_events, monkeypatch):
    clicks = uci_shuffled if log == "uci" else shuffled(store_events)
    monkeypatch.setenv(ENV_FEATURE_THREADS, "1")
    one = session_features(clicks), window_features(clicks, 3).features
    monkeypatch.setenv(ENV_FEATURE_THREADS, "2")
    two = session_features(clicks), window_features(clicks, 3).features
    for a, b in zip(one, two, strict=True):
        pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_sessionising_does_not_depend_on_row_order():
    raw = visitor_log(4_000, seed=2)
    users = raw["visitorid"].astype("string")
    stamps = pd.to_datetime(raw["timestamp"].to_numpy(), unit="ms").to_numpy()
    sessions = cut_sessions(users, stamps, 30.0)
    perm = np.random.default_rng(5).permutation(len(raw))
    mixed = cut_sessions(users.iloc[perm].reset_index(drop=True), stamps[perm], 30.0)
    np.testing.assert_array_equal(mixed.to_numpy(), sessions.to_numpy()[perm])
    # The reference: a stable sort by (user, time), a new session after more than 30 idle minutes.
    frame = pd.DataFrame({"u": users, "t": stamps}).sort_values(["u", "t"], kind="stable")
    user = frame["u"].to_numpy(dtype=object)
    new = np.r_[True, user[1:] != user[:-1]] | frame["t"].diff().gt(pd.Timedelta(minutes=30)).to_numpy()
    number = pd.Series(new.astype(int), index=frame.index).groupby(user).cumsum()
    expected = (frame["u"] + ":" + number.astype(str)).reindex(raw.index)
    np.testing.assert_array_equal(sessions.to_numpy(), expected.to_numpy())


def test_the_status_column_is_the_text_column_pandas_would_build(uci_shuffled):
    """Built from codes through Arrow, the status column equals a Series of the status strings."""
    from ml.features.labels import session_targets
    from ml.features.window import window_status

    indexed = index_clicks(uci_shuffled)
    data = window_features(indexed, 3)
    plain = pd.Series(window_status(indexed, session_targets(indexed), 3), index=indexed.session_ids, name="status")
    pd.testing.assert_series_equal(data.status, plain, check_exact=True)
    assert set(plain) == {"scored", "too short", "already converted in window"}


def test_prefetched_one_byte_columns_are_the_sorted_columns(uci_shuffled):
    """Columns gathered while indexing (one-byte codes and prices) and by prefetch are each column in session order."""
    indexed = index_clicks(uci_shuffled)
    small = [S.CATEGORY, S.COLOUR, S.PAGE, S.PRICE_2, S.PHOTOGRAPHY, S.LOCATION, S.COUNTRY, S.MONTH, S.DAY]
    assert {key[1] for key in indexed._cache if key[0] == "column"} == {*small, S.PRICE}  # gathered while indexing
    indexed._cache.clear()
    indexed.prefetch([*small, S.PRICE, S.PRODUCT, "no such column"])
    assert {key[1] for key in indexed._cache if key[0] == "column"} == set(small)  # the one-byte columns only
    expected = uci_shuffled.take(indexed.source_rows).reset_index(drop=True)
    for name in [*small, S.PRICE, S.PRODUCT]:
        got = indexed.column(name)
        np.testing.assert_array_equal(got, expected[name].to_numpy(), err_msg=name)
        assert got.dtype == expected[name].to_numpy().dtype, name


@pytest.mark.parametrize("jitter", [0, 1_000])
def test_sorted_rows_of_times_in_export_order_is_a_stable_lexsort(jitter):
    """Millisecond times in time order, give or take a second, with ties: the merge-sort path, same rows."""
    rng = np.random.default_rng(jitter)
    n = 40_000
    times = 1_700_000_000_000 + np.sort(rng.integers(0, 10**9, n)) + rng.integers(0, jitter + 1, n)
    times[1::7] = times[::7][: len(times[1::7])]  # ties keep row order
    users = rng.integers(0, 3_000, n)
    rows, sorted_users = sorted_rows(users, times)
    expected = np.lexsort((times, users))
    np.testing.assert_array_equal(rows, expected)
    np.testing.assert_array_equal(sorted_users, users[expected])


@pytest.mark.parametrize("dtype", ["string", "str", "string[python]", "category"])
def test_text_from_codes_is_the_labels_taken_by_code(dtype):
    from ml.data.codes import text_from_codes

    labels = np.asarray(["b:1", "a:2", "scored", "é"], dtype=object)
    codes = np.random.default_rng(2).integers(0, len(labels), 500)
    got = text_from_codes(codes, labels, dtype)
    expected = pd.array(labels[codes], dtype=dtype)
    pd.testing.assert_extension_array_equal(got, expected)


@pytest.mark.parametrize("max_rows", [1, 7, 1_000, 10**9])
def test_session_slices_cover_every_session_once(uci_shuffled, max_rows):
    """Slices of consecutive sessions, each from a session start, together exactly the index's sessions and rows."""
    indexed = index_clicks(uci_shuffled)
    parts = indexed.session_slices(max_rows)
    assert parts[0].sessions.start == 0 and parts[-1].sessions.stop == indexed.n_sessions
    assert parts[0].rows.start == 0 and parts[-1].rows.stop == len(indexed.session)
    for before, after in itertools.pairwise(parts):
        assert before.sessions.stop == after.sessions.start and before.rows.stop == after.rows.start
    for part in parts:
        np.testing.assert_array_equal(part.session + part.sessions.start, indexed.session[part.rows])
        np.testing.assert_array_equal(part.starts + part.rows.start, indexed.starts[part.sessions])
        assert part.n_sessions == 1 or part.rows.stop - part.rows.start < max_rows + int(part.lengths.max())
    if max_rows >= len(indexed.session):
        assert len(parts) == 1


def test_sliced_session_table_is_the_whole_one(uci_shuffled, monkeypatch):
    """The UCI session table's count columns are the same whatever the slice size."""
    import ml.features.sessions as sessions_module

    whole = session_features(index_clicks(uci_shuffled))
    monkeypatch.setattr(sessions_module, "SLICE_ROWS", 333)
    sliced = session_features(index_clicks(uci_shuffled))
    pd.testing.assert_frame_equal(sliced, whole, check_exact=True)
