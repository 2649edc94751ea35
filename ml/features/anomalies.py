"""Flag the days of a daily series that stray far from their recent level, with a plain reason.

A day's robust z-score compares it with the ``window`` days before it (the day
itself is not part of its own baseline): z = (value - median) / (1.4826 x MAD),
where MAD is the median absolute deviation of those days; 1.4826 x MAD
estimates the standard deviation of normal data, so the threshold reads like
an ordinary z-score, while one earlier spike barely moves the baseline. The
default threshold 3.5 is the usual cut for this "modified z-score".

Short series, gaps and flat stretches are handled rather than guessed at: a
missing day (NaN, or a date absent from the index) is not flagged and is left
out of later baselines; a day with fewer than ``min_history`` earlier values
in its window gets no z; where MAD is 0 (over half the window has one value)
the scale falls back to 1.2533 x the mean absolute deviation, and where that
is 0 too (a constant window) any change is flagged with an infinite z.

What to expect from noise: the median and MAD of 28 days are estimates
themselves, so on pure Gaussian noise about 0.7% of days still pass 3.5 (a
false alarm every five months or so); a longer window or a higher threshold
lowers that.
"""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from ml.data import schema as S
from ml.data.clicks import index_clicks
from ml.features import kpis
from ml.features.products import event_types, has_event

DEFAULT_WINDOW = 28  # four weeks, so every weekday is in the baseline four times
DEFAULT_THRESHOLD = 3.5
DEFAULT_MIN_HISTORY = 14  # half the window: a median and MAD of fewer days raise too many false alarms
MAD_SCALE = 1.4826  # MAD -> standard deviation for normal data
MEAN_AD_SCALE = 1.2533  # mean absolute deviation -> standard deviation for normal data
METRICS = ("sessions", "conversion_rate")


def daily_series(events: pd.DataFrame, metric: str = "sessions") -> pd.Series:
    """Sessions per day, or the share of them that converted, by the date a session started.

    Converted means purchased when the data has purchases, else the re-view
    proxy (the session viewed a product again). Every calendar day between the
    first and the last is present: 0 sessions (and a NaN rate) where none started.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose from {METRICS}")
    indexed = index_clicks(events)
    started = pd.to_datetime(indexed.first(S.DATE)).normalize()
    purchases = has_event(events, S.EVENT_PURCHASE)
    mark = (event_types(indexed.clicks) == S.EVENT_PURCHASE) if purchases else indexed.is_review
    converted = indexed.per_session_sum(mark.astype(np.int64)) > 0
    per_day = pd.DataFrame({"date": started, "converted": converted}).groupby("date")["converted"]
    sessions, conversions = per_day.size(), per_day.sum()
    days = pd.date_range(sessions.index.min(), sessions.index.max(), freq="D", name="date") if len(sessions) else []
    sessions = sessions.reindex(days, fill_value=0)
    if metric == "sessions":
        return sessions.rename("sessions")
    rate = conversions.reindex(days, fill_value=0) / sessions.where(sessions > 0)
    return rate.rename("conversion_rate")


def _default_format(values: np.ndarray) -> str:
    finite = values[np.isfinite(values)]
    return "{:,.0f}" if len(finite) and np.all(finite == np.round(finite)) else "{:,.3g}"


def _explain(label: str, value: float, baseline: float, z: float, fmt: str) -> str:
    z_text = (("+" if z > 0 else "-") + "inf") if math.isinf(z) else f"{z:.1f}"
    return f"{label} {fmt.format(value)} vs usual {fmt.format(baseline)} (z = {z_text})"


def flag_anomalies(
    series: pd.Series,
    window: int = DEFAULT_WINDOW,
    threshold: float = DEFAULT_THRESHOLD,
    min_history: int = DEFAULT_MIN_HISTORY,
    label: str | None = None,
    value_format: str | None = None,
) -> pd.DataFrame:
    """Every day of ``series`` (a daily, date-indexed series) with baseline, scale, z, flag and explanation.

    Columns: date, value, baseline (median of the previous ``window`` days),
    scale (the robust standard deviation), z, flag (|z| >= ``threshold``) and
    explanation ("sessions 412 vs usual 250 (z = 4.1)", empty if not flagged).
    ``label`` defaults to the series name, ``value_format`` to whole numbers
    for whole-number series, else 3 significant digits (pass "{:.1%}" for rates).
    """
    if window < 1 or min_history < 1:
        raise ValueError("window and min_history must be at least 1")
    label = label or str(series.name or "value").replace("_", " ")
    index = pd.DatetimeIndex(series.index)
    if len(index):
        series = pd.Series(series.to_numpy(dtype=np.float64), index=index.normalize()).sort_index()
        series = series[~series.index.duplicated(keep="last")]
        series = series.reindex(pd.date_range(series.index[0], series.index[-1], freq="D"))
    values = series.to_numpy(dtype=np.float64)
    n = len(values)
    fmt = value_format or _default_format(values)
    # Row i of `history` holds the `window` days before day i (NaN before the series starts).
    padded = np.r_[np.full(window, np.nan), values]
    history = sliding_window_view(padded, window)[:n] if n else np.zeros((0, window))
    enough = np.sum(~np.isnan(history), axis=1) >= min_history
    baseline = np.full(n, np.nan)
    scale = np.full(n, np.nan)
    if enough.any():
        rows = history[enough]
        median = np.nanmedian(rows, axis=1)
        deviation = np.abs(rows - median[:, None])
        robust = MAD_SCALE * np.nanmedian(deviation, axis=1)
        robust = np.where(robust > 0, robust, MEAN_AD_SCALE * np.nanmean(deviation, axis=1))
        baseline[enough], scale[enough] = median, robust
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (values - baseline) / scale
    z = np.where((scale == 0) & (values == baseline), 0.0, z)  # a constant window, unchanged
    flag = np.abs(np.nan_to_num(z, nan=0.0)) >= threshold
    explanation = np.full(n, "", dtype=object)
    for i in np.flatnonzero(flag):  # flagged days only: a handful
        explanation[i] = _explain(label, values[i], baseline[i], z[i], fmt)
    return pd.DataFrame(
        {
            "date": series.index,
            "value": values,
            "baseline": baseline,
            "scale": scale,
            "z": z,
            "flag": flag,
            "explanation": explanation,
        }
    )


ALERT_METRICS = ("sessions", "conversion_rate")


def kpi_alerts(
    cube: pd.DataFrame,
    filt: kpis.SessionFilter,
    window: int = DEFAULT_WINDOW,
    threshold: float = DEFAULT_THRESHOLD,
    conversion_label: str = "conversion",
) -> pd.DataFrame:
    """Daily sessions and conversion of a KPI filter, each day scored against its recent level.

    The baseline runs over every day the data has for the filter's dimensions
    (not only the dates shown), so the first days of a short date range have
    a history too; the rows returned are the filter's dates. Columns: date,
    metric ("sessions" / "conversion_rate"), value, baseline, scale, z, flag,
    explanation.
    """
    daily = kpis.trend(cube, filt.replace(start=None, end=None), "D")
    columns = ["date", "metric", "value", "baseline", "scale", "z", "flag", "explanation"]
    if daily.empty:
        return pd.DataFrame(columns=columns)
    series = daily.set_index("period")
    parts = []
    for metric, label, fmt in (("sessions", "sessions", "{:,.0f}"), ("conversion_rate", conversion_label, "{:.1%}")):
        flags = flag_anomalies(series[metric], window=window, threshold=threshold, label=label, value_format=fmt)
        flags.insert(1, "metric", metric)
        parts.append(flags)
    return alerts_between(pd.concat(parts, ignore_index=True)[columns], filt.start, filt.end)


def alerts_between(alerts: pd.DataFrame, start: date | None, end: date | None) -> pd.DataFrame:
    """The rows of :func:`kpi_alerts` from ``start`` to ``end`` (inclusive; None = open), as a new frame.

    The scores do not depend on the dates shown (the baseline runs over every
    day), so the alerts of all dates can be computed once per dimension filter
    and cut to each date range.
    """
    keep = np.ones(len(alerts), dtype=bool)
    if start is not None:
        keep &= alerts["date"].to_numpy() >= np.datetime64(start)
    if end is not None:
        keep &= alerts["date"].to_numpy() <= np.datetime64(end)
    return alerts[keep].reset_index(drop=True)


def flagged_days(alerts: pd.DataFrame) -> pd.DataFrame:
    """The flagged rows of :func:`kpi_alerts`, newest first: the list users download."""
    flagged = alerts[alerts["flag"]].sort_values(["date", "metric"], ascending=[False, True])
    return flagged[["date", "metric", "value", "baseline", "z", "explanation"]].reset_index(drop=True)
