"""Figures and cards of the batch scoring tab: validation report, problems, results, P(convert) spread.

Pure builders (data in, component out), like the KPI cards, so they are tested without a browser.
"""

from __future__ import annotations

from collections.abc import Sequence

import dash_bootstrap_components as dbc
import numpy as np
import plotly.graph_objects as go
from dash import html

from dashboard.figures.style import ACCENT, PRIMARY, empty_figure, styled
from ml.data.reading import format_size
from ml.features.window import STATUS_CONVERTED_IN_WINDOW, STATUS_SCORED, STATUS_TOO_SHORT, STATUSES
from ml.serving.scoring import SCORE_COLUMNS

NO_SCORED_SESSIONS = "No session was long enough to score"
STATUS_HELP = {
    STATUS_SCORED: "{k}+ clicks and no conversion in the first {k}: scored",
    STATUS_TOO_SHORT: "fewer than {k} clicks: listed, not scored",
    STATUS_CONVERTED_IN_WINDOW: "converted within the first {k} clicks: listed, not scored",
}
COLUMN_TITLES = {  # (short grid header, what the CSV column holds)
    "session_id": ("Session", "session ID as in the file"),
    "clicks": ("Clicks", "clicks in the session"),
    "status": ("Status", "scored, too short, or already converted in the first k clicks"),
    "p_convert": ("P(convert)", "probability the session converts after the first k clicks"),
    "predicted_converted": ("Converts?", "P(convert) at or above the model's saved threshold"),
    "predicted_basket_value": ("Basket (USD)", "predicted basket value if it converts"),
    "expected_revenue": ("Exp. revenue", "P(convert) x predicted basket, USD"),
    "segment": ("Segment", "behavioural segment (K-Means) of the whole session"),
    "recommended_products": ("Recommended", "top 3 products to show next, from every product the session viewed"),
}
MIN_WIDTHS = {"session_id": 80, "clicks": 65, "status": 160, "segment": 160}  # px; 90 otherwise
NUMBER_FORMATS = {"p_convert": ".3f", "predicted_basket_value": ",.2f", "expected_revenue": ",.2f"}


def p_convert_histogram(counts: Sequence[int], edges: Sequence[float], threshold: float | None) -> go.Figure:
    """Sessions per P(convert) bin, with the model's saved decision threshold marked."""
    if not len(counts) or sum(counts) == 0:
        return empty_figure(NO_SCORED_SESSIONS)
    edges_array = np.asarray(edges, dtype=float)
    centres = (edges_array[:-1] + edges_array[1:]) / 2
    fig = go.Figure(
        go.Bar(
            x=centres,
            y=list(counts),
            width=np.diff(edges_array),
            marker_color=PRIMARY,
            opacity=0.8,
            customdata=np.column_stack([edges_array[:-1], edges_array[1:]]),
            hovertemplate="P(convert) %{customdata[0]:.3f}–%{customdata[1]:.3f}<br>%{y:,} sessions<extra></extra>",
        )
    )
    if threshold is not None:
        fig.add_vline(
            x=threshold,
            line={"color": ACCENT, "width": 2, "dash": "dash"},
            annotation_text=f"threshold {threshold:.3f}",
            annotation_position="top right",
            annotation_font_color=ACCENT,
        )
    fig.update_xaxes(title_text="P(convert)", tickformat=".2f")
    fig.update_yaxes(title_text="Scored sessions", rangemode="tozero")
    return styled(fig, bargap=0.05, showlegend=False)


def _fact(name: str, value: object) -> html.Tr:
    return html.Tr([html.Th(name, className="text-muted fw-normal"), html.Td(value)])


def validation_report(report: dict) -> dbc.Card:
    """Rows, sessions, dates, form, label and how many sessions each status will get (from ``report_data``)."""
    s, counts, window = report["summary"], report["counts"], report["window"]
    label = {
        "input": "the file's own 'converted' column",
        "purchases": "the file's purchase events",
    }.get(report["label_source"], "the re-view proxy")
    facts = [
        _fact("Rows (clicks)", f"{s['rows']:,}"),
        _fact("Sessions", f"{s['sessions']:,}"),
        _fact("Dates", f"{s['first_date']} to {s['last_date']}"),
        _fact("Read as", f"{s['input_form']} ({format_size(report['bytes'])})"),
        _fact("Conversion label", label),
    ]
    where = f"the model's window k = {window}" if report["has_model"] else f"window k = {window} (no model trained yet)"
    statuses = [
        html.Li(
            [html.Strong(f"{counts[name]:,} "), html.Span(name, className="fw-semibold"), " — ", help_.format(k=window)]
        )
        for name, help_ in STATUS_HELP.items()
    ]
    warnings = [dbc.Alert(w, color="warning", className="py-1 px-2 mb-1 small") for w in report["warnings"]]
    return dbc.Card(
        [
            dbc.CardHeader(
                [
                    html.H6(f"2. Validation report: {report['source']}", className="mb-0"),
                    dbc.Badge("valid", color="success"),
                ],
                className="d-flex justify-content-between align-items-center",
            ),
            dbc.CardBody(
                [
                    dbc.Table(html.Tbody(facts), size="sm", borderless=True, className="mb-2 scoring-facts"),
                    *warnings,
                    html.Div(f"Sessions by status, with {where}:", className="small fw-semibold"),
                    html.Ul(statuses, className="small mb-0 scoring-statuses"),
                ]
            ),
        ],
        className="h-100",
    )


def problems_report(report: dict) -> dbc.Card:
    """Every problem (column, what is wrong, example rows, count) and how to fix the file (from ``problems_data``)."""
    problems = report["problems"]
    rows = [
        html.Tr(
            [
                html.Td(p["column"] or "(whole file)"),
                html.Td(p["message"]),
                html.Td(", ".join(str(r) for r in p["rows"]) or "–"),
                html.Td(f"{p['count']:,}" if p["count"] else "–"),
            ]
        )
        for p in problems
    ]
    head = html.Thead(
        html.Tr([html.Th("Column"), html.Th("What is wrong"), html.Th("Example rows"), html.Th("Rows affected")])
    )
    n = len(problems)
    filename = report["filename"]
    title = f"'{filename}' cannot be scored: {n} problem{'s' if n != 1 else ''} found" if n else "Upload failed"
    body = [dbc.Table([head, html.Tbody(rows)], size="sm", bordered=True, className="mb-2 scoring-problems")]
    if report.get("unexpected"):
        body = [html.P(f"The file could not be read ({report['unexpected']}). Nothing was scored.")]
    hints = report["hints"]
    return dbc.Card(
        [
            dbc.CardHeader(
                [html.H6(title, className="mb-0 text-danger"), dbc.Badge("not scored", color="danger")],
                className="d-flex justify-content-between align-items-center",
            ),
            dbc.CardBody(
                [
                    *body,
                    html.Div("How to fix it:", className="small fw-semibold") if hints else None,
                    html.Ul([html.Li(h) for h in hints], className="small mb-1") if hints else None,
                    html.Div("Nothing was scored. Fix the file and upload it again.", className="small text-muted"),
                ]
            ),
        ],
        className="h-100 border-danger",
    )


def report_card(report: dict) -> dbc.Card:
    """The card for a stored report: the validation report, or the problems of a refused file."""
    return validation_report(report) if report.get("kind") == "valid" else problems_report(report)


def _stat(title: str, value: str, note: str) -> dbc.Col:
    body = dbc.CardBody(
        [
            html.Div(title, className="kpi-title text-muted"),
            html.Div(value, className="kpi-value"),
            html.Div(note, className="small text-muted"),
        ]
    )
    return dbc.Col(dbc.Card(body, className="kpi-card h-100"), xs=6, md=4, xl=True, className="mb-2")


def results_summary(result: dict) -> list:
    """Cards with the counts and totals, then which models scored."""
    s, models = result["summary"], result["models"]
    counts, k = s["status_counts"], models["window"]
    mean_p = f"{s['mean_p_convert']:.3f}" if s["mean_p_convert"] is not None else "–"
    cards = [
        _stat("Sessions", f"{s['sessions']:,}", f"{s['clicks']:,} clicks"),
        *[_stat(name.capitalize(), f"{counts.get(name, 0):,}", STATUS_HELP[name].format(k=k)) for name in STATUSES],
        _stat("Above the threshold", f"{s['predicted_converting']:,}", f"mean P(convert) {mean_p}"),
        _stat("Expected revenue", *revenue_text(result)),
    ]
    basket = models["regressor"] or f"no basket-value model trained with a {k}-click window"
    used = (
        f"Scored with {models.get('classifier_title') or models['classifier']} "
        f"(run {models.get('run_id', '?')}, threshold {models['threshold']:.3f}, window k = {k}); "
        f"basket value: {basket}; segments: {models['segmenter'] or 'none'}."
    )
    return [dbc.Row(cards, className="g-2"), html.Div(used, className="small text-muted mb-2")]


def revenue_text(result: dict) -> tuple[str, str]:
    """(value, note) of the expected revenue card: a range from held-out residuals, or why there is none."""
    s, models = result["summary"], result["models"]
    if not models.get("regressor"):
        return "no basket model", f"train a basket-value model with window k = {models['window']} to estimate it"
    span = s.get("expected_revenue_range")
    if span:
        coverage = (models.get("interval") or {}).get("coverage", 0.8)
        return f"${span[0]:,.0f} – ${span[1]:,.0f}", f"sum of P × basket, {coverage:.0%} range of held-out errors"
    return f"≈ ${s['expected_revenue']:,.0f}", "sum of P × basket (no held-out range saved with this model)"


def column_defs() -> list[dict]:
    """Preview grid columns: the CLI's columns, readable titles, numbers formatted and right-aligned."""
    defs = []
    for name in SCORE_COLUMNS:
        title, meaning = COLUMN_TITLES[name]
        col: dict = {"field": name, "headerName": title, "headerTooltip": f"{name}: {meaning}"}
        col["minWidth"] = MIN_WIDTHS.get(name, 90)
        if name in ("status", "segment"):
            col["tooltipField"] = name
        if name == "predicted_converted":
            col["cellDataType"] = False  # words, not a checkbox
            col["valueFormatter"] = {"function": "params.value == null ? '–' : (params.value ? 'yes' : 'no')"}
        elif name in NUMBER_FORMATS:
            fmt = NUMBER_FORMATS[name]
            col["valueFormatter"] = {"function": f"params.value == null ? '' : d3.format('{fmt}')(params.value)"}
            col["type"] = "rightAligned"
        defs.append(col)
    return defs
