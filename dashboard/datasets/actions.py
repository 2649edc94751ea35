"""The add-data panel's callback bodies: plain functions of the callbacks' inputs, tested without a browser.

``dashboard.datasets.callbacks`` registers them; each returns what its callback's outputs take.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import dash_bootstrap_components as dbc
from dash import html, no_update

from dashboard import ids
from dashboard.auth.policy import required_role
from dashboard.auth.session import current_role, signed_in_user
from dashboard.context import AppContext
from dashboard.datasets import intake as I
from dashboard.datasets.layout import NOT_IN_FILE, event_value_rows
from dashboard.datasets.mapping import MappingForm, event_value_guess, guess_mapping, profile_from_form
from dashboard.datasets.report import dataset_table, intake_report, job_note, unreadable_report
from dashboard.layout import dataset_options
from dashboard.uploads import UploadGone, display_name
from ml.config import BUNDLED_DATASET_KEY, Settings
from ml.data.profile_library import save_profile
from ml.data.profiles import FIELD_EVENT
from ml.errors import ClickstreamError, Problem, ValidationError
from ml.serving.datasets import DatasetError
from ml.serving.users import VIEWER, role_allows

log = logging.getLogger(__name__)

SHOWN, HIDDEN = {}, {"display": "none"}


# ---------------------------------------------------------------- who may do what
def may_manage_datasets() -> bool:
    """Whether this request's role may add and delete datasets (the panel and its button are left out otherwise)."""
    return role_allows(current_role() or VIEWER, required_role(ids.DATA_ADD_BUTTON))


def current_user_name() -> str | None:
    user = signed_in_user()
    return user.name if user is not None else None


# ---------------------------------------------------------------- callback bodies
def receive_source(
    settings: Settings,
    trigger: object,
    contents: str | None,
    filename: str | None,
    url: str | None,
    table: str | None,
    query: str | None,
    previous: dict | None,
    owner: str | None,
) -> tuple[dict, object]:
    """An upload or a database read: (the intake store, the report), the previous upload forgotten."""
    if previous:
        I.discard(settings, previous.get("id"))
    from_sql = trigger == ids.DATA_SQL_BUTTON
    name = "database" if from_sql else display_name(filename)
    try:
        if from_sql:
            intake = I.receive_sql(settings, url, table, query, owner)
        else:
            intake = I.receive_file(settings, contents, filename, owner)
    except ValidationError as exc:
        return {"id": None, "filename": name, "status": I.REFUSED}, unreadable_report(exc.source or name, exc.problems)
    except Exception as exc:  # the panel must answer; the traceback goes to the log
        log.exception("could not read the new data %s", name)
        problem = Problem(f"the data could not be read ({type(exc).__name__}: {exc})")
        return {"id": None, "filename": name, "status": I.REFUSED}, unreadable_report(name, [problem])
    return intake.to_store(), intake_report(intake)


def action_styles(intake: dict | None) -> tuple:
    """(Keep, Keep without invalid rows, its label, Refuse, Map myself) for the intake's status."""
    status = (intake or {}).get("status")
    has_file = bool(intake and intake.get("id"))
    dropped = int((intake or {}).get("dropped") or 0)
    label = f"Keep without the {dropped:,} invalid row{'s' if dropped != 1 else ''}"
    return (
        SHOWN if status == I.READY else HIDDEN,
        SHOWN if status == I.PROBLEMS else HIDDEN,
        label,
        SHOWN if has_file else HIDDEN,
        SHOWN if has_file and status != I.UNMAPPED else HIDDEN,
    )


def mapping_hidden(trigger: object, intake: dict | None, currently_hidden: bool | None) -> bool:
    """The mapping form shows for a header no profile knows, after a mapping, or when asked for."""
    if not intake or not intake.get("id"):
        return True
    if trigger == ids.DATA_MAP_OPEN:
        return False
    if intake.get("status") == I.UNMAPPED or intake.get("mapped"):
        return False
    return True if trigger == ids.DATA_INTAKE_STORE else bool(currently_hidden)


def mapping_defaults(
    settings: Settings, intake: dict | None, field_names: Sequence[str], asked: bool = False
) -> tuple | None:
    """(options and guessed value per field select, dimension options and values, profile name) for the form.

    Filled for a header no profile knows, or when the user asks for the form
    (``asked``); not for every upload, since the file's values are read for it.
    A form the user has applied keeps their choices.
    """
    if not intake or not intake.get("id") or intake.get("mapped"):
        return None
    if intake.get("status") != I.UNMAPPED and not asked:
        return None
    try:
        columns = list(I.columns_of(settings, intake["id"]))
    except UploadGone:
        return None
    guess = guess_mapping(columns)
    options = [{"label": NOT_IN_FILE, "value": ""}] + [{"label": c, "value": c} for c in columns]
    used = {c for c in guess.values() if c}
    dimensions = [{"label": c, "value": c} for c in columns]
    name = I.default_name(intake.get("filename") or "mapped")
    return (
        [options] * len(field_names),
        [guess.get(n) or "" for n in field_names],
        dimensions,
        [c for c in columns if c not in used and c.lower() in {"brand", "country", "device", "channel"}],
        name,
    )


def event_rows(settings: Settings, intake: dict | None, column: str | None) -> object:
    """The event-value choices for the chosen event column (its most frequent values, guessed)."""
    if not intake or not intake.get("id") or not column:
        return html.Div("Without an event-type column every row is a view.", className="small text-muted")
    try:
        values = I.columns_of(settings, intake["id"]).get(column, [])
    except UploadGone:
        return None
    return event_value_rows(column, values, [event_value_guess(str(v)) for v, _ in values])


def form_from_inputs(
    field_ids: Sequence[dict],
    field_values: Sequence[str | None],
    event_choices: Sequence[str | None],
    event_values: Sequence[Sequence[object]],
    dimensions: Sequence[str] | None,
    gap: object,
    time_format: str | None,
    name: str | None,
) -> MappingForm:
    """The mapping form's inputs as a ``MappingForm`` (event choices by position in the listed values)."""
    columns = {fid["name"]: (value or None) for fid, value in zip(field_ids, field_values, strict=True)}
    events = {str(v[0]): (choice or "") for v, choice in zip(event_values, event_choices, strict=False)}
    if not columns.get(FIELD_EVENT):
        events = {}
    return MappingForm(
        columns=columns,
        events=events,
        dimensions=list(dimensions or []),
        session_gap_minutes=gap,
        timestamp_format=time_format or "auto",
        name=name or "",
    )


def _form_problems(exc: ValidationError) -> dbc.Alert:
    return dbc.Alert(
        [
            html.Div("The mapping is not complete:", className="fw-semibold"),
            html.Ul([html.Li(p.describe()) for p in exc.problems], className="mb-0"),
        ],
        color="warning",
        className="mb-0 small",
    )


def apply_mapping(settings: Settings, intake: dict | None, form: MappingForm) -> tuple[object, object, object]:
    """(intake store, report, note) after reading the upload with the mapping."""
    if not intake or not intake.get("id"):
        return no_update, no_update, dbc.Alert("Upload a file first.", color="warning", className="mb-0 small")
    try:
        profile = profile_from_form(form)
        checked = I.check(settings, intake["id"], profile)
    except ValidationError as exc:
        return no_update, no_update, _form_problems(exc)
    except UploadGone as exc:
        return None, None, dbc.Alert(str(exc).capitalize() + ".", color="warning", className="mb-0 small")
    return checked.to_store(), intake_report(checked), None


def save_mapping(settings: Settings, form: MappingForm) -> dbc.Alert:
    """Save the mapping as a TOML profile, so files with this header are recognised next time."""
    try:
        profile = profile_from_form(form)
        path = save_profile(settings.profiles_dir, profile)
    except ValidationError as exc:
        return _form_problems(exc)
    except OSError as exc:
        return dbc.Alert(
            f"The profile could not be saved ({exc.strerror or exc}).", color="danger", className="mb-0 small"
        )
    return dbc.Alert(
        f"Saved as the profile '{profile.title}' ({path.name}): exports with these columns are recognised from now on.",
        color="success",
        className="mb-0 small",
    )


def keep_request(trigger: object, intake: dict | None, name: str | None) -> dict | object:
    """A Keep press as the job's request: the upload, whether to drop invalid rows, the name."""
    if not intake or not intake.get("id"):
        return no_update
    drop = trigger == ids.DATA_KEEP_DROPPING
    if intake.get("status") != (I.PROBLEMS if drop else I.READY):
        return no_update
    return {
        "id": intake["id"],
        "drop": drop,
        "name": (name or "").strip() or I.default_name(intake.get("filename", "")),
        "at": time.time(),
    }


def job_finished(context: AppContext, result: dict | None) -> tuple:
    """(job note, Activate style, dataset options, intake store, report) when the preparing job answers."""
    note = job_note(result)
    if not result or not result.get("ok"):
        return note, HIDDEN, no_update, no_update, no_update
    return note, SHOWN, dataset_options(context), None, None


def activate(context: AppContext, result: dict | None) -> tuple:
    """(data control value, its options, modal open): switch every tab to the kept dataset."""
    key = (result or {}).get("key")
    if not key or not context.datasets.exists(key):
        return no_update, no_update, no_update
    return key, dataset_options(context), False


def dataset_list(context: AppContext, active: str | None, user: str | None, role: str | None) -> object:
    infos = context.datasets.list()
    refusals = {info.key: I.delete_refusal(info, user, role) for info in infos}
    return dataset_table(infos, active, refusals)


def ask_delete(context: AppContext, key: str | None, clicks: object) -> tuple:
    """(pending key, confirm shown, its message) for a Delete press."""
    if not key or not clicks or not context.datasets.exists(key) or key == BUNDLED_DATASET_KEY:
        return no_update, no_update, no_update
    info = context.datasets.info(key)
    runs = len(context.datasets.registry(key).runs())
    models = f" and its {runs} model run{'s' if runs != 1 else ''}" if runs else ""
    message = f"Delete '{info.name}' ({info.rows:,} events){models}? This cannot be undone."
    return {"key": key}, True, message


def delete_dataset(
    context: AppContext, pending: dict | None, active: str | None, user: str | None, role: str | None
) -> tuple:
    """(note, dataset options, data control value) after a confirmed Delete."""
    key = (pending or {}).get("key")
    if not key:
        return no_update, no_update, no_update
    try:
        info = context.datasets.info(key)
        refusal = I.delete_refusal(info, user, role)
        if refusal:
            return dbc.Alert(refusal, color="warning", className="small"), no_update, no_update
        context.datasets.delete(key)
    except (DatasetError, ClickstreamError) as exc:
        return dbc.Alert(str(exc).capitalize() + ".", color="danger", className="small"), no_update, no_update
    context.forget(key)
    note = dbc.Alert(f"Deleted '{info.name}' and its models.", color="info", className="small", dismissable=True)
    switch = BUNDLED_DATASET_KEY if active == key else no_update
    return note, dataset_options(context), switch


def name_placeholder(store: dict) -> str:
    """The name a kept dataset gets unless the user types one: the upload's file name."""
    return I.default_name(store["filename"]) if store.get("id") else "taken from the file name"
