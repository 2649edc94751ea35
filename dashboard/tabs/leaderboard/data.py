"""What the leaderboard tab shows, read from the registry once per run: grid rows, curves, threshold metrics.

A committed run never changes, so its metadata and curve data are read once
and kept by run id; the run listing is re-read only when the set of run
folders on disk changes (a job landed, a run was removed). Nothing here loads a
fitted pipeline: every number and curve comes from ``metadata.json`` and
``curves.json``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ml.errors import ArtifactError
from ml.models.capacity import at_share, at_threshold, capacity_table
from ml.models.evaluation import classification_metrics
from ml.serving.leaderboard import CurveSeries, leaderboard
from ml.serving.registry import METADATA_FILE, RunInfo
from ml.serving.registry_cache import RegistryCache
from ml.tasks import CLASSIFICATION, CLUSTERING, REGRESSION, TASKS


# ---------------------------------------------------------------- grid rows and columns
def _clean(value: object) -> object:
    """JSON-safe cell values: NaN and numpy scalars become None and Python numbers."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return _clean(value.item())
    return value


def grid_rows(registry: RegistryCache, task: str, history: bool = False) -> list[dict]:
    """Leaderboard rows (``ml.leaderboard``) plus what the grid needs: best, in use, label, problem."""
    frame = leaderboard(registry, task, history=history)
    if frame.empty:
        return []
    best = registry.champion_id(task)
    in_use = {r.run_id for r in registry.latest_per_model(task)}
    by_id = {r.run_id: r for r in registry.runs(task)}
    rows = []
    for record in frame.to_dict("records"):
        meta = by_id[record["run_id"]].metadata or {}
        row = {key: _clean(value) for key, value in record.items()}
        row["best"] = record["run_id"] == best
        row["status"] = "in use" if record["run_id"] in in_use else "earlier run"
        row["label"] = (meta.get("label") or {}).get("title")
        row["problem"] = row["error"] and f"{by_id[row['run_id']].path / METADATA_FILE}: {row['error']}"
        if task == CLUSTERING and row.get("n_clusters") is None:
            row["n_clusters"] = (meta.get("params") or {}).get("k")
        rows.append(row)
    return rows


def default_selection(rows: list[dict], current: str | None) -> str | None:
    """Keep the current run if it is still shown, else the best, else the first readable one."""
    readable = [r for r in rows if not r.get("problem")]
    if any(r["run_id"] == current for r in readable):
        return current
    best = next((r for r in readable if r.get("best")), None)
    return (best or (readable[0] if readable else {"run_id": None}))["run_id"]


# ---------------------------------------------------------------- window and label of the runs in use
@dataclass(frozen=True)
class TrainingSetup:
    """The windows and labels the runs in use were trained with."""

    windows: dict[int, list[str]]
    labels: dict[str, list[str]]
    proxy: bool
    held_out_sessions: int | None
    cv_text: str | None

    @property
    def mixed_windows(self) -> bool:
        return len(self.windows) > 1

    @property
    def mixed_labels(self) -> bool:
        return len(self.labels) > 1


def training_setup(registry: RegistryCache) -> TrainingSetup:
    """Which window k and label each model in use was trained with (clustering has no window)."""
    windows: dict[int, list[str]] = {}
    labels: dict[str, list[str]] = {}
    proxy, held_out, cv_text = True, None, None
    for task in (CLASSIFICATION, REGRESSION):
        for run in registry.latest_per_model(task):
            if run.metadata is None:
                continue
            meta = run.metadata
            name = f"{meta.get('title', run.model)} ({'classifier' if task == CLASSIFICATION else 'basket value'})"
            windows.setdefault(int(meta.get("window", 0)), []).append(name)
            label = meta.get("label") or {}
            labels.setdefault(label.get("title", "?"), []).append(name)
            proxy = proxy and bool(label.get("is_proxy", True))
            if task == CLASSIFICATION and held_out is None:
                held_out = (meta.get("data") or {}).get("test_sessions")
                cv_text = (meta.get("validation") or {}).get("cv")
    return TrainingSetup(windows, labels, proxy, held_out, cv_text)


def broken_runs(registry: RegistryCache, history: bool = False) -> list[str]:
    """One message per run in use (or per run, with ``history``) whose metadata cannot be read, naming the file."""
    runs = registry.runs() if history else [r for task in TASKS for r in registry.latest_per_model(task)]
    return [f"{r.path / METADATA_FILE}: {r.error}" for r in runs if r.error]


# ---------------------------------------------------------------- curves and the threshold
@dataclass(frozen=True)
class ThresholdView:
    """Thresholded metrics and the confusion counts [[TN, FP], [FN, TP]] on the stored held-out predictions."""

    threshold: float
    metrics: dict[str, float]
    counts: np.ndarray
    flagged_share: float

    @property
    def sessions(self) -> int:
        return int(self.counts.sum())


def threshold_view(curves: dict, threshold: float) -> ThresholdView:
    """Recompute precision, recall, F1 and the confusion matrix at a threshold, without the model."""
    predictions = curves["predictions"]
    y_true = np.asarray(predictions["y_true"], dtype=int)
    p = np.asarray(predictions["p"], dtype=float)
    flagged = p >= threshold
    counts = np.array(
        [
            [int(np.sum(~flagged & (y_true == 0))), int(np.sum(flagged & (y_true == 0)))],
            [int(np.sum(~flagged & (y_true == 1))), int(np.sum(flagged & (y_true == 1)))],
        ]
    )
    share = float(flagged.mean()) if len(p) else float("nan")
    return ThresholdView(float(threshold), classification_metrics(y_true, p, threshold), counts, share)


@dataclass(frozen=True)
class CapacityView:
    """What "target the top N% of sessions" buys on the held-out sessions, next to what the threshold flags."""

    capacity: dict[str, float]  # a row of ml.models.capacity: share, flagged, threshold, converted, precision, ...
    threshold: dict[str, float] | None
    source: str  # "every held-out session" or "a sample of held-out sessions"


def capacity_view(metadata: dict, curves: dict, share: float) -> CapacityView | None:
    """The capacity row at ``share`` (0..1) from the run's saved table; for older runs, from its saved predictions."""
    table = metadata.get("capacity")
    source = "every held-out session"
    rule = metadata.get("threshold_rule")
    if not table:
        predictions = (curves or {}).get("predictions") or {}
        if not predictions.get("p"):
            return None
        table = capacity_table(predictions["y_true"], predictions["p"])
        rule = at_threshold(predictions["y_true"], predictions["p"], float(metadata.get("threshold") or 0.5))
        source = "the held-out sessions saved with the run"
    return CapacityView(at_share(table, share), rule, source)


def feature_labels(metadata: dict) -> dict[str, str]:
    return {f["name"]: f.get("label", f["name"]) for f in metadata.get("features", []) if isinstance(f, dict)}


def setup_warnings(setup: TrainingSetup) -> list[str]:
    """Say when the runs in use were trained with different windows or labels (scores not comparable)."""
    warnings = []
    if setup.mixed_windows:
        detail = "; ".join(f"k = {k}: {', '.join(names)}" for k, names in sorted(setup.windows.items()))
        warnings.append(
            f"The models in use were trained with different observation windows ({detail}). "
            "Their scores are not comparable; retrain them together with one k."
        )
    if setup.mixed_labels:
        detail = "; ".join(f"{label}: {', '.join(names)}" for label, names in setup.labels.items())
        warnings.append(f"The models in use were trained on different labels ({detail}).")
    return warnings


def note_items(setup: TrainingSetup) -> list[tuple[str, str]]:
    """What the numbers mean, as (heading, text), with the window, label and held-out size in use."""
    windows = ", ".join(f"k = {k}" for k in sorted(setup.windows)) or "–"
    held_out = f"{setup.held_out_sessions:,} sessions" if setup.held_out_sessions else "20% of the sessions"
    label = (
        "a proxy: the data has no purchases; a session converts when it re-views a product it already viewed, "
        "and its basket value is the sum of those products' prices."
        if setup.proxy
        else "a real label column from the input file, not the re-view proxy."
    )
    return [
        ("Trained with: ", f"observation window {windows}; label {', '.join(setup.labels) or '–'}."),
        ("Held-out: ", f"measured on {held_out} that no model saw while it was fitted or tuned."),
        (
            "CV mean ± std: ",
            f"{setup.cv_text or 'k-fold CV grouped by session'}, so no session is on both sides of a split; "
            "models are chosen on CV, and ★ marks the best CV score among the runs in use.",
        ),
        (
            "Window: ",
            "models see only a session's first k clicks and predict whether it converts later; sessions "
            "shorter than k, or converted within them, are left out. Expect ROC-AUC near 0.6, not 0.9.",
        ),
        ("Label: ", label),
        ("Timing: ", "Fit s = refit on all training sessions; ms / 1k = median time to score 1,000 sessions."),
    ]


# ---------------------------------------------------------------- one run's data
def readable_run(registry: RegistryCache, run_id: str | None) -> tuple[RunInfo | None, str | None]:
    """The run with this id if its metadata can be read, else ``None`` and why (naming the file)."""
    run = registry.run(run_id)
    if run is not None and run.metadata is None:
        return None, f"{run.path / METADATA_FILE}: {run.error}"
    return run, None


def load_curves(registry: RegistryCache, run: RunInfo) -> tuple[dict, str | None]:
    """A run's curve data, or an empty dict and a message naming the file that cannot be read."""
    try:
        return registry.curves(run), None
    except ArtifactError as exc:
        return {}, f"{exc.path}: {exc.reason}"


def classifier_series(registry: RegistryCache, selected: RunInfo) -> tuple[list[CurveSeries], list[str]]:
    """Curve data of every classifier in use plus the selected run (an earlier one is named by its date)."""
    in_use = [r for r in registry.latest_per_model(CLASSIFICATION) if r.metadata is not None]
    ids_in_use = {r.run_id for r in in_use}
    runs = in_use if selected.run_id in ids_in_use else [*in_use, selected]
    series, problems = [], []
    for run in runs:
        curves, problem = load_curves(registry, run)
        if problem:
            problems.append(problem)
        name = run.metadata.get("title", run.model)
        if run.run_id not in ids_in_use:
            name += f" · {run.created:%Y-%m-%d %H:%M}"
        series.append(CurveSeries(run.run_id, name, curves, run.metadata.get("metrics", {}).get("test", {})))
    return series, problems
