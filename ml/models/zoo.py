"""The model zoo: every supervised model as one imbalanced-learn Pipeline with a small grid.

Each pipeline is ``preprocess`` (ColumnTransformer: scaled numbers, one-hot
codes) -> ``sampler`` (``"passthrough"`` or SMOTE, so resampling happens only
inside training folds) -> ``model``. Grids are lists of parameter dicts; the
quick grid is a single setting per model, for smoke runs and tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from imblearn.over_sampling import SMOTE
from imblearn.pipeline import Pipeline
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor, VotingClassifier
from sklearn.kernel_approximation import Nystroem
from sklearn.linear_model import Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVR, LinearSVC
from sklearn.tree import DecisionTreeClassifier
from xgboost import XGBClassifier, XGBRegressor

from ml.config import NYSTROEM_COMPONENTS, SVR_MAX_TRAIN_ROWS
from ml.features.window import FeatureSpec
from ml.tasks import CLASSIFICATION, REGRESSION

N_JOBS = 2  # the target machine has two cores
RARE_CODE_MIN_COUNT = 20  # codes seen fewer times in training are pooled as "infrequent"

Grid = Sequence[Mapping[str, Sequence[object]]]


@dataclass(frozen=True)
class ModelSpec:
    """A named model: how to build its estimator, its grids, and what to say about it."""

    name: str
    title: str
    task: str
    make: Callable[[int], object]
    grid: Grid
    quick_grid: Grid
    note: str | None = None
    max_train_rows: int | None = None
    extra: Mapping[str, object] = field(default_factory=dict)


def _smote(seed: int) -> SMOTE:
    return SMOTE(random_state=seed)


def _svm_classifier(seed: int) -> object:
    svm = LinearSVC(C=1.0, dual="auto", max_iter=5000, random_state=seed)
    return make_pipeline(
        Nystroem(kernel="rbf", gamma=0.05, n_components=NYSTROEM_COMPONENTS, random_state=seed),
        CalibratedClassifierCV(svm, method="sigmoid", cv=3, ensemble=False),
    )


def _xgb_classifier(seed: int) -> XGBClassifier:
    return XGBClassifier(
        n_estimators=250,
        learning_rate=0.05,
        max_depth=4,
        subsample=0.8,
        colsample_bytree=0.8,
        min_child_weight=5,
        tree_method="hist",
        eval_metric="logloss",
        n_jobs=N_JOBS,
        random_state=seed,
    )


def _blend_classifier(seed: int) -> VotingClassifier:
    """Soft vote of a logistic regression and shallow XGBoost: one sees linear trends, the other interactions."""
    logreg = LogisticRegression(C=0.1, max_iter=2000, random_state=seed)
    return VotingClassifier(
        [("logreg", logreg), ("xgboost", _xgb_classifier(seed).set_params(max_depth=2))], voting="soft"
    )


def _xgb_regressor(seed: int) -> XGBRegressor:
    return XGBRegressor(
        n_estimators=250,
        learning_rate=0.05,
        max_depth=3,
        subsample=0.8,
        colsample_bytree=0.8,
        min_child_weight=5,
        tree_method="hist",
        n_jobs=N_JOBS,
        random_state=seed,
    )


def classifier_specs(seed: int) -> list[ModelSpec]:
    smote = [_smote(seed)]
    return [
        ModelSpec(
            "logreg",
            "Logistic regression",
            CLASSIFICATION,
            lambda s: LogisticRegression(max_iter=2000, random_state=s),
            grid=[
                {"model__C": [0.1, 1.0], "model__class_weight": [None, "balanced"]},
                {"model__C": [1.0], "sampler": smote},
            ],
            quick_grid=[{"model__C": [1.0]}],
        ),
        ModelSpec(
            "tree",
            "Decision tree",
            CLASSIFICATION,
            lambda s: DecisionTreeClassifier(random_state=s),
            grid=[{"model__max_depth": [4, 6, 8], "model__min_samples_leaf": [50]}],
            quick_grid=[{"model__max_depth": [5], "model__min_samples_leaf": [50]}],
        ),
        ModelSpec(
            "forest",
            "Random forest",
            CLASSIFICATION,
            lambda s: RandomForestClassifier(n_estimators=150, n_jobs=N_JOBS, random_state=s),
            grid=[{"model__max_depth": [8, 14], "model__min_samples_leaf": [10]}],
            quick_grid=[{"model__n_estimators": [60], "model__max_depth": [8], "model__min_samples_leaf": [10]}],
        ),
        ModelSpec(
            "xgboost",
            "XGBoost",
            CLASSIFICATION,
            _xgb_classifier,
            grid=[{"model__max_depth": [2, 3, 5]}, {"model__max_depth": [3], "sampler": smote}],
            quick_grid=[{"model__n_estimators": [100], "model__max_depth": [3]}],
        ),
        ModelSpec(
            "blend",
            "Blend (logistic regression + XGBoost)",
            CLASSIFICATION,
            _blend_classifier,
            grid=[{"model__xgboost__max_depth": [2, 3]}],
            quick_grid=[{"model__xgboost__n_estimators": [100]}],
            note="soft vote (mean probability) of a logistic regression (C = 0.1) and XGBoost",
        ),
        ModelSpec(
            "svm",
            "SVM (RBF, Nystroem)",
            CLASSIFICATION,
            _svm_classifier,
            grid=[{"model__calibratedclassifiercv__estimator__C": [0.1, 1.0]}],
            quick_grid=[{"model__calibratedclassifiercv__estimator__C": [0.1]}],
            note=(
                f"RBF kernel approximated with Nystroem ({NYSTROEM_COMPONENTS} components) and a "
                "linear SVM, so it fits in seconds on 2 cores; probabilities by Platt (sigmoid) "
                "calibration on 3 inner folds"
            ),
        ),
    ]


def regressor_specs(seed: int) -> list[ModelSpec]:
    return [
        ModelSpec("linear", "Linear regression", REGRESSION, lambda s: LinearRegression(), grid=[{}], quick_grid=[{}]),
        ModelSpec(
            "ridge",
            "Ridge",
            REGRESSION,
            lambda s: Ridge(),
            grid=[{"model__alpha": [1.0, 10.0, 100.0]}],
            quick_grid=[{"model__alpha": [10.0]}],
        ),
        ModelSpec(
            "lasso",
            "Lasso",
            REGRESSION,
            lambda s: Lasso(max_iter=5000),
            grid=[{"model__alpha": [0.1, 1.0]}],
            quick_grid=[{"model__alpha": [1.0]}],
        ),
        ModelSpec(
            "forest",
            "Random forest",
            REGRESSION,
            lambda s: RandomForestRegressor(n_estimators=150, n_jobs=N_JOBS, random_state=s),
            grid=[{"model__max_depth": [6, 10], "model__min_samples_leaf": [10]}],
            quick_grid=[{"model__n_estimators": [60], "model__max_depth": [6], "model__min_samples_leaf": [10]}],
        ),
        ModelSpec(
            "xgboost",
            "XGBoost",
            REGRESSION,
            _xgb_regressor,
            grid=[{"model__max_depth": [2, 4]}],
            quick_grid=[{"model__n_estimators": [100], "model__max_depth": [3]}],
        ),
        ModelSpec(
            "svr",
            "SVR (RBF)",
            REGRESSION,
            lambda s: SVR(kernel="rbf"),
            grid=[{"model__C": [10.0, 100.0], "model__epsilon": [5.0]}],
            quick_grid=[{"model__C": [30.0], "model__epsilon": [5.0]}],
            max_train_rows=SVR_MAX_TRAIN_ROWS,
            note=f"exact RBF SVR fitted on at most {SVR_MAX_TRAIN_ROWS:,} training sessions (random sample)",
        ),
    ]


def all_specs(seed: int) -> dict[tuple[str, str], ModelSpec]:
    return {(s.task, s.name): s for s in classifier_specs(seed) + regressor_specs(seed)}


def preprocessor(features: Sequence[FeatureSpec]) -> ColumnTransformer:
    """Scale numeric features and one-hot encode codes (rare codes pooled, unseen ignored)."""
    numeric = [f.name for f in features if f.kind == "numeric"]
    categorical = [f.name for f in features if f.kind == "categorical"]
    return ColumnTransformer(
        [
            ("numeric", StandardScaler(), numeric),
            (
                "codes",
                OneHotEncoder(
                    handle_unknown="infrequent_if_exist",
                    min_frequency=RARE_CODE_MIN_COUNT,
                    sparse_output=False,
                ),
                categorical,
            ),
        ],
        verbose_feature_names_out=False,
    )


def build_pipeline(spec: ModelSpec, features: Sequence[FeatureSpec], seed: int) -> Pipeline:
    """preprocess -> sampler -> model, with the sampler off until a grid turns it on."""
    return Pipeline(
        [
            ("preprocess", preprocessor(features)),
            ("sampler", "passthrough"),
            ("model", spec.make(seed)),
        ]
    )


def expand_grid(grid: Grid) -> list[dict[str, object]]:
    """All parameter settings of a grid given as a list of dicts of lists."""
    from sklearn.model_selection import ParameterGrid

    return list(ParameterGrid(list(grid)))


def describe_params(params: Mapping[str, object]) -> dict[str, object]:
    """JSON-friendly parameters (estimator objects become their class name)."""
    return {
        k: (v if isinstance(v, str | int | float | bool | type(None)) else type(v).__name__) for k, v in params.items()
    }
