"""The column-mapping form as data: what it offers for a file's columns, and the profile its values make.

Pure functions, no Dash: ``guess_mapping`` pre-fills the form from the
header, ``event_value_guess`` suggests view / cart / purchase for an event
column's values, and ``profile_from_form`` turns what the user chose into a
checked ``DataProfile`` (through ``profile_from_dict``, the same checks a TOML
profile file gets), or a ``ValidationError`` naming the form field at fault.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ml.data.profiles import (
    DEFAULT_SESSION_GAP_MINUTES,
    DIMENSION_NAME,
    EVENT_KINDS,
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
    FIELDS,
    MAX_DIMENSIONS,
    RESERVED_NAMES,
    TIMESTAMP_FORMATS,
    DataProfile,
    profile_from_dict,
)
from ml.errors import Problem, ValidationError

FORM_SOURCE = "the mapping form"
IGNORE = ""  # an event value mapped to nothing: counted as 'other'
PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,59}$")

# Normalised header names that usually hold a canonical field, best first.
FIELD_SYNONYMS: Mapping[str, tuple[str, ...]] = {
    FIELD_SESSION: ("session_id", "sessionid", "user_session", "session", "sess", "visit_id", "visitid", "visit"),
    FIELD_USER: ("user_id", "userid", "visitor_id", "visitorid", "visitor", "user", "customer_id", "client_id"),
    FIELD_TIMESTAMP: ("timestamp", "event_time", "event_timestamp", "datetime", "time", "ts", "created_at"),
    FIELD_DATE: ("date", "event_date", "day"),
    FIELD_ORDER: ("order", "position", "hit_number", "step", "seq"),
    FIELD_EVENT: ("event_type", "event", "event_name", "action", "type", "activity"),
    FIELD_PRODUCT: ("product_id", "productid", "product", "item_id", "itemid", "item", "sku", "article"),
    FIELD_CATEGORY: ("category", "category_code", "category_id", "categoryid", "cat", "department"),
    FIELD_PRICE: ("price", "unit_price", "item_price", "amount", "cost"),
    FIELD_REVENUE: ("revenue", "purchase_revenue", "order_value", "total"),
    FIELD_TRANSACTION: ("transaction_id", "transactionid", "order_id", "orderid", "transaction"),
}
# Words in an event value that suggest its kind (checked in this order: "add_to_cart" is a cart, not a view).
EVENT_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("purchase", ("purchase", "transaction", "order", "buy", "bought", "checkout_complete", "sale")),
    ("cart", ("cart", "basket", "add")),
    ("view", ("view", "detail", "page", "impression", "click", "visit")),
)
TIMESTAMP_FORMAT_TITLES: Mapping[str, str] = {
    "auto": "Detect (ISO text or epoch numbers)",
    "iso": "ISO 8601 text (2019-10-01 13:45:30)",
    "epoch_s": "Unix epoch, seconds",
    "epoch_ms": "Unix epoch, milliseconds",
    "epoch_us": "Unix epoch, microseconds",
}
assert set(TIMESTAMP_FORMAT_TITLES) == set(TIMESTAMP_FORMATS)


@dataclass(frozen=True)
class MappingForm:
    """What the user chose in the mapping form.

    ``columns``: canonical field -> source column (empty or ``None`` = not in the
    file); ``events``: source event value -> ``view``/``cart``/``purchase`` (or
    empty: other); ``dimensions``: source columns to filter and break down by.
    """

    columns: Mapping[str, str | None]
    events: Mapping[str, str] = field(default_factory=dict)
    dimensions: Sequence[str] = ()
    session_gap_minutes: object = DEFAULT_SESSION_GAP_MINUTES
    timestamp_format: str = "auto"
    name: str = ""


def _key(text: object) -> str:
    """Lowercase words joined by ``_``: ``"Event Time"`` -> ``event_time``."""
    return re.sub(r"[^a-z0-9]+", "_", str(text).lstrip("\ufeff").strip().lower()).strip("_")


def _loose(text: object) -> str:
    """A header without separators, for matching: ``Event Time``, ``event_time`` and ``eventtime`` agree."""
    return _key(text).replace("_", "")


def guess_mapping(columns: Sequence[str]) -> dict[str, str | None]:
    """A first guess of which column is which field, from the header names (each column used once)."""
    by_key: dict[str, str] = {}
    for column in columns:
        by_key.setdefault(_loose(column), column)
    guess: dict[str, str | None] = {}
    used: set[str] = set()
    for name in FIELDS:
        keys = [_loose(s) for s in FIELD_SYNONYMS[name]]
        found = next((by_key[k] for k in keys if k in by_key and by_key[k] not in used), None)
        guess[name] = found
        if found:
            used.add(found)
    if guess[FIELD_TIMESTAMP] and guess[FIELD_DATE] == guess[FIELD_TIMESTAMP]:
        guess[FIELD_DATE] = None
    return guess


def event_value_guess(value: str) -> str:
    """``view``, ``cart``, ``purchase`` or ``""`` (other) for one event value, from the words in it."""
    text = _key(value)
    for kind, words in EVENT_WORDS:
        if any(word in text for word in words):
            return kind
    return IGNORE


def dimension_name(column: str, taken: set[str]) -> str:
    """A valid, unused dimension name for a column (``Device Type`` -> ``device_type``)."""
    base = _key(column)[:40] or "dimension"
    if not base[0].isalpha():
        base = f"d_{base}"[:40]
    if base in RESERVED_NAMES:
        base = f"{base}_group"[:40]
    name, n = base, 2
    while name in taken or not DIMENSION_NAME.match(name):
        name = f"{base[:36]}_{n}"
        n += 1
    return name


def _fail(message: str, column: str) -> ValidationError:
    return ValidationError([Problem(message, column=column)], source=FORM_SOURCE)


def _gap(value: object) -> float:
    if value is None or value == "":
        return DEFAULT_SESSION_GAP_MINUTES
    try:
        return float(value)  # the form's number input may send text
    except (TypeError, ValueError):
        raise _fail(f"the session gap must be a number of minutes, got {value!r}", "session gap") from None


def form_to_dict(form: MappingForm) -> dict[str, object]:
    """The profile-file table the form describes (``profile_from_dict`` checks it)."""
    columns = {name: str(col) for name, col in form.columns.items() if name in FIELDS and col}
    problems = []
    seen: dict[str, str] = {}
    for name, column in columns.items():
        if column in seen:
            problems.append(Problem(f"column '{column}' is chosen for both '{seen[column]}' and '{name}'", column=name))
        seen.setdefault(column, name)
    if problems:
        raise ValidationError(problems, source=FORM_SOURCE)
    name = (form.name or "").strip() or "mapped"
    if not PROFILE_NAME.match(name):
        raise _fail(
            "the profile name must be letters, digits, spaces, '.', '_' or '-' (at most 60 characters)",
            "profile name",
        )
    table: dict[str, object] = {
        "name": re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "mapped",
        "title": name,
        "columns": columns,
        "sessions": {"gap_minutes": _gap(form.session_gap_minutes)},
        "timestamp": {"format": form.timestamp_format or "auto"},
    }
    if FIELD_EVENT in columns:
        events: dict[str, list[str]] = {}
        for value, kind in form.events.items():
            if kind in EVENT_KINDS:
                events.setdefault(kind, []).append(str(value))
        if not events:
            raise _fail(f"map at least one value of '{columns[FIELD_EVENT]}' to view, cart or purchase", "event values")
        table["event_types"] = {kind: events[kind] for kind in EVENT_KINDS if kind in events}
    chosen = [str(c) for c in dict.fromkeys(form.dimensions) if c]
    if len(chosen) > MAX_DIMENSIONS:
        raise _fail(f"choose at most {MAX_DIMENSIONS} dimensions (you chose {len(chosen)})", "dimensions")
    taken: set[str] = set()
    dimensions = {}
    for column in chosen:
        dim = dimension_name(column, taken)
        taken.add(dim)
        dimensions[dim] = column
    if dimensions:
        table["dimensions"] = dimensions
    return table


def profile_from_form(form: MappingForm) -> DataProfile:
    """The data profile the mapping form describes; ``ValidationError`` naming what is missing or wrong."""
    return profile_from_dict(form_to_dict(form), source=FORM_SOURCE)
