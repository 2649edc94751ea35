"""Adding datasets from the browser, on the server: real files (clean, broken, unknown headers, too large),
the report before anything is kept, the preparing job, and add / list / switch / delete through the
panel's callback bodies.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import sqlite3

import pandas as pd
import pytest
from dash import no_update

from dashboard import ids
from dashboard.context import AppContext
from dashboard.datasets import intake as I
from dashboard.datasets.actions import (
    action_styles,
    activate,
    apply_mapping,
    ask_delete,
    dataset_list,
    delete_dataset,
    job_finished,
    keep_request,
    mapping_defaults,
    mapping_hidden,
    receive_source,
    save_mapping,
)
from dashboard.datasets.mapping import MappingForm
from dashboard.layout import dataset_options
from dashboard.navigation import view_from_url
from ml.config import BUNDLED_DATASET_KEY, get_settings
from ml.data.loading import load_events
from ml.data.synthetic_logs import multi_category_store_log
from ml.serving.datasets import INFO_FILE, DatasetStore
from ml.serving.users import ADMIN, ANALYST
from tests.dashboard.test_auth import auth_app, auth_settings  # noqa: F401 (fixtures)
from tests.dashboard.test_uploads import xlsx_bytes

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


def data_url(data: bytes) -> str:
    return "data:application/octet-stream;base64," + base64.b64encode(data).decode("ascii")


@pytest.fixture(scope="module")
def shop_log() -> pd.DataFrame:
    return multi_category_store_log(4_000, seed=3)


@pytest.fixture(scope="module")
def shop_csv(shop_log) -> bytes:
    return shop_log.to_csv(index=False).encode()


@pytest.fixture(scope="module")
def odd_csv(shop_log) -> bytes:
    odd = shop_log.rename(columns=ODD_NAMES).drop(columns=["category_id"])
    odd["action"] = odd["action"].map(ODD_EVENTS)
    return odd.to_csv(index=False).encode()


@pytest.fixture
def settings(tmp_path):
    return get_settings().with_overrides(
        models_dir=tmp_path / "models",
        cache_dir=tmp_path / "cache",
        datasets_dir=tmp_path / "datasets",
        profiles_dir=tmp_path / "profiles",
        users_file=tmp_path / "users.json",
    )


@pytest.fixture
def context(settings, prepared) -> AppContext:
    datasets = DatasetStore.for_settings(settings)
    datasets.remember(BUNDLED_DATASET_KEY, prepared)
    return AppContext(settings=settings, datasets=datasets)


def broken_csv(shop_csv: bytes) -> bytes:
    """The shop log with a price that is not a number (data row 5) and a row without a product (data row 9)."""
    lines = shop_csv.decode().splitlines()
    cells = lines[5].split(",")
    cells[6] = "12,50 EUR".replace(",", ";")
    lines[5] = ",".join(cells)
    cells = lines[9].split(",")
    cells[2] = ""
    lines[9] = ",".join(cells)
    return ("\n".join(lines) + "\n").encode()


def upload(settings, data: bytes, name: str, owner: str | None = "ann", previous: dict | None = None):
    return receive_source(settings, ids.DATA_UPLOAD, data_url(data), name, None, None, None, previous, owner)


def uploads_kept(settings) -> list:
    root = I.intake_store(settings).root
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def no_progress(_: tuple) -> None:
    return None


# ---------------------------------------------------------------- the report, before anything is kept
def test_a_clean_export_is_detected_and_reported_with_the_engines_numbers(settings, shop_csv):
    store, report = upload(settings, shop_csv, "shop-oct.csv")
    engine = load_events(shop_csv, name="shop-oct.csv")
    assert store["status"] == I.READY and store["profile"] == "Multi-category store event log"
    text = str(report)
    assert f"{len(engine.events):,}" in text and f"{engine.n_sessions:,}" in text
    assert "Conversion (purchases)" in text and "ready to keep" in text
    assert action_styles(store)[0] == {} and action_styles(store)[1] == {"display": "none"}
    # the form is not filled for a detected file (that reads every value), only when asked for
    assert mapping_defaults(settings, store, ["session_id"]) is None
    assert not (I.intake_store(settings).folder(store["id"]) / I.COLUMNS_FILE).exists()
    assert mapping_defaults(settings, store, ["session_id"], asked=True)[1] == ["user_session"]
    assert DatasetStore.for_settings(settings).keys() == [BUNDLED_DATASET_KEY]  # nothing kept yet


@pytest.mark.parametrize("form", ["gzip", "parquet"])
def test_gzip_and_parquet_exports_are_detected_the_same(settings, shop_csv, shop_log, form):
    if form == "gzip":
        data, name = gzip.compress(shop_csv), "shop.csv.gz"
    else:
        buffer = io.BytesIO()
        shop_log.to_parquet(buffer, index=False)
        data, name = buffer.getvalue(), "shop.parquet"
    store, _ = upload(settings, data, name)
    assert store["status"] == I.READY and store["profile"] == "Multi-category store event log"


def test_a_file_with_invalid_rows_lists_them_and_can_be_kept_without_them(settings, context, shop_csv):
    data = broken_csv(shop_csv)
    store, report = upload(settings, data, "broken.csv")
    assert store["status"] == I.PROBLEMS and store["dropped"] == 2
    text = str(report)
    assert "not a number (e.g. '12;50 EUR')" in text and "missing product ID" in text
    checked = I.check(settings, store["id"])  # what the report's table shows: column, example rows, count
    assert [(p.column, p.rows, p.count) for p in checked.problems] == [("product_id", (9,), 1), ("price", (5,), 1)]
    keep, keep_dropping, label, refuse, _ = action_styles(store)
    assert keep == {"display": "none"} and keep_dropping == {} and refuse == {}
    assert label == "Keep without the 2 invalid rows"
    assert keep_request(ids.DATA_KEEP, store, "x") is no_update  # keeping as it is would keep bad rows
    request = keep_request(ids.DATA_KEEP_DROPPING, store, "Broken shop")
    assert request["drop"] is True and request["name"] == "Broken shop"
    result = I.run_prepare_job(settings, request["id"], request["name"], True, no_progress)
    assert result["ok"] and result["skipped"] == 2
    saved = json.loads((settings.datasets_dir / result["key"] / INFO_FILE).read_text())
    assert saved["info"]["skipped_rows"] == 2 and saved["info"]["owner"] == "ann"
    assert saved["info"]["rows"] == len(pd.read_csv(io.BytesIO(shop_csv))) - 2
    assert "dropped" in str(job_finished(context, result)[0])
    assert uploads_kept(settings) == []  # the upload is gone once kept


def test_a_refused_file_keeps_nothing_and_says_why(settings, shop_csv):
    missing = pd.read_csv(io.BytesIO(shop_csv)).drop(columns=["product_id"]).to_csv(index=False).encode()
    store, report = upload(settings, missing, "no-products.csv")
    assert store["status"] == I.REFUSED and "product_id" in str(report) and "cannot be kept" in str(report)
    assert keep_request(ids.DATA_KEEP, store, None) is no_update
    assert keep_request(ids.DATA_KEEP_DROPPING, store, None) is no_update


@pytest.mark.parametrize(
    ("data", "name", "words"),
    [
        (b"", "empty.csv", "empty"),
        (xlsx_bytes(), "book.xlsx", "Excel"),
        (b"\x1f\x8b\x08\x00broken", "cut.csv.gz", "gzip"),
    ],
)
def test_an_unreadable_upload_is_refused_and_nothing_is_stored(settings, data, name, words):
    store, report = upload(settings, data, name)
    assert store == {"id": None, "filename": name, "status": I.REFUSED}
    assert words in str(report)
    assert all(s == {"display": "none"} for s in action_styles(store)[:2])
    assert uploads_kept(settings) == []


def test_the_server_enforces_the_upload_limit(settings, shop_csv):
    small = settings.with_overrides(max_upload_bytes=10_000)
    store, report = upload(small, shop_csv, "big.csv")
    assert store["status"] == I.REFUSED and "over the" in str(report)
    assert uploads_kept(small) == []


def test_a_new_upload_replaces_the_previous_one_and_its_report(settings, shop_csv):
    first, _ = upload(settings, shop_csv, "first.csv")
    assert uploads_kept(settings) == [first["id"]]
    rejected, report = upload(settings, b"", "empty.csv", previous=first)
    assert uploads_kept(settings) == []  # the earlier upload is forgotten
    assert rejected["id"] is None and "first.csv" not in str(report)
    assert mapping_hidden(ids.DATA_INTAKE_STORE, rejected, False) is True


# ---------------------------------------------------------------- unknown headers: the mapping form
def odd_form(**changes) -> MappingForm:
    columns = {"timestamp": "ts", "event_type": "action", "product_id": "sku", "category": "cat", "price": "amount"}
    values = {
        "columns": {**columns, "user_id": "visitor", "session_id": "visit"},
        "events": {v: k for k, v in ODD_EVENTS.items()},
        "dimensions": ["maker"],
        "name": "Odd shop",
    }
    return MappingForm(**{**values, **changes})


def test_an_unknown_header_gets_the_mapping_form_then_the_report(settings, context, odd_csv, shop_csv):
    store, report = upload(settings, odd_csv, "odd.csv", owner=None)
    assert store["status"] == I.UNMAPPED and "match no known profile" in str(report)
    assert mapping_hidden(ids.DATA_INTAKE_STORE, store, True) is False
    options, values, dimensions, _, name = mapping_defaults(settings, store, ["session_id", "event_type", "revenue"])
    assert [o["value"] for o in options[0]][1:] == ["ts", "action", "sku", "cat", "maker", "amount", "visitor", "visit"]
    assert values == ["visit", "action", ""] and name == "odd"
    assert [d["value"] for d in dimensions] == [o["value"] for o in options[0]][1:]
    action_counts = pd.read_csv(io.BytesIO(odd_csv))["action"].value_counts()
    assert I.columns_of(settings, store["id"])["action"] == [[v, int(n)] for v, n in action_counts.items()]

    incomplete, _, note = apply_mapping(settings, store, odd_form(events={}))
    assert incomplete is no_update and "map at least one value" in str(note)
    mapped, report, note = apply_mapping(settings, store, odd_form())
    assert mapped["status"] == I.READY and mapped["mapped"] and note is None
    engine = load_events(shop_csv)
    assert f"{len(engine.events):,}" in str(report) and "Odd shop" in str(report)
    assert mapping_defaults(settings, mapped, ["session_id"]) is None  # the user's choices stay in the form

    result = I.run_prepare_job(settings, mapped["id"], "Odd", False, no_progress)
    info = context.datasets.info(result["key"])
    assert info.profile_title == "Odd shop" and info.events == engine.event_counts() and info.owner is None
    assert info.dimensions == ("maker",)


def test_a_saved_mapping_is_recognised_next_time(settings, odd_csv):
    store, _ = upload(settings, odd_csv, "odd.csv")
    note = save_mapping(settings, odd_form(name="Odd shop v2"))
    assert "Saved as the profile 'Odd shop v2'" in str(note)
    assert (settings.profiles_dir / "odd_shop_v2.toml").is_file()
    again, _ = upload(settings, odd_csv, "odd-november.csv", previous=store)
    assert again["status"] == I.READY and again["profile"] == "Odd shop v2" and not again["mapped"]
    # a built-in profile's name cannot be taken, and a bad form is not saved
    assert "built-in" in str(save_mapping(settings, odd_form(name="visitor_log")))
    assert "not complete" in str(save_mapping(settings, odd_form(columns={"price": "amount"})))


# ---------------------------------------------------------------- databases
def test_database_sources_need_the_setting(settings):
    store, report = receive_source(
        settings, ids.DATA_SQL_BUTTON, None, None, "sqlite:///x.db", "events", None, None, "ann"
    )
    assert store["status"] == I.REFUSED and "switched off" in str(report)


def test_a_database_table_is_read_checked_and_kept(settings, tmp_path, shop_log):
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as connection:
        shop_log.to_sql("events", connection, index=False)
    allowed = settings.with_overrides(allow_sql_sources=True)
    url = f"sqlite:///{path}"
    store, report = receive_source(allowed, ids.DATA_SQL_BUTTON, None, None, url, "events", None, None, "ann")
    assert store["status"] == I.READY, str(report)
    result = I.run_prepare_job(allowed, store["id"], "From the database", False, no_progress)
    info = DatasetStore.for_settings(allowed).info(result["key"])
    assert info.source.startswith("table events at sqlite") and info.events["purchase"] > 0
    bad, report = receive_source(allowed, ids.DATA_SQL_BUTTON, None, None, url, "missing_table", None, None, "ann")
    assert bad["status"] == I.REFUSED and "missing_table" in str(report)


# ---------------------------------------------------------------- the registry through the panel
def test_add_list_switch_and_delete_a_dataset(settings, context, shop_csv):
    store, _ = upload(settings, shop_csv, "shop.csv")
    result = I.run_prepare_job(settings, store["id"], "Shop October", False, no_progress)
    key = result["key"]
    note, activate_style, options, cleared_store, cleared_report = job_finished(context, result)
    assert activate_style == {} and cleared_store is None and cleared_report is None
    assert [o["value"] for o in options] == [BUNDLED_DATASET_KEY, key]  # the bundled one first
    assert options == dataset_options(context)

    value, _, modal_open = activate(context, result)
    assert value == key and modal_open is False
    assert view_from_url(context, f"?dataset={key}").dataset == key  # a shared link opens it
    assert context.dataset(key).has_purchases

    listed = str(dataset_list(context, key, "ann", ANALYST))
    assert "Shop October" in listed and "in use" in listed and "ann" in listed
    assert ask_delete(context, BUNDLED_DATASET_KEY, 1) == (no_update,) * 3
    pending, shown, message = ask_delete(context, key, 1)
    assert shown is True and "Shop October" in message and pending == {"key": key}
    assert ask_delete(context, key, None) == (no_update,) * 3  # a button drawn anew, not pressed

    refused, *_ = delete_dataset(context, pending, key, "bob", ANALYST)
    assert "Only ann" in str(refused) and context.datasets.exists(key)
    note, options, switch = delete_dataset(context, pending, key, "adam", ADMIN)
    assert "Deleted 'Shop October'" in str(note) and not context.datasets.exists(key)
    assert [o["value"] for o in options] == [BUNDLED_DATASET_KEY]
    assert switch == BUNDLED_DATASET_KEY  # the deleted dataset was in use: back to the bundled one
    assert not (settings.datasets_dir / key).exists() and not (settings.models_dir / key).exists()


def test_the_bundled_dataset_cannot_be_deleted(context):
    info = context.datasets.info(BUNDLED_DATASET_KEY)
    assert I.delete_refusal(info, None, ADMIN) == "The bundled dataset cannot be deleted."
    note, *_ = delete_dataset(context, {"key": BUNDLED_DATASET_KEY}, None, None, ADMIN)
    assert "cannot be deleted" in str(note) and context.datasets.exists(BUNDLED_DATASET_KEY)
    assert "Delete" not in str(dataset_list(context, BUNDLED_DATASET_KEY, None, ADMIN))


# ---------------------------------------------------------------- roles
def test_viewers_get_no_add_data_panel_and_analysts_do(auth_app):  # noqa: F811
    from tests.dashboard.test_auth import logged_in

    viewer = logged_in(auth_app, "vera").get("/_dash-layout").get_data(as_text=True)
    analyst = logged_in(auth_app, "ann").get("/_dash-layout").get_data(as_text=True)
    assert ids.DATA_SELECT in viewer and ids.DATA_SELECT in analyst  # everyone may switch
    assert ids.DATA_MODAL not in viewer and ids.DATA_ADD_BUTTON not in viewer
    assert ids.DATA_MODAL in analyst and ids.DATA_ADD_BUTTON in analyst


def test_a_viewers_forged_upload_or_delete_gets_403_and_changes_nothing(auth_app, auth_settings, shop_csv):  # noqa: F811
    from tests.dashboard.test_auth import callback_body, logged_in, post_callback

    client = logged_in(auth_app, "vera")
    upload_key = next(k for k in auth_app.callback_map if f"{ids.DATA_INTAKE_STORE}.data" in k and ids.DATA_UPLOAD in k)
    body = callback_body(
        auth_app,
        upload_key,
        {f"{ids.DATA_UPLOAD}.contents": data_url(shop_csv), f"{ids.DATA_UPLOAD}.filename": "shop.csv"},
    )
    assert post_callback(client, body).status_code == 403
    assert uploads_kept(auth_settings) == []
    delete_key = next(k for k in auth_app.callback_map if k.startswith(f"..{ids.DATA_DELETE_NOTE}.children"))
    assert post_callback(client, callback_body(auth_app, delete_key)).status_code == 403
