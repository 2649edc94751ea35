"""Segments tab benchmark: the first visit on the bundled data, with and without the disk cache.

Each case runs in a fresh Python process (nothing in memory), as a restarted
server would:

1. **cold**: an empty cache folder. The app's start-up thread fits the
   silhouette by k, the projection and the default K-Means run and writes
   them to disk (timed here on the main thread: "segments at start-up"); the
   first visit (the tab's layout plus its main callback) then fits nothing.
2. **cached**: the same cache folder again (a restart, or another worker):
   start-up reads the files; the first visit is the same as in 1.

A visit that arrives while the start-up thread is still fitting waits for it,
so on a cold start the first visit costs at most "segments at start-up" plus
"first visit".

Preparing the dataset itself (reading the file, the session table) is timed
apart: it is the app's start-up with or without this tab.

    python bench/bench_segments.py            # prints a table
    python bench/bench_segments.py --json     # the same numbers as JSON
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def worker(cache_dir: str) -> dict[str, float]:
    """One fresh process: prepare the bundled data, warm the segments tab, then its first visit."""
    from dashboard.context import AppContext
    from dashboard.tabs import segments
    from dashboard.tabs.segments.views import warm
    from ml.config import BUNDLED_DATASET_KEY, get_settings
    from ml.serving.datasets import DatasetStore

    root = Path(cache_dir)
    settings = get_settings().with_overrides(
        cache_dir=root / "cache", models_dir=root / "models", datasets_dir=root / "datasets"
    )
    context = AppContext(settings=settings, datasets=DatasetStore.for_settings(settings))
    start = time.perf_counter()
    context.dataset(BUNDLED_DATASET_KEY)
    prepared = time.perf_counter()
    warm(context, BUNDLED_DATASET_KEY)
    warmed = time.perf_counter()
    segments.layout(context, BUNDLED_DATASET_KEY)
    setting = segments.setting_from_inputs(context, None, None, None, None, BUNDLED_DATASET_KEY)
    segments.segments_view(context, setting, BUNDLED_DATASET_KEY, 10)
    visited = time.perf_counter()
    segments.segments_view(context, setting, BUNDLED_DATASET_KEY, 20)  # the capacity slider moved
    moved = time.perf_counter()
    return {
        "prepare_s": prepared - start,
        "startup_warm_s": warmed - prepared,
        "first_visit_s": visited - warmed,
        "capacity_move_s": moved - visited,
    }


def run_case(cache_dir: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", cache_dir], check=True, capture_output=True, text=True, cwd=ROOT
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        report = {"cold": run_case(tmp), "cached": run_case(tmp)}
    if args.json:
        print(json.dumps(report, indent=1))
        return
    print("| case | prepare data | segments at start-up | first visit | capacity slider |")
    print("|---|---|---|---|---|")
    for case, row in report.items():
        cells = [f"{row[k]:.2f} s" for k in ("prepare_s", "startup_warm_s", "first_visit_s", "capacity_move_s")]
        print(f"| {case} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
