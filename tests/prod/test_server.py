"""The production server's configuration (gunicorn.conf.py) and its refusal to serve without a login."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys

import pytest

from ml.config import PROJECT_ROOT
from ml.serving.users import UserStore
from tests.prod.stack import free_port

CONFIG = PROJECT_ROOT / "gunicorn.conf.py"


def gunicorn(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("CLICKSTREAM_", "HOST", "PORT"))}
    environment.update(CLICKSTREAM_USERS_FILE=str(tmp_path / "users.json"), PORT=str(free_port()), **env)
    return subprocess.run(
        [sys.executable, "-m", "gunicorn", "--config", str(CONFIG), *args],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_config_serves_app_server_on_loopback_with_several_workers_and_an_upload_timeout(monkeypatch):
    for name in ("HOST", "PORT", "WEB_CONCURRENCY", "GUNICORN_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    config = runpy.run_path(str(CONFIG))
    assert config["wsgi_app"] == "app:server"
    assert config["bind"] == ["127.0.0.1:8050"]
    assert config["workers"] >= 2
    assert config["timeout"] >= 120  # a 50 MB upload is read, decoded and validated in one request
    assert config["preload_app"] is False


@pytest.mark.parametrize("how", ["HOST", "--bind"])
def test_binding_a_public_address_without_users_is_refused_before_any_worker_starts(tmp_path, how):
    if how == "HOST":
        result = gunicorn(tmp_path, HOST="0.0.0.0")
    else:
        result = gunicorn(tmp_path, "--bind", f"0.0.0.0:{free_port()}")
    assert result.returncode != 0
    assert "refusing to serve on 0.0.0.0" in result.stderr
    assert "python -m ml users add" in result.stderr
    assert "Booting worker" not in result.stderr and "Traceback" not in result.stderr


def test_a_public_address_is_allowed_once_a_user_exists(tmp_path):
    UserStore(tmp_path / "users.json").add("alice", "admin", "correct horse battery staple")
    from dashboard.auth import check_can_serve
    from ml.config import get_settings

    check_can_serve(get_settings().with_overrides(users_file=tmp_path / "users.json"), "0.0.0.0")


def test_a_bad_environment_variable_stops_the_server_with_a_message(tmp_path):
    result = gunicorn(tmp_path, CLICKSTREAM_WINDOW="abc")
    assert result.returncode != 0
    assert "CLICKSTREAM_WINDOW='abc' is not an integer" in result.stderr
    assert "Traceback" not in result.stderr
