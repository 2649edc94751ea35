"""Which dates a period comparison may use: only days the data covers, never a delta over missing days.

A filter's date range is first clipped to the days the data covers. The
period it is compared with is the equally long stretch just before it. When
the data covers all of that earlier stretch, every KPI is compared. When it
covers only part of it (the data starts inside it), totals (sessions, clicks,
revenue, orders) are not compared at all -- 31 days against 9 would be a
change made of missing days -- while rates and averages (conversion, bounce
rate, clicks per session, order value) are compared against the covered part,
and the comparison says how many days that is. When it covers none of it,
there is nothing to compare.

The landing view is :func:`default_period`: the latest four complete weeks
(Monday to Sunday) the data covers, compared with the four complete weeks
before them (fewer weeks on shorter data, so there is always a whole earlier
period to compare with when the data has two complete weeks).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

FULL = "full"  # the whole previous period is covered: compare every KPI
PARTIAL = "partial"  # part of it is covered: compare rates and averages over the covered days only
NONE = "none"  # nothing to compare with

DEFAULT_WEEKS = 4


@dataclass(frozen=True)
class Coverage:
    """The first and last day the data has (inclusive)."""

    first: date
    last: date

    def clip(self, start: date | None, end: date | None) -> tuple[date, date] | None:
        """The covered part of ``start..end`` (open ends run to the data's ends), or None if none of it is."""
        lo = max(start or self.first, self.first)
        hi = min(end or self.last, self.last)
        return (lo, hi) if lo <= hi else None


def days(start: date, end: date) -> int:
    """Days in ``start..end``, both included."""
    return (end - start).days + 1


@dataclass(frozen=True)
class PeriodPlan:
    """What to compare: the covered current period and the covered part of the period before it.

    ``previous_start``/``previous_end`` are the full earlier period of equal
    length; ``compared_start``/``compared_end`` its covered part (None when
    nothing is covered). ``kind`` is FULL, PARTIAL or NONE.
    """

    start: date | None
    end: date | None
    previous_start: date | None = None
    previous_end: date | None = None
    compared_start: date | None = None
    compared_end: date | None = None
    kind: str = NONE
    reason: str = ""

    @property
    def length(self) -> int:
        return days(self.start, self.end) if self.start and self.end else 0

    @property
    def compared_days(self) -> int:
        return days(self.compared_start, self.compared_end) if self.compared_start and self.compared_end else 0

    def compares_totals(self) -> bool:
        return self.kind == FULL

    def compares_rates(self) -> bool:
        return self.kind in (FULL, PARTIAL)

    def describe(self) -> str:
        """One line saying what the changes are measured against."""
        if self.kind == NONE:
            return self.reason
        span = f"{self.compared_start:%d %b}–{self.compared_end:%d %b %Y}"
        if self.kind == FULL:
            return f"changes against the {self.length} days before ({span})"
        return (
            f"the data covers only {self.compared_days} of the {self.length} days before "
            f"({span}): rates and averages compared with those days, totals not compared"
        )


def plan(start: date | None, end: date | None, coverage: Coverage | None) -> PeriodPlan:
    """The comparison for a filter's date range over data covering ``coverage``."""
    if coverage is None:
        return PeriodPlan(start, end, reason="no data")
    if start is None and end is None:
        return PeriodPlan(None, None, reason="all dates: no earlier period to compare")
    current = coverage.clip(start, end)
    if current is None:
        return PeriodPlan(start, end, reason="the data has no days in this period")
    lo, hi = current
    length = days(lo, hi)
    prev_start, prev_end = lo - timedelta(days=length), lo - timedelta(days=1)
    covered = coverage.clip(prev_start, prev_end)
    if covered is None:
        reason = f"the data starts {coverage.first:%d %b %Y}: no earlier period to compare"
        return PeriodPlan(lo, hi, prev_start, prev_end, reason=reason)
    kind = FULL if covered == (prev_start, prev_end) else PARTIAL
    return PeriodPlan(lo, hi, prev_start, prev_end, covered[0], covered[1], kind)


def last_complete_week_end(last: date) -> date:
    """The last Sunday on or before ``last`` (the end of the latest complete Monday-Sunday week)."""
    return last - timedelta(days=(last.weekday() + 1) % 7)


def complete_weeks(coverage: Coverage) -> int:
    """How many whole Monday-Sunday weeks the data covers."""
    end = last_complete_week_end(coverage.last)
    first_monday = coverage.first + timedelta(days=(7 - coverage.first.weekday()) % 7)
    return max((end - first_monday).days + 1, 0) // 7


def default_period(coverage: Coverage, weeks: int = DEFAULT_WEEKS) -> tuple[date, date]:
    """The latest ``weeks`` complete weeks (Monday to Sunday), with as many complete weeks before them.

    Data shorter than twice ``weeks`` complete weeks gets the longest such
    split it has (the latest 1 week against the week before on 3 weeks of
    data); data with under two complete weeks gets all its dates.
    """
    weeks = min(weeks, complete_weeks(coverage) // 2)
    if weeks < 1:
        return coverage.first, coverage.last
    end = last_complete_week_end(coverage.last)
    return end - timedelta(days=7 * weeks - 1), end


def week_days_covered(week_start: date, start: date, end: date) -> int:
    """How many days of the Monday-Sunday week starting ``week_start`` fall in ``start..end``."""
    lo, hi = max(week_start, start), min(week_start + timedelta(days=6), end)
    return max(days(lo, hi), 0) if lo <= hi else 0
