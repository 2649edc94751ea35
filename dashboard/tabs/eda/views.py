"""The EDA tab's views: one dataset and one filter in, one figure out (the bodies of its callbacks).

Each view reads the dataset's EDA cubes (built once per dataset), so a filter
change costs the number of distinct cube keys, not the number of events. A view
of a chart the dataset cannot have (no colour column, no timestamps) returns a
figure that says so in one line, never an error.
"""

from __future__ import annotations

import plotly.graph_objects as go

from dashboard.figures.eda import (
    category_colour_figure,
    correlation_figure,
    events_figure,
    page_location_figure,
    price_figure,
    sessions_and_rate_figure,
    top_products_figure,
)
from dashboard.figures.kpi import breakdown_figure
from dashboard.figures.style import empty_figure
from ml.features import eda
from ml.features.eda import EdaCubes
from ml.features.kpis import SessionFilter
from ml.features.prepared import PreparedData

NORMALISE = "share"
COUNTS = "views"
PRICE_CATEGORIES = 6  # price panels for the categories with most priced events


def cubes_of(data: PreparedData) -> EdaCubes:
    return eda.eda_cubes(data)


def conversion_title(data: PreparedData) -> str:
    """The label's name wherever a conversion number appears ("Conversion (purchases)")."""
    return data.definition.title


def unit(data: PreparedData) -> str:
    """What one row of the log is called: clicks on the views-only UCI file, events elsewhere."""
    return "clicks" if cubes_of(data).views_only else "events"


def _left_out(cubes: EdaCubes, chart: str) -> go.Figure | None:
    note = cubes.missing_note(chart)
    return empty_figure(note) if note else None


def price_view(data: PreparedData, filt: SessionFilter) -> go.Figure:
    cubes = cubes_of(data)
    if (missing := _left_out(cubes, "prices")) is not None:
        return missing
    table = eda.price_distribution(cubes, filt)
    largest = table.groupby("category")["views"].sum().nlargest(PRICE_CATEGORIES).index
    return price_figure(table[table["category"].isin(largest)])


def session_length_view(data: PreparedData, filt: SessionFilter) -> go.Figure:
    table = eda.session_lengths(cubes_of(data), filt)
    what = unit(data)
    return sessions_and_rate_figure(table, f"{what.capitalize()} in the session", what, conversion_title(data))


def page_location_view(data: PreparedData, filt: SessionFilter) -> go.Figure:
    cubes = cubes_of(data)
    if (missing := _left_out(cubes, "page_location")) is not None:
        return missing
    return page_location_figure(eda.page_location(cubes, filt))


def category_colour_view(data: PreparedData, filt: SessionFilter, mode: str | None = NORMALISE) -> go.Figure:
    cubes = cubes_of(data)
    if (missing := _left_out(cubes, "category_colour")) is not None:
        return missing
    return category_colour_figure(eda.category_colour(cubes, filt), normalise=mode != COUNTS)


def events_view(data: PreparedData, filt: SessionFilter) -> go.Figure:
    cubes = cubes_of(data)
    if (missing := _left_out(cubes, "events")) is not None:
        return missing
    return events_figure(eda.events_by_type(cubes, filt))


def hour_view(data: PreparedData, filt: SessionFilter) -> go.Figure:
    cubes = cubes_of(data)
    if (missing := _left_out(cubes, "hours")) is not None:
        return missing
    table = eda.sessions_by_hour(cubes, filt)
    return sessions_and_rate_figure(table, "Hour of the first event", "h", conversion_title(data), max_ticks=24)


def correlation_view(data: PreparedData, filt: SessionFilter) -> go.Figure:
    return correlation_figure(eda.correlation(cubes_of(data), filt))


def top_products_view(data: PreparedData, filt: SessionFilter, by: str | None = "views") -> go.Figure:
    cubes = cubes_of(data)
    by = by if by in eda.top_metrics(cubes) else "views"
    table = eda.top_products(cubes, filt, by=by)
    return top_products_figure(table, by, eda.MIN_REVIEW_SESSIONS)


def default_dimension(data: PreparedData) -> str | None:
    """The dimension the breakdown starts on: country where the data has it, else the first one."""
    choices = list(eda.dimension_choices(cubes_of(data)))
    preferred = [d for d in ("country", "main_country") if d in choices]
    return (preferred or choices or [None])[0]


def dimension_view(data: PreparedData, filt: SessionFilter, dimension: str | None = None) -> go.Figure:
    cubes = cubes_of(data)
    choices = eda.dimension_choices(cubes)
    dimension = dimension if dimension in choices else default_dimension(data)
    if dimension is None:
        return empty_figure("Sessions by dimension: left out, this dataset has no dimensions.")
    table = eda.dimension_breakdown(cubes, filt, dimension)
    revenue = "Revenue" if data.has_purchases else "Potential revenue"
    return go.Figure(
        breakdown_figure(table, filt.codes_for(dimension), conversion_title(data), top=15, revenue=revenue)
    )


def weekday_view(data: PreparedData, filt: SessionFilter) -> go.Figure:
    table = eda.sessions_by_weekday(cubes_of(data), filt)
    table["label"] = table["label"].str[:3]  # Mon, Tue, ...: fits a narrow panel without rotating
    return sessions_and_rate_figure(table, "Day of the week", "", conversion_title(data))
