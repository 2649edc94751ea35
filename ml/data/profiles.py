"""Data profiles: how one source's columns and values map onto the canonical event schema.

A profile says which source column holds each canonical field (session, user,
time, event type, product, category, price, revenue, ...), which event values
mean view, cart and purchase (every other value becomes ``other`` and is
counted), which columns are dimensions (country, brand, device, ...), codebooks
for coded values, and how sessions are cut when the source has none.

Three profiles are built in and detected from the header without asking: the
UCI 553 clothing file (both of its namings), the multi-category-store event
log and the visitor event log. Any other export gets a small TOML profile file
(see ``docs/PROFILES.md``); a wrong one is a ``ValidationError`` naming the
key or column at fault.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from ml.data import schema as S
from ml.errors import Problem, ValidationError

# Canonical fields a profile can map (dimensions come on top, under their own names).
FIELD_SESSION = "session_id"
FIELD_USER = "user_id"
FIELD_TIMESTAMP = "timestamp"
FIELD_DATE = "date"
FIELD_ORDER = "order"
FIELD_EVENT = "event_type"
FIELD_PRODUCT = "product_id"
FIELD_CATEGORY = "category"
FIELD_PRICE = "price"
FIELD_REVENUE = "revenue"
FIELD_TRANSACTION = "transaction_id"
FIELDS: tuple[str, ...] = (
    FIELD_SESSION,
    FIELD_USER,
    FIELD_TIMESTAMP,
    FIELD_DATE,
    FIELD_ORDER,
    FIELD_EVENT,
    FIELD_PRODUCT,
    FIELD_CATEGORY,
    FIELD_PRICE,
    FIELD_REVENUE,
    FIELD_TRANSACTION,
)
FIELD_TITLES: Mapping[str, str] = {
    FIELD_SESSION: "Session ID",
    FIELD_USER: "User / visitor ID",
    FIELD_TIMESTAMP: "Event time",
    FIELD_DATE: "Event date",
    FIELD_ORDER: "Position in session",
    FIELD_EVENT: "Event type",
    FIELD_PRODUCT: "Product ID",
    FIELD_CATEGORY: "Category",
    FIELD_PRICE: "Price",
    FIELD_REVENUE: "Revenue",
    FIELD_TRANSACTION: "Order / transaction ID",
}
EVENT_KINDS = ("view", "cart", "purchase")
TIMESTAMP_FORMATS = ("auto", "iso", "epoch_s", "epoch_ms", "epoch_us")
DEFAULT_SESSION_GAP_MINUTES = 30.0
MAX_DIMENSIONS = 12
UCI_PROFILE = "uci553"
DIMENSION_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
# Names a dimension may not take: the canonical fields, the columns features derive from them, and
# names whose features would collide with the event features ("products" -> w_n_products).
RESERVED_NAMES = frozenset(FIELDS) | {
    S.DATE,
    S.YEAR,
    S.MONTH,
    S.DAY,
    S.LABEL_CONVERTED,
    "key",
    "products",
    "categories",
    "tab",  # and the URL's own parameters
    "dataset",
    "from",
    "to",
}
MIN_SESSION_GAP_MINUTES, MAX_SESSION_GAP_MINUTES = 0.0, 24 * 60.0


@dataclass(frozen=True)
class DataProfile:
    """How one kind of source maps onto canonical events.

    ``columns`` maps canonical fields to source columns; ``fallbacks`` names a
    column used where a field's own column is empty (the multi-category store's
    ``category_code`` falls back to ``category_id``); ``session_key`` lists
    columns whose values together identify a session (e.g. a visitor and a
    per-visitor session number). ``events`` maps ``view``/``cart``/``purchase``
    to source values; when there is no event column every row is
    ``default_event``. ``dimensions`` maps dimension names to source columns.
    """

    name: str
    title: str
    columns: Mapping[str, str] = field(default_factory=dict)
    fallbacks: Mapping[str, str] = field(default_factory=dict)
    session_key: tuple[str, ...] = ()
    events: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    default_event: str = "view"
    dimensions: Mapping[str, str] = field(default_factory=dict)
    codebooks: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    timestamp_format: str = "auto"
    session_gap_minutes: float = DEFAULT_SESSION_GAP_MINUTES
    builtin: bool = False
    description: str = ""

    @property
    def is_uci(self) -> bool:
        return self.name == UCI_PROFILE

    def source_columns(self) -> dict[str, str]:
        """Every source column the profile reads, with what it is for (for messages and the mapping form)."""
        used = {column: FIELD_TITLES[name] for name, column in self.columns.items()}
        used |= {column: f"{FIELD_TITLES[name]} (where empty)" for name, column in self.fallbacks.items()}
        used |= {column: "part of the session key" for column in self.session_key}
        used |= {column: f"dimension '{name}'" for name, column in self.dimensions.items()}
        return used

    def required_columns(self) -> tuple[str, ...]:
        """Columns a source must have for this profile to apply."""
        return tuple(dict.fromkeys([*self.columns.values(), *self.session_key]))

    @property
    def cuts_sessions(self) -> bool:
        """True when sessions are cut by inactivity because the source has no session column."""
        return FIELD_SESSION not in self.columns and not self.session_key

    def event_value_map(self) -> dict[str, int]:
        """Source event value (lower-cased, stripped) -> canonical event code."""
        codes = {"view": S.EVENT_VIEW, "cart": S.EVENT_CART, "purchase": S.EVENT_PURCHASE}
        return {value.strip().lower(): codes[kind] for kind, values in self.events.items() for value in values}

    def with_session_gap(self, minutes: float | None) -> DataProfile:
        """The profile with another inactivity limit; ``ValidationError`` outside (0, 1440] minutes."""
        if minutes is None:
            return self
        check_session_gap(minutes, "--session-gap")
        return replace(self, session_gap_minutes=float(minutes))

    def to_dict(self) -> dict[str, object]:
        """A JSON/TOML-friendly description (saved with datasets and runs)."""
        return {
            "name": self.name,
            "title": self.title,
            "columns": dict(self.columns),
            "fallbacks": dict(self.fallbacks),
            "session_key": list(self.session_key),
            "events": {k: list(v) for k, v in self.events.items()},
            "default_event": self.default_event,
            "dimensions": dict(self.dimensions),
            "codebooks": {k: dict(v) for k, v in self.codebooks.items()},
            "timestamp_format": self.timestamp_format,
            "session_gap_minutes": self.session_gap_minutes,
        }


def check_session_gap(minutes: object, key: str, source: str | None = None) -> None:
    """An inactivity limit must be a number of minutes in (0, 1440]."""
    ok = not isinstance(minutes, bool) and isinstance(minutes, int | float)
    if not ok or not MIN_SESSION_GAP_MINUTES < minutes <= MAX_SESSION_GAP_MINUTES:  # NaN fails too
        raise ValidationError(
            [Problem(f"'{key}' must be a number of minutes above 0 and at most 1440, got {minutes!r}", column=key)],
            source=source,
        )


# ---------------------------------------------------------------- built-in profiles
UCI = DataProfile(
    name=UCI_PROFILE,
    title="UCI 553 e-shop clothing clickstream",
    # The UCI file has its own validator (ml.data.validation) with the codebook ranges;
    # the mapping here documents it for the summary and the mapping form.
    columns={
        FIELD_SESSION: "session ID",
        FIELD_ORDER: "order",
        FIELD_PRODUCT: "page 2 (clothing model)",
        FIELD_CATEGORY: "page 1 (main category)",
        FIELD_PRICE: "price",
    },
    dimensions={
        S.COUNTRY: "country",
        S.COLOUR: "colour",
        S.LOCATION: "location",
        S.PHOTOGRAPHY: "model photography",
        S.PRICE_2: "price 2",
        S.PAGE: "page",
    },
    builtin=True,
    description="views only (no cart or purchase): conversion is the re-view proxy",
)

MULTI_CATEGORY_STORE = DataProfile(
    name="multi_category_store",
    title="Multi-category store event log",
    columns={
        FIELD_TIMESTAMP: "event_time",
        FIELD_EVENT: "event_type",
        FIELD_PRODUCT: "product_id",
        FIELD_CATEGORY: "category_code",
        FIELD_PRICE: "price",
        FIELD_USER: "user_id",
        FIELD_SESSION: "user_session",
    },
    fallbacks={FIELD_CATEGORY: "category_id"},
    events={"view": ("view",), "cart": ("cart",), "purchase": ("purchase",)},
    dimensions={"brand": "brand"},
    timestamp_format="%Y-%m-%d %H:%M:%S UTC",
    builtin=True,
    description="event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session",
)

VISITOR_LOG = DataProfile(
    name="visitor_log",
    title="Visitor event log",
    columns={
        FIELD_TIMESTAMP: "timestamp",
        FIELD_USER: "visitorid",
        FIELD_EVENT: "event",
        FIELD_PRODUCT: "itemid",
        FIELD_TRANSACTION: "transactionid",
    },
    events={"view": ("view",), "cart": ("addtocart",), "purchase": ("transaction",)},
    timestamp_format="epoch_ms",
    builtin=True,
    description="timestamp,visitorid,event,itemid,transactionid; sessions cut after 30 minutes without an event",
)

BUILTIN_PROFILES: Mapping[str, DataProfile] = {p.name: p for p in (UCI, MULTI_CATEGORY_STORE, VISITOR_LOG)}


# ---------------------------------------------------------------- detection
def _normalised(columns: Sequence[object]) -> dict[str, str]:
    """Normalised header -> the column's name exactly as the source has it (stray spaces and BOM kept)."""
    return {S.normalise_header(c): str(c) for c in columns}


def _uci_fields(columns: Sequence[object]) -> set[str]:
    found = {S.HEADER_ALIASES.get(key) for key in _normalised(columns)}
    return found & set(S.SOURCE_COLUMNS)


def uci_fields_found(columns: Sequence[object]) -> int:
    """How many of the UCI file's 14 fields the headers hold (either naming)."""
    return len(_uci_fields(columns))


# UCI fields that any shop's export may have under the same name; they alone do not make a UCI file.
GENERIC_FIELDS = frozenset({S.SESSION_ID, S.PRODUCT, S.PRICE, S.ORDER, S.COUNTRY})


def _share_present(profile: DataProfile, columns: Sequence[object]) -> float:
    present = set(_normalised(columns))
    required = profile.required_columns()
    return sum(S.normalise_header(c) in present for c in required) / len(required)


UCI_MIN_FIELDS = 2  # two of the UCI file's own fields (not just session_id, price, ...) make an incomplete UCI file
PARTIAL_MATCH = 0.5  # a file with half an event profile's columns is that kind of log with columns missing


def detect_profile(columns: Sequence[object], source: str | None = None) -> DataProfile:
    """The built-in profile whose columns the header has, or ``ValidationError`` saying what was found.

    A header with most of one profile's columns gets that profile (its report
    then names the missing ones); one that matches none is refused with the
    known profiles and how to describe another export.
    """
    shares = {p.name: _share_present(p, columns) for p in _events()}
    best = max(shares, key=lambda name: shares[name])
    uci_share = uci_fields_found(columns) / len(S.SOURCE_COLUMNS)
    if shares[best] == 1.0 or (shares[best] >= PARTIAL_MATCH and shares[best] > uci_share):
        return BUILTIN_PROFILES[best]
    if len(_uci_fields(columns) - GENERIC_FIELDS) >= UCI_MIN_FIELDS:
        return UCI
    shown = ", ".join(f"'{c}'" for c in list(columns)[:12]) or "none"
    more = f" and {len(columns) - 12} more" if len(columns) > 12 else ""
    known = "; ".join(
        [f"{UCI.title} ({','.join(S.LOWERCASE_HEADERS)}, or its original headers)"]
        + [f"{p.title} ({p.description or ','.join(p.required_columns())})" for p in _events()]
    )
    raise ValidationError(
        [
            Problem(
                f"the columns ({shown}{more}) match no known data profile; known profiles: {known}. "
                "Describe this export in a profile file and pass it with --profile FILE (see docs/PROFILES.md)"
            )
        ],
        source=source,
    )


def _events() -> tuple[DataProfile, ...]:
    return (MULTI_CATEGORY_STORE, VISITOR_LOG)


def resolve_columns(profile: DataProfile, columns: Sequence[object], source: str | None = None) -> DataProfile:
    """The profile with its column names spelled as the source spells them (case, spaces, BOM).

    Raises ``ValidationError`` listing every profile column the source (named ``source``) lacks.
    """
    if profile.is_uci:
        return profile
    lookup = _normalised(columns)
    problems = []

    def real(column: str, what: str) -> str:
        key = S.normalise_header(column)
        if key not in lookup:
            problems.append(
                Problem(f"the {profile.title} profile's column '{column}' ({what}) is not in the source", column=column)
            )
            return column
        return lookup[key]

    mapped = {name: real(col, f"field '{name}'") for name, col in profile.columns.items()}
    fallbacks = {name: real(col, f"fallback for '{name}'") for name, col in profile.fallbacks.items()}
    key = tuple(real(col, "session key") for col in profile.session_key)
    dims = {name: real(col, f"dimension '{name}'") for name, col in profile.dimensions.items()}
    if problems:
        names = [c.lstrip("\ufeff").strip() for c in list(lookup.values())[:30]]
        available = ", ".join(f"'{c}'" for c in names)
        problems.append(Problem(f"the source's columns are: {available}"))
        raise ValidationError(problems, source=source or profile.name)
    return replace(profile, columns=mapped, fallbacks=fallbacks, session_key=key, dimensions=dims)


# ---------------------------------------------------------------- profile files (TOML)
TOP_LEVEL_KEYS = frozenset(
    {
        "name",
        "title",
        "description",
        "columns",
        "fallbacks",
        "sessions",
        "event_types",
        "timestamp",
        "dimensions",
        "codebooks",
    }
)
SESSION_KEYS = frozenset({"gap_minutes", "key"})
TIMESTAMP_KEYS = frozenset({"format"})
EVENT_KEYS = frozenset({*EVENT_KINDS, "default"})


def _profile_error(message: str, key: str | None, source: str) -> ValidationError:
    return ValidationError([Problem(message, column=key)], source=source)


def _expect_table(value: object, key: str, source: str) -> dict:
    if not isinstance(value, dict):
        raise _profile_error(f"'{key}' must be a table ([{key}])", key, source)
    return value


def _check_keys(table: Mapping[str, object], allowed: frozenset[str], where: str, source: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        shown = ", ".join(f"'{k}'" for k in unknown)
        choices = ", ".join(sorted(allowed))
        raise _profile_error(f"unknown key {shown} in {where}; allowed: {choices}", unknown[0], source)


def _string(value: object, key: str, source: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _profile_error(f"'{key}' must be a non-empty text value (a column name)", key, source)
    return value.strip()


def _strings(value: object, key: str, source: str) -> tuple[str, ...]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(isinstance(v, str) and v.strip() for v in values):
        raise _profile_error(f"'{key}' must be a text value or a list of text values", key, source)
    return tuple(str(v).strip() for v in values)


def profile_from_dict(data: Mapping[str, object], source: str = "profile") -> DataProfile:
    """Build and check a profile from the parsed TOML (or the dashboard's mapping form)."""
    _check_keys(data, TOP_LEVEL_KEYS, "the profile", source)
    columns = {
        k: _string(v, f"columns.{k}", source)
        for k, v in _expect_table(data.get("columns", {}), "columns", source).items()
    }
    _check_keys(columns, frozenset(FIELDS), "[columns]", source)
    fallbacks = {
        k: _string(v, f"fallbacks.{k}", source)
        for k, v in _expect_table(data.get("fallbacks", {}), "fallbacks", source).items()
    }
    _check_keys(fallbacks, frozenset(columns), "[fallbacks] (a fallback needs its field in [columns])", source)
    sessions = _expect_table(data.get("sessions", {}), "sessions", source)
    _check_keys(sessions, SESSION_KEYS, "[sessions]", source)
    session_key = _strings(sessions["key"], "sessions.key", source) if "key" in sessions else ()
    gap = sessions.get("gap_minutes", DEFAULT_SESSION_GAP_MINUTES)
    check_session_gap(gap, "sessions.gap_minutes", source)
    stamp = _expect_table(data.get("timestamp", {}), "timestamp", source)
    _check_keys(stamp, TIMESTAMP_KEYS, "[timestamp]", source)
    stamp_format = _string(stamp.get("format", "auto"), "timestamp.format", source)
    if stamp_format not in TIMESTAMP_FORMATS and not _is_time_pattern(stamp_format):
        raise _profile_error(
            f"'timestamp.format' is {stamp_format!r}; it must be one of {', '.join(TIMESTAMP_FORMATS)} or a "
            "strftime pattern such as '%Y-%m-%d %H:%M:%S'",
            "timestamp.format",
            source,
        )
    events_table = _expect_table(data.get("event_types", {}), "event_types", source)
    _check_keys(events_table, EVENT_KEYS, "[event_types]", source)
    default_event = str(events_table.get("default", "view"))
    if default_event not in EVENT_KINDS:
        raise _profile_error("'event_types.default' must be view, cart or purchase", "event_types.default", source)
    events = {k: _strings(v, f"event_types.{k}", source) for k, v in events_table.items() if k != "default"}
    _check_event_values(events, source)
    if events and FIELD_EVENT not in columns:
        raise _profile_error(
            "[event_types] needs 'columns.event_type' (the column holding them)", "event_types", source
        )
    dims_table = _expect_table(data.get("dimensions", {}), "dimensions", source)
    dimensions = {k: _string(v, f"dimensions.{k}", source) for k, v in dims_table.items()}
    for name in dimensions:
        if not DIMENSION_NAME.match(name):
            raise _profile_error(
                f"dimension name '{name}' must be lowercase letters, digits and _, starting with a letter "
                "(at most 40 characters)",
                f"dimensions.{name}",
                source,
            )
        if name in RESERVED_NAMES:
            raise _profile_error(
                f"dimension name '{name}' is taken by a canonical field or an event feature; choose another "
                f"(e.g. '{name}_group')",
                f"dimensions.{name}",
                source,
            )
    if len(dimensions) > MAX_DIMENSIONS:
        raise _profile_error(f"at most {MAX_DIMENSIONS} dimensions", "dimensions", source)
    codebooks_table = _expect_table(data.get("codebooks", {}), "codebooks", source)
    codebooks = {}
    for name, raw_book in codebooks_table.items():
        if name not in dimensions and name != FIELD_CATEGORY:
            raise _profile_error(
                f"codebook '{name}' is for no dimension (and is not 'category')", f"codebooks.{name}", source
            )
        book = _expect_table(raw_book, f"codebooks.{name}", source)
        codebooks[name] = {
            str(code): _string(label, f"codebooks.{name}.{code}", source) for code, label in book.items()
        }
    name = _string(data.get("name", Path(source).stem), "name", source)
    if name == UCI_PROFILE:
        raise _profile_error(
            f"'name' may not be '{UCI_PROFILE}', the built-in UCI profile's name; choose another", "name", source
        )
    profile = DataProfile(
        name=name,
        title=str(data.get("title") or data.get("name") or Path(source).stem),
        description=str(data.get("description", "")),
        columns=columns,
        fallbacks=fallbacks,
        session_key=session_key,
        events=events,
        default_event=default_event,
        dimensions=dimensions,
        codebooks=codebooks,
        timestamp_format=stamp_format,
        session_gap_minutes=float(gap),
    )
    _check_complete(profile, source)
    return profile


SAMPLE_TIME = datetime(2019, 10, 1, 13, 45, 30, 123456, tzinfo=UTC)


def _is_time_pattern(pattern: str) -> bool:
    """True for a strftime pattern that reads back what it writes (``%Q`` or a bare word are not)."""
    if "%" not in pattern:
        return False
    try:
        datetime.strptime(SAMPLE_TIME.strftime(pattern), pattern)
    except ValueError:
        return False
    return True


def _check_event_values(events: Mapping[str, tuple[str, ...]], source: str) -> None:
    """One source value cannot mean two event kinds (matching ignores case and spaces)."""
    seen: dict[str, str] = {}
    for kind, values in events.items():
        for value in values:
            key = value.strip().lower()
            if key in seen and seen[key] != kind:
                raise _profile_error(
                    f"event value '{value}' is listed under both '{seen[key]}' and '{kind}'",
                    f"event_types.{kind}",
                    source,
                )
            seen[key] = kind


def _check_complete(profile: DataProfile, source: str) -> None:
    """The fields every event log needs: a product, and a session or a user with times."""
    problems = []
    if FIELD_PRODUCT not in profile.columns:
        problems.append(
            Problem(
                "the profile needs 'columns.product_id' (which product each event is about)",
                column="columns.product_id",
            )
        )
    has_time = FIELD_TIMESTAMP in profile.columns or FIELD_DATE in profile.columns
    if not has_time:
        problems.append(
            Problem("the profile needs 'columns.timestamp' (or at least 'columns.date')", column="columns.timestamp")
        )
    if profile.cuts_sessions and (FIELD_USER not in profile.columns or FIELD_TIMESTAMP not in profile.columns):
        problems.append(
            Problem(
                "the profile needs 'columns.session_id' (or [sessions] key), or 'columns.user_id' with "
                "'columns.timestamp' so sessions can be cut by inactivity",
                column="columns.session_id",
            )
        )
    if problems:
        raise ValidationError(problems, source=source)


def load_profile(path: str | Path) -> DataProfile:
    """Read a TOML profile file; ``ValidationError`` names a bad key or value."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise _profile_error(f"profile file not found: {path}", None, path.name) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise _profile_error(f"the profile file cannot be read: {exc}", None, path.name) from exc
    except tomllib.TOMLDecodeError as exc:
        raise _profile_error(f"the profile file is not valid TOML: {exc}", None, path.name) from exc
    return profile_from_dict(data, source=path.name)


def profile_to_toml(profile: DataProfile) -> str:
    """TOML text of a profile, so a mapping made in the UI can be saved and reused."""

    def text(value: str) -> str:
        # A JSON string is a TOML basic string, but for DEL, which TOML wants escaped too.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")

    def items(table: Mapping[str, object]) -> list[str]:
        lines = []
        for key, value in table.items():
            key_text = key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else text(key)
            if isinstance(value, list | tuple):
                lines.append(f"{key_text} = [{', '.join(text(str(v)) for v in value)}]")
            elif isinstance(value, float | int):
                lines.append(f"{key_text} = {value}")
            else:
                lines.append(f"{key_text} = {text(str(value))}")
        return lines

    out = items({"name": profile.name, "title": profile.title})
    if profile.description:
        out += items({"description": profile.description})
    out += ["", "[columns]", *items(profile.columns)]
    if profile.fallbacks:
        out += ["", "[fallbacks]", *items(profile.fallbacks)]
    session = {"gap_minutes": profile.session_gap_minutes}
    if profile.session_key:
        session["key"] = list(profile.session_key)
    out += ["", "[sessions]", *items(session)]
    out += ["", "[timestamp]", *items({"format": profile.timestamp_format})]
    events = {k: list(v) for k, v in profile.events.items()}
    if profile.default_event != "view":
        events["default"] = profile.default_event
    if events:
        out += ["", "[event_types]", *items(events)]
    if profile.dimensions:
        out += ["", "[dimensions]", *items(profile.dimensions)]
    for name, book in profile.codebooks.items():
        out += ["", f"[codebooks.{name}]", *items(book)]
    return "\n".join(out) + "\n"
