"""Purchases as the label: converted, revenue and when; the early window; and no leakage from after event k."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.data import schema as S
from ml.data.clicks import index_clicks
from ml.data.loading import LoadedEvents, load_events
from ml.data.synthetic_logs import multi_category_store_log, visitor_log
from ml.features.labels import NEVER, PURCHASES, REVIEW_PROXY, choose_definition, session_targets
from ml.features.window import (
    STATUS_CONVERTED_IN_WINDOW,
    STATUS_SCORED,
    STATUS_TOO_SHORT,
    window_features,
)
from tests.ml.event_logs import ORDERS_PROFILE

WINDOW = 3


def _load(tmp_path: Path, sessions: dict[str, list[str]]) -> LoadedEvents:
    """Events from ``{visit: ["kind sku price [revenue]", ...]}``, one minute apart, through the orders profile."""
    lines = ["visit,ts,kind,sku,price,revenue"]
    for visit, events in sessions.items():
        for i, event in enumerate(events):
            kind, sku, price, revenue = [*event.split(), ""][:4]
            lines.append(f"{visit},2019-10-01T10:{i:02d}:00Z,{kind},{sku},{price},{revenue}")
    path = tmp_path / "orders.csv"
    path.write_text("\n".join(lines) + "\n")
    return load_events(path, profile=ORDERS_PROFILE)


def _targets(events: pd.DataFrame) -> pd.DataFrame:
    indexed = index_clicks(events)
    targets = session_targets(indexed)
    return pd.DataFrame(
        {
            "converted": targets.converted,
            "revenue": targets.basket_value,
            "rank": targets.conversion_rank,
            "label": targets.definition.name,
        },
        index=indexed.session_ids.astype(str),
    )


def test_converted_revenue_and_rank_come_from_purchases(tmp_path: Path):
    loaded = _load(
        tmp_path,
        {
            "a": ["view A 10", "cart A 10", "buy A 10", "view B 5", "buy B 5"],
            "b": ["view A 10", "view A 10", "cart B 5"],  # a re-view, a cart: no purchase
            "c": ["view C 7", "buy C 7 9.5", "buy D 2"],  # revenue column where given
        },
    )
    assert choose_definition(loaded.events) is PURCHASES
    t = _targets(loaded.events)
    assert t.loc["a"].tolist() == [True, 15.0, 2, "purchases"]
    assert t.loc["b"].tolist() == [False, 0.0, NEVER, "purchases"]
    assert t.loc["c", "revenue"] == 9.5 + 2.0  # revenue preferred, the price where the revenue cell is empty
    assert t.loc["c", "rank"] == 1


def test_revenue_on_non_purchase_events_is_ignored(tmp_path: Path):
    loaded = _load(tmp_path, {"a": ["view A 10 99", "cart A 10 99", "buy A 10 12"]})
    assert _targets(loaded.events).loc["a", "revenue"] == 12.0


def test_a_log_without_purchases_keeps_the_re_view_proxy(tmp_path: Path):
    loaded = _load(
        tmp_path,
        {
            "a": ["view A 10", "view B 4", "view A 10", "view B 4"],
            "b": ["view A 10", "cart A 10"],  # a cart is not a re-view
        },
    )
    assert loaded.label_source == "proxy"
    assert choose_definition(loaded.events) is REVIEW_PROXY
    t = _targets(loaded.events)
    assert t.loc["a"].tolist() == [True, 14.0, 2, "review"]  # first re-view at position 3; A and B re-viewed
    assert t.loc["b"].tolist() == [False, 0.0, NEVER, "review"]


@pytest.mark.parametrize(
    ("purchase_at", "status", "converted"),
    [
        (1, STATUS_CONVERTED_IN_WINDOW, None),
        (WINDOW, STATUS_CONVERTED_IN_WINDOW, None),
        (WINDOW + 1, STATUS_SCORED, True),
        (None, STATUS_SCORED, False),
    ],
    ids=["first event", "event k", "event k+1", "never"],
)
def test_a_purchase_at_position_k_or_earlier_is_already_converted_in_window(tmp_path, purchase_at, status, converted):
    events = [f"{'buy' if i == purchase_at else 'view'} P{i} 10" for i in range(1, 6)]
    window = window_features(_load(tmp_path, {"s": events}).events, WINDOW)
    assert window.status["s"] == status
    if converted is None:
        assert "s" not in window.features.index  # not in the population the models learn from or score
    else:
        assert bool(window.converted["s"]) is converted


def test_a_short_session_is_too_short_even_when_it_purchased(tmp_path: Path):
    loaded = _load(tmp_path, {"s": ["view A 1", "buy A 1"]})
    assert window_features(loaded.events, WINDOW).status["s"] == STATUS_TOO_SHORT


def test_carts_inside_the_window_are_features_and_later_ones_are_not(tmp_path: Path):
    loaded = _load(
        tmp_path,
        {
            "a": ["view A 10", "cart A 10", "cart B 5", "cart C 5", "buy A 10"],
            "b": ["view A 10", "view B 5", "view C 5", "cart C 5"],
        },
    )
    window = window_features(loaded.events, WINDOW)
    assert window.features.loc["a", "w_carts"] == 2
    assert window.features.loc["b", "w_carts"] == 0
    assert window.converted.to_dict() == {"a": True, "b": False}


# ----------------------------------------------------------------- leakage on event logs
@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> tuple[pd.DataFrame, LoadedEvents]:
    raw = multi_category_store_log(8000, seed=21)
    path = tmp_path_factory.mktemp("shop") / "shop.csv"
    raw.to_csv(path, index=False)
    return raw, load_events(path)


def _rank(events: pd.DataFrame) -> np.ndarray:
    """0-based position of each row in its session, in the frame's own row order."""
    return events[S.ORDER].to_numpy() - 1


def _scramble_events(events: pd.DataFrame, rows: np.ndarray, seed: int) -> pd.DataFrame:
    """Every field of the given rows changed: type (purchases too), product, category, brand, price, time."""
    rng = np.random.default_rng(seed)
    out = events.copy()
    n = int(rows.sum())
    out.loc[rows, S.EVENT_TYPE] = rng.choice([S.EVENT_VIEW, S.EVENT_CART, S.EVENT_PURCHASE, S.EVENT_OTHER], n).astype(
        np.int8
    )
    for column in [S.CATEGORY, *(d for d in ("brand",) if d in out)]:
        out.loc[rows, column] = rng.integers(0, int(out[column].max()) + 3, n).astype(out[column].dtype)
    if out[S.PRICE].notna().any():  # the visitor log has no prices to change
        out.loc[rows, S.PRICE] = rng.uniform(0, 5000, n)
    products = out[S.PRODUCT].astype(str).to_numpy()
    products[rows] = [f"new-{i % 11}" for i in range(n)]
    out[S.PRODUCT] = pd.Categorical(products)
    if S.TIMESTAMP in out:
        later = out[S.TIMESTAMP] + pd.to_timedelta(rng.integers(1, 10**6, len(out)), unit="s")
        out.loc[rows, S.TIMESTAMP] = later[rows]
        out.loc[rows, S.DATE] = later[rows].dt.floor("D").astype(out[S.DATE].dtype)
    return out


@pytest.fixture(scope="module")
def visitors() -> LoadedEvents:
    return load_events(visitor_log(8000, seed=21).to_csv(index=False).encode())


@pytest.mark.parametrize("which", ["shop", "visitors"])
def test_changing_every_event_after_k_leaves_window_features_identical(request, which: str):
    loaded = request.getfixturevalue(which)
    loaded = loaded[1] if isinstance(loaded, tuple) else loaded
    events = loaded.events.sample(frac=1.0, random_state=2).reset_index(drop=True)
    before = window_features(events, WINDOW)
    changed = window_features(_scramble_events(events, _rank(events) >= WINDOW, seed=3), WINDOW)
    pd.testing.assert_frame_equal(changed.features.sort_index(), before.features.sort_index())
    pd.testing.assert_series_equal(changed.status.sort_index(), before.status.sort_index())
    # The labels did change: purchases after the window were scrambled.
    assert not changed.converted.sort_index().equals(before.converted.sort_index())


@pytest.mark.parametrize("which", ["shop", "visitors"])
def test_dropping_every_event_after_k_leaves_window_features_identical(request, which: str):
    loaded = request.getfixturevalue(which)
    events = (loaded[1] if isinstance(loaded, tuple) else loaded).events
    before = window_features(events, WINDOW)
    after = window_features(events[_rank(events) < WINDOW], WINDOW)
    pd.testing.assert_frame_equal(after.features.sort_index(), before.features.sort_index())
    assert (after.converted == False).all()  # noqa: E712 - nothing after the window, so nobody converts later
    assert before.converted.any()


def test_changing_an_event_inside_the_window_does_change_features(shop):
    """The control for the tests above: they would notice a change if there was one."""
    events = shop[1].events
    before = window_features(events, WINDOW)
    changed = window_features(_scramble_events(events, _rank(events) == WINDOW - 1, seed=4), WINDOW)
    common = before.features.index.intersection(changed.features.index)
    differs = (changed.features.loc[common] != before.features.loc[common]).any(axis=1)
    assert differs.mean() > 0.5


def _raw_rank(raw: pd.DataFrame) -> np.ndarray:
    """Each raw row's position in its session, as the loader orders events: time, event type, product text."""
    key = pd.DataFrame(
        {
            "session": raw["user_session"],
            "time": raw["event_time"],  # one fixed-width format: text order is time order
            "event": raw["event_type"].map({"view": 0, "cart": 1, "purchase": 2}).fillna(3),
            "product": raw["product_id"].astype(str),
        }
    )
    ordered = key.sort_values(["session", "time", "event", "product"], kind="stable")
    return ordered.groupby("session").cumcount().reindex(raw.index).to_numpy()


def test_rewriting_the_raw_file_after_event_k_leaves_window_features_identical(shop, tmp_path: Path):
    """End to end through the loader: later purchases, products, categories, brands, prices and times all changed."""
    raw, loaded = shop
    later = _raw_rank(raw) >= WINDOW
    rng = np.random.default_rng(9)
    n = int(later.sum())
    rewritten = raw.copy()
    rewritten.loc[later, "event_type"] = rng.choice(["view", "cart", "purchase", "remove_from_cart"], n)
    rewritten.loc[later, "product_id"] = 9_000_000 + np.arange(n)
    rewritten.loc[later, "category_code"] = rng.choice(["kids.toys", "", "auto.parts"], n)
    rewritten.loc[later, "brand"] = rng.choice(["acme", "", "samsung"], n)
    rewritten.loc[later, "price"] = rng.uniform(1, 900, n).round(2)
    stamps = pd.to_datetime(raw["event_time"].str.removesuffix(" UTC")) + pd.Timedelta(days=1)
    rewritten.loc[later, "event_time"] = stamps[later].dt.strftime("%Y-%m-%d %H:%M:%S UTC")
    path = tmp_path / "rewritten.csv"
    rewritten.to_csv(path, index=False)
    reloaded = load_events(path, codebooks=loaded.codebooks)

    before, after = window_features(loaded.events, WINDOW), window_features(reloaded.events, WINDOW)
    pd.testing.assert_frame_equal(after.features.sort_index(), before.features.sort_index())
    pd.testing.assert_series_equal(after.status.sort_index(), before.status.sort_index())
