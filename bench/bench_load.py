"""Load benchmark: simulated users against the production server (gunicorn, several workers), loopback only.

    python bench/bench_load.py                     # bundled data and the 10M set, 20 users, 60 s each
    python bench/bench_load.py --skip-10m          # bundled data only
    python bench/bench_load.py --duration 600      # the 10-minute run for the RSS-per-worker check
    python bench/bench_load.py --skip-10m --no-memo  # every answer computed afresh (CLICKSTREAM_VIEW_CACHE=0)

What the users send is what a browser sends: headless Chromium opens the app
served by gunicorn, changes the KPI filters in the open page (dates, countries,
categories, daily/weekly, as the URL carries them) and moves what-if sliders with the keyboard, and every
``POST /_dash-update-component`` it makes is recorded with the interaction it
belongs to. Each simulated user then repeats: pick an interaction (KPI views and
what-if moves in the mix given by ``--whatif-share``), send its requests in
parallel as the browser does, wait a think time (``--think``, uniform), again,
for ``--duration`` seconds. Latency is per request, from the start of the POST
to the last byte; an error is anything but HTTP 200 or a failed connection.

The server runs with ``--workers`` gunicorn workers (``--preload``: the data is
prepared once, in the master); the RSS of each worker is sampled every
``--rss-every`` seconds. What-if needs models: a quick logistic regression and
linear regression are trained into a scratch registry before the server starts
(on the 10M set too, as its own dataset's models).

The server keeps the answers of KPI views and what-if updates in a bounded
memo (``dashboard/view_cache.py``); the users repeat a few recorded views and
moves, so most answers come from it. ``--no-memo`` turns it off, to measure
the computation behind each answer.

Targets (bundled data): 0 errors, p95 <= 300 ms for KPI callbacks and <= 100 ms
for what-if, RSS per worker flat. The report is printed and written to
``bench/out/load.{json,md}``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psutil
from _measure import (
    BUNDLED_FILE,
    LIBRARIES,
    PROJECT_ROOT,
    file_sha256,
    git_state,
    load_average,
    machine_facts,
    percentile,
    write_report,
)
from _report import _table
from bench_engine import ensure_synthetic

log = logging.getLogger("bench")

KPI_P95_TARGET_MS = 300.0
BUNDLED_KEY = "bundled"  # ml.config.BUNDLED_DATASET_KEY: the key the app serves its configured data file under
WHATIF_P95_TARGET_MS = 100.0
STARTUP_TIMEOUT_S = 900.0
KPI_VIEWS = (  # the filter views a manager walks through, as URL query strings
    "dates=all",
    "dates=all&view=weekly",
    "from=2008-05-01&to=2008-05-31",
    "from=2008-06-01&to=2008-07-15&country=29",
    "from=2008-04-01&to=2008-08-13&category=2",
    "from=2008-07-01&to=2008-07-31&country=29&category=1",
    "",
)
WHATIF_MOVES = 6  # keyboard steps per what-if slider
WHATIF_SLIDERS = 4
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@dataclass(frozen=True)
class Request:
    body: bytes
    outputs: str
    path: str = "/_dash-update-component"  # with the query the browser added (Dash's endId)


@dataclass
class Interaction:
    kind: str  # "kpi" or "whatif"
    name: str
    requests: list[Request] = field(default_factory=list)


# ---------------------------------------------------------------- the server
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(models_dir: Path, cache_dir: Path, data_file: str | None, memo: bool = True) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CLICKSTREAM_DATA", "REDIS_URL", "CLICKSTREAM_VIEW_CACHE")}
    env.update(
        DASH_DEBUG="0",
        CLICKSTREAM_MODELS_DIR=str(models_dir),
        CLICKSTREAM_CACHE_DIR=str(cache_dir),
        CLICKSTREAM_DATASETS_DIR=str(cache_dir / "datasets"),
    )
    if data_file:
        env["CLICKSTREAM_DATA"] = data_file
    if not memo:  # every KPI view and what-if update computed afresh (dashboard/view_cache.py)
        env["CLICKSTREAM_VIEW_CACHE"] = "0"
    return env


def train_models(env: dict[str, str], data_file: str | None) -> float:
    """Quick what-if models (logistic + linear regression) into the scratch registry; seconds taken."""
    command = [sys.executable, "-m", "ml", "train", "--quick", "--models", "logreg,linear"]
    if data_file:  # the app serves its configured data file as the bundled dataset: the models must be its
        command += ["--data", data_file, "--dataset", BUNDLED_KEY]
    started = time.perf_counter()
    subprocess.run(command, cwd=PROJECT_ROOT, env=env, check=True, capture_output=True, text=True)
    return time.perf_counter() - started


def start_server(env: dict[str, str], workers: int, log_path: Path) -> tuple[subprocess.Popen, str, float]:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--workers",
        str(workers),
        "--preload",
        "--bind",
        f"127.0.0.1:{port}",
        "--timeout",
        "300",
        "app:server",
    ]
    started = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as out:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = started + STARTUP_TIMEOUT_S
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}: {log_path.read_text()[-2000:]}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/")
            if connection.getresponse().status == 200 and len(worker_pids(process)) >= workers:
                return process, url, time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.5)
    process.kill()
    raise RuntimeError(f"gunicorn did not serve within {STARTUP_TIMEOUT_S:.0f} s")


def worker_pids(process: subprocess.Popen) -> list[int]:
    try:
        return sorted(child.pid for child in psutil.Process(process.pid).children())
    except psutil.NoSuchProcess:
        return []


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# ---------------------------------------------------------------- what the browser sends
def record_interactions(url: str) -> list[Interaction]:
    """Every Dash request of each KPI view and each what-if slider move, as Chromium sent it."""
    from playwright.sync_api import sync_playwright

    interactions: list[Interaction] = []
    current: list[Interaction] = []

    def on_request(request) -> None:
        parts = urlsplit(request.url)
        if request.method == "POST" and parts.path == "/_dash-update-component" and current:
            body = request.post_data_buffer or b""
            outputs = json.loads(body).get("output", "")
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            current[0].requests.append(Request(body=body, outputs=outputs, path=path))

    def settle(page) -> None:
        page.wait_for_function("() => !document.querySelector('[data-dash-is-loading=\"true\"]')", timeout=60_000)
        page.wait_for_timeout(400)
        page.wait_for_function("() => !document.querySelector('[data-dash-is-loading=\"true\"]')", timeout=60_000)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        page.on("request", on_request)
        page.goto(f"{url}/?tab=kpi&dates=all")
        settle(page)
        for query in KPI_VIEWS:  # in-page changes of the filters, as the filter bar and a shared link make them
            current[:] = [Interaction("kpi", f"KPI view ?{query}")]
            page.evaluate(
                "q => { history.pushState(null, '', '/?tab=kpi&' + q);"
                " window.dispatchEvent(new PopStateEvent('popstate')); }",
                query,
            )
            settle(page)
            interactions.append(current[0])
        current[:] = []
        page.goto(f"{url}/?tab=whatif")
        # The first slider in the page may be a hidden one (the capacity rule's, before its card shows).
        thumbs = page.locator("[role=slider]:visible")
        thumbs.first.wait_for(timeout=STARTUP_TIMEOUT_S * 1000)
        settle(page)
        for index in range(min(WHATIF_SLIDERS, thumbs.count())):
            for step in range(WHATIF_MOVES):
                current[:] = [Interaction("whatif", f"what-if slider {index + 1}, step {step + 1}")]
                thumbs.nth(index).focus()
                page.keyboard.press("ArrowRight" if step < WHATIF_MOVES // 2 else "ArrowLeft")
                settle(page)
                interactions.append(current[0])
        current[:] = []
        browser.close()
    kept = [i for i in interactions if i.requests]
    if not any(i.kind == "kpi" for i in kept):  # seen once on a busy machine: say so rather than replay nothing
        raise RuntimeError("no KPI request was recorded: the page did not answer the filter changes")
    if not any(i.kind == "whatif" for i in kept):
        raise RuntimeError("no what-if request was recorded: are there models for the what-if tab?")
    return kept


# ---------------------------------------------------------------- the load
@dataclass
class Sample:
    kind: str
    outputs: str
    seconds: float
    ok: bool
    at: float


def post(port: int, request: Request) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("POST", request.path, body=request.body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        return response.status == 200
    except OSError:
        return False
    finally:
        connection.close()


def run_load(
    url: str,
    interactions: Sequence[Interaction],
    users: int,
    duration: float,
    think: tuple[float, float],
    whatif_share: float,
    seed: int,
) -> list[Sample]:
    port = int(url.rsplit(":", 1)[1])
    by_kind = {kind: [i for i in interactions if i.kind == kind] for kind in ("kpi", "whatif")}
    samples: list[Sample] = []
    lock = threading.Lock()
    started = time.perf_counter()
    stop_at = started + duration

    def timed(kind: str, request: Request) -> Sample:
        t0 = time.perf_counter()
        ok = post(port, request)
        return Sample(kind, request.outputs, time.perf_counter() - t0, ok, t0 - started)

    def user(number: int) -> None:
        rng = random.Random(seed + number)
        with ThreadPoolExecutor(max_workers=6) as browser_connections:  # a browser's parallel requests
            time.sleep(rng.uniform(0, think[1]))  # users do not all start in the same millisecond
            while time.perf_counter() < stop_at:
                kind = "whatif" if rng.random() < whatif_share else "kpi"
                interaction = rng.choice(by_kind[kind])
                done = list(browser_connections.map(timed, [kind] * len(interaction.requests), interaction.requests))
                with lock:
                    samples.extend(done)
                time.sleep(rng.uniform(*think))

    threads = [threading.Thread(target=user, args=(n,), daemon=True) for n in range(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(duration + 120)
    return samples


class RssSampler(threading.Thread):
    """RSS (MB) of each gunicorn worker every ``every`` seconds, while the load runs."""

    def __init__(self, process: subprocess.Popen, every: float) -> None:
        super().__init__(daemon=True)
        self.process, self.every = process, every
        self.samples: dict[int, list[tuple[float, float]]] = {}
        self.stopped = threading.Event()
        self.started_at = time.perf_counter()

    def run(self) -> None:
        while not self.stopped.is_set():
            for pid in worker_pids(self.process):
                try:
                    rss = psutil.Process(pid).memory_info().rss / 2**20
                except psutil.NoSuchProcess:
                    continue
                self.samples.setdefault(pid, []).append((time.perf_counter() - self.started_at, rss))
            self.stopped.wait(self.every)


def latency_row(label: str, samples: Sequence[Sample], duration: float) -> dict:
    ms = [s.seconds * 1000 for s in samples if s.ok]
    errors = sum(not s.ok for s in samples)
    if not ms:
        return {"requests": len(samples), "errors": errors, "label": label}
    return {
        "label": label,
        "requests": len(samples),
        "errors": errors,
        "requests_per_s": len(samples) / duration,
        "p50_ms": statistics.median(ms),
        "p95_ms": percentile(ms, 95),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms),
    }


def rss_rows(sampler: RssSampler) -> list[dict]:
    rows = []
    for pid, points in sorted(sampler.samples.items()):
        if len(points) < 2:
            continue
        minutes = (points[-1][0] - points[0][0]) / 60
        rows.append(
            {
                "worker": pid,
                "first_mb": points[0][1],
                "last_mb": points[-1][1],
                "max_mb": max(p[1] for p in points),
                "growth_mb_per_min": (points[-1][1] - points[0][1]) / minutes if minutes > 0 else 0.0,
                "samples": len(points),
            }
        )
    return rows


def measure(label: str, data_file: str | None, options: argparse.Namespace, scratch: Path) -> dict:
    folder = scratch / label
    folder.mkdir()
    env = server_env(folder / "models", folder / "cache", data_file, memo=not options.no_memo)
    log.info("%s: training quick what-if models", label)
    train_seconds = train_models(env, data_file)
    log.info("%s: starting gunicorn with %d workers", label, options.workers)
    process, url, startup = start_server(env, options.workers, folder / "gunicorn.log")
    try:
        log.info("%s: recording the browser's requests", label)
        interactions = record_interactions(url)
        sampler = RssSampler(process, options.rss_every)
        sampler.start()
        load_start = load_average()
        log.info("%s: %d users for %.0f s", label, options.users, options.duration)
        samples = run_load(
            url, interactions, options.users, options.duration, options.think, options.whatif_share, options.seed
        )
        sampler.stopped.set()
        sampler.join(10)
        server_log = (folder / "gunicorn.log").read_text(encoding="utf-8", errors="replace")
    finally:
        stop_server(process)
    slowest: dict[str, list[float]] = {}
    for sample in samples:
        slowest.setdefault(sample.outputs, []).append(sample.seconds * 1000)
    by_callback = sorted(
        ({"outputs": k[:90], "requests": len(v), "p95_ms": percentile(v, 95)} for k, v in slowest.items()),
        key=lambda row: -row["p95_ms"],
    )
    return {
        "label": label,
        "data_file": data_file or str(BUNDLED_FILE.relative_to(PROJECT_ROOT)),
        "train_seconds": train_seconds,
        "startup_seconds": startup,
        "interactions": {
            kind: {
                "count": sum(i.kind == kind for i in interactions),
                "requests": sum(len(i.requests) for i in interactions if i.kind == kind),
            }
            for kind in ("kpi", "whatif")
        },
        "load_average": {"start": load_start, "end": load_average()},
        "overall": latency_row("all", samples, options.duration),
        "kpi": latency_row("KPI", [s for s in samples if s.kind == "kpi"], options.duration),
        "whatif": latency_row("what-if", [s for s in samples if s.kind == "whatif"], options.duration),
        "slowest_callbacks": by_callback[:8],
        "rss": rss_rows(sampler),
        "server_tracebacks": server_log.count("Traceback"),
    }


# ---------------------------------------------------------------- report
def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


def render(report: dict) -> str:
    o = report["options"]
    lines = [
        "# Load benchmark",
        "",
        f"{o['users']} users, {o['duration']:.0f} s per data set, think time {o['think'][0]}-{o['think'][1]} s, "
        f"what-if share {o['whatif_share']:.0%}, gunicorn --workers {o['workers']} --preload, loopback, "
        f"view memo {'off (--no-memo)' if o.get('no_memo') else 'on'}. "
        f"Commit {report['project'].get('commit', '?')[:10]}, {report['machine'].get('cpu_count', '?')} cores.",
        "",
    ]
    rows = []
    for run in report["runs"]:
        for part in ("kpi", "whatif", "overall"):
            r = run[part]
            rows.append(
                [
                    run["label"],
                    r["label"],
                    f"{r['requests']:,}",
                    str(r["errors"]),
                    f"{r.get('requests_per_s', 0):.1f}",
                    _ms(r.get("p50_ms")),
                    _ms(r.get("p95_ms")),
                    _ms(r.get("p99_ms")),
                ]
            )
    lines += _table(["Data", "Requests", "Sent", "Errors", "req/s", "p50", "p95", "p99"], rows)
    lines += ["", "## Targets", ""]
    lines += _table(["Figure", "Measured", "Target", "Met"], [list(t.values()) for t in report["targets"]])
    lines += ["", "## RSS per worker", ""]
    rss = [
        [
            run["label"],
            str(r["worker"]),
            f"{r['first_mb']:.0f} MB",
            f"{r['last_mb']:.0f} MB",
            f"{r['max_mb']:.0f} MB",
            f"{r['growth_mb_per_min']:+.1f} MB/min",
        ]
        for run in report["runs"]
        for r in run["rss"]
    ]
    lines += _table(["Data", "Worker", "First", "Last", "Max", "Growth"], rss)
    for run in report["runs"]:
        lines += ["", f"## Slowest callbacks, {run['label']} (p95)", ""]
        lines += _table(
            ["Outputs", "Requests", "p95"],
            [[c["outputs"], str(c["requests"]), _ms(c["p95_ms"])] for c in run["slowest_callbacks"]],
        )
        lines += [
            "",
            f"Start-up {run['startup_seconds']:.1f} s; quick models trained in {run['train_seconds']:.0f} s; "
            f"recorded {run['interactions']['kpi']['count']} KPI views ({run['interactions']['kpi']['requests']} "
            f"requests) and {run['interactions']['whatif']['count']} what-if moves "
            f"({run['interactions']['whatif']['requests']} requests); load average {run['load_average']}; "
            f"tracebacks in the server log: {run['server_tracebacks']}.",
        ]
    return "\n".join(lines) + "\n"


def targets(report: dict) -> list[dict]:
    rows = []
    for run in report["runs"]:
        errors = run["overall"]["errors"] + run["server_tracebacks"]
        rows.append({"figure": f"errors ({run['label']})", "measured": str(errors), "target": "0", "met": errors == 0})
        if run["label"] != "bundled":
            continue
        for part, target in (("kpi", KPI_P95_TARGET_MS), ("whatif", WHATIF_P95_TARGET_MS)):
            p95 = run[part].get("p95_ms")
            rows.append(
                {
                    "figure": f"{run[part]['label']} p95 (bundled)",
                    "measured": _ms(p95),
                    "target": f"<= {target:.0f} ms",
                    "met": p95 is not None and p95 <= target,
                }
            )
    for row in rows:
        row["met"] = "yes" if row["met"] else "**NO**"
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/bench_load.py", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load per data set")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--think", type=float, nargs=2, default=(0.5, 2.0), metavar=("MIN", "MAX"))
    parser.add_argument("--whatif-share", type=float, default=0.3)
    parser.add_argument("--rss-every", type=float, default=5.0)
    parser.add_argument("--skip-10m", action="store_true")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--no-memo", action="store_true", help="serve without the view memo: every answer computed afresh"
    )
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    report: dict = {
        "benchmark": "load",
        "options": {**vars(options), "think": list(options.think)},
        "machine": machine_facts(LIBRARIES),
        "project": git_state(),
        "runs": [],
    }
    scratch = Path(tempfile.mkdtemp(prefix="bench-load-"))
    try:
        report["runs"].append(measure("bundled", None, options, scratch))
        if not options.skip_10m:
            synthetic = ensure_synthetic(scratch, file_sha256(BUNDLED_FILE))
            report["runs"].append(measure("10M", synthetic["path"], options, scratch))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report["targets"] = targets(report)
    _, md = write_report(report, "load", render)
    print(md.read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
