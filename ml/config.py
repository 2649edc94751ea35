"""The one configuration module: paths, limits, the observation window, seeds, server.

Every setting has a default that works on the bundled data; environment
variables override them. ``get_settings()`` reads the environment each time it
is called, so tests and the app factory can build settings for a temporary
folder without reloading modules.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BUNDLED_DATA_FILE = PROJECT_ROOT / "data" / "e-shop-clothing-2008.csv.gz"
BUNDLED_DATA_NAME = "UCI 553 e-shop clothing 2008"
BUNDLED_DATASET_KEY = "bundled"  # the bundled data's key in the model store and the dataset list
STATE_DIR = PROJECT_ROOT / ".state"  # users and the session key: private, never committed
USERS_FILE = STATE_DIR / "users.json"
SECRET_KEY_FILE = STATE_DIR / "secret_key"
DATASETS_DIR = STATE_DIR / "datasets"  # datasets added from the dashboard, with their prepared tables
PROFILES_DIR = STATE_DIR / "profiles"  # column mappings saved from the dashboard, detected like the built-ins

# Environment variable names (documented in the README).
ENV_DATA_FILE = "CLICKSTREAM_DATA"
ENV_MODELS_DIR = "CLICKSTREAM_MODELS_DIR"
ENV_CACHE_DIR = "CLICKSTREAM_CACHE_DIR"
ENV_DATASETS_DIR = "CLICKSTREAM_DATASETS_DIR"
ENV_PROFILES_DIR = "CLICKSTREAM_PROFILES_DIR"
ENV_WINDOW = "CLICKSTREAM_WINDOW"
ENV_MAX_INPUT_MB = "CLICKSTREAM_MAX_INPUT_MB"
ENV_MAX_UPLOAD_MB = "CLICKSTREAM_MAX_UPLOAD_MB"
ENV_ALLOW_SQL = "CLICKSTREAM_ALLOW_SQL"  # the dashboard may offer database sources (the CLI always may)
ENV_HOST = "HOST"  # as Dash itself reads it
ENV_PORT = "PORT"  # as Dash itself reads it
ENV_DEBUG = "DASH_DEBUG"
ENV_USERS_FILE = "CLICKSTREAM_USERS_FILE"
ENV_SECRET_KEY = "CLICKSTREAM_SECRET_KEY"
ENV_SECRET_KEY_FILE = "CLICKSTREAM_SECRET_KEY_FILE"
ENV_SECURE_COOKIES = "CLICKSTREAM_SECURE_COOKIES"
ENV_LOGIN_ATTEMPTS = "CLICKSTREAM_LOGIN_ATTEMPTS"
ENV_LOGIN_WINDOW_S = "CLICKSTREAM_LOGIN_WINDOW_S"
ENV_REDIS_URL = "REDIS_URL"
# Input limits (ml/data/limits.py): what one file may hold and how many are read at once.
ENV_MAX_COLUMNS = "CLICKSTREAM_MAX_COLUMNS"
ENV_MAX_LINE_KB = "CLICKSTREAM_MAX_LINE_KB"
ENV_MAX_PRICE = "CLICKSTREAM_MAX_PRICE"
ENV_MAX_PARSES = "CLICKSTREAM_MAX_PARSES"
ENV_PARSE_WAIT_S = "CLICKSTREAM_PARSE_WAIT_S"
ENV_UPLOAD_QUOTA_MB = "CLICKSTREAM_UPLOAD_QUOTA_MB"
ENV_REDIS_PREFIX = "CLICKSTREAM_REDIS_PREFIX"  # every key this app writes in Redis starts with it
DEFAULT_REDIS_PREFIX = "clickstream:"

DEFAULT_WINDOW = 3
RANDOM_SEED = 42
TEST_SIZE = 0.2
CV_FOLDS = 5
MEGABYTE = 1024 * 1024

# Model-size limits, stated in each model's metadata.
SVR_MAX_TRAIN_ROWS = 5_000
NYSTROEM_COMPONENTS = 300
DBSCAN_MAX_ROWS = 20_000
SILHOUETTE_SAMPLE = 5_000
KMEANS_K_RANGE = (2, 8)

# Failed logins allowed per user name and address within the window, before a pause.
LOGIN_ATTEMPTS = 5
LOGIN_WINDOW_S = 300

# Input limits: columns and bytes per line a file may have, the largest price, files read at once.
MAX_COLUMNS = 200
MAX_LINE_BYTES = 64 * 1024
MAX_PRICE = 1e9  # larger prices are data errors (a 1e300 price would dominate every sum)
MAX_PARSES = 2
PARSE_WAIT_S = 10.0
UPLOAD_QUOTA_MB = 200  # stored uploads and results per user, until they expire

# Output sizes: curve data stored beside a model, predictions kept for the UI.
CURVE_POINTS = 200
STORED_PREDICTIONS = 5_000

# Trend alerts on the KPI tab: a day is flagged when its robust z-score (against the median and MAD of
# the ALERT_WINDOW days before it) reaches ALERT_THRESHOLD; ml/features/anomalies.py explains the choice.
ALERT_THRESHOLD = 3.5
ALERT_WINDOW = 28
ENV_ALERT_THRESHOLD = "CLICKSTREAM_ALERT_Z"
ENV_ALERT_WINDOW = "CLICKSTREAM_ALERT_WINDOW"

# Answers the dashboard keeps per dataset (KPI views) and per model (what-if updates), least recently
# used dropped first (dashboard/view_cache.py); 0 computes every answer afresh.
VIEW_CACHE_SIZE = 256
ENV_VIEW_CACHE = "CLICKSTREAM_VIEW_CACHE"


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"environment variable {name}={raw!r} is not an integer") from exc


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError(f"environment variable {name}={raw!r} is not a number") from exc
    if not value > 0 or value == float("inf"):
        raise ValueError(f"environment variable {name}={raw!r} must be a positive number")
    return value


def _env_flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    return raw in {"1", "true", "yes", "on"}


def _env_path(name: str, default: Path) -> Path:
    raw = os.environ.get(name, "").strip()
    return Path(raw).expanduser().resolve() if raw else default


def is_loopback_host(host: str) -> bool:
    """Whether an address (or ``localhost``) only accepts connections from this machine."""
    if host.strip().lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.strip().strip("[]"))
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1, as a dual-stack socket reports it
    return address.is_loopback or bool(mapped and mapped.is_loopback)


@dataclass(frozen=True)
class InputLimits:
    """What one input file may hold, checked before (columns, line length) or while (prices) it is parsed.

    ``max_parses`` files are parsed at once per process; a further one waits
    up to ``parse_wait_s`` seconds and is then told the server is busy.
    """

    max_columns: int = MAX_COLUMNS
    max_line_bytes: int = MAX_LINE_BYTES
    max_price: float = MAX_PRICE
    max_parses: int = MAX_PARSES
    parse_wait_s: float = PARSE_WAIT_S


def input_limits() -> InputLimits:
    """The input limits from the environment (only their own variables are read)."""
    limits = InputLimits(
        max_columns=_env_int(ENV_MAX_COLUMNS, MAX_COLUMNS),
        max_line_bytes=_env_int(ENV_MAX_LINE_KB, MAX_LINE_BYTES // 1024) * 1024,
        max_price=_env_number(ENV_MAX_PRICE, MAX_PRICE),
        max_parses=_env_int(ENV_MAX_PARSES, MAX_PARSES),
        parse_wait_s=_env_number(ENV_PARSE_WAIT_S, PARSE_WAIT_S),
    )
    for name, value in ((ENV_MAX_COLUMNS, limits.max_columns), (ENV_MAX_LINE_KB, limits.max_line_bytes)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    if limits.max_parses < 1:
        raise ValueError(f"{ENV_MAX_PARSES} must be at least 1, got {limits.max_parses}")
    return limits


@dataclass(frozen=True)
class Settings:
    """Resolved settings for one process (or one test)."""

    data_file: Path
    models_dir: Path
    cache_dir: Path
    window: int
    max_input_bytes: int
    max_upload_bytes: int
    host: str
    port: int
    debug: bool
    allow_sql_sources: bool
    seed: int = RANDOM_SEED
    # Login (dashboard/auth): who may use the app, the session key, the failed-login limit.
    users_file: Path = USERS_FILE
    secret_key: str = field(default="", repr=False)  # empty: generated once into secret_key_file
    secret_key_file: Path = SECRET_KEY_FILE
    secure_cookies: bool = False
    login_attempts: int = LOGIN_ATTEMPTS
    login_window_s: int = LOGIN_WINDOW_S
    redis_url: str = field(default="", repr=False)  # may carry a password
    redis_prefix: str = DEFAULT_REDIS_PREFIX
    datasets_dir: Path = DATASETS_DIR
    profiles_dir: Path = PROFILES_DIR
    alert_threshold: float = ALERT_THRESHOLD  # trend alerts: |robust z| that flags a day
    alert_window: int = ALERT_WINDOW  # trend alerts: days of recent level a day is compared with
    view_cache_size: int = VIEW_CACHE_SIZE  # answers kept per dataset / per what-if model; 0 = none
    limits: InputLimits = field(default_factory=InputLimits)
    upload_quota_bytes: int = UPLOAD_QUOTA_MB * MEGABYTE

    def with_overrides(self, **changes: object) -> Settings:
        """Return a copy with some fields replaced (used by tests and the CLI)."""
        return replace(self, **changes)

    @property
    def uses_bundled_data(self) -> bool:
        return self.data_file == BUNDLED_DATA_FILE


def get_settings() -> Settings:
    """Read settings from the environment, falling back to the defaults."""
    window = _env_int(ENV_WINDOW, DEFAULT_WINDOW)
    if window < 1:
        raise ValueError(f"{ENV_WINDOW} must be at least 1, got {window}")
    host = os.environ.get(ENV_HOST, "").strip() or "127.0.0.1"
    return Settings(
        data_file=_env_path(ENV_DATA_FILE, BUNDLED_DATA_FILE),
        models_dir=_env_path(ENV_MODELS_DIR, PROJECT_ROOT / "models"),
        cache_dir=_env_path(ENV_CACHE_DIR, PROJECT_ROOT / ".cache"),
        window=window,
        max_input_bytes=_env_int(ENV_MAX_INPUT_MB, 2048) * MEGABYTE,
        max_upload_bytes=_env_int(ENV_MAX_UPLOAD_MB, 50) * MEGABYTE,
        host=host,
        port=_env_int(ENV_PORT, 8050),
        debug=_env_flag(ENV_DEBUG, False),
        allow_sql_sources=_env_flag(ENV_ALLOW_SQL, False),
        users_file=_env_path(ENV_USERS_FILE, USERS_FILE),
        secret_key=os.environ.get(ENV_SECRET_KEY, "").strip(),
        secret_key_file=_env_path(ENV_SECRET_KEY_FILE, SECRET_KEY_FILE),
        secure_cookies=_env_flag(ENV_SECURE_COOKIES, not is_loopback_host(host)),
        login_attempts=_env_int(ENV_LOGIN_ATTEMPTS, LOGIN_ATTEMPTS),
        login_window_s=_env_int(ENV_LOGIN_WINDOW_S, LOGIN_WINDOW_S),
        redis_url=os.environ.get(ENV_REDIS_URL, "").strip(),
        redis_prefix=os.environ.get(ENV_REDIS_PREFIX, "").strip() or DEFAULT_REDIS_PREFIX,
        datasets_dir=_env_path(ENV_DATASETS_DIR, DATASETS_DIR),
        profiles_dir=_env_path(ENV_PROFILES_DIR, PROFILES_DIR),
        alert_threshold=_env_number(ENV_ALERT_THRESHOLD, ALERT_THRESHOLD),
        alert_window=_env_int(ENV_ALERT_WINDOW, ALERT_WINDOW),
        view_cache_size=max(_env_int(ENV_VIEW_CACHE, VIEW_CACHE_SIZE), 0),
        limits=input_limits(),
        upload_quota_bytes=_env_int(ENV_UPLOAD_QUOTA_MB, UPLOAD_QUOTA_MB) * MEGABYTE,
    )
