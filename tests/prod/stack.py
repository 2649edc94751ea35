"""A production stack started by a test: gunicorn (N workers) and a Celery worker, on the real Redis.

Everything runs in subprocesses from the project folder with a private models,
cache and datasets folder, a small data file, and a Redis database number and
key prefix of the test's own. ``DashHTTP`` sends the Dash callback requests a
browser sends (``POST /_dash-update-component``), over a new connection each,
so consecutive requests land on any gunicorn worker; the access log records
which worker process answered each one.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import requests

from ml.config import PROJECT_ROOT

PYTHON = sys.executable
UPDATE = "/_dash-update-component"
CONFIG = re.compile(r'<script id="_dash-config" type="application/json">(.*?)</script>', re.S)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Stack:
    root: Path
    redis_url: str
    prefix: str
    data_file: Path
    web_workers: int = 2
    port: int = field(default_factory=free_port)
    web: subprocess.Popen | None = None
    worker: subprocess.Popen | None = None
    _logs: dict[str, Path] = field(default_factory=dict)
    starts: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def access_log(self) -> Path:
        return self.root / "access.log"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CLICKSTREAM_", "DASH_"))}
        env.update(
            REDIS_URL=self.redis_url,
            CLICKSTREAM_REDIS_PREFIX=self.prefix,
            CLICKSTREAM_DATA=str(self.data_file),
            CLICKSTREAM_MODELS_DIR=str(self.models_dir),
            CLICKSTREAM_CACHE_DIR=str(self.root / "cache"),
            CLICKSTREAM_DATASETS_DIR=str(self.root / "datasets"),
            CLICKSTREAM_PROFILES_DIR=str(self.root / "profiles"),
            CLICKSTREAM_USERS_FILE=str(self.root / "users.json"),
            CLICKSTREAM_SECRET_KEY_FILE=str(self.root / "secret_key"),
            HOST="127.0.0.1",
            PORT=str(self.port),
            PYTHONUNBUFFERED="1",
        )
        return env

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        self.starts += 1
        log = self.root / f"{name}-{self.starts}.log"
        self._logs[name] = log
        return subprocess.Popen(
            args,
            cwd=PROJECT_ROOT,
            env=self.env(),
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as a whole, nothing else
        )

    def log_text(self, name: str) -> str:
        path = self._logs.get(name)
        return path.read_text(errors="replace") if path and path.exists() else ""

    # ---------------------------------------------------------------- the Celery worker
    def start_worker(self, timeout: float = 180) -> None:
        self.worker = self._spawn(
            "celery",
            [
                PYTHON,
                "-m",
                "celery",
                "-A",
                "dashboard.worker",
                "worker",
                "--loglevel=INFO",
                "--concurrency=1",
                "--pool=prefork",
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"test-{self.port}@%h",
            ],
        )
        deadline = time.monotonic() + timeout
        while "ready." not in self.log_text("celery"):
            if self.worker.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the Celery worker did not start:\n{self.log_text('celery')[-3000:]}")
            time.sleep(0.5)

    def kill_worker(self) -> None:
        """SIGKILL the worker's whole process group: the main process and the child running the job."""
        if self.worker and self.worker.poll() is None:
            os.killpg(self.worker.pid, signal.SIGKILL)
            self.worker.wait(30)

    def stop_worker(self) -> None:
        if self.worker and self.worker.poll() is None:
            os.killpg(self.worker.pid, signal.SIGTERM)
            try:
                self.worker.wait(30)
            except subprocess.TimeoutExpired:
                self.kill_worker()

    # ---------------------------------------------------------------- gunicorn
    def start_web(self, timeout: float = 180) -> None:
        self.web = self._spawn(
            "gunicorn",
            [
                PYTHON,
                "-m",
                "gunicorn",
                "--config",
                str(PROJECT_ROOT / "gunicorn.conf.py"),
                "--workers",
                str(self.web_workers),
                "--access-logfile",
                str(self.access_log),
                "--access-logformat",
                "%(p)s %(m)s %(U)s%(q)s %(s)s",
            ],
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.web.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"gunicorn did not start:\n{self.log_text('gunicorn')[-3000:]}")
            try:
                if requests.get(self.base + "/_dash-layout", timeout=30).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.5)
        # every worker has built the app once it has answered; wait until each one has
        deadline = time.monotonic() + timeout
        while len(self.worker_pids_seen()) < self.web_workers and time.monotonic() < deadline:
            requests.get(self.base + "/_dash-layout", timeout=30, headers={"Connection": "close"})

    def stop_web(self) -> None:
        if self.web and self.web.poll() is None:
            os.killpg(self.web.pid, signal.SIGTERM)
            try:
                self.web.wait(40)
            except subprocess.TimeoutExpired:
                os.killpg(self.web.pid, signal.SIGKILL)
                self.web.wait(10)

    def stop(self) -> None:
        self.stop_web()
        self.stop_worker()

    def worker_pids_seen(self) -> set[str]:
        if not self.access_log.exists():
            return set()
        return {line.split(" ", 1)[0] for line in self.access_log.read_text().splitlines() if line}

    def pid_of(self, tag: str) -> str | None:
        """The gunicorn worker that answered the request tagged ``t=<tag>``."""
        for line in self.access_log.read_text().splitlines():
            if f"t={tag}" in line:
                return line.split(" ", 1)[0]
        return None


class DashHTTP:
    """The callback requests of one page load, sent as the browser sends them."""

    def __init__(self, base: str):
        self.base = base
        page = requests.get(base + "/", timeout=30)
        page.raise_for_status()
        self.end_id = json.loads(CONFIG.search(page.text).group(1))["end_id"]
        self.specs = requests.get(base + "/_dash-dependencies", timeout=30).json()
        self.count = 0

    def spec(self, output: str) -> dict:
        for spec in self.specs:
            if spec["output"].lstrip(".").startswith(output + ".") or f"...{output}." in spec["output"]:
                return spec
        raise AssertionError(f"no callback with output {output}")

    def body(self, spec: dict, values: Mapping[str, object], changed: str) -> dict:
        def deps(items):
            return [{**d, "value": values.get(f"{d['id']}.{d['property']}")} for d in items]

        key = spec["output"]
        parts = key[2:-2].split("...") if key.startswith("..") else [key]
        outputs = [dict(zip(("id", "property"), p.split("@")[0].rsplit(".", 1), strict=True)) for p in parts]
        return {
            "output": key,
            "outputs": outputs if key.startswith("..") else outputs[0],
            "inputs": deps(spec["inputs"]),
            "state": deps(spec["state"]),
            "changedPropIds": [changed],
        }

    def post(self, body: dict, **params: str) -> tuple[int, dict, str]:
        """Send one callback request on a new connection; (status, JSON or {}, its tag for the access log)."""
        self.count += 1
        tag = f"{os.getpid()}-{self.count}"
        query = {"endId": self.end_id, **params, "t": tag}
        response = requests.post(
            self.base + UPDATE, params=query, json=body, timeout=60, headers={"Connection": "close"}
        )
        payload = response.json() if response.status_code == 200 and response.content else {}
        return response.status_code, payload, tag
