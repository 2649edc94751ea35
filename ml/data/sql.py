"""Read an event log from a database, a table or a query, into a raw table.

The database is named by an SQLAlchemy URL (``postgresql+psycopg://user@host/db``).
Rows are fetched through a server-side cursor in chunks, and reading stops as
soon as the rows held in memory pass the size limit, so a table far larger than
the machine's memory fails fast instead of swapping. Only reading is possible:
a table name is validated as identifiers and quoted by SQLAlchemy, a query must
be one SELECT (or WITH ... SELECT) statement, and on PostgreSQL and SQLite the
connection itself is read-only, so even a crafted query cannot write. That is a
guard against mistakes, not a sandbox: for queries from people you do not
trust, connect as a role that may only read.

Every failure is a ``ValidationError`` with one problem and no password in it;
``redact_url`` is what every message and log line shows of a URL.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.pool import NullPool

from ml.data.reading import RawTable, format_size
from ml.errors import Problem, ValidationError

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_ROWS = 100_000
CONNECT_TIMEOUT_S = 10
MAX_LISTED_NAMES = 15  # tables or schemas named when a table is not found

# dialect[+driver]://  A one-letter "scheme" is a Windows drive (C:\ or C://), never a database.
SQL_URL = re.compile(r"^(?P<dialect>[A-Za-z][A-Za-z0-9_]+)(?:\+[A-Za-z0-9_]+)?://")
NOT_DATABASE_SCHEMES = frozenset(
    {"http", "https", "ftp", "ftps", "sftp", "ssh", "file", "s3", "gs", "gcs", "az", "abfs", "abfss", "hdfs"}
)
SECRET_QUERY_KEYS = frozenset({"password", "passwd", "pwd"})
MASK = "***"

DIALECT_NAMES = {
    "postgresql": "PostgreSQL",
    "mysql": "MySQL",
    "mariadb": "MariaDB",
    "sqlite": "SQLite",
    "mssql": "SQL Server",
    "oracle": "Oracle",
}
# The pip package that provides a driver module SQLAlchemy failed to import.
DRIVER_PACKAGES = {
    "psycopg": "psycopg[binary]",
    "psycopg2": "psycopg2-binary",
    "pg8000": "pg8000",
    "asyncpg": "asyncpg",
    "pymysql": "PyMySQL",
    "MySQLdb": "mysqlclient",
    "mysql": "mysql-connector-python",
    "mariadb": "mariadb",
    "pyodbc": "pyodbc",
    "pymssql": "pymssql",
    "oracledb": "oracledb",
    "cx_Oracle": "cx_Oracle",
}
# Drivers that take a connect_timeout keyword (seconds), so an unreachable host fails in time.
CONNECT_TIMEOUT_DRIVERS = frozenset({"psycopg", "psycopg2", "pymysql", "mysqldb"})

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
# What the statement check does not read: literals, quoted identifiers, comments, dollar quotes.
# Each ends no later than the database would end it, so anything outside stays visible.
QUERY_SKIPPED = re.compile(
    r"""'(?:[^']|'')*'
      | "(?:[^"]|"")*"
      | `[^`]*`
      | --[^\n]*
      | /\*.*?\*/
      | (?<![\w$])\$(?P<tag>(?:[A-Za-z_]\w*)?)\$.*?\$(?P=tag)\$""",
    re.DOTALL | re.VERBOSE,
)
READING_STATEMENTS = frozenset({"select", "with"})
# Words that make a SELECT or WITH statement write: data-modifying CTEs, SELECT ... INTO.
WRITING_WORDS = re.compile(r"\b(insert|update|delete|merge|into)\b", re.IGNORECASE)


@dataclass(frozen=True)
class SqlTable(RawTable):
    """A raw table read from a database, with where it came from (password-free)."""

    origin: str  # "PostgreSQL table public.events", "PostgreSQL query"
    url: str  # the URL with its password masked


def is_sql_url(text: str) -> bool:
    """Whether ``text`` is an SQLAlchemy database URL rather than a file path."""
    match = SQL_URL.match(text.strip())
    return bool(match) and match["dialect"].lower() not in NOT_DATABASE_SCHEMES


def redact_url(url: str | URL) -> str:
    """The URL with any password masked: the only form of a URL a message or log may show."""
    try:
        parsed = sa.make_url(url)
    except (ArgumentError, ValueError):
        return re.sub(r"(://[^:/@]*:)[^@]*@", rf"\1{MASK}@", str(url))
    secrets = {key: MASK for key in parsed.query if key.lower() in SECRET_QUERY_KEYS}
    shown = parsed.update_query_dict(secrets).render_as_string(hide_password=True)
    return shown.replace("%2A%2A%2A", MASK)


@dataclass(frozen=True)
class _Target:
    """The database being read and how to report on it without revealing the password."""

    url: URL
    source: str
    secrets: tuple[str, ...]

    @property
    def backend(self) -> str:
        return self.url.get_backend_name()

    @property
    def dialect_name(self) -> str:
        return DIALECT_NAMES.get(self.backend, self.backend)

    @property
    def where(self) -> str:
        """The database, host, port and user, for a connection message."""
        if self.backend == "sqlite":
            return f"the SQLite database {self.url.database or '(in memory)'}"
        host = self.url.host or "localhost"
        port = f":{self.url.port}" if self.url.port else ""
        user = f" as user '{self.url.username}'" if self.url.username else ""
        return f"{self.dialect_name} database '{self.url.database}' on {host}{port}{user}"

    def fail(self, message: str) -> ValidationError:
        for secret in self.secrets:
            message = message.replace(secret, MASK)
        return ValidationError([Problem(message)], source=self.source)


def _target(url: str, name: str | None) -> _Target:
    shown = redact_url(url)
    if not is_sql_url(url):
        message = f"{shown} is not a database URL (dialect+driver://user@host:port/database)"
        raise ValidationError([Problem(message)], source=name or shown)
    try:
        parsed = sa.make_url(url.strip())
    except (ArgumentError, ValueError) as exc:
        message = f"the database URL {shown} cannot be parsed: {exc}"
        raise ValidationError([Problem(message)], source=name or shown) from None
    secrets = [parsed.password or ""]
    for key, value in parsed.query.items():
        if key.lower() in SECRET_QUERY_KEYS:
            secrets += [value] if isinstance(value, str) else list(value)
    return _Target(url=parsed, source=name or shown, secrets=tuple(s for s in secrets if s))


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _create_engine(target: _Target) -> Engine:
    """An engine for one read: no pool, a connect timeout, read-only where the dialect allows."""
    url = target.url
    database = url.database or ""
    on_disk = database not in ("", ":memory:") and not database.startswith("file:")
    if target.backend == "sqlite" and on_disk and not Path(database).exists():
        # SQLite would create an empty file; a missing file is a mistyped path.
        raise target.fail(f"the SQLite database file {database} does not exist")
    connect_args: dict[str, object] = {}
    if url.get_driver_name() in CONNECT_TIMEOUT_DRIVERS and "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_S
    options = {"postgresql_readonly": True} if target.backend == "postgresql" else {}
    try:
        engine = sa.create_engine(url, poolclass=NullPool, connect_args=connect_args, execution_options=options)
    except NoSuchModuleError:
        raise target.fail(
            f"SQLAlchemy has no dialect '{url.drivername}'; check the start of the URL "
            "(postgresql+psycopg://, mysql+pymysql://, sqlite:///...)"
        ) from None
    except ImportError as exc:
        module = (exc.name or "").split(".")[0]
        package = DRIVER_PACKAGES.get(module, module or "the driver")
        hint = "; or write postgresql+psycopg:// to use psycopg 3" if module == "psycopg2" else ""
        raise target.fail(
            f"the database driver for {url.drivername} is not installed: pip install '{package}'{hint}"
        ) from None
    if target.backend == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_query_only)
    return engine


def _sqlite_query_only(dbapi_connection: object, _record: object) -> None:
    """Make an SQLite connection refuse every write, whatever the query."""
    dbapi_connection.execute("PRAGMA query_only = ON")  # type: ignore[attr-defined]


def _connect(engine: Engine, target: _Target) -> Connection:
    try:
        return engine.connect()
    except DBAPIError as exc:
        raise target.fail(f"cannot connect to {target.where}: {_first_line(exc)}") from None


def _table_name(table: str, target: _Target) -> tuple[str | None, str]:
    """Split ``name`` or ``schema.name``, refusing anything that is not plain identifiers."""
    parts = table.strip().split(".")
    if len(parts) > 2 or not all(IDENTIFIER.match(part) for part in parts):
        raise target.fail(
            f"'{table}' is not a table name: give name or schema.name (letters, digits and _); "
            "to read anything else, give a query"
        )
    return (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])


def _listed(names: list[str]) -> str:
    shown = ", ".join(sorted(names)[:MAX_LISTED_NAMES])
    more = len(names) - MAX_LISTED_NAMES
    return shown + (f" and {more:,} more" if more > 0 else "") if names else "none"


def _check_table(connection: Connection, schema: str | None, name: str, target: _Target) -> str:
    """The table's full name if it exists; otherwise fail naming the tables that do."""
    inspector = sa.inspect(connection)
    in_schema = schema or inspector.default_schema_name
    if inspector.has_table(name, schema=schema):
        return f"{in_schema}.{name}" if in_schema else name
    shown = f"{schema}.{name}" if schema else name
    schemas = inspector.get_schema_names()
    if schema and schema not in schemas:
        raise target.fail(f"there is no schema '{schema}' in {target.where}; schemas: {_listed(schemas)}")
    existing = inspector.get_table_names(schema=schema) + inspector.get_view_names(schema=schema)
    raise target.fail(f"there is no table '{shown}' in {target.where}; tables in {in_schema}: {_listed(existing)}")


def _checked_query(query: str, target: _Target) -> str:
    """The query without trailing semicolons, if it is one reading statement; otherwise fail."""
    # Blank what is not code, keeping every position, so the code's end is where the statement ends.
    visible = QUERY_SKIPPED.sub(lambda skipped: " " * len(skipped[0]), query)
    end = len(re.sub(r"[\s;]+\Z", "", visible))
    statement, visible = query[:end], visible[:end]
    first = re.match(r"[\s(]*(\w+)", visible)
    if not first:
        raise target.fail("the query is empty")
    if first[1].lower() not in READING_STATEMENTS:
        raise target.fail(
            f"only a SELECT (or WITH ... SELECT) query can be read; this one starts with {first[1].upper()}"
        )
    if ";" in visible:
        raise target.fail("the query holds more than one statement; give a single SELECT")
    writing = WRITING_WORDS.search(visible)
    if writing:
        raise target.fail(f"the query contains {writing[1].upper()}; only a query that reads can be used")
    return statement


def _with_dtype_of_filled_chunks(chunks: list[pd.DataFrame]) -> list[pd.DataFrame]:
    """Give all-NULL chunk columns the dtype the column has where it holds values.

    A chunk whose column is all NULL comes back as object dtype; concatenated
    as is, it would turn the whole column into objects. Cast first, the chunks
    concatenate to the dtypes one chunk would have given.
    """
    for column in chunks[0].columns:
        filled = [chunk[column].dtype for chunk in chunks if chunk[column].notna().any()]
        if not filled:
            continue
        dtype = filled[0]
        if pd.api.types.is_bool_dtype(dtype):
            continue  # booleans with NULLs are objects, as in one chunk
        if pd.api.types.is_integer_dtype(dtype):
            dtype = "float64"  # integers with NULLs are floats, as in one chunk
        for chunk in chunks:
            if chunk[column].isna().all():
                chunk[column] = chunk[column].astype(dtype)
    return chunks


def _read_chunks(
    connection: Connection, statement: sa.Executable, what: str, chunk_rows: int, max_bytes: int, target: _Target
) -> pd.DataFrame:
    result = connection.execute(statement, execution_options={"stream_results": True, "yield_per": chunk_rows})
    try:
        columns = list(result.keys())
        repeated = sorted({c for c in columns if columns.count(c) > 1})
        if repeated:
            raise target.fail(
                f"the {what} returns more than one column named {', '.join(repeated)}; "
                "name each column once (SELECT ... AS another_name)"
            )
        chunks: list[pd.DataFrame] = []
        held = n_rows = 0
        for rows in result.partitions():
            chunk = pd.DataFrame.from_records(rows, columns=columns, coerce_float=True)
            chunks.append(chunk)
            n_rows += len(chunk)
            held += int(chunk.memory_usage(deep=True).sum())
            if held > max_bytes:
                raise target.fail(
                    f"the rows read from the {what} take more than the limit of {format_size(max_bytes)} "
                    f"in memory (stopped after {n_rows:,} rows); select fewer rows or columns with a query"
                )
    finally:
        result.close()
    if not chunks:
        raise target.fail(f"the {what} returned no rows")
    logger.info("read %s rows in %d chunk(s), %s in memory", f"{n_rows:,}", len(chunks), format_size(held))
    return pd.concat(_with_dtype_of_filled_chunks(chunks), ignore_index=True)


def read_sql_source(
    url: str,
    *,
    table: str | None = None,
    query: str | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    max_bytes: int,
    name: str | None = None,
) -> SqlTable:
    """Read a database table (``name`` or ``schema.name``) or one SELECT query into a raw table.

    Text columns stay text and numbers stay numbers, as the database typed them.
    Rows come in chunks of ``chunk_rows`` and reading stops with a
    ``ValidationError`` once they take more than ``max_bytes`` in memory.
    ``name`` is what messages call the source (default: the password-free URL).
    The connection is closed in every case.
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    target = _target(url, name)
    if table is not None and query is not None:
        raise target.fail("give either a table or a query to read, not both")
    if table is None and query is None:
        raise target.fail("give a table or a query to read")
    if table is not None:
        schema, table_name = _table_name(table, target)
        what = f"table {table.strip()}"
        statement: sa.Executable = sa.select(sa.literal_column("*")).select_from(sa.table(table_name, schema=schema))
    else:
        what = "query"
        statement = sa.text(_checked_query(query or "", target))
    logger.info("reading the %s from %s in chunks of %s rows", what, redact_url(target.url), f"{chunk_rows:,}")
    engine = _create_engine(target)
    try:
        with _connect(engine, target) as connection:
            origin = f"{target.dialect_name} query"
            if table is not None:
                origin = f"{target.dialect_name} table {_check_table(connection, schema, table_name, target)}"
            frame = _read_chunks(connection, statement, what, chunk_rows, max_bytes, target)
    except DBAPIError as exc:
        raise target.fail(f"reading the {what} failed in the database: {_first_line(exc)}") from None
    finally:
        engine.dispose()
    return SqlTable(frame=frame, container="sql", delimiter=None, origin=origin, url=redact_url(target.url))
