"""Every open page re-reads its model lists when a training job lands, on any tab, without a reload.

The shell holds an interval and the app-level models store (the active
dataset's registry version, the newest run id). The interval asks the app
context's registry cache for the version every ``POLL_MS`` (directory
listings only); the store changes only when it does, and the leaderboard,
what-if, segments and scoring lists listen to the store.
"""

from __future__ import annotations

from dash import Input, Output, State, no_update

from dashboard import ids

POLL_MS = 5000  # how often open pages look for newly landed models


def register_model_refresh(app, context) -> None:
    @app.callback(
        Output(ids.APP_MODELS_STORE, "data", allow_duplicate=True),
        Input(ids.APP_MODELS_POLL, "n_intervals"),
        State(ids.APP_DATASET_STORE, "data"),
        State(ids.APP_MODELS_STORE, "data"),
        prevent_initial_call=True,
    )
    def refresh_models(_tick, dataset, current):
        version = context.registry_for(dataset).version()
        return version if version != current else no_update
