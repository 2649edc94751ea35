"""Business KPIs for a filter, computed from a pre-aggregated session cube.

Every KPI is a sum over sessions (sessions, events, bounces, conversions,
revenue, carts, orders, funnel steps), so sessions are aggregated once into a
cube keyed by the date and the dataset's filter dimensions: country, main
category and main colour on the UCI file; the main category and each
dimension's main value (brand, device, ...) on other event logs. A filter then
selects cube rows and sums them: the cost depends on the number of distinct
keys, not on the number of events, which keeps the dashboard fast on millions
of sessions. ``session_kpis`` computes the same numbers straight from session
rows; the tests hold the two to each other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from ml.data import schema as S
from ml.data.codes import NONE_CODE
from ml.features import periods
from ml.features.labels import TARGET_BASKET, TARGET_CONVERTED

UCI_CUBE_DIMENSIONS = ("country", "main_category", "main_colour")
MAX_CUBE_DIMENSIONS = 6  # filters and breakdowns beyond the category: the profile's first dimensions
CUBE_TOP_CODES = 50  # a dimension's codes beyond its 50 most frequent are pooled (code 0) in the cube
DIMENSION_TITLES = {"country": "Country", "main_category": "Main category", "main_colour": "Main colour"}
COUNT_SUMS = (
    "sessions",
    "clicks",
    "bounces",
    "conversions",
    "revenue",
    "multi_click",
    "multi_product",
    "reviewed",
    "viewed",
    "carted",
    "purchased",
    "cart_abandoned",
    "orders",
)
SUMS = COUNT_SUMS
PROXY_FUNNEL = (
    ("sessions", "Sessions"),
    ("multi_click", "2+ clicks"),
    ("conversions", "Re-viewed a product (converted, proxy)"),
)
PURCHASE_FUNNEL = (
    ("sessions", "Sessions"),
    ("viewed", "Viewed a product"),
    ("carted", "Added to cart"),
    ("conversions", "Purchased (converted)"),  # the conversion card's numerator: one definition
)
FUNNEL_STEPS = PROXY_FUNNEL


def codebook_of(column: str) -> str:
    """The codebook a cube column's codes belong to: ``main_brand`` -> ``brand``, ``country`` -> ``country``."""
    return column.removeprefix("main_")


def dimension_title(column: str) -> str:
    """A readable name for a cube column ("Main brand")."""
    return DIMENSION_TITLES.get(column) or column.replace("_", " ").capitalize()


class SessionFilter:
    """Which sessions to count: a date range (inclusive) and, per cube dimension, codes to keep (empty = all).

    ``SessionFilter(start=..., end=..., country=(29,), main_category=(2,))``.
    Immutable and hashable, so views can be cached by filter.
    """

    __slots__ = ("codes", "end", "start")

    def __init__(self, start: date | None = None, end: date | None = None, **codes: Iterable[int]):
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)
        kept = tuple(sorted((name, tuple(sorted({int(c) for c in values}))) for name, values in codes.items()))
        object.__setattr__(self, "codes", tuple((name, values) for name, values in kept if values))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("SessionFilter is immutable")

    def _key(self) -> tuple:
        return (self.start, self.end, self.codes)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SessionFilter) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        parts = [f"start={self.start!r}", f"end={self.end!r}", *(f"{k}={v!r}" for k, v in self.codes)]
        return f"SessionFilter({', '.join(parts)})"

    def codes_for(self, column: str) -> tuple[int, ...]:
        """The codes kept for one dimension (empty = all)."""
        return dict(self.codes).get(column, ())

    def replace(self, **changes: object) -> SessionFilter:
        """A copy with the dates and/or some dimensions' codes changed."""
        start = changes.pop("start", self.start)
        end = changes.pop("end", self.end)
        return SessionFilter(start=start, end=end, **{**dict(self.codes), **changes})  # type: ignore[arg-type]

    def previous_period(self) -> SessionFilter | None:
        """The same filter over the equally long period just before, if the range is bounded."""
        if self.start is None or self.end is None:
            return None
        length = (self.end - self.start).days + 1
        return self.replace(start=self.start - timedelta(days=length), end=self.start - timedelta(days=1))

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        """Rows of a cube or session table that pass the filter."""
        keep = np.ones(len(frame), dtype=bool)
        dates = frame["date"].to_numpy()
        if self.start is not None:
            keep &= dates >= np.datetime64(self.start)
        if self.end is not None:
            keep &= dates < np.datetime64(self.end + timedelta(days=1))
        for column, codes in self.codes:
            if column in frame:
                keep &= np.isin(frame[column].to_numpy(), codes)
        return keep


def _is_uci(sessions: pd.DataFrame) -> bool:
    return set(UCI_CUBE_DIMENSIONS) <= set(sessions.columns) and "premium_share" in sessions


def cube_dimensions(sessions: pd.DataFrame) -> tuple[str, ...]:
    """The session-table columns the cube is keyed by (besides the date)."""
    if _is_uci(sessions):
        return UCI_CUBE_DIMENSIONS
    mains = [c for c in sessions.columns if c.startswith("main_") and c != "main_category"]
    return ("main_category", *mains[:MAX_CUBE_DIMENSIONS])


def _session_measures(sessions: pd.DataFrame) -> pd.DataFrame:
    converted = sessions[TARGET_CONVERTED].astype(bool)
    multi_product = sessions["n_products"] >= 2
    carted = sessions["n_carts"] > 0 if "n_carts" in sessions else pd.Series(False, index=sessions.index)
    purchased = sessions["n_purchases"] > 0 if "n_purchases" in sessions else pd.Series(False, index=sessions.index)
    views = sessions["n_views"] if "n_views" in sessions else sessions["n_clicks"]
    orders = sessions["n_orders"] if "n_orders" in sessions else converted.astype(np.int64)
    return pd.DataFrame(
        {
            "sessions": 1,
            "clicks": sessions["n_clicks"].astype(np.int64),
            "bounces": (sessions["n_clicks"] == 1).astype(np.int64),
            "conversions": converted.astype(np.int64),
            "revenue": sessions[TARGET_BASKET].astype(float),
            "multi_click": (sessions["n_clicks"] >= 2).astype(np.int64),
            "multi_product": multi_product.astype(np.int64),
            "reviewed": (converted & multi_product).astype(np.int64),
            "viewed": (views > 0).astype(np.int64),
            "carted": carted.astype(np.int64),
            "purchased": purchased.astype(np.int64),
            "cart_abandoned": (carted & ~purchased).astype(np.int64),
            "orders": orders.astype(np.int64),
        },
        index=sessions.index,
    )


def cube_keys(sessions: pd.DataFrame) -> pd.DataFrame:
    """Each session's cube key: its date and its (pooled) code in each cube dimension."""
    keys = {"date": sessions["date"].to_numpy()}
    pool = not _is_uci(sessions)  # the UCI codebooks are small; other dimensions can have thousands of values
    for column in cube_dimensions(sessions):
        codes = sessions[column].to_numpy()
        keys[column] = np.where(codes > CUBE_TOP_CODES, NONE_CODE, codes) if pool else codes
    return pd.DataFrame(keys)


def build_cube(sessions: pd.DataFrame) -> pd.DataFrame:
    """Sum the per-session measures by date and the cube dimensions."""
    keys = cube_keys(sessions)
    measures = _session_measures(sessions).reset_index(drop=True)
    cube = pd.concat([keys, measures], axis=1).groupby(list(keys.columns), observed=True).sum()
    return cube.reset_index()


def dimensions_of(cube: pd.DataFrame) -> tuple[str, ...]:
    """A cube's dimension columns (its keys besides the date)."""
    return tuple(c for c in cube.columns if c != "date" and c not in SUMS)


def _ratios(totals: dict[str, float]) -> dict[str, float]:
    sessions = totals["sessions"]
    conversions = totals["conversions"]
    nan = float("nan")

    def rate(numerator: float, denominator: float) -> float:
        return numerator / denominator if denominator else nan

    return {
        **totals,
        "clicks_per_session": rate(totals["clicks"], sessions),
        "bounce_rate": rate(totals["bounces"], sessions),
        "conversion_rate": rate(conversions, sessions),
        "revenue_per_converting_session": rate(totals["revenue"], conversions),
        "revenue_per_session": rate(totals["revenue"], sessions),
        "average_order_value": rate(totals["revenue"], totals["orders"]),
        "cart_rate": rate(totals["carted"], sessions),
        "cart_abandonment": rate(totals["cart_abandoned"], totals["carted"]),
    }


def _totals(frame: pd.DataFrame) -> dict[str, float]:
    sums = frame[list(SUMS)].sum()
    return _ratios({name: float(sums[name]) for name in SUMS})


def session_kpis(sessions: pd.DataFrame, filt: SessionFilter) -> dict[str, float]:
    """KPIs straight from session rows (the reference the cube must agree with)."""
    keys = cube_keys(sessions)
    return _totals(_session_measures(sessions)[filt.mask(keys)])


RATE_KPIS = frozenset({"bounce_rate", "conversion_rate", "cart_rate", "cart_abandonment"})  # changes in pp
TOTAL_KPIS = frozenset(COUNT_SUMS)  # sums over days: compared only with a fully covered previous period


@dataclass(frozen=True)
class Delta:
    """A KPI's change: in percentage points for rates (``kind="pp"``), else relative (``kind="relative"``)."""

    kind: str
    change: float
    previous: float
    current: float


@dataclass(frozen=True)
class KpiComparison:
    current: dict[str, float]
    previous: dict[str, float] | None
    previous_filter: SessionFilter | None
    period: periods.PeriodPlan | None = None

    def _pair(self, name: str) -> tuple[float, float] | None:
        if self.previous is None:
            return None
        if name in TOTAL_KPIS and self.period is not None and not self.period.compares_totals():
            return None  # 31 days against 9 would be a change made of missing days
        before, now = self.previous.get(name), self.current.get(name)
        if before is None or now is None or np.isnan(before) or np.isnan(now):
            return None
        return before, now

    def change(self, name: str) -> float | None:
        """Relative change against the previous period; ``None`` when there is nothing to compare."""
        pair = self._pair(name)
        if pair is None or pair[0] == 0:
            return None
        before, now = pair
        return (now - before) / abs(before)

    def delta(self, name: str) -> Delta | None:
        """The change as shown: percentage points for rates, relative for totals and averages."""
        pair = self._pair(name)
        if pair is None:
            return None
        before, now = pair
        if name in RATE_KPIS:
            return Delta("pp", (now - before) * 100, before, now)
        relative = self.change(name)
        return None if relative is None else Delta("relative", relative, before, now)


def coverage_of(cube: pd.DataFrame) -> periods.Coverage | None:
    """The days a cube's data covers (its first and last date)."""
    dates = cube.loc[cube["sessions"] > 0, "date"] if len(cube) else cube["date"]
    if dates.empty:
        return None
    return periods.Coverage(dates.min().date(), dates.max().date())


def kpi_summary(cube: pd.DataFrame, filt: SessionFilter, coverage: periods.Coverage | None = None) -> KpiComparison:
    """KPIs for the filter and for the covered part of the equally long period before it.

    See :mod:`ml.features.periods`: totals are compared only when the data
    covers the whole previous period, rates and averages also against its
    covered part; ``previous`` is None when nothing earlier is covered.
    """
    current = _totals(cube[filt.mask(cube)])
    coverage = coverage or coverage_of(cube)
    period = periods.plan(filt.start, filt.end, coverage)
    prev_filter = filt.previous_period()
    if period.previous_start is not None:
        prev_filter = filt.replace(start=period.previous_start, end=period.previous_end)
    previous = None
    if period.kind != periods.NONE:
        rows = cube[filt.replace(start=period.compared_start, end=period.compared_end).mask(cube)]
        previous = _totals(rows) if len(rows) else None
    return KpiComparison(current, previous, prev_filter, period)


def trend(
    cube: pd.DataFrame, filt: SessionFilter, freq: str = "D", coverage: periods.Coverage | None = None
) -> pd.DataFrame:
    """Sessions, conversions, conversion rate and revenue per day ("D") or week ("W", weeks start Monday).

    ``days`` is how many days of each period the filter and the data cover;
    ``partial`` marks the weeks at the edges with fewer than 7 (their totals
    are not comparable with whole weeks).
    """
    rows = cube[filt.mask(cube)]
    period = rows["date"].dt.to_period("W-SUN").dt.start_time if freq == "W" else rows["date"]
    out = rows.groupby(period.rename("period"))[["sessions", "conversions", "revenue"]].sum()
    if freq == "D" and len(out):
        full = pd.date_range(out.index.min(), out.index.max(), freq="D", name="period")
        out = out.reindex(full, fill_value=0)
    out["conversion_rate"] = np.where(out["sessions"] > 0, out["conversions"] / out["sessions"].clip(lower=1), np.nan)
    out = out.reset_index()
    covered = (coverage or coverage_of(cube)) if len(cube) else None
    span = covered.clip(filt.start, filt.end) if covered else None
    if freq == "W" and span is not None:
        out["days"] = [periods.week_days_covered(p.date(), *span) for p in out["period"]]
    else:
        out["days"] = 1 if freq == "D" else 7
    out["partial"] = out["days"] < (7 if freq == "W" else 1)
    return out


def breakdown(
    cube: pd.DataFrame,
    filt: SessionFilter,
    dimension: str,
    codebooks: Mapping[str, Mapping[int, str]] | None = None,
) -> pd.DataFrame:
    """Sessions, share, conversion rate and revenue per value of a dimension, largest first, decoded."""
    if dimension not in dimensions_of(cube):
        raise ValueError(f"unknown dimension {dimension!r}; choose from {sorted(dimensions_of(cube))}")
    books = codebooks or S.CODEBOOK
    rows = cube[filt.mask(cube)]
    out = rows.groupby(dimension)[["sessions", "conversions", "revenue", "clicks", "orders", "carted"]].sum()
    out = out[out["sessions"] > 0].sort_values("sessions", ascending=False)
    total = out["sessions"].sum()
    out["share"] = out["sessions"] / total if total else np.nan
    out["conversion_rate"] = out["conversions"] / out["sessions"]
    out["revenue_per_session"] = out["revenue"] / out["sessions"]
    out = out.reset_index().rename(columns={dimension: "code"})
    book = books.get(codebook_of(dimension), {})
    pooled = "(other)" if dimension not in UCI_CUBE_DIMENSIONS else "code 0"
    out.insert(1, "label", [book.get(int(c), pooled if int(c) == NONE_CODE else f"code {int(c)}") for c in out["code"]])
    return out


def funnel_steps(cube: pd.DataFrame) -> Sequence[tuple[str, str]]:
    """View -> cart -> purchase when the data has purchases, else the browse funnel ending in the proxy."""
    return PURCHASE_FUNNEL if cube["purchased"].sum() > 0 else PROXY_FUNNEL


def funnel(cube: pd.DataFrame, filt: SessionFilter) -> pd.DataFrame:
    """Sessions reaching each step, with the share of all sessions and of the previous step.

    The last step is the sessions that convert, so it equals the conversion card.
    """
    steps = funnel_steps(cube)
    totals = cube.loc[filt.mask(cube), [step for step, _ in steps]].sum()
    counts = [float(totals[step]) for step, _ in steps]
    first = counts[0] or np.nan
    previous = [counts[0], *counts[:-1]]
    return pd.DataFrame(
        {
            "step": [label for _, label in steps],
            "sessions": counts,
            "of_start": [c / first for c in counts],
            "of_previous": [c / p if p else np.nan for c, p in zip(counts, previous, strict=True)],
        }
    )


def breakdown_export(
    cube: pd.DataFrame, filt: SessionFilter, codebooks: Mapping[str, Mapping[int, str]] | None = None
) -> pd.DataFrame:
    """Every dimension's breakdown in one table, for the CSV download."""
    parts = []
    for dimension in dimensions_of(cube):
        part = breakdown(cube, filt, dimension, codebooks)
        part.insert(0, "dimension", dimension_title(dimension))
        parts.append(part)
    return pd.concat(parts, ignore_index=True)
