"""One look for every figure: template, colours, number formats, and an empty-state figure."""

from __future__ import annotations

import functools

import plotly.graph_objects as go
import plotly.io as pio

# Cerulean-compatible palette, colour-blind friendly order.
PRIMARY = "#2fa4e7"
SECONDARY = "#033c73"
ACCENT = "#dd5600"
# Good/bad, raises/lowers: Okabe-Ito bluish green and vermillion (Okabe & Ito 2008), which readers with any
# common colour-vision deficiency tell apart (red and green are not; every such bar also carries its +/- label).
POSITIVE = "#009E73"
NEGATIVE = "#D55E00"
MUTED = "#868e96"
COLORWAY = ["#2fa4e7", "#dd5600", "#73a839", "#033c73", "#9b479f", "#c71c22", "#e3a21a", "#20c997", "#868e96"]
SECONDARY_Y = "y2"  # the right-hand axis of sessions_with_rate
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"

TEMPLATE_NAME = "clickstream"
pio.templates[TEMPLATE_NAME] = go.layout.Template(
    layout=go.Layout(
        font={"family": FONT, "size": 12, "color": "#343a40"},
        colorway=COLORWAY,
        paper_bgcolor="white",
        plot_bgcolor="white",
        margin={"l": 50, "r": 20, "t": 30, "b": 40},
        hoverlabel={"font": {"family": FONT}},
        xaxis={"gridcolor": "#eef1f4", "zerolinecolor": "#dee2e6", "automargin": True},
        yaxis={"gridcolor": "#eef1f4", "zerolinecolor": "#dee2e6", "automargin": True},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "left", "x": 0},
    )
)


# What a callback may return for a dcc.Graph: a figure object or the JSON-ready dict of one.
Figure = go.Figure | dict


@functools.cache
def _template_json() -> dict:
    return pio.templates[TEMPLATE_NAME].to_plotly_json()


def figure_dict(data: list[dict], layout: dict) -> dict:
    """The JSON-ready figure Dash sends for ``go.Figure(data, layout)``, without building the figure object.

    ``go.Figure`` validates and copies every property, its template included,
    which was about a third of the time of a KPI view and half of a what-if
    update. The traces and layout here are written in Plotly's own JSON form
    (``{"type": "bar", ...}``, ``{"title": {"text": ...}}``), so they need no
    coercion; ``tests/dashboard/test_figure_dicts.py`` checks that
    ``go.Figure`` makes the same JSON of each. The template is the app's, as
    JSON, shared by every figure: do not change it in place.
    """
    if layout.get("template", TEMPLATE_NAME) == TEMPLATE_NAME:
        layout = {**layout, "template": _template_json()}
    return {"data": data, "layout": layout}


def styled(fig: go.Figure, **layout: object) -> go.Figure:
    """Apply the app template and any layout overrides."""
    fig.update_layout(template=TEMPLATE_NAME, **layout)
    return fig


def sessions_with_rate(*args: object, **kwargs: object) -> go.Figure:
    """Sessions as bars on the left axis and a conversion rate as a line on the right axis.

    Takes the arguments of :func:`sessions_with_rate_parts` and builds its figure.
    """
    traces, layout = sessions_with_rate_parts(*args, **kwargs)  # type: ignore[arg-type]
    return go.Figure(traces, layout)


def sessions_with_rate_parts(
    x: object,
    sessions: object,
    rate: object,
    conversion_title: str,
    bar_hover: str,
    rate_hover: str,
    customdata: object = None,
    line_mode: str = "lines+markers",
) -> tuple[list[dict], dict]:
    """The traces and layout of :func:`sessions_with_rate`, as dicts, for a figure built in one call.

    The layout is what ``make_subplots(specs=[[{"secondary_y": True}]])`` lays
    out (the right axis overlaying the left), written out: building a figure
    in one ``go.Figure(data, layout)`` call is several times faster than the
    subplot helpers and ``update_*`` calls, and gives the same figure.
    """
    bar = {
        "type": "bar",
        "x": x,
        "y": sessions,
        "name": "Sessions",
        "marker": {"color": PRIMARY},
        "opacity": 0.8,
        "hovertemplate": bar_hover,
        "xaxis": "x",
        "yaxis": "y",
    }
    if customdata is not None:
        bar["customdata"] = customdata
    line = {
        "type": "scatter",
        "x": x,
        "y": rate,
        "name": conversion_title,
        "mode": line_mode,
        "line": {"color": ACCENT, "width": 2},
        "marker": {"size": 5},
        "connectgaps": False,
        "hovertemplate": rate_hover,
        "xaxis": "x",
        "yaxis": SECONDARY_Y,
    }
    layout = {
        "xaxis": {"anchor": "y", "domain": [0.0, 0.94]},
        "yaxis": {"anchor": "x", "domain": [0.0, 1.0], "title": {"text": "Sessions"}, "rangemode": "tozero"},
        "yaxis2": {
            "anchor": "x",
            "overlaying": "y",
            "side": "right",
            "title": {"text": conversion_title},
            "tickformat": ".0%",
            "rangemode": "tozero",
            "showgrid": False,
        },
    }
    return [bar, line], layout


def empty_figure(text: str) -> go.Figure:
    """A blank figure that says why it is blank (no data for the filter, no model yet)."""
    note = {
        "text": text,
        "xref": "paper",
        "yref": "paper",
        "x": 0.5,
        "y": 0.5,
        "showarrow": False,
        "font": {"size": 14},
    }
    layout = {
        "annotations": [note],
        "template": TEMPLATE_NAME,
        "xaxis": {"visible": False},
        "yaxis": {"visible": False},
        "margin": {"l": 10, "r": 10, "t": 10, "b": 10},
    }
    return go.Figure(layout=layout)
