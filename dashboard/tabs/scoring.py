"""Batch scoring tab (not built yet: shows a "coming next" card)."""

from __future__ import annotations

from dash import html

from dashboard.components import coming_next
from dashboard.context import AppContext

TAB_ID = "scoring"
LABEL = "Batch scoring"
USES_FILTERS = False


def layout(context: AppContext) -> html.Div:
    return html.Div(
        coming_next(
            LABEL,
            "upload a click file, see its validation report, score it and download the results. Until t"
            "hen: python -m ml score INPUT -o OUTPUT",
        )
    )


def register_callbacks(app, context: AppContext) -> None:
    """Nothing to register yet."""
