"""Whole-session features: what each session did over the whole visit, for KPIs, EDA and segments.

Everything is vectorised over sorted click arrays (see ``ml.data.clicks``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.data import schema as S
from ml.data.clicks import IndexedClicks, code_counts, dominant_code, index_clicks
from ml.features.labels import TARGET_BASKET, TARGET_CONVERTED, LabelDefinition, SessionTargets, session_targets

# Whole-session features the segmentation uses (no label columns).
SEGMENT_FEATURES: tuple[str, ...] = (
    "n_clicks",
    "n_products",
    "n_categories",
    "n_colours",
    "price_mean",
    "premium_share",
    "sale_share",
    "profile_share",
    "top_row_share",
    "max_page",
)


# ---------------------------------------------------------------- whole session
def _share(indexed: IndexedClicks, mask: np.ndarray) -> np.ndarray:
    return indexed.per_session_sum(mask.astype(np.float64)) / indexed.lengths


def session_features(
    data: pd.DataFrame | IndexedClicks,
    definition: LabelDefinition | None = None,
) -> pd.DataFrame:
    """One row per session: behaviour over the whole visit plus its targets."""
    indexed = data if isinstance(data, IndexedClicks) else index_clicks(data)
    targets = session_targets(indexed, definition)
    return _session_table(indexed, targets)


def _session_table(indexed: IndexedClicks, targets: SessionTargets) -> pd.DataFrame:
    n = indexed.lengths
    if not len(n):
        return pd.DataFrame(index=indexed.session_ids)
    category = indexed.column(S.CATEGORY)
    colour = indexed.column(S.COLOUR)
    price = indexed.column(S.PRICE)
    page = indexed.column(S.PAGE)
    category_counts = code_counts(indexed, category, 4)[:, 1:]
    colour_counts = code_counts(indexed, colour, 14)[:, 1:]
    n_reviews = indexed.per_session_sum(indexed.is_review.astype(np.int64))
    date = indexed.first(S.DATE)
    table = pd.DataFrame(
        {
            "date": date,
            "country": indexed.first(S.COUNTRY),
            "month": indexed.first(S.MONTH),
            "day_of_week": pd.DatetimeIndex(date).day_of_week.to_numpy().astype(np.int8),
            "n_clicks": n,
            "n_products": n - n_reviews,
            "n_reviews": n_reviews,
            "n_categories": (category_counts > 0).sum(axis=1),
            "n_colours": (colour_counts > 0).sum(axis=1),
            "main_category": dominant_code(indexed, category, 4).astype(np.int8),
            "main_colour": dominant_code(indexed, colour, 14).astype(np.int8),
            "price_mean": indexed.per_session_sum(price) / n,
            "price_min": np.minimum.reduceat(price, indexed.starts),
            "price_max": np.maximum.reduceat(price, indexed.starts),
            "premium_share": _share(indexed, indexed.column(S.PRICE_2) == S.PREMIUM_PRICE_2),
            "sale_share": category_counts[:, S.SALE_CATEGORY - 1] / n,
            "trousers_share": category_counts[:, 0] / n,
            "skirts_share": category_counts[:, 1] / n,
            "blouses_share": category_counts[:, 2] / n,
            "profile_share": _share(indexed, indexed.column(S.PHOTOGRAPHY) == S.PROFILE_PHOTOGRAPHY),
            "top_row_share": _share(indexed, np.isin(indexed.column(S.LOCATION), S.TOP_ROW_LOCATIONS)),
            "max_page": np.maximum.reduceat(page, indexed.starts),
            "mean_page": indexed.per_session_sum(page.astype(np.float64)) / n,
            TARGET_CONVERTED: targets.converted,
            TARGET_BASKET: targets.basket_value,
        },
        index=indexed.session_ids,
    )
    return table
