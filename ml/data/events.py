"""Map a raw event-log table through a data profile onto canonical events, collecting every problem.

Nothing is silently coerced and dropped. A row whose time cannot be read, whose
product or event type is missing, whose price is not a finite non-negative
number, or that repeats an earlier event (same session, time, type and
product) is reported with its column and example rows. The caller decides
whether such a file is refused (the default) or kept without exactly the
reported rows (``skip_invalid_rows``).

Text values are processed once per distinct value (factorised first), so
mapping costs little more than one pass over ten million rows.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ml.config import MAX_PRICE
from ml.data import schema as S
from ml.data.codes import NONE_CODE, NONE_LABEL, Codebook, build_codebook, encode
from ml.data.profiles import (
    FIELD_CATEGORY,
    FIELD_DATE,
    FIELD_EVENT,
    FIELD_ORDER,
    FIELD_PRICE,
    FIELD_PRODUCT,
    FIELD_REVENUE,
    FIELD_SESSION,
    FIELD_TIMESTAMP,
    FIELD_TRANSACTION,
    FIELD_USER,
    DataProfile,
    resolve_columns,
)
from ml.errors import Problem, example_rows

log = logging.getLogger(__name__)

EPOCH_UNITS = (("us", 1e14), ("ms", 1e11), ("s", 0.0))  # by magnitude, for "auto"
MAX_OTHER_VALUES_SHOWN = 8


@dataclass(frozen=True)
class Factor:
    """A text column as codes into cleaned distinct values; code -1 is missing."""

    codes: np.ndarray
    values: np.ndarray  # object array of stripped strings

    @property
    def missing(self) -> np.ndarray:
        return self.codes < 0

    def strings(self) -> pd.Series:
        """The cleaned text per row (missing as <NA>)."""
        out = pd.Series(pd.Categorical.from_codes(self.codes, pd.Index(self.values, dtype=object), validate=False))
        return out.astype("string")


def factorise_text(series: pd.Series) -> Factor:
    """Codes and stripped distinct values; empty text counts as missing."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    text = pd.Index(uniques).astype(str).str.strip()
    if pd.api.types.is_float_dtype(series):  # ids read as floats (NaN present): 12.0 -> "12"
        whole = [str(int(v)) if float(v).is_integer() else t for v, t in zip(uniques, text, strict=True)]
        text = pd.Index(whole)
    cleaned, merged = pd.factorize(np.asarray(text, dtype=object))
    empty = np.flatnonzero(np.asarray(merged, dtype=object) == "")
    remap = np.asarray(cleaned, dtype=np.int64)
    if len(empty):
        # Drop the empty value from the distinct list and shift the codes above it down.
        keep = np.ones(len(merged), dtype=bool)
        keep[empty] = False
        new_code = np.cumsum(keep) - 1
        new_code[~keep] = -1
        remap = new_code[cleaned]
        merged = np.asarray(merged, dtype=object)[keep]
    row_codes = np.where(codes >= 0, remap[np.maximum(codes, 0)] if len(remap) else -1, -1)
    return Factor(codes=row_codes.astype(np.int64), values=np.asarray(merged, dtype=object))


@dataclass
class _Collector:
    """Problems and the rows they make invalid."""

    n_rows: int
    problems: list[Problem] = field(default_factory=list)
    invalid: np.ndarray = field(init=False)
    # Rows reported once as empty, so each of their cells is not reported again.
    blank: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.invalid = np.zeros(self.n_rows, dtype=bool)

    def add(self, column: str | None, message: str, mask: np.ndarray, examples: pd.Series | None = None) -> None:
        if self.blank is not None:
            mask = mask & ~self.blank
        positions = np.flatnonzero(mask)
        if not len(positions):
            return
        if examples is not None:
            shown = ", ".join(repr(str(v)) for v in examples[mask].head(3).tolist())
            message = f"{message} (e.g. {shown})"
        self.problems.append(
            Problem(message, column=column, rows=example_rows(positions[:5]), count=len(positions), positions=positions)
        )
        self.invalid |= mask

    def file_problem(self, message: str, column: str | None = None) -> None:
        self.problems.append(Problem(message, column=column))


@dataclass(frozen=True)
class MappedEvents:
    """Canonical event fields of every raw row, with the problems found and which rows they hit.

    Rows keep the raw table's order; ``invalid`` marks the rows any problem names.
    Sessions are not cut yet and there is no ``order`` unless the source has one:
    ``ml.data.loading`` finishes the frame after the invalid rows are handled.
    """

    fields: pd.DataFrame
    codebooks: Mapping[str, Codebook]
    dimensions: tuple[str, ...]
    problems: tuple[Problem, ...]
    invalid: np.ndarray
    warnings: tuple[str, ...]
    other_events: Mapping[str, int]  # source event values mapped to "other", with counts


def _numeric(series: pd.Series, column: str, found: _Collector, *, allow_missing: bool) -> np.ndarray:
    if pd.api.types.is_bool_dtype(series):
        found.add(column, "true/false where a number is expected", np.ones(len(series), dtype=bool))
        return np.full(len(series), np.nan)
    if pd.api.types.is_numeric_dtype(series):
        values = series.to_numpy(dtype="float64", na_value=np.nan)
        missing = np.isnan(values)
        unparsed = np.zeros(len(values), dtype=bool)
        text = None
    else:
        factor = factorise_text(series)
        parsed = pd.to_numeric(pd.Series(factor.values, dtype=object), errors="coerce").to_numpy(dtype="float64")
        values = np.where(factor.missing, np.nan, parsed[np.maximum(factor.codes, 0)] if len(parsed) else np.nan)
        missing = factor.missing
        unparsed = np.isnan(values) & ~missing
        text = factor.strings()
    if not allow_missing:
        found.add(column, "missing value", missing)
    found.add(column, "not a number", unparsed, text)
    found.add(column, "not a finite number", np.isinf(values))
    values = np.where(np.isinf(values), np.nan, values)
    return values


def _amount(frame: pd.DataFrame, column: str, what: str, found: _Collector, max_price: float) -> np.ndarray:
    """A money column: missing is allowed, negative or implausibly large values are reported."""
    values = _numeric(frame[column], column, found, allow_missing=True)
    found.add(column, f"negative {what}", ~np.isnan(values) & (values < 0))
    found.add(
        column,
        f"implausibly large {what} (over {max_price:,.0f}, set by CLICKSTREAM_MAX_PRICE)",
        ~np.isnan(values) & (values > max_price),
        pd.Series(values),
    )
    return values


def _timestamps(series: pd.Series, fmt: str, column: str, found: _Collector) -> np.ndarray:
    """Event times as naive UTC ``datetime64[ms]``; unreadable and missing values are reported.

    Under a strftime pattern, values that do not match it but are unambiguous ISO
    times (``2019-10-01T00:00:00Z``, as a spreadsheet re-save may write) are read too.
    """
    n = len(series)
    if pd.api.types.is_datetime64_any_dtype(series):
        values = pd.to_datetime(series, utc=True).dt.tz_convert(None)
        missing = values.isna().to_numpy()
        found.add(column, "missing time", missing)
        return values.to_numpy(dtype="datetime64[ms]")
    if fmt.startswith("epoch") or (fmt == "auto" and pd.api.types.is_numeric_dtype(series)):
        numbers = _numeric(series, column, found, allow_missing=False)
        unit = fmt.removeprefix("epoch_") if fmt.startswith("epoch") else _epoch_unit(numbers)
        scale = {"s": 1000.0, "ms": 1.0, "us": 0.001}[unit]
        millis = numbers * scale
        out_of_range = ~np.isnan(millis) & ((millis < 0) | (millis > 4102444800000))  # 1970 .. 2100
        found.add(column, f"time out of range for epoch {unit}", out_of_range)
        millis = np.where(out_of_range, np.nan, millis)
        result = np.full(n, np.datetime64("NaT"), dtype="datetime64[ms]")
        ok = ~np.isnan(millis)
        result[ok] = millis[ok].astype(np.int64).astype("datetime64[ms]")
        return result
    factor = factorise_text(series)
    distinct = pd.Series(factor.values, dtype=object)
    if fmt in {"auto", "iso"}:
        parsed = pd.to_datetime(distinct, format="ISO8601", utc=True, errors="coerce")
        if fmt == "auto" and len(distinct) and parsed.isna().all():
            parsed = pd.to_datetime(distinct, format="mixed", utc=True, errors="coerce")
    else:
        parsed = pd.to_datetime(distinct, format=fmt, errors="coerce", utc=True)
        unread = parsed.isna().to_numpy() & distinct.notna().to_numpy()
        if unread.any():
            parsed[unread] = pd.to_datetime(distinct[unread], format="ISO8601", utc=True, errors="coerce")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert(None)
    stamps = parsed.to_numpy(dtype="datetime64[ms]")
    values = np.full(n, np.datetime64("NaT"), dtype="datetime64[ms]")
    has = ~factor.missing
    values[has] = stamps[factor.codes[has]]
    found.add(column, "missing time", factor.missing)
    hint = (
        f"expected format {fmt}" if fmt not in ("auto", "iso") else "expected an ISO time such as 2019-10-01 00:00:00"
    )
    found.add(column, f"not a date/time ({hint})", np.isnat(values) & has, factor.strings())
    return values


def _dates(series: pd.Series, column: str, found: _Collector) -> np.ndarray:
    """Event dates; whole numbers such as 20201101 (GA4's ``event_date``) are read as YYYYMMDD, not as epochs."""
    if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return _timestamps(series, "auto", column, found)
    numbers = _numeric(series, column, found, allow_missing=False)
    known = ~np.isnan(numbers)
    distinct, inverse = np.unique(numbers[known], return_inverse=True)  # a few hundred days at most
    digits = pd.Series([str(int(v)) if v.is_integer() else str(v) for v in distinct], dtype=object)
    parsed = pd.to_datetime(digits, format="%Y%m%d", errors="coerce").to_numpy(dtype="datetime64[ms]")
    values = np.full(len(numbers), np.datetime64("NaT"), dtype="datetime64[ms]")
    values[known] = parsed[inverse]
    shown = pd.Series(np.asarray(digits, dtype=object)[inverse] if len(distinct) else [], index=np.flatnonzero(known))
    found.add(
        column,
        "not a date (expected YYYYMMDD or an ISO date such as 2019-10-01)",
        known & np.isnat(values),
        shown.reindex(range(len(numbers))),
    )
    return values


def _epoch_unit(numbers: np.ndarray) -> str:
    finite = numbers[~np.isnan(numbers)]
    typical = float(np.median(np.abs(finite))) if len(finite) else 0.0
    return next(unit for unit, low in EPOCH_UNITS if typical >= low)


def _codes(
    factor: Factor, name: str, given: Codebook | None, labels: Mapping[str, str] | None
) -> tuple[np.ndarray, Codebook]:
    """Integer codes for a text column: 1 = most frequent value, 0 = missing or (with a given codebook) unseen."""
    values = np.asarray(factor.values, dtype=object)
    if labels:
        # Several source values may share a label: they become one value (and one code).
        labelled = np.asarray([labels.get(v, v) for v in values], dtype=object)
        merged, values = pd.factorize(labelled)
        values = np.asarray(values, dtype=object)
        factor = Factor(codes=np.where(factor.missing, -1, merged[np.maximum(factor.codes, 0)]), values=values)
    if given is None:
        counts = np.bincount(factor.codes[factor.codes >= 0], minlength=len(values))
        given = build_codebook(values, counts)
    value_codes = encode(values, given)
    codes = np.where(factor.missing, NONE_CODE, value_codes[np.maximum(factor.codes, 0)] if len(values) else 0)
    return codes.astype(np.int32), given


def map_events(
    frame: pd.DataFrame,
    profile: DataProfile,
    *,
    source: str | None = None,
    codebooks: Mapping[str, Codebook] | None = None,
    max_price: float = MAX_PRICE,
) -> MappedEvents:
    """Canonical fields of every row of ``frame`` under ``profile`` (not the UCI profile), with problems.

    Prices and revenues over ``max_price`` are reported as data errors.
    """
    profile = resolve_columns(profile, list(frame.columns), source=source)
    found = _Collector(len(frame))
    codebooks = dict(codebooks or {})
    columns = profile.columns
    used = set(profile.source_columns())
    extras = [str(c) for c in frame.columns if str(c) not in used]
    warnings = []
    if extras:
        shown = ", ".join(f"'{c}'" for c in extras[:10])
        more = f" and {len(extras) - 10} more" if len(extras) > 10 else ""
        warnings.append(f"ignored {len(extras)} column(s) the profile does not use: {shown}{more}")
    if len(frame) == 0:
        return _empty_result(profile, warnings)
    frame = _with_fallbacks(frame, profile)
    _report_blank_rows(frame, columns[FIELD_PRODUCT], found)

    out: dict[str, object] = {}
    # Sessions: a session column (or key), else cut later from user and time.
    session_text: pd.Series | None = None
    if profile.session_key:
        parts = [factorise_text(frame[c]) for c in profile.session_key]
        missing = np.logical_or.reduce([p.missing for p in parts])
        joined = parts[0].strings().fillna("")
        for part in parts[1:]:
            joined = joined + ":" + part.strings().fillna("")
        session_text = joined.mask(missing)
    elif FIELD_SESSION in columns:
        session_text = factorise_text(frame[columns[FIELD_SESSION]]).strings()
    user = factorise_text(frame[columns[FIELD_USER]]).strings() if FIELD_USER in columns else None
    if session_text is not None:
        out[FIELD_SESSION] = session_text
    if user is not None:
        out[FIELD_USER] = user
    no_session = session_text.isna().to_numpy() if session_text is not None else np.ones(len(frame), dtype=bool)

    if FIELD_TIMESTAMP in columns:
        out[S.TIMESTAMP] = _timestamps(
            frame[columns[FIELD_TIMESTAMP]], profile.timestamp_format, columns[FIELD_TIMESTAMP], found
        )
    if FIELD_DATE in columns:
        dates = _dates(frame[columns[FIELD_DATE]], columns[FIELD_DATE], found)
        out[S.DATE] = dates.astype("datetime64[D]").astype("datetime64[s]")
    if user is not None:
        cannot_cut = no_session & user.isna().to_numpy()
        found.add(
            columns.get(FIELD_SESSION, ", ".join(profile.session_key) or columns[FIELD_USER]),
            "missing session ID and no user ID to cut a session by",
            cannot_cut,
        )
        if S.TIMESTAMP not in out:
            found.add(columns[FIELD_USER], "no session ID, and no event time to cut sessions by", no_session)
    else:
        found.add(
            columns.get(FIELD_SESSION, ", ".join(profile.session_key) or None),
            "missing session ID (and no user ID to cut a session by)",
            no_session,
        )
    if FIELD_ORDER in columns:
        order = _numeric(frame[columns[FIELD_ORDER]], columns[FIELD_ORDER], found, allow_missing=False)
        bad = ~np.isnan(order) & ((order < 1) | (order != np.floor(order)) | (order > 1e9))
        found.add(columns[FIELD_ORDER], "position must be a whole number from 1", bad)
        out[S.ORDER] = np.where(bad, np.nan, order)

    other_events: dict[str, int] = {}
    if FIELD_EVENT in columns:
        event = factorise_text(frame[columns[FIELD_EVENT]])
        mapping = profile.event_value_map()
        value_codes = np.asarray([mapping.get(str(v).lower(), S.EVENT_OTHER) for v in event.values], dtype=np.int8)
        codes = np.where(
            event.missing, S.EVENT_OTHER, value_codes[np.maximum(event.codes, 0)] if len(value_codes) else S.EVENT_OTHER
        ).astype(np.int8)
        found.add(columns[FIELD_EVENT], "missing event type", event.missing)
        counts = np.bincount(event.codes[event.codes >= 0], minlength=len(event.values))
        other_events = {
            str(v): int(c)
            for v, c, k in zip(event.values, counts, value_codes, strict=True)
            if k == S.EVENT_OTHER and c
        }
        if not (codes != S.EVENT_OTHER).any() and len(codes):
            values = ", ".join(f"'{v}'" for v in list(event.values)[:MAX_OTHER_VALUES_SHOWN])
            found.file_problem(
                f"no event value means view, cart or purchase under this profile (values found: {values}); "
                "map them in the profile's [event_types]",
                column=columns[FIELD_EVENT],
            )
    else:
        codes = np.full(
            len(frame),
            {"view": S.EVENT_VIEW, "cart": S.EVENT_CART, "purchase": S.EVENT_PURCHASE}[profile.default_event],
            dtype=np.int8,
        )
    out[S.EVENT_TYPE] = codes

    product = factorise_text(frame[columns[FIELD_PRODUCT]])
    found.add(columns[FIELD_PRODUCT], "missing product ID", product.missing)
    out[S.PRODUCT] = product

    if FIELD_CATEGORY in columns:
        category = factorise_text(frame[columns[FIELD_CATEGORY]])
        out[S.CATEGORY], codebooks[S.CATEGORY] = _codes(
            category, S.CATEGORY, codebooks.get(S.CATEGORY), profile.codebooks.get(FIELD_CATEGORY)
        )
    else:
        out[S.CATEGORY] = np.full(len(frame), NONE_CODE, dtype=np.int32)
        codebooks.setdefault(S.CATEGORY, {NONE_CODE: NONE_LABEL})

    if FIELD_PRICE in columns:
        out[S.PRICE] = _amount(frame, columns[FIELD_PRICE], "price", found, max_price)
    else:
        out[S.PRICE] = np.full(len(frame), np.nan)
    if FIELD_REVENUE in columns:
        out[S.LABEL_REVENUE] = _amount(frame, columns[FIELD_REVENUE], "revenue", found, max_price)
    if FIELD_TRANSACTION in columns:
        out[S.TRANSACTION] = factorise_text(frame[columns[FIELD_TRANSACTION]]).strings()

    for name, column in profile.dimensions.items():
        out[name], codebooks[name] = _codes(
            factorise_text(frame[column]), name, codebooks.get(name), profile.codebooks.get(name)
        )

    fields = pd.DataFrame({k: (v.strings() if isinstance(v, Factor) else v) for k, v in out.items()})
    if S.TIMESTAMP in fields:
        _report_duplicates(fields, columns, found)
    if S.ORDER in fields and FIELD_SESSION in fields:
        _report_repeated_positions(fields, columns[FIELD_ORDER], found)
    return MappedEvents(
        fields=fields,
        codebooks=codebooks,
        dimensions=tuple(profile.dimensions),
        problems=tuple(found.problems),
        invalid=found.invalid,
        warnings=tuple(warnings),
        other_events=other_events,
    )


def _report_blank_rows(frame: pd.DataFrame, product_column: str, found: _Collector) -> None:
    """Rows with no value at all (a spreadsheet's trailing ``,,,,`` lines): one problem, not one per column."""
    maybe = np.flatnonzero(frame[product_column].isna().to_numpy())  # every event has a product: few candidates
    if not len(maybe):
        return
    blank = np.zeros(len(frame), dtype=bool)
    blank[maybe] = frame.iloc[maybe].isna().all(axis=1).to_numpy()
    found.add(None, "empty row: no value in any column", blank)
    found.blank = blank


def _with_fallbacks(frame: pd.DataFrame, profile: DataProfile) -> pd.DataFrame:
    """The frame with each field's column filled from its fallback column where it is empty."""
    if not profile.fallbacks:
        return frame
    filled = {}
    for name, fallback in profile.fallbacks.items():
        column = profile.columns[name]
        primary, other = frame[column], frame[fallback]
        if pd.api.types.is_numeric_dtype(primary) and pd.api.types.is_numeric_dtype(other):
            filled[column] = primary.where(primary.notna(), other)
        else:  # as text: an empty or blank cell is missing
            filled[column] = factorise_text(primary).strings().fillna(factorise_text(other).strings())
    return frame.assign(**filled)


def _report_duplicates(fields: pd.DataFrame, columns: Mapping[str, str], found: _Collector) -> None:
    """The same event twice (session or user, time, type, product): every repeat after the first."""
    who = fields[FIELD_SESSION] if FIELD_SESSION in fields else fields[FIELD_USER]
    if FIELD_SESSION in fields and FIELD_USER in fields:
        who = who.fillna("user:" + fields[FIELD_USER])
    key = pd.DataFrame({"who": who, "t": fields[S.TIMESTAMP], "e": fields[S.EVENT_TYPE], "p": fields[S.PRODUCT]})
    # Rows already reported for another reason are not the "first" of anything: they may be dropped.
    candidate = ~key.isna().any(axis=1).to_numpy() & ~found.invalid
    duplicated = np.zeros(len(key), dtype=bool)
    duplicated[candidate] = key[candidate].duplicated(keep="first").to_numpy()
    found.add(
        columns.get(FIELD_TIMESTAMP),
        "the same event (session, time, event type, product) appears more than once; repeats are listed",
        duplicated,
    )


def _report_repeated_positions(fields: pd.DataFrame, column: str, found: _Collector) -> None:
    """Two events at the same position of one session: which comes first would depend on row order."""
    key = pd.DataFrame({"s": fields[FIELD_SESSION], "o": fields[S.ORDER]})
    candidate = ~key.isna().any(axis=1).to_numpy() & ~found.invalid
    repeated = np.zeros(len(key), dtype=bool)
    repeated[candidate] = key[candidate].duplicated(keep=False).to_numpy()
    found.add(column, "the same position appears more than once in a session", repeated)


def _empty_result(profile: DataProfile, warnings: list[str]) -> MappedEvents:
    problem = Problem("the file has a header but no data rows")
    return MappedEvents(
        fields=pd.DataFrame(),
        codebooks={},
        dimensions=tuple(profile.dimensions),
        problems=(problem,),
        invalid=np.zeros(0, dtype=bool),
        warnings=tuple(warnings),
        other_events={},
    )
