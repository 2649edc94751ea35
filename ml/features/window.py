"""Early-window features: what a shop knows of a session after its first ``k`` events.

Window features read only the first ``k`` events of a session; the training
population is the sessions with at least ``k`` events that had not converted
inside the window. Which features exist follows what the data has (see
``ml.features.layout``): the UCI file keeps its own 19 features, and any
event log gets features of its events, categories, prices, times and
dimensions. Everything is vectorised over (sessions x k) grids of the first
``k`` events, so nothing after event ``k`` can reach a feature.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.data import schema as S
from ml.data.clicks import IndexedClicks, index_clicks
from ml.data.codes import text_from_codes
from ml.data.memory import reusing_freed_memory
from ml.data.threads import run_parallel
from ml.features.labels import TARGET_BASKET, TARGET_CONVERTED, LabelDefinition, SessionTargets, session_targets
from ml.features.layout import FAMILY_UCI, TOP_SHARES, FeatureLayout, layout_of, pool_codes
from ml.features.specs import FeatureSpec  # re-exported: callers import it from here
from ml.features.transitions import (
    TRANSITION_COLUMNS,
    TRANSITION_FEATURE_NAMES,
    TRANSITION_FEATURES,
    product_code_parts,
    transition_features,
)

# Session status in the early-prediction framing.
STATUS_SCORED = "scored"
STATUS_TOO_SHORT = "too short"
STATUS_CONVERTED_IN_WINDOW = "already converted in window"
STATUSES = (STATUS_SCORED, STATUS_TOO_SHORT, STATUS_CONVERTED_IN_WINDOW)


# The UCI file's 19 window features (pinned on the bundled data), then the transition features beside them.
UCI_WINDOW_FEATURES: tuple[FeatureSpec, ...] = (
    FeatureSpec("country", "categorical", "Country", codebook=S.COUNTRY),
    FeatureSpec("day_of_week", "categorical", "Day of week", codebook="day_of_week"),
    FeatureSpec("month", "numeric", "Month", integer=True),
    FeatureSpec("first_category", "categorical", "First click: category", codebook=S.CATEGORY),
    FeatureSpec("last_category", "categorical", "Last click in window: category", codebook=S.CATEGORY),
    FeatureSpec("first_page", "numeric", "First click: catalogue page", integer=True),
    FeatureSpec("first_price", "numeric", "First click: price (USD)"),
    FeatureSpec("w_price_mean", "numeric", "Mean price viewed (USD)"),
    FeatureSpec("w_price_min", "numeric", "Lowest price viewed (USD)"),
    FeatureSpec("w_price_max", "numeric", "Highest price viewed (USD)"),
    FeatureSpec("w_premium_share", "numeric", "Share of above-average-price views"),
    FeatureSpec("w_sale_share", "numeric", "Share of sale views"),
    FeatureSpec("w_profile_share", "numeric", "Share of profile photos"),
    FeatureSpec("w_top_row_share", "numeric", "Share of top-row photos"),
    FeatureSpec("w_n_categories", "numeric", "Distinct categories", integer=True),
    FeatureSpec("w_n_colours", "numeric", "Distinct colours", integer=True),
    FeatureSpec("w_max_page", "numeric", "Deepest catalogue page", integer=True),
    FeatureSpec("w_page_changes", "numeric", "Page changes", integer=True),
    FeatureSpec("w_category_switches", "numeric", "Category switches", integer=True),
    *TRANSITION_FEATURES,
)
WINDOW_FEATURES = UCI_WINDOW_FEATURES  # the bundled data's features
WINDOW_FEATURE_NAMES = tuple(f.name for f in WINDOW_FEATURES)
FEATURE_SPECS: Mapping[str, FeatureSpec] = {f.name: f for f in WINDOW_FEATURES}


def window_feature_specs(layout: FeatureLayout) -> tuple[FeatureSpec, ...]:
    """The window features a data layout gives, in model-input order."""
    if layout.family == FAMILY_UCI:
        return UCI_WINDOW_FEATURES
    specs = [
        FeatureSpec("day_of_week", "categorical", "Day of week", codebook="day_of_week"),
        FeatureSpec("month", "numeric", "Month", integer=True),
    ]
    if layout.has_time:
        specs.append(FeatureSpec("hour", "numeric", "Hour of the first event (UTC)", integer=True))
    specs += [
        FeatureSpec("first_category", "categorical", "First event: category", codebook=S.CATEGORY),
        FeatureSpec("last_category", "categorical", "Last event in window: category", codebook=S.CATEGORY),
        FeatureSpec("w_n_products", "numeric", "Distinct products", integer=True),
        FeatureSpec("w_n_categories", "numeric", "Distinct categories", integer=True),
        FeatureSpec("w_category_switches", "numeric", "Category switches", integer=True),
        FeatureSpec("w_same_category_repeats", "numeric", "Same category twice in a row", integer=True),
        FeatureSpec("w_repeat_views", "numeric", "Views of a product seen before", integer=True),
        FeatureSpec("w_carts", "numeric", "Add-to-cart events", integer=True),
        FeatureSpec("w_other_events", "numeric", "Other events", integer=True),
    ]
    specs += [
        FeatureSpec(f"w_category_top{i}_share", "numeric", f"Share of events in the #{i} category")
        for i in range(1, TOP_SHARES + 1)
    ]
    if layout.has_price:
        specs += [
            FeatureSpec("first_price", "numeric", "First event: price"),
            FeatureSpec("w_price_mean", "numeric", "Mean price seen"),
            FeatureSpec("w_price_min", "numeric", "Lowest price seen"),
            FeatureSpec("w_price_max", "numeric", "Highest price seen"),
            FeatureSpec("w_price_change", "numeric", "Mean price change between events"),
        ]
    if layout.has_time:
        specs += [
            FeatureSpec("w_duration_s", "numeric", "Seconds from first to last event in window"),
            FeatureSpec("w_max_gap_s", "numeric", "Longest pause between events (s)"),
            FeatureSpec("w_last_gap_s", "numeric", "Pause before the last event in window (s)"),
        ]
    for name in layout.dimensions:
        title = name.replace("_", " ")
        specs += [
            FeatureSpec(f"first_{name}", "categorical", f"First event: {title}", codebook=name),
            FeatureSpec(f"w_n_{name}", "numeric", f"Distinct {title} values", integer=True),
        ]
        specs += [
            FeatureSpec(f"w_{name}_top{i}_share", "numeric", f"Share of events with the #{i} {title}")
            for i in range(1, TOP_SHARES + 1)
        ]
    return tuple(specs)


@dataclass(frozen=True)
class WindowData:
    """Early-window features for the sessions that can be scored, and every session's status."""

    features: pd.DataFrame  # index: session_id of scoreable sessions; columns: ``specs`` in order
    status: pd.Series  # index: every session_id; one of STATUSES
    n_clicks: pd.Series  # index: every session_id
    converted: pd.Series  # index: scoreable sessions; did the session convert after the window
    basket_value: pd.Series  # index: scoreable sessions
    window: int
    definition: LabelDefinition
    specs: tuple[FeatureSpec, ...] = UCI_WINDOW_FEATURES
    layout: FeatureLayout | None = None


def _distinct_per_row(matrix: np.ndarray) -> np.ndarray:
    if matrix.shape[1] == 0:
        return np.zeros(matrix.shape[0], dtype=np.int64)
    ordered = np.sort(matrix, axis=1)
    return 1 + (np.diff(ordered, axis=1) != 0).sum(axis=1)


def _changes_per_row(matrix: np.ndarray) -> np.ndarray:
    return (np.diff(matrix, axis=1) != 0).sum(axis=1)


def _status_codes(indexed: IndexedClicks, targets: SessionTargets, window: int) -> np.ndarray:
    """Each session's status as its position in ``STATUSES``."""
    codes = np.zeros(indexed.n_sessions, dtype=np.int8)
    codes[targets.conversion_rank < window] = STATUSES.index(STATUS_CONVERTED_IN_WINDOW)
    codes[indexed.lengths < window] = STATUSES.index(STATUS_TOO_SHORT)
    return codes


def window_status(indexed: IndexedClicks, targets: SessionTargets, window: int) -> np.ndarray:
    """Status of each session: scored, too short, or already converted inside the window."""
    return np.asarray(STATUSES, dtype=object)[_status_codes(indexed, targets, window)]


def _text_series(codes: np.ndarray, labels: Sequence[str], index: pd.Index, name: str) -> pd.Series:
    """``pd.Series(labels_as_objects[codes], index=index, name=name)``, built from the codes."""
    dtype = pd.Series(np.asarray(labels, dtype=object)).dtype  # what the text column would be inferred as
    return pd.Series(text_from_codes(codes, labels, dtype), index=index, name=name)


class _Grid:
    """The first ``window`` events of the scoreable sessions as (sessions x window) arrays."""

    def __init__(self, indexed: IndexedClicks, scoreable: np.ndarray, window: int):
        self.indexed = indexed
        self.window = window
        self.first = indexed.starts[scoreable]
        self.rows = (self.first[:, None] + np.arange(window)[None, :]).ravel()
        self.source_rows = indexed.rows(self.rows)

    def __call__(self, name: str) -> np.ndarray:
        return self.indexed.at(name, self.rows, rows=self.source_rows).reshape(-1, self.window)

    def of(self, values: np.ndarray) -> np.ndarray:
        return values[self.rows].reshape(-1, self.window)

    def at_first(self, name: str) -> np.ndarray:
        return self.indexed.at(name, self.first)

    def product_parts(self) -> tuple[np.ndarray, np.ndarray]:
        """Catalogue letter and number grids of the products, parsing each distinct product once."""
        names = self.indexed.source[S.PRODUCT].cat.categories
        # Code -1 (no product) reads as the text "nan", as the product's value would.
        letters, numbers = product_code_parts(
            np.r_[np.asarray(names, dtype=object), np.asarray([np.nan], dtype=object)]
        )
        codes = self.of(self.indexed.product_code)
        return letters[codes], numbers[codes]


def _uci_features(grid: _Grid) -> dict[str, np.ndarray]:
    """The UCI file's 19 features, exactly as before the event-log rewrite (pinned by a test).

    Two independent halves (categories, prices and pages; photos, colours and steps) run side by side.
    """

    def first_half() -> dict[str, np.ndarray]:
        category, page, price = grid(S.CATEGORY), grid(S.PAGE), grid(S.PRICE)
        dates = grid.at_first(S.DATE)
        return {
            "country": grid.at_first(S.COUNTRY),
            "day_of_week": pd.DatetimeIndex(dates).day_of_week.to_numpy().astype(np.int8),
            "month": grid.at_first(S.MONTH),
            "first_category": category[:, 0],
            "last_category": category[:, -1],
            "first_page": page[:, 0],
            "first_price": price[:, 0],
            "w_price_mean": price.mean(axis=1),
            "w_price_min": price.min(axis=1),
            "w_price_max": price.max(axis=1),
            "w_sale_share": (category == S.SALE_CATEGORY).mean(axis=1),
            "w_n_categories": _distinct_per_row(category),
            "w_max_page": page.max(axis=1),
            "w_page_changes": _changes_per_row(page),
            "w_category_switches": _changes_per_row(category),
        }

    def second_half() -> dict[str, np.ndarray]:
        colour = grid(S.COLOUR)
        return {
            "w_premium_share": (grid(S.PRICE_2) == S.PREMIUM_PRICE_2).mean(axis=1),
            "w_profile_share": (grid(S.PHOTOGRAPHY) == S.PROFILE_PHOTOGRAPHY).mean(axis=1),
            "w_top_row_share": np.isin(grid(S.LOCATION), S.TOP_ROW_LOCATIONS).mean(axis=1),
            "w_n_colours": _distinct_per_row(colour),
            **transition_features(
                {name: grid(name) for name in TRANSITION_COLUMNS if name != S.CLOTHING_MODEL},
                product_parts=grid.product_parts(),
            ),
        }

    first, second = run_parallel(first_half, second_half)
    both = first | second
    order = (
        *("country", "day_of_week", "month", "first_category", "last_category", "first_page", "first_price"),
        *("w_price_mean", "w_price_min", "w_price_max", "w_premium_share", "w_sale_share", "w_profile_share"),
        *("w_top_row_share", "w_n_categories", "w_n_colours", "w_max_page", "w_page_changes"),
        "w_category_switches",
        *TRANSITION_FEATURE_NAMES,
    )
    return {name: both[name] for name in order}


def _repeat_views(products: np.ndarray, events: np.ndarray) -> np.ndarray:
    """Views in the window of a product already viewed earlier in the window."""
    views = events == S.EVENT_VIEW
    repeats = np.zeros(products.shape[0], dtype=np.int64)
    for j in range(1, products.shape[1]):
        seen = ((products[:, :j] == products[:, j : j + 1]) & views[:, :j]).any(axis=1)
        repeats += seen & views[:, j]
    return repeats


def _nan_filled(price: np.ndarray) -> np.ndarray:
    """Missing prices take the window's mean price (0 when the window has none)."""
    with np.errstate(invalid="ignore"):
        known = ~np.isnan(price)
        counts = known.sum(axis=1)
        mean = np.where(counts > 0, np.nansum(price, axis=1) / np.maximum(counts, 1), 0.0)
    return np.where(known, price, mean[:, None])


def _event_features(grid: _Grid, layout: FeatureLayout) -> dict[str, np.ndarray]:
    """Features of any event log's first ``window`` events (two independent halves, side by side)."""
    indexed = grid.indexed

    def events_half() -> dict[str, np.ndarray]:
        raw_category = grid(S.CATEGORY)
        category = pool_codes(raw_category)
        events = grid.of(indexed.event)
        products = grid.of(indexed.product_code)
        out = {
            "first_category": category[:, 0],
            "last_category": category[:, -1],
            "w_n_products": _distinct_per_row(products),
            "w_n_categories": _distinct_per_row(raw_category),
            "w_category_switches": _changes_per_row(raw_category),
            "w_same_category_repeats": (np.diff(raw_category, axis=1) == 0).sum(axis=1),
            "w_repeat_views": _repeat_views(products, events),
            "w_carts": (events == S.EVENT_CART).sum(axis=1),
            "w_other_events": (events == S.EVENT_OTHER).sum(axis=1),
        }
        for i in range(1, TOP_SHARES + 1):
            out[f"w_category_top{i}_share"] = (raw_category == i).mean(axis=1)
        return out

    def values_half() -> dict[str, np.ndarray]:
        dates = grid.at_first(S.DATE)
        out: dict[str, np.ndarray] = {
            "day_of_week": pd.DatetimeIndex(dates).day_of_week.to_numpy().astype(np.int8),
            "month": pd.DatetimeIndex(dates).month.to_numpy().astype(np.int8),
        }
        if layout.has_time:
            stamps = grid(S.TIMESTAMP).astype("datetime64[ms]").astype(np.int64)
            out["hour"] = ((stamps[:, 0] // 3_600_000) % 24).astype(np.int8)
            seconds = stamps / 1000.0
            gaps = np.diff(seconds, axis=1) if grid.window > 1 else np.zeros((len(seconds), 1))
            out |= {
                "w_duration_s": seconds[:, -1] - seconds[:, 0],
                "w_max_gap_s": gaps.max(axis=1),
                "w_last_gap_s": gaps[:, -1],
            }
        if layout.has_price:
            price = _nan_filled(grid(S.PRICE))
            out |= {
                "first_price": price[:, 0],
                "w_price_mean": price.mean(axis=1),
                "w_price_min": price.min(axis=1),
                "w_price_max": price.max(axis=1),
                "w_price_change": np.abs(np.diff(price, axis=1)).mean(axis=1) if grid.window > 1 else price[:, 0] * 0,
            }
        for name in layout.dimensions:
            values = grid(name)
            out[f"first_{name}"] = pool_codes(values[:, 0])
            out[f"w_n_{name}"] = _distinct_per_row(values)
            for i in range(1, TOP_SHARES + 1):
                out[f"w_{name}_top{i}_share"] = (values == i).mean(axis=1)
        return out

    events, values = run_parallel(events_half, values_half)
    return {**events, **values}


@reusing_freed_memory
def window_features(
    data: pd.DataFrame | IndexedClicks,
    window: int,
    definition: LabelDefinition | None = None,
) -> WindowData:
    """Features from the first ``window`` events of each scoreable session.

    Only events with rank < ``window`` are read; the targets (whether the session
    converts later, and its basket value) come from the whole session.
    """
    if window < 1:
        raise ValueError(f"the observation window must be at least 1 click, got {window}")
    indexed = data if isinstance(data, IndexedClicks) else index_clicks(data)
    layout = layout_of(indexed.source)
    specs = window_feature_specs(layout)
    targets = session_targets(indexed, definition)
    status = _status_codes(indexed, targets, window)
    scoreable = status == STATUSES.index(STATUS_SCORED)
    ids = indexed.session_ids[scoreable]
    grid = _Grid(indexed, scoreable, window)
    values = _uci_features(grid) if layout.family == FAMILY_UCI else _event_features(grid, layout)
    # Every array is this call's own, so the frame takes them as they are (no copy into one block).
    features = pd.DataFrame({spec.name: values[spec.name] for spec in specs}, index=ids, copy=False)
    return WindowData(
        features=features,
        status=_text_series(status, STATUSES, indexed.session_ids, "status"),
        n_clicks=pd.Series(indexed.lengths, index=indexed.session_ids, name="clicks"),
        converted=pd.Series(targets.converted[scoreable], index=ids, name=TARGET_CONVERTED),
        basket_value=pd.Series(targets.basket_value[scoreable], index=ids, name=TARGET_BASKET),
        window=window,
        definition=targets.definition,
        specs=specs,
        layout=layout,
    )


# ---------------------------------------------------------------- ranges for what-if controls
def _step(spec: FeatureSpec, values: pd.Series, window: int) -> float:
    if spec.integer:
        return 1.0
    if spec.name.endswith("_share"):
        return round(1.0 / window, 6)
    if np.allclose(values, np.round(values)):
        return 1.0
    return float(max((values.max() - values.min()) / 100.0, 0.01))


def feature_ranges(
    features: pd.DataFrame, window: int, specs: Sequence[FeatureSpec] = UCI_WINDOW_FEATURES
) -> dict[str, dict[str, object]]:
    """Range, step and typical value of each window feature, as seen in training.

    Saved with every model so the what-if tab can bound its sliders and start
    from a typical session without reading the training data again.
    """
    ranges: dict[str, dict[str, object]] = {}
    for spec in specs:
        values = features[spec.name]
        if spec.kind == "categorical":
            counts = values.value_counts()
            ranges[spec.name] = {
                "kind": "categorical",
                "values": [int(v) for v in counts.index],
                "counts": [int(c) for c in counts.to_numpy()],
                "typical": int(counts.index[0]),
            }
        else:
            step = _step(spec, values, window)
            median = float(np.round(values.median() / step) * step)
            ranges[spec.name] = {
                "kind": "numeric",
                "min": float(values.min()),
                "max": float(values.max()),
                "step": step,
                "typical": median,
            }
    return ranges
