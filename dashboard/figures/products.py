"""Figures of the Products tab: the Sankey of session paths, and purchase rates per first-two-step path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.figures.style import COLORWAY, MUTED, PRIMARY, empty_figure, styled
from ml.features.paths import EXIT, OTHER, SessionPaths

EXIT_COLOUR = "#adb5bd"
OTHER_COLOUR = "#ced4da"
TOP_PURCHASE_PATHS = 15


def _hex_rgba(colour: str, alpha: float) -> str:
    colour = colour.lstrip("#")
    r, g, b = (int(colour[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def _node_colours(codes: pd.Series) -> list[str]:
    """One colour per value (the same value has the same colour at every step); grey for exit and other."""
    values = sorted(int(c) for c in codes.unique() if c >= 0)
    colour_of = {v: COLORWAY[i % len(COLORWAY)] for i, v in enumerate(values)}
    colour_of[EXIT], colour_of[OTHER] = EXIT_COLOUR, OTHER_COLOUR
    return [colour_of[int(c)] for c in codes]


def _node_positions(nodes: pd.DataFrame, steps: int) -> tuple[list[float], list[float]]:
    """Columns by step; within a step, nodes stacked in table order by their share of the step's sessions."""
    x, y = [], []
    for _, group in nodes.groupby("step", sort=True):
        total = float(group["sessions"].sum()) or 1.0
        tops = group["sessions"].cumsum().to_numpy() - group["sessions"].to_numpy()
        centres = (tops + group["sessions"].to_numpy() / 2) / total
        x.extend([0.001 + 0.998 * (s - 1) / max(steps - 1, 1) for s in group["step"]])
        y.extend(list(np.clip(0.02 + 0.96 * centres, 0.001, 0.999)))
    order = nodes.sort_values("step", kind="stable").index
    place = dict(zip(order, zip(x, y, strict=True), strict=True))
    return [place[i][0] for i in nodes.index], [place[i][1] for i in nodes.index]


def sankey_figure(paths: SessionPaths, dimension_title: str) -> go.Figure:
    """Sessions flowing between the values of a dimension over the first steps, with an exit node per step.

    Link hover: sessions and their share of the sessions at the link's source step.
    """
    if paths.sessions == 0 or paths.links.empty:
        return empty_figure("No sessions with a path for this filter")
    nodes, links = paths.nodes, paths.links
    colours = _node_colours(nodes["code"])
    x, y = _node_positions(nodes, paths.steps)
    step_total = nodes.groupby("step")["sessions"].sum()
    node_share = nodes["sessions"] / nodes["step"].map(step_total)
    labels = nodes["label"].tolist()
    fig = go.Figure(
        go.Sankey(
            arrangement="snap",
            valueformat=",d",
            node={
                "label": [label.split(": ", 1)[1] for label in labels],
                "color": colours,
                "x": x,
                "y": y,
                "pad": 12,
                "thickness": 14,
                "line": {"width": 0},
                "customdata": np.c_[labels, node_share.to_numpy()],
                "hovertemplate": "%{customdata[0]}<br>%{value:,} sessions (%{customdata[1]:.1%} of the step)"
                "<extra></extra>",
            },
            link={
                "source": links["source"].tolist(),
                "target": links["target"].tolist(),
                "value": links["sessions"].tolist(),
                "color": [_hex_rgba(colours[s], 0.35) for s in links["source"]],
                "customdata": np.c_[
                    [labels[s] for s in links["source"]], [labels[t] for t in links["target"]], links["share"]
                ],
                "hovertemplate": "%{customdata[0]} → %{customdata[1]}<br>%{value:,} sessions, "
                "%{customdata[2]:.1%} of the sessions at that step<extra></extra>",
            },
        )
    )
    annotations = [
        {
            "x": 0.001 + 0.998 * (step - 1) / max(paths.steps - 1, 1),
            "y": 1.06,
            "xref": "paper",
            "yref": "paper",
            "text": f"Step {step}",
            "showarrow": False,
            "font": {"color": MUTED},
            "xanchor": "left" if step == 1 else ("right" if step == paths.steps else "center"),
        }
        for step in range(1, paths.steps + 1)
    ]
    return styled(
        fig,
        margin={"l": 10, "r": 10, "t": 36, "b": 10},
        annotations=annotations,
        meta={"dimension": dimension_title},
    )


def purchase_paths_figure(table: pd.DataFrame, title: str = "Conversion (purchases)") -> go.Figure:
    """Purchase rate per first-two-step path (the paths with most sessions), sessions in the hover."""
    if table is None or table.empty:
        return empty_figure("No sessions for this filter")
    top = table.head(TOP_PURCHASE_PATHS).iloc[::-1]
    fig = go.Figure(
        go.Bar(
            x=top["purchase_rate"],
            y=top["path"],
            orientation="h",
            marker_color=PRIMARY,
            customdata=np.c_[top["sessions"], top["purchases"]],
            text=[f"{v:.1%}" for v in top["purchase_rate"]],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}<br>" + title + ": %{x:.1%}<br>%{customdata[1]:,} of %{customdata[0]:,} sessions"
            "<extra></extra>",
        )
    )
    return styled(
        fig,
        xaxis={"title": title, "tickformat": ".0%", "rangemode": "tozero"},
        yaxis={"automargin": True},
        margin={"l": 10, "r": 40, "t": 10, "b": 40},
        showlegend=False,
    )
