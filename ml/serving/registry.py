"""The model registry: ``models/<task>/<model>/<run-id>/`` with a pipeline and its metadata.

A run is written in a staging folder inside the registry and moved into place
with one ``os.replace`` per run when its training job commits, so a crash or a
cancel mid-write leaves no half run visible. The newest run of a model wins.
Reading a missing or corrupt artifact raises ``ArtifactError`` naming the file.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import joblib
import numpy as np

from ml.config import BUNDLED_DATA_FILE, BUNDLED_DATASET_KEY, Settings
from ml.errors import ArtifactError, ClickstreamError, NoModelError
from ml.serving.locking import FileTrainingLock, ModelStoreReadOnly, lock_for
from ml.tasks import ARTIFACT_TASKS, LOWER_IS_BETTER, PRIMARY_METRIC, TASKS

log = logging.getLogger(__name__)

MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
CURVES_FILE = "curves.json"
STAGING_DIR = ".staging"
LOCK_FILE = ".training.lock"
RUN_ID_PATTERN = re.compile(r"^\d{8}T\d{6}\d{6}Z-[0-9a-f]{6}$")
STALE_STAGING_SECONDS = 6 * 3600


NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


class StorageFull(ClickstreamError):
    """The disk of the model store filled up while a job wrote its runs; nothing of the job was kept."""

    def __init__(self, where: str = ""):
        at = f" while saving {where}" if where else ""
        super().__init__(
            f"The disk holding the model store is full{at}: training stopped and nothing from this job was "
            "saved; the models in use are unchanged. Free some space and train again."
        )


def is_no_space(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in NO_SPACE_ERRNOS


_WARNED: set[str] = set()


def _warn_once(run: RunInfo, action: str) -> None:
    """Log a damaged run once per process, not at every request that lists the registry."""
    if run.run_id not in _WARNED:
        _WARNED.add(run.run_id)
        log.warning("damaged run %s/%s/%s: %s; %s", run.task, run.model, run.run_id, run.error, action)


def new_run_id() -> str:
    """Sortable, unique run id: UTC time to the microsecond plus a random suffix."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + uuid.uuid4().hex[:6]


def run_timestamp(run_id: str) -> datetime:
    return datetime.strptime(run_id.split("-", maxsplit=1)[0], "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC)


def _json_default(value: object) -> object:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _write_json(path: Path, payload: dict) -> None:
    text = json.dumps(payload, indent=2, default=_json_default, allow_nan=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


@dataclass(frozen=True)
class RunInfo:
    """One complete run on disk. ``metadata`` is ``None`` when it cannot be read (see ``error``)."""

    task: str
    model: str
    run_id: str
    path: Path
    metadata: dict | None
    error: str | None = None

    @property
    def created(self) -> datetime:
        return run_timestamp(self.run_id)

    def metric(self, name: str, split: str = "test") -> float:
        """A held-out (``split="test"``) or CV-mean (``split="cv"``) metric, NaN if absent."""
        if not self.metadata:
            return float("nan")
        metrics = self.metadata.get("metrics", {})
        value = metrics.get("cv", {}).get(name, {}).get("mean") if split == "cv" else metrics.get("test", {}).get(name)
        return float("nan") if value is None else float(value)


@dataclass(frozen=True)
class LoadedRun:
    info: RunInfo
    pipeline: object
    metadata: dict
    skipped: tuple[str, ...] = ()  # newer runs of this model that were damaged, named for the user

    @property
    def window(self) -> int:
        """The observation window k the model was trained with."""
        return int(self.metadata["window"])

    @property
    def threshold(self) -> float:
        """The saved decision threshold (classifiers only)."""
        return float(self.metadata["threshold"])


class Staging:
    """Runs written by one training job, invisible until ``commit``."""

    def __init__(self, registry: Registry, job_id: str):
        self.registry = registry
        self.job_id = job_id
        self.root = registry.root / STAGING_DIR / job_id
        self.root.mkdir(parents=True, exist_ok=True)
        self._runs: list[tuple[Path, Path]] = []

    def save(self, task: str, model: str, pipeline: object, metadata: dict, curves: dict | None = None) -> str:
        """Write one run into staging; returns its run id."""
        if task not in ARTIFACT_TASKS:
            raise ValueError(f"unknown task {task!r}")
        run_id = new_run_id()
        folder = self.root / task / model / run_id
        folder.mkdir(parents=True)
        joblib.dump(pipeline, folder / MODEL_FILE)
        _write_json(folder / CURVES_FILE, curves or {})
        # metadata.json last: a run folder without it is never treated as complete.
        _write_json(folder / METADATA_FILE, {**metadata, "run_id": run_id, "job_id": self.job_id})
        self._runs.append((folder, self.registry.root / task / model / run_id))
        return run_id

    def commit(self) -> list[str]:
        """Move every staged run into place (one atomic rename each); all of them or, on an error, none."""
        moved: list[tuple[Path, Path]] = []
        try:
            for staged, final in self._runs:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staged, final)
                moved.append((staged, final))
        except OSError:
            for staged, final in reversed(moved):  # put back what was already moved: the job lands whole or not
                os.replace(final, staged)
            raise
        self.discard()
        return [final.name for _, final in moved]

    def discard(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


class Registry:
    """Saved models under one root folder (one dataset's).

    ``lock_dir`` is where the one-job-at-a-time training lock lives: the model
    store's root, so a job on any dataset holds it.
    """

    def __init__(self, root: Path | str, lock_dir: Path | str | None = None, lock: object | None = None):
        self.root = Path(root)
        self.lock_dir = Path(lock_dir) if lock_dir is not None else self.root
        # The one-job-at-a-time lock: the file lock in lock_dir, or the Redis lock (``locking.lock_for``).
        self.lock = lock if lock is not None else FileTrainingLock(self.lock_dir)

    def check_writable(self) -> None:
        """Raise ``ModelStoreReadOnly`` at once if runs cannot be written here (before any training)."""
        probe_dir = self.root / STAGING_DIR
        try:
            probe_dir.mkdir(parents=True, exist_ok=True)
            probe = probe_dir / f".probe-{uuid.uuid4().hex[:8]}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            if isinstance(exc, PermissionError) or exc.errno == errno.EROFS:
                reason = "read-only file system" if exc.errno == errno.EROFS else "permission denied"
                raise ModelStoreReadOnly(reason) from exc
            if is_no_space(exc):
                raise StorageFull() from exc
            raise

    # ------------------------------------------------------------------ writing
    @contextmanager
    def staging(self, job_id: str | None = None) -> Iterator[Staging]:
        """Stage runs; they are committed only if the block finishes without an exception."""
        staging = Staging(self, job_id or new_run_id())
        try:
            yield staging
        except BaseException:
            staging.discard()
            raise
        try:
            staging.commit()
        except OSError as exc:
            staging.discard()
            if is_no_space(exc):
                raise StorageFull() from None
            raise

    def clean_stale_staging(self, max_age_seconds: float = STALE_STAGING_SECONDS) -> None:
        """Remove staging folders left behind by killed jobs."""
        base = self.root / STAGING_DIR
        if not base.is_dir():
            return
        now = time.time()
        for folder in base.iterdir():
            if now - folder.stat().st_mtime > max_age_seconds:
                shutil.rmtree(folder, ignore_errors=True)

    # ------------------------------------------------------------------ reading
    def runs(self, task: str | None = None, model: str | None = None) -> list[RunInfo]:
        """Every complete run, newest first. Unreadable metadata is reported in ``error``.

        Without ``task``, the runs of the model tasks (``TASKS``); the recommender's are listed by naming its task.
        """
        found: list[RunInfo] = []
        listed = TASKS if task is None else ARTIFACT_TASKS
        for task_dir in self._subdirs(self.root, task):
            if task_dir.name not in listed:
                continue
            for model_dir in self._subdirs(task_dir, model):
                for run_dir in self._subdirs(model_dir, None):
                    if RUN_ID_PATTERN.match(run_dir.name) and (run_dir / METADATA_FILE).exists():
                        found.append(self._info(task_dir.name, model_dir.name, run_dir))
        return sorted(found, key=lambda r: r.run_id, reverse=True)

    @staticmethod
    def _subdirs(parent: Path, only: str | None) -> list[Path]:
        if not parent.is_dir():
            return []
        if only is not None:
            child = parent / only
            return [child] if child.is_dir() else []
        return [p for p in parent.iterdir() if p.is_dir() and not p.name.startswith(".")]

    @staticmethod
    def _info(task: str, model: str, run_dir: Path) -> RunInfo:
        try:
            metadata = json.loads((run_dir / METADATA_FILE).read_text(encoding="utf-8"))
            if not isinstance(metadata, dict):
                raise ValueError("metadata is not a JSON object")
            return RunInfo(task, model, run_dir.name, run_dir, metadata)
        except (OSError, ValueError) as exc:
            return RunInfo(task, model, run_dir.name, run_dir, None, f"{METADATA_FILE} is unreadable: {exc}")

    def latest(self, task: str, model: str) -> RunInfo | None:
        runs = self.runs(task, model)
        return runs[0] if runs else None

    def latest_per_model(self, task: str) -> list[RunInfo]:
        """The run in use of each model of a task: its newest run whose metadata can be read.

        A model whose runs are all unreadable is listed by its newest run (``metadata`` ``None``),
        so the leaderboard can name it.
        """
        seen: dict[str, RunInfo] = {}
        for run in self.runs(task):
            current = seen.get(run.model)
            if current is None or (current.metadata is None and run.metadata is not None):
                if current is not None:
                    _warn_once(current, f"using the previous run of {task}/{run.model}")
                seen[run.model] = run
        return list(seen.values())

    def load_intact(self, run: RunInfo) -> LoadedRun:
        """Load ``run`` or, when it is damaged, the newest earlier run of the same model that loads.

        The damaged runs skipped are logged and listed in the result's ``skipped`` (named
        without server folders); ``ArtifactError`` for ``run`` if no run of the model loads.
        """
        skipped: list[str] = []
        first_error: ArtifactError | None = None
        earlier = [r for r in self.runs(run.task, run.model) if r.run_id < run.run_id]
        for candidate in [run, *earlier]:
            try:
                loaded = self.load(candidate)
            except ArtifactError as exc:
                log.warning("damaged run: %s; trying the previous run of %s/%s", exc, run.task, run.model)
                skipped.append(str(exc))
                first_error = first_error or exc
                continue
            return replace(loaded, skipped=tuple(skipped)) if skipped else loaded
        assert first_error is not None
        raise first_error

    def champion(self, task: str, metric: str | None = None) -> RunInfo:
        """The model in use for a task: the best CV score among each model's newest run."""
        metric = metric or PRIMARY_METRIC[task]
        candidates = [r for r in self.latest_per_model(task) if r.metadata is not None]
        if not candidates:
            raise NoModelError(f"no trained {task} model in {self.root}; run 'python -m ml train' first")
        sign = 1.0 if metric in LOWER_IS_BETTER else -1.0

        def key(run: RunInfo) -> float:
            value = run.metric(metric, "cv")
            if np.isnan(value):
                value = run.metric(metric, "test")
            return sign * value if not np.isnan(value) else float("inf")

        return min(candidates, key=key)

    def load(self, run: RunInfo) -> LoadedRun:
        """Load a run's pipeline and metadata; ``ArtifactError`` names what is missing or broken."""
        if run.metadata is None:
            raise ArtifactError(run.path / METADATA_FILE, run.error or "unreadable")
        model_path = run.path / MODEL_FILE
        if not model_path.exists():
            raise ArtifactError(model_path, "the fitted model file is missing")
        try:
            pipeline = joblib.load(model_path)
        except Exception as exc:  # joblib raises many types for a damaged file
            raise ArtifactError(model_path, f"the fitted model cannot be loaded ({type(exc).__name__}: {exc})") from exc
        return LoadedRun(run, pipeline, run.metadata)

    def curves(self, run: RunInfo) -> dict:
        path = run.path / CURVES_FILE
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ArtifactError(path, "the curve data file is missing") from exc
        except (OSError, ValueError) as exc:
            raise ArtifactError(path, f"the curve data cannot be read ({exc})") from exc

    def find(self, run_id: str) -> RunInfo:
        for run in self.runs():
            if run.run_id == run_id:
                return run
        raise ArtifactError(self.root / "*" / "*" / run_id, "no such run")


# ---------------------------------------------------------------- one registry per dataset
DATASET_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def dataset_key(name: str) -> str:
    """A folder-safe key for a dataset name: ``"Shop events Oct.csv.gz"`` -> ``"shop-events-oct"``."""
    stem = str(name).strip().lower()
    for suffix in (".gz", ".csv", ".tsv", ".txt", ".parquet"):
        stem = stem.removesuffix(suffix)
    slug = re.sub(r"[^a-z0-9]+", "-", stem).strip("-")[:64].strip("-")
    return slug or "dataset"


class ModelStore:
    """Saved models of every dataset: ``<root>/<dataset>/<task>/<model>/<run-id>/``.

    Models belong to a dataset (its profile, features and codebooks). Runs saved
    before datasets existed (``<root>/<task>/...``) belong to the bundled data
    and are moved under it the first time they are asked for.
    """

    def __init__(self, root: Path | str, lock: object | None = None):
        self.root = Path(root)
        self.lock = lock if lock is not None else FileTrainingLock(self.root)  # one job at a time, any dataset

    @classmethod
    def for_settings(cls, settings: Settings) -> ModelStore:
        """The settings' model store, with the training lock they call for (Redis when ``REDIS_URL`` is set)."""
        return cls(settings.models_dir, lock=lock_for(settings))

    def registry(self, dataset: str) -> Registry:
        if not DATASET_KEY.match(dataset):
            raise ValueError(f"dataset key {dataset!r} must be lowercase letters, digits, '-' or '_'")
        if dataset == BUNDLED_DATASET_KEY and not self._adopt_legacy_runs():
            return Registry(self.root, lock=self.lock)  # legacy runs that could not be moved are read where they are
        return Registry(self.root / dataset, lock_dir=self.root, lock=self.lock)

    def datasets(self) -> list[str]:
        """Dataset keys that have at least one complete run."""
        if not self.root.is_dir():
            return []
        keys = [p.name for p in self.root.iterdir() if p.is_dir() and DATASET_KEY.match(p.name) and p.name not in TASKS]
        return sorted(k for k in keys if Registry(self.root / k).runs())

    def _adopt_legacy_runs(self) -> bool:
        """Move ``<root>/<task>/`` runs under the bundled dataset; false if some could not be moved."""
        moved = True
        for task in TASKS:
            legacy = self.root / task
            if legacy.is_dir():
                target = self.root / BUNDLED_DATASET_KEY / task
                try:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    if target.exists():
                        for model_dir in legacy.iterdir():
                            dest = target / model_dir.name
                            dest.mkdir(exist_ok=True)
                            for run in model_dir.iterdir():
                                os.replace(run, dest / run.name)
                        shutil.rmtree(legacy, ignore_errors=True)
                    else:
                        os.replace(legacy, target)
                    log.info("moved the runs in %s under the bundled dataset (%s)", legacy, target)
                except OSError as exc:  # a read-only folder: read the runs where they are
                    log.warning("could not move %s under %s: %s", legacy, target, exc)
                    moved = False
        return moved


def dataset_key_for_file(data_file: Path) -> str:
    """The dataset key of a data file: the bundled data's, or one made from the file name."""
    return BUNDLED_DATASET_KEY if Path(data_file).resolve() == BUNDLED_DATA_FILE else dataset_key(Path(data_file).name)


def registry_for(settings: Settings) -> Registry:
    """The registry of the data file the settings name (the bundled data's by default)."""
    return ModelStore.for_settings(settings).registry(dataset_key_for_file(settings.data_file))
