"""The failed-login limit: the same behaviour on diskcache and on Redis, shared between processes."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from dashboard.auth.attempts import DiskcacheAttempts, RedisAttempts, login_attempts, wait_seconds

LIMIT, WINDOW_S = 3, 60


def test_the_wait_runs_until_the_oldest_counted_failure_leaves_the_window():
    now = 1000.0
    assert wait_seconds([], LIMIT, WINDOW_S, now) == 0
    assert wait_seconds([990.0, 995.0], LIMIT, WINDOW_S, now) == 0
    assert wait_seconds([970.0, 990.0, 995.0], LIMIT, WINDOW_S, now) == 30  # 970 + 60 - 1000
    assert wait_seconds([900.0, 970.0, 990.0, 995.0], LIMIT, WINDOW_S, now) == 30  # 900 has left the window
    assert wait_seconds([940.2, 990.0, 995.0], LIMIT, WINDOW_S, now) == 1  # 0.2 s: never "try again in 0 s"


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if not binary:
        pytest.skip("redis-server is not installed")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    import redis

    deadline = time.monotonic() + 20
    while True:
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("redis-server did not start")
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(params=["diskcache", "redis"])
def make_attempts(request, tmp_path):
    """A factory: each call is a new instance on the same shared state, as another worker process would be."""
    if request.param == "diskcache":
        return lambda: DiskcacheAttempts(tmp_path / "login-attempts", LIMIT, WINDOW_S)
    url = request.getfixturevalue("redis_url")
    return lambda: RedisAttempts(url, LIMIT, WINDOW_S)


def test_the_limit_is_shared_by_every_instance_and_cleared_by_a_success(make_attempts, request):
    key = f"vera|127.0.0.1|{request.node.callspec.id}|{time.time()}"
    worker_a, worker_b = make_attempts(), make_attempts()
    worker_a.record_failure(key)
    worker_b.record_failure(key)
    assert worker_a.retry_after(key) == 0
    worker_a.record_failure(key)
    assert 0 < worker_b.retry_after(key) <= WINDOW_S  # the third failure, seen by the other worker
    assert worker_b.retry_after("someone-else|127.0.0.1") == 0
    worker_b.clear(key)
    assert worker_a.retry_after(key) == 0


def test_redis_is_used_when_its_url_is_set(dash_settings, redis_url):
    assert isinstance(login_attempts(dash_settings), DiskcacheAttempts)
    assert isinstance(login_attempts(dash_settings.with_overrides(redis_url=redis_url)), RedisAttempts)
