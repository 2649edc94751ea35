"""The header's user menu: who is logged in, with which role, and a Log out button."""

from __future__ import annotations

from dash import html
from flask import url_for

from dashboard.auth.session import CSRF_FIELD, csrf_token, signed_in_user


def user_menu() -> html.Div | None:
    """Name, role and Log out (a POST carrying the session's form token); nothing when there is no login."""
    user = signed_in_user()
    if user is None:
        return None
    logout = html.Form(
        html.Button(
            "Log out",
            type="submit",
            name=CSRF_FIELD,
            value=csrf_token(),
            className="btn btn-sm btn-outline-light",
        ),
        action=url_for("auth.logout"),
        method="post",
        className="mb-0",
    )
    return html.Div(
        [html.Span([html.Span(user.name, className="fw-semibold"), f" · {user.role}"], className="small"), logout],
        className="d-flex align-items-center user-menu",
    )
