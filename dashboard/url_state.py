"""The view state in the URL query, so a shared link reopens the same view.

``?dataset=shop-oct&tab=kpi&from=2019-10-01&to=2019-10-14&brand=3,7``; on the
bundled data ``?from=2008-06-01&to=2008-06-30&country=29,9&category=1&colour=3``.
Each filter dimension is named by its codebook (``category`` for the cube's
``main_category``, ``brand`` for ``main_brand``). Defaults are left out;
anything unparseable is ignored rather than failing.

Without ``from``/``to`` the filter bar opens on the default period (the latest
four complete weeks, see ``ml.features.periods``); ``?dates=all`` asks for
every date instead. The view controls of a tab (``VIEW_KEYS``: the KPI trend's
``freq=W``, the KPI breakdowns ``by=country,main_colour``) ride along in
``extra`` and are kept when the filters change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from urllib.parse import parse_qs, urlencode

from ml.config import BUNDLED_DATASET_KEY
from ml.features.kpis import SessionFilter, codebook_of

DEFAULT_TAB = "kpi"
RESERVED = frozenset({"dataset", "tab", "from", "to", "dates"})
ALL_DATES = "all"  # ?dates=all: every date, not the default period
VIEW_KEYS = ("freq", "by")  # view controls of tabs kept in the URL (KPI: trend frequency, breakdowns)


@dataclass(frozen=True)
class ViewState:
    tab: str = DEFAULT_TAB
    filter: SessionFilter = field(default_factory=SessionFilter)
    dataset: str = BUNDLED_DATASET_KEY
    extra: tuple[tuple[str, str], ...] = ()  # view controls of a tab (e.g. the trend's daily/weekly choice)
    all_dates: bool = False  # ?dates=all; without it and without from/to the default period is shown

    @property
    def default_dates(self) -> bool:
        """Whether the URL names no dates, so the default period applies."""
        return not self.all_dates and self.filter.start is None and self.filter.end is None


def parse_date(text: str | None) -> date | None:
    """An ISO date (``2008-06-01``, also with a time after it), or ``None``."""
    if not text:
        return None
    try:
        return date.fromisoformat(str(text).strip()[:10])
    except ValueError:
        return None


def _codes(text: str | None) -> tuple[int, ...]:
    if not text:
        return ()
    return tuple(int(part) for part in text.split(",") if part.strip().isdigit())


def query_of(search: str | None) -> dict[str, str]:
    """The query's parameters, the last value of each."""
    return {k: v[-1] for k, v in parse_qs((search or "").lstrip("?")).items()}


def parse_search(
    search: str | None,
    known_tabs: Sequence[str],
    dimensions: Sequence[str] = ("country", "main_category", "main_colour"),
    extra_keys: Sequence[str] = VIEW_KEYS,
) -> ViewState:
    """Read the view state from ``location.search``; ``dimensions`` are the dataset's cube dimensions."""
    query = query_of(search)
    tab = query.get("tab", DEFAULT_TAB)
    codes = {column: _codes(query.get(codebook_of(column))) for column in dimensions}
    filt = SessionFilter(start=parse_date(query.get("from")), end=parse_date(query.get("to")), **codes)
    return ViewState(
        tab=tab if tab in known_tabs else DEFAULT_TAB,
        filter=filt,
        dataset=query.get("dataset") or BUNDLED_DATASET_KEY,
        extra=extra_of(search, extra_keys),
        all_dates=query.get("dates") == ALL_DATES and filt.start is None and filt.end is None,
    )


def extra_of(search: str | None, keys: Sequence[str] = VIEW_KEYS) -> tuple[tuple[str, str], ...]:
    """The view controls a URL carries, in ``keys`` order."""
    query = query_of(search)
    return tuple((k, query[k]) for k in keys if query.get(k))


def with_params(search: str | None, **params: str | None) -> str:
    """``search`` with some parameters set (None or "" removes one), the others kept in their order."""
    query = query_of(search)
    for name, value in params.items():
        if value:
            query[name] = value
        else:
            query.pop(name, None)
    text = urlencode(query, safe=",")
    return f"?{text}" if text else ""


def to_search(state: ViewState) -> str:
    """Write the view state as ``?...`` (empty string for the default view)."""
    f = state.filter
    pairs: dict[str, str | None] = {
        "dataset": state.dataset if state.dataset != BUNDLED_DATASET_KEY else None,
        "tab": state.tab if state.tab != DEFAULT_TAB else None,
        "from": f.start.isoformat() if f.start else None,
        "to": f.end.isoformat() if f.end else None,
        "dates": ALL_DATES if state.all_dates and not (f.start or f.end) else None,
    }
    for column, codes in f.codes:
        pairs[codebook_of(column)] = ",".join(map(str, codes))
    pairs |= dict(state.extra)
    query = urlencode({k: v for k, v in pairs.items() if v}, safe=",")
    return f"?{query}" if query else ""


def dataset_of(search: str | None) -> str:
    """Only the dataset key of a URL query."""
    return query_of(search).get("dataset") or BUNDLED_DATASET_KEY


def filter_from_values(
    start: str | None, end: str | None, values: Sequence[object] | None, names: Sequence[Mapping | str] | None
) -> SessionFilter:
    """A filter from the filter bar's components: the date picker and the per-dimension dropdowns."""
    codes = {}
    for value, name in zip(values or (), names or (), strict=False):
        column = name["name"] if isinstance(name, Mapping) else name
        codes[str(column)] = tuple(int(c) for c in value or ())
    return SessionFilter(start=parse_date(start), end=parse_date(end), **codes)
