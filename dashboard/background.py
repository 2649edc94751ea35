"""The background-callback manager: diskcache on one machine, Celery on Redis for a team.

``background_manager(settings)`` is what the app factory installs:

- without ``REDIS_URL``: Dash's ``DiskcacheManager`` on ``<cache_dir>/background``
  (jobs run in processes forked by the web worker). The cache is a
  ``HealingCache``: if its folder is deleted while the app runs, the next
  operation makes it again instead of failing every job until a restart.
- with ``REDIS_URL``: Dash's ``CeleryManager`` on a Celery app whose broker and
  result backend are that Redis (``celery_app_for``). Jobs run in a Celery
  worker (``celery -A dashboard.worker worker``) that builds the same Dash app,
  so it registers the same callbacks under the same task names. Progress,
  results and cancels go through Redis, so any web worker answers any poll.

``make_celery_manager`` adds what Dash's manager lacks for jobs that matter:

- a heartbeat: while a job runs, its worker renews ``<prefix><key>-alive``
  every ``HEARTBEAT_S``; a job that started and stopped beating without a
  result (its worker was killed, or the machine went down) is reported failed
  by the next poll instead of being waited for forever;
- a clean cancel: Dash cancels a Celery job by sending its worker process
  SIGTERM; the job turns that into an exception, so the training lock is
  released and the staging folder removed at once (``finally`` blocks run).

``on_callback_error`` is the app's error handler: a lost job becomes a message
in the panel that started it (the Train panel, the scoring note); every other
error is raised as before.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import threading
import time
from pathlib import Path

import dash_bootstrap_components as dbc
import diskcache
from dash import DiskcacheManager, ctx, set_props

from dashboard import ids
from ml.config import Settings

log = logging.getLogger(__name__)

BACKGROUND_DIRNAME = "background"
HEARTBEAT_S = 2.0
HEARTBEAT_TTL_S = 10.0  # a job whose worker has not beaten for this long is lost
STARTED_TTL_S = 7 * 24 * 3600
RESULT_EXPIRES_S = 24 * 3600
WORKER_LOST = "the background worker running this job stopped before it finished"
TRAINING_LOST = (
    "Training failed: the worker running it was lost (killed, restarted or out of memory). "
    "Nothing from this job was saved; the models in use are unchanged. Train again when the worker is back."
)
SCORING_LOST = (
    "Scoring stopped: the worker running it was lost (killed, restarted or out of memory). "
    "Nothing was written; upload the file again and score it."
)
LOST_MESSAGES = {
    # output of the job's callback -> (component that shows the message, its text). The Train panel's
    # job file says the same (``ml.serving.jobs`` reads a lost job as failed), for every page that polls it.
    ids.APP_MODELS_STORE: (ids.TRAIN_MESSAGE, TRAINING_LOST),
    ids.SCORING_RESULT_STORE: (ids.SCORING_JOB_NOTE, SCORING_LOST),
}


class JobTerminated(BaseException):
    """SIGTERM reached a running job (Dash's cancel on Celery): unwind it so its locks and folders go."""


# ---------------------------------------------------------------- diskcache (one machine)
class HealingCache(diskcache.Cache):
    """A ``diskcache.Cache`` that makes its folder and database again if they are deleted while in use.

    Without this, a deleted cache folder leaves the web process on its open,
    unlinked database while each job process (forked, so it reconnects) fails
    to open one: every background job fails silently until a restart.
    """

    def __init__(self, directory: str | Path, **settings: object):
        self._healing = True  # the database is being made now: nothing to heal yet
        self._db_path = os.path.join(str(directory), diskcache.core.DBNAME)
        self._init_settings = settings
        try:
            super().__init__(str(directory), **settings)
        finally:
            self._healing = False

    @property
    def _con(self):  # every operation goes through here: one stat() each
        if not self._healing:
            try:
                inode = os.stat(self._db_path).st_ino
            except FileNotFoundError:
                self._heal()
                inode = os.stat(self._db_path).st_ino
            if getattr(self._local, "inode", inode) != inode:
                self.close()  # this thread's connection is to a deleted database; another process made a new one
            self._local.inode = inode
        return diskcache.Cache._con.fget(self)

    def _heal(self) -> None:
        self._healing = True
        try:
            log.warning("the background-job cache %s was deleted; making it again", self.directory)
            with contextlib.suppress(Exception):
                self.close()
            diskcache.Cache.__init__(self, self.directory, **self._init_settings)
        finally:
            self._healing = False


def diskcache_manager(settings: Settings) -> DiskcacheManager:
    settings.cache_dir.mkdir(parents=True, exist_ok=True)
    return DiskcacheManager(HealingCache(settings.cache_dir / BACKGROUND_DIRNAME))


# ---------------------------------------------------------------- Celery on Redis (any number of machines)
def celery_app_for(settings: Settings):
    """The Celery app of the background jobs: broker and results in ``settings.redis_url``, keys prefixed."""
    from celery import Celery

    if not settings.redis_url:
        raise ValueError("REDIS_URL is not set: the Celery worker needs the Redis the app uses (REDIS_URL=redis://...)")
    prefix = settings.redis_prefix
    app = Celery("clickstream", broker=settings.redis_url, backend=settings.redis_url)
    app.conf.update(
        broker_transport_options={"global_keyprefix": prefix},
        result_backend_transport_options={"global_keyprefix": prefix},
        task_default_queue=f"{prefix}jobs",
        result_expires=RESULT_EXPIRES_S,
        worker_prefetch_multiplier=1,  # a long job does not hold back the next one
        task_acks_late=False,  # a job whose worker dies is reported failed, not run again unasked
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
    )
    return app


def _redis_client(settings: Settings):
    import redis

    return redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)


def make_celery_manager(settings: Settings):
    from dash import CeleryManager

    class _Manager(CeleryManager):
        """``CeleryManager`` whose jobs beat while they run and unwind on a cancel (see the module text)."""

        def __init__(self, celery_app, redis_client, prefix: str):
            self.redis = redis_client
            self.prefix = prefix
            super().__init__(celery_app, expire=RESULT_EXPIRES_S)

        @staticmethod
        def _key(result_key: str, what: str) -> str:
            return f"{result_key}-{what}"  # the result key carries the prefix already

        def make_job_fn(self, fn, progress, key=None):
            return super().make_job_fn(_beating(fn, self, progress), progress, key)

        # Dash keys results by a hash of the callback and its inputs, the same in every deployment of
        # this code: each key gets the prefix, so two apps (or a test) on one Redis never share results.
        def call_job_fn(self, key, job_fn, args, context):
            key = self.prefix + key
            # A new job with the same inputs as an earlier one gets the same key: drop what that one left
            # (a cancelled job's answer would otherwise be taken for this job's, and this job killed).
            stale = [key, self._make_progress_key(key), self._make_set_props_key(key)]
            self.handle.backend.client.delete(*stale, self._key(key, "started"), self._key(key, "alive"))
            return super().call_job_fn(key, job_fn, args, context)

        def get_progress(self, key):
            return super().get_progress(self.prefix + key)

        def result_ready(self, key):
            return super().result_ready(self.prefix + key)

        def get_updated_props(self, key):
            return super().get_updated_props(self.prefix + key)

        def job_lost(self, key: str) -> bool:
            """Whether a job started, stopped beating, and left no result (``key`` already prefixed)."""
            started, alive = self.redis.mget(self._key(key, "started"), self._key(key, "alive"))
            return started is not None and alive is None and self.handle.backend.get(key) is None

        def get_result(self, key, job):
            key = self.prefix + key
            result = super().get_result(key, job)
            if result is self.UNDEFINED and self.job_lost(key):
                log.error("background job %s was lost: its worker stopped beating without a result", job)
                self.redis.delete(self._key(key, "started"))
                return {"background_callback_error": {"msg": WORKER_LOST, "tb": ""}}
            return result

    return _Manager(celery_app_for(settings), _redis_client(settings), settings.redis_prefix)


def _beating(fn, manager, progress: bool):
    """Wrap a job's function: heartbeat while it runs, SIGTERM (cancel) raises ``JobTerminated``."""

    @functools.wraps(fn)
    def job(*args, **kwargs):
        from dash.exceptions import PreventUpdate

        result_key = _current_result_key()
        stop = threading.Event()
        alive = manager._key(result_key, "alive") if result_key else None
        if alive:  # both at once (MULTI): a poll must never see "started" without "alive"
            pipe = manager.redis.pipeline(transaction=True)
            pipe.set(alive, str(os.getpid()), px=int(HEARTBEAT_TTL_S * 1000))
            pipe.set(manager._key(result_key, "started"), str(time.time()), ex=STARTED_TTL_S)
            pipe.execute()
            threading.Thread(target=_beat, args=(manager.redis, alive, stop), daemon=True).start()
        previous = _on_sigterm_raise()
        try:
            return fn(*args, **kwargs)
        except JobTerminated:
            log.info("background job cancelled (SIGTERM); its locks and staging folders were released")
            raise PreventUpdate from None
        finally:
            _restore_sigterm(previous)
            stop.set()
            if alive:  # a job that ends (done, failed, cancelled) is not lost; a killed one never gets here
                with contextlib.suppress(Exception):
                    manager.redis.delete(alive, manager._key(result_key, "started"))

    return job


def _beat(client, key: str, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_S):
        try:
            client.set(key, str(os.getpid()), px=int(HEARTBEAT_TTL_S * 1000))
        except Exception:  # a Redis hiccup: the TTL covers a missed beat or two
            log.warning("could not renew a job heartbeat", exc_info=True)


def _current_result_key() -> str | None:
    """The Dash result key of the Celery task running now (its first argument)."""
    try:
        from celery import current_task

        request = current_task.request if current_task else None
        task_args = getattr(request, "args", None) or ()
        return str(task_args[0]) if task_args else None
    except Exception:
        return None


def _on_sigterm_raise():
    def raise_terminated(_signum, _frame):
        raise JobTerminated

    try:
        return signal.signal(signal.SIGTERM, raise_terminated)
    except ValueError:  # not the main thread (a threads pool): Dash's cancel then kills as before
        return None


def _restore_sigterm(previous) -> None:
    if previous is not None:
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGTERM, previous)


# ---------------------------------------------------------------- choosing, and reporting lost jobs
def background_manager(settings: Settings):
    """Celery on Redis when ``settings.redis_url`` is set, else diskcache in the cache folder."""
    return make_celery_manager(settings) if settings.redis_url else diskcache_manager(settings)


def on_callback_error(err: Exception):
    """The app's callback error handler: a lost background job becomes a message; anything else is raised."""
    if WORKER_LOST not in str(err):
        raise err
    shown = False
    for output in ctx.outputs_list if isinstance(ctx.outputs_list, list) else [ctx.outputs_list]:
        for spec in output if isinstance(output, list) else [output]:
            target = LOST_MESSAGES.get(spec.get("id")) if isinstance(spec, dict) else None
            if target:
                component, text = target
                set_props(component, {"children": dbc.Alert(text, color="danger", className="mb-0", dismissable=True)})
                shown = True
    if not shown:
        log.error("a background job was lost and its callback has no place for a message")
