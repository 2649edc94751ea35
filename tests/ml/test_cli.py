"""The command line, run as users run it: ``python -m ml ...`` in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from ml.config import BUNDLED_DATA_FILE, PROJECT_ROOT
from ml.data import schema as S
from ml.serving.scoring import SCORE_COLUMNS
from tests.ml.factories import lowercase_form


def run_cli(
    *args: str, models_dir: Path, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess:
    env = {**os.environ, "CLICKSTREAM_MODELS_DIR": str(models_dir), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "ml", *args],
        cwd=PROJECT_ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def small_file(tmp_path_factory, small_clicks) -> Path:
    """The small sample as a lowercase comma CSV, the form most users have."""
    path = tmp_path_factory.mktemp("data") / "small.csv"
    lowercase_form(small_clicks).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def cli_models(tmp_path_factory, small_file) -> Path:
    models_dir = tmp_path_factory.mktemp("models")
    result = run_cli(
        "train", "--data", str(small_file), "--quick", "--models", "logreg,linear,kmeans", models_dir=models_dir
    )
    assert result.returncode == 0, result.stderr
    return models_dir


def test_train_prints_a_leaderboard_sorted_by_the_primary_metric(cli_models, small_file):
    result = run_cli("train", "--data", str(small_file), "--quick", "--models", "logreg,tree", models_dir=cli_models)
    assert result.returncode == 0, result.stderr
    table = result.stdout.split("classification")[1].split("\n\n")[0]
    rows = [line for line in table.splitlines() if line.startswith(("logreg", "tree"))]
    assert sorted(r.split()[0] for r in rows) == ["logreg", "tree"]
    assert rows[0].split()[1] == "*"  # the best model is marked
    cv_means = [float(r.split("+/-")[0].split()[-1]) for r in rows]
    assert cv_means == sorted(cv_means, reverse=True)
    assert "roc_auc" in result.stdout and "regression" in result.stdout


def test_score_a_small_file_writes_one_row_per_session(cli_models, small_clicks, tmp_path):
    sample = small_clicks[small_clicks[S.SESSION_ID] <= 60]
    assert 300 <= len(sample) <= 600  # "a file of a few hundred clicks"
    source = tmp_path / "few.parquet"
    lowercase_form(sample).to_parquet(source)
    out = tmp_path / "scores.csv"
    result = run_cli("score", str(source), "-o", str(out), models_dir=cli_models)
    assert result.returncode == 0, result.stderr
    scores = pd.read_csv(out)
    assert tuple(scores.columns) == SCORE_COLUMNS
    assert len(scores) == sample[S.SESSION_ID].nunique()
    assert set(scores["status"]) <= {"scored", "too short", "already converted in window"}


def test_score_the_bundled_file(cli_models, tmp_path):
    out = tmp_path / "bundled_scores.csv"
    result = run_cli("score", str(BUNDLED_DATA_FILE), "-o", str(out), models_dir=cli_models)
    assert result.returncode == 0, result.stderr
    scores = pd.read_csv(out)
    assert len(scores) == 24_026
    assert scores["status"].value_counts()["scored"] == 13_990
    assert "24,026 sessions" in result.stderr


def test_evaluate_prints_held_out_metrics(cli_models):
    result = run_cli("evaluate", models_dir=cli_models)
    assert result.returncode == 0, result.stderr
    assert "roc_auc (held-out)" in result.stdout and "logreg" in result.stdout
    assert "r2 (held-out)" in result.stdout and "kmeans" in result.stdout


def test_bad_input_exits_non_zero_with_the_report_and_writes_nothing(cli_models, tmp_path):
    broken = tmp_path / "broken.csv"
    broken.write_text("year,month,day,order,country\n2008,4,31,1,99\n", encoding="utf-8")
    out = tmp_path / "never.csv"
    result = run_cli("score", str(broken), "-o", str(out), models_dir=cli_models)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "missing column" in result.stderr and "session_id" in result.stderr
    assert "country" in result.stderr and "1..47" in result.stderr
    assert not out.exists() and not list(tmp_path.glob(".never.csv*"))


def test_an_existing_output_survives_a_failed_score(cli_models, tmp_path):
    out = tmp_path / "scores.csv"
    out.write_text("previous results\n", encoding="utf-8")
    result = run_cli("score", str(tmp_path / "missing.csv"), "-o", str(out), models_dir=cli_models)
    assert result.returncode == 2 and "file not found" in result.stderr
    assert out.read_text(encoding="utf-8") == "previous results\n"


def test_score_without_models_explains_how_to_train(tmp_path):
    result = run_cli("score", str(BUNDLED_DATA_FILE), "-o", str(tmp_path / "x.csv"), models_dir=tmp_path / "empty")
    assert result.returncode == 1
    assert "python -m ml train" in result.stderr and "Traceback" not in result.stderr


def test_unknown_model_name_is_a_clear_error(tmp_path, small_file):
    result = run_cli("train", "--data", str(small_file), "--models", "boosting", models_dir=tmp_path)
    assert result.returncode == 1 and "unknown model 'boosting'" in result.stderr
