"""Model leaderboard tab: sortable leaderboards per task, curves of the chosen model, and the Train panel.

Every view reads the active dataset's registry (``ids.APP_DATASET_STORE``)
through the app context's snapshot of it (metadata and curve data read once
per run, never a pipeline), and re-reads it whenever ``APP_MODELS_STORE``
changes, so a training job's models appear without a reload. Beside the
decision threshold, a capacity rule ("target the top N% of sessions") shows
what it flags, converts, and lifts on the held-out sessions. A run that cannot
be read shows as an alert naming its file.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import Input, Output, State, dcc, html, no_update

from dashboard import ids
from dashboard.components import GRAPH_CONFIG, error_alert, graph_panel
from dashboard.context import AppContext
from dashboard.figures.leaderboard import (
    calibration_figure,
    confusion_figure,
    gains_figure,
    importance_figure,
    pr_figure,
    predicted_actual_figure,
    residuals_figure,
    roc_figure,
)
from dashboard.figures.style import empty_figure
from dashboard.tabs.leaderboard.data import (
    CapacityView,
    ThresholdView,
    broken_runs,
    capacity_view,
    classifier_series,
    default_selection,
    feature_labels,
    grid_rows,
    load_curves,
    note_items,
    readable_run,
    setup_warnings,
    threshold_view,
    training_setup,
)
from dashboard.tabs.leaderboard.grid import column_defs, grid_height, leaderboard_grid, run_options
from ml.config import BUNDLED_DATASET_KEY
from ml.serving.registry_cache import RegistryCache
from ml.tasks import CLASSIFICATION, CLUSTERING, REGRESSION

TAB_ID = "leaderboard"
LABEL = "Model leaderboard"
USES_FILTERS = False

HIDDEN = {"display": "none"}
SHOWN: dict = {}
GRIDS = {
    CLASSIFICATION: (ids.LEADERBOARD_CLASSIFICATION_GRID, ids.LEADERBOARD_CLASSIFICATION_CARD),
    REGRESSION: (ids.LEADERBOARD_REGRESSION_GRID, ids.LEADERBOARD_REGRESSION_CARD),
    CLUSTERING: (ids.LEADERBOARD_CLUSTERING_GRID, ids.LEADERBOARD_CLUSTERING_CARD),
}
SELECTORS = {
    CLASSIFICATION: (ids.LEADERBOARD_CLASSIFIER_DROPDOWN, ids.LEADERBOARD_CLASSIFIER_SECTION),
    REGRESSION: (ids.LEADERBOARD_REGRESSOR_DROPDOWN, ids.LEADERBOARD_REGRESSOR_SECTION),
}
CARD_TITLES = {
    CLASSIFICATION: ("Classifiers: P(convert)", "will the session convert after its first k clicks"),
    REGRESSION: ("Basket value regressors", "potential revenue of a converting session, USD"),
    CLUSTERING: ("Segment models", "behavioural segments of whole sessions; no label, so no held-out split"),
}
EMPTY_TEXT = "Train them on this dataset with the panel above: pick the models, keep Quick, and press Train."
DEFAULT_CAPACITY = 10  # percent of sessions


# ---------------------------------------------------------------- views (callback bodies)
def summary_view(registry: RegistryCache, history: bool = False) -> tuple[list, dict, list]:
    """Alerts (no models, unreadable runs, mixed windows or labels), the content's visibility, the note."""
    if not registry.runs():
        return [dbc.Alert([html.Strong("No models yet. "), EMPTY_TEXT], color="info")], HIDDEN, []
    setup = training_setup(registry)
    alerts = [error_alert(text, "A saved run cannot be read") for text in broken_runs(registry, history)]
    alerts += [dbc.Alert(text, color="warning") for text in setup_warnings(setup)]
    return alerts, SHOWN, [html.Li([html.Strong(head), text]) for head, text in note_items(setup)]


def table_view(registry: RegistryCache, task: str, history: bool, current: str | None = None) -> tuple:
    """Rows, columns, height, card and section visibility, and dropdown options and value for one task."""
    rows = grid_rows(registry, task, history)
    grid_style = {"height": grid_height(rows, grouped=task != CLUSTERING), "width": "100%"}
    readable = any(not r.get("problem") for r in rows)
    return (
        rows,
        column_defs(task, rows),
        grid_style,
        SHOWN if rows else HIDDEN,
        SHOWN if readable else HIDDEN,
        run_options(rows),
        default_selection(rows, current),
    )


def _alert(problem: str | None, title: str) -> object:
    return error_alert(problem, title) if problem else html.Div()


def classifier_view(registry: RegistryCache, run_id: str | None) -> tuple:
    """ROC and PR of every classifier in use (the chosen one highlighted), calibration, gains, importance."""
    run, problem = readable_run(registry, run_id)
    if run is None:
        blank = empty_figure("Choose a classifier")
        return blank, blank, blank, blank, blank, _alert(problem, "This run cannot be read"), 0.5, {}
    series, problems = classifier_series(registry, run)
    chosen = next(s for s in series if s.run_id == run.run_id)
    threshold = round(float(run.metadata.get("threshold") or 0.5), 3)
    return (
        roc_figure(series, run.run_id),
        pr_figure(series, run.run_id),
        calibration_figure(chosen.curves, chosen.name),
        gains_figure(chosen.curves, chosen.name),
        importance_figure(run.metadata.get("feature_importance", []), feature_labels(run.metadata), "ROC-AUC"),
        html.Div([error_alert(p, "Curve data cannot be read") for p in problems]),
        threshold,
        {0: "0", 0.5: "0.5", 1: "1", threshold: "saved"},
    )


def threshold_text(view: ThresholdView, saved: float | None) -> list:
    """The live numbers under the confusion matrix."""
    m = view.metrics
    parts = [
        ("Precision", f"{m['precision']:.3f}"),
        ("Recall", f"{m['recall']:.3f}"),
        ("F1", f"{m['f1']:.3f}"),
        ("Accuracy", f"{m['accuracy']:.3f}"),
        ("Flagged", f"{view.flagged_share:.0%}"),
    ]
    saved_text = f" (saved: {saved:.3f}, best F1 on out-of-fold predictions)" if saved is not None else ""
    return [
        html.Div(
            [
                html.Span(
                    [html.Span(f"{name} ", className="text-muted"), html.Strong(value, **{"data-metric": name.lower()})]
                )
                for name, value in parts
            ],
            className="d-flex flex-wrap gap-3",
        ),
        html.Div(
            f"Threshold {view.threshold:.3f}{saved_text} · {view.sessions:,} held-out sessions",
            className="text-muted mt-1",
        ),
    ]


def confusion_view(registry: RegistryCache, run_id: str | None, threshold: float | None) -> tuple:
    """Confusion matrix and precision / recall / F1 at the slider's threshold, from stored predictions."""
    run, _ = readable_run(registry, run_id)
    if run is None or threshold is None:
        return empty_figure("Choose a classifier"), []
    curves, problem = load_curves(registry, run)
    if problem or not (curves.get("predictions") or {}).get("p"):
        return empty_figure("No held-out predictions saved for this run"), problem or ""
    view = threshold_view(curves, float(threshold))
    return confusion_figure(view.counts), threshold_text(view, run.metadata.get("threshold"))


def capacity_text(view: CapacityView | None) -> list:
    """The capacity rule's numbers (held-out), and what the saved threshold flags for comparison."""
    if view is None:
        return [html.Div("No held-out predictions saved for this run.", className="text-muted")]
    c = view.capacity
    parts = [
        ("Flagged", f"{c['flagged']:,} of {view.capacity['sessions']:,}"),
        ("Expected conversions", f"{c['converted']:,}"),
        ("Precision", f"{c['precision']:.1%}"),
        ("Lift", f"{c['lift']:.2f}×"),
    ]
    lines = [
        html.Div(
            [
                html.Span(
                    [
                        html.Span(f"{name} ", className="text-muted"),
                        html.Strong(value, **{"data-capacity": name.lower().replace(" ", "-")}),
                    ]
                )
                for name, value in parts
            ],
            className="d-flex flex-wrap gap-3",
        ),
        html.Div(
            f"Top {c['share']:.0%} by P(convert) = P ≥ {c['threshold']:.3f}; recall {c['recall']:.1%}; "
            f"base rate {c['base_rate']:.1%} (lift = precision ÷ base rate); on {view.source}.",
            className="text-muted mt-1",
        ),
    ]
    rule = view.threshold
    if rule:
        lines.append(
            html.Div(
                f"For comparison, the saved threshold {rule['threshold']:.3f} flags {rule['share']:.0%} of the "
                f"held-out sessions ({rule['flagged']:,}), precision {rule['precision']:.1%}, "
                f"lift {rule['lift']:.2f}×.",
                className="text-muted mt-1",
                **{"data-threshold-rule": "1"},
            )
        )
    return lines


def capacity_panel_view(registry: RegistryCache, run_id: str | None, percent: float | None) -> list:
    """The capacity numbers of the chosen classifier at the slider's share."""
    run, _ = readable_run(registry, run_id)
    if run is None or percent is None:
        return []
    curves, _ = load_curves(registry, run)
    return capacity_text(capacity_view(run.metadata, curves, float(percent) / 100))


def regressor_view(registry: RegistryCache, run_id: str | None) -> tuple:
    """Predicted against actual, residuals and feature importance of the chosen regressor."""
    run, problem = readable_run(registry, run_id)
    if run is None:
        blank = empty_figure("Choose a regressor")
        return blank, blank, blank, _alert(problem, "This run cannot be read")
    curves, problem = load_curves(registry, run)
    name = run.metadata.get("title", run.model)
    return (
        predicted_actual_figure(curves, name),
        residuals_figure(curves, name),
        importance_figure(run.metadata.get("feature_importance", []), feature_labels(run.metadata), "R²"),
        html.Div([_alert(problem, "Curve data cannot be read"), interval_note(run.metadata)]),
    )


def interval_note(metadata: dict) -> html.Div:
    """How wide a basket-value prediction really is: the held-out residual quantiles saved with the run."""
    interval = metadata.get("interval") or {}
    if not interval.get("n"):
        return html.Div()
    r2 = (metadata.get("metrics") or {}).get("test", {}).get("r2")
    skill = f"held-out R² {r2:.2f}; " if r2 is not None else ""
    return html.Div(
        f"{skill}{interval['coverage']:.0%} of held-out baskets fell between the prediction "
        f"{interval['low']:+,.0f} and {interval['high']:+,.0f} USD, so the what-if and scoring show basket values "
        "as that range, not to the cent.",
        className="small text-muted mb-2",
    )


def row_click(click: dict | None) -> str | object:
    """The run id of a clicked grid row."""
    return click["rowId"] if click and click.get("rowId") else no_update


def selection(run_id: str | None) -> dict:
    return {"ids": [run_id] if run_id else []}


# ---------------------------------------------------------------- layout
def task_card(task: str, controls: object = None) -> dbc.Card:
    grid_id, card_id = GRIDS[task]
    title, subtitle = CARD_TITLES[task]
    header = [html.Div([html.H6(title, className="mb-0"), html.Small(subtitle, className="text-muted")])]
    if controls is not None:
        header.append(html.Div(controls, className="ms-auto"))
    best = "best by CV" if task != CLUSTERING else "best silhouette"
    hint = f"Click a column header to sort; ↓ = lower is better; ★ = {best} among the runs in use."
    if task in SELECTORS:
        hint += " Click a row to show its curves below."
    return dbc.Card(
        [
            dbc.CardHeader(header, className="d-flex align-items-center gap-2"),
            dbc.CardBody([leaderboard_grid(grid_id), html.Small(hint, className="text-muted")], className="p-2"),
        ],
        id=card_id,
        className="mb-3",
        style=HIDDEN,
    )


def _selector(task: str, label: str) -> dbc.Row:
    dropdown_id, _ = SELECTORS[task]
    return dbc.Row(
        [
            dbc.Col(html.H5(label, className="mb-0"), width="auto"),
            dbc.Col(dcc.Dropdown(id=dropdown_id, clearable=False, placeholder="Choose a run"), md=5, lg=4),
        ],
        className="align-items-center g-2 mb-2",
    )


def threshold_panel() -> dbc.Card:
    slider = dcc.Slider(
        id=ids.LEADERBOARD_THRESHOLD_SLIDER, min=0, max=1, step=0.01, value=0.5, updatemode="drag", included=False
    )
    capacity = dcc.Slider(
        id=ids.LEADERBOARD_CAPACITY_SLIDER,
        min=1,
        max=100,
        step=1,
        value=DEFAULT_CAPACITY,
        marks={p: f"{p}%" for p in (1, 10, 25, 50, 100)},
        updatemode="drag",
        included=True,
        tooltip={"placement": "bottom", "template": "top {value}%"},
    )
    return dbc.Card(
        [
            dbc.CardHeader(
                [html.H6("Confusion matrix", className="mb-0"), html.Small("held-out sessions", className="text-muted")]
            ),
            dbc.CardBody(
                [
                    dcc.Graph(id=ids.LEADERBOARD_CONFUSION_GRAPH, config=GRAPH_CONFIG, style={"height": "230px"}),
                    dbc.Label("Decision threshold on P(convert)", html_for=ids.LEADERBOARD_THRESHOLD_SLIDER),
                    slider,
                    html.Div(id=ids.LEADERBOARD_THRESHOLD_METRICS, className="small mt-2"),
                    html.Hr(className="my-2"),
                    dbc.Label(
                        "Or by capacity: target the top N% of sessions", html_for=ids.LEADERBOARD_CAPACITY_SLIDER
                    ),
                    capacity,
                    html.Div(id=ids.LEADERBOARD_CAPACITY_METRICS, className="small mt-2", **{"aria-live": "polite"}),
                ],
                className="p-2",
            ),
        ],
        className="h-100",
    )


def classifier_section() -> html.Div:
    return html.Div(
        [
            _selector(CLASSIFICATION, "Classifier"),
            html.Div(id=ids.LEADERBOARD_CLASSIFIER_ALERT),
            dbc.Row(
                [
                    dbc.Col(graph_panel(ids.LEADERBOARD_ROC_GRAPH, "ROC curves", "every classifier in use"), lg=4),
                    dbc.Col(graph_panel(ids.LEADERBOARD_PR_GRAPH, "Precision-recall", "every classifier in use"), lg=4),
                    dbc.Col(threshold_panel(), lg=4),
                ],
                className="g-3 mb-3",
            ),
            dbc.Row(
                [
                    dbc.Col(graph_panel(ids.LEADERBOARD_CALIBRATION_GRAPH, "Calibration", "quantile bins"), lg=4),
                    dbc.Col(graph_panel(ids.LEADERBOARD_GAINS_GRAPH, "Cumulative gains", "lift in the hover"), lg=4),
                    dbc.Col(
                        graph_panel(
                            ids.LEADERBOARD_CLASSIFIER_IMPORTANCE_GRAPH, "Feature importance", "permutation, held-out"
                        ),
                        lg=4,
                    ),
                ],
                className="g-3 mb-3",
            ),
        ],
        id=ids.LEADERBOARD_CLASSIFIER_SECTION,
        style=HIDDEN,
    )


def regressor_section() -> html.Div:
    return html.Div(
        [
            _selector(REGRESSION, "Basket value regressor"),
            html.Div(id=ids.LEADERBOARD_REGRESSOR_ALERT),
            dbc.Row(
                [
                    dbc.Col(graph_panel(ids.LEADERBOARD_ACTUAL_GRAPH, "Predicted vs actual", "held-out"), lg=4),
                    dbc.Col(graph_panel(ids.LEADERBOARD_RESIDUALS_GRAPH, "Residuals", "actual - predicted"), lg=4),
                    dbc.Col(
                        graph_panel(
                            ids.LEADERBOARD_REGRESSOR_IMPORTANCE_GRAPH, "Feature importance", "permutation, held-out"
                        ),
                        lg=4,
                    ),
                ],
                className="g-3 mb-3",
            ),
        ],
        id=ids.LEADERBOARD_REGRESSOR_SECTION,
        style=HIDDEN,
    )


def layout(context: AppContext, key: str = BUNDLED_DATASET_KEY) -> html.Div:
    history = dbc.Switch(
        id=ids.LEADERBOARD_HISTORY, label="Show earlier runs (every table)", value=False, className="mb-0 small"
    )
    return html.Div(
        [
            html.Div(id=ids.LEADERBOARD_SUMMARY),
            html.Div(
                [
                    task_card(CLASSIFICATION, controls=history),
                    classifier_section(),
                    task_card(REGRESSION),
                    regressor_section(),
                    task_card(CLUSTERING),
                    dbc.Card(
                        [
                            dbc.CardHeader(html.H6("What the numbers mean", className="mb-0")),
                            dbc.CardBody(html.Ul(id=ids.LEADERBOARD_NOTE, className="small ps-3 mb-0")),
                        ]
                    ),
                ],
                id=ids.LEADERBOARD_CONTENT,
                style=HIDDEN,
            ),
        ]
    )


# ---------------------------------------------------------------- callbacks
def register_callbacks(app, context: AppContext) -> None:
    def registry(dataset: object) -> RegistryCache:
        return context.registry_for(dataset)

    @app.callback(
        Output(ids.LEADERBOARD_SUMMARY, "children"),
        Output(ids.LEADERBOARD_CONTENT, "style"),
        Output(ids.LEADERBOARD_NOTE, "children"),
        Input(ids.APP_MODELS_STORE, "data"),
        Input(ids.LEADERBOARD_HISTORY, "value"),
        State(ids.APP_DATASET_STORE, "data"),
    )
    def update_summary(_version, history, dataset):
        return summary_view(registry(dataset), bool(history))

    for task, (grid_id, card_id) in GRIDS.items():
        outputs = [
            Output(grid_id, "rowData"),
            Output(grid_id, "columnDefs"),
            Output(grid_id, "style"),
            Output(card_id, "style"),
        ]
        inputs = [Input(ids.APP_MODELS_STORE, "data"), Input(ids.LEADERBOARD_HISTORY, "value")]
        if task not in SELECTORS:

            def update_table(_version, history, dataset, task=task):
                return table_view(registry(dataset), task, bool(history))[:4]

            app.callback(*outputs, *inputs, State(ids.APP_DATASET_STORE, "data"))(update_table)
            continue
        dropdown_id, section_id = SELECTORS[task]

        def update_selectable_table(_version, history, current, dataset, task=task):
            return table_view(registry(dataset), task, bool(history), current)

        app.callback(
            *outputs,
            Output(section_id, "style"),
            Output(dropdown_id, "options"),
            Output(dropdown_id, "value"),
            *inputs,
            State(dropdown_id, "value"),
            State(ids.APP_DATASET_STORE, "data"),
        )(update_selectable_table)
        app.callback(
            Output(dropdown_id, "value", allow_duplicate=True),
            Input(grid_id, "cellClicked"),
            prevent_initial_call=True,
        )(row_click)
        app.callback(Output(grid_id, "selectedRows"), Input(dropdown_id, "value"), Input(grid_id, "rowData"))(
            lambda run_id, _rows: selection(run_id)
        )

    @app.callback(
        Output(ids.LEADERBOARD_ROC_GRAPH, "figure"),
        Output(ids.LEADERBOARD_PR_GRAPH, "figure"),
        Output(ids.LEADERBOARD_CALIBRATION_GRAPH, "figure"),
        Output(ids.LEADERBOARD_GAINS_GRAPH, "figure"),
        Output(ids.LEADERBOARD_CLASSIFIER_IMPORTANCE_GRAPH, "figure"),
        Output(ids.LEADERBOARD_CLASSIFIER_ALERT, "children"),
        Output(ids.LEADERBOARD_THRESHOLD_SLIDER, "value"),
        Output(ids.LEADERBOARD_THRESHOLD_SLIDER, "marks"),
        Input(ids.LEADERBOARD_CLASSIFIER_DROPDOWN, "value"),
        State(ids.APP_DATASET_STORE, "data"),
    )
    def update_classifier(run_id, dataset):
        return classifier_view(registry(dataset), run_id)

    @app.callback(
        Output(ids.LEADERBOARD_CONFUSION_GRAPH, "figure"),
        Output(ids.LEADERBOARD_THRESHOLD_METRICS, "children"),
        Input(ids.LEADERBOARD_CLASSIFIER_DROPDOWN, "value"),
        Input(ids.LEADERBOARD_THRESHOLD_SLIDER, "value"),
        State(ids.APP_DATASET_STORE, "data"),
    )
    def update_threshold(run_id, threshold, dataset):
        return confusion_view(registry(dataset), run_id, threshold)

    @app.callback(
        Output(ids.LEADERBOARD_CAPACITY_METRICS, "children"),
        Input(ids.LEADERBOARD_CLASSIFIER_DROPDOWN, "value"),
        Input(ids.LEADERBOARD_CAPACITY_SLIDER, "value"),
        State(ids.APP_DATASET_STORE, "data"),
    )
    def update_capacity(run_id, percent, dataset):
        return capacity_panel_view(registry(dataset), run_id, percent)

    @app.callback(
        Output(ids.LEADERBOARD_ACTUAL_GRAPH, "figure"),
        Output(ids.LEADERBOARD_RESIDUALS_GRAPH, "figure"),
        Output(ids.LEADERBOARD_REGRESSOR_IMPORTANCE_GRAPH, "figure"),
        Output(ids.LEADERBOARD_REGRESSOR_ALERT, "children"),
        Input(ids.LEADERBOARD_REGRESSOR_DROPDOWN, "value"),
        State(ids.APP_DATASET_STORE, "data"),
    )
    def update_regressor(run_id, dataset):
        return regressor_view(registry(dataset), run_id)
