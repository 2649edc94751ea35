"""One measurement of ``bench_events.py`` in a fresh process: ``python bench/_events_worker.py JOB --result FILE``.

``--root DIR`` imports ``ml`` from another copy of the project (the baseline
commit, unpacked by the driver), so the baseline and the current code run on
the same files in the same benchmark run. Jobs:

* ``make-uci``: bundled sessions resampled to ``--events`` clicks, rows shuffled, as canonical Parquet;
* ``make-store`` / ``make-visitor``: a generated multi-category-store / visitor export, as raw Parquet;
* ``uci``: the full pipeline on canonical clicks (index, session table, k=3 window features and labels);
* ``store``: the same pipeline on the store export's canonical events (cached as a pickle);
* ``store-load``: ``load_events`` of the raw store export (Parquet in the export's columns);
* ``visitor``: sessionising the visitor export (``cut_sessions``, 30 minutes), as ``load_events`` does;
* ``polars``: ten per-session aggregates of the canonical clicks with polars.

Peak memory: the worker resets its peak RSS after reading its input, so the
figure is the input in memory plus what the measured step adds.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
WINDOW = 3


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


def _memory() -> dict[str, int | None]:
    from _measure import hwm_kib, peak_rss_kib, rss_kib

    return {"rss_kib": rss_kib(), "peak_rss_kib": peak_rss_kib(), "vm_hwm_kib": hwm_kib()}


def _start() -> dict[str, Any]:
    from _measure import reset_peak_rss, rss_kib

    gc.collect()
    return {"reset": reset_peak_rss(), "baseline_rss_kib": rss_kib(), "wall": time.perf_counter(), "cpu": _cpu()}


def _stop(started: dict[str, Any]) -> dict[str, Any]:
    wall, cpu = time.perf_counter() - started["wall"], _cpu() - started["cpu"]
    memory = _memory()
    return {
        "seconds": wall,
        "cpu_seconds": cpu,
        "peak_reset": started["reset"],
        "baseline_rss_kib": started["baseline_rss_kib"],
        "peak_rss_kib": memory["peak_rss_kib"],
        "rss_after_kib": memory["rss_kib"],
    }


# ---------------------------------------------------------------- inputs
def make_uci(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from ml.config import BUNDLED_DATA_FILE
    from ml.data.loading import load_events
    from ml.data.synthetic import resample_sessions

    clicks = load_events(BUNDLED_DATA_FILE).clicks
    synthetic = resample_sessions(clicks, args.events, seed=args.seed)
    shuffled = synthetic.take(np.random.default_rng(args.seed + 1).permutation(len(synthetic)))
    shuffled.reset_index(drop=True).to_parquet(args.output, index=False)
    return {"events": len(shuffled), "sessions": int(shuffled["session_id"].nunique())}


def make_log(args: argparse.Namespace, kind: str) -> dict[str, Any]:
    """The raw export as Parquet; for the store, also its canonical events (``OUTPUT.events.parquet``)."""
    from ml.data.synthetic_logs import multi_category_store_log, visitor_log

    make = multi_category_store_log if kind == "store" else visitor_log
    raw = make(args.events, seed=args.seed)
    raw.to_parquet(args.output, index=False)
    del raw
    if kind == "store":
        import pandas as pd

        from ml.data.loading import load_events

        events = load_events(args.output).events
        canonical = canonical_path(args.output)
        events.to_pickle(canonical)  # Parquet would not keep second-resolution dates and the category dtype
        back = pd.read_pickle(canonical)
        if not back.dtypes.equals(events.dtypes) or not back.equals(events):
            raise RuntimeError("the canonical store events do not read back identically")
    return {"events": args.events}


def canonical_path(raw: str | Path) -> Path:
    """Where the canonical events of a raw export are cached."""
    raw = Path(raw)
    return raw.with_name(raw.name.replace(".partial", "").replace(".parquet", "") + ".events.pkl")


def read_canonical(path: str) -> Any:
    """Canonical clicks from Parquet with the dtypes ``load_events`` gives (Arrow's buffers handed back)."""
    import pandas as pd
    import pyarrow as pa

    from ml.data.schema import CLICK_DTYPES

    frame = pd.read_parquet(path)
    casts = {c: d for c, d in CLICK_DTYPES.items() if d != "category" and c in frame and frame[c].dtype != d}
    if casts:
        frame = frame.astype(casts)
    pa.default_memory_pool().release_unused()
    return frame


# ---------------------------------------------------------------- measurements
def pipeline(clicks: Any) -> dict[str, Any]:
    """What training and preparing a dataset compute: index, session table, window features and labels."""
    from ml.data.clicks import index_clicks
    from ml.features.sessions import session_features
    from ml.features.window import window_features

    try:  # as prepare_training_data does: freed memory kept for the next step (not in the baseline commit)
        from ml.data.memory import reusing_freed_memory
    except ImportError:
        reusing_freed_memory = lambda steps: steps  # noqa: E731

    times = []

    @reusing_freed_memory
    def steps() -> tuple:
        times.append(time.perf_counter())
        indexed = index_clicks(clicks)
        times.append(time.perf_counter())
        sessions = session_features(indexed)
        times.append(time.perf_counter())
        window = window_features(indexed, WINDOW)
        times.append(time.perf_counter())
        return indexed, sessions, window

    started = _start()
    indexed, sessions, window = steps()
    result = _stop(started)
    t0, t1, t2, t3 = times
    steps = {"index_clicks": t1 - t0, "session_features": t2 - t1, "window_features": t3 - t2}
    return {
        **result,
        "events": len(clicks),
        "sessions": int(indexed.n_sessions),
        "session_columns": int(sessions.shape[1]),
        "scoreable_sessions": len(window.features),
        "window_columns": int(window.features.shape[1]),
        "converted_sessions": int(sessions["converted"].sum()),
        "step_seconds": steps,
    }


def job_uci(args: argparse.Namespace) -> dict[str, Any]:
    clicks = read_canonical(args.input)
    return pipeline(clicks)


def job_store(args: argparse.Namespace) -> dict[str, Any]:
    """The pipeline on the canonical events of the store export (as ``load_events`` gave them)."""
    import pandas as pd

    events = pd.read_pickle(canonical_path(args.input))
    return {**pipeline(events), "profile": "multi_category_store", "input": "canonical events (pickled)"}


def job_store_load(args: argparse.Namespace) -> dict[str, Any]:
    """``load_events`` of the raw store export: reading, profile detection, mapping, validation."""
    from ml.data.loading import load_events

    started = _start()
    loaded = load_events(args.input)
    return {**_stop(started), "events": len(loaded.events), "sessions": loaded.n_sessions}


def job_visitor(args: argparse.Namespace) -> dict[str, Any]:
    import pandas as pd

    from ml.data.sessionise import cut_sessions

    raw = pd.read_parquet(args.input)
    users = raw["visitorid"].astype("string")  # as the loader hands them over: text IDs
    stamps = pd.to_datetime(raw["timestamp"].to_numpy(), unit="ms").to_numpy()
    n = len(raw)
    del raw
    started = _start()
    sessions = cut_sessions(users, stamps, 30.0)
    result = _stop(started)
    return {**result, "events": n, "visitors": int(users.nunique()), "sessions": int(sessions.nunique())}


def job_polars(args: argparse.Namespace) -> dict[str, Any]:
    import polars as pl

    frame = pl.read_parquet(args.input)
    started = _start()
    out = frame.group_by("session_id").agg(
        pl.len().alias("events"),
        pl.col("product_id").n_unique().alias("n_products"),
        pl.col("category").n_unique().alias("n_categories"),
        pl.col("price").mean().alias("price_mean"),
        pl.col("price").min().alias("price_min"),
        pl.col("price").max().alias("price_max"),
        pl.col("price").std().alias("price_std"),
        pl.col("order").min().alias("first_position"),
        pl.col("order").max().alias("last_position"),
        (pl.col("event_type") == 1).sum().alias("n_carts"),
    )
    result = _stop(started)
    return {
        **result,
        "events": frame.height,
        "sessions": out.height,
        "aggregates": out.width - 1,
        "polars": pl.__version__,
        "threads": pl.thread_pool_size(),
    }


JOBS = {
    "make-uci": make_uci,
    "make-store": lambda a: make_log(a, "store"),
    "make-visitor": lambda a: make_log(a, "visitor"),
    "uci": job_uci,
    "store": job_store,
    "store-load": job_store_load,
    "visitor": job_visitor,
    "polars": job_polars,
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("job", choices=sorted(JOBS))
    parser.add_argument("--result", required=True)
    parser.add_argument("--root", help="import ml from this project copy (the baseline)")
    parser.add_argument("--input")
    parser.add_argument("--output")
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    root = Path(args.root).resolve() if args.root else BENCH_DIR.parent
    sys.path.insert(0, str(BENCH_DIR))
    sys.path.insert(0, str(root))
    from _measure import reset_peak_rss

    reset_peak_rss()  # not the parent's peak
    result = JOBS[args.job](args)
    import ml

    result["ml_from"] = str(Path(ml.__file__).resolve().parent.parent)
    result["threads_env"] = os.environ.get("CLICKSTREAM_FEATURE_THREADS")
    Path(args.result).write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
