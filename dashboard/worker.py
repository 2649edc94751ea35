"""The Celery worker's entry point: ``celery -A dashboard.worker worker`` (needs ``REDIS_URL``).

It builds the same Dash app as the web server (``app.py``), so every
background callback is registered under the same Celery task name, and
exposes that app's Celery app as ``app`` (the name ``celery -A`` looks for).
Jobs read their data from disk (the data file, the dataset store, the upload
folder) and write through the model registry, exactly as on one machine; the
web workers and this worker must therefore share the data, models and cache
folders (one machine, or a shared file system) and the same settings.
"""

import logging
import sys

from dashboard.app_factory import create_app
from ml.config import get_settings

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

settings = get_settings()
if not settings.redis_url:
    sys.exit("error: REDIS_URL is not set; the Celery worker runs the jobs of an app started with the same REDIS_URL")

dash_app = create_app(settings)
app = celery_app = dash_app.context.background_manager.handle
