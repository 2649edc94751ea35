"""The add-data panel's callbacks: upload or database read, report, mapping, keep (a background job),
activate, delete. Bodies are plain functions of their inputs, tested without a browser.

Every component here is a ``data-...`` ID, which the auth policy gives to
analysts and admins; viewers only switch datasets with the data control.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, ctx, html, no_update

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
FIELD_SELECTS = {"type": ids.DATA_MAP_FIELD, "name": ALL}
EVENT_SELECTS = {"type": ids.DATA_MAP_EVENT, "index": ALL}
DELETE_BUTTONS = {"type": ids.DATA_DELETE, "key": ALL}

# The browser refuses a file over the limit or of another type and sends nothing: say why, and clear the last report.
REJECT_JS = """
function(uploadId, maxBytes, accept, noteId, reportId, storeId) {
    const dc = window.dash_clientside;
    if (window.clickstreamDataUploadGuard) { return dc.no_update; }
    window.clickstreamDataUploadGuard = true;
    const suffixes = accept.split(",").map(s => s.trim().toLowerCase());
    const mb = n => (n / 1048576).toFixed(n % 1048576 ? 1 : 0) + " MB";
    function check(files) {
        if (!files || !files.length) { return; }
        const f = files[0];
        let text = null;
        if (f.size > maxBytes) {
            text = "'" + f.name + "' is " + mb(f.size) + ", over the upload limit of " + mb(maxBytes)
                + ": it was not uploaded. Split it, or prepare it on the server with python -m ml.";
        } else if (!suffixes.some(s => f.name.toLowerCase().endsWith(s))) {
            text = "'" + f.name + "' was not uploaded: only " + suffixes.join(" ")
                + " files are accepted. Save a spreadsheet as CSV (UTF-8) first.";
        }
        dc.set_props(noteId, {children: text, is_open: text !== null});
        if (text !== null) {
            dc.set_props(reportId, {children: null});
            dc.set_props(storeId, {data: null});
        }
    }
    const inside = e => e.target && e.target.closest && e.target.closest("#" + uploadId);
    document.addEventListener("change", e => { if (inside(e)) { check(e.target.files); } }, true);
    document.addEventListener("drop", e => { if (inside(e)) { check(e.dataTransfer && e.dataTransfer.files); } }, true);
    return dc.no_update;
}
"""


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


def mapping_defaults(settings: Settings, intake: dict | None, field_names: Sequence[str]) -> tuple | None:
    """For a new upload: (options and guessed value per field select, dimension options, profile name)."""
    if not intake or not intake.get("id") or intake.get("mapped"):
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


def _name_placeholder(store: dict) -> str:
    """The name a kept dataset gets unless the user types one: the upload's file name."""
    return I.default_name(store["filename"]) if store.get("id") else "taken from the file name"


# ---------------------------------------------------------------- registration
def register_callbacks(app, context: AppContext) -> None:
    settings = context.settings

    app.clientside_callback(
        REJECT_JS,
        Output(ids.DATA_REJECT_NOTE, "children"),
        Input(ids.DATA_UPLOAD, "id"),
        State(ids.DATA_UPLOAD, "max_size"),
        State(ids.DATA_UPLOAD, "accept"),
        State(ids.DATA_REJECT_NOTE, "id"),
        State(ids.DATA_REPORT, "id"),
        State(ids.DATA_INTAKE_STORE, "id"),
    )

    @app.callback(
        Output(ids.DATA_MODAL, "is_open"),
        Input(ids.DATA_ADD_BUTTON, "n_clicks"),
        Input(ids.DATA_CLOSE, "n_clicks"),
        prevent_initial_call=True,
    )
    def toggle_panel(_add, _close):
        return ctx.triggered_id == ids.DATA_ADD_BUTTON

    @app.callback(
        Output(ids.DATA_INTAKE_STORE, "data"),
        Output(ids.DATA_REPORT, "children"),
        Output(ids.DATA_UPLOAD, "contents"),
        Output(ids.DATA_NAME, "placeholder"),
        Output(ids.DATA_REJECT_NOTE, "is_open"),
        Input(ids.DATA_UPLOAD, "contents"),
        State(ids.DATA_UPLOAD, "filename"),
        State(ids.DATA_INTAKE_STORE, "data"),
        prevent_initial_call=True,
    )
    def receive_upload(contents, filename, previous):
        if contents is None:
            return (no_update,) * 5
        store, report = receive_source(
            settings, ids.DATA_UPLOAD, contents, filename, None, None, None, previous, current_user_name()
        )
        return store, report, None, _name_placeholder(store), False  # the browser drops its copy of the bytes

    if settings.allow_sql_sources:  # the database inputs exist only then

        @app.callback(
            Output(ids.DATA_INTAKE_STORE, "data", allow_duplicate=True),
            Output(ids.DATA_REPORT, "children", allow_duplicate=True),
            Output(ids.DATA_NAME, "placeholder", allow_duplicate=True),
            Input(ids.DATA_SQL_BUTTON, "n_clicks"),
            State(ids.DATA_SQL_URL, "value"),
            State(ids.DATA_SQL_TABLE, "value"),
            State(ids.DATA_SQL_QUERY, "value"),
            State(ids.DATA_INTAKE_STORE, "data"),
            prevent_initial_call=True,
        )
        def read_database(n_clicks, url, table, query, previous):
            if not n_clicks:
                return no_update, no_update, no_update
            store, report = receive_source(
                settings, ids.DATA_SQL_BUTTON, None, None, url, table, query, previous, current_user_name()
            )
            return store, report, _name_placeholder(store)

    @app.callback(
        Output(ids.DATA_KEEP, "style"),
        Output(ids.DATA_KEEP_DROPPING, "style"),
        Output(ids.DATA_KEEP_DROPPING, "children"),
        Output(ids.DATA_REFUSE, "style"),
        Output(ids.DATA_MAP_OPEN, "style"),
        Input(ids.DATA_INTAKE_STORE, "data"),
    )
    def show_actions(intake):
        return action_styles(intake)

    @app.callback(
        Output(ids.DATA_MAPPING, "hidden"),
        Input(ids.DATA_INTAKE_STORE, "data"),
        Input(ids.DATA_MAP_OPEN, "n_clicks"),
        State(ids.DATA_MAPPING, "hidden"),
    )
    def show_mapping(intake, _open, hidden):
        return mapping_hidden(ctx.triggered_id, intake, hidden)

    @app.callback(
        Output(FIELD_SELECTS, "options"),
        Output(FIELD_SELECTS, "value"),
        Output(ids.DATA_MAP_DIMENSIONS, "options"),
        Output(ids.DATA_MAP_DIMENSIONS, "value"),
        Output(ids.DATA_MAP_NAME, "value"),
        Input(ids.DATA_INTAKE_STORE, "data"),
        State(FIELD_SELECTS, "id"),
        prevent_initial_call=True,
    )
    def fill_mapping(intake, field_ids):
        defaults = mapping_defaults(settings, intake, [f["name"] for f in field_ids])
        if defaults is None:
            n = len(field_ids)
            return [no_update] * n, [no_update] * n, no_update, no_update, no_update
        return defaults

    @app.callback(
        Output(ids.DATA_MAP_EVENTS, "children"),
        Input(ids.data_map_field(FIELD_EVENT), "value"),
        State(ids.DATA_INTAKE_STORE, "data"),
    )
    def show_event_values(column, intake):
        return event_rows(settings, intake, column)

    mapping_states = [
        State(FIELD_SELECTS, "id"),
        State(FIELD_SELECTS, "value"),
        State(EVENT_SELECTS, "value"),
        State(ids.data_map_field(FIELD_EVENT), "value"),
        State(ids.DATA_MAP_DIMENSIONS, "value"),
        State(ids.DATA_MAP_GAP, "value"),
        State(ids.DATA_MAP_TIME_FORMAT, "value"),
        State(ids.DATA_MAP_NAME, "value"),
        State(ids.DATA_INTAKE_STORE, "data"),
    ]

    def read_form(field_ids, field_values, choices, event_column, dims, gap, fmt, name, intake) -> MappingForm:
        values = []
        if intake and intake.get("id") and event_column:
            try:
                values = I.columns_of(settings, intake["id"]).get(event_column, [])
            except UploadGone:
                values = []
        return form_from_inputs(field_ids, field_values, choices, values, dims, gap, fmt, name)

    @app.callback(
        Output(ids.DATA_INTAKE_STORE, "data", allow_duplicate=True),
        Output(ids.DATA_REPORT, "children", allow_duplicate=True),
        Output(ids.DATA_MAP_NOTE, "children"),
        Input(ids.DATA_MAP_APPLY, "n_clicks"),
        *mapping_states,
        prevent_initial_call=True,
    )
    def apply(n_clicks, *states):
        if not n_clicks:
            return no_update, no_update, no_update
        return apply_mapping(settings, states[-1], read_form(*states))

    @app.callback(
        Output(ids.DATA_MAP_NOTE, "children", allow_duplicate=True),
        Input(ids.DATA_MAP_SAVE, "n_clicks"),
        *mapping_states,
        prevent_initial_call=True,
    )
    def save(n_clicks, *states):
        if not n_clicks:
            return no_update
        return save_mapping(settings, read_form(*states))

    @app.callback(
        Output(ids.DATA_INTAKE_STORE, "data", allow_duplicate=True),
        Output(ids.DATA_REPORT, "children", allow_duplicate=True),
        Input(ids.DATA_REFUSE, "n_clicks"),
        State(ids.DATA_INTAKE_STORE, "data"),
        prevent_initial_call=True,
    )
    def refuse(n_clicks, intake):
        if not n_clicks:
            return no_update, no_update
        I.discard(settings, (intake or {}).get("id"))
        return None, dbc.Alert("Refused: nothing was kept.", color="secondary", className="small")

    @app.callback(
        Output(ids.DATA_KEEP_REQUEST_STORE, "data"),
        Input(ids.DATA_KEEP, "n_clicks"),
        Input(ids.DATA_KEEP_DROPPING, "n_clicks"),
        State(ids.DATA_INTAKE_STORE, "data"),
        State(ids.DATA_NAME, "value"),
        prevent_initial_call=True,
    )
    def request_keep(_keep, _drop, intake, name):
        return keep_request(ctx.triggered_id, intake, name)

    @app.callback(
        Output(ids.DATA_JOB_STORE, "data"),
        Input(ids.DATA_KEEP_REQUEST_STORE, "data"),
        background=True,
        manager=context.background_manager,
        interval=500,
        running=[
            (Output(ids.DATA_KEEP, "disabled"), True, False),
            (Output(ids.DATA_KEEP_DROPPING, "disabled"), True, False),
            (Output(ids.DATA_PREPARE_CANCEL, "disabled"), False, True),
        ],
        cancel=[Input(ids.DATA_PREPARE_CANCEL, "n_clicks")],
        progress=[Output(ids.DATA_PROGRESS, "value"), Output(ids.DATA_PROGRESS, "label")],
        prevent_initial_call=True,
    )
    def prepare(set_progress, request):
        if not request or not request.get("id"):
            return no_update
        return I.run_prepare_job(
            settings, request["id"], request.get("name"), bool(request.get("drop")), lambda p: set_progress(list(p))
        )

    @app.callback(
        Output(ids.DATA_JOB_NOTE, "children", allow_duplicate=True),
        Input(ids.DATA_PREPARE_CANCEL, "n_clicks"),
        prevent_initial_call=True,
    )
    def announce_cancel(n_clicks):
        if not n_clicks:
            return no_update
        return dbc.Alert("Preparing cancelled: nothing was kept. Press Keep to start again.", color="info")

    @app.callback(
        Output(ids.DATA_JOB_NOTE, "children"),
        Output(ids.DATA_ACTIVATE, "style"),
        Output(ids.DATA_SELECT, "options", allow_duplicate=True),
        Output(ids.DATA_INTAKE_STORE, "data", allow_duplicate=True),
        Output(ids.DATA_REPORT, "children", allow_duplicate=True),
        Input(ids.DATA_JOB_STORE, "data"),
        prevent_initial_call=True,
    )
    def job_done(result):
        return job_finished(context, result)

    @app.callback(
        Output(ids.DATA_SELECT, "value", allow_duplicate=True),
        Output(ids.DATA_SELECT, "options", allow_duplicate=True),
        Output(ids.DATA_MODAL, "is_open", allow_duplicate=True),
        Input(ids.DATA_ACTIVATE, "n_clicks"),
        State(ids.DATA_JOB_STORE, "data"),
        prevent_initial_call=True,
    )
    def activate_dataset(n_clicks, result):
        if not n_clicks:
            return no_update, no_update, no_update
        return activate(context, result)

    @app.callback(
        Output(ids.DATA_LIST, "children"),
        Input(ids.DATA_MODAL, "is_open"),
        Input(ids.DATA_JOB_STORE, "data"),
        Input(ids.DATA_DELETE_NOTE, "children"),
        State(ids.APP_DATASET_STORE, "data"),
    )
    def list_datasets(is_open, _result, _deleted, active):
        if not is_open:
            return no_update
        return dataset_list(context, active, current_user_name(), current_role())

    @app.callback(
        Output(ids.DATA_DELETE_STORE, "data"),
        Output(ids.DATA_DELETE_CONFIRM, "displayed"),
        Output(ids.DATA_DELETE_CONFIRM, "message"),
        Input(DELETE_BUTTONS, "n_clicks"),
        prevent_initial_call=True,
    )
    def ask(_clicks):
        trigger = ctx.triggered_id
        clicks = ctx.triggered[0]["value"] if ctx.triggered else None
        return ask_delete(context, trigger["key"] if isinstance(trigger, dict) else None, clicks)

    @app.callback(
        Output(ids.DATA_DELETE_NOTE, "children"),
        Output(ids.DATA_SELECT, "options", allow_duplicate=True),
        Output(ids.DATA_SELECT, "value", allow_duplicate=True),
        Input(ids.DATA_DELETE_CONFIRM, "submit_n_clicks"),
        State(ids.DATA_DELETE_STORE, "data"),
        State(ids.APP_DATASET_STORE, "data"),
        prevent_initial_call=True,
    )
    def confirm_delete(submitted, pending, active):
        if not submitted:
            return no_update, no_update, no_update
        return delete_dataset(context, pending, active, current_user_name(), current_role())
