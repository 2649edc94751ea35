"""Model leaderboard tab (not built yet: shows a "coming next" card)."""

from __future__ import annotations

from dash import html

from dashboard.components import coming_next
from dashboard.context import AppContext

TAB_ID = "leaderboard"
LABEL = "Model leaderboard"
USES_FILTERS = False


def layout(context: AppContext) -> html.Div:
    return html.Div(
        coming_next(
            LABEL,
            "every model's held-out and cross-validated metrics, curves, and training from the browser."
            " Until then, train from the command line: python -m ml train",
        )
    )


def register_callbacks(app, context: AppContext) -> None:
    """Nothing to register yet."""
