"""Model-tab benchmark: the leaderboard's render from a registry, and segments per setting.

Two figures the callback benchmark (``bench_dashboard.py``) cannot give:

1. **Leaderboard render from the registry**: everything the leaderboard tab
   computes when it opens (layout, summary, the three tables, the champion
   classifier's five figures and confusion matrix, the champion regressor's
   figures), on a registry holding a full training run of every model. *Cold*
   is the first render in a fresh process (metadata and curves read from disk);
   *warm* is a later render (runs are immutable, so they are cached).
2. **Segment computation per setting**: ``ml.segment_runs.build_segment_run``
   (no cache) for K-Means k = 2..10 and DBSCAN at several eps, on the bundled
   data and on the 10M-click synthetic set, each data set in a fresh process;
   plus the once-per-data-set base (silhouette by k, PCA, default eps).

Run from the project root: ``.venv/bin/python bench/bench_model_tabs.py [--skip-10m]
[--models-dir DIR] [--renders N]``. Writes ``bench/out/model_tabs.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
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
    load_average,
    machine_facts,
    rss_kib,
    write_report,
)
from bench_engine import ensure_synthetic, synthetic_paths

log = logging.getLogger("bench")

KMEANS_KS = tuple(range(2, 11))
DBSCAN_EPS = (0.8, 1.2, 1.6, 2.4)
DBSCAN_MIN_SAMPLES = 20
LIBRARIES = ("dash", "plotly", "pandas", "numpy", "scikit-learn", "scipy")


# ---------------------------------------------------------------- workers (fresh processes)
def _prepare(source: str):
    from ml.data.loading import load_events
    from ml.features.prepared import prepare

    return prepare(load_events(source))


def worker_leaderboard(models_dir: str, renders: int) -> dict:
    """Time a cold render, then warm renders, of the leaderboard tab from ``models_dir``."""
    from dashboard.app_factory import create_app
    from dashboard.tabs import leaderboard as tab
    from ml.config import BUNDLED_DATASET_KEY, get_settings
    from ml.tasks import CLASSIFICATION, CLUSTERING, REGRESSION

    settings = get_settings().with_overrides(models_dir=Path(models_dir), cache_dir=Path(tempfile.mkdtemp()))
    app = create_app(settings, _prepare(str(BUNDLED_FILE)))
    context = app.context

    def render() -> float:
        start = time.perf_counter()
        tab.layout(context, BUNDLED_DATASET_KEY)
        view = context.registry_for(BUNDLED_DATASET_KEY)
        tab.summary_view(view)
        for task in (CLASSIFICATION, REGRESSION, CLUSTERING):
            tab.table_view(view, task, False)
        classifier, regressor = view.champion_id(CLASSIFICATION), view.champion_id(REGRESSION)
        threshold = tab.classifier_view(view, classifier)[6]
        tab.confusion_view(view, classifier, threshold)
        tab.regressor_view(view, regressor)
        return time.perf_counter() - start

    cold = render()
    warm = [render() for _ in range(renders)]
    runs = context.registry_for(BUNDLED_DATASET_KEY).runs()
    return {
        "cold_seconds": cold,
        "warm_seconds": warm,
        "runs_in_registry": len(runs),
        "models": sorted({f"{r.task}:{r.model}" for r in runs}),
    }


def worker_segments(source: str, label: str) -> dict:
    """Time the once-per-data-set base and every setting, uncached."""
    from ml.models.segment_runs import SegmentSetting, build_segment_run, segment_base

    started = time.perf_counter()
    data = _prepare(source)
    prepare_seconds = time.perf_counter() - started
    start = time.perf_counter()
    base = segment_base(data)
    base_seconds = time.perf_counter() - start
    settings = [SegmentSetting.kmeans(k) for k in KMEANS_KS]
    settings += [SegmentSetting.dbscan(eps, DBSCAN_MIN_SAMPLES) for eps in DBSCAN_EPS]
    rows = []
    for setting in settings:
        start = time.perf_counter()
        run = build_segment_run(data, setting, window=3, seed=42)
        rows.append(
            {
                "method": setting.method,
                "params": setting.params,
                "seconds": time.perf_counter() - start,
                "segments": int(run.metrics.get("n_clusters", len(run.profiles))),
                "silhouette": run.metrics.get("silhouette"),
                "note": run.note,
            }
        )
    return {
        "label": label,
        "clicks": len(data.clicks),
        "sessions": len(data.sessions),
        "prepare_seconds": prepare_seconds,
        "base_seconds": base_seconds,
        "best_k": base.best_k,
        "default_eps": base.default_eps,
        "settings": rows,
        "rss_mb_end": (rss_kib() or 0) / 1024,
    }


def run_worker(*args: str) -> dict:
    """Run this script as a worker in a fresh Python process; returns its JSON answer."""
    done = subprocess.run(
        [sys.executable, __file__, "--worker", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"worker {args[0]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- driver
def full_registry(models_dir: str | None, scratch: Path) -> tuple[str, float | None]:
    """A registry with a full training run of every model (trained here unless given)."""
    if models_dir:
        return models_dir, None
    target = scratch / "models"
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "ml", "--models-dir", str(target), "train"],
        cwd=PROJECT_ROOT,
        check=True,
        capture_output=True,
    )
    return str(target), time.perf_counter() - start


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds < 1 else f"{seconds:,.2f} s"


def render_markdown(report: dict) -> str:
    lb = report["leaderboard"]
    warm = lb["warm_seconds"]
    lines = [
        "# Model-tab benchmark",
        "",
        f"- Date: {report['date']}",
        f"- Project commit: `{report['git'].get('commit')}`"
        + (" (working tree has uncommitted changes)" if report["git"].get("dirty") else ""),
        f"- Load average at start (1/5/15 min): {report['load_start']}; at end: {report['load_end']}",
        "",
        "## 1. Leaderboard tab render from the registry",
        "",
        f"Registry: {lb['runs_in_registry']} runs ({', '.join(lb['models'])})"
        + (
            f", trained here with full grids in {report['training_seconds']:.1f} s"
            if report["training_seconds"]
            else ""
        )
        + ".",
        "",
        "| Render | Time |",
        "|---|---|",
        "| Cold (first render in a fresh process: metadata and curves read from disk) "
        f"| **{_ms(lb['cold_seconds'])}** |",
        f"| Warm, median of {len(warm)} | **{_ms(statistics.median(warm))}** |",
        f"| Warm, slowest | {_ms(max(warm))} |",
        "",
        "A render is what the tab computes on opening: layout, summary, the three tables, the champion "
        "classifier's ROC/PR/calibration/gains/importance and confusion matrix, and the champion regressor's "
        "figures (the view functions the callbacks call, without HTTP). No fitted model is loaded.",
        "",
        "## 2. Segment computation per setting (uncached)",
        "",
    ]
    for seg in report["segments"]:
        lines += [
            f"### {seg['label']}: {seg['clicks']:,} clicks, {seg['sessions']:,} sessions",
            "",
            f"Once per data set (silhouette for k = 2..10 on a 5,000-session sample, PCA, default eps): "
            f"**{_ms(seg['base_seconds'])}**; silhouette picks k = {seg['best_k']}, default eps {seg['default_eps']}.",
            "",
            "| Setting | Time | Segments | Silhouette | Method |",
            "|---|---|---|---|---|",
        ]
        for row in seg["settings"]:
            params = ", ".join(f"{k} = {v}" for k, v in row["params"].items())
            sil = "–" if row["silhouette"] is None or math.isnan(row["silhouette"]) else f"{row['silhouette']:.3f}"
            lines.append(
                f"| {row['method']} {params} | **{_ms(row['seconds'])}** | {row['segments']} | {sil} | {row['note']} |"
            )
        lines.append("")
    machine = report["machine"]
    lines += [
        "## Machine",
        "",
        f"{machine.get('cpu_count')} CPUs ({machine.get('cpu_model')}), Python {machine.get('python')}; "
        + ", ".join(f"{k} {v}" for k, v in machine.get("libraries", {}).items()),
        "",
        "Regenerate with `.venv/bin/python bench/bench_model_tabs.py` from the project root.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--skip-10m", action="store_true", help="segments on the bundled data only")
    parser.add_argument("--models-dir", help="registry to render (default: a full training run made here)")
    parser.add_argument("--renders", type=int, default=20, help="warm leaderboard renders")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        job, *rest = args.worker
        result = worker_leaderboard(rest[0], int(rest[1])) if job == "leaderboard" else worker_segments(*rest)
        print(json.dumps(result, default=float))
        return 0

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    scratch = Path(tempfile.mkdtemp(prefix="bench-model-tabs-"))
    report: dict = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "git": git_state(),
        "machine": machine_facts(LIBRARIES),
        "load_start": load_average(),
    }
    log.info("registry with a full training run ...")
    models_dir, report["training_seconds"] = full_registry(args.models_dir, scratch)
    log.info("leaderboard render ...")
    report["leaderboard"] = run_worker("leaderboard", models_dir, str(args.renders))
    sources = [(str(BUNDLED_FILE), "bundled data")]
    if not args.skip_10m:
        sha = file_sha256(BUNDLED_FILE)
        ensure_synthetic(scratch, sha)
        sources.append((str(synthetic_paths(sha)[0]), "10M synthetic clicks"))
    report["segments"] = []
    for source, label in sources:
        log.info("segments, %s ...", label)
        report["segments"].append(run_worker("segments", source, label))
    report["load_end"] = load_average()
    write_report(report, "model_tabs", render_markdown)
    print(render_markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
