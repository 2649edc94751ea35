"""Segments tab: figures and cards from fixture runs, the views and callbacks called as plain functions.

Uses the ``context`` and ``app`` fixtures of ``tests/dashboard/conftest.py`` (bundled data).
"""

from __future__ import annotations

import io
import json
from dataclasses import replace

import pandas as pd
import plotly.graph_objects as go
import pytest
from dash import dcc, no_update

from dashboard import ids
from dashboard.app_factory import create_app
from dashboard.context import AppContext
from dashboard.figures.segments import (
    MAX_CARDS,
    NO_SEGMENTS,
    OKABE_ITO,
    download_button_id,
    open_button_id,
    projection_figure,
    segment_colour,
    segment_symbol,
    silhouette_figure,
)
from dashboard.tabs import TABS, segments
from dashboard.tabs.segments.champion import champion_scores, lift_table
from ml.config import BUNDLED_DATASET_KEY
from ml.data.loading import load_events
from ml.data.synthetic_logs import multi_category_store_log
from ml.features.prepared import prepare
from ml.models.capacity import at_share, top_share_mask
from ml.models.segment_runs import SegmentSetting, disk_folder, segment_base
from ml.models.segments import DEFAULT_MIN_SAMPLES, NOISE_NAME
from ml.serving.datasets import DatasetStore
from ml.serving.whatif import cached_window_features
from ml.tasks import CLASSIFICATION

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


def _buttons(component: object, kind: str = ids.SEGMENTS_OPEN_WHATIF) -> list:
    return [c for c in _walk(component) if isinstance(getattr(c, "id", None), dict) and c.id["type"] == kind]


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
    projection, silhouette, tiles, note, cards, others, capacity = segments.segments_view(context, KMEANS_4)
    assert isinstance(projection, go.Figure) and isinstance(silhouette, go.Figure)
    assert capacity.startswith("No model is trained on this dataset yet")
    assert len(cards) == 4 and others is None
    assert note.startswith("K-Means") and "Computed in" in note
    tiles_text = _text(tiles)
    for title in ("Segments", "Silhouette", "Davies-Bouldin", "Inertia"):
        assert title in tiles_text
    assert f"{kmeans_run.metrics['silhouette']:.3f}" in tiles_text
    text = _text(cards)
    for persona in kmeans_run.profiles["persona"]:
        assert persona in text
    for label in ("Conversion (proxy)", "Basket value", "Potential revenue / session", "Categories", "Countries"):
        assert label in text
    assert "What-if start: first 3 clicks of session" in text
    assert "Lift by capacity: train a model on this dataset first." in text
    assert [b.id for b in _buttons(cards)] == [open_button_id(KMEANS_4, s) for s in range(4)]
    downloads = [b.id for b in _buttons(cards, ids.SEGMENTS_DOWNLOAD_BUTTON)]
    assert downloads == [download_button_id(KMEANS_4, s) for s in range(4)]


def test_a_dense_dbscan_view_has_a_noise_card_and_a_table_of_the_smaller_groups(context: AppContext):
    _, _, tiles, note, cards, others, _ = segments.segments_view(context, DENSE)
    run = segments.run_for(context, DENSE)
    assert len(cards) == MAX_CARDS + 1
    assert NOISE_NAME in _text(cards[-1])
    assert "of sessions are noise" in _text(tiles)
    assert note.startswith("DBSCAN")
    rows = [c for c in _walk(others) if type(c).__name__ == "Tr"][1:]
    assert len(rows) == len(run.profiles) - MAX_CARDS - 1
    assert len(_buttons(others)) == len(rows)


def test_segments_without_scoreable_sessions_say_so_and_disable_their_button(context: AppContext):
    longest = int(context.dataset().sessions["n_clicks"].max())
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
        "session_id": kmeans_run.representatives[1],
        "conversion_rate": round(float(row["conversion_rate"]), 4),
        "dataset": BUNDLED_DATASET_KEY,
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
    base = segment_base(context.dataset(), context.settings.seed)
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
    assert set(sliders) == {ids.SEGMENTS_K, ids.SEGMENTS_EPS, ids.SEGMENTS_MIN_SAMPLES, ids.SEGMENTS_CAPACITY}
    k, eps, min_samples = sliders[ids.SEGMENTS_K], sliders[ids.SEGMENTS_EPS], sliders[ids.SEGMENTS_MIN_SAMPLES]
    assert (k.min, k.max, k.value) == (2, 10, segment_base(context.dataset(), context.settings.seed).best_k)
    assert (eps.min, eps.max, eps.step, eps.value) == (0.3, 3.0, 0.05, segments.default_eps(context))
    assert (min_samples.min, min_samples.max, min_samples.value) == (5, 100, DEFAULT_MIN_SAMPLES)
    assert {s.updatemode for s in sliders.values()} == {"mouseup"}
    capacity = sliders[ids.SEGMENTS_CAPACITY]
    assert (capacity.min, capacity.max, capacity.value) == (1, 50, 10)


def test_the_app_registers_the_segments_callbacks(app):
    assert segments in TABS
    callbacks = app.callback_map.values()
    controls = [ids.SEGMENTS_METHOD, ids.SEGMENTS_K, ids.SEGMENTS_EPS, ids.SEGMENTS_MIN_SAMPLES, ids.SEGMENTS_CAPACITY]
    main = next(c for c in callbacks if [i["id"] for i in c["inputs"]] == controls)
    assert [s["id"] for s in main["state"]] == [ids.APP_DATASET_STORE]
    outputs = main["callback"].__wrapped__("kmeans", 3, 1.2, 20, 10, BUNDLED_DATASET_KEY)
    assert len(outputs) == 7 and len(outputs[4]) == 3
    key, opener = next((k, c) for k, c in app.callback_map.items() if ids.APP_SEGMENT_STORE in k)
    assert f"{ids.APP_TABS}.active_tab@" in key, "switches tabs (allow_duplicate)"
    pattern = json.loads(opener["inputs"][0]["id"])
    assert pattern.pop("type") == ids.SEGMENTS_OPEN_WHATIF
    assert set(pattern) == set(open_button_id(KMEANS_4, 0)) - {"type"}
    assert all(value == ["ALL"] for value in pattern.values())
    assert opener["state"] == [], "no State: the tab's components are gone when the buttons unmount"


# ---------------------------------------------------------------- with the dataset's champion model
@pytest.fixture(scope="module")
def trained(bundled, small_clicks, dash_settings, trained_registry, tmp_path_factory) -> AppContext:
    """The small sample as the active dataset, with the quick models trained on it (same data hash)."""
    small = prepare(replace(bundled, events=small_clicks, data_hash="small"), display_name="small")
    settings = dash_settings.with_overrides(
        models_dir=trained_registry.root.parent, cache_dir=tmp_path_factory.mktemp("segment-cache")
    )
    datasets = DatasetStore.for_settings(settings)
    datasets.remember(BUNDLED_DATASET_KEY, small)
    return AppContext(settings=settings, datasets=datasets)


def test_per_segment_lift_counts_the_held_out_sessions_the_model_was_tested_on(trained: AppContext):
    scores = champion_scores(trained, BUNDLED_DATASET_KEY)
    champion = trained.registry_for(BUNDLED_DATASET_KEY).loaded_champion(CLASSIFICATION)
    assert scores is not None and scores.run_id == champion.info.run_id
    assert scores.held_out is not None and len(scores.held_out) == champion.metadata["data"]["test_sessions"]
    run = segments.run_for(trained, KMEANS_4)
    lift = lift_table(scores, run, 0.1)
    saved = at_share(champion.metadata["capacity"], 0.1)  # computed at training time on the held-out sessions
    assert lift.attrs["flagged"] == saved["flagged"] == lift["flagged"].sum()
    assert lift.attrs["flagged_converted"] == saved["converted"] == lift["flagged_converted"].sum()
    assert lift.attrs["precision"] == pytest.approx(saved["precision"])
    assert lift.attrs["lift"] == pytest.approx(saved["lift"])
    # each segment's numbers against a count by hand over the same held-out sessions
    rows = scores.held_out
    segment_of = run.labels[scores.positions[rows]]
    flagged = top_share_mask(scores.p[rows], 0.1)
    y = scores.converted[rows]
    for seg, row in lift.iterrows():
        mine = segment_of == seg
        assert row["sessions"] == mine.sum() and row["flagged"] == (mine & flagged).sum()
        hits = (mine & flagged & (y == 1)).sum()
        if row["flagged"]:
            assert row["precision"] == pytest.approx(hits / (mine & flagged).sum())
            assert row["lift"] == pytest.approx(hits / (mine & flagged).sum() / y.mean())


def test_cards_show_the_lift_and_the_p_of_the_what_if_start_beside_the_segment_rate(trained: AppContext):
    *_, cards, _, capacity = segments.segments_view(trained, KMEANS_4, BUNDLED_DATASET_KEY, 20)
    assert capacity.startswith("Top 20% by P(convert) of ") and "held-out sessions" in capacity
    text = _text(cards)
    assert text.count("Capacity rule.") == 4 and text.count("Top 20% by P: flags") == 4
    assert text.count("P(convert) of that start: ") == 4
    assert text.count("the segment's Conversion (proxy): ") == 4
    assert text.count("They differ because the rate counts whole visits") == 4
    run = segments.run_for(trained, KMEANS_4)
    scores = champion_scores(trained, BUNDLED_DATASET_KEY)
    p = scores.p_of(run.representatives[0])
    assert f"P(convert) of that start: {p:.1%}" in text


def test_the_what_if_starts_from_a_real_session_of_the_segment(trained: AppContext):
    run = segments.run_for(trained, KMEANS_4)
    data = trained.dataset(BUNDLED_DATASET_KEY)
    windowed = cached_window_features(data, trained.settings.window)
    for seg, session in run.representatives.items():
        assert run.labels[data.sessions.index.get_loc(session)] == seg
        real = {name: windowed.features.at[session, name] for name in windowed.features.columns}
        assert run.typical[seg] == pytest.approx(real, abs=1e-4)
    choice = segments.whatif_choice(trained, KMEANS_4, 0)
    assert choice["session_id"] == run.representatives[0] and choice["typical"] == run.typical[0]


# ---------------------------------------------------------------- another profile, and the download
@pytest.fixture(scope="module")
def shop(dash_settings, tmp_path_factory) -> AppContext:
    """A multi-category-store log whose session IDs start with "=": a spreadsheet would run them."""
    root = tmp_path_factory.mktemp("shop-segments")
    settings = dash_settings.with_overrides(datasets_dir=root / "datasets", cache_dir=root / "cache")
    raw = multi_category_store_log(6000, seed=9)
    raw["user_session"] = "=HYPERLINK(" + raw["user_session"] + ")"
    datasets = DatasetStore.for_settings(settings)
    datasets.add(load_events(raw.to_csv(index=False).encode(), name="store.csv"), "store")
    return AppContext(settings=settings, datasets=datasets)


def test_segments_of_a_shop_log_use_its_features_dimension_and_label(shop: AppContext):
    run = segments.run_for(shop, KMEANS_4, "store")
    assert run.profiles.attrs["dimension"] == "main_brand"
    *_, note, cards, _, capacity = segments.segments_view(shop, KMEANS_4, "store")
    text = _text(cards)
    assert "Conversion (purchases)" in text and "Main brands: " in text
    assert "Revenue / session" in text
    assert "Conversion (purchases) and revenue are from the data" in note
    assert capacity.startswith("No model is trained")
    assert all(b.id["dataset"] == "store" for b in _buttons(cards) + _buttons(cards, ids.SEGMENTS_DOWNLOAD_BUTTON))


def test_downloading_a_segment_gives_its_sessions_with_formulas_neutralised(shop: AppContext):
    run = segments.run_for(shop, KMEANS_4, "store")
    segment = 1
    sent = segments.download_segment(shop, {"id": download_button_id(KMEANS_4, segment, "store"), "value": 1})
    persona = run.profiles.loc[segment, "persona"]
    assert sent["filename"].startswith("store-segment-1-") and sent["filename"].endswith(".csv")
    table = pd.read_csv(io.StringIO(sent["content"]))
    data = shop.dataset("store")
    expected = data.sessions.index[run.labels == segment]
    assert len(table) == len(expected) == run.profiles.loc[segment, "sessions"]
    assert list(table["session_id"]) == ["'" + s for s in expected]  # "=HYPERLINK(...)" cannot run
    assert (table["segment"] == segment).all() and (table["persona"] == persona).all()
    assert set(table["main_brand_label"]) <= set(data.codebooks["brand"].values())
    assert table["converted"].sum() == data.sessions.loc[expected, "converted"].sum()
    assert segments.download_segment(shop, {"id": download_button_id(KMEANS_4, 0, "store"), "value": None}) is no_update


def test_segment_colours_are_okabe_ito_with_a_marker_shape_each():
    assert [segment_colour(s) for s in range(MAX_CARDS)] == list(OKABE_ITO)
    assert len({segment_symbol(s) for s in range(MAX_CARDS)}) == MAX_CARDS


def test_the_app_fits_the_default_run_on_a_start_up_thread_and_keeps_it_on_disk(bundled, dash_settings, tmp_path):
    # Fresh prepared data and a cache folder of its own: the session's prepared data may hold the fit in memory
    # already (then nothing is fitted or written), and other tests share the session's cache folder.
    fresh = prepare(bundled, display_name="bundled")
    app = create_app(dash_settings.with_overrides(cache_dir=tmp_path / "cache"), fresh)
    assert app.segments_warmed.wait(600), "the start-up fit ends"
    context = app.context
    setting = segments.setting_from_inputs(context, None, None, None, None, BUNDLED_DATASET_KEY)
    data = context.dataset(BUNDLED_DATASET_KEY)
    folder = disk_folder(context.settings.cache_dir / "segments", data)
    names = {p.name for p in folder.iterdir()}
    assert {f"base-s{context.settings.seed}.joblib"} <= names
    assert any(n.startswith(f"run-kmeans-k{setting.k}-") for n in names)
    assert segments.run_for(context, setting) is segments.run_for(context, setting), "kept in memory"
