"""Login and roles: Flask-Login sessions, users from ``ml.serving.users``, one check per request.

``init_auth(app, settings)`` is all the factory calls; ``visible_tabs`` and
``may_use_tab`` give the layout the tabs this request's role may use;
``user_menu`` is the header's name, role and Log out; ``check_can_serve`` is
the start-up check for ``app.py`` and any production server.

Roles and what they may use are in ``policy.POLICY``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

import dash
from flask_login import LoginManager

from dashboard.auth import policy
from dashboard.auth.attempts import login_attempts
from dashboard.auth.guard import Guard
from dashboard.auth.login import blueprint
from dashboard.auth.menu import user_menu
from dashboard.auth.secret import session_secret
from dashboard.auth.session import EXTENSION, AuthState, current_role, load_session_user
from dashboard.auth.startup import CannotServe, check_can_serve
from ml.config import Settings
from ml.serving.users import VIEWER, UserStore, role_allows

__all__ = ["CannotServe", "check_can_serve", "init_auth", "may_use_tab", "user_menu", "visible_tabs"]

SESSION_COOKIE = "clickstream_session"


def init_auth(app: dash.Dash, settings: Settings, product: str = "") -> None:
    """Session cookie settings, Flask-Login, the login pages and the request guard on ``app.server``."""
    server = app.server
    server.secret_key = session_secret(settings)  # also signs Dash's background-job handles, in every worker
    server.config.update(
        SESSION_COOKIE_NAME=SESSION_COOKIE,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
    )
    login_manager = LoginManager(server)
    login_manager.user_loader(load_session_user)
    assets = Path(app.config.assets_folder)
    server.extensions[EXTENSION] = AuthState(
        store=UserStore(settings.users_file),
        attempts=login_attempts(settings),
        home=app.config.requests_pathname_prefix,
        product=product,
        stylesheets=[app.get_asset_url(p.name) for p in sorted(assets.glob("*.css"))],
    )
    server.register_blueprint(blueprint, url_prefix=app.config.routes_pathname_prefix.rstrip("/"))
    server.before_request(Guard(app))


def may_use_tab(tab_id: str) -> bool:
    """Whether this request's role may use a tab (not logged in: as the lowest role, for layout checks)."""
    return role_allows(current_role() or VIEWER, policy.tab_role(tab_id))


def visible_tabs(tabs: Iterable[ModuleType]) -> list[tuple[str, str]]:
    """``(TAB_ID, LABEL)`` of the tab modules this request's role may use, in order."""
    return [(t.TAB_ID, t.LABEL) for t in tabs if may_use_tab(t.TAB_ID)]
