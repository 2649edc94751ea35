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
THEME_TOGGLE = "app-theme-toggle"  # handled in the browser only (assets/30-theme.js)
APP_DATASET_INFO = "app-dataset-info-div"
# Registry version: the newest run id; changes when a training job lands, so model views refresh.
APP_MODELS_STORE = "app-models-store"
APP_MODELS_POLL = "app-models-interval"  # polls the active dataset's registry version (dashboard.model_refresh)
# The segment chosen on the segments tab for the what-if tab to start from (small JSON):
# {"method", "params", "segment", "persona", "typical": {window feature: value}}.
APP_SEGMENT_STORE = "app-segment-store"

# The dataset every tab shows: its key (small JSON), set from the URL's ?dataset= and the data control.
APP_DATASET_STORE = "app-dataset-store"

# ---------------------------------------------------------------- data control (header)
DATA_SELECT = "data-select-dropdown"
DATA_INFO = "data-info-div"
DATA_ADD_BUTTON = "data-add-button"
# The add-data panel (dashboard/datasets): a modal with the upload, the report, the mapping form, the job.
DATA_MODAL = "data-add-modal"
DATA_CLOSE = "data-close-button"
DATA_NAME = "data-name-input"
DATA_UPLOAD = "data-file-upload"
DATA_REJECT_NOTE = "data-reject-alert"  # the browser's own refusal (too large, wrong type)
DATA_SQL_URL = "data-sql-url-input"
DATA_SQL_TABLE = "data-sql-table-input"
DATA_SQL_QUERY = "data-sql-query-textarea"
DATA_SQL_BUTTON = "data-sql-read-button"
DATA_INTAKE_STORE = "data-intake-store"  # {"id", "filename", "status", "dropped", ...}: memory, this tab only
DATA_REPORT = "data-report-div"
DATA_MAP_OPEN = "data-map-open-button"
DATA_MAPPING = "data-mapping-div"
DATA_MAP_EVENTS = "data-map-events-div"
DATA_MAP_DIMENSIONS = "data-map-dimensions-checklist"
DATA_MAP_GAP = "data-map-gap-input"
DATA_MAP_TIME_FORMAT = "data-map-time-format-select"
DATA_MAP_NAME = "data-map-name-input"
DATA_MAP_APPLY = "data-map-apply-button"
DATA_MAP_SAVE = "data-map-save-button"
DATA_MAP_NOTE = "data-map-note-div"
DATA_KEEP = "data-keep-button"
DATA_KEEP_DROPPING = "data-keep-dropping-button"
DATA_REFUSE = "data-refuse-button"
DATA_PREPARE_CANCEL = "data-prepare-cancel-button"
DATA_PROGRESS = "data-prepare-progress-bar"
DATA_KEEP_REQUEST_STORE = "data-keep-request-store"  # a Keep press: {"id", "drop", "name"}; the job listens
DATA_JOB_STORE = "data-job-store"  # the preparing job's small answer: {"ok", "key", "name", "skipped", ...}
DATA_JOB_NOTE = "data-job-div"
DATA_ACTIVATE = "data-activate-button"
DATA_LIST = "data-list-div"
DATA_DELETE_CONFIRM = "data-delete-confirm"
DATA_DELETE_STORE = "data-delete-store"  # the key a Delete press asked about, until confirmed
DATA_DELETE_NOTE = "data-delete-div"
# Pattern-matching types: {"type": DATA_MAP_FIELD, "name": canonical field},
# {"type": DATA_MAP_EVENT, "index": n} (the n-th listed event value), {"type": DATA_DELETE, "key": dataset key}.
DATA_MAP_FIELD = "data-map-field-select"
DATA_MAP_EVENT = "data-map-event-select"
DATA_DELETE = "data-delete-button"

# ---------------------------------------------------------------- shared filters (KPI, EDA, products)
FILTER_BAR = "filter-bar-card"
FILTER_BAR_BODY = "filter-bar-body-div"  # re-rendered when the dataset changes: one dropdown per dimension
FILTER_DATES = "filter-dates-picker"
FILTER_RESET = "filter-reset-button"
FILTER_SUMMARY = "filter-summary-div"
# Pattern-matching type of the per-dimension dropdowns: {"type": FILTER_DIMENSION, "name": cube column}.
FILTER_DIMENSION = "filter-dimension-dropdown"

# ---------------------------------------------------------------- KPI tab
KPI_CARDS = "kpi-cards-row"
KPI_TREND_GRAPH = "kpi-trend-graph"
KPI_TREND_FREQ = "kpi-trend-radio"
KPI_FUNNEL_GRAPH = "kpi-funnel-graph"
KPI_BREAKDOWN_PICK = "kpi-breakdown-dropdown"
KPI_BREAKDOWNS = "kpi-breakdowns-row"
# Pattern-matching type of one breakdown graph: {"type": KPI_BREAKDOWN_GRAPH, "name": cube column}.
KPI_BREAKDOWN_GRAPH = "kpi-breakdown-graph"
KPI_EXPORT_BUTTON = "kpi-export-button"
KPI_EXPORT_DOWNLOAD = "kpi-export-download"
KPI_COMPARE_NOTE = "kpi-compare-div"  # which period is shown and what the changes are measured against
KPI_ALERTS = "kpi-alerts-div"  # trend alerts: flagged days under the trend
KPI_ALERTS_BUTTON = "kpi-alerts-button"
KPI_ALERTS_DOWNLOAD = "kpi-alerts-download"

# ---------------------------------------------------------------- EDA tab
EDA_PRICE_GRAPH = "eda-price-graph"
EDA_SESSION_LENGTH_GRAPH = "eda-session-length-graph"
EDA_PAGE_LOCATION_GRAPH = "eda-page-location-graph"
EDA_CATEGORY_COLOUR_GRAPH = "eda-category-colour-graph"
EDA_CATEGORY_COLOUR_NORM = "eda-category-colour-radio"
EDA_CORRELATION_GRAPH = "eda-correlation-graph"
EDA_TOP_PRODUCTS_GRAPH = "eda-top-products-graph"
EDA_TOP_PRODUCTS_METRIC = "eda-top-products-radio"
EDA_WEEKDAY_GRAPH = "eda-weekday-graph"
EDA_LABEL_NOTE = "eda-label-note-card"
EDA_DIMENSION_GRAPH = "eda-dimension-graph"  # sessions by one of the dataset's dimensions (country on UCI)
EDA_DIMENSION_PICK = "eda-dimension-dropdown"
EDA_EVENTS_GRAPH = "eda-events-graph"
EDA_HOUR_GRAPH = "eda-hour-graph"
EDA_LEFT_OUT_NOTE = "eda-left-out-div"  # one line per chart the dataset lacks the columns for

# ---------------------------------------------------------------- training panel (leaderboard tab)
TRAIN_PANEL = "train-panel-div"
TRAIN_WINDOW = "train-window-input"
TRAIN_MODELS = "train-models-checklist"
TRAIN_MODE = "train-mode-radio"
TRAIN_BUTTON = "train-start-button"
TRAIN_CANCEL = "train-cancel-button"
TRAIN_PROGRESS_BAR = "train-progress-bar"
TRAIN_STATUS = "train-status-div"
TRAIN_PROGRESS_STORE = "train-progress-store"
TRAIN_MESSAGE = "train-message-div"
TRAIN_NOTICE = "train-notice-div"  # another job holds the training lock
TRAIN_REQUEST_STORE = "train-request-store"  # a Train press: {window, models, mode, dataset, owner, requested}
TRAIN_POLL = "train-poll-interval"  # reads the job's state on the server (ml.serving.jobs)

# ---------------------------------------------------------------- leaderboard tab
LEADERBOARD_SUMMARY = "leaderboard-summary-div"
LEADERBOARD_CONTENT = "leaderboard-content-div"
LEADERBOARD_HISTORY = "leaderboard-history-switch"
LEADERBOARD_NOTE = "leaderboard-note-div"
LEADERBOARD_CLASSIFICATION_CARD = "leaderboard-classification-card"
LEADERBOARD_CLASSIFICATION_GRID = "leaderboard-classification-grid"
LEADERBOARD_REGRESSION_CARD = "leaderboard-regression-card"
LEADERBOARD_REGRESSION_GRID = "leaderboard-regression-grid"
LEADERBOARD_CLUSTERING_CARD = "leaderboard-clustering-card"
LEADERBOARD_CLUSTERING_GRID = "leaderboard-clustering-grid"
LEADERBOARD_CLASSIFIER_SECTION = "leaderboard-classifier-div"
LEADERBOARD_CLASSIFIER_DROPDOWN = "leaderboard-classifier-dropdown"
LEADERBOARD_CLASSIFIER_ALERT = "leaderboard-classifier-alert-div"
LEADERBOARD_ROC_GRAPH = "leaderboard-roc-graph"
LEADERBOARD_PR_GRAPH = "leaderboard-pr-graph"
LEADERBOARD_CONFUSION_GRAPH = "leaderboard-confusion-graph"
LEADERBOARD_THRESHOLD_SLIDER = "leaderboard-threshold-slider"
LEADERBOARD_THRESHOLD_METRICS = "leaderboard-threshold-metrics-div"
LEADERBOARD_CAPACITY_SLIDER = "leaderboard-capacity-slider"  # "target the top N% of sessions"
LEADERBOARD_CAPACITY_METRICS = "leaderboard-capacity-metrics-div"
LEADERBOARD_CALIBRATION_GRAPH = "leaderboard-calibration-graph"
LEADERBOARD_GAINS_GRAPH = "leaderboard-gains-graph"
LEADERBOARD_CLASSIFIER_IMPORTANCE_GRAPH = "leaderboard-classifier-importance-graph"
LEADERBOARD_REGRESSOR_SECTION = "leaderboard-regressor-div"
LEADERBOARD_REGRESSOR_DROPDOWN = "leaderboard-regressor-dropdown"
LEADERBOARD_REGRESSOR_ALERT = "leaderboard-regressor-alert-div"
LEADERBOARD_ACTUAL_GRAPH = "leaderboard-predicted-actual-graph"
LEADERBOARD_RESIDUALS_GRAPH = "leaderboard-residuals-graph"
LEADERBOARD_REGRESSOR_IMPORTANCE_GRAPH = "leaderboard-regressor-importance-graph"

# ---------------------------------------------------------------- segments tab
SEGMENTS_METHOD = "segments-method-radio"
SEGMENTS_K = "segments-k-slider"
SEGMENTS_EPS = "segments-eps-slider"
SEGMENTS_MIN_SAMPLES = "segments-min-samples-slider"
SEGMENTS_KMEANS_CONTROLS = "segments-kmeans-controls-div"
SEGMENTS_DBSCAN_CONTROLS = "segments-dbscan-controls-div"
SEGMENTS_SILHOUETTE_GRAPH = "segments-silhouette-graph"
SEGMENTS_PROJECTION_GRAPH = "segments-projection-graph"
SEGMENTS_METRICS = "segments-metrics-row"
SEGMENTS_NOTE = "segments-note-div"
SEGMENTS_CARDS = "segments-cards-row"
SEGMENTS_OTHERS = "segments-others-div"
# Pattern-matching type of the per-segment button; its ID also carries the setting that drew it:
# {"type": SEGMENTS_OPEN_WHATIF, "segment": n, "method", "k", "eps", "min_samples"}.
SEGMENTS_OPEN_WHATIF = "segments-open-whatif-button"
SEGMENTS_CAPACITY = "segments-capacity-slider"  # "target the top N% of sessions" for the per-segment lift
SEGMENTS_CAPACITY_NOTE = "segments-capacity-div"
SEGMENTS_DOWNLOAD = "segments-sessions-download"
# {"type": SEGMENTS_DOWNLOAD_BUTTON, "segment": n, "method", "k", "eps", "min_samples"}.
SEGMENTS_DOWNLOAD_BUTTON = "segments-download-button"

# ---------------------------------------------------------------- products tab
PRODUCTS_SECTION_TABS = "products-section-tabs"  # products and recommendations | paths
PRODUCTS_SECTION = "products-section-div"  # the active section, rendered by a callback
PRODUCTS_SEARCH = "products-search-input"
PRODUCTS_GRID = "products-table-grid"
PRODUCTS_DETAIL = "products-detail-div"
# Pattern-matching type of a recommendation list table: {"type": PRODUCTS_LIST_TABLE, "method": method}.
PRODUCTS_LIST_TABLE = "products-list-table"
PRODUCTS_EVALUATION = "products-evaluation-div"
PRODUCTS_EVALUATION_TABLE = "products-evaluation-table"
PRODUCTS_PATHS_DIMENSION = "products-paths-dimension-dropdown"
PRODUCTS_PATHS_STEPS = "products-paths-steps-slider"
PRODUCTS_PATHS_MIN_SHARE = "products-paths-min-share-dropdown"
PRODUCTS_PATHS_NOTE = "products-paths-note-div"
PRODUCTS_PATHS_GRAPH = "products-paths-graph"
PRODUCTS_PURCHASE_PATHS_GRAPH = "products-purchase-paths-graph"

# ---------------------------------------------------------------- what-if tab
WHATIF_EMPTY = "whatif-empty-div"
WHATIF_BODY = "whatif-body-div"
WHATIF_MODEL_DROPDOWN = "whatif-model-dropdown"
WHATIF_MODEL_INFO = "whatif-model-info-div"
WHATIF_START_RADIO = "whatif-start-radio"
WHATIF_SESSION_ROW = "whatif-session-div"
WHATIF_SESSION_INPUT = "whatif-session-input"
WHATIF_SESSION_BUTTON = "whatif-session-button"
WHATIF_RESET_BUTTON = "whatif-reset-button"
WHATIF_START_NOTE = "whatif-start-note-div"
WHATIF_CONTROLS = "whatif-controls-div"
WHATIF_PROBABILITY_TEXT = "whatif-probability-div"
WHATIF_PROBABILITY_GRAPH = "whatif-probability-graph"
WHATIF_VERDICT_TEXT = "whatif-verdict-div"
WHATIF_BASKET_TEXT = "whatif-basket-div"
WHATIF_REVENUE_TEXT = "whatif-revenue-div"
WHATIF_CLIP_NOTE = "whatif-clip-note-div"
WHATIF_WATERFALL_GRAPH = "whatif-waterfall-graph"
WHATIF_METHOD_NOTE = "whatif-method-note-div"
WHATIF_SENSITIVITY_DROPDOWN = "whatif-sensitivity-dropdown"
WHATIF_SENSITIVITY_GRAPH = "whatif-sensitivity-graph"
WHATIF_CAPACITY_SLIDER = "whatif-capacity-slider"  # "target the top N% of sessions"
WHATIF_CAPACITY_TEXT = "whatif-capacity-div"

# ---------------------------------------------------------------- batch scoring tab
SCORING_UPLOAD = "scoring-file-upload"
SCORING_REJECT_NOTE = "scoring-reject-div"  # the browser's own refusal (too large, wrong type)
SCORING_REPORT = "scoring-report-div"
SCORING_UPLOAD_STORE = "scoring-upload-store"  # {"id", "filename", "valid", "report"}: small JSON, this tab only
SCORING_RESULT_STORE = "scoring-result-store"  # the job's small answer: summary and preview rows
SCORING_REQUEST_STORE = "scoring-request-store"  # a Score press; the background job listens to it
SCORING_NO_MODEL = "scoring-no-model-alert"
SCORING_TRAIN_BUTTON = "scoring-train-button"
SCORING_MODEL_NOTE = "scoring-model-div"
SCORING_SCORE_AREA = "scoring-score-div"
SCORING_SCORE_BUTTON = "scoring-score-button"
SCORING_CANCEL = "scoring-cancel-button"
SCORING_PROGRESS = "scoring-progress-bar"
SCORING_POLL = "scoring-poll-interval"  # reads the scoring job's state on the server (ml.serving.jobs)
SCORING_JOB_NOTE = "scoring-job-div"
SCORING_RESULTS = "scoring-results-div"
SCORING_SUMMARY = "scoring-summary-row"
SCORING_HISTOGRAM = "scoring-histogram-graph"
SCORING_PREVIEW = "scoring-preview-grid"
SCORING_DOWNLOAD_BUTTON = "scoring-download-button"
SCORING_DOWNLOAD = "scoring-results-download"
SCORING_DOWNLOAD_NOTE = "scoring-download-div"
SCORING_MODEL_DROPDOWN = "scoring-model-dropdown"  # the dataset's scoring model; choosing one pins it
SCORING_RULE_RADIO = "scoring-rule-radio"  # capacity (top N%) or the saved threshold
SCORING_CAPACITY_SLIDER = "scoring-capacity-slider"
SCORING_RULE_NOTE = "scoring-rule-div"
SCORING_TARGETS_BUTTON = "scoring-targets-button"
SCORING_TARGETS_DOWNLOAD = "scoring-targets-download"


def filter_dimension(name: str) -> dict[str, str]:
    """Pattern-matching ID of the filter bar's dropdown for one cube dimension."""
    return {"type": FILTER_DIMENSION, "name": name}


def kpi_breakdown(name: str) -> dict[str, str]:
    """Pattern-matching ID of the KPI breakdown graph of one cube dimension."""
    return {"type": KPI_BREAKDOWN_GRAPH, "name": name}


def data_map_field(name: str) -> dict[str, str]:
    """Pattern-matching ID of the mapping form's column choice for one canonical field."""
    return {"type": DATA_MAP_FIELD, "name": name}


def data_map_event(index: int) -> dict[str, object]:
    """Pattern-matching ID of the mapping form's choice for the ``index``-th event value."""
    return {"type": DATA_MAP_EVENT, "index": index}


def data_delete(key: str) -> dict[str, str]:
    """Pattern-matching ID of a dataset's Delete button."""
    return {"type": DATA_DELETE, "key": key}


def whatif_feature(name: str) -> dict[str, str]:
    """Pattern-matching ID of a generated what-if input."""
    return {"type": "whatif-feature", "name": name}


def whatif_label(name: str) -> str:
    """ID of a generated what-if input's visible label (the slider's group is labelled by it)."""
    return f"whatif-label-{name}-div"


def whatif_number(name: str) -> dict[str, str]:
    """Pattern-matching ID of the number box beside a fine what-if slider (applies on Enter)."""
    return {"type": "whatif-number", "name": name}


def whatif_number_note(name: str) -> dict[str, str]:
    """Pattern-matching ID of the message under a what-if number box (text refused, value clipped)."""
    return {"type": "whatif-number-note", "name": name}
