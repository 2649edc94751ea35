"""Profiles saved as TOML files in a folder (``Settings.profiles_dir``), detected after the built-ins.

The dashboard's mapping form saves a mapping here so that the next export of
the same form is recognised from its header without asking again. A broken
file in the folder is skipped with a log line, never an error for the user.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

from ml.data.profiles import (
    BUILTIN_PROFILES,
    DataProfile,
    detect_profile,
    load_profile,
    profile_to_toml,
    resolve_columns,
)
from ml.errors import Problem, ValidationError

log = logging.getLogger(__name__)

SUFFIX = ".toml"


def saved_profiles(folder: Path) -> list[DataProfile]:
    """Every readable profile file in ``folder``, by file name."""
    if not folder.is_dir():
        return []
    profiles = []
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        try:
            profiles.append(load_profile(path))
        except ValidationError as exc:
            log.warning("skipping the profile file %s: %s", path.name, exc.report())
    return profiles


def fits(profile: DataProfile, columns: Sequence[object]) -> bool:
    """Whether the header has every column the profile reads."""
    try:
        resolve_columns(profile, columns)
    except ValidationError:
        return False
    return True


def detect_with_saved(columns: Sequence[object], folder: Path | None) -> DataProfile | None:
    """The profile for a header: a built-in that fits, else a saved one that fits, else a partial built-in.

    ``None`` when nothing matches: the header needs a mapping.
    """
    try:
        builtin = detect_profile(columns)
    except ValidationError:
        builtin = None
    if builtin is not None and (builtin.is_uci or fits(builtin, columns)):
        return builtin
    saved = next((p for p in saved_profiles(folder) if fits(p, columns)), None) if folder else None
    return saved or builtin


def profile_file_name(profile: DataProfile) -> str:
    return f"{profile.name}{SUFFIX}"


def save_profile(folder: Path, profile: DataProfile) -> Path:
    """Write a profile as TOML into ``folder`` (atomically; a profile of the same name is replaced).

    A built-in profile's name is refused, so a saved file never shadows one.
    """
    if profile.name in BUILTIN_PROFILES:
        raise ValidationError(
            [Problem(f"'{profile.name}' is a built-in profile's name; choose another", column="profile name")],
            source="profile",
        )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / profile_file_name(profile)
    tmp = folder / f".{profile.name}-{uuid.uuid4().hex[:8]}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(profile_to_toml(profile))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    log.info("saved the profile %s to %s", profile.name, path)
    return path
