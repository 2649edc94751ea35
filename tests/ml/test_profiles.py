"""Data profiles: detected from the header in every container, and read from TOML files that are checked key by key."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from ml.data.loading import load_events
from ml.data.profiles import (
    BUILTIN_PROFILES,
    MULTI_CATEGORY_STORE,
    UCI,
    VISITOR_LOG,
    DataProfile,
    detect_profile,
    load_profile,
    profile_from_dict,
    profile_to_toml,
)
from ml.data.synthetic_logs import multi_category_store_log, visitor_log
from ml.errors import ValidationError
from tests.ml.event_logs import (
    MULTI_COLUMNS,
    VISITOR_COLUMNS,
    canonical,
    csv_text,
    multi_rows,
    problems_of,
    write_table,
)
from tests.ml.factories import lowercase_form

CONTAINERS = ("csv", "csv.gz", "parquet")


@pytest.fixture(scope="module")
def raw_logs(small_clicks: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """One small raw table per built-in profile, as its export form has it."""
    uci = lowercase_form(small_clicks[small_clicks["session_id"] <= 40])
    return {
        "multi_category_store": multi_category_store_log(400, seed=5),
        "visitor_log": visitor_log(400, seed=5),
        "uci553": uci,
    }


# ----------------------------------------------------------------- detection from the header
@pytest.mark.parametrize("container", CONTAINERS)
@pytest.mark.parametrize("profile", sorted(BUILTIN_PROFILES))
def test_each_builtin_profile_is_detected_in_every_container(raw_logs, tmp_path: Path, profile: str, container: str):
    raw = raw_logs[profile]
    loaded = load_events(write_table(raw, tmp_path / f"log.{container}"))
    assert loaded.profile.name == profile
    assert len(loaded.events) == len(raw)
    assert loaded.skipped_rows == 0


@pytest.mark.parametrize("profile", ["multi_category_store", "visitor_log"])
def test_every_container_gives_the_same_events(raw_logs, tmp_path: Path, profile: str):
    loads = [load_events(write_table(raw_logs[profile], tmp_path / f"log.{c}")) for c in CONTAINERS]
    for other in loads[1:]:
        pd.testing.assert_frame_equal(canonical(other), canonical(loads[0]))
        assert other.codebooks == loads[0].codebooks


def _respelled(columns: tuple[str, ...], variant: str) -> list[str]:
    if variant == "upper":
        return [c.upper() for c in columns]
    if variant == "title":
        return [c.replace("_", " ").title() for c in columns]  # "Event Time"
    if variant == "spaces":
        return [f" {c}  " for c in columns]
    return list(columns)


HEADER_VARIANTS = ("upper", "title", "spaces", "bom")


@pytest.mark.parametrize("variant", HEADER_VARIANTS)
@pytest.mark.parametrize(
    ("columns", "rows", "profile"),
    [
        (
            MULTI_COLUMNS,
            multi_rows({"product_id": "007"}, {"product_id": "7", "event_time": "2019-10-01 10:01:00 UTC"}),
            "multi_category_store",
        ),
        (
            VISITOR_COLUMNS,
            [{"timestamp": 1569924000000, "visitorid": "007", "event": "view", "itemid": "0042"}],
            "visitor_log",
        ),
    ],
    ids=["multi_category_store", "visitor_log"],
)
def test_header_case_spaces_and_bom_do_not_matter(tmp_path: Path, columns, rows, profile: str, variant: str):
    """The same rows under a respelled header load to the same events, text IDs with leading zeros included."""
    plain = tmp_path / "plain.csv"
    plain.write_text(csv_text(rows, columns), encoding="utf-8")
    text = csv_text(rows, columns).split("\n", 1)[1]
    header = ",".join(_respelled(columns, variant))
    odd = tmp_path / "odd.csv"
    odd.write_bytes(("\ufeff" if variant == "bom" else "").encode() + f"{header}\n{text}".encode())

    expected, loaded = load_events(plain), load_events(odd)
    assert loaded.profile.name == profile
    pd.testing.assert_frame_equal(loaded.events, expected.events)
    assert loaded.warnings == ()


@pytest.mark.parametrize("variant", ["upper", "spaces"])
def test_parquet_column_names_are_matched_the_same_way(tmp_path: Path, variant: str):
    raw = multi_category_store_log(200, seed=2)
    expected = load_events(write_table(raw, tmp_path / "plain.parquet"))
    respelled = raw.set_axis(_respelled(MULTI_COLUMNS, variant), axis=1)
    loaded = load_events(write_table(respelled, tmp_path / "odd.parquet"))
    pd.testing.assert_frame_equal(loaded.events, expected.events)


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        (list(MULTI_COLUMNS), MULTI_CATEGORY_STORE),
        (list(VISITOR_COLUMNS), VISITOR_LOG),
        (list(reversed(VISITOR_COLUMNS)), VISITOR_LOG),
        (["year", "month", "day", "order", "country", "session ID", "page 1 (main category)"], UCI),
        (["Event_Time", "EVENT_TYPE", "product id", *MULTI_COLUMNS[3:]], MULTI_CATEGORY_STORE),
    ],
    ids=["multi", "visitor", "visitor-reordered", "uci-incomplete", "multi-respelled"],
)
def test_detect_profile_from_column_names(columns, expected: DataProfile):
    assert detect_profile(columns) is expected


@pytest.mark.parametrize(
    "header",
    [
        "when,who,what,sku",
        # Three names the UCI file also has, but none of its own: an event log, not an incomplete UCI file.
        "session_id,product_id,price,timestamp,event",
    ],
)
def test_a_header_matching_nothing_gives_one_problem_naming_the_profiles_and_the_option(tmp_path: Path, header: str):
    path = tmp_path / "export.csv"
    path.write_text(f"{header}\n" + ",".join("1" for _ in header.split(",")) + "\n")
    problems = problems_of(path)
    assert len(problems) == 1
    message = problems[0].message
    for profile in BUILTIN_PROFILES.values():
        assert profile.title in message
    assert "--profile FILE" in message
    assert "docs/PROFILES.md" in message
    assert header.split(",", maxsplit=1)[0] in message  # it says what it found


@pytest.mark.parametrize("missing", MULTI_COLUMNS)
def test_a_multi_category_log_missing_one_column_is_that_profile_with_the_column_named(tmp_path: Path, missing: str):
    columns = [c for c in MULTI_COLUMNS if c != missing]
    path = tmp_path / "events.csv"
    path.write_text(csv_text(multi_rows({}), columns))
    with pytest.raises(ValidationError) as info:
        load_events(path)
    assert info.value.source == "events.csv"
    named = [p for p in info.value.problems if p.column == missing]
    assert len(named) == 1, info.value.report()
    assert "Multi-category store event log" in named[0].message
    assert "not in the source" in named[0].message
    # ... and the report lists what the file has, so the user can see the near miss.
    assert any("the source's columns are" in p.message for p in info.value.problems)


@pytest.mark.parametrize("missing", VISITOR_COLUMNS)
def test_a_visitor_log_missing_one_column_names_it(tmp_path: Path, missing: str):
    columns = [c for c in VISITOR_COLUMNS if c != missing]
    path = tmp_path / "visitors.csv"
    path.write_text(csv_text([{"timestamp": 1569924000000, "visitorid": 1, "event": "view", "itemid": 2}], columns))
    problems = problems_of(path)
    assert [p.column for p in problems if p.column] == [missing]


# ----------------------------------------------------------------- TOML profile files
GOOD_PROFILE = """
name = "shop_export"
title = "Our shop's export"
description = "nightly dump of the events table"

[columns]
session_id = "visit"
timestamp = "ts"
event_type = "kind"
product_id = "sku"
category = "cat"
price = "amount"

[fallbacks]
category = "cat_id"

[sessions]
gap_minutes = 45

[timestamp]
format = "%d/%m/%Y %H:%M"

[event_types]
view = ["pv", "detail"]
cart = "basket"
purchase = "order"

[dimensions]
device = "device_type"

[codebooks.device]
m = "mobile"
d = "desktop"
"""


def _write_profile(tmp_path: Path, text: str, name: str = "shop_export.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_profile_file_loads_with_every_key(tmp_path: Path):
    profile = load_profile(_write_profile(tmp_path, GOOD_PROFILE))
    assert profile.name == "shop_export"
    assert profile.title == "Our shop's export"
    assert profile.columns["product_id"] == "sku"
    assert profile.fallbacks == {"category": "cat_id"}
    assert profile.session_gap_minutes == 45.0
    assert profile.timestamp_format == "%d/%m/%Y %H:%M"
    assert profile.events == {"view": ("pv", "detail"), "cart": ("basket",), "purchase": ("order",)}
    assert profile.dimensions == {"device": "device_type"}
    assert profile.codebooks == {"device": {"m": "mobile", "d": "desktop"}}
    assert not profile.builtin


def test_a_good_profile_file_reads_its_export(tmp_path: Path):
    path = _write_profile(tmp_path, GOOD_PROFILE)
    data = tmp_path / "dump.csv"
    data.write_text(
        "visit,ts,kind,sku,cat,cat_id,amount,device_type\n"
        "v1,01/10/2019 10:00,pv,A,,17,5.0,m\n"
        "v1,01/10/2019 10:02,basket,A,shoes,17,5.0,m\n"
        "v1,01/10/2019 10:05,order,A,shoes,17,5.0,d\n"
        "v1,01/10/2019 10:06,wishlist,B,shoes,17,2.0,d\n"
    )
    loaded = load_events(data, profile=path)
    events = loaded.events
    assert loaded.profile.name == "shop_export"
    assert events["event_type"].tolist() == [0, 1, 2, 3]
    assert loaded.other_events == {"wishlist": 1}
    assert [loaded.codebooks["category"][c] for c in events["category"]] == ["17", "shoes", "shoes", "shoes"]
    assert [loaded.codebooks["device"][c] for c in events["device"]] == ["mobile", "mobile", "desktop", "desktop"]
    assert events["timestamp"].iloc[0] == pd.Timestamp("2019-10-01 10:00")


BASE_PROFILE = '[columns]\nsession_id = "visit"\ntimestamp = "ts"\nproduct_id = "sku"\n'
# (case, text before the base profile, text after it, the key the error must name)
BAD_PROFILES = [
    ("unknown top-level key", 'colour_scheme = "dark"', "", "colour_scheme"),
    ("unknown field in [columns]", "", 'sku = "sku"', "sku"),
    ("bad timestamp format", "", '[timestamp]\nformat = "yyyy-mm-dd"', "timestamp.format"),
    ("bad strftime directive", "", '[timestamp]\nformat = "%Q %Y"', "timestamp.format"),
    ("event types without an event column", "", '[event_types]\nview = "pv"', "event_types"),
    ("bad dimension name", "", '[dimensions]\nDevice-Type = "device"', "dimensions.Device-Type"),
    ("dimension name taken by a feature", "", '[dimensions]\nproducts = "n_products"', "dimensions.products"),
    ("dimension name of a field", "", '[dimensions]\nprice = "amount"', "dimensions.price"),
    ("gap of zero minutes", "", "[sessions]\ngap_minutes = 0", "sessions.gap_minutes"),
    ("gap over a day", "", "[sessions]\ngap_minutes = 2000", "sessions.gap_minutes"),
    ("gap as text", "", '[sessions]\ngap_minutes = "30"', "sessions.gap_minutes"),
    ("unknown key in [sessions]", "", "[sessions]\ntimeout = 30", "timeout"),
    ("fallback for an unmapped field", "", '[fallbacks]\nprice = "amount"', "price"),
    ("codebook for no dimension", "", '[codebooks.colour]\n1 = "red"', "codebooks.colour"),
    ("empty column name", "", 'price = " "', "columns.price"),
    ("the built-in UCI name", 'name = "uci553"', "", "name"),
    ("default event not a kind", "", '[event_types]\ndefault = "click"', "event_types.default"),
]


@pytest.mark.parametrize(("case", "before", "after", "key"), BAD_PROFILES, ids=[c[0] for c in BAD_PROFILES])
def test_a_bad_profile_file_is_a_validation_error_naming_the_key(
    tmp_path: Path, case: str, before: str, after: str, key: str
):
    with pytest.raises(ValidationError) as info:
        load_profile(_write_profile(tmp_path, f"{before}\n{BASE_PROFILE}{after}\n"))
    [problem] = info.value.problems
    assert problem.column == key
    assert key.rsplit(".", maxsplit=1)[-1] in problem.message
    assert info.value.source == "shop_export.toml"


def test_columns_must_be_a_table(tmp_path: Path):
    with pytest.raises(ValidationError) as info:
        load_profile(_write_profile(tmp_path, 'columns = "sku"\n'))
    assert [p.column for p in info.value.problems] == ["columns"]


def test_an_event_value_cannot_mean_two_kinds(tmp_path: Path):
    text = '[columns]\nsession_id = "s"\ntimestamp = "t"\nproduct_id = "p"\nevent_type = "e"\n'
    text += '[event_types]\ncart = ["basket", "order"]\npurchase = ["Order"]\n'
    with pytest.raises(ValidationError) as info:
        load_profile(_write_profile(tmp_path, text))
    [problem] = info.value.problems
    assert "'Order'" in problem.message and "'cart'" in problem.message and "'purchase'" in problem.message


@pytest.mark.parametrize(
    ("columns", "needed"),
    [
        ('session_id = "s"\ntimestamp = "t"', "columns.product_id"),
        ('session_id = "s"\nproduct_id = "p"', "columns.timestamp"),
        ('timestamp = "t"\nproduct_id = "p"', "columns.session_id"),
    ],
    ids=["no product", "no time", "no session and no user"],
)
def test_a_profile_missing_what_every_log_needs_says_so(tmp_path: Path, columns: str, needed: str):
    with pytest.raises(ValidationError) as info:
        load_profile(_write_profile(tmp_path, f"[columns]\n{columns}\n"))
    assert [p.column for p in info.value.problems] == [needed]


def test_a_profile_column_not_in_the_file_is_named(tmp_path: Path):
    profile = _write_profile(tmp_path, GOOD_PROFILE)
    data = tmp_path / "dump.csv"
    data.write_text("visit,ts,kind,sku,cat,cat_id,device_type\nv1,01/10/2019 10:00,pv,A,x,1,m\n")
    problems = problems_of(data, profile=profile)
    assert [p.column for p in problems if p.column] == ["amount"]
    assert "'amount' (field 'price') is not in the source" in problems[0].message


@pytest.mark.parametrize(
    ("text", "words"),
    [("[columns\nsku =", "not valid TOML"), (b"\xff\xfe[columns]", "cannot be read")],
    ids=["syntax", "not utf-8"],
)
def test_an_unreadable_profile_file_is_a_validation_error(tmp_path: Path, text, words: str):
    path = tmp_path / "broken.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ValidationError) as info:
        load_profile(path)
    assert words in info.value.problems[0].message


def test_a_missing_profile_file_is_a_validation_error(tmp_path: Path):
    with pytest.raises(ValidationError, match="profile file not found"):
        load_profile(tmp_path / "nope.toml")


# ----------------------------------------------------------------- profile_to_toml
AWKWARD = DataProfile(
    name="awkward",
    title='The "awkward" export',
    description="line one\nline two\twith a tab, a back\\slash and a \x7f",
    columns={
        "user_id": "visitor id",
        "timestamp": "time.utc",
        "product_id": "sku",
        "event_type": "what",
        "revenue": "€",
    },
    fallbacks={"product_id": "parent sku"},
    session_key=("visitor id", "visit #"),
    events={"view": ("detail", "quick view"), "purchase": ("order",)},
    default_event="view",
    dimensions={"device": "device", "country_group": "geo.country"},
    codebooks={"device": {"m": "mobile", "d.1": "desktop"}},
    timestamp_format="epoch_us",
    session_gap_minutes=12.5,
)


@pytest.mark.parametrize(
    "profile",
    [MULTI_CATEGORY_STORE, VISITOR_LOG, AWKWARD, replace(AWKWARD, events={}, default_event="cart")],
    ids=["multi_category_store", "visitor_log", "awkward", "default-event"],
)
def test_profile_to_toml_round_trips_through_profile_from_dict(tmp_path: Path, profile: DataProfile):
    path = _write_profile(tmp_path, profile_to_toml(profile), name=f"{profile.name}.toml")
    assert load_profile(path) == replace(profile, builtin=False)


def test_the_uci_profile_cannot_be_saved_as_a_profile_file():
    """The UCI file has its own validator; a TOML profile under its name would silently bypass the mapping."""
    with pytest.raises(ValidationError, match="built-in UCI profile"):
        profile_from_dict({"name": UCI.name, "columns": dict(UCI.columns)})
