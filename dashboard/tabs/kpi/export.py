"""The KPI tab's CSV downloads: rounded values, and the dataset, period and filters in the first lines and the name.

The first lines start with ``#`` (``pandas.read_csv(path, comment="#")`` skips
them); then comes an ordinary CSV table. Text cells that a spreadsheet would
run as a formula are neutralised (``ml.data.export.to_csv_text``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pandas as pd

from dashboard.filter_bar import coverage
from ml.data.export import to_csv_text
from ml.features import anomalies, kpis
from ml.features.kpis import SessionFilter, codebook_of, dimension_title, dimensions_of
from ml.features.prepared import PreparedData

PERCENT_COLUMNS = {"share": "share_pct", "conversion_rate": "conversion_rate_pct"}


def period_text(data: PreparedData, filt: SessionFilter) -> str:
    covered = coverage(data)
    start = filt.start or (covered.first if covered else None)
    end = filt.end or (covered.last if covered else None)
    if start is None or end is None:
        return "all dates"
    suffix = " (all dates)" if filt.start is None and filt.end is None else ""
    return f"{start.isoformat()} to {end.isoformat()}{suffix}"


def filter_text(data: PreparedData, filt: SessionFilter) -> str:
    """ "Country = Poland, Czech Republic; Main category = all; ..." (labels, not codes)."""
    parts = []
    for column in dimensions_of(data.cube):
        codes = filt.codes_for(column)
        book = data.codebooks.get(codebook_of(column), {})
        names = ", ".join(book.get(c, f"code {c}") for c in codes) if codes else "all"
        parts.append(f"{dimension_title(column)} = {names}")
    return "; ".join(parts)


def preamble(data: PreparedData, what: str, filt: SessionFilter) -> list[str]:
    return [
        f"# {what}",
        f"# Dataset: {data.display_name} ({data.key})",
        f"# Period: {period_text(data, filt)}",
        f"# Filters: {filter_text(data, filt)}",
        f"# {data.definition.title}: {data.definition.converted_text}",
        f"# Made: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; lines starting with # are notes, the table follows",
    ]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def file_name(stem: str, dataset: str, filt: SessionFilter) -> str:
    """``kpi-breakdown_bundled_2008-07-14_2008-08-10_country-9-29.csv``: what, data, period, filters."""
    dates = f"{filt.start or 'start'}_{filt.end or 'end'}" if (filt.start or filt.end) else "all-dates"
    codes = "_".join(f"{codebook_of(c)}-{'-'.join(map(str, v))}" for c, v in filt.codes)
    return "_".join(p for p in (stem, _slug(dataset), dates, codes) if p) + ".csv"


def rounded_breakdown(table: pd.DataFrame) -> pd.DataFrame:
    """Counts as integers, shares and rates as per cent with one decimal, money with two."""
    out = table.copy()
    for column, new in PERCENT_COLUMNS.items():
        if column in out:
            out[new] = (out.pop(column) * 100).round(1)
    for column in ("revenue", "revenue_per_session"):
        if column in out:
            out[column] = out[column].round(2)
    for column in ("sessions", "conversions", "clicks", "orders", "carted"):
        if column in out:
            out[column] = out[column].round().astype("int64")
    first = [c for c in ("dimension", "code", "label", "sessions", "share_pct") if c in out]
    return out[first + [c for c in out.columns if c not in first]]


def with_preamble(lines: list[str], table: pd.DataFrame) -> str:
    return "\n".join(lines) + "\n" + to_csv_text(table)


def breakdown_csv(data: PreparedData, dataset: str, filt: SessionFilter) -> dict:
    """The download of every dimension's breakdown for the filter (``dcc.Download`` data)."""
    table = rounded_breakdown(kpis.breakdown_export(data.cube, filt, data.codebooks))
    text = with_preamble(preamble(data, "KPI breakdown by every dimension", filt), table)
    return {"content": text, "filename": file_name("kpi-breakdown", dataset, filt), "type": "text/csv"}


def alerts_csv(data: PreparedData, dataset: str, filt: SessionFilter, alerts: pd.DataFrame, rule: str) -> dict:
    """The download of the flagged days (``anomalies.flagged_days``), with the rule that flagged them."""
    flagged = anomalies.flagged_days(alerts)
    table = pd.DataFrame(
        {
            "date": flagged["date"].dt.strftime("%Y-%m-%d"),
            "metric": flagged["metric"],
            "value": flagged["value"].round(4),
            "usual": flagged["baseline"].round(4),
            "robust_z": flagged["z"].round(2),
            "explanation": flagged["explanation"],
        }
    )
    lines = [*preamble(data, "KPI trend alerts: flagged days", filt), f"# Rule: {rule}"]
    return {
        "content": with_preamble(lines, table),
        "filename": file_name("kpi-alerts", dataset, filt),
        "type": "text/csv",
    }
