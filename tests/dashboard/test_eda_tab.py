"""EDA tab: figure builders, the label note, the layout, and the callbacks called as plain functions.

Uses the ``context`` and ``app`` fixtures of ``tests/dashboard/conftest.py`` (bundled data).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import plotly.graph_objects as go
import pytest
from dash import html

from dashboard import ids
from dashboard.context import AppContext
from dashboard.figures.kpi import NO_SESSIONS
from dashboard.tabs import TABS, eda
from ml.config import BUNDLED_DATASET_KEY
from ml.features.kpis import SessionFilter
from ml.features.labels import INPUT_LABEL
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
    ids.EDA_COUNTRY_GRAPH,
    ids.EDA_WEEKDAY_GRAPH,
)
VIEWS = (
    eda.price_view,
    eda.session_length_view,
    eda.page_location_view,
    eda.category_colour_view,
    eda.correlation_view,
    eda.top_products_view,
    eda.country_view,
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


@pytest.mark.parametrize("view", VIEWS, ids=lambda v: v.__name__)
def test_every_view_draws_the_filtered_data(context: AppContext, view):
    fig = view(context, FILTER)
    assert isinstance(fig, go.Figure)
    assert fig.data, "expected traces"
    assert NO_SESSIONS not in _annotation_texts(fig)


@pytest.mark.parametrize("view", VIEWS, ids=lambda v: v.__name__)
def test_every_view_says_so_when_no_session_matches(context: AppContext, view):
    fig = view(context, NOBODY)
    assert not fig.data
    assert _annotation_texts(fig) == [NO_SESSIONS]


def test_axes_show_decoded_labels_not_codes(context: AppContext):
    heatmap = eda.category_colour_view(context, FILTER)
    assert {"trousers", "blouses"} <= set(heatmap.data[0].x)
    assert {"blue", "navy blue"} <= set(heatmap.data[0].y)
    pages = eda.page_location_view(context, FILTER)
    assert "top<br>left" in pages.data[0].x
    assert "page 1" in pages.data[0].y
    weekdays = eda.weekday_view(context, FILTER)
    assert list(weekdays.data[0].x) == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    countries = eda.country_view(context, FILTER)
    assert set(countries.data[0].y) == {"Czech Republic", "Poland"}
    products = eda.top_products_view(context, FILTER)
    assert all(" · " in name for name in _axis_labels(products))
    correlation = eda.correlation_view(context, FILTER)
    assert "Clicks" in correlation.data[0].x
    for fig in (heatmap, pages, weekdays, countries, products, correlation):
        labels = _axis_labels(fig)
        assert labels
        assert not [label for label in labels if label.isdigit() or label.startswith("code ")]


def test_price_figure_has_one_panel_per_category_with_its_median(context: AppContext):
    fig = eda.price_view(context, FILTER)
    names = [trace.name for trace in fig.data]
    assert names == ["trousers", "skirts", "blouses", "sale"]  # clicks of the filtered sessions, any category
    assert any("median $" in text for text in _annotation_texts(fig))
    assert fig.layout.xaxis4.title.text == "Price (USD)"


def test_top_products_by_review_rate_and_category_colour_counts(context: AppContext):
    rate = eda.top_products_view(context, FILTER, "review_rate")
    assert all(0 <= x <= 1 for trace in rate.data for x in trace.x)
    assert rate.layout.xaxis.tickformat == ".0%"
    assert eda.top_products_view(context, FILTER, "nonsense").layout.xaxis.title.text == "Views (clicks)"
    counts = eda.category_colour_view(context, FILTER, eda.COUNTS)
    assert counts.data[0].texttemplate == "%{z:,}"


def test_correlation_figure_states_the_sample(context: AppContext):
    fig = eda.correlation_view(context, SessionFilter())
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
    assert set(GRAPHS) | {ids.EDA_LABEL_NOTE, ids.EDA_TOP_PRODUCTS_METRIC, ids.EDA_CATEGORY_COLOUR_NORM} <= set(found)


def test_label_note_names_the_label_columns_and_the_model_inputs(context: AppContext):
    text = _text(eda.label_note(context))
    for header in ("page 2 (clothing model)", "session ID", "order", "price", "price 2"):
        assert header in text
    assert f"first {context.settings.window} clicks" in text
    assert all(spec.label in text for spec in WINDOW_FEATURES)
    assert "real label column" not in text
    labelled_store = DatasetStore.for_settings(context.settings)
    labelled_store.remember(BUNDLED_DATASET_KEY, replace(context.data, definition=INPUT_LABEL))
    labelled = replace(context, datasets=labelled_store, _model_caches={})
    assert "real label column" in _text(eda.label_note(labelled))


def test_the_app_registers_the_eda_tab_and_its_callbacks_run(app):
    assert eda in TABS
    callbacks = app.callback_map
    no_filter = (None, None, [], [])
    extra = {ids.EDA_TOP_PRODUCTS_GRAPH: ("review_rate",), ids.EDA_CATEGORY_COLOUR_GRAPH: ("views",)}
    for graph in GRAPHS:
        fig = callbacks[f"{graph}.figure"]["callback"].__wrapped__(*no_filter, *extra.get(graph, ()))
        assert isinstance(fig, go.Figure) and fig.data, graph

    cross_filter = next(
        value["callback"].__wrapped__
        for value in callbacks.values()
        if [i["id"] for i in value["inputs"]] == [ids.EDA_COUNTRY_GRAPH]
    )
    click = {"points": [{"customdata": [29, 0.5, 0.2, 100.0]}]}
    assert cross_filter(click, [9]) == ([9, 29], None)
    assert cross_filter(click, [9, 29]) == ([9], None)
