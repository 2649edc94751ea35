"""Batch scoring tab: layout, report and results builders, and the callback bodies as plain functions.

Uses the ``context``/``app`` fixtures of ``tests/dashboard/conftest.py`` and the
``trained_registry`` of ``tests/conftest.py``; uploads are real bytes sent as
the browser sends them.
"""

from __future__ import annotations

import base64
import io
import json
from dataclasses import replace

import dash_ag_grid as dag
import pandas as pd
import plotly.graph_objects as go
import pytest
from dash import dcc, html

from dashboard import ids
from dashboard.figures.scoring import NO_SCORED_SESSIONS, column_defs, p_convert_histogram
from dashboard.layout import shell
from dashboard.tabs import TABS, scoring
from dashboard.tabs.leaderboard.training_panel import training_panel
from dashboard.uploads import INPUT_FILE, UploadStore, check_upload, run_scoring_job
from ml.data.synthetic_logs import multi_category_store_log
from ml.features.window import STATUS_CONVERTED_IN_WINDOW, STATUS_SCORED, STATUS_TOO_SHORT
from ml.serving.registry import Registry
from ml.serving.scoring import SCORE_COLUMNS
from tests.dashboard.test_uploads import data_url, xlsx_bytes
from tests.ml.factories import lowercase_form


def _texts(component: object) -> list[str]:
    if component is None:
        return []
    if isinstance(component, str | int | float):
        return [str(component)]
    if isinstance(component, list | tuple):
        return [t for c in component for t in _texts(c)]
    return _texts(getattr(component, "children", None))


def text_of(component: object) -> str:
    """All the text a component tree shows, with single spaces."""
    return " ".join(" ".join(_texts(component)).split())


def find(component: object, component_type: type) -> list:
    found = [component] if isinstance(component, component_type) else []
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if child is not None and not isinstance(child, str | int | float):
            found.extend(find(child, component_type))
    return found


@pytest.fixture
def settings(dash_settings, tmp_path):
    return dash_settings.with_overrides(cache_dir=tmp_path / "cache", models_dir=tmp_path / "no-models")


@pytest.fixture
def scored_settings(settings, trained_registry):
    return settings.with_overrides(models_dir=trained_registry.root.parent)


@pytest.fixture(scope="module")
def small_csv(small_clicks: pd.DataFrame) -> bytes:
    """60 sessions in the lowercase comma form."""
    return lowercase_form(small_clicks[small_clicks["session_id"] <= 60]).to_csv(index=False).encode()


# ---------------------------------------------------------------- layout
def test_layout_states_and_enforces_the_upload_limit_and_types(context):
    tree = scoring.layout(context)
    upload = find(tree, dcc.Upload)[0]
    assert upload.id == ids.SCORING_UPLOAD
    assert upload.max_size == context.settings.max_upload_bytes == 50 * 1024 * 1024
    assert set(upload.accept.split(",")) == {".csv", ".txt", ".gz", ".parquet"}
    assert "up to 50 MB" in text_of(tree)
    # The upload and job stores live in the shell (they outlive a switch to another tab), in memory:
    # never shared with another browser tab.
    page = shell(context, [(scoring.TAB_ID, scoring.LABEL)], training_panel(context))
    stores = [s for s in find(page, dcc.Store) if s.id in (ids.SCORING_UPLOAD_STORE, ids.SCORING_RESULT_STORE)]
    assert len(stores) == 2 and {s.storage_type for s in stores} == {"memory"}
    grid = find(tree, dag.AgGrid)[0]
    assert [c["field"] for c in grid.columnDefs] == list(SCORE_COLUMNS)


def test_the_limit_shown_follows_the_configuration(context, settings):
    small = replace(context, settings=settings.with_overrides(max_upload_bytes=3 * 1024 * 1024))
    tree = scoring.layout(small)
    assert find(tree, dcc.Upload)[0].max_size == 3 * 1024 * 1024
    assert "up to 3 MB" in text_of(tree)


# ---------------------------------------------------------------- the upload callback
def test_a_valid_upload_gets_a_report_with_counts_by_status(scored_settings, trained_registry, small_csv):
    report, upload = scoring.receive_upload(scored_settings, trained_registry, data_url(small_csv), "may.csv", None)
    text = text_of(report)
    assert upload["valid"] and upload["filename"] == "may.csv"
    assert UploadStore.for_settings(scored_settings).input_bytes(upload["id"]) == small_csv
    for words in ("Validation report: may.csv", "Sessions", "60", "2008-04-01 to 2008-04-01", "lowercase headers"):
        assert words in text
    assert "the model's window k = 3" in text
    checked = check_upload(scored_settings, trained_registry, data_url(small_csv), "again.csv")
    for status in (STATUS_SCORED, STATUS_TOO_SHORT, STATUS_CONVERTED_IN_WINDOW):
        assert f"{checked.counts[status]:,} {status}" in text
    assert sum(checked.counts.values()) == 60


def test_a_new_upload_replaces_the_tab_s_previous_one(scored_settings, trained_registry, small_csv):
    _, first = scoring.receive_upload(scored_settings, trained_registry, data_url(small_csv), "a.csv", None)
    _, second = scoring.receive_upload(scored_settings, trained_registry, data_url(small_csv), "b.csv", first)
    root = UploadStore.for_settings(scored_settings).root
    assert [p.name for p in root.iterdir()] == [second["id"]]


def test_the_report_shows_the_engine_warnings(settings, small_clicks):
    frame = lowercase_form(small_clicks[small_clicks["session_id"] <= 5]).assign(referrer="newsletter")
    data = frame.to_csv(index=False).encode()
    report, upload = scoring.receive_upload(settings, Registry(settings.models_dir), data_url(data), "w.csv", None)
    assert upload["valid"] and "ignored 1 extra column(s): 'referrer'" in text_of(report)


def test_without_a_model_the_report_still_works(settings, small_csv):
    report, upload = scoring.receive_upload(settings, Registry(settings.models_dir), data_url(small_csv), "x.csv", None)
    assert upload["valid"]
    assert "window k = 3 (no model trained yet)" in text_of(report)
    assert "the re-view proxy" in text_of(report)


def test_the_report_of_an_event_log_names_purchases_as_its_label(settings):
    data = multi_category_store_log(600, seed=3).to_csv(index=False).encode()
    report, upload = scoring.receive_upload(settings, Registry(settings.models_dir), data_url(data), "shop.csv", None)
    assert upload["valid"]
    assert "the file's purchase events" in text_of(report) and "re-view proxy" not in text_of(report)


@pytest.mark.parametrize(
    ("data", "name", "expected"),
    [
        (b"year,month\n2008,4\n", "two-columns.csv", ["missing column", "session_id", "Add the missing columns"]),
        (xlsx_bytes(), "book.csv", ["Excel workbook", "Save As"]),
        (b"", "empty.csv", ["the file is empty", "header line"]),
        ("session_id;café\n".encode("latin-1"), "latin.csv", ["not UTF-8", "UTF-8 CSV"]),
    ],
)
def test_a_broken_upload_lists_its_problems_with_a_fix_and_is_not_kept(settings, data, name, expected):
    report, upload = scoring.receive_upload(settings, Registry(settings.models_dir), data_url(data), name, None)
    text = text_of(report)
    assert {k: upload[k] for k in ("id", "filename", "valid")} == {"id": None, "filename": name, "valid": False}
    assert upload["report"]["kind"] == "problems"  # the store holds the report's data, not a component
    assert json.loads(json.dumps(upload)) == upload
    assert f"'{name}' cannot be scored" in text and "Nothing was scored" in text
    for words in expected:
        assert words in text
    assert find(report, html.Thead), "problems are shown as a table"
    root = UploadStore.for_settings(settings).root
    assert not root.exists() or not list(root.iterdir())


def test_problem_rows_show_column_message_examples_and_count(settings, small_clicks):
    frame = lowercase_form(small_clicks[small_clicks["session_id"] <= 20]).astype({"price": object})
    frame.loc[[1, 4, 6], "price"] = "n/a"
    data = frame.to_csv(index=False).encode()
    report, _ = scoring.receive_upload(settings, Registry(settings.models_dir), data_url(data), "p.csv", None)
    cells = [text_of(td) for td in find(report, html.Td)]
    assert cells[:4] == ["price", "not a number (e.g. 'n/a', 'n/a', 'n/a')", "2, 5, 7", "3"]


# ---------------------------------------------------------------- readiness, results, notes, download
def test_no_model_hides_scoring_and_shows_the_training_link(settings):
    hidden, no_model, note = scoring.readiness(Registry(settings.models_dir), {"id": "x", "valid": True}, None)
    assert (hidden, no_model, note) == (True, True, None)


def test_scoring_is_offered_for_a_valid_upload_until_it_is_scored(trained_registry):
    upload = {"id": "A" * 32, "valid": True}
    hidden, no_model, note = scoring.readiness(trained_registry, upload, None)
    assert (hidden, no_model) == (False, False) and "window k = 3" in text_of(note)
    assert scoring.readiness(trained_registry, {"id": None, "valid": False}, None)[0] is True
    assert scoring.readiness(trained_registry, upload, {"id": upload["id"], "ok": True})[0] is True
    assert scoring.readiness(trained_registry, upload, {"id": "B" * 32, "ok": True})[0] is False


def test_results_show_counts_histogram_and_preview_only_for_this_upload(scored_settings, trained_registry, small_csv):
    _, upload = scoring.receive_upload(scored_settings, trained_registry, data_url(small_csv), "s.csv", None)
    result = run_scoring_job(scored_settings, upload["id"], lambda _: None)
    hidden, summary, figure, rows = scoring.results_view(upload, result)
    assert not hidden and len(rows) == 50 and list(rows[0]) == list(SCORE_COLUMNS)
    text = text_of(summary)
    counts = result["summary"]["status_counts"]
    assert f"{counts[STATUS_SCORED]:,}" in text and "Expected revenue" in text and "Logistic regression" in text
    assert isinstance(figure, go.Figure) and sum(figure.data[0].y) == counts[STATUS_SCORED]
    assert scoring.results_view({"id": "other", "valid": True}, result)[0] is True
    assert scoring.results_view(upload, None)[0] is True


def test_download_sends_the_results_file_then_says_when_it_expired(scored_settings, trained_registry, small_csv):
    _, upload = scoring.receive_upload(scored_settings, trained_registry, data_url(small_csv), "May 2008.csv", None)
    result = run_scoring_job(scored_settings, upload["id"], lambda _: None)
    sent, note = scoring.download_results(scored_settings, result)
    assert note is None and sent["filename"] == "scores-May-2008.csv"
    table = pd.read_csv(io.BytesIO(base64.b64decode(sent["content"])))
    assert tuple(table.columns) == SCORE_COLUMNS and len(table) == 60
    UploadStore.for_settings(scored_settings).remove(upload["id"])
    sent, note = scoring.download_results(scored_settings, result)
    assert "expired" in text_of(note)


# ---------------------------------------------------------------- figures
def test_histogram_marks_the_threshold_and_says_when_nothing_was_scored():
    fig = p_convert_histogram([1, 4, 2], [0.1, 0.2, 0.3, 0.4], 0.25)
    assert list(fig.data[0].y) == [1, 4, 2]
    assert fig.layout.shapes[0].x0 == 0.25 and "threshold 0.250" in fig.layout.annotations[0].text
    empty = p_convert_histogram([], [], 0.25)
    assert not empty.data and empty.layout.annotations[0].text == NO_SCORED_SESSIONS


def test_preview_columns_are_the_cli_columns_with_readable_titles():
    defs = column_defs()
    assert [d["field"] for d in defs] == list(SCORE_COLUMNS)
    assert all(d["headerName"] and d["headerTooltip"].startswith(d["field"]) for d in defs)


# ---------------------------------------------------------------- the app
def test_the_app_registers_the_background_job_and_the_training_link(app):
    assert scoring in TABS and scoring.TAB_ID == "scoring"
    callbacks = app.callback_map
    job = callbacks[f"{ids.SCORING_RESULT_STORE}.data"]
    assert job["background"]["cancel"], "scoring must run as a cancellable background callback"
    # Progress, Score/Cancel and notes come from the job file on the server (one poll), not from this tab's job.
    assert not job["background"].get("progress")
    poll = next(v for v in callbacks.values() if {"id": ids.SCORING_POLL, "property": "n_intervals"} in v["inputs"])
    outputs = {str(o) for o in poll["output"]}
    assert {f"{ids.SCORING_PROGRESS}.value", f"{ids.SCORING_CANCEL}.disabled"} <= outputs
    link = next(v for v in callbacks.values() if [i["id"] for i in v["inputs"]] == [ids.SCORING_TRAIN_BUTTON])
    assert ids.APP_TABS in str(link["output"])
    assert link["callback"].__wrapped__(1) == scoring.TRAIN_TAB == "leaderboard"
    contents = [{"id": ids.SCORING_UPLOAD, "property": "contents"}]
    upload = next(v for v in callbacks.values() if v["inputs"] == contents)
    assert upload["callback"].__wrapped__(None, None, None, None)[0].__class__.__name__ == "NoUpdate"


def test_uploaded_bytes_are_never_unpickled(settings, tmp_path):
    """A pickle is not a click file: it is refused as data, and nothing in it runs."""
    import pickle

    marker = tmp_path / "ran"
    payload = pickle.dumps(eval_on_load(str(marker)))
    report, upload = scoring.receive_upload(settings, Registry(settings.models_dir), data_url(payload), "x.pkl", None)
    assert not upload["valid"] and not marker.exists()
    assert "cannot be scored" in text_of(report)
    assert not (UploadStore.for_settings(settings).root / "x" / INPUT_FILE).exists()


class eval_on_load:  # named for what it does
    """An object whose unpickling would create a file."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


# ---------------------------------------------------------------- pinned model, rules, ranges, encodings
@pytest.fixture
def registry_copy(trained_registry, tmp_path) -> Registry:
    """A private copy of the trained registry (bundled dataset), safe to pin and retrain in."""
    import shutil

    root = tmp_path / "models" / "bundled"
    shutil.copytree(trained_registry.root, root)
    (root / "scoring_pin.json").unlink(missing_ok=True)  # earlier tests scored with (and pinned) the shared one
    return Registry(root, lock_dir=tmp_path / "models")


def test_the_scoring_model_is_pinned_and_a_partial_retrain_does_not_change_it(
    settings, registry_copy, small_clicks, small_csv
):
    from dashboard.tabs.scoring.rules import model_choices, model_note, pin_choice
    from dashboard.uploads import model_info
    from ml.serving.scoring import read_pin, scoring_choice
    from ml.serving.training import TrainConfig, train

    scored = settings.with_overrides(models_dir=registry_copy.root.parent)
    champion = registry_copy.champion("classification").run_id
    assert read_pin(registry_copy) is None
    _, upload = scoring.receive_upload(scored, registry_copy, data_url(small_csv), "a.csv", None)
    result = run_scoring_job(scored, upload["id"], lambda _: None)
    assert result["ok"] and result["models"]["run_id"] == champion
    assert read_pin(registry_copy)["run_id"] == champion  # the first scoring pinned the champion
    # A partial retrain: one classifier, another window. It may well be the champion now; scoring stays.
    train(small_clicks, registry_copy, TrainConfig(window=4, quick=True, models=("tree",)), source="s", data_hash="s")
    retrained = registry_copy.latest("classification", "tree").run_id
    for run in registry_copy.runs("classification"):  # make the new run the champion for certain
        if run.run_id == retrained:
            meta = dict(run.metadata)
            meta["metrics"]["cv"]["roc_auc"] = {"mean": 0.99, "std": 0.0}
            (run.path / "metadata.json").write_text(json.dumps(meta))
    assert registry_copy.champion("classification").run_id == retrained
    choice = scoring_choice(registry_copy)
    assert choice.run.run_id == champion and choice.pinned and choice.newer_champion
    info = model_info(registry_copy)
    assert info["run_id"] == champion and info["pinned"] and info["champion"] == "Decision tree"
    note = text_of(model_note(info))
    assert "pinned for this dataset" in note and "newer training run made Decision tree the champion" in note
    options, value = model_choices(registry_copy)
    assert value == champion and any("pinned" in o["label"] for o in options if o["value"] == champion)
    _, upload = scoring.receive_upload(scored, registry_copy, data_url(small_csv), "b.csv", None)
    again = run_scoring_job(scored, upload["id"], lambda _: None)
    assert again["models"]["run_id"] == champion and again["models"]["window"] == 3
    # Choosing another model in the dropdown pins it.
    assert pin_choice(registry_copy, retrained, "ann") is True
    assert read_pin(registry_copy)["run_id"] == retrained and read_pin(registry_copy)["by"] == "ann"
    info = model_info(registry_copy)
    assert info["basket_model"] is None  # no regressor with a 4-click window
    assert "No basket-value model was trained with a 4-click window" in text_of(model_note(info))


def test_expected_revenue_is_a_range_or_says_there_is_no_basket_model(scored_settings, trained_registry, small_csv):
    from dashboard.figures.scoring import revenue_text
    from ml.serving.scoring import expected_revenue_range

    _, upload = scoring.receive_upload(scored_settings, trained_registry, data_url(small_csv), "r.csv", None)
    result = run_scoring_job(scored_settings, upload["id"], lambda _: None)
    interval = result["models"]["interval"]
    low, high = result["summary"]["expected_revenue_range"]
    scores = pd.read_parquet(UploadStore.for_settings(scored_settings).folder(upload["id"]) / "scores.parquet")
    assert (low, high) == pytest.approx(expected_revenue_range(scores, interval))
    assert low <= result["summary"]["expected_revenue"] <= high
    value, note = revenue_text(result)
    assert value == f"${low:,.0f} – ${high:,.0f}" and "range of held-out errors" in note
    no_basket = {**result, "models": {**result["models"], "regressor": None}}
    value, note = revenue_text(no_basket)
    assert value == "no basket model" and "$0" not in value and "window k = 3" in note


def test_the_target_list_ranks_sessions_by_capacity_or_threshold(scored_settings, trained_registry, small_csv):
    _, upload = scoring.receive_upload(scored_settings, trained_registry, data_url(small_csv), "t.csv", None)
    result = run_scoring_job(scored_settings, upload["id"], lambda _: None)
    scored = result["summary"]["status_counts"][STATUS_SCORED]
    data, note = scoring.download_targets(scored_settings, result, "capacity", 20)
    lines = data["content"].splitlines()
    assert lines[0].startswith("# target list: top 20% of scored sessions; model Logistic regression")
    targets = pd.read_csv(io.StringIO("\n".join(lines[1:])))
    assert list(targets.columns) == ["rank", "session_id", "p_convert", "decile", "segment"]
    assert len(targets) == -(-scored * 20 // 100)  # ceil: the top 20% of scored sessions
    assert targets["rank"].tolist() == list(range(1, len(targets) + 1))
    assert targets["p_convert"].is_monotonic_decreasing and set(targets["decile"]) <= {1, 2}
    assert data["filename"] == "targets-t-top20pct.csv" and "sessions, best first" in text_of(note)
    data, _ = scoring.download_targets(scored_settings, result, "threshold", None)
    by_threshold = pd.read_csv(io.StringIO(data["content"].split("\n", 1)[1]))
    assert len(by_threshold) == result["target_counts"]["threshold"]
    assert (by_threshold["p_convert"] >= result["models"]["threshold"] - 1e-6).all()
    assert scoring.download_targets(scored_settings, None, "capacity", 10)[0] is dash_no_update()


def dash_no_update():
    from dash import no_update

    return no_update


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [("utf-16", "UTF-16 (little-endian) text"), ("utf-16-be", "UTF-16 (big-endian, without a byte-order mark)")],
)
def test_utf16_text_is_named_with_its_encoding_and_how_to_convert_it(settings, small_csv, encoding, expected):
    data = small_csv.decode().encode(encoding)
    report, upload = scoring.receive_upload(settings, Registry(settings.models_dir), data_url(data), "u16.csv", None)
    text = text_of(report)
    assert expected in text and "iconv -f UTF-16" in text and "CSV UTF-8" in text
    assert "binary" not in text and "Parquet" not in text
    assert len(upload["report"]["problems"]) == 1


def test_mixed_delimiters_get_one_message_and_a_rejected_upload_replaces_the_report(settings, small_csv):
    registry = Registry(settings.models_dir)
    _, good = scoring.receive_upload(settings, registry, data_url(small_csv), "good.csv", None)
    assert good["valid"]
    lines = small_csv.decode().splitlines()
    mixed = "\n".join([lines[0].replace(",", ";"), *lines[1:]]).encode()
    _, upload = scoring.receive_upload(settings, registry, data_url(mixed), "mixed.csv", good)
    problems = upload["report"]["problems"]
    assert len(problems) == 1 and "separated by semicolons but the rows by commas" in problems[0]["message"]
    assert not upload["valid"] and "Validation report" not in text_of(scoring.report_view(upload))
    assert not (UploadStore.for_settings(settings).root / good["id"]).exists()  # the earlier file is gone
