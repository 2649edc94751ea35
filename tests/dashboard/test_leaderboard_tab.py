"""The leaderboard tab's rows, figures and callback bodies, built from real (quick) training runs."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from dashboard import ids
from dashboard.app_factory import render_tab
from dashboard.layout import shell
from dashboard.tabs import leaderboard as tab
from dashboard.tabs.leaderboard.data import grid_rows, setup_warnings, training_setup
from dashboard.tabs.leaderboard.grid import column_defs
from dashboard.tabs.leaderboard.training_panel import training_panel
from ml.models.evaluation import classification_metrics
from ml.serving.leaderboard import TASK_METRICS
from ml.serving.registry import CURVES_FILE, METADATA_FILE, Registry
from ml.serving.registry_cache import RegistryCache
from ml.serving.training import TrainConfig, train
from ml.tasks import CLASSIFICATION, CLASSIFICATION_METRICS, CLUSTERING, REGRESSION


@pytest.fixture(scope="module")
def registry(trained_registry: Registry) -> RegistryCache:
    return RegistryCache.of(trained_registry)


@pytest.fixture
def registry_copy(trained_registry: Registry, tmp_path) -> Registry:
    """A private copy of the trained registry, safe to damage or add runs to."""
    shutil.copytree(trained_registry.root, tmp_path / "models")
    return Registry(tmp_path / "models")


@pytest.fixture(autouse=True)
def no_pipeline_loading(monkeypatch):
    """The tab draws everything from metadata and curve data: loading a fitted model is a bug."""

    def refuse(self, run):
        raise AssertionError(f"the leaderboard loaded the pipeline of {run.run_id}")

    monkeypatch.setattr(Registry, "load", refuse)


def _run_id(registry: Registry, task: str, model: str) -> str:
    return registry.latest(task, model).run_id


def _metric_texts(children: object) -> dict[str, str]:
    """The numbers under the confusion matrix, by name, as the browser shows them."""
    found: dict[str, str] = {}

    def walk(node: object) -> None:
        if isinstance(node, list | tuple):
            for child in node:
                walk(child)
            return
        if getattr(node, "data-metric", None):
            found[getattr(node, "data-metric")] = node.children
        children = getattr(node, "children", None)
        if children is not None and not isinstance(children, str):
            walk(children)

    walk(children)
    return found


# ---------------------------------------------------------------- rows and columns
def test_classifier_rows_hold_every_metric_with_cv_spread_timing_and_one_best(registry):
    rows = grid_rows(registry, CLASSIFICATION)
    assert {r["model"] for r in rows} == {"logreg", "xgboost"}
    for row in rows:
        for name in CLASSIFICATION_METRICS:
            assert isinstance(row[name], float), name
            assert isinstance(row[f"cv_{name}_mean"], float) and isinstance(row[f"cv_{name}_std"], float), name
        assert row["fit_seconds"] > 0 and row["predict_ms_per_1000"] > 0
        assert row["created"].endswith("UTC") and row["window"] == 3 and row["status"] == "in use"
        assert row["label"] == "Conversion (proxy)" and row["problem"] is None
    assert [r["run_id"] for r in rows if r["best"]] == [registry.champion(CLASSIFICATION).run_id]
    json.dumps(rows)  # the grid gets them as JSON: no NaN, no numpy scalars


def test_columns_pair_cv_mean_and_held_out_for_every_metric_and_sort_on_the_primary_cv(registry):
    rows = grid_rows(registry, REGRESSION)
    columns = column_defs(REGRESSION, rows)
    groups = {c["headerName"]: c["children"] for c in columns if "children" in c}
    assert len(groups) == len(TASK_METRICS[REGRESSION])
    fields = [[child["field"] for child in children] for children in groups.values()]
    assert fields == [[f"cv_{m}_mean", m] for m in TASK_METRICS[REGRESSION]]
    assert groups["R²"][0]["sort"] == "desc" and groups["MAE ↓"][0]["headerName"] == "CV mean ± std"
    flat = {c.get("field") for c in columns}
    assert {"title", "fit_seconds", "predict_ms_per_1000", "created", "window"} <= flat


def test_clustering_rows_show_silhouette_davies_bouldin_inertia_clusters_and_noise(registry):
    rows = {r["model"]: r for r in grid_rows(registry, CLUSTERING)}
    assert set(rows) == {"kmeans", "dbscan"}
    assert rows["kmeans"]["n_clusters"] >= 2 and rows["kmeans"]["inertia"] > 0
    assert 0 <= rows["dbscan"]["noise_share"] <= 1
    assert all(-1 <= r["silhouette"] <= 1 and r["davies_bouldin"] > 0 for r in rows.values())
    assert sum(r["best"] for r in rows.values()) == 1


def test_table_view_chooses_the_best_run_and_keeps_a_valid_choice(registry):
    _rows, _, _, card, section, options, value = tab.table_view(registry, CLASSIFICATION, history=False)
    assert card == section == tab.SHOWN
    assert value == registry.champion(CLASSIFICATION).run_id
    other = next(o["value"] for o in options if o["value"] != value)
    assert tab.table_view(registry, CLASSIFICATION, False, current=other)[-1] == other
    assert tab.table_view(registry, CLASSIFICATION, False, current="no-such-run")[-1] == value


def test_history_shows_earlier_runs_after_a_second_run_is_saved(registry_copy, small_clicks):
    view = RegistryCache.of(registry_copy)
    before = grid_rows(view, CLASSIFICATION)
    train(
        small_clicks,
        registry_copy,
        TrainConfig(quick=True, models=("logreg",)),
        source="small sample",
        data_hash="small",
    )
    in_use = grid_rows(view, CLASSIFICATION)  # the same cached view sees the new run
    history = grid_rows(view, CLASSIFICATION, history=True)
    assert len(in_use) == len(before) == 2
    assert len(history) == 3 > len(in_use)
    assert [r["status"] for r in history].count("earlier run") == 1
    new_logreg = registry_copy.latest(CLASSIFICATION, "logreg").run_id
    assert new_logreg in {r["run_id"] for r in in_use}
    assert sum(r["best"] for r in history) == 1
    options = tab.table_view(view, CLASSIFICATION, history=True)[5]
    assert any("·" in o["label"] for o in options)  # the earlier run is named by its date


# ---------------------------------------------------------------- classifier figures
def test_roc_curves_of_every_classifier_run_from_0_0_to_1_1_with_the_chosen_one_highlighted(registry):
    chosen = _run_id(registry, CLASSIFICATION, "xgboost")
    roc, pr, _calibration, _gains, _importance, alert, threshold, marks = tab.classifier_view(registry, chosen)
    curves = [t for t in roc.data if t.name != "chance"]
    assert len(curves) == 2
    for trace in curves:
        assert (trace.x[0], trace.y[0]) == (0.0, 0.0)
        assert (trace.x[-1], trace.y[-1]) == (1.0, 1.0)
        assert np.all(np.diff(trace.x) >= 0)
    widths = {t.meta: t.line.width for t in curves}
    assert widths[chosen] > max(w for run_id, w in widths.items() if run_id != chosen)
    assert len([t for t in pr.data if t.meta]) == 2
    assert threshold == pytest.approx(registry.find(chosen).metadata["threshold"], abs=1e-3)
    assert marks[threshold] == "saved"
    assert alert.children in (None, [])


def test_calibration_gains_and_importance_figures_come_from_the_saved_run(registry):
    run = registry.find(_run_id(registry, CLASSIFICATION, "logreg"))
    _, _, calibration, gains, importance, *_ = tab.classifier_view(registry, run.run_id)
    curves = registry.curves(run)
    assert list(calibration.data[-1].x) == curves["calibration"]["mean_predicted"]
    gain = gains.data[-1]
    assert (gain.x[0], gain.y[0]) == (0.0, 0.0) and gain.y[-1] == pytest.approx(1.0)
    saved = run.metadata["feature_importance"]
    assert len(importance.data[0].x) == min(len(saved), 15)
    assert max(importance.data[0].x) == pytest.approx(max(r["importance"] for r in saved))


def test_confusion_matrix_counts_every_held_out_session(registry):
    run = registry.find(_run_id(registry, CLASSIFICATION, "logreg"))
    figure, _ = tab.confusion_view(registry, run.run_id, run.metadata["threshold"])
    counts = np.asarray(figure.data[0].z)
    assert counts.shape == (2, 2)
    assert counts.sum() == run.metadata["data"]["test_sessions"]  # all held-out sessions are stored (<= 5,000)
    predictions = registry.curves(run)["predictions"]
    assert counts[1].sum() == sum(predictions["y_true"])


def test_the_threshold_slider_recomputes_precision_recall_and_f1_as_the_engine_does(registry):
    run = registry.find(_run_id(registry, CLASSIFICATION, "xgboost"))
    predictions = registry.curves(run)["predictions"]
    shown = {}
    for threshold in (0.2, 0.35):
        figure, text = tab.confusion_view(registry, run.run_id, threshold)
        expected = classification_metrics(predictions["y_true"], predictions["p"], threshold)
        metrics = _metric_texts(text)
        for name in ("precision", "recall", "f1", "accuracy"):
            assert metrics[name] == f"{expected[name]:.3f}", name
        _tn, fp = figure.data[0].z[0]
        fn, tp = figure.data[0].z[1]
        assert tp / (tp + fp) == pytest.approx(expected["precision"])
        assert tp / (tp + fn) == pytest.approx(expected["recall"])
        shown[threshold] = metrics
    assert shown[0.2]["recall"] != shown[0.35]["recall"]
    assert float(shown[0.35]["recall"]) <= float(shown[0.2]["recall"])  # a higher cut-off flags fewer sessions


# ---------------------------------------------------------------- regressor figures
def test_residuals_are_actual_minus_predicted(registry):
    run = registry.find(_run_id(registry, REGRESSION, "linear"))
    actual_fig, residual_fig, importance, _alert = tab.regressor_view(registry, run.run_id)
    stored = registry.curves(run)["predictions"]
    actual, predicted = np.asarray(stored["actual"]), np.asarray(stored["predicted"])
    np.testing.assert_allclose(residual_fig.data[0].y, actual - predicted)
    np.testing.assert_allclose(residual_fig.data[0].x, predicted)
    np.testing.assert_allclose(actual_fig.data[0].x, actual)
    np.testing.assert_allclose(actual_fig.data[0].y, predicted)
    assert len(importance.data[0].y) > 0


# ---------------------------------------------------------------- empty, broken, mixed
def test_an_empty_registry_says_no_models_yet_and_offers_training(tmp_path, context):
    view = RegistryCache.of(Registry(tmp_path / "empty"))
    alerts, content_style, note = tab.summary_view(view)
    text = str(alerts)
    assert "No models yet" in text and "Train" in text
    assert content_style == tab.HIDDEN and note == []
    rows, _, _, card, section, options, value = tab.table_view(view, CLASSIFICATION, False)
    assert rows == [] and card == section == tab.HIDDEN and options == [] and value is None
    assert len(tab.classifier_view(view, None)) == 8
    assert tab.confusion_view(view, None, 0.5)[1] == []
    assert len(tab.regressor_view(view, None)) == 4
    assert ids.LEADERBOARD_SUMMARY in str(tab.layout(context))
    # The Train panel lives in the shell (so a job survives tab switches) and shows on this tab.
    _, _, panel_style = render_tab(context, tab.TAB_ID)
    assert panel_style == {}
    assert ids.TRAIN_BUTTON in str(shell(context, [(tab.TAB_ID, tab.LABEL)], training_panel(context)))


def test_a_corrupt_run_is_reported_by_file_name_not_raised(registry_copy):
    bad_meta = registry_copy.latest(CLASSIFICATION, "xgboost").path / METADATA_FILE
    bad_meta.write_text("{ not json", encoding="utf-8")
    bad_curves_run = registry_copy.latest(CLASSIFICATION, "logreg")
    (bad_curves_run.path / CURVES_FILE).write_text("[1, 2", encoding="utf-8")
    view = RegistryCache.of(registry_copy)

    alerts, style, _ = tab.summary_view(view)
    assert str(bad_meta) in str(alerts) and style == tab.SHOWN
    rows = grid_rows(view, CLASSIFICATION)
    broken = next(r for r in rows if r["model"] == "xgboost")
    assert str(bad_meta) in broken["problem"]
    assert any(c.get("field") == "problem" for c in column_defs(CLASSIFICATION, rows))
    options = tab.table_view(view, CLASSIFICATION, False)[5]
    assert next(o for o in options if o["value"] == broken["run_id"])["disabled"] is True

    *_, alert, _, _ = tab.classifier_view(view, broken["run_id"])
    assert str(bad_meta) in str(alert)
    *_figures, alert, _, _ = tab.classifier_view(view, bad_curves_run.run_id)
    assert str(bad_curves_run.path / CURVES_FILE) in str(alert)
    assert "No held-out predictions" in str(tab.confusion_view(view, bad_curves_run.run_id, 0.3)[0].layout)


def test_runs_in_use_with_different_windows_are_called_out(registry_copy):
    path = registry_copy.latest(REGRESSION, "linear").path / METADATA_FILE
    metadata = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps({**metadata, "window": 5}), encoding="utf-8")
    view = RegistryCache.of(registry_copy)
    setup = training_setup(view)
    assert setup.mixed_windows and set(setup.windows) == {3, 5}
    warning = " ".join(setup_warnings(setup))
    assert "k = 3" in warning and "k = 5" in warning and "Linear regression" in warning
    assert "different observation windows" in str(tab.summary_view(view)[0])
    assert {r["window"] for r in grid_rows(view, REGRESSION)} == {3, 5}
    assert "k = 3, k = 5" in str(tab.summary_view(view)[2])


def test_a_run_listing_is_read_once_until_the_run_folders_change(registry_copy, monkeypatch):
    view = RegistryCache.of(registry_copy)
    view.runs()
    reads = []
    original = Registry._info
    monkeypatch.setattr(Registry, "_info", staticmethod(lambda *a: reads.append(a) or original(*a)))
    for task in (CLASSIFICATION, REGRESSION, CLUSTERING):
        grid_rows(view, task, history=True)
    assert reads == []
    shutil.rmtree(registry_copy.latest(CLUSTERING, "dbscan").path)
    assert {r["model"] for r in grid_rows(view, CLUSTERING)} == {"kmeans"}
    assert reads  # the listing changed on disk, so it was read again


# ---------------------------------------------------------------- the capacity rule
def _capacity_texts(children) -> dict[str, str]:
    found: dict[str, str] = {}

    def walk(node):
        if isinstance(node, list | tuple):
            for child in node:
                walk(child)
            return
        if getattr(node, "data-capacity", None):
            found[getattr(node, "data-capacity")] = node.children
        inner = getattr(node, "children", None)
        if inner is not None and not isinstance(inner, str):
            walk(inner)

    walk(children)
    return found


def test_the_capacity_rule_shows_the_saved_held_out_numbers_beside_the_threshold(registry):
    from ml.models.capacity import at_share

    run_id = _run_id(registry, CLASSIFICATION, "xgboost")
    meta = registry.run(run_id).metadata
    children = tab.capacity_panel_view(registry, run_id, 10)
    texts = _capacity_texts(children)
    row = at_share(meta["capacity"], 0.10)
    assert texts["flagged"] == f"{row['flagged']:,} of {meta['capacity']['sessions']:,}"
    assert texts["expected-conversions"] == f"{row['converted']:,}"
    assert texts["precision"] == f"{row['precision']:.1%}" and texts["lift"] == f"{row['lift']:.2f}×"
    rule = meta["threshold_rule"]
    assert f"flags {rule['share']:.0%} of the held-out sessions" in str(children)
    wider = _capacity_texts(tab.capacity_panel_view(registry, run_id, 50))
    assert int(wider["flagged"].split(" of ")[0].replace(",", "")) > row["flagged"]


def test_the_leaderboard_reads_the_active_dataset_s_registry(context, trained_registry, tmp_path):
    """Another dataset's models are not this one's: the views read ``context.registry_for(key)``."""
    bundled = context.registry_for("bundled")
    assert isinstance(bundled, RegistryCache) and bundled is context.registry_for("bundled")  # one cache, kept
    other = context.registry_for("no-such-dataset")  # an unknown key reads the bundled data's
    assert other is bundled
