"""Exploratory-analysis tables for a filter, read from small cubes built once.

The EDA charts count clicks (prices, category x colour, page x location,
products) and sessions (session length, country, day of week). Scanning the
clicks per request would cost time in proportion to the click log, so every
click and session is aggregated once into cubes keyed by the session filter's
key (date, country, main category, main colour) plus the attribute a chart
needs. A click inherits its session's key. A filter then selects keys in the
small KPI cube and sums the matching cube rows, so a request costs the number
of distinct (key, attribute) pairs, whatever the number of clicks.
"""

from __future__ import annotations

from dataclasses import dataclass
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
MIN_REVIEW_SESSIONS = 30  # a product needs this many viewing sessions to rank by re-view rate
MAX_PRICE_BINS = 100
TOP_METRICS = ("views", "review_rate")

# Whole-session numeric features shown in the correlation heatmap, with readable names.
CORRELATION_FEATURES: dict[str, str] = {
    "n_clicks": "Clicks",
    "n_products": "Distinct products",
    "n_reviews": "Re-view clicks",
    "n_categories": "Distinct categories",
    "n_colours": "Distinct colours",
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


@dataclass(frozen=True)
class EdaCubes:
    """Pre-aggregated EDA tables; every table's ``key`` column indexes rows of ``keys``."""

    keys: pd.DataFrame  # the KPI cube: one row per (date, country, main category, main colour)
    prices: pd.DataFrame  # key, category, price (bin start) -> views
    category_colour: pd.DataFrame  # key, category, colour -> views
    page_location: pd.DataFrame  # key, page, location -> views
    products: pd.DataFrame  # key, model -> views, review_clicks, sessions, reviewing_sessions
    session_lengths: pd.DataFrame  # key, length (capped) -> sessions, conversions
    sample: pd.DataFrame  # key + CORRELATION_FEATURES of at most CORRELATION_SAMPLE sessions
    model_names: np.ndarray  # clothing-model label per model code
    model_categories: np.ndarray  # the category a model is most often clicked in, per model code
    price_bin: float  # width of the price bins (1 USD on the bundled data)
    n_sessions: int

    def key_mask(self, filt: SessionFilter) -> np.ndarray:
        """Which keys pass the filter (a boolean per row of ``keys``)."""
        return filt.mask(self.keys)

    def select(self, table: pd.DataFrame, filt: SessionFilter) -> pd.DataFrame:
        """Rows of one cube whose key passes the filter."""
        return table[self.key_mask(filt)[table[KEY].to_numpy()]]


# ---------------------------------------------------------------- building (once)
def _aggregate(groups: dict[str, np.ndarray], sums: dict[str, np.ndarray]) -> pd.DataFrame:
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
    if not len(prices):
        return 1.0
    span = float(np.nanmax(prices) - np.nanmin(prices))
    smallest = 1.0 if np.array_equal(prices, np.round(prices)) else 0.01
    steps = [m * 10.0**e for e in range(-2, 7) for m in (1, 2, 5) if m * 10.0**e >= smallest - 1e-12]
    return next((round(w, 2) for w in steps if span / w <= MAX_PRICE_BINS), steps[-1])


def _session_keys(sessions: pd.DataFrame, keys: pd.DataFrame) -> np.ndarray:
    """Row of ``keys`` holding each session's (date, country, main category, main colour)."""
    columns = ["date", *dimensions_of(keys)]
    lookup = keys[columns].assign(**{KEY: np.arange(len(keys), dtype=np.int64)})
    merged = cube_keys(sessions)[columns].merge(lookup, on=columns, how="left", validate="many_to_one")
    if merged[KEY].isna().any():
        raise ValueError("the KPI cube does not cover every session; build it from the same session table")
    return merged[KEY].to_numpy(dtype=np.int64)


def _product_cube(indexed: IndexedClicks, click_key: np.ndarray, n_models: int) -> pd.DataFrame:
    """Views, re-view clicks, viewing sessions and re-viewing sessions per (key, model)."""
    review = indexed.is_review
    # A session's first view of a model counts the session once; its first re-view counts it as re-viewing.
    pair = indexed.session * n_models + indexed.product_code
    first_review = review.copy()
    first_review[review] = ~pd.Series(pair[review]).duplicated(keep="first").to_numpy()
    return _aggregate(
        {KEY: click_key, "model": indexed.product_code},
        {
            "views": np.ones(len(pair), dtype=np.int64),
            "review_clicks": review.astype(np.int64),
            "sessions": (~review).astype(np.int64),
            "reviewing_sessions": first_review.astype(np.int64),
        },
    )


def _model_categories(indexed: IndexedClicks, n_models: int) -> np.ndarray:
    """Per model code, the category it is most often clicked in (a product's category)."""
    n_codes = S.CODE_RANGES[S.CATEGORY].high + 1
    flat = indexed.product_code * n_codes + np.clip(indexed.column(S.CATEGORY), 0, n_codes - 1)
    return np.bincount(flat, minlength=n_models * n_codes).reshape(n_models, n_codes).argmax(axis=1)


def build_eda_cubes(
    indexed: IndexedClicks,
    sessions: pd.DataFrame,
    keys: pd.DataFrame | None = None,
    sample_size: int = CORRELATION_SAMPLE,
    seed: int = RANDOM_SEED,
) -> EdaCubes:
    """Aggregate clicks and sessions once into the EDA cubes.

    ``sessions`` is the whole-session feature table of the same clicks;
    ``keys`` the KPI cube built from it (built here when not given).
    """
    sessions = sessions if sessions.index.equals(indexed.session_ids) else sessions.loc[indexed.session_ids]
    keys = build_cube(sessions) if keys is None else keys
    session_key = _session_keys(sessions, keys)
    click_key = session_key[indexed.session]
    category, price = indexed.column(S.CATEGORY), indexed.column(S.PRICE)
    width = price_bin_width(price)
    ones = {"views": np.ones(len(click_key), dtype=np.int64)}
    lengths = np.minimum(sessions["n_clicks"].to_numpy(), MAX_SESSION_LENGTH)
    rng = np.random.default_rng(seed)
    picks = np.sort(rng.choice(len(sessions), size=min(sample_size, len(sessions)), replace=False))
    sample = sessions.iloc[picks][list(CORRELATION_FEATURES)].astype(np.float64).reset_index(drop=True)
    sample.insert(0, KEY, session_key[picks])
    model_names = np.asarray(indexed.clicks[S.CLOTHING_MODEL].cat.categories.astype(str))
    return EdaCubes(
        keys=keys,
        prices=_aggregate({KEY: click_key, "category": category, "price": np.floor(price / width)}, ones).assign(
            price=lambda t: (t["price"] * width).round(2)
        ),
        category_colour=_aggregate({KEY: click_key, "category": category, "colour": indexed.column(S.COLOUR)}, ones),
        page_location=_aggregate(
            {KEY: click_key, "page": indexed.column(S.PAGE), "location": indexed.column(S.LOCATION)}, ones
        ),
        products=_product_cube(indexed, click_key, len(model_names)),
        session_lengths=_aggregate(
            {KEY: session_key, "length": lengths},
            {
                "sessions": np.ones(len(lengths), dtype=np.int64),
                "conversions": sessions[TARGET_CONVERTED].to_numpy().astype(np.int64),
            },
        ),
        sample=sample,
        model_names=model_names,
        model_categories=_model_categories(indexed, len(model_names)),
        price_bin=width,
        n_sessions=len(sessions),
    )


def eda_cubes(data: PreparedData) -> EdaCubes:
    """The EDA cubes of a prepared data set, built on first use and kept."""
    return data.once("eda_cubes", lambda d: build_eda_cubes(d.indexed, d.sessions, d.cube))


# ---------------------------------------------------------------- queries (per request)
def _ratio(numerator: pd.Series, denominator: pd.Series | float) -> pd.Series:
    """``numerator / denominator``, NaN where the denominator is 0."""
    if isinstance(denominator, pd.Series):
        return numerator / denominator.where(denominator > 0)
    return numerator / (denominator or np.nan)


def _weighted_median(values: pd.Series, weights: pd.Series) -> float:
    order = np.argsort(values.to_numpy(), kind="stable")
    cumulative = np.cumsum(weights.to_numpy()[order])
    return float(values.to_numpy()[order][np.searchsorted(cumulative, cumulative[-1] / 2)])


def price_distribution(cubes: EdaCubes, filt: SessionFilter) -> pd.DataFrame:
    """Views per (clicked category, price bin), with the share of the category's views and its median price.

    ``price`` is the start of a bin ``bin_width`` USD wide (1 USD, i.e. exact prices, on the bundled data).
    """
    rows = cubes.select(cubes.prices, filt)
    out = rows.groupby(["category", "price"], observed=True)["views"].sum().reset_index()
    out = out[out["views"] > 0].reset_index(drop=True)
    by_category = out.groupby("category")["views"]
    out["share"] = _ratio(out["views"], by_category.transform("sum"))
    medians = {c: _weighted_median(part["price"], part["views"]) for c, part in out.groupby("category")}
    out["category_median"] = out["category"].map(medians)
    out.insert(1, "category_label", S.decode(S.CATEGORY, out["category"]))
    width = cubes.price_bin
    fmt = "${:,.0f}" if width >= 1 and float(width).is_integer() else "${:,.2f}"
    out["price_label"] = [
        fmt.format(p) if width == 1 else f"{fmt.format(p)}–{fmt.format(p + width)}" for p in out["price"]
    ]
    out["bin_width"] = width
    return out


def session_lengths(cubes: EdaCubes, filt: SessionFilter) -> pd.DataFrame:
    """Sessions and conversion rate per session length in clicks (the last bucket is ``40+``)."""
    rows = cubes.select(cubes.session_lengths, filt)
    out = rows.groupby("length")[["sessions", "conversions"]].sum().reset_index()
    out = out[out["sessions"] > 0].reset_index(drop=True)
    out["share"] = _ratio(out["sessions"], float(out["sessions"].sum()))
    out["conversion_rate"] = _ratio(out["conversions"], out["sessions"])
    out["label"] = [f"{n}+" if n >= MAX_SESSION_LENGTH else str(n) for n in out["length"]]
    return out


def page_location(cubes: EdaCubes, filt: SessionFilter) -> pd.DataFrame:
    """Clicks per (catalogue page, photo location), every combination present (zeros included)."""
    rows = cubes.select(cubes.page_location, filt)
    counts = rows.groupby(["page", "location"])["views"].sum()
    pages = sorted(set(cubes.page_location["page"]))
    locations = sorted(set(cubes.page_location["location"]))
    grid = pd.MultiIndex.from_product([pages, locations], names=["page", "location"])
    out = counts.reindex(grid, fill_value=0).reset_index()
    out["share"] = _ratio(out["views"], float(out["views"].sum()))
    out["location_label"] = S.decode(S.LOCATION, out["location"])
    return out


def category_colour(cubes: EdaCubes, filt: SessionFilter) -> pd.DataFrame:
    """Clicks per (clicked category, colour), with the share of the category's clicks."""
    rows = cubes.select(cubes.category_colour, filt)
    out = rows.groupby(["category", "colour"])["views"].sum().reset_index()
    out = out[out["views"] > 0].reset_index(drop=True)
    out["share_of_category"] = _ratio(out["views"], out.groupby("category")["views"].transform("sum"))
    out["category_label"] = S.decode(S.CATEGORY, out["category"])
    out["colour_label"] = S.decode(S.COLOUR, out["colour"])
    return out


def top_products(
    cubes: EdaCubes,
    filt: SessionFilter,
    by: str = "views",
    n: int = 15,
    min_sessions: int = MIN_REVIEW_SESSIONS,
) -> pd.DataFrame:
    """The ``n`` products with most views, or with the highest re-view rate.

    Re-view rate = share of the sessions viewing a product that viewed it again
    (the proxy conversion, per product); only products viewed in at least
    ``min_sessions`` sessions are ranked by it, so tiny counts do not top the list.
    """
    if by not in TOP_METRICS:
        raise ValueError(f"unknown metric {by!r}; choose from {TOP_METRICS}")
    rows = cubes.select(cubes.products, filt)
    out = rows.groupby("model")[["views", "review_clicks", "sessions", "reviewing_sessions"]].sum()
    out = out[out["views"] > 0]
    out["review_rate"] = _ratio(out["reviewing_sessions"], out["sessions"])
    if by == "review_rate":
        out = out[out["sessions"] >= min_sessions]
    out = out.reset_index()
    out["product"] = cubes.model_names[out["model"].to_numpy()]
    out = out.sort_values([by, "views", "product"], ascending=[False, False, True]).head(n).reset_index(drop=True)
    out["category"] = cubes.model_categories[out["model"].to_numpy()]
    out["category_label"] = S.decode(S.CATEGORY, out["category"])
    return out


def sessions_by_weekday(cubes: EdaCubes, filt: SessionFilter) -> pd.DataFrame:
    """Sessions and conversion rate per day of the week (Monday first, all seven days)."""
    rows = cubes.keys[cubes.key_mask(filt)]
    weekday = rows["date"].dt.day_of_week.rename("day_of_week")
    out = rows.groupby(weekday)[["sessions", "conversions"]].sum().reindex(range(7), fill_value=0)
    out = out.rename_axis("day_of_week").reset_index()
    out["conversion_rate"] = _ratio(out["conversions"], out["sessions"])
    out["share"] = _ratio(out["sessions"], float(out["sessions"].sum()))
    out["label"] = S.decode("day_of_week", out["day_of_week"])
    return out


def correlation(cubes: EdaCubes, filt: SessionFilter) -> pd.DataFrame:
    """Pearson correlation of whole-session features over the sampled sessions that pass the filter.

    Rows and columns are the features' readable names; features that do not vary
    in the selection are left out. ``attrs["sessions"]`` says how many sampled
    sessions were used, ``attrs["sample"]`` how many were drawn in all.
    """
    rows = cubes.select(cubes.sample, filt)
    out = pd.DataFrame()
    if len(rows) >= 3:
        centred = rows[list(CORRELATION_FEATURES)].to_numpy()
        centred = centred - centred.mean(axis=0)
        # einsum rather than np.corrcoef: BLAS threads can stall for ~0.5 s on a busy machine.
        products = np.einsum("ij,ik->jk", centred, centred)
        scale = np.sqrt(np.diag(products))
        varying = np.flatnonzero(scale > 1e-12 * max(float(scale.max()), 1.0))
        if len(varying) >= 2:
            matrix = products[np.ix_(varying, varying)] / np.outer(scale[varying], scale[varying])
            np.fill_diagonal(matrix, 1.0)
            names = [list(CORRELATION_FEATURES.values())[i] for i in varying]
            out = pd.DataFrame(np.clip(matrix, -1.0, 1.0), index=names, columns=names)
    out.attrs.update(sessions=len(rows), sample=len(cubes.sample))
    return out
