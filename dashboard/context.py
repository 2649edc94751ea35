"""What every tab's callbacks share: settings, the datasets, their model registries, the background manager.

Built once by the app factory and passed to each tab's ``register_callbacks``.
Callbacks name the dataset they work on (the app-level dataset store holds its
key) and read it from here; nothing reloads data per request. The app context
owns one registry cache per dataset (``registry_for``: run metadata, curve data
and loaded pipelines, ``ml.serving.registry_cache``), shared by every tab.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ml.config import BUNDLED_DATASET_KEY, Settings
from ml.features.prepared import PreparedData
from ml.serving.datasets import DatasetStore
from ml.serving.registry_cache import RegistryCache


@dataclass
class AppContext:
    settings: Settings
    datasets: DatasetStore
    background_manager: object | None = None
    _registries: dict[str, RegistryCache] = field(default_factory=dict, repr=False)

    def known(self, key: object) -> str:
        """A dataset key that exists: ``key`` itself, or the bundled dataset's for a missing or unknown one."""
        return key if isinstance(key, str) and self.datasets.exists(key) else BUNDLED_DATASET_KEY

    def dataset(self, key: object = BUNDLED_DATASET_KEY) -> PreparedData:
        """A dataset's prepared tables (the bundled dataset for a missing or unknown key)."""
        return self.datasets.prepared(self.known(key))

    def registry_for(self, key: object = BUNDLED_DATASET_KEY) -> RegistryCache:
        """A dataset's model registry, cached (one per dataset, owned here; the bundled one for an unknown key)."""
        key = self.known(key)
        if key not in self._registries:
            self._registries[key] = RegistryCache.of(self.datasets.registry(key))
        return self._registries[key]

    def forget(self, key: str) -> None:
        """Drop what is cached for a deleted dataset (its loaded models), so a new one with its key starts clean."""
        self._registries.pop(key, None)
