"""Figures and cards of the segments tab: projection scatter, silhouette by k, metric tiles, profile cards.

Segments are numbered by size (0 is the largest), so the colour of a segment
follows its rank and the cards use the same colours as the scatter. The
colours are Okabe-Ito's colour-blind-safe set, and each segment also has its
own marker shape, so no one needs to tell colours apart. Segments past the
palette are drawn together as "smaller groups" and listed in a table; DBSCAN
noise is its own grey group.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import dash_bootstrap_components as dbc
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from dash import html

from dashboard import ids
from dashboard.figures.style import ACCENT, MUTED, PRIMARY, empty_figure, styled
from ml.data import schema as S
from ml.models.segment_runs import SegmentRun, SegmentSetting
from ml.models.segments import NOISE

# Okabe & Ito (2008), "Color Universal Design": distinguishable with every common colour-vision deficiency.
OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000")
SEGMENT_COLOURS = OKABE_ITO  # the eight largest segments
SEGMENT_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "cross", "triangle-down", "star", "pentagon")
OTHERS_COLOUR = "#b8c2cc"
NOISE_COLOUR = "#999999"
NO_SEGMENTS = "No sessions to segment"
MAX_CARDS = len(SEGMENT_COLOURS)  # one card per coloured segment; smaller groups go in a table
TYPICAL_SHOWN = ("country", "first_category", "last_category")  # decoded; then the mean price when there is one


@dataclass(frozen=True)
class CardContext:
    """What the cards say beyond the run: the label, the dataset and the champion model's numbers."""

    overall_rate: float
    conversion_title: str = "Conversion (proxy)"
    revenue_title: str = "Potential revenue / session"
    dimension_title: str = "Countries"
    dataset: str = "bundled"
    share: float = 0.1  # the capacity rule: the top share of sessions by P
    lift: pd.DataFrame | None = None  # per-segment lift at ``share`` (ml.models.segment_lift), None without a model
    model_title: str | None = None
    population: str | None = None  # which sessions the lift counts
    p_start: Mapping[int, float | None] = field(default_factory=dict)  # P of each representative session
    model_window: int | None = None
    codebooks: Mapping[str, Mapping[int, str]] = field(default_factory=lambda: S.CODEBOOK)


def segment_colour(segment: int) -> str:
    """The colour of a segment in every figure and card (by size rank; noise and small groups grey)."""
    if segment == NOISE:
        return NOISE_COLOUR
    return SEGMENT_COLOURS[segment] if 0 <= segment < len(SEGMENT_COLOURS) else OTHERS_COLOUR


def segment_symbol(segment: int) -> str:
    """The marker shape of a segment (a second cue besides the colour)."""
    return SEGMENT_SYMBOLS[segment] if 0 <= segment < len(SEGMENT_SYMBOLS) else "circle-open"


def _markers(
    points: pd.DataFrame, name: str, colour: str, hover_names: list[str] | None = None, **marker: object
) -> go.Scatter:
    """One trace of sampled sessions; NumPy arrays, so Plotly sends them without checking each point."""
    sessions = points.index.to_numpy()
    if not np.issubdtype(sessions.dtype, np.number):
        sessions = sessions.astype(str)
    label = "%{text}" if hover_names is not None else "%{fullData.name}"  # per point only for mixed traces
    return go.Scatter(
        x=points["x"].to_numpy(),
        y=points["y"].to_numpy(),
        mode="markers",
        name=name,
        marker={"color": colour, "size": 5, "opacity": 0.7, **marker},
        text=hover_names,
        customdata=sessions,
        hovertemplate=f"<b>{label}</b><br>session %{{customdata}}<extra></extra>",
    )


def projection_figure(display: pd.DataFrame, names: Mapping[int, str], explained: tuple[float, float]) -> go.Figure:
    """Sampled sessions on the two PCA axes, one trace per segment named by its persona.

    ``display`` has columns x, y, segment (index: session id); ``names`` maps
    each segment to its persona name.
    """
    if display.empty:
        return empty_figure(NO_SEGMENTS)
    fig = go.Figure()
    segments = sorted(display["segment"].unique())
    coloured = [s for s in segments if 0 <= s < len(SEGMENT_COLOURS)]
    for seg in coloured:
        points = display[display["segment"] == seg]
        fig.add_trace(_markers(points, names[seg], segment_colour(seg), symbol=segment_symbol(seg)))
    small = [s for s in segments if s >= len(SEGMENT_COLOURS)]
    if small:
        points = display[display["segment"].isin(small)]
        labels = [names[s] for s in points["segment"]]
        fig.add_trace(_markers(points, f"{len(small)} smaller groups", OTHERS_COLOUR, labels))
    if NOISE in segments:
        points = display[display["segment"] == NOISE]
        label = names.get(NOISE, "noise")
        fig.add_trace(_markers(points, label, NOISE_COLOUR, symbol="x", size=4))
    return styled(
        fig,
        xaxis={"title": f"PCA axis 1 ({explained[0]:.0%} of variance)", "zeroline": False},
        yaxis={"title": f"PCA axis 2 ({explained[1]:.0%} of variance)", "zeroline": False},
        legend={"orientation": "v", "yanchor": "top", "y": 1, "xanchor": "left", "x": 1.01, "itemsizing": "constant"},
        margin={"l": 50, "r": 10, "t": 10, "b": 40},
        hovermode="closest",
    )


def silhouette_figure(scores: Mapping[int, float], best_k: int, current_k: int | None = None) -> go.Figure:
    """Silhouette of K-Means for each k, the silhouette's choice and the current k marked."""
    if not scores:
        return empty_figure(NO_SEGMENTS)
    ks = sorted(scores)
    fig = go.Figure(
        go.Scatter(
            x=ks,
            y=[scores[k] for k in ks],
            mode="lines+markers",
            name="silhouette",
            line={"color": PRIMARY, "width": 2},
            marker={"size": 6},
            hovertemplate="k = %{x}<br>silhouette %{y:.3f}<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[best_k],
            y=[scores[best_k]],
            mode="markers+text",
            name="best",
            marker={"color": ACCENT, "size": 11, "symbol": "star"},
            text=["best"],
            textposition="top center",
            hovertemplate="best k = %{x}<extra></extra>",
        )
    )
    if current_k in scores and current_k != best_k:
        fig.add_trace(
            go.Scatter(
                x=[current_k],
                y=[scores[current_k]],
                mode="markers",
                name="chosen",
                marker={"color": "rgba(0,0,0,0)", "size": 13, "line": {"color": MUTED, "width": 2}},
                hovertemplate="chosen k = %{x}<extra></extra>",
            )
        )
    low, high = min(scores.values()), max(scores.values())
    pad = max((high - low) * 0.35, 0.01)
    return styled(
        fig,
        showlegend=False,
        xaxis={"title": None, "dtick": 1, "fixedrange": True},
        yaxis={"title": None, "range": [low - pad, high + pad], "tickformat": ".2f", "fixedrange": True, "nticks": 4},
        margin={"l": 40, "r": 10, "t": 6, "b": 24},
    )


# ---------------------------------------------------------------- cards
def open_button_id(setting: SegmentSetting, segment: int, dataset: str = "bundled") -> dict[str, object]:
    """Pattern-matching ID of a segment's "open in what-if" button, naming the run and dataset it belongs to.

    The setting and the dataset travel in the ID, so a click reads the run its
    card was drawn from even if the sliders (or the dataset) have moved since.
    """
    return {"type": ids.SEGMENTS_OPEN_WHATIF, "segment": int(segment), "dataset": dataset, **asdict(setting)}


def download_button_id(setting: SegmentSetting, segment: int, dataset: str = "bundled") -> dict[str, object]:
    """Pattern-matching ID of a segment's "download its sessions" button (carries its run, as above)."""
    return {"type": ids.SEGMENTS_DOWNLOAD_BUTTON, "segment": int(segment), "dataset": dataset, **asdict(setting)}


def _number(value: float, fmt: str) -> str:
    return "–" if pd.isna(value) else fmt.format(value)


def metric_tile(title: str, value: str, hint: str) -> dbc.Col:
    """A small number with a title and a hint on what good looks like."""
    body = dbc.CardBody(
        [
            html.Div(title, className="kpi-title text-muted"),
            html.Div(value, className="kpi-value"),
            html.Div(hint, className="small text-muted"),
        ],
        className="py-2",
    )
    return dbc.Col(dbc.Card(body, className="kpi-card segment-metric h-100"), xs=6, className="mb-2")


def metric_tiles(run: SegmentRun) -> list[dbc.Col]:
    groups = int((run.profiles.index != NOISE).sum())
    noise = run.metrics.get("noise_share")
    segments_hint = f"{noise:.1%} of sessions are noise" if noise is not None else f"k = {run.setting.k}"
    return [
        metric_tile("Segments", f"{groups}", segments_hint),
        metric_tile("Silhouette", _number(run.metrics["silhouette"], "{:.3f}"), "-1..1, higher is better"),
        metric_tile("Davies-Bouldin", _number(run.metrics["davies_bouldin"], "{:.2f}"), "lower is better"),
        metric_tile("Inertia", _number(run.metrics["inertia"], "{:,.0f}"), "within-segment sum of squares"),
    ]


def _decode(codebooks: Mapping[str, Mapping[int, str]], book: str, value: object) -> str:
    return codebooks.get(book, {}).get(int(value), f"code {int(value)}")


def typical_text(typical: Mapping[str, float | int], codebooks: Mapping[str, Mapping[int, str]] = S.CODEBOOK) -> str:
    """A short description of a session's first clicks: country, first and last category, mean price."""
    parts = []
    if "country" in typical:
        parts.append(_decode(codebooks, S.COUNTRY, typical["country"]))
    if "first_category" in typical and "last_category" in typical:
        first = _decode(codebooks, S.CATEGORY, typical["first_category"])
        last = _decode(codebooks, S.CATEGORY, typical["last_category"])
        parts.append(f"{first} → {last}")
    if "w_price_mean" in typical and not pd.isna(typical["w_price_mean"]):
        parts.append(f"mean ${typical['w_price_mean']:,.0f}")
    return " · ".join(parts) or "see the what-if tab"


def _stat_line(title: str, value: str, hint: str, value_class: str) -> html.Div:
    return html.Div(
        [
            html.Span([title, html.Span(f" {hint}", className="segment-hint text-muted")]),
            html.Span(value, className=f"fw-semibold {value_class}"),
        ],
        className="d-flex justify-content-between small segment-stat",
    )


def _rate_hint(rate: float, overall: float) -> tuple[str, str]:
    """Words and an arrow, not colour alone: "▲ above all sessions (25.2%)"."""
    if rate > overall:
        return f"▲ above all sessions ({overall:.1%})", "text-success"
    if rate < overall:
        return f"▼ below all sessions ({overall:.1%})", "text-danger"
    return f"= all sessions ({overall:.1%})", ""


def lift_lines(run: SegmentRun, segment: int, cards: CardContext) -> html.Div:
    """What the capacity rule does for this segment: how many it flags, how they convert, the lift."""
    if cards.lift is None:
        return html.Div("Lift by capacity: train a model on this dataset first.", className="small text-muted")
    share = f"Top {cards.share:.0%} by P"
    if segment not in cards.lift.index:
        return html.Div(f"{share}: none of this segment's sessions is scored.", className="small text-muted")
    row = cards.lift.loc[segment]
    if not row.flagged:
        text = f"{share}: flags none of its {int(row.sessions):,} scored sessions."
    else:
        text = (
            f"{share}: flags {int(row.flagged):,} of its {int(row.sessions):,} scored sessions "
            f"({row.flagged_share:.0%}); {row.precision:.1%} of them converted, lift {row.lift:.2f}×."
        )
    return html.Div([html.Strong("Capacity rule. "), text], className="small segment-lift")


def start_lines(run: SegmentRun, segment: int, cards: CardContext) -> html.Div:
    """Where the what-if starts from, the P of that start, and why it differs from the segment's rate."""
    row = run.profiles.loc[segment]
    typical = run.typical.get(segment)
    if typical is None:
        return html.Div(
            f"No session of this segment can be scored early: all are shorter than {run.window} clicks "
            "or converted within them.",
            className="small text-muted fst-italic",
        )
    session = (run.representatives or {}).get(segment)
    lines = [
        html.Div(
            [
                html.Strong(f"What-if start: first {run.window} clicks of session {session}"),
                f" (the scored session nearest the segment's centre): {typical_text(typical, cards.codebooks)}.",
            ]
        )
    ]
    p = cards.p_start.get(segment)
    unscored = 1 - row.scoreable / row.sessions if row.sessions else 0.0
    rate = f"{row.conversion_rate:.1%}"
    after = f"{row.scoreable_rate:.1%}" if not pd.isna(row.get("scoreable_rate", np.nan)) else "–"
    if p is None:
        text = (
            f"The segment's {cards.conversion_title}: {rate} over whole visits; of its sessions scored after "
            f"{run.window} clicks, {after} converted afterwards."
        )
        lines.append(html.Div(text, className="text-muted"))
        return html.Div(lines, className="small segment-start")
    numbers = f"P(convert) of that start: {p:.1%} ({cards.model_title}); the segment's {cards.conversion_title}: "
    numbers += f"{rate}. "
    why = (
        f"They differ because the rate counts whole visits of every session in the segment, while P is for one "
        f"session that starts like this after only {run.window} clicks; {unscored:.0%} of the segment's sessions "
        f"are too short or converted within those clicks, and of the rest {after} converted afterwards."
    )
    lines.append(html.Div([numbers, why], className="text-muted"))
    return html.Div(lines, className="small segment-start")


def profile_card(run: SegmentRun, segment: int, cards: CardContext) -> dbc.Card:
    """Size, conversion, basket, revenue, tops, traits, lift and the what-if start of one segment."""
    row = run.profiles.loc[segment]
    typical = run.typical.get(segment)
    hint, rate_class = _rate_hint(row.conversion_rate, cards.overall_rate)
    stats = [
        (cards.conversion_title, f"{row.conversion_rate:.1%}", hint, rate_class),
        ("Basket value", f"${row.basket_value:,.0f}", "per converting session", ""),
        (cards.revenue_title, f"${row.revenue_per_session:,.2f}", "", ""),
    ]
    values = row.top_values if isinstance(row.get("top_values"), list) else []
    body = [
        html.Div(f"{row.sessions:,} sessions · {row.share:.1%}", className="segment-size"),
        html.Div(row.traits, className="small text-muted mb-2"),
        html.Div([_stat_line(*stat) for stat in stats], className="mb-2"),
        html.Div([html.Strong("Categories: "), ", ".join(row.top_categories)], className="small"),
        html.Div([html.Strong(f"{cards.dimension_title}: "), ", ".join(values) or "–"], className="small mb-2"),
        lift_lines(run, segment, cards),
        start_lines(run, segment, cards),
    ]
    return dbc.Card(
        [
            dbc.CardHeader(
                [
                    html.Span(
                        className="segment-swatch",
                        style={"background": segment_colour(segment)},
                        title=f"colour of {row.persona} in the scatter ({segment_symbol(segment)} markers)",
                    ),
                    html.Span(row.persona, className="fw-semibold"),
                ],
                className="d-flex align-items-center gap-2",
            ),
            dbc.CardBody(body, className="pb-2"),
            dbc.CardFooter(
                [
                    dbc.Button(
                        "Open in what-if →",
                        id=open_button_id(run.setting, segment, cards.dataset),
                        size="sm",
                        color="primary",
                        outline=True,
                        disabled=typical is None,
                        title=f"start the what-if tab from the representative session of {row.persona}",
                    ),
                    dbc.Button(
                        "Download sessions (CSV)",
                        id=download_button_id(run.setting, segment, cards.dataset),
                        size="sm",
                        color="secondary",
                        outline=True,
                        title=f"the {row.sessions:,} sessions of {row.persona} as a CSV file",
                    ),
                ],
                className="bg-white border-0 pt-0 d-flex gap-2 flex-wrap",
            ),
        ],
        className="segment-card h-100",
    )


def smaller_groups(run: SegmentRun, shown: list[int], cards: CardContext) -> html.Div | None:
    """A compact table of the segments without a card (DBSCAN can find dozens)."""
    rest = run.profiles.drop(index=shown)
    if rest.empty:
        return None
    rows = [
        html.Tr(
            [
                html.Td(row.persona),
                html.Td(f"{row.sessions:,}"),
                html.Td(f"{row.share:.1%}"),
                html.Td(f"{row.conversion_rate:.1%}"),
                html.Td(f"${row.revenue_per_session:,.2f}"),
                html.Td(
                    dbc.Button(
                        "what-if →",
                        id=open_button_id(run.setting, seg, cards.dataset),
                        size="sm",
                        color="link",
                        className="p-0",
                        disabled=run.typical[seg] is None,
                        title=f"open {row.persona} in the what-if tab",
                    )
                ),
            ]
        )
        for seg, row in rest.iterrows()
    ]
    head = html.Thead(
        html.Tr(
            [
                html.Th(h)
                for h in ("Segment", "Sessions", "Share", cards.conversion_title, cards.revenue_title, "What-if")
            ]
        )
    )
    return dbc.Card(
        [
            dbc.CardHeader(
                html.H6(f"{len(rest)} smaller groups ({rest['share'].sum():.1%} of sessions)", className="mb-0")
            ),
            dbc.CardBody(
                dbc.Table([head, html.Tbody(rows)], size="sm", striped=True, hover=True, className="mb-0 small"),
                className="p-0 segment-table",
            ),
        ]
    )


def segment_cards(run: SegmentRun, cards: CardContext) -> tuple[list[dbc.Col], dbc.Card | None]:
    """A card for each of the largest segments and for noise, and a table of the rest (or None)."""
    named = [s for s in run.profiles.index if s != NOISE][:MAX_CARDS]
    shown = named + ([NOISE] if NOISE in run.profiles.index else [])
    columns = [dbc.Col(profile_card(run, seg, cards), xs=12, md=6, xl=3, className="mb-3") for seg in shown]
    return columns, smaller_groups(run, shown, cards)
