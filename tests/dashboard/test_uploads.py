"""Uploads on the server: decoding each accepted form and each broken one, temp folders, the scoring job.

Every test builds real bytes (the published UCI head, its lowercase and Parquet
re-encodings, gzip, an .xlsx zip, Latin-1 text) and sends them as the browser
does: a base64 data URL.
"""

from __future__ import annotations

import base64
import gzip
import io
import os
import stat
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from dashboard.uploads import (
    ID_PATTERN,
    INPUT_FILE,
    RESULTS_FILE,
    UploadGone,
    UploadStore,
    check_upload,
    decode_upload,
    display_name,
    download_name,
    fix_hints,
    results_file,
    run_scoring_job,
    status_counts,
)
from ml.cli import main as cli_main
from ml.data import schema as S
from ml.data.loading import load_events
from ml.errors import ValidationError
from ml.features.window import STATUS_CONVERTED_IN_WINDOW, STATUS_SCORED, STATUS_TOO_SHORT
from ml.serving.registry import Registry
from ml.serving.scoring import SCORE_COLUMNS
from tests.ml.factories import lowercase_form

MB = 1024 * 1024


def data_url(data: bytes, mime: str = "text/csv") -> str:
    """What ``FileReader.readAsDataURL`` gives a ``dcc.Upload``."""
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def xlsx_bytes() -> bytes:
    """A minimal Excel workbook as Excel writes its zip parts (one sheet, one cell)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as book:
        book.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns="ct"/>')
        book.writestr("_rels/.rels", '<?xml version="1.0"?><Relationships/>')
        book.writestr("xl/workbook.xml", '<?xml version="1.0"?><workbook><sheets><sheet name="clicks"/></sheets>')
        book.writestr("xl/worksheets/sheet1.xml", '<?xml version="1.0"?><worksheet><c r="A1"><v>1</v></c>')
    return buffer.getvalue()


@pytest.fixture
def settings(dash_settings, tmp_path: Path):
    return dash_settings.with_overrides(cache_dir=tmp_path / "cache", models_dir=tmp_path / "no-models")


@pytest.fixture
def store(settings) -> UploadStore:
    return UploadStore.for_settings(settings)


@pytest.fixture(scope="module")
def uci_clicks(uci_head_bytes: bytes) -> pd.DataFrame:
    return load_events(uci_head_bytes, name="uci").clicks


@pytest.fixture(scope="module")
def forms(uci_head_bytes: bytes, uci_clicks: pd.DataFrame) -> dict[str, bytes]:
    """The same 400 clicks in every accepted form."""
    lower = lowercase_form(uci_clicks)
    uci_frame = pd.read_csv(io.BytesIO(uci_head_bytes), sep=";", dtype={"page 2 (clothing model)": str})
    parquet_lower, parquet_uci = io.BytesIO(), io.BytesIO()
    lower.to_parquet(parquet_lower, index=False)
    uci_frame.to_parquet(parquet_uci, index=False)
    return {
        "uci": uci_head_bytes,
        "lowercase": lower.to_csv(index=False).encode("utf-8"),
        "parquet-lowercase": parquet_lower.getvalue(),
        "parquet-uci": parquet_uci.getvalue(),
        "gzip-uci": gzip.compress(uci_head_bytes),
    }


# ---------------------------------------------------------------- decoding accepted forms
def test_the_uci_fixture_is_semicolon_separated_with_crlf(uci_head_bytes: bytes) -> None:
    assert b"\r\n" in uci_head_bytes and uci_head_bytes.startswith(b"year;month;day;order;country;session ID;")


@pytest.mark.parametrize(
    ("form", "described"),
    [
        ("uci", "semicolon-separated CSV with UCI headers"),
        ("lowercase", "comma-separated CSV with lowercase headers"),
        ("parquet-lowercase", "Parquet with lowercase column names"),
        ("parquet-uci", "Parquet with UCI column names"),
        ("gzip-uci", "gzip-compressed semicolon-separated CSV with UCI headers"),
    ],
)
def test_every_accepted_form_decodes_stores_and_validates(
    settings, forms, uci_clicks: pd.DataFrame, form: str, described: str
) -> None:
    contents = data_url(forms[form], "application/octet-stream")
    assert decode_upload(contents, f"{form}.bin", settings.max_upload_bytes) == forms[form]
    checked = check_upload(settings, Registry(settings.models_dir), contents, f"clicks-{form}")
    summary = checked.loaded.summary()
    assert summary["input_form"] == described
    assert (summary["rows"], summary["sessions"]) == (len(uci_clicks), uci_clicks["session_id"].nunique())
    assert summary["first_date"] == "2008-04-01"
    stored = UploadStore.for_settings(settings).folder(checked.upload_id) / INPUT_FILE
    assert stored.read_bytes() == forms[form]
    assert checked.model is None and checked.window == settings.window  # no model: the configured window
    assert sum(checked.counts.values()) == summary["sessions"]


def test_data_url_with_charset_parameter_is_accepted(forms) -> None:
    contents = "data:text/csv;charset=utf-8;base64," + base64.b64encode(forms["lowercase"]).decode()
    assert decode_upload(contents, "x.csv", MB) == forms["lowercase"]


# ---------------------------------------------------------------- broken uploads
def problem_text(error: pytest.ExceptionInfo[ValidationError]) -> str:
    return " | ".join(p.message for p in error.value.problems)


@pytest.mark.parametrize(
    ("contents", "expected"),
    [
        (None, "the file is empty"),
        ("", "the file is empty"),
        ("data:", "the file is empty"),  # what Chromium sends for a 0-byte file
        ("data:text/csv;base64,", "the file is empty"),
        ("year,month\n2008,4\n", "not a base64 data URL"),
        ("data:text/csv,year%2Cmonth", "not a base64 data URL"),
        ("data:text/csv;base64,@@@notbase64@@@", "not valid base64"),
    ],
)
def test_payloads_that_are_not_files_are_refused_with_a_message(contents, expected: str) -> None:
    with pytest.raises(ValidationError) as error:
        decode_upload(contents, "x.csv", MB)
    assert expected in problem_text(error)


def test_oversized_upload_is_refused_with_both_sizes() -> None:
    data = b"x" * (MB + 10)
    with pytest.raises(ValidationError) as error:
        decode_upload(data_url(data), "big.csv", MB)
    assert problem_text(error) == "the file is 1,048,586 bytes, over the limit of 1,048,576 bytes (1 MB)"
    assert decode_upload(data_url(data[:MB]), "ok.csv", MB) == data[:MB]  # exactly the limit is fine


def test_a_payload_far_over_the_limit_is_refused_from_its_length() -> None:
    with pytest.raises(ValidationError) as error:
        decode_upload("data:text/csv;base64," + "QUJD" * MB, "huge.csv", MB)  # 3 MB of "ABC"
    assert problem_text(error) == "the file is 3 MB, over the upload limit of 1 MB"


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda f: b"", "the file is empty"),
        (lambda f: f["lowercase"].split(b"\n")[0] + b"\n", "the file has a header but no data rows"),
        (lambda f: f["lowercase"].replace(b"session_id", b"visit", 1), "missing column (expected a header named"),
        (lambda f: xlsx_bytes(), "this is an Excel workbook (.xlsx)"),
        (lambda f: f["lowercase"].replace(b"A13", "Ä13".encode("latin-1")), "the file is not UTF-8 text"),
        (lambda f: gzip.compress(f["uci"])[:200], "the gzip file is damaged or truncated"),
    ],
    ids=["empty", "header-only", "wrong-column", "xlsx", "latin-1", "truncated-gzip"],
)
def test_broken_files_give_the_engine_message_and_keep_nothing(settings, store, forms, make, expected) -> None:
    data = make(forms)
    with pytest.raises(ValidationError) as error:
        check_upload(settings, Registry(settings.models_dir), data_url(data), "broken.csv")
    assert expected in problem_text(error)
    assert not store.root.exists() or not any(store.root.iterdir())  # the broken upload was removed


def test_oversized_upload_vs_the_configured_limit(settings, forms) -> None:
    small_limit = settings.with_overrides(max_upload_bytes=len(forms["uci"]) - 1)
    with pytest.raises(ValidationError) as error:
        check_upload(small_limit, Registry(settings.models_dir), data_url(forms["uci"]), "uci.csv")
    assert (
        problem_text(error)
        == f"the file is {len(forms['uci']):,} bytes, over the limit of {len(forms['uci']) - 1:,} bytes (14.5 KB)"
    )
    assert not (settings.cache_dir / "uploads").exists()


def test_wrong_column_report_names_the_column_and_a_fix(settings, forms) -> None:
    data = forms["lowercase"].replace(b"colour", b"color", 1)
    with pytest.raises(ValidationError) as error:
        check_upload(settings, Registry(settings.models_dir), data_url(data), "color.csv")
    missing = [p for p in error.value.problems if "missing column" in p.message]
    assert [p.column for p in missing] == ["colour"]
    assert fix_hints(error.value.problems) == [
        "Add the missing columns, or rename yours to one of the header names shown."
    ]


def test_fix_hints_cover_each_kind_of_problem_once(uci_clicks: pd.DataFrame) -> None:
    lower = lowercase_form(uci_clicks).astype({"price": object})
    lower.loc[2, "price"], lower.loc[3, "price"] = "abc", -1
    with pytest.raises(ValidationError) as error:
        load_events(lower.to_csv(index=False).encode(), name="rows.csv")
    hints = fix_hints(error.value.problems)
    assert len(error.value.problems) == 2 and len(hints) == 1 and "rows listed" in hints[0]
    for data, words in ((b"", "header line"), (xlsx_bytes(), "Save As"), (b"\xe9\n", "UTF-8 CSV")):
        with pytest.raises(ValidationError) as error:
            load_events(data, name="x")
        assert words in " ".join(fix_hints(error.value.problems))
    with pytest.raises(ValidationError) as error:
        decode_upload(data_url(b"x" * 2048), "big.csv", 1024)
    assert "python -m ml score" in fix_hints(error.value.problems)[0]


# ---------------------------------------------------------------- temp folders
def test_ids_are_random_url_safe_and_folders_private(store) -> None:
    first, second = store.save(b"a", "a.csv"), store.save(b"b", "b.csv")
    assert first != second and ID_PATTERN.fullmatch(first) and len(first) >= 32
    folder = store.folder(first)
    assert folder.parent == store.root
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / INPUT_FILE).stat().st_mode) == 0o600
    assert store.input_bytes(second) == b"b" and store.filename(second) == "b.csv"


@pytest.mark.parametrize(
    "crafted", ["../victim", "..", "../../etc/passwd", "/tmp", "a/b" * 10, "x" * 10, "%2e%2e%2fvictim", None, 42]
)
def test_crafted_ids_cannot_reach_outside_the_uploads_folder(store, crafted) -> None:
    victim = store.root.parent / "victim"
    victim.mkdir(parents=True)
    (victim / INPUT_FILE).write_bytes(b"secret")
    with pytest.raises(UploadGone):
        store.folder(crafted)
    with pytest.raises(UploadGone):
        store.input_bytes(crafted)
    store.remove(crafted)
    assert (victim / INPUT_FILE).read_bytes() == b"secret"


def test_a_well_formed_but_unknown_id_has_expired(store) -> None:
    with pytest.raises(UploadGone, match="expired"):
        store.folder("A" * 32)


def test_folders_older_than_an_hour_go_when_a_new_upload_arrives(store) -> None:
    old, fresh = store.save(b"old", "old.csv"), store.save(b"new", "new.csv")
    two_hours_ago = time.time() - 7200
    os.utime(store.root / old, (two_hours_ago, two_hours_ago))
    other = store.root / "not-an-upload"  # something else in the folder is left alone
    other.mkdir()
    os.utime(other, (two_hours_ago, two_hours_ago))
    newest = store.save(b"newest", "newest.csv")
    assert not (store.root / old).exists()
    assert {p.name for p in store.root.iterdir()} == {fresh, newest, "not-an-upload"}
    assert store.sweep(now=time.time() + 7200) == 2


def test_names_shown_and_downloaded_are_safe() -> None:
    assert display_name("C:\\Users\\me\\clicks.csv") == "clicks.csv"
    assert display_name("../../etc/passwd") == "passwd"
    assert display_name(None) == "upload"
    assert download_name("my clicks (May).csv.gz") == "scores-my-clicks-May.csv"
    assert download_name("=cmd|'calc'!A0.csv") == "scores-cmd-calc-A0.csv"


# ---------------------------------------------------------------- the scoring job
def risky_clicks(small_clicks: pd.DataFrame) -> tuple[bytes, list[str]]:
    """A lowercase CSV of 120 sessions whose IDs and product codes start with = + - @."""
    clicks = small_clicks[small_clicks["session_id"] <= 120].copy()
    prefixes = ["=", "+", "-", "@", ""]
    clicks["session_id"] = [f"{prefixes[i % 5]}S{i}" for i in clicks["session_id"]]
    clicks[S.PRODUCT] = "=" + clicks[S.PRODUCT].astype(str)
    lower = lowercase_form(clicks)
    return lower.to_csv(index=False).encode("utf-8"), sorted(lower["session_id"].unique())


def test_the_scoring_job_writes_the_cli_csv_with_formulas_neutralised(
    settings, trained_registry, small_clicks, tmp_path
) -> None:
    settings = settings.with_overrides(models_dir=trained_registry.root.parent)
    data, session_ids = risky_clicks(small_clicks)
    checked = check_upload(settings, trained_registry, data_url(data), "risky.csv")
    progress: list[tuple] = []
    answer = run_scoring_job(settings, checked.upload_id, progress.append)

    assert answer["ok"], answer
    assert [p[0] for p in progress] == [10, 40, 80, 100]
    path = results_file(settings, answer)
    assert path.name == RESULTS_FILE
    assert not (path.parent / INPUT_FILE).exists()  # the input is removed right after scoring
    scores = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert tuple(scores.columns) == SCORE_COLUMNS
    assert len(scores) == len(session_ids) == answer["summary"]["sessions"]
    risky = [s for s in scores["session_id"] if s[0] in "=+-@"]
    assert risky == [], "a cell starts with a formula character"
    assert sorted(s.removeprefix("'") for s in scores["session_id"]) == session_ids
    assert scores["session_id"].str.startswith("'").sum() == sum(s[0] in "=+-@" for s in session_ids)

    # The same bytes as `python -m ml score` on the same file.
    source, cli_out = tmp_path / "risky.csv", tmp_path / "cli.csv"
    source.write_bytes(data)
    assert cli_main(["--models-dir", str(trained_registry.root.parent), "score", str(source), "-o", str(cli_out)]) == 0
    assert cli_out.read_bytes() == path.read_bytes()

    # Statuses are counted, not dropped: the report's counts are the download's.
    counted = scores["status"].value_counts().to_dict()
    assert counted == {k: v for k, v in checked.counts.items() if v}
    assert counted == answer["summary"]["status_counts"]
    assert set(counted) <= {STATUS_SCORED, STATUS_TOO_SHORT, STATUS_CONVERTED_IN_WINDOW}
    assert len(answer["preview"]) == min(50, len(scores))
    assert sum(answer["histogram"]["counts"]) == counted[STATUS_SCORED]


def test_status_counts_match_the_scores(trained_registry, small_clicks) -> None:
    from ml.serving.scoring import load_scoring_models, score_clicks

    models = load_scoring_models(trained_registry)
    scores = score_clicks(small_clicks, models)
    counts = status_counts(small_clicks, models.window, models.classifier.metadata["label"]["name"])
    assert counts == {k: int((scores["status"] == k).sum()) for k in counts}
    assert counts[STATUS_TOO_SHORT] > 0 and counts[STATUS_CONVERTED_IN_WINDOW] > 0


def test_the_job_answers_with_a_message_when_it_cannot_score(settings, trained_registry, forms) -> None:
    no_models = check_upload(settings, Registry(settings.models_dir), data_url(forms["uci"]), "uci.csv")
    answer = run_scoring_job(settings, no_models.upload_id, lambda _: None)
    assert not answer["ok"] and "python -m ml train" in answer["message"]
    assert (UploadStore.for_settings(settings).folder(no_models.upload_id) / INPUT_FILE).exists()

    with_models = settings.with_overrides(models_dir=trained_registry.root.parent)
    assert run_scoring_job(with_models, no_models.upload_id, lambda _: None)["ok"]
    again = run_scoring_job(with_models, no_models.upload_id, lambda _: None)
    assert not again["ok"] and "already scored" in again["message"]
    gone = run_scoring_job(with_models, "../escape", lambda _: None)
    assert not gone["ok"] and "not valid" in gone["message"]


def test_results_expire_with_their_folder(settings, trained_registry, forms) -> None:
    settings = settings.with_overrides(models_dir=trained_registry.root.parent)
    checked = check_upload(settings, trained_registry, data_url(forms["uci"]), "uci.csv")
    answer = run_scoring_job(settings, checked.upload_id, lambda _: None)
    assert results_file(settings, answer).exists()
    UploadStore.for_settings(settings).sweep(now=time.time() + 7200)
    with pytest.raises(UploadGone, match="expired"):
        results_file(settings, answer)
    with pytest.raises(UploadGone):
        results_file(settings, {"ok": False, "id": checked.upload_id})
