"""Dashboard fixtures: a prepared bundled dataset, a context and a whole app, built once."""

from __future__ import annotations

import pytest

from dashboard.app_factory import create_app
from dashboard.context import AppContext
from ml.config import BUNDLED_DATASET_KEY, get_settings
from ml.features.prepared import PreparedData, prepare
from ml.serving.datasets import DatasetStore


@pytest.fixture(scope="session")
def prepared(bundled) -> PreparedData:
    return prepare(bundled, display_name="bundled")


@pytest.fixture(scope="session")
def dash_settings(tmp_path_factory):
    root = tmp_path_factory.mktemp("dash")
    return get_settings().with_overrides(
        models_dir=root / "models",
        cache_dir=root / "cache",
        users_file=root / "users.json",  # none: the app runs without login, as on a laptop
        secret_key_file=root / "secret_key",
        datasets_dir=root / "datasets",
        profiles_dir=root / "profiles",
    )


@pytest.fixture(scope="session")
def context(prepared, dash_settings) -> AppContext:
    datasets = DatasetStore.for_settings(dash_settings)
    datasets.remember(BUNDLED_DATASET_KEY, prepared)
    return AppContext(settings=dash_settings, datasets=datasets)


@pytest.fixture(scope="session")
def app(prepared, dash_settings):
    return create_app(dash_settings, prepared)
