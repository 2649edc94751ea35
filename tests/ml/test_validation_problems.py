"""Validation: every kind of bad input is refused with a ValidationError naming column and rows.

Each case writes a real broken file to ``tmp_path`` and loads it by path, the
way the CLI and the dashboard do. Row numbers are 1-based data rows (the header
is not counted).
"""

from __future__ import annotations

import gzip
import io
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
import pytest

from ml.config import ENV_MAX_INPUT_MB, MEGABYTE, get_settings
from ml.data import schema as S
from ml.data.loading import load_events
from ml.data.validation import validate_frame
from ml.errors import Problem, ValidationError

COLUMNS = (
    "year",
    "month",
    "day",
    "order",
    "country",
    "session_id",
    "page1_main_category",
    "page2_clothing_model",
    "colour",
    "location",
    "model_photography",
    "price",
    "price_2",
    "page",
)
HEADER = ",".join(COLUMNS)
UCI_COLUMNS = (
    "year",
    "month",
    "day",
    "order",
    "country",
    "session ID",
    "page 1 (main category)",
    "page 2 (clothing model)",
    "colour",
    "location",
    "model photography",
    "price",
    "price 2",
    "page",
)
GOOD = {
    "year": "2008",
    "month": "4",
    "day": "1",
    "order": "1",
    "country": "29",
    "session_id": "1",
    "page1_main_category": "1",
    "page2_clothing_model": "A13",
    "colour": "1",
    "location": "5",
    "model_photography": "1",
    "price": "28",
    "price_2": "2",
    "page": "1",
}


# ----------------------------------------------------------------- helpers


def good_rows(n: int) -> list[dict[str, str]]:
    """``n`` valid clicks: sessions of three clicks each, so (session, order) pairs are unique."""
    return [{**GOOD, "session_id": str(i // 3 + 1), "order": str(i % 3 + 1)} for i in range(n)]


def rows_with(n: int, bad: dict[int, dict[str, str]]) -> list[dict[str, str]]:
    """``n`` valid clicks where data row ``r`` (1-based) gets the values in ``bad[r]``."""
    rows = good_rows(n)
    for row_number, values in bad.items():
        rows[row_number - 1].update(values)
    return rows


def csv_bytes(rows: Sequence[dict[str, str]], columns: Sequence[str] = COLUMNS, *, sep: str = ",") -> bytes:
    lines = [sep.join(columns)] + [sep.join(row.get(col, "") for col in columns) for row in rows]
    return ("\n".join(lines) + "\n").encode("utf-8")


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def problems_of(path: Path | bytes, **kwargs: object) -> tuple[Problem, ...]:
    with pytest.raises(ValidationError) as info:
        load_events(path, **kwargs)
    error = info.value
    assert error.problems, "a ValidationError must carry at least one problem"
    return error.problems


def only_problem(path: Path | bytes, **kwargs: object) -> Problem:
    problems = problems_of(path, **kwargs)
    assert len(problems) == 1, "\n".join(p.describe() for p in problems)
    return problems[0]


def find(problems: Sequence[Problem], column: str | None, text: str) -> Problem:
    """The one problem on ``column`` whose message contains ``text``."""
    hits = [p for p in problems if p.column == column and text in p.message]
    listing = "\n".join(p.describe() for p in problems)
    assert len(hits) == 1, f"expected one problem on {column!r} containing {text!r}, got:\n{listing}"
    return hits[0]


# ----------------------------------------------------------------- missing columns

MISSING_COLUMN_CASES = [
    ("colour", "colour", ("'colour'",)),
    ("session_id", "session_id", ("'session ID'", "'session_id'")),
    ("page2_clothing_model", "clothing_model", ("'page 2 (clothing model)'", "'page2_clothing_model'")),
    ("price", "price", ("'price'",)),
    ("year", "year", ("'year'",)),
]


@pytest.mark.parametrize(
    ("dropped", "canonical", "named_as"),
    MISSING_COLUMN_CASES,
    ids=[case[0] for case in MISSING_COLUMN_CASES],
)
def test_missing_column_is_reported_by_name(
    tmp_path: Path, dropped: str, canonical: str, named_as: tuple[str, ...]
) -> None:
    columns = [c for c in COLUMNS if c != dropped]
    path = write(tmp_path, "missing.csv", csv_bytes(good_rows(4), columns))

    problem = only_problem(path)

    assert "missing column" in problem.message
    assert problem.column in {canonical, dropped}
    for header in named_as:
        assert header in problem.message
    assert problem.rows == ()


def test_several_missing_columns_are_each_reported(tmp_path: Path) -> None:
    columns = [c for c in COLUMNS if c not in {"colour", "location", "page"}]
    path = write(tmp_path, "missing.csv", csv_bytes(good_rows(4), columns))
    problems = problems_of(path)
    assert sorted(p.column for p in problems) == ["colour", "location", "page"]
    assert all("missing column" in p.message for p in problems)


# ----------------------------------------------------------------- bad values

NON_NUMERIC_CASES = [
    ("colour", "red"),
    ("country", "PL"),
    ("page", "two"),
    ("order", "first"),
    ("month", "April"),
    ("page1_main_category", "skirts"),
    ("price", "28 zł"),
    ("price", "1,5"),
]


@pytest.mark.parametrize(("column", "value"), NON_NUMERIC_CASES, ids=[f"{c}={v}" for c, v in NON_NUMERIC_CASES])
def test_non_numeric_value_is_reported_with_its_rows(tmp_path: Path, column: str, value: str) -> None:
    rows = rows_with(8, {3: {column: value}, 7: {column: value}})
    # ';'-separated, so that '1,5' is one field: a decimal comma, not two fields
    path = write(tmp_path, "text.csv", csv_bytes(rows, sep=";"))

    problem = only_problem(path)

    assert problem.column == column
    assert problem.message.startswith("not a number")
    assert repr(value) in problem.message
    assert problem.rows == (3, 7)
    assert problem.count == 2


@pytest.mark.parametrize(("column", "value"), [("colour", "1.5"), ("page", "2.25"), ("order", "0.5")])
def test_fractional_code_is_reported(tmp_path: Path, column: str, value: str) -> None:
    path = write(tmp_path, "fraction.csv", csv_bytes(rows_with(5, {4: {column: value}})))
    problem = find(problems_of(path), column, "not a whole number")
    assert problem.rows == (4,)


OUT_OF_RANGE_CASES = [
    ("colour", "99", "1..14"),
    ("colour", "0", "1..14"),
    ("country", "0", "1..47"),
    ("country", "48", "1..47"),
    ("page", "6", "1..5"),
    ("page", "0", "1..5"),
    ("page1_main_category", "5", "1..4"),
    ("location", "7", "1..6"),
    ("model_photography", "3", "1..2"),
    ("price_2", "0", "1..2"),
    ("order", "0", "1..1000000"),
    ("order", "-1", "1..1000000"),
    ("month", "13", "1..12"),
    ("month", "0", "1..12"),
    ("day", "32", "1..31"),
    ("day", "0", "1..31"),
    ("year", "1899", "1990..2100"),
]


@pytest.mark.parametrize(
    ("column", "value", "codebook_range"),
    OUT_OF_RANGE_CASES,
    ids=[f"{c}={v}" for c, v, _ in OUT_OF_RANGE_CASES],
)
def test_code_outside_the_codebook_range_is_reported(
    tmp_path: Path, column: str, value: str, codebook_range: str
) -> None:
    path = write(tmp_path, "range.csv", csv_bytes(rows_with(6, {2: {column: value}, 5: {column: value}})))

    problem = only_problem(path)

    assert problem.column == column
    assert "outside the codebook's range" in problem.message
    assert codebook_range in problem.message
    assert problem.rows == (2, 5)
    assert problem.count == 2


def test_codes_at_the_ends_of_the_codebook_ranges_are_accepted(tmp_path: Path) -> None:
    low = {"country": "1", "colour": "1", "page": "1", "location": "1", "page1_main_category": "1"}
    high = {"country": "47", "colour": "14", "page": "5", "location": "6", "page1_main_category": "4"}
    path = write(tmp_path, "edges.csv", csv_bytes(rows_with(3, {1: low, 3: high})))
    clicks = load_events(path).clicks
    assert clicks[S.COUNTRY].tolist() == [1, 29, 47]
    assert clicks[S.COLOUR].tolist() == [1, 1, 14]


@pytest.mark.parametrize("price", ["0", "-5", "-0.01", "0.0"])
def test_non_positive_price_is_reported(tmp_path: Path, price: str) -> None:
    path = write(tmp_path, "price.csv", csv_bytes(rows_with(5, {4: {"price": price}})))
    problem = only_problem(path)
    assert problem.column == "price"
    assert "price must be positive" in problem.message
    assert problem.rows == (4,)


def test_small_positive_price_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, "price.csv", csv_bytes(rows_with(2, {2: {"price": "0.01"}})))
    assert load_events(path).clicks[S.PRICE].tolist() == [28.0, 0.01]


IMPOSSIBLE_DATES = [("2008", "4", "31"), ("2008", "2", "30"), ("2007", "2", "29"), ("2008", "6", "31")]


@pytest.mark.parametrize(("year", "month", "day"), IMPOSSIBLE_DATES, ids=["-".join(d) for d in IMPOSSIBLE_DATES])
def test_impossible_date_is_reported_on_the_day_column(tmp_path: Path, year: str, month: str, day: str) -> None:
    date = {"year": year, "month": month, "day": day}
    path = write(tmp_path, "date.csv", csv_bytes(rows_with(6, {3: date, 6: date})))
    problem = only_problem(path)
    assert problem.column == "day"
    assert "impossible date" in problem.message
    assert problem.rows == (3, 6)


def test_leap_day_2008_is_a_real_date(tmp_path: Path) -> None:
    path = write(tmp_path, "leap.csv", csv_bytes(rows_with(2, {2: {"month": "2", "day": "29"}})))
    dates = load_events(path).clicks[S.DATE]
    assert dates.tolist() == [pd.Timestamp("2008-04-01"), pd.Timestamp("2008-02-29")]


def test_month_13_is_reported_as_a_month_problem_not_a_day_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "month.csv", csv_bytes(rows_with(3, {2: {"month": "13"}})))
    problem = only_problem(path)
    assert problem.column == "month"
    assert problem.rows == (2,)


def test_duplicate_session_order_pairs_are_reported_with_both_rows(tmp_path: Path) -> None:
    rows = good_rows(6)  # sessions 1 (rows 1-3) and 2 (rows 4-6), orders 1..3
    rows[4]["order"] = "1"  # row 5 repeats (session 2, order 1) of row 4
    path = write(tmp_path, "dup.csv", csv_bytes(rows))
    problem = only_problem(path)
    assert problem.column == "order"
    assert "more than once" in problem.message
    assert problem.rows == (4, 5)
    assert problem.count == 2


def test_same_order_in_different_sessions_is_not_a_duplicate(tmp_path: Path) -> None:
    path = write(tmp_path, "ok.csv", csv_bytes(good_rows(6)))
    assert len(load_events(path).clicks) == 6


def test_examples_are_capped_at_five_rows_but_the_count_is_complete(tmp_path: Path) -> None:
    bad = {r: {"colour": "99"} for r in (2, 4, 5, 9, 11, 12, 20)}
    path = write(tmp_path, "many.csv", csv_bytes(rows_with(20, bad)))
    problem = only_problem(path)
    assert problem.rows == (2, 4, 5, 9, 11)
    assert problem.count == 7
    assert "7 rows" in problem.describe()


def test_row_numbers_count_data_rows_of_the_published_uci_file(tmp_path: Path, uci_head_bytes: bytes) -> None:
    """Damage data row 10 of the real CRLF ';' file: the problem names row 10 and the user's header."""
    lines = uci_head_bytes.split(b"\r\n")
    fields = lines[10].split(b";")
    fields[6] = b"9"  # page 1 (main category)
    lines[10] = b";".join(fields)
    path = write(tmp_path, "uci.csv", b"\r\n".join(lines))

    problem = only_problem(path)

    assert problem.column == "page 1 (main category)"
    assert problem.rows == (10,)
    assert "1..4" in problem.message


# ----------------------------------------------------------------- missing values are problems, never dropped

MISSING_VALUE_COLUMNS = ["price", "session_id", "page2_clothing_model", "colour", "order", "day", "year"]


@pytest.mark.parametrize("column", MISSING_VALUE_COLUMNS)
def test_empty_cell_is_a_missing_value_problem(tmp_path: Path, column: str) -> None:
    path = write(tmp_path, "empty-cell.csv", csv_bytes(rows_with(7, {5: {column: ""}})))
    problem = only_problem(path)
    assert problem.column == column
    assert problem.message == "missing value"
    assert problem.rows == (5,)
    assert problem.count == 1


def test_column_with_both_text_and_empty_cells_reports_both(tmp_path: Path) -> None:
    """A text column (pandas reads it as strings) must still report its empty cells."""
    rows = rows_with(6, {2: {"price": "n/a"}, 5: {"price": ""}})
    problems = problems_of(write(tmp_path, "messy.csv", csv_bytes(rows)))
    assert find(problems, "price", "missing value").rows == (5,)
    assert find(problems, "price", "not a number").rows == (2,)
    assert len(problems) == 2


@pytest.mark.parametrize(("column", "text"), [("session_id", "sess-1"), ("page2_clothing_model", "A13")])
def test_empty_cell_in_a_text_column_is_a_missing_value(tmp_path: Path, column: str, text: str) -> None:
    rows = rows_with(4, {1: {column: text}, 3: {column: ""}})
    problem = only_problem(write(tmp_path, "text-empty.csv", csv_bytes(rows)))
    assert (problem.column, problem.message, problem.rows) == (column, "missing value", (3,))


def test_empty_price_cell_in_the_uci_file_is_reported(tmp_path: Path, uci_head_bytes: bytes) -> None:
    lines = uci_head_bytes.split(b"\r\n")
    fields = lines[3].split(b";")
    fields[11] = b""  # price
    lines[3] = b";".join(fields)
    path = write(tmp_path, "uci.csv", b"\r\n".join(lines))
    problem = only_problem(path)
    assert (problem.column, problem.message, problem.rows) == ("price", "missing value", (3,))


def test_file_with_a_few_bad_rows_is_refused_not_loaded_short(tmp_path: Path) -> None:
    bad = {7: {"price": ""}, 19: {"price": ""}, 33: {"colour": ""}}
    path = write(tmp_path, "few-bad.csv", csv_bytes(rows_with(40, bad)))
    problems = problems_of(path)
    assert find(problems, "price", "missing value").rows == (7, 19)
    assert find(problems, "colour", "missing value").rows == (33,)
    assert len(problems) == 2


def test_row_cut_short_reports_each_empty_field(tmp_path: Path) -> None:
    data = csv_bytes(good_rows(3)) + b"2008,4,1\n" + csv_bytes(good_rows(1)).split(b"\n", 1)[1]
    path = write(tmp_path, "short-row.csv", data)
    problems = problems_of(path)
    empty = {p.column for p in problems if p.message == "missing value"}
    assert empty == set(COLUMNS) - {"year", "month", "day"}
    assert all(p.rows == (4,) for p in problems if p.message == "missing value")


# ----------------------------------------------------------------- many problems, one error


def test_all_problems_are_reported_together(tmp_path: Path) -> None:
    columns = [c for c in COLUMNS if c != "location"]
    rows = rows_with(
        12,
        {
            2: {"colour": "99"},
            3: {"country": "0"},
            4: {"page": "x"},
            5: {"price": "0"},
            6: {"price": "-3"},
            7: {"month": "4", "day": "31"},
            8: {"page2_clothing_model": ""},
            9: {"order": "2"},  # same session and order as row 8
        },
    )
    path = write(tmp_path, "many-problems.csv", csv_bytes(rows, columns))

    with pytest.raises(ValidationError) as info:
        load_events(path)
    problems = info.value.problems

    assert "missing column" in find(problems, "location", "missing column").message
    assert find(problems, "colour", "outside the codebook's range").rows == (2,)
    assert find(problems, "country", "outside the codebook's range").rows == (3,)
    assert find(problems, "page", "not a number").rows == (4,)
    assert find(problems, "price", "price must be positive").rows == (5, 6)
    assert find(problems, "day", "impossible date").rows == (7,)
    assert find(problems, "page2_clothing_model", "missing value").rows == (8,)
    assert find(problems, "order", "more than once").rows == (8, 9)
    assert len(problems) == 8

    report = str(info.value)
    assert report == info.value.report()
    assert "'many-problems.csv' cannot be used: 8 problems found" in report
    for problem in problems:
        assert problem.describe() in report


def test_validate_frame_reports_all_problems_of_a_dataframe() -> None:
    rows = rows_with(5, {1: {"colour": "99"}, 4: {"price": "-1"}})
    frame = pd.read_csv(io.BytesIO(csv_bytes(rows))).drop(columns=["page"])
    with pytest.raises(ValidationError) as info:
        validate_frame(frame, source="frame")
    problems = info.value.problems
    assert info.value.source == "frame"
    assert find(problems, "page", "missing column")
    assert find(problems, "colour", "outside").rows == (1,)
    assert find(problems, "price", "positive").rows == (4,)
    assert len(problems) == 3


# ----------------------------------------------------------------- labels


@pytest.mark.parametrize("value", ["2", "-1", "0.5", "maybe"])
def test_converted_values_other_than_0_or_1_are_a_problem(tmp_path: Path, value: str) -> None:
    rows = [{**row, "converted": "0"} for row in good_rows(5)]
    rows[2]["converted"] = value
    path = write(tmp_path, "labels.csv", csv_bytes(rows, (*COLUMNS, "converted")))
    problem = only_problem(path)
    assert problem.column == "converted"
    assert problem.rows == (3,)


def test_empty_converted_cell_is_a_missing_value(tmp_path: Path) -> None:
    rows = [{**row, "converted": "1"} for row in good_rows(4)]
    rows[1]["converted"] = ""
    path = write(tmp_path, "labels.csv", csv_bytes(rows, (*COLUMNS, "converted")))
    problem = only_problem(path)
    assert (problem.column, problem.message, problem.rows) == ("converted", "missing value", (2,))


def test_revenue_without_converted_is_a_problem(tmp_path: Path) -> None:
    rows = [{**row, "revenue": "10"} for row in good_rows(3)]
    path = write(tmp_path, "revenue.csv", csv_bytes(rows, (*COLUMNS, "revenue")))
    problem = only_problem(path)
    assert problem.column == "revenue"
    assert "converted" in problem.message


def test_negative_revenue_is_a_problem(tmp_path: Path) -> None:
    rows = [{**row, "converted": "1", "revenue": "10"} for row in good_rows(4)]
    rows[3]["revenue"] = "-10"
    path = write(tmp_path, "revenue.csv", csv_bytes(rows, (*COLUMNS, "converted", "revenue")))
    problem = only_problem(path)
    assert (problem.column, problem.rows) == ("revenue", (4,))


# ----------------------------------------------------------------- empty files


@pytest.mark.parametrize("content", [b"", b"\n", b"\r\n\r\n", b"   \n"], ids=["zero-bytes", "lf", "crlf", "spaces"])
def test_empty_file_is_refused(tmp_path: Path, content: bytes) -> None:
    problem = only_problem(write(tmp_path, "empty.csv", content))
    assert "the file is empty" in problem.message


def test_empty_gzip_file_is_refused(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, "empty.csv.gz", gzip.compress(b"")))
    assert "the file is empty" in problem.message


@pytest.mark.parametrize(
    "header",
    [HEADER.encode() + b"\n", ";".join(UCI_COLUMNS).encode() + b"\r\n", HEADER.encode()],
    ids=["lowercase", "uci-crlf", "no-newline"],
)
def test_header_only_file_is_refused(tmp_path: Path, header: bytes) -> None:
    problem = only_problem(write(tmp_path, "header-only.csv", header))
    assert problem.message == "the file has a header but no data rows"


def test_header_only_file_with_missing_columns_reports_both(tmp_path: Path) -> None:
    problems = problems_of(write(tmp_path, "header-only.csv", b"year,month,day\n"))
    assert find(problems, None, "header but no data rows")
    assert find(problems, "session_id", "missing column")


# ----------------------------------------------------------------- files that are not CSV or Parquet


def minimal_xlsx() -> bytes:
    """A real (minimal) Excel workbook: the three parts Excel needs, zipped."""
    content_types = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        "</Types>"
    )
    workbook = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        '<sheets><sheet name="clicks" sheetId="1" r:id="rId1"/></sheets></workbook>'
    )
    sheet = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
        '<row r="1"><c r="A1" t="inlineStr"><is><t>year</t></is></c></row>'
        '<row r="2"><c r="A2"><v>2008</v></c></row>'
        "</sheetData></worksheet>"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", content_types)
        zf.writestr("xl/workbook.xml", workbook)
        zf.writestr("xl/worksheets/sheet1.xml", sheet)
    return buffer.getvalue()


def zipped_csv() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("clicks.csv", csv_bytes(good_rows(5)))
    return buffer.getvalue()


def legacy_xls() -> bytes:
    return bytes.fromhex("d0cf11e0a1b11ae1") + b"\x00" * 504 + b"Workbook" + b"\x00" * 512


def png_image() -> bytes:
    return b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"


NOT_TABULAR: list[tuple[str, str, Callable[[], bytes], str]] = [
    ("xlsx", "clicks.xlsx", minimal_xlsx, "Excel workbook (.xlsx)"),
    ("xlsx-named-csv", "clicks.csv", minimal_xlsx, "Excel workbook (.xlsx)"),
    ("zip-of-csv", "clicks.zip", zipped_csv, "zip archive"),
    ("legacy-xls", "clicks.xls", legacy_xls, "legacy Excel workbook (.xls)"),
    ("png", "clicks.csv", png_image, "binary"),
]


@pytest.mark.parametrize(
    ("filename", "build", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in NOT_TABULAR],
)
def test_file_that_is_not_csv_or_parquet_is_refused_by_content(
    tmp_path: Path, filename: str, build: Callable[[], bytes], expected: str
) -> None:
    data = build()
    problem = only_problem(write(tmp_path, filename, data))
    assert expected in problem.message
    assert "not CSV" in problem.message
    assert problem.column is None


def test_minimal_xlsx_is_a_valid_zip_with_the_excel_parts() -> None:
    """Guards the xlsx case above: the test input is a well-formed workbook package."""
    with zipfile.ZipFile(io.BytesIO(minimal_xlsx())) as zf:
        assert zf.testzip() is None
        assert zf.namelist() == ["[Content_Types].xml", "xl/workbook.xml", "xl/worksheets/sheet1.xml"]


def test_windows_1250_text_is_refused_as_not_utf8(tmp_path: Path) -> None:
    rows = rows_with(4, {2: {"page2_clothing_model": "Bł"}})
    text = csv_bytes(rows).decode("utf-8")
    data = text.encode("cp1250")  # 'ł' is the single byte 0xb3, invalid in UTF-8
    assert b"\xb3" in data
    problem = only_problem(write(tmp_path, "polish.csv", data))
    assert "not UTF-8" in problem.message
    assert "0xb3" in problem.message
    assert "line 3" in problem.message  # file line 3 = header + data row 2


def test_utf8_polish_text_is_accepted(tmp_path: Path) -> None:
    rows = rows_with(2, {2: {"page2_clothing_model": "Bł"}})
    clicks = load_events(write(tmp_path, "polish.csv", csv_bytes(rows))).clicks
    assert clicks[S.CLOTHING_MODEL].tolist() == ["A13", "Bł"]


@pytest.mark.parametrize("kind", ["path", "folder"])
def test_missing_file_or_folder_is_a_validation_error(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "nope.csv" if kind == "path" else tmp_path
    problem = only_problem(target)
    assert ("not found" if kind == "path" else "folder") in problem.message


# ----------------------------------------------------------------- size limits


def test_file_over_max_bytes_is_refused_before_reading(tmp_path: Path) -> None:
    path = write(tmp_path, "clicks.csv", csv_bytes(good_rows(10)))
    size = path.stat().st_size

    problem = only_problem(path, max_bytes=size - 1)
    assert "over the limit" in problem.message
    assert len(load_events(path, max_bytes=size).clicks) == 10


def test_max_bytes_applies_to_in_memory_uploads_too() -> None:
    data = csv_bytes(good_rows(10))
    assert "over the limit" in only_problem(data, max_bytes=len(data) - 1).message
    assert len(load_events(data, max_bytes=len(data)).clicks) == 10


def test_size_limit_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = good_rows(3)
    data = csv_bytes(rows)
    data += b"#" * (MEGABYTE + 1 - len(data))  # pad to just over 1 MB; never parsed when the limit holds
    path = write(tmp_path, "big.csv", data)

    monkeypatch.setenv(ENV_MAX_INPUT_MB, "1")
    assert get_settings().max_input_bytes == MEGABYTE
    problem = only_problem(path)
    assert "over the limit of 1,048,576 bytes (1 MB)" in problem.message

    monkeypatch.setenv(ENV_MAX_INPUT_MB, "2")
    assert get_settings().max_input_bytes == 2 * MEGABYTE
    # now under the limit, so the file is read and fails on its (deliberately bad) content instead
    assert all("over the limit" not in p.message for p in problems_of(path))


def test_default_size_limit_without_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_MAX_INPUT_MB, raising=False)
    assert get_settings().max_input_bytes == 2048 * MEGABYTE


def test_gzip_that_unpacks_far_beyond_the_limit_is_refused(tmp_path: Path) -> None:
    data = gzip.compress(csv_bytes(good_rows(3)) + b"\n" * 2_000_000)
    assert len(data) < 10_000
    problem = only_problem(write(tmp_path, "bomb.csv.gz", data), max_bytes=10_000)
    assert "unpacks to more than" in problem.message


# ----------------------------------------------------------------- damaged containers


def damaged_gzip_cases() -> list[tuple[str, Callable[[bytes], bytes]]]:
    def truncated(gz: bytes) -> bytes:
        return gz[: len(gz) // 2]

    def corrupted_middle(gz: bytes) -> bytes:
        broken = bytearray(gz)
        for i in range(20, 40):
            broken[i] ^= 0xFF
        return bytes(broken)

    def bad_checksum(gz: bytes) -> bytes:
        return gz[:-8] + b"\x00\x00\x00\x00" + gz[-4:]

    def header_only(gz: bytes) -> bytes:
        return gz[:10]

    return [("truncated", truncated), ("corrupted", corrupted_middle), ("crc", bad_checksum), ("header", header_only)]


@pytest.mark.parametrize(("damage"), [pytest.param(fn, id=name) for name, fn in damaged_gzip_cases()])
def test_damaged_gzip_is_refused(tmp_path: Path, damage: Callable[[bytes], bytes]) -> None:
    gz = gzip.compress(csv_bytes(good_rows(200)))
    problem = only_problem(write(tmp_path, "damaged.csv.gz", damage(gz)))
    assert "gzip file is damaged or truncated" in problem.message


def parquet_bytes() -> bytes:
    buffer = io.BytesIO()
    pd.read_csv(io.BytesIO(csv_bytes(good_rows(50)))).to_parquet(buffer, index=False)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda pq: pq[: len(pq) // 2], id="truncated"),
        pytest.param(lambda pq: pq[:-12] + b"\x00" * 12, id="footer-zeroed"),
        pytest.param(lambda pq: b"PAR1" + b"not really parquet" * 10, id="magic-only"),
    ],
)
def test_damaged_parquet_is_refused(tmp_path: Path, damage: Callable[[bytes], bytes]) -> None:
    data = damage(parquet_bytes())
    assert data.startswith(b"PAR1")
    problem = only_problem(write(tmp_path, "damaged.parquet", data))
    assert "the Parquet file cannot be read" in problem.message


def test_intact_parquet_of_the_same_data_loads(tmp_path: Path) -> None:
    assert len(load_events(write(tmp_path, "ok.parquet", parquet_bytes())).clicks) == 50


def test_parquet_with_null_values_reports_them(tmp_path: Path) -> None:
    frame = pd.read_csv(io.BytesIO(csv_bytes(good_rows(6))))
    frame["price"] = frame["price"].astype("float64")
    frame.loc[[1, 4], "price"] = None
    frame.loc[2, "page2_clothing_model"] = None
    path = tmp_path / "nulls.parquet"
    frame.to_parquet(path, index=False)
    problems = problems_of(path)
    assert find(problems, "price", "missing value").rows == (2, 5)
    assert find(problems, "page2_clothing_model", "missing value").rows == (3,)
    assert len(problems) == 2


# ----------------------------------------------------------------- known bugs (see the report)

NON_FINITE = ["inf", "-inf", "1e400"]


@pytest.mark.parametrize("column", ["year", "month", "day"])
def test_non_finite_date_part_is_a_validation_problem(tmp_path: Path, column: str) -> None:
    path = write(tmp_path, "inf.csv", csv_bytes(rows_with(3, {2: {column: "inf"}})))
    problem = only_problem(path)
    assert (problem.column, problem.rows) == (column, (2,))


@pytest.mark.parametrize("value", ["inf", "1e400"])
def test_infinite_price_is_a_validation_problem(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, "inf.csv", csv_bytes(rows_with(3, {2: {"price": value}})))
    problem = only_problem(path)
    assert (problem.column, problem.rows) == ("price", (2,))


@pytest.mark.parametrize("value", NON_FINITE)
def test_non_finite_session_id_is_not_silently_changed(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, "inf.csv", csv_bytes(rows_with(3, {2: {"session_id": value, "order": "1"}})))
    try:
        ids = load_events(path).clicks[S.SESSION_ID].astype(str).tolist()
    except ValidationError:
        return  # refusing it is fine too
    assert value in ids


@pytest.mark.parametrize(
    "ids",
    [("18446744073709551615", "18446744073709551614"), ("123456789012345678901234", "123456789012345678901235")],
    ids=["uint64", "24-digit"],
)
def test_long_numeric_session_ids_are_kept_distinct_and_unchanged(tmp_path: Path, ids: tuple[str, str]) -> None:
    rows = rows_with(2, {1: {"session_id": ids[0], "order": "1"}, 2: {"session_id": ids[1], "order": "1"}})
    loaded = load_events(write(tmp_path, "long-ids.csv", csv_bytes(rows)))
    assert loaded.clicks[S.SESSION_ID].astype(str).tolist() == list(ids)
