"""Exploratory-analysis tables for a filter, read from small cubes built once per dataset.

``cubes`` aggregates every event and session once by its session's filter key
(and leaves out, with a one-line note, the charts whose columns a dataset
lacks); ``queries`` answers one chart for one filter from those cubes, at a
cost that depends on the number of distinct keys, not on the number of events.
"""

from ml.features.eda.cubes import (
    CHART_NEEDS,
    CHART_TITLES,
    CORRELATION_FEATURES,
    CORRELATION_SAMPLE,
    KEY,
    MAX_PRICE_BINS,
    MAX_SESSION_LENGTH,
    EdaCubes,
    aggregate,
    build_eda_cubes,
    eda_cubes,
    price_bin_width,
)
from ml.features.eda.queries import (
    MIN_REVIEW_SESSIONS,
    TOP_METRIC_TITLES,
    TOP_METRICS,
    category_colour,
    correlation,
    correlation_names,
    dimension_breakdown,
    dimension_choices,
    events_by_type,
    page_location,
    price_distribution,
    session_lengths,
    sessions_by_hour,
    sessions_by_weekday,
    top_metrics,
    top_products,
)

__all__ = [
    "CHART_NEEDS",
    "CHART_TITLES",
    "CORRELATION_FEATURES",
    "CORRELATION_SAMPLE",
    "KEY",
    "MAX_PRICE_BINS",
    "MAX_SESSION_LENGTH",
    "MIN_REVIEW_SESSIONS",
    "TOP_METRICS",
    "TOP_METRIC_TITLES",
    "EdaCubes",
    "aggregate",
    "build_eda_cubes",
    "category_colour",
    "correlation",
    "correlation_names",
    "dimension_breakdown",
    "dimension_choices",
    "eda_cubes",
    "events_by_type",
    "page_location",
    "price_bin_width",
    "price_distribution",
    "session_lengths",
    "sessions_by_hour",
    "sessions_by_weekday",
    "top_metrics",
    "top_products",
]
