"""Datasets benchmark: preparing a 10M-event shop log as the add-data job does, and the KPI views on it.

Run from the project root (on an otherwise idle machine, ``nice`` if it is not)::

    .venv/bin/python bench/bench_datasets.py                 # 10,000,000 events -> bench/out/datasets.json
    .venv/bin/python bench/bench_datasets.py --events 500000 # a smaller set, for a quick look

Three phases, each in a fresh process so each peak-memory figure is its own:

1. ``generate``: ``multi_category_store_log(N, seed=0)`` written as Parquet, cached in ``bench/out/``
   (not timed as part of preparing).
2. ``prepare``: what the add-data panel runs: ``intake.check`` (detect the profile, read and validate
   every row: the report shown before anything is kept) and ``intake.run_prepare_job`` (read again,
   map, sessionise, write the events, build the session table and the KPI cube, write them as Parquet),
   with time and peak RSS of each, and the job's own progress steps.
3. ``kpi``: a fresh worker loads the prepared dataset from disk (as after a restart) and times the pure
   functions the KPI callbacks call (``cards_view``, ``breakdown_view`` per dimension, ``trend_view``
   daily and weekly) over a table of filter cases; p50 / p95 / max per view, target p95 <= 1 s.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(BENCH_DIR.parent))

from _measure import (  # noqa: E402
    OUT_DIR,
    git_state,
    load_average,
    machine_facts,
    mb,
    peak_rss_kib,
    reset_peak_rss,
    rss_kib,
    summarise_latencies,
)

log = logging.getLogger("bench.datasets")

DEFAULT_EVENTS = 10_000_000
SEED = 0
KPI_REPEATS = 5
KPI_P95_TARGET_S = 1.0
WORK_DIR = OUT_DIR / "datasets-work"


def log_path(events: int) -> Path:
    return OUT_DIR / f"multi-category-{events}-seed{SEED}.parquet"


def settings_for(work: Path, max_bytes: int):
    from ml.config import get_settings

    return get_settings().with_overrides(
        models_dir=work / "models",
        cache_dir=work / "cache",
        datasets_dir=work / "datasets",
        profiles_dir=work / "profiles",
        max_upload_bytes=max_bytes,
        max_input_bytes=max_bytes,
    )


# ---------------------------------------------------------------- phases (each in its own process)
def phase_generate(events: int) -> dict:
    from ml.data.synthetic_logs import multi_category_store_log

    start = time.perf_counter()
    frame = multi_category_store_log(events, seed=SEED)
    path = log_path(events)
    tmp = path.with_suffix(".tmp")
    frame.to_parquet(tmp, index=False)
    tmp.replace(path)
    return {"rows": len(frame), "seconds": time.perf_counter() - start, "bytes": path.stat().st_size}


def phase_prepare(events: int) -> dict:
    from dashboard.datasets import intake

    path = log_path(events)
    data = path.read_bytes()
    settings = settings_for(WORK_DIR, max_bytes=len(data) * 4)
    store = intake.intake_store(settings)
    upload_id = store.save(data, path.name)
    (store.folder(upload_id) / intake.INTAKE_FILE).write_text(json.dumps({"owner": "bench", "source": path.name}))
    del data
    out: dict = {"input_bytes": path.stat().st_size, "rss_before_mb": mb(rss_kib())}

    reset_peak_rss()
    start = time.perf_counter()
    checked = intake.check(settings, upload_id)
    out["check"] = {"seconds": time.perf_counter() - start, "peak_rss_mb": mb(peak_rss_kib()), "status": checked.status}
    out["check"]["profile"] = checked.profile_title
    del checked

    steps: list[tuple[float, int, str]] = []
    reset_peak_rss()
    start = time.perf_counter()
    result = intake.run_prepare_job(
        settings, upload_id, "bench 10M", False, lambda p: steps.append((time.perf_counter() - start, *p))
    )
    seconds = time.perf_counter() - start
    if not result.get("ok"):
        raise RuntimeError(result.get("message"))
    marks = [(t, text) for t, _, text in steps]
    out["prepare"] = {
        "seconds": seconds,
        "peak_rss_mb": mb(peak_rss_kib()),
        "key": result["key"],
        "rows": result["rows"],
        "steps": [
            {"step": text, "seconds": (marks[i + 1][0] if i + 1 < len(marks) else seconds) - t}
            for i, (t, text) in enumerate(marks)
        ],
    }
    from ml.serving.datasets import DatasetStore

    info = DatasetStore.for_settings(settings).info(result["key"])
    out["dataset"] = {"events": info.rows, "sessions": info.sessions, "by_type": info.events}
    out["disk_mb"] = sum(p.stat().st_size for p in (settings.datasets_dir / result["key"]).iterdir()) / 1e6
    return out


def filter_cases(data) -> list[tuple[str, object]]:
    """The filters a manager clicks through: everything, a week, a month, a category, a brand, both."""
    from datetime import timedelta

    import pandas as pd

    from ml.features.kpis import SessionFilter

    first, last = (pd.Timestamp(data.info[k]).date() for k in ("first_date", "last_date"))
    cube = data.cube
    top_category = int(cube.groupby("main_category")["sessions"].sum().idxmax())
    dims = [d for d in cube.columns if d.startswith("main_") and d != "main_category"]
    cases = [
        ("all dates", SessionFilter(start=first, end=last)),
        ("last 7 days", SessionFilter(start=last - timedelta(days=6), end=last)),
        ("last 14 days", SessionFilter(start=last - timedelta(days=13), end=last)),
        ("one category", SessionFilter(start=first, end=last, main_category=(top_category,))),
    ]
    if dims:
        top = int(cube.groupby(dims[0])["sessions"].sum().idxmax())
        cases.append((f"one {dims[0]}", SessionFilter(start=first, end=last, **{dims[0]: (top,)})))
        cases.append(
            (
                f"category + {dims[0]}, 14 days",
                SessionFilter(
                    start=last - timedelta(days=13), end=last, main_category=(top_category,), **{dims[0]: (top,)}
                ),
            )
        )
    return cases


def phase_kpi(events: int, key: str) -> dict:
    from dashboard.tabs.kpi import breakdown_view, cards_view, trend_view
    from ml.features.kpis import dimensions_of
    from ml.serving.datasets import DatasetStore

    settings = settings_for(WORK_DIR, max_bytes=1 << 40)
    reset_peak_rss()
    start = time.perf_counter()
    data = DatasetStore.for_settings(settings).prepared(key)
    load = {"seconds": time.perf_counter() - start, "peak_rss_mb": mb(peak_rss_kib())}
    views = {
        "cards_view (cards + funnel)": lambda f: cards_view(data, f),
        "trend_view daily": lambda f: trend_view(data, f, "D"),
        "trend_view weekly": lambda f: trend_view(data, f, "W"),
        **{f"breakdown_view {d}": (lambda f, d=d: breakdown_view(data, f, d)) for d in dimensions_of(data.cube)},
    }
    cases = filter_cases(data)
    for _, view in views.items():  # warm-up: first call imports plotly's figure machinery
        view(cases[0][1])
    times: dict[str, list[float]] = {name: [] for name in views}
    for _ in range(KPI_REPEATS):
        for _, filt in cases:
            for name, view in views.items():
                t = time.perf_counter()
                view(filt)
                times[name].append(time.perf_counter() - t)
    every = [s for values in times.values() for s in values]
    return {
        "load_from_disk": load,
        "cube_rows": len(data.cube),
        "sessions": len(data.sessions),
        "cases": [name for name, _ in cases],
        "repeats": KPI_REPEATS,
        "views": {name: summarise_latencies(values) for name, values in times.items()},
        "all_views": summarise_latencies(every),
    }


# ---------------------------------------------------------------- driver
def run_phase(name: str, events: int, *extra: str) -> dict:
    command = [sys.executable, __file__, "--phase", name, "--events", str(events), *extra]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"phase {name} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def render(report: dict) -> str:
    p, k = report["prepare"], report["kpi"]
    lines = [
        f"# Datasets benchmark ({report['events']:,} requested events, seed {SEED})",
        "",
        f"Machine: {report['machine'].get('cpu_count')} CPUs, load average before {report['load_before']}, "
        f"after {report['load_after']}; commit {report['git'].get('commit', '?')[:10]}.",
        "",
        f"Input: {p['input_bytes'] / 1e6:,.0f} MB Parquet; {p['dataset']['events']:,} events "
        f"({', '.join(f'{v:,} {t}' for t, v in p['dataset']['by_type'].items() if v)}), "
        f"{p['dataset']['sessions']:,} sessions.",
        "",
        "| Step | Time | Peak RSS |",
        "|---|---|---|",
        f"| Check (detect, read, validate: the report) | {p['check']['seconds']:.1f} s "
        f"| {p['check']['peak_rss_mb']:,.0f} MB |",
        f"| Prepare job (read, map, sessionise, tables, cube, Parquet) | {p['prepare']['seconds']:.1f} s "
        f"| {p['prepare']['peak_rss_mb']:,.0f} MB |",
        *(f"| &nbsp;&nbsp;job step: {s['step']} | {s['seconds']:.1f} s | |" for s in p["prepare"]["steps"]),
        f"| Load prepared dataset from disk (new worker) | {k['load_from_disk']['seconds']:.1f} s "
        f"| {k['load_from_disk']['peak_rss_mb']:,.0f} MB |",
        "",
        f"Prepared dataset on disk: {p['disk_mb']:,.0f} MB. KPI cube: {k['cube_rows']:,} rows.",
        "",
        f"KPI views, {len(k['cases'])} filter cases x {k['repeats']} repeats ({', '.join(k['cases'])}); "
        f"target p95 <= {KPI_P95_TARGET_S:.0f} s:",
        "",
        "| View | p50 | p95 | max |",
        "|---|---|---|---|",
        *(
            f"| {name} | {v['median_ms']:.0f} ms | {v['p95_ms']:.0f} ms | {v['max_ms']:.0f} ms |"
            for name, v in k["views"].items()
        ),
        f"| **all views** | {k['all_views']['median_ms']:.0f} ms | **{k['all_views']['p95_ms']:.0f} ms** "
        f"| {k['all_views']['max_ms']:.0f} ms |",
        "",
        f"KPI p95 target: {'MET' if k['all_views']['p95_ms'] <= KPI_P95_TARGET_S * 1000 else 'NOT MET'}.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS)
    parser.add_argument("--phase", choices=("generate", "prepare", "kpi"))
    parser.add_argument("--key")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if args.phase:
        reset_peak_rss()  # a child of this driver: its peak starts here
        result = {
            "generate": lambda: phase_generate(args.events),
            "prepare": lambda: phase_prepare(args.events),
            "kpi": lambda: phase_kpi(args.events, args.key),
        }[args.phase]()
        print(json.dumps(result, default=str))
        return 0

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(WORK_DIR, ignore_errors=True)
    report: dict = {
        "events": args.events,
        "machine": machine_facts(),
        "git": git_state(),
        "load_before": load_average(),
    }
    if not log_path(args.events).is_file():
        print(f"generating {args.events:,} events ...", file=sys.stderr)
        report["generate"] = run_phase("generate", args.events)
    print("preparing ...", file=sys.stderr)
    report["prepare"] = run_phase("prepare", args.events)
    print("timing the KPI views ...", file=sys.stderr)
    report["kpi"] = run_phase("kpi", args.events, "--key", report["prepare"]["prepare"]["key"])
    report["load_after"] = load_average()
    shutil.rmtree(WORK_DIR, ignore_errors=True)
    stem = "datasets" if args.events == DEFAULT_EVENTS else f"datasets-{args.events}"
    (OUT_DIR / f"{stem}.json").write_text(json.dumps(report, indent=1, default=str))
    text = render(report)
    (OUT_DIR / f"{stem}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
