"""Adding and managing datasets from the browser: the add-data panel in the shell.

``panel(context)`` is the modal (only for roles that may add data),
``register_callbacks(app, context)`` its callbacks. ``intake`` holds the
server side (uploads, checks, the preparing job), ``mapping`` the pure
mapping-form-to-profile logic, ``report`` the component builders.
"""

from __future__ import annotations

from dashboard.context import AppContext
from dashboard.datasets.actions import may_manage_datasets
from dashboard.datasets.callbacks import register_callbacks
from dashboard.datasets.layout import panel as _panel

__all__ = ["may_manage_datasets", "panel", "register_callbacks"]


def panel(context: AppContext) -> object:
    """The add-data modal for analysts and admins; nothing for viewers."""
    return _panel(context.settings) if may_manage_datasets() else None
