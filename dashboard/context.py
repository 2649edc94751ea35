"""What every tab's callbacks share: settings, the prepared data, the model registry.

Built once by the app factory and passed to each tab's ``register_callbacks``;
callbacks read from it and never reload the data per request.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dashboard.model_cache import ModelCache
from ml.config import Settings
from ml.features.prepared import PreparedData
from ml.serving.registry import Registry


@dataclass
class AppContext:
    settings: Settings
    data: PreparedData
    registry: Registry
    background_manager: object | None = None
    models: ModelCache = field(init=False)

    def __post_init__(self) -> None:
        self.models = ModelCache(self.registry)
