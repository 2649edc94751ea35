"""Score click files with the saved models: one row per session.

Each session gets a status. Sessions with at least ``k`` clicks that had not
converted inside the window are ``scored``: P(convert) from the classifier,
the predicted class at its saved threshold, a predicted basket value from the
regressor and the expected revenue (P x basket). Shorter sessions are ``too
short``; sessions that already converted inside the window say so. Every
session gets a behavioural segment from the K-Means model, and, when the
dataset has a saved product recommender, the top 3 products to show it next
(from every product it viewed, none it has seen), for campaigns.

The classifier that scores is **pinned** per dataset (``scoring_pin.json`` in
the dataset's registry folder): the first scoring pins the champion, and a
later training job (one model, another window) does not change what scores
until someone picks another model. ``target_list`` turns the scores into the
ranked list a campaign uses, by capacity (the top N%) or by the threshold.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from ml.data import schema as S
from ml.data.clicks import index_clicks
from ml.data.codes import Codebook, codebook_from_json, recode
from ml.data.memory import reusing_freed_memory
from ml.data.profiles import UCI_PROFILE
from ml.errors import ArtifactError, ClickstreamError, NoModelError
from ml.features.labels import definition_for_scoring
from ml.features.sessions import segment_feature_names, session_features
from ml.features.window import STATUS_SCORED, window_features
from ml.models.capacity import top_share_mask
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

    @property
    def basket_interval(self) -> dict | None:
        """The regressor's held-out residual quantiles (basket values are ranges), or ``None``."""
        interval = (self.regressor.metadata.get("interval") or {}) if self.regressor else {}
        return dict(interval) if interval.get("n") else None

    def describe(self) -> dict[str, object]:
        def name(run: LoadedRun | None) -> str | None:
            return f"{run.info.model} ({run.info.run_id})" if run else None

        return {
            "classifier": name(self.classifier),
            "classifier_title": str(self.classifier.metadata.get("title", self.classifier.info.model)),
            "run_id": self.classifier.info.run_id,
            "regressor": name(self.regressor),
            "segmenter": name(self.segmenter),
            "recommender": "product_recommender" if self.recommender is not None else None,
            "window": self.window,
            "threshold": self.threshold,
            "interval": self.basket_interval,
        }


def best_regressor(runs: Sequence[RunInfo], window: int) -> RunInfo | None:
    """The basket-value model for a classifier: best CV R2 among regressors trained with the same window."""
    same_window = [r for r in runs if r.metadata and r.metadata.get("window") == window]
    if not same_window:
        return None
    return max(same_window, key=lambda r: np.nan_to_num(r.metric("r2", "cv"), nan=-np.inf))


# ---------------------------------------------------------------- the pinned scoring model
PIN_FILE = "scoring_pin.json"


def read_pin(registry: Registry) -> dict | None:
    """The pinned scoring model of a dataset (``run_id``, ``title``, ``pinned_at``, ``by``), or ``None``."""
    try:
        pin = json.loads((registry.root / PIN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return pin if isinstance(pin, dict) and isinstance(pin.get("run_id"), str) else None


def pin_model(registry: Registry, run_id: str, by: str | None = None) -> dict:
    """Pin a classifier run as the dataset's scoring model (written atomically beside its runs)."""
    run = registry.find(run_id)
    if run.task != CLASSIFICATION or run.metadata is None:
        raise ArtifactError(run.path, "only a readable classifier run can be the scoring model")
    pin = {
        "run_id": run.run_id,
        "model": run.model,
        "title": run.metadata.get("title", run.model),
        "window": run.metadata.get("window"),
        "pinned_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "by": by,
    }
    registry.root.mkdir(parents=True, exist_ok=True)
    tmp = registry.root / f".{PIN_FILE}.{uuid.uuid4().hex[:8]}"
    tmp.write_text(json.dumps(pin), encoding="utf-8")
    os.replace(tmp, registry.root / PIN_FILE)
    return pin


@dataclass(frozen=True)
class ScoringChoice:
    """Which classifier scores a dataset, and why: pinned, or the champion when nothing usable is pinned."""

    run: RunInfo
    pinned: bool
    champion: RunInfo
    note: str | None = None  # e.g. the pinned run is gone

    @property
    def newer_champion(self) -> bool:
        return self.pinned and self.champion.run_id != self.run.run_id


def scoring_choice(registry: Registry) -> ScoringChoice:
    """The pinned classifier if it is still readable, else the champion (``NoModelError`` when none)."""
    champion = registry.champion(CLASSIFICATION)
    pin = read_pin(registry)
    if pin is None:
        return ScoringChoice(champion, False, champion)
    try:
        run = registry.find(pin["run_id"])
    except ArtifactError:
        run = None
    if run is None or run.metadata is None:
        note = f"the pinned model {pin.get('title', '')} (run {pin['run_id']}) is gone; the champion scores instead"
        return ScoringChoice(champion, False, champion, note)
    return ScoringChoice(run, True, champion)


def load_scoring_models(registry: Registry, classifier_run: str | None = None) -> ScoringModels:
    """The pinned classifier (else the champion, or a chosen run), a regressor of its window, and K-Means."""
    info = registry.find(classifier_run) if classifier_run else scoring_choice(registry).run
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


@reusing_freed_memory
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


def expected_revenue_range(scores: pd.DataFrame, interval: Mapping[str, float] | None) -> tuple[float, float] | None:
    """Total expected revenue as a range: each scored basket +/- the held-out residual quantiles (never below 0)."""
    if not interval:
        return None
    scored = scores[scores["status"] == STATUS_SCORED]
    p = scored["p_convert"].to_numpy(dtype=float)
    basket = scored["predicted_basket_value"].to_numpy(dtype=float)
    if not len(p) or np.isnan(basket).all():
        return None
    low = np.nansum(p * np.clip(basket + float(interval["low"]), 0, None))
    high = np.nansum(p * np.clip(basket + float(interval["high"]), 0, None))
    return float(low), float(high)


RULE_CAPACITY = "capacity"
RULE_THRESHOLD = "threshold"
TARGET_COLUMNS = ("rank", "session_id", "p_convert", "decile", "segment")


def target_list(scores: pd.DataFrame, rule: str, share: float = 0.1, threshold: float = 0.5) -> pd.DataFrame:
    """The sessions to contact, best first: rank, session, P, decile (1 = the top 10% of scored sessions), segment.

    ``rule`` is ``capacity`` (the top ``share`` of scored sessions) or
    ``threshold`` (P at or above ``threshold``).
    """
    scored = scores[scores["status"] == STATUS_SCORED].sort_values("p_convert", ascending=False, kind="stable")
    p = scored["p_convert"].to_numpy(dtype=float)
    n = len(scored)
    rank = np.arange(1, n + 1)
    out = pd.DataFrame(
        {
            "rank": rank,
            "session_id": scored["session_id"].to_numpy(),
            "p_convert": p,
            "decile": np.minimum(10, (rank - 1) * 10 // max(n, 1) + 1),
            "segment": scored["segment"].to_numpy() if "segment" in scored else pd.NA,
        }
    )
    keep = top_share_mask(p, share) if rule == RULE_CAPACITY else p >= threshold
    return out[keep].reset_index(drop=True)[list(TARGET_COLUMNS)]


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
