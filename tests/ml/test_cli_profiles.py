"""The command line on shops' event logs: ``python -m ml summary | train | score`` in a subprocess, as users run it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from ml.config import BUNDLED_DATA_FILE
from ml.data.loading import load_events
from ml.data.synthetic_logs import multi_category_store_log, visitor_log
from ml.serving.scoring import SCORE_COLUMNS
from tests.ml.event_logs import MULTI_COLUMNS, csv_text, multi_rows
from tests.ml.factories import lowercase_form
from tests.ml.test_cli import run_cli

BAD_ROWS = multi_rows(
    {"event_time": "2019-10-31 23:00:00 UTC", "price": "-4", "user_session": "bad-1"},
    {"event_time": "2019-10-31 23:01:00 UTC", "product_id": "", "user_session": "bad-1"},
)


def ml(models_dir: Path, *args: str):
    """``python -m ml --models-dir DIR ARGS``."""
    return run_cli("--models-dir", str(models_dir), *args, models_dir=models_dir)


@pytest.fixture(scope="module")
def files(tmp_path_factory, small_clicks) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("logs")
    shop = folder / "shop.csv"
    text = multi_category_store_log(6000, seed=1).to_csv(index=False)
    shop.write_text(text + csv_text(BAD_ROWS, MULTI_COLUMNS).split("\n", 1)[1])  # two invalid rows at the end
    paths = {"shop": shop, "next_month": folder / "next_month.csv", "visitors": folder / "visitors.csv"}
    multi_category_store_log(2500, seed=2).to_csv(paths["next_month"], index=False)
    visitor_log(2500, seed=3).to_csv(paths["visitors"], index=False)
    paths["uci"] = folder / "uci.csv"
    lowercase_form(small_clicks[small_clicks["session_id"] <= 300]).to_csv(paths["uci"], index=False)
    return paths


@pytest.fixture(scope="module")
def trained(tmp_path_factory, files) -> Path:
    """Models trained on the shop's log, with its two invalid rows skipped."""
    models = tmp_path_factory.mktemp("models")
    args = ("train", "--data", str(files["shop"]), "--skip-invalid-rows", "--quick", "--models", "logreg,kmeans")
    result = ml(models, *args)
    assert result.returncode == 0, result.stderr
    return models


def _metadata(models: Path, task: str, model: str) -> dict:
    [path] = (models / "shop" / task / model).glob("*/metadata.json")
    return json.loads(path.read_text(encoding="utf-8"))


# ----------------------------------------------------------------- summary
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "shop",
            [
                "Multi-category store event log (multi_category_store)",
                "Conversion (purchases)",
                "brand:",
                "(2 invalid rows skipped)",
                "negative price",
                "missing product ID",
            ],
        ),
        ("visitors", ["Visitor event log (visitor_log)", "Conversion (purchases)", "not in the data (no price"]),
        ("uci", ["UCI 553 e-shop clothing clickstream (uci553)", "Conversion (proxy)", "country:"]),
    ],
)
def test_summary_of_each_profile(tmp_path: Path, files, name: str, expected: list[str]):
    result = ml(tmp_path, "summary", str(files[name]), "--skip-invalid-rows")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for label in ("profile", "events", "sessions", "converting", "revenue", "dates", "label"):
        assert any(line.startswith(label) for line in out.splitlines()), f"no '{label}' line in:\n{out}"
    for text in expected:
        assert text in out
    loaded = load_events(files[name], skip_invalid_rows=True)
    assert f"{loaded.n_sessions:,} (" in out
    counts = loaded.event_counts()
    assert f"{counts['view']:,} view, {counts['cart']:,} cart, {counts['purchase']:,} purchase" in out
    if name != "visitors":
        assert "dimensions" in out


def test_a_bad_file_exits_2_with_the_report(tmp_path: Path, files):
    result = ml(tmp_path, "summary", str(files["shop"]))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "'shop.csv' cannot be used: 2 problems found" in result.stderr
    assert "column 'price': negative price" in result.stderr
    assert "column 'product_id': missing product ID" in result.stderr


def test_an_unknown_export_exits_2_pointing_to_profile_files(tmp_path: Path):
    path = tmp_path / "export.csv"
    path.write_text("when,who,sku\n2020-01-01,a,1\n")
    result = ml(tmp_path, "summary", str(path))
    assert result.returncode == 2
    assert "--profile FILE" in result.stderr and "docs/PROFILES.md" in result.stderr


def test_a_bad_profile_file_exits_2_naming_the_key(tmp_path: Path, files):
    profile = tmp_path / "bad.toml"
    profile.write_text(
        '[columns]\nproduct_id = "itemid"\ntimestamp = "timestamp"\nuser_id = "visitorid"\n[timestamp]\nformat = "ms"\n'
    )
    result = ml(tmp_path, "summary", str(files["visitors"]), "--profile", str(profile))
    assert result.returncode == 2
    assert "timestamp.format" in result.stderr and "Traceback" not in result.stderr


def test_the_session_gap_option_cuts_visitor_sessions(tmp_path: Path, files):
    def sessions(*extra: str) -> int:
        result = ml(tmp_path, "summary", str(files["visitors"]), *extra)
        assert result.returncode == 0, result.stderr
        line = next(line for line in result.stdout.splitlines() if line.startswith("sessions"))
        return int(line.split()[1].replace(",", ""))

    assert sessions("--session-gap", "0.1") > sessions() == 2500 // 6
    bad = ml(tmp_path, "summary", str(files["visitors"]), "--session-gap", "0")
    assert bad.returncode == 2 and "--session-gap" in bad.stderr


# ----------------------------------------------------------------- train and score
def test_train_records_label_profile_hash_codebooks_and_skipped_rows(trained: Path, files):
    meta = _metadata(trained, "classification", "logreg")
    assert meta["label"]["name"] == "purchases"
    assert meta["label"]["source"] == "purchases"
    dataset = meta["dataset"]
    assert dataset["profile"] == "multi_category_store"
    assert dataset["key"] == "shop"
    assert dataset["skipped_rows"] == 2
    assert dataset["hash"] == hashlib.sha256(files["shop"].read_bytes()).hexdigest()
    assert meta["codebooks"]["brand"]["0"] == "(none)"
    assert set(meta["codebooks"]["brand"].values()) >= {"samsung", "apple"}
    assert "electronics.smartphone" in meta["codebooks"]["category"].values()
    assert meta["feature_layout"]["dimensions"] == ["brand"]
    assert _metadata(trained, "clustering", "kmeans")["dataset"]["skipped_rows"] == 2


def test_train_refuses_the_invalid_rows_without_the_option(tmp_path: Path, files):
    result = ml(tmp_path, "train", "--data", str(files["shop"]), "--quick", "--models", "logreg")
    assert result.returncode == 2
    assert "negative price" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "shop").exists()


def test_score_a_second_file_of_the_same_profile(trained: Path, files, tmp_path: Path):
    out = tmp_path / "scores.csv"
    result = ml(trained, "score", str(files["next_month"]), "-o", str(out))
    assert result.returncode == 0, result.stderr
    scores = pd.read_csv(out)
    assert tuple(scores.columns) == SCORE_COLUMNS
    assert len(scores) == load_events(files["next_month"]).n_sessions
    assert set(scores["status"]) == {"scored", "too short", "already converted in window"}
    assert scores.loc[scores["status"] == "scored", "p_convert"].between(0, 1).all()
    assert scores["segment"].notna().all()
    assert "of dataset 'shop'" in result.stderr


def test_scoring_the_uci_file_with_only_shop_models_names_the_mismatch(trained: Path, tmp_path: Path):
    out = tmp_path / "scores.csv"
    result = ml(trained, "score", str(BUNDLED_DATA_FILE), "-o", str(out))
    assert result.returncode == 2
    assert "'uci553'" in result.stderr
    assert "'shop' (trained on 'multi_category_store' data)" in result.stderr
    assert "Traceback" not in result.stderr and not out.exists()


def test_scoring_with_another_profiles_dataset_names_both_profiles(trained: Path, files, tmp_path: Path):
    out = tmp_path / "scores.csv"
    result = ml(trained, "score", str(files["visitors"]), "-o", str(out), "--dataset", "shop")
    assert result.returncode == 2
    assert "'visitor_log'" in result.stderr and "'multi_category_store'" in result.stderr
    assert not out.exists()
