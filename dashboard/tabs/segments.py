"""Segments tab (not built yet: shows a "coming next" card)."""

from __future__ import annotations

from dash import html

from dashboard.components import coming_next
from dashboard.context import AppContext

TAB_ID = "segments"
LABEL = "Segments"
USES_FILTERS = False


def layout(context: AppContext) -> html.Div:
    return html.Div(
        coming_next(
            LABEL,
            "behavioural segments from K-Means and DBSCAN, with a profile and persona for each.",
        )
    )


def register_callbacks(app, context: AppContext) -> None:
    """Nothing to register yet."""
