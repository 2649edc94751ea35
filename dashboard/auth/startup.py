"""Whether the app may start serving on an address: the check every server entry point calls.

On loopback the app may run without users (anyone at this machine's keyboard
may use it, as ``python app.py`` always has). On any other address it needs at
least one user, so that the login is on before anyone else can reach the app.
"""

from __future__ import annotations

from ml.config import Settings, is_loopback_host
from ml.errors import ClickstreamError
from ml.serving.users import UserStore


class CannotServe(ClickstreamError):
    """Starting the server now would expose the app without a login."""


def check_can_serve(settings: Settings, host: str | None = None) -> None:
    """Raise ``CannotServe`` if binding to ``host`` (default ``settings.host``) would serve without a login.

    For ``app.py`` and for a production server's start hook (gunicorn's
    ``on_starting``, say, with the address it binds).
    """
    host = settings.host if host is None else host
    if is_loopback_host(host) or UserStore(settings.users_file).has_users():
        return
    raise CannotServe(
        f"refusing to serve on {host}: no users are configured in {settings.users_file}, so anyone who can "
        "reach this address would have full access without logging in. Add an admin first:\n"
        "    python -m ml users add NAME --role admin\n"
        "or listen on loopback only (HOST=127.0.0.1)."
    )
