"""The fitted product recommender of a dataset: fitted once, evaluated once, saved in its registry.

A dataset's recommender is one run under ``<dataset>/recommendation/
product_recommender/<run-id>/`` of its registry, written atomically like the
models: the ``ProductRecommender`` fitted on every event (joblib) and a
``metadata.json`` holding its parameters, the data hash it was fitted on, and
the evaluation on a later period (``ml.models.recommend_evaluation``: its
own fit on the sessions before the cut, hit rate@k, MRR@k and coverage per
method against popularity, the number of cases, the cut date). The Products
tab, ``python -m ml recommend`` and batch scoring all read that run, so the
evaluation is computed once per dataset and data version, not per request.
A saved run whose data hash differs from the data in use is stale and is
refitted on demand.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata

import pandas as pd

from ml.errors import ArtifactError
from ml.models.recommend import (
    BLEND,
    CO_OCCURRENCE,
    NEXT_VIEW,
    POPULARITY,
    ProductRecommender,
    with_product_attributes,
)
from ml.models.recommend_evaluation import RecommendEvaluation, evaluate
from ml.serving.registry import Registry
from ml.tasks import RECOMMENDATION

log = logging.getLogger(__name__)

RECOMMENDER_MODEL = "product_recommender"
EVALUATION_K = 10
LIBRARIES = ("numpy", "pandas", "scipy", "scikit-learn")


@dataclass(frozen=True)
class SavedRecommender:
    """A dataset's recommender and its evaluation, as saved (or just fitted and saved)."""

    model: ProductRecommender
    evaluation: pd.DataFrame  # one row per method: hit_rate, mrr, coverage, fallback_share, cases, lift
    n_cases: int
    cut_date: str
    train_sessions: int
    test_sessions: int
    k: int
    case_rule: str
    data_hash: str
    run_id: str
    fit_seconds: float
    evaluate_seconds: float
    problem: str = ""  # why there is no evaluation (the data cannot be split in time), if so

    @property
    def best(self) -> pd.Series:
        """The evaluated method with the highest hit rate (popularity included)."""
        return self.evaluation.loc[self.evaluation["hit_rate"].idxmax()]


def _versions() -> dict[str, str]:
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            out[name] = "unknown"
    return out


def _evaluation_record(result: RecommendEvaluation) -> dict[str, object]:
    return {
        "table": result.table.to_dict(orient="records"),
        "n_cases": result.n_cases,
        "cut_date": str(result.cut_date.date()),
        "train_sessions": result.train_sessions,
        "test_sessions": result.test_sessions,
        "k": result.k,
        "case_rule": result.case_rule,
    }


def _from_metadata(model: ProductRecommender, meta: dict, run_id: str) -> SavedRecommender:
    evaluation = meta.get("evaluation") or {}
    return SavedRecommender(
        model=model,
        evaluation=pd.DataFrame(evaluation.get("table") or []),
        n_cases=int(evaluation.get("n_cases") or 0),
        cut_date=str(evaluation.get("cut_date") or ""),
        train_sessions=int(evaluation.get("train_sessions") or 0),
        test_sessions=int(evaluation.get("test_sessions") or 0),
        k=int(evaluation.get("k") or EVALUATION_K),
        case_rule=str(evaluation.get("case_rule") or ""),
        data_hash=str((meta.get("dataset") or {}).get("hash") or ""),
        run_id=run_id,
        fit_seconds=float(meta.get("fit_seconds") or 0.0),
        evaluate_seconds=float(meta.get("evaluate_seconds") or 0.0),
        problem=str(evaluation.get("problem") or ""),
    )


def fit_and_save(
    registry: Registry,
    events: pd.DataFrame,
    *,
    data_hash: str,
    source: str = "",
    cut_date: object | None = None,
    k: int = EVALUATION_K,
    recommender: ProductRecommender | None = None,
) -> SavedRecommender:
    """Evaluate on a later period, fit on every event, and save both as one recommender run."""
    template = recommender or ProductRecommender()
    start = time.perf_counter()
    try:
        result = evaluate(events, cut_date=cut_date, k=k, recommender=ProductRecommender(**template.get_params()))
        evaluation = _evaluation_record(result)
    except ValueError as exc:  # e.g. one day of data: nothing to hold out; the lists still work
        log.warning("the recommender cannot be evaluated on this data: %s", exc)
        evaluation = {"problem": str(exc), "k": k}
    evaluate_seconds = time.perf_counter() - start
    start = time.perf_counter()
    model = ProductRecommender(**template.get_params()).fit(events)
    fit_seconds = time.perf_counter() - start
    meta = {
        "task": RECOMMENDATION,
        "model": RECOMMENDER_MODEL,
        "params": model.get_params(),
        "dataset": {"hash": data_hash, "source": source},
        "products": len(model.products_),
        "sessions": int(model.n_sessions_),
        "evaluation": evaluation,
        "fit_seconds": round(fit_seconds, 4),
        "evaluate_seconds": round(evaluate_seconds, 4),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": _versions(),
    }
    try:
        with registry.staging() as staging:
            run_id = staging.save(RECOMMENDATION, RECOMMENDER_MODEL, model, meta)
    except OSError as exc:  # a read-only store, or a training job cleaning staging: serve it unsaved
        log.warning("the fitted recommender could not be saved in %s: %s", registry.root, exc)
        run_id = "unsaved"
    log.info(
        "fitted the recommender on %s products in %.2f s, evaluated on %s cases in %.2f s (run %s)",
        f"{len(model.products_):,}",
        fit_seconds,
        f"{evaluation.get('n_cases', 0):,}",
        evaluate_seconds,
        run_id,
    )
    return _from_metadata(model, {**meta, "run_id": run_id}, run_id)


def load_saved(registry: Registry, data_hash: str | None = None) -> SavedRecommender | None:
    """The newest saved recommender (None if there is none, or it was fitted on other data than ``data_hash``).

    A broken run is logged and treated as missing, so it is refitted rather than crashing a page.
    """
    run = next((r for r in registry.runs(RECOMMENDATION, RECOMMENDER_MODEL) if r.metadata is not None), None)
    if run is None:
        return None
    saved_hash = str((run.metadata.get("dataset") or {}).get("hash") or "")
    if data_hash is not None and saved_hash != data_hash:
        log.info("the saved recommender %s was fitted on other data; it will be refitted", run.run_id)
        return None
    try:
        loaded = registry.load(run)
    except ArtifactError as exc:
        log.warning("the saved recommender cannot be used: %s", exc)
        return None
    if not isinstance(loaded.pipeline, ProductRecommender):
        log.warning("%s does not hold a ProductRecommender; it will be refitted", run.path)
        return None
    return _from_metadata(loaded.pipeline, run.metadata, run.run_id)


def recommender_for(
    registry: Registry, events: pd.DataFrame, *, data_hash: str, source: str = "", refit: bool = False
) -> SavedRecommender:
    """The dataset's saved recommender for this data, fitted, evaluated and saved first if there is none."""
    saved = None if refit else load_saved(registry, data_hash)
    return saved or fit_and_save(registry, events, data_hash=data_hash, source=source)


# ---------------------------------------------------------------- lists and tables for people
LIST_METHODS = {NEXT_VIEW: "Viewed next", CO_OCCURRENCE: "Also viewed in the same session"}
METHOD_TITLES = {
    POPULARITY: "Popularity (baseline)",
    CO_OCCURRENCE: "Also viewed (co-occurrence, cosine)",
    NEXT_VIEW: "Viewed next (next-view counts)",
    BLEND: "Blend of both",
}


def labelled_products(table: pd.DataFrame, codebooks: Mapping[str, Mapping[int, str]]) -> pd.DataFrame:
    """``product_table`` with its coded columns (category, dimensions) shown as their labels."""
    out = table.copy()
    for column, book in codebooks.items():
        if column in out and not pd.api.types.is_float_dtype(out[column]):
            codes = out[column].to_numpy()
            out[column] = [book.get(int(c), "(none)" if int(c) < 0 else f"{column} {int(c)}") for c in codes]
    return out


def recommendation_lists(
    model: ProductRecommender, products: pd.DataFrame, product_id: object, n: int = 10
) -> dict[str, pd.DataFrame]:
    """The "viewed next" and "also viewed" lists for one product, each row with the suggestion's attributes.

    ``products`` is a (labelled) ``product_table``; every column of it but the
    rates is joined beside each suggestion. Slots the method could not fill
    from history say ``popularity_fallback`` in ``method``.
    """
    attributes = [c for c in products.columns if not c.endswith("_rate") and c != "session_share"]
    return {
        method: with_product_attributes(model.recommend(product_id, n=n, method=method), products, attributes)
        for method in LIST_METHODS
    }


def format_recommendations(
    model: ProductRecommender, products: pd.DataFrame, product_ids: list[str], n: int = 10
) -> str:
    """The CLI's text: per product asked for, its attributes and both lists with score and support."""
    blocks = []
    for product_id in product_ids:
        known = str(product_id) in products.index
        head = f"product {product_id}"
        if known:
            row = products.loc[str(product_id)]
            head += f": {int(row['views']):,} views in {int(row['sessions']):,} sessions"
        else:
            head += ": not in the data; popularity only"
        blocks.append(head)
        for method, frame in recommendation_lists(model, products, product_id, n).items():
            shown = frame.assign(score=frame["score"].round(4), support=frame["support"].astype(int))
            shown.insert(0, "rank", range(1, len(shown) + 1))
            blocks.append(f"\n{LIST_METHODS[method]} ({method}; score and support in sessions):")
            blocks.append(shown.to_string(index=False))
        blocks.append("")
    return "\n".join(blocks)


def format_evaluation(table: pd.DataFrame, n_cases: int, cut_date: str, k: int, problem: str = "") -> str:
    """The CLI's evaluation table: hit rate@k, MRR@k, coverage and lift per method, with the split."""
    if table.empty:
        return f"No evaluation: {problem or 'none was saved with this recommender'}"
    shown = pd.DataFrame(
        {
            "method": table["method"],
            f"hit_rate@{k}": table["hit_rate"].round(3),
            f"mrr@{k}": table["mrr"].round(3),
            "coverage": table["coverage"].round(3),
            "fallback_share": table["fallback_share"].round(3),
            "vs_popularity": table["lift_vs_popularity"].round(2),
        }
    )
    head = (
        f"Next-product evaluation: trained on sessions before {cut_date}, tested on {n_cases:,} cases "
        f"from {cut_date} on (one per test session with 2+ products)"
    )
    return f"{head}\n{shown.to_string(index=False)}"
