"""Input values for the dashboard's callbacks: what a user (and the page) would send.

Values come from three places, the later overriding the earlier:

1. **What the page holds**, learnt by ``Known``: every component's props in the
   shell and tab layouts, and every output of a callback response (a store's
   data, a dropdown's options set by a callback, the sliders a callback
   renders). Controls with choices -- tabs, radio items, dropdowns (the filter
   bar's per-dimension ones included), checklists, sliders, switches, number
   inputs with bounds -- are varied within their options or range; other
   props keep the value the page holds; a prop a known component does not set
   is sent as ``null``, as the browser does, and an ``id`` is the component's.
2. **Hand-written controls** in ``INPUTS`` where realism needs more than the
   options: the filter bar's date ranges, the main tab, the URL.
3. **Events**: clicks drawn from what the page shows (``Known.event_draws``:
   a point of a graph's figure, a row of an AG Grid); in ``INPUTS``, uploads,
   progress stores, and the buttons it is safe to click (``n_clicks`` = step
   number). Any other event prop (a button, an upload) is never invented, so
   a callback that needs one is reported as not measured.

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
    tab_ids: tuple[str, ...]
    dataset: str = "bundled"  # the dataset key the page shows (``ids.APP_DATASET_STORE``)
    context: Any = field(repr=False, default=None)  # the AppContext: datasets, registries, models

    @classmethod
    def from_context(cls, context: Any, tab_ids: Sequence[str], dataset: str) -> Facts:
        info = context.dataset(dataset).info
        return cls(
            first_date=info["first_date"],
            last_date=info["last_date"],
            tab_ids=tuple(tab_ids),
            dataset=dataset,
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


# ---------------------------------------------------------------- IDs the hand-written inputs name
def named_id(name: str) -> str | None:
    """``dashboard.ids.<name>``, or None once the app no longer has it (the input is then left out, not fatal)."""
    value = getattr(ids, name, None)
    if value is None:
        MISSING_IDS.append(name)
    return value


def named_ids(*names: str) -> tuple[str, ...]:
    return tuple(v for v in map(named_id, names) if v is not None)


MISSING_IDS: list[str] = []  # hand-written inputs whose ID the app no longer has (reported by the worker)


# ---------------------------------------------------------------- shell: filter bar, tab, URL
START, END = key(ids.FILTER_DATES, "start_date"), key(ids.FILTER_DATES, "end_date")
ACTIVE_TAB = key(ids.APP_TABS, "active_tab")
SEARCH = key(ids.APP_URL, "search")

RANGE_DAYS = (1, 3, 7, 14, 30, 61, 92)  # a day, a few days, a week, two weeks, a month, two, three
NO_DATES_SHARE = 0.25  # the whole period (picker cleared)
PAGE_LOAD_SHARE = 0.1  # sync_url calls that are a page load / back-forward rather than a control change
MULTI_COUNT_WEIGHTS = (0.4, 0.3, 0.2, 0.1)  # 0-3 entries picked in a multi-select (none: "all")


def draw_dates(rng: random.Random, facts: Facts) -> dict[str, Any]:
    """A date range of a typical length at a random place in the data, or none (whole period)."""
    if rng.random() < NO_DATES_SHARE:
        return {START: None, END: None}
    days = (facts.last_date - facts.first_date).days + 1
    length = min(rng.choice(RANGE_DAYS), days)
    first = facts.first_date + timedelta(days=rng.randrange(days - length + 1))
    return {START: first.isoformat(), END: (first + timedelta(days=length - 1)).isoformat()}


def pick_codes(rng: random.Random, codes: Sequence[Any], how_many_weights: Sequence[float]) -> list[Any]:
    """0 to len(weights)-1 distinct entries; those listed first are likelier, as users pick popular ones more
    (the filter bar lists a dimension's codes most sessions first)."""
    count = rng.choices(range(len(how_many_weights)), how_many_weights)[0]
    pool = list(codes)
    weights = [1 / (rank + 1) for rank in range(len(pool))]
    chosen: list[Any] = []
    for _ in range(min(count, len(pool))):
        i = rng.choices(range(len(pool)), weights)[0]
        chosen.append(pool.pop(i))
        weights.pop(i)
    return chosen


def draw_tab(rng: random.Random, facts: Facts) -> dict[str, Any]:
    """Mostly the KPI and EDA tabs, sometimes another."""
    weights = [3.0 if t in ("kpi", "eda") else 1.0 for t in facts.tab_ids]
    return {ACTIVE_TAB: rng.choices(facts.tab_ids, weights)[0]}


def is_filter_dimension(dep_key: str) -> bool:
    """Whether a key is one of the filter bar's per-dimension dropdowns (``ids.filter_dimension(name)``)."""
    component = split_key(dep_key)[0]
    return component.startswith("{") and json.loads(component).get("type") == ids.FILTER_DIMENSION


def search_of(values: Mapping[str, Any], dataset: str) -> str:
    """The URL query the app writes for a view (``dashboard.url_state``), from the bar's values."""
    from dashboard.url_state import ViewState, filter_from_values, to_search

    dims = sorted(k for k in values if split_key(k)[1] == "value" and is_filter_dimension(k))
    names = [json.loads(split_key(k)[0]) for k in dims]
    filt = filter_from_values(values.get(START), values.get(END), [values[k] for k in dims], names)
    all_dates = filt.start is None and filt.end is None
    return to_search(ViewState(tab=values[ACTIVE_TAB], filter=filt, dataset=dataset, all_dates=all_dates))


def sync_url_call(step: Step) -> Call:
    """The URL callback: usually a control changed (the URL still shows the previous view); sometimes, and
    always at a visit's first step, a page load (the URL sets the dataset, tab and filters)."""
    if step.index == 0 or step.rng.random() < PAGE_LOAD_SHARE:
        return Call({SEARCH: search_of(step.values, step.facts.dataset)}, changed=(SEARCH,))
    changed = tuple(k for k in step.changed if k in (START, END, ACTIVE_TAB) or is_filter_dimension(k)) or (START,)
    return Call({SEARCH: search_of(step.previous, step.facts.dataset)}, changed=changed)


# ---------------------------------------------------------------- events of the other tabs
def draw_training_progress(rng: random.Random, facts: Facts) -> dict[str, Any]:
    """What the background training job writes to the progress store: every model's status."""
    from ml.serving.training import model_catalogue

    store_id = named_id("TRAIN_PROGRESS_STORE")
    if store_id is None:
        return {}
    store = key(store_id, "data")
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


def draw_session_lookup(rng: random.Random, facts: Facts) -> dict[str, Any]:
    """The what-if tab's "start from a session": a real session ID typed and submitted."""
    input_id = named_id("WHATIF_SESSION_INPUT")
    if input_id is None:
        return {}
    sessions = facts.context.dataset(facts.dataset).sessions.index
    return {
        key(input_id, "value"): str(sessions[rng.randrange(len(sessions))]),
        key(input_id, "n_submit"): rng.randint(1, 1000),
    }


@cache
def _bundled_upload() -> str:
    """The bundled click file as the data URL the upload component sends."""
    from ml.config import BUNDLED_DATA_FILE

    return "data:application/gzip;base64," + base64.b64encode(BUNDLED_DATA_FILE.read_bytes()).decode("ascii")


def draw_upload(rng: random.Random, facts: Facts) -> dict[str, Any]:
    """An upload of the bundled click file (165,474 clicks) on the batch scoring tab."""
    upload_id = named_id("SCORING_UPLOAD")
    if upload_id is None:
        return {}
    return {key(upload_id, "contents"): _bundled_upload(), key(upload_id, "filename"): "e-shop-clothing-2008.csv.gz"}


# ---------------------------------------------------------------- the hand-written inputs, per tab
# Graph clicks and grid row clicks/selections are not listed: they are drawn from what the page shows
# (``Known.event_draws``). The filter bar's per-dimension dropdowns are learnt controls (their options
# are rendered by the URL callback). Only the buttons listed here are ever pressed.
INPUTS: dict[str, TabInputs] = {
    SHELL: TabInputs(
        controls=(ControlGroup("dates", 3, draw_dates), ControlGroup("tab", 1, draw_tab)),
        buttons=named_ids("FILTER_RESET", "DATA_ADD_BUTTON", "DATA_CLOSE"),
        callbacks={SEARCH: sync_url_call},
    ),
    "kpi": TabInputs(buttons=named_ids("KPI_EXPORT_BUTTON", "KPI_ALERTS_BUTTON")),
    "eda": TabInputs(),
    "segments": TabInputs(),
    "products": TabInputs(),
    "leaderboard": TabInputs(events=(draw_training_progress,)),
    "whatif": TabInputs(
        events=(draw_session_lookup,), buttons=named_ids("WHATIF_RESET_BUTTON", "WHATIF_SESSION_BUTTON")
    ),
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
    if multi:  # an empty choice is the usual "all"; popular (first-listed) entries likelier
        return lambda rng: pick_codes(rng, values, MULTI_COUNT_WEIGHTS)
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


def tab_choices(kind: str, props: Mapping[str, Any]) -> tuple[str, list[Any]] | None:
    """A tabs component's switchable prop (``active_tab`` for dbc, ``value`` for dcc) and its tabs' values."""
    if kind != "Tabs":
        return None
    children = props.get("children")
    children = children if isinstance(children, list) else [children]
    tabs = [c["props"] for c in children if isinstance(c, Mapping) and isinstance(c.get("props"), Mapping)]
    dbc_values = [t["tab_id"] for t in tabs if t.get("tab_id") is not None and not t.get("disabled")]
    if dbc_values:
        return "active_tab", dbc_values
    dcc_values = [t["value"] for t in tabs if t.get("value") is not None and not t.get("disabled")]
    return ("value", dcc_values) if dcc_values else None


def single_choices(kind: str, props: Mapping[str, Any]) -> list[Any]:
    """The values of a single-choice control (radio items, a single dropdown), for the crawl's sweep."""
    if props.get("disabled") or not props.get("options") or props.get("multi") or kind == "Checklist":
        return []
    return [o.get("value") if isinstance(o, Mapping) else o for o in props["options"]]


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
    choices: dict[str, list[Any]] = field(default_factory=dict)  # "id.prop" -> values of a single-choice control

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
            if single_choices(kind, props):
                self.choices[key(cid, "value")] = single_choices(kind, props)
            tabs = tab_choices(kind, props)
            if tabs:
                self.controls.setdefault(key(cid, tabs[0]), lambda rng, v=tabs[1]: rng.choice(v))
                self.choices[key(cid, tabs[0])] = tabs[1]
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
                    if not multi:
                        self.choices[key(cid, "value")] = [
                            o.get("value") if isinstance(o, Mapping) else o for o in value
                        ]
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
        if prop == "id" and component in self.component_tabs:  # the browser sends a component's own ID
            return json.loads(component) if component.startswith("{") else component
        if prop in EVENT_PROPS:
            if dep_key in events:
                return values[dep_key]
            raise KeyError(dep_key)
        if dep_key in values:
            return values[dep_key]
        if component in self.component_tabs:
            return None
        raise KeyError(dep_key)

    def event_draws(self) -> list[Draw]:
        """Clicks a user can make on what the page shows: a point of every graph whose figure carries
        ``customdata`` (its ``clickData``), a row of every AG Grid with rows (its ``cellClicked`` and
        ``selectedRows``). Only callbacks that take one of these as an input ever see it."""
        draws: list[Draw] = []
        for cid, kind in sorted(self.kinds.items()):
            if kind == "Graph":
                points = figure_points(self.constants.get(key(cid, "figure")))
                if points:
                    draws.append(lambda rng, facts, c=cid, p=points: {key(c, "clickData"): {"points": [rng.choice(p)]}})
            elif kind == "AgGrid":
                rows = self.constants.get(key(cid, "rowData"))
                if isinstance(rows, list) and rows and all(isinstance(r, Mapping) for r in rows):
                    draws.append(self._grid_draw(cid, rows))
        return draws

    def _grid_draw(self, cid: str, rows: list[Mapping[str, Any]]) -> Draw:
        getter = str(self.constants.get(key(cid, "getRowId")) or "")
        field_name = getter.split("params.data.", 1)[1] if getter.startswith("params.data.") else None
        columns = [c.get("field") for c in self.constants.get(key(cid, "columnDefs")) or () if isinstance(c, Mapping)]
        column = next((c for c in columns if c), None)

        def draw(rng: random.Random, facts: Facts) -> dict[str, Any]:
            i = rng.randrange(len(rows))
            row = rows[i]
            row_id = str(row.get(field_name)) if field_name else str(i)
            click = {"rowId": row_id, "rowIndex": i, "colId": column, "value": row.get(column) if column else None}
            return {key(cid, "cellClicked"): click, key(cid, "selectedRows"): [dict(row)]}

        return draw


def _array(value: Any) -> list | None:
    """A plotly data array as a list: plain JSON, or the typed-array form (``{"dtype", "bdata", "shape"}``)."""
    if isinstance(value, Mapping) and "bdata" in value:
        import numpy as np

        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        if value.get("shape"):
            array = array.reshape([int(n) for n in str(value["shape"]).split(",")])
        return array.tolist()
    return list(value) if isinstance(value, list | tuple) else None


def figure_points(figure: Any, limit: int = 200) -> list[dict[str, Any]]:
    """The points of a figure a click reports as plotly does (curve, index, customdata, x, y), those with
    ``customdata`` only (what the app's click callbacks read)."""
    if not isinstance(figure, Mapping):
        return []
    points: list[dict[str, Any]] = []
    for curve, trace in enumerate(figure.get("data") or ()):
        if not isinstance(trace, Mapping):
            continue
        custom = _array(trace.get("customdata"))
        if not custom:
            continue
        xs, ys = _array(trace.get("x")) or [], _array(trace.get("y")) or []
        for i, data in enumerate(custom[:limit]):
            point = {"curveNumber": curve, "pointNumber": i, "pointIndex": i, "customdata": data}
            if i < len(xs):
                point["x"] = xs[i]
            if i < len(ys):
                point["y"] = ys[i]
            points.append(point)
    return points


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
    learnt_events = known.event_draws()
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
        for event in (*inputs.events, *learnt_events):
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
    tab_ids=("kpi",),
)  # only to learn which keys a hand-written group draws
