"""The registry: atomic runs, newest wins, clear errors for missing or corrupt artifacts, one job at a time."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import pytest
from sklearn.linear_model import LogisticRegression

from ml.errors import ArtifactError, NoModelError
from ml.serving.locking import TrainingBusy, running_job, training_lock
from ml.serving.registry import METADATA_FILE, MODEL_FILE, STAGING_DIR, Registry


def _metadata(auc: float) -> dict:
    return {
        "title": "Logistic regression",
        "window": 3,
        "metrics": {"test": {"roc_auc": auc}, "cv": {"roc_auc": {"mean": auc, "std": 0.01}}},
    }


def _save(registry: Registry, model: str = "logreg", auc: float = 0.6) -> str:
    with registry.staging() as staging:
        return staging.save("classification", model, LogisticRegression(), _metadata(auc), {"roc": {}})


def test_a_committed_run_holds_pipeline_metadata_and_curves(tmp_path):
    registry = Registry(tmp_path)
    run_id = _save(registry)
    run = registry.latest("classification", "logreg")
    assert run.run_id == run_id
    assert {p.name for p in run.path.iterdir()} == {MODEL_FILE, METADATA_FILE, "curves.json"}
    loaded = registry.load(run)
    assert isinstance(loaded.pipeline, LogisticRegression)
    assert loaded.metadata["run_id"] == run_id and loaded.metadata["job_id"]
    assert registry.curves(run) == {"roc": {}}


def test_runs_are_invisible_until_the_job_commits(tmp_path):
    registry = Registry(tmp_path)
    with registry.staging() as staging:
        staging.save("classification", "logreg", LogisticRegression(), _metadata(0.6))
        assert registry.runs() == []  # staged, not visible
    assert len(registry.runs()) == 1


def test_an_exception_mid_job_leaves_no_run_and_no_staging(tmp_path):
    registry = Registry(tmp_path)
    first = _save(registry)
    with pytest.raises(RuntimeError), registry.staging() as staging:
        staging.save("classification", "logreg", LogisticRegression(), _metadata(0.9))
        raise RuntimeError("crash mid-job")
    assert [r.run_id for r in registry.runs()] == [first]
    assert not any((tmp_path / STAGING_DIR).iterdir())


def test_a_killed_job_leaves_no_visible_run(tmp_path):
    """A process killed mid-write (os._exit, no cleanup) leaves only a staging folder, which is ignored."""
    registry = Registry(tmp_path)
    first = _save(registry)
    script = textwrap.dedent(
        f"""
        import os
        from sklearn.linear_model import LogisticRegression
        from ml.serving.registry import Registry
        registry = Registry({str(tmp_path)!r})
        with registry.staging() as staging:
            staging.save("classification", "logreg", LogisticRegression(), {{"window": 3}})
            os._exit(9)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=os.getcwd(), check=False)
    assert result.returncode == 9
    assert any((tmp_path / STAGING_DIR).iterdir())  # the dead job's leftovers
    assert [r.run_id for r in registry.runs()] == [first]
    assert registry.latest("classification", "logreg").run_id == first
    registry.clean_stale_staging(max_age_seconds=0)
    assert not any((tmp_path / STAGING_DIR).iterdir())


def test_the_newest_run_wins_and_champion_uses_cv_score(tmp_path):
    registry = Registry(tmp_path)
    _save(registry, "logreg", auc=0.70)
    newest = _save(registry, "logreg", auc=0.55)
    forest = _save(registry, "forest", auc=0.60)
    assert registry.latest("classification", "logreg").run_id == newest
    assert {r.run_id for r in registry.latest_per_model("classification")} == {newest, forest}
    assert registry.champion("classification").run_id == forest  # newest logreg (0.55) < forest (0.60)
    assert len(registry.runs("classification")) == 3  # history kept


def test_no_model_gives_a_clear_error(tmp_path):
    with pytest.raises(NoModelError, match="python -m ml train"):
        Registry(tmp_path).champion("classification")


def test_corrupt_model_file_names_the_artifact(tmp_path):
    registry = Registry(tmp_path)
    _save(registry)
    run = registry.latest("classification", "logreg")
    (run.path / MODEL_FILE).write_bytes(b"not a joblib file")
    with pytest.raises(ArtifactError) as excinfo:
        registry.load(run)
    assert excinfo.value.path == str(run.path / MODEL_FILE)  # the full path, for the log
    assert f"classification/logreg/{run.run_id}/{MODEL_FILE}" in str(excinfo.value)
    assert str(tmp_path) not in str(excinfo.value)  # what users see names no server folder
    assert "cannot be loaded" in str(excinfo.value)


def test_missing_model_file_names_the_artifact(tmp_path):
    registry = Registry(tmp_path)
    _save(registry)
    run = registry.latest("classification", "logreg")
    (run.path / MODEL_FILE).unlink()
    with pytest.raises(ArtifactError, match="missing"):
        registry.load(run)


def test_corrupt_metadata_is_listed_with_its_error_and_refused_on_load(tmp_path):
    registry = Registry(tmp_path)
    _save(registry)
    run = registry.latest("classification", "logreg")
    (run.path / METADATA_FILE).write_text("{ truncated", encoding="utf-8")
    listed = registry.latest("classification", "logreg")
    assert listed.metadata is None and "unreadable" in listed.error
    with pytest.raises(ArtifactError, match=re.escape(METADATA_FILE)):
        registry.load(listed)
    with pytest.raises(NoModelError):
        registry.champion("classification")


def test_missing_curve_file_names_the_artifact(tmp_path):
    registry = Registry(tmp_path)
    _save(registry)
    run = registry.latest("classification", "logreg")
    (run.path / "curves.json").unlink()
    with pytest.raises(ArtifactError, match=r"curves\.json"):
        registry.curves(run)


def test_metadata_is_plain_json(tmp_path):
    registry = Registry(tmp_path)
    _save(registry)
    run = registry.latest("classification", "logreg")
    assert json.loads((run.path / METADATA_FILE).read_text())["title"] == "Logistic regression"


def test_a_second_training_job_is_refused_while_one_runs(tmp_path):
    assert running_job(tmp_path) is None
    with training_lock(tmp_path, "first job"):
        assert running_job(tmp_path)["description"] == "first job"
        with pytest.raises(TrainingBusy, match="already running"), training_lock(tmp_path, "second job"):
            pass
    assert running_job(tmp_path) is None


def test_the_lock_is_released_when_the_holding_process_dies(tmp_path):
    script = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from ml.serving.locking import training_lock
        with training_lock(Path({str(tmp_path)!r}), "doomed job"):
            os._exit(9)
        """
    )
    subprocess.run([sys.executable, "-c", script], cwd=os.getcwd(), check=False)
    assert running_job(tmp_path) is None
    with training_lock(tmp_path, "next job"):
        pass
