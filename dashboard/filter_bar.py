"""The shared filter bar: its layout, the inputs tabs listen to, its URL state and its reset.

The bar holds a date range and one dropdown per filter dimension of the
dataset in use (country, main category and main colour on the bundled data;
the main category and each profile dimension, such as brand or device, on
other event logs). Its body is re-rendered when the dataset changes; tabs read
it through ``INPUTS`` / ``STATES`` and ``read(...)``, so no tab knows which
dimensions exist.

A URL without dates opens the bar on the default period, the latest four
complete weeks (``ml.features.periods.default_period``), so the KPI cards have
an earlier period to compare with; clearing the dates (or ``?dates=all``)
shows every date, and Reset returns to the default period.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, dcc, html

from dashboard import ids
from dashboard.url_state import ViewState, extra_of, filter_from_values
from ml.features import periods
from ml.features.kpis import SessionFilter, codebook_of, dimension_title, dimensions_of
from ml.features.prepared import PreparedData

DIMENSIONS_ALL = {"type": ids.FILTER_DIMENSION, "name": ALL}
# What a tab callback lists to follow the filters, and passes to ``read`` in the same order.
INPUTS = [
    Input(ids.FILTER_DATES, "start_date"),
    Input(ids.FILTER_DATES, "end_date"),
    Input(DIMENSIONS_ALL, "value"),
    State(DIMENSIONS_ALL, "id"),
]
STATES = [State(i.component_id, i.component_property) for i in INPUTS]
MAX_OPTIONS = 200  # dropdown entries per dimension (most sessions first)


def read(start: str | None, end: str | None, values: list | None, names: list | None) -> SessionFilter:
    """The filter the bar's values describe (the arguments ``INPUTS`` give, in order)."""
    return filter_from_values(start, end, values, names)


def coverage(data: PreparedData) -> periods.Coverage | None:
    """The first and last day a dataset has sessions on."""
    if not len(data.sessions):
        return None
    return periods.Coverage(data.info["first_date"], data.info["last_date"])


def default_dates(data: PreparedData) -> tuple[str | None, str | None]:
    """The default period of a dataset as ISO dates (None, None when it has no sessions)."""
    covered = coverage(data)
    if covered is None:
        return None, None
    start, end = periods.default_period(covered)
    return start.isoformat(), end.isoformat()


def with_default_dates(data: PreparedData, state: ViewState) -> ViewState:
    """``state`` with the default period filled in when its URL names no dates."""
    if not state.default_dates:
        return state
    start, end = default_dates(data)
    if start is None:
        return state
    filt = state.filter.replace(start=date.fromisoformat(start), end=date.fromisoformat(end))
    return replace(state, filter=filt)


def view_of(
    tab: str, start: str | None, end: str | None, values: list | None, names: list | None, dataset: str, search: str
) -> ViewState:
    """The view the page shows: its tab, the bar's filter, the dataset and the URL's view controls.

    An empty date range means every date (``?dates=all``).
    """
    filt = read(start, end, values, names)
    return ViewState(
        tab=tab,
        filter=filt,
        dataset=dataset,
        extra=extra_of(search),
        all_dates=filt.start is None and filt.end is None,
    )


def _options(data: PreparedData, column: str) -> list[dict]:
    """A dimension's dropdown options, most sessions first (built once per dataset: the cube never changes)."""
    return data.once(f"filter-options:{column}", lambda d: _build_options(d, column))


def _build_options(data: PreparedData, column: str) -> list[dict]:
    sessions = data.cube.groupby(column)["sessions"].sum().sort_values(ascending=False)
    book = data.codebooks.get(codebook_of(column), {})
    return [
        {"label": book.get(int(code), "(other)" if int(code) == 0 else f"code {int(code)}"), "value": int(code)}
        for code in sessions.index[:MAX_OPTIONS]
    ]


def _field(label: str, component: object, html_for: str | None, **width: int) -> dbc.Col:
    return dbc.Col([dbc.Label(label, html_for=html_for, className="small mb-0"), component], **width)


def dimension_fields(data: PreparedData, state: ViewState) -> list[dbc.Col]:
    """One dropdown per filter dimension of a dataset, showing ``state``'s filter."""
    columns = dimensions_of(data.cube)
    width = max(2, 6 // max(len(columns), 1))
    fields = []
    for column in columns:
        title = dimension_title(column)
        dropdown = dcc.Dropdown(
            id=ids.filter_dimension(column),
            options=_options(data, column),
            value=list(state.filter.codes_for(column)),
            multi=True,
            placeholder=f"All ({title.lower()})",
        )
        fields.append(_field(title, dropdown, None, lg=width, md=4))
    return fields


def date_props(data: PreparedData, state: ViewState) -> tuple:
    """The date picker's bounds and values for a dataset: min, max, start, end, visible month."""
    info, filt = data.info, state.filter
    return (
        info["first_date"],
        info["last_date"],
        filt.start.isoformat() if filt.start else None,
        filt.end.isoformat() if filt.end else None,
        filt.end or info["last_date"],
    )


DATE_OUTPUTS = [
    Output(ids.FILTER_DATES, "min_date_allowed"),
    Output(ids.FILTER_DATES, "max_date_allowed"),
    Output(ids.FILTER_DATES, "start_date"),
    Output(ids.FILTER_DATES, "end_date"),
    Output(ids.FILTER_DATES, "initial_visible_month"),
]


def bar() -> dbc.Card:
    """The bar: the date range, the dataset's dimension dropdowns (rendered per dataset), reset and count."""
    dates = dcc.DatePickerRange(
        id=ids.FILTER_DATES,
        display_format="YYYY-MM-DD",
        start_date_placeholder_text="YYYY-MM-DD",
        end_date_placeholder_text="YYYY-MM-DD",
        clearable=True,
        first_day_of_week=1,
    )
    reset = dbc.Col(
        [
            dbc.Button("Reset filters", id=ids.FILTER_RESET, color="secondary", outline=True, size="sm"),
            html.Div(id=ids.FILTER_SUMMARY, className="small text-muted mt-1", **{"aria-live": "polite"}),
        ],
        lg=2,
        md=4,
        className="d-flex flex-column justify-content-end",
    )
    return dbc.Card(
        dbc.CardBody(
            dbc.Row(
                [
                    _field("Dates (YYYY-MM-DD)", dates, ids.FILTER_DATES, lg=3, md=6),
                    dbc.Col(dbc.Row(id=ids.FILTER_BAR_BODY, className="g-2"), lg=7, md=12),
                    reset,
                ],
                className="g-2 align-items-end",
            )
        ),
        id=ids.FILTER_BAR,
        className="mb-3 filter-bar",
    )


def summary(data: PreparedData, filt: SessionFilter) -> str:
    """How many sessions the filter keeps."""
    shown = int(data.cube.loc[filt.mask(data.cube), "sessions"].sum())
    total = len(data.sessions)
    return f"{shown:,} of {total:,} sessions" if shown != total else f"all {total:,} sessions"


def register_callbacks(app, context) -> None:
    """Reset, and the count of sessions kept."""

    @app.callback(
        Output(ids.FILTER_DATES, "start_date", allow_duplicate=True),
        Output(ids.FILTER_DATES, "end_date", allow_duplicate=True),
        Output(DIMENSIONS_ALL, "value", allow_duplicate=True),
        Input(ids.FILTER_RESET, "n_clicks"),
        State(DIMENSIONS_ALL, "id"),
        State(ids.APP_DATASET_STORE, "data"),
        prevent_initial_call=True,
    )
    def reset_filters(_, names, dataset):
        start, end = default_dates(context.dataset(dataset))
        return start, end, [[] for _ in names or ()]

    @app.callback(Output(ids.FILTER_SUMMARY, "children"), *INPUTS, State(ids.APP_DATASET_STORE, "data"))
    def summarise_filter(start, end, values, names, dataset):
        return summary(context.dataset(dataset), read(start, end, values, names))
