"""Dashboard fixtures: a prepared bundled dataset, a context and a whole app, built once."""

from __future__ import annotations

import pytest

from dashboard.app_factory import create_app
from dashboard.context import AppContext
from ml.config import get_settings
from ml.features.prepared import PreparedData, prepare
from ml.serving.registry import Registry


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
    )


@pytest.fixture(scope="session")
def context(prepared, dash_settings) -> AppContext:
    return AppContext(settings=dash_settings, data=prepared, registry=Registry(dash_settings.models_dir))


@pytest.fixture(scope="session")
def app(prepared, dash_settings):
    return create_app(dash_settings, prepared)
