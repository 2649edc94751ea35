"""The leaderboard grids (dash-ag-grid): column definitions, number formats, the grid component.

Each metric is a column group with its CV mean ± std (sorted on the mean) and
its held-out value; the grid sorts on its own, in the browser. Formatting is
done by small JavaScript expressions, so the cells keep their numeric values
for sorting.
"""

from __future__ import annotations

import dash_ag_grid as dag

from ml.serving.leaderboard import TASK_METRICS
from ml.tasks import CLUSTERING, LOWER_IS_BETTER, PRIMARY_METRIC

MAX_VISIBLE_ROWS = 12
ROW_HEIGHT = 34
HEADER_HEIGHT = 34
GROUP_HEADER_HEIGHT = 30

METRIC_LABELS = {
    "roc_auc": "ROC-AUC",
    "pr_auc": "PR-AUC",
    "f1": "F1",
    "precision": "Precision",
    "recall": "Recall",
    "accuracy": "Accuracy",
    "brier": "Brier",
    "r2": "R²",
    "mae": "MAE",
    "mse": "MSE",
    "rmse": "RMSE",
    "silhouette": "Silhouette",
    "davies_bouldin": "Davies-Bouldin",
    "inertia": "Inertia",
    "n_clusters": "Clusters",
    "noise_share": "Noise share",
}
METRIC_HELP = {
    "roc_auc": "area under the ROC curve: ranking quality, 0.5 = chance",
    "pr_auc": "average precision: area under the precision-recall curve",
    "f1": "harmonic mean of precision and recall at the saved threshold",
    "precision": "share of flagged sessions that convert, at the saved threshold",
    "recall": "share of converting sessions that are flagged, at the saved threshold",
    "accuracy": "share of sessions classified correctly at the saved threshold",
    "brier": "mean squared error of the probabilities (lower is better)",
    "r2": "share of the basket-value variance explained",
    "mae": "mean absolute error in USD (lower is better)",
    "mse": "mean squared error in USD² (lower is better)",
    "rmse": "root mean squared error in USD (lower is better)",
    "silhouette": "how well separated the segments are (-1..1, higher is better)",
    "davies_bouldin": "average similarity of each segment to its nearest one (lower is better)",
    "inertia": "within-segment sum of squares (lower is better; K-Means only)",
    "n_clusters": "number of segments found",
    "noise_share": "share of sessions DBSCAN leaves as noise",
}
DIGITS = {"inertia": 0, "mse": 0, "n_clusters": 0, "mae": 2, "rmse": 2}
NO_BEST = frozenset({"n_clusters", "noise_share"})  # descriptive columns: neither end is better
WIDE = {"mse": 165}


def _locale(expression: str, digits: int) -> str:
    options = f"{{minimumFractionDigits: {digits}, maximumFractionDigits: {digits}}}"
    return f"({expression}).toLocaleString('en-US', {options})"


def _number_formatter(digits: int, percent: bool = False) -> dict:
    text = _locale("params.value * 100", digits) + " + '%'" if percent else _locale("params.value", digits)
    return {"function": f"params.value == null ? '–' : {text}"}


def _cv_formatter(name: str, digits: int) -> dict:
    std = _locale(f"params.data.cv_{name}_std == null ? 0 : params.data.cv_{name}_std", digits)
    return {"function": f"params.value == null ? '–' : {_locale('params.value', digits)} + ' ± ' + {std}"}


def _best_rule(rows: list[dict], field: str, lower_is_better: bool) -> dict:
    """Bold the best value of a column among the rows shown."""
    values = [r[field] for r in rows if isinstance(r.get(field), int | float)]
    if len(values) < 2:
        return {}
    if field in NO_BEST:
        return {}
    best = min(values) if lower_is_better else max(values)
    return {"lb-best-cell": f"params.value === {best!r}"}


def _metric_header(name: str) -> str:
    return METRIC_LABELS[name] + (" ↓" if name in LOWER_IS_BETTER else "")


def column_defs(task: str, rows: list[dict]) -> list[dict]:
    """Grid columns: model (★ = best), every metric held-out and as CV mean ± std, timing, window, run."""
    primary = PRIMARY_METRIC[task]
    columns: list[dict] = [
        {
            "field": "title",
            "headerName": "Model",
            "pinned": "left",
            "minWidth": 190,
            "valueFormatter": {"function": "(params.data.best ? '★ ' : '') + params.value"},
            "tooltipField": "problem",
        }
    ]
    for name in TASK_METRICS[task]:
        digits = DIGITS.get(name, 3)
        lower = name in LOWER_IS_BETTER
        held_out = {
            "field": name,
            "headerName": "held-out" if task != CLUSTERING else _metric_header(name),
            "headerTooltip": METRIC_HELP[name],
            "valueFormatter": _number_formatter(1 if name == "noise_share" else digits, name == "noise_share"),
            "cellClassRules": _best_rule(rows, name, lower),
            "type": "rightAligned",
            "minWidth": 140 if task == CLUSTERING else 95,
            "sort": ("asc" if lower else "desc") if name == primary and task == CLUSTERING else None,
        }
        if task == CLUSTERING:
            columns.append(held_out)
            continue
        cv = {
            "field": f"cv_{name}_mean",
            "headerName": "CV mean ± std",
            "headerTooltip": f"{METRIC_HELP[name]}; mean ± std over grouped CV folds",
            "valueFormatter": _cv_formatter(name, digits),
            "cellClassRules": _best_rule(rows, f"cv_{name}_mean", lower),
            "type": "rightAligned",
            "minWidth": WIDE.get(name, 145),
            "sort": ("asc" if lower else "desc") if name == primary else None,
        }
        columns.append(
            {"headerName": _metric_header(name), "headerTooltip": METRIC_HELP[name], "children": [cv, held_out]}
        )
    columns += [
        {"field": "fit_seconds", "headerName": "Fit s", "valueFormatter": _number_formatter(2), "type": "rightAligned"},
        {
            "field": "predict_ms_per_1000",
            "headerName": "ms / 1k",
            "headerTooltip": "median time to score 1,000 sessions, in milliseconds",
            "valueFormatter": _number_formatter(1),
            "type": "rightAligned",
        },
        {
            "field": "window",
            "headerName": "k",
            "headerTooltip": "observation window: clicks the model sees",
            "minWidth": 60,
            "hide": task == CLUSTERING or None,
        },
        {"field": "created", "headerName": "Trained", "minWidth": 205},
        {"field": "status", "headerName": "Status", "minWidth": 110},
        {"field": "run_id", "headerName": "Run id", "minWidth": 240, "hide": True},
    ]
    if any(r.get("status") != "in use" for r in rows):  # history: when a run was trained comes first
        columns = [columns[0], *columns[-3:-1], *columns[1:-3], columns[-1]]
    if any(r.get("problem") for r in rows):
        columns.insert(1, {"field": "problem", "headerName": "Problem", "minWidth": 300, "cellClass": "text-danger"})
    return [{k: v for k, v in c.items() if v not in (None, {})} for c in columns]


def grid_height(rows: list[dict], grouped: bool) -> str:
    """Pixel height showing up to a dozen rows without an empty band under them."""
    shown = max(1, min(len(rows), MAX_VISIBLE_ROWS))
    header = HEADER_HEIGHT + (GROUP_HEADER_HEIGHT if grouped else 0)
    return f"{header + ROW_HEIGHT * shown + 20}px"


def run_label(row: dict) -> str:
    label = row["title"] + (" ★" if row.get("best") else "")
    if row.get("status") != "in use":
        label += f" · {row['created']}"
    return label + (" (unreadable)" if row.get("problem") else "")


def run_options(rows: list[dict]) -> list[dict]:
    """Dropdown options, one per row shown; unreadable runs are listed but cannot be chosen."""
    return [{"label": run_label(r), "value": r["run_id"], "disabled": bool(r.get("problem"))} for r in rows]


def leaderboard_grid(grid_id: str) -> dag.AgGrid:
    """An empty grid (rows and columns come from the table callback); rows are chosen by clicking."""
    return dag.AgGrid(
        id=grid_id,
        rowData=[],
        columnDefs=[],
        getRowId="params.data.run_id",
        defaultColDef={"sortable": True, "resizable": True, "filter": False, "minWidth": 95, "flex": 1},
        dashGridOptions={
            "rowSelection": {"mode": "singleRow", "checkboxes": False, "enableClickSelection": False},
            "rowHeight": ROW_HEIGHT,
            "headerHeight": HEADER_HEIGHT,
            "groupHeaderHeight": GROUP_HEADER_HEIGHT,
            "tooltipShowDelay": 300,
            "suppressCellFocus": True,
            "suppressRowVirtualisation": True,  # a few dozen rows at most: render them all, even off-screen
            "suppressAnimationFrame": True,
            "suppressNoRowsOverlay": True,  # an empty grid is hidden with its card
            "animateRows": False,
            "suppressColumnVirtualisation": True,
            "rowClassRules": {
                "lb-best-row": "params.data.best",
                "lb-earlier-row": "params.data.status !== 'in use'",
                "lb-problem-row": "params.data.problem",
            },
        },
        className="lb-grid",
        style={"height": "100px", "width": "100%"},
    )
