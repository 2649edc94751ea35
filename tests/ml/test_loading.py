"""Loading: every accepted input form gives the same canonical clicks, detected without being told.

The reference is the bundled UCI file itself (``bundled``): each other form is
built from the first 400 clicks of the published bytes (``uci_head_bytes``),
written to a real file in ``tmp_path`` and loaded by path, and must come back as
exactly the same canonical frame.
"""

from __future__ import annotations

import gzip
import hashlib
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from ml.config import BUNDLED_DATA_FILE
from ml.data import schema as S
from ml.data.loading import LoadedEvents, load_events
from ml.data.validation import validate_frame
from ml.errors import ValidationError

SAMPLE_CLICKS = 400
UCI_HEADER = (
    "year;month;day;order;country;session ID;page 1 (main category);page 2 (clothing model);"
    "colour;location;model photography;price;price 2;page"
)
LOWERCASE_HEADER = (
    "year,month,day,order,country,session_id,page1_main_category,page2_clothing_model,"
    "colour,location,model_photography,price,price_2,page"
)
UCI_TO_LOWERCASE = dict(zip(UCI_HEADER.split(";"), LOWERCASE_HEADER.split(","), strict=True))
BOM = "\ufeff".encode()


# ----------------------------------------------------------------- helpers


def lowercase_text(uci_bytes: bytes) -> str:
    """The same clicks in the lowercase comma form, with LF line endings."""
    lines = uci_bytes.decode("utf-8").split("\r\n")
    assert lines[0] == UCI_HEADER
    return "\n".join([LOWERCASE_HEADER, *(line.replace(";", ",") for line in lines[1:])])


def raw_uci_frame(uci_bytes: bytes) -> pd.DataFrame:
    """The published clicks as a plain table with the UCI headers (what a user would save as Parquet)."""
    return pd.read_csv(io.BytesIO(uci_bytes), sep=";")


def write_uci_csv(path: Path, uci: bytes) -> Path:
    path.write_bytes(uci)
    return path


def write_uci_csv_with_bom(path: Path, uci: bytes) -> Path:
    path.write_bytes(BOM + uci)
    return path


def write_lowercase_csv(path: Path, uci: bytes) -> Path:
    path.write_text(lowercase_text(uci), encoding="utf-8", newline="")
    return path


def write_lowercase_csv_with_bom(path: Path, uci: bytes) -> Path:
    path.write_bytes(BOM + lowercase_text(uci).encode("utf-8"))
    return path


def write_lowercase_csv_gz(path: Path, uci: bytes) -> Path:
    path.write_bytes(gzip.compress(lowercase_text(uci).encode("utf-8")))
    return path


def write_uci_parquet(path: Path, uci: bytes) -> Path:
    raw_uci_frame(uci).to_parquet(path, engine="pyarrow", index=False)
    return path


def write_lowercase_parquet(path: Path, uci: bytes) -> Path:
    raw_uci_frame(uci).rename(columns=UCI_TO_LOWERCASE).to_parquet(path, engine="pyarrow", index=False)
    return path


def assert_canonical_dtypes(clicks: pd.DataFrame) -> None:
    assert list(clicks.columns[: len(S.CLICK_COLUMNS)]) == list(S.CLICK_COLUMNS)
    actual = {col: str(clicks[col].dtype) for col in S.CLICK_COLUMNS}
    assert actual == dict(S.CLICK_DTYPES)


def lowercase_csv(rows: list[str], header: str = LOWERCASE_HEADER) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode("utf-8")


GOOD_ROWS = [
    "2008,4,1,1,29,1,1,A13,1,5,1,28,2,1",
    "2008,4,1,2,29,1,1,A16,1,6,1,33,2,1",
    "2008,4,2,1,9,2,3,C56,6,1,2,57,1,4",
]


# ----------------------------------------------------------------- the bundled data


def test_uci_fixture_is_the_published_form(uci_head_bytes: bytes) -> None:
    """Guards the other tests: the sample really is ';'-delimited, CRLF, with the original headers."""
    lines = uci_head_bytes.split(b"\r\n")
    assert lines[0].decode() == UCI_HEADER
    assert len([line for line in lines[1:] if line]) == SAMPLE_CLICKS
    assert b"\n" not in uci_head_bytes.replace(b"\r\n", b"")
    assert b"," not in uci_head_bytes


def test_bundled_file_loads_every_click_and_session(bundled: LoadedEvents) -> None:
    assert len(bundled.clicks) == 165_474
    assert bundled.n_sessions == 24_026
    assert bundled.label_source == "proxy"
    assert bundled.warnings == ()
    assert bundled.input_form == "gzip-compressed semicolon-separated CSV with UCI headers"
    summary = bundled.summary()
    assert summary["rows"] == 165_474
    assert summary["sessions"] == 24_026
    assert (summary["first_date"], summary["last_date"]) == ("2008-04-01", "2008-08-13")
    assert summary["label_source"] == "proxy"


def test_bundled_file_has_the_canonical_dtypes_and_no_label_columns(bundled_clicks: pd.DataFrame) -> None:
    assert_canonical_dtypes(bundled_clicks)
    assert list(bundled_clicks.columns) == list(S.CLICK_COLUMNS)
    assert not bundled_clicks.isna().any().any()


def test_canonical_dtypes_are_the_documented_ones() -> None:
    """Pins the schema other modules rely on (compact codes, second-resolution dates)."""
    assert dict(S.CLICK_DTYPES) == {
        "session_id": "int64",
        "order": "int32",
        "date": "datetime64[s]",
        "year": "int16",
        "month": "int8",
        "day": "int8",
        "country": "int8",
        "category": "int8",
        "product_id": "category",
        "colour": "int8",
        "location": "int8",
        "model_photography": "int8",
        "price": "float64",
        "price_2": "int8",
        "page": "int8",
        "event_type": "int8",
    }
    assert tuple(S.CLICK_DTYPES) == S.CLICK_COLUMNS


def test_bundled_first_clicks_match_the_published_values(bundled_clicks: pd.DataFrame) -> None:
    """The first published line is '2008;4;1;1;29;1;1;A13;1;5;1;28;2;1'."""
    first = bundled_clicks.iloc[0]
    assert first[S.SESSION_ID] == 1
    assert first[S.ORDER] == 1
    assert first[S.DATE] == pd.Timestamp("2008-04-01")
    assert (first[S.COUNTRY], first[S.CATEGORY], first[S.CLOTHING_MODEL]) == (29, 1, "A13")
    assert (first[S.COLOUR], first[S.LOCATION], first[S.PHOTOGRAPHY]) == (1, 5, 1)
    assert (first[S.PRICE], first[S.PRICE_2], first[S.PAGE]) == (28.0, 2, 1)


def test_bundled_file_metadata_describes_the_bytes_read(bundled: LoadedEvents) -> None:
    raw = BUNDLED_DATA_FILE.read_bytes()
    assert bundled.n_bytes == len(raw)
    assert bundled.data_hash == hashlib.sha256(raw).hexdigest()
    assert bundled.source == BUNDLED_DATA_FILE.name


# ----------------------------------------------------------------- all forms, one frame

FORMS: list[tuple[str, str, Callable[[Path, bytes], Path], str]] = [
    ("uci-csv", "clicks.csv", write_uci_csv, "semicolon-separated CSV with UCI headers"),
    ("uci-csv-bom", "clicks.csv", write_uci_csv_with_bom, "semicolon-separated CSV with UCI headers"),
    ("lowercase-csv", "clicks.csv", write_lowercase_csv, "comma-separated CSV with lowercase headers"),
    ("lowercase-csv-bom", "clicks.csv", write_lowercase_csv_with_bom, "comma-separated CSV with lowercase headers"),
    (
        "lowercase-csv-gz",
        "clicks.csv.gz",
        write_lowercase_csv_gz,
        "gzip-compressed comma-separated CSV with lowercase headers",
    ),
    ("uci-parquet", "clicks.parquet", write_uci_parquet, "Parquet with UCI column names"),
    ("lowercase-parquet", "clicks.parquet", write_lowercase_parquet, "Parquet with lowercase column names"),
]


@pytest.mark.parametrize(
    ("filename", "write", "expected_form"),
    [pytest.param(*form[1:], id=form[0]) for form in FORMS],
)
def test_every_input_form_loads_to_the_bundled_canonical_frame(
    tmp_path: Path,
    uci_head_bytes: bytes,
    bundled_clicks: pd.DataFrame,
    filename: str,
    write: Callable[[Path, bytes], Path],
    expected_form: str,
) -> None:
    path = write(tmp_path / filename, uci_head_bytes)
    loaded = load_events(path)

    assert loaded.input_form == expected_form
    assert loaded.warnings == ()
    assert loaded.label_source == "proxy"
    assert_canonical_dtypes(loaded.clicks)
    # The bundled frame's clothing_model categories cover the whole file, the sample's only its own
    # models; the dtype itself is checked above, here the values must match exactly.
    assert_frame_equal(loaded.clicks, bundled_clicks.head(SAMPLE_CLICKS), check_categorical=False)


@pytest.mark.parametrize(
    ("filename", "write"),
    [pytest.param(*form[1:3], id=form[0]) for form in FORMS],
)
def test_every_input_form_gives_an_identical_frame_including_categories(
    tmp_path: Path,
    uci_head_bytes: bytes,
    filename: str,
    write: Callable[[Path, bytes], Path],
) -> None:
    reference = load_events(uci_head_bytes).clicks
    loaded = load_events(write(tmp_path / filename, uci_head_bytes))
    assert_frame_equal(loaded.clicks, reference)


def test_published_bytes_load_directly_from_memory(uci_head_bytes: bytes, bundled_clicks: pd.DataFrame) -> None:
    loaded = load_events(uci_head_bytes, name="head.csv")
    assert loaded.source == "head.csv"
    assert loaded.input_form == "semicolon-separated CSV with UCI headers"
    assert loaded.n_bytes == len(uci_head_bytes)
    assert loaded.data_hash == hashlib.sha256(uci_head_bytes).hexdigest()
    assert len(loaded.clicks) == SAMPLE_CLICKS
    assert_frame_equal(loaded.clicks, bundled_clicks.head(SAMPLE_CLICKS), check_categorical=False)


def test_path_may_be_given_as_a_string(tmp_path: Path, uci_head_bytes: bytes) -> None:
    path = write_lowercase_csv(tmp_path / "clicks.csv", uci_head_bytes)
    loaded = load_events(str(path))
    assert loaded.source == "clicks.csv"
    assert len(loaded.clicks) == SAMPLE_CLICKS


def test_form_is_detected_from_content_not_file_extension(tmp_path: Path, uci_head_bytes: bytes) -> None:
    """A Parquet file named .csv and a gzip named .txt are still read as what they are."""
    parquet = write_lowercase_parquet(tmp_path / "really-parquet.csv", uci_head_bytes)
    gz = write_lowercase_csv_gz(tmp_path / "really-gzip.txt", uci_head_bytes)
    assert load_events(parquet).input_form == "Parquet with lowercase column names"
    assert load_events(gz).input_form == "gzip-compressed comma-separated CSV with lowercase headers"


def test_different_bytes_give_different_hashes(tmp_path: Path, uci_head_bytes: bytes) -> None:
    a = load_events(write_uci_csv(tmp_path / "a.csv", uci_head_bytes))
    b = load_events(write_lowercase_csv(tmp_path / "b.csv", uci_head_bytes))
    again = load_events(write_uci_csv(tmp_path / "c.csv", uci_head_bytes))
    assert a.data_hash == again.data_hash
    assert a.data_hash != b.data_hash


def test_validate_frame_gives_the_same_clicks_as_load_events(uci_head_bytes: bytes) -> None:
    canonical = validate_frame(raw_uci_frame(uci_head_bytes), source="frame")
    assert canonical.header_form == "UCI"
    assert canonical.has_real_label is False
    assert_frame_equal(canonical.clicks, load_events(uci_head_bytes).clicks)


# ----------------------------------------------------------------- extra columns, labels, IDs


def test_extra_columns_are_ignored_with_a_warning(tmp_path: Path) -> None:
    header = LOWERCASE_HEADER + ",referrer,utm_source"
    rows = [row + f",google.com,ad{i}" for i, row in enumerate(GOOD_ROWS)]
    path = tmp_path / "extra.csv"
    path.write_bytes(lowercase_csv(rows, header))

    loaded = load_events(path)

    assert list(loaded.clicks.columns) == list(S.CLICK_COLUMNS)
    assert len(loaded.clicks) == len(GOOD_ROWS)
    assert len(loaded.warnings) == 1
    assert "2 extra column" in loaded.warnings[0]
    assert "'referrer'" in loaded.warnings[0]
    assert "'utm_source'" in loaded.warnings[0]
    assert loaded.summary()["warnings"] == list(loaded.warnings)
    expected = load_events(lowercase_csv(GOOD_ROWS)).clicks
    assert_frame_equal(loaded.clicks, expected)


def test_extra_columns_in_parquet_are_ignored_with_a_warning(tmp_path: Path, uci_head_bytes: bytes) -> None:
    frame = raw_uci_frame(uci_head_bytes).assign(notes="x")
    path = tmp_path / "extra.parquet"
    frame.to_parquet(path, index=False)
    loaded = load_events(path)
    assert len(loaded.clicks) == SAMPLE_CLICKS
    assert "notes" not in loaded.clicks.columns
    assert any("'notes'" in w for w in loaded.warnings)


def test_no_warnings_when_there_are_no_extra_columns(tmp_path: Path) -> None:
    path = tmp_path / "plain.csv"
    path.write_bytes(lowercase_csv(GOOD_ROWS))
    assert load_events(path).warnings == ()


def test_converted_and_revenue_columns_are_used_as_real_labels(tmp_path: Path) -> None:
    header = LOWERCASE_HEADER + ",converted,revenue"
    rows = [GOOD_ROWS[0] + ",0,0", GOOD_ROWS[1] + ",1,61.5", GOOD_ROWS[2] + ",0,0"]
    path = tmp_path / "labelled.csv"
    path.write_bytes(lowercase_csv(rows, header))

    loaded = load_events(path)

    assert loaded.label_source == "input"
    assert loaded.summary()["label_source"] == "input"
    assert loaded.warnings == ()  # label columns are not "extra"
    assert list(loaded.clicks.columns) == [*S.CLICK_COLUMNS, S.LABEL_CONVERTED, S.LABEL_REVENUE]
    assert loaded.clicks[S.LABEL_CONVERTED].tolist() == [0, 1, 0]
    assert loaded.clicks[S.LABEL_REVENUE].tolist() == [0.0, 61.5, 0.0]
    assert_canonical_dtypes(loaded.clicks)


def test_converted_column_alone_is_a_real_label(tmp_path: Path) -> None:
    rows = [row + f",{i % 2}" for i, row in enumerate(GOOD_ROWS)]
    path = tmp_path / "labelled.csv"
    path.write_bytes(lowercase_csv(rows, LOWERCASE_HEADER + ",converted"))
    loaded = load_events(path)
    assert loaded.label_source == "input"
    assert loaded.clicks[S.LABEL_CONVERTED].tolist() == [0, 1, 0]
    assert S.LABEL_REVENUE not in loaded.clicks.columns


def test_boolean_converted_column_in_parquet_is_a_real_label(tmp_path: Path, uci_head_bytes: bytes) -> None:
    frame = raw_uci_frame(uci_head_bytes)
    frame["converted"] = np.arange(len(frame)) % 3 == 0
    path = tmp_path / "labelled.parquet"
    frame.to_parquet(path, index=False)
    loaded = load_events(path)
    assert loaded.label_source == "input"
    assert loaded.clicks[S.LABEL_CONVERTED].tolist() == frame["converted"].astype(int).tolist()


def test_string_session_ids_are_accepted(tmp_path: Path) -> None:
    rows = [
        "2008,4,1,1,29,sess-a91f,1,A13,1,5,1,28,2,1",
        "2008,4,1,2,29,sess-a91f,1,A16,1,6,1,33,2,1",
        "2008,4,1,1,29,sess-77c0,3,C56,6,1,2,57,1,4",
        "2008,4,1,1,29,12345,2,B4,10,2,1,52,1,1",
    ]
    path = tmp_path / "string-ids.csv"
    path.write_bytes(lowercase_csv(rows))

    loaded = load_events(path)

    ids = loaded.clicks[S.SESSION_ID]
    assert pd.api.types.is_string_dtype(ids)
    assert ids.tolist() == ["sess-a91f", "sess-a91f", "sess-77c0", "12345"]
    assert loaded.n_sessions == 3
    assert loaded.summary()["sessions"] == 3
    assert loaded.clicks[S.ORDER].tolist() == [1, 2, 1, 1]


def test_string_session_ids_in_parquet_are_accepted(tmp_path: Path, uci_head_bytes: bytes) -> None:
    frame = raw_uci_frame(uci_head_bytes)
    frame["session ID"] = "web-" + frame["session ID"].astype(str)
    path = tmp_path / "string-ids.parquet"
    frame.to_parquet(path, index=False)
    loaded = load_events(path)
    assert loaded.clicks[S.SESSION_ID].tolist() == frame["session ID"].tolist()
    assert loaded.n_sessions == frame["session ID"].nunique()


def test_duplicate_pairs_are_still_found_with_string_session_ids(tmp_path: Path) -> None:
    rows = [
        "2008,4,1,1,29,sess-a,1,A13,1,5,1,28,2,1",
        "2008,4,1,1,29,sess-b,1,A13,1,5,1,28,2,1",
        "2008,4,1,1,29,sess-a,1,A16,1,6,1,33,2,1",
    ]
    path = tmp_path / "dup.csv"
    path.write_bytes(lowercase_csv(rows))
    with pytest.raises(ValidationError) as info:
        load_events(path)
    [problem] = info.value.problems
    assert problem.column == "order"
    assert problem.rows == (1, 3)


def test_header_with_utf8_bom_loads_with_its_first_column(tmp_path: Path) -> None:
    """The BOM sits right before 'year'; if it were kept, 'year' would be reported missing."""
    path = tmp_path / "bom.csv"
    path.write_bytes(BOM + lowercase_csv(GOOD_ROWS))
    loaded = load_events(path)
    assert loaded.warnings == ()
    assert loaded.clicks[S.YEAR].tolist() == [2008, 2008, 2008]
    assert_frame_equal(loaded.clicks, load_events(lowercase_csv(GOOD_ROWS)).clicks)
