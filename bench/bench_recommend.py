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

The Products tab's callbacks are timed as their pure view functions
(``dashboard.tabs.products``: the products section with its grid and
evaluation, a product's detail, the paths section, ``paths_view``) from a
table of cases, in a fresh process per data set: the first call of each case
(cold: the recommender fitted, evaluated and saved in a scratch registry, the
product table built, paths computed) and then ``--view-calls`` warm calls, as
the tab serves them from its caches; p95 over the calls.

Run from the project root:
``.venv/bin/python bench/bench_recommend.py [--skip-10m] [--repeats N] [--view-calls N] [--skip-views]``.
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
    percentile,
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


# ---------------------------------------------------------------- products tab views (fresh process)
DEFAULT_VIEW_CALLS = 20
VIEW_COLUMNS = ("View", "Cases", "First call p95", "First call max", "Warm calls", "Warm median", "Warm p95")


def _view_cases(products_tab, data) -> list[tuple[str, str, object]]:
    """(view, case, call) for every case timed: the callbacks' bodies as the tab calls them."""
    from datetime import timedelta

    from dashboard.tabs.products import data as product_data
    from ml.config import BUNDLED_DATASET_KEY as KEY
    from ml.features.kpis import SessionFilter, dimensions_of

    products_section, paths_section = products_tab.SECTION_PRODUCTS, products_tab.SECTION_PATHS
    table = product_data.products(data)
    picks = {
        "most viewed": str(table.index[0]),
        "median": str(table.index[len(table) // 2]),
        "rarest": str(table.index[-1]),
    }
    first = data.info["first_date"]
    month = SessionFilter(start=first, end=first + timedelta(days=30))
    filter_dimension = dimensions_of(data.cube)[0]
    top_code = int(data.cube.groupby(filter_dimension)["sessions"].sum().idxmax())
    one_value = SessionFilter(**{filter_dimension: (top_code,)})
    cases = [
        ("products section", "grid + evaluation", lambda c: products_tab.section_view(c, KEY, products_section)),
        ("paths section", "controls", lambda c: products_tab.section_view(c, KEY, paths_section)),
    ]
    cases += [("product detail", name, lambda c, p=p: products_tab.detail_view(c, KEY, p)) for name, p in picks.items()]
    dimensions = product_data.path_dimensions(data)[:3]
    for dimension in dimensions:
        for steps in (3, 4, 6):
            cases.append(
                (
                    "paths",
                    f"{dimension}, {steps} steps, no filter",
                    lambda c, d=dimension, n=steps: products_tab.paths_view(c, KEY, SessionFilter(), d, n, 0.02),
                )
            )
    for name, filt in (("first 31 days", month), (f"{filter_dimension} = {top_code}", one_value)):
        cases.append(
            (
                "paths",
                f"{dimensions[0]}, 4 steps, {name}",
                lambda c, f=filt: products_tab.paths_view(c, KEY, f, dimensions[0], 4, 0.02),
            )
        )
    return cases


def views_worker(source: str, calls: int) -> dict:
    """Cold and warm times of every view case on one data set (a scratch registry, nothing saved elsewhere)."""
    from dashboard.context import AppContext
    from dashboard.tabs import products as products_tab
    from ml.config import BUNDLED_DATASET_KEY, get_settings
    from ml.data.loading import load_events
    from ml.features.prepared import prepare
    from ml.serving.datasets import DatasetStore

    scratch = Path(tempfile.mkdtemp(prefix="bench-products-views-"))
    settings = get_settings().with_overrides(
        models_dir=scratch / "models", cache_dir=scratch / "cache", datasets_dir=scratch / "datasets"
    )
    start = time.perf_counter()
    data = prepare(load_events(BUNDLED_FILE if source == BUNDLED else Path(source)))
    prepare_seconds = time.perf_counter() - start
    store = DatasetStore.for_settings(settings)
    store.remember(BUNDLED_DATASET_KEY, data)
    context = AppContext(settings=settings, datasets=store)
    rows = []
    for view, case, call in _view_cases(products_tab, data):
        start = time.perf_counter()
        call(context)
        cold = time.perf_counter() - start
        warm = []
        for _ in range(calls):
            start = time.perf_counter()
            call(context)
            warm.append(time.perf_counter() - start)
        rows.append({"view": view, "case": case, "cold_seconds": cold, "warm_seconds": warm})
    return {"clicks": len(data.clicks), "prepare_seconds": prepare_seconds, "cases": rows, "rss_kib": rss_kib()}


def run_views_worker(source: str, calls: int) -> dict:
    command = [sys.executable, __file__, "--views-worker", source, str(calls)]
    done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"views worker on {source} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def view_summary(result: dict) -> dict:
    """Per view: p95 of the cold first calls (one per case) and of every warm call, in ms."""
    out = {}
    for view in dict.fromkeys(r["view"] for r in result["cases"]):
        rows = [r for r in result["cases"] if r["view"] == view]
        cold = [r["cold_seconds"] * 1000 for r in rows]
        warm = [s * 1000 for r in rows for s in r["warm_seconds"]]
        out[view] = {
            "cases": len(rows),
            "cold_p95_ms": percentile(cold, 95),
            "cold_max_ms": max(cold),
            "warm_calls": len(warm),
            "warm_median_ms": statistics.median(warm) if warm else None,
            "warm_p95_ms": percentile(warm, 95) if warm else None,
        }
    return out


def views_lines(report: dict) -> list[str]:
    sets = [d for d in report["datasets"] if "views" in d]
    if not sets:
        return []
    lines = ["## Products tab callbacks (pure view functions)", ""]
    for d in sets:
        views = d["views"]
        rows = [
            (
                view,
                s["cases"],
                f"{s['cold_p95_ms']:,.0f} ms",
                f"{s['cold_max_ms']:,.0f} ms",
                s["warm_calls"],
                f"{s['warm_median_ms']:,.1f} ms",
                f"**{s['warm_p95_ms']:,.1f} ms**",
            )
            for view, s in view_summary(views).items()
        ]
        lines += [
            f"### {d['label'][:1].upper()}{d['label'][1:]} (prepared in {_s(views['prepare_seconds'])}, not counted)",
            "",
            *_table(
                ("View", "Cases", "First call p95", "First call max", "Warm calls", "Warm median", "Warm p95"), rows
            ),
            "First call: the first time each case runs in a fresh process (the products section's includes fitting, "
            "evaluating and saving the recommender and building the product table; each new path setting computes "
            "its paths). Warm: the same case again, as the tab serves it from its caches.",
            "",
        ]
    return lines


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
        *views_lines(report),
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
    parser.add_argument("--view-calls", type=int, default=DEFAULT_VIEW_CALLS, help="warm calls per view case")
    parser.add_argument("--skip-views", action="store_true", help="do not time the Products tab's views")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--views-worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker[0], args.worker[1] == "split"), default=float))
        return 0
    if args.views_worker:
        print(json.dumps(views_worker(args.views_worker[0], int(args.views_worker[1])), default=float))
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
    if not args.skip_views:
        for (source, label, _), dataset in zip(sources, report["datasets"], strict=True):
            log.info("%s: products tab views", label)
            dataset["views"] = run_views_worker(source, args.view_calls)
    report["load_end"] = load_average()
    markdown = render_markdown(report)
    write_report(report, "recommend", render_markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
