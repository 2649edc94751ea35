"""What-if tab: the model list, controls from metadata, starting points and the live update, as plain functions."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest
from dash import dcc

from dashboard import ids
from dashboard.context import AppContext
from dashboard.figures.whatif import probability_figure, sensitivity_figure, waterfall_figure
from dashboard.tabs import whatif as tab
from ml.config import BUNDLED_DATASET_KEY
from ml.features.window import window_features
from ml.models.explain import METHOD_LINEAR, Contributions, probability
from ml.serving import whatif as W
from ml.serving.datasets import DatasetStore
from ml.tasks import CLASSIFICATION


@pytest.fixture(scope="module")
def trained_context(prepared, dash_settings, trained_registry) -> AppContext:
    settings = dash_settings.with_overrides(models_dir=trained_registry.root.parent)
    datasets = DatasetStore.for_settings(settings)
    datasets.remember(BUNDLED_DATASET_KEY, prepared)
    return AppContext(settings=settings, datasets=datasets)


@pytest.fixture(scope="module")
def models(trained_context) -> W.PreparedModels:
    return tab.prepared_models(trained_context)


@pytest.fixture(scope="module")
def run_id(models) -> str:
    _, value, _, _ = tab.model_choices_view(models, None)
    return value


def _inputs(children) -> dict[str, object]:
    """The generated input components by feature name."""
    found = {}

    def walk(node) -> None:
        if isinstance(node, list | tuple):
            for child in node:
                walk(child)
            return
        component_id = getattr(node, "id", None)
        if isinstance(component_id, dict) and component_id.get("type") == "whatif-feature":
            found[component_id["name"]] = node
        inner = getattr(node, "children", None)
        if inner is not None and not isinstance(inner, str):
            walk(inner)

    walk(children)
    return found


def _text(component) -> str:
    """All the text in a component tree (or a list of them)."""
    if isinstance(component, str | int | float):
        return str(component)
    if isinstance(component, list | tuple):
        return "".join(_text(part) for part in component)
    children = getattr(component, "children", None)
    return "" if children is None else _text(children)


def test_no_model_says_train_first_and_links_to_training(context):
    options, value, message, body_style = tab.model_choices_view(tab.prepared_models(context), None)
    assert options == [] and value is None
    assert body_style == {"display": "none"}
    assert "No trained model yet" in _text(message)
    links = [c for c in message.children if isinstance(c, dcc.Link)]
    assert links and links[0].href == tab.TRAIN_TAB_HREF and "leaderboard" in links[0].href


def test_the_selector_lists_the_classifiers_in_use_and_defaults_to_the_champion(models, trained_registry):
    options, value, message, body_style = tab.model_choices_view(models, None)
    champion = trained_registry.champion(CLASSIFICATION)
    assert value == champion.run_id and message is None and body_style == {}
    assert {o["value"] for o in options} == {r.run_id for r in trained_registry.latest_per_model(CLASSIFICATION)}
    assert any("champion" in o["label"] and o["value"] == champion.run_id for o in options)
    other = next(o["value"] for o in options if o["value"] != champion.run_id)
    assert tab.model_choices_view(models, other)[1] == other  # a choice survives a registry refresh


def test_controls_are_generated_from_the_models_metadata(trained_context, models, run_id):
    inputs, note, info, options, sensitivity, session_style = tab.controls_view(
        trained_context, models, run_id, tab.START_TYPICAL, None, None, None
    )
    metadata = models.get(run_id).classifier.metadata
    ranges = metadata["feature_ranges"]
    generated = _inputs(inputs)
    assert set(generated) == set(ranges)
    for name, component in generated.items():
        assert component.id == ids.whatif_feature(name)
        saved = ranges[name]
        assert component.value == pytest.approx(saved["typical"], abs=0.005)  # fine sliders show cents
        if saved["kind"] == "numeric":
            assert isinstance(component, dcc.Slider)
            assert (component.min, component.max, component.step) == (saved["min"], saved["max"], saved["step"])
        else:
            assert isinstance(component, dcc.Dropdown)
            assert sorted(o["value"] for o in component.options) == sorted(saved["values"])
    assert generated["first_category"].options[0] == {"label": "trousers", "value": 1}
    assert "ROC-AUC" in _text(info) and "typical session" in _text(note)
    assert sensitivity == tab.DEFAULT_SENSITIVITY and len(options) == len(ranges)
    assert session_style == {"display": "none"}


def test_a_segment_from_the_segments_tab_is_the_starting_point(trained_context, models, run_id):
    model = models.get(run_id)
    typical = {**W.typical_values(model.controls), "w_price_max": 70.0, "country": 9, "w_sale_share": 1.0}
    segment = {"method": "kmeans", "segment": 2, "persona": "sale hunters", "sessions": 1234, "window": 3}
    inputs, note, *_ = tab.controls_view(
        trained_context, models, run_id, tab.START_SEGMENT, None, {**segment, "typical": typical}, None
    )
    generated = _inputs(inputs)
    assert generated["w_price_max"].value == min(70.0, model.control("w_price_max").maximum)
    assert generated["country"].value == 9 and generated["w_sale_share"].value == 1.0
    assert "segment 2 · sale hunters (K-Means, 1,234 sessions)" in _text(note)
    _, other_window, *_ = tab.controls_view(
        trained_context, models, run_id, tab.START_SEGMENT, None, {**segment, "window": 5, "typical": typical}, None
    )
    assert "first 5 clicks" in _text(other_window) and "reads 3" in _text(other_window)
    _, missing, *_ = tab.controls_view(trained_context, models, run_id, tab.START_SEGMENT, None, None, None)
    assert "No segment chosen yet" in _text(missing)


def test_a_real_session_is_a_starting_point(trained_context, models, run_id, prepared):
    window = window_features(prepared.indexed, 3, prepared.definition)
    session_id = window.features.index[3]
    inputs, note, *_, session_style = tab.controls_view(
        trained_context, models, run_id, tab.START_SESSION, str(session_id), None, None
    )
    model = models.get(run_id)
    expected, _ = W.clip_values(model.controls, window.features.loc[session_id].to_dict())
    assert {name: c.value for name, c in _inputs(inputs).items()} == pytest.approx(expected, abs=0.005)  # cents
    assert f"Session {session_id}" in _text(note) and session_style == {}
    too_short = window.status.index[window.status == "too short"][0]
    _, note, *_ = tab.controls_view(trained_context, models, run_id, tab.START_SESSION, too_short, None, None)
    assert "too short" in _text(note)


def test_a_segment_arriving_switches_the_start_only_when_it_arrives():
    segment = {"segment": 1, "typical": {"month": 6}}
    assert tab.start_mode(segment, tab.START_TYPICAL, segment_arrived=True) == tab.START_SEGMENT
    assert tab.start_mode(segment, tab.START_SESSION, segment_arrived=False) == tab.START_SESSION
    assert tab.start_mode(None, None, segment_arrived=True) == tab.START_TYPICAL


def test_the_update_view_gives_p_basket_and_expected_revenue(models, run_id):
    model = models.get(run_id)
    values = {**W.typical_values(model.controls), "w_price_mean": 55.0, "w_page_changes": 1.0}
    p_text, verdict, gauge, basket, revenue, clip_note, waterfall, method, line, capacity = tab.update_view(
        models, run_id, values, "w_price_mean", 10
    )
    p = go.Figure(gauge).data[0].value
    assert 0.0 <= p <= 1.0 and p_text == f"{p:.1%}"
    result = W.predict(model, values, "w_price_mean")
    interval = model.basket_interval
    low, high = max(result.basket + interval["low"], 0), max(result.basket + interval["high"], 0)
    assert basket == f"${low:,.0f} – ${high:,.0f}"  # a range from held-out residuals, not to the cent
    assert revenue == f"${p * low:,.0f} – ${p * high:,.0f}"
    assert p == pytest.approx(result.p)
    assert "top" in _text(capacity) and "held-out sessions" in _text(capacity)
    assert ("likely" in verdict) and f"{model.threshold:.1%}" in verdict
    assert clip_note is None
    assert go.Figure(waterfall).data[0].type == "waterfall" and go.Figure(line).data  # valid figures
    assert "Contributions:" in method


def test_the_update_view_clips_and_says_so(models, run_id):
    model = models.get(run_id)
    values = {**W.typical_values(model.controls), "w_price_max": 10_000.0}
    *_, clip_note, waterfall, _, _, _ = tab.update_view(models, run_id, values, None)
    assert "Highest price viewed" in _text(clip_note)
    assert any(f"= ${model.control('w_price_max').maximum:,.0f}" in label for label in go.Figure(waterfall).data[0].y)


def test_a_remembered_update_is_the_update_computed_afresh(models, run_id):
    from plotly.io.json import to_json_plotly

    model = models.get(run_id)
    values = {**W.typical_values(model.controls), "w_price_mean": 40.0}
    fresh = to_json_plotly(tab.update_view(models, run_id, values, "w_price_mean", 25))
    answers = tab.Answers(size=2)
    first = tab.update_view(models, run_id, values, "w_price_mean", 25, answers)
    again = tab.update_view(models, run_id, dict(reversed(values.items())), "w_price_mean", 25, answers)
    assert again is first  # the same inputs in another order: served from the memo
    assert to_json_plotly(first) == fresh
    assert answers.of(model).hits == 1
    other = tab.update_view(models, run_id, values, "w_price_mean", 50, answers)  # another capacity: computed
    assert other is not first and answers.of(model).misses == 2


def test_a_model_prepared_anew_starts_with_no_remembered_updates(models, run_id):
    answers = tab.Answers()
    model = models.get(run_id)
    assert answers.of(model) is answers.of(model)
    rebuilt = W.prepare_model(model.classifier, model.regressor)
    assert answers.of(rebuilt) is not answers.of(model) and len(answers.of(rebuilt)) == 0


def test_the_update_view_without_a_model_shows_placeholders(models):
    p_text, *_ = tab.update_view(models, None, {}, None)
    assert p_text == "–"


def test_figures_mark_the_threshold_and_end_at_this_sessions_p(models, run_id):
    model = models.get(run_id)
    values = {**W.typical_values(model.controls), "first_price": 70.0}
    result = W.predict(model, values, "country")
    gauge = go.Figure(probability_figure(result.p, result.threshold))
    assert gauge.data[0].gauge.threshold.value == result.threshold
    labels = {c.name: c.label for c in model.controls}
    waterfall = go.Figure(waterfall_figure(result.contributions, labels, result.threshold))
    trace = waterfall.data[0]
    base_p = float(probability(result.contributions.base))
    assert trace.base == pytest.approx(base_p)  # one unit: P on the axis, percentage points in the bars
    assert sum(trace.x[:-1]) + trace.base == pytest.approx(result.p, abs=1e-9)
    assert trace.y[-1] == f"This session (P {result.p:.1%})"
    assert all(t.endswith(" pp") or t.endswith(" pp in all") for t in trace.text)
    assert waterfall.layout.xaxis.tickformat.endswith("%") and not waterfall.layout.xaxis.tickvals
    line = go.Figure(sensitivity_figure(result.sensitivity, result.threshold))
    assert [s.y0 for s in line.layout.shapes if s.xref == "paper"] == [result.threshold]
    assert "Poland" in line.data[0].x


def test_the_layout_holds_the_outputs_and_the_callbacks_are_registered(context, app):
    layout = str(tab.layout(context))
    for component_id in (ids.WHATIF_CONTROLS, ids.WHATIF_PROBABILITY_TEXT, ids.WHATIF_WATERFALL_GRAPH):
        assert component_id in layout
    inputs = [i for cb in app.callback_map.values() for i in cb["inputs"]]
    assert any(isinstance(i["id"], str) and '"type":"whatif-feature"' in i["id"] for i in inputs)


def test_the_waterfall_folds_inputs_that_change_nothing_into_one_unchanged_row():
    contributions = Contributions(
        ("a", "b", "c", "d"), np.array([0.4, 0.0, -0.1, 0.0]), base=float(np.log(0.25 / 0.75)), method=METHOD_LINEAR
    )
    figure = go.Figure(waterfall_figure(contributions, {"a": "A", "b": "B", "c": "C", "d": "D"}, 0.3))
    trace = figure.data[0]
    assert list(trace.y) == [
        "A",
        "C",
        "2 inputs unchanged (under 0.05 pp each)",
        "This session (P 31.0%)",
    ]  # logit(0.25) + 0.3
    p_after_a = float(probability(contributions.base + 0.4))
    assert trace.x[0] == pytest.approx(p_after_a - 0.25)  # percentage points of P, in the order drawn
    assert trace.text[0] == f"{100 * (p_after_a - 0.25):+.1f} pp"
    assert trace.base + sum(trace.x[:-1]) == pytest.approx(float(probability(contributions.margin)))


@pytest.mark.parametrize(
    ("text", "value", "message"),
    [
        ("42.5", 42.5, None),
        ("$1,200", 100.0, "outside"),
        ("abc", None, "'abc' is not a number"),
        ("", None, "not a number"),
        ("nan", None, "not a number"),
    ],
)
def test_the_number_box_applies_numbers_and_refuses_text_with_a_message(text, value, message):
    from dashboard.tabs.whatif.inputs import number_box_view

    new, shown, note, invalid = number_box_view(True, text, 10.0, 0.0, 100.0, 0.01)
    assert new == value
    assert (note is None) if message is None else (message in note)
    assert invalid == (message is not None)
    kept, shown, note, invalid = number_box_view(False, "ignored", 33.3, 0.0, 100.0, 0.01)
    assert kept is None and shown == "33.3" and note is None  # the slider moved: the box follows


def test_fine_sliders_have_a_labelled_number_box_and_codes_use_the_run_s_codebook(models, run_id):
    from dashboard.tabs.whatif.inputs import dom_id, feature_input

    model = models.get(run_id)
    fine = next(c for c in model.controls if c.is_numeric and not c.positions)
    text = str(feature_input(fine, fine.typical))
    assert dom_id(ids.whatif_number(fine.name)) in text and "press Enter" in text
    country = model.control("country")
    assert "Poland" in dict(country.options).values()
    renamed = {**model.classifier.metadata, "codebooks": {"country": {"29": "Polska"}}}
    controls = W.controls_from_metadata(renamed)
    assert dict(next(c for c in controls if c.name == "country").options)[29] == "Polska"
