"""Per-feature contributions to one prediction, in the classifier's margin (log-odds) space.

Every method is exactly additive: ``base + sum(contributions) == logit(P)`` for
the row, so a waterfall of the contributions ends at the model's own answer.

* XGBoost: TreeSHAP from the booster (``pred_contribs=True``) on the
  preprocessed row; the one-hot columns of a code are summed back to the code's
  feature and the bias column is the base value (the model's average margin).
  XGBoost sums in float32, so the base absorbs the rounding (well under 1e-6).
* Logistic regression: ``coef * (x - baseline)`` in the preprocessed space,
  summed per input feature; the base value is the margin of the baseline row.
* Anything else (trees, forests, the SVM pipeline): a path decomposition from
  the baseline row to this row. Features are switched from their baseline to
  their actual value one at a time; each step's change in logit(P) is that
  feature's contribution. The sum telescopes to ``logit(P(x)) - logit(P(baseline))``
  whatever the order; the result is averaged over the forward and the reverse
  feature order so no feature always goes first.

The baseline is the typical session saved with the model. Predictions here
are for a few dozen rows at a time (a what-if update), so the preprocessing is
replayed in numpy (``CompiledPreprocess``, checked against the real one) and
the estimator runs single-threaded on a private copy: for so few rows, a
ColumnTransformer call or a thread start-up costs more than the model itself.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from threadpoolctl import ThreadpoolController

METHOD_TREE_SHAP = "tree_shap"
METHOD_LINEAR = "linear"
METHOD_PATH = "path"
METHOD_TEXT = {
    METHOD_TREE_SHAP: "XGBoost TreeSHAP (pred_contribs), summed per input feature; "
    "the base is the model's average log-odds",
    METHOD_LINEAR: "coefficient x (value - typical value) of the logistic regression, summed per input feature; "
    "the base is the typical session",
    METHOD_PATH: "change in log-odds as each feature moves from the typical session to this value, "
    "averaged over forward and reverse feature order; the base is the typical session",
}
BASE_LABEL = {
    METHOD_TREE_SHAP: "Model average",
    METHOD_LINEAR: "Typical session",
    METHOD_PATH: "Typical session",
}
PROBABILITY_EPS = 1e-6  # keeps logit finite for pure tree leaves (P of exactly 0 or 1)


def margin(p: np.ndarray | float) -> np.ndarray | float:
    """Log-odds of a probability (clipped to [eps, 1 - eps] so it stays finite)."""
    clipped = np.clip(np.asarray(p, dtype=np.float64), PROBABILITY_EPS, 1.0 - PROBABILITY_EPS)
    return np.log(clipped) - np.log1p(-clipped)


def probability(log_odds: np.ndarray | float) -> np.ndarray | float:
    return 1.0 / (1.0 + np.exp(-np.asarray(log_odds, dtype=np.float64)))


@dataclass(frozen=True)
class Contributions:
    """How one row's margin splits over the input features."""

    features: tuple[str, ...]
    values: np.ndarray  # log-odds per feature, aligned with ``features``
    base: float
    method: str

    @property
    def margin(self) -> float:
        return self.base + float(self.values.sum())

    @property
    def base_label(self) -> str:
        return BASE_LABEL[self.method]

    @property
    def description(self) -> str:
        return METHOD_TEXT[self.method]


# ---------------------------------------------------------------- pipeline plumbing
_THREAD_LIMIT_LOCK = threading.Lock()


@cache
def _thread_pools() -> ThreadpoolController:
    return ThreadpoolController()


@contextmanager
def one_thread() -> Iterator[None]:
    """Run a small prediction with BLAS and OpenMP on one thread.

    On a busy two-core machine a multi-threaded BLAS call on a few dozen rows
    can wait tens of ms for its threads. The limit is process-wide, so callers
    are serialised; each holds it for a few ms.
    """
    with _THREAD_LIMIT_LOCK, _thread_pools().limit(limits=1):
        yield


def _is_active_transform(step: object) -> bool:
    """Samplers (SMOTE) only act in ``fit``; "passthrough" and None do nothing."""
    return step is not None and step != "passthrough" and not hasattr(step, "fit_resample")


def single_threaded(estimator: object) -> object:
    """A private copy of a fitted estimator with every ``n_jobs`` (nested too) set to 1."""
    private = copy.deepcopy(estimator)
    if hasattr(private, "get_params"):
        jobs = {name: 1 for name in private.get_params(deep=True) if name.split("__")[-1] == "n_jobs"}
        if jobs:
            private.set_params(**jobs)
    return private


def _column_owners(preprocess: object, features: Sequence[str]) -> np.ndarray:
    """Index of the input feature behind each preprocessed column.

    One-to-one columns keep their input name; one-hot columns are named
    ``<feature>_<code>`` (or ``<feature>_infrequent_sklearn``), so the longest
    feature name that prefixes a column name owns it.
    """
    by_length = sorted(features, key=len, reverse=True)
    index = {name: i for i, name in enumerate(features)}
    owners = []
    for column in preprocess.get_feature_names_out():
        if column in index:
            owners.append(index[column])
            continue
        owner = next((f for f in by_length if column.startswith(f + "_")), None)
        if owner is None:
            raise ValueError(f"cannot tell which input feature the column {column!r} comes from")
        owners.append(index[owner])
    return np.asarray(owners)


def _stack(frames: Sequence[pd.DataFrame], features: Sequence[str]) -> dict[str, np.ndarray]:
    return {name: np.concatenate([f[name].to_numpy() for f in frames]) for name in features}


@dataclass
class CompiledPreprocess:
    """Per-feature preprocessing replayed in numpy: affine for numbers, a lookup table for codes.

    Built by probing the fitted transformers from a baseline row and kept only
    if it reproduces them on test rows; a code outside the table falls back to
    the transformers. A ColumnTransformer call costs milliseconds; this, microseconds.
    """

    base: np.ndarray  # preprocessed baseline row
    baseline: dict[str, float]
    columns: dict[str, np.ndarray]  # feature -> the preprocessed columns it owns
    slopes: dict[str, np.ndarray]  # numeric feature -> change of its columns per unit
    tables: dict[str, dict[int, np.ndarray]]  # code feature -> code -> its columns' values

    def __call__(self, X: Mapping[str, np.ndarray], rows: int) -> np.ndarray | None:
        out = np.repeat(self.base[None, :], rows, axis=0)
        for name, slope in self.slopes.items():
            out[:, self.columns[name]] += np.outer(np.asarray(X[name], dtype=np.float64) - self.baseline[name], slope)
        for name, table in self.tables.items():
            try:
                out[:, self.columns[name]] = [table[int(code)] for code in X[name]]
            except KeyError:
                return None
        return out


@dataclass
class FastPipeline:
    """A fitted pipeline for small batches: compiled preprocessing and a single-threaded estimator."""

    transforms: list[object]
    model: object
    features: tuple[str, ...]
    owners: np.ndarray  # preprocessed column -> input feature index
    compiled: CompiledPreprocess | None = None

    def slow_transform(self, X: Mapping[str, np.ndarray]) -> np.ndarray:
        """The pipeline's own preprocessing, as at predict time (samplers skipped)."""
        out = pd.DataFrame({name: X[name] for name in self.features})
        for step in self.transforms:
            out = step.transform(out)
        return np.asarray(out, dtype=np.float64)

    def transform(self, X: Mapping[str, np.ndarray] | pd.DataFrame) -> np.ndarray:
        if self.compiled is not None:
            out = self.compiled(X, len(X[self.features[0]]))
            if out is not None:
                return out
        return self.slow_transform(X)

    def predict_proba(self, X: Mapping[str, np.ndarray] | pd.DataFrame) -> np.ndarray:
        """P(class 1) for each row, as the pipeline's ``predict_proba`` gives it."""
        return self.model.predict_proba(self.transform(X))[:, 1]

    def predict(self, X: Mapping[str, np.ndarray] | pd.DataFrame) -> np.ndarray:
        return self.model.predict(self.transform(X))


def _compile(
    fast: FastPipeline, baseline: pd.DataFrame, codes: Mapping[str, Sequence[int]]
) -> CompiledPreprocess | None:
    """Probe the fitted preprocessing around ``baseline``; None if it is not per-feature affine/lookup."""
    base_values = {name: baseline[name].to_numpy() for name in fast.features}
    base = fast.slow_transform(base_values)[0]
    columns = {name: np.flatnonzero(fast.owners == i) for i, name in enumerate(fast.features)}
    compiled = CompiledPreprocess(base, {n: float(v[0]) for n, v in base_values.items()}, columns, {}, {})
    for name in fast.features:
        probes = [int(c) for c in codes[name]] if name in codes else [base_values[name][0] + d for d in (1.0, 2.0)]
        probe = {n: np.repeat(v, len(probes)) for n, v in base_values.items()}
        probe[name] = np.asarray(probes, dtype=base_values[name].dtype)
        moved = fast.slow_transform(probe)
        others = np.setdiff1d(np.arange(len(base)), columns[name])
        if not np.allclose(moved[:, others], base[others]):
            return None  # the feature reaches columns it does not own
        if name in codes:
            compiled.tables[name] = {code: row[columns[name]] for code, row in zip(probes, moved, strict=True)}
        else:
            slope = moved[0, columns[name]] - base[columns[name]]
            if not np.allclose(moved[1, columns[name]] - base[columns[name]], 2 * slope):
                return None  # not affine
            compiled.slopes[name] = slope
    return compiled


def fast_pipeline(
    pipeline: object, baseline: pd.DataFrame, codes: Mapping[str, Sequence[int]], check: pd.DataFrame | None = None
) -> FastPipeline:
    """A FastPipeline for an imblearn/sklearn pipeline, compiled if that reproduces it on ``check`` rows.

    ``codes`` lists the known codes of each categorical feature (the lookup tables).
    """
    *head, (_, final) = pipeline.steps
    transforms = [step for _, step in head if _is_active_transform(step)]
    preprocess = transforms[0] if transforms else None
    names_in = getattr(preprocess, "feature_names_in_", None)
    features = tuple(str(name) for name in (names_in if names_in is not None else baseline.columns))
    if preprocess is not None and hasattr(preprocess, "get_feature_names_out"):
        owners = _column_owners(preprocess, features)
    else:
        owners = np.arange(len(features))
    fast = FastPipeline(transforms, single_threaded(final), features, owners)
    compiled = _compile(fast, baseline, codes)
    rows = check if check is not None else baseline
    values = {name: rows[name].to_numpy() for name in features}
    if compiled is not None and np.allclose(compiled(values, len(rows)), fast.slow_transform(values), atol=1e-12):
        fast.compiled = compiled
    return fast


@dataclass
class Explainer:
    """Predicts and explains rows for one fitted classifier pipeline; build once per model."""

    fast: FastPipeline
    baseline: pd.DataFrame  # one row: the typical session
    method: str
    _baseline_transformed: np.ndarray = field(init=False, repr=False)
    _baseline_margin: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._baseline_transformed = self.fast.transform(self.baseline)
        self._baseline_margin = float(margin(self.fast.model.predict_proba(self._baseline_transformed)[0, 1]))

    @property
    def features(self) -> tuple[str, ...]:
        return self.fast.features

    def explain(self, row: pd.DataFrame, also: pd.DataFrame | None = None) -> tuple[Contributions, np.ndarray]:
        """Contributions for a one-row frame, and P for the row followed by ``also``'s rows.

        ``also`` (e.g. a sensitivity grid) is scored in the same model call as
        the explanation needs, which saves a call per update.
        """
        frames = [row] if also is None else [row, also]
        if self.method == METHOD_PATH:
            return self._explain_path(row, frames)
        transformed = self.fast.transform(_stack(frames, self.features))
        p = self.fast.model.predict_proba(transformed)[:, 1]
        if self.method == METHOD_TREE_SHAP:
            values = self._tree_shap(transformed[:1])
            # The bias column, with XGBoost's float32 rounding (< 1e-6) folded in so the
            # sum lands exactly on the P the model reports.
            base = float(margin(p[0])) - float(values.sum())
        else:
            values, base = self._linear(transformed[:1])
        return Contributions(self.features, values, base, self.method), p

    def _per_feature(self, column_values: np.ndarray) -> np.ndarray:
        return np.bincount(self.fast.owners, weights=column_values, minlength=len(self.features))

    def _tree_shap(self, transformed: np.ndarray) -> np.ndarray:
        import xgboost

        matrix = xgboost.DMatrix(transformed, nthread=1)
        contribs = self.fast.model.get_booster().predict(matrix, pred_contribs=True)[0].astype(np.float64)
        return self._per_feature(contribs[:-1])  # the last column is the bias

    def _linear(self, transformed: np.ndarray) -> tuple[np.ndarray, float]:
        coef = self.fast.model.coef_[0]
        return self._per_feature(coef * (transformed[0] - self._baseline_transformed[0])), self._baseline_margin

    def _explain_path(self, row: pd.DataFrame, frames: list[pd.DataFrame]) -> tuple[Contributions, np.ndarray]:
        n = len(self.features)
        steps = np.arange(n + 1)[:, None]
        position = np.arange(n)[None, :]
        # Row i of an order has its first i features (in that order) set to the actual values.
        switched = np.vstack([steps > position, steps > (n - 1 - position)])
        stacked = _stack(frames, self.features)
        for j, name in enumerate(self.features):
            path = np.where(switched[:, j], row[name].to_numpy()[0], self.baseline[name].to_numpy()[0])
            stacked[name] = np.concatenate([stacked[name], path.astype(stacked[name].dtype)])
        p = self.fast.predict_proba(stacked)
        scored = len(p) - 2 * (n + 1)  # the row and the extra rows come first
        path_margin = margin(p[scored:])
        forward_steps = np.diff(path_margin[: n + 1])  # feature j at step j
        reverse_steps = np.diff(path_margin[n + 1 :])[::-1]  # feature j at step n-1-j
        values = (forward_steps + reverse_steps) / 2.0
        return Contributions(self.features, values, float(path_margin[0]), self.method), p[:scored]


def explainer_method(model: object) -> str:
    if hasattr(model, "get_booster"):
        return METHOD_TREE_SHAP
    if isinstance(model, LogisticRegression) and model.coef_.shape[0] == 1:
        return METHOD_LINEAR
    return METHOD_PATH


def make_explainer(
    pipeline: object, baseline: pd.DataFrame, codes: Mapping[str, Sequence[int]], check: pd.DataFrame | None = None
) -> Explainer:
    """An explainer for a pipeline ending in a binary classifier (see ``fast_pipeline`` for the arguments)."""
    fast = fast_pipeline(pipeline, baseline, codes, check)
    return Explainer(fast, baseline, explainer_method(fast.model))
