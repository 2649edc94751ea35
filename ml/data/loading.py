"""Load a click file in any accepted form into validated canonical clicks.

``load_clicks`` is the one entry point the CLI, the dashboard and the tests
use: it checks the size limit, detects the container and delimiter, maps the
headers, validates every value, and returns the clicks with a short report of
how the file was read. Bad input raises ``ValidationError`` listing all
problems.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ml.config import get_settings
from ml.data import schema as S
from ml.data.reading import parse_bytes, read_source_bytes
from ml.data.validation import validate_frame

DELIMITER_NAMES = {";": "semicolon", ",": "comma", "\t": "tab", "|": "pipe"}


@dataclass(frozen=True)
class LoadedClicks:
    """Validated clicks plus what a user needs to know about how they were read."""

    clicks: pd.DataFrame
    source: str
    input_form: str
    warnings: tuple[str, ...]
    label_source: str  # "proxy" or "input"
    data_hash: str
    n_bytes: int

    @property
    def n_sessions(self) -> int:
        return int(self.clicks[S.SESSION_ID].nunique())

    def summary(self) -> dict[str, object]:
        """Rows, sessions, date range and form: the head of a validation report."""
        dates = self.clicks[S.DATE]
        return {
            "source": self.source,
            "input_form": self.input_form,
            "rows": len(self.clicks),
            "sessions": self.n_sessions,
            "first_date": str(dates.min().date()) if len(dates) else None,
            "last_date": str(dates.max().date()) if len(dates) else None,
            "label_source": self.label_source,
            "warnings": list(self.warnings),
        }


def load_clicks(
    source: str | Path | bytes,
    *,
    name: str | None = None,
    max_bytes: int | None = None,
) -> LoadedClicks:
    """Read, detect, map and validate a click file (path or raw bytes)."""
    if max_bytes is None:
        max_bytes = get_settings().max_input_bytes
    display = name or (Path(source).name if not isinstance(source, bytes) else "upload")
    data = read_source_bytes(source, max_bytes=max_bytes, name=display)
    raw = parse_bytes(data, max_bytes=max_bytes, source=display)
    canonical = validate_frame(raw.frame, source=display)
    if raw.container == "parquet":
        form = f"Parquet with {canonical.header_form} column names"
    else:
        delimiter = DELIMITER_NAMES.get(raw.delimiter or ",", repr(raw.delimiter))
        gz = "gzip-compressed " if raw.container == "csv.gz" else ""
        form = f"{gz}{delimiter}-separated CSV with {canonical.header_form} headers"
    return LoadedClicks(
        clicks=canonical.clicks,
        source=display,
        input_form=form,
        warnings=canonical.warnings,
        label_source="input" if canonical.has_real_label else "proxy",
        data_hash=hashlib.sha256(data).hexdigest(),
        n_bytes=len(data),
    )


def frame_hash(clicks: pd.DataFrame) -> str:
    """A stable hash of a click frame, for data that did not come from a file."""
    hashed = pd.util.hash_pandas_object(clicks, index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()
