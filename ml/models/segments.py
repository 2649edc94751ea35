"""Behavioural segments of whole sessions: K-Means and DBSCAN, profiles, personas, cached runs.

The clustering input is ``segment_feature_names(sessions)`` (``SEGMENT_FEATURES``
on the UCI file; counts, carts, prices and durations on other event logs; no
label columns), counts on a
log scale and everything standardised. K-Means picks ``k`` by silhouette over a
range; DBSCAN marks noise as its own group (-1). Silhouette is computed on a
fixed-seed sample so it stays cheap on millions of sessions.

For interactive use, ``segment_base`` scales the sessions, fits the 2-D PCA
projection and scores k by silhouette once per data set, and ``segment_run``
returns everything one setting needs (labels, metrics, profiles, a display
sample, the typical early-window session per segment), kept in a small
thread-safe LRU on the ``PreparedData``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree
from sklearn.cluster import DBSCAN, KMeans, MiniBatchKMeans
from sklearn.decomposition import PCA
from sklearn.metrics import davies_bouldin_score, silhouette_score
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from ml.config import DBSCAN_MAX_ROWS, KMEANS_K_RANGE, SILHOUETTE_SAMPLE
from ml.data import schema as S
from ml.features.kpis import codebook_of
from ml.features.labels import TARGET_BASKET, TARGET_CONVERTED
from ml.features.sessions import segment_feature_names

NOISE = -1
NOISE_NAME = "noise (no dense group)"
COUNT_FEATURES = ("n_clicks", "n_products", "n_categories", "n_colours", "n_carts", "duration_s")
MINIBATCH_ABOVE = 200_000  # sessions; above this K-Means runs mini-batch
DEFAULT_MIN_SAMPLES = 20


def _log_counts(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for col in COUNT_FEATURES:
        if col in out:
            out[col] = np.log1p(out[col].astype(float))
    return out


def segment_inputs(sessions: pd.DataFrame) -> pd.DataFrame:
    """The columns of a session table that segmentation clusters on."""
    return sessions[list(segment_feature_names(sessions))]


def scaler_pipeline() -> Pipeline:
    """Log-scale the counts, then standardise every segment feature."""
    return Pipeline(
        [
            ("log_counts", FunctionTransformer(_log_counts, feature_names_out="one-to-one")),
            ("scale", StandardScaler()),
        ]
    )


def kmeans_model(k: int, seed: int, n_rows: int = 0) -> KMeans | MiniBatchKMeans:
    """K-Means, or mini-batch K-Means above ``MINIBATCH_ABOVE`` rows."""
    if n_rows > MINIBATCH_ABOVE:
        return MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=4096)
    return KMeans(n_clusters=k, random_state=seed, n_init=4)


def kmeans_pipeline(k: int, seed: int, n_rows: int = 0) -> Pipeline:
    """Scaling plus K-Means (mini-batch for very large inputs) as one predictable pipeline."""
    return Pipeline([*scaler_pipeline().steps, ("cluster", kmeans_model(k, seed, n_rows))])


def sample_rows(n: int, size: int, seed: int) -> np.ndarray:
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
    idx = idx[sample_rows(len(idx), SILHOUETTE_SAMPLE, seed)]
    if len(np.unique(labels[idx])) < 2:
        return {"silhouette": float("nan"), "davies_bouldin": float("nan")}
    return {
        "silhouette": float(silhouette_score(scaled[idx], labels[idx], random_state=seed)),
        "davies_bouldin": float(davies_bouldin_score(scaled[idx], labels[idx])),
    }


def within_group_ss(scaled: np.ndarray, labels: np.ndarray) -> float:
    """Sum of squared distances to each group's mean (K-Means inertia; DBSCAN noise left out)."""
    mask = labels != NOISE
    if not mask.any():
        return float("nan")
    groups, points = labels[mask], scaled[mask]  # group numbers are small non-negative ints
    sizes = np.maximum(np.bincount(groups), 1)
    means = np.column_stack([np.bincount(groups, weights=col, minlength=len(sizes)) for col in points.T])
    return float(((points - means[groups] / sizes[groups, None]) ** 2).sum())


@dataclass(frozen=True)
class SegmentResult:
    """Labels for every session plus quality metrics and what the run did."""

    method: str
    labels: np.ndarray
    metrics: dict[str, float]
    params: dict[str, object]
    note: str
    pipeline: Pipeline | None = None


def kmeans_on_scaled(scaled: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, KMeans, dict[str, float], str]:
    """K-Means on every row; above ``MINIBATCH_ABOVE`` rows, mini-batch K-Means fitted on a sample of that size.

    scikit-learn's mini-batch sampling costs O(rows) per step, so the fit sees a
    fixed-seed sample; every row then takes its nearest centre.
    """
    fit_idx = sample_rows(len(scaled), MINIBATCH_ABOVE, seed)
    model = kmeans_model(k, seed, len(scaled)).fit(scaled[fit_idx])
    sampled = len(fit_idx) < len(scaled)
    labels = model.predict(scaled) if sampled else model.labels_
    inertia = -model.score(scaled) if sampled else model.inertia_
    metrics = {**cluster_quality(scaled, labels, seed), "inertia": float(inertia)}
    if sampled:
        note = (
            f"mini-batch K-Means fitted on a sample of {len(fit_idx):,} sessions, every session on its nearest centre"
        )
    else:
        note = "K-Means"
    note += f"; silhouette and Davies-Bouldin on a sample of {min(len(scaled), SILHOUETTE_SAMPLE):,} sessions"
    return labels, model, metrics, note


def fit_kmeans(sessions: pd.DataFrame, k: int, seed: int) -> SegmentResult:
    scaler = scaler_pipeline()
    scaled = scaler.fit_transform(segment_inputs(sessions))
    labels, model, metrics, note = kmeans_on_scaled(scaled, k, seed)
    pipeline = Pipeline([*scaler.steps, ("cluster", model)])
    return SegmentResult("kmeans", labels, metrics, {"k": k}, note, pipeline)


def silhouette_by_k(sessions: pd.DataFrame, seed: int, k_range: tuple[int, int] = KMEANS_K_RANGE) -> dict[int, float]:
    """Silhouette of K-Means for each k in the range, fitted on a sample."""
    features = segment_inputs(sessions)
    sample = features.iloc[sample_rows(len(features), SILHOUETTE_SAMPLE, seed)]
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
    sample = scaled[sample_rows(len(scaled), 5000, seed)]
    distances, _ = NearestNeighbors(n_neighbors=min_samples).fit(sample).kneighbors(sample)
    return float(np.round(np.quantile(distances[:, -1], 0.5), 2))


def _distinct_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position of the first of each distinct row, and each row's distinct-row number (by row hash)."""
    codes, _ = pd.factorize(pd.util.hash_pandas_object(pd.DataFrame(rows), index=False))
    first = np.flatnonzero(np.diff(np.maximum.accumulate(codes), prepend=-1))  # codes number rows as they appear
    if not (rows[first][codes] == rows).all():  # a 64-bit hash collision: keep every row
        return np.arange(len(rows)), np.arange(len(rows))
    return first, codes


def dbscan_on_scaled(
    scaled: np.ndarray, eps: float, min_samples: int, seed: int
) -> tuple[np.ndarray, DBSCAN, dict[str, float], str]:
    """DBSCAN on at most ``DBSCAN_MAX_ROWS`` rows; the rest join their nearest core's group within eps.

    Identical rows (many short sessions) are fitted once with their count as
    ``sample_weight`` (the same groups, far shorter neighbour lists), and looked
    up once when the rest join a group.
    """
    fit_idx = sample_rows(len(scaled), DBSCAN_MAX_ROWS, seed)
    first, codes = _distinct_rows(scaled[fit_idx])
    model = DBSCAN(eps=eps, min_samples=min_samples).fit(scaled[fit_idx][first], sample_weight=np.bincount(codes))
    labels = np.full(len(scaled), NOISE, dtype=np.int64)
    labels[fit_idx] = model.labels_[codes]
    note = f"DBSCAN (eps {eps:g}, min_samples {min_samples})"
    if len(fit_idx) < len(scaled):
        rest = np.ones(len(scaled), dtype=bool)
        rest[fit_idx] = False
        rest_rows = scaled[rest]
        first, codes = _distinct_rows(rest_rows)
        core_labels = model.labels_[model.core_sample_indices_]
        if len(core_labels):
            bound = np.nextafter(eps, np.inf)  # within eps, inclusive
            dist, nearest = cKDTree(model.components_).query(rest_rows[first], distance_upper_bound=bound, workers=-1)
            found = np.isfinite(dist)
            labels[rest] = np.where(found, core_labels[np.where(found, nearest, 0)], NOISE)[codes]
        note += (
            f" fitted on a sample of {len(fit_idx):,} sessions; the others take the group of the "
            "nearest core point within eps, or noise"
        )
    metrics = cluster_quality(scaled, labels, seed)
    metrics["inertia"] = within_group_ss(scaled, labels)
    metrics["n_clusters"] = float(np.count_nonzero(np.bincount(labels[labels != NOISE])))
    metrics["noise_share"] = float((labels == NOISE).mean())
    return labels, model, metrics, note


def fit_dbscan(sessions: pd.DataFrame, eps: float | None, min_samples: int, seed: int) -> SegmentResult:
    """DBSCAN on at most ``DBSCAN_MAX_ROWS`` sessions; the rest join their nearest core's group."""
    scaler = scaler_pipeline()
    scaled = scaler.fit_transform(segment_inputs(sessions))
    eps = eps if eps is not None else default_eps(scaled, min_samples, seed)
    labels, model, metrics, note = dbscan_on_scaled(scaled, eps, min_samples, seed)
    pipeline = Pipeline([*scaler.steps, ("cluster", model)])  # fitted parts, kept for the record
    return SegmentResult("dbscan", labels, metrics, {"eps": eps, "min_samples": min_samples}, note, pipeline)


def projection(sessions: pd.DataFrame, seed: int) -> np.ndarray:
    """2-D PCA projection of the scaled segment features, for a scatter plot."""
    scaled = scaler_pipeline().fit_transform(segment_inputs(sessions))
    return PCA(n_components=2, random_state=seed).fit_transform(scaled)


# ---------------------------------------------------------------- profiles and personas
# Each trait: (column, direction, persona name, phrase). A segment is named by its strongest
# named trait; traits without a name only describe.
TRAITS: Sequence[tuple[str, int, str, str]] = (
    ("sale_share", +1, "bargain hunters", "sale-heavy"),
    ("price_mean", -1, "budget browsers", "low prices"),
    ("premium_share", -1, "budget browsers", "cheaper picks"),
    ("price_mean", +1, "premium browsers", "high prices"),
    ("premium_share", +1, "premium browsers", "pricier picks"),
    ("n_clicks", +1, "explorers", "long visits"),
    ("n_products", +1, "explorers", "many products"),
    ("n_colours", +1, "explorers", "many colours"),
    ("n_clicks", -1, "quick visitors", "short visits"),
    ("n_products", -1, "quick visitors", "few products"),
    ("n_categories", +1, "cross-category shoppers", "several categories"),
    ("max_page", +1, "deep divers", "deep catalogue pages"),
    ("profile_share", +1, "detail checkers", "profile photos"),
    ("trousers_share", +1, "trouser shoppers", "mostly trousers"),
    ("skirts_share", +1, "skirt shoppers", "mostly skirts"),
    ("blouses_share", +1, "blouse shoppers", "mostly blouses"),
    ("top_row_share", +1, "", "top-row photos"),
    ("top_row_share", -1, "", "lower-row photos"),
    ("n_carts", +1, "cart fillers", "add to cart"),
    ("duration_s", +1, "lingerers", "long time on site"),
    ("duration_s", -1, "quick visitors", "little time on site"),
)
TRAIT_THRESHOLD = 0.25  # in standard deviations of all sessions
PROFILE_COLUMNS = tuple(dict.fromkeys(column for column, *_ in TRAITS))  # segment means for the personas


def _top_codes(values: pd.Series, labels: np.ndarray, codebook: Mapping[int, str], n: int = 3) -> dict[int, list[str]]:
    counts = pd.crosstab(labels, values)
    out = {}
    for seg, row in counts.iterrows():
        top = row[row > 0].sort_values(ascending=False).head(n)
        total = row.sum()
        out[int(seg)] = [
            f"{codebook.get(int(code), f'code {code}')} ({count / total:.0%})" for code, count in top.items()
        ]
    return out


def profile_dimension(sessions: pd.DataFrame) -> str | None:
    """The dimension a segment's profile lists its top values of: country where the data has it, else the first."""
    mains = [c for c in sessions.columns if c.startswith("main_") and c not in ("main_category", "main_colour")]
    return next((c for c in ("country", "main_country", *mains) if c in sessions), None)


def profile_records(profile: pd.DataFrame) -> list[dict[str, object]]:
    """Segment profiles as JSON-friendly records (saved with the K-Means model)."""
    keep = ["sessions", "share", "conversion_rate", "basket_value", "revenue_per_session", "persona", "traits"]
    records = profile[keep].reset_index().to_dict(orient="records")
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in records]


def segment_profiles(
    sessions: pd.DataFrame, labels: np.ndarray, codebooks: Mapping[str, Mapping[int, str]] | None = None
) -> pd.DataFrame:
    """One row per segment: size, share, conversion, basket, revenue, top categories and values, persona.

    ``top_values`` lists the segment's top values of ``profile_dimension`` (country
    on the UCI file, the profile's first dimension elsewhere; named in
    ``attrs["dimension"]``). ``codebooks`` decodes the codes (the UCI codebook by default).
    """
    codebooks = codebooks or S.CODEBOOK
    frame = sessions.assign(segment=labels)
    grouped = frame.groupby("segment", sort=True)
    columns = [c for c in PROFILE_COLUMNS if c in frame]
    profile = grouped[columns].mean()
    profile["sessions"] = grouped.size()
    profile["share"] = profile["sessions"] / len(frame)
    profile["conversion_rate"] = grouped[TARGET_CONVERTED].mean()
    converted_basket = frame[TARGET_BASKET].where(frame[TARGET_CONVERTED].astype(bool))
    profile["basket_value"] = converted_basket.groupby(frame["segment"]).mean().fillna(0.0)
    profile["revenue_per_session"] = grouped[TARGET_BASKET].mean()
    profile["top_categories"] = pd.Series(_top_codes(frame["main_category"], labels, codebooks.get(S.CATEGORY, {})))
    dimension = profile_dimension(frame)
    if dimension is not None:
        book = codebooks.get(codebook_of(dimension), {})
        profile["top_values"] = pd.Series(_top_codes(frame[dimension], labels, book))
    else:
        profile["top_values"] = pd.Series({int(seg): [] for seg in profile.index})
    profile["top_countries"] = profile["top_values"] if dimension in ("country", "main_country") else None
    profile.attrs["dimension"] = dimension
    values = sessions[columns].to_numpy(dtype=float)
    centre = pd.Series(values.mean(axis=0), index=columns)
    spread = pd.Series(values.std(axis=0, ddof=1), index=columns)
    personas = {seg: _persona(row, centre, spread) for seg, row in profile.iterrows()}
    profile["persona"] = pd.Series(_unique_names(personas, profile, spread))
    profile["traits"] = pd.Series({seg: p[1] for seg, p in personas.items()})
    return profile


def _ranked_traits(row: pd.Series, centre: pd.Series, spread: pd.Series) -> list[tuple[float, str, str]]:
    """(strength, name, phrase) of every trait, strongest first, measured against ``centre``."""
    scores = []
    for column, direction, name, phrase in TRAITS:
        if column in row and spread[column] > 1e-9:  # constant columns say nothing
            scores.append((direction * (row[column] - centre[column]) / spread[column], name, phrase))
    return sorted(scores, key=lambda s: s[0], reverse=True)


def persona(row: pd.Series, overall: pd.DataFrame) -> tuple[str, str]:
    """A plain-language name and traits from how a segment differs from all sessions."""
    return _persona(row, overall.mean(), overall.std())


def _persona(row: pd.Series, centre: pd.Series, spread: pd.Series) -> tuple[str, str]:
    strongest = [s for s in _ranked_traits(row, centre, spread) if s[0] > TRAIT_THRESHOLD]
    named = [s for s in strongest if s[1]]
    if not named:
        return "typical browsers", ", ".join([s[2] for s in strongest][:2]) or "close to the average session"
    name = named[0][1]
    phrases = [s[2] for s in strongest if s[1] == name][:2] + [s[2] for s in strongest if s[1] != name][:1]
    return name, ", ".join(dict.fromkeys(phrases))


def _unique_names(personas: dict[int, tuple[str, str]], profile: pd.DataFrame, spread: pd.Series) -> dict[int, str]:
    """Persona names; where names repeat, each gets what sets it apart from the others of that name.

    The distinguishing phrase is the strongest trait measured against the mean of
    the segments sharing the name (largest segment first); the segment number
    is the last resort.
    """
    names = {seg: (NOISE_NAME if seg == NOISE else name) for seg, (name, _) in personas.items()}
    for name, members in pd.Series(names).groupby(pd.Series(names)).groups.items():
        if len(members) < 2 or name == NOISE_NAME:
            continue
        rows = profile.loc[list(members)].sort_values("sessions", ascending=False)
        centre = rows[spread.index].mean()
        used: set[str] = set()
        for seg, row in rows.iterrows():
            ranked = _ranked_traits(row, centre, spread)
            phrase = next((p for strength, _, p in ranked if strength > 0 and p not in used), None)
            if phrase:
                used.add(phrase)
                names[seg] = f"{name}: {phrase}"
    counts = pd.Series(names).value_counts()
    return {seg: (f"{n} ({seg})" if counts[n] > 1 else n) for seg, n in names.items()}
