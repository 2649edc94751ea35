"""What-if tab: move a visitor's first clicks and watch P(convert), basket value and revenue follow.

The inputs are generated from the metadata saved with the chosen classifier,
so they are bounded and stepped as the training data was. Three callbacks:

1. the model list (on opening the tab and when a training job lands) — the
   only place the registry is read;
2. the controls, rebuilt from a starting point (typical session, a segment
   chosen on the segments tab, a real session) when the model, the starting
   point or Reset changes;
3. the live update on every input change: one model call for P, the
   contributions and the sensitivity line, plus the basket-value model.
"""

from __future__ import annotations

import json
import logging
import threading

import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import ALL, MATCH, Input, Output, State, ctx, dcc, html, no_update

from dashboard import ids
from dashboard.components import error_alert, graph_panel
from dashboard.context import AppContext
from dashboard.figures.style import empty_figure
from dashboard.figures.whatif import probability_figure, sensitivity_figure, waterfall_figure
from dashboard.tabs.whatif.inputs import feature_input, number_box_view
from dashboard.view_cache import ViewCache, figure_json
from ml.config import BUNDLED_DATASET_KEY, VIEW_CACHE_SIZE
from ml.models.capacity import at_share, share_at_or_above
from ml.serving.whatif import (
    PreparedModels,
    WhatIfModel,
    WhatIfPrediction,
    clip_values,
    format_value,
    predict,
    session_start,
    typical_values,
)

log = logging.getLogger(__name__)

TAB_ID = "whatif"
LABEL = "What-if"
USES_FILTERS = False
TRAIN_TAB_HREF = "?tab=leaderboard"  # the Train panel lives on the leaderboard tab

START_TYPICAL = "typical"
START_SEGMENT = "segment"
START_SESSION = "session"
START_OPTIONS = (
    (START_TYPICAL, "Typical session"),
    (START_SEGMENT, "Segment"),
    (START_SESSION, "Real session"),
)
DEFAULT_SENSITIVITY = "w_price_mean"
HIDDEN = {"display": "none"}


DEFAULT_CAPACITY = 10  # percent


def prepared_models(context: AppContext, key: str = BUNDLED_DATASET_KEY) -> PreparedModels:
    """The what-if models of one dataset, loading runs through that dataset's model cache."""
    return PreparedModels(context.registry_for(key), context.registry_for(key).loaded)


class ModelsByDataset:
    """One ``PreparedModels`` per dataset, made on first use (a dataset's models are its own), with its answers."""

    def __init__(self, context: AppContext) -> None:
        self.context = context
        self._by_key: dict[str, tuple[PreparedModels, Answers]] = {}

    def __call__(self, dataset: object) -> PreparedModels:
        return self._of(dataset)[0]

    def answers(self, dataset: object) -> Answers:
        """The memo of what-if updates of a dataset's models."""
        return self._of(dataset)[1]

    def _of(self, dataset: object) -> tuple[PreparedModels, Answers]:
        key = self.context.known(dataset)
        if key not in self._by_key:
            answers = Answers(self.context.settings.view_cache_size)  # slider moves come back to a position
            self._by_key[key] = (prepared_models(self.context, key), answers)
        return self._by_key[key]


# ---------------------------------------------------------------- views (callback bodies)
def model_choices_view(models: PreparedModels, current: str | None) -> tuple:
    """Options and value of the model selector; the "train first" message when there is none."""
    runs, champion = models.classifiers()
    if not runs:
        message = dbc.Alert(
            [
                html.H5("No trained model yet", className="alert-heading"),
                html.P(
                    [
                        "The what-if view needs a trained classifier. Train one with the Train panel on the Model "
                        "leaderboard tab, or run ",
                        html.Code("python -m ml train"),
                        " and reload.",
                    ],
                    className="mb-2",
                ),
                dcc.Link("Go to training on the Model leaderboard →", href=TRAIN_TAB_HREF, className="alert-link"),
            ],
            color="warning",
        )
        return [], None, message, HIDDEN
    star = {champion.run_id: " ★ champion"} if champion else {}
    options = [
        {
            "label": f"{r.metadata.get('title', r.model)} · AUC {r.metric('roc_auc'):.3f} · "  # held-out ROC-AUC
            f"k={r.metadata.get('window')}{star.get(r.run_id, '')}",
            "value": r.run_id,
        }
        for r in runs
    ]
    value = current if current in {r.run_id for r in runs} else (champion or runs[0]).run_id
    return options, value, None, {}


def _segment_note(segment: dict, model: WhatIfModel, app_window: int) -> list:
    method = {"kmeans": "K-Means", "dbscan": "DBSCAN"}.get(str(segment.get("method")), str(segment.get("method")))
    size = f", {int(segment['sessions']):,} sessions" if segment.get("sessions") is not None else ""
    name = f"segment {segment.get('segment')} · {segment.get('persona')} ({method}{size})"
    note = [html.Strong(f"Starting from {name}"), ": the typical first clicks of its sessions."]
    window = int(segment.get("window") or app_window)
    if window != model.window:
        note.append(
            f" Its typical session was built from the first {window} clicks and this model reads "
            f"{model.window}: compare with care."
        )
    return note


def start_values(
    context: AppContext,
    model: WhatIfModel,
    mode: str | None,
    session_id: object,
    segment: dict | None,
    key: str = BUNDLED_DATASET_KEY,
) -> tuple[dict, list, str]:
    """Control values for a starting point, what to say about it, and the alert colour."""
    typical = typical_values(model.controls)
    if mode == START_SEGMENT:
        if not segment or not segment.get("typical"):
            return (
                typical,
                ["No segment chosen yet: pick one on the Segments tab. Showing the typical session."],
                "warning",
            )
        return {**typical, **segment["typical"]}, _segment_note(segment, model, context.settings.window), "info"
    if mode == START_SESSION:
        if session_id in (None, ""):
            return typical, ["Type a session ID and press Load. Showing the typical session."], "secondary"
        found = session_start(context.dataset(key), model.window, session_id)
        if found.values is None:
            return typical, [found.message, " Showing the typical session."], "warning"
        return found.values, [html.Strong(found.message)], "info"
    return typical, ["Starting from the typical session in training: the median number, the most common code."], "light"


def model_info(model: WhatIfModel, app_window: int) -> list:
    regressor = model.regressor
    basket = (
        f"basket value from {regressor.metadata.get('title', regressor.info.model)} "
        f"(held-out R² {regressor.info.metric('r2'):.2f}, shown as its held-out range)"
        if regressor
        else f"no basket-value model trained with a {model.window}-click window, so no basket value or revenue"
    )
    info: list = [
        html.Strong(model.title),
        f" · held-out ROC-AUC {model.roc_auc:.3f} · reads the first {model.window} clicks · "
        f"threshold {model.threshold:.1%} (max F1 on out-of-fold predictions) · {basket} · run {model.run_id}",
    ]
    if model.window != app_window:
        info.append(html.Div(f"This model reads {model.window} clicks; the app's observation window is {app_window}."))
    return info


def controls_view(
    context: AppContext,
    models: PreparedModels,
    run_id: str | None,
    mode: str | None,
    session_id: object,
    segment: dict | None,
    sensitivity: str | None,
    key: str = BUNDLED_DATASET_KEY,
) -> tuple:
    """Inputs for the chosen model and starting point, the start note, model facts, sensitivity options."""
    session_style = {} if mode == START_SESSION else HIDDEN
    if not run_id:
        return [], None, None, [], None, session_style
    try:
        model = models.get(run_id)
        values, note, colour = start_values(context, model, mode, session_id, segment, key)
    except Exception as exc:  # a broken artifact or a bug: say so, keep the app running
        log.exception("what-if: cannot prepare run %s", run_id)
        return [], error_alert(str(exc), "This model cannot be used"), None, [], None, session_style
    values, clipped = clip_values(model.controls, values)
    if clipped:
        note = [*note, f" Outside this model's training range, so clipped: {_labels(model, clipped)}."]
    codes_first = sorted(model.controls, key=lambda c: c.is_numeric)
    inputs = [feature_input(c, values[c.name]) for c in codes_first]
    options = [{"label": c.label, "value": c.name} for c in model.controls]
    names = {c.name for c in model.controls}
    chosen = sensitivity if sensitivity in names else (DEFAULT_SENSITIVITY if DEFAULT_SENSITIVITY in names else None)
    start_note = dbc.Alert(note, color=colour, className="small mb-0 py-2")
    return inputs, start_note, model_info(model, context.settings.window), options, chosen, session_style


def _labels(model: WhatIfModel, names: tuple[str, ...]) -> str:
    return ", ".join(model.control(n).label for n in names)


def money_range(low: float, high: float) -> str:
    """A dollar range rounded to what the estimate can carry: "$40 – $120"."""
    return f"${low:,.0f} – ${high:,.0f}"


def basket_texts(model: WhatIfModel, result: WhatIfPrediction) -> tuple[str, str]:
    """Basket value and expected revenue as ranges from the regressor's held-out residuals, or why there is none."""
    if result.basket is None:
        return "no basket model", "needs a basket model"
    interval = model.basket_interval
    span = result.basket_range(interval)
    if span is None:  # a run saved before intervals: the point value, rounded
        return f"≈ ${result.basket:,.0f}", f"≈ ${result.expected_revenue:,.0f}"
    return money_range(*span), money_range(result.p * span[0], result.p * span[1])


def capacity_text(model: WhatIfModel, p: float, percent: float | None) -> list:
    """Where this P ranks among held-out sessions, and whether a top-N% capacity rule would contact it."""
    table = model.capacity
    if not table:
        return ["This run has no held-out capacity table (saved by newer training runs); retrain to see it."]
    rank = share_at_or_above(table, p)
    share = float(percent or DEFAULT_CAPACITY) / 100
    row = at_share(table, share)
    contacted = p >= row["threshold"]
    ranked = f"top {rank:.0%}" if rank < 1 else "bottom part"
    return [
        html.Div(
            [
                "This P is in the ",
                html.Strong(ranked, **{"data-capacity": "rank"}),
                f" of the {table['sessions']:,} held-out sessions.",
            ]
        ),
        html.Div(
            [
                f"Targeting the top {row['share']:.0%} contacts sessions with P ≥ {row['threshold']:.1%}: this one ",
                html.Strong("would be contacted" if contacted else "would not be contacted"),
                f". On held-out sessions that flags {row['flagged']:,}, with {row['converted']:,} conversions "
                f"expected (precision {row['precision']:.1%}, lift {row['lift']:.2f}× over the "
                f"{row['base_rate']:.1%} base rate).",
            ],
            className="text-muted",
        ),
    ]


def update_view(
    models: PreparedModels,
    run_id: str | None,
    values: dict,
    sensitivity: str | None,
    capacity: float | None = None,
    answers: Answers | None = None,
) -> tuple:
    """Everything that follows the inputs: P, verdict, gauge, basket, revenue, clip note, figures, method, capacity.

    With ``answers`` (the app's memo of updates per model) an update asked for
    before is returned as it was, its figures as JSON-ready dicts; only
    successful updates are kept.
    """
    if not run_id or not values:
        blank = empty_figure("")
        return "–", "", blank, "–", "–", None, blank, "", blank, []
    try:
        model = models.get(run_id)
        if answers is None:
            return _update_outputs(model, values, sensitivity, capacity)
        key = json.dumps([values, sensitivity, capacity], sort_keys=True, default=str)

        def build() -> tuple:
            return _json_figures(_update_outputs(model, values, sensitivity, capacity))

        return answers.of(model).get(key, build)
    except Exception as exc:  # a broken artifact or a bug: say so, keep the app running
        log.exception("what-if: update failed for run %s", run_id)
        blank = empty_figure("")
        return "–", "", blank, "–", "–", error_alert(str(exc)), blank, "", blank, []


class Answers:
    """Updates already answered, per prepared what-if model (a bounded memo each; see ``dashboard.view_cache``).

    A model prepared anew (a new registry version) gets a new, empty memo.
    """

    def __init__(self, size: int = VIEW_CACHE_SIZE) -> None:
        self.size = size
        self._by_run: dict[str, tuple[WhatIfModel, ViewCache]] = {}
        self._lock = threading.Lock()

    def of(self, model: WhatIfModel) -> ViewCache:
        with self._lock:
            kept = self._by_run.get(model.run_id)
            if kept is None or kept[0] is not model:
                kept = self._by_run[model.run_id] = (model, ViewCache(self.size))
            return kept[1]


def _json_figures(outputs: tuple) -> tuple:
    return tuple(figure_json(o) if isinstance(o, go.Figure) else o for o in outputs)


def _update_outputs(model: WhatIfModel, values: dict, sensitivity: str | None, capacity: float | None) -> tuple:
    result = predict(model, values, sensitivity)
    side = "above" if result.predicted else "below"
    verdict = f"{side} the threshold of {result.threshold:.1%}: {'' if result.predicted else 'un'}likely to convert"
    basket, revenue = basket_texts(model, result)
    clip_note = None
    if result.clipped:
        text = f"Clipped to the training range: {_labels(model, result.clipped)}."
        clip_note = dbc.Alert(text, color="warning", className="small py-1")
    labels = {c.name: f"{c.label} = {format_value(c, result.values[c.name])}" for c in model.controls}
    waterfall = waterfall_figure(result.contributions, labels, result.threshold)
    line = sensitivity_figure(result.sensitivity, result.threshold) if result.sensitivity else empty_figure("")
    gauge = probability_figure(result.p, result.threshold)
    method = (
        f"Contributions: {result.contributions.description}; drawn as percentage points of P, "
        "largest first (each bar is the change of P when that input is added to the ones above it)."
    )
    capacity_note = capacity_text(model, result.p, capacity)
    return f"{result.p:.1%}", verdict, gauge, basket, revenue, clip_note, waterfall, method, line, capacity_note


def start_mode(segment: dict | None, current: str | None, segment_arrived: bool) -> str:
    """The starting point: a segment just chosen on the segments tab wins; otherwise keep the user's."""
    if segment_arrived and segment and segment.get("typical"):
        return START_SEGMENT
    return current or START_TYPICAL


# ---------------------------------------------------------------- layout
def _result_card(title: str, value_id: str, note: object, extra: object = None) -> dbc.Card:
    body = [html.Div(title, className="kpi-title text-muted"), html.Div("–", id=value_id, className="kpi-value")]
    return dbc.Card(
        dbc.CardBody([*body, extra, html.Div(note, className="small text-muted")]), className="kpi-card h-100"
    )


def _labelled(label: str, component: object, **col: object) -> dbc.Col:
    return dbc.Col([dbc.Label(label, className="small mb-0"), component], **col)


def _start_bar() -> dbc.Card:
    """Model selector, starting point (with the session-ID box) and Reset; model facts and the start note."""
    starts = dbc.RadioItems(
        id=ids.WHATIF_START_RADIO,
        options=[{"label": text, "value": key} for key, text in START_OPTIONS],
        value=START_TYPICAL,
        inline=True,
        className="small",
    )
    session = dbc.InputGroup(
        [
            dbc.Input(id=ids.WHATIF_SESSION_INPUT, placeholder="session ID, e.g. 2", type="text"),
            dbc.Button("Load", id=ids.WHATIF_SESSION_BUTTON, color="primary"),
        ],
        id=ids.WHATIF_SESSION_ROW,
        size="sm",
        style=HIDDEN,
    )
    reset = dbc.Button("Reset", id=ids.WHATIF_RESET_BUTTON, color="secondary", outline=True, size="sm")
    row = dbc.Row(
        [
            _labelled("Model", dcc.Dropdown(id=ids.WHATIF_MODEL_DROPDOWN, clearable=False), lg=5),
            _labelled("Start from", starts, lg=4),
            dbc.Col(session, lg=2),
            dbc.Col(reset, lg=1, className="text-lg-end"),
        ],
        className="g-2 align-items-end",
    )
    notes = [html.Div(id=ids.WHATIF_MODEL_INFO, className="small text-muted mt-2"), html.Div(id=ids.WHATIF_START_NOTE)]
    return dbc.Card(dbc.CardBody([row, *notes]), className="mb-3")


def _results(title: str) -> dbc.Row:
    gauge = dcc.Graph(
        id=ids.WHATIF_PROBABILITY_GRAPH,
        config={"displayModeBar": False},
        style={"height": "70px"},
        figure=empty_figure(""),
    )
    verdict = html.Span(id=ids.WHATIF_VERDICT_TEXT)
    basket = _result_card(
        "Predicted basket value", ids.WHATIF_BASKET_TEXT, "if it converts (USD; 80% range of held-out errors)"
    )
    revenue = _result_card("Expected revenue", ids.WHATIF_REVENUE_TEXT, "P(convert) × basket value (range)")
    return dbc.Row(
        [
            dbc.Col(_result_card(f"P(convert) · {title}", ids.WHATIF_PROBABILITY_TEXT, verdict, gauge), md=6),
            dbc.Col(basket, md=3),
            dbc.Col(revenue, md=3),
        ],
        className="g-2 mb-2",
    )


def _capacity_card() -> dbc.Card:
    slider = dcc.Slider(
        id=ids.WHATIF_CAPACITY_SLIDER,
        min=1,
        max=100,
        step=1,
        value=DEFAULT_CAPACITY,
        marks={p: f"{p}%" for p in (1, 10, 25, 50, 100)},
        tooltip={"placement": "bottom", "template": "top {value}%"},
    )
    return dbc.Card(
        dbc.CardBody(
            [
                dbc.Label(
                    "Decision by capacity: target the top N% of sessions",
                    html_for=ids.WHATIF_CAPACITY_SLIDER,
                    className="small fw-semibold mb-0",
                ),
                slider,
                html.Div(id=ids.WHATIF_CAPACITY_TEXT, className="small", **{"aria-live": "polite"}),
            ],
            className="py-2",
        ),
        className="mb-2",
    )


def layout(context: AppContext, key: str = BUNDLED_DATASET_KEY) -> html.Div:
    inputs = dbc.Card(
        [
            dbc.CardHeader(html.H6("The visitor's first clicks", className="mb-0")),
            dbc.CardBody(html.Div(id=ids.WHATIF_CONTROLS)),
        ]
    )
    sensitivity = dcc.Dropdown(id=ids.WHATIF_SENSITIVITY_DROPDOWN, clearable=False, className="whatif-sensitivity")
    waterfall_note = (
        "percentage points of P(convert) from the base to this session; green bars raise P, vermillion bars lower it"
    )
    sensitivity_note = "P(convert) across one input, the others held at this session's values"
    outputs = [
        _results(context.dataset(key).definition.title),
        _capacity_card(),
        html.Div(id=ids.WHATIF_CLIP_NOTE),
        html.Div(
            graph_panel(ids.WHATIF_WATERFALL_GRAPH, "Why this P: what each input adds", waterfall_note, height=520)
        ),
        html.Div(id=ids.WHATIF_METHOD_NOTE, className="small text-muted mt-1 mb-3"),
        html.Div(graph_panel(ids.WHATIF_SENSITIVITY_GRAPH, "Sensitivity", sensitivity_note, sensitivity, height=300)),
    ]
    body = html.Div([_start_bar(), dbc.Row([dbc.Col(inputs, lg=5), dbc.Col(outputs, lg=7)], className="g-3")])
    return html.Div([html.Div(id=ids.WHATIF_EMPTY), html.Div(body, id=ids.WHATIF_BODY)])


# ---------------------------------------------------------------- callbacks
MODEL_OUTPUTS = (
    (ids.WHATIF_MODEL_DROPDOWN, "options"),
    (ids.WHATIF_MODEL_DROPDOWN, "value"),
    (ids.WHATIF_EMPTY, "children"),
    (ids.WHATIF_BODY, "style"),
    (ids.WHATIF_START_RADIO, "value"),
)
CONTROL_OUTPUTS = (
    (ids.WHATIF_CONTROLS, "children"),
    (ids.WHATIF_START_NOTE, "children"),
    (ids.WHATIF_MODEL_INFO, "children"),
    (ids.WHATIF_SENSITIVITY_DROPDOWN, "options"),
    (ids.WHATIF_SENSITIVITY_DROPDOWN, "value"),
    (ids.WHATIF_SESSION_ROW, "style"),
)
UPDATE_OUTPUTS = (
    (ids.WHATIF_PROBABILITY_TEXT, "children"),
    (ids.WHATIF_VERDICT_TEXT, "children"),
    (ids.WHATIF_PROBABILITY_GRAPH, "figure"),
    (ids.WHATIF_BASKET_TEXT, "children"),
    (ids.WHATIF_REVENUE_TEXT, "children"),
    (ids.WHATIF_CLIP_NOTE, "children"),
    (ids.WHATIF_WATERFALL_GRAPH, "figure"),
    (ids.WHATIF_METHOD_NOTE, "children"),
    (ids.WHATIF_SENSITIVITY_GRAPH, "figure"),
    (ids.WHATIF_CAPACITY_TEXT, "children"),
)


def register_callbacks(app, context: AppContext) -> None:
    models_of = ModelsByDataset(context)

    @app.callback(
        [Output(i, p) for i, p in MODEL_OUTPUTS],
        Input(ids.APP_MODELS_STORE, "data"),
        Input(ids.APP_SEGMENT_STORE, "data"),
        State(ids.WHATIF_MODEL_DROPDOWN, "value"),
        State(ids.WHATIF_START_RADIO, "value"),
        State(ids.APP_DATASET_STORE, "data"),
    )
    def refresh_models(_version, segment, current, mode, dataset):
        arrived = ctx.triggered_id in (None, ids.APP_SEGMENT_STORE)  # None: the tab just opened
        return (*model_choices_view(models_of(dataset), current), start_mode(segment, mode, arrived))

    @app.callback(
        [Output(i, p) for i, p in CONTROL_OUTPUTS],
        Input(ids.WHATIF_MODEL_DROPDOWN, "value"),
        Input(ids.WHATIF_START_RADIO, "value"),
        Input(ids.WHATIF_RESET_BUTTON, "n_clicks"),
        Input(ids.WHATIF_SESSION_BUTTON, "n_clicks"),
        Input(ids.WHATIF_SESSION_INPUT, "n_submit"),
        Input(ids.APP_SEGMENT_STORE, "data"),
        State(ids.WHATIF_SESSION_INPUT, "value"),
        State(ids.WHATIF_SENSITIVITY_DROPDOWN, "value"),
        State(ids.APP_DATASET_STORE, "data"),
    )
    def build_controls(run_id, mode, _reset, _load, _submit, segment, session_id, sensitivity, dataset):
        key = context.known(dataset)
        return controls_view(context, models_of(key), run_id, mode, session_id, segment, sensitivity, key)

    @app.callback(
        [Output(i, p) for i, p in UPDATE_OUTPUTS],
        Input(ids.whatif_feature(ALL), "value"),
        Input(ids.WHATIF_SENSITIVITY_DROPDOWN, "value"),
        Input(ids.WHATIF_CAPACITY_SLIDER, "value"),
        State(ids.WHATIF_MODEL_DROPDOWN, "value"),
        State(ids.APP_DATASET_STORE, "data"),
    )
    def update(_values, sensitivity, capacity, run_id, dataset):
        values = {item["id"]["name"]: item["value"] for item in ctx.inputs_list[0]}
        return update_view(models_of(dataset), run_id, values, sensitivity, capacity, models_of.answers(dataset))

    @app.callback(
        Output(ids.whatif_feature(MATCH), "value"),
        Output(ids.whatif_number(MATCH), "value"),
        Output(ids.whatif_number_note(MATCH), "children"),
        Output(ids.whatif_number(MATCH), "invalid"),
        Input(ids.whatif_number(MATCH), "n_submit"),
        Input(ids.whatif_feature(MATCH), "value"),
        State(ids.whatif_number(MATCH), "value"),
        State(ids.whatif_feature(MATCH), "min"),
        State(ids.whatif_feature(MATCH), "max"),
        State(ids.whatif_feature(MATCH), "step"),
        prevent_initial_call=True,
    )
    def number_box(_submit, slider_value, text, minimum, maximum, step):
        by_box = isinstance(ctx.triggered_id, dict) and ctx.triggered_id.get("type") == "whatif-number"
        value, shown, note, invalid = number_box_view(by_box, text, slider_value, minimum, maximum, step)
        return (no_update if value is None else value), shown, note, invalid
