"""What a source holds, in the terms a user checks first: the ``python -m ml summary`` report.

Profile, rows, events by type, sessions, how many sessions convert and by
which label (purchases, or the re-view proxy when there are none), revenue,
dates, dimensions with their most common values, and every warning or
skipped row.
"""

from __future__ import annotations

import numpy as np

from ml.data import schema as S
from ml.data.clicks import index_clicks
from ml.data.codes import NONE_CODE
from ml.data.loading import LoadedEvents
from ml.features.labels import choose_definition, session_targets

TOP_VALUES = 3


def describe_events(loaded: LoadedEvents) -> dict[str, object]:
    """A JSON-friendly summary of loaded events."""
    events = loaded.events
    indexed = index_clicks(events)
    definition = choose_definition(events)
    targets = session_targets(indexed, definition)
    n_sessions = indexed.n_sessions
    converting = int(targets.converted.sum())
    dimensions = {}
    for name in loaded.dimensions:
        codes, counts = np.unique(events[name].to_numpy(), return_counts=True)
        book = loaded.codebooks.get(name, {})
        top = np.argsort(-counts, kind="stable")[:TOP_VALUES]
        dimensions[name] = {
            "values": len(codes),
            "top": [f"{book.get(int(codes[i]), f'code {codes[i]}')} ({counts[i] / len(events):.0%})" for i in top],
        }
    summary = loaded.summary()
    summary |= {
        "label": definition.title,
        "label_text": definition.converted_text,
        "converting_sessions": converting,
        "conversion_rate": converting / n_sessions if n_sessions else float("nan"),
        "revenue": float(targets.basket_value.sum()),
        "revenue_is_proxy": definition.is_proxy,
        "has_prices": bool(np.isfinite(events[S.PRICE].to_numpy()).any()),
        "has_timestamps": loaded.has_timestamps,
        "mean_events_per_session": len(events) / n_sessions if n_sessions else float("nan"),
        "dimension_values": dimensions,
        "categories": int(np.count_nonzero(np.unique(events[S.CATEGORY].to_numpy()) != NONE_CODE)),
        "products": int(events[S.PRODUCT].nunique()),
        "other_event_values": dict(loaded.other_events),
        "skipped_problems": [p.describe() for p in loaded.skipped_problems],
    }
    return summary


def format_summary(summary: dict[str, object]) -> str:
    """The summary as plain text for the terminal."""
    events = summary["events"]
    lines = [
        f"source        {summary['source']}",
        f"read as       {summary['input_form']}",
        f"profile       {summary['profile_title']} ({summary['profile']})",
        f"rows          {summary['rows']:,}"
        + (f" ({summary['skipped_rows']:,} invalid rows skipped)" if summary["skipped_rows"] else ""),
        "events        " + ", ".join(f"{events[k]:,} {k}" for k in ("view", "cart", "purchase", "other")),
        f"sessions      {summary['sessions']:,} ({summary['mean_events_per_session']:.1f} events each)",
        f"products      {summary['products']:,} "
        + (f"in {summary['categories']:,} categories" if summary["categories"] else "(no categories in the data)"),
        f"dates         {summary['first_date']} .. {summary['last_date']}"
        + ("" if summary["has_timestamps"] else " (dates only, no times)"),
        f"label         {summary['label']}: {summary['label_text']}",
        f"converting    {summary['converting_sessions']:,} sessions ({summary['conversion_rate']:.1%})",
    ]
    revenue = summary["revenue"]
    if summary["has_prices"]:
        what = "potential revenue (proxy)" if summary["revenue_is_proxy"] else "revenue"
        lines.append(f"revenue       {revenue:,.2f} ({what})")
    else:
        lines.append("revenue       not in the data (no price column)")
    dims = summary["dimension_values"]
    if dims:
        lines.append(
            "dimensions    "
            + "; ".join(
                f"{name}: {info['values']:,} values, top {', '.join(info['top'])}" for name, info in dims.items()
            )
        )
    if summary["other_event_values"]:
        shown = ", ".join(f"'{k}' x{v:,}" for k, v in list(summary["other_event_values"].items())[:8])
        lines.append(f"other events  {shown} (counted as 'other')")
    for warning in summary["warnings"]:
        lines.append(f"warning       {warning}")
    for problem in summary["skipped_problems"]:
        lines.append(f"skipped       {problem}")
    return "\n".join(lines)
