"""The app's users: names, roles and argon2 password hashes, in one private JSON file.

The file is the only place users live, so every server process and the command
line see the same users. It is rewritten whole (temporary file, fsync,
``os.replace``) with 0600 permissions, under a file lock so that two commands
run at once cannot lose each other's change; readers never see half a file.
Hashes are argon2id with argon2-cffi's ``PasswordHasher`` defaults (RFC 9106's
low-memory profile); the hash string carries its own salt and parameters.

Roles are ordered: each can do everything the ones before it can.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ml.data.export import atomic_write
from ml.errors import ClickstreamError
from ml.serving.locking import file_lock

VIEWER = "viewer"
ANALYST = "analyst"
ADMIN = "admin"
ROLES = (VIEWER, ANALYST, ADMIN)
ROLE_DESCRIPTIONS = {
    VIEWER: "KPIs, EDA, segments and what-if",
    ANALYST: "also uploads, scoring, datasets and training",
    ADMIN: "also users",
}

FILE_VERSION = 1
FILE_PERMISSIONS = 0o600
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024  # hashing megabytes of "password" would be a cheap way to load the server

_hasher = PasswordHasher()


class UsersError(ClickstreamError):
    """A user cannot be added or removed as asked, or the users file cannot be read."""


@dataclass(frozen=True)
class User:
    name: str
    role: str
    password_hash: str = field(repr=False)
    created: str = ""


def role_allows(role: str | None, needed: str) -> bool:
    """Whether ``role`` may do what ``needed`` may (no role may do nothing)."""
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


def normalise_name(name: str) -> str:
    """User names are case-insensitive: ``Alice`` and ``alice`` are one user."""
    return name.strip().lower()


def check_name(name: str) -> str:
    """The normalised name, or ``UsersError`` saying what a name may hold."""
    normalised = normalise_name(name)
    if not NAME_PATTERN.match(normalised):
        raise UsersError(
            f"user name {name!r} is not allowed: use 1-64 letters, digits and . _ @ -, starting with a letter or digit"
        )
    return normalised


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UsersError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    return role


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UsersError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise UsersError(f"the password must have at most {MAX_PASSWORD_LENGTH} characters")


class UserStore:
    """The users in ``path``; the file is read again whenever it changes on disk."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._seen: tuple | None = None
        self._users: dict[str, User] = {}

    # ------------------------------------------------------------ reading
    def _stamp(self) -> tuple | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def _load(self) -> dict[str, User]:
        stamp = self._stamp()
        if stamp != self._seen:
            self._users = self._read() if stamp is not None else {}
            self._seen = stamp
        return self._users

    def _read(self) -> dict[str, User]:
        try:
            payload = json.loads(self.path.read_text(encoding="utf-8"))
            users = {
                u["name"]: User(
                    name=u["name"], role=check_role(u["role"]), password_hash=u["hash"], created=u["created"]
                )
                for u in payload["users"]
            }
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError, UsersError) as exc:
            raise UsersError(f"the users file {self.path} cannot be read ({type(exc).__name__}: {exc})") from exc
        return users

    def users(self) -> list[User]:
        """Every user, by name."""
        return sorted(self._load().values(), key=lambda u: u.name)

    def has_users(self) -> bool:
        return bool(self._load())

    def get(self, name: str) -> User | None:
        return self._load().get(normalise_name(name))

    def authenticate(self, name: str, password: str) -> User | None:
        """The user if the password is theirs, else ``None``.

        An unknown name costs one hash check as well, so the time taken does not
        tell whether the user exists.
        """
        if len(password) > MAX_PASSWORD_LENGTH:
            return None
        user = self.get(name)
        candidate = user.password_hash if user else _dummy_hash()
        try:
            _hasher.verify(candidate, password)
        except (VerificationError, InvalidHashError):
            return None
        return user

    # ------------------------------------------------------------ writing
    def add(self, name: str, role: str, password: str) -> User:
        """Add a new user; an existing name is refused (remove it first to replace it)."""
        name, role = check_name(name), check_role(role)
        check_password(password)
        with file_lock(self._lock_path()):
            users = dict(self._read())
            if name in users:
                raise UsersError(f"user {name!r} already exists; remove it first to change its role or password")
            created = datetime.now(UTC).isoformat(timespec="seconds")
            users[name] = User(name=name, role=role, password_hash=_hasher.hash(password), created=created)
            self._write(users)
        return users[name]

    def remove(self, name: str) -> User:
        """Remove a user (their sessions end on their next request)."""
        with file_lock(self._lock_path()):
            users = dict(self._read())
            user = users.pop(normalise_name(name), None)
            if user is None:
                raise UsersError(f"no user {normalise_name(name)!r} in {self.path}")
            self._write(users)
        return user

    def _lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    def _write(self, users: dict[str, User]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        payload = {
            "version": FILE_VERSION,
            "users": [
                {"name": u.name, "role": u.role, "hash": u.password_hash, "created": u.created}
                for u in sorted(users.values(), key=lambda u: u.name)
            ],
        }
        with atomic_write(self.path, permissions=FILE_PERMISSIONS) as fh:
            json.dump(payload, fh, indent=2)
            fh.write("\n")
        self._seen = None


@functools.cache
def _dummy_hash() -> str:
    """A hash to check unknown names against, with the same parameters as the real ones."""
    return _hasher.hash("no such user")
