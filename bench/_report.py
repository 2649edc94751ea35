"""Render the engine benchmark report (the dict ``bench_engine.run`` returns) as Markdown."""

from __future__ import annotations

from collections.abc import Sequence

from _measure import mb

BUSY_LOAD = 0.5  # a 1-minute load average above this at the start means something else was running


# ---------------------------------------------------------------- formatting
def _s(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds:.3f} s" if seconds < 10 else f"{seconds:.1f} s"


def _mb(kib: float | None) -> str:
    value = mb(kib)
    return "—" if value is None else f"{value:,.0f} MB"


def _int(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


def _measured(row: dict) -> str:
    value = row["value"]
    if value is None:
        return "—"
    if row["unit"] == "bytes":
        return f"{value / 1e9:.2f} GB ({value / 1e6:,.0f} MB)"
    if row["unit"] == "clicks/s":
        return f"{value:,.0f} clicks/s"
    return _s(value)


def _runs(seconds: dict) -> str:
    return ", ".join(f"{s:.2f}" for s in seconds["runs"])


# ---------------------------------------------------------------- sections
def _header(report: dict) -> list[str]:
    machine, project = report["machine"], report["project"]
    title = "Engine benchmark" + (
        " — QUICK SMOKE RUN (quick grids, not comparable to targets)" if report["mode"] == "quick" else ""
    )
    dirty = " (working tree has uncommitted changes)" if project.get("dirty") else ""
    lines = [
        f"# {title}",
        "",
        f"- Date: {machine['date']}",
        f"- Mode: **{report['mode']}**{'; 10M-click set skipped' if report['skip_10m'] else ''};"
        f" {report['repeats']} repetition(s) per timing",
        f"- Project commit: `{project.get('commit')}`{dirty}",
        f"- Bundled data: `{project['bundled_file']}` (sha256 `{report['bundled_sha256'][:16]}…`)",
        f"- Total benchmark time: {_s(report.get('total_seconds'))}",
        "- Load average (1/5/15 min): "
        + "; ".join(f"{phase} {values}" for phase, values in report["load_average"].items()),
        "",
    ]
    start_load = report["load_average"].get("start")
    if start_load and start_load[0] > BUSY_LOAD:
        lines += [
            f"**Warning:** the 1-minute load average was {start_load[0]} at the start; rerun on an idle machine.",
            "",
        ]
    if report["errors"]:
        lines += ["**Errors:**", "", *[f"- {e}" for e in report["errors"]], ""]
    return lines


def _targets(report: dict) -> list[str]:
    rows = [(r["figure"], _measured(r), r["target_text"], f"**{r['verdict']}**") for r in report["targets"]]
    return ["## Targets", "", *_table(("Figure", "Measured", "Target", "Result"), rows)]


def _machine(report: dict) -> list[str]:
    m = report["machine"]
    libs = ", ".join(f"{k} {v}" for k, v in m["libraries"].items())
    rows = [
        ("CPUs", f"{m['cpu_count']} ({m['cpus_usable']} usable by this process)"),
        ("CPU model", m["cpu_model"]),
        ("RAM", f"{m['total_ram_gb']} GB"),
        ("OS", m["os"]),
        ("Python", m["python"]),
        ("Libraries", libs),
        ("Thread settings", ", ".join(f"{k}={v}" for k, v in m["thread_env"].items()) or "none set"),
    ]
    return ["## Machine", "", *_table(("", ""), rows)]


def _features(report: dict) -> list[str]:
    sets = list(report["features"].values())
    if not sets:
        return []
    steps = list(sets[0]["step_seconds_median"])

    def row(label: str, cell: object) -> list[object]:
        return [label, *[cell(f) for f in sets]]

    rows = [
        row("Clicks", lambda f: _int(f["clicks"])),
        row("Sessions", lambda f: _int(f["sessions"])),
        row("Scoreable sessions (k = 3)", lambda f: _int(f["scoreable_sessions"])),
        row("Input already sorted by (session, order)", lambda f: "yes" if f["input_already_sorted"] else "no"),
        row("**Time, median**", lambda f: f"**{_s(f['seconds']['median'])}**"),
        row("Time, best", lambda f: _s(f["seconds"]["best"])),
        row("Time, every run (s)", lambda f: _runs(f["seconds"])),
        *[row(f"… {name} (median)", lambda f, n=name: _s(f["step_seconds_median"][n])) for name in steps],
        row("RSS before features (clicks loaded)", lambda f: _mb(f["baseline_rss_kib"])),
        row("**Peak RSS after features**", lambda f: f"**{_mb(f['peak_rss_kib'])}**"),
        row("Increase due to features", lambda f: _mb(f["increase_kib"])),
        row("Peak RSS while loading (before the reset)", lambda f: _mb(f["load_peak_kib"])),
        row("Load time (not counted)", lambda f: _s(f["load_seconds_median"])),
    ]
    lines = [
        "## 1. Feature building: index_clicks + session_features + window_features(k=3)",
        "",
        *_table(("", *[f["label"] for f in sets]), rows),
        "Each run is a fresh Python process (`bench/_worker.py features`) that loads the clicks, then builds the "
        "features once. Time is the **median** of the runs (best also shown). Memory is "
        "`getrusage(RUSAGE_SELF).ru_maxrss` read right after the features are built, for the run with the highest "
        "peak; the baseline is the RSS just before feature building, with the clicks in memory. The peak is reset "
        "(`/proc/self/clear_refs`) after loading"
        + (
            " — reset worked in every run"
            if all(f["peak_reset_before_features"] for f in sets)
            else " — **reset failed**"
        )
        + ", so the peak belongs to feature building on top of the loaded clicks; the loading peak is shown "
        "separately. The bundled data is read with `load_events`, the 10M set from the cached Parquet file "
        "(Arrow's allocator is told to return its unused read buffers before the baseline is taken).",
        "",
    ]
    synthetic = report.get("synthetic_10m")
    if synthetic:
        state = "cached, generated by an earlier run" if synthetic["cached"] else "generated by this run"
        lines += [
            "**10M synthetic set** (`ml.synthetic.resample_sessions`, seed "
            f"{synthetic['seed']}; {state}): {_int(synthetic['clicks'])} clicks, {_int(synthetic['sessions'])} "
            f"sessions; resampling took {_s(synthetic['generate_seconds'])} and writing Parquet "
            f"{_s(synthetic['write_parquet_seconds'])} ({synthetic['bytes'] / 1e6:,.0f} MB, "
            f"`{synthetic['path'].rsplit('/', 2)[-2]}/{synthetic['path'].rsplit('/', 1)[-1]}`). Not counted in "
            "the feature time.",
            "",
        ]
    return lines


def _training(report: dict) -> list[str]:
    training = report.get("training")
    if not training:
        return []
    rows = [
        (
            m["task"],
            f"{m['model']} ({m['title']})",
            m["state"],
            m["metric"] or "—",
            "—" if m["score"] is None else f"{m['score']:.4f}",
            _s(m["seconds"]),
        )
        for m in training["models"]
    ]
    data = training["data"]
    grids = "quick grids" if training["quick"] else "full grids"
    config = "TrainConfig(quick=True)" if training["quick"] else "TrainConfig()"
    return [
        f"## 2. Leaderboard training: `train(clicks, registry, {config})`",
        "",
        f"- **Wall time of `train()`: {_s(training['wall_seconds'])}** ({grids}, every model; "
        f"`TrainingResult.seconds` = {_s(training['train_reported_seconds'])}); loading the clicks "
        f"({_s(training['load_seconds'])}) not counted",
        f"- Of which data preparation (features, split, folds) before the first fit: {_s(training['prepare_seconds'])}",
        f"- Population: {_int(data['population'])} scoreable sessions of {_int(data['sessions'])}; "
        f"{_int(data['train_sessions'])} train / {_int(data['test_sessions'])} held out; "
        f"{training['config']['folds']}-fold CV; window k = {training['config']['window']}",
        f"- Runs saved (temporary registry): {training['runs_saved']}; process peak RSS "
        f"{_mb(training['memory']['ru_maxrss_kib'])}",
        "",
        "Per model (held-out primary metric from the result statuses; time from its first fit to saved):",
        "",
        *_table(("Task", "Model", "State", "Metric", "Held-out", "Time"), rows),
    ]


def _scoring(report: dict) -> list[str]:
    scoring = report["scoring"]
    sets = [scoring[k] for k in ("bundled", "synthetic_10m") if k in scoring]
    if not sets:
        return []
    rows = [
        (
            s["label"],
            _int(s["clicks"]),
            _int(s["sessions"]),
            _s(s["seconds"]["median"]),
            _s(s["seconds"]["best"]),
            _runs(s["seconds"]),
            f"**{_int(s['clicks_per_second']['median'])}**",
            _int(s["clicks_per_second"]["best"]),
            f"{_mb(s['baseline_rss_kib'])} → {_mb(s['peak_rss_kib'])}",
        )
        for s in sets
    ]
    models = sets[0]["models"]
    lines = [
        "## 3. Scoring: `score_clicks` with the models just trained",
        "",
        f"Models: classifier {models['classifier']}, regressor {models['regressor']}, segmenter "
        f"{models['segmenter']}; window {models['window']}, threshold {models['threshold']:.4f}. Models and clicks "
        "are loaded once per process; only `score_clicks` is timed.",
        "",
        *_table(
            (
                "Data",
                "Clicks",
                "Sessions",
                "Median",
                "Best",
                "Every run (s)",
                "Clicks/s (median)",
                "Clicks/s (best)",
                "RSS before → peak",
            ),
            rows,
        ),
    ]
    cli = scoring.get("cli")
    if cli:
        lines += [
            f"**End to end:** `{cli['command']}` — median wall time **{_s(cli['seconds']['median'])}** "
            f"(best {_s(cli['seconds']['best'])}; runs {_runs(cli['seconds'])} s), writing {_int(cli['output_rows'])} "
            "rows. For comparison, `python -c 'import ml.cli'` alone takes "
            f"{_s(cli['import_ml_cli_seconds']['median'])} (median). No target is set for this figure.",
            "",
        ]
        if cli["log_tail"]:
            lines += [f"CLI log: `{cli['log_tail'][0]}`", ""]
    return lines


def render_markdown(report: dict) -> str:
    """The whole report as Markdown."""
    sections = [_header, _targets, _features, _training, _scoring, _machine]
    lines: list[str] = []
    for section in sections:
        lines += section(report)
    lines += [
        "Regenerate with `.venv/bin/python bench/bench_engine.py` from the project root (see `bench/README.md`).",
        "",
    ]
    return "\n".join(lines)
