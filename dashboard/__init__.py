"""The Dash user interface over the ``ml`` engine."""
