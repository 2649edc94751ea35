"""EDA tab: figure builders, the label note, the layout, and the callbacks called as plain functions.

Uses the ``context`` and ``app`` fixtures of ``tests/dashboard/conftest.py`` (bundled data).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import plotly.graph_objects as go
import pytest
from dash import html, no_update

from dashboard import ids
from dashboard.context import AppContext
from dashboard.figures.kpi import NO_SESSIONS
from dashboard.tabs import TABS, eda
from ml.config import BUNDLED_DATASET_KEY
from ml.data.loading import load_events
from ml.data.synthetic_logs import multi_category_store_log, visitor_log
from ml.features.kpis import SessionFilter
from ml.features.labels import INPUT_LABEL
from ml.features.prepared import PreparedData, prepare
from ml.features.window import WINDOW_FEATURES
from ml.serving.datasets import DatasetStore

FILTER = SessionFilter(start=date(2008, 5, 1), end=date(2008, 6, 30), country=(9, 29), main_category=(1, 3))
NOBODY = SessionFilter(start=date(2030, 1, 1))
GRAPHS = (
    ids.EDA_PRICE_GRAPH,
    ids.EDA_SESSION_LENGTH_GRAPH,
    ids.EDA_PAGE_LOCATION_GRAPH,
    ids.EDA_CATEGORY_COLOUR_GRAPH,
    ids.EDA_CORRELATION_GRAPH,
    ids.EDA_TOP_PRODUCTS_GRAPH,
    ids.EDA_DIMENSION_GRAPH,
    ids.EDA_WEEKDAY_GRAPH,
)
VIEWS = (
    eda.price_view,
    eda.session_length_view,
    eda.page_location_view,
    eda.category_colour_view,
    eda.correlation_view,
    eda.top_products_view,
    eda.dimension_view,
    eda.weekday_view,
)


def _annotation_texts(fig: go.Figure) -> list[str]:
    return [a.text for a in fig.layout.annotations]


def _axis_labels(fig: go.Figure) -> list[str]:
    labels: list[str] = []
    for trace in fig.data:
        for axis in ("x", "y"):
            values = getattr(trace, axis, None)
            if values is not None and len(values) and isinstance(values[0], str):
                labels.extend(values)
    return labels


@pytest.fixture(scope="module")
def data(context: AppContext) -> PreparedData:
    return context.dataset(BUNDLED_DATASET_KEY)


@pytest.mark.parametrize("view", VIEWS, ids=lambda v: v.__name__)
def test_every_view_draws_the_filtered_data(data: PreparedData, view):
    fig = view(data, FILTER)
    assert isinstance(fig, go.Figure)
    assert fig.data, "expected traces"
    assert NO_SESSIONS not in _annotation_texts(fig)


@pytest.mark.parametrize("view", VIEWS, ids=lambda v: v.__name__)
def test_every_view_says_so_when_no_session_matches(data: PreparedData, view):
    fig = view(data, NOBODY)
    assert not fig.data
    assert _annotation_texts(fig) == [NO_SESSIONS]


def test_axes_show_decoded_labels_not_codes(data: PreparedData):
    heatmap = eda.category_colour_view(data, FILTER)
    assert {"trousers", "blouses"} <= set(heatmap.data[0].x)
    assert {"blue", "navy blue"} <= set(heatmap.data[0].y)
    pages = eda.page_location_view(data, FILTER)
    assert "top<br>left" in pages.data[0].x
    assert "page 1" in pages.data[0].y
    weekdays = eda.weekday_view(data, FILTER)
    assert list(weekdays.data[0].x) == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    countries = eda.dimension_view(data, FILTER)
    assert set(countries.data[0].y) == {"Czech Republic", "Poland"}
    products = eda.top_products_view(data, FILTER)
    assert all(" · " in name for name in _axis_labels(products))
    correlation = eda.correlation_view(data, FILTER)
    assert "Clicks" in correlation.data[0].x
    for fig in (heatmap, pages, weekdays, countries, products, correlation):
        labels = _axis_labels(fig)
        assert labels
        assert not [label for label in labels if label.isdigit() or label.startswith("code ")]


def test_price_figure_has_one_panel_per_category_with_its_median(data: PreparedData):
    fig = eda.price_view(data, FILTER)
    names = [trace.name for trace in fig.data]
    assert names == ["trousers", "skirts", "blouses", "sale"]  # clicks of the filtered sessions, any category
    assert any("median $" in text for text in _annotation_texts(fig))
    assert fig.layout.xaxis4.title.text == "Price (USD)"


def test_top_products_by_review_rate_and_category_colour_counts(data: PreparedData):
    rate = eda.top_products_view(data, FILTER, "review_rate")
    assert all(0 <= x <= 1 for trace in rate.data for x in trace.x)
    assert rate.layout.xaxis.tickformat == ".0%"
    assert eda.top_products_view(data, FILTER, "nonsense").layout.xaxis.title.text == "Views"
    counts = eda.category_colour_view(data, FILTER, eda.COUNTS)
    assert counts.data[0].texttemplate == "%{z:,}"


def test_correlation_figure_states_the_sample(data: PreparedData):
    fig = eda.correlation_view(data, SessionFilter())
    assert "fixed-seed sample" in fig.layout.title.text
    assert fig.data[0].zmin == -1
    assert fig.data[0].zmax == 1


def _ids(component: object) -> list[str]:
    found = []
    if getattr(component, "id", None) is not None:
        found.append(component.id)
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if child is not None and not isinstance(child, str | int | float):
            found.extend(_ids(child))
    return found


def _text(component: object) -> str:
    if isinstance(component, str | int | float):
        return str(component)
    children = getattr(component, "children", None)
    if isinstance(children, list | tuple):
        return "".join(_text(c) for c in children)
    return _text(children) if children is not None else ""


def test_layout_holds_every_graph_once_and_the_label_note(context: AppContext):
    tree = eda.layout(context)
    assert isinstance(tree, html.Div)
    found = _ids(tree)
    assert len(found) == len(set(found))
    expected = {ids.EDA_LABEL_NOTE, ids.EDA_TOP_PRODUCTS_METRIC, ids.EDA_CATEGORY_COLOUR_NORM, ids.EDA_DIMENSION_PICK}
    assert set(GRAPHS) | expected <= set(found)
    assert ids.EDA_EVENTS_GRAPH not in found and ids.EDA_HOUR_GRAPH not in found  # all views, no timestamps


def test_label_note_names_the_label_columns_and_the_model_inputs(context: AppContext, data: PreparedData):
    text = _text(eda.label_note(data, context.settings.window))
    for header in ("page 2 (clothing model)", "session ID", "order", "price", "price 2"):
        assert header in text
    assert f"first {context.settings.window} clicks" in text
    assert all(spec.label in text for spec in WINDOW_FEATURES)
    assert "real label column" not in text
    labelled = replace(data, definition=INPUT_LABEL)
    assert "real label column" in _text(eda.label_note(labelled, context.settings.window))


def test_the_app_registers_the_eda_tab_and_its_callbacks_run(app):
    assert eda in TABS
    callbacks = app.callback_map
    no_filter = (None, None, [], [])
    extra = {
        ids.EDA_TOP_PRODUCTS_GRAPH: ("review_rate",),
        ids.EDA_CATEGORY_COLOUR_GRAPH: ("views",),
        ids.EDA_DIMENSION_GRAPH: ("main_category",),
    }
    for graph in GRAPHS:
        fig = callbacks[f"{graph}.figure"]["callback"].__wrapped__(
            *no_filter, *extra.get(graph, ()), BUNDLED_DATASET_KEY
        )
        assert isinstance(fig, go.Figure) and fig.data, graph

    cross_filter = next(
        value["callback"].__wrapped__
        for value in callbacks.values()
        if [i["id"] for i in value["inputs"]] == [ids.EDA_DIMENSION_GRAPH]
    )
    click = {"points": [{"customdata": [29, 0.5, 0.2, 100.0]}]}
    names = [{"type": ids.FILTER_DIMENSION, "name": n} for n in ("country", "main_category", "main_colour")]
    assert cross_filter(click, "country", names, [[9], [], []]) == [[9, 29], no_update, no_update]
    assert cross_filter(click, "country", names, [[9, 29], [], []]) == [[9], no_update, no_update]
    assert cross_filter(click, "main_category", names, [[9], [1], []]) == [no_update, [1, 29], no_update]
    assert cross_filter(None, "country", names, [[9], [], []]) == [no_update] * 3


# ---------------------------------------------------------------- any profile: a generated shop log
@pytest.fixture(scope="module")
def shop_context(dash_settings, tmp_path_factory) -> AppContext:
    """An app context with a multi-category-store log (views, carts, purchases) added as an upload is."""
    root = tmp_path_factory.mktemp("shop")
    datasets = DatasetStore.for_settings(dash_settings.with_overrides(datasets_dir=root / "datasets"))
    raw = multi_category_store_log(6000, seed=4).to_csv(index=False).encode()
    datasets.add(load_events(raw, name="store.csv"), "store")
    return AppContext(settings=dash_settings, datasets=datasets)


@pytest.fixture(scope="module")
def store(shop_context: AppContext) -> PreparedData:
    return shop_context.dataset("store")


@pytest.fixture(scope="module")
def visitors() -> PreparedData:
    """A visitor log: no prices, no categories, sessions cut by inactivity."""
    raw = visitor_log(3000, seed=2).to_csv(index=False).encode()
    return prepare(load_events(raw, name="visitors.csv"), display_name="visitors", key="visitors")


GENERIC_VIEWS = (
    eda.price_view,
    eda.session_length_view,
    eda.events_view,
    eda.hour_view,
    eda.correlation_view,
    eda.top_products_view,
    eda.dimension_view,
    eda.weekday_view,
)


@pytest.mark.parametrize("view", GENERIC_VIEWS, ids=lambda v: v.__name__)
def test_every_generic_chart_draws_a_shop_log(store: PreparedData, view):
    fig = view(store, SessionFilter())
    assert fig.data, "expected traces"
    assert not _annotation_texts(fig) or "left out" not in " ".join(_annotation_texts(fig))


def test_conversion_lines_name_the_purchase_label(store: PreparedData):
    assert store.definition.title == "Conversion (purchases)"
    for view in (eda.session_length_view, eda.hour_view, eda.weekday_view):
        names = [trace.name for trace in view(store, SessionFilter()).data]
        assert "Conversion (purchases)" in names, view.__name__
    dimension = eda.dimension_view(store, SessionFilter(), "main_brand")
    assert "Conversion (purchases)" in dimension.data[0].hovertemplate


def test_top_products_rank_by_cart_and_purchase_rate_on_a_shop_log(store: PreparedData):
    for by, title in (("cart_rate", "Cart rate"), ("purchase_rate", "Purchase rate")):
        fig = eda.top_products_view(store, SessionFilter(), by)
        assert fig.layout.xaxis.title.text.startswith(title)
        assert fig.layout.xaxis.tickformat == ".0%"
        assert all(0 <= x <= 1 for trace in fig.data for x in trace.x)


def test_uci_only_charts_are_left_out_with_one_line_each(store: PreparedData):
    notes = eda.left_out_notes(store)
    assert notes == [
        "Category x colour: left out, this dataset has no colour column (the UCI clothing file has one).",
        "Catalogue page x photo location: left out, this dataset has no catalogue page and photo location "
        "columns (the UCI clothing file has them).",
    ]
    for view in (eda.category_colour_view, eda.page_location_view):
        fig = view(store, SessionFilter())  # a stale callback for a chart not shown: a note, never an error
        assert not fig.data
        assert _annotation_texts(fig)[0] in notes


def _component(tree: object, component_id: str) -> object:
    if getattr(tree, "id", None) == component_id:
        return tree
    children = getattr(tree, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if child is not None and not isinstance(child, str | int | float):
            found = _component(child, component_id)
            if found is not None:
                return found
    return None


def test_layout_of_a_shop_log_shows_its_charts_and_names_the_left_out_ones(shop_context: AppContext):
    tree = eda.layout(shop_context, "store")
    found = set(_ids(tree))
    assert {ids.EDA_EVENTS_GRAPH, ids.EDA_HOUR_GRAPH, ids.EDA_PRICE_GRAPH, ids.EDA_DIMENSION_GRAPH} <= found
    assert ids.EDA_CATEGORY_COLOUR_GRAPH not in found and ids.EDA_PAGE_LOCATION_GRAPH not in found
    text = _text(tree)
    assert "Category x colour: left out" in text
    assert "The data has purchase events" in text
    ranking = [o["label"] for o in _component(tree, ids.EDA_TOP_PRODUCTS_METRIC).options]
    assert ranking == ["Views", "Re-view rate", "Cart rate", "Purchase rate"]
    dimensions = [o["value"] for o in _component(tree, ids.EDA_DIMENSION_PICK).options]
    assert dimensions == ["main_category", "main_brand"]


def test_a_log_without_prices_leaves_the_price_chart_out(visitors: PreparedData):
    fig = eda.price_view(visitors, SessionFilter())
    assert not fig.data
    assert _annotation_texts(fig) == ["Price by category: left out, this dataset has no price column."]
    assert eda.events_view(visitors, SessionFilter()).data
