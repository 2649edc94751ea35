"""Dashboard benchmark: start-up to the first page and every callback's server time, against their targets.

Run from the project root::

    .venv/bin/python bench/bench_dashboard.py             # full measurement -> bench/out/dashboard.{json,md}
    .venv/bin/python bench/bench_dashboard.py --skip-10m  # bundled data only
    .venv/bin/python bench/bench_dashboard.py --calls 100 # more measured calls per callback
    .venv/bin/python bench/bench_dashboard.py --quick     # a check that it runs: few calls, no waiting

This driver imports only the standard library. Start-up is measured on
``python app.py`` subprocesses; the callbacks in a fresh worker process per
data set (``bench/_dash_calls.py``), through Dash's HTTP callback path. The
machine must be quiet: the run waits for that before it starts, and a
measurement disturbed by other processes is thrown away and taken again.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from _dash_report import render_markdown
from _measure import (
    BENCH_DIR,
    BUNDLED_FILE,
    OUT_DIR,
    PROJECT_ROOT,
    CpuMeter,
    file_sha256,
    git_state,
    load_average,
    machine_facts,
    process_status_kib,
    summarise_times,
    wait_until_quiet,
    write_report,
)
from bench_engine import WorkerError, ensure_synthetic, timed_command, verdict

log = logging.getLogger("bench")

DASH_WORKER = BENCH_DIR / "_dash_calls.py"
LIBRARIES = (
    "dash",
    "dash-bootstrap-components",
    "dash-ag-grid",
    "plotly",
    "flask",
    "werkzeug",
    "pandas",
    "numpy",
    "pyarrow",
    "diskcache",
    "scikit-learn",
)
DEFAULT_CALLS = 50
DEFAULT_WARMUP = 5
DEFAULT_STARTUP_RUNS = 5
DEFAULT_STARTUP_RUNS_10M = 3
STARTUP_TIMEOUT_S = 600.0
POLL_INTERVAL_S = 0.02
MAX_RUN_RETRIES = 5

# Targets.
STARTUP_MAX_SECONDS = 5.0
CALLBACK_P95_BUNDLED_MS = 150.0
CALLBACK_P95_10M_MS = 1000.0
WHATIF_P95_MS = 50.0  # the slider-to-result round trip, on every data set
TARGET_TABS = ("shell", "kpi", "eda")  # as in _dash_calls.TARGET_TABS (the driver does not import the worker)


@dataclass(frozen=True)
class Options:
    """What this run measures and how strict it is about a quiet machine."""

    skip_10m: bool
    calls: int
    warmup: int
    startup_runs: int
    startup_runs_10m: int
    models_dir: Path | None
    tabs: str | None
    max_load: float
    max_others: float
    wait_timeout: float
    seed: int
    max_retries: int = MAX_RUN_RETRIES  # re-measurements of a disturbed start-up run (per run) or chunk
    quick: bool = False


# ---------------------------------------------------------------- quiet machine
def quiet_check(report: dict, phase: str, options: Options, with_load: bool = False) -> dict:
    """Wait for a quiet machine before a phase and note what was measured.

    At the start the 1-minute load average must be low too; between phases only
    the CPU other processes use right now counts, since the load average still
    holds our own previous phase.
    """
    log.info("%s: checking that the machine is quiet", phase)
    check = wait_until_quiet(options.max_others, options.wait_timeout, options.max_load if with_load else None)
    check["phase"] = phase
    report["quiet_checks"].append(check)
    if not check["quiet"]:
        log.warning("%s: still busy after %.0f s (%s); measuring anyway", phase, check["waited_seconds"], check)
    return check


# ---------------------------------------------------------------- models
def prepare_models(options: Options, scratch: Path) -> dict:
    """The registry the app reads: ``--models-dir`` as given, else a quick set trained once into ``scratch``."""
    if options.models_dir:
        return {"models_dir": str(options.models_dir), "trained_by_benchmark": False}
    models_dir = scratch / "models"
    command = [sys.executable, "-m", "ml", "--models-dir", str(models_dir), "train", "--quick"]
    log.info("models: training a quick set into %s", models_dir)
    seconds, done = timed_command(command, 1)
    return {
        "models_dir": str(models_dir),
        "trained_by_benchmark": True,
        "command": "python -m ml --models-dir TMP train --quick",
        "seconds": seconds[0],
        "log_tail": (done.stderr.strip().splitlines() or [""])[-1],
    }


# ---------------------------------------------------------------- start-up
def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_get(url: str, timeout: float = 30.0) -> tuple[int, int]:
    """Status and body size of a GET, bypassing any proxy settings."""
    with _NO_PROXY.open(url, timeout=timeout) as response:
        return response.status, len(response.read())


def wait_for_page(url: str, process: subprocess.Popen, timeout: float) -> float:
    """Poll until the URL answers 200; the ``perf_counter`` time it did. Raises if the app dies or times out."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            raise WorkerError(f"python app.py exited with {process.returncode} before serving {url}")
        try:
            status, _ = http_get(url, timeout=5)
            if status == 200:
                return time.perf_counter()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(POLL_INTERVAL_S)
    raise WorkerError(f"python app.py did not serve {url} within {timeout:.0f} s")


LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) (\w+) ([\w.]+): (.*)$")


def app_timeline(log_path: Path, started_wall: float) -> list[dict]:
    """The app's log lines with their time since the process was started, in seconds."""
    events = []
    for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        match = LOG_LINE.match(line)
        if not match:
            continue
        stamp, millis, level, logger, message = match.groups()
        wall = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").timestamp() + int(millis) / 1000
        events.append({"t": round(wall - started_wall, 3), "level": level, "logger": logger, "message": message[:160]})
    return events


def app_env(port: int, data_file: str | None, models_dir: str, cache_dir: Path, datasets_dir: Path) -> dict[str, str]:
    """The environment of one ``python app.py``: a free port, the registry, a fresh cache and datasets
    folder (so the session table and KPI cube are built, as on a first start, and the project's own
    datasets are neither listed nor overwritten), the data."""
    env = {k: v for k, v in os.environ.items() if k != "CLICKSTREAM_DATA"}
    env.update(
        HOST="127.0.0.1",
        PORT=str(port),
        DASH_DEBUG="0",
        CLICKSTREAM_MODELS_DIR=models_dir,
        CLICKSTREAM_CACHE_DIR=str(cache_dir),
        CLICKSTREAM_DATASETS_DIR=str(datasets_dir),
    )
    if data_file:
        env["CLICKSTREAM_DATA"] = data_file
    return env


def stop(process: subprocess.Popen) -> None:
    """Stop the app this benchmark started (by its own handle), killing it if it does not exit."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_app_once(data_file: str | None, models_dir: str, scratch: Path) -> dict:
    """``python app.py`` to the first page (HTTP 200 on ``/``), then the page's data requests and the RSS."""
    port = free_port()
    run_dir = Path(tempfile.mkdtemp(prefix="app-", dir=scratch))
    log_path = run_dir / "app.log"
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "w", encoding="utf-8") as log_file:
        started_wall = time.time()
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "app.py"],
            cwd=PROJECT_ROOT,
            env=app_env(port, data_file, models_dir, run_dir / "cache", run_dir / "datasets"),
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            first_page = wait_for_page(url + "/", process, STARTUP_TIMEOUT_S) - started
            layout_start = time.perf_counter()
            requests = {path: http_get(url + path) for path in ("/_dash-layout", "/_dash-dependencies")}
            data_requests = time.perf_counter() - layout_start
            rss, hwm = process_status_kib(process.pid, "VmRSS"), process_status_kib(process.pid, "VmHWM")
        finally:
            stop(process)
    return {
        "first_page_seconds": first_page,
        "layout_and_dependencies_seconds": data_requests,
        "page_ready_seconds": first_page + data_requests,
        "layout_bytes": requests["/_dash-layout"][1],
        "rss_serving_kib": rss,
        "peak_rss_kib": hwm,
        "timeline": app_timeline(log_path, started_wall),
    }


def measure_startup(
    label: str, data_file: str | None, runs: int, options: Options, models: dict, scratch: Path
) -> dict:
    """Start-up ``runs`` times; a run during which other processes used the CPU is discarded and taken again."""
    kept: list[dict] = []
    discarded: list[dict] = []
    while len(kept) < runs:
        log.info("start-up, %s: run %d/%d", label, len(kept) + 1, runs)
        meter = CpuMeter(include_children=True).start()
        run = start_app_once(data_file, models["models_dir"], scratch)
        run["others_cores"] = meter.others_cores()
        run["load_average_after"] = load_average()
        if run["others_cores"] is not None and run["others_cores"] > options.max_others:
            if len(discarded) < options.max_retries * runs:
                discarded.append(run)
                log.info("start-up run disturbed (others %.2f cores): waiting, then again", run["others_cores"])
                wait_until_quiet(options.max_others, options.wait_timeout)
                continue
            run["disturbed_but_kept"] = True
        kept.append(run)
    median_run = sorted(kept, key=lambda r: r["first_page_seconds"])[len(kept) // 2]
    return {
        "label": label,
        "data_file": data_file or str(BUNDLED_FILE.relative_to(PROJECT_ROOT)),
        "first_page_seconds": summarise_times([r["first_page_seconds"] for r in kept]),
        "page_ready_seconds": summarise_times([r["page_ready_seconds"] for r in kept]),
        "rss_serving_kib_median": statistics.median(r["rss_serving_kib"] or 0 for r in kept),
        "peak_rss_kib_max": max(r["peak_rss_kib"] or 0 for r in kept),
        "others_cores_max": max((r["others_cores"] or 0 for r in kept), default=None),
        "discarded_runs": len(discarded),
        "median_run_timeline": median_run["timeline"],
        "runs": kept,
    }


def measure_import(repeats: int = 3) -> dict:
    """The bare cost of importing the app's modules, for comparison with the start-up time."""
    seconds, _ = timed_command([sys.executable, "-c", "import dashboard.app_factory"], repeats)
    return {"command": "python -c 'import dashboard.app_factory'", "seconds": summarise_times(seconds)}


# ---------------------------------------------------------------- callbacks
def run_dash_worker(scratch: Path, *arguments: str) -> dict:
    """Run ``_dash_calls.py`` in a fresh process and return its JSON result."""
    result = scratch / f"callbacks-{time.monotonic_ns()}.json"
    command = [sys.executable, str(DASH_WORKER), "--result", str(result), *arguments]
    done = subprocess.run(command, cwd=PROJECT_ROOT, check=False)
    if done.returncode != 0 or not result.exists():
        raise WorkerError(f"the callback worker failed with exit code {done.returncode}: {' '.join(arguments)}")
    return json.loads(result.read_text(encoding="utf-8"))


def measure_callbacks(label: str, source: str, target_ms: float, options: Options, models: dict, scratch: Path) -> dict:
    """Every callback on one data set, in one fresh worker; the slowest one(s) profiled."""
    log.info("callbacks, %s: %d calls per callback after %d warm-up calls", label, options.calls, options.warmup)
    arguments = [
        "--source",
        source,
        "--label",
        label,
        "--models-dir",
        models["models_dir"],
        "--calls",
        str(options.calls),
        "--warmup",
        str(options.warmup),
        "--seed",
        str(options.seed),
        "--target-ms",
        str(target_ms),
        "--max-others",
        str(options.max_others),
        "--wait-timeout",
        str(options.wait_timeout),
        "--max-retries",
        str(options.max_retries * 2),  # a chunk is short: twice the start-up's retries
        "--profile-dir",
        str(OUT_DIR),
    ]
    if options.tabs:
        arguments += ["--tabs", options.tabs]
    meter = CpuMeter(include_children=True).start()
    started = time.perf_counter()
    result = run_dash_worker(scratch, *arguments)
    result["label"] = label
    result["worker_seconds"] = time.perf_counter() - started
    result["others_cores_whole_phase"] = meter.others_cores()
    return result


# ---------------------------------------------------------------- verdicts
def worst_callback(callbacks: dict | None, tabs: Sequence[str] = TARGET_TABS) -> dict | None:
    """The callback with the highest p95 among those of ``tabs`` with a target."""
    if not callbacks:
        return None
    timed = [c for c in callbacks["callbacks"] if c["target_p95_ms"] is not None and c["latency"] and c["tab"] in tabs]
    return max(timed, key=lambda c: c["latency"]["p95_ms"], default=None)


def over_target(callbacks: dict | None, tabs: Sequence[str] = TARGET_TABS) -> list[str]:
    """Callbacks of ``tabs`` with a target that missed it (or failed)."""
    if not callbacks:
        return []
    return [c["label"] for c in callbacks["callbacks"] if c["verdict"] in ("NOT MET", "ERROR") and c["tab"] in tabs]


def p95_row(figure: str, callback: dict | None, target: float) -> dict:
    """A headline row: a callback's p95 against a target in ms."""
    return {
        "figure": figure + (f" — `{callback['label']}`" if callback else ""),
        "value": callback["latency"]["p95_ms"] if callback else None,
        "unit": "ms",
        "target": target,
        "target_text": f"≤ {target:,.0f} ms",
    }


def target_rows(report: dict) -> list[dict]:
    """The headline figures with their targets and verdicts."""
    startup = report["startup"].get("bundled")
    rows = [
        {
            "figure": "Start-up to the first page, bundled data (median)",
            "value": startup["first_page_seconds"]["median"] if startup else None,
            "unit": "s",
            "target": STARTUP_MAX_SECONDS,
            "target_text": "≤ 5 s",
        }
    ]
    for key, label, target in (
        ("bundled", "bundled data", CALLBACK_P95_BUNDLED_MS),
        ("synthetic_10m", "10M clicks", CALLBACK_P95_10M_MS),
    ):
        callbacks = report["callbacks"].get(key)
        row = p95_row(f"Callbacks, {label}: slowest p95 (shell, KPI, EDA)", worst_callback(callbacks), target)
        rows.append({**row, "callbacks_over": over_target(callbacks)})
    for key, label in (("bundled", "bundled data"), ("synthetic_10m", "10M clicks")):
        update = worst_callback(report["callbacks"].get(key), tabs=("whatif",))
        rows.append(p95_row(f"What-if slider update, {label}: p95 server time", update, WHATIF_P95_MS))
    for row in rows:
        row["verdict"] = verdict(row["value"], row["target"], higher_is_better=False)
        if row.get("callbacks_over"):
            row["verdict"] = "NOT MET"
    return rows


def callback_errors(report: dict) -> list[str]:
    """Callbacks that answered with an HTTP error."""
    return [
        f"{label}: {c['label']}: {c['error']}"
        for label, result in report["callbacks"].items()
        for c in result["callbacks"]
        if c["error"]
    ]


# ---------------------------------------------------------------- the run
def run(options: Options) -> dict:
    """Every measurement, in order; returns the report."""
    bundled_sha = file_sha256(BUNDLED_FILE)
    report: dict = {
        "benchmark": "dashboard",
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in options.__dict__.items()},
        "machine": machine_facts(LIBRARIES),
        "project": {**git_state(), "bundled_file": str(BUNDLED_FILE.relative_to(PROJECT_ROOT))},
        "bundled_sha256": bundled_sha,
        "targets_config": {
            "startup_max_seconds": STARTUP_MAX_SECONDS,
            "callback_p95_bundled_ms": CALLBACK_P95_BUNDLED_MS,
            "callback_p95_10m_ms": CALLBACK_P95_10M_MS,
        },
        "load_average": {"start": load_average()},
        "quiet_checks": [],
        "startup": {},
        "callbacks": {},
        "errors": [],
    }
    scratch = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    started = time.perf_counter()
    try:
        quiet_check(report, "start", options, with_load=True)
        report["load_average"]["start_quiet"] = load_average()
        synthetic = None
        if not options.skip_10m:
            report["synthetic_10m"] = ensure_synthetic(scratch, bundled_sha)
            synthetic = report["synthetic_10m"]["path"]
        models = prepare_models(options, scratch)
        report["models"] = models

        quiet_check(report, "start-up", options)
        report["startup"]["bundled"] = measure_startup(
            "bundled data", None, options.startup_runs, options, models, scratch
        )
        if synthetic:
            report["startup"]["synthetic_10m"] = measure_startup(
                "10M synthetic clicks", synthetic, options.startup_runs_10m, options, models, scratch
            )
        report["import"] = measure_import()
        report["load_average"]["after_startup"] = load_average()

        quiet_check(report, "callbacks, bundled", options)
        report["callbacks"]["bundled"] = measure_callbacks(
            "bundled", "bundled", CALLBACK_P95_BUNDLED_MS, options, models, scratch
        )
        report["load_average"]["after_callbacks_bundled"] = load_average()
        if synthetic:
            quiet_check(report, "callbacks, 10M", options)
            report["callbacks"]["synthetic_10m"] = measure_callbacks(
                "10m", synthetic, CALLBACK_P95_10M_MS, options, models, scratch
            )
    except WorkerError as exc:
        log.error("%s", exc)
        report["errors"].append(str(exc))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report["load_average"]["end"] = load_average()
    report["total_seconds"] = time.perf_counter() - started
    report["errors"] += callback_errors(report)
    report["targets"] = target_rows(report)
    return report


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench/bench_dashboard.py", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--skip-10m", action="store_true", help="skip the 10M-click synthetic set")
    parser.add_argument(
        "--calls", type=int, default=DEFAULT_CALLS, help=f"measured calls per callback (default {DEFAULT_CALLS})"
    )
    parser.add_argument("--warmup", type=int, default=DEFAULT_WARMUP, help="unmeasured calls per callback first")
    parser.add_argument("--startup-runs", type=int, default=DEFAULT_STARTUP_RUNS, help="start-ups, bundled data")
    parser.add_argument("--startup-runs-10m", type=int, default=DEFAULT_STARTUP_RUNS_10M, help="start-ups, 10M set")
    parser.add_argument(
        "--models-dir",
        type=Path,
        help="model registry to use (default: train a quick set into a temporary folder once)",
    )
    parser.add_argument("--tabs", help="only these tabs' callbacks, comma-separated (shell,kpi,eda,...)")
    parser.add_argument("--max-load", type=float, default=0.5, help="1-minute load average to wait for at the start")
    parser.add_argument(
        "--max-others", type=float, default=0.25, help="cores other processes may use during a measurement"
    )
    parser.add_argument("--wait-timeout", type=float, default=1800, help="longest wait for a quiet machine (s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the callback input walk")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a check that everything runs, not final figures: {QUICK['calls']} calls after {QUICK['warmup']}"
        f" warm-up, {QUICK['startup_runs']} start-ups ({QUICK['startup_runs_10m']} on 10M), no waiting for a"
        " quiet machine and nothing re-measured (disturbed measurements are kept and flagged)",
    )
    return parser


# What --quick sets (options given explicitly as well are overridden).
QUICK = {"calls": 10, "warmup": 2, "startup_runs": 2, "startup_runs_10m": 1, "wait_timeout": 0.0, "max_retries": 0}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if args.calls < 1 or args.warmup < 0 or args.startup_runs < 1 or args.startup_runs_10m < 1:
        raise SystemExit("--calls and the start-up runs must be at least 1, --warmup at least 0")
    options = Options(
        skip_10m=args.skip_10m,
        calls=args.calls,
        warmup=args.warmup,
        startup_runs=args.startup_runs,
        startup_runs_10m=args.startup_runs_10m,
        models_dir=args.models_dir.resolve() if args.models_dir else None,
        tabs=args.tabs,
        max_load=args.max_load,
        max_others=args.max_others,
        wait_timeout=args.wait_timeout,
        seed=args.seed,
        quick=args.quick,
    )
    if args.quick:
        options = replace(options, **QUICK)
    report = run(options)
    json_path, md_path = write_report(report, "dashboard", render_markdown)
    print(md_path.read_text(encoding="utf-8"))
    log.info("wrote %s and %s", json_path.relative_to(PROJECT_ROOT), md_path.relative_to(PROJECT_ROOT))
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
