"""Products as the event log sees them: the product events indexed once, and a per-product table.

``product_log`` keeps the events that touch a product (views, carts,
purchases; "other" events are left out), sorts them by (session, order) with
``index_clicks`` and gives every event a compact product code, so the
recommender, the session paths and the product table share one way of reading
the log. ``product_table`` is what the Products tab shows beside each product:
how often it is viewed, by how many sessions, how often it is re-viewed (view
only data) or carted and bought (when the log has carts and purchases), its
mean price, main category and the most common value of every other dimension.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.data import schema as S
from ml.data.clicks import IndexedClicks, index_clicks
from ml.features.layout import dimension_columns

PRODUCT_EVENT_TYPES = (S.EVENT_VIEW, S.EVENT_CART, S.EVENT_PURCHASE)
# Columns that are not dimensions: keys, time, the product itself, price, event type and labels.


def event_types(events: pd.DataFrame) -> np.ndarray:
    """The event-type code of every row (all views when the frame has no event-type column)."""
    if S.EVENT_TYPE not in events:
        return np.full(len(events), S.EVENT_VIEW, dtype=np.int8)
    return events[S.EVENT_TYPE].to_numpy(dtype=np.int8)


def has_event(events: pd.DataFrame, code: int) -> bool:
    """Whether any row is an event of type ``code`` (view-only frames have no carts or purchases)."""
    return bool(S.EVENT_TYPE in events and (events[S.EVENT_TYPE].to_numpy() == code).any())


@dataclass(frozen=True)
class ProductLog:
    """Product events sorted by (session, order), each with a compact product code.

    ``product`` indexes ``products``; it is -1 for an event whose product is not
    in the catalogue the log was read against (a product new since training).
    """

    indexed: IndexedClicks
    products: pd.Index
    product: np.ndarray
    event_type: np.ndarray

    @property
    def n_products(self) -> int:
        return len(self.products)

    @property
    def n_sessions(self) -> int:
        return self.indexed.n_sessions


def _as_categorical(values: pd.Series) -> pd.Series:
    return values if isinstance(values.dtype, pd.CategoricalDtype) else values.astype("category")


def product_log(events: pd.DataFrame, products: pd.Index | None = None) -> ProductLog:
    """Index the product events of ``events``; codes follow ``products`` or, if None, the observed ones."""
    types = event_types(events)
    keep = np.isin(types, PRODUCT_EVENT_TYPES) & events[S.PRODUCT].notna().to_numpy()
    kept = events if keep.all() else events[keep]
    if not isinstance(kept[S.PRODUCT].dtype, pd.CategoricalDtype):
        kept = kept.assign(**{S.PRODUCT: _as_categorical(kept[S.PRODUCT])})
    indexed = index_clicks(kept)
    column = indexed.clicks[S.PRODUCT]
    codes = column.cat.codes.to_numpy().astype(np.int64)
    categories = pd.Index(column.cat.categories.astype(str), name=S.PRODUCT)
    if products is None:
        observed = np.flatnonzero(np.bincount(codes, minlength=len(categories)))
        lookup = np.full(len(categories), -1, dtype=np.int64)
        lookup[observed] = np.arange(len(observed))
        products = categories[observed]
    else:
        products = pd.Index(products.astype(str), name=S.PRODUCT)
        lookup = products.get_indexer(categories).astype(np.int64)
    return ProductLog(
        indexed=indexed,
        products=products,
        product=lookup[codes] if len(codes) else codes,
        event_type=event_types(indexed.clicks),
    )


MODE_MAX_CELLS = 50_000_000  # products x distinct values counted in one dense array


def _mode_per_product(product: np.ndarray, values: np.ndarray, n_products: int) -> np.ndarray:
    """The most common value per product (ties to the smaller value); -1 for a product with no events."""
    out = np.full(n_products, -1, dtype=np.int64)
    if not len(product):
        return out
    low = int(values.min())
    width = int(values.max()) - low + 1
    if n_products * width <= MODE_MAX_CELLS:  # small codes: one bincount, argmax takes the first tie
        counts = np.bincount(product * width + (values - low), minlength=n_products * width)
        counts = counts.reshape(n_products, width)
        seen = counts.any(axis=1)
        out[seen] = counts[seen].argmax(axis=1) + low
        return out
    counts = pd.DataFrame({"p": product, "v": values}).value_counts().reset_index(name="n")
    counts = counts.sort_values(["p", "n", "v"], ascending=[True, False, True], kind="stable")
    first = counts.drop_duplicates("p", keep="first")
    out[first["p"].to_numpy()] = first["v"].to_numpy()
    return out


def _sessions_with(log: ProductLog, mask: np.ndarray) -> np.ndarray:
    """Per product, the number of distinct sessions with an event in ``mask`` on it."""
    keys = log.indexed.session[mask] * max(log.n_products, 1) + log.product[mask]
    first = ~pd.Series(keys).duplicated().to_numpy()
    return np.bincount(log.product[mask][first], minlength=log.n_products)


def product_table(events: pd.DataFrame) -> pd.DataFrame:
    """One row per product: views, sessions, share of sessions, re-view or cart/purchase rates, price, modes.

    ``review_rate`` (view-only data) is the share of the product's sessions
    that viewed it more than once, the project's purchase-intent proxy.
    With carts or purchases in the log, ``cart_rate`` and ``purchase_rate``
    are the shares of the product's sessions that carted or bought it. Every
    dimension column gets its most common value among the product's events.
    Sorted by views, most viewed first.
    """
    log = product_log(events)
    n = log.n_products
    product, types = log.product, log.event_type
    is_view = types == S.EVENT_VIEW
    sessions = _sessions_with(log, np.ones(len(product), dtype=bool))  # sessions with any event on it
    views = np.bincount(product[is_view], minlength=n)
    table = pd.DataFrame(
        {
            "views": views,
            "sessions": sessions,
            "session_share": sessions / max(log.n_sessions, 1),
        },
        index=log.products,
    )
    clicks = log.indexed.clicks
    if has_event(clicks, S.EVENT_CART) or has_event(clicks, S.EVENT_PURCHASE):
        for name, code in (("cart", S.EVENT_CART), ("purchase", S.EVENT_PURCHASE)):
            mask = types == code
            table[f"{name}s"] = np.bincount(product[mask], minlength=n)
            table[f"{name}_rate"] = _sessions_with(log, mask) / np.maximum(sessions, 1)
    else:
        reviewing = _sessions_with(log, log.indexed.is_review)  # views only: a repeat is a re-view
        table["review_rate"] = reviewing / np.maximum(sessions, 1)
    price = clicks[S.PRICE].to_numpy(dtype=np.float64)
    priced = ~np.isnan(price)
    priced_events = np.bincount(product[priced], minlength=n)
    price_sum = np.bincount(product[priced], weights=price[priced], minlength=n)
    table["mean_price"] = price_sum / np.where(priced_events > 0, priced_events, np.nan)
    for column in (S.CATEGORY, *dimension_columns(clicks)):
        if column in clicks:
            table[column] = _mode_per_product(product, clicks[column].to_numpy(dtype=np.int64), n)
    return table.sort_values("views", ascending=False, kind="stable")
