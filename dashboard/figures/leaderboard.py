"""Pure figure builders for the leaderboard tab: curve data in, ``go.Figure`` out.

Everything drawn here comes from a run's saved curve data (held-out sessions)
and metadata; no model is loaded or refitted to draw a figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from dashboard.figures.style import COLORWAY, MUTED, NEGATIVE, POSITIVE, PRIMARY, SECONDARY, empty_figure, styled
from ml.serving.leaderboard import CurveSeries

MAX_IMPORTANCE_FEATURES = 15
UNIT_AXIS = {"range": [-0.02, 1.02], "tickformat": ".1f"}
INSET_LEGEND = {
    "orientation": "v",
    "x": 0.98,
    "xanchor": "right",
    "bgcolor": "rgba(255, 255, 255, 0.6)",
    "font": {"size": 11},
}


def _colour(index: int) -> str:
    return COLORWAY[index % len(COLORWAY)]


def _overlay(
    series: Sequence[CurveSeries],
    selected: str | None,
    xy: tuple[str, str, str],
    legend_metric: tuple[str, str] | None = None,
) -> go.Figure:
    """One line per run, the selected one drawn last, thick and opaque; the others thin and faded."""
    key, x_name, y_name = xy
    fig = go.Figure()
    ordered = sorted(enumerate(series), key=lambda item: item[1].run_id == selected)
    for index, run in ordered:
        data = run.curves.get(key)
        if not data:
            continue
        chosen = run.run_id == selected
        fig.add_trace(
            go.Scatter(
                x=data[x_name],
                y=data[y_name],
                mode="lines",
                name=_legend_name(run, legend_metric),
                line={"color": _colour(index), "width": 3.5 if chosen else 1.5},
                opacity=1.0 if chosen else 0.45,
                meta=run.run_id,
                hovertemplate=f"{run.name}<br>{x_name} %{{x:.3f}}<br>{y_name} %{{y:.3f}}<extra></extra>",
            )
        )
    return fig


def _legend_name(run: CurveSeries, metric: tuple[str, str] | None) -> str:
    value = run.metrics.get(metric[0]) if metric else None
    return f"{run.name} ({metric[1]} {value:.3f})" if metric and value is not None else run.name


def roc_figure(series: Sequence[CurveSeries], selected: str | None) -> go.Figure:
    """ROC curves of several classifiers on their held-out sessions, with the chance diagonal."""
    if not any(run.curves.get("roc") for run in series):
        return empty_figure("No ROC data saved for these runs")
    fig = _overlay(series, selected, ("roc", "fpr", "tpr"), legend_metric=("roc_auc", "AUC"))
    fig.add_trace(
        go.Scatter(
            x=[0, 1], y=[0, 1], mode="lines", name="chance", line={"color": MUTED, "dash": "dot"}, hoverinfo="skip"
        )
    )
    return styled(
        fig,
        xaxis={"title": "False positive rate", **UNIT_AXIS},
        yaxis={"title": "True positive rate (recall)", **UNIT_AXIS},
        legend={**INSET_LEGEND, "y": 0.02, "yanchor": "bottom"},
    )


def pr_figure(series: Sequence[CurveSeries], selected: str | None) -> go.Figure:
    """Precision-recall curves with the base rate (a model that flags at random)."""
    if not any(run.curves.get("pr") for run in series):
        return empty_figure("No precision-recall data saved for these runs")
    fig = _overlay(series, selected, ("pr", "recall", "precision"), legend_metric=("pr_auc", "PR-AUC"))
    base = next((run.curves["pr"].get("base_rate") for run in series if run.run_id == selected), None)
    if base is not None:
        fig.add_hline(
            y=base,
            line={"color": MUTED, "dash": "dot"},
            annotation_text=f"base rate {base:.1%}",
            annotation_position="bottom left",
        )
    return styled(
        fig,
        xaxis={"title": "Recall", **UNIT_AXIS},
        yaxis={"title": "Precision", **UNIT_AXIS},
        legend={**INSET_LEGEND, "y": 0.98, "yanchor": "top"},
    )


def confusion_figure(counts: np.ndarray) -> go.Figure:
    """The 2x2 confusion matrix ([[TN, FP], [FN, TP]]) with counts and shares of all sessions."""
    counts = np.asarray(counts, dtype=int)
    total = max(int(counts.sum()), 1)
    names = [["True negative", "False positive"], ["False negative", "True positive"]]
    text = [[f"{names[i][j]}<br><b>{counts[i, j]:,}</b><br>{counts[i, j] / total:.1%}" for j in (0, 1)] for i in (0, 1)]
    fig = go.Figure(
        go.Heatmap(
            z=counts,
            x=["Predicted: no", "Predicted: converts"],
            y=["Actual: no", "Actual: converts"],
            text=text,
            texttemplate="%{text}",
            colorscale=[[0, "#f1f7fd"], [1, PRIMARY]],
            showscale=False,
            hovertemplate="%{y} · %{x}: %{z:,} sessions<extra></extra>",
            xgap=3,
            ygap=3,
        )
    )
    return styled(
        fig,
        yaxis={"autorange": "reversed", "showgrid": False},
        xaxis={"side": "top", "showgrid": False},
        margin={"l": 20, "r": 10, "t": 30, "b": 10},
    )


def calibration_figure(curves: Mapping, name: str) -> go.Figure:
    """Observed conversion rate against mean predicted probability, in quantile bins."""
    data = curves.get("calibration")
    if not data or not data.get("mean_predicted"):
        return empty_figure("No calibration data saved for this run")
    top = max(*data["mean_predicted"], *data["observed"], 0.05) * 1.1
    fig = go.Figure(
        [
            go.Scatter(x=[0, top], y=[0, top], mode="lines", name="perfect", line={"color": MUTED, "dash": "dot"}),
            go.Scatter(
                x=data["mean_predicted"],
                y=data["observed"],
                mode="lines+markers",
                name=name,
                line={"color": PRIMARY, "width": 2.5},
                hovertemplate="predicted %{x:.1%}<br>observed %{y:.1%}<extra></extra>",
            ),
        ]
    )
    return styled(
        fig,
        xaxis={"title": "Mean predicted P(convert)", "tickformat": ".0%", "range": [0, top]},
        yaxis={"title": "Observed conversion rate", "tickformat": ".0%", "range": [0, top]},
    )


def gains_figure(curves: Mapping, name: str) -> go.Figure:
    """Cumulative gains: share of converting sessions caught when targeting the top x% by score; lift in hover."""
    data = curves.get("gains")
    if not data or not data.get("population"):
        return empty_figure("No gains data saved for this run")
    population = np.asarray(data["population"], dtype=float)
    gain = np.asarray(data["gain"], dtype=float)
    lift = np.divide(gain, population, out=np.ones_like(gain), where=population > 0)
    fig = go.Figure(
        [
            go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="random", line={"color": MUTED, "dash": "dot"}),
            go.Scatter(
                x=population,
                y=gain,
                mode="lines",
                name=name,
                line={"color": POSITIVE, "width": 2.5},
                customdata=lift,
                hovertemplate="top %{x:.0%} of sessions<br>%{y:.0%} of conversions<br>lift %{customdata:.2f}"
                "<extra></extra>",
            ),
        ]
    )
    at = int(np.searchsorted(population, 0.2))
    if at < len(population):
        fig.add_annotation(
            x=population[at],
            y=gain[at],
            text=f"top 20%: lift {lift[at]:.2f}",
            showarrow=True,
            arrowhead=2,
            ax=40,
            ay=30,
        )
    return styled(
        fig,
        xaxis={"title": "Sessions targeted (highest score first)", "tickformat": ".0%", "range": [0, 1]},
        yaxis={"title": "Converting sessions caught", "tickformat": ".0%", "range": [0, 1.02]},
    )


def importance_figure(rows: Sequence[Mapping], labels: Mapping[str, str], metric: str) -> go.Figure:
    """Permutation importance on held-out sessions (drop in the metric when a feature is shuffled)."""
    if not rows:
        return empty_figure("No feature importance saved for this run")
    top = sorted(rows, key=lambda r: -r["importance"])[:MAX_IMPORTANCE_FEATURES][::-1]
    values = [r["importance"] for r in top]
    fig = go.Figure(
        go.Bar(
            x=values,
            y=[labels.get(r["feature"], r["feature"]) for r in top],
            orientation="h",
            error_x={"type": "data", "array": [r.get("std", 0.0) for r in top], "color": MUTED, "thickness": 1},
            marker={"color": [SECONDARY if v >= 0 else NEGATIVE for v in values]},
            hovertemplate=f"%{{y}}<br>drop in {metric} %{{x:.4f}}<extra></extra>",
        )
    )
    return styled(
        fig,
        xaxis={"title": f"Drop in {metric} when shuffled", "zeroline": True},
        yaxis={"showgrid": False},
        margin={"l": 10, "r": 20, "t": 10, "b": 40},
        bargap=0.25,
    )


def _regression_points(curves: Mapping) -> tuple[np.ndarray, np.ndarray] | None:
    data = curves.get("predictions") or {}
    if not data.get("actual"):
        return None
    return np.asarray(data["actual"], dtype=float), np.asarray(data["predicted"], dtype=float)


def predicted_actual_figure(curves: Mapping, name: str) -> go.Figure:
    """Predicted against actual basket value on held-out converting sessions, with the y = x line."""
    points = _regression_points(curves)
    if points is None:
        return empty_figure("No predictions saved for this run")
    actual, predicted = points
    top = float(max(actual.max(), predicted.max(), 1.0))
    fig = go.Figure(
        [
            go.Scatter(
                x=actual,
                y=predicted,
                mode="markers",
                name=name,
                marker={"color": PRIMARY, "size": 5, "opacity": 0.5},
                hovertemplate="actual $%{x:,.0f}<br>predicted $%{y:,.0f}<extra></extra>",
            ),
            go.Scatter(x=[0, top], y=[0, top], mode="lines", name="perfect", line={"color": MUTED, "dash": "dot"}),
        ]
    )
    return styled(
        fig,
        xaxis={"title": "Actual basket value (USD)", "tickprefix": "$"},
        yaxis={"title": "Predicted (USD)", "tickprefix": "$"},
        showlegend=False,
    )


def residuals_figure(curves: Mapping, name: str) -> go.Figure:
    """Residuals (actual - predicted) against the prediction, with the zero line."""
    points = _regression_points(curves)
    if points is None:
        return empty_figure("No predictions saved for this run")
    actual, predicted = points
    fig = go.Figure(
        go.Scatter(
            x=predicted,
            y=actual - predicted,
            mode="markers",
            name=name,
            marker={"color": SECONDARY, "size": 5, "opacity": 0.5},
            hovertemplate="predicted $%{x:,.0f}<br>residual $%{y:,.0f}<extra></extra>",
        )
    )
    fig.add_hline(y=0, line={"color": MUTED, "dash": "dot"})
    return styled(
        fig,
        xaxis={"title": "Predicted basket value (USD)", "tickprefix": "$"},
        yaxis={"title": "Residual: actual - predicted (USD)", "tickprefix": "$"},
        showlegend=False,
    )
