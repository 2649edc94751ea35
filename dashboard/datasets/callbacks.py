"""The add-data panel's callbacks: upload or database read, report, mapping, keep (a background job),
activate, delete. Bodies are plain functions of their inputs, tested without a browser.

Every component here is a ``data-...`` ID, which the auth policy gives to
analysts and admins; viewers only switch datasets with the data control.
"""

from __future__ import annotations

import logging

import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, ctx, no_update

from dashboard import ids
from dashboard.auth.session import current_role
from dashboard.context import AppContext
from dashboard.datasets import intake as I
from dashboard.datasets.actions import (
    action_styles,
    activate,
    apply_mapping,
    ask_delete,
    current_user_name,
    dataset_list,
    delete_dataset,
    event_rows,
    form_from_inputs,
    job_finished,
    keep_request,
    mapping_defaults,
    mapping_hidden,
    name_placeholder,
    receive_source,
    save_mapping,
)
from dashboard.datasets.mapping import MappingForm
from dashboard.upload_guard import register_upload_guard
from dashboard.uploads import UploadGone
from ml.data.profiles import FIELD_EVENT

log = logging.getLogger(__name__)

FIELD_SELECTS = {"type": ids.DATA_MAP_FIELD, "name": ALL}
EVENT_SELECTS = {"type": ids.DATA_MAP_EVENT, "index": ALL}
DELETE_BUTTONS = {"type": ids.DATA_DELETE, "key": ALL}


# ---------------------------------------------------------------- registration
def register_callbacks(app, context: AppContext) -> None:
    settings = context.settings

    register_upload_guard(
        app,
        ids.DATA_UPLOAD,
        ids.DATA_REJECT_NOTE,
        ids.DATA_INTAKE_STORE,
        "Split it, or prepare it on the server with python -m ml.",
        report_id=ids.DATA_REPORT,
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
        return store, report, None, name_placeholder(store), False  # the browser drops its copy of the bytes

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
            return store, report, name_placeholder(store)

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
        Input(ids.DATA_MAP_OPEN, "n_clicks"),
        State(FIELD_SELECTS, "id"),
        prevent_initial_call=True,
    )
    def fill_mapping(intake, _open, field_ids):
        asked = ctx.triggered_id == ids.DATA_MAP_OPEN
        defaults = mapping_defaults(settings, intake, [f["name"] for f in field_ids], asked)
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
