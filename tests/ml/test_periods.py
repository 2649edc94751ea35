"""Period comparisons only over covered dates; the default period; partial weeks; KPI alerts from a cube."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from ml.features import anomalies, kpis
from ml.features.kpis import SessionFilter
from ml.features.periods import FULL, NONE, PARTIAL, Coverage, default_period, plan

BUNDLED = Coverage(date(2008, 4, 1), date(2008, 8, 13))


def test_a_previous_period_inside_the_data_is_compared_in_full():
    june = plan(date(2008, 6, 1), date(2008, 6, 30), BUNDLED)
    assert june.kind == FULL and june.compares_totals()
    assert (june.compared_start, june.compared_end) == (date(2008, 5, 2), date(2008, 5, 31))


def test_a_previous_period_the_data_covers_in_part_compares_rates_only_and_says_how_many_days():
    early = plan(date(2008, 4, 10), date(2008, 5, 10), BUNDLED)  # 31 days; the 31 before start 10 Mar
    assert early.kind == PARTIAL
    assert not early.compares_totals() and early.compares_rates()
    assert (early.compared_start, early.compared_end) == (date(2008, 4, 1), date(2008, 4, 9))
    assert (early.length, early.compared_days) == (31, 9)
    assert "only 9 of the 31 days" in early.describe() and "totals not compared" in early.describe()


def test_nothing_to_compare_before_the_data_starts_or_over_all_dates():
    assert plan(date(2008, 4, 1), date(2008, 4, 10), BUNDLED).kind == NONE
    assert plan(None, None, BUNDLED).kind == NONE
    assert plan(date(2009, 1, 1), date(2009, 1, 31), BUNDLED).kind == NONE  # after the data ends


def test_a_range_beyond_the_data_is_clipped_before_its_previous_period_is_chosen():
    tail = plan(date(2008, 8, 1), date(2008, 8, 31), BUNDLED)  # the data ends 13 Aug: 13 days shown
    assert (tail.start, tail.end, tail.length) == (date(2008, 8, 1), date(2008, 8, 13), 13)
    assert (tail.previous_start, tail.previous_end) == (date(2008, 7, 19), date(2008, 7, 31))
    assert tail.kind == FULL


def test_the_default_period_is_the_latest_four_complete_weeks_with_four_before_them():
    start, end = default_period(BUNDLED)  # 13 Aug 2008 is a Wednesday; the week before ends Sunday 10 Aug
    assert (start, end) == (date(2008, 7, 14), date(2008, 8, 10))
    assert start.weekday() == 0 and end.weekday() == 6
    assert plan(start, end, BUNDLED).kind == FULL
    # Short data: the longest equal split of its complete weeks; under two weeks, everything.
    october = Coverage(date(2019, 10, 1), date(2019, 10, 30))
    assert default_period(october) == (date(2019, 10, 21), date(2019, 10, 27))
    assert plan(*default_period(october), october).kind == FULL
    ten_days = Coverage(date(2019, 10, 1), date(2019, 10, 10))
    assert default_period(ten_days) == (ten_days.first, ten_days.last)


def _cube(days: pd.DatetimeIndex, sessions: np.ndarray, conversions: np.ndarray) -> pd.DataFrame:
    cube = pd.DataFrame({"date": days, "country": 1, "main_category": 1, "main_colour": 1})
    for column in kpis.SUMS:
        cube[column] = 0
    cube["sessions"], cube["conversions"], cube["clicks"] = sessions, conversions, sessions * 3
    return cube


def test_kpi_summary_does_not_compare_totals_over_missing_days():
    days = pd.date_range("2008-04-01", "2008-05-31", freq="D")
    cube = _cube(days, np.full(len(days), 100), np.full(len(days), 25))
    comparison = kpis.kpi_summary(cube, SessionFilter(start=date(2008, 4, 10), end=date(2008, 5, 10)))
    assert comparison.period.kind == PARTIAL
    assert comparison.delta("sessions") is None and comparison.change("sessions") is None
    assert comparison.previous["sessions"] == 9 * 100  # the covered part only
    rate = comparison.delta("conversion_rate")
    assert rate.kind == "pp" and rate.change == pytest.approx(0.0) and rate.previous == pytest.approx(0.25)


def test_rates_change_in_percentage_points_and_totals_in_per_cent():
    days = pd.date_range("2008-04-01", "2008-04-20", freq="D")
    sessions = np.r_[np.full(10, 100), np.full(10, 200)]
    conversions = np.r_[np.full(10, 30), np.full(10, 50)]  # 30% then 25%
    comparison = kpis.kpi_summary(
        _cube(days, sessions, conversions), SessionFilter(date(2008, 4, 11), date(2008, 4, 20))
    )
    rate = comparison.delta("conversion_rate")
    assert (rate.kind, rate.previous, rate.current) == ("pp", pytest.approx(0.30), pytest.approx(0.25))
    assert rate.change == pytest.approx(-5.0)
    total = comparison.delta("sessions")
    assert (total.kind, total.change) == ("relative", pytest.approx(1.0))


def test_weeks_at_the_edges_of_the_range_or_the_data_are_marked_partial():
    days = pd.date_range("2008-04-01", "2008-04-30", freq="D")  # Tue 1 Apr .. Wed 30 Apr
    cube = _cube(days, np.full(len(days), 10), np.full(len(days), 1))
    weekly = kpis.trend(cube, SessionFilter(), "W")
    assert list(weekly["days"]) == [6, 7, 7, 7, 3]
    assert list(weekly["partial"]) == [True, False, False, False, True]
    inside = kpis.trend(cube, SessionFilter(start=date(2008, 4, 9), end=date(2008, 4, 27)), "W")
    assert list(inside["days"]) == [5, 7, 7] and list(inside["partial"]) == [True, False, False]
    assert not kpis.trend(cube, SessionFilter(), "D")["partial"].any()


def test_kpi_alerts_flag_a_planted_spike_and_keep_the_baseline_from_before_the_range():
    days = pd.date_range("2008-04-01", periods=90, freq="D")
    rng = np.random.default_rng(3)
    sessions = np.round(200 + rng.normal(0, 10, len(days))).astype(int)
    conversions = np.round(sessions * 0.25).astype(int)
    sessions[70] = 520  # a planted spike (its conversions stay as they were: the rate drops too)
    cube = _cube(days, sessions, conversions)
    shown = SessionFilter(start=days[65].date(), end=days[75].date())  # 11 days: too short for a baseline alone
    alerts = anomalies.kpi_alerts(cube, shown, conversion_label="conversion (proxy)")
    assert alerts["date"].min() == days[65] and alerts["date"].max() == days[75]
    flagged = anomalies.flagged_days(alerts)
    spike = flagged[flagged["metric"] == "sessions"]
    assert list(spike["date"]) == [days[70]]
    assert spike.iloc[0]["explanation"].startswith("sessions 520 vs usual ")
    drop = flagged[flagged["metric"] == "conversion_rate"]
    assert list(drop["date"]) == [days[70]] and drop.iloc[0]["explanation"].startswith("conversion (proxy) 9.")
    quiet = anomalies.kpi_alerts(cube, SessionFilter(start=days[30].date(), end=days[60].date()))
    assert not quiet["flag"].any()
    strict = anomalies.kpi_alerts(cube, shown, threshold=1000.0)
    assert not strict["flag"].any()  # the threshold is a parameter (ml.config.ALERT_THRESHOLD by default in the UI)
