"""Features: labels, whole-session and early-window features, KPI and EDA aggregates."""
