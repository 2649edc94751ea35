"""Command line: ``python -m ml train | score | evaluate | users``, for schedulers and scripts.

Bad input exits non-zero with the validation report on stderr and no
traceback; an output file is either written whole or not at all.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ml.cli_users import add_users_parser, run_users
from ml.config import get_settings
from ml.data.export import write_csv_atomic
from ml.data.loading import load_clicks
from ml.errors import ClickstreamError, ValidationError
from ml.features.labels import DEFINITIONS
from ml.serving.leaderboard import format_table, leaderboard
from ml.serving.locking import TrainingBusy
from ml.serving.registry import Registry
from ml.serving.scoring import load_scoring_models, score_clicks, score_summary
from ml.serving.training import TrainConfig, model_catalogue, train
from ml.tasks import TASKS

log = logging.getLogger("ml")

EXIT_BAD_INPUT = 2
EXIT_ERROR = 1


def _parser() -> argparse.ArgumentParser:
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m ml", description="Clickstream conversion analytics engine.")
    parser.add_argument("--models-dir", type=Path, default=settings.models_dir, help="model registry folder")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    sub = parser.add_subparsers(dest="command", required=True)

    names = ", ".join(dict.fromkeys(name for _, name, _ in model_catalogue()))
    p = sub.add_parser("train", help="train models and print the leaderboard")
    p.add_argument("--data", type=Path, default=settings.data_file, help="click file (default: bundled data)")
    p.add_argument("--window", type=int, default=settings.window, help="observation window k in clicks")
    p.add_argument("--models", default="", help=f"comma-separated names ({names}); task:name for one task")
    p.add_argument("--quick", action="store_true", help="one setting per model instead of the grid")
    p.add_argument(
        "--label",
        choices=sorted(DEFINITIONS),
        help="label definition (default: the file's own label, else the re-view proxy)",
    )

    p = sub.add_parser("score", help="score a click file, one row per session")
    p.add_argument("input", type=Path, help="click file: UCI ';' CSV, lowercase comma CSV, or Parquet")
    p.add_argument("-o", "--output", type=Path, required=True, help="CSV file to write")
    p.add_argument("--run", help="classifier run id (default: the best saved classifier)")

    p = sub.add_parser("evaluate", help="print the saved models' held-out metrics")
    p.add_argument("--history", action="store_true", help="every run, not only the newest per model")
    add_users_parser(sub, settings)
    return parser


def _print_leaderboards(registry: Registry, history: bool = False) -> None:
    for task in TASKS:
        frame = leaderboard(registry, task, history=history)
        if frame.empty:
            continue
        print(f"\n{task} ({'all runs' if history else 'newest run per model; * = best by CV'})")
        print(format_table(frame, task))


def _train(args: argparse.Namespace, registry: Registry) -> int:
    loaded = load_clicks(args.data)
    for warning in loaded.warnings:
        log.warning("%s", warning)
    log.info(
        "loaded %s: %s clicks, %s sessions (%s)",
        loaded.source,
        f"{len(loaded.clicks):,}",
        f"{loaded.n_sessions:,}",
        loaded.input_form,
    )
    config = TrainConfig(
        window=args.window,
        models=tuple(n for n in args.models.split(",") if n.strip()),
        quick=args.quick,
        label=args.label,
    )
    reported: set[tuple[str, str, str]] = set()

    def progress(statuses: list[dict]) -> None:
        for s in statuses:
            key = (s["task"], s["model"], s["state"])
            if s["state"] in ("done", "failed") and key not in reported:
                reported.add(key)
                score = f"{s['metric']} {s['score']:.3f}" if s["score"] is not None else s["detail"]
                log.info("%-15s %-8s %-6s %s", s["task"], s["model"], s["state"], score)

    result = train(loaded.clicks, registry, config, source=loaded.source, data_hash=loaded.data_hash, progress=progress)
    log.info("trained %d models in %.1f s (job %s)", len(result.run_ids), result.seconds, result.job_id)
    _print_leaderboards(registry)
    failed = [s for s in result.statuses if s["state"] == "failed"]
    return EXIT_ERROR if failed else 0


def _score(args: argparse.Namespace, registry: Registry) -> int:
    models = load_scoring_models(registry, args.run)
    loaded = load_clicks(args.input)
    for warning in loaded.warnings:
        log.warning("%s", warning)
    start = time.perf_counter()
    scores = score_clicks(loaded.clicks, models)
    seconds = time.perf_counter() - start
    write_csv_atomic(scores, args.output)
    summary = score_summary(scores)
    log.info(
        "scored %s sessions (%s) from %s clicks in %.2f s with %s; wrote %s",
        f"{summary['sessions']:,}",
        ", ".join(f"{v:,} {k}" for k, v in summary["status_counts"].items()),
        f"{summary['clicks']:,}",
        seconds,
        models.describe()["classifier"],
        args.output,
    )
    return 0


def _evaluate(args: argparse.Namespace, registry: Registry) -> int:
    if not registry.runs():
        print(f"no saved models in {registry.root}; run 'python -m ml train' first", file=sys.stderr)
        return EXIT_ERROR
    _print_leaderboards(registry, history=args.history)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s", stream=sys.stderr)
    registry = Registry(args.models_dir)
    commands = {"train": _train, "score": _score, "evaluate": _evaluate, "users": run_users}
    try:
        return commands[args.command](args, registry)
    except ValidationError as exc:
        print(exc.report(), file=sys.stderr)
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
