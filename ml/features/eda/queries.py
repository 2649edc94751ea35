"""EDA tables for a filter, read from the cubes of ``cubes.py`` (per request, cheap)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ml.data import schema as S
from ml.features.eda.cubes import CORRELATION_FEATURES, KEY, MAX_SESSION_LENGTH, EdaCubes
from ml.features.kpis import SessionFilter, breakdown, dimension_title, dimensions_of

MIN_REVIEW_SESSIONS = 30  # a product needs this many viewing sessions to rank by a rate
# Ways to rank products: the count or rate column, and what it says.
TOP_METRIC_TITLES: dict[str, str] = {
    "views": "Views",
    "review_rate": "Re-view rate",
    "cart_rate": "Cart rate",
    "purchase_rate": "Purchase rate",
}
TOP_METRICS = tuple(TOP_METRIC_TITLES)
RATE_COUNTS = {  # rate -> the sessions doing it (over the sessions viewing the product)
    "review_rate": "reviewing_sessions",
    "cart_rate": "carting_sessions",
    "purchase_rate": "purchasing_sessions",
}


def _ratio(numerator: pd.Series, denominator: pd.Series | float) -> pd.Series:
    """``numerator / denominator``, NaN where the denominator is 0."""
    if isinstance(denominator, pd.Series):
        return numerator / denominator.where(denominator > 0)
    return numerator / (denominator or np.nan)


def _weighted_median(values: pd.Series, weights: pd.Series) -> float:
    order = np.argsort(values.to_numpy(), kind="stable")
    cumulative = np.cumsum(weights.to_numpy()[order])
    return float(values.to_numpy()[order][np.searchsorted(cumulative, cumulative[-1] / 2)])


def _required(cubes: EdaCubes, chart: str) -> pd.DataFrame:
    table = getattr(cubes, chart)
    if table is None:
        raise ValueError(cubes.missing_note(chart))
    return table


def price_distribution(cubes: EdaCubes, filt: SessionFilter) -> pd.DataFrame:
    """Views per (clicked category, price bin), with the share of the category's views and its median price.

    ``price`` is the start of a bin ``bin_width`` USD wide (1 USD, i.e. exact prices, on the bundled data).
    Raises ``ValueError`` (the one-line note) when the data has no prices.
    """
    rows = cubes.select(_required(cubes, "prices"), filt)
    out = rows.groupby(["category", "price"], observed=True)["views"].sum().reset_index()
    out = out[out["views"] > 0].reset_index(drop=True)
    by_category = out.groupby("category")["views"]
    out["share"] = _ratio(out["views"], by_category.transform("sum"))
    medians = {c: _weighted_median(part["price"], part["views"]) for c, part in out.groupby("category")}
    out["category_median"] = out["category"].map(medians)
    out.insert(1, "category_label", cubes.decode(S.CATEGORY, out["category"]))
    width = cubes.price_bin
    fmt = "${:,.0f}" if width >= 1 and float(width).is_integer() else "${:,.2f}"
    out["price_label"] = [
        fmt.format(p) if width == 1 else f"{fmt.format(p)}–{fmt.format(p + width)}" for p in out["price"]
    ]
    out["bin_width"] = width
    return out


def _sessions_and_rate(rows: pd.DataFrame, column: str, grid: list[int] | None = None) -> pd.DataFrame:
    out = rows.groupby(column)[["sessions", "conversions"]].sum()
    out = out.reindex(grid, fill_value=0) if grid is not None else out[out["sessions"] > 0]
    out = out.rename_axis(column).reset_index()
    out["share"] = _ratio(out["sessions"], float(out["sessions"].sum()))
    out["conversion_rate"] = _ratio(out["conversions"], out["sessions"])
    return out


def session_lengths(cubes: EdaCubes, filt: SessionFilter) -> pd.DataFrame:
    """Sessions and conversion rate per session length in events (the last bucket is ``40+``)."""
    out = _sessions_and_rate(cubes.select(cubes.session_lengths, filt), "length")
    out["label"] = [f"{n}+" if n >= MAX_SESSION_LENGTH else str(n) for n in out["length"]]
    return out


def sessions_by_hour(cubes: EdaCubes, filt: SessionFilter) -> pd.DataFrame:
    """Sessions and conversion rate per hour of the session's first event (0..23, all hours)."""
    rows = cubes.select(_required(cubes, "hours"), filt)
    out = _sessions_and_rate(rows, "hour", list(range(24)))
    out["label"] = [f"{h:02d}" for h in out["hour"]]
    return out


def sessions_by_weekday(cubes: EdaCubes, filt: SessionFilter) -> pd.DataFrame:
    """Sessions and conversion rate per day of the week (Monday first, all seven days)."""
    rows = cubes.keys[cubes.key_mask(filt)]
    weekday = rows["date"].dt.day_of_week.rename("day_of_week")
    out = _sessions_and_rate(rows.assign(day_of_week=weekday), "day_of_week", list(range(7)))
    out["label"] = S.decode("day_of_week", out["day_of_week"])
    return out


def events_by_type(cubes: EdaCubes, filt: SessionFilter) -> pd.DataFrame:
    """Events and sessions with at least one event of each type (view, cart, purchase, other)."""
    rows = cubes.select(cubes.events, filt)
    out = rows.groupby("event")[["events", "sessions"]].sum()
    out = out.reindex(list(cubes.event_types), fill_value=0).rename_axis("event").reset_index()
    out["label"] = [S.EVENT_NAMES.get(int(e), f"type {e}") for e in out["event"]]
    out["share"] = _ratio(out["events"], float(out["events"].sum()))
    n_sessions = float(cubes.keys.loc[cubes.key_mask(filt), "sessions"].sum())
    out["session_share"] = _ratio(out["sessions"], n_sessions)
    return out


def page_location(cubes: EdaCubes, filt: SessionFilter) -> pd.DataFrame:
    """Clicks per (catalogue page, photo location), every combination present (zeros included)."""
    table = _required(cubes, "page_location")
    rows = cubes.select(table, filt)
    counts = rows.groupby(["page", "location"])["views"].sum()
    pages = sorted(set(table["page"]))
    locations = sorted(set(table["location"]))
    grid = pd.MultiIndex.from_product([pages, locations], names=["page", "location"])
    out = counts.reindex(grid, fill_value=0).reset_index()
    out["share"] = _ratio(out["views"], float(out["views"].sum()))
    out["location_label"] = cubes.decode(S.LOCATION, out["location"])
    return out


def category_colour(cubes: EdaCubes, filt: SessionFilter) -> pd.DataFrame:
    """Clicks per (clicked category, colour), with the share of the category's clicks."""
    rows = cubes.select(_required(cubes, "category_colour"), filt)
    out = rows.groupby(["category", "colour"])["views"].sum().reset_index()
    out = out[out["views"] > 0].reset_index(drop=True)
    out["share_of_category"] = _ratio(out["views"], out.groupby("category")["views"].transform("sum"))
    out["category_label"] = cubes.decode(S.CATEGORY, out["category"])
    out["colour_label"] = cubes.decode(S.COLOUR, out["colour"])
    return out


def top_metrics(cubes: EdaCubes) -> tuple[str, ...]:
    """The ways this dataset's products can be ranked (cart and purchase rates need those events)."""
    return tuple(m for m in TOP_METRICS if m in ("views", "review_rate") or cubes.available(m))


def top_products(
    cubes: EdaCubes,
    filt: SessionFilter,
    by: str = "views",
    n: int = 15,
    min_sessions: int = MIN_REVIEW_SESSIONS,
) -> pd.DataFrame:
    """The ``n`` products with most views, or with the highest re-view, cart or purchase rate.

    A rate is the share of the sessions viewing a product that re-viewed it,
    carted it or bought it; only products viewed in at least ``min_sessions``
    sessions are ranked by a rate, so tiny counts do not top the list.
    """
    if by not in TOP_METRICS:
        raise ValueError(f"unknown metric {by!r}; choose from {TOP_METRICS}")
    if by not in top_metrics(cubes):
        raise ValueError(cubes.missing_note(by))
    rows = cubes.select(cubes.products, filt)
    counts = [c for c in cubes.products.columns if c not in (KEY, "model")]
    out = rows.groupby("model")[counts].sum()
    out = out[(out["views"] + out["carts"] + out["purchases"]) > 0]
    for rate, column in RATE_COUNTS.items():
        out[rate] = _ratio(out[column], out["sessions"])
    if by != "views":
        out = out[out["sessions"] >= min_sessions]
    out = out.reset_index()
    out["product"] = cubes.model_names[out["model"].to_numpy()]
    out = out.sort_values([by, "views", "product"], ascending=[False, False, True]).head(n).reset_index(drop=True)
    out["category"] = cubes.model_categories[out["model"].to_numpy()]
    out["category_label"] = cubes.decode(S.CATEGORY, out["category"])
    return out


def dimension_choices(cubes: EdaCubes) -> dict[str, str]:
    """The dataset's filter dimensions (country, main category, main brand, ...) with readable names."""
    return {d: dimension_title(d) for d in dimensions_of(cubes.keys)}


def dimension_breakdown(cubes: EdaCubes, filt: SessionFilter, dimension: str) -> pd.DataFrame:
    """Sessions, share, conversion rate and revenue per value of one of the dataset's dimensions."""
    return breakdown(cubes.keys, filt, dimension, cubes.codebooks)


def correlation(cubes: EdaCubes, filt: SessionFilter) -> pd.DataFrame:
    """Pearson correlation of whole-session features over the sampled sessions that pass the filter.

    Rows and columns are the features' readable names; features that do not vary
    in the selection are left out. ``attrs["sessions"]`` says how many sampled
    sessions were used, ``attrs["sample"]`` how many were drawn in all.
    """
    rows = cubes.select(cubes.sample, filt)
    features = [c for c in cubes.sample.columns if c != KEY]
    out = pd.DataFrame()
    if len(rows) >= 3 and len(features) >= 2:
        centred = rows[features].to_numpy()
        centred = centred - centred.mean(axis=0)
        # einsum rather than np.corrcoef: BLAS threads can stall for ~0.5 s on a busy machine.
        products = np.einsum("ij,ik->jk", centred, centred)
        scale = np.sqrt(np.diag(products))
        varying = np.flatnonzero(scale > 1e-12 * max(float(scale.max()), 1.0))
        if len(varying) >= 2:
            matrix = products[np.ix_(varying, varying)] / np.outer(scale[varying], scale[varying])
            np.fill_diagonal(matrix, 1.0)
            names = [CORRELATION_FEATURES[features[i]] for i in varying]
            out = pd.DataFrame(np.clip(matrix, -1.0, 1.0), index=names, columns=names)
    out.attrs.update(sessions=len(rows), sample=len(cubes.sample))
    return out


def correlation_names(cubes: EdaCubes) -> Mapping[str, str]:
    """The session features in the correlation sample, column -> readable name."""
    return {c: CORRELATION_FEATURES[c] for c in cubes.sample.columns if c != KEY}
