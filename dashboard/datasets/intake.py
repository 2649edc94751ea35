"""The server side of adding a dataset: uploads and database reads, their check, and the preparing job.

An upload (or the rows a database table or query returned, written as
Parquet) is kept in its own private folder under
``<cache_dir>/dataset-uploads/<random id>`` (``dashboard.uploads.UploadStore``),
with who added it and, once known, the profile to read it with. ``check``
detects the profile (built-ins, then the saved profiles), reads the file
through the engine and returns what the report shows; nothing becomes a
dataset until the user keeps it. ``run_prepare_job`` is the body of the
background callback: it reads the upload again (dropping the invalid rows if
asked), prepares the session table and the KPI cube through
``DatasetStore.add`` and removes the upload.

The bytes are data only: CSV is parsed as text and Parquet through pyarrow;
nothing is unpickled or executed.
"""

from __future__ import annotations

import io
import json
import logging
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from dashboard.datasets.mapping import MappingForm, profile_from_form
from dashboard.uploads import UploadGone, UploadStore, decode_upload, display_name
from ml.config import Settings
from ml.data import schema as S
from ml.data.loading import LoadedEvents, load_events
from ml.data.profile_library import detect_with_saved
from ml.data.profiles import BUILTIN_PROFILES, DataProfile, profile_from_dict, profile_to_toml
from ml.data.reading import RawTable, parse_bytes
from ml.data.sql import read_sql_source, redact_url
from ml.errors import ClickstreamError, Problem, ValidationError, is_row_problem
from ml.serving.datasets import DatasetInfo, DatasetStore
from ml.serving.users import ADMIN

log = logging.getLogger(__name__)

INTAKE_DIRNAME = "dataset-uploads"
INTAKE_FILE = "intake.json"
PROFILE_FILE = "profile.toml"
COLUMNS_FILE = "columns.json"
MAX_DISTINCT_VALUES = 40  # event values offered in the mapping form, most frequent first
PREVIEW_ROWS = 8

READY = "ready"  # no problem: can be kept as it is
PROBLEMS = "problems"  # row problems only: can be refused, or kept without those rows
REFUSED = "refused"  # problems dropping rows cannot fix (a missing column, an empty file ...)
UNMAPPED = "unmapped"  # the header matches no profile: the mapping form is needed


@dataclass(frozen=True)
class Intake:
    """What the report shows of an upload, before anything is kept."""

    upload_id: str | None
    filename: str
    status: str
    profile_title: str | None = None
    summary: Mapping[str, object] | None = None
    problems: tuple[Problem, ...] = ()
    dropped: int = 0  # rows that keeping "without invalid rows" drops
    rows: int = 0  # rows in the file
    columns: tuple[str, ...] = ()
    preview: list[dict] = field(default_factory=list)
    mapped: bool = False  # read with a profile from the mapping form

    @property
    def keepable(self) -> bool:
        return self.status in (READY, PROBLEMS)

    def to_store(self) -> dict[str, object]:
        """The small JSON the browser keeps (no data, only the upload's id and state)."""
        return {
            "id": self.upload_id,
            "filename": self.filename,
            "status": self.status,
            "dropped": self.dropped,
            "profile": self.profile_title,
            "mapped": self.mapped,
        }


def intake_store(settings: Settings) -> UploadStore:
    return UploadStore(settings.cache_dir / INTAKE_DIRNAME)


def default_name(filename: str) -> str:
    """A dataset name from a file name: ``shop-events-oct.csv.gz`` -> ``shop-events-oct``."""
    stem = display_name(filename)
    for suffix in (".gz", ".csv", ".tsv", ".txt", ".parquet"):
        stem = stem.removesuffix(suffix)
    return stem[:60] or "dataset"


def _write_json(path: Path, payload: dict) -> None:
    path.write_text(json.dumps(payload, default=str), encoding="utf-8")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


def _column_values(frame: pd.DataFrame) -> dict[str, list[list[object]]]:
    """Each column's most frequent values with counts (for the event-value mapping), as text."""
    out = {}
    for column in frame.columns:
        counts = frame[column].value_counts(dropna=True)
        merged: dict[str, int] = {}
        for value, n in counts.head(MAX_DISTINCT_VALUES * 2).items():  # "view" and " view" are one value
            text = str(value).strip()
            if text:
                merged[text] = merged.get(text, 0) + int(n)
        top = sorted(merged.items(), key=lambda item: -item[1])[:MAX_DISTINCT_VALUES]
        out[str(column)] = [[v, n] for v, n in top]
    return out


class _HeaderOnly(Exception):
    """Stops the CSV reader once it has the header."""


def _parse(settings: Settings, data: bytes, filename: str) -> RawTable:
    return parse_bytes(data, max_bytes=settings.max_upload_bytes, source=filename, text_columns=lambda names: names)


def header_columns(settings: Settings, data: bytes, filename: str) -> tuple[str, ...]:
    """The column names only (a CSV's header line is read, not its rows), for detecting the profile."""
    names: list[str] = []

    def grab(header: list[str]) -> list[str]:
        names.extend(header)
        raise _HeaderOnly

    try:
        raw = parse_bytes(data, max_bytes=settings.max_upload_bytes, source=filename, text_columns=grab)
    except _HeaderOnly:
        return tuple(names)
    return tuple(str(c) for c in raw.frame.columns)  # Parquet: read whole, it is quick


def receive_file(settings: Settings, contents: str | None, filename: str | None, owner: str | None) -> Intake:
    """Decode, keep and check an upload; ``ValidationError`` (nothing kept) when it cannot even be read."""
    name = display_name(filename)
    data = decode_upload(contents, name, settings.max_upload_bytes)  # the server-side size limit
    return _receive(settings, data, name, owner, source=name)


def receive_sql(settings: Settings, url: str | None, table: str | None, query: str | None, owner: str | None) -> Intake:
    """Read a database table or query (when the config allows it), keep the rows and check them."""
    if not settings.allow_sql_sources:
        raise ValidationError([Problem("database sources are switched off on this server")], source="database")
    url, table, query = (url or "").strip(), (table or "").strip() or None, (query or "").strip() or None
    if not url:
        raise ValidationError([Problem("give the database's SQLAlchemy URL", column="URL")], source="database")
    raw = read_sql_source(url, table=table, query=query, max_bytes=settings.max_upload_bytes)
    what = f"table {table}" if table else "query"
    source = f"{what} at {redact_url(url)}"
    buffer = io.BytesIO()
    try:
        raw.frame.to_parquet(buffer, index=False)
    except (ValueError, TypeError) as exc:
        raise ValidationError([Problem(f"the rows cannot be kept: {exc}")], source=source) from exc
    return _receive(settings, buffer.getvalue(), f"{table or 'query'}.parquet", owner, source=source)


def _receive(settings: Settings, data: bytes, filename: str, owner: str | None, source: str) -> Intake:
    store = intake_store(settings)
    upload_id = store.save(data, filename)
    try:
        _write_json(store.folder(upload_id) / INTAKE_FILE, {"owner": owner, "filename": filename, "source": source})
        return check(settings, upload_id)
    except BaseException:
        store.remove(upload_id)
        raise


def upload_meta(settings: Settings, upload_id: object) -> dict:
    """Who added an upload, its file name and source (``UploadGone`` when it has expired)."""
    return _read_json(intake_store(settings).folder(upload_id) / INTAKE_FILE)


def columns_of(settings: Settings, upload_id: object) -> dict[str, list[list[object]]]:
    """The upload's columns with their most frequent values (read once, when the mapping form first needs them)."""
    return _column_summary(settings, upload_id)["values"]


def _column_summary(settings: Settings, upload_id: object) -> dict:
    store = intake_store(settings)
    path = store.folder(upload_id) / COLUMNS_FILE
    summary = _read_json(path)
    if not summary:
        raw = _parse(settings, store.input_bytes(upload_id), store.filename(upload_id))
        summary = {"rows": len(raw.frame), "values": _column_values(raw.frame)}
        _write_json(path, summary)
    return summary


def _remember_profile(folder: Path, profile: DataProfile) -> None:
    if profile.name in BUILTIN_PROFILES and profile.builtin:
        (folder / PROFILE_FILE).unlink(missing_ok=True)
        meta = _read_json(folder / INTAKE_FILE)
        _write_json(folder / INTAKE_FILE, {**meta, "builtin": profile.name})
        return
    (folder / PROFILE_FILE).write_text(profile_to_toml(profile), encoding="utf-8")


def chosen_profile(folder: Path) -> DataProfile | None:
    """The profile an upload was checked with (a built-in, or a mapping's TOML), if any."""
    path = folder / PROFILE_FILE
    if path.is_file():
        return profile_from_dict(tomllib.loads(path.read_text(encoding="utf-8")), source="mapping")
    name = _read_json(folder / INTAKE_FILE).get("builtin")
    return BUILTIN_PROFILES.get(name) if name else None


def _preview(loaded: LoadedEvents) -> list[dict]:
    head = loaded.events.head(PREVIEW_ROWS).copy()
    head[S.EVENT_TYPE] = head[S.EVENT_TYPE].map(S.EVENT_NAMES)
    for column, book in loaded.codebooks.items():
        if column in head:  # coded text (category, brand ...) shown as its labels
            head[column] = [book.get(int(code), code) for code in head[column]]
    for column in head.columns:
        if pd.api.types.is_datetime64_any_dtype(head[column]):
            head[column] = head[column].astype(str)
    return head.astype(object).where(head.notna(), None).to_dict("records")


def check(settings: Settings, upload_id: str, profile: DataProfile | None = None) -> Intake:
    """Detect (or take) the profile and read the upload through the engine; nothing is kept as a dataset.

    A file whose problems all name rows is read once more without them, so the
    report only offers "keep without the invalid rows" when that really works.
    """
    store = intake_store(settings)
    folder = store.folder(upload_id)
    filename = store.filename(upload_id)
    data = store.input_bytes(upload_id)
    columns = header_columns(settings, data, filename)
    mapped = profile is not None
    profile = profile or detect_with_saved(columns, settings.profiles_dir)
    base = {"upload_id": upload_id, "filename": filename, "columns": columns, "mapped": mapped}
    if profile is None:
        return Intake(status=UNMAPPED, rows=_column_summary(settings, upload_id)["rows"], **base)
    _remember_profile(folder, profile)
    options = {"name": filename, "max_bytes": settings.max_upload_bytes, "profile": profile}
    try:
        loaded = load_events(data, **options)
    except ValidationError as exc:
        if not exc.problems or not all(is_row_problem(p) for p in exc.problems):
            return Intake(status=REFUSED, profile_title=profile.title, problems=exc.problems, **base)
        try:
            kept = load_events(data, skip_invalid_rows=True, **options)
        except ValidationError as after:  # every row bad, or a file-level problem once they are gone
            return Intake(status=REFUSED, profile_title=profile.title, problems=after.problems, **base)
        return Intake(
            status=PROBLEMS,
            profile_title=profile.title,
            problems=exc.problems,
            dropped=kept.skipped_rows,
            rows=len(kept.events) + kept.skipped_rows,
            **base,
        )
    return Intake(
        status=READY,
        profile_title=profile.title,
        summary=loaded.summary(),
        preview=_preview(loaded),
        rows=len(loaded.events),
        **base,
    )


def check_mapping(settings: Settings, upload_id: str, form: MappingForm) -> Intake:
    """Read the upload with the profile the mapping form describes (``ValidationError`` for a bad form)."""
    return check(settings, upload_id, profile_from_form(form))


def discard(settings: Settings, upload_id: object) -> None:
    """Forget an upload (refused, replaced, or kept)."""
    intake_store(settings).remove(upload_id)


# ---------------------------------------------------------------- the preparing job (runs in the worker process)
def run_prepare_job(
    settings: Settings,
    upload_id: object,
    name: str | None,
    drop_invalid: bool,
    set_progress: Callable[[tuple], None],
) -> dict[str, object]:
    """Read a checked upload, prepare it as a new dataset and remove the upload; a small answer for the browser."""
    answer: dict[str, object] = {"id": upload_id, "ok": False}
    store = intake_store(settings)
    try:
        set_progress((5, "reading the file"))
        folder = store.folder(upload_id)
        meta = _read_json(folder / INTAKE_FILE)
        profile = chosen_profile(folder)
        if profile is None:
            raise ClickstreamError("map the columns first: the file's header matches no profile")
        data = store.input_bytes(upload_id)
        filename = store.filename(upload_id)
        loaded = load_events(
            data,
            name=meta.get("source") or filename,
            max_bytes=settings.max_upload_bytes,
            profile=profile,
            skip_invalid_rows=drop_invalid,
        )
        title = (name or "").strip()[:80] or default_name(filename)
        datasets = DatasetStore.for_settings(settings)
        info = datasets.add(
            loaded,
            title,
            owner=meta.get("owner"),
            key=datasets.new_key(title),
            progress=lambda pct, text: set_progress((pct, text)),
        )
        store.remove(upload_id)
    except ValidationError as exc:
        return {**answer, "message": exc.report()}
    except (ClickstreamError, UploadGone) as exc:
        return {**answer, "message": str(exc)}
    except Exception as exc:  # the job must always answer; the traceback goes to the log
        log.exception("preparing a dataset failed")
        return {**answer, "message": f"Preparing failed ({type(exc).__name__}: {exc}); nothing was kept."}
    set_progress((100, "done"))
    return {**answer, "ok": True, "key": info.key, "name": info.name, "skipped": info.skipped_rows, "rows": info.rows}


# ---------------------------------------------------------------- deleting
def delete_refusal(info: DatasetInfo, user: str | None, role: str | None) -> str | None:
    """Why this user may not delete a dataset, or ``None`` when they may.

    The bundled dataset stays; an admin may delete any added dataset, an analyst
    those they added (and those added without a login, which have no owner).
    """
    if info.bundled:
        return "The bundled dataset cannot be deleted."
    if role == ADMIN or info.owner is None or info.owner == user:
        return None
    return f"Only {info.owner}, who added '{info.name}', or an admin may delete it."
