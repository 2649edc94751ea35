"""Saved models for the UI: loaded once per run, and what the registry holds right now.

A committed run never changes (a new training job writes new run ids), so a
loaded pipeline can be kept by run id for the life of the process. What is
*in use* is read from the registry each time it is asked, so a job that lands
while the app runs is picked up without a restart.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from ml.errors import NoModelError
from ml.serving.registry import METADATA_FILE, RUN_ID_PATTERN, LoadedRun, Registry, RunInfo
from ml.tasks import TASKS

CACHE_SIZE = 16
CURVES_CACHE_SIZE = 64
POLL_MS = 5000  # how often open pages look for newly landed models


class SnapshotRegistry(Registry):
    """A registry that re-reads run metadata only when the run folders change, and caches curve data by run id."""

    def __init__(self, root: Path | str):
        super().__init__(root)
        self._lock = threading.Lock()
        self._fingerprint: tuple[str, ...] | None = None
        self._all_runs: list[RunInfo] = []
        self._curves: OrderedDict[str, dict] = OrderedDict()

    def _scan(self) -> tuple[str, ...]:
        """The complete run folders on disk (a few directory listings, no file reads)."""
        found = []
        for task in TASKS:
            for model_dir in self._subdirs(self.root / task, None):
                found += [
                    f"{task}/{model_dir.name}/{run_dir.name}"
                    for run_dir in self._subdirs(model_dir, None)
                    if RUN_ID_PATTERN.match(run_dir.name) and (run_dir / METADATA_FILE).exists()
                ]
        return tuple(sorted(found))

    def runs(self, task: str | None = None, model: str | None = None) -> list[RunInfo]:
        fingerprint = self._scan()
        with self._lock:
            if fingerprint != self._fingerprint:
                self._all_runs = super().runs()
                self._fingerprint = fingerprint
            runs = self._all_runs
        return [r for r in runs if (task is None or r.task == task) and (model is None or r.model == model)]

    def curves(self, run: RunInfo) -> dict:
        """A run's curve data, read from disk once; ``ArtifactError`` (not cached) when unreadable."""
        with self._lock:
            if run.run_id in self._curves:
                self._curves.move_to_end(run.run_id)
                return self._curves[run.run_id]
        data = super().curves(run)
        with self._lock:
            self._curves[run.run_id] = data
            while len(self._curves) > CURVES_CACHE_SIZE:
                self._curves.popitem(last=False)
        return data

    def run(self, run_id: str | None) -> RunInfo | None:
        return next((r for r in self.runs() if r.run_id == run_id), None) if run_id else None

    def champion_id(self, task: str) -> str | None:
        try:
            return self.champion(task).run_id
        except NoModelError:
            return None


class ModelCache:
    """Loaded runs by run id (least recently used dropped first)."""

    def __init__(self, registry: Registry, size: int = CACHE_SIZE):
        self.registry = registry
        self.size = size
        self._runs: OrderedDict[str, LoadedRun] = OrderedDict()
        self._lock = threading.Lock()
        self.snapshot = SnapshotRegistry(registry.root)  # metadata and curves for the leaderboard

    def version(self) -> str:
        """The newest run id in the registry ("" when empty): changes whenever a job lands.

        Directory listings only (no metadata read), so pages can poll it every few seconds.
        """
        newest = ""
        root = self.registry.root
        for task in TASKS:
            task_dir = root / task
            if not task_dir.is_dir():
                continue
            for model_dir in task_dir.iterdir():
                if not model_dir.is_dir() or model_dir.name.startswith("."):
                    continue
                for run_dir in model_dir.iterdir():
                    name = run_dir.name
                    if name > newest and RUN_ID_PATTERN.match(name) and (run_dir / METADATA_FILE).exists():
                        newest = name
        return newest

    def load(self, run: RunInfo | str) -> LoadedRun:
        """A run's pipeline and metadata, from memory after the first load.

        Raises ``ArtifactError`` (naming the file) for a missing or corrupt run.
        """
        run_id = run if isinstance(run, str) else run.run_id
        with self._lock:
            if run_id in self._runs:  # checked before any registry scan: runs never change
                self._runs.move_to_end(run_id)
                return self._runs[run_id]
        info = self.registry.find(run) if isinstance(run, str) else run
        loaded = self.registry.load(info) if isinstance(run, str) else self.registry.load_intact(info)
        with self._lock:
            self._runs[info.run_id] = loaded
            while len(self._runs) > self.size:
                self._runs.popitem(last=False)
        return loaded

    def champion(self, task: str) -> LoadedRun | None:
        """The model in use for a task, or ``None`` when none is trained yet."""
        try:
            return self.load(self.registry.champion(task))
        except NoModelError:
            return None

    def in_use(self, task: str) -> list[RunInfo]:
        """The newest run of each model of a task."""
        return self.registry.latest_per_model(task)


def register_model_refresh(app, context) -> None:
    """Every open page re-reads its model lists when a job lands, on any tab, without a reload."""
    from dash import Input, Output, State, no_update

    from dashboard import ids

    @app.callback(
        Output(ids.APP_MODELS_STORE, "data", allow_duplicate=True),
        Input(ids.APP_MODELS_POLL, "n_intervals"),
        State(ids.APP_DATASET_STORE, "data"),
        State(ids.APP_MODELS_STORE, "data"),
        prevent_initial_call=True,
    )
    def refresh_models(_tick, dataset, current):
        version = context.models_for(dataset).version()
        return version if version != current else no_update
