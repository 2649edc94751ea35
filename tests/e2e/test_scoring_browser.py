"""The batch scoring tab in a real browser: upload, validation report, score, preview, download.

The app runs with models trained beforehand (``python -m ml train --quick`` on
three small models) and the default upload limit of 50 MB, which the browser
enforces before sending anything. The no-model case uses the shared app without models.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from dashboard import ids
from dashboard.uploads import INPUT_FILE, RESULTS_FILE, UPLOADS_DIRNAME, status_counts
from ml.config import BUNDLED_DATASET_KEY
from ml.features.window import STATUSES
from ml.serving.registry import ModelStore
from ml.serving.scoring import SCORE_COLUMNS, read_pin
from tests.dashboard.test_uploads import xlsx_bytes
from tests.e2e.conftest import (
    AppServer,
    open_page,
    save_screenshot,
    serve,
    train_models,
    wait_for_dash,
    watched_page,
)
from tests.ml.factories import lowercase_form
from tests.processes import process_running

WAIT_MS = 120_000  # a busy two-core machine: waiting is not an assertion on speed
UPLOAD_LIMIT_MB = 50  # the default, as the screenshot shows it
FILE_INPUT = f"#{ids.SCORING_UPLOAD} input[type=file]"


@pytest.fixture(scope="module")
def scoring_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """The app with a classifier, a regressor and K-Means trained before it starts."""
    tmp = tmp_path_factory.mktemp("scoring-app")
    train_models(tmp / "models", "logreg,regression:linear,kmeans")
    yield from serve(tmp)


@pytest.fixture
def scoring_page(browser, scoring_server: AppServer):
    yield from watched_page(browser, scoring_server)


@pytest.fixture(scope="module")
def small_clicks_file(tmp_path_factory, bundled_clicks: pd.DataFrame) -> tuple[Path, pd.DataFrame]:
    """A few hundred clicks (60 sessions) in the lowercase comma form."""
    clicks = bundled_clicks[bundled_clicks["session_id"] <= 60].reset_index(drop=True)
    path = tmp_path_factory.mktemp("files") / "clicks-april.csv"
    lowercase_form(clicks).to_csv(path, index=False)
    return path, clicks


def uploads_root(server: AppServer) -> Path:
    return server.models_dir.parent / "cache" / UPLOADS_DIRNAME


def open_scoring(page, server: AppServer) -> None:
    page.goto(server.url + "/?tab=scoring")
    page.wait_for_selector(FILE_INPUT, state="attached", timeout=WAIT_MS)
    wait_for_dash(page, WAIT_MS)


def upload(page, path: Path) -> str:
    """Choose a file in the upload box and return the report's text once it is shown."""
    page.set_input_files(FILE_INPUT, str(path))
    page.wait_for_selector(f"#{ids.SCORING_REPORT} .badge", timeout=WAIT_MS)
    wait_for_dash(page, WAIT_MS)
    return page.locator(f"#{ids.SCORING_REPORT}").inner_text()


def test_upload_score_preview_and_download(scoring_page, scoring_server, small_clicks_file, browser):
    page = scoring_page
    path, clicks = small_clicks_file
    open_scoring(page, scoring_server)
    report = " ".join(upload(page, path).split())
    assert "2. Validation report: clicks-april.csv" in report and "valid" in report
    assert f"Rows (clicks) {len(clicks):,}" in report and "Sessions 60" in report
    assert "Dates 2008-04-01 to 2008-04-01" in report and "lowercase headers" in report
    expected = status_counts(clicks, 3, "review")
    for status in STATUSES:
        assert f"{expected[status]:,} {status}" in report

    page.click(f"#{ids.SCORING_SCORE_BUTTON}")
    page.wait_for_selector(f"#{ids.SCORING_RESULTS}:not([hidden]) .ag-row", timeout=WAIT_MS)
    wait_for_dash(page, WAIT_MS)
    assert page.locator(f"#{ids.SCORING_PREVIEW} .ag-center-cols-container .ag-row").count() == 10  # one page
    summary = page.locator(f"#{ids.SCORING_SUMMARY}").inner_text()
    assert "60" in summary and "Logistic regression" in summary
    assert not page.locator(f"#{ids.SCORING_SCORE_BUTTON}").is_visible()  # the input is used up
    # The model that scored is named and now pinned for the dataset; revenue is a range.
    assert "Scoring with Logistic regression" in page.locator(f"#{ids.SCORING_MODEL_NOTE}").inner_text()
    registry = ModelStore(scoring_server.models_dir).registry(BUNDLED_DATASET_KEY)
    assert read_pin(registry)["run_id"] == registry.champion("classification").run_id
    assert "pinned" in page.locator(f"#{ids.SCORING_MODEL_DROPDOWN}").inner_text()
    assert " – $" in summary  # expected revenue as a range, not to the cent

    # The ranked target list under the capacity rule (top 10% by default).
    with page.expect_download(timeout=WAIT_MS) as targets_download:
        page.click(f"#{ids.SCORING_TARGETS_BUTTON}")
    assert targets_download.value.suggested_filename == "targets-clicks-april-top10pct.csv"
    lines = Path(targets_download.value.path()).read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# target list: top 10% of scored sessions")
    targets = pd.read_csv(io.StringIO("\n".join(lines[1:])))
    assert list(targets.columns) == ["rank", "session_id", "p_convert", "decile", "segment"]
    assert len(targets) == -(-expected["scored"] * 10 // 100) and targets["p_convert"].is_monotonic_decreasing
    assert "targets" in page.locator(f"#{ids.SCORING_RULE_NOTE}").inner_text()

    with page.expect_download(timeout=WAIT_MS) as download:
        page.click(f"#{ids.SCORING_DOWNLOAD_BUTTON}")
    assert download.value.suggested_filename == "scores-clicks-april.csv"
    scores = pd.read_csv(download.value.path())
    assert tuple(scores.columns) == SCORE_COLUMNS
    assert len(scores) == 60 and sorted(scores["session_id"]) == list(range(1, 61))
    assert scores["status"].value_counts().to_dict() == {k: v for k, v in expected.items() if v}

    folders = list(uploads_root(scoring_server).iterdir())
    scored = [f for f in folders if (f / RESULTS_FILE).exists()]
    assert scored and not any((f / INPUT_FILE).exists() for f in scored)
    save_screenshot(page, "scoring")

    # Looking at another tab and coming back keeps the report and the results.
    page.get_by_role("tab", name="KPIs").click()
    page.wait_for_selector(".kpi-card .kpi-value", timeout=WAIT_MS)
    page.get_by_role("tab", name="Batch scoring").click()
    page.wait_for_selector(f"#{ids.SCORING_RESULTS}:not([hidden]) .ag-row", timeout=WAIT_MS)
    wait_for_dash(page, WAIT_MS)
    assert "2. Validation report: clicks-april.csv" in page.locator(f"#{ids.SCORING_REPORT}").inner_text()
    assert page.locator(f"#{ids.SCORING_SUMMARY}").inner_text() == summary
    with page.expect_download(timeout=WAIT_MS) as again:
        page.click(f"#{ids.SCORING_DOWNLOAD_BUTTON}")
    assert len(pd.read_csv(again.value.path())) == 60

    # The job's state is on the server: another tab of the same user (no login here) gets the results too.
    other_context, other = open_page(browser, scoring_server)
    try:
        open_scoring(other, scoring_server)
        other.wait_for_selector(f"#{ids.SCORING_RESULTS}:not([hidden]) .ag-row", timeout=WAIT_MS)
        assert "2. Validation report: clicks-april.csv" in other.locator(f"#{ids.SCORING_REPORT}").inner_text()
        assert other.locator(f"#{ids.SCORING_SUMMARY}").inner_text() == summary
        assert other.watch.console_errors == []
    finally:
        other_context.close()


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("missing-colour.csv", None, ["cannot be scored", "colour", "missing column", "Add the missing columns"]),
        ("renamed-workbook.csv", xlsx_bytes(), ["cannot be scored", "Excel workbook", "Save As"]),
    ],
)
def test_a_broken_file_shows_its_problems_and_nothing_is_scored(
    scoring_page, scoring_server, small_clicks_file, tmp_path, name, content, expected
):
    page = scoring_page
    path = tmp_path / name
    if content is None:
        pd.read_csv(small_clicks_file[0]).drop(columns=["colour"]).to_csv(path, index=False)
    else:
        path.write_bytes(content)
    root = uploads_root(scoring_server)
    before = set(root.iterdir()) if root.exists() else set()
    open_scoring(page, scoring_server)
    report = upload(page, path)
    for words in expected:
        assert words in report
    assert "Nothing was scored" in report
    assert not page.locator(f"#{ids.SCORING_SCORE_BUTTON}").is_visible()
    assert not page.locator(f"#{ids.SCORING_RESULTS}").is_visible()
    assert page.locator(f"#{ids.SCORING_PREVIEW} .ag-row").count() == 0
    assert (set(root.iterdir()) if root.exists() else set()) <= before  # nothing of it was kept


@pytest.mark.parametrize(
    ("name", "size", "expected"),
    [
        ("too-big.csv", UPLOAD_LIMIT_MB * 1024 * 1024 + 4096, f"over the upload limit of {UPLOAD_LIMIT_MB} MB"),
        ("clicks.xlsx", 2048, "only .csv .txt .gz .parquet files are accepted"),
    ],
)
def test_the_browser_refuses_oversized_or_other_files_and_says_why(
    scoring_page, scoring_server, tmp_path, name, size, expected
):
    page = scoring_page
    path = tmp_path / name
    with path.open("wb") as out:
        out.write(b"session_id,order\n")
        out.truncate(size)  # a sparse file: only its size matters to the browser
    open_scoring(page, scoring_server)
    page.set_input_files(FILE_INPUT, str(path))
    note = page.locator(f"#{ids.SCORING_REJECT_NOTE}")
    note.wait_for(state="visible", timeout=WAIT_MS)
    wait_for_dash(page, WAIT_MS)
    assert expected in note.inner_text() and name in note.inner_text()
    assert "Upload a file to see" in page.locator(f"#{ids.SCORING_REPORT}").inner_text()  # nothing was sent


def test_without_a_model_the_report_works_and_the_tab_links_to_training(page, app_server, small_clicks_file):
    open_scoring(page, app_server)
    report = upload(page, small_clicks_file[0])
    assert "valid" in report and "(no model trained yet)" in report
    alert = page.locator(f"#{ids.SCORING_NO_MODEL}")
    assert alert.is_visible() and "No trained model yet" in alert.inner_text()
    assert not page.locator(f"#{ids.SCORING_SCORE_BUTTON}").is_visible()
    page.click(f"#{ids.SCORING_TRAIN_BUTTON}")
    page.wait_for_selector(f"#{ids.TRAIN_BUTTON}", timeout=WAIT_MS)
    wait_for_dash(page, WAIT_MS)
    assert page.locator(f"#{ids.APP_TABS} .nav-link.active").inner_text() == "Model leaderboard"
    assert "tab=leaderboard" in page.url


def test_utf16_is_named_and_a_refused_file_clears_the_earlier_report(
    scoring_page, scoring_server, small_clicks_file, tmp_path
):
    page = scoring_page
    open_scoring(page, scoring_server)
    assert "valid" in upload(page, small_clicks_file[0])
    utf16 = tmp_path / "export-utf16.csv"
    utf16.write_bytes(small_clicks_file[0].read_text(encoding="utf-8").encode("utf-16"))
    page.set_input_files(FILE_INPUT, str(utf16))
    page.wait_for_function(
        f"() => document.querySelector('#{ids.SCORING_REPORT}').innerText.includes('UTF-16')", timeout=WAIT_MS
    )
    report = page.locator(f"#{ids.SCORING_REPORT}").inner_text()
    assert "UTF-16 (little-endian) text, not UTF-8" in report and "iconv" in report and "binary" not in report
    assert "Validation report: clicks-april.csv" not in report
    # A file the browser refuses (too large) clears the earlier report too.
    assert "valid" in upload(page, small_clicks_file[0])
    big = tmp_path / "too-big.csv"
    with big.open("wb") as out:
        out.write(b"session_id,order\n")
        out.truncate(UPLOAD_LIMIT_MB * 1024 * 1024 + 4096)
    page.set_input_files(FILE_INPUT, str(big))
    page.locator(f"#{ids.SCORING_REJECT_NOTE}").wait_for(state="visible", timeout=WAIT_MS)
    page.wait_for_function(
        f"() => document.querySelector('#{ids.SCORING_REPORT}').innerText.includes('Upload a file to see')",
        timeout=WAIT_MS,
    )
    assert not page.locator(f"#{ids.SCORING_SCORE_BUTTON}").is_visible()


def scoring_job_file(server: AppServer) -> Path:
    return server.models_dir.parent / "cache" / "jobs" / BUNDLED_DATASET_KEY / "scoring-local.json"


def running_scoring_pid(server: AppServer, timeout_s: float = 60) -> int:
    """The pid of the scoring job's process, as soon as its job file says it runs."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            job = json.loads(scoring_job_file(server).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            job = None
        if job and job.get("state") == "running":
            return int(job["pid"])
        time.sleep(0.005)
    raise AssertionError("no scoring job started")


def stop_outside_the_job_file_lock(server: AppServer, pid: int) -> int:
    """SIGSTOP the job (held where it is, well inside the heartbeat's 20 s), but never while it writes its job file.

    A job stopped inside its job file's ``flock`` would hold the lock that the Cancel needs.
    """
    lock = scoring_job_file(server).with_name(".scoring-local.json.lock")
    for _ in range(200):
        os.kill(pid, signal.SIGSTOP)
        with open(lock, "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # stopped mid-write: let it finish and try again
                os.kill(pid, signal.SIGCONT)
                time.sleep(0.01)
                continue
            fcntl.flock(handle, fcntl.LOCK_UN)
            return pid
    raise AssertionError("the job never left its job file's lock")


def test_a_running_scoring_job_survives_a_reload_and_cancel_there_writes_nothing(
    scoring_page, scoring_server, bundled_clicks, tmp_path
):
    page = scoring_page
    path = tmp_path / "all-2008.csv"
    lowercase_form(bundled_clicks).to_csv(path, index=False)  # 24,026 sessions: the job reads for a while
    open_scoring(page, scoring_server)
    assert "valid" in upload(page, path)
    page.click(f"#{ids.SCORING_SCORE_BUTTON}")
    pid = stop_outside_the_job_file_lock(scoring_server, running_scoring_pid(scoring_server))
    try:
        page.reload()  # a new page: its stores are empty; the job file on the server says what runs
        page.wait_for_selector(FILE_INPUT, state="attached", timeout=WAIT_MS)
        cancel = f"#{ids.SCORING_CANCEL}"
        page.wait_for_function(f"() => !document.querySelector('{cancel}').disabled", timeout=15_000)
        assert page.locator(f"#{ids.SCORING_SCORE_BUTTON}").is_disabled()
        assert page.locator(f"#{ids.SCORING_PROGRESS}").is_visible()
        assert "2. Validation report: all-2008.csv" in page.locator(f"#{ids.SCORING_REPORT}").inner_text()
        page.keyboard.press("Tab")  # Cancel works from the keyboard too
        page.focus(cancel)
        page.keyboard.press("Enter")
        page.wait_for_function(
            f"() => document.querySelector('#{ids.SCORING_JOB_NOTE}').innerText.includes('cancelled')",
            timeout=15_000,
        )
    finally:
        os.kill(pid, signal.SIGCONT)  # it goes on to its next step, reads the Cancel and stops
    job = scoring_job_file(scoring_server)
    for _ in range(600):
        if not process_running(pid):
            break
        time.sleep(0.05)
    assert json.loads(job.read_text(encoding="utf-8"))["state"] == "cancelled"
    folders = [f for f in uploads_root(scoring_server).iterdir() if (f / INPUT_FILE).exists()]
    assert folders and not any((f / RESULTS_FILE).exists() for f in folders)  # nothing written, input kept
    page.wait_for_function(f"() => !document.querySelector('#{ids.SCORING_SCORE_BUTTON}').disabled", timeout=15_000)
    assert not page.locator(f"#{ids.SCORING_PROGRESS}").is_visible()  # no stale bar after the cancel

    page.click(f"#{ids.SCORING_SCORE_BUTTON}")  # the kept input scores on a second press
    page.wait_for_selector(f"#{ids.SCORING_RESULTS}:not([hidden]) .ag-row", timeout=WAIT_MS)
    wait_for_dash(page, WAIT_MS)
    assert "24,026" in page.locator(f"#{ids.SCORING_SUMMARY}").inner_text()
    assert page.locator(f"#{ids.SCORING_JOB_NOTE}").inner_text().strip() == ""  # the old cancel note is gone
