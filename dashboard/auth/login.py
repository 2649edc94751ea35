"""The login and logout pages: plain Flask routes with one small HTML form each.

``POST /login`` checks the form's token (bound to the session), the failed-login
limit, then the password. Every failure says the same thing whether or not the
user exists. ``next`` is followed only to a path on this site.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import Blueprint, Response, redirect, render_template, request, session, url_for
from flask_login import login_user, logout_user

from dashboard.auth.session import (
    CSRF_FIELD,
    SessionUser,
    auth_state,
    csrf_ok,
    csrf_token,
    open_access,
    signed_in_user,
)
from ml.serving.users import normalise_name

log = logging.getLogger(__name__)

blueprint = Blueprint("auth", __name__, template_folder="templates")

WRONG_LOGIN = "Incorrect user name or password."
EXPIRED_FORM = "The form had expired; please try again."
MAX_NAME_INPUT = 100


def safe_next(target: str | None) -> str:
    """``target`` if it is a path on this site, else the app's home page."""
    target = (target or "").strip()
    if (
        not target.startswith("/")
        or target.startswith("//")
        or any(c in target for c in "\\\r\n\t")
        or urlsplit(target).netloc
    ):
        return auth_state().home
    return target


def _page(template_mode: str, status: int = 200, message: str = "", level: str = "danger", **extra) -> Response:
    auth = auth_state()
    html = render_template(
        "auth_page.html",
        mode=template_mode,
        product=auth.product,
        stylesheets=auth.stylesheets,
        csrf_field=CSRF_FIELD,
        csrf_token=csrf_token(),
        message=message,
        level=level,
        **extra,
    )
    response = Response(html, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    return response


def _login_form(status: int = 200, message: str = "", username: str = "", next_path: str = "") -> Response:
    return _page("login", status, message, username=username, next=next_path, action=url_for("auth.login"))


@blueprint.route("/login", methods=["GET", "POST"])
def login() -> Response:
    next_path = safe_next(request.values.get("next"))
    if open_access() or signed_in_user() is not None:
        return redirect(next_path)
    if request.method == "GET":
        return _login_form(next_path=next_path)
    username = request.form.get("username", "")[:MAX_NAME_INPUT]
    if not csrf_ok():
        return _login_form(400, EXPIRED_FORM, username, next_path)
    auth = auth_state()
    key = f"{normalise_name(username)[:64]}|{request.remote_addr}"
    wait = auth.attempts.retry_after(key)
    if wait:
        response = _login_form(429, f"Too many failed attempts. Try again in {wait} s.", username, next_path)
        response.headers["Retry-After"] = str(wait)
        return response
    user = auth.store.authenticate(username, request.form.get("password", ""))
    if user is None:
        auth.attempts.record_failure(key)
        log.warning("failed login for %r from %s", normalise_name(username)[:64], request.remote_addr)
        return _login_form(401, WRONG_LOGIN, username, next_path)
    auth.attempts.clear(key)
    session.clear()  # nothing from before the login carries over
    login_user(SessionUser(user))
    log.info("login: %s (%s) from %s", user.name, user.role, request.remote_addr)
    return redirect(next_path)


@blueprint.route("/logout", methods=["GET", "POST"])
def logout() -> Response:
    user = signed_in_user()
    if user is None:
        return redirect(url_for("auth.login"))
    if request.method == "GET":  # a typed or bookmarked /logout: ask, so a link elsewhere cannot log you out
        return _page("logout", user_name=user.name, action=url_for("auth.logout"))
    if not csrf_ok():
        return _page("logout", 400, EXPIRED_FORM, user_name=user.name, action=url_for("auth.logout"))
    log.info("logout: %s", user.name)
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))
