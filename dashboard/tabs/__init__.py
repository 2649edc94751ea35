"""The tabs, in display order. Each exposes TAB_ID, LABEL, USES_FILTERS, layout() and register_callbacks()."""

from __future__ import annotations

from dashboard.tabs import eda, kpi, leaderboard, products, scoring, segments, whatif

TABS = (kpi, eda, segments, products, leaderboard, whatif, scoring)
TAB_IDS = tuple(tab.TAB_ID for tab in TABS)
