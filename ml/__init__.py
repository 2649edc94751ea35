"""Clickstream conversion analytics engine: data, features, targets, models, registry, scoring.

A plain Python package: it never imports dash, plotly or the dashboard, so a
scheduler or a notebook can use it alone.
"""
