"""The mapping form as data: header guesses, event-value guesses, and form values -> data profile."""

from __future__ import annotations

import tomllib

import pytest

from dashboard.datasets.actions import form_from_inputs
from dashboard.datasets.mapping import (
    MappingForm,
    dimension_name,
    event_value_guess,
    guess_mapping,
    profile_from_form,
)
from ml.data.profiles import FIELDS, profile_from_dict, profile_to_toml
from ml.errors import ValidationError

ODD_HEADER = ["ts", "visitor", "visit", "action", "sku", "cat", "amount", "maker", "device"]
ODD_COLUMNS = {
    "timestamp": "ts",
    "user_id": "visitor",
    "session_id": "visit",
    "event_type": "action",
    "product_id": "sku",
    "category": "cat",
    "price": "amount",
}


def odd_form(**changes) -> MappingForm:
    values = {
        "columns": ODD_COLUMNS,
        "events": {"detail": "view", "add_to_basket": "cart", "order": "purchase", "wishlist": ""},
        "dimensions": ["maker", "device"],
        "session_gap_minutes": 45,
        "timestamp_format": "auto",
        "name": "Odd shop export",
    }
    return MappingForm(**{**values, **changes})


def test_the_header_guess_finds_each_field_once():
    guess = guess_mapping(ODD_HEADER)
    assert {k: v for k, v in guess.items() if v} == ODD_COLUMNS
    assert set(guess) == set(FIELDS)
    # one column never serves two fields; unknown headers give no guess
    assert guess_mapping(["when", "what"]) == dict.fromkeys(FIELDS)
    assert guess_mapping(["Event Time", "Event Type", "Product ID"])["timestamp"] == "Event Time"


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("detail", "view"),
        ("page_view", "view"),
        ("add_to_basket", "cart"),
        ("AddToCart", "cart"),
        ("order", "purchase"),
        ("transaction", "purchase"),
        ("wishlist", ""),
    ],
)
def test_event_values_are_guessed_from_their_words(value, kind):
    assert event_value_guess(value) == kind


def test_the_form_makes_a_profile_with_events_dimensions_and_gap():
    profile = profile_from_form(odd_form())
    assert profile.name == "odd_shop_export" and profile.title == "Odd shop export"
    assert dict(profile.columns) == ODD_COLUMNS
    assert dict(profile.events) == {"view": ("detail",), "cart": ("add_to_basket",), "purchase": ("order",)}
    assert dict(profile.dimensions) == {"maker": "maker", "device": "device"}
    assert profile.session_gap_minutes == 45.0
    # what "save as profile" writes reads back as the same profile
    again = profile_from_dict(tomllib.loads(profile_to_toml(profile)), source="saved.toml")
    assert again == profile


def test_a_form_without_an_event_column_makes_every_row_a_view():
    columns = {k: v for k, v in ODD_COLUMNS.items() if k != "event_type"}
    profile = profile_from_form(odd_form(columns=columns, events={"detail": "view"}))
    assert "event_type" not in profile.columns and not profile.events and profile.default_event == "view"


def test_the_session_gap_is_taken_from_the_number_inputs_text_and_checked():
    assert profile_from_form(odd_form(session_gap_minutes="20")).session_gap_minutes == 20.0
    assert profile_from_form(odd_form(session_gap_minutes=None)).session_gap_minutes == 30.0
    with pytest.raises(ValidationError, match="session gap must be a number"):
        profile_from_form(odd_form(session_gap_minutes="soon"))
    with pytest.raises(ValidationError, match="at most 1440"):
        profile_from_form(odd_form(session_gap_minutes=2000))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"columns": {**ODD_COLUMNS, "category": "sku"}},
            "column 'sku' is chosen for both 'product_id' and 'category'",
        ),
        ({"events": {"detail": "", "order": ""}}, "map at least one value of 'action'"),
        ({"columns": {k: v for k, v in ODD_COLUMNS.items() if k != "product_id"}}, "columns.product_id"),
        (
            {"columns": {k: v for k, v in ODD_COLUMNS.items() if k not in ("session_id", "user_id")}},
            "columns.session_id",
        ),
        ({"events": {"detail": "view", "DETAIL ": "cart"}}, "listed under both"),
        ({"name": "../etc/passwd"}, "profile name"),
        ({"dimensions": [f"d{i}" for i in range(13)]}, "at most 12 dimensions"),
    ],
)
def test_an_incomplete_or_contradictory_form_names_what_is_wrong(changes, message):
    with pytest.raises(ValidationError) as caught:
        profile_from_form(odd_form(**changes))
    assert message in caught.value.report()


def test_dimension_names_are_made_valid_and_kept_apart_from_reserved_names():
    assert dimension_name("Device Type", set()) == "device_type"
    assert dimension_name("date", set()) == "date_group"
    assert dimension_name("2nd channel", set()) == "d_2nd_channel"
    assert dimension_name("brand", {"brand"}) == "brand_2"
    profile = profile_from_form(odd_form(dimensions=["maker", "Maker "]))
    assert set(profile.dimensions) == {"maker", "maker_2"}


def test_the_inputs_of_the_form_become_a_mapping_form():
    field_ids = [{"type": "data-map-field-select", "name": n} for n in ("session_id", "event_type", "product_id")]
    values = [["detail", 10], ["add_to_basket", 3], ["order", 1]]
    form = form_from_inputs(
        field_ids, ["visit", "action", ""], ["view", "cart", "purchase"], values, ["maker"], "30", None, "x"
    )
    assert form.columns == {"session_id": "visit", "event_type": "action", "product_id": None}
    assert form.events == {"detail": "view", "add_to_basket": "cart", "order": "purchase"}
    assert form.timestamp_format == "auto" and form.dimensions == ["maker"]
    # without an event column, event choices left over from another column are ignored
    no_events = form_from_inputs(field_ids, ["visit", "", "sku"], ["view"], values, [], 30, "iso", "x")
    assert no_events.events == {} and no_events.columns["product_id"] == "sku"
