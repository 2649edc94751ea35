"""The app's registry cache: metadata read once per change of the run folders, runs loaded once, new runs seen."""

from __future__ import annotations

import shutil

import pytest

from ml.serving import registry as registry_module
from ml.serving.registry import Registry
from ml.serving.registry_cache import RegistryCache
from ml.serving.training import TrainConfig, train
from ml.tasks import CLASSIFICATION, RECOMMENDATION


@pytest.fixture
def registry(trained_registry, tmp_path) -> Registry:
    shutil.copytree(trained_registry.root, tmp_path / "models")
    return Registry(tmp_path / "models", lock_dir=tmp_path, lock=trained_registry.lock)


def test_metadata_is_read_once_until_a_run_lands_and_then_the_new_run_is_seen(registry, small_clicks, monkeypatch):
    cache = RegistryCache.of(registry)
    assert cache.lock is registry.lock and cache.root == registry.root and RegistryCache.of(cache) is cache
    reads = []
    real = registry_module.Registry._info
    monkeypatch.setattr(registry_module.Registry, "_info", staticmethod(lambda *a: reads.append(a) or real(*a)))
    first = cache.runs()
    assert [r.run_id for r in first] == [r.run_id for r in registry.runs()]
    n = len(reads)
    assert n >= len(first)  # read once...
    cache.runs(CLASSIFICATION)
    cache.champion(CLASSIFICATION)
    assert len(reads) == n  # ...and not again while nothing changed
    version = cache.version()
    train(small_clicks, registry, TrainConfig(quick=True, models=("logreg",)), source="s", data_hash="small")
    assert cache.version() > version  # a landed job changes the version the pages poll
    assert len(cache.runs()) == len(first) + 1 and len(reads) > n


def test_a_run_is_loaded_once_and_the_champion_comes_loaded(registry, monkeypatch):
    cache = RegistryCache.of(registry)
    champion = cache.loaded_champion(CLASSIFICATION)
    assert champion is not None and champion.info.run_id == cache.champion_id(CLASSIFICATION)
    monkeypatch.setattr(registry_module.joblib, "load", lambda *_: pytest.fail("loaded twice"))
    assert cache.loaded(champion.info.run_id) is champion
    assert cache.loaded_champion(CLASSIFICATION) is champion


def test_without_models_there_is_no_champion_and_an_empty_version(tmp_path):
    cache = RegistryCache(tmp_path / "empty")
    assert cache.loaded_champion(CLASSIFICATION) is None and cache.version() == "" and cache.runs() == []
    assert cache.runs(RECOMMENDATION) == []
