"""Event pipeline benchmark: features of 10M shuffled clicks against polars, in one run, plus two other profiles.

Run from the project root (polars is a benchmark-only dependency, see requirements-dev.txt)::

    nice .venv/bin/python bench/bench_events.py            # 10M events -> bench/out/events.{json,md}
    nice .venv/bin/python bench/bench_events.py --quick    # 1M events, one round -> bench/out/events-quick.*
    nice .venv/bin/python bench/bench_events.py --no-baseline --rounds 5

What one round measures, each in its own process (so every peak RSS is that step's own):

* UCI profile, 10M clicks, rows shuffled: the full pipeline (``index_clicks``,
  ``session_features``, ``window_features`` for k=3, with the labels), with the
  current code and with the baseline commit's code (``--baseline``, unpacked
  from git into a scratch folder), and polars computing ten per-session
  aggregates (count, distinct products and categories, price mean/min/max/std,
  first/last position, carts) of the same Parquet file;
* multi-category-store profile, 10M events of a generated export (time order,
  as exports come): the same pipeline on its canonical events (what
  ``load_events`` gave, cached as a pickle), and once per benchmark run
  ``load_events`` of the raw export (Parquet in the export's own columns);
* visitor profile, 10M events: sessionising (30 idle minutes) with
  ``cut_sessions``.

Rounds are interleaved (baseline, polars, current, ...) so a busy machine slows
every contender alike; the report gives medians, best, every run and the
machine's load. Target: the current pipeline's median at most polars' median,
peak RSS at most 4 GB. Generated inputs are cached in ``bench/out/``.
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
from pathlib import Path

from _measure import OUT_DIR, PROJECT_ROOT, CpuMeter, git_state, load_average, machine_facts, write_report

log = logging.getLogger("bench.events")

WORKER = Path(__file__).resolve().parent / "_events_worker.py"
BASELINE_COMMIT = (
    "e486f23ecb4778d28a3088e8cf604a24b03607a5"  # before the event pipeline was optimised (bench/README.md)
)
PEAK_TARGET_BYTES = 4e9
EXTRA_LIBRARIES = ("numpy", "pandas", "pyarrow", "polars")


class WorkerError(RuntimeError):
    """A measurement process failed."""


def run_worker(job: str, scratch: Path, *options: str, root: Path | None = None) -> dict:
    result = scratch / f"{job}-{time.monotonic_ns()}.json"
    command = [sys.executable, str(WORKER), job, "--result", str(result), *options]
    if root is not None:
        command += ["--root", str(root)]
    done = subprocess.run(command, cwd=PROJECT_ROOT, check=False)
    if done.returncode != 0 or not result.exists():
        raise WorkerError(f"{job} failed with exit code {done.returncode}")
    return json.loads(result.read_text(encoding="utf-8"))


def baseline_copy(commit: str, scratch: Path) -> Path:
    """The baseline commit's ``ml`` package, unpacked from git (read-only for the repository)."""
    folder = scratch / f"baseline-{commit}"
    folder.mkdir()
    archive = subprocess.run(["git", "archive", commit, "ml"], cwd=PROJECT_ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


def ensure_input(kind: str, events: int, seed: int, scratch: Path) -> Path:
    """A cached generated input (canonical UCI clicks, or a raw export), made once in a worker."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"events-{kind}-{events}-seed{seed}.parquet"
    if path.exists() and (kind != "store" or path.with_name(path.stem + ".events.pkl").exists()):
        log.info("%s input: cached %s", kind, path.name)
        return path
    log.info("%s input: generating %s events into %s", kind, f"{events:,}", path.name)
    partial = path.with_name(path.name + ".partial")
    run_worker(f"make-{kind}", scratch, "--output", str(partial), "--events", str(events), "--seed", str(seed))
    partial.replace(path)
    return path


def summary(runs: list[dict]) -> dict:
    seconds = [r["seconds"] for r in runs]
    return {
        "median_seconds": statistics.median(seconds),
        "best_seconds": min(seconds),
        "seconds": seconds,
        "median_cpu_seconds": statistics.median(r["cpu_seconds"] for r in runs),
        "peak_rss_kib": max(r["peak_rss_kib"] for r in runs),
        "baseline_rss_kib": max(r["baseline_rss_kib"] for r in runs),
        "others_cores": [r.get("others_cores") for r in runs],
        "load_average": [r.get("load_average") for r in runs],
        "runs": runs,
    }


def measured(job: str, scratch: Path, *options: str, root: Path | None = None) -> dict:
    """A worker run with the CPU other processes used meanwhile and the load before it."""
    load = load_average()
    meter = CpuMeter(include_children=True).start()
    result = run_worker(job, scratch, *options, root=root)
    result["others_cores"] = meter.others_cores()
    result["load_average"] = load
    log.info(
        "  %-18s %6.2f s wall, %6.2f s CPU, peak %.2f GB, other processes %.1f cores, load %s",
        job + (" (baseline)" if root else ""),
        result["seconds"],
        result["cpu_seconds"],
        result["peak_rss_kib"] * 1024 / 1e9,
        result["others_cores"] or 0.0,
        load,
    )
    return result


def run(args: argparse.Namespace) -> dict:
    events = 1_000_000 if args.quick else args.events
    rounds = 1 if args.quick else args.rounds
    other_rounds = rounds if args.other_rounds is None else args.other_rounds
    baseline_rounds = rounds if args.baseline_rounds is None else args.baseline_rounds
    report: dict = {
        "benchmark": "events",
        "mode": "quick" if args.quick else "full",
        "events": events,
        "rounds": rounds,
        "baseline_commit": None if args.no_baseline else args.baseline,
        "machine": machine_facts((*EXTRA_LIBRARIES,)),
        "project": git_state(),
        "load_average": {"start": load_average()},
        "errors": [],
    }
    scratch = Path(tempfile.mkdtemp(prefix="bench-events-"))
    started = time.perf_counter()
    contenders: dict[str, list[dict]] = {}
    try:
        baseline = None if args.no_baseline else baseline_copy(args.baseline, scratch)
        uci = ensure_input("uci", events, args.seed, scratch)
        store = ensure_input("store", events, args.seed, scratch)
        visitor = ensure_input("visitor", events, args.seed, scratch)
        contenders |= {"uci": [], "uci_baseline": [], "polars": [], "store": [], "store_baseline": []}
        contenders |= {"visitor": [], "visitor_baseline": [], "store_load": []}
        for r in range(rounds):
            log.info("round %d/%d", r + 1, rounds)
            if baseline and r < baseline_rounds:
                contenders["uci_baseline"].append(measured("uci", scratch, "--input", str(uci), root=baseline))
            contenders["polars"].append(measured("polars", scratch, "--input", str(uci)))
            contenders["uci"].append(measured("uci", scratch, "--input", str(uci)))
            if args.skip_other_profiles or r >= other_rounds:
                continue
            if r == 0 and not args.skip_load:
                contenders["store_load"].append(measured("store-load", scratch, "--input", str(store)))
            if baseline:
                contenders["store_baseline"].append(measured("store", scratch, "--input", str(store), root=baseline))
            contenders["store"].append(measured("store", scratch, "--input", str(store)))
            if baseline:
                contenders["visitor_baseline"].append(
                    measured("visitor", scratch, "--input", str(visitor), root=baseline)
                )
            contenders["visitor"].append(measured("visitor", scratch, "--input", str(visitor)))
    except (WorkerError, subprocess.CalledProcessError) as exc:
        log.error("%s", exc)
        report["errors"].append(str(exc))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report["results"] = {name: summary(runs) for name, runs in contenders.items() if runs}
    report["load_average"]["end"] = load_average()
    report["total_seconds"] = time.perf_counter() - started
    report["verdict"] = verdict(report)
    return report


def verdict(report: dict) -> dict:
    results = report.get("results", {})
    if "uci" not in results or "polars" not in results:
        return {"met": None}
    ours, polars = results["uci"], results["polars"]
    time_met = ours["median_seconds"] <= polars["median_seconds"]
    peak_met = ours["peak_rss_kib"] * 1024 <= PEAK_TARGET_BYTES
    return {
        "pipeline_median_seconds": ours["median_seconds"],
        "polars_median_seconds": polars["median_seconds"],
        "ratio": ours["median_seconds"] / polars["median_seconds"],
        "rounds_faster_than_polars": sum(
            a["seconds"] <= b["seconds"] for a, b in zip(ours["runs"], polars["runs"], strict=True)
        ),
        "time_met": time_met,
        "peak_gb": ours["peak_rss_kib"] * 1024 / 1e9,
        "peak_met": peak_met,
        "met": time_met and peak_met,
    }


# ---------------------------------------------------------------- report
ROWS = (
    ("uci", "UCI profile, {n} shuffled clicks: full pipeline (current)"),
    ("uci_baseline", "UCI profile: full pipeline (baseline commit)"),
    ("polars", "polars: 10 session aggregates of the same clicks"),
    ("store", "Multi-category store, {n} events: pipeline on its canonical events (current)"),
    ("store_baseline", "Multi-category store: pipeline on its canonical events (baseline)"),
    ("store_load", "Multi-category store: `load_events` of the raw export (Parquet), once"),
    ("visitor", "Visitor log, {n} events: sessionising (current)"),
    ("visitor_baseline", "Visitor log: sessionising (baseline)"),
)


def _gb(kib: float) -> str:
    return f"{kib * 1024 / 1e9:.2f}"


def render(report: dict) -> str:
    machine = report["machine"]
    lines = [
        f"# Event pipeline benchmark ({report['mode']})",
        "",
        f"- date: {machine['date']}; {machine['cpu_model']}, {machine['cpus_usable']} usable cores, "
        f"{machine['total_ram_gb']} GB RAM; Python {machine['python']}; "
        + ", ".join(f"{k} {v}" for k, v in machine["libraries"].items()),
        f"- commit {report['project'].get('commit')} (dirty: {report['project'].get('dirty')}); "
        f"baseline {report['baseline_commit']}; {report['events']:,} events; {report['rounds']} interleaved rounds",
        f"- load average at start {report['load_average']['start']}, at end {report['load_average']['end']}",
        "",
        "| measurement | median s | best s | every run s | median CPU s | peak RSS GB | input RSS GB |"
        " other processes, cores |",
        "|---|---:|---:|---|---:|---:|---:|---|",
    ]
    results = report.get("results", {})
    for key, template in ROWS:
        if key not in results:
            continue
        r = results[key]
        others = ", ".join("?" if c is None else f"{c:.1f}" for c in r["others_cores"])
        title = template.format(n=f"{report['events'] / 1e6:g}M")
        lines.append(
            f"| {title} | {r['median_seconds']:.2f} | {r['best_seconds']:.2f} | "
            + " / ".join(f"{s:.2f}" for s in r["seconds"])
            + f" | {r['median_cpu_seconds']:.2f} | {_gb(r['peak_rss_kib'])} | {_gb(r['baseline_rss_kib'])} | {others} |"
        )
    for key in ("uci", "store"):
        if key in results:
            steps = results[key]["runs"][0]["step_seconds"]
            shown = ", ".join(f"{k} {v:.2f} s" for k, v in steps.items())
            lines.append(f"\nSteps of the first {key} run: {shown}.")
    v = report["verdict"]
    if v.get("met") is not None:
        lines += [
            "",
            f"**Target** (pipeline median ≤ polars median in the same run, peak ≤ 4 GB): "
            f"{'MET' if v['met'] else 'NOT MET'}: pipeline {v['pipeline_median_seconds']:.2f} s vs polars "
            f"{v['polars_median_seconds']:.2f} s (ratio {v['ratio']:.2f}; faster in "
            f"{v['rounds_faster_than_polars']} of {report['rounds']} rounds), peak {v['peak_gb']:.2f} GB.",
        ]
    if report["errors"]:
        lines += ["", "Errors:", *(f"- {e}" for e in report["errors"])]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/bench_events.py", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="1M events, one round: a smoke test")
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baseline", default=BASELINE_COMMIT, help="commit to compare with")
    parser.add_argument("--baseline-rounds", type=int, help="rounds with the baseline's UCI run (default: all)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the baseline commit's runs")
    parser.add_argument("--other-rounds", type=int, help="rounds with the store and visitor logs (default: all)")
    parser.add_argument("--skip-load", action="store_true", help="skip load_events of the raw store export")
    parser.add_argument("--skip-other-profiles", action="store_true", help="UCI and polars only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    report = run(args)
    json_path, md_path = write_report(report, "events-quick" if args.quick else "events", render)
    print(md_path.read_text(encoding="utf-8"))
    log.info("wrote %s and %s", json_path.relative_to(PROJECT_ROOT), md_path.relative_to(PROJECT_ROOT))
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
