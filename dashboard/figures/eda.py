"""Figures of the EDA tab: pure builders from the tables of ``ml.features.eda`` to decoded, hoverable charts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.figures.kpi import NO_SESSIONS
from dashboard.figures.style import COLORWAY, empty_figure, sessions_with_rate, styled

MARGIN = {"l": 10, "r": 10, "t": 30, "b": 40}
CATEGORY_PALETTE = COLORWAY[:-1]  # the last colour (grey) is for "other"


def _category_colour(code: int) -> str:
    """One colour per category code (codes 1-4 on the bundled data: trousers, skirts, blouses, sale)."""
    code = int(code)
    return CATEGORY_PALETTE[(code - 1) % len(CATEGORY_PALETTE)] if code > 0 else COLORWAY[-1]


def _no_sessions(table: pd.DataFrame, column: str) -> bool:
    return table.empty or table[column].sum() == 0


def price_figure(table: pd.DataFrame) -> go.Figure:
    """One small histogram per clicked category: share of the category's clicks at each price."""
    if _no_sessions(table, "views"):
        return empty_figure(NO_SESSIONS)
    categories = list(dict.fromkeys(table["category"]))
    fig = make_subplots(rows=len(categories), cols=1, shared_xaxes=True, vertical_spacing=0.1)
    for row, code in enumerate(categories, start=1):
        part = table[table["category"] == code]
        name = str(part["category_label"].iloc[0])
        fig.add_trace(
            go.Bar(
                x=part["price"],
                y=part["share"],
                width=0.8 * float(part["bin_width"].iloc[0]),
                name=name,
                marker_color=_category_colour(code),
                customdata=part[["views", "price_label"]].to_numpy(),
                hovertemplate=f"<b>{name}</b> at %{{customdata[1]}}<br>%{{customdata[0]:,}} clicks, "
                f"%{{y:.1%}} of {name} clicks<extra></extra>",
                showlegend=False,
            ),
            row=row,
            col=1,
        )
        median, views = part["category_median"].iloc[0], int(part["views"].sum())
        fig.add_annotation(
            text=f"<b>{name}</b> · median ${median:,.0f} · {views:,} clicks",
            xref="x domain",
            yref=f"y{row if row > 1 else ''} domain",
            x=0,
            y=1.0,
            xanchor="left",
            yanchor="bottom",
            showarrow=False,
            font={"size": 11},
        )
        fig.update_yaxes(tickformat=".0%", nticks=3, row=row, col=1)
    fig.update_xaxes(title_text="Price (USD)", tickprefix="$", row=len(categories), col=1)
    return styled(fig, bargap=0.1, margin={**MARGIN, "t": 20})


def sessions_and_rate_figure(
    table: pd.DataFrame, x_title: str, unit: str, conversion_title: str, max_ticks: int = 12
) -> go.Figure:
    """Sessions per ``label`` as bars and the conversion rate as a line on a second axis.

    ``table`` has columns label, sessions, share, conversion_rate (session lengths, days of week).
    With more than ``max_ticks`` labels, only the first, every fifth and the last are written.
    """
    if _no_sessions(table, "sessions"):
        return empty_figure(NO_SESSIONS)
    fig = sessions_with_rate(
        table["label"],
        table["sessions"],
        table["conversion_rate"],
        conversion_title,
        bar_hover=f"<b>%{{x}}</b> {unit}<br>%{{y:,}} sessions (%{{customdata[0]:.1%}})<extra></extra>",
        rate_hover=f"<b>%{{x}}</b> {unit}<br>{conversion_title}: %{{y:.1%}}<extra></extra>",
        customdata=table[["share"]].to_numpy(),
    )
    ticks = list(table["label"])
    if len(ticks) > max_ticks:
        last = len(ticks) - 1
        ticks = [t for i, t in enumerate(ticks) if i in (0, last) or (i + 1) % 5 == 0]
    fig.update_xaxes(title_text=x_title, type="category", tickvals=ticks)
    return styled(fig, bargap=0.15, margin=MARGIN)


def _heatmap(
    z: pd.DataFrame, customdata: object, hover: str, text_format: str, colorscale: str, **trace: object
) -> go.Heatmap:
    """A heatmap of a pivoted table (index = rows, columns = columns) with cell text and gaps."""
    return go.Heatmap(
        z=z.to_numpy(),
        x=list(z.columns),
        y=list(z.index),
        customdata=customdata,
        hovertemplate=hover + "<extra></extra>",
        texttemplate=text_format,
        textfont={"size": 10},
        colorscale=colorscale,
        xgap=1,
        ygap=1,
        **trace,
    )


def page_location_figure(table: pd.DataFrame) -> go.Figure:
    """Clicks per catalogue page (rows) and photo location on the page (columns)."""
    if _no_sessions(table, "views"):
        return empty_figure(NO_SESSIONS)
    labelled = table.assign(
        page_label=[f"page {p}" for p in table["page"]],
        location_label=[label.replace(" ", "<br>", 1) for label in table["location_label"]],
    )
    views = labelled.pivot(index="page_label", columns="location_label", values="views")
    order = list(dict.fromkeys(labelled["location_label"]))
    views = views[order]
    share = labelled.pivot(index="page_label", columns="location_label", values="share")[order]
    fig = go.Figure(
        _heatmap(
            views,
            share.to_numpy(),
            "<b>%{y}</b>, photo %{x}<br>%{z:,} clicks (%{customdata:.1%} of clicks)",
            "%{z:,}",
            "Blues",
            colorbar={"title": {"text": "Clicks"}, "thickness": 12},
        )
    )
    fig.update_yaxes(autorange="reversed", title_text="Catalogue page")
    fig.update_xaxes(title_text="Photo location on the page", side="bottom")
    return styled(fig, margin=MARGIN)


def category_colour_figure(table: pd.DataFrame, normalise: bool = True) -> go.Figure:
    """Clicks per colour (rows) within each clicked category (columns); shares of the category or counts."""
    if _no_sessions(table, "views"):
        return empty_figure(NO_SESSIONS)
    categories = list(dict.fromkeys(table.sort_values("category")["category_label"]))
    colours = list(dict.fromkeys(table.sort_values("colour")["colour_label"]))
    views = table.pivot(index="colour_label", columns="category_label", values="views").reindex(
        index=colours, columns=categories
    )
    share = table.pivot(index="colour_label", columns="category_label", values="share_of_category").reindex(
        index=colours, columns=categories
    )
    shown = share if normalise else views
    custom = np.dstack([views.fillna(0).to_numpy(), share.fillna(0).to_numpy()])
    fig = go.Figure(
        _heatmap(
            shown,
            custom,
            "<b>%{x}</b>, %{y}<br>%{customdata[0]:,} clicks<br>%{customdata[1]:.1%} of %{x} clicks",
            "%{z:.0%}" if normalise else "%{z:,}",
            "Blues",
            colorbar={"title": {"text": "Share" if normalise else "Clicks"}, "thickness": 12},
            zmin=0,
            **({"colorbar_tickformat": ".0%"} if normalise else {}),
        )
    )
    fig.update_yaxes(autorange="reversed", title_text="Colour of the product clicked")
    fig.update_xaxes(title_text="Category of the product clicked", side="bottom")
    return styled(fig, margin=MARGIN)


def correlation_figure(matrix: pd.DataFrame) -> go.Figure:
    """Pearson correlation between whole-session features, diverging colours centred on 0."""
    if matrix.empty:
        sessions = matrix.attrs.get("sessions", 0)
        return empty_figure(NO_SESSIONS if not sessions else "Too few sampled sessions vary to correlate")
    fig = go.Figure(
        _heatmap(
            matrix,
            None,
            "<b>%{y}</b> vs <b>%{x}</b><br>r = %{z:.2f}",
            "%{z:.1f}",
            "RdBu_r",
            zmin=-1,
            zmax=1,
            zmid=0,
            colorbar={"title": {"text": "r"}, "thickness": 12},
        )
    )
    sessions, sample = matrix.attrs.get("sessions", 0), matrix.attrs.get("sample", 0)
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(tickangle=-45)
    return styled(
        fig,
        title={
            "text": f"{sessions:,} sessions from a fixed-seed sample of {sample:,}",
            "font": {"size": 12},
            "x": 0.01,
        },
        margin={**MARGIN, "t": 40},
    )


RATE_TITLES = {
    "review_rate": "Re-view rate (sessions that viewed it again / viewing sessions; {n}+ sessions)",
    "cart_rate": "Cart rate (sessions that carted it / viewing sessions; {n}+ sessions)",
    "purchase_rate": "Purchase rate (sessions that bought it / viewing sessions; {n}+ sessions)",
}


def top_products_figure(table: pd.DataFrame, by: str, min_sessions: int) -> go.Figure:
    """The top products as horizontal bars (best at the top), coloured by the product's category.

    ``by`` is ``views`` or a rate (``review_rate``, ``cart_rate``, ``purchase_rate``).
    """
    if table.empty:
        text = NO_SESSIONS if by == "views" else f"No product was viewed in {min_sessions}+ sessions"
        return empty_figure(text)
    ranked = table.assign(name=[f"{p} · {c}" for p, c in zip(table["product"], table["category_label"], strict=True)])
    is_rate = by in RATE_TITLES
    hover = (
        "<b>%{customdata[0]}</b> (%{customdata[1]})<br>%{customdata[2]:,} views in %{customdata[3]:,} sessions"
        "<br>re-viewed in %{customdata[4]:,} sessions = %{customdata[5]:.1%} of its viewing sessions"
    )
    columns = ["product", "category_label", "views", "sessions", "reviewing_sessions", "review_rate"]
    if "carts" in ranked and (ranked["carts"].sum() > 0 or ranked["purchases"].sum() > 0):
        hover += (
            "<br>carted in %{customdata[6]:,} sessions (%{customdata[7]:.1%})"
            "<br>bought in %{customdata[8]:,} sessions (%{customdata[9]:.1%})"
        )
        columns += ["carting_sessions", "cart_rate", "purchasing_sessions", "purchase_rate"]
    else:
        hover += "<br>%{customdata[6]:,} re-view clicks"
        columns.append("review_clicks")
    fig = go.Figure()
    for code, part in ranked.groupby("category", sort=True):
        fig.add_trace(
            go.Bar(
                x=part[by],
                y=part["name"],
                orientation="h",
                name=str(part["category_label"].iloc[0]),
                marker_color=_category_colour(code),
                customdata=part[columns].to_numpy(),
                hovertemplate=hover + "<extra></extra>",
                text=[f"{v:.0%}" if is_rate else f"{v:,}" for v in part[by]],
                textposition="outside",
                cliponaxis=False,
            )
        )
    title = RATE_TITLES[by].format(n=min_sessions) if is_rate else "Views"
    fig.update_yaxes(categoryorder="array", categoryarray=list(ranked["name"])[::-1])
    fig.update_xaxes(title_text=title, tickformat=".0%" if is_rate else None)
    return styled(fig, margin=MARGIN, barmode="overlay", legend_title_text="Category")


def events_figure(table: pd.DataFrame) -> go.Figure:
    """Events per type (view, cart, purchase, other) as bars, with the share of sessions having one."""
    if _no_sessions(table, "events"):
        return empty_figure(NO_SESSIONS)
    fig = go.Figure(
        go.Bar(
            x=table["label"],
            y=table["events"],
            marker_color=[COLORWAY[i % len(COLORWAY)] for i in range(len(table))],
            customdata=table[["share", "sessions", "session_share"]].to_numpy(),
            text=[f"{s:.0%} of sessions" for s in table["session_share"].fillna(0)],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="<b>%{x}</b><br>%{y:,} events (%{customdata[0]:.1%} of events)"
            "<br>in %{customdata[1]:,} sessions (%{customdata[2]:.1%} of sessions)<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="Event type", type="category")
    fig.update_yaxes(title_text="Events", rangemode="tozero")
    return styled(fig, margin=MARGIN, showlegend=False)
