"""Whole-session features: what each session did over the whole visit, for KPIs, EDA and segments.

The UCI file keeps its own session table (pinned on the bundled data); any
event log gets counts by event type, products, categories, prices, duration
and each dimension's main value. Every table also has the columns the KPIs
need (views, carts, purchases, orders) and the session's targets. Everything
is vectorised over sorted event arrays (see ``ml.data.clicks``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.data import schema as S
from ml.data.clicks import (
    IndexedClicks,
    code_counts,
    distinct_per_session,
    dominant_code,
    dominant_code_sparse,
    index_clicks,
)
from ml.features.labels import TARGET_BASKET, TARGET_CONVERTED, LabelDefinition, SessionTargets, session_targets
from ml.features.layout import FAMILY_UCI, FeatureLayout, layout_of

# Whole-session features the segmentation uses on the UCI file (no label columns).
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
# ... and on any other event log, where its columns exist.
EVENT_SEGMENT_FEATURES: tuple[str, ...] = (
    "n_clicks",
    "n_products",
    "n_categories",
    "n_carts",
    "price_mean",
    "duration_s",
)


def segment_feature_names(sessions: pd.DataFrame) -> tuple[str, ...]:
    """The clustering inputs a session table has (the UCI set on the UCI file)."""
    if set(SEGMENT_FEATURES) <= set(sessions.columns):
        return SEGMENT_FEATURES
    return tuple(c for c in EVENT_SEGMENT_FEATURES if c in sessions.columns)


def main_column(dimension: str) -> str:
    """The session-table column holding a dimension's main (most frequent) value."""
    return f"main_{dimension}"


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
    layout = layout_of(indexed.clicks)
    if not indexed.n_sessions:
        return pd.DataFrame(index=indexed.session_ids)
    table = _uci_table(indexed, targets) if layout.family == FAMILY_UCI else _event_table(indexed, targets, layout)
    return table.assign(**_event_counts(indexed, targets))


def _event_counts(indexed: IndexedClicks, targets: SessionTargets) -> dict[str, np.ndarray]:
    """Per-session counts by event type and orders, for the KPIs and the funnel."""
    counts = {
        name: indexed.per_session_sum((indexed.event == code).astype(np.int64))
        for name, code in (("n_views", S.EVENT_VIEW), ("n_carts", S.EVENT_CART), ("n_purchases", S.EVENT_PURCHASE))
    }
    clicks = indexed.clicks
    if S.TRANSACTION in clicks:
        bought = indexed.event == S.EVENT_PURCHASE
        transactions = clicks[S.TRANSACTION]
        has_id = bought & transactions.notna().to_numpy()
        codes = pd.factorize(transactions.where(pd.Series(has_id)))[0]
        pairs = pd.DataFrame({"s": indexed.session[has_id], "t": codes[has_id]}).drop_duplicates()
        orders = np.bincount(pairs["s"].to_numpy(), minlength=indexed.n_sessions)
        # A purchasing session without any transaction ID still placed one order.
        orders = np.where((orders == 0) & (counts["n_purchases"] > 0), 1, orders)
    else:
        orders = (counts["n_purchases"] > 0).astype(np.int64)
    if not (indexed.event == S.EVENT_PURCHASE).any():
        orders = targets.converted.astype(np.int64)  # proxy or label column: a converting session is one order
    return {**counts, "n_orders": orders}


def _event_table(indexed: IndexedClicks, targets: SessionTargets, layout: FeatureLayout) -> pd.DataFrame:
    """The session table of any event log."""
    n = indexed.lengths
    date = indexed.first(S.DATE)
    category = indexed.column(S.CATEGORY)
    columns: dict[str, np.ndarray] = {
        "date": date,
        "month": pd.DatetimeIndex(date).month.to_numpy().astype(np.int8),
        "day_of_week": pd.DatetimeIndex(date).day_of_week.to_numpy().astype(np.int8),
    }
    if layout.has_time:
        stamps = indexed.column(S.TIMESTAMP).astype("datetime64[ms]").astype(np.int64)
        columns["hour"] = ((stamps[indexed.starts] // 3_600_000) % 24).astype(np.int8)
        last = indexed.starts + n - 1
        columns["duration_s"] = (stamps[last] - stamps[indexed.starts]) / 1000.0
    n_reviews = indexed.per_session_sum(indexed.is_review.astype(np.int64))
    columns |= {
        "n_clicks": n,
        "n_products": distinct_per_session(indexed, indexed.product_code),
        "n_reviews": n_reviews,
        "n_categories": distinct_per_session(indexed, category),
        "main_category": dominant_code_sparse(indexed, category).astype(np.int32),
    }
    if layout.has_price:
        price = indexed.column(S.PRICE)
        known = ~np.isnan(price)
        n_known = indexed.per_session_sum(known.astype(np.int64))
        with np.errstate(invalid="ignore", divide="ignore"):
            columns["price_mean"] = np.where(
                n_known > 0, indexed.per_session_sum(np.nan_to_num(price)) / np.maximum(n_known, 1), 0.0
            )
        columns["price_min"] = np.nan_to_num(np.fmin.reduceat(price, indexed.starts))
        columns["price_max"] = np.nan_to_num(np.fmax.reduceat(price, indexed.starts))
    for dimension in layout.dimensions:
        columns[main_column(dimension)] = dominant_code_sparse(indexed, indexed.column(dimension)).astype(np.int32)
    columns[TARGET_CONVERTED] = targets.converted
    columns[TARGET_BASKET] = targets.basket_value
    return pd.DataFrame(columns, index=indexed.session_ids)


def _uci_table(indexed: IndexedClicks, targets: SessionTargets) -> pd.DataFrame:
    """The UCI file's session table, exactly as before the event-log rewrite (pinned by a test)."""
    n = indexed.lengths
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
