"""Input values for the dashboard's callbacks: what a user (and the page) would send.

Values come from three places, the later overriding the earlier:

1. **What the page holds**, learnt by ``Known``: every component's props in the
   shell and tab layouts, and every output of a callback response (a store's
   data, a dropdown's options set by a callback, the sliders a callback
   renders). Controls with choices -- radio items, dropdowns, checklists,
   sliders, switches, number inputs with bounds -- are varied within their
   options or range; other props keep the value the page holds; a prop a
   known component does not set is sent as ``null``, as the browser does.
2. **Hand-written controls** in ``INPUTS`` where realism needs more than the
   options: the filter bar's date ranges and popular countries, the tab.
3. **Events** in ``INPUTS``: graph clicks, uploads, progress stores, and the
   buttons it is safe to click (``n_clicks`` = step number). An event prop
   (click, upload) with no generator is never invented, so a callback that
   needs one is reported as not measured, and no unlisted button is pressed.

A visit is a random walk (``walk``): one draw of every control, then one
control changed per step, as a user changes one thing at a time. Per-callback
generators (``TabInputs.callbacks``, keyed by one of the callback's outputs)
can set values and ``changedPropIds`` for one callback (see ``sync_url_call``).
"""

from __future__ import annotations

import base64
import json
import math
import random
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache
from typing import Any

from _measure import PROJECT_ROOT

if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from dashboard import ids  # after the sys.path line above

SHELL = "shell"
EVENT_PROPS = frozenset(
    {"n_clicks", "clickData", "selectedData", "hoverData", "relayoutData", "restyleData", "n_submit", "contents"}
    | {"cellClicked", "cellValueChanged", "selectedRows_clicked", "n_blur"}
)
WILDCARDS = ('["ALL"]', '["MATCH"]', '["ALLSMALLER"]')


def key(component_id: str | Mapping[str, Any], prop: str) -> str:
    """The ``id.property`` string Dash uses for a dependency (dict IDs stringified as Dash does)."""
    return f"{stringify_id(component_id)}.{prop}"


def stringify_id(component_id: str | Mapping[str, Any]) -> str:
    """Dash's string form of a component ID: dict IDs as compact JSON with sorted keys."""
    if isinstance(component_id, Mapping):
        return json.dumps(component_id, sort_keys=True, separators=(",", ":"))
    return str(component_id)


def split_key(dep_key: str) -> tuple[str, str]:
    """``id.property`` back into its parts."""
    component, prop = dep_key.rsplit(".", 1)
    return component, prop


# ---------------------------------------------------------------- what generators see
@dataclass(frozen=True)
class Facts:
    """What the generators need to know about the data set (and the app, for model tabs)."""

    first_date: date
    last_date: date
    countries: tuple[int, ...]  # most sessions first, as the filter bar lists them
    categories: tuple[int, ...]
    colours: tuple[int, ...]
    tab_ids: tuple[str, ...]
    context: Any = field(repr=False, default=None)  # the AppContext: data, registry, models

    @classmethod
    def from_context(cls, context: Any, tab_ids: Sequence[str]) -> Facts:
        sessions = context.data.sessions
        info = context.data.info
        return cls(
            first_date=info["first_date"],
            last_date=info["last_date"],
            countries=tuple(int(c) for c in sessions["country"].value_counts().index),
            categories=tuple(int(c) for c in sorted(sessions["main_category"].unique())),
            colours=tuple(int(c) for c in sessions["main_colour"].value_counts().index),
            tab_ids=tuple(tab_ids),
            context=context,
        )


@dataclass(frozen=True)
class Step:
    """One moment of a visit: every value the page would send, what just changed, this step's events."""

    index: int
    rng: random.Random
    facts: Facts
    values: Mapping[str, Any]  # "component-id.property" -> value
    previous: Mapping[str, Any]  # the values one step earlier
    changed: tuple[str, ...]  # control keys changed in this step
    events: frozenset[str]  # keys that fire at every step (clicks, uploads, stores)


@dataclass(frozen=True)
class Call:
    """What a per-callback generator returns: values to use and, optionally, ``changedPropIds``."""

    values: Mapping[str, Any] = field(default_factory=dict)
    changed: tuple[str, ...] | None = None


Draw = Callable[[random.Random, Facts], dict[str, Any]]
Generate = Callable[[Step], Call]


@dataclass(frozen=True)
class ControlGroup:
    """Controls drawn together (a date range is two props); ``weight``: how often a user changes it."""

    name: str
    weight: float
    draw: Draw


@dataclass(frozen=True)
class TabInputs:
    """Hand-written inputs of one tab (see the module docstring)."""

    controls: tuple[ControlGroup, ...] = ()
    events: tuple[Draw, ...] = ()
    buttons: tuple[str, ...] = ()
    callbacks: Mapping[str, Generate] = field(default_factory=dict)


# ---------------------------------------------------------------- shell: filter bar, tab, URL
START, END = key(ids.FILTER_DATES, "start_date"), key(ids.FILTER_DATES, "end_date")
COUNTRIES = key(ids.FILTER_COUNTRIES, "value")
CATEGORIES = key(ids.FILTER_CATEGORIES, "value")
COLOURS = key(ids.FILTER_COLOURS, "value")
ACTIVE_TAB = key(ids.APP_TABS, "active_tab")
SEARCH = key(ids.APP_URL, "search")
FILTER_KEYS = (START, END, COUNTRIES, CATEGORIES, COLOURS)

RANGE_DAYS = (1, 3, 7, 14, 30, 61, 92)  # a day, a few days, a week, two weeks, a month, two, three
NO_DATES_SHARE = 0.25  # the whole period (picker cleared)
PAGE_LOAD_SHARE = 0.1  # sync_url calls that are a page load / back-forward rather than a control change


def draw_dates(rng: random.Random, facts: Facts) -> dict[str, Any]:
    """A date range of a typical length at a random place in the data, or none (whole period)."""
    if rng.random() < NO_DATES_SHARE:
        return {START: None, END: None}
    days = (facts.last_date - facts.first_date).days + 1
    length = min(rng.choice(RANGE_DAYS), days)
    first = facts.first_date + timedelta(days=rng.randrange(days - length + 1))
    return {START: first.isoformat(), END: (first + timedelta(days=length - 1)).isoformat()}


def pick_codes(rng: random.Random, codes: Sequence[int], how_many_weights: Sequence[float]) -> list[int]:
    """0 to len(weights)-1 distinct codes; popular ones (listed first) are likelier, as users pick them more."""
    count = rng.choices(range(len(how_many_weights)), how_many_weights)[0]
    pool = list(codes)
    weights = [1 / (rank + 1) for rank in range(len(pool))]
    chosen: list[int] = []
    for _ in range(min(count, len(pool))):
        i = rng.choices(range(len(pool)), weights)[0]
        chosen.append(pool.pop(i))
        weights.pop(i)
    return chosen


def draw_countries(rng: random.Random, facts: Facts) -> dict[str, Any]:
    return {COUNTRIES: pick_codes(rng, facts.countries, (0.4, 0.3, 0.2, 0.1))}  # 0-3 countries


def draw_categories(rng: random.Random, facts: Facts) -> dict[str, Any]:
    return {CATEGORIES: pick_codes(rng, facts.categories, (0.5, 0.3, 0.2))}


def draw_colours(rng: random.Random, facts: Facts) -> dict[str, Any]:
    return {COLOURS: pick_codes(rng, facts.colours, (0.5, 0.3, 0.2))}


def draw_tab(rng: random.Random, facts: Facts) -> dict[str, Any]:
    """Mostly the KPI and EDA tabs, sometimes another."""
    weights = [3.0 if t in ("kpi", "eda") else 1.0 for t in facts.tab_ids]
    return {ACTIVE_TAB: rng.choices(facts.tab_ids, weights)[0]}


def search_of(values: Mapping[str, Any]) -> str:
    """The URL query the app writes for a view (``dashboard.url_state``)."""
    from dashboard.url_state import ViewState, filter_from_inputs, to_search

    filt = filter_from_inputs(*(values[k] for k in FILTER_KEYS))
    return to_search(ViewState(tab=values[ACTIVE_TAB], filter=filt))


def sync_url_call(step: Step) -> Call:
    """``sync_url``: usually a control changed (the URL still shows the previous view); sometimes a page load."""
    if step.rng.random() < PAGE_LOAD_SHARE:
        return Call({SEARCH: search_of(step.values)}, changed=(SEARCH,))
    changed = tuple(k for k in step.changed if k in (*FILTER_KEYS, ACTIVE_TAB)) or (START,)
    return Call({SEARCH: search_of(step.previous)}, changed=changed)


# ---------------------------------------------------------------- events of the other tabs
def bar_click(graph_id: str, codes: Callable[[Facts], Sequence[int]]) -> Draw:
    """A click on a breakdown bar: the plotly ``clickData`` whose ``customdata[0]`` is the bar's code."""

    def draw(rng: random.Random, facts: Facts) -> dict[str, Any]:
        code = rng.choice(list(codes(facts))[:15])  # the bars shown
        return {key(graph_id, "clickData"): {"points": [{"curveNumber": 0, "pointIndex": 0, "customdata": [code]}]}}

    return draw


def draw_training_progress(rng: random.Random, facts: Facts) -> dict[str, Any]:
    """What the background training job writes to the progress store: every model's status."""
    from ml.serving.training import model_catalogue

    store = key(ids.TRAIN_PROGRESS_STORE, "data")
    if rng.random() < 0.15:
        return {store: None}
    catalogue = model_catalogue()
    reached = rng.randrange(len(catalogue) + 1)
    statuses = []
    for i, (task, model, title) in enumerate(catalogue):
        state = "done" if i < reached else "fitting" if i == reached else "waiting"
        statuses.append(
            {
                "task": task,
                "model": model,
                "title": title,
                "state": state,
                "step": rng.randint(1, 5) if state == "fitting" else 0,
                "steps": 5 if state == "fitting" else 0,
                "detail": "saved" if state == "done" else "fold 2 of 5" if state == "fitting" else "",
                "metric": "score" if state == "done" else "",
                "score": rng.random() if state == "done" else None,
                "run_id": None,
            }
        )
    return {store: statuses}


def grid_row_click(grid_id: str, task: str) -> Draw:
    """A click on a leaderboard row: AG Grid's ``cellClicked`` with the run id as the row id."""

    def draw(rng: random.Random, facts: Facts) -> dict[str, Any]:
        runs = [r.run_id for r in facts.context.registry.latest_per_model(task)]
        if not runs:
            return {}
        i = rng.randrange(len(runs))
        return {key(grid_id, "cellClicked"): {"rowId": runs[i], "rowIndex": i, "colId": "model", "value": None}}

    return draw


def draw_session_lookup(rng: random.Random, facts: Facts) -> dict[str, Any]:
    """The what-if tab's "start from a session": a real session ID typed and submitted."""
    sessions = facts.context.data.sessions.index
    return {
        key(ids.WHATIF_SESSION_INPUT, "value"): str(sessions[rng.randrange(len(sessions))]),
        key(ids.WHATIF_SESSION_INPUT, "n_submit"): rng.randint(1, 1000),
    }


@cache
def _bundled_upload() -> str:
    """The bundled click file as the data URL the upload component sends."""
    from ml.config import BUNDLED_DATA_FILE

    return "data:application/gzip;base64," + base64.b64encode(BUNDLED_DATA_FILE.read_bytes()).decode("ascii")


def draw_upload(rng: random.Random, facts: Facts) -> dict[str, Any]:
    """An upload of the bundled click file (165,474 clicks) on the batch scoring tab."""
    return {
        key(ids.SCORING_UPLOAD, "contents"): _bundled_upload(),
        key(ids.SCORING_UPLOAD, "filename"): "e-shop-clothing-2008.csv.gz",
    }


# ---------------------------------------------------------------- the hand-written inputs, per tab
INPUTS: dict[str, TabInputs] = {
    SHELL: TabInputs(
        controls=(
            ControlGroup("dates", 5, draw_dates),
            ControlGroup("countries", 4, draw_countries),
            ControlGroup("categories", 3, draw_categories),
            ControlGroup("colours", 3, draw_colours),
            ControlGroup("tab", 1, draw_tab),
        ),
        buttons=(ids.FILTER_RESET,),
        callbacks={SEARCH: sync_url_call},
    ),
    "kpi": TabInputs(
        events=(
            bar_click(ids.KPI_COUNTRY_GRAPH, lambda f: f.countries),
            bar_click(ids.KPI_CATEGORY_GRAPH, lambda f: f.categories),
            bar_click(ids.KPI_COLOUR_GRAPH, lambda f: f.colours),
        ),
        buttons=(ids.KPI_EXPORT_BUTTON,),
    ),
    "eda": TabInputs(events=(bar_click(ids.EDA_DIMENSION_GRAPH, lambda f: f.countries),)),
    "segments": TabInputs(),
    "leaderboard": TabInputs(
        events=(
            draw_training_progress,
            grid_row_click(ids.LEADERBOARD_CLASSIFICATION_GRID, "classification"),
            grid_row_click(ids.LEADERBOARD_REGRESSION_GRID, "regression"),
        ),
    ),
    "whatif": TabInputs(events=(draw_session_lookup,), buttons=(ids.WHATIF_RESET_BUTTON, ids.WHATIF_SESSION_BUTTON)),
    "scoring": TabInputs(events=(draw_upload,)),
}


def all_inputs() -> TabInputs:
    """Every tab's hand-written inputs merged (tabs share the filter bar and the stores)."""
    return TabInputs(
        controls=tuple(g for t in INPUTS.values() for g in t.controls),
        events=tuple(e for t in INPUTS.values() for e in t.events),
        buttons=tuple(b for t in INPUTS.values() for b in t.buttons),
        callbacks={k: v for t in INPUTS.values() for k, v in t.callbacks.items()},
    )


# ---------------------------------------------------------------- what the page holds
ValueDraw = Callable[[random.Random], Any]


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else round(value, 10)


def _slider_draw(props: Mapping[str, Any], pair: bool) -> ValueDraw | None:
    low, high, step = props.get("min"), props.get("max"), props.get("step")
    marks = [float(m) for m in (props.get("marks") or {})]
    if low is None or high is None or high <= low:
        return None

    def one(rng: random.Random) -> float | int:
        if step:
            return _number(low + step * rng.randint(0, math.floor((high - low) / step + 1e-9)))
        if marks:
            return _number(rng.choice(marks))
        return _number(rng.uniform(low, high))

    return (lambda rng: sorted([one(rng), one(rng)])) if pair else one


def _options_draw(options: Sequence[Any], multi: bool) -> ValueDraw | None:
    values = [o.get("value") if isinstance(o, Mapping) else o for o in options]
    values = [v for v in values if v is not None]
    if not values:
        return None
    if multi:
        return lambda rng: rng.sample(values, rng.randint(1, min(3, len(values))))
    return lambda rng: rng.choice(values)


def control_draw(kind: str, props: Mapping[str, Any]) -> ValueDraw | None:
    """How a user can set a component's ``value``, from its type and props (None: not a control we vary)."""
    if props.get("disabled"):
        return None
    if props.get("options"):
        return _options_draw(props["options"], multi=bool(props.get("multi")) or kind == "Checklist")
    if kind in ("Slider", "RangeSlider"):
        return _slider_draw(props, pair=kind == "RangeSlider")
    if kind in ("Switch", "Checkbox", "BooleanSwitch"):
        return lambda rng: rng.random() < 0.5
    if kind == "Input" and props.get("type") == "number":
        return _slider_draw({"step": 1, **props}, pair=False)
    return None


def components(tree: Any) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every component (type, props) in a layout in its JSON form (nested in any prop)."""
    if isinstance(tree, Mapping):
        if "props" in tree and "type" in tree and "namespace" in tree:
            yield tree["type"], tree["props"]
            for value in tree["props"].values():
                yield from components(value)
        else:
            for value in tree.values():
                yield from components(value)
    elif isinstance(tree, list | tuple):
        for item in tree:
            yield from components(item)


@dataclass
class Known:
    """What the page holds, learnt from the layouts and from callback responses."""

    component_tabs: dict[str, str] = field(default_factory=dict)  # stringified id -> tab it was first seen in
    kinds: dict[str, str] = field(default_factory=dict)  # stringified id -> component type
    constants: dict[str, Any] = field(default_factory=dict)  # "id.prop" -> value the page holds
    controls: dict[str, ValueDraw] = field(default_factory=dict)  # "id.value" -> how a user sets it

    def learn_tree(self, tree: Any, tab: str) -> int:
        """Components of a layout (JSON form); returns how many new components or controls were found."""
        before = len(self.component_tabs) + len(self.controls)
        for kind, props in components(tree):
            if props.get("id") is None:
                continue
            cid = stringify_id(props["id"])
            self.component_tabs.setdefault(cid, tab)
            self.kinds.setdefault(cid, kind)
            for prop, value in props.items():
                if prop not in ("id", "children"):
                    self.constants[key(cid, prop)] = value
            draw = control_draw(kind, props)
            if draw:
                self.controls[key(cid, "value")] = draw
        return len(self.component_tabs) + len(self.controls) - before

    def learn_response(self, response: Mapping[str, Any], tab: str) -> int:
        """Outputs of one callback response: values, options set by the callback, components it rendered."""
        found = 0
        for cid, props in response.items():
            for prop, value in props.items():
                found += self.learn_tree(value, tab)
                self.constants[key(cid, prop)] = value
                if prop == "options" and isinstance(value, list):
                    kind = self.kinds.get(cid, "")
                    multi = bool(self.constants.get(key(cid, "multi"))) or kind == "Checklist"
                    draw = _options_draw(value, multi)
                    if draw and key(cid, "value") not in self.controls:
                        self.controls[key(cid, "value")] = draw
                        found += 1
        return found

    def matching(self, pattern_id: str) -> list[dict[str, Any]]:
        """The known concrete IDs a pattern-matching ID (``ALL``/``MATCH``/``ALLSMALLER``) stands for."""
        pattern = json.loads(pattern_id)
        out = []
        for cid in self.component_tabs:
            if not cid.startswith("{"):
                continue
            concrete = json.loads(cid)
            if set(concrete) == set(pattern) and all(
                isinstance(v, list) or concrete[k] == v for k, v in pattern.items()
            ):
                out.append(concrete)
        return out

    def value_of(self, dep_key: str, values: Mapping[str, Any], events: frozenset[str] | set[str]) -> Any:
        """A value for a dependency: an event only from a generator; else the step's value, else ``null``
        for a known component that does not set the prop (as the browser sends). KeyError if unknown."""
        component, prop = split_key(dep_key)
        if prop in EVENT_PROPS:
            if dep_key in events:
                return values[dep_key]
            raise KeyError(dep_key)
        if dep_key in values:
            return values[dep_key]
        if component in self.component_tabs:
            return None
        raise KeyError(dep_key)


# ---------------------------------------------------------------- the walk
def control_groups(known: Known, inputs: TabInputs) -> list[ControlGroup]:
    """Hand-written control groups, then one group per learnt control they do not already cover."""
    groups = list(inputs.controls)
    covered = {k for g in inputs.controls for k in g.draw(random.Random(0), _NO_FACTS)}
    for dep_key, draw in known.controls.items():
        if dep_key not in covered:
            groups.append(ControlGroup(dep_key, 1.0, lambda rng, facts, k=dep_key, d=draw: {k: d(rng)}))
    return groups


def walk(
    facts: Facts, known: Known, inputs: TabInputs, steps: int, seed: int, relevant: set[str] | None = None
) -> list[Step]:
    """A visit: a random start, then one control group changed per step (among ``relevant`` keys); events always."""
    rng = random.Random(seed)
    groups = control_groups(known, inputs)
    values: dict[str, Any] = dict(known.constants)
    for group in groups:
        values.update(group.draw(rng, facts))
    movable = [g for g in groups if relevant is None or relevant & set(g.draw(random.Random(0), facts))] or groups
    out: list[Step] = []
    for index in range(steps):
        previous = dict(values)
        changed: tuple[str, ...] = ()
        if index:
            group = rng.choices(movable, [g.weight for g in movable])[0]
            drawn = group.draw(rng, facts)
            changed = tuple(k for k, v in drawn.items() if previous.get(k) != v)
            values.update(drawn)
        events: dict[str, Any] = {key(b, "n_clicks"): index + 1 for b in inputs.buttons}
        for event in inputs.events:
            events.update(event(rng, facts))
        out.append(
            Step(
                index=index,
                rng=random.Random(rng.random()),
                facts=facts,
                values={**values, **events},
                previous=previous,
                changed=changed,
                events=frozenset(events),
            )
        )
    return out


_NO_FACTS = Facts(
    first_date=date(2008, 4, 1),
    last_date=date(2008, 8, 13),
    countries=(1,),
    categories=(1,),
    colours=(1,),
    tab_ids=("kpi",),
)  # only to learn which keys a hand-written group draws
