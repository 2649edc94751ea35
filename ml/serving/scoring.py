"""Score click files with the saved models: one row per session.

Each session gets a status. Sessions with at least ``k`` clicks that had not
converted inside the window are ``scored``: P(convert) from the classifier,
the predicted class at its saved threshold, a predicted basket value from the
regressor and the expected revenue (P x basket). Shorter sessions are ``too
short``; sessions that already converted inside the window say so. Every
session gets a behavioural segment from the K-Means model, and, when the
dataset has a saved product recommender, the top 3 products to show it next
(from every product it viewed, none it has seen), for campaigns.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.data import schema as S
from ml.data.clicks import index_clicks
from ml.data.codes import Codebook, codebook_from_json, recode
from ml.data.profiles import UCI_PROFILE
from ml.errors import ClickstreamError, NoModelError
from ml.features.labels import definition_for_scoring
from ml.features.sessions import segment_feature_names, session_features
from ml.features.window import STATUS_SCORED, window_features
from ml.models.recommend import ProductRecommender, recommend_sessions
from ml.serving.recommendations import load_saved
from ml.serving.registry import LoadedRun, ModelStore, Registry, RunInfo
from ml.tasks import CLASSIFICATION, CLUSTERING, REGRESSION

log = logging.getLogger(__name__)

SCORE_COLUMNS = (
    "session_id",
    "clicks",
    "status",
    "p_convert",
    "predicted_converted",
    "predicted_basket_value",
    "expected_revenue",
    "segment",
    "recommended_products",
)
RECOMMENDED_PRODUCTS = 3  # products per session in ``recommended_products``


@dataclass(frozen=True)
class ScoringModels:
    """The runs used to score: a classifier, and where available a regressor, a segmenter and a recommender."""

    classifier: LoadedRun
    regressor: LoadedRun | None
    segmenter: LoadedRun | None
    recommender: ProductRecommender | None = None

    @property
    def window(self) -> int:
        return self.classifier.window

    @property
    def profile(self) -> str:
        """The data profile the models were trained on (runs from before profiles: the UCI file)."""
        return str(self.classifier.metadata.get("dataset", {}).get("profile") or UCI_PROFILE)

    @property
    def feature_names(self) -> list[str]:
        return [f["name"] for f in self.classifier.metadata["features"]]

    @property
    def codebooks(self) -> dict[str, dict[int, str]]:
        """How the training data coded its text values (the UCI codebook for runs from before profiles)."""
        saved = self.classifier.metadata.get("codebooks")
        if not saved:
            return {k: dict(v) for k, v in S.CODEBOOK.items()}
        return {name: codebook_from_json(book) for name, book in saved.items()}

    @property
    def threshold(self) -> float:
        return self.classifier.threshold

    def describe(self) -> dict[str, object]:
        def name(run: LoadedRun | None) -> str | None:
            return f"{run.info.model} ({run.info.run_id})" if run else None

        return {
            "classifier": name(self.classifier),
            "regressor": name(self.regressor),
            "segmenter": name(self.segmenter),
            "recommender": "product_recommender" if self.recommender is not None else None,
            "window": self.window,
            "threshold": self.threshold,
        }


def best_regressor(runs: Sequence[RunInfo], window: int) -> RunInfo | None:
    """The basket-value model for a classifier: best CV R2 among regressors trained with the same window."""
    same_window = [r for r in runs if r.metadata and r.metadata.get("window") == window]
    if not same_window:
        return None
    return max(same_window, key=lambda r: np.nan_to_num(r.metric("r2", "cv"), nan=-np.inf))


def load_scoring_models(registry: Registry, classifier_run: str | None = None) -> ScoringModels:
    """The champion classifier (or a chosen run), a regressor with the same window, and K-Means."""
    info = registry.find(classifier_run) if classifier_run else registry.champion(CLASSIFICATION)
    classifier = registry.load(info) if classifier_run else registry.load_intact(info)
    window = classifier.window
    best = best_regressor(registry.latest_per_model(REGRESSION), window)
    regressor = registry.load_intact(best) if best else None
    if regressor is None:
        log.warning("no regressor trained with a %d-click window; basket values are left empty", window)
    kmeans = next(iter(r for r in registry.latest_per_model(CLUSTERING) if r.model == "kmeans"), None)
    segmenter = registry.load_intact(kmeans) if kmeans else None
    saved = load_saved(registry)
    if saved is None:
        log.info("no saved product recommender; recommended_products is left empty (run 'python -m ml recommend')")
    return ScoringModels(classifier, regressor, segmenter, saved.model if saved else None)


def _segment_names(segmenter: LoadedRun) -> dict[int, str]:
    """Persona name per cluster id (names are unique within a run, and read the same on the segments tab)."""
    return {int(s["segment"]): str(s["persona"]) for s in segmenter.metadata.get("segments", [])}


class IncompatibleModelsError(ClickstreamError):
    """The models were trained on data of another profile, or need features the file cannot give."""


def check_profile(models: ScoringModels, profile: str, fitting: Sequence[str] = ()) -> None:
    """Refuse a file whose profile is not the one the models were trained on, naming what would fit."""
    if profile == models.profile:
        return
    hint = (
        f"models trained on that profile: {', '.join(fitting)}"
        if fitting
        else "no saved models fit it; train on data of this profile first"
    )
    raise IncompatibleModelsError(
        f"the file is a '{profile}' event log but these models were trained on '{models.profile}' data; {hint}"
    )


def code_like_training(events: pd.DataFrame, codebooks: Mapping[str, Codebook], models: ScoringModels) -> pd.DataFrame:
    """The events with their category and dimension codes changed to the codes the training data gave them."""
    target = models.codebooks
    out = events
    for column, book in codebooks.items():
        if column in events and column in target and dict(book) != dict(target[column]):
            if out is events:
                out = events.copy()
            out[column] = recode(events[column].to_numpy(), book, target[column])
    return out


def score_clicks(clicks: pd.DataFrame, models: ScoringModels) -> pd.DataFrame:
    """Per-session scores for canonical events (coded as the training data was), in ``SCORE_COLUMNS`` order."""
    if len(clicks) == 0:
        raise NoModelError("there are no clicks to score")
    indexed = index_clicks(clicks)
    definition = definition_for_scoring(clicks, models.classifier.metadata["label"]["name"])
    window = window_features(indexed, models.window, definition)
    missing = [name for name in models.feature_names if name not in window.features]
    if missing:
        raise IncompatibleModelsError(
            f"the file cannot give the features the model needs ({', '.join(missing[:8])}); "
            "score it with models trained on data of the same profile"
        )
    scored = window.features[models.feature_names]
    out = pd.DataFrame(
        {
            "session_id": window.status.index,
            "clicks": window.n_clicks.to_numpy(),
            "status": window.status.to_numpy(),
        }
    )
    is_scored = (out["status"] == STATUS_SCORED).to_numpy()
    p = np.full(len(out), np.nan)
    basket = np.full(len(out), np.nan)
    if len(scored):
        p[is_scored] = models.classifier.pipeline.predict_proba(scored)[:, 1]
        if models.regressor is not None:
            basket[is_scored] = np.clip(models.regressor.pipeline.predict(scored), 0.0, None)
    out["p_convert"] = p.round(6)
    predicted = pd.array(np.where(is_scored, p >= models.threshold, False), dtype="boolean")
    predicted[~is_scored] = pd.NA
    out["predicted_converted"] = predicted
    out["predicted_basket_value"] = basket.round(2)
    out["expected_revenue"] = (p * basket).round(2)
    if models.segmenter is not None:
        sessions = session_features(indexed, definition)
        inputs = models.segmenter.metadata.get("features") or list(segment_feature_names(sessions))
        codes = models.segmenter.pipeline.predict(sessions[list(inputs)])
        names = _segment_names(models.segmenter)
        out["segment"] = [names.get(int(c), str(int(c))) for c in codes]
    else:
        out["segment"] = pd.NA
    out["recommended_products"] = _recommended(clicks, models.recommender, out["session_id"])
    if out["session_id"].dtype == object:
        out["session_id"] = out["session_id"].astype("string")
    return out[list(SCORE_COLUMNS)]


def _recommended(clicks: pd.DataFrame, recommender: ProductRecommender | None, session_ids: pd.Series) -> pd.Series:
    """The top products per session, aligned with ``session_ids`` (empty without a recommender or products)."""
    if recommender is None:
        return pd.Series(pd.NA, index=session_ids.index, dtype="string")
    lists = recommend_sessions(recommender, clicks, n=RECOMMENDED_PRODUCTS)
    by_session = pd.Series(lists["recommended_products"].to_numpy(), index=lists["session_id"].to_numpy())
    return pd.Series(session_ids.map(by_session).to_numpy(), index=session_ids.index, dtype="string")


def score_summary(scores: pd.DataFrame) -> dict[str, object]:
    """Counts by status and the totals a user checks first."""
    counts = scores["status"].value_counts()
    scored = scores[scores["status"] == STATUS_SCORED]
    return {
        "sessions": len(scores),
        "status_counts": {str(k): int(v) for k, v in counts.items()},
        "predicted_converting": int(scored["predicted_converted"].sum()) if len(scored) else 0,
        "mean_p_convert": float(scored["p_convert"].mean()) if len(scored) else float("nan"),
        "expected_revenue": float(scored["expected_revenue"].sum()) if len(scored) else 0.0,
        "clicks": int(scores["clicks"].sum()),
    }


def trained_profiles(store: ModelStore) -> dict[str, str]:
    """Each dataset with a classifier, and the data profile its best classifier was trained on."""
    out = {}
    for key in store.datasets():
        try:
            champion = store.registry(key).champion(CLASSIFICATION)
        except ClickstreamError:
            continue
        out[key] = (champion.metadata or {}).get("dataset", {}).get("profile") or UCI_PROFILE
    return out


def fitting_datasets(store: ModelStore, profile: str) -> list[str]:
    """Datasets whose best classifier was trained on data of ``profile``."""
    return [key for key, trained_on in trained_profiles(store).items() if trained_on == profile]


def no_fitting_models_message(store: ModelStore, profile: str) -> str:
    """Why nothing can score a file of ``profile``: which datasets the saved models belong to, and their profiles."""
    others = ", ".join(f"'{key}' (trained on '{p}' data)" for key, p in trained_profiles(store).items())
    saved = f"the saved models are of other data: {others}" if others else "no saved model has a classifier"
    return f"no saved models fit '{profile}' data: {saved}"
