"""Trend anomalies: a planted spike is flagged, a flat noisy series is not, edge cases behave."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.data import schema as S
from ml.features.anomalies import daily_series, flag_anomalies
from tests.ml.factories import make_clicks

DAYS = pd.date_range("2008-01-01", periods=120, freq="D")


def _noisy(seed: int = 0) -> pd.Series:
    rng = np.random.default_rng(seed)
    return pd.Series(np.round(250 + rng.normal(0, 15, len(DAYS))), index=DAYS, name="sessions")


def test_a_planted_spike_is_flagged_with_a_plain_explanation():
    series = _noisy()
    series.iloc[80] = 412
    result = flag_anomalies(series)
    flagged = result[result["flag"]]
    assert list(flagged["date"]) == [DAYS[80]]
    row = flagged.iloc[0]
    assert row["z"] > 3.5
    assert row["explanation"] == f"sessions 412 vs usual {row['baseline']:,.0f} (z = {row['z']:.1f})"
    assert len(result) == len(DAYS) and (result.loc[~result["flag"], "explanation"] == "").all()


def test_a_flat_noisy_series_has_no_flags():
    assert not flag_anomalies(_noisy())["flag"].any()
    # Pure noise still passes 3.5 now and then (a 28-day median and MAD are estimates): rarely.
    rng = np.random.default_rng(1)
    long = pd.Series(250 + rng.normal(0, 15, 3000), index=pd.date_range("2000-01-01", periods=3000, freq="D"))
    assert flag_anomalies(long)["flag"].mean() < 0.015


def test_the_day_itself_is_not_in_its_baseline_and_a_drop_is_flagged_too():
    series = _noisy()
    series.iloc[60] = 100
    result = flag_anomalies(series, window=14)
    row = result.iloc[60]
    assert row["flag"] and row["z"] < -3.5
    expected = np.median(series.iloc[46:60])
    assert row["baseline"] == pytest.approx(expected)


def test_short_series_get_no_z_until_there_is_enough_history():
    series = pd.Series([10.0, 11, 500], index=DAYS[:3])
    result = flag_anomalies(series, min_history=3)
    assert result["z"].isna().all() and not result["flag"].any()
    assert flag_anomalies(series.iloc[:0]).empty


def test_zero_mad_falls_back_and_a_constant_window_flags_any_change():
    constant = pd.Series([100.0] * 30 + [150.0, 100.0], index=DAYS[:32])
    result = flag_anomalies(constant)
    assert np.isinf(result["z"].iloc[30]) and result["flag"].iloc[30]
    assert "z = +inf" in result["explanation"].iloc[30]
    assert result["z"].iloc[29] == 0.0 and not result["flag"].iloc[29]
    # Over half the window at one value: MAD is 0, the mean absolute deviation gives the scale.
    mostly = pd.Series([100.0] * 20 + [90.0, 110.0] * 4 + [101.0], index=DAYS[:29])
    last = flag_anomalies(mostly).iloc[-1]
    assert np.isfinite(last["z"]) and last["scale"] > 0 and not last["flag"]


def test_gaps_are_kept_as_days_without_a_flag_and_left_out_of_baselines():
    series = _noisy().drop(DAYS[40:45])
    series.iloc[50] = np.nan
    result = flag_anomalies(series)
    assert len(result) == len(DAYS)  # the missing dates are back, as NaN
    gap = result.iloc[40:45]
    assert gap["value"].isna().all() and not gap["flag"].any() and gap["z"].isna().all()
    assert result["baseline"].iloc[46:].notna().all()


def test_daily_series_counts_sessions_and_conversion_by_start_date():
    clicks = make_clicks(
        {
            1: [{"page2_clothing_model": "A1", "day": 14}, {"page2_clothing_model": "A1", "day": 14}],  # re-view
            2: [{"page2_clothing_model": "A1", "day": 14}],
            3: [{"page2_clothing_model": "A2", "day": 16}],
        }
    )
    sessions = daily_series(clicks, "sessions")
    assert list(sessions) == [2, 0, 1]  # May 15 had none
    rate = daily_series(clicks, "conversion_rate")
    assert rate.iloc[0] == pytest.approx(1 / 2) and np.isnan(rate.iloc[1]) and rate.iloc[2] == 0
    events = clicks.assign(**{S.EVENT_TYPE: np.array([0, 0, 0, 2], dtype=np.int8)})  # only session 3 buys
    bought = daily_series(events, "conversion_rate")
    assert bought.iloc[0] == 0 and bought.iloc[2] == 1  # purchases replace the re-view proxy
    text = flag_anomalies(rate, value_format="{:.1%}")["explanation"]
    assert (text == "").all()
