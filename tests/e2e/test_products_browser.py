"""The Products tab in a real browser: pick a product, see its recommendations and the evaluation; open the paths."""

from __future__ import annotations

from dashboard import ids
from tests.e2e.conftest import save_screenshot, wait_for_dash

GRID_ROWS = f"#{ids.PRODUCTS_GRID} .ag-row"
PRODUCT_CELLS = f"#{ids.PRODUCTS_GRID} .ag-row [col-id='product']"  # the pinned product column


def _list_products(page, method: str) -> list[str]:
    selector = f"table[id*='{method}'] tbody tr td:nth-child(2)"
    return [t.replace("popular", "").strip() for t in page.locator(selector).all_inner_texts()]


def open_products(page, url: str) -> None:
    page.goto(url + "/?tab=products")
    page.wait_for_selector(GRID_ROWS)
    page.wait_for_selector(f"#{ids.PRODUCTS_EVALUATION_TABLE}")
    page.wait_for_selector("table[id*='next_view'] tbody tr")
    wait_for_dash(page)


def test_pick_a_product_and_see_its_recommendations_and_the_evaluation(page, app_server):
    open_products(page, app_server.url)
    detail = page.locator(f"#{ids.PRODUCTS_DETAIL}")
    first = page.locator(f"#{ids.PRODUCTS_GRID} .ag-row[row-index='0'] [col-id='product']").inner_text().strip()
    assert f"Product {first}" in detail.inner_text()  # the most viewed product until one is picked

    evaluation = page.locator(f"#{ids.PRODUCTS_EVALUATION_TABLE}").inner_text()
    for method in ("Popularity", "Viewed next", "Also viewed", "Blend"):
        assert method in evaluation
    note = page.locator(f"#{ids.PRODUCTS_EVALUATION}").inner_text()
    assert "cases" in note and "popularity baseline" in note

    page.fill(f"#{ids.PRODUCTS_SEARCH}", "C1")  # the quick filter narrows the grid
    page.wait_for_function(
        f"[...document.querySelectorAll(\"{GRID_ROWS} [col-id='product']\")].every(c => c.innerText.includes('C1'))",
        timeout=10_000,
    )
    chosen = page.locator(PRODUCT_CELLS).first.inner_text().strip()
    page.locator(PRODUCT_CELLS).first.click()
    page.wait_for_function(
        f"document.querySelector('#{ids.PRODUCTS_DETAIL}').innerText.includes('Product {chosen}')",
        timeout=20_000,
    )
    wait_for_dash(page)
    next_products = _list_products(page, "next_view")
    also_products = _list_products(page, "co_occurrence")
    assert len(next_products) == len(also_products) == 10
    assert chosen not in next_products and chosen not in also_products
    text = detail.inner_text()
    assert "Viewed next" in text and "Also viewed in the same session" in text
    assert "Score" in text and "Support" in text
    page.fill(f"#{ids.PRODUCTS_SEARCH}", "")
    wait_for_dash(page)
    save_screenshot(page, "products")


def test_the_paths_view_shows_a_sankey_that_follows_its_controls(page, app_server):
    open_products(page, app_server.url)
    page.get_by_role("tab", name="Paths").click()
    page.wait_for_selector(f"#{ids.PRODUCTS_PATHS_GRAPH} .sankey")
    wait_for_dash(page)
    labels = page.evaluate(f"document.querySelector('#{ids.PRODUCTS_PATHS_GRAPH} .js-plotly-plot').data[0].node.label")
    assert "exit" in labels and "trousers" in labels
    assert "sessions" in page.locator(f"#{ids.PRODUCTS_PATHS_NOTE}").inner_text()
    assert page.locator(f"#{ids.FILTER_BAR}").is_visible()  # paths follow the shell filters
    save_screenshot(page, "paths")

    page.locator(f"#{ids.PRODUCTS_PATHS_DIMENSION}").click()
    page.get_by_role("option", name="Catalogue page").click()
    page.wait_for_function(
        f"document.querySelector('#{ids.PRODUCTS_PATHS_GRAPH} .js-plotly-plot').data[0].node.label"
        ".some(l => l.startsWith('page '))",
        timeout=20_000,
    )
    wait_for_dash(page)
