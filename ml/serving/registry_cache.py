"""One dataset's model registry as a long-running app reads it: metadata, curves and fitted runs cached.

A committed run never changes (a new training job writes new run ids), so
its metadata, its curve data and its loaded pipeline can be kept by run id
for the life of the process. The run listing is re-read only when the set of
run folders on disk changes (a job landed, a run was removed), which a few
directory listings tell; what is *in use* (newest run per model, champion,
pin) is derived from that listing each time it is asked, so a job that lands
while the app runs is picked up without a restart. The app keeps one
``RegistryCache`` per dataset (``dashboard.context.AppContext.registry_for``),
shared by every tab; it is a ``Registry``, so anything that takes one takes it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from ml.errors import NoModelError
from ml.serving.registry import METADATA_FILE, RUN_ID_PATTERN, LoadedRun, Registry, RunInfo
from ml.tasks import ARTIFACT_TASKS, TASKS

LOADED_CACHE_SIZE = 16
CURVES_CACHE_SIZE = 64


class RegistryCache(Registry):
    """A registry whose reads are cached: run metadata until the run folders change, curves and pipelines by run id."""

    def __init__(self, root: Path | str, loaded_size: int = LOADED_CACHE_SIZE, **registry_options: object):
        super().__init__(root, **registry_options)
        self.loaded_size = loaded_size
        self._lock = threading.Lock()
        self._fingerprint: tuple[str, ...] | None = None
        self._all_runs: list[RunInfo] = []
        self._curves: OrderedDict[str, dict] = OrderedDict()
        self._loaded: OrderedDict[str, LoadedRun] = OrderedDict()

    @classmethod
    def of(cls, registry: Registry) -> RegistryCache:
        """A cached view of ``registry`` (same folder, same training lock); a cache is returned as it is."""
        if isinstance(registry, RegistryCache):
            return registry
        return cls(registry.root, lock_dir=registry.lock_dir, lock=registry.lock)

    # ---------------------------------------------------------------- the run listing
    def _scan(self, tasks: tuple[str, ...] = ARTIFACT_TASKS) -> tuple[str, ...]:
        """The complete run folders on disk (a few directory listings, no file reads)."""
        found = []
        for task in tasks:
            for model_dir in self._subdirs(self.root / task, None):
                found += [
                    f"{task}/{model_dir.name}/{run_dir.name}"
                    for run_dir in self._subdirs(model_dir, None)
                    if RUN_ID_PATTERN.match(run_dir.name) and (run_dir / METADATA_FILE).exists()
                ]
        return tuple(sorted(found))

    def runs(self, task: str | None = None, model: str | None = None) -> list[RunInfo]:
        """As ``Registry.runs``: without ``task`` the model tasks' runs; the recommender's when named."""
        fingerprint = self._scan()
        with self._lock:
            if fingerprint != self._fingerprint:
                every = [run for name in ARTIFACT_TASKS for run in Registry.runs(self, name)]
                self._all_runs = sorted(every, key=lambda r: r.run_id, reverse=True)
                self._fingerprint = fingerprint
            runs = self._all_runs
        tasks = TASKS if task is None else (task,)
        return [r for r in runs if r.task in tasks and (model is None or r.model == model)]

    def version(self) -> str:
        """The newest complete run id ("" when empty): changes whenever a job lands.

        Directory listings only (no metadata read), so pages can poll it every few seconds.
        """
        return max((path.rsplit("/", 1)[1] for path in self._scan(TASKS)), default="")

    def run(self, run_id: str | None) -> RunInfo | None:
        return next((r for r in self.runs() if r.run_id == run_id), None) if run_id else None

    def champion_id(self, task: str) -> str | None:
        try:
            return self.champion(task).run_id
        except NoModelError:
            return None

    # ---------------------------------------------------------------- what a run holds
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

    def loaded(self, run: RunInfo | str) -> LoadedRun:
        """A run's pipeline and metadata, from memory after the first load (least recently used dropped first).

        A run id loads exactly that run; a ``RunInfo`` falls back to the newest
        intact earlier run of its model when it is damaged (``load_intact``).
        Raises ``ArtifactError`` (naming the file) for a missing or corrupt run.
        """
        run_id = run if isinstance(run, str) else run.run_id
        with self._lock:
            if run_id in self._loaded:  # checked before any registry scan: runs never change
                self._loaded.move_to_end(run_id)
                return self._loaded[run_id]
        result = self.load(self.find(run)) if isinstance(run, str) else self.load_intact(run)
        with self._lock:
            self._loaded[run_id] = result
            while len(self._loaded) > self.loaded_size:
                self._loaded.popitem(last=False)
        return result

    def loaded_champion(self, task: str) -> LoadedRun | None:
        """The loaded model in use for a task, or ``None`` when none is trained yet."""
        try:
            return self.loaded(self.champion(task))
        except NoModelError:
            return None
