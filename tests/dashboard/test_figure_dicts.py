"""Figures written as JSON-ready dicts (``style.figure_dict``) are what ``go.Figure`` would make of them.

The hot figures (KPI trend, breakdown, funnel; what-if gauge, waterfall,
sensitivity) skip building a figure object. Each must still be a valid figure
whose JSON is exactly the JSON of ``go.Figure`` built from it, arrays aside:
Plotly's validators send NumPy arrays as typed arrays (``bdata``), the dicts send
lists, and the browser draws both the same; times are written with or without
``.000000``.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import date

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest

from dashboard.context import AppContext
from dashboard.figures import style
from dashboard.figures.kpi import breakdown_figure, funnel_figure, trend_figure
from dashboard.figures.whatif import probability_figure, sensitivity_figure, waterfall_figure
from dashboard.tabs import whatif as tab
from ml.config import BUNDLED_DATASET_KEY
from ml.features import kpis
from ml.features.kpis import SessionFilter
from ml.serving import whatif as W
from ml.serving.datasets import DatasetStore

WHOLE_SECOND = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.0+)?")


def _plain(value):
    """JSON with typed arrays decoded into lists, so both encodings compare."""
    if isinstance(value, dict):
        if set(value) == {"dtype", "bdata"} or set(value) == {"dtype", "bdata", "shape"}:
            array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
            if "shape" in value:
                array = array.reshape([int(n) for n in str(value["shape"]).split(",")])
            return array.tolist()
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, str) and WHOLE_SECOND.fullmatch(value):
        return value.split(".")[0]  # the same time, written with or without ".000000"
    return value


def _json(figure) -> dict:
    return _plain(json.loads(pio.json.to_json_plotly(figure)))


def assert_as_go_figure_makes_it(figure: dict) -> None:
    assert isinstance(figure, dict) and set(figure) == {"data", "layout"}
    validated = go.Figure(figure)  # raises on any property Plotly does not know
    assert _json(figure) == _json(validated.to_plotly_json())


@pytest.fixture(scope="module")
def data(context):
    return context.dataset()


@pytest.fixture(scope="module")
def models(prepared, dash_settings, trained_registry) -> W.PreparedModels:
    settings = dash_settings.with_overrides(models_dir=trained_registry.root.parent)
    datasets = DatasetStore.for_settings(settings)
    datasets.remember(BUNDLED_DATASET_KEY, prepared)
    return tab.prepared_models(AppContext(settings=settings, datasets=datasets))


@pytest.fixture(scope="module")
def run_id(models) -> str:
    return tab.model_choices_view(models, None)[1]


def test_kpi_figures(data):
    june = SessionFilter(start=date(2008, 6, 1), end=date(2008, 6, 30))
    for freq in ("D", "W"):
        trend = kpis.trend(data.cube, june, freq)
        assert_as_go_figure_makes_it(trend_figure(trend, freq, "Conversion (proxy)"))
    table = kpis.breakdown(data.cube, SessionFilter(), "country")
    assert_as_go_figure_makes_it(breakdown_figure(table, (29,), "Conversion (proxy)"))
    assert_as_go_figure_makes_it(funnel_figure(kpis.funnel(data.cube, june)))


def test_the_trend_with_alert_markers_and_partial_weeks(data):
    from dashboard.tabs.kpi.views import alerts_for

    filt = SessionFilter(start=date(2008, 4, 3), end=date(2008, 8, 13))
    alerts = alerts_for(data, filt, 7, 3.5, 0)
    alerts = alerts.assign(flag=alerts.index % 9 == 0)  # some days of each metric flagged, whatever the data
    figure = trend_figure(kpis.trend(data.cube, filt, "D"), "D", "Conversion (proxy)", alerts)
    assert len(figure["data"]) > 2  # markers on flagged days
    assert_as_go_figure_makes_it(figure)
    weekly = trend_figure(kpis.trend(data.cube, filt, "W"), "W", "Conversion (proxy)")
    assert "pattern" in weekly["data"][0]["marker"]  # partial weeks hatched
    assert_as_go_figure_makes_it(weekly)


def test_what_if_figures(models, run_id):
    model = models.get(run_id)
    values = {**W.typical_values(model.controls), "first_price": 70.0}
    labels = {c.name: c.label for c in model.controls}
    for sensitivity in ("country", "first_price"):
        result = W.predict(model, values, sensitivity)
        assert_as_go_figure_makes_it(probability_figure(result.p, result.threshold))
        assert_as_go_figure_makes_it(waterfall_figure(result.contributions, labels, result.threshold))
        assert_as_go_figure_makes_it(sensitivity_figure(result.sensitivity, result.threshold))


def test_the_template_is_the_apps_and_shared():
    first = style.figure_dict([], {"template": style.TEMPLATE_NAME})
    second = style.figure_dict([], {})
    assert first["layout"]["template"] is second["layout"]["template"]
    assert first["layout"]["template"] == pio.templates[style.TEMPLATE_NAME].to_plotly_json()
