"""``python -m ml recommend``: the lists, the evaluation table, the saved run; and recommendations in scores."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from ml.data import schema as S
from ml.serving.registry import ModelStore
from ml.serving.scoring import SCORE_COLUMNS
from ml.tasks import RECOMMENDATION
from tests.ml.factories import lowercase_form
from tests.ml.test_cli import run_cli


@pytest.fixture(scope="module")
def small_file(tmp_path_factory, small_clicks) -> Path:
    path = tmp_path_factory.mktemp("data") / "small.csv"
    lowercase_form(small_clicks).to_csv(path, index=False)
    return path


def _evaluation_rows(stdout: str) -> dict[str, list[float]]:
    rows = {}
    for line in stdout.splitlines():
        parts = line.split()
        if parts and parts[0] in ("popularity", "co_occurrence", "next_view", "blend"):
            rows[parts[0]] = [float(v) for v in parts[1:]]
    return rows


def test_recommend_prints_both_lists_for_a_product_and_saves_the_run(tmp_path, small_file, small_clicks):
    top = str(small_clicks[S.PRODUCT].value_counts().index[0])
    result = run_cli("recommend", "--data", str(small_file), "--product", top, "--top", "4", models_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"product {top}:" in out and "Viewed next" in out and "Also viewed in the same session" in out
    ranks = re.findall(r"^\s+([1-9])\s+\S+\s+[0-9.]+\s+\d+\s+(next_view|co_occurrence|popularity_fallback)", out, re.M)
    assert [int(r) for r, _ in ranks] == [1, 2, 3, 4] * 2
    assert "hit_rate@10" not in out  # only the lists were asked for
    runs = ModelStore(tmp_path).registry("small").runs(RECOMMENDATION)
    assert len(runs) == 1 and runs[0].metadata["evaluation"]["n_cases"] > 0


def test_recommend_evaluate_prints_the_table_and_reuses_the_saved_run(tmp_path, small_file):
    first = run_cli("recommend", "--data", str(small_file), "--evaluate", models_dir=tmp_path)
    assert first.returncode == 0, first.stderr
    rows = _evaluation_rows(first.stdout)
    assert set(rows) == {"popularity", "co_occurrence", "next_view", "blend"}
    assert rows["popularity"][-1] == 1.0  # hit rate against itself
    assert max(r[0] for r in rows.values()) > rows["popularity"][0]
    assert "cases" in first.stdout and "trained on sessions before" in first.stdout
    second = run_cli("recommend", "--data", str(small_file), "--evaluate", models_dir=tmp_path)
    assert second.stdout == first.stdout
    assert len(ModelStore(tmp_path).registry("small").runs(RECOMMENDATION)) == 1  # loaded, not refitted


def test_recommend_on_the_bundled_split_beats_popularity_twice(tmp_path):
    result = run_cli("recommend", "--cut-date", "2008-08-01", models_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "before 2008-08-01" in result.stdout
    cases = int(re.search(r"tested on ([\d,]+) cases", result.stdout).group(1).replace(",", ""))
    assert cases > 1000
    rows = _evaluation_rows(result.stdout)
    assert max(r[0] for name, r in rows.items() if name != "popularity") >= 2 * rows["popularity"][0]


def test_recommend_refuses_bad_arguments_with_a_message(tmp_path, small_file):
    result = run_cli("recommend", "--data", str(small_file), "--top", "0", models_dir=tmp_path)
    assert result.returncode == 1 and "--top must be at least 1" in result.stderr
    missing = run_cli("recommend", "--data", str(tmp_path / "nope.csv"), models_dir=tmp_path)
    assert missing.returncode != 0 and "Traceback" not in missing.stderr


def test_train_saves_the_recommender_so_scores_carry_recommended_products(tmp_path, small_file, small_clicks):
    trained = run_cli("train", "--data", str(small_file), "--quick", "--models", "logreg", models_dir=tmp_path)
    assert trained.returncode == 0, trained.stderr
    sample = small_clicks[small_clicks[S.SESSION_ID] <= 40]
    source = tmp_path / "few.csv"
    lowercase_form(sample).to_csv(source, index=False)
    out = tmp_path / "scores.csv"
    scored = run_cli("score", str(source), "-o", str(out), "--dataset", "small", models_dir=tmp_path)
    assert scored.returncode == 0, scored.stderr
    scores = pd.read_csv(out)
    assert tuple(scores.columns) == SCORE_COLUMNS
    assert scores["recommended_products"].str.split("; ").str.len().eq(3).all()
