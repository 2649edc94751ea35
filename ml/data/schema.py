"""The canonical click schema, the header aliases of each accepted input form, and the codebook.

Every accepted input (the original UCI ``;`` file, the lowercase comma form,
Parquet of either) is mapped onto ``CLICK_COLUMNS`` with the dtypes in
``CLICK_DTYPES``. Codes stay codes for the models; ``decode`` turns them into
labels for display only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

# Canonical click columns, in order.
SESSION_ID = "session_id"
ORDER = "order"
YEAR = "year"
MONTH = "month"
DAY = "day"
DATE = "date"
COUNTRY = "country"
CATEGORY = "category"
PRODUCT = "product_id"  # the product viewed (the UCI file calls it the clothing model)
CLOTHING_MODEL = PRODUCT
COLOUR = "colour"
LOCATION = "location"
PHOTOGRAPHY = "model_photography"
PRICE = "price"
PRICE_2 = "price_2"
PAGE = "page"
# Event-log fields (every profile maps onto these; the UCI file's events are all views).
EVENT_TYPE = "event_type"  # int8 code below; a frame without the column holds views only
TIMESTAMP = "timestamp"  # optional: the UCI file has dates only
USER_ID = "user_id"  # optional: who, for cutting sessions by inactivity
TRANSACTION = "transaction_id"  # optional: which order a purchase belongs to
EVENT_VIEW, EVENT_CART, EVENT_PURCHASE, EVENT_OTHER = 0, 1, 2, 3
EVENT_NAMES = {EVENT_VIEW: "view", EVENT_CART: "cart", EVENT_PURCHASE: "purchase", EVENT_OTHER: "other"}

# Optional real-label columns; when present they replace the proxy.
LABEL_CONVERTED = "converted"
LABEL_REVENUE = "revenue"

SOURCE_COLUMNS: tuple[str, ...] = (
    YEAR,
    MONTH,
    DAY,
    ORDER,
    COUNTRY,
    SESSION_ID,
    CATEGORY,
    CLOTHING_MODEL,
    COLOUR,
    LOCATION,
    PHOTOGRAPHY,
    PRICE,
    PRICE_2,
    PAGE,
)
CLICK_COLUMNS: tuple[str, ...] = (
    SESSION_ID,
    ORDER,
    DATE,
    YEAR,
    MONTH,
    DAY,
    COUNTRY,
    CATEGORY,
    CLOTHING_MODEL,
    COLOUR,
    LOCATION,
    PHOTOGRAPHY,
    PRICE,
    PRICE_2,
    PAGE,
    EVENT_TYPE,
)
CLICK_DTYPES: Mapping[str, str] = {
    SESSION_ID: "int64",  # or pandas text ("string") when a shop's IDs are not 64-bit integers
    ORDER: "int32",
    DATE: "datetime64[s]",
    YEAR: "int16",
    MONTH: "int8",
    DAY: "int8",
    COUNTRY: "int8",
    CATEGORY: "int8",
    CLOTHING_MODEL: "category",
    COLOUR: "int8",
    LOCATION: "int8",
    PHOTOGRAPHY: "int8",
    PRICE: "float64",
    PRICE_2: "int8",
    PAGE: "int8",
    EVENT_TYPE: "int8",
}

# Header names as users have them: the original UCI file and the lowercase comma form.
UCI_HEADERS: Mapping[str, str] = {
    "year": YEAR,
    "month": MONTH,
    "day": DAY,
    "order": ORDER,
    "country": COUNTRY,
    "session ID": SESSION_ID,
    "page 1 (main category)": CATEGORY,
    "page 2 (clothing model)": CLOTHING_MODEL,
    "colour": COLOUR,
    "location": LOCATION,
    "model photography": PHOTOGRAPHY,
    "price": PRICE,
    "price 2": PRICE_2,
    "page": PAGE,
}
LOWERCASE_HEADERS: Mapping[str, str] = {
    "year": YEAR,
    "month": MONTH,
    "day": DAY,
    "order": ORDER,
    "country": COUNTRY,
    "session_id": SESSION_ID,
    "page1_main_category": CATEGORY,
    "page2_clothing_model": CLOTHING_MODEL,
    "colour": COLOUR,
    "location": LOCATION,
    "model_photography": PHOTOGRAPHY,
    "price": PRICE,
    "price_2": PRICE_2,
    "page": PAGE,
}
LABEL_HEADERS: Mapping[str, str] = {
    LABEL_CONVERTED: LABEL_CONVERTED,
    LABEL_REVENUE: LABEL_REVENUE,
}

# How each canonical column is named in the UCI file, for messages users recognise.
DISPLAY_HEADER: Mapping[str, str] = {canon: uci for uci, canon in UCI_HEADERS.items()}


def normalise_header(name: str) -> str:
    """Reduce a header to lowercase letters and digits so both naming forms match.

    ``"page 1 (main category)"`` and ``"page1_main_category"`` both become
    ``"page1maincategory"``; a UTF-8 byte-order mark or stray spaces do not matter.
    """
    return re.sub(r"[^a-z0-9]", "", str(name).lstrip("\ufeff").lower())


# The canonical names are accepted too, so frames this tool exports load back unchanged.
CANONICAL_HEADERS: Mapping[str, str] = {name: name for name in SOURCE_COLUMNS} | {"clothing_model": PRODUCT}
HEADER_ALIASES: Mapping[str, str] = {
    normalise_header(raw): canon
    for table in (UCI_HEADERS, LOWERCASE_HEADERS, CANONICAL_HEADERS, LABEL_HEADERS)
    for raw, canon in table.items()
}

# ---------------------------------------------------------------- codebook
COUNTRY_NAMES: Mapping[int, str] = {
    1: "Australia",
    2: "Austria",
    3: "Belgium",
    4: "British Virgin Islands",
    5: "Cayman Islands",
    6: "Christmas Island",
    7: "Croatia",
    8: "Cyprus",
    9: "Czech Republic",
    10: "Denmark",
    11: "Estonia",
    12: "unidentified",
    13: "Faroe Islands",
    14: "Finland",
    15: "France",
    16: "Germany",
    17: "Greece",
    18: "Hungary",
    19: "Iceland",
    20: "India",
    21: "Ireland",
    22: "Italy",
    23: "Latvia",
    24: "Lithuania",
    25: "Luxembourg",
    26: "Mexico",
    27: "Netherlands",
    28: "Norway",
    29: "Poland",
    30: "Portugal",
    31: "Romania",
    32: "Russia",
    33: "San Marino",
    34: "Slovakia",
    35: "Slovenia",
    36: "Spain",
    37: "Sweden",
    38: "Switzerland",
    39: "Ukraine",
    40: "United Arab Emirates",
    41: "United Kingdom",
    42: "USA",
    43: "biz (*.biz)",
    44: "com (*.com)",
    45: "int (*.int)",
    46: "net (*.net)",
    47: "org (*.org)",
}
CATEGORY_NAMES: Mapping[int, str] = {1: "trousers", 2: "skirts", 3: "blouses", 4: "sale"}
COLOUR_NAMES: Mapping[int, str] = {
    1: "beige",
    2: "black",
    3: "blue",
    4: "brown",
    5: "burgundy",
    6: "gray",
    7: "green",
    8: "navy blue",
    9: "of many colors",
    10: "olive",
    11: "pink",
    12: "red",
    13: "violet",
    14: "white",
}
LOCATION_NAMES: Mapping[int, str] = {
    1: "top left",
    2: "top in the middle",
    3: "top right",
    4: "bottom left",
    5: "bottom in the middle",
    6: "bottom right",
}
PHOTOGRAPHY_NAMES: Mapping[int, str] = {1: "en face", 2: "profile"}
PRICE_2_NAMES: Mapping[int, str] = {1: "above category average", 2: "not above average"}
DAY_OF_WEEK_NAMES: Mapping[int, str] = {
    0: "Monday",
    1: "Tuesday",
    2: "Wednesday",
    3: "Thursday",
    4: "Friday",
    5: "Saturday",
    6: "Sunday",
}
SALE_CATEGORY = 4
PREMIUM_PRICE_2 = 1
PROFILE_PHOTOGRAPHY = 2
TOP_ROW_LOCATIONS = (1, 2, 3)

CODEBOOK: Mapping[str, Mapping[int, str]] = {
    COUNTRY: COUNTRY_NAMES,
    CATEGORY: CATEGORY_NAMES,
    COLOUR: COLOUR_NAMES,
    LOCATION: LOCATION_NAMES,
    PHOTOGRAPHY: PHOTOGRAPHY_NAMES,
    PRICE_2: PRICE_2_NAMES,
    "day_of_week": DAY_OF_WEEK_NAMES,
}


@dataclass(frozen=True)
class CodeRange:
    """Inclusive range of valid integer codes for one column."""

    low: int
    high: int


CODE_RANGES: Mapping[str, CodeRange] = {
    YEAR: CodeRange(1990, 2100),
    MONTH: CodeRange(1, 12),
    DAY: CodeRange(1, 31),
    ORDER: CodeRange(1, 1_000_000),
    COUNTRY: CodeRange(1, 47),
    CATEGORY: CodeRange(1, 4),
    COLOUR: CodeRange(1, 14),
    LOCATION: CodeRange(1, 6),
    PHOTOGRAPHY: CodeRange(1, 2),
    PRICE_2: CodeRange(1, 2),
    PAGE: CodeRange(1, 5),
}
INTEGER_COLUMNS: tuple[str, ...] = tuple(CODE_RANGES)


def decode(column: str, codes: pd.Series | int) -> pd.Series | str:
    """Map codes of a codebook column to their labels; unknown codes show as ``"code N"``."""
    names = CODEBOOK[column]
    if isinstance(codes, pd.Series):
        return codes.map(lambda c: names.get(int(c), f"code {c}") if pd.notna(c) else "")
    return names.get(int(codes), f"code {codes}")


def empty_clicks() -> pd.DataFrame:
    """A canonical click frame with no rows (useful for tests and defaults)."""
    return pd.DataFrame({col: pd.Series(dtype=CLICK_DTYPES[col]) for col in CLICK_COLUMNS})
