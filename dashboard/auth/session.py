"""Who is asking: Flask-Login's session user, the role of this request, the form token.

A session remembers a user's name and a fingerprint of their password hash;
each request looks the user up in the users file again, so a removed user, a
new password or a changed role takes effect at their next request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

from flask import current_app, g, has_request_context, request, session
from flask_login import UserMixin, current_user

from dashboard.auth.attempts import LoginAttempts
from ml.config import is_loopback_host
from ml.serving.users import ADMIN, User, UserStore

EXTENSION = "clickstream_auth"
CSRF_FIELD = "csrf_token"


@dataclass
class AuthState:
    """What the login needs per app, kept in ``server.extensions``."""

    store: UserStore
    attempts: LoginAttempts
    home: str = "/"  # the app's page, where a login without ``next`` lands
    product: str = ""
    stylesheets: list[str] = field(default_factory=list)  # the vendored CSS URLs, for the login page


class SessionUser(UserMixin):
    def __init__(self, user: User):
        self.name = user.name
        self.role = user.role
        self.id = f"{user.name}:{fingerprint(user)}"


def fingerprint(user: User) -> str:
    """Changes when the user is added again or gets a new password, which ends their old sessions."""
    return hashlib.sha256(user.password_hash.encode("utf-8")).hexdigest()[:24]


def load_session_user(session_id: str) -> SessionUser | None:
    name, _, token = session_id.partition(":")
    user = auth_state().store.get(name)
    if user is None or not hmac.compare_digest(fingerprint(user), token):
        return None
    return SessionUser(user)


def auth_state() -> AuthState:
    return current_app.extensions[EXTENSION]


def open_access() -> bool:
    """No users configured and the request comes from this machine: the app runs without login."""
    return not auth_state().store.has_users() and is_loopback_host(request.remote_addr or "")


def current_role() -> str | None:
    """The role this request acts with: the user's, ``admin`` without login, ``None`` when not logged in.

    Outside a request (tests or the benchmark building a layout) there is no
    user to restrict, and nothing is served.
    """
    if not has_request_context() or EXTENSION not in current_app.extensions:
        return ADMIN
    if "auth_role" not in g:
        if open_access():
            g.auth_role = ADMIN
        else:
            g.auth_role = current_user.role if current_user.is_authenticated else None
    return g.auth_role


def signed_in_user() -> SessionUser | None:
    """The logged-in user, or ``None`` (not logged in, or the app runs without login)."""
    if not has_request_context() or EXTENSION not in current_app.extensions or open_access():
        return None
    return current_user if current_user.is_authenticated else None


def csrf_token() -> str:
    """This session's token for the login and logout forms (made on first use)."""
    if CSRF_FIELD not in session:
        session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return session[CSRF_FIELD]


def csrf_ok() -> bool:
    sent = request.form.get(CSRF_FIELD, "")
    expected = session.get(CSRF_FIELD, "")
    return bool(sent and expected) and hmac.compare_digest(sent, expected)
