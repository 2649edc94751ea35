"""The key that signs session cookies: from the environment, else made once and kept in a private file.

Every server process must sign with the same key, or a login made on one
worker is unknown to the next. The first process to start writes a random key
to ``secret_key_file`` (0600) with a hard link, which never replaces an
existing file, so processes starting at once all end up reading the same key.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path

from ml.config import ENV_SECRET_KEY, Settings

MIN_SECRET_LENGTH = 32


def _read(path: Path) -> str:
    key = path.read_text(encoding="utf-8").strip()
    if len(key) < MIN_SECRET_LENGTH:
        raise ValueError(f"the session key in {path} is too short; delete the file to have a new one made")
    return key


def _create_once(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(secrets.token_hex(32) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileExistsError):  # another process was first: its key wins
            os.link(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def session_secret(settings: Settings) -> str:
    """``CLICKSTREAM_SECRET_KEY`` if set, else the key in ``settings.secret_key_file`` (made if missing)."""
    if settings.secret_key:
        if len(settings.secret_key) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"{ENV_SECRET_KEY} must have at least {MIN_SECRET_LENGTH} characters; "
                "make one with: python -c 'import secrets; print(secrets.token_hex(32))'"
            )
        return settings.secret_key
    if not settings.secret_key_file.exists():
        _create_once(settings.secret_key_file)
    return _read(settings.secret_key_file)
