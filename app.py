"""Entry point: ``python app.py`` serves the dashboard; ``server`` is the WSGI app."""

from dashboard.app_factory import create_app
from ml.config import get_settings

app = create_app()
server = app.server

if __name__ == "__main__":
    settings = get_settings()
    app.run(host=settings.host, port=settings.port, debug=settings.debug)
