"""What the Products tab shows, computed once per dataset and kept: the product table, the recommender, paths.

The product table is built on the first visit and kept on the dataset
(``PreparedData.once``). The recommender and its evaluation come from the
dataset's registry (``ml.serving.recommendations``): fitted and evaluated
once per dataset and data version, saved on disk, and kept in memory after
the first read. Paths depend on the shell filters and the chosen dimension, so
the most recent settings are kept in a small per-dataset cache.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dashboard.context import AppContext
from ml.data import schema as S
from ml.features.kpis import SessionFilter
from ml.features.layout import dimension_columns
from ml.features.paths import SessionPaths, session_paths
from ml.features.prepared import PreparedData
from ml.features.products import product_table
from ml.serving.recommendations import SavedRecommender, labelled_products, recommender_for

PATHS_CACHE_SIZE = 32  # path settings kept per dataset
VIEWS_CACHE_SIZE = 256  # finished views (a product's detail, a Sankey) kept per dataset
MAX_GRID_ROWS = 5000  # most viewed products sent to the browser
DIMENSION_TITLES = {
    S.CATEGORY: "Category",
    S.PAGE: "Catalogue page",
    S.COUNTRY: "Country",
    S.COLOUR: "Colour",
    S.LOCATION: "Photo location",
    S.PHOTOGRAPHY: "Model photography",
    S.PRICE_2: "Price band",
}


def dimension_title(column: str) -> str:
    return DIMENSION_TITLES.get(column) or column.replace("_", " ").capitalize()


class _Lru:
    """A small thread-safe least-recently-used cache."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[object, object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: object, build: Callable[[], object]) -> object:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = build()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value


def cached_view(data: PreparedData, key: object, build: Callable[[], object]) -> object:
    """A finished view (components, figures) kept per dataset, so a repeated click costs a lookup."""
    return data.once("products_views", lambda _: _Lru(VIEWS_CACHE_SIZE)).get(key, build)


# ---------------------------------------------------------------- per-dataset tables
def products(data: PreparedData) -> pd.DataFrame:
    """The product table with its codes as labels (see ``ml.features.products.product_table``)."""
    return data.once("products_table", lambda d: labelled_products(product_table(d.clicks), d.codebooks))


def recommender(context: AppContext, key: str) -> SavedRecommender:
    """The dataset's recommender and evaluation: from its registry, fitted and saved there on first use."""
    data = context.dataset(key)
    registry = context.registry_for(key)
    return data.once(
        "products_recommender",
        lambda d: recommender_for(registry, d.clicks, data_hash=d.loaded.data_hash, source=d.loaded.source),
    )


def attribute_columns(data: PreparedData) -> list[str]:
    """The product table's attribute columns: category and the profile's dimensions present in it."""
    table = products(data)
    return [c for c in (S.CATEGORY, *dimension_columns(data.clicks)) if c in table]


def rate_columns(data: PreparedData) -> list[str]:
    """Re-view rate (views only) or cart and purchase rates (with carts or purchases)."""
    return [c for c in ("review_rate", "cart_rate", "purchase_rate") if c in products(data)]


# ---------------------------------------------------------------- paths
@dataclass(frozen=True)
class PathSetting:
    dimension: str
    steps: int
    min_share: float


def path_dimensions(data: PreparedData) -> list[str]:
    """What paths can run between: the category, the catalogue page, then the profile's other dimensions."""
    clicks = data.clicks
    found = [c for c in (S.CATEGORY, S.PAGE) if c in clicks]
    return found + [c for c in dimension_columns(clicks) if c not in found]


def filtered_events(data: PreparedData, filt: SessionFilter) -> pd.DataFrame:
    """The events of the sessions the shell filter keeps (all events for an empty filter)."""
    if filt == SessionFilter():
        return data.clicks
    sessions = data.sessions
    kept = sessions.index.to_numpy()[filt.mask(sessions)]
    return data.clicks[np.isin(data.clicks[S.SESSION_ID].to_numpy(), kept)]


def _no_paths(setting: PathSetting) -> SessionPaths:
    """What a filter that keeps no session gives: no nodes, no links."""
    return SessionPaths(
        nodes=pd.DataFrame(columns=["node", "step", "code", "label", "sessions"]),
        links=pd.DataFrame(columns=["source", "target", "step", "sessions", "share"]),
        purchase_paths=None,
        dimension=setting.dimension,
        steps=setting.steps,
        sessions=0,
    )


def paths_for(data: PreparedData, filt: SessionFilter, setting: PathSetting) -> SessionPaths:
    """Sankey nodes and links for a filter and a setting (kept for the most recent settings)."""
    cache = data.once("products_paths", lambda _: _Lru(PATHS_CACHE_SIZE))
    names = data.codebooks.get(setting.dimension)

    def build() -> SessionPaths:
        events = filtered_events(data, filt)
        if events.empty:
            return _no_paths(setting)
        return session_paths(
            events,
            dimension=setting.dimension,
            steps=setting.steps,
            min_share=setting.min_share,
            names=dict(names) if names else None,
        )

    return cache.get((filt, setting), build)
