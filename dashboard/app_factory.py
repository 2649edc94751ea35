"""Build the Dash application (a placeholder page until the dashboard lands)."""

from __future__ import annotations

import dash
from dash import html

from ml.config import Settings, get_settings


def create_app(settings: Settings | None = None) -> dash.Dash:
    settings = settings or get_settings()
    app = dash.Dash(__name__, title="Clickstream conversion analytics", serve_locally=True)
    app.layout = html.Main(
        [
            html.H1("Clickstream conversion analytics"),
            html.P(f"Data: {settings.data_file.name}. The dashboard tabs are coming next."),
        ]
    )
    return app
