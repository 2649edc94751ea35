"""Components of the Products tab: the product grid, a product's detail with its lists, the evaluation table."""

from __future__ import annotations

import math

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
import pandas as pd
from dash import html

from dashboard import ids
from dashboard.tabs.products.data import MAX_GRID_ROWS, dimension_title
from ml.models.recommend import FALLBACK
from ml.serving.recommendations import LIST_METHODS, METHOD_TITLES, SavedRecommender

RATE_TITLES = {
    "review_rate": (
        "Re-view rate (proxy)",
        "share of the product's sessions that viewed it again (purchase-intent proxy)",
    ),
    "cart_rate": ("Cart rate", "share of the product's sessions that added it to the cart"),
    "purchase_rate": ("Purchase rate", "share of the product's sessions that bought it"),
}
NUMBER_COLUMNS = {
    "views": ("Views", "views of the product", ",d"),
    "sessions": ("Sessions", "sessions with an event on the product", ",d"),
    "session_share": ("Share of sessions", "sessions with the product / all sessions", ".1%"),
    "carts": ("Carts", "add-to-cart events", ",d"),
    "purchases": ("Purchases", "purchase events", ",d"),
    "mean_price": ("Price", "mean price over its events", ",.2f"),
}
LIST_HELP = {
    "next_view": "score = share of the sessions leaving this product whose next product was the suggestion; "
    "support = those sessions",
    "co_occurrence": "score = cosine similarity of the two products' sessions; support = sessions that saw both",
}


def _number(field: str, title: str, tooltip: str, fmt: str) -> dict:
    return {
        "field": field,
        "headerName": title,
        "headerTooltip": tooltip,
        "type": "rightAligned",
        "filter": "agNumberColumnFilter",
        "minWidth": 110,
        "valueFormatter": {"function": f"params.value == null ? '–' : d3.format('{fmt}')(params.value)"},
    }


def grid_columns(table: pd.DataFrame, rates: list[str], attributes: list[str]) -> list[dict]:
    """Product, counts, rates, price, then the category and dimensions."""
    defs = [{"field": "product", "headerName": "Product", "pinned": "left", "minWidth": 110, "filter": True}]
    for field in ("views", "sessions", "session_share", "carts", "purchases"):
        if field in table:
            defs.append(_number(field, *NUMBER_COLUMNS[field]))
    for field in rates:
        defs.append(_number(field, *RATE_TITLES[field], ".1%"))
    defs.append(_number("mean_price", *NUMBER_COLUMNS["mean_price"]))
    defs += [{"field": c, "headerName": dimension_title(c), "filter": True, "minWidth": 110} for c in attributes]
    return defs


def grid_rows(table: pd.DataFrame) -> list[dict]:
    """The most viewed products (at most ``MAX_GRID_ROWS``) as grid rows, NaN as empty."""
    shown = table.head(MAX_GRID_ROWS).reset_index(names="product")
    shown["product"] = shown["product"].astype(str)
    return shown.astype(object).where(shown.notna(), None).to_dict("records")


def product_grid(table: pd.DataFrame, rates: list[str], attributes: list[str]) -> dag.AgGrid:
    return dag.AgGrid(
        id=ids.PRODUCTS_GRID,
        rowData=grid_rows(table),
        columnDefs=grid_columns(table, rates, attributes),
        getRowId="params.data.product",
        defaultColDef={
            "sortable": True,
            "resizable": True,
            "minWidth": 95,
            "flex": 1,
            "wrapHeaderText": True,
            "autoHeaderHeight": True,
        },
        dashGridOptions={
            "rowSelection": {"mode": "singleRow", "checkboxes": False, "enableClickSelection": True},
            "pagination": True,
            "paginationPageSize": 15,
            "paginationPageSizeSelector": [15, 50, 100],
            "tooltipShowDelay": 300,
            "animateRows": False,
            "quickFilterText": "",
        },
        className="products-grid",
        style={"height": "560px", "width": "100%"},
    )


def _format(value: object, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return format(value, fmt)


def attribute_list(row: pd.Series, rates: list[str], attributes: list[str]) -> html.Dl:
    """A product's figures and attributes as a definition list."""
    items: list[tuple[str, str]] = []
    for field in ("views", "sessions", "session_share", "carts", "purchases", "mean_price"):
        if field in row:
            title, _, fmt = NUMBER_COLUMNS[field]
            items.append((title, _format(row[field], fmt.replace("d", ".0f") if fmt.endswith("d") else fmt)))
    items += [(RATE_TITLES[r][0], _format(row[r], ".1%")) for r in rates]
    items += [(dimension_title(c), str(row[c])) for c in attributes]
    children = []
    for title, value in items:
        children += [html.Dt(title, className="col-6 fw-normal text-muted"), html.Dd(value, className="col-6 mb-0")]
    return html.Dl(children, className="row small mb-2")


def recommendation_table(method: str, frame: pd.DataFrame, attributes: list[str]) -> dbc.Card:
    """One list: rank, product, score, support, and the suggestion's attributes; fallback rows marked."""
    head = html.Tr(
        [
            html.Th("#"),
            html.Th("Product"),
            html.Th("Score", title=LIST_HELP[method]),
            html.Th("Support", title="sessions behind the score"),
            html.Th("Views"),
            html.Th("Price"),
            *[html.Th(dimension_title(c)) for c in attributes],
        ]
    )
    rows = []
    for rank, row in enumerate(frame.itertuples(index=False), start=1):
        fallback = row.method == FALLBACK
        product = [str(row.product)]
        if fallback:
            product.append(dbc.Badge("popular", color="secondary", className="ms-1", title="popularity fallback"))
        record = row._asdict()
        rows.append(
            html.Tr(
                [
                    html.Td(rank),
                    html.Td(product),
                    html.Td(f"{row.score:.3f}"),
                    html.Td(f"{int(row.support):,}"),
                    html.Td(_format(record.get("views"), ",.0f")),
                    html.Td(_format(record.get("mean_price"), ",.2f")),
                    *[html.Td(str(record.get(c, "–"))) for c in attributes],
                ],
                className="text-muted" if fallback else None,
            )
        )
    fallback_count = int((frame["method"] == FALLBACK).sum())
    note = LIST_HELP[method]
    if fallback_count:
        note += (
            f". {fallback_count} slot{'s' if fallback_count > 1 else ''} filled with popular products "
            "(too little history: pairs need 2+ sessions); their score is the share of sessions that saw them."
        )
    return dbc.Card(
        [
            dbc.CardHeader(html.H6(LIST_METHODS[method], className="mb-0")),
            dbc.CardBody(
                [
                    dbc.Table(
                        [html.Thead(head), html.Tbody(rows)],
                        size="sm",
                        hover=True,
                        responsive=True,
                        className="mb-1 small products-list-table",
                        id={"type": ids.PRODUCTS_LIST_TABLE, "method": method},
                    ),
                    html.Div(note, className="small text-muted"),
                ],
                className="p-2",
            ),
        ],
        className="h-100",
    )


def product_detail(
    product_id: str,
    row: pd.Series | None,
    lists: dict[str, pd.DataFrame],
    rates: list[str],
    attributes: list[str],
) -> list:
    """The chosen product's figures and attributes, then its two lists side by side."""
    title = html.H5(["Product ", html.Strong(product_id)], className="mb-2")
    facts = (
        attribute_list(row, rates, attributes)
        if row is not None
        else html.P("Not in the data: popular products only.", className="small")
    )
    shown = attributes[:4]  # the list tables stay readable; every attribute is in the grid
    tables = [recommendation_table(m, frame, shown) for m, frame in lists.items()]
    return [
        dbc.Row(
            [
                dbc.Col([title, facts], lg=3),
                dbc.Col([html.Div(t, className="mb-2") for t in tables], lg=9),
            ],
            className="g-3",
        )
    ]


def evaluation_table(saved: SavedRecommender) -> list:
    """Hit rate@k, MRR@k and coverage per method against popularity, with the split it was measured on."""
    table, k = saved.evaluation, saved.k
    if table.empty:
        reason = saved.problem or "none is saved with this recommender"
        return [dbc.Alert(f"Not evaluated: {reason}. The lists above still work.", color="warning")]
    best = saved.best
    head = html.Tr(
        [
            html.Th("Method"),
            html.Th(f"Hit rate@{k}", title=f"share of cases whose next product is in the top {k}"),
            html.Th(f"MRR@{k}", title="mean of 1 / rank of the next product (0 when not in the top k)"),
            html.Th("Coverage", title=f"share of the catalogue shown in any top {k}"),
            html.Th("× popularity", title="hit rate / the popularity baseline's hit rate"),
            html.Th("Fallback share", title="share of list slots popularity had to fill"),
        ]
    )
    rows = [
        html.Tr(
            [
                html.Td(METHOD_TITLES.get(r.method, r.method)),
                html.Td(f"{r.hit_rate:.3f}"),
                html.Td(f"{r.mrr:.3f}"),
                html.Td(f"{r.coverage:.1%}"),
                html.Td(f"{r.lift_vs_popularity:.2f}×"),
                html.Td(f"{r.fallback_share:.1%}"),
            ],
            className="table-primary fw-semibold" if r.method == best["method"] else None,
        )
        for r in table.itertuples(index=False)
    ]
    note = (
        f"Trained on the {saved.train_sessions:,} sessions before {saved.cut_date}, tested on "
        f"{saved.n_cases:,} cases from the {saved.test_sessions:,} sessions from {saved.cut_date} on "
        f"(the last 20% of days held out). {saved.case_rule[:1].upper()}{saved.case_rule[1:]}. "
        f"Best: {METHOD_TITLES.get(best['method'], best['method'])}, "
        f"{best['lift_vs_popularity']:.1f}× the popularity baseline's hit rate. "
        f"Computed once for this dataset and saved with its recommender (run {saved.run_id})."
    )
    return [
        dbc.Table(
            [html.Thead(head), html.Tbody(rows)],
            size="sm",
            bordered=False,
            hover=True,
            responsive=True,
            className="mb-1 products-evaluation-table",
            id=ids.PRODUCTS_EVALUATION_TABLE,
        ),
        html.Div(note, className="small text-muted"),
    ]
