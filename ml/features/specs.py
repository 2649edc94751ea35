"""What a model input is: the one spec type shared by every feature module.

It lives in a module of its own so that feature modules (``window``,
``transitions``) can all describe their columns without importing each other;
``ml.features.window`` re-exports it, so ``from ml.features.window import
FeatureSpec`` keeps working.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class FeatureSpec:
    """What a model input is, for pipelines and for generating what-if controls.

    ``codebook`` names the codebook that decodes a categorical feature's codes:
    a column's (``category``, ``country``, ``brand``, ...) or ``day_of_week``.
    """

    name: str
    kind: str  # "numeric" or "categorical"
    label: str
    codebook: str | None = None
    integer: bool = False

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "kind": self.kind,
            "label": self.label,
            "codebook": self.codebook,
            "integer": self.integer,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> FeatureSpec:
        return cls(
            name=str(data["name"]),
            kind=str(data["kind"]),
            label=str(data.get("label", data["name"])),
            codebook=data.get("codebook"),  # type: ignore[arg-type]
            integer=bool(data.get("integer", False)),
        )
