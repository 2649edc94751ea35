"""The users file and ``python -m ml users``: argon2 hashes, roles, a private file written whole."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from ml.data.export import atomic_write
from ml.serving.users import ADMIN, ANALYST, ROLES, VIEWER, UsersError, UserStore, role_allows
from tests.ml.test_cli import run_cli

PASSWORD = "correct horse battery"


@pytest.fixture
def store(tmp_path: Path) -> UserStore:
    return UserStore(tmp_path / "state" / "users.json")


def test_users_are_added_listed_and_removed(store: UserStore):
    assert store.users() == [] and not store.has_users()
    store.add("vera", VIEWER, PASSWORD)
    store.add("Ann", ANALYST, PASSWORD)  # names are case-insensitive, kept lower-case
    assert [(u.name, u.role) for u in store.users()] == [("ann", ANALYST), ("vera", VIEWER)]
    assert store.get("ANN").role == ANALYST
    removed = store.remove("vera")
    assert removed.name == "vera"
    assert [u.name for u in store.users()] == ["ann"]
    with pytest.raises(UsersError, match="no user 'vera'"):
        store.remove("vera")


def test_passwords_are_stored_as_argon2id_hashes_that_verify(store: UserStore):
    store.add("adam", ADMIN, PASSWORD)
    raw = store.path.read_text(encoding="utf-8")
    assert PASSWORD not in raw
    stored = json.loads(raw)["users"][0]["hash"]
    assert stored.startswith("$argon2id$")
    assert PasswordHasher().verify(stored, PASSWORD)
    assert store.authenticate("adam", PASSWORD).role == ADMIN
    assert store.authenticate("Adam ", PASSWORD).name == "adam"


def test_a_wrong_password_or_an_unknown_user_does_not_authenticate(store: UserStore):
    store.add("adam", ADMIN, PASSWORD)
    assert store.authenticate("adam", PASSWORD + "!") is None
    assert store.authenticate("adam", "") is None
    assert store.authenticate("nobody", PASSWORD) is None
    assert store.authenticate("adam", "x" * 5000) is None


def test_a_duplicate_user_is_refused_and_the_first_one_kept(store: UserStore):
    store.add("vera", VIEWER, PASSWORD)
    with pytest.raises(UsersError, match="already exists"):
        store.add("VERA", ADMIN, "another password")
    assert store.get("vera").role == VIEWER
    assert store.authenticate("vera", PASSWORD) is not None


@pytest.mark.parametrize(
    ("name", "role", "password", "message"),
    [
        ("vera", "superuser", PASSWORD, "unknown role 'superuser'"),
        ("vera", "", PASSWORD, "unknown role"),
        ("", VIEWER, PASSWORD, "not allowed"),
        ("vera smith", VIEWER, PASSWORD, "not allowed"),
        ("-vera", VIEWER, PASSWORD, "not allowed"),
        ("vera", VIEWER, "short", "at least 8"),
    ],
)
def test_bad_names_roles_and_passwords_are_refused_and_nothing_is_written(store, name, role, password, message):
    with pytest.raises(UsersError, match=message):
        store.add(name, role, password)
    assert not store.path.exists()


def test_roles_are_ordered_each_allowing_what_the_ones_before_allow():
    assert ROLES == (VIEWER, ANALYST, ADMIN)
    assert role_allows(ADMIN, ANALYST) and role_allows(ANALYST, VIEWER) and role_allows(VIEWER, VIEWER)
    assert not role_allows(VIEWER, ANALYST) and not role_allows(ANALYST, ADMIN)
    assert not role_allows(None, VIEWER) and not role_allows("root", VIEWER)


def test_the_file_is_private_and_replaced_whole(store: UserStore):
    store.add("vera", VIEWER, PASSWORD)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    before = store.path.read_text(encoding="utf-8")
    with open(store.path, encoding="utf-8") as reader:  # a reader that opened the old file
        old_inode = os.fstat(reader.fileno()).st_ino
        store.add("ann", ANALYST, PASSWORD)
        assert reader.read() == before  # still the whole old file, never a half-written one
    assert store.path.stat().st_ino != old_inode  # a new file moved into place
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert [p.name for p in store.path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_an_interrupted_write_leaves_the_old_file_and_no_temporary_file(tmp_path: Path):
    path = tmp_path / "users.json"
    path.write_text('{"version": 1, "users": []}', encoding="utf-8")
    with pytest.raises(RuntimeError), atomic_write(path, permissions=0o600) as fh:
        fh.write('{"version": 1, "us')
        raise RuntimeError("disk full")
    assert path.read_text(encoding="utf-8") == '{"version": 1, "users": []}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["users.json"]


def test_a_store_sees_changes_another_process_made(store: UserStore):
    other = UserStore(store.path)
    assert not store.has_users()
    other.add("vera", VIEWER, PASSWORD)
    assert store.get("vera") is not None
    other.remove("vera")
    assert store.get("vera") is None


def test_a_damaged_users_file_is_an_error_not_an_empty_list(store: UserStore):
    store.path.parent.mkdir(parents=True)
    store.path.write_text('{"users": [{"name": "x"', encoding="utf-8")
    with pytest.raises(UsersError, match="cannot be read"):
        store.has_users()


# ---------------------------------------------------------------- the command line
def run_users(*args: str, users_file: Path, stdin: str = "") -> subprocess.CompletedProcess:
    env = {"CLICKSTREAM_USERS_FILE": str(users_file)}
    return run_cli("users", *args, models_dir=users_file.parent / "models", env=env, stdin=stdin)


def test_the_command_line_adds_lists_and_removes_users(tmp_path: Path):
    users_file = tmp_path / "users.json"
    added = run_users(
        "add", "Adam", "--role", "admin", "--password-stdin", users_file=users_file, stdin=PASSWORD + "\n"
    )
    assert added.returncode == 0, added.stderr
    assert "added adam (admin)" in added.stderr
    assert UserStore(users_file).authenticate("adam", PASSWORD) is not None  # the newline is not in the password
    assert stat.S_IMODE(users_file.stat().st_mode) == 0o600
    UserStore(users_file).add("vera", VIEWER, PASSWORD)

    listed = run_users("list", users_file=users_file)
    assert listed.returncode == 0
    assert [line.split("\t")[:2] for line in listed.stdout.splitlines()] == [["adam", "admin"], ["vera", "viewer"]]
    assert "argon2" not in listed.stdout + listed.stderr

    again = run_users("add", "adam", "--role", "viewer", "--password-stdin", users_file=users_file, stdin=PASSWORD)
    assert again.returncode == 1 and "already exists" in again.stderr and "Traceback" not in again.stderr

    removed = run_users("remove", "vera", users_file=users_file)
    assert removed.returncode == 0 and "removed vera" in removed.stderr
    assert [u.name for u in UserStore(users_file).users()] == ["adam"]


def test_the_command_line_refuses_an_unknown_role_and_a_missing_password(tmp_path: Path):
    users_file = tmp_path / "users.json"
    bad_role = run_users("add", "vera", "--role", "boss", "--password-stdin", users_file=users_file, stdin=PASSWORD)
    assert bad_role.returncode == 2 and "invalid choice: 'boss'" in bad_role.stderr
    no_tty = run_users("add", "vera", "--role", "viewer", users_file=users_file)  # stdin is not a terminal
    assert no_tty.returncode == 1 and "--password-stdin" in no_tty.stderr
    empty = run_users("add", "vera", "--role", "viewer", "--password-stdin", users_file=users_file, stdin="\n")
    assert empty.returncode == 1 and "at least 8" in empty.stderr
    assert not users_file.exists()
