"""Segments: runs per setting (labels, noise, metrics, cache, typical sessions) and persona names.

Runs use the first 2,500 bundled sessions (``small_clicks``), so every fit takes
a fraction of a second.
"""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import DBSCAN
from sklearn.metrics import adjusted_rand_score
from sklearn.model_selection import train_test_split
from sklearn.neighbors import NearestNeighbors

from ml.features.prepared import PreparedData, prepare
from ml.features.sessions import SEGMENT_FEATURES
from ml.features.window import FEATURE_SPECS, WINDOW_FEATURE_NAMES, feature_ranges
from ml.models import segment_runs as runs
from ml.models import segments as sg
from ml.models.segment_lift import held_out_positions, segment_lift
from ml.models.segment_runs import RunCache, SegmentSetting, segment_run
from ml.models.segments import NOISE, NOISE_NAME

WINDOW = 3
FAMILIES = {name for _, _, name, _ in sg.TRAITS if name} | {"typical browsers"}


@pytest.fixture(scope="module")
def small_data(bundled, small_clicks) -> PreparedData:
    return prepare(replace(bundled, events=small_clicks, data_hash="small"), display_name="small")


@pytest.fixture(scope="module")
def noisy_run(small_data):
    """DBSCAN with a small radius: most sessions are noise, a few dense groups remain."""
    return segment_run(small_data, SegmentSetting.dbscan(0.5, 10), WINDOW)


def test_a_kmeans_run_labels_every_session_numbers_segments_by_size_and_has_the_metrics(small_data):
    run = segment_run(small_data, SegmentSetting.kmeans(3), WINDOW)
    assert len(run.labels) == len(small_data.sessions)
    assert set(np.unique(run.labels)) == {0, 1, 2}
    assert list(run.profiles.index) == [0, 1, 2]
    sizes = run.profiles["sessions"].to_numpy()
    assert (np.diff(sizes) <= 0).all(), "segment 0 is the largest"
    assert sizes.sum() == len(small_data.sessions)
    assert run.profiles["share"].sum() == pytest.approx(1.0)
    for metric in ("silhouette", "davies_bouldin", "inertia"):
        assert np.isfinite(run.metrics[metric]), metric
    assert -1 <= run.metrics["silhouette"] <= 1 and run.metrics["inertia"] > 0


def test_dbscan_noise_is_labelled_minus_one_and_profiled_as_its_own_group(noisy_run):
    labels, profiles = noisy_run.labels, noisy_run.profiles
    assert (labels == NOISE).any() and (labels != NOISE).any()
    assert NOISE in profiles.index
    assert profiles.loc[NOISE, "persona"] == NOISE_NAME
    assert profiles.loc[NOISE, "sessions"] == (labels == NOISE).sum()
    assert noisy_run.metrics["noise_share"] == pytest.approx((labels == NOISE).mean())
    assert noisy_run.metrics["n_clusters"] == len(profiles) - 1
    assert np.isfinite(noisy_run.metrics["inertia"])
    assert NOISE in set(noisy_run.display["segment"])


def test_dbscan_fitted_on_distinct_rows_with_weights_finds_the_same_groups_as_plain_dbscan(small_data):
    sessions = small_data.sessions
    result = sg.fit_dbscan(sessions, 0.8, 10, seed=0)
    scaled = sg.scaler_pipeline().fit_transform(sessions[list(SEGMENT_FEATURES)])
    plain = DBSCAN(eps=0.8, min_samples=10).fit_predict(scaled)
    assert ((result.labels == NOISE) == (plain == NOISE)).all()
    assert adjusted_rand_score(result.labels, plain) == pytest.approx(1.0)


def test_sessions_outside_the_dbscan_sample_join_the_nearest_core_group_within_eps(small_data, monkeypatch):
    monkeypatch.setattr(sg, "DBSCAN_MAX_ROWS", 1_000)
    result = sg.fit_dbscan(small_data.sessions, 0.8, 10, seed=0)
    assert "fitted on a sample of 1,000 sessions" in result.note
    model = result.pipeline[-1]
    scaled = result.pipeline[:-1].transform(small_data.sessions[list(SEGMENT_FEATURES)])
    rest = np.setdiff1d(np.arange(len(scaled)), sg.sample_rows(len(scaled), 1_000, 0))
    dist, nearest = NearestNeighbors(n_neighbors=1).fit(model.components_).kneighbors(scaled[rest])
    core_labels = model.labels_[model.core_sample_indices_]
    expected = np.where(dist[:, 0] <= 0.8, core_labels[nearest[:, 0]], NOISE)
    assert (expected != NOISE).any() and (expected == NOISE).any()
    assert (result.labels[rest] == expected).all()


def test_runs_are_cached_per_setting(small_data):
    first = segment_run(small_data, SegmentSetting.kmeans(3), WINDOW)
    assert segment_run(small_data, SegmentSetting.kmeans(3), WINDOW) is first
    assert segment_run(small_data, SegmentSetting.kmeans(4), WINDOW) is not first
    dbscan = segment_run(small_data, SegmentSetting.dbscan(0.5, 10), WINDOW)
    assert segment_run(small_data, SegmentSetting.dbscan(0.50000001, 10), WINDOW) is dbscan  # eps on a 0.01 grid
    assert segment_run(small_data, SegmentSetting.dbscan(0.5, 11), WINDOW) is not dbscan


def test_the_run_cache_builds_a_setting_once_under_concurrency_and_drops_the_oldest():
    cache, builds, barrier = RunCache(size=2), [], threading.Barrier(8)

    def build(key: str):
        builds.append(key)
        return object()

    def request() -> None:
        barrier.wait()
        cache.get("a", lambda: build("a"))

    threads = [threading.Thread(target=request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert builds == ["a"]
    first = cache.get("a", lambda: build("a"))
    cache.get("b", lambda: build("b"))
    cache.get("c", lambda: build("c"))  # evicts "a", the least recently used
    assert cache.get("a", lambda: build("a")) is not first
    assert builds == ["a", "b", "c", "a"]


def test_the_typical_session_of_each_segment_is_within_the_training_ranges(small_data):
    run = segment_run(small_data, SegmentSetting.kmeans(4), WINDOW)
    features, _ = runs.window_population(small_data, WINDOW)
    ranges = feature_ranges(features, WINDOW)
    assert run.profiles["scoreable"].sum() == len(features)
    typicals = [t for t in run.typical.values() if t is not None]
    assert typicals, "some segment has scoreable sessions"
    for typical in typicals:
        assert set(typical) == set(WINDOW_FEATURE_NAMES)
        for name, value in typical.items():
            spec = ranges[name]
            if spec["kind"] == "categorical":
                assert value in spec["values"], name
            else:
                assert spec["min"] <= value <= spec["max"], name
            if FEATURE_SPECS[name].kind == "categorical":
                assert isinstance(value, int), name


def test_a_segment_without_scoreable_sessions_has_no_typical_session(small_data):
    longest = int(small_data.sessions["n_clicks"].max())
    run = segment_run(small_data, SegmentSetting.kmeans(3), window=longest + 1)
    assert (run.profiles["scoreable"] == 0).all()
    assert all(typical is None for typical in run.typical.values())


def test_the_display_sample_is_bounded_and_carries_the_run_labels(small_data, noisy_run):
    display = noisy_run.display
    assert 0 < len(display) <= runs.DISPLAY_POINTS
    positions = small_data.sessions.index.get_indexer(display.index)
    assert (display["segment"].to_numpy() == noisy_run.labels[positions]).all()
    base = runs.segment_base(small_data)
    assert base.best_k == sg.best_k(base.silhouette_by_k)
    assert set(base.silhouette_by_k) == set(range(runs.EXPLORE_K_RANGE[0], runs.EXPLORE_K_RANGE[1] + 1))


@pytest.mark.parametrize("k", range(2, 11))
def test_persona_names_are_unique_and_plain_language(small_data, k):
    names = segment_run(small_data, SegmentSetting.kmeans(k), WINDOW).profiles["persona"]
    assert names.is_unique
    assert all(name.split(":")[0] in FAMILIES for name in names), list(names)


def test_dbscan_persona_names_are_unique(noisy_run):
    assert noisy_run.profiles["persona"].is_unique


# ---------------------------------------------------------------- personas from hand-made sessions
def _sessions(groups: list[dict[str, float]], size: int = 50) -> pd.DataFrame:
    """Sessions in groups of ``size`` with the given profile values; everything else average."""
    base = {"n_clicks": 6, "n_products": 5, "n_categories": 2, "n_colours": 3, "price_mean": 44.0}
    base |= {"premium_share": 0.5, "sale_share": 0.2, "profile_share": 0.25, "top_row_share": 0.5, "max_page": 2}
    base |= {"trousers_share": 0.3, "skirts_share": 0.25, "blouses_share": 0.25}
    rows = [base | group for group in groups for _ in range(size)]
    frame = pd.DataFrame(rows)
    return frame.assign(converted=False, basket_value=0.0, main_category=1, country=29)


def test_a_sale_heavy_cheap_segment_is_named_bargain_hunters():
    prices = [{"price_mean": p} for p in (40.0, 50.0, 60.0)]  # prices vary; only one group goes to the sale
    sessions = _sessions([*prices, {"sale_share": 0.9, "price_mean": 35.0}])
    profile = sg.segment_profiles(sessions, np.repeat([0, 1, 2, 3], 50))
    assert profile.loc[3, "persona"] == "bargain hunters"
    assert profile.loc[3, "traits"] == "sale-heavy, low prices"
    assert profile.loc[2, "persona"].startswith("premium browsers")  # the $60 group
    assert profile["persona"].is_unique


def test_repeated_personas_are_told_apart_by_what_differs_between_them():
    premium = {"price_mean": 70.0, "premium_share": 0.9}
    sessions = _sessions([{}, premium | {"top_row_share": 0.95}, premium | {"top_row_share": 0.05}])
    profile = sg.segment_profiles(sessions, np.repeat([0, 1, 2], 50))
    assert profile.loc[1, "persona"] == "premium browsers: top-row photos"
    assert profile.loc[2, "persona"] == "premium browsers: lower-row photos"


# ---------------------------------------------------------------- lift by capacity, per segment
def test_segment_lift_matches_a_hand_count():
    # Ten sessions in two segments; the top 30% by P are rows 0, 1, 2 (P .9, .8, .7).
    segments = np.array([0, 0, 1, 1, 0, 1, 0, 1, 0, 1])
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])
    y = np.array([1, 0, 1, 0, 1, 0, 0, 0, 0, 1])
    table = segment_lift(segments, p, y, 0.3)
    base = 4 / 10
    # segment 0: rows 0, 1, 4, 6, 8 -> flagged 0, 1 -> one of two converted
    assert table.loc[0, ["sessions", "converted", "flagged", "flagged_converted"]].tolist() == [5, 2, 2, 1]
    assert table.loc[0, "precision"] == pytest.approx(0.5)
    assert table.loc[0, "lift"] == pytest.approx(0.5 / base)
    assert table.loc[0, "flagged_share"] == pytest.approx(2 / 5)
    # segment 1: rows 2, 3, 5, 7, 9 -> flagged 2 -> converted
    assert table.loc[1, ["sessions", "converted", "flagged", "flagged_converted"]].tolist() == [5, 2, 1, 1]
    assert table.loc[1, "lift"] == pytest.approx(1 / base)
    assert table.attrs["flagged"] == 3 and table.attrs["flagged_converted"] == 2
    assert table.attrs["threshold"] == pytest.approx(0.7)
    assert table.attrs["lift"] == pytest.approx((2 / 3) / base)


def test_a_segment_the_rule_misses_has_no_precision():
    table = segment_lift([0, 0, 1], [0.9, 0.8, 0.1], [1, 0, 0], 0.34)
    assert table.loc[1, "flagged"] == 0 and np.isnan(table.loc[1, "precision"])


def test_held_out_positions_reproduce_the_training_split():
    rng = np.random.default_rng(3)
    y = (rng.random(997) < 0.27).astype(int)
    _, expected = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=42)
    metadata = {"data": {"population": len(y), "test_sessions": len(expected)}, "validation": {"seed": 42}}
    assert (held_out_positions(y, metadata) == np.sort(expected)).all()
    assert held_out_positions(y[:-1], metadata) is None  # another population: cannot be told
    assert held_out_positions(y, {"data": {}}) is None


# ---------------------------------------------------------------- the disk cache
def test_runs_are_kept_on_disk_and_read_back_by_another_process(bundled, small_clicks, tmp_path):
    def fresh() -> PreparedData:
        return prepare(replace(bundled, events=small_clicks, data_hash="small-disk"), key="small")

    first = segment_run(fresh(), SegmentSetting.kmeans(3), WINDOW, cache_dir=tmp_path)
    assert not first.from_disk
    folder = runs.disk_folder(tmp_path, fresh())
    assert sorted(p.name for p in folder.iterdir()) == ["base-s42.joblib", "run-kmeans-k3-e0-m20-w3-s42.joblib"]
    again = segment_run(fresh(), SegmentSetting.kmeans(3), WINDOW, cache_dir=tmp_path)  # a new PreparedData
    assert again.from_disk and (again.labels == first.labels).all()
    pd.testing.assert_frame_equal(again.profiles, first.profiles)
    (folder / "run-kmeans-k3-e0-m20-w3-s42.joblib").write_bytes(b"not a pickle")
    rebuilt = segment_run(fresh(), SegmentSetting.kmeans(3), WINDOW, cache_dir=tmp_path)
    assert not rebuilt.from_disk and (rebuilt.labels == first.labels).all()
    other = prepare(replace(bundled, events=small_clicks, data_hash="changed"), key="small")
    segment_run(other, SegmentSetting.kmeans(3), WINDOW, cache_dir=tmp_path)
    assert not folder.exists(), "the folder of the older data is dropped"


# ---------------------------------------------------------------- another profile
def test_segments_of_a_shop_log_cluster_its_features_and_profile_its_brands():
    from ml.data.loading import load_events
    from ml.data.synthetic_logs import multi_category_store_log

    raw = multi_category_store_log(5000, seed=11).to_csv(index=False).encode()
    data = prepare(load_events(raw, name="store.csv"), key="store")
    run = segment_run(data, SegmentSetting.kmeans(3), WINDOW)
    assert set(np.unique(run.labels)) == {0, 1, 2}
    assert run.profiles.attrs["dimension"] == "main_brand"
    brands = set(data.codebooks["brand"].values())
    assert all(v.rsplit(" (", 1)[0] in brands for values in run.profiles["top_values"] for v in values)
    assert run.profiles["conversion_rate"].between(0, 1).all()
    features, _ = runs.window_population(data, WINDOW)
    for seg, session in run.representatives.items():
        if session is None:
            continue
        assert session in features.index and run.labels[data.sessions.index.get_loc(session)] == seg
        assert set(run.typical[seg]) == set(features.columns)
