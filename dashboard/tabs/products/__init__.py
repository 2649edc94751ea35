"""Products tab: how each product is viewed (carted, bought), what to show beside it, and the paths sessions take.

Two sections. **Products**: a sortable, searchable grid of every product;
clicking one shows its figures and its "viewed next" and "also viewed in the
same session" lists (score, support, popularity fallback, the attributes of
each suggestion), and below, the recommender's evaluation on a later period
against popularity. **Paths**: a Sankey of the first steps of sessions between
categories, catalogue pages or any dimension, following the shell filters;
with purchases, the purchase rate per first-two-step path.

The recommender and its evaluation are fitted once per dataset and saved in
its registry (``ml.serving.recommendations``); the product table is built once
per dataset; paths are kept per setting. Callbacks only look them up.
"""

from __future__ import annotations

import logging

import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import Input, Output, State, dcc, html

from dashboard import filter_bar, ids
from dashboard.components import GRAPH_CONFIG, error_alert
from dashboard.context import AppContext
from dashboard.figures.products import purchase_paths_figure, sankey_figure
from dashboard.tabs.products import data as product_data
from dashboard.tabs.products.data import PathSetting, dimension_title, path_dimensions
from dashboard.tabs.products.panels import evaluation_table, product_detail, product_grid
from ml.config import BUNDLED_DATASET_KEY
from ml.features.kpis import SessionFilter
from ml.features.paths import DEFAULT_MIN_SHARE, DEFAULT_STEPS
from ml.features.prepared import PreparedData
from ml.serving.recommendations import SavedRecommender, recommendation_lists

log = logging.getLogger(__name__)

TAB_ID = "products"
LABEL = "Products"
USES_FILTERS = True  # the paths follow the shell filters; the product table and lists use every session

SECTION_PRODUCTS, SECTION_PATHS = "products-section-products", "products-section-paths"
LIST_LENGTH = 10
STEPS_RANGE = (2, 6)
MIN_SHARES = (0.0, 0.01, 0.02, 0.05, 0.10)
EVALUATION_TITLE = "Does it beat popularity? Next-product evaluation on a later period"
PURCHASE_PATHS_TITLE = "Which paths end in a purchase: rate per first-two-step path"


# ---------------------------------------------------------------- views (callback bodies)
def products_section(context: AppContext, key: str) -> html.Div:
    """The product grid, the detail of the chosen product (filled by a callback), and the evaluation."""
    data = context.dataset(key)
    saved = product_data.recommender(context, key)
    return product_data.cached_view(data, ("products", saved.run_id), lambda: _products_section(data, saved))


def _products_section(data: PreparedData, saved: SavedRecommender) -> html.Div:
    table = product_data.products(data)
    rates, attributes = product_data.rate_columns(data), product_data.attribute_columns(data)
    shown = min(len(table), product_data.MAX_GRID_ROWS)
    count = f"{len(table):,} products" + (f", the {shown:,} most viewed shown" if shown < len(table) else "")
    rate_note = (
        "Re-view rate is the purchase-intent proxy (the data has no purchases)."
        if "review_rate" in rates
        else "Cart and purchase rates are shares of the product's sessions."
    )
    search = html.Div(
        [
            dbc.Label("Search products", html_for=ids.PRODUCTS_SEARCH, className="small mb-0 me-2"),
            dbc.Input(
                id=ids.PRODUCTS_SEARCH,
                type="search",
                placeholder="product, category, colour…",
                debounce=False,
                size="sm",
                style={"maxWidth": "18rem"},
            ),
            html.Small(f"{count}; all sessions. Click a row to see its recommendations.", className="ms-2"),
        ],
        className="d-flex align-items-center mb-2 text-muted",
    )
    return html.Div(
        [
            dbc.Card(
                [
                    dbc.CardHeader(html.H6("Products", className="mb-0")),
                    dbc.CardBody(
                        [search, product_grid(table, rates, attributes), html.Small(rate_note, className="text-muted")],
                        className="p-2",
                    ),
                ],
                className="mb-3",
            ),
            dbc.Card(
                dbc.CardBody(
                    dcc.Loading(html.Div(id=ids.PRODUCTS_DETAIL, **{"aria-live": "polite"}), type="dot", delay_show=300)
                ),
                className="mb-3",
            ),
            dbc.Card(
                [
                    dbc.CardHeader(
                        [
                            html.H6(
                                "Does it beat popularity? Next-product evaluation on a later period", className="mb-0"
                            ),
                        ]
                    ),
                    dbc.CardBody(evaluation_table(saved), id=ids.PRODUCTS_EVALUATION),
                ]
            ),
        ]
    )


def detail_view(context: AppContext, key: str, product_id: object | None) -> list:
    """The chosen product (the most viewed when none is chosen): figures, attributes and both lists."""
    data = context.dataset(key)
    table = product_data.products(data)
    product = str(product_id) if product_id not in (None, "") else str(table.index[0])
    saved = product_data.recommender(context, key)

    def build() -> list:
        row = table.loc[product] if product in table.index else None
        lists = recommendation_lists(saved.model, table, product, n=LIST_LENGTH)
        rates, attributes = product_data.rate_columns(data), product_data.attribute_columns(data)
        return product_detail(product, row, lists, rates, attributes)

    return product_data.cached_view(data, ("detail", saved.run_id, product), build)


def selected_product(rows: list | None) -> str | None:
    """The product of the grid's selected row, if any."""
    return str(rows[0].get("product")) if rows and isinstance(rows[0], dict) and rows[0].get("product") else None


def paths_section(context: AppContext, key: str) -> html.Div:
    """The controls, the Sankey and (with purchases) purchase rates per path; figures come from a callback."""
    data = context.dataset(key)
    dimensions = path_dimensions(data)
    low, high = STEPS_RANGE
    controls = dbc.Row(
        [
            dbc.Col(
                [
                    dbc.Label("Paths between", html_for=ids.PRODUCTS_PATHS_DIMENSION, className="small mb-0"),
                    dcc.Dropdown(
                        id=ids.PRODUCTS_PATHS_DIMENSION,
                        options=[{"label": dimension_title(d), "value": d} for d in dimensions],
                        value=dimensions[0] if dimensions else None,
                        clearable=False,
                    ),
                ],
                md=4,
            ),
            dbc.Col(
                [
                    dbc.Label("Steps", html_for=ids.PRODUCTS_PATHS_STEPS, className="small mb-0"),
                    dcc.Slider(
                        id=ids.PRODUCTS_PATHS_STEPS,
                        min=low,
                        max=high,
                        step=1,
                        value=DEFAULT_STEPS,
                        marks={s: str(s) for s in range(low, high + 1)},
                    ),
                ],
                md=4,
            ),
            dbc.Col(
                [
                    dbc.Label("Pool links below", html_for=ids.PRODUCTS_PATHS_MIN_SHARE, className="small mb-0"),
                    dcc.Dropdown(
                        id=ids.PRODUCTS_PATHS_MIN_SHARE,
                        options=[{"label": f"{v:.0%} of a step" if v else "none", "value": v} for v in MIN_SHARES],
                        value=DEFAULT_MIN_SHARE,
                        clearable=False,
                    ),
                ],
                md=4,
            ),
        ],
        className="g-3 mb-2",
    )
    purchases = (
        dbc.Card(
            [
                dbc.CardHeader(
                    html.H6("Which paths end in a purchase: rate per first-two-step path", className="mb-0")
                ),
                dbc.CardBody(
                    dcc.Graph(id=ids.PRODUCTS_PURCHASE_PATHS_GRAPH, config=GRAPH_CONFIG, style={"height": "420px"}),
                    className="p-1",
                ),
            ],
            className="mt-3",
        )
        if data.has_purchases
        else html.Div(
            "The data has no purchases, so no path ends in one; the flows above show where sessions go and leave.",
            className="small text-muted mt-2",
        )
    )
    return html.Div(
        [
            controls,
            dbc.Card(
                [
                    dbc.CardHeader(
                        [
                            html.H6("Where sessions go: the first steps of each visit", className="mb-0"),
                            html.Small(id=ids.PRODUCTS_PATHS_NOTE, className="text-muted"),
                        ]
                    ),
                    dbc.CardBody(
                        dcc.Loading(
                            dcc.Graph(id=ids.PRODUCTS_PATHS_GRAPH, config=GRAPH_CONFIG, style={"height": "520px"}),
                            type="dot",
                            delay_show=300,
                        ),
                        className="p-1",
                    ),
                ]
            ),
            purchases,
        ]
    )


def paths_view(
    context: AppContext,
    key: str,
    filt: SessionFilter,
    dimension: str | None,
    steps: int | None,
    min_share: float | None,
) -> tuple[go.Figure, str, go.Figure | None]:
    """The Sankey, its note, and the purchase-rate figure (None without purchases) for a filter and setting."""
    data = context.dataset(key)
    dimensions = path_dimensions(data)
    dimension = dimension if dimension in dimensions else dimensions[0]
    low, high = STEPS_RANGE
    steps = min(max(int(steps or DEFAULT_STEPS), low), high)
    min_share = float(min_share if min_share is not None else DEFAULT_MIN_SHARE)
    setting = PathSetting(dimension, steps, min_share)

    def build() -> tuple[go.Figure, str, go.Figure | None]:
        paths = product_data.paths_for(data, filt, setting)
        title = dimension_title(dimension)
        pooled = f"; links below {min_share:.0%} of their step pooled as 'other'" if min_share else ""
        note = (
            f"{paths.sessions:,} sessions (shell filters applied); {title.lower()} per step, repeats merged, "
            f"'exit' = the session ended{pooled}. Hover a link for its share of the step's sessions."
        )
        rates = paths.purchase_paths
        purchase = purchase_paths_figure(rates, data.definition.title) if rates is not None else None
        return sankey_figure(paths, title), note, purchase

    return product_data.cached_view(data, ("paths", filt, setting), build)


# ---------------------------------------------------------------- layout
def layout(context: AppContext, key: str = BUNDLED_DATASET_KEY) -> html.Div:
    sections = dbc.Tabs(
        [
            dbc.Tab(label="Products and recommendations", tab_id=SECTION_PRODUCTS),
            dbc.Tab(label="Paths", tab_id=SECTION_PATHS),
        ],
        id=ids.PRODUCTS_SECTION_TABS,
        active_tab=SECTION_PRODUCTS,
        className="mb-3",
    )
    return html.Div(
        [sections, dcc.Loading(html.Div(id=ids.PRODUCTS_SECTION), type="dot", delay_show=300)],
        className="products-tab",
    )


def section_view(context: AppContext, key: str, section: str | None) -> html.Div:
    """The active section; data the recommender or the paths cannot use gives a message, not a crash."""
    try:
        return paths_section(context, key) if section == SECTION_PATHS else products_section(context, key)
    except ValueError as exc:
        log.warning("the products tab cannot show dataset %s: %s", key, exc)
        return html.Div(error_alert(str(exc), "This dataset cannot be shown here"))


# ---------------------------------------------------------------- callbacks
def register_callbacks(app, context: AppContext) -> None:
    dataset = State(ids.APP_DATASET_STORE, "data")

    @app.callback(Output(ids.PRODUCTS_SECTION, "children"), Input(ids.PRODUCTS_SECTION_TABS, "active_tab"), dataset)
    def show_section(section, key):
        return section_view(context, context.known(key), section)

    @app.callback(Output(ids.PRODUCTS_DETAIL, "children"), Input(ids.PRODUCTS_GRID, "selectedRows"), dataset)
    def show_detail(rows, key):
        return detail_view(context, context.known(key), selected_product(rows))

    app.clientside_callback(
        "function(text, options) { return Object.assign({}, options, {quickFilterText: text || ''}); }",
        Output(ids.PRODUCTS_GRID, "dashGridOptions"),
        Input(ids.PRODUCTS_SEARCH, "value"),
        State(ids.PRODUCTS_GRID, "dashGridOptions"),
        prevent_initial_call=True,
    )

    @app.callback(
        Output(ids.PRODUCTS_PATHS_GRAPH, "figure"),
        Output(ids.PRODUCTS_PATHS_NOTE, "children"),
        *filter_bar.INPUTS,
        Input(ids.PRODUCTS_PATHS_DIMENSION, "value"),
        Input(ids.PRODUCTS_PATHS_STEPS, "value"),
        Input(ids.PRODUCTS_PATHS_MIN_SHARE, "value"),
        dataset,
    )
    def show_paths(start, end, values, names, dimension, steps, min_share, key):
        filt = filter_bar.read(start, end, values, names)
        figure, note, _ = paths_view(context, context.known(key), filt, dimension, steps, min_share)
        return figure, note

    @app.callback(
        Output(ids.PRODUCTS_PURCHASE_PATHS_GRAPH, "figure"),
        *filter_bar.INPUTS,
        Input(ids.PRODUCTS_PATHS_DIMENSION, "value"),
        Input(ids.PRODUCTS_PATHS_STEPS, "value"),
        Input(ids.PRODUCTS_PATHS_MIN_SHARE, "value"),
        dataset,
    )
    def show_purchase_paths(start, end, values, names, dimension, steps, min_share, key):
        filt = filter_bar.read(start, end, values, names)
        return paths_view(context, context.known(key), filt, dimension, steps, min_share)[2]
