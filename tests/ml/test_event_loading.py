"""Event logs through their profiles: every field mapped right, every problem named with its column and rows."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.data import schema as S
from ml.data.codes import NONE_CODE
from ml.data.loading import load_events
from ml.data.profiles import profile_from_dict
from ml.data.synthetic_logs import multi_category_store_log, visitor_log
from ml.errors import ValidationError
from tests.ml.event_logs import (
    MULTI_COLUMNS,
    MULTI_DEFAULTS,
    ORDERS_PROFILE,
    canonical,
    csv_text,
    find,
    multi_csv,
    multi_rows,
    problems_of,
    visitor_csv,
    write_table,
)

PHONE = "electronics.smartphone"
KETTLE_ID = "2053013552226107603"  # a category with an empty category_code: the id is its label


def _by_position(events: pd.DataFrame) -> pd.DataFrame:
    return events.sort_values(["session_id", "order"]).reset_index(drop=True)


# ----------------------------------------------------------------- each profile's fields
@pytest.fixture
def shop_log(tmp_path: Path) -> Path:
    """Two sessions, rows out of order, with ties in time, an unmapped event, empty category codes and brands."""
    return multi_csv(
        tmp_path,
        {"event_time": "2019-10-01 10:06:00 UTC", "event_type": "purchase", "product_id": "007"},
        {"event_time": "2019-10-01 10:00:00 UTC", "event_type": "cart", "product_id": "007"},
        {"event_time": "2019-10-01 10:00:00 UTC", "event_type": "view", "product_id": "7", "price": "20"},
        {"event_time": "2019-10-01 10:00:00 UTC", "event_type": "view", "product_id": "007"},
        {"event_time": "2019-10-01 10:05:00 UTC", "event_type": "remove_from_cart", "product_id": "7", "price": "20"},
        {
            "event_time": "2019-10-02 11:00:00 UTC",
            "product_id": "2002",
            "category_code": "",
            "category_id": KETTLE_ID,
            "brand": "",
            "price": "0",
            "user_id": "512000002",
            "user_session": "s-2",
        },
        {
            "event_time": "2019-10-02 11:01:00 UTC",
            "event_type": " VIEW ",  # case and spaces do not matter
            "product_id": "2002",
            "category_code": "",
            "category_id": KETTLE_ID,
            "brand": "apple",
            "price": "35.99",
            "user_id": "512000002",
            "user_session": "s-2",
        },
    )


def test_multi_category_events_are_mapped_in_time_order_with_deterministic_ties(shop_log: Path):
    loaded = load_events(shop_log)
    events = _by_position(loaded.events)
    assert loaded.profile.name == "multi_category_store"
    assert events["session_id"].tolist() == ["s-1"] * 5 + ["s-2"] * 2
    assert events["order"].tolist() == [1, 2, 3, 4, 5, 1, 2]
    # At 10:00 a view comes before a cart, and "007" before "7" (text order), whatever the row order.
    assert events["product_id"].astype(str).tolist() == ["007", "7", "007", "7", "007", "2002", "2002"]
    assert events["event_type"].tolist() == [0, 0, 1, 3, 2, 0, 0]
    assert events["timestamp"].iloc[4] == pd.Timestamp("2019-10-01 10:06:00")
    assert events["date"].iloc[5] == pd.Timestamp("2019-10-02")
    assert events["price"].tolist() == [100.5, 20.0, 100.5, 20.0, 100.5, 0.0, 35.99]
    assert events["user_id"].tolist() == ["512000001"] * 5 + ["512000002"] * 2
    assert loaded.other_events == {"remove_from_cart": 1}
    assert loaded.event_counts() == {"view": 4, "cart": 1, "purchase": 1, "other": 1}
    assert loaded.label_source == "purchases"


def test_empty_category_codes_fall_back_to_the_category_id(shop_log: Path):
    loaded = load_events(shop_log)
    book = loaded.codebooks["category"]
    assert book == {NONE_CODE: "(none)", 1: PHONE, 2: KETTLE_ID}  # codes by frequency
    labels = [book[c] for c in _by_position(loaded.events)["category"]]
    assert labels == [PHONE] * 5 + [KETTLE_ID] * 2


def test_brands_are_coded_by_frequency_with_zero_for_missing(shop_log: Path):
    loaded = load_events(shop_log)
    assert loaded.dimensions == ("brand",)
    assert loaded.codebooks["brand"] == {NONE_CODE: "(none)", 1: "samsung", 2: "apple"}
    assert _by_position(loaded.events)["brand"].tolist() == [1, 1, 1, 1, 1, NONE_CODE, 2]


def test_the_canonical_dtypes_of_an_event_log(shop_log: Path):
    events = load_events(shop_log).events
    assert events["session_id"].dtype == "string" or pd.api.types.is_string_dtype(events["session_id"])
    assert events["order"].dtype == np.int32
    assert events["timestamp"].dtype == "datetime64[ms]"
    assert events["date"].dtype == "datetime64[s]"
    assert events["event_type"].dtype == np.int8
    assert isinstance(events["product_id"].dtype, pd.CategoricalDtype)
    assert events["category"].dtype == np.int32
    assert events["brand"].dtype == np.int32
    assert events["price"].dtype == np.float64


def test_visitor_log_events_carts_purchases_and_transaction_ids(tmp_path: Path):
    t0 = 1569924000000
    path = visitor_csv(
        tmp_path,
        {"timestamp": t0 + 120_000, "event": "transaction", "transactionid": "0099"},
        {"timestamp": t0, "event": "view"},
        {"timestamp": t0 + 60_000, "event": "addtocart"},
        {"timestamp": t0 + 5_000, "visitorid": "8", "event": "click", "itemid": "502"},
        {"timestamp": t0, "visitorid": "8", "itemid": "502"},
    )
    loaded = load_events(path)
    events = _by_position(loaded.events)
    assert loaded.profile.name == "visitor_log"
    assert events["session_id"].tolist() == ["7:1", "7:1", "7:1", "8:1", "8:1"]
    assert events["event_type"].tolist() == [0, 1, 2, 0, 3]
    assert events["transaction_id"].tolist()[:3] == [pd.NA, pd.NA, "0099"]
    assert events["timestamp"].iloc[2] == pd.Timestamp("2019-10-01 10:02:00")
    assert events["price"].isna().all()  # the visitor log has no prices
    assert (events["category"] == NONE_CODE).all()
    assert loaded.other_events == {"click": 1}


@pytest.mark.parametrize(
    ("sessions", "dtype_is_integer"),
    [(["123", "45"], True), (["-5", "0"], True), (["007", "7"], False), (["s1", "s2"], False)],
    ids=["integers", "signed", "leading-zeros", "text"],
)
def test_integer_session_ids_become_int64_and_others_stay_text(tmp_path: Path, sessions, dtype_is_integer: bool):
    path = multi_csv(
        tmp_path,
        {"user_session": sessions[0], "product_id": "1"},
        {"user_session": sessions[1], "product_id": "2", "user_id": "9"},
    )
    ids = load_events(path).events["session_id"]
    assert pd.api.types.is_integer_dtype(ids) is dtype_is_integer
    assert sorted(str(v) for v in ids) == sorted(sessions)  # "007" and "7" stay two sessions


def test_integer_session_ids_give_the_same_events_from_csv_and_parquet(tmp_path: Path):
    raw = pd.DataFrame(
        multi_rows({"user_session": "123"}, {"user_session": "45", "event_time": "2019-10-01 10:01:00 UTC"})
    )
    raw["user_session"] = raw["user_session"].astype("int64")
    from_csv = load_events(write_table(raw, tmp_path / "log.csv"))
    from_parquet = load_events(write_table(raw, tmp_path / "log.parquet"))
    pd.testing.assert_frame_equal(from_parquet.events, from_csv.events)
    assert from_csv.events["session_id"].dtype == np.int64


def test_leading_zeros_in_ids_survive(tmp_path: Path):
    path = multi_csv(
        tmp_path,
        {"product_id": "0042", "user_id": "0001", "user_session": "0009"},
        {"product_id": "42", "user_id": "0001", "user_session": "0009", "event_time": "2019-10-01 10:01:00 UTC"},
    )
    events = load_events(path).events
    assert sorted(events["product_id"].astype(str)) == ["0042", "42"]
    assert set(events["user_id"]) == {"0001"}
    assert set(events["session_id"]) == {"0009"}


def test_unsigned_64_bit_ids_from_parquet_are_read_as_text(tmp_path: Path):
    """Warehouse exports (ClickHouse UInt64) can hold IDs above the int64 range."""
    raw = pd.DataFrame(multi_rows({}, {"event_time": "2019-10-01 10:01:00 UTC", "product_id": "2"}))
    raw["user_session"] = np.array([2**63 + 5] * 2, dtype="uint64")
    raw["user_id"] = np.array([2**64 - 1] * 2, dtype="uint64")
    events = load_events(write_table(raw, tmp_path / "log.parquet")).events
    assert set(events["session_id"]) == {str(2**63 + 5)}
    assert set(events["user_id"]) == {str(2**64 - 1)}


def test_a_revenue_column_is_mapped_with_its_gaps(tmp_path: Path):
    path = tmp_path / "orders.csv"
    path.write_text(
        "visit,ts,kind,sku,price,revenue\n"
        "1,2019-10-01T10:00:00Z,view,A,10,\n"
        "1,2019-10-01T10:01:00Z,buy,A,10,12.5\n"
        "1,2019-10-01T10:02:00Z,buy,B,3,\n"
    )
    events = _by_position(load_events(path, profile=ORDERS_PROFILE).events)
    assert events["revenue"].tolist()[1] == 12.5
    assert np.isnan(events["revenue"].to_numpy()[[0, 2]]).all()


def test_times_a_spreadsheet_rewrote_in_iso_form_are_still_read(tmp_path: Path):
    """The multi-category export writes '... UTC'; a re-saved file may hold ISO times instead."""
    path = multi_csv(
        tmp_path,
        {"event_time": "2019-10-01 10:00:00 UTC"},
        {"event_time": "2019-10-01T10:01:00Z", "product_id": "2"},
        {"event_time": "2019-10-01 12:02:00+02:00", "product_id": "3"},
    )
    stamps = _by_position(load_events(path).events)["timestamp"]
    assert stamps.tolist() == [pd.Timestamp(f"2019-10-01 10:0{i}:00") for i in range(3)]


def test_a_numeric_yyyymmdd_date_column_is_read_as_dates_not_epochs(tmp_path: Path):
    profile = profile_from_dict(
        {"name": "daily", "columns": {"session_id": "s", "date": "day", "order": "n", "product_id": "p"}}
    )
    path = tmp_path / "daily.csv"
    path.write_text("s,day,n,p\n1,20201101,1,a\n1,20201101,2,b\n2,20201102,1,a\n")
    events = _by_position(load_events(path, profile=profile).events)
    assert events["date"].tolist() == [pd.Timestamp("2020-11-01")] * 2 + [pd.Timestamp("2020-11-02")]
    path.write_text("s,day,n,p\n1,20201101,1,a\n1,1604188800,2,b\n")
    assert find(problems_of(path, profile=profile), "day", "not a date").rows == (2,)


def test_a_fallback_works_for_any_field(tmp_path: Path):
    profile = profile_from_dict(
        {
            "name": "variants",
            "columns": {"session_id": "s", "timestamp": "t", "product_id": "variant"},
            "fallbacks": {"product_id": "parent"},
        }
    )
    path = tmp_path / "variants.csv"
    path.write_text("s,t,variant,parent\n1,2019-10-01 10:00,V1,P1\n1,2019-10-01 10:01,,P2\n1,2019-10-01 10:02, ,P3\n")
    events = _by_position(load_events(path, profile=profile).events)
    assert events["product_id"].astype(str).tolist() == ["V1", "P2", "P3"]


def test_codebook_labels_that_merge_values_give_one_code(tmp_path: Path):
    profile = profile_from_dict(
        {
            "name": "devices",
            "columns": {"session_id": "s", "timestamp": "t", "product_id": "p"},
            "dimensions": {"device": "dev"},
            "codebooks": {"device": {"1": "mobile", "01": "mobile", "2": "desktop"}},
        }
    )
    path = tmp_path / "devices.csv"
    path.write_text(
        "s,t,p,dev\n"
        + "".join(f"1,2019-10-01 10:0{i},p{i},{dev}\n" for i, dev in enumerate(["1", "01", "01", "2", "2", "tv"]))
    )
    loaded = load_events(path, profile=profile)
    # mobile 3, desktop 2, tv 1: "1" and "01" are one value, so mobile is the most frequent (code 1).
    assert loaded.codebooks["device"] == {NONE_CODE: "(none)", 1: "mobile", 2: "desktop", 3: "tv"}
    assert _by_position(loaded.events)["device"].tolist() == [1, 1, 1, 2, 2, 3]


def test_repeated_positions_in_a_session_are_reported(tmp_path: Path):
    profile = profile_from_dict(
        {"name": "ordered", "columns": {"session_id": "s", "date": "d", "order": "n", "product_id": "p"}}
    )
    path = tmp_path / "ordered.csv"
    path.write_text("s,d,n,p\n1,2020-01-01,1,a\n1,2020-01-01,2,b\n1,2020-01-01,2,c\n2,2020-01-01,2,c\n")
    problem = find(problems_of(path, profile=profile), "n", "same position appears more than once")
    assert problem.rows == (2, 3)


# ----------------------------------------------------------------- problems, with column and row numbers
BAD_ROWS = [
    ("event_time", {"event_time": "01.10.2019 25:00"}, "not a date/time"),
    ("event_time", {"event_time": ""}, "missing time"),
    ("product_id", {"product_id": ""}, "missing product ID"),
    ("product_id", {"product_id": "   "}, "missing product ID"),
    ("price", {"price": "-5"}, "negative price"),
    ("price", {"price": "1e300"}, "implausibly large price"),
    ("price", {"price": "12.50 EUR"}, "not a number"),
    ("price", {"price": "inf"}, "not a finite number"),
    ("event_type", {"event_type": ""}, "missing event type"),
    ("user_session", {"user_session": "", "user_id": ""}, "missing session ID and no user ID"),
]


def _five_events(bad: dict[str, str], at: int) -> list[dict[str, str]]:
    rows = [{"event_time": f"2019-10-01 10:0{i}:00 UTC", "product_id": str(100 + i)} for i in range(5)]
    rows[at - 1].update(bad)
    return rows


@pytest.mark.parametrize(("column", "bad", "words"), BAD_ROWS, ids=[f"{c[0]}: {c[2]}" for c in BAD_ROWS])
def test_a_bad_value_is_reported_with_its_column_and_row(tmp_path: Path, column: str, bad, words: str):
    path = multi_csv(tmp_path, *_five_events(bad, at=3))
    [problem] = problems_of(path)
    assert problem.column == column
    assert words in problem.message
    assert problem.rows == (3,)
    assert problem.count == 1


@pytest.mark.parametrize(
    ("column", "bad", "words"),
    [
        ("timestamp", {"timestamp": "soon"}, "not a number"),
        ("timestamp", {"timestamp": "-5"}, "time out of range"),
        ("timestamp", {"timestamp": ""}, "missing value"),
        ("visitorid", {"visitorid": ""}, "missing session ID and no user ID"),
        ("itemid", {"itemid": ""}, "missing product ID"),
        ("event", {"event": ""}, "missing event type"),
    ],
)
def test_a_bad_visitor_log_value_is_reported_with_its_column_and_row(tmp_path: Path, column: str, bad, words: str):
    rows = [{"timestamp": str(1569924000000 + i * 1000), "itemid": str(500 + i)} for i in range(4)]
    rows[1].update(bad)
    [problem] = problems_of(visitor_csv(tmp_path, *rows))
    assert (problem.column, problem.rows) == (column, (2,))
    assert words in problem.message


def test_repeated_events_are_listed_after_the_first(tmp_path: Path):
    same = {"event_time": "2019-10-01 10:01:00 UTC", "product_id": "101"}
    path = multi_csv(
        tmp_path,
        {"event_time": "2019-10-01 10:00:00 UTC", "product_id": "100"},
        same,
        {"event_time": "2019-10-01 10:02:00 UTC", "product_id": "102"},
        same,
        {**same, "price": "99"},  # another price, still the same event
        {**same, "event_type": "cart"},  # another event type: not a repeat
    )
    problem = find(problems_of(path), "event_time", "appears more than once")
    assert problem.rows == (4, 5)
    assert "repeats are listed" in problem.message


def test_a_repeat_of_an_invalid_row_is_not_a_repeat(tmp_path: Path):
    """The first copy is dropped for its bad price, so the second is the event, and is kept with skip."""
    path = multi_csv(
        tmp_path,
        {"event_time": "2019-10-01 10:00:00 UTC", "product_id": "100"},
        {"event_time": "2019-10-01 10:01:00 UTC", "product_id": "101", "price": "-1"},
        {"event_time": "2019-10-01 10:01:00 UTC", "product_id": "101", "price": "1"},
    )
    [problem] = problems_of(path)
    assert (problem.column, problem.rows) == ("price", (2,))
    loaded = load_events(path, skip_invalid_rows=True)
    assert loaded.skipped_rows == 1
    assert sorted(loaded.events["price"]) == [1.0, 100.5]


def test_every_problem_of_a_file_is_reported_at_once(tmp_path: Path):
    rows = _five_events({}, at=1)
    rows[0]["price"] = "-1"
    rows[2]["product_id"] = ""
    rows[4]["event_time"] = "never"
    problems = problems_of(multi_csv(tmp_path, *rows))
    assert {(p.column, p.rows) for p in problems} == {("price", (1,)), ("product_id", (3,)), ("event_time", (5,))}


# ----------------------------------------------------------------- skipping invalid rows
@pytest.fixture
def messy_log(tmp_path: Path) -> Path:
    rows = [{"event_time": f"2019-10-01 10:0{i}:00 UTC", "product_id": str(100 + i)} for i in range(7)]
    rows[1]["price"] = "abc"  # row 2
    rows[3].update(product_id="", price="-3")  # row 4: two problems, one row
    rows[5] = dict(rows[4])  # row 6 repeats row 5
    return multi_csv(tmp_path, *rows)


def test_skip_invalid_rows_drops_exactly_the_reported_rows_and_counts_them(messy_log: Path):
    reported = problems_of(messy_log)
    rows = sorted({r for p in reported for r in p.rows})
    assert rows == [2, 4, 6]
    loaded = load_events(messy_log, skip_invalid_rows=True)
    assert loaded.skipped_rows == 3
    assert sorted(loaded.events["product_id"].astype(str)) == ["100", "102", "104", "106"]
    assert [p.describe() for p in loaded.skipped_problems] == [p.describe() for p in reported]
    assert loaded.summary()["skipped_rows"] == 3


@pytest.mark.parametrize(
    "case",
    ["no event value maps", "a profile column is missing", "every row is invalid"],
)
def test_a_file_level_problem_still_refuses_with_skip(tmp_path: Path, case: str):
    if case == "no event value maps":
        path = multi_csv(tmp_path, {"event_type": "click"}, {"event_type": "click", "product_id": "2"})
        words = "no event value means view, cart or purchase"
    elif case == "a profile column is missing":
        path = tmp_path / "events.csv"
        path.write_text(csv_text(multi_rows({}), [c for c in MULTI_COLUMNS if c != "price"]))
        words = "not in the source"
    else:
        path = multi_csv(tmp_path, {"price": "-1"}, {"price": "-2", "product_id": "2"})
        words = "every row has a problem"
    with pytest.raises(ValidationError) as info:
        load_events(path, skip_invalid_rows=True)
    assert any(words in p.message for p in info.value.problems), info.value.report()


@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
def test_a_cut_off_last_line_is_refused_and_dropped_with_skip(tmp_path: Path, line_end: str):
    good = csv_text(multi_rows({}, {"event_time": "2019-10-01 10:01:00 UTC", "product_id": "2"}), MULTI_COLUMNS)
    # The download stopped after the user ID: 8 of 9 fields, a row that would pass, its session cut from the user.
    cut = ",".join(MULTI_DEFAULTS[c] for c in MULTI_COLUMNS[:8])
    path = tmp_path / "cut.csv"
    path.write_bytes((good.replace("\n", line_end) + cut).encode())

    [problem] = problems_of(path)
    assert "cut off" in problem.message
    assert "8 of the header's 9 fields" in problem.message
    assert problem.rows == (3,)

    loaded = load_events(path, skip_invalid_rows=True)
    assert loaded.skipped_rows == 1
    assert len(loaded.events) == 2


def test_a_last_line_without_a_line_ending_but_whole_is_kept(tmp_path: Path):
    text = csv_text(multi_rows({}, {"event_time": "2019-10-01 10:01:00 UTC", "product_id": "2"}), MULTI_COLUMNS)
    path = tmp_path / "no-newline.csv"
    path.write_text(text.rstrip("\n"))
    assert len(load_events(path).events) == 2


# ----------------------------------------------------------------- row order and codebooks
@pytest.mark.parametrize("make", [multi_category_store_log, visitor_log], ids=["multi_category_store", "visitor_log"])
@pytest.mark.parametrize("container", ["csv", "parquet"])
def test_shuffled_rows_give_identical_canonical_events_and_session_ids(tmp_path: Path, make, container: str):
    raw = make(3000, seed=8)
    first = load_events(write_table(raw, tmp_path / f"a.{container}"))
    shuffled = load_events(write_table(raw.sample(frac=1.0, random_state=4), tmp_path / f"b.{container}"))
    pd.testing.assert_frame_equal(canonical(shuffled), canonical(first))
    assert shuffled.codebooks == first.codebooks
    assert sorted(shuffled.events["session_id"].unique()) == sorted(first.events["session_id"].unique())


def test_codebooks_passed_in_code_a_second_file_like_the_first(tmp_path: Path):
    first = load_events(
        multi_csv(
            tmp_path,
            *(
                {"brand": b, "product_id": str(i), "event_time": f"2019-10-01 10:0{i}:00 UTC"}
                for i, b in enumerate(["samsung"] * 3 + ["apple"])
            ),
            name="first.csv",
        )
    )
    second_rows = [
        {"brand": b, "category_code": c, "product_id": str(i), "event_time": f"2019-10-02 10:0{i}:00 UTC"}
        for i, (b, c) in enumerate([("apple", PHONE), ("apple", "kids.toys"), ("lg", "kids.toys"), ("samsung", PHONE)])
    ]
    path = multi_csv(tmp_path, *second_rows, name="second.csv")
    alone = load_events(path)
    coded = load_events(path, codebooks=first.codebooks)

    assert alone.codebooks["brand"][1] == "apple"  # on its own, the second file's most frequent brand
    assert coded.codebooks == first.codebooks
    brands = _by_position(coded.events)["brand"].tolist()
    assert brands == [2, 2, NONE_CODE, 1]  # apple and samsung as the first file coded them; lg unseen -> 0
    categories = _by_position(coded.events)["category"].tolist()
    assert categories == [1, NONE_CODE, NONE_CODE, 1]


# ----------------------------------------------------------------- the session gap option
@pytest.mark.parametrize("gap", [0, -5, 1441, float("nan")])
def test_a_session_gap_outside_a_day_is_refused(tmp_path: Path, gap: float):
    path = visitor_csv(tmp_path, {})
    with pytest.raises(ValidationError) as info:
        load_events(path, session_gap_minutes=gap)
    assert info.value.problems[0].column == "--session-gap"


def test_a_session_gap_on_a_log_that_names_its_sessions_warns(shop_log: Path, tmp_path: Path):
    assert load_events(shop_log).warnings == ()
    assert any("session gap has no effect" in w for w in load_events(shop_log, session_gap_minutes=10).warnings)


def test_raw_bytes_and_a_path_give_the_same_events(shop_log: Path):
    from_bytes = load_events(io.BytesIO(shop_log.read_bytes()).getvalue())
    pd.testing.assert_frame_equal(from_bytes.events, load_events(shop_log).events)
    assert from_bytes.source == "upload"
    assert S.TIMESTAMP in from_bytes.events


def test_empty_rows_are_one_problem_not_one_per_column(tmp_path: Path):
    """A spreadsheet's trailing ',,,,,,,,' lines."""
    path = tmp_path / "excel.csv"
    path.write_text(csv_text(multi_rows({}), MULTI_COLUMNS) + ",,,,,,,,\n,,,,,,,,\n")
    [problem] = problems_of(path)
    assert (problem.column, problem.rows) == (None, (2, 3))
    assert "empty row" in problem.message
    assert load_events(path, skip_invalid_rows=True).skipped_rows == 2


@pytest.mark.parametrize("zone", ["UTC", None, "Europe/Warsaw"], ids=["utc", "naive", "offset"])
def test_typed_parquet_times_give_the_same_events_as_the_text_form(tmp_path: Path, zone: str | None):
    raw = multi_category_store_log(300, seed=4)
    expected = load_events(write_table(raw, tmp_path / "text.csv"))
    stamps = pd.to_datetime(raw["event_time"].str.removesuffix(" UTC"))
    typed = raw.assign(event_time=stamps.dt.tz_localize("UTC").dt.tz_convert(zone) if zone else stamps)
    pd.testing.assert_frame_equal(load_events(write_table(typed, tmp_path / "typed.parquet")).events, expected.events)


def test_long_integer_ids_with_nulls_in_parquet_keep_every_digit(tmp_path: Path):
    """Written by a tool without pandas' metadata, int64 with nulls would come back as float64 and merge IDs."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = multi_rows(*({"event_time": f"2019-10-01 10:0{i}:00 UTC", "product_id": str(i)} for i in range(3)))
    raw = pd.DataFrame(rows).drop(columns=["category_id"]).assign(category_code=[None, None, "x"])
    ids = pa.array([2053013552226107603, 2053013552226107604, None], pa.int64())  # above 2**53, a null
    table = pa.Table.from_pandas(raw, preserve_index=False).append_column("category_id", ids)
    path = tmp_path / "warehouse.parquet"
    pq.write_table(table.replace_schema_metadata(None), path)
    labels = set(load_events(path).codebooks["category"].values())
    assert labels == {"(none)", "2053013552226107603", "2053013552226107604", "x"}
