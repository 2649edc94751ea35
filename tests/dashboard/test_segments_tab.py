"""Segments tab: figures and cards from fixture runs, the views and callbacks called as plain functions.

Uses the ``context`` and ``app`` fixtures of ``tests/dashboard/conftest.py`` (bundled data).
"""

from __future__ import annotations

import json
from dataclasses import replace

import plotly.graph_objects as go
import pytest
from dash import dcc, no_update

from dashboard import ids
from dashboard.context import AppContext
from dashboard.figures.segments import (
    MAX_CARDS,
    NO_SEGMENTS,
    open_button_id,
    projection_figure,
    segment_colour,
    silhouette_figure,
)
from dashboard.tabs import TABS, segments
from ml.models.segment_runs import SegmentSetting, segment_base
from ml.models.segments import DEFAULT_MIN_SAMPLES, NOISE_NAME

KMEANS_4 = SegmentSetting.kmeans(4)
DENSE = SegmentSetting.dbscan(0.5, 20)  # dozens of small dense groups plus much noise on the bundled data


def _walk(component: object) -> list:
    """The component and everything below it."""
    if isinstance(component, list | tuple):
        return [found for child in component for found in _walk(child)]
    if not hasattr(component, "to_plotly_json"):
        return []
    children = getattr(component, "children", None)
    return [component, *(_walk(children) if children is not None else [])]


def _text(component: object) -> str:
    if isinstance(component, str | int | float):
        return str(component)
    if isinstance(component, list | tuple):
        return " ".join(_text(c) for c in component)
    children = getattr(component, "children", None)
    return _text(children) if children is not None else ""


def _buttons(component: object) -> list:
    return [c for c in _walk(component) if isinstance(getattr(c, "id", None), dict)]


@pytest.fixture(scope="module")
def kmeans_run(context: AppContext):
    return segments.run_for(context, KMEANS_4)


# ---------------------------------------------------------------- figures
def test_the_projection_names_each_segment_by_its_persona_in_its_colour(kmeans_run):
    fig = projection_figure(kmeans_run.display, kmeans_run.profiles["persona"].to_dict(), (0.4, 0.19))
    assert isinstance(fig, go.Figure)
    names = [trace.name for trace in fig.data]
    assert names == list(kmeans_run.profiles["persona"])
    assert not any(name.strip().lstrip("-").isdigit() for name in names), "names, not segment numbers"
    assert [trace.marker.color for trace in fig.data] == [segment_colour(s) for s in range(4)]
    assert sum(len(trace.x) for trace in fig.data) == len(kmeans_run.display)
    assert fig.layout.xaxis.title.text == "PCA axis 1 (40% of variance)"


def test_the_dbscan_projection_shows_noise_as_its_own_group_and_lumps_small_groups(context: AppContext):
    run = segments.run_for(context, DENSE)
    assert len(run.profiles) > MAX_CARDS + 1
    fig = projection_figure(run.display, run.profiles["persona"].to_dict(), (0.4, 0.19))
    names = [trace.name for trace in fig.data]
    assert len(names) == MAX_CARDS + 2
    assert names[-1] == NOISE_NAME and "smaller groups" in names[-2]
    hover = set(fig.data[-2].text)
    assert hover <= set(run.profiles["persona"]), "small groups keep their own names on hover"


def test_the_silhouette_curve_marks_the_best_and_the_chosen_k():
    scores = {2: 0.21, 3: 0.3, 4: 0.25}
    fig = silhouette_figure(scores, best_k=3, current_k=4)
    assert isinstance(fig, go.Figure)
    assert list(fig.data[0].x) == [2, 3, 4]
    assert list(fig.data[1].x) == [3] and list(fig.data[2].x) == [4]
    assert len(silhouette_figure(scores, best_k=3, current_k=3).data) == 2
    assert silhouette_figure({}, 2).layout.annotations[0].text == NO_SEGMENTS


# ---------------------------------------------------------------- views
def test_the_view_fills_every_output_with_one_card_per_segment(context: AppContext, kmeans_run):
    projection, silhouette, tiles, note, cards, others = segments.segments_view(context, KMEANS_4)
    assert isinstance(projection, go.Figure) and isinstance(silhouette, go.Figure)
    assert len(cards) == 4 and others is None
    assert note.startswith("K-Means") and "Computed in" in note
    tiles_text = _text(tiles)
    for title in ("Segments", "Silhouette", "Davies-Bouldin", "Inertia"):
        assert title in tiles_text
    assert f"{kmeans_run.metrics['silhouette']:.3f}" in tiles_text
    text = _text(cards)
    for persona in kmeans_run.profiles["persona"]:
        assert persona in text
    for label in ("Conversion (proxy)", "Basket value", "Revenue / session", "Categories", "Countries"):
        assert label in text
    assert "Typical first 3 clicks" in text
    assert [b.id for b in _buttons(cards)] == [open_button_id(KMEANS_4, s) for s in range(4)]


def test_a_dense_dbscan_view_has_a_noise_card_and_a_table_of_the_smaller_groups(context: AppContext):
    _, _, tiles, note, cards, others = segments.segments_view(context, DENSE)
    run = segments.run_for(context, DENSE)
    assert len(cards) == MAX_CARDS + 1
    assert NOISE_NAME in _text(cards[-1])
    assert "of sessions are noise" in _text(tiles)
    assert note.startswith("DBSCAN")
    rows = [c for c in _walk(others) if type(c).__name__ == "Tr"][1:]
    assert len(rows) == len(run.profiles) - MAX_CARDS - 1
    assert len(_buttons(others)) == len(rows)


def test_segments_without_scoreable_sessions_say_so_and_disable_their_button(context: AppContext):
    longest = int(context.data.sessions["n_clicks"].max())
    long_window = replace(context, settings=context.settings.with_overrides(window=longest + 1))
    cards = segments.segments_view(long_window, KMEANS_4)[4]
    assert "No session of this segment can be scored early" in _text(cards)
    assert all(button.disabled for button in _buttons(cards))
    assert segments.whatif_choice(long_window, KMEANS_4, 0) is None
    trigger = {"id": open_button_id(KMEANS_4, 0), "value": 1}
    assert segments.open_whatif(long_window, trigger) == (no_update, no_update)


def test_opening_a_segment_in_whatif_stores_its_typical_session_and_switches_tab(context: AppContext, kmeans_run):
    trigger = {"id": open_button_id(KMEANS_4, 1), "value": 1}
    choice, tab = segments.open_whatif(context, trigger)
    assert tab == "whatif" == TABS[5].TAB_ID
    row = kmeans_run.profiles.loc[1]
    assert choice == {
        "method": "kmeans",
        "params": {"k": 4},
        "segment": 1,
        "persona": row["persona"],
        "sessions": int(row["sessions"]),
        "window": context.settings.window,
        "typical": kmeans_run.typical[1],
    }
    assert len(json.dumps(choice)) < 2_000, "small JSON"


def test_buttons_that_just_appeared_do_not_open_whatif(context: AppContext):
    assert segments.open_whatif(context, {"id": open_button_id(KMEANS_4, 0), "value": None}) == (no_update, no_update)
    assert segments.open_whatif(context, None) == (no_update, no_update)


def test_a_button_opens_the_run_its_card_was_drawn_from(context: AppContext):
    """The setting travels in the button's ID: a click after the sliders moved still opens its own segment."""
    dbscan_run = segments.run_for(context, DENSE)
    segment = next(seg for seg, typical in dbscan_run.typical.items() if typical is not None)
    choice, _ = segments.open_whatif(context, {"id": open_button_id(DENSE, segment), "value": 3})
    assert choice["method"] == "dbscan" and choice["params"] == {"eps": 0.5, "min_samples": 20}
    assert choice["persona"] == dbscan_run.profiles.loc[segment, "persona"]
    assert choice["typical"] == dbscan_run.typical[segment]


def test_missing_inputs_fall_back_to_the_defaults(context: AppContext):
    base = segment_base(context.data, context.settings.seed)
    assert segments.setting_from_inputs(context, None, None, None, None) == SegmentSetting.kmeans(base.best_k)
    eps = segments.default_eps(context)
    assert 0.3 <= eps <= 3.0 and round(eps / 0.05, 6).is_integer()
    dbscan = segments.setting_from_inputs(context, "dbscan", 4, None, None)
    assert dbscan == SegmentSetting.dbscan(eps, DEFAULT_MIN_SAMPLES)
    assert segments.control_styles("dbscan") == ({"display": "none"}, {})
    assert segments.control_styles("kmeans") == ({}, {"display": "none"})


# ---------------------------------------------------------------- layout and the app
def test_the_sliders_start_at_the_silhouette_k_and_the_default_eps_and_update_on_release(context: AppContext):
    sliders = {s.id: s for s in _walk(segments.layout(context)) if isinstance(s, dcc.Slider)}
    assert set(sliders) == {ids.SEGMENTS_K, ids.SEGMENTS_EPS, ids.SEGMENTS_MIN_SAMPLES}
    k, eps, min_samples = sliders[ids.SEGMENTS_K], sliders[ids.SEGMENTS_EPS], sliders[ids.SEGMENTS_MIN_SAMPLES]
    assert (k.min, k.max, k.value) == (2, 10, segment_base(context.data, context.settings.seed).best_k)
    assert (eps.min, eps.max, eps.step, eps.value) == (0.3, 3.0, 0.05, segments.default_eps(context))
    assert (min_samples.min, min_samples.max, min_samples.value) == (5, 100, DEFAULT_MIN_SAMPLES)
    assert {s.updatemode for s in sliders.values()} == {"mouseup"}


def test_the_app_registers_the_segments_callbacks(app):
    assert segments in TABS
    callbacks = app.callback_map.values()
    controls = [ids.SEGMENTS_METHOD, ids.SEGMENTS_K, ids.SEGMENTS_EPS, ids.SEGMENTS_MIN_SAMPLES]
    main = next(c for c in callbacks if [i["id"] for i in c["inputs"]] == controls)
    outputs = main["callback"].__wrapped__("kmeans", 3, 1.2, 20)
    assert len(outputs) == 6 and len(outputs[4]) == 3
    key, opener = next((k, c) for k, c in app.callback_map.items() if ids.APP_SEGMENT_STORE in k)
    assert f"{ids.APP_TABS}.active_tab@" in key, "switches tabs (allow_duplicate)"
    pattern = json.loads(opener["inputs"][0]["id"])
    assert pattern.pop("type") == ids.SEGMENTS_OPEN_WHATIF
    assert set(pattern) == set(open_button_id(KMEANS_4, 0)) - {"type"}
    assert all(value == ["ALL"] for value in pattern.values())
    assert opener["state"] == [], "no State: the tab's components are gone when the buttons unmount"
