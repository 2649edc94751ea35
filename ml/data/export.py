"""Writing tables for users: CSV that a spreadsheet cannot execute, written atomically.

A text cell that starts with ``=``, ``+``, ``-``, ``@`` (or a tab or carriage
return) could run as a formula when the CSV is opened in a spreadsheet; it is
prefixed with a single quote. Numbers are left alone: a negative number is data,
not a formula.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pandas as pd

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells cannot be read as spreadsheet formulas."""
    out = frame.copy()
    for column in out.columns:
        series = out[column]
        if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            continue
        if isinstance(series.dtype, pd.CategoricalDtype):
            series = series.astype("string")
        text = series.astype("string")
        risky = text.str.startswith(FORMULA_PREFIXES).fillna(False)
        if risky.any():
            out[column] = text.mask(risky, "'" + text)
    return out


def to_csv_text(frame: pd.DataFrame) -> str:
    """Safe CSV text of a table (for downloads)."""
    return neutralise_formulas(frame).to_csv(index=False)


@contextmanager
def atomic_write(path: Path | str, permissions: int | None = None) -> Iterator[IO[str]]:
    """A text file beside ``path`` that replaces it whole when the block ends; on an error, nothing changes.

    The temporary file is created private (0600, as ``mkstemp`` does); ``permissions``
    sets the mode explicitly before the file becomes visible.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        if permissions is not None:
            os.chmod(tmp, permissions)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_csv_atomic(frame: pd.DataFrame, path: Path | str) -> None:
    """Write safe CSV next to ``path`` and move it into place, so no half file is ever visible."""
    with atomic_write(path) as fh:
        neutralise_formulas(frame).to_csv(fh, index=False)
