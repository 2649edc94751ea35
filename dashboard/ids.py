"""Every component ID in the app, kebab-case ``<tab>-<element>-<kind>``.

No ID string is written inline anywhere else. Generated inputs use
pattern-matching dicts built by the helpers at the bottom.
"""

from __future__ import annotations

# ---------------------------------------------------------------- app shell
APP_URL = "app-url-location"
APP_TABS = "app-main-tabs"
APP_TAB_CONTENT = "app-tab-content-div"
APP_HEADER = "app-header-navbar"
APP_DATASET_INFO = "app-dataset-info-div"
# Registry version: the newest run id; changes when a training job lands, so model views refresh.
APP_MODELS_STORE = "app-models-store"
# The segment chosen on the segments tab for the what-if tab to start from (small JSON):
# {"method", "params", "segment", "persona", "typical": {window feature: value}}.
APP_SEGMENT_STORE = "app-segment-store"

# ---------------------------------------------------------------- shared filters (KPI and EDA)
FILTER_BAR = "filter-bar-card"
FILTER_DATES = "filter-dates-picker"
FILTER_COUNTRIES = "filter-countries-dropdown"
FILTER_CATEGORIES = "filter-categories-dropdown"
FILTER_COLOURS = "filter-colours-dropdown"
FILTER_RESET = "filter-reset-button"
FILTER_SUMMARY = "filter-summary-div"

# ---------------------------------------------------------------- KPI tab
KPI_CARDS = "kpi-cards-row"
KPI_TREND_GRAPH = "kpi-trend-graph"
KPI_TREND_FREQ = "kpi-trend-radio"
KPI_FUNNEL_GRAPH = "kpi-funnel-graph"
KPI_COUNTRY_GRAPH = "kpi-country-graph"
KPI_CATEGORY_GRAPH = "kpi-category-graph"
KPI_COLOUR_GRAPH = "kpi-colour-graph"
KPI_EXPORT_BUTTON = "kpi-export-button"
KPI_EXPORT_DOWNLOAD = "kpi-export-download"
KPI_COMPARE_NOTE = "kpi-compare-div"

# ---------------------------------------------------------------- EDA tab
EDA_PRICE_GRAPH = "eda-price-graph"
EDA_SESSION_LENGTH_GRAPH = "eda-session-length-graph"
EDA_PAGE_LOCATION_GRAPH = "eda-page-location-graph"
EDA_CATEGORY_COLOUR_GRAPH = "eda-category-colour-graph"
EDA_CATEGORY_COLOUR_NORM = "eda-category-colour-radio"
EDA_CORRELATION_GRAPH = "eda-correlation-graph"
EDA_TOP_PRODUCTS_GRAPH = "eda-top-products-graph"
EDA_TOP_PRODUCTS_METRIC = "eda-top-products-radio"
EDA_COUNTRY_GRAPH = "eda-country-graph"
EDA_WEEKDAY_GRAPH = "eda-weekday-graph"
EDA_LABEL_NOTE = "eda-label-note-card"


def whatif_feature(name: str) -> dict[str, str]:
    """Pattern-matching ID of a generated what-if input."""
    return {"type": "whatif-feature", "name": name}
