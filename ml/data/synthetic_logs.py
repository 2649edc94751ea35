"""Synthetic shop event logs, in the raw forms shops export, for tests, benchmarks and demos.

A log is generated session by session, vectorised: each session has a visitor,
a start time, a home category, a length, and a hidden purchase propensity.
Propensity raises the chance of carts and purchases and also shows early in the
visit (pricier products, shorter pauses, staying in one category), so an early
model has something honest to learn, as in real shops. The output is the raw
table of a built-in profile (the multi-category-store log or the visitor log),
to be written to CSV/Parquet and read back through the normal loader.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

START = np.datetime64("2019-10-01T00:00:00", "s")
DAYS = 30
CATEGORIES = (
    "electronics.smartphone",
    "electronics.audio.headphone",
    "appliances.kitchen.kettle",
    "computers.notebook",
    "apparel.shoes",
    "furniture.living_room.sofa",
    "kids.toys",
    "sport.bicycle",
)
BRANDS = ("samsung", "apple", "xiaomi", "bosch", "lenovo", "nike", "lego", "ikea", "sony", "huawei")
PRODUCTS_PER_CATEGORY = 60
MEAN_SESSION_EVENTS = 6.0
MEAN_GAP_S = 45.0


def _catalogue(rng: np.random.Generator) -> pd.DataFrame:
    n = len(CATEGORIES) * PRODUCTS_PER_CATEGORY
    category = np.repeat(np.arange(len(CATEGORIES)), PRODUCTS_PER_CATEGORY)
    base_price = np.exp(rng.normal(4.0 + 0.3 * category % 3, 0.6, n))
    return pd.DataFrame(
        {
            "product_id": 1_000_000 + np.arange(n) * 7,
            "category": category,
            "category_id": 2_053_013_552_226_107_000 + category * 1_000,
            "brand": rng.choice(len(BRANDS), n),
            "price": np.round(base_price, 2),
        }
    )


def _sessions(n_events: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    n_sessions = max(int(n_events / MEAN_SESSION_EVENTS), 1)
    propensity = rng.normal(0.0, 1.0, n_sessions)
    length = rng.geometric(1.0 / (MEAN_SESSION_EVENTS + 0.8 * (propensity > 0.8)), n_sessions)  # 1 = a bounce
    users = rng.integers(0, max(n_sessions // 2, 1), n_sessions)
    start = START + rng.integers(0, DAYS * 86_400, n_sessions).astype("timedelta64[s]")
    home = np.minimum(rng.zipf(1.6, n_sessions) - 1, len(CATEGORIES) - 1)
    return {"propensity": propensity, "length": length, "user": users, "start": start, "home": home}


def _events(sessions: dict[str, np.ndarray], catalogue: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    length = sessions["length"]
    session = np.repeat(np.arange(len(length)), length)
    position = np.arange(len(session)) - np.repeat(np.cumsum(length) - length, length)
    z = sessions["propensity"][session]
    stay = rng.random(len(session)) < 0.75 + 0.1 * (z > 0)
    category = np.where(stay, sessions["home"][session], rng.integers(0, len(CATEGORIES), len(session)))
    # Keen visitors look at the pricier end of a category.
    rank = np.minimum(rng.zipf(1.4, len(session)) - 1, PRODUCTS_PER_CATEGORY - 1)
    pricier = (z > 0.5) & (rng.random(len(session)) < 0.5)
    rank = np.where(pricier, PRODUCTS_PER_CATEGORY - 1 - rank, rank)
    product = category * PRODUCTS_PER_CATEGORY + rank
    gaps = np.ceil(rng.exponential(MEAN_GAP_S * np.exp(-0.25 * z), len(session))) + 1  # whole seconds, >= 1
    gaps[position == 0] = 0.0
    total = np.cumsum(gaps)
    elapsed = total - np.repeat(total[np.cumsum(length) - length], length)
    time = sessions["start"][session] + elapsed.astype("timedelta64[s]")
    p_cart = 1.0 / (1.0 + np.exp(-(-3.2 + 0.9 * z)))
    event = np.where((position > 0) & (rng.random(len(session)) < p_cart), "cart", "view").astype(object)
    frame = pd.DataFrame({"session": session, "product": product, "time": time, "event": event, "z": z})
    # A purchase closes some sessions that carted something.
    carted = frame.loc[frame["event"] == "cart"].drop_duplicates("session", keep="last")
    p_buy = 1.0 / (1.0 + np.exp(-(-0.4 + 0.8 * carted["z"].to_numpy())))
    bought = carted[rng.random(len(carted)) < p_buy].assign(event="purchase")
    bought["time"] = bought["time"] + rng.integers(20, 600, len(bought)).astype("timedelta64[s]")
    return pd.concat([frame, bought], ignore_index=True)


def multi_category_store_log(n_events: int, seed: int = 0) -> pd.DataFrame:
    """A log in the multi-category-store export form (``event_time,event_type,product_id,...``).

    About ``n_events`` rows (purchases come on top); rows are in time order, as exports are.
    """
    rng = np.random.default_rng(seed)
    catalogue = _catalogue(rng)
    sessions = _sessions(n_events, rng)
    events = _events(sessions, catalogue, rng).sort_values(["time", "session"], kind="stable")
    item = catalogue.iloc[events["product"].to_numpy()]
    n_codes = len(CATEGORIES)
    codes = np.asarray(CATEGORIES, dtype=object)[item["category"].to_numpy() % n_codes]
    codes[rng.random(len(codes)) < 0.05] = ""  # some exports leave category_code empty
    brand = np.asarray(BRANDS, dtype=object)[item["brand"].to_numpy()]
    brand[rng.random(len(brand)) < 0.1] = ""
    user_ids = 512_000_000 + sessions["user"][events["session"].to_numpy()]
    session_uuid = pd.Index(np.arange(len(sessions["length"]))).map(lambda i: f"{i:08x}-5c2a-4b7e-9d1f-{seed:012x}")
    return pd.DataFrame(
        {
            "event_time": pd.DatetimeIndex(events["time"].to_numpy()).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "event_type": events["event"].to_numpy(),
            "product_id": item["product_id"].to_numpy(),
            "category_id": item["category_id"].to_numpy(),
            "category_code": codes,
            "brand": brand,
            "price": item["price"].to_numpy(),
            "user_id": user_ids,
            "user_session": np.asarray(session_uuid, dtype=object)[events["session"].to_numpy()],
        }
    ).reset_index(drop=True)


def visitor_log(n_events: int, seed: int = 0) -> pd.DataFrame:
    """A log in the visitor export form (``timestamp,visitorid,event,itemid,transactionid``): no sessions.

    A visitor's sessions are days apart, so cutting at 30 idle minutes recovers them.
    """
    rng = np.random.default_rng(seed)
    catalogue = _catalogue(rng)
    sessions = _sessions(n_events, rng)
    n = len(sessions["length"])
    sessions["user"] = np.arange(n)  # one session per visitor ...
    back = np.flatnonzero((rng.random(n) < 0.3) & (np.arange(n) >= n // 2))  # ... some come back ~15 days later
    sessions["user"][back] = back - n // 2
    sessions["start"] = START + (np.arange(n) * (DAYS * 86_400 // max(n, 1))).astype("timedelta64[s]")
    events = _events(sessions, catalogue, rng).sort_values("time", kind="stable")
    item = catalogue.iloc[events["product"].to_numpy()]
    millis = events["time"].to_numpy().astype("datetime64[ms]").astype(np.int64) + rng.integers(0, 1000, len(events))
    is_purchase = (events["event"] == "purchase").to_numpy()
    transaction = np.full(len(events), np.nan)
    transaction[is_purchase] = 10_000 + events["session"].to_numpy()[is_purchase]
    return pd.DataFrame(
        {
            "timestamp": millis,
            "visitorid": sessions["user"][events["session"].to_numpy()],
            "event": events["event"].map({"view": "view", "cart": "addtocart", "purchase": "transaction"}).to_numpy(),
            "itemid": item["product_id"].to_numpy(),
            "transactionid": pd.array(transaction, dtype="Int64"),
        }
    ).reset_index(drop=True)
