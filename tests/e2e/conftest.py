"""Browser tests: the real app (``python app.py``) in a subprocess, driven by headless Chromium.

Chromium is Debian's system browser (``/usr/bin/chromium``), driven by
Playwright with no browser download. Without it these tests skip locally;
with ``CI`` set they fail, so CI cannot pass without running them.

Every page records console errors, uncaught exceptions and requests to any
host but the app's; a test fails at teardown if there are any.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ml.config import PROJECT_ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = PROJECT_ROOT / "docs" / "screenshots"
STARTUP_TIMEOUT_S = 90
TRAIN_TIMEOUT_S = 900  # a busy two-core machine: a bound on waiting, not a speed assertion


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@dataclass
class AppServer:
    url: str
    process: subprocess.Popen
    log_path: Path
    models_dir: Path
    startup_seconds: float

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_serving(url: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the app did not serve {url} within {STARTUP_TIMEOUT_S} s:\n{log_path.read_text()}")


def start_app(tmp: Path, extra_env: dict[str, str] | None = None) -> AppServer:
    """Start ``python app.py`` on a free port with its own models and cache folders."""
    port = _free_port()
    models_dir = tmp / "models"
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "CLICKSTREAM_MODELS_DIR": str(models_dir),
        "CLICKSTREAM_CACHE_DIR": str(tmp / "cache"),
        "CLICKSTREAM_USERS_FILE": str(tmp / "users.json"),  # none unless a test adds some
        "CLICKSTREAM_SECRET_KEY_FILE": str(tmp / "secret_key"),
        **(extra_env or {}),
    }
    env.pop("DASH_DEBUG", None)
    log_path = tmp / "app.log"
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "app.py"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log_path.open("w", encoding="utf-8"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    _wait_until_serving(url + "/", process, log_path)
    return AppServer(url, process, log_path, models_dir, time.monotonic() - started)


def stop_app(server: AppServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"headless Chromium not found at {CHROMIUM}; CI must install Debian's chromium")
        pytest.skip(f"headless Chromium not installed ({CHROMIUM}); install Debian's chromium to run browser tests")
    return CHROMIUM


def serve(tmp: Path, extra_env: dict[str, str] | None = None) -> Iterator[AppServer]:
    """For a fixture: an app until the fixture ends, then stopped; a traceback in its log fails."""
    server = start_app(tmp, extra_env)
    yield server
    stop_app(server)
    assert "Traceback" not in server.log(), server.log()


def train_models(models_dir: Path, models: str) -> None:
    """Train a quick set into ``models_dir`` with the command line, as a scheduler would."""
    command = [sys.executable, "-m", "ml", "--models-dir", str(models_dir), "train", "--quick", "--models", models]
    done = subprocess.run(
        command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=TRAIN_TIMEOUT_S, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="session")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """One app for the read-only browser tests (no models trained)."""
    yield from serve(tmp_path_factory.mktemp("app"))


@pytest.fixture(scope="session")
def browser(chromium_path: str):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class PageWatch:
    """What a page did that a clean app must not do."""

    origin: str
    console_errors: list[str] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)

    def on_console(self, message) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def on_request(self, request) -> None:
        if request.url.startswith(("data:", "blob:", self.origin)):
            return
        self.foreign_requests.append(request.url)


def open_page(browser, server: AppServer):
    """A fresh browser context and page, watched for console errors and foreign requests."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    watch = PageWatch(origin=server.url)
    page.on("console", watch.on_console)
    page.on("pageerror", lambda error: watch.console_errors.append(f"uncaught: {error}"))
    page.on("request", watch.on_request)
    page.watch = watch
    page.base_url = server.url
    return context, page


def watched_page(browser, server: AppServer) -> Iterator:
    """For a fixture: a page on ``server``; console errors or foreign requests fail the test."""
    context, page = open_page(browser, server)
    yield page
    context.close()
    assert page.watch.console_errors == [], "browser console errors"
    assert page.watch.foreign_requests == [], "requests to other hosts"


@pytest.fixture
def page(browser, app_server: AppServer):
    yield from watched_page(browser, app_server)


def wait_for_dash(page, timeout_ms: int = 20_000) -> None:
    """Wait until Dash has no callback in flight and nothing is marked loading."""
    page.wait_for_function(
        "() => !document.querySelector('[data-dash-is-loading=\"true\"]')"
        " && !document.querySelector('._dash-loading')"
        " && document.querySelector('#react-entry-point') !== null",
        timeout=timeout_ms,
    )
    page.wait_for_timeout(300)  # let a follow-up callback start, then settle again
    page.wait_for_function("() => !document.querySelector('[data-dash-is-loading=\"true\"]')", timeout=timeout_ms)


def save_screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
