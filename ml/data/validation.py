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
import pyarrow as pa
import pyarrow.compute as pc

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


def _checked_codes(values: np.ndarray, column: str, problems: list[Problem]) -> np.ndarray:
    """``_check_codes``, then the codes in their click dtype (int8 rather than float64) if all of them passed.

    A column with a missing or reported value stays float64 with NaN there, for
    the checks that read it afterwards (dates, repeated pairs).
    """
    found = len(problems)
    _check_codes(values, column, problems)
    if len(problems) > found or np.isnan(values).any():
        return values
    return values.astype(S.CLICK_DTYPES[column])


INTEGER_TEXT = r"[+-]?\d{1,18}"  # fits int64 exactly


def _factorized_text(series: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """``pd.factorize`` of the column as text: a code per row (-1 where missing) and the distinct values present.

    A dictionary-encoded column (the reader keeps the UCI file's IDs so) is
    numbered by its dictionary, without a text copy of every row; entries no
    row holds (rows dropped since) are left out, as ``factorize`` leaves them.
    """
    dtype = series.dtype
    if not (isinstance(dtype, pd.ArrowDtype) and pa.types.is_dictionary(dtype.pyarrow_dtype)) or not len(series):
        codes, distinct = pd.factorize(series.astype("string"))
        return codes, pd.Series(distinct, dtype="string")
    chunks = pa.array(series.array)
    chunks = (pa.chunked_array([chunks]) if isinstance(chunks, pa.Array) else chunks).unify_dictionaries()
    dictionary = chunks.chunk(0).dictionary
    indices = pa.concat_arrays([chunk.indices for chunk in chunks.chunks])
    del chunks
    used = np.sort(pc.unique(pc.drop_null(indices)).to_numpy(zero_copy_only=False))
    codes = pc.fill_null(indices, -1).to_numpy(zero_copy_only=False)  # read-only where no value is missing
    del indices
    if len(used) < len(dictionary):  # entries of dropped rows: number the others 0, 1, ...
        renumber = np.full(len(dictionary) + 1, -1, dtype=codes.dtype)  # the last entry: code -1 stays -1
        renumber[used] = np.arange(len(used), dtype=codes.dtype)
        codes = renumber[codes]
        dictionary = dictionary.take(pa.array(used))
    return codes, pd.Series(pd.array(dictionary, dtype="string"))


def _stripped_text(series: pd.Series) -> tuple[np.ndarray, pd.Series, np.ndarray]:
    """The column's distinct text values stripped (each once), a code per row into them, and the rows left blank.

    A row is blank where its value is missing (code -1, which reads the last
    entry of the lookup) or nothing but whitespace.
    """
    codes, distinct = _factorized_text(series)
    stripped = distinct.str.strip()
    blank = np.append((stripped == "").to_numpy(dtype=bool), True)[codes]
    return codes, stripped, blank


def _products(series: pd.Series) -> tuple[pd.Categorical, np.ndarray]:
    """The products as categories of their stripped text, and where that is missing or empty.

    The same as ``pd.Categorical(text.str.strip().astype(str))`` of the column's
    text, but each distinct value is stripped once, and no stripped copy of
    every row is made.
    """
    codes, stripped, blank = _stripped_text(series)
    # Code -1 (a missing value) takes the last entry of the lookup.
    labels, categories = pd.factorize(stripped.astype(str), sort=True)
    # Codes in the smallest type for the number of categories, as pd.Categorical keeps them.
    small = next(t for t in (np.int8, np.int16, np.int32, np.int64) if len(categories) < np.iinfo(t).max)
    products = pd.Categorical.from_codes(np.append(labels, -1).astype(small)[codes], categories=categories)
    return products, blank


def _session_ids(series: pd.Series, problems: list[Problem]) -> pd.Series:
    """Integer IDs stay int64; anything else (long numbers, codes) is kept as text, unchanged.

    The IDs are always new values, never a view of the input frame's column.
    """
    if pd.api.types.is_integer_dtype(series) and (series.dtype != "uint64" or series.max() <= np.iinfo(np.int64).max):
        return pd.Series(series.astype("int64").to_numpy(copy=True))
    if pd.api.types.is_float_dtype(series):
        values = _numeric(series, S.SESSION_ID, problems)
        whole = ~np.isnan(values) & (values == np.round(values)) & (np.abs(values) < 2**53)
        return pd.Series(values).astype("int64") if whole.all() else series.astype("string")
    # Each distinct ID is stripped, checked and converted once (converting every row builds a Python string per row).
    codes, stripped, missing = _stripped_text(series)
    if p := _problem(S.SESSION_ID, "missing value", missing):
        problems.append(p)
    if not missing.any() and bool(stripped.str.fullmatch(INTEGER_TEXT).all()):
        return pd.Series(stripped.astype("int64").to_numpy()[codes])
    return series.astype("string").str.strip()


def _repeated_pairs(session_ids: pd.Series, order: np.ndarray) -> np.ndarray:
    """Rows whose (session ID, order) pair appears more than once: ``duplicated(keep=False)`` of the pairs.

    Where every order passed its checks (an integer dtype) and the session IDs
    are integers of a span that leaves room for the orders (or are text, then
    numbered), each pair is one int64 key, sorted to find the repeated ones: no
    hash table of a million pairs. Otherwise pandas compares the pairs.
    """
    key = _pair_keys(session_ids, order) if np.issubdtype(order.dtype, np.integer) else None
    if key is None:
        return pd.DataFrame({"s": session_ids, "o": order}).duplicated(keep=False).to_numpy()
    key.sort()
    repeated = np.unique(key[1:][key[1:] == key[:-1]])
    if not len(repeated):
        return np.zeros(len(key), dtype=bool)
    return np.isin(_pair_keys(session_ids, order), repeated)


def _pair_keys(session_ids: pd.Series, order: np.ndarray) -> np.ndarray | None:
    """One int64 per (session ID, order) pair, equal exactly where the pairs are; ``None`` where it would not fit."""
    rng = S.CODE_RANGES[S.ORDER]
    span = rng.high - rng.low + 1  # the orders passed the range check
    if session_ids.dtype == np.int64:
        sessions = session_ids.to_numpy()
        low, high = (int(sessions.min()), int(sessions.max())) if len(sessions) else (0, 0)
        if (high - low + 1) * span >= 2**63:
            return None
        key = sessions - low
    else:
        codes, _ = pd.factorize(session_ids)
        if len(codes) and codes.min() < 0:
            return None  # a missing session ID
        key = codes.astype(np.int64, copy=False)
    key *= span
    key += order  # in place: no temporary of every row
    key -= rng.low
    return key


def _build_dates(year: np.ndarray, month: np.ndarray, day: np.ndarray, problems: list[Problem]) -> np.ndarray:
    if all(np.issubdtype(part.dtype, np.integer) for part in (year, month, day)):
        dates, impossible = _dates_of_codes(year, month, day)
    else:
        dates, impossible = _dates(year, month, day)
    if p := _problem(S.DAY, "impossible date (no such day in that month)", impossible):
        problems.append(p)
    return dates


def _dates_of_codes(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``_dates`` of codes that passed their range checks: each distinct (year, month, day) is built once.

    The codes number every possible triple (a few tens of thousands), so a
    lookup table replaces a hash table of a million rows.
    """
    ranges = [S.CODE_RANGES[column] for column in (S.YEAR, S.MONTH, S.DAY)]
    spans = [r.high - r.low + 1 for r in ranges]
    key = (year - np.int32(ranges[0].low)).astype(np.int32, copy=False)
    for part, r, span in zip((month, day), ranges[1:], spans[1:], strict=True):
        key *= span
        key += part - r.low
    present = np.flatnonzero(np.bincount(key, minlength=int(np.prod(spans))))
    rest, day_codes = np.divmod(present, spans[2])
    year_codes, month_codes = np.divmod(rest, spans[1])
    parts = zip((year_codes, month_codes, day_codes), ranges, strict=True)
    distinct_dates, distinct_impossible = _dates(*[(codes + r.low).astype(np.float64) for codes, r in parts])
    slot = np.zeros(int(np.prod(spans)), dtype=np.int32)
    slot[present] = np.arange(len(present), dtype=np.int32)
    where = np.take(slot, key, out=key)  # each row's distinct date, in the key's own memory
    return distinct_dates[where], distinct_impossible[where]


def _dates(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The dates of float year, month and day values (NaN where missing), and where they name no real day."""
    ok = ~(np.isnan(year) | np.isnan(month) | np.isnan(day))
    parts = pd.DataFrame(
        {"year": np.where(ok, year, 2000), "month": np.where(ok, month, 1), "day": np.where(ok, day, 1)}
    ).astype("int64")
    in_range = ok & (parts["month"].between(1, 12) & parts["day"].between(1, 31)).to_numpy()
    parts.loc[~in_range, ["month", "day"]] = 1
    dates = pd.to_datetime(parts, errors="coerce")
    impossible = in_range & dates.isna().to_numpy()
    return dates.to_numpy(dtype="datetime64[s]"), impossible


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
    # Each column's codes are checked, then kept in their click dtype, before the next is read as float64.
    numbers: dict[str, np.ndarray] = {}
    code_problems: list[Problem] = []  # reported after every column's number problems, as always
    for col in S.INTEGER_COLUMNS:
        if col in present:
            numbers[col] = _checked_codes(_numeric(frame[col], col, problems), col, code_problems)
    problems.extend(code_problems)
    # Dates and repeated pairs are built now, while few columns are held; their problems come where they always did.
    dates, date_problems = None, []
    if {S.YEAR, S.MONTH, S.DAY} <= numbers.keys():
        dates = _build_dates(numbers[S.YEAR], numbers[S.MONTH], numbers[S.DAY], date_problems)
    repeated = None
    if session_ids is not None and S.ORDER in numbers:
        duplicated = _repeated_pairs(session_ids, numbers[S.ORDER])
        repeated = _problem(S.ORDER, "the same (session ID, order) pair appears more than once", duplicated)
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
        model, blank = _products(frame[S.CLOTHING_MODEL])
        if p := _problem(S.CLOTHING_MODEL, "missing value", blank):
            problems.append(p)
    problems.extend(date_problems)
    has_label = _label_columns(frame, labels, problems)
    if repeated is not None:
        problems.append(repeated)
    if problems:
        raw_name = {canon: raw for raw, canon in mapping.items()}
        named = [replace(p, column=raw_name.get(p.column, p.column)) for p in problems]
        raise ValidationError(named, source=source)

    columns = {
        S.SESSION_ID: session_ids.array.to_numpy(),  # writable (the Series' to_numpy() is a read-only view)
        S.DATE: dates,
        **{col: numbers[col].astype(S.CLICK_DTYPES[col], copy=False) for col in S.INTEGER_COLUMNS},
        S.CLOTHING_MODEL: model,
        S.PRICE: price,
        S.EVENT_TYPE: np.full(len(session_ids), S.EVENT_VIEW, dtype=np.int8),  # the UCI file holds views only
        **labels,
    }
    del session_ids, numbers, model, price, dates
    ordered = list(S.CLICK_COLUMNS) + [c for c in (S.LABEL_CONVERTED, S.LABEL_REVENUE) if c in columns]
    # The columns as they are, not copied into one block per dtype (a second copy of the clicks at once).
    clicks = pd.DataFrame({name: columns.pop(name) for name in ordered}, copy=False)
    return CanonicalClicks(
        clicks=clicks,
        header_form=header_form,
        warnings=tuple(warnings),
        has_real_label=has_label,
    )
