"""Entry point: ``python app.py`` serves the dashboard; ``server`` is the WSGI app.

Host, port, debug and the data file come from ``ml.config`` (environment
variables HOST, PORT, DASH_DEBUG, CLICKSTREAM_DATA, ...).
"""

import gc
import logging
import sys

from dashboard.app_factory import create_app
from dashboard.auth import check_can_serve
from ml.config import get_settings
from ml.errors import ClickstreamError

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

if __name__ == "__main__":
    try:  # before the data is prepared, so a refusal comes at once
        check_can_serve(get_settings())
    except ValueError as exc:  # a bad environment variable, e.g. CLICKSTREAM_WINDOW=abc
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except ClickstreamError as exc:
        sys.exit(f"error: {exc}")

# The upload parse workers (dashboard/parse_pool.py, started by spawn) import this file as
# __mp_main__: they need no app.
if __name__ != "__mp_main__":
    app = create_app()
    server = app.server
    # Everything built at start-up lives for the whole process: keep the garbage collector
    # from rescanning it, which otherwise pauses requests for 100-150 ms now and then.
    gc.collect()
    gc.freeze()

if __name__ == "__main__":
    settings = get_settings()
    app.run(host=settings.host, port=settings.port, debug=settings.debug)
