"""Fixtures of the production tests: the real Redis on 127.0.0.1:6379 (a database and prefix of their own)."""

from __future__ import annotations

import os
import uuid

import pytest

REDIS_DB = 13  # the app's default is 0; the login-attempt tests start their own server
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError:
        if os.environ.get("CI"):
            pytest.fail("Redis on 127.0.0.1:6379 is needed in CI (.ci/run starts it)")
        pytest.skip("Redis on 127.0.0.1:6379 is not running")
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url):
    """A key prefix of this test's own; its keys are removed afterwards."""
    import redis

    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
