"""Command line: ``python -m ml summary | train | score | evaluate | recommend | users``, for schedulers and scripts.

Every command that reads data takes any source: a file (CSV, gzip, Parquet)
or a database table or query through an SQLAlchemy URL, with its profile
detected from the header or given with ``--profile``. Bad input exits 2 with
the validation report on stderr and no traceback; an output file is either
written whole or not at all.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from ml.cli_users import add_users_parser, run_users
from ml.config import BUNDLED_DATA_FILE, BUNDLED_DATASET_KEY, get_settings
from ml.data.export import write_csv_atomic
from ml.data.loading import LoadedEvents, load_events
from ml.data.sql import is_sql_url
from ml.errors import ClickstreamError, NoModelError, ValidationError
from ml.features.labels import DEFINITIONS
from ml.features.products import product_table
from ml.features.summary import describe_events, format_summary
from ml.models.recommend_evaluation import evaluate as evaluate_recommender
from ml.serving.leaderboard import format_table, leaderboard
from ml.serving.locking import TrainingBusy, lock_for
from ml.serving.recommendations import (
    format_evaluation,
    format_recommendations,
    labelled_products,
    recommender_for,
)
from ml.serving.registry import ModelStore, dataset_key
from ml.serving.scoring import (
    IncompatibleModelsError,
    check_profile,
    code_like_training,
    fitting_datasets,
    load_scoring_models,
    no_fitting_models_message,
    score_clicks,
    score_summary,
)
from ml.serving.training import TrainConfig, dataset_description, model_catalogue, train
from ml.tasks import TASKS

log = logging.getLogger("ml")

EXIT_BAD_INPUT = 2
EXIT_ERROR = 1


def _add_source_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--table", help="database table (with an SQLAlchemy URL as the source)")
    parser.add_argument("--query", help="database query, one SELECT (with an SQLAlchemy URL as the source)")
    parser.add_argument("--profile", type=Path, help="data profile file (TOML) for an export no built-in profile fits")
    parser.add_argument(
        "--skip-invalid-rows",
        action="store_true",
        help="drop exactly the rows the validation report names, count them, and go on",
    )
    parser.add_argument(
        "--session-gap", type=float, metavar="MINUTES", help="inactivity that ends a session when sessions are cut"
    )


def _parser() -> argparse.ArgumentParser:
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m ml", description="Clickstream conversion analytics engine.")
    parser.add_argument("--models-dir", type=Path, default=settings.models_dir, help="model store folder")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("summary", help="what a source holds: profile, events, sessions, conversion, problems")
    p.add_argument("input", help="file (CSV, gzip, Parquet) or SQLAlchemy URL")
    _add_source_options(p)

    names = ", ".join(dict.fromkeys(name for _, name, _ in model_catalogue()))
    p = sub.add_parser("train", help="train models and print the leaderboard")
    p.add_argument("--data", default=str(settings.data_file), help="file or SQLAlchemy URL (default: bundled data)")
    p.add_argument("--dataset", help="dataset key the models belong to (default: from the source's name)")
    p.add_argument("--window", type=int, default=settings.window, help="observation window k in events")
    p.add_argument("--models", default="", help=f"comma-separated names ({names}); task:name for one task")
    p.add_argument("--quick", action="store_true", help="one setting per model instead of the grid")
    p.add_argument(
        "--label",
        choices=sorted(DEFINITIONS),
        help="label definition (default: a label column, else purchases when there are any, else the re-view proxy)",
    )
    _add_source_options(p)

    p = sub.add_parser("score", help="score a source, one row per session")
    p.add_argument("input", help="file (CSV, gzip, Parquet) or SQLAlchemy URL")
    p.add_argument("-o", "--output", type=Path, required=True, help="CSV file to write")
    p.add_argument("--dataset", help="whose models to use (default: the dataset whose models fit the input)")
    p.add_argument("--run", help="classifier run id (default: the dataset's best classifier)")
    _add_source_options(p)

    p = sub.add_parser("evaluate", help="print the saved models' held-out metrics")
    p.add_argument("--dataset", help="one dataset (default: every dataset)")
    p.add_argument("--history", action="store_true", help="every run, not only the newest per model")

    p = sub.add_parser(
        "recommend",
        help="product recommendations (viewed next, also viewed) or their evaluation against popularity",
    )
    p.add_argument("--data", default=str(settings.data_file), help="file or SQLAlchemy URL (default: bundled data)")
    p.add_argument("--dataset", help="dataset key the recommender belongs to (default: from the source's name)")
    p.add_argument("--product", action="append", help="product id to recommend beside (repeat for several)")
    p.add_argument("--top", type=int, default=10, help="suggestions per list (default 10)")
    p.add_argument("--evaluate", action="store_true", help="print the evaluation table (the default without --product)")
    p.add_argument(
        "--cut-date",
        help="evaluate with this cut (YYYY-MM-DD; train before it, test from it) instead of the saved default split",
    )
    p.add_argument("--refit", action="store_true", help="fit and save the recommender again even if one is saved")
    _add_source_options(p)
    add_users_parser(sub, settings)
    return parser


def _load(source: str, args: argparse.Namespace) -> LoadedEvents:
    if (args.table or args.query) and not is_sql_url(source):
        raise ValueError("--table and --query need an SQLAlchemy URL as the source (e.g. postgresql://...)")
    loaded = load_events(
        source if is_sql_url(source) else Path(source),
        profile=args.profile,
        skip_invalid_rows=args.skip_invalid_rows,
        session_gap_minutes=args.session_gap,
        table=args.table,
        query=args.query,
    )
    for warning in loaded.warnings:
        log.warning("%s", warning)
    if loaded.skipped_rows:
        log.warning("skipped %s invalid rows:", f"{loaded.skipped_rows:,}")
        for problem in loaded.skipped_problems:
            log.warning("  - %s", problem.describe())
    log.info(
        "loaded %s: %s events, %s sessions (%s)",
        loaded.source,
        f"{len(loaded.events):,}",
        f"{loaded.n_sessions:,}",
        loaded.input_form,
    )
    return loaded


def _is_bundled(source: str) -> bool:
    return not is_sql_url(source) and Path(source).resolve() == BUNDLED_DATA_FILE


def _dataset_of(source: str, args: argparse.Namespace) -> str:
    if args.dataset:
        return args.dataset
    if _is_bundled(source):
        return BUNDLED_DATASET_KEY
    if is_sql_url(source):
        return dataset_key(args.table or "query")
    return dataset_key(Path(source).name)


def _print_leaderboards(store: ModelStore, datasets: Sequence[str], history: bool = False) -> None:
    for key in datasets:
        registry = store.registry(key)
        for task in TASKS:
            frame = leaderboard(registry, task, history=history)
            if frame.empty:
                continue
            kind = "all runs" if history else "newest run per model; * = best by CV"
            print(f"\n{key}: {task} ({kind})")
            print(format_table(frame, task))


def _summary(args: argparse.Namespace, store: ModelStore) -> int:
    print(format_summary(describe_events(_load(args.input, args))))
    return 0


def _train(args: argparse.Namespace, store: ModelStore) -> int:
    loaded = _load(args.data, args)
    key = _dataset_of(args.data, args)
    config = TrainConfig(
        window=args.window,
        models=tuple(n for n in args.models.split(",") if n.strip()),
        quick=args.quick,
        label=args.label,
    )
    reported: set[tuple[str, str, str]] = set()

    def progress(statuses: list[dict]) -> None:
        for s in statuses:
            status_key = (s["task"], s["model"], s["state"])
            if s["state"] in ("done", "failed") and status_key not in reported:
                reported.add(status_key)
                score = f"{s['metric']} {s['score']:.3f}" if s["score"] is not None else s["detail"]
                log.info("%-15s %-8s %-6s %s", s["task"], s["model"], s["state"], score)

    registry = store.registry(key)
    result = train(
        loaded.events,
        registry,
        config,
        source=loaded.source,
        data_hash=loaded.data_hash,
        progress=progress,
        dataset=dataset_description(registry, loaded),
        codebooks=loaded.codebooks,
    )
    log.info(
        "trained %d models for dataset '%s' in %.1f s (job %s)", len(result.run_ids), key, result.seconds, result.job_id
    )
    _print_leaderboards(store, [key])
    try:  # the recommender belongs with the models, so scores carry recommended products
        recommender_for(registry, loaded.events, data_hash=loaded.data_hash, source=loaded.source)
    except ValueError as exc:
        log.warning("no product recommender for dataset '%s': %s", key, exc)
    failed = [s for s in result.statuses if s["state"] == "failed"]
    return EXIT_ERROR if failed else 0


class OutputProblem(ClickstreamError):
    """``-o`` names a file that cannot (or must not) be written."""


def check_output(output: Path, source: str) -> None:
    """Refuse, before any work, an output that is a folder, in a folder we cannot write, or the input itself."""
    if output.is_dir():
        raise OutputProblem(f"-o {output} is a folder; give a file name, e.g. -o {output / 'scores.csv'}")
    if not is_sql_url(source):
        source_path = Path(source)
        same = output.exists() and source_path.exists() and os.path.samefile(output, source_path)
        if same or output.resolve() == source_path.resolve():
            raise OutputProblem(f"-o {output} is the input file; it is never overwritten: choose another file name")
    folder = output.parent if str(output.parent) else Path(".")
    if not folder.is_dir():
        raise OutputProblem(f"cannot write -o {output}: the folder {folder} does not exist")
    try:  # the real test (os.access says yes to root on a read-only disk's neighbours, and ACLs lie)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise OutputProblem(f"cannot write -o {output}: the folder {folder} is not writable ({exc.strerror})") from None


def _score(args: argparse.Namespace, store: ModelStore) -> int:
    check_output(args.output, args.input)
    loaded = _load(args.input, args)
    fitting = fitting_datasets(store, loaded.profile.name)
    key = args.dataset
    if key is None:
        preferred = _dataset_of(args.input, args)
        if preferred in fitting or len(fitting) == 1:
            key = preferred if preferred in fitting else fitting[0]
        elif not store.datasets():
            raise NoModelError(f"no saved models in {store.root}; run 'python -m ml train' first")
        elif not fitting:
            raise IncompatibleModelsError(
                f"{no_fitting_models_message(store, loaded.profile.name)}; train models on this data first "
                f"(python -m ml train --data {args.input})"
            )
        else:
            raise IncompatibleModelsError(
                f"models of several datasets fit '{loaded.profile.name}' data ({', '.join(fitting)}); "
                "choose one with --dataset"
            )
    models = load_scoring_models(store.registry(key), args.run)
    check_profile(models, loaded.profile.name, fitting)
    events = code_like_training(loaded.events, loaded.codebooks, models)
    start = time.perf_counter()
    scores = score_clicks(events, models)
    seconds = time.perf_counter() - start
    try:
        write_csv_atomic(scores, args.output)
    except OSError as exc:  # the disk filled up, or the folder changed under us: nothing half-written stays
        raise OutputProblem(f"cannot write -o {args.output}: {exc.strerror or exc}; nothing was written") from None
    summary = score_summary(scores)
    log.info(
        "scored %s sessions (%s) from %s events in %.2f s with %s of dataset '%s'; wrote %s",
        f"{summary['sessions']:,}",
        ", ".join(f"{v:,} {k}" for k, v in summary["status_counts"].items()),
        f"{summary['clicks']:,}",
        seconds,
        models.describe()["classifier"],
        key,
        args.output,
    )
    return 0


def _evaluate(args: argparse.Namespace, store: ModelStore) -> int:
    datasets = [args.dataset] if args.dataset else store.datasets()
    if not any(store.registry(k).runs() for k in datasets):
        print(f"no saved models in {store.root}; run 'python -m ml train' first", file=sys.stderr)
        return EXIT_ERROR
    _print_leaderboards(store, datasets, history=args.history)
    return 0


def _recommend(args: argparse.Namespace, store: ModelStore) -> int:
    if args.top < 1:
        raise ValueError(f"--top must be at least 1, not {args.top}")
    loaded = _load(args.data, args)
    key = _dataset_of(args.data, args)
    saved = recommender_for(
        store.registry(key), loaded.events, data_hash=loaded.data_hash, source=loaded.source, refit=args.refit
    )
    log.info("recommender of dataset '%s': run %s", key, saved.run_id)
    if args.product:
        products = labelled_products(product_table(loaded.events), loaded.codebooks)
        print(format_recommendations(saved.model, products, args.product, args.top))
    if args.evaluate or not args.product:
        if args.cut_date:
            result = evaluate_recommender(loaded.events, cut_date=args.cut_date, k=saved.k)
            print(format_evaluation(result.table, result.n_cases, str(result.cut_date.date()), result.k))
        else:
            print(format_evaluation(saved.evaluation, saved.n_cases, saved.cut_date, saved.k, saved.problem))
    return 0


COMMANDS = {
    "summary": _summary,
    "train": _train,
    "score": _score,
    "evaluate": _evaluate,
    "recommend": _recommend,
    "users": lambda args, _store: run_users(args),
}


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = get_settings()  # a bad environment variable (CLICKSTREAM_WINDOW=abc) is bad input
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return _run(_parser().parse_args(argv), settings)


def _run(args: argparse.Namespace, settings) -> int:
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s", stream=sys.stderr)
    store = ModelStore(args.models_dir, lock=lock_for(settings.with_overrides(models_dir=args.models_dir)))
    try:
        return COMMANDS[args.command](args, store)
    except ValidationError as exc:
        print(exc.report(), file=sys.stderr)
        return EXIT_BAD_INPUT
    except (IncompatibleModelsError, OutputProblem) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except TrainingBusy as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except (ClickstreamError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted; nothing was saved", file=sys.stderr)
        return 130
