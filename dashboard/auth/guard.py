"""The one server-side check in front of every request, callbacks included.

In order: the public files (login page, stylesheets, favicon) pass; a POST from
another site (``Origin``/``Referer`` naming another host) is refused; without
users the app answers only this machine; a request that is not logged in gets
the login page (pages) or 401 (Dash's own endpoints); a Dash callback needs the
role ``policy.callback_role`` gives it, or gets 403. Background-callback polls
and cancels are POSTs to the same endpoint with the same body, so they are
checked the same way.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode, urlsplit

import dash
from flask import Response, jsonify, redirect, request, url_for
from flask_login import current_user

from dashboard.auth import policy
from dashboard.auth.session import auth_state, current_role, open_access
from ml.serving.users import UsersError, role_allows

log = logging.getLogger(__name__)

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
PUBLIC_ENDPOINTS = {"auth.login", "auth.logout"}
ADD_USER = "python -m ml users add NAME --role admin"


def _error(status: int, error: str, message: str) -> Response:
    response = jsonify(error=error, message=message)
    response.status_code = status
    return response


def same_site() -> bool:
    """False when the browser says the request comes from a page on another host."""
    source = request.headers.get("Origin") or request.headers.get("Referer")
    if not source:
        return True  # old clients and scripts; SameSite=Lax keeps the session cookie off cross-site POSTs
    return source != "null" and urlsplit(source).netloc.lower() == request.host.lower()


class Guard:
    """``before_request`` for the Flask server behind one Dash app."""

    def __init__(self, app: dash.Dash):
        self.app = app
        prefix = app.config.routes_pathname_prefix
        self.update_path = prefix + "_dash-update-component"
        self.internal_prefix = prefix + "_"  # _dash-layout, _dash-dependencies, _dash-component-suites, ...
        self.public_prefixes = (prefix + "assets/", prefix + "_favicon.ico")

    def __call__(self) -> Response | None:
        if request.path.startswith(self.public_prefixes):
            return None
        if request.method not in SAFE_METHODS and not same_site():
            return _error(403, "cross-site", "Requests from other sites are refused.")
        try:
            if open_access():
                return None
            if not auth_state().store.has_users():
                return _error(503, "no-users", f"No users are configured yet. On the server, run: {ADD_USER}")
        except UsersError as exc:
            log.error("%s", exc)
            return _error(503, "users-file", "The users file cannot be read; see the server log.")
        return self._check_user()

    def _check_user(self) -> Response | None:
        if request.endpoint in PUBLIC_ENDPOINTS:
            return None
        if not current_user.is_authenticated:
            return self._not_logged_in()
        if request.method in SAFE_METHODS:
            return None
        return self._check_role()

    def _check_role(self) -> Response | None:
        needed = self._needed_role()
        if needed is None:
            return _error(400, "bad-request", "A callback request must be a JSON object.")
        if not role_allows(current_role(), needed):
            who = f"{current_user.name} ({current_user.role})"
            log.warning("refused %s %s to %s: needs %s", request.method, request.path, who, needed)
            return _error(403, "forbidden", f"This needs the {needed} role; you are logged in as {current_user.role}.")
        return None

    def _needed_role(self) -> str | None:
        if request.path != self.update_path:
            return policy.OTHER_POST_ROLE
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return None
        return policy.callback_role(body, self.app.callback_map)

    def _not_logged_in(self) -> Response:
        if request.method in SAFE_METHODS and not request.path.startswith(self.internal_prefix):
            query = request.query_string.decode("utf-8", "replace")
            target = request.path + (f"?{query}" if query else "")
            return redirect(url_for("auth.login") + "?" + urlencode({"next": target}))
        return _error(401, "login-required", "Log in first (your session may have ended).")
