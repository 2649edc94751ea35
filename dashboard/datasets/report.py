"""What the add-data panel shows: the validation report of an upload, the job's note, the dataset list.

Pure component builders: data in, Dash components out, tested without a browser.
"""

from __future__ import annotations

from collections.abc import Sequence

import dash_bootstrap_components as dbc
from dash import html

from dashboard import ids
from dashboard.datasets.intake import PROBLEMS, READY, REFUSED, UNMAPPED, Intake
from dashboard.uploads import fix_hints
from ml.errors import Problem
from ml.serving.datasets import DatasetInfo

MAX_COLUMNS_SHOWN = 20
STATUS_BADGES = {
    READY: ("ready to keep", "success"),
    PROBLEMS: ("has invalid rows", "warning"),
    REFUSED: ("cannot be kept", "danger"),
    UNMAPPED: ("columns not recognised", "info"),
}


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'s' if n != 1 else ''}"


def problems_table(problems: Sequence[Problem]) -> dbc.Table:
    """Every problem: its column, what is wrong, example row numbers, rows affected."""
    head = html.Thead(
        html.Tr([html.Th("Column"), html.Th("What is wrong"), html.Th("Example rows"), html.Th("Rows affected")])
    )
    rows = [
        html.Tr(
            [
                html.Td(p.column or "(whole file)"),
                html.Td(p.message),
                html.Td(", ".join(str(r) for r in p.rows) or "–"),
                html.Td(f"{p.count:,}" if p.count else "–"),
            ]
        )
        for p in problems
    ]
    return dbc.Table([head, html.Tbody(rows)], size="sm", bordered=True, className="mb-2 data-problems")


def _summary_table(intake: Intake) -> dbc.Table:
    summary = dict(intake.summary or {})
    events = dict(summary.get("events", {}))
    kinds = ", ".join(f"{events[k]:,} {k}" for k in ("view", "cart", "purchase", "other") if events.get(k)) or "–"
    label = "Conversion (purchases)" if events.get("purchase") else "Conversion (proxy)"
    dims = ", ".join(summary.get("dimensions", [])) or "none"
    rows = [
        ("Profile", intake.profile_title or "–"),
        ("Read as", summary.get("input_form", "")),
        ("Events", f"{summary.get('rows', 0):,} ({kinds})"),
        ("Sessions", f"{summary.get('sessions', 0):,}"),
        ("Dates", f"{summary.get('first_date')} – {summary.get('last_date')}"),
        ("Label in use", label),
        ("Dimensions", dims),
    ]
    body = [html.Tr([html.Th(k, className="fw-normal text-muted"), html.Td(v)]) for k, v in rows]
    return dbc.Table(html.Tbody(body), size="sm", className="mb-2 data-summary", borderless=True)


def preview_table(records: list[dict]) -> html.Div | None:
    """The first canonical events, as the engine read them."""
    if not records:
        return None
    columns = list(records[0])
    head = html.Thead(html.Tr([html.Th(c) for c in columns]))
    body = html.Tbody([html.Tr([html.Td("" if r[c] is None else str(r[c])) for c in columns]) for r in records])
    return html.Div(
        [
            html.Div("First events, as they will be kept:", className="small fw-semibold"),
            html.Div(
                dbc.Table([head, body], size="sm", className="small mb-0 data-preview"), className="table-responsive"
            ),
        ],
        className="mb-2",
    )


def intake_report(intake: Intake) -> dbc.Card:
    """The validation report of an upload, shown before anything is kept."""
    badge, colour = STATUS_BADGES[intake.status]
    name = f"'{intake.filename}'"
    if intake.status == READY:
        title = f"{name} was read as {intake.profile_title}"
        body = [_summary_table(intake), preview_table(intake.preview)]
        warnings = list((intake.summary or {}).get("warnings", []))
        if warnings:
            body.append(html.Ul([html.Li(w) for w in warnings], className="small text-muted mb-1"))
        body.append(html.Div("Nothing is kept until you press Keep.", className="small text-muted"))
    elif intake.status == PROBLEMS:
        n = len(intake.problems)
        title = f"{name} ({intake.profile_title}): {_plural(n, 'problem')} in {_plural(intake.dropped, 'row')}"
        body = [
            problems_table(intake.problems),
            html.P(
                f"Refuse it and fix the file, or keep it without the {_plural(intake.dropped, 'invalid row')} "
                f"(of {intake.rows:,}); the number dropped is recorded with the dataset. "
                "Row numbers count data rows from 1, not counting the header.",
                className="small mb-0",
            ),
        ]
    elif intake.status == REFUSED:
        n = len(intake.problems)
        title = f"{name} cannot be kept: {_plural(n, 'problem')} found"
        hints = fix_hints(intake.problems)
        body = [
            problems_table(intake.problems),
            html.Ul([html.Li(h) for h in hints], className="small mb-1") if hints else None,
            html.Div(
                "Nothing was kept. Fix the file and upload it again"
                + (", or map its columns yourself." if intake.columns else "."),
                className="small text-muted",
            ),
        ]
    else:
        shown = ", ".join(f"'{c}'" for c in intake.columns[:MAX_COLUMNS_SHOWN])
        more = f" and {len(intake.columns) - MAX_COLUMNS_SHOWN} more" if len(intake.columns) > MAX_COLUMNS_SHOWN else ""
        title = f"{name}: the columns match no known profile"
        body = [
            html.P(
                f"{intake.rows:,} rows with the columns {shown}{more}. Say below which column is which, "
                "then press Apply mapping to see the report.",
                className="small mb-0",
            )
        ]
    return dbc.Card(
        [
            dbc.CardHeader(
                [html.H6(title, className="mb-0"), dbc.Badge(badge, color=colour, className="data-status")],
                className="d-flex justify-content-between align-items-center gap-2",
            ),
            dbc.CardBody(body),
        ],
        className=f"mb-2 border-{colour} data-report-card",
    )


def unreadable_report(filename: str, problems: Sequence[Problem]) -> dbc.Card:
    """An upload that could not be read at all (too large, not CSV or Parquet, empty ...): nothing kept."""
    return intake_report(Intake(upload_id=None, filename=filename, status=REFUSED, problems=tuple(problems)))


def job_note(result: dict | None) -> dbc.Alert | None:
    """What the preparing job did: the dataset it added (with the rows dropped), or why it failed."""
    if not result:
        return None
    if not result.get("ok"):
        return dbc.Alert(html.Pre(str(result.get("message", "")), className="mb-0 data-message"), color="danger")
    skipped = int(result.get("skipped") or 0)
    dropped = f" {_plural(skipped, 'invalid row')} dropped (recorded with the dataset)." if skipped else ""
    return dbc.Alert(
        f"Kept '{result['name']}': {result.get('rows', 0):,} events.{dropped} Activate it to see it in every tab.",
        color="success",
        className="mb-2",
    )


def dataset_table(infos: Sequence[DatasetInfo], active: str | None, deletable: dict[str, str | None]) -> dbc.Table:
    """Every dataset with its profile, size, owner and a Delete button (none for the bundled one)."""
    head = html.Thead(
        html.Tr(
            [
                html.Th("Dataset"),
                html.Th("Profile"),
                html.Th("Events"),
                html.Th("Sessions"),
                html.Th("Added by"),
                html.Th(""),
            ]
        )
    )
    rows = []
    for info in infos:
        refusal = deletable.get(info.key)
        delete = (
            None
            if info.bundled
            else dbc.Button(
                "Delete",
                id=ids.data_delete(info.key),
                color="danger",
                outline=True,
                size="sm",
                disabled=refusal is not None,
                title=refusal or f"Delete '{info.name}' and its models",
            )
        )
        name = [info.name, dbc.Badge("in use", color="primary", className="ms-1")] if info.key == active else info.name
        added = (
            "bundled"
            if info.bundled
            else (info.owner or "(no login)") + (f", {info.created[:10]}" if info.created else "")
        )
        rows.append(
            html.Tr(
                [
                    html.Td(name),
                    html.Td(info.profile_title),
                    html.Td(f"{info.rows:,}"),
                    html.Td(f"{info.sessions:,}"),
                    html.Td(added, className="small"),
                    html.Td(delete),
                ]
            )
        )
    return dbc.Table([head, html.Tbody(rows)], size="sm", hover=True, className="mb-0 data-list")
