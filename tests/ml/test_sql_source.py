"""Reading event logs from a database, against the real PostgreSQL on this machine (no mocks).

The reference is the same event log written as CSV and parsed by
``parse_bytes``: a table or a query must give the same raw table, whatever the
chunk size. Without a server the PostgreSQL tests skip, except in CI (``CI``
set), where they fail. The SQLite tests need no server.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from ml.config import MEGABYTE
from ml.data.reading import format_size, parse_bytes
from ml.data.sql import SqlTable, is_sql_url, read_sql_source, redact_url
from ml.errors import ValidationError

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SECRET = "s3cret"
MAX_BYTES = 50 * MEGABYTE
# The column types of the multi-category-store log, as a shop database holds them.
COLUMN_TYPES = {
    "event_time": sa.Text,
    "event_type": sa.Text,
    "product_id": sa.BigInteger,
    "category_id": sa.BigInteger,
    "category_code": sa.Text,
    "brand": sa.Text,
    "price": sa.Float(precision=53),
    "user_id": sa.BigInteger,
    "user_session": sa.Text,
}
N_EVENTS = 40
ALL_NULL_BRANDS = 8  # more than a chunk of 7 rows, so one chunk's brand column is all NULL


def event_log(seed: int = 7) -> pd.DataFrame:
    """A small multi-category-store event log with NULL categories and brands."""
    rng = np.random.default_rng(seed)
    seconds = np.sort(rng.integers(0, 86_400, N_EVENTS))
    times = pd.Timestamp("2019-10-01") + pd.to_timedelta(seconds, unit="s")
    sessions = [str(uuid.UUID(bytes=rng.bytes(16))) for _ in range(6)]
    session_of = rng.integers(0, len(sessions), N_EVENTS)
    codes = np.array(["electronics.smartphone", "appliances.kitchen.washer", "apparel.shoes", None], dtype=object)
    brands = np.array(["samsung", "apple", "lg", None], dtype=object)
    brand = brands[rng.integers(0, len(brands), N_EVENTS)]
    brand[:ALL_NULL_BRANDS] = None
    return pd.DataFrame(
        {
            "event_time": times.strftime("%Y-%m-%d %H:%M:%S UTC"),
            "event_type": rng.choice(["view", "view", "view", "cart", "purchase"], N_EVENTS),
            "product_id": rng.integers(1_000_000, 60_000_000, N_EVENTS),
            "category_id": rng.integers(2_053_013_552_226_107_603, 2_175_419_595_093_967_522, N_EVENTS),
            "category_code": codes[rng.integers(0, len(codes), N_EVENTS)],
            "brand": brand,
            "price": np.round(rng.uniform(0.5, 2_500, N_EVENTS), 2),
            "user_id": 512_000_000 + session_of,
            "user_session": [sessions[i] for i in session_of],
        }
    )


def csv_reference(log: pd.DataFrame) -> pd.DataFrame:
    """The raw table the file reader makes of the same log written as CSV (types inferred, as a database has them)."""
    data = log.to_csv(index=False).encode("utf-8")
    return parse_bytes(data, max_bytes=MAX_BYTES, source="events.csv", text_columns=lambda names: ()).frame


def refusal(call: Callable[[], object], *fragments: str) -> str:
    """Run ``call``, expect one ValidationError problem containing every fragment; return its text."""
    with pytest.raises(ValidationError) as info:
        call()
    error = info.value
    text = str(error)
    assert len(error.problems) == 1, text
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in {text!r}"
    assert SECRET not in text and SECRET not in str(error.to_dict())
    return text


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def engine() -> Iterator[sa.Engine]:
    engine = sa.create_engine(POSTGRES_URL, poolclass=NullPool)
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as exc:
        engine.dispose()
        reason = f"PostgreSQL is not answering at {POSTGRES_URL}: {str(exc.orig).splitlines()[0]}"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must start it (.ci/run)")
        pytest.skip(reason)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def log() -> pd.DataFrame:
    return event_log()


@pytest.fixture
def make_table(engine: sa.Engine) -> Iterator[Callable[..., str]]:
    """Write a frame to a uniquely named table (optionally in a schema); all are dropped afterwards."""
    made: list[tuple[str | None, str]] = []

    def make(frame: pd.DataFrame, schema: str | None = None, dtype: dict | None = None) -> str:
        name = unique("events")
        made.append((schema, name))
        frame.to_sql(name, engine, schema=schema, index=False, dtype=dtype)
        return name

    yield make
    for schema, name in made:
        sa.Table(name, sa.MetaData(), schema=schema).drop(engine, checkfirst=True)


@pytest.fixture
def events(log: pd.DataFrame, make_table: Callable[..., str]) -> str:
    return make_table(log, dtype=COLUMN_TYPES)


@pytest.fixture
def schema(engine: sa.Engine) -> Iterator[str]:
    name = unique("clickstream")
    with engine.begin() as connection:
        connection.execute(sa.schema.CreateSchema(name))
    yield name
    with engine.begin() as connection:
        connection.execute(sa.schema.DropSchema(name, cascade=True))


def table_exists(engine: sa.Engine, name: str) -> bool:
    with engine.connect() as connection:
        return sa.inspect(connection).has_table(name)


@pytest.mark.parametrize("chunk_rows", [100_000, 7])
@pytest.mark.parametrize("form", ["table", "query"])
def test_a_table_or_query_reads_as_the_same_raw_table_as_the_csv(log, events, form, chunk_rows):
    source = {"table": events} if form == "table" else {"query": f"  SELECT * FROM {events};  "}
    raw = read_sql_source(POSTGRES_URL, **source, chunk_rows=chunk_rows, max_bytes=MAX_BYTES)
    assert isinstance(raw, SqlTable)
    assert (raw.container, raw.delimiter) == ("sql", None)
    assert raw.origin == (f"PostgreSQL table public.{events}" if form == "table" else "PostgreSQL query")
    pd.testing.assert_frame_equal(raw.frame, csv_reference(log))


def test_rows_come_in_chunks_of_the_given_size(events, caplog):
    with caplog.at_level(logging.INFO, logger="ml.data.sql"):
        read_sql_source(POSTGRES_URL, table=events, chunk_rows=7, max_bytes=MAX_BYTES)
    assert f"read {N_EVENTS} rows in 6 chunk(s)" in caplog.text


def test_the_connection_is_closed_after_a_read_and_after_every_failure(engine, events):
    application = unique("clickstream_test")
    url = f"{POSTGRES_URL}?application_name={application}"
    read_sql_source(url, table=events, chunk_rows=7, max_bytes=MAX_BYTES)
    failing = [
        {"table": events, "chunk_rows": 7, "max_bytes": 1_000},
        {"query": f"SELECT * FROM {events} WHERE false", "max_bytes": MAX_BYTES},
        {"query": f"SELECT no_such_column FROM {events}", "max_bytes": MAX_BYTES},
        {"table": unique("missing"), "max_bytes": MAX_BYTES},
    ]
    for arguments in failing:
        with pytest.raises(ValidationError):
            read_sql_source(url, **arguments)
    activity = sa.table("pg_stat_activity", sa.column("application_name"))
    count = sa.select(sa.func.count()).select_from(activity).where(activity.c.application_name == application)
    for _ in range(50):  # a closed connection's server process ends a moment after the client leaves
        with engine.connect() as connection:
            if not (open_connections := connection.execute(count).scalar()):
                break
        time.sleep(0.1)
    assert open_connections == 0


def test_a_schema_qualified_table_reads_and_a_missing_one_lists_the_schema_tables(log, make_table, schema):
    name = make_table(log, schema=schema, dtype=COLUMN_TYPES)
    raw = read_sql_source(POSTGRES_URL, table=f"{schema}.{name}", chunk_rows=7, max_bytes=MAX_BYTES)
    assert raw.origin == f"PostgreSQL table {schema}.{name}"
    pd.testing.assert_frame_equal(raw.frame, csv_reference(log))
    refusal(
        lambda: read_sql_source(POSTGRES_URL, table=f"{schema}.missing", max_bytes=MAX_BYTES),
        f"no table '{schema}.missing'",
        f"tables in {schema}: {name}",
    )
    refusal(lambda: read_sql_source(POSTGRES_URL, table="no_such_schema.events", max_bytes=MAX_BYTES), "no schema")


def test_text_ids_keep_their_leading_zeros_and_numbers_stay_numbers(make_table):
    frame = pd.DataFrame({"session_id": ["007", "0100"], "clicks": [3, 4], "price": [1.5, None]})
    name = make_table(frame)
    read = read_sql_source(POSTGRES_URL, table=name, max_bytes=MAX_BYTES).frame
    assert read["session_id"].tolist() == ["007", "0100"]
    assert pd.api.types.is_string_dtype(read["session_id"])
    assert read["clicks"].dtype == "int64" and read["price"].dtype == "float64"


def test_reading_stops_with_the_limit_named_once_the_rows_pass_it(events):
    limit = 1_000
    refusal(
        lambda: read_sql_source(POSTGRES_URL, table=events, chunk_rows=7, max_bytes=limit),
        f"limit of {format_size(limit)}",
        "stopped after 7 rows",
    )


def test_an_unknown_table_is_named(engine):
    missing = unique("no_such_events")
    refusal(lambda: read_sql_source(POSTGRES_URL, table=missing, max_bytes=MAX_BYTES), missing, "tables in public")


def test_a_server_that_does_not_answer_is_named_without_the_password():
    url = f"postgresql+psycopg://postgres:{SECRET}@127.0.0.1:1/test"
    text = refusal(
        lambda: read_sql_source(url, table="events", max_bytes=MAX_BYTES),
        "cannot connect to PostgreSQL database 'test' on 127.0.0.1:1 as user 'postgres'",
    )
    assert "postgres:***@127.0.0.1:1/test" in text  # the source names the URL, masked


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("DROP TABLE {t}", "starts with DROP"),
        ("SELECT 1; DROP TABLE {t}", "more than one statement"),
        ("select * from {t} /* ; */; ; delete from {t}", "more than one statement"),
        ("WITH gone AS (DELETE FROM {t} RETURNING *) SELECT * FROM gone", "contains DELETE"),
        ("SELECT * INTO copy_of_events FROM {t}", "contains INTO"),
        ("", "the query is empty"),
    ],
)
def test_a_query_that_is_not_one_select_is_refused_and_nothing_changes(engine, events, query, expected):
    refusal(lambda: read_sql_source(POSTGRES_URL, query=query.format(t=events), max_bytes=MAX_BYTES), expected)
    assert table_exists(engine, events)


def test_a_select_that_writes_through_a_function_is_stopped_by_the_read_only_transaction(engine, events):
    function = unique("write_event")
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                f"CREATE FUNCTION {function}() RETURNS bigint LANGUAGE sql AS "
                f"$$ INSERT INTO {events} (event_type) VALUES ('purchase') RETURNING 1::bigint $$"
            )
        )
    try:
        refusal(
            lambda: read_sql_source(POSTGRES_URL, query=f"SELECT {function}()", max_bytes=MAX_BYTES),
            "read-only transaction",
        )
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text(f"DROP FUNCTION {function}()"))
    assert len(read_sql_source(POSTGRES_URL, table=events, max_bytes=MAX_BYTES).frame) == N_EVENTS


def test_semicolons_and_keywords_inside_literals_and_comments_are_not_statements(events):
    query = f"SELECT ';' AS mark, 'delete; it''s' AS note, $$ into $$ AS quoted FROM {events} -- drop; later\n;"
    frame = read_sql_source(POSTGRES_URL, query=query, max_bytes=MAX_BYTES).frame
    assert frame.iloc[0].tolist() == [";", "delete; it's", " into "]


def test_a_table_name_with_sql_in_it_is_refused_not_run(engine, events):
    refusal(
        lambda: read_sql_source(POSTGRES_URL, table=f"{events}; DROP TABLE {events}", max_bytes=MAX_BYTES),
        "is not a table name",
    )
    assert table_exists(engine, events)


def test_an_empty_result_and_a_database_error_are_reported(events, make_table, log):
    empty = make_table(log.head(0), dtype=COLUMN_TYPES)
    refusal(lambda: read_sql_source(POSTGRES_URL, table=empty, max_bytes=MAX_BYTES), f"table {empty} returned no rows")
    where_false = f"SELECT * FROM {events} WHERE false"
    refusal(lambda: read_sql_source(POSTGRES_URL, query=where_false, max_bytes=MAX_BYTES), "query returned no rows")
    refusal(
        lambda: read_sql_source(POSTGRES_URL, query=f"SELECT no_such_column FROM {events}", max_bytes=MAX_BYTES),
        "reading the query failed in the database",
        'column "no_such_column" does not exist',
    )
    repeated = f"SELECT brand, brand FROM {events}"
    refusal(lambda: read_sql_source(POSTGRES_URL, query=repeated, max_bytes=MAX_BYTES), "more than one column")


def test_a_table_and_a_query_together_or_neither_is_refused_with_the_given_name():
    text = refusal(
        lambda: read_sql_source(POSTGRES_URL, table="t", query="SELECT 1", max_bytes=MAX_BYTES, name="shop db"),
        "not both",
    )
    assert text.startswith("'shop db' cannot be used")
    refusal(lambda: read_sql_source(POSTGRES_URL, max_bytes=MAX_BYTES), "give a table or a query")


def test_a_missing_driver_names_the_pip_package():
    if importlib.util.find_spec("pymysql"):
        pytest.skip("PyMySQL is installed here")
    url = f"mysql+pymysql://shop:{SECRET}@127.0.0.1/shop"
    refusal(lambda: read_sql_source(url, table="events", max_bytes=MAX_BYTES), "pip install 'PyMySQL'")


def test_an_sqlite_file_reads_like_the_csv_and_a_missing_file_is_not_created(log, tmp_path: Path):
    path = tmp_path / "shop.sqlite"
    sqlite = sa.create_engine(f"sqlite:///{path}", poolclass=NullPool)
    log.to_sql("events", sqlite, index=False, dtype=COLUMN_TYPES)
    sqlite.dispose()
    raw = read_sql_source(f"sqlite:///{path}", table="events", chunk_rows=7, max_bytes=MAX_BYTES)
    assert raw.origin == "SQLite table main.events"
    pd.testing.assert_frame_equal(raw.frame, csv_reference(log))
    refusal(
        lambda: read_sql_source(f"sqlite:///{path}", query="SELECT * FROM events; DELETE FROM events", max_bytes=1),
        "more than one statement",
    )
    missing = tmp_path / "missing.sqlite"
    refusal(lambda: read_sql_source(f"sqlite:///{missing}", table="events", max_bytes=MAX_BYTES), "does not exist")
    assert not missing.exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://postgres@127.0.0.1:5432/test", True),
        ("postgresql+psycopg://postgres:pw@db.example.com/shop", True),
        ("mysql+pymysql://shop@localhost/shop", True),
        ("sqlite:///data/shop.sqlite", True),
        (r"C:\data\events.csv", False),
        ("C://data/events.csv", False),
        ("data/events.csv.gz", False),
        ("/tmp/events.parquet", False),
        ("https://example.com/events.csv", False),
    ],
)
def test_a_database_url_is_told_from_a_file_path(text, expected):
    assert is_sql_url(text) is expected


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            f"postgresql+psycopg://postgres:{SECRET}@127.0.0.1:1/test",
            "postgresql+psycopg://postgres:***@127.0.0.1:1/test",
        ),
        (f"postgresql://shop@db/shop?password={SECRET}", "postgresql://shop@db/shop?password=***"),
        (f"not a url://user:{SECRET}@host", "not a url://user:***@host"),
        (POSTGRES_URL, POSTGRES_URL),
    ],
)
def test_a_redacted_url_masks_the_password(url, shown):
    assert redact_url(url) == shown


def test_a_table_loads_to_the_same_canonical_events_as_the_file(log, events, tmp_path: Path):
    """End to end: the profile is detected from the table's columns and every event comes out as from the CSV."""
    from ml.data.loading import load_events

    path = tmp_path / "events.csv"
    log.to_csv(path, index=False)
    from_file = load_events(path, max_bytes=MAX_BYTES)
    from_table = load_events(POSTGRES_URL, table=events, max_bytes=MAX_BYTES)
    from_query = load_events(POSTGRES_URL, query=f"SELECT * FROM {events}", max_bytes=MAX_BYTES)
    assert from_table.profile.name == from_file.profile.name == "multi_category_store"
    for loaded in (from_table, from_query):
        pd.testing.assert_frame_equal(loaded.events, from_file.events)
        assert loaded.codebooks == from_file.codebooks
    assert from_table.source.startswith("PostgreSQL table")
