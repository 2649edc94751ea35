"""Leaderboard tables built from the registry, shared by the command line and the dashboard."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple

import pandas as pd

from ml.serving.registry import Registry, RunInfo
from ml.tasks import (
    CLASSIFICATION,
    CLASSIFICATION_METRICS,
    CLUSTERING,
    LOWER_IS_BETTER,
    PRIMARY_METRIC,
    REGRESSION,
    REGRESSION_METRICS,
)

TASK_METRICS = {
    CLASSIFICATION: CLASSIFICATION_METRICS,
    REGRESSION: REGRESSION_METRICS,
    CLUSTERING: ("silhouette", "davies_bouldin", "inertia", "n_clusters", "noise_share"),
}


class CurveSeries(NamedTuple):
    """One run's curve data, named for a legend."""

    run_id: str
    name: str
    curves: Mapping
    metrics: Mapping = {}  # held-out metrics from the run's metadata, for the legend


def run_row(run: RunInfo) -> dict[str, object]:
    """One leaderboard row: held-out metrics, CV mean and std, timing, identity."""
    row: dict[str, object] = {
        "task": run.task,
        "model": run.model,
        "title": (run.metadata or {}).get("title", run.model),
        "run_id": run.run_id,
        "created": run.created.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "error": run.error,
    }
    meta = run.metadata or {}
    metrics = meta.get("metrics", {})
    for name in TASK_METRICS[run.task]:
        row[name] = metrics.get("test", {}).get(name)
        cv = metrics.get("cv", {}).get(name)
        row[f"cv_{name}_mean"] = cv["mean"] if cv else None
        row[f"cv_{name}_std"] = cv["std"] if cv else None
    row["fit_seconds"] = metrics.get("fit_seconds")
    row["predict_ms_per_1000"] = metrics.get("predict_ms_per_1000")
    row["window"] = meta.get("window")
    row["threshold"] = meta.get("threshold")
    row["quick"] = meta.get("quick")
    return row


def leaderboard(registry: Registry, task: str, history: bool = False) -> pd.DataFrame:
    """The newest run of each model (or every run with ``history``), best first.

    Sorted by the primary metric's CV mean where there is one (the model
    choice is made on validation data), else by the held-out value.
    """
    runs = registry.runs(task) if history else registry.latest_per_model(task)
    frame = pd.DataFrame([run_row(r) for r in runs])
    if frame.empty:
        return frame
    primary = PRIMARY_METRIC[task]
    key = frame[f"cv_{primary}_mean"].fillna(frame[primary]).astype(float)
    ascending = primary in LOWER_IS_BETTER
    frame = frame.assign(_key=key).sort_values("_key", ascending=ascending, na_position="last").drop(columns="_key")
    frame["best"] = False
    if not history and frame[primary].notna().any():
        frame.loc[frame.index[0], "best"] = True
    return frame.reset_index(drop=True)


def _fmt(value: object, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def format_table(frame: pd.DataFrame, task: str) -> str:
    """A plain-text leaderboard for the terminal."""
    if frame.empty:
        return f"(no {task} models)"
    primary = PRIMARY_METRIC[task]
    has_cv = frame[f"cv_{primary}_mean"].notna().any()
    where = "held-out" if task != CLUSTERING else "all sessions"
    headers = ["model", f"{primary} ({where})"] + ([f"cv {primary} mean+/-std"] if has_cv else [])
    extra = [m for m in TASK_METRICS[task] if m != primary and m in frame and frame[m].notna().any()][:5]
    headers += [*extra, "fit s", "ms/1k rows", "run"]
    digits = {"inertia": 0, "mse": 1, "n_clusters": 0}
    lines = []
    for _, row in frame.iterrows():
        cells = [row["model"] + (" *" if row.get("best") else ""), _fmt(row[primary])]
        if has_cv:
            cells.append(f"{_fmt(row[f'cv_{primary}_mean'])} +/- {_fmt(row[f'cv_{primary}_std'])}")
        cells += [_fmt(row[m], digits.get(m, 3)) for m in extra]
        cells += [_fmt(row["fit_seconds"], 2), _fmt(row["predict_ms_per_1000"], 2), row["run_id"]]
        lines.append(cells)
    widths = [max(len(h), *(len(r[i]) for r in lines)) for i, h in enumerate(headers)]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    out.append("  ".join("-" * w for w in widths))
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in lines]
    return "\n".join(out)
