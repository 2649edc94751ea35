"""Hostile inputs end in a clear ValidationError (or ServerBusy), in bounded memory, never a traceback.

Decompression bombs, pipes and devices that never end, lines of millions of
columns, rows wider than their header, 1e300 prices, true/false prices in
Parquet, NUL bytes deep in a text file, and more parses at once than allowed.
Every input is a real file written in the test.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import threading
import tracemalloc
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml.config import ENV_MAX_INPUT_MB, ENV_MAX_PRICE, PROJECT_ROOT, InputLimits, input_limits
from ml.data.limits import gunzip_bounded, parse_gate, scan_lines
from ml.data.loading import load_events
from ml.data.reading import read_source_bytes
from ml.errors import ClickstreamError, Problem, ServerBusy, ValidationError
from tests.ml.event_logs import (
    MULTI_COLUMNS,
    MULTI_DEFAULTS,
    VISITOR_COLUMNS,
    VISITOR_DEFAULTS,
    csv_text,
    multi_rows,
)

UCI_HEADER = "year;month;day;order;country;session ID;page 1 (main category);page 2 (clothing model);colour;location;model photography;price;price 2;page"  # noqa: E501


def uci_rows(n: int, price: str = "28") -> list[str]:
    return [f"2008;4;1;{i + 1};29;{i // 4 + 1};1;A13;1;5;1;{price};2;1" for i in range(n)]


def uci_csv(rows: list[str]) -> bytes:
    return ("\n".join([UCI_HEADER, *rows]) + "\n").encode()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def problems(source: Path | bytes, **kwargs: object) -> tuple[Problem, ...]:
    with pytest.raises(ValidationError) as error:
        load_events(source, **kwargs)
    return error.value.problems


def only(source: Path | bytes, **kwargs: object) -> Problem:
    found = problems(source, **kwargs)
    assert len(found) == 1, [p.describe() for p in found]
    return found[0]


# ----------------------------------------------------------------- decompression bombs
def test_small_gzip_that_inflates_past_the_limit_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    limit = 1_000_000
    bomb = gzip.compress(uci_csv(uci_rows(3)) + b"\n" * 60_000_000, compresslevel=9)
    assert len(bomb) < 100_000  # 60 MB of text in under 100 KB
    path = write(tmp_path / "bomb.csv.gz", bomb)
    tracemalloc.start()
    try:
        problem = only(path, max_bytes=limit)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "unpacks to more than the limit of 976.6 KB" in problem.message
    # The input, at most the limit of output and a chunk: far below the 60 MB the file holds.
    assert peak < 3 * limit + len(bomb), peak


def test_gzip_output_never_grows_past_the_limit() -> None:
    limit = 300_000
    with pytest.raises(ValidationError, match="unpacks to more than"):
        gunzip_bounded(gzip.compress(b"x" * 10_000_000), limit, "x")
    assert gunzip_bounded(gzip.compress(b"x" * limit), limit, "x") == b"x" * limit  # exactly the limit is fine


def test_gzip_within_the_limit_and_several_members_load_whole(tmp_path: Path) -> None:
    rows = uci_rows(40)
    two_members = gzip.compress(uci_csv(rows[:20])) + gzip.compress(("\n".join(rows[20:]) + "\n").encode())
    loaded = load_events(write(tmp_path / "two.csv.gz", two_members), max_bytes=len(uci_csv(rows)) + 10)
    assert len(loaded.events) == 40 and loaded.n_sessions == 10


def test_gzip_with_garbage_after_its_end_is_refused(tmp_path: Path) -> None:
    data = gzip.compress(uci_csv(uci_rows(8))) + b"not gzip at all"
    assert "damaged or truncated" in only(write(tmp_path / "tail.csv.gz", data)).message


# ----------------------------------------------------------------- parses at once
def test_more_parses_than_allowed_wait_then_hear_the_server_is_busy(tmp_path: Path) -> None:
    path = write(tmp_path / "clicks.csv", uci_csv(uci_rows(12)))
    limits = InputLimits(max_parses=1, parse_wait_s=0.3)
    holding, release = threading.Event(), threading.Event()

    def hold_the_only_slot() -> None:
        with parse_gate(1).slot(1.0):
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold_the_only_slot)
    holder.start()
    try:
        assert holding.wait(5)
        with pytest.raises(ServerBusy, match=r"busy reading 1 other file.*try again"):
            load_events(path, limits=limits)
    finally:
        release.set()
        holder.join()
    assert len(load_events(path, limits=limits).events) == 12  # the slot is free again


# ----------------------------------------------------------------- very wide or very long rows
def test_three_rows_with_a_million_extra_header_columns_are_refused_naming_the_cap(tmp_path: Path) -> None:
    header = UCI_HEADER + "".join(f";x{i}" for i in range(1_000_000))
    path = write(tmp_path / "wide.csv", ("\n".join([header, *uci_rows(3)]) + "\n").encode())
    problem = only(path)
    assert "columns, over the limit of 200 columns, set by CLICKSTREAM_MAX_COLUMNS" in problem.message


def test_rows_with_a_million_extra_fields_are_refused_with_their_rows(tmp_path: Path) -> None:
    rows = [row + ";1" * 1_000_000 if i == 1 else row for i, row in enumerate(uci_rows(3))]
    found = problems(write(tmp_path / "wide-rows.csv", uci_csv(rows)))
    wide = next(p for p in found if "more fields than the limit of 200 columns" in p.message)
    long = next(p for p in found if "line longer than the limit of 64.0 KB" in p.message)
    assert wide.rows == (2,) and long.rows == (2,)


def test_a_configured_cap_applies_and_a_narrow_file_passes(tmp_path: Path) -> None:
    path = write(tmp_path / "clicks.csv", uci_csv(uci_rows(5)))
    assert "the header has 14 columns, over the limit of 10" in only(path, limits=InputLimits(max_columns=10)).message
    assert len(load_events(path, limits=InputLimits(max_columns=14)).events) == 5


def test_one_line_longer_than_the_line_limit_is_refused(tmp_path: Path) -> None:
    rows = uci_rows(4)
    rows[3] = rows[3].replace("A13", "A13" + "z" * 5000)
    problem = only(write(tmp_path / "long.csv", uci_csv(rows)), limits=InputLimits(max_line_bytes=4096))
    assert problem.rows == (4,) and "line longer than the limit of 4.0 KB" in problem.message


def test_a_header_line_without_end_is_refused_at_the_line_limit(tmp_path: Path) -> None:
    data = ("year;month;" + "y" * 100_000).encode()
    assert "header line is longer than the limit" in only(write(tmp_path / "one-line.csv", data)).message


def test_rows_with_more_fields_than_the_header_are_refused_not_cut(tmp_path: Path) -> None:
    rows = uci_rows(6)
    rows[2] += ";extra;values"
    problem = only(write(tmp_path / "extra.csv", uci_csv(rows)))
    assert "more fields than the header's 14 columns" in problem.message and problem.rows == (3,)


def test_a_trailing_delimiter_and_quoted_delimiters_are_not_extra_fields(tmp_path: Path) -> None:
    trailing = uci_csv([row + ";" for row in uci_rows(6)])
    assert len(load_events(write(tmp_path / "trailing.csv", trailing)).events) == 6
    rows = multi_rows(*({"category_code": f'"a,b,c,{i}"', "product_id": str(i)} for i in range(4)))
    quoted = write(tmp_path / "quoted.csv", csv_text(rows, MULTI_COLUMNS).encode())
    assert len(load_events(quoted).events) == 4


def test_parquet_with_too_many_columns_is_refused(tmp_path: Path) -> None:
    frame = pd.DataFrame({f"c{i}": [1, 2] for i in range(250)})
    path = tmp_path / "wide.parquet"
    frame.to_parquet(path)
    assert "Parquet file has 250 columns, over the limit of 200" in only(path).message


def test_scan_counts_rows_across_chunk_boundaries() -> None:
    from ml.data import limits as L

    line = b"a,b,c\n"
    data = line * (L.SCAN_CHUNK // len(line) + 50) + b"a,b,c,d,e\n" + b"a\x00,b\n"
    scan = scan_lines(data, ",", InputLimits(max_columns=4), header_fields=3)
    rows = {p.message.split(" ")[0]: p for p in scan.problems}
    n_lines = L.SCAN_CHUNK // len(line) + 50
    assert rows["more"].rows == (n_lines,) and rows["a"].rows == (n_lines + 1,)
    assert [w[0] for w in scan.wider_than_header] == [n_lines]


# ----------------------------------------------------------------- sizes of pipes and devices
def test_dev_zero_stops_at_the_limit(tmp_path: Path) -> None:
    problem = only(Path("/dev/zero"), max_bytes=2_000_000)
    assert "more than the limit of 1.9 MB (reading stopped there" in problem.message


def test_cli_score_of_dev_zero_exits_2_at_the_limit(tmp_path: Path) -> None:
    env = {**os.environ, ENV_MAX_INPUT_MB: "1", "PYTHONPATH": str(PROJECT_ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "ml", "--models-dir", str(tmp_path / "m"), "score", "/dev/zero", "-o", "out.csv"],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "more than the limit of 1 MB (reading stopped there" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "out.csv").exists()


def test_a_pipe_longer_than_the_limit_is_refused_and_a_short_one_read(tmp_path: Path) -> None:
    fifo = tmp_path / "clicks.fifo"
    os.mkfifo(fifo)

    def feed(data: bytes) -> threading.Thread:
        def run() -> None:
            try:
                with fifo.open("wb") as out:
                    out.write(data)
            except BrokenPipeError:
                pass  # the reader stopped at the limit

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    writer = feed(b"x" * 3_000_000)
    with pytest.raises(ValidationError, match="more than the limit"):
        read_source_bytes(fifo, max_bytes=1_000_000, name="pipe")
    writer.join(10)
    small = uci_csv(uci_rows(8))
    writer = feed(small)
    assert len(load_events(fifo, max_bytes=1_000_000).events) == 8
    writer.join(10)


# ----------------------------------------------------------------- values
def test_a_1e300_price_is_refused_with_its_row(tmp_path: Path) -> None:
    rows = uci_rows(8)
    rows[5] = rows[5].replace(";28;", ";1e300;")
    problem = only(write(tmp_path / "huge.csv", uci_csv(rows)))
    assert problem.column == "price" and problem.rows == (6,) and "1e+300" in problem.message
    events = multi_rows({}, {"price": "1e300", "user_session": "s-2"})
    found = only(write(tmp_path / "events.csv", csv_text(events, MULTI_COLUMNS).encode()))
    assert found.column == "price" and found.rows == (2,) and "implausibly large price" in found.message


def test_the_price_limit_is_configurable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = uci_rows(8)
    rows[1] = rows[1].replace(";28;", ";500;")
    path = write(tmp_path / "prices.csv", uci_csv(rows))
    assert len(load_events(path).events) == 8
    monkeypatch.setenv(ENV_MAX_PRICE, "100")
    assert input_limits().max_price == 100
    problem = only(path)
    assert problem.rows == (2,) and "over 100, set by CLICKSTREAM_MAX_PRICE" in problem.message
    monkeypatch.setenv(ENV_MAX_PRICE, "abc")
    with pytest.raises(ValueError, match="CLICKSTREAM_MAX_PRICE"):
        input_limits()


def test_true_false_prices_in_parquet_are_refused(tmp_path: Path) -> None:
    uci = pd.read_csv(pd.io.common.BytesIO(uci_csv(uci_rows(6))), sep=";")
    uci["price"] = [True, False, True, True, False, True]
    uci.to_parquet(tmp_path / "uci.parquet")
    problem = only(tmp_path / "uci.parquet")
    assert problem.column == "price" and "true/false where a number is expected" in problem.message
    assert problem.count == 6
    events = pd.DataFrame(multi_rows({}, {"user_session": "s-2"}))
    events["price"] = [True, False]
    events.to_parquet(tmp_path / "events.parquet")
    found = only(tmp_path / "events.parquet")
    assert found.column == "price" and "true/false" in found.message and found.rows == (1, 2)


def test_a_nul_byte_after_the_first_8_kb_is_refused_with_its_row(tmp_path: Path) -> None:
    rows = uci_rows(600)  # about 21 KB
    rows[400] = rows[400].replace("A13", "A1\x003")
    data = uci_csv(rows)
    assert data.index(b"\x00") > 8192
    problem = only(write(tmp_path / "nul.csv", data))
    assert problem.rows == (401,) and "NUL byte" in problem.message


def test_a_nul_byte_at_the_start_is_called_binary(tmp_path: Path) -> None:
    assert "binary" in only(write(tmp_path / "bin.csv", b"\x00\x01" + uci_csv(uci_rows(3)))).message


# ----------------------------------------------------------------- property: malformed files never crash
UCI_LOWER = [
    *("year", "month", "day", "order", "country", "session_id", "page1_main_category", "page2_clothing_model"),
    *("colour", "location", "model_photography", "price", "price_2", "page"),
]
PROFILE_HEADERS = (UCI_HEADER.split(";"), UCI_LOWER, list(MULTI_COLUMNS), list(VISITOR_COLUMNS))
CELL_TEXT = st.text(alphabet=st.characters(blacklist_characters='\n\r",;|\t\x00', blacklist_categories=("Cs",)))
CELLS = st.one_of(
    st.integers(-(10**20), 10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(
        [
            "",
            " ",
            "1",
            "2",
            "29",
            "A13",
            "view",
            "purchase",
            "cart",
            "2019-10-01 10:00:00 UTC",
            "1569924000000",
            "1e300",
            "-0",
            "007",
            "true",
            "nan",
            "NULL",
            "s-1",
        ]
    ),
    CELL_TEXT.filter(lambda t: len(t) < 30),
)
EXAMPLES = settings(
    max_examples=int(os.environ.get("CLICKSTREAM_HYPOTHESIS_EXAMPLES", "40")),  # more for a longer hunt
    deadline=timedelta(seconds=10),  # one parse of a small file; generous for a busy 2-core machine
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,  # the same examples on every run, so a failure reproduces
)
LIMITS = InputLimits(max_columns=40, max_line_bytes=4096)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("malformed")


def load_or_refuse(folder: Path, name: str, data: bytes) -> object:
    """Load a real file; only the project's errors may come out, and the file must be left as it was."""
    path = folder / name
    path.write_bytes(data)
    try:
        return load_events(path, max_bytes=200_000, limits=LIMITS)
    except ClickstreamError as exc:
        assert str(exc)  # a message, never an empty one
        return exc
    finally:
        assert path.read_bytes() == data


def valid_cells(header: list[str], n_rows: int) -> list[dict[str, str]]:
    """Valid values for each column of a known header, row by row (distinct events)."""
    if header in (PROFILE_HEADERS[0], PROFILE_HEADERS[1]):
        return [dict(zip(header, row.split(";"), strict=True)) for row in uci_rows(n_rows)]
    if header == PROFILE_HEADERS[2]:
        return [{**MULTI_DEFAULTS, "product_id": str(1000 + i)} for i in range(n_rows)]
    return [{**VISITOR_DEFAULTS, "itemid": str(500 + i)} for i in range(n_rows)]


@st.composite
def tables(draw: st.DrawFn) -> tuple[bytes, int, str]:
    """A header of a known profile (maybe shuffled, cut or padded), valid cells with a few random ones."""
    known = list(draw(st.sampled_from(PROFILE_HEADERS)))
    n_rows = draw(st.integers(0, 12))
    valid = valid_cells(known, n_rows)
    header = draw(st.permutations(known)) if draw(st.booleans()) else known
    if draw(st.booleans()):
        header = header[: draw(st.integers(1, len(header)))]
    header = header + draw(st.lists(st.sampled_from(["x", "extra"]), max_size=2))
    sep = draw(st.sampled_from([",", ";", "\t", "|"]))
    rows = [[row.get(c, "") for c in header] for row in valid]
    for _ in range(draw(st.integers(0, 3)) if rows else 0):  # a few random cells, so some files still load
        rows[draw(st.integers(0, len(rows) - 1))][draw(st.integers(0, len(header) - 1))] = draw(CELLS)
    text = "\n".join(sep.join(r) for r in [header, *rows]) + "\n"
    return text.encode("utf-8"), n_rows, sep


@EXAMPLES
@given(table=tables())
def test_random_cells_under_known_headers_load_whole_or_are_refused(folder: Path, table) -> None:
    data, n_rows, _ = table
    outcome = load_or_refuse(folder, "table.csv", data)
    if not isinstance(outcome, ClickstreamError):
        assert len(outcome.events) == n_rows and outcome.skipped_rows == 0
        assert 1 <= outcome.n_sessions <= n_rows
        assert outcome.events["price"].dropna().between(0, LIMITS.max_price).all()


@st.composite
def cut_files(draw: st.DrawFn) -> tuple[bytes, int]:
    """A valid UCI or event-log file, cut at a random byte, maybe with its delimiter swapped."""
    if draw(st.booleans()):
        full = uci_csv(uci_rows(draw(st.integers(1, 30))))
    else:
        n = draw(st.integers(1, 20))
        events = multi_rows(*({"product_id": str(1000 + i), "user_session": f"s-{i % 3}"} for i in range(n)))
        full = csv_text(events, MULTI_COLUMNS).encode()
    if draw(st.booleans()):
        old = b";" if full.count(b";") > full.count(b",") else b","
        full = full.replace(old, draw(st.sampled_from([b",", b";", b"\t", b" "])))
    return full[: draw(st.integers(0, len(full)))], full.count(b"\n") - 1


@EXAMPLES
@given(cut=cut_files())
def test_truncated_files_and_wrong_delimiters_load_what_is_whole_or_are_refused(folder: Path, cut) -> None:
    data, _ = cut
    outcome = load_or_refuse(folder, "cut.csv", data)
    if not isinstance(outcome, ClickstreamError):
        complete = data.count(b"\n") - 1  # data lines ending in a newline
        assert len(outcome.events) in (complete, complete + 1)  # a cut last line may still hold every field


@st.composite
def gzip_files(draw: st.DrawFn) -> bytes:
    """gzip of a valid file, cut, with flipped bytes, or the magic followed by garbage."""
    inner = uci_csv(uci_rows(draw(st.integers(1, 20))))
    packed = gzip.compress(inner)
    kind = draw(st.sampled_from(["cut", "flip", "garbage", "tail"]))
    if kind == "cut":
        return packed[: draw(st.integers(2, len(packed)))]
    if kind == "flip":
        broken = bytearray(packed)
        for position in draw(st.lists(st.integers(0, len(packed) - 1), min_size=1, max_size=4)):
            broken[position] ^= draw(st.integers(1, 255))
        return bytes(broken)
    if kind == "garbage":
        return b"\x1f\x8b" + draw(st.binary(max_size=300))
    return packed + draw(st.binary(min_size=1, max_size=50))


@EXAMPLES
@given(data=gzip_files())
def test_damaged_gzip_loads_or_is_refused(folder: Path, data: bytes) -> None:
    load_or_refuse(folder, "damaged.csv.gz", data)


@EXAMPLES
@given(
    data=st.one_of(
        st.binary(max_size=2000), st.binary(max_size=200).map(lambda b: b"PAR1" + b), st.text().map(str.encode)
    )
)
def test_random_bytes_load_or_are_refused(folder: Path, data: bytes) -> None:
    load_or_refuse(folder, "random.bin", data)
