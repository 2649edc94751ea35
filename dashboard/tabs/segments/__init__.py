"""Segments tab: K-Means and DBSCAN segments of any dataset's sessions, a projection, metrics and persona cards.

Every setting is computed on the server by ``ml.models.segment_runs.segment_run``
and kept per setting in memory and on disk (per dataset and data hash), so
moving a slider back is instant and a restart reads what was fitted before.
The bundled dataset's default run is built (or read from disk) on a thread
at start-up, so the app serves at once and the tab's first visit does not
fit anything. Each card shows the segment's
conversion (named by its label), the lift of "target the top N% of sessions"
by the dataset's champion model, and the representative session the what-if
tab starts from; a button downloads the segment's sessions.
"""

from __future__ import annotations

import logging
import os
import threading

import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, ctx, dcc, html

from dashboard import ids
from dashboard.components import GRAPH_CONFIG, graph_panel
from dashboard.context import AppContext
from dashboard.tabs.segments.views import (
    CAPACITY_RANGE,
    DBSCAN,
    DEFAULT_CAPACITY,
    EPS_RANGE,
    KMEANS,
    MIN_SAMPLES_RANGE,
    base_for,
    default_eps,
    download_segment,
    open_whatif,
    run_for,
    segment_sessions,
    segments_view,
    setting_from_inputs,
    warm,
    whatif_choice,
)
from ml.config import BUNDLED_DATASET_KEY
from ml.models.segment_runs import DISPLAY_POINTS, EXPLORE_K_RANGE
from ml.models.segments import DEFAULT_MIN_SAMPLES, SILHOUETTE_SAMPLE

TAB_ID = "segments"
LABEL = "Segments"
USES_FILTERS = False

SETTING_KEYS = ("method", "k", "eps", "min_samples", "dataset")  # carried in each card button's ID
FORK_WAIT_S = 600  # a fork (a background job starting) waits at most this long for the start-up fit

log = logging.getLogger(__name__)

__all__ = [
    "DBSCAN",
    "KMEANS",
    "LABEL",
    "TAB_ID",
    "USES_FILTERS",
    "control_styles",
    "default_eps",
    "download_segment",
    "layout",
    "open_whatif",
    "register_callbacks",
    "run_for",
    "segment_sessions",
    "segments_view",
    "setting_from_inputs",
    "whatif_choice",
]


def control_styles(method: str | None) -> tuple[dict, dict]:
    hidden = {"display": "none"}
    return (hidden, {}) if method == DBSCAN else ({}, hidden)


# ---------------------------------------------------------------- layout
def _slider(component_id: str, label: str, slider: dcc.Slider, hint: str) -> html.Div:
    """A slider with a visible label, named for screen readers by the same text."""
    return html.Div(
        [
            dbc.Label(label, html_for=component_id, className="small fw-semibold mb-0"),
            html.Div(slider, role="group", **{"aria-label": label}),
            html.Div(hint, className="small text-muted"),
        ],
        className="mb-2",
    )


def controls(context: AppContext, key: str) -> dbc.Card:
    base = base_for(context, key)
    eps = default_eps(context, key)
    k_low, k_high = EXPLORE_K_RANGE
    eps_low, eps_high, eps_step = EPS_RANGE
    ms_low, ms_high = MIN_SAMPLES_RANGE
    cap_low, cap_high = CAPACITY_RANGE
    k_slider = dcc.Slider(
        id=ids.SEGMENTS_K,
        min=k_low,
        max=k_high,
        step=1,
        value=base.best_k,
        marks={k: str(k) for k in range(k_low, k_high + 1)},
        updatemode="mouseup",
        allow_direct_input=False,
    )
    eps_slider = dcc.Slider(
        id=ids.SEGMENTS_EPS,
        min=eps_low,
        max=eps_high,
        step=eps_step,
        value=eps,
        marks={v: f"{v:g}" for v in (0.5, 1.0, 1.5, 2.0, 2.5, 3.0)},
        updatemode="mouseup",
        tooltip={"placement": "bottom"},
    )
    ms_slider = dcc.Slider(
        id=ids.SEGMENTS_MIN_SAMPLES,
        min=ms_low,
        max=ms_high,
        step=1,
        value=DEFAULT_MIN_SAMPLES,
        marks={v: str(v) for v in (5, 20, 40, 60, 80, 100)},
        updatemode="mouseup",
        tooltip={"placement": "bottom"},
    )
    capacity_slider = dcc.Slider(
        id=ids.SEGMENTS_CAPACITY,
        min=cap_low,
        max=cap_high,
        step=1,
        value=DEFAULT_CAPACITY,
        marks={v: f"{v}%" for v in (1, 10, 20, 30, 40, 50)},
        updatemode="mouseup",
        tooltip={"placement": "bottom"},
    )
    method = html.Div(
        dbc.RadioItems(
            id=ids.SEGMENTS_METHOD,
            options=[{"label": "K-Means", "value": KMEANS}, {"label": "DBSCAN", "value": DBSCAN}],
            value=KMEANS,
            inline=True,
        ),
        role="radiogroup",
        className="mb-2",
        **{"aria-label": "Segmentation method"},
    )
    kmeans_controls = html.Div(
        [
            _slider(ids.SEGMENTS_K, "Number of segments (k)", k_slider, f"silhouette picks k = {base.best_k}"),
            html.Div(
                f"Silhouette by k (K-Means on a fixed-seed sample of {SILHOUETTE_SAMPLE:,} sessions)",
                className="small text-muted",
            ),
            dcc.Graph(
                id=ids.SEGMENTS_SILHOUETTE_GRAPH,
                config={**GRAPH_CONFIG, "displayModeBar": False},
                style={"height": "140px"},
            ),
        ],
        id=ids.SEGMENTS_KMEANS_CONTROLS,
    )
    dbscan_controls = html.Div(
        [
            _slider(
                ids.SEGMENTS_EPS,
                "Neighbourhood radius (eps)",
                eps_slider,
                f"default {eps:g}: median distance to the {DEFAULT_MIN_SAMPLES}th neighbour",
            ),
            _slider(
                ids.SEGMENTS_MIN_SAMPLES,
                "Sessions to make a dense group (min_samples)",
                ms_slider,
                "sessions in no dense group are noise, shown as their own group",
            ),
        ],
        id=ids.SEGMENTS_DBSCAN_CONTROLS,
        style={"display": "none"},
    )
    capacity = html.Div(
        [
            _slider(
                ids.SEGMENTS_CAPACITY,
                "Target the top N% of sessions (by the champion model's P)",
                capacity_slider,
                "each card shows how many of its sessions that reaches and their lift",
            ),
            html.Div(id=ids.SEGMENTS_CAPACITY_NOTE, className="small text-muted", **{"aria-live": "polite"}),
        ],
        className="mt-2 pt-2 border-top",
    )
    return dbc.Card(
        [
            dbc.CardHeader(html.H6("Segmentation", className="mb-0")),
            dbc.CardBody(
                [html.Span("Method", className="small fw-semibold"), method, kmeans_controls, dbscan_controls, capacity]
            ),
        ],
        className="mb-2 segment-controls",
    )


def layout(context: AppContext, key: str = BUNDLED_DATASET_KEY) -> html.Div:
    n_sessions = len(context.dataset(key).sessions)
    shown = min(n_sessions, DISPLAY_POINTS)
    subtitle = (
        f"PCA of the scaled session features; {shown:,} of {n_sessions:,} sessions shown "
        "(fixed-seed sample); hover a point for its segment"
    )
    loading = {"type": "dot", "delay_show": 300}
    return html.Div(
        [
            dbc.Row(
                [
                    dbc.Col(
                        [
                            controls(context, key),
                            dcc.Loading(dbc.Row(id=ids.SEGMENTS_METRICS, className="g-2"), **loading),
                        ],
                        lg=4,
                    ),
                    dbc.Col(
                        graph_panel(ids.SEGMENTS_PROJECTION_GRAPH, "Sessions by segment", subtitle, height=520),
                        lg=8,
                    ),
                ],
                className="g-3 mb-2",
            ),
            html.Div(id=ids.SEGMENTS_NOTE, className="small text-muted mb-3"),
            dcc.Loading(dbc.Row(id=ids.SEGMENTS_CARDS, className="g-3"), **loading),
            html.Div(id=ids.SEGMENTS_OTHERS, className="mb-3"),
            dcc.Download(id=ids.SEGMENTS_DOWNLOAD),
        ]
    )


# ---------------------------------------------------------------- callbacks
def _button(pattern_type: str) -> dict:
    return {"type": pattern_type, "segment": ALL, **dict.fromkeys(SETTING_KEYS, ALL)}


def _trigger() -> dict | None:
    return {"id": ctx.triggered_id, "value": ctx.triggered[0]["value"]} if ctx.triggered_id else None


def start_warming(context: AppContext, key: str = BUNDLED_DATASET_KEY) -> threading.Event:
    """Build (or read from disk) a dataset's segment base and default run on a thread; the event is set when done.

    The background-callback manager forks worker processes, and a fork in the
    middle of a fit could inherit a held lock (or a busy OpenMP pool): every
    fork of this process first waits for the fit to end (``os.register_at_fork``).
    A visit to the tab meanwhile waits for the same build (``PreparedData.once``)
    rather than fitting twice.
    """
    done = threading.Event()

    def work() -> None:
        try:
            warm(context, key)
        except Exception:  # the tab then fits on its first visit and shows any error there
            log.exception("warming the segments of %s failed", key)
        finally:
            done.set()

    os.register_at_fork(before=lambda: done.wait(FORK_WAIT_S))
    threading.Thread(target=work, name=f"segments-warm-{key}", daemon=True).start()
    return done


def register_callbacks(app, context: AppContext) -> None:
    # The bundled dataset's silhouette by k, projection, default eps and default run: read from the disk
    # cache (milliseconds), or on the very first start fitted (about 3-5 s on the bundled data, longer on a
    # busy machine) and written there, so the tab's first visit fits nothing. On a thread, so the app
    # serves meanwhile; see start_warming for why forks wait for it.
    app.segments_warmed = start_warming(context, BUNDLED_DATASET_KEY)

    @app.callback(
        Output(ids.SEGMENTS_PROJECTION_GRAPH, "figure"),
        Output(ids.SEGMENTS_SILHOUETTE_GRAPH, "figure"),
        Output(ids.SEGMENTS_METRICS, "children"),
        Output(ids.SEGMENTS_NOTE, "children"),
        Output(ids.SEGMENTS_CARDS, "children"),
        Output(ids.SEGMENTS_OTHERS, "children"),
        Output(ids.SEGMENTS_CAPACITY_NOTE, "children"),
        Input(ids.SEGMENTS_METHOD, "value"),
        Input(ids.SEGMENTS_K, "value"),
        Input(ids.SEGMENTS_EPS, "value"),
        Input(ids.SEGMENTS_MIN_SAMPLES, "value"),
        Input(ids.SEGMENTS_CAPACITY, "value"),
        State(ids.APP_DATASET_STORE, "data"),
    )
    def update_segments(method, k, eps, min_samples, capacity, key):
        setting = setting_from_inputs(context, method, k, eps, min_samples, key)
        return segments_view(context, setting, key, capacity)

    app.callback(
        Output(ids.SEGMENTS_KMEANS_CONTROLS, "style"),
        Output(ids.SEGMENTS_DBSCAN_CONTROLS, "style"),
        Input(ids.SEGMENTS_METHOD, "value"),
    )(control_styles)

    @app.callback(
        Output(ids.APP_SEGMENT_STORE, "data", allow_duplicate=True),
        Output(ids.APP_TABS, "active_tab", allow_duplicate=True),
        Input(_button(ids.SEGMENTS_OPEN_WHATIF), "n_clicks"),
        prevent_initial_call=True,
    )
    def open_in_whatif(n_clicks):
        return open_whatif(context, _trigger())

    @app.callback(
        Output(ids.SEGMENTS_DOWNLOAD, "data"),
        Input(_button(ids.SEGMENTS_DOWNLOAD_BUTTON), "n_clicks"),
        prevent_initial_call=True,
    )
    def download_sessions(n_clicks):
        return download_segment(context, _trigger())
