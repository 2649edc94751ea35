"""A large CSV parsed in chunks, into compact columns, loads exactly as the whole-file parse did.

``ml.data.reading`` parses a file of many chunks' worth of text chunk by chunk
(a UCI file's codes as small integers, its IDs dictionary-encoded) and falls
back to the whole-file parse where the chunks' inferred types differ; the
validation of the UCI file then works column by column on those compact
columns. Here the chunks are forced down to a few rows and every outcome is
compared with the whole-file parse (chunks off): the raw tables, the loaded
events (values, dtypes, row order) and every problem of a broken file, with
its rows. The validation steps rewritten for memory are compared with the
code they replaced.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.data import reading
from ml.data import schema as S
from ml.data import validation as V
from ml.data.loading import LoadedEvents, load_events
from ml.data.reading import parse_bytes, uci_compact_columns, uci_text_columns
from ml.errors import ClickstreamError
from tests.ml.test_hardening import EXAMPLES, LIMITS, UCI_HEADER, tables

N_ROWS = 3000


def uci_lines(n: int = N_ROWS) -> list[str]:
    """Valid UCI rows: 5 clicks a session, 97 products, prices 28..77, dates over April."""
    return [f"2008;4;{i % 28 + 1};{i % 5 + 1};29;{i // 5 + 1};1;A{i % 97};1;5;1;{28 + i % 50};2;1" for i in range(n)]


def uci_text(lines: list[str], header: str = UCI_HEADER, end: str = "\n") -> bytes:
    return (end.join([header, *lines]) + end).encode()


def with_cell(lines: list[str], row: int, column: int, value: str) -> list[str]:
    """``lines`` with one cell replaced (``row`` counts data rows from 0)."""
    out = list(lines)
    cells = out[row].split(";")
    cells[column] = value
    out[row] = ";".join(cells)
    return out


@pytest.fixture
def chunks(monkeypatch: pytest.MonkeyPatch):
    """Switch between chunks of a few rows and the whole-file parse."""

    def use(rows: int | None) -> None:
        monkeypatch.setattr(reading, "CSV_CHUNK_BYTES", 1)
        monkeypatch.setattr(reading, "CSV_MIN_CHUNK_ROWS", rows if rows else 10**12)

    return use


def outcome(data: bytes, **options: object) -> object:
    """The loaded events, or the refusal's problems (message, column, rows, count) and report."""
    try:
        loaded = load_events(data, max_bytes=10**9, limits=LIMITS, **options)
    except ClickstreamError as exc:
        problems = getattr(exc, "problems", ())
        return ("refused", str(exc), [(p.message, p.column, p.rows, p.count) for p in problems])
    return loaded


def assert_same(chunked: object, whole: object) -> None:
    assert type(chunked) is type(whole), (chunked, whole)
    if not isinstance(whole, LoadedEvents):
        assert chunked == whole
        return
    pd.testing.assert_frame_equal(chunked.events, whole.events, check_exact=True, check_categorical=True)
    assert list(chunked.events.dtypes) == list(whole.events.dtypes)
    for column in whole.events:
        if isinstance(whole.events[column].dtype, pd.CategoricalDtype):
            assert chunked.events[column].cat.categories.equals(whole.events[column].cat.categories)
            assert chunked.events[column].cat.categories.dtype == whole.events[column].cat.categories.dtype
            assert chunked.events[column].cat.codes.dtype == whole.events[column].cat.codes.dtype
    summary = {k: v for k, v in whole.summary().items()}
    assert chunked.summary() == summary
    assert [p.describe() for p in chunked.skipped_problems] == [p.describe() for p in whole.skipped_problems]


def both(chunks, data: bytes, rows: int = 7, **options: object) -> tuple[object, object]:
    chunks(rows)
    chunked = outcome(data, **options)
    chunks(None)
    return chunked, outcome(data, **options)


BROKEN_FILES = {
    "clean": uci_text(uci_lines()),
    "a code column numeric first and text later": uci_text(with_cell(uci_lines(), 2500, 4, "abc")),
    "an empty cell late in a code column": uci_text(with_cell(uci_lines(), 2100, 8, "")),
    "a decimal price late in the file": uci_text(with_cell(uci_lines(), 2999, 11, "12.5")),
    "a price over the limit": uci_text(with_cell(uci_lines(), 1500, 11, "1e300")),
    "a code outside the codebook late": uci_text(with_cell(uci_lines(), 2200, 6, "9")),
    "a number past int64 late": uci_text(with_cell(uci_lines(), 2600, 4, "99999999999999999999")),
    "a fractional code": uci_text(with_cell(uci_lines(), 40, 9, "5.5")),
    "session IDs with leading zeros and a plus": uci_text(
        with_cell(with_cell(uci_lines(), 2400, 5, "0000481"), 2401, 5, "+482")
    ),
    "text session IDs late": uci_text(with_cell(uci_lines(), 2800, 5, "S-561")),
    "a session ID of 19 digits": uci_text(with_cell(uci_lines(), 1000, 5, "1234567890123456789")),
    "a missing session ID": uci_text(with_cell(uci_lines(), 1200, 5, "")),
    "a blank session ID": uci_text(with_cell(uci_lines(), 1201, 5, "  ")),
    "products with spaces around them": uci_text(with_cell(with_cell(uci_lines(), 3, 7, "A3  "), 2900, 7, "A9 ")),
    "a blank product": uci_text(with_cell(uci_lines(), 2950, 7, "   ")),
    "an impossible date": uci_text(with_cell(with_cell(uci_lines(), 2700, 1, "2"), 2700, 2, "30")),
    "a repeated session and order far apart": uci_text(with_cell(with_cell(uci_lines(), 2990, 5, "1"), 2990, 3, "2")),
    "CRLF line ends and a BOM": b"\xef\xbb\xbf" + uci_text(uci_lines(), end="\r\n"),
    "a trailing delimiter on every row": uci_text([f"{line};" for line in uci_lines()]),
    "quoted products holding delimiters and a line end": uci_text(
        with_cell(with_cell(uci_lines(), 10, 7, '"A;1"'), 2000, 7, '"A\n2"')
    ),
    "an unclosed quote late": uci_text(with_cell(uci_lines(), 2980, 7, '"A1')),
    "a cut-off last line": uci_text(uci_lines())[:-20],
    "the lowercase comma form": uci_text(
        [line.replace(";", ",") for line in uci_lines()],
        header=",".join(S.LOWERCASE_HEADERS)
        .replace("page1_main_category", "page1_main_category")
        .replace(S.CLOTHING_MODEL, "page2_clothing_model"),
    ),
    "a converted label column": uci_text(
        [f"{line};{i % 2}" for i, line in enumerate(uci_lines())], header=UCI_HEADER + ";converted"
    ),
}


@pytest.mark.parametrize("name", list(BROKEN_FILES))
@pytest.mark.parametrize("rows", [3, 1000])
def test_files_parsed_in_chunks_load_or_are_refused_as_parsed_whole(chunks, name: str, rows: int) -> None:
    chunked, whole = both(chunks, BROKEN_FILES[name], rows=rows)
    assert_same(chunked, whole)


@pytest.mark.parametrize("name", ["a code column numeric first and text later", "a blank product", "clean"])
def test_skipping_invalid_rows_keeps_the_same_rows(chunks, name: str) -> None:
    chunked, whole = both(chunks, BROKEN_FILES[name], skip_invalid_rows=True)
    assert_same(chunked, whole)


def test_a_gzip_file_parsed_in_chunks_loads_as_parsed_whole(chunks) -> None:
    chunked, whole = both(chunks, gzip.compress(BROKEN_FILES["clean"]))
    assert_same(chunked, whole)
    assert isinstance(whole, LoadedEvents) and whole.input_form.startswith("gzip-compressed")


def test_a_clean_file_is_parsed_in_chunks_not_again_whole(chunks, monkeypatch: pytest.MonkeyPatch) -> None:
    """The chunked path is the one taken for a well-formed file (the comparisons above are not vacuous)."""
    chunks(50)
    whole_parses = []
    original = pd.read_csv

    def counting(*args: object, **kwargs: object) -> object:
        if kwargs.get("chunksize") is None and kwargs.get("nrows") != 0:
            whole_parses.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(reading.pd, "read_csv", counting)
    loaded = load_events(BROKEN_FILES["clean"], max_bytes=10**9)
    assert len(loaded.events) == N_ROWS and not whole_parses


def test_chunks_whose_types_differ_fall_back_to_the_whole_parse(chunks, monkeypatch: pytest.MonkeyPatch) -> None:
    chunks(50)
    fallback = []
    original = reading._parse_in_chunks
    monkeypatch.setattr(reading, "_parse_in_chunks", lambda *a: fallback.append(r := original(*a)) or r)
    problem = outcome(BROKEN_FILES["a code column numeric first and text later"])[2]
    assert fallback == [None]
    assert problem == [("not a number (e.g. 'abc')", "country", (2501,), 1)]


@pytest.mark.parametrize(
    "name", ["clean", "text session IDs late", "quoted products holding delimiters and a line end"]
)
@pytest.mark.parametrize("compact", [False, True])
def test_raw_tables_parsed_in_chunks_are_those_parsed_whole(chunks, name: str, compact: bool) -> None:
    """Without compact columns the tables are equal, dtypes and all; with them, equal as numbers and text."""
    options = {"compact_columns": uci_compact_columns} if compact else {}

    def parse() -> pd.DataFrame:
        return parse_bytes(BROKEN_FILES[name], max_bytes=10**9, source="t", **options).frame

    chunks(7)
    chunked = parse()
    chunks(None)
    whole = parse()
    chunks(None)
    plain = parse_bytes(BROKEN_FILES[name], max_bytes=10**9, source="t").frame
    assert list(chunked.columns) == list(plain.columns) and chunked.index.equals(plain.index)
    if not compact:
        pd.testing.assert_frame_equal(chunked, plain, check_exact=True)
        return
    for column in plain:
        for frame in (chunked, whole):
            if isinstance(frame[column].dtype, pd.ArrowDtype):
                pd.testing.assert_series_equal(frame[column].astype("string"), plain[column], check_exact=True)
            else:
                assert np.array_equal(frame[column].to_numpy(), plain[column].to_numpy())
    small = {"int8", "int16", "dictionary<values=large_string, indices=int32, ordered=0>[pyarrow]"}
    assert {str(chunked[c].dtype) for c in chunked} <= small


@EXAMPLES
@given(table=tables(), rows=st.sampled_from([1, 2, 3]))
def test_random_tables_load_or_are_refused_as_parsed_whole(table, rows: int) -> None:
    data, _, _ = table
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reading, "CSV_CHUNK_BYTES", 1)
        patch.setattr(reading, "CSV_MIN_CHUNK_ROWS", rows)
        chunked = outcome(data)
        patch.setattr(reading, "CSV_MIN_CHUNK_ROWS", 10**12)
        whole = outcome(data)
    assert_same(chunked, whole)


DAMAGE = ["", " ", "x", "1.5", "0", "-3", "2"]


@settings(EXAMPLES, max_examples=min(EXAMPLES.max_examples, 12))  # each example parses 3,000 rows four times
@given(
    cells=st.lists(st.tuples(st.integers(0, N_ROWS - 1), st.integers(0, 13), st.sampled_from(DAMAGE)), max_size=4),
    rows=st.sampled_from([2, 13, 400]),
)
def test_random_damage_to_a_large_uci_file_is_reported_as_parsed_whole(cells, rows: int) -> None:
    lines = uci_lines()
    for row, column, value in cells:
        lines = with_cell(lines, row, column, value)
    data = uci_text(lines)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reading, "CSV_CHUNK_BYTES", 1)
        patch.setattr(reading, "CSV_MIN_CHUNK_ROWS", rows)
        chunked = outcome(data), outcome(data, skip_invalid_rows=True)
        patch.setattr(reading, "CSV_MIN_CHUNK_ROWS", 10**12)
        whole = outcome(data), outcome(data, skip_invalid_rows=True)
    assert_same(chunked[0], whole[0])
    assert_same(chunked[1], whole[1])


# ---------------------------------------------------------------- the validation steps, against the code they replaced
def old_session_ids(series: pd.Series) -> tuple[pd.Series, np.ndarray]:
    text = series.astype("string").str.strip()
    missing = (text.isna() | (text == "")).to_numpy(dtype=bool)
    if not missing.any() and bool(text.str.fullmatch(V.INTEGER_TEXT).all()):
        return text.astype("int64"), missing
    return text, missing


def dictionary_column(values: list[str | None], chunk: int = 3) -> pd.Series:
    pieces = [pa.array(values[i : i + chunk], pa.large_string()) for i in range(0, len(values), chunk)]
    return pd.Series(pd.arrays.ArrowExtensionArray(pa.chunked_array([pc.dictionary_encode(p) for p in pieces])))


SESSION_TEXTS = [
    ["1", "2", "2", "10"],
    ["007", "+5", " 12 ", "5"],
    ["1", "", "3"],
    ["1", None, "3"],
    ["1", "  ", "3"],
    ["1234567890123456789", "1"],
    ["S-1", "S-2", " S-1"],
    ["-0", "0", "-12"],
]


@pytest.mark.parametrize("values", SESSION_TEXTS)
@pytest.mark.parametrize("form", ["string", "dictionary", "dictionary, rows dropped"])
def test_session_ids_are_those_the_old_validation_gave(values: list[str | None], form: str) -> None:
    if form == "string":
        series = pd.Series(values, dtype="string")
    else:
        kept = [*values, "dropped", *values] if "dropped" in form else values
        series = dictionary_column(kept)
        if "dropped" in form:
            series = series[np.array([v != "dropped" for v in kept])].reset_index(drop=True)
    expected, missing = old_session_ids(pd.Series([*values, *values] if "dropped" in form else values, dtype="string"))
    problems: list = []
    got = V._session_ids(series, problems)
    pd.testing.assert_series_equal(got.reset_index(drop=True), expected.reset_index(drop=True), check_names=False)
    assert bool(problems) == bool(missing.any())
    if problems:
        assert list(problems[0].positions) == list(np.flatnonzero(missing))


PRODUCT_TEXTS = [["A1", " A1", "B2 ", "a", "Z", "A1"], ["é", "e", "E ", "10", "9"], [f"P{i}" for i in range(300)]]


@pytest.mark.parametrize("values", [*PRODUCT_TEXTS, ["A", None, " ", ""]])
@pytest.mark.parametrize("dictionary", [False, True])
def test_products_are_the_categories_the_old_validation_built(values: list[str | None], dictionary: bool) -> None:
    series = dictionary_column(values) if dictionary else pd.Series(values, dtype="string")
    text = pd.Series(values, dtype="string").str.strip()
    products, blank = V._products(series)
    assert list(blank) == list((text.isna() | (text == "")).to_numpy(dtype=bool))
    if not blank.any():
        old = pd.Categorical(text.astype(str))
        pd.testing.assert_series_equal(pd.Series(products), pd.Series(old))
        assert products.categories.equals(old.categories) and products.categories.dtype == old.categories.dtype
        assert products.codes.dtype == old.codes.dtype


@pytest.mark.parametrize("seed", range(5))
def test_repeated_pairs_are_pandas_duplicated_pairs(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 2000
    orders = rng.integers(1, 40, n)
    for sessions in (
        pd.Series(rng.integers(-50, 50, n)),
        pd.Series(rng.integers(0, 2**62, n) * rng.choice([-1, 1], n)),  # too wide for one key: pandas compares
        pd.Series(rng.choice(["a", "b", " c", "007"], n), dtype="string"),
        pd.Series(rng.choice(["a", None], n), dtype="string"),
    ):
        expected = pd.DataFrame({"s": sessions, "o": orders.astype(float)}).duplicated(keep=False).to_numpy()
        for order in (orders.astype(np.int32), orders.astype(float)):
            assert np.array_equal(V._repeated_pairs(sessions, order), expected)


def test_dates_of_codes_are_the_dates_built_row_by_row() -> None:
    rng = np.random.default_rng(3)
    n = 20_000
    year = rng.integers(1990, 2101, n).astype(np.int16)
    month = rng.integers(1, 13, n).astype(np.int8)
    day = rng.integers(1, 32, n).astype(np.int8)  # 30 February, 31 April...
    dates, impossible = V._dates_of_codes(year, month, day)
    expected, expected_impossible = V._dates(year.astype(float), month.astype(float), day.astype(float))
    assert impossible.any() and np.array_equal(impossible, expected_impossible)
    assert dates.dtype == expected.dtype
    np.testing.assert_array_equal(dates, expected)  # NaT where impossible, in both


def test_validated_clicks_own_writable_arrays() -> None:
    """The clicks share no memory with the frame validated, and every array can be written, as before."""
    frame = pd.read_csv(io.BytesIO(uci_text(uci_lines(200))), sep=";")
    clicks = V.validate_frame(frame).clicks
    for column in clicks:
        values = clicks[column].array
        array = values.codes if isinstance(values, pd.Categorical) else np.asarray(values)
        assert array.flags.writeable or isinstance(values, pd.Categorical), column
        for raw in frame:
            if isinstance(frame[raw].dtype, np.dtype):
                assert not np.shares_memory(array, frame[raw].to_numpy()), (column, raw)
    for block in clicks._mgr.blocks:
        data = getattr(block.values, "_ndarray", getattr(block.values, "_codes", block.values))
        assert data.flags.writeable


def test_the_uci_text_columns_are_the_ids() -> None:
    names = UCI_HEADER.split(";")
    assert uci_text_columns(names) == {"session ID", "page 2 (clothing model)"}
    assert uci_compact_columns(names) == set(names)
    assert uci_compact_columns([*names, "converted"]) == set(names)


def test_a_blank_file_is_empty_whatever_its_whitespace(tmp_path: Path) -> None:
    for data in (b" \t\r\n\x0b\x0c" * 1000, b"\n"):
        with pytest.raises(ClickstreamError, match="the file is empty"):
            parse_bytes(data, max_bytes=10**9, source="t")
