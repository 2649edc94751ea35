"""Turn the bytes of an input file into a raw table, whatever form the user has.

Detects the container (gzip, Parquet, Excel, zip, plain text), checks the size
limit and the text encoding, and sniffs the delimiter from the header line.
It never asks the user which form a file is in, and it never unpickles or
executes anything: CSV is parsed as text, Parquet through pyarrow.

The limits of ``ml.data.limits`` come first: at most the size limit is read
(also from pipes and devices) or unpacked from gzip, and lines that are too
long or too wide, or hold NUL bytes, are refused before the CSV parser runs.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ml.config import InputLimits
from ml.data import schema as S
from ml.data.limits import MAX_WIDER_ROWS, LineScan, check_header, gunzip_bounded, read_bounded, scan_lines
from ml.errors import Problem, ValidationError, example_rows

GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .xls workbooks
UTF8_CHUNK = 1 << 20
DELIMITERS = (";", ",", "\t", "|")
log = logging.getLogger(__name__)
NOT_BLANK = re.compile(rb"\S")  # bytes.strip() strips exactly the ASCII whitespace \s matches in bytes


@dataclass(frozen=True)
class RawTable:
    """A parsed but not yet validated table, with how it was read."""

    frame: pd.DataFrame
    container: str  # "csv", "csv.gz", "parquet"
    delimiter: str | None
    # Rows the parser filled in but that the file did not hold whole (a cut-off last line).
    problems: tuple[Problem, ...] = field(default=(), kw_only=True)


def _fail(message: str, source: str | None) -> ValidationError:
    return ValidationError([Problem(message)], source=source)


def read_source_bytes(source: str | Path | bytes, *, max_bytes: int, name: str | None) -> bytes:
    """Read a file (or take given bytes), refusing anything over ``max_bytes``.

    A path is read in chunks up to one byte past the limit, so a pipe or a
    device (``/dev/zero``, whose ``stat()`` size is 0) stops there too.
    """
    if isinstance(source, bytes):
        if len(source) > max_bytes:
            raise _fail(_size_message(len(source), max_bytes), name)
        return source
    path = Path(source)
    if not path.exists():
        raise _fail(f"file not found: {path}", name)
    if path.is_dir():
        raise _fail(f"{path} is a folder, not a file", name)
    return read_bounded(path, max_bytes, name)


def format_size(n_bytes: int) -> str:
    """Bytes in the unit a person reads at a glance: 512 bytes, 12.3 KB, 50.0 MB."""
    if n_bytes < 1024:
        return f"{n_bytes:,} bytes"
    if n_bytes % 1_048_576 == 0:
        return f"{n_bytes // 1_048_576:,} MB"
    if n_bytes < 1_048_576:
        return f"{n_bytes / 1024:,.1f} KB"
    return f"{n_bytes / 1_048_576:,.1f} MB"


def _size_message(size: int, limit: int) -> str:
    shown, allowed = format_size(size), format_size(limit)
    if size < limit * 1.05:  # rounded sizes would look equal: give the exact bytes
        shown, allowed = f"{size:,} bytes", f"{limit:,} bytes ({allowed})"
    return f"the file is {shown}, over the limit of {allowed}"


def _describe_zip(data: bytes) -> str:
    head = data[:4096]
    if b"[Content_Types].xml" in head or b"xl/" in head:
        return (
            "this is an Excel workbook (.xlsx), not CSV or Parquet; "
            "save the sheet as CSV (comma or semicolon separated) and upload that"
        )
    return "this is a zip archive, not CSV or Parquet; unzip it and use the CSV file inside"


def _check_utf8(data: bytes, source: str | None) -> None:
    """Refuse bytes that are not UTF-8, naming the line; decoded in chunks, so no text copy of the file is held."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    try:
        for start in range(0, len(data), UTF8_CHUNK):
            decoder.decode(view[start : start + UTF8_CHUNK], final=start + UTF8_CHUNK >= len(data))
        decoder.decode(b"", final=True)
        return
    except UnicodeDecodeError:
        pass  # decode it whole once to name the exact byte and line
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise _fail(
            f"the file is not UTF-8 text: byte 0x{data[exc.start]:02x} at line {line} "
            "cannot be decoded; save or export the file as UTF-8",
            source,
        ) from exc


def sniff_delimiter(header_line: str) -> str | None:
    """Pick the delimiter that splits the header line into the most fields."""
    counts = {d: header_line.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else None


def uci_text_columns(names: Sequence[str]) -> set[str]:
    """The UCI file's session IDs and product codes are text, so long numbers or leading zeros survive."""
    keep = {S.SESSION_ID, S.CLOTHING_MODEL}
    return {name for name in names if S.HEADER_ALIASES.get(S.normalise_header(name)) in keep}


def uci_compact_columns(names: Sequence[str]) -> set[str]:
    """All the UCI file's columns: validation reads codes and price as numbers of any width, and IDs as values."""
    return {name for name in names if S.HEADER_ALIASES.get(S.normalise_header(name)) in S.SOURCE_COLUMNS}


def no_columns(names: Sequence[str]) -> Collection[str]:
    """No column (the default of ``compact_columns``: every column as the parser types it)."""
    return ()


TextColumns = Callable[[Sequence[str]], Collection[str]]
CSV_CHUNK_BYTES = 1 << 20  # about this much text per parsed chunk: the parser's tables stay a few times it
CSV_MIN_CHUNK_ROWS = 1000
SMALL_INTEGERS = (np.int8, np.int16, np.int32)


def _read_csv(
    data: bytes,
    container: str,
    source: str | None,
    text_columns: TextColumns,
    limits: InputLimits,
    compact_columns: TextColumns = no_columns,
) -> RawTable:
    if b"\x00" in data[:8192]:
        raise _fail("the file is binary, not CSV text or Parquet", source)
    _check_utf8(data, source)
    text_start = data[:65536].decode("utf-8", errors="ignore").lstrip("\ufeff")
    if not text_start.strip():
        raise _fail("the file is empty: no header and no rows", source)
    header_line = text_start.splitlines()[0]
    delimiter = sniff_delimiter(header_line)
    check_header(data, delimiter or ",", limits, source)
    header_fields = header_line.count(delimiter or ",") + 1
    scan = scan_lines(data, delimiter or ",", limits, header_fields)
    if scan.problems:  # refused before any row is parsed, even quote-aware
        raise ValidationError(scan.problems, source=source)
    wider = _rows_wider_than_header(data, scan, delimiter or ",", header_fields)
    if wider is not None:
        raise ValidationError([wider], source=source)
    options = {
        "sep": delimiter or ",",
        "index_col": False,
        "encoding": "utf-8-sig",
        "keep_default_na": False,
        "na_values": [""],
        "skipinitialspace": True,
    }
    try:
        # The names exactly as the parser gives them (a trailing space stays), so the text dtypes apply.
        names = [str(c) for c in pd.read_csv(io.BytesIO(data), nrows=0, **options).columns]
        text = set(text_columns(names))
        dtypes = {name: "string" for name in names if name in text}
        frame = _parse_csv(data, options, dtypes, set(compact_columns(names)))
    except pd.errors.EmptyDataError as exc:
        raise _fail("the file is empty: no header and no rows", source) from exc
    except (pd.errors.ParserError, csv.Error) as exc:
        raise _fail(f"the CSV cannot be parsed: {exc}", source) from exc
    problems = _cut_off_last_line(data, delimiter or ",", len(frame.columns), len(frame))
    return RawTable(frame=frame, container=container, delimiter=delimiter, problems=problems)


def _parse_csv(data: bytes, options: dict, dtypes: dict[str, str], compact: Collection[str]) -> pd.DataFrame:
    """The CSV parsed as one whole (every column's type inferred from all its rows), in chunks where that is the same.

    A file of many chunks' worth of text is parsed in chunks, and the
    ``compact`` columns are kept small: integers in the smallest integer type
    that holds them, text read as text (``dtypes``) dictionary-encoded, so the
    parser's tables and int64 or text columns of the whole file are never held
    at once. Where the chunks' inferred types differ (a column numeric in the
    first rows and text later, say), or a chunk cannot be parsed, the file is
    parsed again as one whole, so the types, values and error messages are
    those of the whole-file parse (whose ``compact`` columns are then made
    small the same way).
    """
    lines = data.count(b"\n")
    rows = max(CSV_MIN_CHUNK_ROWS, CSV_CHUNK_BYTES * lines // max(len(data), 1))
    if lines > rows:
        frame = _parse_in_chunks(data, options, dtypes, compact, rows)
        if frame is not None:
            return frame
    frame = pd.read_csv(io.BytesIO(data), dtype=dtypes, low_memory=False, **options)
    for name in compact:
        if name in frame.columns:
            if name in dtypes:
                frame[name] = _dictionary_text([_compacted(frame[name], text=True)])
            else:
                frame[name] = _smallest_integers(_values(frame[name]))
    return frame


def _parse_in_chunks(
    data: bytes, options: dict, dtypes: dict[str, str], compact: Collection[str], rows: int
) -> pd.DataFrame | None:
    """The chunks of the CSV joined column by column, or ``None`` where their inferred types differ or one fails.

    Chunks of differing types are not reconciled (whole numbers in one chunk
    and decimals in the next would be float64 in the whole parse, but "-0"
    read as an integer has lost its sign): the whole parse decides.
    """
    parts: dict[str, list] = {}
    first: pd.Series | None = None
    try:
        with pd.read_csv(io.BytesIO(data), dtype=dtypes, low_memory=False, chunksize=rows, **options) as reader:
            for chunk in reader:
                if first is None:
                    first = chunk.dtypes
                elif not chunk.dtypes.equals(first):
                    return None
                for name, column in chunk.items():
                    values = _compacted(column, name in dtypes) if name in compact else _values(column)
                    parts.setdefault(str(name), []).append(values)
    except Exception as exc:  # the whole-file parse gives the error (or the file's true types)
        log.debug("parsing the CSV in chunks stopped (%s: %s); parsing it whole", type(exc).__name__, exc)
        return None
    if first is None or len(parts) != len(first):
        return None
    columns = {}
    for name in list(parts):
        columns[name] = _joined(parts.pop(name))
    return pd.DataFrame(columns, copy=False)


def _compacted(column: pd.Series, text: bool) -> object:
    """A chunk's column in less memory: text read as text dictionary-encoded, integers in the smallest integer type."""
    if text:
        values = pa.array(column.array)
        return pc.dictionary_encode(values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values)
    return _smallest_integers(_values(column))


def _values(column: pd.Series) -> object:
    return column.to_numpy() if isinstance(column.dtype, np.dtype) else column.array


def _joined(parts: list) -> object:
    """One column of the parsed chunks: arrays concatenated, Arrow text (plain or dictionary-encoded) as its pieces."""
    if all(isinstance(part, np.ndarray) for part in parts):
        return np.concatenate(parts)
    if not isinstance(parts[0], np.ndarray) and hasattr(parts[0], "dictionary"):
        return _dictionary_text(parts)
    return pd.concat([pd.Series(part, copy=False) for part in parts], ignore_index=True).array


def _dictionary_text(parts: list) -> pd.arrays.ArrowExtensionArray:
    """Dictionary-encoded chunks of a text column as one Arrow column (each chunk keeps its own dictionary).

    Not a pandas ``Categorical``: its categories would build a Python hash
    table of every distinct value (250,000 session IDs) when checked unique.
    Validation unites the dictionaries, once the file's text is freed.
    """
    chunks = pa.chunked_array(parts)
    parts.clear()
    return pd.arrays.ArrowExtensionArray(chunks)


def _text_in_one_piece(frame: pd.DataFrame) -> None:
    """Arrow text columns joined from chunks made one piece, as the whole-file parse has them; one column at a time."""
    for name in list(frame.columns):
        dtype = frame[name].dtype
        if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow":
            pieces = pa.array(frame[name].array)
            if isinstance(pieces, pa.ChunkedArray) and pieces.num_chunks > 1:
                joined = pieces.combine_chunks()
                del pieces  # the chunks go as the column is replaced
                frame[name] = pd.array(joined, dtype=dtype)


def _smallest_integers(values: np.ndarray) -> np.ndarray:
    """int64 values in the smallest signed integer type that holds them all (others unchanged)."""
    if not isinstance(values, np.ndarray) or values.dtype != np.int64 or not len(values):
        return values
    low, high = values.min(), values.max()
    for dtype in SMALL_INTEGERS:
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return values.astype(dtype)
    return values


def _rows_wider_than_header(data: bytes, scan: LineScan, delimiter: str, n_columns: int) -> Problem | None:
    """Rows with more fields than the header (the parser would drop the extra values without a word).

    One trailing empty field is allowed (a delimiter at the end of each row).
    Only rows whose raw delimiter count is too high are parsed again, quote-aware.
    """
    rows: list[int] = []
    for line, start, end in scan.wider_than_header:
        text = data[start:end].decode("utf-8", errors="replace").rstrip("\r")
        try:
            fields = next(csv.reader([text], delimiter=delimiter), [])
        except csv.Error:
            continue  # a quoted field spanning lines: the parser has checked it
        if len(fields) > n_columns + 1 or (len(fields) == n_columns + 1 and fields[-1].strip()):
            rows.append(line)
    if not rows:
        return None
    more = " at least" if len(scan.wider_than_header) >= MAX_WIDER_ROWS else ""
    return Problem(
        f"more fields than the header's {n_columns} columns{more}: the extra values would be lost",
        rows=tuple(rows[:5]),
        count=len(rows),
    )


def _cut_off_last_line(data: bytes, delimiter: str, n_columns: int, n_rows: int) -> tuple[Problem, ...]:
    """A last line without a line ending and with fewer fields than the header: the file was cut off.

    The parser fills the missing fields with empty values, which could pass as a
    valid event; this names the row so it is refused (or dropped on request).
    """
    if not n_rows or data.endswith((b"\n", b"\r")):
        return ()
    last_line = data[data.rfind(b"\n") + 1 :].decode("utf-8", errors="replace")
    try:
        fields = next(csv.reader([last_line], delimiter=delimiter), [])
    except csv.Error:
        return ()
    if len(fields) >= n_columns:
        return ()
    position = np.array([n_rows - 1])
    return (
        Problem(
            f"the last line has {len(fields)} of the header's {n_columns} fields and no line ending: "
            "the file looks cut off",
            rows=example_rows(position),
            count=1,
            positions=position,
        ),
    )


def _read_parquet(data: bytes, source: str | None, limits: InputLimits) -> RawTable:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        n_columns = pq.ParquetFile(io.BytesIO(data)).metadata.num_columns
        if n_columns > limits.max_columns:
            raise _fail(
                f"the Parquet file has {n_columns:,} columns, over the limit of {limits.max_columns:,} columns, "
                "set by CLICKSTREAM_MAX_COLUMNS",
                source,
            )
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise _fail(f"the Parquet file cannot be read: {exc}", source) from exc
    frame = table.to_pandas()
    for index, column in enumerate(table.schema):
        # Integers with nulls would become float64 and lose digits past 2**53 (category IDs of 19 digits merge).
        if pa.types.is_integer(column.type) and table.column(index).null_count:
            frame[column.name] = table.column(index).to_pandas(types_mapper=_nullable_integer)
    return RawTable(frame=frame, container="parquet", delimiter=None)


def _nullable_integer(arrow_type: object) -> object:
    """The pandas nullable dtype of an Arrow integer type (``int64`` -> ``Int64``), exact with missing values."""
    return pd.api.types.pandas_dtype(str(arrow_type).replace("uint", "UInt").replace("int", "Int"))


def _blank(data: bytes) -> bool:
    """``not data.strip()`` (nothing but ASCII whitespace) without a stripped copy of the file."""
    return NOT_BLANK.search(data) is None


def parse_bytes(
    data: bytes,
    *,
    max_bytes: int,
    source: str | None,
    text_columns: TextColumns = uci_text_columns,
    limits: InputLimits | None = None,
    compact_columns: TextColumns = no_columns,
) -> RawTable:
    """Detect the form of ``data`` and parse it into a raw table.

    ``text_columns`` names the CSV columns to keep as text (IDs), given the header;
    ``compact_columns`` those a caller reads only as numbers or as text values
    (validation of the UCI file): their integers may come in the smallest
    integer type that holds them (int8 rather than int64), and their text
    columns dictionary-encoded (an Arrow dictionary column).
    A gzip file may unpack to at most ``max_bytes``: the limit is on the data a
    file holds, whatever its container.
    """
    limits = limits or InputLimits()
    container = "csv"
    if data[:2] == GZIP_MAGIC:
        data = gunzip_bounded(data, max_bytes, source)
        container = "csv.gz"
    if _blank(data):
        raise _fail("the file is empty: no header and no rows", source)
    if data[:4] == PARQUET_MAGIC:
        return _read_parquet(data, source, limits)
    if data[:4] in (ZIP_MAGIC, EMPTY_ZIP_MAGIC):
        raise _fail(_describe_zip(data), source)
    if data[:8] == OLE2_MAGIC:
        raise _fail(
            "this is a legacy Excel workbook (.xls), not CSV or Parquet; save the sheet as CSV",
            source,
        )
    raw = _read_csv(data, container, source, text_columns, limits, compact_columns)
    del data  # the text, where it was unpacked here, is freed before the text columns are joined
    _text_in_one_piece(raw.frame)
    return raw
