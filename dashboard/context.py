"""What every tab's callbacks share: settings, the datasets, their model registries, the background manager.

Built once by the app factory and passed to each tab's ``register_callbacks``.
Callbacks name the dataset they work on (the app-level dataset store holds its
key) and read it from here; nothing reloads data per request. The app context
owns the one cache of loaded model runs (``models``), shared by every tab.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dashboard.model_cache import ModelCache
from ml.config import BUNDLED_DATASET_KEY, Settings
from ml.features.prepared import PreparedData
from ml.serving.datasets import DatasetStore
from ml.serving.registry import Registry


@dataclass
class AppContext:
    settings: Settings
    datasets: DatasetStore
    background_manager: object | None = None
    _model_caches: dict[str, ModelCache] = field(default_factory=dict, repr=False)

    def known(self, key: object) -> str:
        """A dataset key that exists: ``key`` itself, or the bundled dataset's for a missing or unknown one."""
        return key if isinstance(key, str) and self.datasets.exists(key) else BUNDLED_DATASET_KEY

    def dataset(self, key: object = BUNDLED_DATASET_KEY) -> PreparedData:
        """A dataset's prepared tables (the bundled dataset for a missing or unknown key)."""
        return self.datasets.prepared(self.known(key))

    def registry_for(self, key: object = BUNDLED_DATASET_KEY) -> Registry:
        """A dataset's model registry."""
        return self.datasets.registry(self.known(key))

    def models_for(self, key: object = BUNDLED_DATASET_KEY) -> ModelCache:
        """The loaded-model cache of a dataset's registry (one per dataset, owned here)."""
        key = self.known(key)
        if key not in self._model_caches:
            self._model_caches[key] = ModelCache(self.registry_for(key))
        return self._model_caches[key]

    def forget(self, key: str) -> None:
        """Drop what is cached for a deleted dataset (its loaded models), so a new one with its key starts clean."""
        self._model_caches.pop(key, None)
