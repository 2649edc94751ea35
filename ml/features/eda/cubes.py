"""The EDA cubes: every event and session aggregated once by its session's filter key.

The EDA charts count events (prices, category x colour, page x location,
products, event types) and sessions (session length, hour, day of week,
dimensions). Scanning the events per request would cost time in proportion to
the log, so everything is aggregated once into cubes keyed by the session
filter's key (the KPI cube's rows: date plus the dataset's filter dimensions)
plus the attribute a chart needs. An event inherits its session's key. A
filter then selects keys in the small KPI cube and sums the matching cube rows.

A chart whose columns the dataset lacks (colour and photo location exist on
the UCI file only; hours need timestamps; cart and purchase rates need those
events) has no cube: ``missing_note`` says why, in one line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ml.config import RANDOM_SEED
from ml.data import schema as S
from ml.data.clicks import IndexedClicks
from ml.features.kpis import SessionFilter, build_cube, cube_keys, dimensions_of
from ml.features.labels import TARGET_BASKET, TARGET_CONVERTED

if TYPE_CHECKING:
    from ml.features.prepared import PreparedData

KEY = "key"  # row position of a session's filter key in the KPI cube
MAX_SESSION_LENGTH = 40  # longer sessions share the last bucket, "40+"
CORRELATION_SAMPLE = 100_000  # sessions drawn once (fixed seed) for the correlation matrix
MAX_PRICE_BINS = 100

# Whole-session numeric features shown in the correlation heatmap (those the session table has), readable names.
CORRELATION_FEATURES: dict[str, str] = {
    "n_clicks": "Clicks",
    "n_products": "Distinct products",
    "n_reviews": "Re-view clicks",
    "n_categories": "Distinct categories",
    "n_colours": "Distinct colours",
    "n_carts": "Cart events",
    "duration_s": "Duration (s)",
    "hour": "Hour of first event",
    "price_mean": "Mean price",
    "price_min": "Lowest price",
    "price_max": "Highest price",
    "premium_share": "Above-avg-price share",
    "sale_share": "Sale share",
    "trousers_share": "Trousers share",
    "skirts_share": "Skirts share",
    "blouses_share": "Blouses share",
    "profile_share": "Profile-photo share",
    "top_row_share": "Top-row photo share",
    "max_page": "Deepest page",
    "mean_page": "Mean page",
    TARGET_CONVERTED: "Converted (label)",
    TARGET_BASKET: "Basket value (label)",
}
# Columns the UCI file's sessions have and an event log's do not (its cart and purchase counts are zero).
UCI_ONLY_CORRELATION = frozenset({"n_carts"})

# What each optional chart needs, as the one-line note says it when the data lacks it.
CHART_NEEDS: dict[str, str] = {
    "prices": "price column",
    "category_colour": "colour column (the UCI clothing file has one)",
    "page_location": "catalogue page and photo location columns (the UCI clothing file has them)",
    "events": "event types other than views (carts, purchases)",
    "hours": "event timestamps",
    "cart_rate": "cart events",
    "purchase_rate": "purchase events",
}
CHART_TITLES: dict[str, str] = {
    "prices": "Price by category",
    "category_colour": "Category x colour",
    "page_location": "Catalogue page x photo location",
    "events": "Events by type",
    "hours": "Sessions by hour",
    "cart_rate": "Top products by cart rate",
    "purchase_rate": "Top products by purchase rate",
}


@dataclass(frozen=True)
class EdaCubes:
    """Pre-aggregated EDA tables; every table's ``key`` column indexes rows of ``keys``.

    Optional tables are ``None`` when the data lacks what they need (see ``CHART_NEEDS``).
    """

    keys: pd.DataFrame  # the KPI cube: one row per (date, filter dimensions)
    products: pd.DataFrame  # key, model -> views, review_clicks, sessions, reviewing_sessions, carts, ...
    session_lengths: pd.DataFrame  # key, length (capped) -> sessions, conversions
    events: pd.DataFrame  # key, event (type code) -> events, sessions
    sample: pd.DataFrame  # key + the correlation features of at most CORRELATION_SAMPLE sessions
    model_names: np.ndarray  # product label per product code
    model_categories: np.ndarray  # the category a product is most often clicked in, per product code
    price_bin: float  # width of the price bins (1 USD on the bundled data)
    n_sessions: int
    prices: pd.DataFrame | None = None  # key, category, price (bin start) -> views
    category_colour: pd.DataFrame | None = None  # key, category, colour -> views
    page_location: pd.DataFrame | None = None  # key, page, location -> views
    hours: pd.DataFrame | None = None  # key, hour -> sessions, conversions
    codebooks: Mapping[str, Mapping[int, str]] = field(default_factory=lambda: S.CODEBOOK)
    event_types: tuple[int, ...] = (S.EVENT_VIEW,)  # the event types present

    def key_mask(self, filt: SessionFilter) -> np.ndarray:
        """Which keys pass the filter (a boolean per row of ``keys``)."""
        return filt.mask(self.keys)

    def select(self, table: pd.DataFrame, filt: SessionFilter) -> pd.DataFrame:
        """Rows of one cube whose key passes the filter."""
        return table[self.key_mask(filt)[table[KEY].to_numpy()]]

    @property
    def views_only(self) -> bool:
        """All events are product views (the UCI file): "clicks" rather than "events"."""
        return self.event_types == (S.EVENT_VIEW,)

    def available(self, chart: str) -> bool:
        """Whether the data has what an optional chart (a key of ``CHART_NEEDS``) needs."""
        if chart == "events":
            return not self.views_only
        if chart == "cart_rate":
            return S.EVENT_CART in self.event_types
        if chart == "purchase_rate":
            return S.EVENT_PURCHASE in self.event_types
        return getattr(self, chart) is not None

    def missing_note(self, chart: str) -> str | None:
        """One line saying why an optional chart is left out, or ``None`` when it is shown."""
        if self.available(chart):
            return None
        return f"{CHART_TITLES[chart]}: left out, this dataset has no {CHART_NEEDS[chart]}."

    def decode(self, column: str, codes: pd.Series) -> pd.Series:
        """Labels of a coded column (category, colour, ...) from the dataset's codebooks."""
        book = self.codebooks.get(column, {})
        return codes.map(lambda c: book.get(int(c), f"code {c}"))


# ---------------------------------------------------------------- building (once)
def aggregate(groups: dict[str, np.ndarray], sums: dict[str, np.ndarray]) -> pd.DataFrame:
    """Sum ``sums`` over the distinct combinations of the integer ``groups``, one row per combination.

    The group columns are packed into one int64 code, factorised by hashing and
    summed with ``np.bincount``: several times faster than a multi-column
    ``groupby`` on millions of clicks.
    """
    lows = [int(values.min()) if len(values) else 0 for values in groups.values()]
    sizes = [
        int(values.max()) - low + 1 if len(values) else 1 for values, low in zip(groups.values(), lows, strict=True)
    ]
    packed = np.zeros(len(next(iter(groups.values()))), dtype=np.int64)
    for values, low, size in zip(groups.values(), lows, sizes, strict=True):
        packed = packed * size + (values.astype(np.int64) - low)
    codes, uniques = pd.factorize(packed, sort=True)
    columns: dict[str, np.ndarray] = {}
    for name, low, size in reversed(list(zip(groups, lows, sizes, strict=True))):
        uniques, columns[name] = np.divmod(uniques, size)
        columns[name] += low
    out = pd.DataFrame({name: columns[name] for name in groups})
    for name, values in sums.items():
        total = np.bincount(codes, weights=values, minlength=len(out))
        out[name] = total.astype(values.dtype) if values.dtype.kind in "iub" else total
    return out


def price_bin_width(prices: np.ndarray) -> float:
    """The smallest round width (1, 2 or 5 x 10^n USD) giving at most ``MAX_PRICE_BINS`` bins.

    Whole-dollar prices are never split below 1 USD; others not below 1 cent.
    """
    prices = prices[np.isfinite(prices)]
    if not len(prices):
        return 1.0
    span = float(prices.max() - prices.min())
    smallest = 1.0 if np.array_equal(prices, np.round(prices)) else 0.01
    steps = [m * 10.0**e for e in range(-2, 7) for m in (1, 2, 5) if m * 10.0**e >= smallest - 1e-12]
    return next((round(w, 2) for w in steps if span / w <= MAX_PRICE_BINS), steps[-1])


def _session_keys(sessions: pd.DataFrame, keys: pd.DataFrame) -> np.ndarray:
    """Row of ``keys`` holding each session's filter key."""
    columns = ["date", *dimensions_of(keys)]
    lookup = keys[columns].assign(**{KEY: np.arange(len(keys), dtype=np.int64)})
    merged = cube_keys(sessions)[columns].merge(lookup, on=columns, how="left", validate="many_to_one")
    if merged[KEY].isna().any():
        raise ValueError("the KPI cube does not cover every session; build it from the same session table")
    return merged[KEY].to_numpy(dtype=np.int64)


def _first_per_pair(mask: np.ndarray, pair: np.ndarray) -> np.ndarray:
    """Events of ``mask`` that are the first of their (session, product) pair among ``mask``."""
    first = np.zeros(len(mask), dtype=bool)
    first[mask] = ~pd.Series(pair[mask]).duplicated(keep="first").to_numpy()
    return first


def _product_cube(indexed: IndexedClicks, click_key: np.ndarray, n_models: int) -> pd.DataFrame:
    """Per (key, product): views, re-view clicks, carts, purchases, and the sessions doing each."""
    pair = indexed.session * n_models + indexed.product_code
    is_view = indexed.event == S.EVENT_VIEW
    is_cart = indexed.event == S.EVENT_CART
    is_purchase = indexed.event == S.EVENT_PURCHASE
    review = indexed.is_review

    def count(mask: np.ndarray) -> np.ndarray:
        return mask.astype(np.int64)

    return aggregate(
        {KEY: click_key, "model": indexed.product_code},
        {
            "views": count(is_view),
            "review_clicks": count(review),
            "sessions": count(is_view & ~review),  # a session's first view of a product counts it once
            "reviewing_sessions": count(_first_per_pair(review, pair)),
            "carts": count(is_cart),
            "carting_sessions": count(_first_per_pair(is_cart, pair)),
            "purchases": count(is_purchase),
            "purchasing_sessions": count(_first_per_pair(is_purchase, pair)),
        },
    )


def _model_categories(indexed: IndexedClicks, n_models: int) -> np.ndarray:
    """Per product code, the category it is most often clicked in (a product's category)."""
    pairs = pd.DataFrame({"model": indexed.product_code, "category": indexed.column(S.CATEGORY)})
    counts = pairs.value_counts().reset_index(name="n").sort_values(["model", "n"], ascending=[True, False])
    top = counts.drop_duplicates("model")
    out = np.zeros(n_models, dtype=np.int64)
    out[top["model"].to_numpy()] = top["category"].to_numpy()
    return out


def _event_cube(indexed: IndexedClicks, click_key: np.ndarray) -> pd.DataFrame:
    """Events and sessions with at least one event, per (key, event type)."""
    pair = indexed.session * 8 + indexed.event.astype(np.int64)
    first = ~pd.Series(pair).duplicated(keep="first").to_numpy()
    return aggregate(
        {KEY: click_key, "event": indexed.event},
        {"events": np.ones(len(pair), dtype=np.int64), "sessions": first.astype(np.int64)},
    )


def _prices(indexed: IndexedClicks, click_key: np.ndarray, width: float) -> pd.DataFrame | None:
    """Views per (key, category, price bin) of the events with a price, or None without prices."""
    if S.PRICE not in indexed.clicks:
        return None
    price = indexed.column(S.PRICE).astype(np.float64)
    known = np.isfinite(price)
    if not known.any():
        return None
    table = aggregate(
        {
            KEY: click_key[known],
            "category": indexed.column(S.CATEGORY)[known],
            "price": np.floor(price[known] / width).astype(np.int64),
        },
        {"views": np.ones(int(known.sum()), dtype=np.int64)},
    )
    return table.assign(price=lambda t: (t["price"] * width).round(2))


def _has(indexed: IndexedClicks, *columns: str) -> bool:
    return all(c in indexed.clicks for c in columns)


def build_eda_cubes(
    indexed: IndexedClicks,
    sessions: pd.DataFrame,
    keys: pd.DataFrame | None = None,
    sample_size: int = CORRELATION_SAMPLE,
    seed: int = RANDOM_SEED,
    codebooks: Mapping[str, Mapping[int, str]] | None = None,
) -> EdaCubes:
    """Aggregate events and sessions once into the EDA cubes.

    ``sessions`` is the whole-session feature table of the same events;
    ``keys`` the KPI cube built from it (built here when not given);
    ``codebooks`` decodes categories and dimensions (the UCI codebook by default).
    """
    sessions = sessions if sessions.index.equals(indexed.session_ids) else sessions.loc[indexed.session_ids]
    keys = build_cube(sessions) if keys is None else keys
    session_key = _session_keys(sessions, keys)
    click_key = session_key[indexed.session]
    category = indexed.column(S.CATEGORY)
    width = price_bin_width(indexed.column(S.PRICE).astype(np.float64)) if S.PRICE in indexed.clicks else 1.0
    ones = {"views": np.ones(len(click_key), dtype=np.int64)}
    lengths = np.minimum(sessions["n_clicks"].to_numpy(), MAX_SESSION_LENGTH)
    conversions = sessions[TARGET_CONVERTED].to_numpy().astype(np.int64)
    session_ones = np.ones(len(lengths), dtype=np.int64)
    rng = np.random.default_rng(seed)
    picks = np.sort(rng.choice(len(sessions), size=min(sample_size, len(sessions)), replace=False))
    event_types = tuple(int(e) for e in np.unique(indexed.event))
    features = [c for c in CORRELATION_FEATURES if c in sessions]
    if event_types == (S.EVENT_VIEW,):
        features = [c for c in features if c not in UCI_ONLY_CORRELATION]  # all zero: no carts in a views-only log
    sample = sessions.iloc[picks][features].astype(np.float64).reset_index(drop=True)
    sample.insert(0, KEY, session_key[picks])
    model_names = np.asarray(indexed.clicks[S.PRODUCT].cat.categories.astype(str))
    return EdaCubes(
        keys=keys,
        prices=_prices(indexed, click_key, width),
        category_colour=aggregate({KEY: click_key, "category": category, "colour": indexed.column(S.COLOUR)}, ones)
        if _has(indexed, S.COLOUR)
        else None,
        page_location=aggregate(
            {KEY: click_key, "page": indexed.column(S.PAGE), "location": indexed.column(S.LOCATION)}, ones
        )
        if _has(indexed, S.PAGE, S.LOCATION)
        else None,
        products=_product_cube(indexed, click_key, len(model_names)),
        session_lengths=aggregate(
            {KEY: session_key, "length": lengths}, {"sessions": session_ones, "conversions": conversions}
        ),
        events=_event_cube(indexed, click_key),
        hours=aggregate(
            {KEY: session_key, "hour": sessions["hour"].to_numpy()},
            {"sessions": session_ones, "conversions": conversions},
        )
        if "hour" in sessions
        else None,
        sample=sample,
        model_names=model_names,
        model_categories=_model_categories(indexed, len(model_names)),
        price_bin=width,
        n_sessions=len(sessions),
        codebooks=codebooks or {**S.CODEBOOK, "day_of_week": S.DAY_OF_WEEK_NAMES},
        event_types=event_types,
    )


def eda_cubes(data: PreparedData) -> EdaCubes:
    """The EDA cubes of a prepared data set, built on first use and kept."""
    return data.once("eda_cubes", lambda d: build_eda_cubes(d.indexed, d.sessions, d.cube, codebooks=dict(d.codebooks)))
