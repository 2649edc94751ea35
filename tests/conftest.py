"""Shared fixtures: the bundled data once per session, and small samples of it for fast tests."""

from __future__ import annotations

import gzip

import pandas as pd
import pytest

from ml.config import BUNDLED_DATA_FILE, BUNDLED_DATASET_KEY
from ml.data import schema as S
from ml.data.loading import LoadedEvents, load_events

SMALL_SESSIONS = 2500  # enough for grouped 5-fold CV on the window population, fast to train


@pytest.fixture(scope="session")
def bundled() -> LoadedEvents:
    return load_events(BUNDLED_DATA_FILE)


@pytest.fixture(scope="session")
def bundled_clicks(bundled: LoadedEvents) -> pd.DataFrame:
    return bundled.clicks


@pytest.fixture(scope="session")
def small_clicks(bundled_clicks: pd.DataFrame) -> pd.DataFrame:
    """The first sessions of the bundled data (about 17,000 clicks)."""
    ids = bundled_clicks[S.SESSION_ID]
    return bundled_clicks[ids <= SMALL_SESSIONS].reset_index(drop=True)


@pytest.fixture(scope="session")
def uci_text() -> str:
    """The original UCI file's text: ';'-delimited, CRLF, original headers."""
    return gzip.decompress(BUNDLED_DATA_FILE.read_bytes()).decode("utf-8")


@pytest.fixture(scope="session")
def uci_head_bytes(uci_text: str) -> bytes:
    """The header and first 400 clicks of the original UCI file, bytes as published."""
    lines = uci_text.split("\r\n")
    return ("\r\n".join(lines[:401]) + "\r\n").encode("utf-8")


FIXTURE_MODELS = ("logreg", "xgboost", "regression:linear", "kmeans", "dbscan")


@pytest.fixture(scope="session")
def trained_registry(tmp_path_factory: pytest.TempPathFactory, small_clicks: pd.DataFrame):
    """A registry with quick runs of a few models trained on the small sample (shared, read-only)."""
    from ml.serving.registry import ModelStore
    from ml.serving.training import TrainConfig, train

    registry = ModelStore(tmp_path_factory.mktemp("models")).registry(BUNDLED_DATASET_KEY)
    config = TrainConfig(quick=True, models=FIXTURE_MODELS)
    result = train(small_clicks, registry, config, source="small sample", data_hash="small")
    failed = [s for s in result.statuses if s["state"] != "done"]
    assert not failed, failed
    return registry
