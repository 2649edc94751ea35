"""Task names and metric names: small constants every layer shares.

They live here, below everything else, so that listing the registry or
building a leaderboard never imports scikit-learn or XGBoost.
"""

from __future__ import annotations

CLASSIFICATION = "classification"
REGRESSION = "regression"
CLUSTERING = "clustering"
TASKS = (CLASSIFICATION, REGRESSION, CLUSTERING)
# The product recommender is saved in the registry like the models, but has no leaderboard: listing the
# registry without naming a task shows the model tasks only.
RECOMMENDATION = "recommendation"
ARTIFACT_TASKS = (*TASKS, RECOMMENDATION)

CLASSIFICATION_METRICS = ("roc_auc", "pr_auc", "f1", "precision", "recall", "accuracy", "brier")
REGRESSION_METRICS = ("r2", "mae", "mse", "rmse")
LOWER_IS_BETTER = frozenset({"brier", "mae", "mse", "rmse", "davies_bouldin", "inertia"})
PRIMARY_METRIC = {CLASSIFICATION: "roc_auc", REGRESSION: "r2", CLUSTERING: "silhouette"}
