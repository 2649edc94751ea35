"""Render the dashboard benchmark report (the dict ``bench_dashboard.run`` returns) as Markdown."""

from __future__ import annotations

from pathlib import Path

from _measure import PROJECT_ROOT
from _report import BUSY_LOAD, _int, _machine, _mb, _s, _table

WRAPPER_SHARE = 0.97  # profile rows at least this share of the request are the Flask/Dash call chain
PROFILE_SHOWN = 15
OWN_TIME_SHOWN = 8


# ---------------------------------------------------------------- formatting
def _ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1f} ms" if value < 100 else f"{value:,.0f} ms"


def _measured(row: dict) -> str:
    value = row["value"]
    if value is None:
        return "—"
    return _ms(value) if row["unit"] == "ms" else _s(value)


def _runs(seconds: dict) -> str:
    return ", ".join(f"{s:.2f}" for s in seconds["runs"])


def _path(text: str) -> str:
    """A path relative to the project root when it is inside it."""
    path = Path(text)
    return str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else text


def _kb(size: float | None) -> str:
    if size is None:
        return "—"
    return f"{size:,.0f} B" if size < 1000 else f"{size / 1000:,.1f} kB"


# ---------------------------------------------------------------- sections
def _header(report: dict) -> list[str]:
    machine, project, options = report["machine"], report["project"], report["options"]
    dirty = " (working tree has uncommitted changes)" if project.get("dirty") else ""
    models = report.get("models", {})
    if models.get("trained_by_benchmark"):
        models_text = f"a quick set trained once by `{models['command']}` ({_s(models['seconds'])})"
    else:
        models_text = f"`{models.get('models_dir', '—')}` (given with --models-dir)"
    lines = [
        "# Dashboard benchmark",
        "",
        f"- Date: {machine['date']}",
        f"- Project commit: `{project.get('commit')}`{dirty}",
        f"- Bundled data: `{project['bundled_file']}` (sha256 `{report['bundled_sha256'][:16]}…`)"
        + ("; 10M-click set skipped" if options["skip_10m"] else ""),
        f"- Models: {models_text}",
        f"- Callbacks: {options['calls']} measured calls each after {options['warmup']} warm-up calls;"
        f" start-up: {options['startup_runs']} runs (bundled)"
        + ("" if options["skip_10m"] else f", {options['startup_runs_10m']} runs (10M)"),
        f"- Total benchmark time: {_s(report.get('total_seconds'))}",
        *(
            ["- **Quick run** (`--quick`): few calls, no wait for a quiet machine, nothing re-measured: not final"]
            if options.get("quick")
            else []
        ),
        "",
        *_quiet(report),
    ]
    if report["errors"]:
        lines += ["**Errors:**", "", *[f"- {e}" for e in report["errors"]], ""]
    return lines


def _quiet(report: dict) -> list[str]:
    """Under what load the figures were taken."""
    checks = report["quiet_checks"]
    start = next((c for c in checks if c["phase"] == "start"), None)
    lines = ["**Machine load.** "]
    if start:
        lines[0] += (
            f"At the start the run waited {start['waited_seconds']:.0f} s for a quiet machine and began at a "
            f"1-minute load average of {start['load_average'][0] if start['load_average'] else '—'} with other "
            f"processes using {start['others_cores']} cores. "
        )
    others = [
        value
        for value in (
            *(s.get("others_cores_max") for s in report["startup"].values()),
            *(c.get("others_cores_max_kept") for c in report["callbacks"].values()),
        )
        if value is not None
    ]
    limit = report["options"]["max_others"]
    retried = sum(s.get("discarded_runs", 0) for s in report["startup"].values())
    chunks = sum(c.get("chunks_retried", 0) for c in report["callbacks"].values())
    lines[0] += (
        f"Every kept measurement ran while other processes used at most {max(others, default=0):.2f} cores "
        f"(limit {limit}); {retried} start-up run(s) and {chunks} chunk(s) of callback calls were disturbed, "
        "thrown away and measured again. Load averages (1/5/15 min): "
        + "; ".join(f"{phase} {values}" for phase, values in report["load_average"].items())
        + "."
    )
    lines.append("")
    problems = [
        f"{c['phase']}: other processes used {c['others_cores']} cores, load {c['load_average']}"
        for c in checks
        if not c["quiet"]
    ]
    kept_busy = sum(c.get("chunks_kept_disturbed", 0) for c in report["callbacks"].values()) + sum(
        sum(bool(r.get("disturbed_but_kept")) for r in s["runs"]) for s in report["startup"].values()
    )
    if kept_busy:
        problems.append(f"{kept_busy} run(s)/chunk(s) were still disturbed after every retry and were kept")
    start_load = report["load_average"].get("start_quiet") or []
    if start_load and start_load[0] > BUSY_LOAD:
        problems.append(f"the 1-minute load average was {start_load[0]} when measuring began")
    if problems:
        lines += [f"**Warning:** the machine was not quiet ({'; '.join(problems)}); rerun for final figures.", ""]
    return lines


def _targets(report: dict) -> list[str]:
    rows = [(r["figure"], _measured(r), r["target_text"], f"**{r['verdict']}**") for r in report["targets"]]
    lines = ["## Targets", "", *_table(("Figure", "Measured", "Target", "Result"), rows)]
    over = [name for r in report["targets"] for name in r.get("callbacks_over", [])]
    if over:
        lines += ["Callbacks over their target: " + ", ".join(f"`{n}`" for n in over) + ".", ""]
    return lines


def _timeline(startup: dict) -> list[str]:
    events = [e for e in startup["median_run_timeline"] if e["logger"] != "werkzeug" or "Running on" in e["message"]]
    if not events:
        return []
    run = sorted(startup["runs"], key=lambda r: r["first_page_seconds"])[len(startup["runs"]) // 2]
    items = [f"  - {e['t']:.2f} s — {e['logger']}: {e['message']}" for e in events]
    items.append(f"  - {run['first_page_seconds']:.2f} s — first page served (HTTP 200 on `/`)")
    return [f"- Timeline of the median run, {startup['label']} (log time since the process started):", *items]


def _startup(report: dict) -> list[str]:
    sets = list(report["startup"].values())
    if not sets:
        return []

    def row(label: str, cell: object) -> list[object]:
        return [label, *[cell(s) for s in sets]]

    rows = [
        row("**Process start → first page (median)**", lambda s: f"**{_s(s['first_page_seconds']['median'])}**"),
        row("Best", lambda s: _s(s["first_page_seconds"]["best"])),
        row("Every run (s)", lambda s: _runs(s["first_page_seconds"])),
        row("… + `/_dash-layout` and `/_dash-dependencies` (median)", lambda s: _s(s["page_ready_seconds"]["median"])),
        row("RSS once serving (median)", lambda s: _mb(s["rss_serving_kib_median"])),
        row("Peak RSS during start-up (`VmHWM`, worst run)", lambda s: _mb(s["peak_rss_kib_max"])),
        row("Runs disturbed and repeated", lambda s: str(s["discarded_runs"])),
    ]
    imp = report.get("import")
    lines = [
        "## 1. Start-up: `python app.py` to the first page",
        "",
        *_table(("", *[s["label"] for s in sets]), rows),
        "Each run starts `python app.py` as a subprocess (`PORT` = a free port, a fresh temporary "
        "`CLICKSTREAM_CACHE_DIR` and `CLICKSTREAM_DATASETS_DIR`, so the session table and KPI cube are built as on "
        "a first start, `CLICKSTREAM_MODELS_DIR` = the benchmark's registry; for the 10M set "
        "`CLICKSTREAM_DATA` points at the cached Parquet file) and polls `GET /` every 20 ms; the time is from just "
        "before the process is started to the first HTTP 200. The RSS is read from `/proc/PID/status` once the page "
        "and its layout have been served.",
        "",
    ]
    if imp:
        lines += [
            f"- For comparison, `{imp['command']}` alone takes {_s(imp['seconds']['median'])} (median of "
            f"{imp['seconds']['repeats']}).",
        ]
    for startup in sets:
        lines += _timeline(startup)
    return [*lines, ""]


def _callback_table(result: dict) -> list[str]:
    rows = []
    for c in result["callbacks"]:
        lat = c["latency"] or {}
        target = "—" if c["target_p95_ms"] is None else f"≤ {c['target_p95_ms']:,.0f} ms"
        rows.append(
            (
                c["tab"],
                f"`{c['label']}`",
                _ms(lat.get("median_ms")),
                f"**{_ms(lat.get('p95_ms'))}**",
                _ms(lat.get("max_ms")),
                _ms(c["cold_ms"]),
                _ms(c["cpu_median_ms"]),
                _kb(c["response_bytes_median"]),
                target,
                c["verdict"] or "—",
            )
        )
    header = ("Tab", "Callback", "Median", "p95", "Max", "First call", "CPU (median)", "Response", "Target", "Result")
    return _table(header, rows)


def _callbacks(report: dict) -> list[str]:
    results = list(report["callbacks"].values())
    if not results:
        return []
    lines = [
        "## 2. Callback server time: `POST /_dash-update-component`",
        "",
        "Each data set is measured in a fresh worker process (`bench/_dash_calls.py`) that prepares the data, "
        "builds the app with `create_app(settings, data)` and then, **as `app.py` does, runs `gc.collect(); "
        "gc.freeze()`**. Requests go through `app.server.test_client()` with the JSON body the browser sends "
        "(`output`, `outputs`, `inputs` with id/property/value, `state`, `changedPropIds`), so the time includes "
        "Flask, Dash's dispatch and the JSON encoding of the response, but not the network or the browser. "
        "Callbacks come from `app.callback_map`; before measuring, the worker crawls the app (calls what it can, "
        "learns the options, controls and store values the responses set) so every tab's controls have values. "
        "The inputs follow a user's visit: a random start, then one control changed per step (date ranges of "
        "1 day to 3 months or none; 0–3 codes in each of the dataset's filter dimensions, popular ones likelier; "
        "daily/weekly, the EDA toggles, the active tab, each tab's own controls within their options or range; "
        "clicks on the graphs and grids the page shows); at every step each callback of a tab "
        "is called in turn, as a filter change fires them. *First call* is the first (cold) request after the app "
        "was built; *CPU* is the process CPU time per request. The 150 ms / 1 s p95 targets cover the shell "
        "(filter bar, URL, tab), KPI and EDA callbacks; the what-if update (every slider move) has its own 50 ms "
        "p95 target; the other callbacks have no target and are reported for information (segment computation "
        "per setting and the leaderboard render are measured in `bench/bench_model_tabs.py`).",
        "",
    ]
    for result in results:
        pages = ", ".join(f"`{u}` {_ms(v['median_ms'])}" for u, v in result["page_requests"].items())
        lines += [
            f"### {result['display_name']}: {_int(result['clicks'])} clicks, {_int(result['sessions'])} sessions",
            "",
            f"Data prepared in {_s(result['prepare_seconds'])}, app built in {_s(result['create_app_seconds'])}; "
            f"RSS {_mb(result['memory_after_build']['rss_kib'])} after building, "
            f"{_mb(result['memory_end']['rss_kib'])} at the end (peak {_mb(result['memory_end']['peak_kib'])}); "
            f"{_int(result['gc_frozen_objects'])} objects frozen. Page requests in process (median): {pages}. "
            f"The crawl learnt {result['crawl']['components']} components and {result['crawl']['controls']} "
            f"controls in {result['crawl']['passes']} pass(es). Chunks of calls re-measured because the machine "
            f"was busy: {result['chunks_retried']}.",
            "",
            *_callback_table(result),
        ]
    return lines


def _profile_rows(profile: dict) -> list[tuple]:
    total = profile["wall_ms_per_request"]
    rows = [r for r in profile["by_cumulative"] if r["cumulative_ms"] < WRAPPER_SHARE * total][:PROFILE_SHOWN]
    return [
        (f"`{r['function']}`", _ms(r["cumulative_ms"]), _ms(r["own_ms"]), f"{r['calls_per_request']:,.0f}")
        for r in rows
    ]


def _profiles(report: dict) -> list[str]:
    lines: list[str] = []
    for result in report["callbacks"].values():
        for profile in result.get("profiles", []):
            own = ", ".join(f"`{r['function']}` {_ms(r['own_ms'])}" for r in profile["by_own_time"][:OWN_TIME_SHOWN])
            lines += [
                f"### {result['display_name']}: `{profile['label']}`",
                "",
                f"cProfile over {profile['requests']} requests ({_ms(profile['wall_ms_per_request'])} per request "
                "with the profiler on); per request, below the Flask/Dash call chain:",
                "",
                *_table(("Function", "Cumulative", "Own", "Calls"), _profile_rows(profile)),
                f"Most own time: {own}. Full listing: `{_path(profile['pstats_file'])}`.",
                "",
            ]
    if not lines:
        return []
    return [
        "## 3. Where the time goes: the slowest callback(s), profiled",
        "",
        "The callbacks over their target are profiled (at most three per data set); when all are within target, "
        "the one with a target with the highest p95, and the slowest of all.",
        "",
        *lines,
    ]


def _coverage(report: dict) -> list[str]:
    result = next(iter(report["callbacks"].values()), None)
    if not result:
        return []
    tab_rows = [(tab, t["state"], t["measured"], t["not_measured"]) for tab, t in result["tabs"].items()]
    skipped = [(s["tab"], f"`{s['label']}`", s["reason"]) for s in result["not_measured"]]
    lines = [
        "## 4. Coverage: tabs and callbacks not measured",
        "",
        *_table(("Tab", "State", "Callbacks measured", "Not measured"), tab_rows),
    ]
    if skipped:
        lines += [
            "Callbacks not measured (add a generator to `INPUTS` in `bench/_dash_inputs.py` to measure one):",
            "",
            *_table(("Tab", "Callback", "Why"), skipped),
        ]
    return lines


def render_markdown(report: dict) -> str:
    """The whole report as Markdown."""
    lines: list[str] = []
    for section in (_header, _targets, _startup, _callbacks, _profiles, _coverage, _machine):
        lines += section(report)
    lines += [
        "Regenerate with `.venv/bin/python bench/bench_dashboard.py` from the project root (see `bench/README.md`).",
        "",
    ]
    return "\n".join(lines)
