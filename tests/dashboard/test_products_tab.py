"""Products tab: the product grid, a product's lists, the cached evaluation, the Sankey views, the auth policy."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dashboard import ids
from dashboard.auth.policy import callback_role, required_role, tab_role
from dashboard.context import AppContext
from dashboard.figures.products import sankey_figure
from dashboard.tabs import TABS, products
from dashboard.tabs.products import data as product_data
from dashboard.tabs.products.panels import evaluation_table
from ml.config import BUNDLED_DATASET_KEY
from ml.data.loading import load_events
from ml.data.synthetic_logs import multi_category_store_log
from ml.features.kpis import SessionFilter
from ml.models.recommend import FALLBACK
from ml.models.recommend_evaluation import evaluate
from ml.serving.datasets import DatasetStore
from ml.serving.users import VIEWER
from ml.tasks import RECOMMENDATION

KEY = BUNDLED_DATASET_KEY


def _find(component, predicate, found=None) -> list:
    """Every component in a layout tree that satisfies ``predicate``."""
    found = [] if found is None else found
    if isinstance(component, list | tuple):
        for item in component:
            _find(item, predicate, found)
        return found
    if predicate(component):
        found.append(component)
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if child is not None and not isinstance(child, str | int | float):
            _find(child, predicate, found)
    return found


def _by_id(component, component_id):
    return _find(component, lambda c: getattr(c, "id", None) == component_id)[0]


@pytest.fixture(scope="module")
def shop_context(tmp_path_factory, dash_settings) -> tuple[AppContext, str]:
    """A context with a purchase event log (multi-category store form) added as a dataset."""
    root = tmp_path_factory.mktemp("shop")
    settings = dash_settings.with_overrides(models_dir=root / "models", datasets_dir=root / "datasets")
    store = DatasetStore.for_settings(settings)
    loaded = load_events(multi_category_store_log(20_000, seed=4).to_csv(index=False).encode(), name="shop.csv")
    info = store.add(loaded, "shop")
    return AppContext(settings=settings, datasets=store), info.key


def test_the_tab_comes_after_segments_and_follows_the_filters():
    assert [t.TAB_ID for t in TABS][2:4] == ["segments", "products"]
    assert products.USES_FILTERS and products.LABEL == "Products"


def test_the_grid_lists_every_product_with_counts_rates_price_and_attributes(context):
    section = products.section_view(context, KEY, products.SECTION_PRODUCTS)
    grid = _by_id(section, ids.PRODUCTS_GRID)
    fields = [c["field"] for c in grid.columnDefs]
    assert fields[:5] == ["product", "views", "sessions", "session_share", "review_rate"]
    assert {"mean_price", "category", "country", "colour", "page"} <= set(fields)
    assert all(c.get("sortable", grid.defaultColDef["sortable"]) for c in grid.columnDefs)
    assert "quickFilterText" in grid.dashGridOptions  # the search box drives it
    table = product_data.products(context.dataset(KEY))
    assert len(grid.rowData) == len(table) == context.dataset(KEY).clicks["product_id"].nunique()
    top = grid.rowData[0]
    assert top["views"] == table["views"].max() and isinstance(top["category"], str)
    search = _by_id(section, ids.PRODUCTS_SEARCH)
    assert _find(section, lambda c: getattr(c, "html_for", None) == ids.PRODUCTS_SEARCH)  # labelled
    assert search.type == "search"


def test_a_products_detail_shows_both_lists_with_score_support_and_attributes(context):
    table = product_data.products(context.dataset(KEY))
    product = str(table.index[5])
    detail = products.detail_view(context, KEY, product)
    tables = _find(detail, lambda c: isinstance(getattr(c, "id", None), dict))
    assert sorted(t.id["method"] for t in tables) == ["co_occurrence", "next_view"]
    saved = product_data.recommender(context, KEY)
    for t in tables:
        head, body = t.children
        headers = [th.children for th in head.children.children]
        assert headers[:4] == ["#", "Product", "Score", "Support"] and "Category" in headers
        rows = body.children
        assert len(rows) == products.LIST_LENGTH
        shown = [r.children[1].children[0] for r in rows]
        expected = saved.model.recommend(product, n=products.LIST_LENGTH, method=t.id["method"])
        assert shown == list(expected["product"]) and product not in shown
        assert [r.children[2].children for r in rows] == [f"{s:.3f}" for s in expected["score"]]
    assert products.selected_product([{"product": product}]) == product
    assert products.selected_product(None) is None
    first = products.detail_view(context, KEY, None)
    assert f"'{table.index[0]}'" in str(first)  # no selection: the most viewed product


def test_a_product_with_little_history_is_filled_with_popular_products(context):
    saved = product_data.recommender(context, KEY)
    table = product_data.products(context.dataset(KEY))
    rare = str(table.index[-1])
    lists = saved.model.recommend(rare, n=products.LIST_LENGTH, method="next_view")
    assert (lists["method"] == FALLBACK).any(), "the least viewed product needs the fallback"
    text = str(products.detail_view(context, KEY, rare))
    assert "popularity fallback" in text and "filled with popular products" in text


def test_the_evaluation_is_the_codes_and_is_saved_once_per_dataset(context, dash_settings):
    saved = product_data.recommender(context, KEY)
    fresh = evaluate(context.dataset(KEY).clicks)
    assert saved.n_cases == fresh.n_cases and saved.cut_date == str(fresh.cut_date.date())
    np.testing.assert_allclose(saved.evaluation["hit_rate"], fresh.table["hit_rate"])
    best, baseline = saved.evaluation["hit_rate"].max(), saved.evaluation.iloc[0]["hit_rate"]
    assert saved.evaluation.iloc[0]["method"] == "popularity" and best >= 2 * baseline
    section = products.section_view(context, KEY, products.SECTION_PRODUCTS)
    table = _by_id(section, ids.PRODUCTS_EVALUATION_TABLE)
    cells = [[td.children for td in tr.children] for tr in table.children[1].children]
    assert [row[1] for row in cells] == [f"{v:.3f}" for v in saved.evaluation["hit_rate"]]
    note = str(_by_id(section, ids.PRODUCTS_EVALUATION).children)
    assert f"{saved.n_cases:,} cases" in note and saved.cut_date in note
    # In the dataset's registry, read back by a new app context instead of refitted.
    runs = context.registry_for(KEY).runs(RECOMMENDATION)
    assert [r.run_id for r in runs] == [saved.run_id]
    other = AppContext(settings=dash_settings, datasets=DatasetStore.for_settings(dash_settings))
    other.datasets.remember(KEY, dataclasses.replace(context.dataset(KEY)))
    assert product_data.recommender(other, KEY).run_id == saved.run_id


def _step_shares(figure) -> dict[int, float]:
    sankey = figure.data[0]
    shares: dict[int, float] = {}
    labels = list(sankey.node.customdata[:, 0])
    for source, share in zip(sankey.link.source, sankey.link.customdata[:, 2], strict=True):
        step = int(labels[source].split(":")[0].removeprefix("step "))
        shares[step] = shares.get(step, 0.0) + float(share)
    return shares


@pytest.mark.parametrize("dimension", ["category", "page", "colour"])
def test_the_sankeys_shares_sum_to_one_per_step(context, dimension):
    figure, note, purchases = products.paths_view(context, KEY, SessionFilter(), dimension, 4, 0.02)
    shares = _step_shares(figure)
    assert sorted(shares) == [1, 2, 3]
    np.testing.assert_allclose(list(shares.values()), 1.0)
    labels = list(figure.data[0].node.label)
    assert "exit" in labels and purchases is None  # the bundled data has no purchases
    assert "24,026 sessions" in note


def test_the_paths_follow_the_shell_filters_and_pool_small_links(context):
    data = context.dataset(KEY)
    poland = SessionFilter(country=(29,))
    _, note, _ = products.paths_view(context, KEY, poland, "category", 3, 0.05)
    kept = int(poland.mask(data.sessions).sum())
    assert f"{kept:,} sessions" in note and kept < len(data.sessions)
    paths = product_data.paths_for(data, poland, product_data.PathSetting("category", 3, 0.05))
    assert paths.sessions == kept
    code_of = paths.nodes.set_index("node")["code"]
    into_values = paths.links[code_of[paths.links["target"]].to_numpy() >= 0]
    assert (into_values["share"] >= 0.05).all()  # smaller links went to "other"
    unpooled = product_data.paths_for(data, poland, product_data.PathSetting("category", 3, 0.0))
    assert len(unpooled.links) > len(paths.links)
    nothing = SessionFilter(start=data.info["last_date"], end=data.info["last_date"], country=(999,))
    empty, note, _ = products.paths_view(context, KEY, nothing, "category", 4, 0.02)
    assert "0 sessions" in note and not empty.data
    assert products.paths_view(context, KEY, SessionFilter(), "no-such-column", 99, None)[0].data[0].type == "sankey"


def test_with_purchases_the_grid_has_cart_and_purchase_rates_and_paths_their_rate(shop_context):
    context, key = shop_context
    section = products.section_view(context, key, products.SECTION_PRODUCTS)
    fields = [c["field"] for c in _by_id(section, ids.PRODUCTS_GRID).columnDefs]
    assert {"cart_rate", "purchase_rate", "carts", "purchases"} <= set(fields) and "review_rate" not in fields
    paths_layout = products.section_view(context, key, products.SECTION_PATHS)
    assert _by_id(paths_layout, ids.PRODUCTS_PURCHASE_PATHS_GRAPH) is not None
    figure, _, purchases = products.paths_view(context, key, SessionFilter(), "category", 4, 0.02)
    np.testing.assert_allclose(list(_step_shares(figure).values()), 1.0)
    bars = purchases.data[0]
    assert len(bars.y) > 0 and all(0 <= x <= 1 for x in bars.x) and "→" in bars.y[0]
    assert "Conversion (purchases)" in purchases.layout.xaxis.title.text
    detail = products.detail_view(context, key, None)
    assert _find(detail, lambda c: isinstance(getattr(c, "id", None), dict))


def test_sankey_figure_of_no_paths_says_so():
    empty = product_data._no_paths(product_data.PathSetting("category", 4, 0.02))
    figure = sankey_figure(empty, "Category")
    assert not figure.data and "No sessions" in figure.layout.annotations[0].text


def test_a_viewer_may_use_every_products_callback(app):
    assert tab_role(products.TAB_ID) == VIEWER
    assert required_role(ids.PRODUCTS_GRID) == VIEWER
    keys = [k for k in app.callback_map if "products-" in k]
    assert len(keys) >= 4
    for key in keys:
        callback = app.callback_map[key]
        body = {"output": key, "inputs": callback["inputs"], "state": callback["state"]}
        assert callback_role(body, app.callback_map) == VIEWER, key


def test_a_recommender_without_an_evaluation_shows_why(context):
    saved = dataclasses.replace(
        product_data.recommender(context, KEY),
        evaluation=product_data.pd.DataFrame(),
        problem="a time split needs events on at least two distinct dates",
    )
    text = str(evaluation_table(saved))
    assert "Not evaluated: a time split needs events on at least two distinct dates" in text
