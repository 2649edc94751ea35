"""Business KPIs for a filter, computed from a pre-aggregated session cube.

Every KPI is a sum over sessions (sessions, clicks, bounces, conversions,
revenue, funnel steps), so sessions are aggregated once into a cube keyed by
(date, country, main category, main colour). A filter then selects cube rows
and sums them: the cost depends on the number of distinct keys, not on the
number of clicks, which keeps the dashboard fast on millions of sessions.
``session_kpis`` computes the same numbers straight from session rows; the
tests hold the two to each other.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta

import numpy as np
import pandas as pd

from ml.data import schema as S
from ml.features.labels import TARGET_BASKET, TARGET_CONVERTED

CUBE_KEYS = ("date", "country", "main_category", "main_colour")
DIMENSIONS = {"country": S.COUNTRY, "main_category": S.CATEGORY, "main_colour": S.COLOUR}
DIMENSION_TITLES = {"country": "Country", "main_category": "Main category", "main_colour": "Main colour"}
FUNNEL_STEPS = (
    ("sessions", "Sessions"),
    ("multi_click", "2+ clicks"),
    ("multi_product", "2+ products"),
    ("reviewed", "Re-viewed a product (converted, proxy)"),
)
SUMS = ("sessions", "clicks", "bounces", "conversions", "revenue", "multi_click", "multi_product", "reviewed")


@dataclass(frozen=True)
class SessionFilter:
    """Which sessions to count: a date range (inclusive) and codes to keep (empty = all)."""

    start: date | None = None
    end: date | None = None
    countries: tuple[int, ...] = ()
    categories: tuple[int, ...] = ()
    colours: tuple[int, ...] = ()

    def previous_period(self) -> SessionFilter | None:
        """The same filter over the equally long period just before, if the range is bounded."""
        if self.start is None or self.end is None:
            return None
        length = (self.end - self.start).days + 1
        return replace(self, start=self.start - timedelta(days=length), end=self.start - timedelta(days=1))

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        """Rows of a cube or session table that pass the filter."""
        keep = np.ones(len(frame), dtype=bool)
        dates = frame["date"].to_numpy()
        if self.start is not None:
            keep &= dates >= np.datetime64(self.start)
        if self.end is not None:
            keep &= dates < np.datetime64(self.end + timedelta(days=1))
        for column, codes in (
            ("country", self.countries),
            ("main_category", self.categories),
            ("main_colour", self.colours),
        ):
            if codes:
                keep &= np.isin(frame[column].to_numpy(), codes)
        return keep


def _session_measures(sessions: pd.DataFrame) -> pd.DataFrame:
    converted = sessions[TARGET_CONVERTED].astype(bool)
    multi_product = sessions["n_products"] >= 2
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
        },
        index=sessions.index,
    )


def build_cube(sessions: pd.DataFrame) -> pd.DataFrame:
    """Sum the per-session measures by (date, country, main category, main colour)."""
    measures = _session_measures(sessions)
    keys = sessions[list(CUBE_KEYS)].reset_index(drop=True)
    cube = pd.concat([keys, measures.reset_index(drop=True)], axis=1).groupby(list(CUBE_KEYS), observed=True).sum()
    return cube.reset_index()


def _ratios(totals: dict[str, float]) -> dict[str, float]:
    sessions = totals["sessions"]
    conversions = totals["conversions"]
    nan = float("nan")
    return {
        **totals,
        "clicks_per_session": totals["clicks"] / sessions if sessions else nan,
        "bounce_rate": totals["bounces"] / sessions if sessions else nan,
        "conversion_rate": conversions / sessions if sessions else nan,
        "revenue_per_converting_session": totals["revenue"] / conversions if conversions else nan,
        "revenue_per_session": totals["revenue"] / sessions if sessions else nan,
    }


def _totals(frame: pd.DataFrame) -> dict[str, float]:
    sums = frame[list(SUMS)].sum()
    return _ratios({name: float(sums[name]) for name in SUMS})


def session_kpis(sessions: pd.DataFrame, filt: SessionFilter) -> dict[str, float]:
    """KPIs straight from session rows (the reference the cube must agree with)."""
    return _totals(_session_measures(sessions[filt.mask(sessions)]))


@dataclass(frozen=True)
class KpiComparison:
    current: dict[str, float]
    previous: dict[str, float] | None
    previous_filter: SessionFilter | None

    def change(self, name: str) -> float | None:
        """Relative change against the previous period; ``None`` when there is nothing to compare."""
        if self.previous is None:
            return None
        before, now = self.previous.get(name), self.current.get(name)
        if before is None or now is None or np.isnan(before) or np.isnan(now) or before == 0:
            return None
        return (now - before) / abs(before)


def kpi_summary(cube: pd.DataFrame, filt: SessionFilter) -> KpiComparison:
    """KPIs for the filter and for the previous period of equal length (None if it has no sessions)."""
    current = _totals(cube[filt.mask(cube)])
    prev_filter = filt.previous_period()
    previous = None
    if prev_filter is not None:
        rows = cube[prev_filter.mask(cube)]
        previous = _totals(rows) if len(rows) else None
    return KpiComparison(current, previous, prev_filter)


def trend(cube: pd.DataFrame, filt: SessionFilter, freq: str = "D") -> pd.DataFrame:
    """Sessions, conversions, conversion rate and revenue per day ("D") or week ("W", weeks start Monday)."""
    rows = cube[filt.mask(cube)]
    period = rows["date"].dt.to_period("W-SUN").dt.start_time if freq == "W" else rows["date"]
    out = rows.groupby(period.rename("period"))[["sessions", "conversions", "revenue"]].sum()
    if freq == "D" and len(out):
        full = pd.date_range(out.index.min(), out.index.max(), freq="D", name="period")
        out = out.reindex(full, fill_value=0)
    out["conversion_rate"] = np.where(out["sessions"] > 0, out["conversions"] / out["sessions"].clip(lower=1), np.nan)
    return out.reset_index()


def breakdown(cube: pd.DataFrame, filt: SessionFilter, dimension: str) -> pd.DataFrame:
    """Sessions, share, conversion rate and revenue per value of a dimension, largest first, decoded."""
    if dimension not in DIMENSIONS:
        raise ValueError(f"unknown dimension {dimension!r}; choose from {sorted(DIMENSIONS)}")
    rows = cube[filt.mask(cube)]
    out = rows.groupby(dimension)[["sessions", "conversions", "revenue", "clicks"]].sum()
    out = out[out["sessions"] > 0].sort_values("sessions", ascending=False)
    total = out["sessions"].sum()
    out["share"] = out["sessions"] / total if total else np.nan
    out["conversion_rate"] = out["conversions"] / out["sessions"]
    out["revenue_per_session"] = out["revenue"] / out["sessions"]
    out = out.reset_index().rename(columns={dimension: "code"})
    out.insert(1, "label", [S.decode(DIMENSIONS[dimension], int(c)) for c in out["code"]])
    return out


def funnel(cube: pd.DataFrame, filt: SessionFilter) -> pd.DataFrame:
    """The browse funnel: sessions -> 2+ clicks -> 2+ products -> re-viewed, with step and overall rates."""
    totals = cube.loc[filt.mask(cube), [step for step, _ in FUNNEL_STEPS]].sum()
    counts = [float(totals[step]) for step, _ in FUNNEL_STEPS]
    first = counts[0] or np.nan
    previous = [counts[0], *counts[:-1]]
    return pd.DataFrame(
        {
            "step": [label for _, label in FUNNEL_STEPS],
            "sessions": counts,
            "of_start": [c / first for c in counts],
            "of_previous": [c / p if p else np.nan for c, p in zip(counts, previous, strict=True)],
        }
    )


def breakdown_export(cube: pd.DataFrame, filt: SessionFilter) -> pd.DataFrame:
    """All three breakdowns in one table, for the CSV download."""
    parts = []
    for dimension, title in DIMENSION_TITLES.items():
        part = breakdown(cube, filt, dimension)
        part.insert(0, "dimension", title)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)
