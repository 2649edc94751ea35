"""Production server settings: ``gunicorn app:server`` (gunicorn reads this file from the current folder).

    gunicorn app:server                      # or: python3 tasks.py serve
    celery -A dashboard.worker worker        # beside it, when REDIS_URL is set (background jobs on Celery)

Where it listens comes from the app's configuration (HOST, PORT; default
127.0.0.1:8050), so the refusal below sees the real address: binding to
anything but loopback with no users configured exits at once with a message
saying how to add one (``dashboard.auth.check_can_serve``). ``--bind`` on the
command line overrides HOST and PORT and is checked the same way.

Workers: ``WEB_CONCURRENCY`` (default 3), each with ``GUNICORN_THREADS``
threads (default 4), so a slow upload or a long callback does not hold a whole
worker. The timeout fits the largest upload: a worker may spend up to
``GUNICORN_TIMEOUT`` seconds (default 120) on one request (a 50 MB upload is
read, decoded and validated well within that on a 2-core machine). No state
that matters lives in a worker: prepared data, uploads, job state and the
models are on disk or in Redis, so any worker answers any request.
"""

import os
import sys

from dashboard.auth import CannotServe, check_can_serve
from ml.config import get_settings

try:
    _settings = get_settings()
except ValueError as exc:  # e.g. CLICKSTREAM_WINDOW=abc: say which variable, no traceback
    print(f"error: {exc}", file=sys.stderr, flush=True)
    sys.exit(2)


def _host(address: str) -> str:
    if address.startswith("unix:") or address.startswith("fd://"):
        return "127.0.0.1"  # a local socket: only this machine (and its proxy) reaches it
    host, _, _port = address.rpartition(":")
    return (host or address).strip("[]")


wsgi_app = "app:server"
bind = [f"[{_settings.host}]:{_settings.port}" if ":" in _settings.host else f"{_settings.host}:{_settings.port}"]
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
graceful_timeout = 30
keepalive = 5
preload_app = False  # each worker builds the app itself (no fork after threads started); prepared data is on disk
errorlog = "-"
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")
limit_request_line = 8190
limit_request_fields = 100


def on_starting(server):
    """Refuse to serve a non-loopback address without users, before any worker starts."""
    for address in server.cfg.bind:
        try:
            check_can_serve(_settings, _host(address))
        except CannotServe as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            sys.exit(1)
