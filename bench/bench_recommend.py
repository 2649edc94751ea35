"""Products-tab engine benchmark: recommender fit and time-split evaluation, plus paths and anomalies.

Per data set (the bundled clicks and the 10M-click synthetic set), each run in
a fresh process: ``ProductRecommender().fit`` on every event, ``evaluate``
at the default cut (last 20% of dates held out; its own fit on the training
sessions included), and for the Products tab's other tables ``product_table``,
``session_paths`` (main category, 4 steps) and the daily-sessions anomaly
flags. Time is the median of ``--repeats`` runs; memory is the peak resident
set (``VmHWM``) of each step over the RSS just before it, the peak reset
before every step. The evaluation table of the bundled split with the cut at
2008-08-01 (train April–July, test August) is printed and reported too.

Run from the project root: ``.venv/bin/python bench/bench_recommend.py [--skip-10m] [--repeats N]``.
Writes ``bench/out/recommend.{json,md}``.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _measure import (
    BUNDLED_FILE,
    PROJECT_ROOT,
    file_sha256,
    git_state,
    hwm_kib,
    load_average,
    machine_facts,
    reset_peak_rss,
    rss_kib,
    summarise_times,
    write_report,
)
from _report import BUSY_LOAD, _int, _machine, _mb, _s, _table
from _worker import BUNDLED, load_source
from bench_engine import ensure_synthetic

log = logging.getLogger("bench")

BUNDLED_SPLIT = "2008-08-01"  # train April-July, test August
TARGET_10M_SECONDS = 60.0  # fit, and evaluation, on 10M events: "seconds to a minute"
DEFAULT_REPEATS = 3
LIBRARIES = ("numpy", "pandas", "scipy", "scikit-learn")
STEPS = ("fit", "evaluate", "product_table", "session_paths", "anomalies")


# ---------------------------------------------------------------- worker (fresh process)
def _step(results: dict, name: str, run) -> object:
    """Run one step with the peak RSS reset before it; note its time, baseline and peak."""
    gc.collect()
    reset = reset_peak_rss()
    baseline = rss_kib()
    start = time.perf_counter()
    value = run()
    results[name] = {
        "seconds": time.perf_counter() - start,
        "baseline_rss_kib": baseline,
        "peak_rss_kib": hwm_kib(),
        "peak_reset": reset,
    }
    return value


def _table_records(evaluation) -> dict:
    return {
        "n_cases": evaluation.n_cases,
        "cut_date": str(evaluation.cut_date.date()),
        "train_sessions": evaluation.train_sessions,
        "test_sessions": evaluation.test_sessions,
        "k": evaluation.k,
        "case_rule": evaluation.case_rule,
        "rows": evaluation.table.to_dict(orient="records"),
    }


def worker(source: str, with_split: bool) -> dict:
    """One run over one data set: every step timed, the evaluation tables kept."""
    from ml.features.anomalies import daily_series, flag_anomalies
    from ml.features.paths import session_paths
    from ml.features.products import product_table
    from ml.models.recommend import ProductRecommender
    from ml.models.recommend_evaluation import evaluate

    clicks, load_seconds = load_source(source)
    steps: dict = {}
    model = _step(steps, "fit", lambda: ProductRecommender().fit(clicks))
    evaluation = _step(steps, "evaluate", lambda: evaluate(clicks))
    _step(steps, "product_table", lambda: product_table(clicks))
    _step(steps, "session_paths", lambda: session_paths(clicks))
    _step(steps, "anomalies", lambda: flag_anomalies(daily_series(clicks)))
    result = {
        "clicks": len(clicks),
        "sessions": int(model.n_sessions_),
        "products": len(model.products_),
        "load_seconds": load_seconds,
        "steps": steps,
        "evaluation": _table_records(evaluation),
    }
    if with_split:
        result["split_evaluation"] = _table_records(evaluate(clicks, cut_date=BUNDLED_SPLIT))
    return result


def run_worker(source: str, with_split: bool) -> dict:
    """This script as a worker in a fresh Python process; returns its JSON answer."""
    command = [sys.executable, __file__, "--worker", source, "split" if with_split else "-"]
    done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"worker on {source} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(source: str, label: str, repeats: int, with_split: bool) -> dict:
    """``repeats`` fresh-process runs: median and every time per step, the worst peak."""
    runs = []
    for i in range(repeats):
        log.info("%s: run %d/%d", label, i + 1, repeats)
        runs.append(run_worker(source, with_split and i == 0))
    steps = {
        name: {
            "seconds": summarise_times([r["steps"][name]["seconds"] for r in runs]),
            "baseline_rss_kib": max(r["steps"][name]["baseline_rss_kib"] or 0 for r in runs),
            "peak_rss_kib": max(r["steps"][name]["peak_rss_kib"] or 0 for r in runs),
            "peak_reset": all(r["steps"][name]["peak_reset"] for r in runs),
        }
        for name in STEPS
    }
    first = runs[0]
    return {
        "label": label,
        "clicks": first["clicks"],
        "sessions": first["sessions"],
        "products": first["products"],
        "load_seconds": statistics.median(r["load_seconds"] for r in runs),
        "steps": steps,
        "evaluation": first["evaluation"],
        **({"split_evaluation": first["split_evaluation"]} if "split_evaluation" in first else {}),
    }


# ---------------------------------------------------------------- report
def _runs(seconds: dict) -> str:
    return ", ".join(f"{s:.2f}" for s in seconds["runs"])


def evaluation_lines(evaluation: dict) -> list[str]:
    """The metrics table of one evaluation, with what it was computed on."""
    rows = [
        (
            r["method"],
            f"{r['hit_rate']:.3f}",
            f"{r['mrr']:.3f}",
            f"{r['coverage']:.3f}",
            f"{r['fallback_share']:.3f}",
            f"{r['lift_vs_popularity']:.2f}×",
        )
        for r in evaluation["rows"]
    ]
    k = evaluation["k"]
    return [
        f"Cut {evaluation['cut_date']}: {_int(evaluation['train_sessions'])} training sessions, "
        f"{_int(evaluation['test_sessions'])} test sessions, **{_int(evaluation['n_cases'])} cases** "
        f"({evaluation['case_rule']}).",
        "",
        *_table(("Method", f"Hit rate@{k}", f"MRR@{k}", "Coverage", "Fallback share", "Hit rate vs popularity"), rows),
    ]


def _targets(report: dict) -> list[str]:
    big = next((d for d in report["datasets"] if d["label"].startswith("10M")), None)
    if big is None:
        return []
    rows = []
    for name in ("fit", "evaluate"):
        median = big["steps"][name]["seconds"]["median"]
        verdict = "MET" if median <= TARGET_10M_SECONDS else "NOT MET"
        rows.append((f"`{name}` on {_int(big['clicks'])} events", _s(median), f"≤ {TARGET_10M_SECONDS:.0f} s", verdict))
    return ["## Target", "", *_table(("Figure", "Median", "Target", "Result"), rows)]


def _header(report: dict) -> list[str]:
    git, start = report["git"], report["load_start"]
    dirty = " (working tree has uncommitted changes)" if git.get("dirty") else ""
    synthetic = report.get("synthetic_10m")
    lines = [
        "# Products-tab engine benchmark: recommender, paths, anomalies",
        "",
        f"- Date: {report['date']}; {report['repeats']} run(s) per data set, each a fresh process",
        f"- Project commit: `{git.get('commit')}`{dirty}",
        f"- Load average (1/5/15 min) at start {start}, at end {report['load_end']}",
    ]
    if synthetic:
        lines.append(
            f"- 10M set: `ml.data.synthetic.resample_sessions`, seed {synthetic['seed']}, "
            f"{'cached' if synthetic['cached'] else 'generated by this run'}"
        )
    if start and start[0] > BUSY_LOAD:
        lines += ["", f"**Warning:** the 1-minute load average was {start[0]} at the start; times are inflated."]
    return [*lines, ""]


def render_markdown(report: dict) -> str:
    sets = report["datasets"]
    lines = [
        *_header(report),
        *_targets(report),
        "## Time and memory per step",
        "",
    ]

    def row(label: str, cell) -> list[object]:
        return [label, *[cell(d) for d in sets]]

    rows = [
        row("Events", lambda d: _int(d["clicks"])),
        row("Sessions", lambda d: _int(d["sessions"])),
        row("Products", lambda d: _int(d["products"])),
        row("Load time (not counted)", lambda d: _s(d["load_seconds"])),
    ]
    for name in STEPS:
        rows += [
            row(f"**{name}**, median", lambda d, n=name: f"**{_s(d['steps'][n]['seconds']['median'])}**"),
            row(
                f"{name}, every run (s)",
                lambda d, n=name: ", ".join(f"{s:.2f}" for s in d["steps"][n]["seconds"]["runs"]),
            ),
            row(
                f"{name}, RSS before → peak",
                lambda d, n=name: f"{_mb(d['steps'][n]['baseline_rss_kib'])} → {_mb(d['steps'][n]['peak_rss_kib'])}",
            ),
        ]
    lines += [
        *_table(("", *[d["label"] for d in sets]), rows),
        "`fit` is `ProductRecommender().fit(events)` on every event; `evaluate` is `evaluate(events)` at the default "
        "cut, including its own fit on the training sessions and the ranking of every case by all four methods; "
        "`session_paths` is main category, 4 steps; `anomalies` is `flag_anomalies(daily_series(events))`. "
        "Memory is `VmHWM` read after the step, the peak reset (`/proc/self/clear_refs`) just before it"
        + ("" if all(d["steps"][n]["peak_reset"] for d in sets for n in STEPS) else " — **the reset failed**")
        + "; the worst run is shown.",
        "",
        "## Evaluation on a later period",
        "",
    ]
    bundled = next((d for d in sets if "split_evaluation" in d), None)
    if bundled:
        lines += ["### Bundled data, train April–July, test August", "", *evaluation_lines(bundled["split_evaluation"])]
    for d in sets:
        heading = f"### {d['label'][:1].upper()}{d['label'][1:]}, default cut (last 20% of dates held out)"
        lines += [heading, "", *evaluation_lines(d["evaluation"])]
    lines += [
        *_machine(report),
        "Regenerate with `.venv/bin/python bench/bench_recommend.py` from the project root (see `bench/README.md`).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--skip-10m", action="store_true", help="bundled data only")
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS, help="fresh-process runs per data set")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker[0], args.worker[1] == "split"), default=float))
        return 0

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    report: dict = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "git": git_state(),
        "machine": machine_facts(LIBRARIES),
        "repeats": args.repeats,
        "load_start": load_average(),
    }
    sources = [(BUNDLED, "bundled data", True)]
    if not args.skip_10m:
        scratch = Path(tempfile.mkdtemp(prefix="bench-recommend-"))
        report["synthetic_10m"] = ensure_synthetic(scratch, file_sha256(BUNDLED_FILE))
        sources.append((report["synthetic_10m"]["path"], "10M synthetic events", False))
    report["datasets"] = [measure(source, label, args.repeats, split) for source, label, split in sources]
    report["load_end"] = load_average()
    markdown = render_markdown(report)
    write_report(report, "recommend", render_markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
