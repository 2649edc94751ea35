"""``python -m ml users add | remove | list``: who may log in to the dashboard, with which role.

The password comes from an interactive prompt (asked twice), or with
``--password-stdin`` from the first line of standard input, so that it never
appears in the process list or the shell history. ``list`` shows names and
roles, never hashes.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from pathlib import Path

from ml.config import ENV_USERS_FILE, Settings
from ml.serving.users import ROLE_DESCRIPTIONS, ROLES, UsersError, UserStore

log = logging.getLogger("ml")


def add_users_parser(sub: argparse._SubParsersAction, settings: Settings) -> None:
    """Register ``users`` and its three commands on the main parser's subcommands."""
    roles = "; ".join(f"{role}: {text}" for role, text in ROLE_DESCRIPTIONS.items())
    parser = sub.add_parser("users", help="manage who may log in to the dashboard", description=f"Roles: {roles}.")
    parser.add_argument(
        "--users-file", type=Path, default=settings.users_file, help=f"users file (env {ENV_USERS_FILE})"
    )
    commands = parser.add_subparsers(dest="users_command", required=True)
    p = commands.add_parser("add", help="add a user; asks for the password twice")
    p.add_argument("name", help="user name (case-insensitive)")
    p.add_argument("--role", required=True, choices=ROLES, help=roles)
    p.add_argument(
        "--password-stdin", action="store_true", help="read the password from the first line of stdin (for scripts)"
    )
    p = commands.add_parser("remove", help="remove a user; their sessions end at their next request")
    p.add_argument("name")
    commands.add_parser("list", help="names and roles")


def _read_password(name: str, from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise UsersError("no terminal to ask for the password on; pass it on stdin with --password-stdin")
    password = getpass.getpass(f"Password for {name}: ")
    if getpass.getpass("Repeat the password: ") != password:
        raise UsersError("the two passwords differ; nothing was changed")
    return password


def run_users(args: argparse.Namespace, _registry: object = None) -> int:
    """Run one ``users`` command; ``UsersError`` reaches the caller (exit 1 with its message)."""
    store = UserStore(args.users_file)
    if args.users_command == "add":
        password = _read_password(args.name, args.password_stdin)
        user = store.add(args.name, args.role, password)
        log.info("added %s (%s) to %s", user.name, user.role, store.path)
    elif args.users_command == "remove":
        user = store.remove(args.name)
        log.info("removed %s (%s) from %s", user.name, user.role, store.path)
    else:
        users = store.users()
        if not users:
            print(
                f"no users in {store.path}: the app runs without login, on loopback (127.0.0.1) only", file=sys.stderr
            )
        for user in users:
            print(f"{user.name}\t{user.role}\t{user.created}")
    return 0
