"""What-if tab (not built yet: shows a "coming next" card)."""

from __future__ import annotations

from dash import html

from dashboard.components import coming_next
from dashboard.context import AppContext

TAB_ID = "whatif"
LABEL = "What-if"
USES_FILTERS = False


def layout(context: AppContext) -> html.Div:
    return html.Div(
        coming_next(
            LABEL,
            "sliders for the first clicks of a visit and the live chance of conversion and expected revenue.",
        )
    )


def register_callbacks(app, context: AppContext) -> None:
    """Nothing to register yet."""
