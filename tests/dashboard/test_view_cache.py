"""The view memo: bounded, per dataset, and a memoised answer equals the one computed afresh."""

from __future__ import annotations

import json
from datetime import date

import pytest
from plotly.io.json import to_json_plotly

from dashboard.tabs.kpi import views
from dashboard.view_cache import ViewCache, dataset_cache, figure_json
from ml.config import VIEW_CACHE_SIZE, get_settings
from ml.features import anomalies
from ml.features.kpis import SessionFilter
from ml.features.prepared import prepare

JUNE = SessionFilter(start=date(2008, 6, 1), end=date(2008, 6, 30), country=(29,))


def test_the_cache_keeps_at_most_its_size_and_drops_the_least_recently_used() -> None:
    cache = ViewCache(size=2)
    built = []

    def build(value):
        built.append(value)
        return value

    assert cache.get("a", lambda: build(1)) == 1
    assert cache.get("b", lambda: build(2)) == 2
    assert cache.get("a", lambda: build(99)) == 1  # kept: not built again, and now the most recent
    assert cache.get("c", lambda: build(3)) == 3  # drops "b"
    assert len(cache) == 2
    assert cache.get("b", lambda: build(4)) == 4
    assert built == [1, 2, 3, 4]
    assert (cache.hits, cache.misses) == (1, 4)


def test_a_failed_build_is_not_kept() -> None:
    cache = ViewCache(size=4)

    def fail():
        raise RuntimeError("broken")

    with pytest.raises(RuntimeError):
        cache.get("k", fail)
    assert len(cache) == 0
    assert cache.get("k", lambda: 5) == 5


def test_a_cache_of_size_zero_keeps_nothing() -> None:
    cache = ViewCache(size=0)
    assert [cache.get("k", lambda value=value: value) for value in (1, 2)] == [1, 2]
    assert len(cache) == 0
    with pytest.raises(ValueError):
        ViewCache(size=-1)


def test_the_size_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("CLICKSTREAM_VIEW_CACHE", "0")
    assert get_settings().view_cache_size == 0
    monkeypatch.delenv("CLICKSTREAM_VIEW_CACHE")
    assert get_settings().view_cache_size == VIEW_CACHE_SIZE


def _json(value) -> object:
    return json.loads(to_json_plotly(value))


@pytest.mark.parametrize("freq", ["D", "W"])
def test_memoised_kpi_outputs_equal_fresh_ones(prepared, freq) -> None:
    filt = JUNE
    alerts = views.alerts_for(prepared, filt, 28, 3.5)
    fresh_trend = views.trend_view(prepared, filt, freq, 28, 3.5, alerts)
    fresh_summary = views.alerts_summary(alerts, 3.5, 28)
    for _ in range(2):  # the first call builds, the second is served from the memo
        figure, summary = views.trend_outputs(prepared, filt, freq, 28, 3.5)
        assert _json(figure) == _json(fresh_trend)
        assert _json(summary[: len(fresh_summary)]) == _json(fresh_summary)
        assert len(summary) == len(fresh_summary) + (freq == "W")  # the weekly note is added once, not per call
        cards, funnel, note = views.cards_outputs(prepared, filt)
        fresh_cards, fresh_funnel = views.cards_view(prepared, filt)
        assert _json(cards) == _json(fresh_cards) and _json(funnel) == _json(fresh_funnel)
        assert _json(note) == _json(views.compare_alert(views.period_note(prepared, filt)))
        bars = views.breakdown_outputs(prepared, filt, "main_category")
        assert _json(bars) == _json(views.breakdown_view(prepared, filt, "main_category"))


def test_alerts_cut_from_the_memo_equal_the_alerts_of_the_filter(prepared) -> None:
    direct = anomalies.kpi_alerts(prepared.cube, JUNE, 28, 3.5, conversion_label=prepared.definition.title.lower())
    assert views.alerts_for(prepared, JUNE, 28, 3.5).equals(direct)
    assert views.alerts_for(prepared, JUNE, 28, 3.5).equals(direct)


def test_each_prepared_dataset_has_its_own_memo(prepared, bundled) -> None:
    other = prepare(bundled, display_name="again")
    assert dataset_cache(other) is not dataset_cache(prepared)
    views.cards_outputs(prepared, JUNE)
    assert len(dataset_cache(other)) == 0


def test_figure_json_is_what_dash_sends_for_the_figure(prepared) -> None:
    figure = views.breakdown_view(prepared, JUNE, "country")
    assert to_json_plotly(figure_json(figure)) == to_json_plotly(figure)
