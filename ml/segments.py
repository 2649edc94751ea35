"""Behavioural segments of whole sessions: K-Means and DBSCAN, profiles and persona names.

The clustering input is ``SEGMENT_FEATURES`` (no label columns), counts on a
log scale and everything standardised. K-Means picks ``k`` by silhouette over a
range; DBSCAN marks noise as its own group (-1). Silhouette is computed on a
fixed-seed sample so it stays cheap on millions of sessions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.cluster import DBSCAN, KMeans, MiniBatchKMeans
from sklearn.decomposition import PCA
from sklearn.metrics import davies_bouldin_score, silhouette_score
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from ml import schema as S
from ml.config import DBSCAN_MAX_ROWS, KMEANS_K_RANGE, SILHOUETTE_SAMPLE
from ml.features import SEGMENT_FEATURES, TARGET_BASKET, TARGET_CONVERTED

NOISE = -1
COUNT_FEATURES = ("n_clicks", "n_products", "n_categories", "n_colours")
MINIBATCH_ABOVE = 200_000  # sessions; above this K-Means runs mini-batch


def _log_counts(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for col in COUNT_FEATURES:
        if col in out:
            out[col] = np.log1p(out[col].astype(float))
    return out


def scaler_pipeline() -> Pipeline:
    """Log-scale the counts, then standardise every segment feature."""
    return Pipeline(
        [
            ("log_counts", FunctionTransformer(_log_counts, feature_names_out="one-to-one")),
            ("scale", StandardScaler()),
        ]
    )


def kmeans_pipeline(k: int, seed: int, n_rows: int = 0) -> Pipeline:
    """Scaling plus K-Means (mini-batch for very large inputs) as one predictable pipeline."""
    if n_rows > MINIBATCH_ABOVE:
        model = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=4096)
    else:
        model = KMeans(n_clusters=k, random_state=seed, n_init=4)
    return Pipeline([*scaler_pipeline().steps, ("cluster", model)])


def _sample(n: int, size: int, seed: int) -> np.ndarray:
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def cluster_quality(scaled: np.ndarray, labels: np.ndarray, seed: int) -> dict[str, float]:
    """Silhouette (on a sample) and Davies-Bouldin, ignoring DBSCAN noise."""
    mask = labels != NOISE
    groups = np.unique(labels[mask])
    if len(groups) < 2:
        return {"silhouette": float("nan"), "davies_bouldin": float("nan")}
    idx = np.flatnonzero(mask)
    idx = idx[_sample(len(idx), SILHOUETTE_SAMPLE, seed)]
    return {
        "silhouette": float(silhouette_score(scaled[idx], labels[idx], random_state=seed)),
        "davies_bouldin": float(davies_bouldin_score(scaled[idx], labels[idx])),
    }


@dataclass(frozen=True)
class SegmentResult:
    """Labels for every session plus quality metrics and what the run did."""

    method: str
    labels: np.ndarray
    metrics: dict[str, float]
    params: dict[str, object]
    note: str
    pipeline: Pipeline | None = None


def fit_kmeans(sessions: pd.DataFrame, k: int, seed: int) -> SegmentResult:
    features = sessions[list(SEGMENT_FEATURES)]
    pipeline = kmeans_pipeline(k, seed, len(features))
    labels = pipeline.fit_predict(features)
    scaled = pipeline[:-1].transform(features)
    metrics = cluster_quality(scaled, labels, seed)
    metrics["inertia"] = float(pipeline[-1].inertia_)
    note = "mini-batch K-Means" if len(features) > MINIBATCH_ABOVE else "K-Means"
    note += f"; silhouette and Davies-Bouldin on a sample of {min(len(features), SILHOUETTE_SAMPLE):,} sessions"
    return SegmentResult("kmeans", labels, metrics, {"k": k}, note, pipeline)


def silhouette_by_k(sessions: pd.DataFrame, seed: int, k_range: tuple[int, int] = KMEANS_K_RANGE) -> dict[int, float]:
    """Silhouette of K-Means for each k in the range, fitted on a sample."""
    features = sessions[list(SEGMENT_FEATURES)]
    sample = features.iloc[_sample(len(features), SILHOUETTE_SAMPLE, seed)]
    scaled = scaler_pipeline().fit_transform(sample)
    scores = {}
    for k in range(k_range[0], min(k_range[1], len(sample) - 1) + 1):
        labels = KMeans(n_clusters=k, random_state=seed, n_init=4).fit_predict(scaled)
        scores[k] = float(silhouette_score(scaled, labels, random_state=seed))
    return scores


def best_k(scores: dict[int, float]) -> int:
    return max(scores, key=lambda k: scores[k])


def default_eps(scaled: np.ndarray, min_samples: int, seed: int) -> float:
    """A k-distance heuristic: the median distance to the min_samples-th neighbour."""
    sample = scaled[_sample(len(scaled), 5000, seed)]
    distances, _ = NearestNeighbors(n_neighbors=min_samples).fit(sample).kneighbors(sample)
    return float(np.round(np.quantile(distances[:, -1], 0.5), 2))


def fit_dbscan(sessions: pd.DataFrame, eps: float | None, min_samples: int, seed: int) -> SegmentResult:
    """DBSCAN on at most ``DBSCAN_MAX_ROWS`` sessions; the rest join their nearest core's group."""
    features = sessions[list(SEGMENT_FEATURES)]
    scaler = scaler_pipeline()
    scaled = scaler.fit_transform(features)
    eps = eps if eps is not None else default_eps(scaled, min_samples, seed)
    fit_idx = _sample(len(scaled), DBSCAN_MAX_ROWS, seed)
    model = DBSCAN(eps=eps, min_samples=min_samples).fit(scaled[fit_idx])
    labels = np.full(len(scaled), NOISE, dtype=np.int64)
    labels[fit_idx] = model.labels_
    note = "DBSCAN"
    if len(fit_idx) < len(scaled):
        rest = np.setdiff1d(np.arange(len(scaled)), fit_idx)
        cores = model.components_
        core_labels = model.labels_[model.core_sample_indices_]
        if len(cores):
            dist, nearest = NearestNeighbors(n_neighbors=1).fit(cores).kneighbors(scaled[rest])
            labels[rest] = np.where(dist[:, 0] <= eps, core_labels[nearest[:, 0]], NOISE)
        note += (
            f" fitted on a sample of {len(fit_idx):,} sessions; the others take the group of the "
            "nearest core point within eps, or noise"
        )
    metrics = cluster_quality(scaled, labels, seed)
    metrics["n_clusters"] = float(len(np.unique(labels[labels != NOISE])))
    metrics["noise_share"] = float((labels == NOISE).mean())
    pipeline = Pipeline([*scaler.steps, ("cluster", model)])  # fitted parts, kept for the record
    return SegmentResult("dbscan", labels, metrics, {"eps": eps, "min_samples": min_samples}, note, pipeline)


def projection(sessions: pd.DataFrame, seed: int) -> np.ndarray:
    """2-D PCA projection of the scaled segment features, for a scatter plot."""
    scaled = scaler_pipeline().fit_transform(sessions[list(SEGMENT_FEATURES)])
    return PCA(n_components=2, random_state=seed).fit_transform(scaled)


# ---------------------------------------------------------------- profiles and personas
PROFILE_COLUMNS = (
    "n_clicks",
    "n_products",
    "n_categories",
    "price_mean",
    "premium_share",
    "sale_share",
    "profile_share",
    "max_page",
)


def _top_codes(values: pd.Series, labels: np.ndarray, column: str, n: int = 3) -> dict[int, list[str]]:
    counts = pd.crosstab(labels, values)
    out = {}
    for seg, row in counts.iterrows():
        top = row[row > 0].sort_values(ascending=False).head(n)
        total = row.sum()
        out[int(seg)] = [f"{S.decode(column, int(code))} ({count / total:.0%})" for code, count in top.items()]
    return out


def profile_records(profile: pd.DataFrame) -> list[dict[str, object]]:
    """Segment profiles as JSON-friendly records (saved with the K-Means model)."""
    keep = ["sessions", "share", "conversion_rate", "basket_value", "revenue_per_session", "persona", "traits"]
    records = profile[keep].reset_index().to_dict(orient="records")
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in records]


def segment_profiles(sessions: pd.DataFrame, labels: np.ndarray) -> pd.DataFrame:
    """One row per segment: size, share, conversion (proxy), basket, revenue, tops, persona."""
    frame = sessions.assign(segment=labels)
    grouped = frame.groupby("segment", sort=True)
    profile = grouped[list(PROFILE_COLUMNS)].mean()
    profile["sessions"] = grouped.size()
    profile["share"] = profile["sessions"] / len(frame)
    profile["conversion_rate"] = grouped[TARGET_CONVERTED].mean()
    converted_basket = frame[TARGET_BASKET].where(frame[TARGET_CONVERTED].astype(bool))
    profile["basket_value"] = converted_basket.groupby(frame["segment"]).mean().fillna(0.0)
    profile["revenue_per_session"] = grouped[TARGET_BASKET].mean()
    profile["top_categories"] = pd.Series(_top_codes(frame["main_category"], labels, S.CATEGORY))
    profile["top_countries"] = pd.Series(_top_codes(frame["country"], labels, S.COUNTRY))
    overall = sessions[list(PROFILE_COLUMNS)]
    personas = {seg: persona(row, overall) for seg, row in profile.iterrows()}
    profile["persona"] = pd.Series(_unique_names(personas))
    profile["traits"] = pd.Series({seg: p[1] for seg, p in personas.items()})
    return profile


def _unique_names(personas: dict[int, tuple[str, str]]) -> dict[int, str]:
    """Persona names, with the first trait (then the segment number) added where names repeat."""
    names = {seg: name for seg, (name, _) in personas.items()}
    counts = pd.Series(names).value_counts()
    for seg, (name, traits) in personas.items():
        if seg == NOISE:
            names[seg] = "noise (no dense group)"
        elif counts[name] > 1:
            names[seg] = f"{name}: {traits.split(', ')[0]}"
    counts = pd.Series(names).value_counts()
    return {seg: (f"{n} ({seg})" if counts[n] > 1 else n) for seg, n in names.items()}


# Each trait: (column, direction, phrase). A segment is named by its strongest traits.
TRAITS: Sequence[tuple[str, int, str, str]] = (
    ("sale_share", +1, "bargain hunters", "sale-heavy"),
    ("price_mean", -1, "bargain hunters", "low prices"),
    ("premium_share", +1, "premium browsers", "above-average prices"),
    ("price_mean", +1, "premium browsers", "high prices"),
    ("n_clicks", +1, "explorers", "long visits"),
    ("n_products", +1, "explorers", "many products"),
    ("n_clicks", -1, "quick visitors", "short visits"),
    ("n_categories", +1, "cross-category shoppers", "several categories"),
    ("max_page", +1, "deep divers", "deep catalogue pages"),
    ("profile_share", +1, "detail checkers", "profile photos"),
)


def persona(row: pd.Series, overall: pd.DataFrame) -> tuple[str, str]:
    """A plain-language name and traits from how a segment differs from all sessions."""
    scores = []
    for column, direction, name, phrase in TRAITS:
        std = overall[column].std()
        z = (row[column] - overall[column].mean()) / std if std > 0 else 0.0
        scores.append((direction * z, name, phrase))
    scores.sort(reverse=True)
    strongest = [s for s in scores if s[0] > 0.25]
    if not strongest:
        return "typical browsers", "close to the average session"
    name = strongest[0][1]
    phrases = [s[2] for s in strongest if s[1] == name][:2] + [s[2] for s in strongest if s[1] != name][:1]
    return name, ", ".join(dict.fromkeys(phrases))
