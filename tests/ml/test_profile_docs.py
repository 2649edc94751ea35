"""docs/PROFILES.md cannot drift: its GA4 example loads a GA4-style file, and it documents every profile key."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from ml.config import PROJECT_ROOT
from ml.data.clicks import index_clicks
from ml.data.loading import LoadedEvents, load_events
from ml.data.profiles import EVENT_KEYS, FIELDS, SESSION_KEYS, TIMESTAMP_FORMATS, TOP_LEVEL_KEYS, load_profile
from ml.features.labels import PURCHASES, session_targets
from ml.features.window import STATUS_CONVERTED_IN_WINDOW, STATUS_SCORED, STATUS_TOO_SHORT, window_features

DOC = PROJECT_ROOT / "docs" / "PROFILES.md"
GA4_PROFILE = PROJECT_ROOT / "docs" / "profiles" / "ga4_flat.toml"
GA4_COLUMNS = (
    "event_date",
    "event_timestamp",
    "event_name",
    "user_pseudo_id",
    "ga_session_id",
    "item_id",
    "item_name",
    "item_category",
    "item_brand",
    "price",
    "geo_country",
    "device_category",
    "purchase_revenue",
)
DAY = 1604188800  # 2020-11-01 00:00:00 UTC, in seconds
ALICE, BOB, CAROL = "1234567890.1604188800", "987654321.1604190000", "555.1604200000"


def _event(user: str, session: int, seconds: int, name: str, item: str, **extra: object) -> dict[str, object]:
    stamp = (DAY + seconds) * 1_000_000 + 123  # microseconds
    return {
        "event_date": pd.Timestamp(stamp // 1_000_000, unit="s").strftime("%Y%m%d"),
        "event_timestamp": stamp,
        "event_name": name,
        "user_pseudo_id": user,
        "ga_session_id": session,
        "item_id": item,
        "item_name": f"Item {item}",
        "item_category": "Apparel" if item.startswith("SKU_1") else "Bags",
        "item_brand": "Google",
        "price": 20.0,
        "geo_country": "United States",
        "device_category": "mobile",
        "purchase_revenue": "",
        **extra,
    }


@pytest.fixture
def ga4_file(tmp_path: Path) -> Path:
    """A small GA4 flat export: five sessions, one with a purchase late and one with a purchase early."""
    events = [
        # Alice's first visit: browses, carts, checks out and buys at event 5.
        _event(ALICE, DAY, 0, "view_item_list", "SKU_10"),
        _event(ALICE, DAY, 10, "view_item", "SKU_10"),
        _event(ALICE, DAY, 40, "add_to_cart", "SKU_10"),
        _event(ALICE, DAY, 70, "begin_checkout", "SKU_10"),
        _event(ALICE, DAY, 95, "purchase", "SKU_10", purchase_revenue=25.0),
        # Alice the next day: a second session, two views.
        _event(ALICE, DAY + 86_400, 86_400, "view_item", "SKU_20", device_category="desktop"),
        _event(ALICE, DAY + 86_400, 86_430, "view_item", "SKU_21", device_category="desktop"),
        # Bob: views the same bag twice and carts it, no purchase.
        _event(BOB, DAY + 1200, 1200, "view_item", "SKU_20", geo_country="Canada"),
        _event(BOB, DAY + 1200, 1260, "view_item", "SKU_20", geo_country="Canada"),
        _event(BOB, DAY + 1200, 1300, "add_to_cart", "SKU_20", geo_country="Canada"),
        _event(BOB, DAY + 1200, 1330, "view_item", "SKU_21", geo_country="Canada"),
        # Carol has Alice's ga_session_id (it is unique per user only) and buys at event 2, price as revenue.
        _event(CAROL, DAY, 30, "view_item", "SKU_11", item_brand="Android"),
        _event(CAROL, DAY, 60, "purchase", "SKU_11", item_brand="Android", price=12.5),
        _event(CAROL, DAY, 90, "view_item", "SKU_12", item_brand="Android"),
        # Carol again, with the session ID missing: her session is cut from user and time.
        _event(CAROL, "", 7200, "view_item", "SKU_12", item_brand="Android"),
    ]
    path = tmp_path / "ga4_flat.csv"
    pd.DataFrame(events, columns=list(GA4_COLUMNS)).to_csv(path, index=False)
    return path


@pytest.fixture
def ga4(ga4_file: Path) -> LoadedEvents:
    return load_events(ga4_file, profile=GA4_PROFILE)


def test_the_ga4_example_reads_sessions_keyed_by_user_and_ga_session_id(ga4: LoadedEvents):
    assert ga4.profile.name == "ga4_flat"
    sessions = ga4.events.groupby("session_id", observed=True).size().to_dict()
    assert sessions == {
        f"{ALICE}:{DAY}": 5,
        f"{ALICE}:{DAY + 86_400}": 2,
        f"{BOB}:{DAY + 1200}": 4,
        f"{CAROL}:{DAY}": 3,
        f"{CAROL}:1": 1,
    }
    assert ga4.warnings == ("ignored 2 column(s) the profile does not use: 'event_date', 'item_name'",)


def test_the_ga4_example_maps_events_times_and_dimensions(ga4: LoadedEvents):
    assert ga4.event_counts() == {"view": 9, "cart": 2, "purchase": 2, "other": 2}
    assert ga4.other_events == {"view_item_list": 1, "begin_checkout": 1}
    first = ga4.events.sort_values("timestamp").iloc[0]
    assert first["timestamp"] == pd.Timestamp("2020-11-01 00:00:00")  # microseconds, read to the millisecond
    assert ga4.dimensions == ("brand", "country", "device")
    assert ga4.codebooks["country"] == {0: "(none)", 1: "United States", 2: "Canada"}
    assert ga4.codebooks["device"] == {0: "(none)", 1: "mobile", 2: "desktop"}
    assert ga4.codebooks["category"] == {0: "(none)", 1: "Apparel", 2: "Bags"}  # 9 events to 6


def test_the_ga4_example_labels_purchases_with_their_revenue(ga4: LoadedEvents):
    indexed = index_clicks(ga4.events)
    targets = session_targets(indexed)
    assert targets.definition is PURCHASES
    by_session = pd.DataFrame(
        {"converted": targets.converted, "revenue": targets.basket_value}, index=indexed.session_ids
    )
    assert by_session.loc[f"{ALICE}:{DAY}"].tolist() == [True, 25.0]  # purchase_revenue, not the price
    assert by_session.loc[f"{CAROL}:{DAY}"].tolist() == [True, 12.5]  # no revenue: the price
    assert not by_session.loc[f"{BOB}:{DAY + 1200}", "converted"]

    window = window_features(indexed, 3)
    assert window.status.to_dict() == {
        f"{ALICE}:{DAY}": STATUS_SCORED,
        f"{ALICE}:{DAY + 86_400}": STATUS_TOO_SHORT,
        f"{BOB}:{DAY + 1200}": STATUS_SCORED,
        f"{CAROL}:{DAY}": STATUS_CONVERTED_IN_WINDOW,
        f"{CAROL}:1": STATUS_TOO_SHORT,
    }
    assert window.converted.to_dict() == {f"{ALICE}:{DAY}": True, f"{BOB}:{DAY + 1200}": False}
    assert window.features.loc[f"{BOB}:{DAY + 1200}", "w_repeat_views"] == 1
    assert window.features.loc[f"{ALICE}:{DAY}", "w_other_events"] == 1


def test_the_doc_shows_the_example_profile_file_as_it_is():
    blocks = re.findall(r"```toml\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert GA4_PROFILE.read_text(encoding="utf-8") in blocks
    load_profile(GA4_PROFILE)


def test_the_doc_names_every_key_a_profile_file_may_have():
    text = DOC.read_text(encoding="utf-8")
    tables = {"columns", "fallbacks", "sessions", "timestamp", "event_types", "dimensions", "codebooks"}
    keys = {f"`{k}`" for k in (*(TOP_LEVEL_KEYS - tables), *FIELDS, *SESSION_KEYS, *TIMESTAMP_FORMATS)}
    keys |= {f"[{t}]" for t in tables - {"codebooks"}} | {"[codebooks.<name>]"}
    keys |= {f"{k} =" for k in EVENT_KEYS}
    missing = sorted(k for k in keys if k not in text)
    assert not missing, f"docs/PROFILES.md does not mention {missing}"
