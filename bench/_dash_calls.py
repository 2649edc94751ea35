"""Dashboard callbacks through Dash's real HTTP path, in one fresh process.

``bench_dashboard.py`` runs this file once per data set::

    python bench/_dash_calls.py --source bundled|FILE.parquet --models-dir DIR --result FILE [--calls N]

The worker prepares the data, builds the app with ``create_app(settings, data)``,
freezes the garbage collector as ``app.py`` does, then POSTs to
``/_dash-update-component`` through ``app.server.test_client()`` with the JSON
the browser sends (``output``, ``outputs``, ``inputs``, ``state``,
``changedPropIds``). The callbacks come from ``app.callback_map``, so a new
callback is measured without touching this file once its inputs have values
(see ``_dash_inputs``): before measuring, the worker *crawls* the app -- it
calls every callback it can with what the layouts hold and learns from the
responses (options a callback sets, controls it renders, stores it fills),
until nothing new turns up. Background and clientside callbacks are never
called; a callback whose inputs still have no value is listed as not measured,
with the reason.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import logging
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from _dash_inputs import (
    EVENT_PROPS,
    MISSING_IDS,
    SHELL,
    Call,
    Facts,
    Generate,
    Known,
    Step,
    TabInputs,
    all_inputs,
    components,
    key,
    split_key,
    stringify_id,
    walk,
)
from _measure import (
    PROJECT_ROOT,
    CpuMeter,
    hwm_kib,
    peak_rss_kib,
    reset_peak_rss,
    rss_kib,
    summarise_latencies,
    wait_until_quiet,
)

log = logging.getLogger("bench.dash")

BUNDLED = "bundled"
UPDATE_URL = "/_dash-update-component"
PAGE_URLS = ("/", "/_dash-layout", "/_dash-dependencies")
TARGET_TABS = (SHELL, "kpi", "eda")  # the p95 targets cover the filter bar's callbacks and these tabs
# Callbacks with a target of their own (first output -> p95 ms), on every data set.
# The what-if slider round trip: the callback that reads the generated what-if inputs (pattern type of
# ``ids.whatif_feature``), whatever its outputs are called.
WHATIF_TARGET_MS = 50.0
CRAWL_PASSES = 4
SWEEP_CHOICES = 8  # values per single-choice control the crawl tries on the callbacks rendering components
CHUNK_STEPS = 10  # interference is checked, and a chunk re-measured, this many steps at a time
MIN_METER_SECONDS = 1.0
PROFILE_CALLS = 10
PROFILE_ROWS = 25


def whatif_feature_type() -> str | None:
    """The pattern type of the what-if tab's generated inputs, if the app still has them."""
    from dashboard import ids

    make = getattr(ids, "whatif_feature", None)
    return make("x").get("type") if make else None


# ---------------------------------------------------------------- callbacks and payloads
class MissingInput(LookupError):
    """A callback reads a value nothing provides."""


@dataclass
class CallbackSpec:
    """One callback from ``app.callback_map`` and how to drive it."""

    output: str  # the callback_map key, sent as "output"
    name: str
    tab: str
    inputs: list[dict[str, Any]]
    state: list[dict[str, Any]]
    generate: Generate | None
    excluded: str | None = None  # why it is never called (background, clientside, not selected)

    @property
    def has_target(self) -> bool:
        return self.tab in TARGET_TABS or self.own_target_ms is not None

    @property
    def own_target_ms(self) -> float | None:
        """A target set for this callback alone (the what-if update), not its tab's."""
        feature_type = whatif_feature_type()
        types = {_pattern(d["id"]).get("type") for d in self.inputs if _is_pattern(d["id"])}
        return WHATIF_TARGET_MS if feature_type and feature_type in types else None

    @property
    def output_keys(self) -> list[str]:
        """The outputs as ``id.property`` without Dash's ``@hash`` suffix for duplicate outputs."""
        return [key(o["id"], o["property"].split("@")[0]) for o in split_outputs(self.output)]

    @property
    def label(self) -> str:
        outs = self.output_keys
        more = f" (+{len(outs) - 1})" if len(outs) > 1 else ""
        return f"{self.name} → {outs[0]}{more}"


def split_outputs(output: str) -> list[dict[str, Any]]:
    """The outputs of an output string, as ``{"id", "property"}`` (pattern IDs parsed)."""

    def one(text: str) -> dict[str, Any]:
        component, prop = split_key(text)
        return {"id": json.loads(component) if component.startswith("{") else component, "property": prop}

    parts = output[2:-2].split("...") if output.startswith("..") else [output]
    return [one(part) for part in parts]


def _dep_key(dep: Mapping[str, Any]) -> str:
    return key(dep["id"], dep["property"])


def _is_pattern(dep_id: Any) -> bool:
    """Whether an ID has a wildcard (``ALL``, ``MATCH``, ``ALLSMALLER``); a dict ID without one is a component."""
    if isinstance(dep_id, str):
        if not dep_id.startswith("{"):
            return False
        dep_id = json.loads(dep_id)
    return isinstance(dep_id, dict) and any(isinstance(v, list) for v in dep_id.values())


MATCH = ["MATCH"]


def _pattern(dep_id: Any) -> dict[str, Any]:
    return dep_id if isinstance(dep_id, dict) else json.loads(dep_id)


def _is_multi(dep_id: Any) -> bool:
    """Whether the browser sends a pattern as a list (``ALL``/``ALLSMALLER``); ``MATCH`` alone is one item."""
    return any(v in (["ALL"], ["ALLSMALLER"]) for v in _pattern(dep_id).values())


def _concrete(dep_id: Any, known: Known, binding: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The components a pattern stands for: ``MATCH`` keys as ``binding`` sets them, ``ALL``/``ALLSMALLER``
    every known component that fits."""
    pattern = {k: binding.get(k, v) if v == MATCH else v for k, v in _pattern(dep_id).items()}
    if any(v == MATCH for v in pattern.values()):
        raise MissingInput(f"{stringify_id(pattern)} (MATCH key without a component)")
    found = known.matching(stringify_id(pattern))
    if not found and not _is_multi(pattern):
        raise MissingInput(f"{stringify_id(pattern)} (no component fits its MATCH pattern)")
    return found


def match_binding(spec: CallbackSpec, step: Step, known: Known, events: set[str] | frozenset[str]) -> dict:
    """For a ``MATCH`` callback, the wildcard values of the one component set it fires for: one of the known
    components fitting its first ``MATCH`` input (one with an event drawn if the input is an event), drawn
    per step and callback; empty for other callbacks."""
    dep = next((d for d in spec.inputs if _is_pattern(d["id"]) and MATCH in _pattern(d["id"]).values()), None)
    if dep is None:
        return {}
    pattern = _pattern(dep["id"])
    candidates = known.matching(stringify_id(pattern))
    if dep["property"] in EVENT_PROPS:
        candidates = [c for c in candidates if key(c, dep["property"]) in events]
    if not candidates:
        raise MissingInput(f"{_dep_key(dep)} (no component for its MATCH pattern)")
    chosen = random.Random(f"{step.index}:{spec.output}").choice(sorted(candidates, key=stringify_id))
    return {k: chosen[k] for k, v in pattern.items() if v == MATCH}


def build_call(spec: CallbackSpec, step: Step, known: Known) -> dict[str, Any]:
    """The JSON body of one ``/_dash-update-component`` request, as the browser sends it."""
    call = spec.generate(step) if spec.generate else Call()
    values = {**step.values, **call.values}
    events = step.events | set(call.values)
    binding = match_binding(spec, step, known, events)

    def value(dep_key: str) -> Any:
        try:
            return known.value_of(dep_key, values, events)
        except KeyError as exc:
            raise MissingInput(dep_key) from exc

    def entry(dep: Mapping[str, Any]) -> tuple[Any, list[str]]:
        prop = dep["property"]
        if not _is_pattern(dep["id"]):
            component = json.loads(dep["id"]) if str(dep["id"]).startswith("{") else dep["id"]
            return {"id": component, "property": prop, "value": value(_dep_key(dep))}, [_dep_key(dep)]
        concrete = _concrete(dep["id"], known, binding)
        items = [{"id": c, "property": prop, "value": value(key(c, prop))} for c in concrete]
        keys = [key(c["id"], prop) for c in items]
        return (items if _is_multi(dep["id"]) else items[0]), keys  # MATCH alone: one component, no list

    inputs, input_keys = [], []
    for dep in spec.inputs:
        item, keys = entry(dep)
        inputs.append(item)
        input_keys += keys
    state = [entry(dep)[0] for dep in spec.state]
    changed = call.changed
    if changed is None:
        changed = tuple(k for k in input_keys if k in events or k in step.changed) or tuple(input_keys[:1])
    outputs: list[Any] = []
    for out in split_outputs(spec.output):
        if _is_pattern(out["id"]):
            items = [{"id": c, "property": out["property"]} for c in _concrete(out["id"], known, binding)]
            outputs.append(items if _is_multi(out["id"]) else items[0])
        else:
            outputs.append(out)
    body: dict[str, Any] = {
        "output": spec.output,
        "outputs": outputs if spec.output.startswith("..") else outputs[0],
        "inputs": inputs,
        "changedPropIds": list(changed),
        "parsedChangedPropsIds": list(changed),
    }
    if state:
        body["state"] = state
    return body


# ---------------------------------------------------------------- discovery
def layout_json(tree: Any) -> Any:
    """A layout in the JSON form Dash serves."""
    import plotly.io.json

    return json.loads(plotly.io.json.to_json_plotly(tree))


def is_stub(tree: Any) -> bool:
    """Whether a tab's layout (JSON form) shows the "coming next" card."""
    return any(
        isinstance(props.get("children"), str) and props["children"].endswith(": coming next")
        for _, props in components(tree)
    )


def tab_layouts(app: Any, dataset: str) -> dict[str, Any]:
    """The shell's layout and each tab's on one dataset, rendered as the app renders them (JSON form)."""
    from dashboard.tabs import TABS

    shell = app.layout() if callable(app.layout) else app.layout  # a function: built per page load
    layouts = {SHELL: layout_json(shell)}
    for tab in TABS:
        try:
            layouts[tab.TAB_ID] = layout_json(tab.layout(app.context, dataset))
        except Exception as exc:  # a tab under construction must not stop the benchmark
            log.warning("layout of tab %s failed: %s", tab.TAB_ID, exc)
    return layouts


def _component_names(dep_id: Any, known: Known) -> list[str]:
    if not _is_pattern(dep_id):
        return [stringify_id(dep_id) if isinstance(dep_id, dict) else str(dep_id)]
    text = stringify_id(dep_id) if isinstance(dep_id, dict) else dep_id
    return [stringify_id(c) for c in known.matching(text)] or [str(json.loads(text).get("type", ""))]


def tab_of(output: str, cb: Mapping[str, Any], known: Known, tab_ids: Sequence[str]) -> str:
    """The tab holding the callback's outputs; for outputs not on the page, the tab their ID's prefix names;
    else the tab of its inputs; else the shell; else by the ID's prefix."""
    outputs = [n for o in split_outputs(output) for n in _component_names(o["id"], known)]
    deps = [n for d in (*cb["inputs"], *cb["state"]) for n in _component_names(d["id"], known)]
    prefix = outputs[0].split("-", 1)[0].lstrip("{")
    by_prefix = next((t for t in tab_ids if t.startswith(prefix) or prefix.startswith(t)), None)
    if by_prefix and not any(c in known.component_tabs for c in outputs):
        return by_prefix
    for group in (outputs, deps):
        for component in group:
            tab = known.component_tabs.get(component)
            if tab and tab != SHELL:
                return tab
    if any(known.component_tabs.get(c) == SHELL for c in outputs + deps):
        return SHELL
    return by_prefix or "other"


def callback_name(cb: Mapping[str, Any]) -> str:
    func = cb.get("callback")
    if func is None:
        return "clientside"
    return getattr(getattr(func, "__wrapped__", func), "__name__", "callback")


def _generator_for(output: str, callbacks: Mapping[str, Generate]) -> Generate | None:
    """The per-callback generator registered for one of the callback's outputs."""
    for out in split_outputs(output):  # an allow_duplicate output (``@hash``) is another callback's, not this one
        if isinstance(out["id"], str) and "@" not in out["property"] and key(out["id"], out["property"]) in callbacks:
            return callbacks[key(out["id"], out["property"])]
    return None


def callback_specs(
    app: Any, known: Known, facts: Facts, inputs: TabInputs, wanted: Sequence[str] | None
) -> list[CallbackSpec]:
    """Every callback of the app, with its tab and, for those never called, why."""
    specs = []
    for output, cb in app.callback_map.items():
        tab = tab_of(output, cb, known, facts.tab_ids)
        excluded = None
        if "callback" not in cb:
            excluded = "clientside callback (runs in the browser)"
        elif cb.get("background"):
            excluded = "background callback (runs in a worker process of the callback manager)"
        elif not cb["inputs"]:
            excluded = "no inputs"
        elif wanted and tab not in wanted and tab != SHELL:
            excluded = "tab not selected (--tabs)"
        specs.append(
            CallbackSpec(
                output=output,
                name=callback_name(cb),
                tab=tab,
                inputs=list(cb["inputs"]),
                state=list(cb["state"]),
                generate=_generator_for(output, inputs.callbacks),
                excluded=excluded,
            )
        )
    return specs


def crawl(client: Any, specs: list[CallbackSpec], known: Known, facts: Facts, inputs: TabInputs, seed: int) -> dict:
    """Call every callback that can be called and learn from its response, until nothing new turns up.

    Returns the time of each callback's first (cold) request, in seconds, and the passes made.
    """
    cold: dict[str, float] = {}
    swept: set[tuple[str, str, str]] = set()
    passes, learnt = 0, 1
    while learnt and passes < CRAWL_PASSES:
        passes += 1
        probe = walk(facts, known, inputs, 1, seed)[0]
        learnt = 0
        for spec in (s for s in specs if not s.excluded):
            try:
                body = build_call(spec, probe, known)
            except MissingInput:
                continue
            wall, _, response = post(client, body)
            cold.setdefault(spec.output, wall)
            if response.status_code == 200:
                learnt += known.learn_response(response.get_json().get("response", {}), spec.tab)
        learnt += sweep(client, specs, known, probe, swept)
    return {"cold_seconds": cold, "passes": passes, "sweep_calls": len(swept)}


def sweep(client: Any, specs: list[CallbackSpec], known: Known, probe: Step, swept: set) -> int:
    """Every single-choice control (tabs, radio items, single dropdowns; at most ``SWEEP_CHOICES`` values)
    through each of its values once, on the callbacks that read it and render components (a ``children``
    output): what a tab shows for one choice only (a section, a method's sliders) is learnt too."""
    learnt = 0
    for spec in (s for s in specs if not s.excluded):
        if not any(k.endswith(".children") for k in spec.output_keys):
            continue
        for dep in spec.inputs:
            dep_key = _dep_key(dep)
            for choice in known.choices.get(dep_key, [])[:SWEEP_CHOICES]:
                done = (spec.output, dep_key, json.dumps(choice, default=str))
                if done in swept:
                    continue
                swept.add(done)
                step = replace(probe, values={**probe.values, dep_key: choice}, changed=(dep_key,))
                try:
                    body = build_call(spec, step, known)
                except MissingInput:
                    continue
                _, _, response = post(client, body)
                if response.status_code == 200:
                    learnt += known.learn_response(response.get_json().get("response", {}), spec.tab)
    return learnt


def _missing_reason(missing: str) -> str:
    component, prop = split_key(missing.split(" ", 1)[0])
    if "MATCH" in missing:
        return f"pattern-matching MATCH callback: no component (or no drawn event) fits it ({missing})"
    if prop in EVENT_PROPS:
        return f"needs a `{prop}` on `{component}` (no generator; add one to `_dash_inputs.INPUTS` to measure it)"
    return f"`{component}` is not on the page (not in a layout nor rendered by a callback)"


def classify(specs: list[CallbackSpec], probe: Step, known: Known) -> tuple[list[CallbackSpec], list[dict]]:
    """The callbacks to measure, and the others with the reason."""
    measured, skipped = [], []
    for spec in specs:
        reason = spec.excluded
        if not reason:
            try:
                build_call(spec, probe, known)
            except MissingInput as exc:
                reason = _missing_reason(str(exc))
        if not reason and not any(
            n in known.component_tabs for o in split_outputs(spec.output) for n in _component_names(o["id"], known)
        ):
            reason = "its outputs are not on the page for this dataset (the browser does not fire it)"
        if not reason:
            empty = [_dep_key(d) for d in spec.inputs if _is_pattern(d["id"]) and not known.matching(str(d["id"]))]
            if empty and len(empty) == len(spec.inputs):
                reason = f"no component on the page fits its pattern inputs ({', '.join(empty)})"
        if reason:
            skipped.append({"output": spec.output, "label": spec.label, "tab": spec.tab, "reason": reason})
        else:
            measured.append(spec)
    return measured, skipped


def tab_states(
    layouts: Mapping[str, Any], specs: list[CallbackSpec], measured: list[CallbackSpec], tab_ids: Sequence[str]
) -> dict[str, dict]:
    """Per tab: built, partly built or a stub, and how many callbacks were measured."""
    out = {}
    for tab in [SHELL, *tab_ids]:
        tree = layouts.get(tab)
        total = sum(s.tab == tab for s in specs)
        done = sum(s.tab == tab for s in measured)
        stub = tree is not None and is_stub(tree)
        state = "no layout" if tree is None else ("partly built" if total else "stub") if stub else "built"
        out[tab] = {"state": state, "measured": done, "not_measured": total - done}
    return out


# ---------------------------------------------------------------- timing
@dataclass
class Samples:
    """Per-request figures of one callback."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    cold_seconds: float | None = None
    error: str | None = None


def post(client: Any, body: Mapping[str, Any]) -> tuple[float, float, Any]:
    """One callback request: wall and process-CPU seconds, and the response."""
    cpu = time.process_time()
    start = time.perf_counter()
    response = client.post(UPDATE_URL, json=body)
    wall = time.perf_counter() - start
    return wall, time.process_time() - cpu, response


def _record(samples: Samples, wall: float, cpu: float, response: Any, keep: bool) -> None:
    samples.statuses[response.status_code] = samples.statuses.get(response.status_code, 0) + 1
    if response.status_code >= 400 and samples.error is None:
        samples.error = f"HTTP {response.status_code}: {response.get_data(as_text=True)[:500]}"
    if keep:
        samples.wall.append(wall)
        samples.cpu.append(cpu)
        samples.sizes.append(len(response.get_data()))


@dataclass(frozen=True)
class Pace:
    """How to measure: warm-up steps, measured steps, and when a chunk counts as disturbed."""

    warmup: int
    calls: int
    max_others: float
    max_retries: int
    wait_timeout: float


def measure_tab(client: Any, specs: list[CallbackSpec], bodies: Mapping[str, list], pace: Pace) -> dict[str, Any]:
    """Round-robin over a tab's callbacks, step by step as a filter change fires them all.

    Steps are timed in chunks; a chunk during which other processes used more
    than ``pace.max_others`` cores is thrown away and measured again once the
    machine is quiet.
    """
    samples = {s.output: Samples() for s in specs}
    for step in range(pace.warmup):
        for spec in specs:
            wall, cpu, response = post(client, bodies[spec.output][step])
            if samples[spec.output].cold_seconds is None:
                samples[spec.output].cold_seconds = wall
            _record(samples[spec.output], wall, cpu, response, keep=False)
    chunks: list[dict[str, Any]] = []
    first = pace.warmup
    while first < pace.warmup + pace.calls:
        steps = range(first, min(first + CHUNK_STEPS, pace.warmup + pace.calls))
        for attempt in range(pace.max_retries + 1):
            kept = {s.output: Samples() for s in specs}
            meter = CpuMeter().start()
            started = time.perf_counter()
            for step in steps:
                for spec in specs:
                    wall, cpu, response = post(client, bodies[spec.output][step])
                    _record(kept[spec.output], wall, cpu, response, keep=True)
            # /proc/stat counts in 10 ms ticks: meter at least a second (idle) so the reading means something.
            time.sleep(max(0.0, MIN_METER_SECONDS - (time.perf_counter() - started)))
            others = meter.others_cores()
            disturbed = others is not None and others > pace.max_others
            last = not disturbed or attempt == pace.max_retries
            chunks.append(
                {"steps": [steps[0], steps[-1]], "others_cores": others, "disturbed": disturbed, "kept": last}
            )
            if last:
                break
            log.info("chunk %d-%d disturbed (others %.2f cores): waiting, then again", steps[0], steps[-1], others)
            wait_until_quiet(pace.max_others, pace.wait_timeout)
        for output, got in kept.items():
            total = samples[output]
            total.wall += got.wall
            total.cpu += got.cpu
            total.sizes += got.sizes
            for code, n in got.statuses.items():
                total.statuses[code] = total.statuses.get(code, 0) + n
            total.error = total.error or got.error
        first = steps[-1] + 1
    return {"samples": samples, "chunks": chunks}


def summarise(spec: CallbackSpec, samples: Samples, target_ms: float | None) -> dict[str, Any]:
    """One callback's row: latency figures, CPU, response size, statuses, verdict."""
    stats = summarise_latencies(samples.wall) if samples.wall else None
    target = spec.own_target_ms or (target_ms if spec.has_target else None)
    verdict = None
    if stats and target is not None:
        verdict = "MET" if stats["p95_ms"] <= target else "NOT MET"
    if samples.error:
        verdict = "ERROR"
    return {
        "output": spec.output,
        "label": spec.label,
        "name": spec.name,
        "tab": spec.tab,
        "outputs": spec.output_keys,
        "inputs": [_dep_key(d) for d in spec.inputs],
        "state": [_dep_key(d) for d in spec.state],
        "generator": getattr(spec.generate, "__name__", None),
        "latency": stats,
        "cpu_median_ms": statistics.median(samples.cpu) * 1000 if samples.cpu else None,
        "cold_ms": None if samples.cold_seconds is None else samples.cold_seconds * 1000,
        "response_bytes_median": statistics.median(samples.sizes) if samples.sizes else None,
        "statuses": {str(k): v for k, v in sorted(samples.statuses.items())},
        "error": samples.error,
        "target_p95_ms": target,
        "verdict": verdict,
    }


# ---------------------------------------------------------------- profiling
def _where(func: tuple[str, int, str]) -> str:
    """``file:line(function)`` with the site-packages or project prefix dropped."""
    filename, line, name = func
    for marker in ("site-packages/", str(PROJECT_ROOT) + "/"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
    return f"{filename}:{line}({name})" if line else name


def profile_callback(client: Any, spec: CallbackSpec, bodies: list, out_dir: Path, label: str) -> dict[str, Any]:
    """cProfile over a few requests of one callback: top functions by cumulative and by own time."""
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    for body in bodies:
        client.post(UPDATE_URL, json=body)
    profiler.disable()
    wall = time.perf_counter() - start
    stats = pstats.Stats(profiler)
    calls = len(bodies)
    rows = [
        {
            "function": _where(func),
            "calls_per_request": nc / calls,
            "own_ms": tt / calls * 1000,
            "cumulative_ms": ct / calls * 1000,
        }
        for func, (_, nc, tt, ct, _) in stats.stats.items()
    ]
    component = spec.output_keys[0].split(".")[0].strip("{}").replace('"', "")
    text_path = out_dir / f"dashboard-profile-{label}-{component}.txt"
    with open(text_path, "w", encoding="utf-8") as fh:
        pstats.Stats(profiler, stream=fh).sort_stats("cumulative").print_stats(80)
    return {
        "output": spec.output,
        "label": spec.label,
        "requests": calls,
        "wall_ms_per_request": wall / calls * 1000,
        "by_cumulative": sorted(rows, key=lambda r: -r["cumulative_ms"])[:PROFILE_ROWS],
        "by_own_time": sorted(rows, key=lambda r: -r["own_ms"])[:PROFILE_ROWS],
        "pstats_file": str(text_path),
    }


def choose_profiles(rows: list[dict], specs: list[CallbackSpec]) -> list[CallbackSpec]:
    """The callbacks over their target (at most three); else the slowest with a target and the slowest overall."""
    by_output = {s.output: s for s in specs}
    timed = sorted((r for r in rows if r["latency"]), key=lambda r: -r["latency"]["p95_ms"])
    over = [r for r in timed if r["verdict"] == "NOT MET"][:3]
    pick = over or [r for r in timed if r["target_p95_ms"] is not None][:1] + timed[:1]
    return [by_output[o] for o in dict.fromkeys(r["output"] for r in pick)]


# ---------------------------------------------------------------- the job
def prepare_data(source: str) -> tuple[Any, Path, str, float]:
    """The prepared data, its file and display name, as ``create_app`` would make them; and the time."""
    from ml.config import BUNDLED_DATA_FILE, BUNDLED_DATA_NAME
    from ml.features.prepared import prepare_file

    path = BUNDLED_DATA_FILE if source == BUNDLED else Path(source).resolve()
    name = BUNDLED_DATA_NAME if source == BUNDLED else path.name
    start = time.perf_counter()
    data = prepare_file(path, display_name=name)
    return data, path, name, time.perf_counter() - start


def page_requests(client: Any, repeats: int = 5) -> dict[str, dict[str, float]]:
    """In-process time of the requests that load the page (first request, then the median)."""
    out = {}
    for url in PAGE_URLS:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            response = client.get(url)
            times.append(time.perf_counter() - start)
            if response.status_code != 200:
                raise RuntimeError(f"GET {url} answered {response.status_code}")
        out[url] = {"first_ms": times[0] * 1000, "median_ms": statistics.median(times[1:]) * 1000}
    return out


def build_app(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """Prepare the data and build the app as ``app.py`` does (then freeze the GC); with what it took."""
    from dashboard.app_factory import create_app
    from ml.config import get_settings

    data, path, name, prepare_seconds = prepare_data(args.source)
    settings = get_settings().with_overrides(
        data_file=path,
        models_dir=args.models_dir,
        cache_dir=args.cache_dir,
        datasets_dir=args.cache_dir / "datasets",  # only the data set measured: none the project added
    )
    start = time.perf_counter()
    app = create_app(settings, data)
    create_seconds = time.perf_counter() - start
    gc.collect()  # as app.py does after building the app: keep the GC from rescanning start-up objects
    gc.freeze()
    return app, {
        "source": args.source,
        "data_file": str(path),
        "display_name": name,
        "clicks": int(data.info["clicks"]),
        "sessions": int(data.info["sessions"]),
        "first_date": str(data.info["first_date"]),
        "last_date": str(data.info["last_date"]),
        "prepare_seconds": prepare_seconds,
        "create_app_seconds": create_seconds,
        "gc_frozen_objects": gc.get_freeze_count(),
        "memory_after_build": {"rss_kib": rss_kib(), "peak_kib": peak_rss_kib()},
    }


def relevant_keys(specs: list[CallbackSpec], known: Known) -> set[str]:
    """Every input and state key a group of callbacks reads (pattern IDs expanded)."""
    keys = set()
    for spec in specs:
        for dep in (*spec.inputs, *spec.state):
            for name in _component_names(dep["id"], known):
                keys.add(key(name, dep["property"]))
    return keys


def run_job(args: argparse.Namespace) -> dict[str, Any]:
    """Build the app on one data set, crawl it, and time every callback that has inputs."""
    from dashboard.tabs import TAB_IDS
    from ml.config import BUNDLED_DATASET_KEY

    app, result = build_app(args)
    client = app.server.test_client()
    result["page_requests"] = page_requests(client)

    dataset = BUNDLED_DATASET_KEY  # create_app keeps the prepared data under the bundled dataset's key
    facts = Facts.from_context(app.context, TAB_IDS, dataset)
    inputs = all_inputs()
    known = Known()
    layouts = tab_layouts(app, dataset)
    for tab, tree in layouts.items():
        known.learn_tree(tree, tab)
    specs = callback_specs(app, known, facts, inputs, args.tabs)
    crawled = crawl(client, specs, known, facts, inputs, args.seed)
    specs = callback_specs(app, known, facts, inputs, args.tabs)  # tabs again, with what the crawl rendered
    probe = walk(facts, known, inputs, 1, args.seed)[0]
    measured, skipped = classify(specs, probe, known)
    pace = Pace(args.warmup, args.calls, args.max_others, args.max_retries, args.wait_timeout)

    rows: list[dict] = []
    chunks: dict[str, list] = {}
    bodies: dict[str, list] = {}
    for number, tab in enumerate([SHELL, *facts.tab_ids, "other"]):
        tab_specs = [s for s in measured if s.tab == tab]
        if not tab_specs:
            continue
        steps = walk(
            facts, known, inputs, args.warmup + args.calls, args.seed * 100 + number, relevant_keys(tab_specs, known)
        )
        bodies.update({s.output: [build_call(s, step, known) for step in steps] for s in tab_specs})
        log.info("%s: %d callbacks x %d calls", tab, len(tab_specs), args.calls)
        timed = measure_tab(client, tab_specs, bodies, pace)
        chunks[tab] = timed["chunks"]
        for spec in tab_specs:
            samples = timed["samples"][spec.output]
            samples.cold_seconds = crawled["cold_seconds"].get(spec.output, samples.cold_seconds)
            rows.append(summarise(spec, samples, args.target_ms))

    profiles = []
    if args.profile_dir:
        for spec in choose_profiles(rows, measured):
            log.info("profiling %s", spec.label)
            chosen = bodies[spec.output][args.warmup : args.warmup + PROFILE_CALLS]
            profiles.append(profile_callback(client, spec, chosen, args.profile_dir, args.label))
    all_chunks = [c for cs in chunks.values() for c in cs]
    return {
        **result,
        "memory_end": {"rss_kib": rss_kib(), "peak_kib": peak_rss_kib(), "vm_hwm_kib": hwm_kib()},
        "calls": args.calls,
        "warmup": args.warmup,
        "seed": args.seed,
        "target_ms": args.target_ms,
        "crawl": {
            "passes": crawled["passes"],
            "sweep_calls": crawled["sweep_calls"],
            "components": len(known.component_tabs),
            "controls": len(known.controls),
            "values": len(known.constants),
        },
        "dataset_key": dataset,
        "hand_written_ids_missing": sorted(set(MISSING_IDS)),
        "tabs": tab_states(layouts, specs, measured, facts.tab_ids),
        "callbacks": rows,
        "not_measured": skipped,
        "chunks": chunks,
        "chunks_retried": sum(not c["kept"] for c in all_chunks),
        "chunks_kept_disturbed": sum(c["kept"] and c["disturbed"] for c in all_chunks),
        "others_cores_max_kept": max((c["others_cores"] or 0 for c in all_chunks if c["kept"]), default=None),
        "profiles": profiles,
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Time the dashboard's callbacks through Dash's HTTP path.")
    parser.add_argument("--result", type=Path, required=True, help="JSON file to write the result to")
    parser.add_argument("--source", default=BUNDLED, help="'bundled' or a click file (the cached Parquet set)")
    parser.add_argument("--label", default="bundled", help="short name of the data set, for file names")
    parser.add_argument("--models-dir", type=Path, required=True, help="model registry folder")
    parser.add_argument("--calls", type=int, default=50, help="measured calls per callback")
    parser.add_argument("--warmup", type=int, default=5, help="calls per callback before measuring")
    parser.add_argument("--seed", type=int, default=0, help="seed of the input walk")
    parser.add_argument("--target-ms", type=float, help="p95 target for the shell, KPI and EDA callbacks")
    parser.add_argument("--tabs", type=lambda s: [t for t in s.split(",") if t], help="only these tabs")
    parser.add_argument("--max-others", type=float, default=0.25, help="cores other processes may use")
    parser.add_argument("--max-retries", type=int, default=10, help="re-measurements of a disturbed chunk")
    parser.add_argument("--wait-timeout", type=float, default=600, help="longest wait for a quiet machine (s)")
    parser.add_argument("--profile-dir", type=Path, help="profile the slowest callback(s), pstats text here")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    reset_peak_rss()  # drop the peak inherited through exec (see _measure)
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="    %(message)s", stream=sys.stderr)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bench-dash-cache-") as cache_dir:  # uploads, background jobs
        args.cache_dir = Path(cache_dir)
        result = run_job(args)
    result["pid"] = os.getpid()
    args.result.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
