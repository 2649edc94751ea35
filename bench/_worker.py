"""One measurement in a fresh process: ``python bench/_worker.py JOB --result FILE [options]``.

``bench_engine.py`` starts this script once per measurement so that every
peak-memory figure belongs to that measurement alone. Jobs:

* ``generate``: resample the bundled sessions to a large synthetic set and cache it as Parquet;
* ``features``: index_clicks + session_features + window_features once, with time and memory;
* ``train``: the leaderboard training (``ml.training.train``) into a given registry folder;
* ``score``: ``score_clicks`` a few times with models loaded once.

The result is written as JSON to ``--result``; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _measure import PROJECT_ROOT, hwm_kib, peak_rss_kib, reset_peak_rss, rss_kib, summarise_times

log = logging.getLogger("bench.worker")

BUNDLED = "bundled"
WINDOW = 3  # the observation window k the features are built with


# ---------------------------------------------------------------- loading
def read_click_parquet(path: Path) -> Any:
    """Canonical clicks from a cached Parquet file, with the dtypes ``load_events`` gives.

    Arrow's allocator keeps freed read buffers mapped; they are handed back to
    the OS here so the RSS baseline holds the clicks, not the reader's leftovers.
    """
    import pandas as pd
    import pyarrow as pa

    from ml.data.schema import CLICK_DTYPES

    frame = pd.read_parquet(path)
    casts = {col: dtype for col, dtype in CLICK_DTYPES.items() if dtype != "category" and frame[col].dtype != dtype}
    if casts:
        frame = frame.astype(casts)
    pa.default_memory_pool().release_unused()
    return frame


def load_source(source: str) -> tuple[Any, float]:
    """The clicks of ``bundled`` (through ``load_events``) or of a cached Parquet file, and the load time."""
    start = time.perf_counter()
    if source == BUNDLED:
        from ml.config import BUNDLED_DATA_FILE
        from ml.data.loading import load_events

        clicks = load_events(BUNDLED_DATA_FILE).clicks
    else:
        clicks = read_click_parquet(Path(source))
    return clicks, time.perf_counter() - start


def already_sorted(clicks: Any) -> bool:
    """Whether clicks are already in (session, order) order, so ``index_clicks`` can skip its sort."""
    import numpy as np
    import pandas as pd

    from ml.data import schema as S

    codes = pd.factorize(clicks[S.SESSION_ID], sort=False)[0]
    step = np.diff(codes)
    if (step < 0).any():
        return False
    return bool((np.diff(clicks[S.ORDER].to_numpy())[step == 0] > 0).all())


def memory_snapshot() -> dict[str, int | None]:
    """Current RSS, ``ru_maxrss`` and ``VmHWM`` in KiB."""
    return {"rss_kib": rss_kib(), "ru_maxrss_kib": peak_rss_kib(), "vm_hwm_kib": hwm_kib()}


# ---------------------------------------------------------------- jobs
def job_generate(args: argparse.Namespace) -> dict[str, object]:
    """Resample bundled sessions to ``--target`` clicks and cache them as Parquet (written atomically)."""
    from ml.data import schema as S
    from ml.data.synthetic import resample_sessions

    clicks, load_seconds = load_source(BUNDLED)
    start = time.perf_counter()
    synthetic = resample_sessions(clicks, args.target, seed=args.seed)
    generate_seconds = time.perf_counter() - start
    output = Path(args.output)
    partial = output.with_name(output.name + ".partial")
    start = time.perf_counter()
    synthetic.to_parquet(partial, index=False)
    write_seconds = time.perf_counter() - start
    if not read_click_parquet(partial).equals(synthetic):
        partial.unlink()
        raise RuntimeError("the Parquet copy of the synthetic clicks does not read back identically")
    os.replace(partial, output)
    return {
        "path": str(output),
        "bytes": output.stat().st_size,
        "clicks": len(synthetic),
        "sessions": int(synthetic[S.SESSION_ID].nunique()),
        "target_clicks": args.target,
        "seed": args.seed,
        "load_bundled_seconds": load_seconds,
        "generate_seconds": generate_seconds,
        "write_parquet_seconds": write_seconds,
        "memory": memory_snapshot(),
    }


def job_features(args: argparse.Namespace) -> dict[str, object]:
    """Build the features once: index, whole-session table, and the k=3 window features."""
    from ml.data.clicks import index_clicks
    from ml.features.sessions import session_features
    from ml.features.window import window_features

    clicks, load_seconds = load_source(args.source)
    gc.collect()
    after_load = memory_snapshot()
    reset = reset_peak_rss()
    baseline = rss_kib()
    start = time.perf_counter()
    indexed = index_clicks(clicks)
    indexed_at = time.perf_counter()
    sessions = session_features(indexed)
    sessions_at = time.perf_counter()
    window = window_features(indexed, WINDOW)
    done_at = time.perf_counter()
    after = memory_snapshot()
    return {
        "source": args.source,
        "clicks": len(clicks),
        "sessions": indexed.n_sessions,
        "scoreable_sessions": len(window.features),
        "session_feature_columns": sessions.shape[1],
        "window_feature_columns": window.features.shape[1],
        "input_already_sorted": already_sorted(clicks),
        "load_seconds": load_seconds,
        "seconds": done_at - start,
        "step_seconds": {
            "index_clicks": indexed_at - start,
            "session_features": sessions_at - indexed_at,
            "window_features": done_at - sessions_at,
        },
        "peak_reset_before_features": reset,
        "load_peak_kib": after_load["ru_maxrss_kib"],
        "baseline_rss_kib": baseline,
        "peak_rss_kib": after["ru_maxrss_kib"],
        "vm_hwm_kib": after["vm_hwm_kib"],
        "rss_after_kib": after["rss_kib"],
    }


class ModelClock:
    """A training progress callback that notes when each model starts fitting and finishes."""

    def __init__(self) -> None:
        self.started: dict[tuple[str, str], float] = {}
        self.finished: dict[tuple[str, str], float] = {}

    def __call__(self, statuses: list[dict]) -> None:
        now = time.perf_counter()
        for status in statuses:
            key = (status["task"], status["model"])
            if status["state"] == "fitting":
                self.started.setdefault(key, now)
            elif status["state"] in ("done", "failed"):
                self.finished.setdefault(key, now)

    def seconds(self, key: tuple[str, str]) -> float | None:
        if key in self.started and key in self.finished:
            return self.finished[key] - self.started[key]
        return None


def job_train(args: argparse.Namespace) -> dict[str, object]:
    """The leaderboard training on the bundled data into ``--models-dir``."""
    from ml.config import BUNDLED_DATA_FILE
    from ml.data.loading import load_events
    from ml.serving.registry import Registry
    from ml.serving.training import TrainConfig, train

    start = time.perf_counter()
    loaded = load_events(BUNDLED_DATA_FILE)
    load_seconds = time.perf_counter() - start
    config = TrainConfig(quick=args.quick)
    clock = ModelClock()
    start = time.perf_counter()
    result = train(
        loaded.clicks,
        Registry(args.models_dir),
        config,
        source=loaded.source,
        data_hash=loaded.data_hash,
        progress=clock,
    )
    wall = time.perf_counter() - start
    models = [
        {
            "task": s["task"],
            "model": s["model"],
            "title": s["title"],
            "state": s["state"],
            "metric": s["metric"],
            "score": s["score"],
            "detail": s["detail"],
            "seconds": clock.seconds((s["task"], s["model"])),
        }
        for s in result.statuses
    ]
    first_fit = min(clock.started.values(), default=None)
    return {
        "quick": config.quick,
        "config": {"window": config.window, "folds": config.folds, "test_size": config.test_size},
        "clicks": len(loaded.clicks),
        "load_seconds": load_seconds,
        "wall_seconds": wall,
        "train_reported_seconds": result.seconds,
        "prepare_seconds": None if first_fit is None else first_fit - start,
        "runs_saved": len(result.run_ids),
        "data": result.data,
        "models": models,
        "memory": memory_snapshot(),
    }


def job_score(args: argparse.Namespace) -> dict[str, object]:
    """``score_clicks`` ``--repeats`` times on one click set, with the models loaded once."""
    from ml.serving.registry import Registry
    from ml.serving.scoring import load_scoring_models, score_clicks, score_summary

    start = time.perf_counter()
    models = load_scoring_models(Registry(args.models_dir))
    models_seconds = time.perf_counter() - start
    clicks, load_seconds = load_source(args.source)
    gc.collect()
    reset = reset_peak_rss()
    baseline = rss_kib()
    seconds: list[float] = []
    scores = None
    for _ in range(args.repeats):
        scores = None
        gc.collect()
        start = time.perf_counter()
        scores = score_clicks(clicks, models)
        seconds.append(time.perf_counter() - start)
    assert scores is not None
    summary = score_summary(scores)
    return {
        "source": args.source,
        "clicks": len(clicks),
        "sessions": summary["sessions"],
        "status_counts": summary["status_counts"],
        "models": models.describe(),
        "load_models_seconds": models_seconds,
        "load_events_seconds": load_seconds,
        "seconds": summarise_times(seconds),
        "peak_reset_before_scoring": reset,
        "baseline_rss_kib": baseline,
        "peak_rss_kib": peak_rss_kib(),
    }


JOBS: dict[str, Callable[[argparse.Namespace], dict[str, object]]] = {
    "generate": job_generate,
    "features": job_features,
    "train": job_train,
    "score": job_score,
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="One engine benchmark measurement in a fresh process.")
    parser.add_argument("job", choices=sorted(JOBS))
    parser.add_argument("--result", type=Path, required=True, help="JSON file to write the result to")
    parser.add_argument("--source", default=BUNDLED, help="'bundled' or a cached Parquet click file")
    parser.add_argument("--models-dir", type=Path, help="registry folder (train, score)")
    parser.add_argument("--quick", action="store_true", help="quick grids (train)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions (score)")
    parser.add_argument("--output", type=Path, help="Parquet file to write (generate)")
    parser.add_argument("--target", type=int, default=10_000_000, help="clicks to generate (generate)")
    parser.add_argument("--seed", type=int, default=0, help="resampling seed (generate)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Drop the peak inherited through exec from the parent's address space (see _measure).
    reset_peak_rss()
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="    %(message)s", stream=sys.stderr)
    result = JOBS[args.job](args)
    result["pid"] = os.getpid()
    args.result.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
