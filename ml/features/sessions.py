"""Whole-session features: what each session did over the whole visit, for KPIs, EDA and segments.

The UCI file keeps its own session table (pinned on the bundled data); any
event log gets counts by event type, products, categories, prices, duration
and each dimension's main value. Every table also has the columns the KPIs
need (views, carts, purchases, orders) and the session's targets. Everything
is vectorised over sorted event arrays (see ``ml.data.clicks``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from ml.data import schema as S
from ml.data.clicks import (
    IndexedClicks,
    code_cells,
    code_counts,
    distinct_and_dominant,
    distinct_per_session,
    dominant_code,
    dominant_code_sparse,
    index_clicks,
)
from ml.data.memory import reusing_freed_memory
from ml.data.threads import run_parallel
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


SLICE_ROWS = 1 << 20  # events per slice of the count matrices: each temporary stays a few MB


# ---------------------------------------------------------------- whole session
def _share(indexed: IndexedClicks, mask: np.ndarray) -> np.ndarray:
    # Counted as integers (exact), then divided: the same floats as summing 1.0s.
    return indexed.per_session_count(mask) / indexed.lengths


def _top_row(location: np.ndarray) -> np.ndarray:
    """``np.isin(location, S.TOP_ROW_LOCATIONS)`` through a lookup table (int8 codes)."""
    if location.dtype != np.int8:
        return np.isin(location, S.TOP_ROW_LOCATIONS)
    table = np.zeros(256, dtype=bool)
    table[np.asarray(S.TOP_ROW_LOCATIONS, dtype=np.int8).view(np.uint8)] = True
    return table[location.view(np.uint8)]


@reusing_freed_memory
def session_features(
    data: pd.DataFrame | IndexedClicks,
    definition: LabelDefinition | None = None,
) -> pd.DataFrame:
    """One row per session: behaviour over the whole visit plus its targets."""
    indexed = data if isinstance(data, IndexedClicks) else index_clicks(data)
    layout = layout_of(indexed.source)
    if not indexed.n_sessions:
        session_targets(indexed, definition)  # still checks the definition fits the data
        return pd.DataFrame(index=indexed.session_ids)
    if layout.family == FAMILY_UCI:
        table = _uci_table(indexed, lambda: session_targets(indexed, definition))
        targets = session_targets(indexed, definition)
    else:
        targets = session_targets(indexed, definition)
        table = _event_table(indexed, targets, layout)
    return table.assign(**_event_counts(indexed, targets))


def _event_counts(indexed: IndexedClicks, targets: SessionTargets) -> dict[str, np.ndarray]:
    """Per-session counts by event type and orders, for the KPIs and the funnel."""
    n_types = len(S.EVENT_NAMES)
    only = int(indexed.event[0]) if len(indexed.event) else -1
    if 0 <= only < n_types and int(indexed.event.min()) == int(indexed.event.max()) == only:
        # One event type (the UCI file: all views): every event of a session is of that type.
        by_type = np.zeros((indexed.n_sessions, n_types), dtype=np.int64)
        by_type[:, only] = indexed.lengths
    else:
        flat = indexed.session * n_types
        flat += indexed.event
        by_type = np.bincount(flat, minlength=indexed.n_sessions * n_types).reshape(indexed.n_sessions, n_types)
    counts = {
        name: by_type[:, code]
        for name, code in (("n_views", S.EVENT_VIEW), ("n_carts", S.EVENT_CART), ("n_purchases", S.EVENT_PURCHASE))
    }
    if S.TRANSACTION in indexed.source:
        bought = np.flatnonzero(indexed.event == S.EVENT_PURCHASE)
        transactions = indexed.source[S.TRANSACTION].take(indexed.rows(bought))
        has_id = transactions.notna().to_numpy()
        codes = pd.factorize(transactions[has_id])[0]
        pairs = pd.DataFrame({"s": indexed.session[bought[has_id]], "t": codes}).drop_duplicates()
        orders = np.bincount(pairs["s"].to_numpy(), minlength=indexed.n_sessions)
        # A purchasing session without any transaction ID still placed one order.
        orders = np.where((orders == 0) & (counts["n_purchases"] > 0), 1, orders)
    else:
        orders = (counts["n_purchases"] > 0).astype(np.int64)
    if not (indexed.event == S.EVENT_PURCHASE).any():
        orders = targets.converted.astype(np.int64)  # proxy or label column: a converting session is one order
    return {**counts, "n_orders": orders}


def _event_table(indexed: IndexedClicks, targets: SessionTargets, layout: FeatureLayout) -> pd.DataFrame:
    """The session table of any event log (products and dimensions beside times, categories and prices)."""
    n = indexed.lengths

    def codes_half() -> dict[str, np.ndarray]:
        out = {"n_products": distinct_per_session(indexed, indexed.product_code)}
        for dimension in layout.dimensions:
            out[main_column(dimension)] = dominant_code_sparse(indexed, indexed.column(dimension)).astype(np.int32)
        return out

    def values_half() -> dict[str, np.ndarray]:
        date = indexed.first(S.DATE)
        out: dict[str, np.ndarray] = {
            "date": date,
            "month": pd.DatetimeIndex(date).month.to_numpy().astype(np.int8),
            "day_of_week": pd.DatetimeIndex(date).day_of_week.to_numpy().astype(np.int8),
        }
        if layout.has_time:
            first = indexed.at(S.TIMESTAMP, indexed.starts).astype("datetime64[ms]").astype(np.int64)
            last = indexed.at(S.TIMESTAMP, indexed.starts + n - 1).astype("datetime64[ms]").astype(np.int64)
            out["hour"] = ((first // 3_600_000) % 24).astype(np.int8)
            out["duration_s"] = (last - first) / 1000.0
        out["n_reviews"] = indexed.per_session_count(indexed.is_review)
        out["n_categories"], main_category = distinct_and_dominant(indexed, indexed.column(S.CATEGORY))
        out["main_category"] = main_category.astype(np.int32)
        if layout.has_price:
            price = indexed.column(S.PRICE)
            known = ~np.isnan(price)
            n_known = indexed.per_session_count(known)
            with np.errstate(invalid="ignore", divide="ignore"):
                out["price_mean"] = np.where(
                    n_known > 0, indexed.per_session_sum(np.nan_to_num(price)) / np.maximum(n_known, 1), 0.0
                )
            out["price_min"] = np.nan_to_num(np.fmin.reduceat(price, indexed.starts))
            out["price_max"] = np.nan_to_num(np.fmax.reduceat(price, indexed.starts))
        return out

    codes, values = run_parallel(codes_half, values_half)
    names = ["date", "month", "day_of_week", *(["hour", "duration_s"] if layout.has_time else [])]
    names += ["n_clicks", "n_products", "n_reviews", "n_categories", "main_category"]
    names += ["price_mean", "price_min", "price_max"] if layout.has_price else []
    names += [main_column(d) for d in layout.dimensions]
    both = {**codes, **values, "n_clicks": n.copy()}
    columns = {name: both[name] for name in names}
    columns[TARGET_CONVERTED] = targets.converted.copy()  # the targets stay cached with the index
    columns[TARGET_BASKET] = targets.basket_value.copy()
    # The other arrays are this call's own, so the frame takes them as they are (no copy into one block).
    return pd.DataFrame(columns, index=indexed.session_ids, copy=False)


def _uci_table(indexed: IndexedClicks, targets: Callable[[], SessionTargets]) -> pd.DataFrame:
    """The UCI file's session table, exactly as before the event-log rewrite (pinned by a test).

    Four independent parts (the targets; categories and colours; prices and re-views; photos and pages) run
    side by side.
    """
    n = indexed.lengths

    def categories_and_colours() -> dict[str, np.ndarray]:
        category, colour = indexed.column(S.CATEGORY), indexed.column(S.COLOUR)
        size = indexed.n_sessions
        out = {name: np.empty(size, dtype=np.int64) for name in ("n_categories", "n_colours")}
        out |= {name: np.empty(size, dtype=np.int8) for name in ("main_category", "main_colour")}
        shares = ("sale_share", "trousers_share", "skirts_share", "blouses_share")
        out |= {name: np.empty(size, dtype=np.float64) for name in shares}
        for part in indexed.session_slices(SLICE_ROWS):  # small count matrices, reused memory
            part_category, part_colour = category[part.rows], colour[part.rows]
            category_cells, colour_cells = code_cells(part, part_category, 4), code_cells(part, part_colour, 14)
            all_category_counts = code_counts(part, part_category, 4, category_cells)
            all_colour_counts = code_counts(part, part_colour, 14, colour_cells)
            category_counts, colour_counts = all_category_counts[1:], all_colour_counts[1:]  # code-major
            main_category = dominant_code(part, part_category, 4, all_category_counts, category_cells)
            main_colour = dominant_code(part, part_colour, 14, all_colour_counts, colour_cells)
            here, length = part.sessions, part.lengths
            out["n_categories"][here] = (category_counts > 0).sum(axis=0)
            out["n_colours"][here] = (colour_counts > 0).sum(axis=0)
            out["main_category"][here] = main_category.astype(np.int8)
            out["main_colour"][here] = main_colour.astype(np.int8)
            out["sale_share"][here] = category_counts[S.SALE_CATEGORY - 1] / length
            out["trousers_share"][here] = category_counts[0] / length
            out["skirts_share"][here] = category_counts[1] / length
            out["blouses_share"][here] = category_counts[2] / length
        return out

    def shares_and_pages() -> dict[str, np.ndarray]:
        out = {}
        page = indexed.column(S.PAGE)
        out["premium_share"] = _share(indexed, indexed.column(S.PRICE_2) == S.PREMIUM_PRICE_2)
        out["profile_share"] = _share(indexed, indexed.column(S.PHOTOGRAPHY) == S.PROFILE_PHOTOGRAPHY)
        out["top_row_share"] = _share(indexed, _top_row(indexed.column(S.LOCATION)))
        out["max_page"] = np.maximum.reduceat(page, indexed.starts)
        # Whole pages: their float sum is exact in any order, so an integer sum gives the same floats.
        out["mean_page"] = indexed.per_session_count(page) / n
        return out

    def prices_and_reviews() -> dict[str, object]:
        price = indexed.column(S.PRICE)
        n_reviews = indexed.per_session_count(indexed.is_review)
        return {
            "n_reviews": n_reviews,
            "price_mean": indexed.per_session_sum(price) / n,
            "price_min": np.minimum.reduceat(price, indexed.starts),
            "price_max": np.maximum.reduceat(price, indexed.starts),
        }

    indexed.prefetch([S.CATEGORY, S.COLOUR, S.PAGE, S.PRICE_2, S.PHOTOGRAPHY, S.LOCATION])
    # Longest first: each thread takes the next task when it is free.
    done, categories_colours, values, shares = run_parallel(
        targets, categories_and_colours, prices_and_reviews, shares_and_pages
    )
    codes = categories_colours | shares
    date = indexed.first(S.DATE)
    table = pd.DataFrame(
        {
            "date": date,
            "country": indexed.first(S.COUNTRY),
            "month": indexed.first(S.MONTH),
            "day_of_week": pd.DatetimeIndex(date).day_of_week.to_numpy().astype(np.int8),
            "n_clicks": n.copy(),  # the index keeps its lengths
            "n_products": n - values["n_reviews"],
            "n_reviews": values["n_reviews"],
            "n_categories": codes["n_categories"],
            "n_colours": codes["n_colours"],
            "main_category": codes["main_category"],
            "main_colour": codes["main_colour"],
            "price_mean": values["price_mean"],
            "price_min": values["price_min"],
            "price_max": values["price_max"],
            "premium_share": codes["premium_share"],
            "sale_share": codes["sale_share"],
            "trousers_share": codes["trousers_share"],
            "skirts_share": codes["skirts_share"],
            "blouses_share": codes["blouses_share"],
            "profile_share": codes["profile_share"],
            "top_row_share": codes["top_row_share"],
            "max_page": codes["max_page"],
            "mean_page": codes["mean_page"],
            TARGET_CONVERTED: done.converted.copy(),  # the targets stay cached with the index
            TARGET_BASKET: done.basket_value.copy(),
        },
        index=indexed.session_ids,
        copy=False,  # the other arrays are this call's own: no copy into one block
    )
    return table
