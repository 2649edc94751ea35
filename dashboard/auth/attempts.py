"""Failed logins per key (user name and address), shared by every server process.

Each failure is a timestamp; a key that has ``limit`` failures within the last
``window_s`` seconds must wait until the oldest of them leaves the window. The
state lives outside any one process: in a diskcache folder (SQLite, safe across
processes on one machine) or, when ``REDIS_URL`` is set, in Redis (across
machines). Both have the same three methods.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import diskcache

from ml.config import Settings

KEY_PREFIX = "clickstream:login-failures:"


class LoginAttempts(Protocol):
    def retry_after(self, key: str) -> int:
        """Seconds until ``key`` may try again; 0 when it may try now."""

    def record_failure(self, key: str) -> None: ...

    def clear(self, key: str) -> None:
        """Forget the failures of ``key`` (after a successful login)."""


def wait_seconds(failures: Sequence[float], limit: int, window_s: float, now: float) -> int:
    """Whole seconds until fewer than ``limit`` of ``failures`` fall within the window ending now."""
    recent = sorted(t for t in failures if t > now - window_s)
    if len(recent) < limit:
        return 0
    frees_at = recent[len(recent) - limit] + window_s
    return max(1, math.ceil(frees_at - now))


class DiskcacheAttempts:
    """Failures in a diskcache folder; each key's list is updated inside one transaction."""

    def __init__(self, directory: Path, limit: int, window_s: int):
        self.cache = diskcache.Cache(str(directory))
        self.limit, self.window_s = limit, window_s

    def _recent(self, key: str, now: float) -> list[float]:
        return [t for t in self.cache.get(key, ()) if t > now - self.window_s]

    def retry_after(self, key: str) -> int:
        now = time.time()
        return wait_seconds(self._recent(key, now), self.limit, self.window_s, now)

    def record_failure(self, key: str) -> None:
        now = time.time()
        with self.cache.transact():
            self.cache.set(key, [*self._recent(key, now), now], expire=self.window_s)

    def clear(self, key: str) -> None:
        self.cache.delete(key)


class RedisAttempts:
    """Failures in a Redis sorted set per key (score = time), expiring with the window."""

    def __init__(self, url: str, limit: int, window_s: int):
        import redis  # only when configured

        self.client = redis.Redis.from_url(url)
        self.limit, self.window_s = limit, window_s

    def _key(self, key: str) -> str:
        return KEY_PREFIX + key

    def retry_after(self, key: str) -> int:
        now = time.time()
        failures = self.client.zrangebyscore(self._key(key), now - self.window_s, "+inf", withscores=True)
        return wait_seconds([score for _, score in failures], self.limit, self.window_s, now)

    def record_failure(self, key: str) -> None:
        now, name = time.time(), self._key(key)
        pipe = self.client.pipeline(transaction=True)
        pipe.zadd(name, {f"{now:.6f}-{uuid.uuid4().hex[:8]}": now})
        pipe.zremrangebyscore(name, "-inf", now - self.window_s)
        pipe.expire(name, self.window_s)
        pipe.execute()

    def clear(self, key: str) -> None:
        self.client.delete(self._key(key))


def login_attempts(settings: Settings) -> LoginAttempts:
    """Redis when ``REDIS_URL`` is set, else a diskcache folder in the cache folder."""
    if settings.redis_url:
        return RedisAttempts(settings.redis_url, settings.login_attempts, settings.login_window_s)
    return DiskcacheAttempts(settings.cache_dir / "login-attempts", settings.login_attempts, settings.login_window_s)
