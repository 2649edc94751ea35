"""Segments tab: K-Means and DBSCAN segments of whole sessions, a projection, metrics and persona cards.

Every setting is computed on the server by ``ml.segment_runs.segment_run`` and kept
per setting, so moving a slider back is instant. The silhouette-by-k curve, the
projection and the default eps are computed once per data set (at start-up).
A button on each segment stores that segment's typical early session in
``APP_SEGMENT_STORE`` and opens the what-if tab.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, ctx, dcc, html, no_update

from dashboard import ids
from dashboard.components import GRAPH_CONFIG, graph_panel
from dashboard.context import AppContext
from dashboard.figures.segments import metric_tiles, projection_figure, segment_cards, silhouette_figure
from dashboard.tabs.whatif import TAB_ID as WHATIF_TAB_ID
from ml.config import BUNDLED_DATASET_KEY
from ml.features.labels import TARGET_BASKET, TARGET_CONVERTED
from ml.models.segment_runs import (
    DISPLAY_POINTS,
    EXPLORE_K_RANGE,
    SegmentRun,
    SegmentSetting,
    segment_base,
    segment_run,
)
from ml.models.segments import DEFAULT_MIN_SAMPLES, SILHOUETTE_SAMPLE

TAB_ID = "segments"
LABEL = "Segments"
USES_FILTERS = False

KMEANS, DBSCAN = "kmeans", "dbscan"
SETTING_KEYS = ("method", "k", "eps", "min_samples")  # carried in each button's ID (see open_button_id)
EPS_RANGE = (0.3, 3.0, 0.05)
MIN_SAMPLES_RANGE = (5, 100)


# ---------------------------------------------------------------- settings and views (callback bodies)
def default_eps(context: AppContext) -> float:
    """The k-distance eps of the data, on the slider's grid."""
    low, high, step = EPS_RANGE
    eps = segment_base(context.data, context.settings.seed).default_eps
    return round(min(max(round(eps / step) * step, low), high), 2)


def setting_from_inputs(
    context: AppContext, method: str | None, k: int | None, eps: float | None, min_samples: int | None
) -> SegmentSetting:
    """The setting the controls describe; anything missing falls back to the defaults."""
    if method == DBSCAN:
        return SegmentSetting.dbscan(eps or default_eps(context), min_samples or DEFAULT_MIN_SAMPLES)
    return SegmentSetting.kmeans(k or segment_base(context.data, context.settings.seed).best_k)


def run_for(context: AppContext, setting: SegmentSetting) -> SegmentRun:
    return segment_run(context.data, setting, context.settings.window, context.settings.seed)


def segments_view(context: AppContext, setting: SegmentSetting) -> tuple:
    """Everything a setting shows (the body of the main callback)."""
    run = run_for(context, setting)
    base = segment_base(context.data, context.settings.seed)
    sessions, definition = context.data.sessions, context.data.definition
    overall_rate = float(sessions[TARGET_CONVERTED].mean())
    cards, others = segment_cards(run, overall_rate, definition.title)
    kind = "proxies" if definition.is_proxy else "from the input file"
    note = (
        f"{run.note}. Computed in {run.seconds:.2f} s and kept for this setting. "
        f"Conversion and revenue are {kind}; all sessions: {overall_rate:.1%} converted, "
        f"${sessions[TARGET_BASKET].mean():,.2f} potential revenue per session."
    )
    current_k = setting.k if setting.method == KMEANS else None
    return (
        projection_figure(run.display, run.profiles["persona"].to_dict(), base.explained),
        silhouette_figure(base.silhouette_by_k, base.best_k, current_k),
        metric_tiles(run),
        note,
        cards,
        others,
    )


def whatif_choice(context: AppContext, setting: SegmentSetting, segment: int) -> dict[str, object] | None:
    """The small JSON the what-if tab starts from: the segment, its persona and typical early session."""
    run = run_for(context, setting)
    if segment not in run.profiles.index or run.typical[segment] is None:
        return None
    row = run.profiles.loc[segment]
    return {
        "method": setting.method,
        "params": setting.params,
        "segment": int(segment),
        "persona": str(row.persona),
        "sessions": int(row.sessions),
        "window": run.window,
        "typical": run.typical[segment],
    }


def open_whatif(context: AppContext, trigger: dict | None) -> tuple:
    """Store the clicked segment's choice and switch to the what-if tab.

    ``trigger`` is the button that fired: ``{"id": open_button_id(...), "value": n_clicks}``.
    Buttons that just appeared (or went) with the cards fire with ``n_clicks`` None; they change nothing.
    """
    if not trigger or not trigger.get("value"):
        return no_update, no_update
    button = trigger["id"]
    setting = SegmentSetting(button["method"], button["k"], button["eps"], button["min_samples"])
    choice = whatif_choice(context, setting, int(button["segment"]))
    if choice is None:
        return no_update, no_update
    return choice, WHATIF_TAB_ID


def control_styles(method: str | None) -> tuple[dict, dict]:
    hidden = {"display": "none"}
    return (hidden, {}) if method == DBSCAN else ({}, hidden)


# ---------------------------------------------------------------- layout
def _slider(component_id: str, label: str, slider: dcc.Slider, hint: str) -> html.Div:
    return html.Div(
        [
            dbc.Label(label, html_for=component_id, className="small fw-semibold mb-0"),
            slider,
            html.Div(hint, className="small text-muted"),
        ],
        className="mb-2",
    )


def controls(context: AppContext) -> dbc.Card:
    base = segment_base(context.data, context.settings.seed)
    k_low, k_high = EXPLORE_K_RANGE
    eps_low, eps_high, eps_step = EPS_RANGE
    ms_low, ms_high = MIN_SAMPLES_RANGE
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
        value=default_eps(context),
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
    method = dbc.RadioItems(
        id=ids.SEGMENTS_METHOD,
        options=[{"label": "K-Means", "value": KMEANS}, {"label": "DBSCAN", "value": DBSCAN}],
        value=KMEANS,
        inline=True,
        className="mb-2",
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
                f"default {default_eps(context):g}: median distance to the {DEFAULT_MIN_SAMPLES}th neighbour",
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
    return dbc.Card(
        [
            dbc.CardHeader(html.H6("Segmentation", className="mb-0")),
            dbc.CardBody([method, kmeans_controls, dbscan_controls]),
        ],
        className="mb-2 segment-controls",
    )


def layout(context: AppContext, key: str = BUNDLED_DATASET_KEY) -> html.Div:
    n_sessions = len(context.data.sessions)
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
                        [controls(context), dcc.Loading(dbc.Row(id=ids.SEGMENTS_METRICS, className="g-2"), **loading)],
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
        ]
    )


# ---------------------------------------------------------------- callbacks
def register_callbacks(app, context: AppContext) -> None:
    # Silhouette by k, the projection and the default eps are built on the first visit to the tab
    # (about 2 s on the bundled data, behind the tab's loading indicator) and kept; building them at
    # start-up would push the first page past 5 s.

    @app.callback(
        Output(ids.SEGMENTS_PROJECTION_GRAPH, "figure"),
        Output(ids.SEGMENTS_SILHOUETTE_GRAPH, "figure"),
        Output(ids.SEGMENTS_METRICS, "children"),
        Output(ids.SEGMENTS_NOTE, "children"),
        Output(ids.SEGMENTS_CARDS, "children"),
        Output(ids.SEGMENTS_OTHERS, "children"),
        Input(ids.SEGMENTS_METHOD, "value"),
        Input(ids.SEGMENTS_K, "value"),
        Input(ids.SEGMENTS_EPS, "value"),
        Input(ids.SEGMENTS_MIN_SAMPLES, "value"),
    )
    def update_segments(method, k, eps, min_samples):
        return segments_view(context, setting_from_inputs(context, method, k, eps, min_samples))

    app.callback(
        Output(ids.SEGMENTS_KMEANS_CONTROLS, "style"),
        Output(ids.SEGMENTS_DBSCAN_CONTROLS, "style"),
        Input(ids.SEGMENTS_METHOD, "value"),
    )(control_styles)

    @app.callback(
        Output(ids.APP_SEGMENT_STORE, "data", allow_duplicate=True),
        Output(ids.APP_TABS, "active_tab", allow_duplicate=True),
        Input({"type": ids.SEGMENTS_OPEN_WHATIF, "segment": ALL, **dict.fromkeys(SETTING_KEYS, ALL)}, "n_clicks"),
        prevent_initial_call=True,
    )
    def open_in_whatif(n_clicks):
        trigger = {"id": ctx.triggered_id, "value": ctx.triggered[0]["value"]} if ctx.triggered_id else None
        return open_whatif(context, trigger)
