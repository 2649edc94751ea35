"""Engine benchmark: feature building, leaderboard training and scoring, against their targets.

Run from the project root::

    .venv/bin/python bench/bench_engine.py             # full measurement -> bench/out/engine.{json,md}
    .venv/bin/python bench/bench_engine.py --skip-10m  # bundled data only
    .venv/bin/python bench/bench_engine.py --quick     # smoke test -> bench/out/engine-quick.{json,md}

This driver imports only the standard library and stays small: every
measurement runs in a fresh worker process (``bench/_worker.py``) so each
peak-memory figure is that measurement's own. The 10-million-click synthetic
set is generated once and cached as Parquet in ``bench/out/``, keyed by a hash
of the bundled file.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from _measure import (
    BENCH_DIR,
    BUNDLED_FILE,
    OUT_DIR,
    PROJECT_ROOT,
    file_sha256,
    git_state,
    load_average,
    machine_facts,
    summarise_times,
    write_report,
)
from _report import render_markdown

log = logging.getLogger("bench")

WORKER = BENCH_DIR / "_worker.py"
SYNTHETIC_CLICKS = 10_000_000
SYNTHETIC_SEED = 0
DEFAULT_REPEATS = 3

# Targets.
FEATURES_10M_MAX_SECONDS = 15.0
FEATURES_10M_MAX_PEAK_BYTES = 4e9  # 4 GB, decimal
TRAIN_MAX_SECONDS = 120.0
SCORE_MIN_CLICKS_PER_SECOND = 200_000.0


class WorkerError(RuntimeError):
    """A measurement process failed."""


@dataclass(frozen=True)
class Options:
    """What this run measures."""

    quick: bool
    skip_10m: bool
    repeats: int
    keep_models: bool

    @property
    def mode(self) -> str:
        return "quick" if self.quick else "full"

    @property
    def report_stem(self) -> str:
        return "engine-quick" if self.quick else "engine"


# ---------------------------------------------------------------- workers
def run_worker(job: str, scratch: Path, *options: str) -> dict:
    """Run one measurement in a fresh Python process and return its JSON result."""
    result = scratch / f"{job}-{time.monotonic_ns()}.json"
    command = [sys.executable, str(WORKER), job, "--result", str(result), *options]
    done = subprocess.run(command, cwd=PROJECT_ROOT, check=False)
    if done.returncode != 0 or not result.exists():
        raise WorkerError(f"the {job} worker failed with exit code {done.returncode}: {' '.join(options)}")
    return json.loads(result.read_text(encoding="utf-8"))


def timed_command(command: Sequence[str], repeats: int) -> tuple[list[float], subprocess.CompletedProcess]:
    """Wall time of a command run ``repeats`` times; raises if it fails."""
    seconds: list[float] = []
    done: subprocess.CompletedProcess | None = None
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)
        seconds.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise WorkerError(f"{' '.join(command)} exited with {done.returncode}:\n{done.stderr[-2000:]}")
    assert done is not None
    return seconds, done


# ---------------------------------------------------------------- phases
def synthetic_paths(bundled_sha: str) -> tuple[Path, Path]:
    """The cached Parquet file and its metadata, keyed by the bundled file's hash and the seed."""
    stem = f"synthetic-{SYNTHETIC_CLICKS // 1_000_000}m-{bundled_sha[:16]}-seed{SYNTHETIC_SEED}"
    return OUT_DIR / f"{stem}.parquet", OUT_DIR / f"{stem}.json"


def ensure_synthetic(scratch: Path, bundled_sha: str) -> dict:
    """The cached 10M-click set, generating it (in a worker) if it is missing or stale."""
    parquet, meta_path = synthetic_paths(bundled_sha)
    if parquet.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("bundled_sha256") == bundled_sha and meta.get("bytes") == parquet.stat().st_size:
            log.info("synthetic set: cached %s", parquet.name)
            return {**meta, "cached": True}
    log.info("synthetic set: generating %s clicks (once; cached in %s)", f"{SYNTHETIC_CLICKS:,}", OUT_DIR)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    meta = run_worker(
        "generate",
        scratch,
        "--output",
        str(parquet),
        "--target",
        str(SYNTHETIC_CLICKS),
        "--seed",
        str(SYNTHETIC_SEED),
    )
    meta = {**meta, "bundled_sha256": bundled_sha, "generated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    meta_path.write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return {**meta, "cached": False}


def measure_features(scratch: Path, source: str, label: str, repeats: int) -> dict:
    """Feature building in ``repeats`` fresh processes: time median/best, worst peak RSS."""
    runs = []
    for i in range(repeats):
        log.info("features, %s: run %d/%d", label, i + 1, repeats)
        runs.append(run_worker("features", scratch, "--source", source))
    worst = max(runs, key=lambda r: r["peak_rss_kib"])
    steps = {name: statistics.median(r["step_seconds"][name] for r in runs) for name in runs[0]["step_seconds"]}
    return {
        "label": label,
        "clicks": runs[0]["clicks"],
        "sessions": runs[0]["sessions"],
        "scoreable_sessions": runs[0]["scoreable_sessions"],
        "input_already_sorted": runs[0]["input_already_sorted"],
        "seconds": summarise_times([r["seconds"] for r in runs]),
        "step_seconds_median": steps,
        "load_seconds_median": statistics.median(r["load_seconds"] for r in runs),
        "peak_reset_before_features": all(r["peak_reset_before_features"] for r in runs),
        "load_peak_kib": max(r["load_peak_kib"] for r in runs),
        "baseline_rss_kib": worst["baseline_rss_kib"],
        "peak_rss_kib": worst["peak_rss_kib"],
        "increase_kib": worst["peak_rss_kib"] - worst["baseline_rss_kib"],
        "runs": runs,
    }


def measure_training(scratch: Path, models_dir: Path, quick: bool) -> dict:
    """The leaderboard training into a temporary registry."""
    log.info("training: %s grids into %s", "quick" if quick else "full", models_dir)
    options = ["--models-dir", str(models_dir)] + (["--quick"] if quick else [])
    return run_worker("train", scratch, *options)


def measure_scoring(scratch: Path, models_dir: Path, source: str, label: str, repeats: int) -> dict:
    """``score_clicks`` throughput on one click set (models loaded once)."""
    log.info("scoring, %s: %d repetitions", label, repeats)
    result = run_worker(
        "score", scratch, "--models-dir", str(models_dir), "--source", source, "--repeats", str(repeats)
    )
    seconds = result["seconds"]
    result["label"] = label
    result["clicks_per_second"] = {
        "median": result["clicks"] / seconds["median"],
        "best": result["clicks"] / seconds["best"],
    }
    return result


def measure_cli(scratch: Path, models_dir: Path, repeats: int) -> dict:
    """End-to-end ``python -m ml score`` on the bundled file, and the bare import cost for comparison."""
    log.info("CLI: python -m ml score, %d runs", repeats)
    output = scratch / "cli-scores.csv"
    command = [
        sys.executable,
        "-m",
        "ml",
        "--models-dir",
        str(models_dir),
        "score",
        str(BUNDLED_FILE),
        "-o",
        str(output),
    ]
    seconds, done = timed_command(command, repeats)
    with open(output, encoding="utf-8") as fh:
        rows = sum(1 for _ in fh) - 1
    import_seconds, _ = timed_command([sys.executable, "-c", "import ml.cli"], repeats)
    return {
        "command": "python -m ml --models-dir TMP score data/e-shop-clothing-2008.csv.gz -o TMP/scores.csv",
        "seconds": summarise_times(seconds),
        "import_ml_cli_seconds": summarise_times(import_seconds),
        "output_rows": rows,
        "log_tail": done.stderr.strip().splitlines()[-1:],
    }


# ---------------------------------------------------------------- verdicts
def verdict(value: float | None, target: float, higher_is_better: bool) -> str:
    """MET / NOT MET for a figure against its target."""
    if value is None:
        return "SKIPPED"
    met = value >= target if higher_is_better else value <= target
    return "MET" if met else "NOT MET"


def target_rows(report: dict, options: Options) -> list[dict]:
    """The headline figures with their targets and verdicts."""
    features = report["features"].get("synthetic_10m")
    training = report.get("training")
    scoring = report["scoring"]
    rows = [
        {
            "figure": "Features, 10M clicks: time (median)",
            "value": features["seconds"]["median"] if features else None,
            "unit": "s",
            "target": FEATURES_10M_MAX_SECONDS,
            "target_text": "≤ 15 s",
            "higher_is_better": False,
        },
        {
            "figure": "Features, 10M clicks: peak RSS",
            "value": features["peak_rss_kib"] * 1024 if features else None,
            "unit": "bytes",
            "target": FEATURES_10M_MAX_PEAK_BYTES,
            "target_text": "≤ 4 GB",
            "higher_is_better": False,
        },
        {
            "figure": "Full leaderboard training, bundled data",
            "value": training["wall_seconds"] if training else None,
            "unit": "s",
            "target": TRAIN_MAX_SECONDS,
            "target_text": "≤ 120 s",
            "higher_is_better": False,
        },
    ]
    for key, label in (("bundled", "bundled data"), ("synthetic_10m", "10M clicks")):
        score = scoring.get(key)
        rows.append(
            {
                "figure": f"Scoring throughput, {label} (median)",
                "value": score["clicks_per_second"]["median"] if score else None,
                "unit": "clicks/s",
                "target": SCORE_MIN_CLICKS_PER_SECOND,
                "target_text": "≥ 200,000 clicks/s",
                "higher_is_better": True,
            }
        )
    for row in rows:
        row["verdict"] = verdict(row["value"], row["target"], row["higher_is_better"])
        if options.quick and row["verdict"] != "SKIPPED":
            row["verdict"] = "n/a (quick grids)" if row["figure"].startswith("Full") else row["verdict"] + " (quick)"
    return rows


# ---------------------------------------------------------------- the run
def run(options: Options) -> dict:
    """Every measurement, in order; returns the report."""
    bundled_sha = file_sha256(BUNDLED_FILE)
    report: dict = {
        "benchmark": "engine",
        "mode": options.mode,
        "skip_10m": options.skip_10m,
        "repeats": options.repeats,
        "machine": machine_facts(),
        "project": {**git_state(), "bundled_file": str(BUNDLED_FILE.relative_to(PROJECT_ROOT))},
        "bundled_sha256": bundled_sha,
        "load_average": {"start": load_average()},
        "features": {},
        "scoring": {},
        "errors": [],
    }
    scratch = Path(tempfile.mkdtemp(prefix="bench-engine-"))
    models_dir = scratch / "models"
    started = time.perf_counter()
    try:
        report["features"]["bundled"] = measure_features(scratch, "bundled", "bundled data", options.repeats)
        synthetic = None
        if not options.skip_10m:
            report["synthetic_10m"] = ensure_synthetic(scratch, bundled_sha)
            synthetic = report["synthetic_10m"]["path"]
            report["features"]["synthetic_10m"] = measure_features(
                scratch, synthetic, "10M synthetic clicks", options.repeats
            )
        report["load_average"]["after_features"] = load_average()
        report["training"] = measure_training(scratch, models_dir, options.quick)
        report["load_average"]["after_training"] = load_average()
        report["scoring"]["bundled"] = measure_scoring(scratch, models_dir, "bundled", "bundled data", options.repeats)
        if synthetic:
            report["scoring"]["synthetic_10m"] = measure_scoring(
                scratch, models_dir, synthetic, "10M synthetic clicks", options.repeats
            )
        report["scoring"]["cli"] = measure_cli(scratch, models_dir, options.repeats)
    except WorkerError as exc:
        log.error("%s", exc)
        report["errors"].append(str(exc))
    finally:
        if options.keep_models and models_dir.exists():
            kept = OUT_DIR / "models"
            shutil.rmtree(kept, ignore_errors=True)
            shutil.copytree(models_dir, kept)
            report["kept_models"] = str(kept)
        shutil.rmtree(scratch, ignore_errors=True)
    report["load_average"]["end"] = load_average()
    report["total_seconds"] = time.perf_counter() - started
    report["targets"] = target_rows(report, options)
    return report


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench/bench_engine.py", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--skip-10m", action="store_true", help="skip the 10M-click synthetic set")
    parser.add_argument("--quick", action="store_true", help="quick grids, one repetition: a smoke test")
    parser.add_argument("--repeats", type=int, help=f"repetitions per timing (default {DEFAULT_REPEATS}; 1 if --quick)")
    parser.add_argument("--keep-models", action="store_true", help="copy the trained models to bench/out/models")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    repeats = args.repeats or (1 if args.quick else DEFAULT_REPEATS)
    if repeats < 1:
        raise SystemExit("--repeats must be at least 1")
    options = Options(quick=args.quick, skip_10m=args.skip_10m, repeats=repeats, keep_models=args.keep_models)
    report = run(options)
    json_path, md_path = write_report(report, options.report_stem, render_markdown)
    print(md_path.read_text(encoding="utf-8"))
    log.info("wrote %s and %s", json_path.relative_to(PROJECT_ROOT), md_path.relative_to(PROJECT_ROOT))
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
