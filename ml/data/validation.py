"""Map a raw table onto the canonical click schema, collecting every problem on the way.

Nothing is silently coerced to NaN and dropped: a value that is missing, not a
number, not a whole number, outside the codebook's range, a non-positive
price, an impossible date or a repeated (session, order) pair is reported with
its column and example rows, and the whole list is raised at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ml.config import MAX_PRICE
from ml.data import schema as S
from ml.errors import Problem, ValidationError, example_rows, invalid_row_mask, is_row_problem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CanonicalClicks:
    """Validated clicks in the canonical schema, with notes on how they were read."""

    clicks: pd.DataFrame
    header_form: str  # "UCI" or "lowercase"
    warnings: tuple[str, ...]
    has_real_label: bool
    skipped_rows: int = 0
    skipped_problems: tuple[Problem, ...] = ()


UCI_ONLY_HEADERS = frozenset(h for h in S.UCI_HEADERS if h not in S.LOWERCASE_HEADERS)


def _header_form(columns: list[str]) -> str:
    """Which naming a table uses, for the validation report: "UCI" or "lowercase"."""
    stripped = {str(c).lstrip("\ufeff").strip() for c in columns}
    return "UCI" if stripped & UCI_ONLY_HEADERS else "lowercase"


def map_columns(frame: pd.DataFrame) -> tuple[dict[str, str], list[Problem], list[str]]:
    """Match raw headers to canonical names: (raw -> canonical, problems, warnings)."""
    mapping: dict[str, str] = {}
    problems: list[Problem] = []
    extras: list[str] = []
    for raw in frame.columns:
        canon = S.HEADER_ALIASES.get(S.normalise_header(raw))
        if canon is None:
            extras.append(str(raw))
        elif canon in mapping.values():
            problems.append(Problem(f"appears twice (as '{raw}' too)", column=canon))
        else:
            mapping[str(raw)] = canon
    present = set(mapping.values())
    uci_form = _header_form([str(c) for c in frame.columns]) == "UCI"
    for canon in S.SOURCE_COLUMNS:
        if canon not in present:
            uci = S.DISPLAY_HEADER[canon]
            alt = next(k for k, v in S.LOWERCASE_HEADERS.items() if v == canon)
            names = f"'{uci}'" if uci == alt else f"'{uci}' or '{alt}'"
            problems.append(
                Problem(f"missing column (expected a header named {names})", column=uci if uci_form else alt)
            )
    warnings = []
    if extras:
        shown = ", ".join(f"'{c}'" for c in extras[:10])
        more = f" and {len(extras) - 10} more" if len(extras) > 10 else ""
        warnings.append(f"ignored {len(extras)} extra column(s): {shown}{more}")
    return mapping, problems, warnings


def _positions(mask: np.ndarray) -> np.ndarray:
    return np.flatnonzero(mask)


def _problem(column: str, message: str, mask: np.ndarray) -> Problem | None:
    pos = _positions(mask)
    if not len(pos):
        return None
    return Problem(message, column=column, rows=example_rows(pos[:5]), count=len(pos), positions=pos)


def _numeric(series: pd.Series, column: str, problems: list[Problem], *, allow_bool: bool = False) -> np.ndarray:
    """Float values of a column; missing, non-numeric and non-finite cells are reported, not coerced.

    Reported cells come back as NaN so later checks (ranges, dates) skip them.
    A true/false column (Parquet) is not a number, except where ``allow_bool``
    (the 0/1 label).
    """
    if pd.api.types.is_bool_dtype(series) and not allow_bool:
        every = np.ones(len(series), dtype=bool)
        if p := _problem(column, "true/false where a number is expected", every):
            problems.append(p)
        return np.full(len(series), np.nan)
    if pd.api.types.is_bool_dtype(series):
        series = series.astype("int8")
    if pd.api.types.is_numeric_dtype(series):
        values = series.to_numpy(dtype="float64", na_value=np.nan)
        missing, unparsed, text = np.isnan(values), np.zeros(len(values), dtype=bool), None
    else:
        text = series.astype("string").str.strip()
        missing = (text.isna() | (text == "")).to_numpy(dtype=bool)
        values = pd.to_numeric(text.mask(missing), errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        unparsed = np.isnan(values) & ~missing
    infinite = np.isinf(values)
    if p := _problem(column, "missing value", missing):
        problems.append(p)
    for mask, what in ((unparsed, "not a number"), (infinite, "not a finite number")):
        if p := _problem(column, what, mask):
            shown = (text[mask] if text is not None else pd.Series(values[mask])).head(3).tolist()
            examples = ", ".join(repr(v) for v in shown)
            problems.append(replace(p, message=f"{what} (e.g. {examples})"))
    return np.where(infinite, np.nan, values)


def _check_codes(values: np.ndarray, column: str, problems: list[Problem]) -> None:
    valid = ~np.isnan(values)
    fractional = valid & (np.floor(values) != values)
    if p := _problem(column, "not a whole number", fractional):
        problems.append(p)
    rng = S.CODE_RANGES[column]
    out = valid & ~fractional & ((values < rng.low) | (values > rng.high))
    if p := _problem(column, f"code outside the codebook's range {rng.low}..{rng.high}", out):
        problems.append(p)


INTEGER_TEXT = r"[+-]?\d{1,18}"  # fits int64 exactly


def _session_ids(series: pd.Series, problems: list[Problem]) -> pd.Series:
    """Integer IDs stay int64; anything else (long numbers, codes) is kept as text, unchanged."""
    if pd.api.types.is_integer_dtype(series) and (series.dtype != "uint64" or series.max() <= np.iinfo(np.int64).max):
        return series.astype("int64")
    if pd.api.types.is_float_dtype(series):
        values = _numeric(series, S.SESSION_ID, problems)
        whole = ~np.isnan(values) & (values == np.round(values)) & (np.abs(values) < 2**53)
        return pd.Series(values).astype("int64") if whole.all() else series.astype("string")
    text = series.astype("string").str.strip()
    missing = (text.isna() | (text == "")).to_numpy(dtype=bool)
    if p := _problem(S.SESSION_ID, "missing value", missing):
        problems.append(p)
    if not missing.any() and bool(text.str.fullmatch(INTEGER_TEXT).all()):
        return text.astype("int64")
    return text


def _build_dates(year: np.ndarray, month: np.ndarray, day: np.ndarray, problems: list[Problem]) -> np.ndarray:
    ok = ~(np.isnan(year) | np.isnan(month) | np.isnan(day))
    parts = pd.DataFrame(
        {"year": np.where(ok, year, 2000), "month": np.where(ok, month, 1), "day": np.where(ok, day, 1)}
    ).astype("int64")
    in_range = ok & (parts["month"].between(1, 12) & parts["day"].between(1, 31)).to_numpy()
    parts.loc[~in_range, ["month", "day"]] = 1
    dates = pd.to_datetime(parts, errors="coerce")
    impossible = in_range & dates.isna().to_numpy()
    if p := _problem(S.DAY, "impossible date (no such day in that month)", impossible):
        problems.append(p)
    return dates.to_numpy(dtype="datetime64[s]")


def _label_columns(frame: pd.DataFrame, out: dict[str, object], problems: list[Problem]) -> bool:
    has_label = S.LABEL_CONVERTED in frame.columns
    if has_label:
        raw = frame[S.LABEL_CONVERTED]
        if not pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
            raw = (
                raw.astype("string").str.strip().str.lower().replace({"true": "1", "false": "0", "yes": "1", "no": "0"})
            )
        values = _numeric(raw, S.LABEL_CONVERTED, problems, allow_bool=True)
        if p := _problem(S.LABEL_CONVERTED, "must be 0 or 1", ~np.isnan(values) & ~np.isin(values, (0, 1))):
            problems.append(p)
        out[S.LABEL_CONVERTED] = np.nan_to_num(values).astype("int8")
    if S.LABEL_REVENUE in frame.columns:
        if not has_label:
            problems.append(Problem("a 'revenue' column needs a 'converted' column beside it", column=S.LABEL_REVENUE))
        values = _numeric(frame[S.LABEL_REVENUE], S.LABEL_REVENUE, problems)
        if p := _problem(S.LABEL_REVENUE, "negative revenue", values < 0):
            problems.append(p)
        out[S.LABEL_REVENUE] = np.nan_to_num(values)
    return has_label


def validate_frame(
    frame: pd.DataFrame, source: str | None = None, skip_invalid_rows: bool = False, max_price: float = MAX_PRICE
) -> CanonicalClicks:
    """Validate a raw table and return canonical clicks, or raise ``ValidationError``.

    Columns that are present are checked even when others are missing, so one
    report lists everything wrong with the file. With ``skip_invalid_rows`` a
    file whose problems all name rows is kept without exactly those rows (the
    count and the problems are returned); file-level problems still refuse it.
    """
    try:
        return _validate(frame, source, max_price)
    except ValidationError as exc:
        if not skip_invalid_rows or not all(is_row_problem(p) for p in exc.problems):
            raise
        invalid = invalid_row_mask(exc.problems, len(frame))
        if invalid.all():
            raise ValidationError(
                [*exc.problems, Problem("every row has a problem; nothing is left to keep")], source=source
            ) from exc
        kept = _validate(frame[~invalid].reset_index(drop=True), source, max_price)
        return replace(kept, skipped_rows=int(invalid.sum()), skipped_problems=exc.problems)


def _validate(frame: pd.DataFrame, source: str | None, max_price: float) -> CanonicalClicks:
    mapping, problems, warnings = map_columns(frame)
    header_form = _header_form(list(frame.columns))
    if len(frame) == 0:
        problems.append(Problem("the file has a header but no data rows"))
        raise ValidationError(problems, source=source)
    frame = frame.rename(columns=mapping)
    present = set(mapping.values())
    for message in warnings:
        log.warning("%s: %s", source or "input", message)

    labels: dict[str, object] = {}
    session_ids = _session_ids(frame[S.SESSION_ID], problems) if S.SESSION_ID in present else None
    numbers = {col: _numeric(frame[col], col, problems) for col in S.INTEGER_COLUMNS if col in present}
    for col, values in numbers.items():
        _check_codes(values, col, problems)
    price = None
    if S.PRICE in present:
        price = _numeric(frame[S.PRICE], S.PRICE, problems)
        if p := _problem(S.PRICE, "price must be positive", ~np.isnan(price) & (price <= 0)):
            problems.append(p)
        too_large = ~np.isnan(price) & (price > max_price)
        message = f"implausibly large price (over {max_price:,.0f}, set by CLICKSTREAM_MAX_PRICE)"
        if p := _problem(S.PRICE, message, too_large):
            shown = ", ".join(f"{v:g}" for v in price[too_large][:3])
            problems.append(replace(p, message=f"{p.message} (e.g. {shown})"))
    model = None
    if S.CLOTHING_MODEL in present:
        model = frame[S.CLOTHING_MODEL].astype("string").str.strip()
        if p := _problem(S.CLOTHING_MODEL, "missing value", (model.isna() | (model == "")).to_numpy(dtype=bool)):
            problems.append(p)
    dates = None
    if {S.YEAR, S.MONTH, S.DAY} <= numbers.keys():
        dates = _build_dates(numbers[S.YEAR], numbers[S.MONTH], numbers[S.DAY], problems)
    has_label = _label_columns(frame, labels, problems)
    if session_ids is not None and S.ORDER in numbers:
        pairs = pd.DataFrame({"s": session_ids, "o": numbers[S.ORDER]})
        duplicated = pairs.duplicated(keep=False).to_numpy()
        if p := _problem(S.ORDER, "the same (session ID, order) pair appears more than once", duplicated):
            problems.append(p)
    if problems:
        raw_name = {canon: raw for raw, canon in mapping.items()}
        named = [replace(p, column=raw_name.get(p.column, p.column)) for p in problems]
        raise ValidationError(named, source=source)

    clicks = pd.DataFrame(
        {
            S.SESSION_ID: session_ids.to_numpy(),
            S.ORDER: numbers[S.ORDER].astype(S.CLICK_DTYPES[S.ORDER]),
            S.DATE: dates,
            **{col: numbers[col].astype(S.CLICK_DTYPES[col]) for col in S.INTEGER_COLUMNS if col != S.ORDER},
            S.CLOTHING_MODEL: pd.Categorical(model.astype(str)),
            S.PRICE: price,
            S.EVENT_TYPE: np.full(len(session_ids), S.EVENT_VIEW, dtype=np.int8),  # the UCI file holds views only
            **labels,
        }
    )
    ordered = list(S.CLICK_COLUMNS) + [c for c in (S.LABEL_CONVERTED, S.LABEL_REVENUE) if c in clicks]
    return CanonicalClicks(
        clicks=clicks[ordered],
        header_form=header_form,
        warnings=tuple(warnings),
        has_real_label=has_label,
    )
