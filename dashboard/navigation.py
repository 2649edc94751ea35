"""The URL, the dataset in use, the active tab and the filter bar, kept in step by one callback.

On page load (or back/forward) the URL sets the dataset, the tab and the
filters, and the filter bar is rendered for that dataset. Choosing another
dataset in the data control renders the bar for it (filters cleared) and
writes ``?dataset=`` into the URL. After that, every change of tab or filter
rewrites the URL without reloading the page. One callback does all of it, so
there is no cycle between the URL and the components.

A URL that keeps the tab and the dataset (back/forward between filters, a
shared link opened in-page) re-renders only the filter bar: the tab and the
dataset controls are left as they are, so the tab's content is not rebuilt and
its views are computed once for the new filters, not a second time for the
rebuilt components.
"""

from __future__ import annotations

from dataclasses import replace

from dash import Input, Output, State, ctx, no_update

from dashboard import filter_bar, ids
from dashboard.context import AppContext
from dashboard.layout import dataset_options, dataset_summary
from dashboard.tabs import TAB_IDS
from dashboard.url_state import ViewState, dataset_of, parse_search, to_search
from ml.features.kpis import dimensions_of

OUTPUTS = [
    Output(ids.APP_URL, "search"),
    Output(ids.APP_TABS, "active_tab"),
    Output(ids.FILTER_BAR_BODY, "children"),
    *filter_bar.DATE_OUTPUTS,
    Output(ids.APP_DATASET_STORE, "data"),
    Output(ids.DATA_SELECT, "value"),
    Output(ids.DATA_SELECT, "options"),
    Output(ids.DATA_INFO, "children"),
]
INPUTS = [
    Input(ids.APP_URL, "search"),
    Input(ids.APP_TABS, "active_tab"),
    Input(ids.DATA_SELECT, "value"),
    *filter_bar.INPUTS,
    State(ids.APP_DATASET_STORE, "data"),
]
UNCHANGED = (no_update,) * len(OUTPUTS)


def view_from_url(context: AppContext, search: str | None) -> ViewState:
    """The view a URL asks for, on a dataset that exists (the bundled one otherwise)."""
    key = context.known(dataset_of(search))
    data = context.dataset(key)
    state = parse_search(search, TAB_IDS, dimensions_of(data.cube))
    return filter_bar.with_default_dates(data, replace(state, dataset=key))


def sync_view(
    context: AppContext,
    search: str | None,
    tab: str | None,
    choice: str | None,
    start: str | None,
    end: str | None,
    values: list | None,
    names: list | None,
    current: str | None,
) -> tuple:
    """The callback body: see the module docstring."""
    trigger = ctx.triggered_id
    if trigger in (None, ids.APP_URL):
        state = view_from_url(context, search)
        shown = filter_bar.view_of(tab or state.tab, start, end, values, names, current, search)
        if current == state.dataset and shown == state:
            return UNCHANGED  # the URL we just wrote ourselves
        return _render(context, state, search, shown_tab=tab, shown_dataset=current)
    if trigger == ids.DATA_SELECT:
        if not choice or choice == current:
            return UNCHANGED
        key = context.known(choice)
        state = filter_bar.with_default_dates(context.dataset(key), ViewState(tab=tab or TAB_IDS[0], dataset=key))
        return _render(context, state, search, write_url=True)
    if current is None:
        return UNCHANGED  # components fired before the first render
    state = filter_bar.view_of(tab or TAB_IDS[0], start, end, values, names, current, search)
    new_search = to_search(state)
    return (new_search if new_search != (search or "") else no_update, *UNCHANGED[1:])


def _render(
    context: AppContext,
    state: ViewState,
    search: str | None,
    write_url: bool = False,
    shown_tab: str | None = None,
    shown_dataset: str | None = None,
) -> tuple:
    """Every output for ``state``; the tab and the dataset controls only where they differ from what is shown."""
    data = context.dataset(state.dataset)
    new_search = to_search(state)
    same_dataset = shown_dataset == state.dataset
    return (
        new_search if write_url and new_search != (search or "") else no_update,
        no_update if shown_tab == state.tab else state.tab,
        filter_bar.dimension_fields(data, state),
        *filter_bar.date_props(data, state),
        *(
            (no_update,) * 4
            if same_dataset
            else (state.dataset, state.dataset, dataset_options(context), dataset_summary(context, state.dataset))
        ),
    )


def register_callbacks(app, context: AppContext) -> None:
    @app.callback(*OUTPUTS, *INPUTS)
    def keep_view_in_step(search, tab, choice, start, end, values, names, current):
        return sync_view(context, search, tab, choice, start, end, values, names, current)
