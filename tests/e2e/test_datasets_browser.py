"""Adding datasets in a real browser: upload, detection, keep, activate, the purchase funnel; a file with
unknown headers mapped in the form; back to the bundled data through a shared URL.

The app gets its own datasets and profiles folders. The files are generated
event logs (``ml.data.synthetic_logs``) written to CSV in a temporary folder;
the numbers the browser shows are checked against the engine's own, computed
here from the same files.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from dashboard import ids
from ml.config import get_settings
from ml.data.loading import load_events
from ml.data.synthetic_logs import multi_category_store_log
from ml.features import periods
from ml.features.kpis import SessionFilter, coverage_of, session_kpis
from ml.features.prepared import prepare
from ml.serving.datasets import DatasetStore
from tests.e2e.conftest import AppServer, save_screenshot, serve, wait_for_dash, watched_page

UPLOAD_LIMIT_MB = 3
WAIT_MS = 180_000  # a busy two-core machine: waiting is not an assertion on speed
FILE_INPUT = f"#{ids.DATA_UPLOAD} input[type=file]"
ODD_NAMES = {
    "event_time": "ts",
    "event_type": "action",
    "product_id": "sku",
    "category_code": "cat",
    "price": "amount",
    "user_id": "visitor",
    "user_session": "visit",
    "brand": "maker",
}
ODD_EVENTS = {"view": "detail", "cart": "add_to_basket", "purchase": "order"}


def by_id(component_id) -> str:
    """A CSS selector for a component, string or pattern-matching ID (Dash writes the latter as sorted JSON)."""
    if isinstance(component_id, dict):
        return "[id='" + json.dumps(component_id, sort_keys=True, separators=(",", ":")) + "']"
    return f"#{component_id}"


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("logs")
    log = multi_category_store_log(8_000, seed=11)
    shop = folder / "shop-october.csv"
    log.to_csv(shop, index=False)
    odd = log.rename(columns=ODD_NAMES).drop(columns=["category_id"])
    odd["action"] = odd["action"].map(ODD_EVENTS)
    odd_path = folder / "odd-export.csv"
    odd.to_csv(odd_path, index=False)
    big = folder / "too-big.csv"
    big.write_bytes(b"a,b\n" + b"1,2\n" * (UPLOAD_LIMIT_MB * 1024 * 1024 // 4 + 10))
    return {"shop": shop, "odd": odd_path, "big": big}


@pytest.fixture(scope="module")
def data_server(tmp_path_factory) -> Iterator[AppServer]:
    tmp = tmp_path_factory.mktemp("datasets-app")
    env = {
        "CLICKSTREAM_DATASETS_DIR": str(tmp / "datasets"),
        "CLICKSTREAM_PROFILES_DIR": str(tmp / "profiles"),
        "CLICKSTREAM_MAX_UPLOAD_MB": str(UPLOAD_LIMIT_MB),
    }
    server = None
    for server in serve(tmp, env):
        server.datasets_dir = tmp / "datasets"
        server.settings = get_settings().with_overrides(datasets_dir=tmp / "datasets", models_dir=tmp / "models")
        yield server


@pytest.fixture
def page(browser, data_server: AppServer):
    yield from watched_page(browser, data_server)


def engine_conversion(path: Path) -> str:
    """The conversion rate the engine computes for the KPI tab's landing period, as the KPI card formats it."""
    data = prepare(load_events(path))
    start, end = periods.default_period(coverage_of(data.cube))  # the latest complete weeks the tab opens on
    return f"{session_kpis(data.sessions, SessionFilter(start=start, end=end))['conversion_rate']:.1%}"


def card_value(page, title: str) -> str:
    card = page.locator(".kpi-card", has=page.locator(".kpi-title", has_text=title)).first
    return card.locator(".kpi-value").inner_text().strip()


def open_panel(page) -> None:
    page.click(f"#{ids.DATA_ADD_BUTTON}")
    page.wait_for_selector(f"#{ids.DATA_MODAL}", state="visible")
    page.wait_for_selector(FILE_INPUT, state="attached", timeout=WAIT_MS)


def upload(page, path: Path, status: str) -> None:
    page.set_input_files(FILE_INPUT, str(path))
    page.wait_for_selector(f"#{ids.DATA_REPORT} .data-status:has-text('{status}')", timeout=WAIT_MS)


def keep_and_activate(page, button: str = ids.DATA_KEEP) -> str:
    """Keep the checked upload, wait for the job, activate the dataset; returns the URL's dataset key."""
    page.click(f"#{button}")
    page.wait_for_selector(f"#{ids.DATA_JOB_NOTE} .alert-success", timeout=WAIT_MS)
    page.click(f"#{ids.DATA_ACTIVATE}")
    page.wait_for_selector(f"#{ids.DATA_MODAL}", state="hidden")
    page.wait_for_function("() => window.location.search.includes('dataset=')", timeout=WAIT_MS)
    page.wait_for_selector(".kpi-card .kpi-value", timeout=WAIT_MS)
    page.wait_for_selector(f"#{ids.KPI_FUNNEL_GRAPH} .main-svg", timeout=WAIT_MS)
    wait_for_dash(page, WAIT_MS)
    search = page.evaluate("() => window.location.search")
    return dict(p.split("=", 1) for p in search.lstrip("?").split("&"))["dataset"]


def test_an_uploaded_event_log_is_detected_kept_activated_and_shows_the_purchase_funnel(page, data_server, files):
    page.goto(data_server.url)
    page.wait_for_selector(".kpi-card .kpi-value", timeout=WAIT_MS)
    open_panel(page)
    upload(page, files["shop"], "ready to keep")
    report = page.inner_text(f"#{ids.DATA_REPORT}")
    events = load_events(files["shop"])
    assert "Multi-category store event log" in report
    assert f"{len(events.events):,}" in report and f"{events.n_sessions:,}" in report
    assert "Conversion (purchases)" in report
    assert page.is_visible(f"#{ids.DATA_KEEP}") and not page.is_visible(f"#{ids.DATA_KEEP_DROPPING}")

    key = keep_and_activate(page)
    assert key == "shop-october"
    info = page.inner_text(f"#{ids.DATA_INFO}")
    assert "Multi-category store event log" in info and "Conversion (purchases)" in info
    assert card_value(page, "Conversion (purchases)") == engine_conversion(files["shop"])
    funnel = page.inner_text(f"#{ids.KPI_FUNNEL_GRAPH}")
    assert "Added to cart" in funnel and "Purchased" in funnel
    save_screenshot(page, "purchase-funnel")

    # the data control lists both, the bundled one first, and says what is in use
    page.click(f"#{ids.DATA_SELECT}")
    page.wait_for_timeout(500)
    save_screenshot(page, "data-control")
    page.keyboard.press("Escape")
    assert (data_server.datasets_dir / key / "sessions.parquet").is_file()  # prepared tables kept on disk


def test_a_log_with_unknown_headers_is_mapped_in_the_form_and_activated(page, data_server, files):
    page.goto(data_server.url)
    page.wait_for_selector(".kpi-card .kpi-value", timeout=WAIT_MS)
    open_panel(page)
    # a file over the limit is refused by the browser, and the report of the file before it goes
    upload(page, files["shop"], "ready to keep")
    page.set_input_files(FILE_INPUT, str(files["big"]))
    page.wait_for_selector(f"#{ids.DATA_REJECT_NOTE}:has-text('over the upload limit of {UPLOAD_LIMIT_MB} MB')")
    page.wait_for_selector(f"#{ids.DATA_REPORT} .data-report-card", state="detached")
    assert not page.is_visible(f"#{ids.DATA_KEEP}")
    upload(page, files["odd"], "columns not recognised")
    assert not page.is_visible(f"#{ids.DATA_REJECT_NOTE}")
    page.wait_for_selector(f"#{ids.DATA_MAPPING}:not([hidden])")
    for field, column in {
        "session_id": "visit",
        "user_id": "visitor",
        "timestamp": "ts",
        "event_type": "action",
        "product_id": "sku",
        "category": "cat",
        "price": "amount",
    }.items():
        page.select_option(by_id(ids.data_map_field(field)), column)
    page.wait_for_selector(f"#{ids.DATA_MAP_EVENTS} .data-event-values")
    odd = pd.read_csv(files["odd"])
    for index, value in enumerate(odd["action"].value_counts().index):
        kind = {v: k for k, v in ODD_EVENTS.items()}[value]
        page.select_option(by_id(ids.data_map_event(index)), kind)
    page.locator(f"#{ids.DATA_MAP_DIMENSIONS} label", has_text="maker").click()
    page.fill(f"#{ids.DATA_MAP_NAME}", "Odd shop export")
    save_screenshot(page, "mapping-form")
    page.click(f"#{ids.DATA_MAP_APPLY}")
    page.wait_for_selector(f"#{ids.DATA_REPORT} .data-status:has-text('ready to keep')", timeout=WAIT_MS)
    assert "Odd shop export" in page.inner_text(f"#{ids.DATA_REPORT}")
    page.click(f"#{ids.DATA_MAP_SAVE}")
    page.wait_for_selector(f"#{ids.DATA_MAP_NOTE} .alert-success", timeout=WAIT_MS)

    key = keep_and_activate(page)
    assert key == "odd-export"
    assert "Odd shop export" in page.inner_text(f"#{ids.DATA_INFO}")
    assert card_value(page, "Conversion (purchases)") == engine_conversion(files["shop"])  # the same events
    funnel = page.inner_text(f"#{ids.KPI_FUNNEL_GRAPH}")
    assert "Added to cart" in funnel and "Purchased" in funnel


def test_a_shared_url_switches_back_to_the_bundled_data_and_to_an_added_one(page, data_server, files):
    ensure_shop_dataset(data_server, files)
    page.goto(f"{data_server.url}/?dataset=bundled")
    page.wait_for_selector(".kpi-card .kpi-value", timeout=WAIT_MS)
    wait_for_dash(page, WAIT_MS)
    assert "UCI 553" in page.inner_text(f"#{ids.DATA_INFO}")
    assert card_value(page, "Conversion (proxy)")
    page.goto(f"{data_server.url}/?dataset=shop-october")
    page.wait_for_selector(".kpi-card .kpi-value", timeout=WAIT_MS)
    wait_for_dash(page, WAIT_MS)
    assert "Multi-category store event log" in page.inner_text(f"#{ids.DATA_INFO}")
    assert card_value(page, "Conversion (purchases)") == engine_conversion(files["shop"])


def ensure_shop_dataset(data_server: AppServer, files: dict[str, Path]) -> None:
    store = DatasetStore.for_settings(data_server.settings)
    if not store.exists("shop-october"):  # run alone: add it as the first test would (the app reads the disk)
        store.add(load_events(files["shop"]), "shop-october")


def test_on_an_added_dataset_models_train_the_whatif_answers_and_a_file_of_its_profile_is_scored(
    page, data_server, files
):
    ensure_shop_dataset(data_server, files)
    base = f"{data_server.url}/?dataset=shop-october"

    # Train quick models on the added dataset from the Train panel.
    page.goto(f"{base}&tab=leaderboard")
    page.wait_for_selector(f"#{ids.TRAIN_BUTTON}", timeout=WAIT_MS)
    wait_for_dash(page, WAIT_MS)
    wanted = ("classification:logreg", "regression:linear")
    boxes = page.locator(f"#{ids.TRAIN_MODELS} input[type=checkbox]")
    for i in range(boxes.count()):
        boxes.nth(i).set_checked(boxes.nth(i).get_attribute("value") in wanted)
    page.check(f"#{ids.TRAIN_MODE} input[value=quick]")
    page.click(f"#{ids.TRAIN_BUTTON}")
    page.wait_for_function(
        f"() => [...document.querySelectorAll('#{ids.TRAIN_STATUS} tbody tr')]"
        f".filter(r => r.innerText.includes('done')).length === {len(wanted)}",
        timeout=WAIT_MS,
    )
    page.wait_for_selector(f"#{ids.LEADERBOARD_CLASSIFICATION_GRID} .ag-center-cols-container .ag-row", timeout=WAIT_MS)
    wait_for_dash(page, WAIT_MS)
    runs = list((data_server.models_dir / "shop-october").glob("*/*/*/metadata.json"))
    assert {p.parent.parent.name for p in runs} == {"logreg", "linear"}  # the dataset's own registry
    assert json.loads(runs[0].read_text())["label"]["title"] == "Conversion (purchases)"

    # The what-if answers a slider move with the dataset's model.
    page.goto(f"{base}&tab=whatif")
    page.wait_for_selector("[role=slider]", timeout=WAIT_MS)
    probability = page.locator(f"#{ids.WHATIF_PROBABILITY_TEXT}")
    page.wait_for_function(
        f"() => document.querySelector('#{ids.WHATIF_PROBABILITY_TEXT}').innerText.includes('%')", timeout=WAIT_MS
    )
    wait_for_dash(page, WAIT_MS)
    assert "conversion (purchases)" in page.inner_text(f"#{ids.APP_TAB_CONTENT}").lower()  # card titles are upper-cased
    before = probability.inner_text().strip()
    thumbs = page.locator("[role=slider]")
    for i in range(thumbs.count()):  # the first input the model does not ignore
        thumbs.nth(i).focus()
        for _ in range(5):
            page.keyboard.press("ArrowRight")
        wait_for_dash(page, WAIT_MS)
        if probability.inner_text().strip() != before:
            break
    after = probability.inner_text().strip()
    assert after != before and 0 <= float(after.rstrip("%")) <= 100

    # A file of the same profile is checked, scored and downloaded.
    page.goto(f"{base}&tab=scoring")
    page.set_input_files(f"#{ids.SCORING_UPLOAD} input[type=file]", str(files["shop"]))
    page.wait_for_selector(f"#{ids.SCORING_REPORT} .badge", timeout=WAIT_MS)
    wait_for_dash(page, WAIT_MS)
    assert "shop-october.csv" in page.inner_text(f"#{ids.SCORING_REPORT}")
    page.click(f"#{ids.SCORING_SCORE_BUTTON}")
    page.wait_for_selector(f"#{ids.SCORING_RESULTS}:not([hidden]) .ag-row", timeout=WAIT_MS)
    wait_for_dash(page, WAIT_MS)
    with page.expect_download(timeout=WAIT_MS) as download:
        page.click(f"#{ids.SCORING_DOWNLOAD_BUTTON}")
    scores = pd.read_csv(download.value.path())
    events = load_events(files["shop"])
    assert len(scores) == events.n_sessions
    assert scores["p_convert"].dropna().between(0, 1).all() and scores["p_convert"].notna().any()
