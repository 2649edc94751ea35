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

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
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
# Names a dimension may not take: canonical fields, derived columns, and the URL's own parameters.
RESERVED_NAMES = (
    frozenset(FIELDS) | {S.DATE, S.YEAR, S.MONTH, S.DAY, S.LABEL_CONVERTED, "key"} | {"tab", "dataset", "from", "to"}
)


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
        return self if minutes is None else replace(self, session_gap_minutes=float(minutes))

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
    return {S.normalise_header(c): str(c).lstrip("\ufeff").strip() for c in columns}


def uci_fields_found(columns: Sequence[object]) -> int:
    """How many of the UCI file's 14 fields the headers hold (either naming)."""
    found = {S.HEADER_ALIASES.get(key) for key in _normalised(columns)}
    return len(found & set(S.SOURCE_COLUMNS))


def _share_present(profile: DataProfile, columns: Sequence[object]) -> float:
    present = set(_normalised(columns))
    required = profile.required_columns()
    return sum(S.normalise_header(c) in present for c in required) / len(required)


UCI_MIN_FIELDS = 2  # a file with two of the UCI file's fields (and no better match) is a UCI file, incomplete
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
    if uci_fields_found(columns) >= UCI_MIN_FIELDS:
        return UCI
    shown = ", ".join(f"'{c}'" for c in list(columns)[:12]) or "none"
    more = f" and {len(columns) - 12} more" if len(columns) > 12 else ""
    known = "; ".join(f"{p.title} ({p.description or ', '.join(p.required_columns())})" for p in (UCI, *_events()))
    raise ValidationError(
        [
            Problem(
                f"the columns ({shown}{more}) match no known data profile; known profiles: {known}. "
                "Describe this export in a profile file and pass it with --profile FILE (see docs/PROFILES.md), "
                "or map its columns in the dashboard's Add data form"
            )
        ],
        source=source,
    )


def _events() -> tuple[DataProfile, ...]:
    return (MULTI_CATEGORY_STORE, VISITOR_LOG)


def resolve_columns(profile: DataProfile, columns: Sequence[object]) -> DataProfile:
    """The profile with its column names spelled as the source spells them (case, spaces, BOM).

    Raises ``ValidationError`` listing every profile column the source lacks.
    """
    if profile.is_uci:
        return profile
    lookup = _normalised(columns)
    problems = []

    def real(column: str, what: str) -> str:
        key = S.normalise_header(column)
        if key not in lookup:
            problems.append(Problem(f"the profile's column '{column}' ({what}) is not in the source", column=column))
            return column
        return lookup[key]

    mapped = {name: real(col, f"field '{name}'") for name, col in profile.columns.items()}
    fallbacks = {name: real(col, f"fallback for '{name}'") for name, col in profile.fallbacks.items()}
    key = tuple(real(col, "session key") for col in profile.session_key)
    dims = {name: real(col, f"dimension '{name}'") for name, col in profile.dimensions.items()}
    if problems:
        available = ", ".join(f"'{c}'" for c in list(lookup.values())[:30])
        problems.append(Problem(f"the source's columns are: {available}"))
        raise ValidationError(problems, source=profile.name)
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
    if isinstance(gap, bool) or not isinstance(gap, int | float) or not 0 < gap <= 24 * 60:
        raise _profile_error(
            "'sessions.gap_minutes' must be a number of minutes between 0 and 1440", "sessions.gap_minutes", source
        )
    stamp = _expect_table(data.get("timestamp", {}), "timestamp", source)
    _check_keys(stamp, TIMESTAMP_KEYS, "[timestamp]", source)
    stamp_format = _string(stamp.get("format", "auto"), "timestamp.format", source)
    if stamp_format not in TIMESTAMP_FORMATS and "%" not in stamp_format:
        raise _profile_error(
            f"'timestamp.format' must be one of {', '.join(TIMESTAMP_FORMATS)} or a strftime pattern such as "
            "'%Y-%m-%d %H:%M:%S'",
            "timestamp.format",
            source,
        )
    events_table = _expect_table(data.get("event_types", {}), "event_types", source)
    _check_keys(events_table, EVENT_KEYS, "[event_types]", source)
    default_event = str(events_table.get("default", "view"))
    if default_event not in EVENT_KINDS:
        raise _profile_error("'event_types.default' must be view, cart or purchase", "event_types.default", source)
    events = {k: _strings(v, f"event_types.{k}", source) for k, v in events_table.items() if k != "default"}
    if events and FIELD_EVENT not in columns:
        raise _profile_error(
            "[event_types] needs 'columns.event_type' (the column holding them)", "event_types", source
        )
    dims_table = _expect_table(data.get("dimensions", {}), "dimensions", source)
    dimensions = {k: _string(v, f"dimensions.{k}", source) for k, v in dims_table.items()}
    for name in dimensions:
        if not DIMENSION_NAME.match(name) or name in RESERVED_NAMES:
            raise _profile_error(
                f"dimension name '{name}' must be lowercase letters, digits and _ (starting with a letter) "
                "and not a canonical field name",
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
    profile = DataProfile(
        name=_string(data.get("name", Path(source).stem), "name", source),
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
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

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
