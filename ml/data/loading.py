"""Load an event log in any accepted form into validated canonical events.

``load_events`` is the one entry point the CLI, the dashboard and the tests
use: it checks the size limit, detects the container and delimiter, detects
the data profile from the header (or takes the one given), maps and validates
every value, cuts sessions by inactivity where the source has none, numbers
the events within each session, and returns the events with a short report of
how the source was read. Bad input raises ``ValidationError`` listing all
problems; with ``skip_invalid_rows`` exactly the reported rows are dropped and
counted instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ml.config import MAX_PRICE, InputLimits, get_settings, input_limits
from ml.data import schema as S
from ml.data.codes import Codebook
from ml.data.events import MappedEvents, map_events
from ml.data.limits import parse_gate
from ml.data.profiles import (
    FIELD_SESSION,
    UCI,
    DataProfile,
    check_session_gap,
    detect_profile,
    load_profile,
)
from ml.data.reading import RawTable, TextColumns, parse_bytes, read_source_bytes, uci_compact_columns, uci_text_columns
from ml.data.sessionise import cut_sessions, positions_in_sessions
from ml.data.sql import is_sql_url, read_sql_source
from ml.data.validation import validate_frame
from ml.errors import Problem, ValidationError, invalid_row_mask, is_row_problem

DELIMITER_NAMES = {";": "semicolon", ",": "comma", "\t": "tab", "|": "pipe"}
UCI_DIMENSIONS = (S.COUNTRY, S.COLOUR, S.LOCATION, S.PHOTOGRAPHY, S.PRICE_2, S.PAGE)
# Fits int64 exactly and reads back as the same text: "007", "+7" or "-0" stay text, or "7" and "007" would merge.
INTEGER_ID = r"-?(?:0|[1-9]\d{0,17})"


@dataclass(frozen=True)
class LoadedEvents:
    """Validated canonical events plus what a user needs to know about how they were read."""

    events: pd.DataFrame
    source: str
    input_form: str
    warnings: tuple[str, ...]
    label_source: str  # "proxy", "input" (a label column) or "purchases" (the events have purchases)
    data_hash: str
    n_bytes: int
    profile: DataProfile = UCI
    codebooks: Mapping[str, Codebook] = field(default_factory=dict)
    dimensions: tuple[str, ...] = UCI_DIMENSIONS
    skipped_rows: int = 0
    skipped_problems: tuple[Problem, ...] = ()
    other_events: Mapping[str, int] = field(default_factory=dict)

    @property
    def clicks(self) -> pd.DataFrame:
        """The events (the UCI file's events are all clicks on products)."""
        return self.events

    @property
    def n_sessions(self) -> int:
        return int(self.events[S.SESSION_ID].nunique())

    @property
    def has_timestamps(self) -> bool:
        return S.TIMESTAMP in self.events

    def event_counts(self) -> dict[str, int]:
        """Events by canonical type (view, cart, purchase, other)."""
        counts = np.bincount(self.events[S.EVENT_TYPE].to_numpy(), minlength=len(S.EVENT_NAMES))
        return {name: int(counts[code]) for code, name in S.EVENT_NAMES.items()}

    def summary(self) -> dict[str, object]:
        """Rows, sessions, date range, profile and form: the head of a validation report."""
        dates = self.events[S.DATE]
        return {
            "source": self.source,
            "input_form": self.input_form,
            "profile": self.profile.name,
            "profile_title": self.profile.title,
            "rows": len(self.events),
            "sessions": self.n_sessions,
            "events": self.event_counts(),
            "first_date": str(dates.min().date()) if len(dates) else None,
            "last_date": str(dates.max().date()) if len(dates) else None,
            "label_source": self.label_source,
            "dimensions": list(self.dimensions),
            "skipped_rows": self.skipped_rows,
            "warnings": list(self.warnings),
        }


def uci_codebooks() -> dict[str, Codebook]:
    """The UCI file's published codebook for its coded columns."""
    return {column: dict(S.CODEBOOK[column]) for column in (S.CATEGORY, *UCI_DIMENSIONS) if column in S.CODEBOOK}


def _header_profile(profile: DataProfile | None, names: Sequence[str]) -> DataProfile | None:
    """The profile given, or the one the header names (``None`` when it names none)."""
    if profile is not None:
        return profile
    try:
        return detect_profile(names)
    except ValidationError:
        return None


def _profile_text_columns(profile: DataProfile | None) -> TextColumns:
    """Which CSV columns to read as text: IDs and labels, so leading zeros and long numbers survive."""

    def text_columns(names: Sequence[str]) -> Collection[str]:
        chosen = _header_profile(profile, names)
        if chosen is None:
            return ()
        if chosen.is_uci:
            return uci_text_columns(names)
        ids = {c for f, c in chosen.columns.items() if f not in ("timestamp", "price", "revenue", "order", "date")}
        ids |= set(chosen.fallbacks.values()) | set(chosen.session_key) | set(chosen.dimensions.values())
        wanted = {S.normalise_header(c) for c in ids}
        return [name for name in names if S.normalise_header(name) in wanted]

    return text_columns


def _profile_compact_columns(profile: DataProfile | None) -> TextColumns:
    """Which CSV columns may come compact (small integers, encoded text): the UCI file's, which validation reads."""

    def compact_columns(names: Sequence[str]) -> Collection[str]:
        chosen = _header_profile(profile, names)
        return uci_compact_columns(names) if chosen is not None and chosen.is_uci else ()

    return compact_columns


def _form(raw: RawTable, header_form: str) -> str:
    if raw.container == "parquet":
        return f"Parquet with {header_form} column names"
    if raw.container == "sql":
        return f"{getattr(raw, 'origin', 'database table')} read as {header_form}"
    delimiter = DELIMITER_NAMES.get(raw.delimiter or ",", repr(raw.delimiter))
    gz = "gzip-compressed " if raw.container == "csv.gz" else ""
    return f"{gz}{delimiter}-separated CSV with {header_form} headers"


def load_events(
    source: str | Path | bytes,
    *,
    name: str | None = None,
    max_bytes: int | None = None,
    profile: DataProfile | str | Path | None = None,
    skip_invalid_rows: bool = False,
    session_gap_minutes: float | None = None,
    codebooks: Mapping[str, Codebook] | None = None,
    table: str | None = None,
    query: str | None = None,
    limits: InputLimits | None = None,
) -> LoadedEvents:
    """Read, detect, map and validate an event log (a path, raw bytes, or an SQLAlchemy URL).

    ``profile`` is a profile, a TOML profile file, or ``None`` to detect one
    from the header. ``codebooks`` codes text values as another dataset did
    (scoring a file with models trained on that dataset). A database source
    needs ``table`` or ``query``. ``limits`` (columns, line length, price,
    parses at once) default to the environment's; at most ``limits.max_parses``
    loads run at once in a process, a further one waits and then raises
    ``ServerBusy``.
    """
    if max_bytes is None:
        max_bytes = get_settings().max_input_bytes
    limits = limits or input_limits()
    if isinstance(profile, str | Path):
        profile = load_profile(profile)
    options = {
        "profile": profile,
        "skip_invalid_rows": skip_invalid_rows,
        "session_gap_minutes": session_gap_minutes,
        "codebooks": codebooks,
        "max_price": limits.max_price,
    }
    with parse_gate(limits.max_parses).slot(limits.parse_wait_s):
        return _load(source, name, max_bytes, limits, table, query, options)


def _load(
    source: str | Path | bytes,
    name: str | None,
    max_bytes: int,
    limits: InputLimits,
    table: str | None,
    query: str | None,
    options: dict,
) -> LoadedEvents:
    profile = options["profile"]
    if isinstance(source, str) and is_sql_url(source):
        raw = read_sql_source(source, table=table, query=query, max_bytes=max_bytes, name=name)
        display = name or raw.origin
        return events_from_table(raw, source=display, data_hash=frame_hash(raw.frame), n_bytes=0, **options)
    display = name or (Path(source).name if not isinstance(source, bytes) else "upload")
    data = read_source_bytes(source, max_bytes=max_bytes, name=display)
    raw = parse_bytes(
        data,
        max_bytes=max_bytes,
        source=display,
        text_columns=_profile_text_columns(profile),
        limits=limits,
        compact_columns=_profile_compact_columns(profile),
    )
    return events_from_table(
        raw, source=display, data_hash=hashlib.sha256(data).hexdigest(), n_bytes=len(data), **options
    )


def events_from_table(
    raw: RawTable,
    *,
    source: str,
    data_hash: str,
    n_bytes: int,
    profile: DataProfile | None = None,
    skip_invalid_rows: bool = False,
    session_gap_minutes: float | None = None,
    codebooks: Mapping[str, Codebook] | None = None,
    max_price: float = MAX_PRICE,
) -> LoadedEvents:
    """Canonical events from a parsed table (a file's or a database query's)."""
    if session_gap_minutes is not None:
        check_session_gap(session_gap_minutes, "--session-gap", source)
    profile = profile or detect_profile(list(raw.frame.columns), source=source)
    if profile.is_uci:
        canonical = validate_frame(raw.frame, source=source, skip_invalid_rows=skip_invalid_rows, max_price=max_price)
        warnings = canonical.warnings
        if session_gap_minutes is not None:
            warnings = (*warnings, "the session gap has no effect: the UCI file names its sessions")
        return LoadedEvents(
            events=canonical.clicks,
            source=source,
            input_form=_form(raw, canonical.header_form),
            warnings=warnings,
            label_source="input" if canonical.has_real_label else "proxy",
            data_hash=data_hash,
            n_bytes=n_bytes,
            profile=UCI,
            codebooks=uci_codebooks(),
            dimensions=UCI_DIMENSIONS,
            skipped_rows=canonical.skipped_rows,
            skipped_problems=canonical.skipped_problems,
        )
    profile = profile.with_session_gap(session_gap_minutes)
    frame = raw.frame
    mapped = map_events(frame, profile, source=source, codebooks=codebooks, max_price=max_price)
    problems = (*raw.problems, *mapped.problems)
    skipped, skipped_problems = 0, ()
    if problems:
        fixable = all(is_row_problem(p) for p in problems)
        if not skip_invalid_rows or not fixable:
            raise ValidationError(problems, source=source)
        invalid = invalid_row_mask(problems, len(frame))
        if invalid.all():
            everything = Problem("every row has a problem; nothing is left to keep")
            raise ValidationError([*problems, everything], source=source)
        skipped, skipped_problems = int(invalid.sum()), problems
        kept = frame[~invalid].reset_index(drop=True)
        mapped = map_events(kept, profile, source=source, codebooks=codebooks, max_price=max_price)
        if mapped.problems:
            # Dropping rows can leave a file-level problem (only 'other' events left, say): report all of it.
            raise ValidationError([*problems, *mapped.problems], source=source)
    events = finish_events(mapped, profile)
    warnings = list(mapped.warnings)
    if session_gap_minutes is not None and not profile.cuts_sessions:
        warnings.append(
            "the session gap has no effect on sessions the source names; it only cuts rows without a session ID"
        )
    return LoadedEvents(
        events=events,
        source=source,
        input_form=_form(raw, f"'{profile.title}'"),
        warnings=tuple(warnings),
        label_source="purchases" if (events[S.EVENT_TYPE].to_numpy() == S.EVENT_PURCHASE).any() else "proxy",
        data_hash=data_hash,
        n_bytes=n_bytes,
        profile=profile,
        codebooks=mapped.codebooks,
        dimensions=mapped.dimensions,
        skipped_rows=skipped,
        skipped_problems=tuple(skipped_problems),
        other_events=mapped.other_events,
    )


def _session_column(text: pd.Series) -> pd.Series:
    """Integer-looking session IDs become int64; anything else stays text."""
    codes, uniques = pd.factorize(text)
    distinct = pd.Series(uniques, dtype="string")
    if len(distinct) and bool(distinct.str.fullmatch(INTEGER_ID).all()):
        return pd.Series(distinct.astype("int64").to_numpy()[codes])
    return text.astype("string")


def finish_events(mapped: MappedEvents, profile: DataProfile) -> pd.DataFrame:
    """Cut missing sessions from users and times, number events within sessions, order the columns."""
    fields = mapped.fields
    sessions = (
        fields[FIELD_SESSION] if FIELD_SESSION in fields else pd.Series(pd.NA, index=fields.index, dtype="string")
    )
    missing = sessions.isna().to_numpy()
    if missing.any():
        cut = cut_sessions(
            fields.loc[missing, S.USER_ID].reset_index(drop=True),
            fields[S.TIMESTAMP].to_numpy()[missing],
            profile.session_gap_minutes,
        )
        sessions = sessions.copy()
        sessions[missing] = cut.to_numpy()
    session_ids = _session_column(sessions)
    session_codes = pd.factorize(session_ids)[0]
    product_codes, product_labels = pd.factorize(fields[S.PRODUCT], sort=True)
    if S.TIMESTAMP in fields:
        dates = fields[S.TIMESTAMP].to_numpy().astype("datetime64[D]").astype("datetime64[s]")
    else:
        dates = fields[S.DATE].to_numpy()
    if S.ORDER in fields:
        order = fields[S.ORDER].to_numpy().astype(np.int32)
    else:
        time_key = (fields[S.TIMESTAMP] if S.TIMESTAMP in fields else fields[S.DATE]).to_numpy().astype(np.int64)
        order = positions_in_sessions(session_codes, [time_key, fields[S.EVENT_TYPE].to_numpy(), product_codes])
    out = {
        S.SESSION_ID: session_ids.to_numpy(),
        S.ORDER: order,
        S.DATE: dates,
    }
    if S.TIMESTAMP in fields:
        out[S.TIMESTAMP] = fields[S.TIMESTAMP].to_numpy()
    out[S.EVENT_TYPE] = fields[S.EVENT_TYPE].to_numpy().astype(np.int8)
    out[S.PRODUCT] = pd.Categorical.from_codes(product_codes, categories=product_labels.astype(object))
    out[S.CATEGORY] = fields[S.CATEGORY].to_numpy().astype(np.int32)
    out[S.PRICE] = fields[S.PRICE].to_numpy().astype(np.float64)
    if S.LABEL_REVENUE in fields:
        out[S.LABEL_REVENUE] = fields[S.LABEL_REVENUE].to_numpy(dtype=np.float64)
    for text in (S.TRANSACTION, S.USER_ID):
        if text in fields:
            out[text] = fields[text].array
    for dimension in mapped.dimensions:
        out[dimension] = fields[dimension].to_numpy().astype(np.int32)
    return pd.DataFrame(out)


def frame_hash(clicks: pd.DataFrame) -> str:
    """A stable hash of an event frame, for data that did not come from a file."""
    hashed = pd.util.hash_pandas_object(clicks, index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()
