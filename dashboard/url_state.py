"""The view state in the URL query, so a shared link reopens the same view.

``?tab=kpi&from=2008-06-01&to=2008-06-30&country=29,9&category=1&colour=3``.
Defaults are left out; anything unparseable is ignored rather than failing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from urllib.parse import parse_qs, urlencode

from ml.features.kpis import SessionFilter

DEFAULT_TAB = "kpi"


@dataclass(frozen=True)
class ViewState:
    tab: str = DEFAULT_TAB
    filter: SessionFilter = field(default_factory=SessionFilter)


def _date(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def _codes(text: str | None) -> tuple[int, ...]:
    if not text:
        return ()
    return tuple(int(part) for part in text.split(",") if part.strip().isdigit())


def parse_search(search: str | None, known_tabs: tuple[str, ...]) -> ViewState:
    """Read the view state from ``location.search``."""
    query = {k: v[-1] for k, v in parse_qs((search or "").lstrip("?")).items()}
    tab = query.get("tab", DEFAULT_TAB)
    return ViewState(
        tab=tab if tab in known_tabs else DEFAULT_TAB,
        filter=SessionFilter(
            start=_date(query.get("from")),
            end=_date(query.get("to")),
            countries=_codes(query.get("country")),
            categories=_codes(query.get("category")),
            colours=_codes(query.get("colour")),
        ),
    )


def to_search(state: ViewState) -> str:
    """Write the view state as ``?...`` (empty string for the default view)."""
    f = state.filter
    pairs = {
        "tab": state.tab if state.tab != DEFAULT_TAB else None,
        "from": f.start.isoformat() if f.start else None,
        "to": f.end.isoformat() if f.end else None,
        "country": ",".join(map(str, f.countries)) or None,
        "category": ",".join(map(str, f.categories)) or None,
        "colour": ",".join(map(str, f.colours)) or None,
    }
    query = urlencode({k: v for k, v in pairs.items() if v is not None}, safe=",")
    return f"?{query}" if query else ""


def filter_from_inputs(
    start: str | None,
    end: str | None,
    countries: list[int] | None,
    categories: list[int] | None,
    colours: list[int] | None,
) -> SessionFilter:
    """A filter from the filter bar's component values."""
    return SessionFilter(
        start=_date(start),
        end=_date(end),
        countries=tuple(sorted(int(c) for c in countries or ())),
        categories=tuple(sorted(int(c) for c in categories or ())),
        colours=tuple(sorted(int(c) for c in colours or ())),
    )
