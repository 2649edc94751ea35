"""The server side of batch scoring: uploaded click files, their temp folders, and the scoring job.

The browser sends an upload as a base64 data URL. ``decode_upload`` checks its
form and size (again: the browser enforces the limit too) and returns the raw
bytes. ``UploadStore`` keeps each upload in its own folder under
``<cache_dir>/uploads/<random id>``; the browser holds only the id, in a
memory store of its own tab, so another tab or analyst never sees it.
``check_upload`` validates a file and counts its sessions by scoring status;
``run_scoring_job`` (the body of the background callback) scores a stored
upload, writes the results CSV beside it and deletes the input. Folders go
when they have not been touched for an hour (swept on every save), and the
folders of one user may hold at most ``settings.upload_quota_bytes`` together.
The parse itself runs in a worker process (``dashboard.parse_pool``).

The bytes are data only: nothing here (or in ``ml.loading``, which parses
them: CSV as text, Parquet through pyarrow) unpickles, imports or executes
anything from an upload.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dashboard.auth.session import signed_in_user
from dashboard.parse_pool import parse_upload
from ml.config import BUNDLED_DATASET_KEY, ENV_UPLOAD_QUOTA_MB, Settings
from ml.data.clicks import index_clicks
from ml.data.export import neutralise_formulas, to_csv_text, write_csv_atomic
from ml.data.loading import LoadedEvents, load_events
from ml.data.reading import format_size, read_source_bytes
from ml.errors import ClickstreamError, NoModelError, Problem, ValidationError
from ml.features.labels import definition_for_scoring, session_targets
from ml.features.window import STATUS_SCORED, STATUSES, window_status
from ml.serving.registry import ModelStore, Registry
from ml.serving.scoring import (
    RULE_CAPACITY,
    best_regressor,
    expected_revenue_range,
    load_scoring_models,
    pin_model,
    score_clicks,
    score_summary,
    scoring_choice,
    target_list,
)
from ml.tasks import REGRESSION

log = logging.getLogger(__name__)

UPLOADS_DIRNAME = "uploads"
INPUT_FILE = "input.bin"
META_FILE = "upload.json"
RESULTS_FILE = "scores.csv"
SCORES_TABLE = "scores.parquet"
MAX_AGE_SECONDS = 3600.0
ID_BYTES = 24  # 192 random bits: an id cannot be guessed
ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,64}")
ANYONE = object()  # ``UploadStore.remove`` without an owner check (the clean-up, the upload's own rollback)
SCORING_CANCELLED = "Scoring cancelled: nothing was written. Press Score to start again."
DATA_URL = re.compile(r"data:[^,;]*(;[^,;]*)*;base64,", re.ASCII)
EMPTY_DATA_URL = re.compile(r"data:[^,]*,?", re.ASCII)
EMPTY_MESSAGE = "the file is empty: no header and no rows"
FILENAME_MAX = 120
PREVIEW_ROWS = 50
HISTOGRAM_BINS = 30
# (words in an engine message, what to do about it); a problem gets the first hint that matches.
FIX_HINTS = (
    ("missing column", "Add the missing columns, or rename yours to one of the header names shown."),
    ("appears twice", "Keep one column of each name and delete the duplicate."),
    ("UTF-8", "Export the file as UTF-8 CSV (in Excel: Save As, 'CSV UTF-8')."),
    ("Excel", "In Excel use Save As, 'CSV UTF-8 (comma delimited)', and upload that CSV."),
    ("zip archive", "Unzip it and upload the CSV inside (gzip .csv.gz files are accepted as they are)."),
    ("quota", "Wait for your older uploads to expire (an hour after their last use), then upload again."),
    ("busy", "Wait a minute and upload the file again."),
    ("over the", "Split the file into smaller parts, or score it on the server: python -m ml score INPUT -o OUTPUT."),
    ("empty", "Export the clicks again, with the header line and the data rows."),
    ("gzip", "Compress the CSV again with gzip, or upload it uncompressed."),
    ("Parquet", "Write the Parquet file again (pandas or pyarrow), or upload it as CSV."),
    ("base64", "Upload the file with the upload box on this page."),
    ("binary", "Upload the CSV text or Parquet file itself."),
)
ROW_HINT = "Correct or remove the rows listed (row 1 is the first data row after the header), then upload again."


class UploadGone(ClickstreamError):
    """An upload id is malformed, unknown, or its folder has expired."""


def upload_problem(message: str, filename: str | None) -> ValidationError:
    """A one-problem ``ValidationError``: upload problems are shown like the engine's."""
    return ValidationError([Problem(message)], source=filename)


def decode_upload(contents: str | None, filename: str | None, max_bytes: int) -> bytes:
    """The raw bytes of a ``dcc.Upload`` payload, or ``ValidationError`` saying what is wrong.

    A payload far over the limit is refused from its length alone, without
    decoding another copy of it; otherwise the engine's own size check applies.
    """
    if not contents:
        raise upload_problem(EMPTY_MESSAGE, filename)
    head = DATA_URL.match(contents[:512])
    if head is None and EMPTY_DATA_URL.fullmatch(contents[:512]):
        raise upload_problem(EMPTY_MESSAGE, filename)  # what a browser sends for a 0-byte file
    if head is None:
        raise upload_problem(
            "the upload is not a base64 data URL as the upload box sends it; upload the file with the box",
            filename,
        )
    payload = contents[head.end() :]
    if not payload:
        raise upload_problem(EMPTY_MESSAGE, filename)
    size = len(payload) * 3 // 4
    if size > 2 * max_bytes:
        raise upload_problem(
            f"the file is {format_size(size)}, over the upload limit of {format_size(max_bytes)}", filename
        )
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise upload_problem(f"the upload is not valid base64 data ({exc})", filename) from exc
    return read_source_bytes(data, max_bytes=max_bytes, name=filename)  # the server-side size limit


def display_name(filename: str | None) -> str:
    """The file's base name, without any folder part a browser may send, for messages."""
    name = re.split(r"[\\/]", filename or "")[-1].strip()
    return name[:FILENAME_MAX] or "upload"


def download_name(filename: str | None) -> str:
    """``scores-<stem>.csv`` with only safe characters, for the results download."""
    stem = display_name(filename)
    for suffix in (".gz", ".csv", ".txt", ".parquet"):
        stem = stem.removesuffix(suffix)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-.") or "upload"
    return f"scores-{safe[:60]}.csv"


class UploadStore:
    """One private folder per upload, named by a random id, removed an hour after last use.

    ``quota_bytes`` caps what one owner's folders hold together (inputs and
    results); ``None`` means no cap.
    """

    def __init__(self, root: Path | str, max_age_seconds: float = MAX_AGE_SECONDS, quota_bytes: int | None = None):
        self.root = Path(root)
        self.max_age_seconds = max_age_seconds
        self.quota_bytes = quota_bytes

    @classmethod
    def for_settings(cls, settings: Settings) -> UploadStore:
        return cls(settings.cache_dir / UPLOADS_DIRNAME, quota_bytes=settings.upload_quota_bytes)

    def save(self, data: bytes, filename: str | None, owner: str | None = None) -> str:
        """Store an upload's bytes in a new folder and return its id.

        Expired folders go first; then ``ValidationError`` if the owner's
        folders and this upload together would pass the quota.
        """
        self.sweep()
        self.root.mkdir(parents=True, exist_ok=True)
        with self._owner_lock(owner):  # check and write as one step: two uploads at once cannot both pass
            if self.quota_bytes is not None:
                used = self.usage(owner)
                if used + len(data) > self.quota_bytes:
                    raise upload_problem(
                        f"your stored uploads and results take {format_size(used)}; with this file "
                        f"({format_size(len(data))}) they would pass your upload quota of "
                        f"{format_size(self.quota_bytes)} (set by {ENV_UPLOAD_QUOTA_MB})",
                        filename,
                    )
            return self._write(data, filename, owner)

    @contextlib.contextmanager
    def _owner_lock(self, owner: str | None) -> Iterator[None]:
        """One upload at a time per owner, across every worker process (an ``flock`` beside the uploads folder)."""
        name = hashlib.sha256(str(owner).encode("utf-8")).hexdigest()[:16]
        locks = self.root.with_name(f"{self.root.name}-locks")
        locks.mkdir(parents=True, exist_ok=True)
        with open(locks / f"quota-{name}.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _write(self, data: bytes, filename: str | None, owner: str | None) -> str:
        upload_id = secrets.token_urlsafe(ID_BYTES)
        folder = self.root / upload_id
        folder.mkdir(mode=0o700)
        _write_private(folder / INPUT_FILE, data)
        meta = {"filename": display_name(filename), "bytes": len(data), "created": time.time(), "owner": owner}
        _write_private(folder / META_FILE, json.dumps(meta).encode("utf-8"))
        return upload_id

    def usage(self, owner: str | None) -> int:
        """Bytes held by the folders of one owner (``None``: uploads made without login)."""
        if not self.root.is_dir():
            return 0
        total = 0
        for folder in self.root.iterdir():
            if not ID_PATTERN.fullmatch(folder.name):
                continue
            try:
                meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
                if meta.get("owner") != owner:
                    continue
                total += sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
            except (OSError, ValueError, AttributeError):
                continue  # removed meanwhile, or not an upload folder
        return total

    def folder(self, upload_id: object) -> Path:
        """The folder of an upload; ``UploadGone`` for a malformed id or a missing folder.

        The id must match the token alphabet, so a crafted id such as ``../x``
        can never point outside ``root``.
        """
        if not isinstance(upload_id, str) or not ID_PATTERN.fullmatch(upload_id):
            raise UploadGone("this upload id is not valid; upload the file again")
        folder = self.root / upload_id
        if not folder.is_dir():
            raise UploadGone("the upload has expired (files are kept for an hour); upload the file again")
        return folder

    def owned(self, upload_id: object, owner: str | None) -> Path:
        """The folder of an upload made by ``owner``; ``UploadGone`` for any other (or no) upload.

        Upload ids are random, but a page's store value can be copied: the owner
        recorded on the server decides, so one user can never read, score or
        delete another user's upload or results.
        """
        folder = self.folder(upload_id)
        try:
            meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = None
        if not isinstance(meta, dict) or meta.get("owner") != owner:
            raise UploadGone("this upload belongs to another user; upload the file yourself")
        return folder

    def filename(self, upload_id: str) -> str:
        try:
            meta = json.loads((self.folder(upload_id) / META_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return "upload"
        return display_name(meta.get("filename"))

    def input_bytes(self, upload_id: str) -> bytes:
        path = self.folder(upload_id) / INPUT_FILE
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise UploadGone("this upload was already scored; upload the file again to score it again") from exc

    def remove_input(self, upload_id: str) -> None:
        """Delete the uploaded file but keep the folder (and any results) until it expires."""
        (self.folder(upload_id) / INPUT_FILE).unlink(missing_ok=True)

    def results_path(self, upload_id: str) -> Path:
        return self.folder(upload_id) / RESULTS_FILE

    def remove(self, upload_id: object, owner: object = ANYONE) -> None:
        """Delete an upload's folder, if it exists, the id is well formed and (given ``owner``) it is theirs."""
        try:
            folder = self.folder(upload_id) if owner is ANYONE else self.owned(upload_id, owner)
        except UploadGone:
            return
        shutil.rmtree(folder, ignore_errors=True)

    def sweep(self, now: float | None = None) -> int:
        """Remove folders not touched for ``max_age_seconds``; returns how many went."""
        if not self.root.is_dir():
            return 0
        now = time.time() if now is None else now
        removed = 0
        for folder in self.root.iterdir():
            try:
                age = now - folder.stat().st_mtime
            except FileNotFoundError:
                continue  # removed meanwhile by another worker
            if folder.is_dir() and ID_PATTERN.fullmatch(folder.name) and age > self.max_age_seconds:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        if removed:
            log.info("removed %d expired upload folder(s) from %s", removed, self.root)
        return removed


def _write_private(path: Path, data: bytes) -> None:
    """Write a file readable by this user only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


# ---------------------------------------------------------------- text the engine would misread
GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
BOMS = (  # longest first: the UTF-32 LE mark starts with the UTF-16 LE one
    (b"\xff\xfe\x00\x00", "UTF-32 (little-endian)"),
    (b"\x00\x00\xfe\xff", "UTF-32 (big-endian)"),
    (b"\xff\xfe", "UTF-16 (little-endian)"),
    (b"\xfe\xff", "UTF-16 (big-endian)"),
)
CONVERT_HINT = (
    "save it again as UTF-8 (in Excel: Save As, 'CSV UTF-8 (comma delimited)'; in a terminal: "
    "iconv -f {code} -t UTF-8 file.csv > file-utf8.csv) and upload that"
)
TEXT_DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {",": "commas", ";": "semicolons", "\t": "tabs", "|": "vertical bars"}


def _text_head(data: bytes, size: int = 65536) -> bytes:
    """The first bytes of the text (inside a gzip file, the first decompressed bytes)."""
    if data[:2] != GZIP_MAGIC:
        return data[:size]
    try:
        return zlib.decompressobj(wbits=31).decompress(data[: size * 4], size)
    except zlib.error:
        return b""  # the engine names a damaged gzip file


def text_encoding_problem(data: bytes) -> str | None:
    """A message for text in an encoding other than UTF-8 (UTF-16 or -32, or a one-byte code page), or ``None``."""
    if data[:4] == PARQUET_MAGIC:
        return None
    head = _text_head(data)
    encoding = next((name for bom, name in BOMS if head.startswith(bom)), None)
    if encoding is None and len(head) >= 64:
        even, odd = head[0:512:2], head[1:512:2]
        if odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.1 * len(even):
            encoding = "UTF-16 (little-endian, without a byte-order mark)"
        elif even.count(0) > 0.4 * len(even) and odd.count(0) < 0.1 * len(odd):
            encoding = "UTF-16 (big-endian, without a byte-order mark)"
    if encoding is not None:
        code = encoding.split(" ")[0]
        if "without" in encoding:
            code += "LE" if "little" in encoding else "BE"
        return f"the file is {encoding} text, not UTF-8: " + CONVERT_HINT.format(code=code)
    if b"\x00" in head[:8192]:
        return None  # binary: the engine says so
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut by the 64 KB cut
            line = head.count(b"\n", 0, exc.start) + 1
            return (
                f"the file is not UTF-8 text (byte 0x{head[exc.start]:02x} on line {line}); it is probably in a "
                "Windows or Latin-1 code page (Windows-1252 or ISO-8859-1): " + CONVERT_HINT.format(code="WINDOWS-1252")
            )
    return None


def mixed_delimiter_problem(data: bytes) -> str | None:
    """One message when the header and the rows are split by different delimiters (a mixed-up export)."""
    if data[:4] == PARQUET_MAGIC:
        return None
    text = _text_head(data).decode("utf-8", errors="ignore").lstrip("\ufeff")
    lines = [line for line in text.splitlines()[:51] if line.strip()]
    if len(lines) < 2:
        return None
    header, rows = lines[0], lines[1:-1] or lines[1:]  # the last line may be cut off

    def main(line: str) -> str | None:
        counts = {d: line.count(d) for d in TEXT_DELIMITERS}
        best = max(counts, key=lambda d: counts[d])
        return best if counts[best] else None

    head_delimiter = main(header)
    row_delimiters = [main(line) for line in rows]
    others = []
    for line, d in zip(rows, row_delimiters, strict=True):
        if d is not None and d != head_delimiter and (head_delimiter is None or line.count(head_delimiter) == 0):
            others.append(d)
    if head_delimiter is None or len(others) < max(1, len(rows) // 2):
        return None
    row_delimiter = max(set(others), key=others.count)
    return (
        f"the header line is separated by {DELIMITER_NAMES[head_delimiter]} but the rows by "
        f"{DELIMITER_NAMES[row_delimiter]}: every row reads as one value. Export the file again with one delimiter "
        "for the header and the rows"
    )


def check_text(data: bytes, filename: str | None) -> None:
    """Refuse text the engine would misread, with one message naming the problem and how to fix it."""
    problem = text_encoding_problem(data) or mixed_delimiter_problem(data)
    if problem:
        raise upload_problem(problem, filename)


# ---------------------------------------------------------------- validating an upload
def model_info(registry: Registry) -> dict | None:
    """The classifier that will score (pinned, else the champion), or ``None`` if none is trained.

    Also says whether a newer champion exists than the pinned one, and whether
    a basket-value model of the same window exists (else no basket or revenue).
    """
    try:
        choice = scoring_choice(registry)
    except NoModelError:
        return None
    run = choice.run
    meta = run.metadata or {}
    window = int(meta["window"])
    basket = best_regressor(registry.latest_per_model(REGRESSION), window)
    return {
        "model": meta.get("title", run.model),
        "run_id": run.run_id,
        "window": window,
        "label": meta["label"]["name"],
        "threshold": float(meta["threshold"]),
        "pinned": choice.pinned,
        "pin_note": choice.note,
        "champion": None if not choice.newer_champion else choice.champion.metadata.get("title", choice.champion.model),
        "champion_run_id": choice.champion.run_id,
        "basket_model": (basket.metadata or {}).get("title", basket.model) if basket else None,
    }


def status_counts(clicks: pd.DataFrame, window: int, label: str | None) -> dict[str, int]:
    """Sessions per scoring status for a window, as ``score_clicks`` will label them."""
    indexed = index_clicks(clicks)
    definition = definition_for_scoring(clicks, label) if label else None
    status = window_status(indexed, session_targets(indexed, definition), window)
    counts = pd.Series(status).value_counts()
    return {name: int(counts.get(name, 0)) for name in STATUSES}


def fix_hints(problems: Sequence[Problem]) -> list[str]:
    """What to do about each kind of problem, once each, in the order the problems came."""
    hints: list[str] = []
    for problem in problems:
        hint = next((h for words, h in FIX_HINTS if words in problem.message), ROW_HINT if problem.rows else None)
        if hint and hint not in hints:
            hints.append(hint)
    return hints


@dataclass(frozen=True)
class CheckedUpload:
    """A stored, valid upload and what its report shows."""

    upload_id: str
    loaded: LoadedEvents
    window: int  # the scoring model's, or the configured default when no model is trained
    counts: dict[str, int]  # sessions per status for that window
    model: dict | None


def upload_owner() -> str | None:
    """The signed-in user's name, whose quota an upload counts against (``None`` without login)."""
    user = signed_in_user()
    return user.name if user is not None else None


def check_upload(settings: Settings, registry: Registry, contents: str | None, filename: str) -> CheckedUpload:
    """Decode, store and validate an upload; ``ValidationError`` (and nothing kept) when it has problems."""
    store = UploadStore.for_settings(settings)
    limit = settings.max_upload_bytes
    data = decode_upload(contents, filename, limit)
    check_text(data, filename)
    upload_id = store.save(data, filename, owner=upload_owner())
    try:
        # Parsed as data only (CSV as text, Parquet via pyarrow), in a worker process: nothing is unpickled or executed.
        loaded = parse_upload(data, filename, settings)
        model = model_info(registry)
        window = model["window"] if model else settings.window
        counts = status_counts(loaded.clicks, window, model["label"] if model else None)
    except BaseException:
        store.remove(upload_id)
        raise
    return CheckedUpload(upload_id, loaded, window, counts, model)


def report_data(checked: CheckedUpload) -> dict:
    """What the validation report shows, as small JSON for the tab's upload store (never a component)."""
    summary = checked.loaded.summary()
    return {
        "kind": "valid",
        "source": checked.loaded.source,
        "summary": {k: summary[k] for k in ("rows", "sessions", "first_date", "last_date", "input_form")},
        "label_source": summary["label_source"],
        "warnings": list(summary["warnings"]),
        "bytes": int(checked.loaded.n_bytes),
        "window": checked.window,
        "counts": dict(checked.counts),
        "has_model": checked.model is not None,
    }


def problems_data(error: ValidationError, filename: str, unexpected: str | None = None) -> dict:
    """A refused upload's problems (column, message, example rows, count) and fixes, as small JSON."""
    return {
        "kind": "problems",
        "filename": filename,
        "problems": [
            {"column": p.column, "message": p.message, "rows": list(p.rows), "count": int(p.count)}
            for p in error.problems
        ],
        "hints": fix_hints(error.problems),
        "unexpected": unexpected,
    }


# ---------------------------------------------------------------- the scoring job
def _json_rows(frame: pd.DataFrame) -> list[dict]:
    """Records with missing values as ``None``, so the preview is plain JSON."""
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def run_scoring_job(
    settings: Settings,
    upload_id: object,
    set_progress: Callable[[tuple], None],
    dataset: str = BUNDLED_DATASET_KEY,
    run_id: str | None = None,
    by: str | None = None,
    uploader: str | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> dict:
    """Score a stored upload with a dataset's scoring model, write its results beside it and delete the input.

    ``run_id`` picks the classifier (it becomes the pinned one); without it the
    pinned classifier scores, and the first scoring pins the champion, so a
    later training job does not silently change what scores. Only ``uploader``'s
    own upload is scored. ``should_stop`` is asked between steps (a Cancel from
    any page): the job then stops before anything is written and the input is
    kept, so Score works again. Returns the small answer the browser keeps:
    ``ok`` and a message on failure (``cancelled`` for a Cancel); else the
    summary, the models used, a P(convert) histogram and the first rows.
    """
    store = UploadStore.for_settings(settings)
    answer: dict = {"id": upload_id, "ok": False}
    cancelled = {**answer, "cancelled": True, "message": SCORING_CANCELLED}
    try:
        set_progress((10, "reading the file"))
        store.owned(upload_id, uploader)
        data, filename = store.input_bytes(upload_id), store.filename(upload_id)
        registry = ModelStore(settings.models_dir).registry(dataset)
        models = load_scoring_models(registry, run_id)
        choice = scoring_choice(registry)
        if run_id or not choice.pinned:
            pin_model(registry, models.classifier.info.run_id, by)
        loaded = load_events(data, name=filename, max_bytes=settings.max_upload_bytes, limits=settings.limits)
        if should_stop():
            return cancelled
        set_progress((40, f"scoring {loaded.n_sessions:,} sessions"))
        scores = score_clicks(loaded.clicks, models)
        if should_stop():
            return cancelled
        set_progress((80, "writing the results"))
        write_csv_atomic(scores, store.results_path(upload_id))  # text cells neutralised, as the CLI writes
        scores.to_parquet(store.folder(upload_id) / SCORES_TABLE)  # for ranked target lists
        store.remove_input(upload_id)
    except ValidationError as exc:
        return {**answer, "message": exc.report()}
    except ClickstreamError as exc:
        return {**answer, "message": str(exc)}
    except Exception as exc:  # the job must always answer; the traceback goes to the log
        log.exception("scoring job failed")
        return {**answer, "message": f"Scoring failed ({type(exc).__name__}: {exc}); nothing was written."}
    summary = score_summary(scores)
    mean_p = summary["mean_p_convert"]
    p = scores.loc[scores["status"] == STATUS_SCORED, "p_convert"].to_numpy(dtype=float)
    counts, edges = np.histogram(p, bins=HISTOGRAM_BINS) if len(p) else (np.zeros(0), np.zeros(0))
    revenue = expected_revenue_range(scores, models.basket_interval)
    set_progress((100, "done"))
    return {
        **answer,
        "ok": True,
        "filename": filename,
        "dataset": dataset,
        "summary": {
            **summary,
            "mean_p_convert": None if np.isnan(mean_p) else mean_p,
            "expected_revenue_range": list(revenue) if revenue else None,
        },
        "models": models.describe(),
        "histogram": {"counts": counts.astype(int).tolist(), "edges": edges.tolist()},
        "target_counts": {"threshold": int((p >= models.threshold).sum())},
        "preview": _json_rows(neutralise_formulas(scores.head(PREVIEW_ROWS))),
    }


def scored_table(settings: Settings, result: dict | None) -> pd.DataFrame:
    """The scores of a finished job (for target lists); ``UploadGone`` when they have expired."""
    if not result or not result.get("ok"):
        raise UploadGone("there are no results yet; score a file first")
    path = UploadStore.for_settings(settings).owned(result.get("id"), upload_owner()) / SCORES_TABLE
    if not path.is_file():
        raise UploadGone("the results have expired (they are kept for an hour); upload and score the file again")
    return pd.read_parquet(path)


def target_csv(settings: Settings, result: dict | None, rule: str, percent: float | None) -> tuple[str, int]:
    """The ranked target list as CSV text (formulas neutralised), with the rule in its first line; and its length."""
    scores = scored_table(settings, result)
    share = float(percent or 10) / 100
    threshold = float(result["models"]["threshold"])
    targets = target_list(scores, rule, share=share, threshold=threshold)
    how = f"top {share:.0%} of scored sessions" if rule == RULE_CAPACITY else f"P(convert) >= {threshold:.3f}"
    model = result["models"].get("classifier_title") or result["models"].get("classifier")
    head = f"# target list: {how}; model {model} (run {result['models'].get('run_id')}); {len(targets):,} sessions\n"
    return head + to_csv_text(targets), len(targets)


def target_download_name(filename: str | None, rule: str, percent: float | None) -> str:
    stem = download_name(filename).removeprefix("scores-").removesuffix(".csv")
    how = f"top{int(percent or 10)}pct" if rule == RULE_CAPACITY else "threshold"
    return f"targets-{stem}-{how}.csv"


def results_file(settings: Settings, result: dict | None) -> Path:
    """The results CSV of a finished job; ``UploadGone`` when it has expired."""
    if not result or not result.get("ok"):
        raise UploadGone("there are no results to download yet; score a file first")
    path = UploadStore.for_settings(settings).owned(result.get("id"), upload_owner()) / RESULTS_FILE
    if not path.is_file():
        raise UploadGone("the results have expired (they are kept for an hour); upload and score the file again")
    return path
