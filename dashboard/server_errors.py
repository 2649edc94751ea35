"""HTTP answers for requests that name nothing the app serves: 404, not a 500 with a traceback.

Dash raises ``DependencyException`` for a path under ``/_dash-component-suites/``
that is not one of the registered component scripts (a path-traversal probe
such as ``dash/../../app.py``, a NUL byte, an unknown package) and
``InvalidResourceError`` for an unknown resource. Both mean "no such file".
"""

from __future__ import annotations

import logging

from dash.exceptions import DependencyException, InvalidResourceError
from flask import Flask, request

log = logging.getLogger(__name__)


def _not_found(_exc: Exception):
    log.info("404 for %s (not a file the app serves)", request.path[:200])
    return "Not found", 404, {"Content-Type": "text/plain; charset=utf-8"}


def register_error_handlers(server: Flask) -> None:
    server.register_error_handler(DependencyException, _not_found)
    server.register_error_handler(InvalidResourceError, _not_found)
