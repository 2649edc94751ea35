"""What-if analysis of one session: controls from a model's metadata, live predictions, sensitivity.

Everything here works from what is saved with a model (``features`` and
``feature_ranges``), so the inputs always match what the model saw in
training. A ``WhatIfModel`` is prepared once per chosen classifier (with the
regressor of the same window for the basket value); each update then builds
one row and scores it, its explanation and its sensitivity line in a single
model call.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ml.data import schema as S
from ml.data.codes import codebook_from_json
from ml.features.prepared import PreparedData
from ml.features.window import STATUS_CONVERTED_IN_WINDOW, STATUS_TOO_SHORT, WindowData, window_features
from ml.models.explain import Contributions, Explainer, FastPipeline, fast_pipeline, make_explainer, one_thread
from ml.serving.registry import LoadedRun, Registry, RunInfo
from ml.serving.scoring import best_regressor
from ml.tasks import CLASSIFICATION, REGRESSION

MAX_POSITIONS = 12  # sliders with at most this many steps snap to labelled marks
SENSITIVITY_POINTS = 41
SENSITIVITY_MAX_CODES = 12

Value = float | int


@dataclass(frozen=True)
class Control:
    """One what-if input: a slider (numeric) or a dropdown of decoded codes (categorical)."""

    name: str
    label: str
    kind: str  # "numeric" or "categorical"
    typical: Value
    integer: bool = False
    minimum: float = math.nan
    maximum: float = math.nan
    step: float = math.nan
    positions: tuple[float, ...] = ()  # every value of a coarse slider; empty for a fine one
    options: tuple[tuple[int, str], ...] = ()  # (code, decoded name), in display order

    @property
    def is_numeric(self) -> bool:
        return self.kind == "numeric"

    @property
    def unit(self) -> str:
        if self.name.endswith("_share"):
            return "share"
        return "usd" if "price" in self.name else ""


def _positions(low: float, high: float, step: float) -> tuple[float, ...]:
    """Each value from ``low`` to ``high`` in ``step``s, if there are few and they land on ``high``."""
    if not step > 0 or high <= low:
        return (low,)
    count = round((high - low) / step)
    if count > MAX_POSITIONS or abs(count * step - (high - low)) > 1e-3 * step:
        return ()
    return (*(round(low + i * step, 6) for i in range(count)), high)


def _options(
    spec: Mapping[str, object], values: Sequence[int], codebooks: Mapping[str, Mapping[str, str]] | None = None
) -> tuple[tuple[int, str], ...]:
    """Codes with decoded names: by code when few (weekdays, categories), else most frequent first.

    Names come from the codebooks saved with the run (the dataset's own), and
    from the UCI codebook only for runs saved before datasets had codebooks.
    """
    codes = [int(v) for v in values]
    if len(codes) <= 7:
        codes = sorted(codes)
    name = str(spec.get("codebook") or "")
    saved = (codebooks or {}).get(name)
    book = codebook_from_json(saved) if saved else S.CODEBOOK.get(name, {})
    return tuple((code, book.get(code, f"code {code}")) for code in codes)


def controls_from_metadata(metadata: Mapping[str, object]) -> tuple[Control, ...]:
    """One control per model input, bounded and stepped as the training data was, named by its codebook."""
    ranges = metadata["feature_ranges"]
    codebooks = metadata.get("codebooks") or {}
    controls = []
    for spec in metadata["features"]:
        name = spec["name"]
        saved = ranges[name]
        if saved["kind"] == "categorical":
            options = _options(spec, saved["values"], codebooks)
            controls.append(Control(name, spec["label"], "categorical", int(saved["typical"]), options=options))
            continue
        low, high, step = float(saved["min"]), float(saved["max"]), float(saved["step"])
        controls.append(
            Control(
                name,
                spec["label"],
                "numeric",
                float(saved["typical"]),
                integer=bool(spec.get("integer")),
                minimum=low,
                maximum=high,
                step=step,
                positions=_positions(low, high, step),
            )
        )
    return tuple(controls)


def format_value(control: Control, value: Value) -> str:
    """A control value as people read it: a country name, 33%, $44.50, 3."""
    if not control.is_numeric:
        return dict(control.options).get(int(value), f"code {value}")
    if control.unit == "share":
        return f"{value:.0%}"
    if control.unit == "usd":
        return f"${value:,.0f}" if float(value).is_integer() else f"${value:,.2f}"
    if control.integer:
        return f"{round(float(value)):d}"
    return f"{value:g}"


def typical_values(controls: Sequence[Control]) -> dict[str, Value]:
    return {c.name: c.typical for c in controls}


def clip_values(controls: Sequence[Control], values: Mapping[str, object]) -> tuple[dict[str, Value], tuple[str, ...]]:
    """Values inside the training ranges, and the names of the ones that had to change.

    Missing values take the typical value; numbers are clipped to [min, max]
    (integers rounded); a code the model never saw becomes the typical code.
    """
    clean: dict[str, Value] = {}
    changed = []
    for control in controls:
        raw = values.get(control.name)
        if raw is None or (isinstance(raw, float) and math.isnan(raw)):
            clean[control.name] = control.typical
            continue
        if control.is_numeric:
            value = min(max(float(raw), control.minimum), control.maximum)
            value = float(round(value)) if control.integer else value
            if abs(value - float(raw)) > 1e-9:
                changed.append(control.name)
        else:
            codes = [code for code, _ in control.options]
            value = int(raw) if int(raw) in codes else control.typical
            if value != int(raw):
                changed.append(control.name)
        clean[control.name] = value
    return clean, tuple(changed)


def feature_frame(controls: Sequence[Control], values: Mapping[str, Value], rows: int = 1) -> pd.DataFrame:
    """The model input for control values (numbers as float, codes as int), repeated ``rows`` times."""
    return pd.DataFrame(
        {c.name: np.full(rows, values[c.name], dtype=np.float64 if c.is_numeric else np.int64) for c in controls}
    )


# ---------------------------------------------------------------- the models
@dataclass
class WhatIfModel:
    """A classifier (and its basket-value regressor) ready for many one-row updates."""

    classifier: LoadedRun
    regressor: LoadedRun | None
    controls: tuple[Control, ...]
    explainer: Explainer
    basket_model: FastPipeline | None = field(default=None, repr=False)

    @property
    def run_id(self) -> str:
        return self.classifier.info.run_id

    @property
    def title(self) -> str:
        return str(self.classifier.metadata.get("title", self.classifier.info.model))

    @property
    def window(self) -> int:
        return self.classifier.window

    @property
    def threshold(self) -> float:
        return self.classifier.threshold

    @property
    def roc_auc(self) -> float:
        return self.classifier.info.metric("roc_auc", "test")

    @property
    def capacity(self) -> dict | None:
        """The classifier's held-out capacity table (``ml.models.capacity``), if saved with the run."""
        return self.classifier.metadata.get("capacity") or None

    @property
    def basket_interval(self) -> dict | None:
        """The regressor's held-out residual quantiles, so the basket value is shown as a range."""
        if self.regressor is None:
            return None
        interval = self.regressor.metadata.get("interval") or {}
        return interval if interval.get("n") else None

    @property
    def label_title(self) -> str:
        return str(self.classifier.metadata.get("label", {}).get("title", "Conversion"))

    def control(self, name: str) -> Control:
        return next(c for c in self.controls if c.name == name)


def _check_rows(controls: Sequence[Control], rows: int = 5) -> pd.DataFrame:
    """A few rows spread over every range and code, to check a compiled preprocessing against the real one."""
    columns = {}
    for c in controls:
        if c.is_numeric:
            columns[c.name] = np.linspace(c.minimum, c.maximum, rows)
        else:
            codes = [code for code, _ in c.options]
            columns[c.name] = np.asarray([codes[i % len(codes)] for i in range(rows)], dtype=np.int64)
    return pd.DataFrame(columns)


def prepare_model(classifier: LoadedRun, regressor: LoadedRun | None) -> WhatIfModel:
    """Controls, explainer and a fast basket model for one classifier run."""
    controls = controls_from_metadata(classifier.metadata)
    baseline = feature_frame(controls, typical_values(controls))
    codes = {c.name: [code for code, _ in c.options] for c in controls if not c.is_numeric}
    check = _check_rows(controls)
    explainer = make_explainer(classifier.pipeline, baseline, codes, check)
    basket_model = fast_pipeline(regressor.pipeline, baseline, codes, check) if regressor is not None else None
    return WhatIfModel(classifier, regressor, controls, explainer, basket_model)


class PreparedModels:
    """What-if models prepared once per classifier run, for an interactive app.

    Only ``classifiers()`` reads the registry (call it when the model list may
    have changed); when it sees a new registry version it forgets what was
    prepared, so a newer basket-value regressor is picked up. ``load`` lets the
    app share its cache of loaded runs.
    """

    def __init__(self, registry: Registry, load: Callable[[RunInfo | str], LoadedRun]) -> None:
        self.registry = registry
        self.load = load
        self._prepared: dict[str, WhatIfModel] = {}
        self._runs: dict[str, RunInfo] = {}
        self._version: str | None = None
        self._lock = threading.Lock()

    def classifiers(self) -> tuple[list[RunInfo], RunInfo | None]:
        """The classifiers in use (newest run per model) and the champion among them."""
        every = self.registry.runs()
        runs = [r for r in self.registry.latest_per_model(CLASSIFICATION) if r.metadata is not None]
        champion = self.registry.champion(CLASSIFICATION) if runs else None
        with self._lock:
            version = every[0].run_id if every else ""
            if version != self._version:
                self._prepared.clear()
                self._version = version
            self._runs.update({r.run_id: r for r in runs})
        return runs, champion

    def get(self, run_id: str) -> WhatIfModel:
        """The prepared model for a classifier run (``ArtifactError`` if it cannot be loaded)."""
        with self._lock:
            if run_id in self._prepared:
                return self._prepared[run_id]
            info = self._runs.get(run_id)
        classifier = self.load(info or run_id)
        regressor_run = best_regressor(self.registry.latest_per_model(REGRESSION), classifier.window)
        model = prepare_model(classifier, self.load(regressor_run) if regressor_run else None)
        with self._lock:
            self._prepared[run_id] = model
        return model


# ---------------------------------------------------------------- predictions
@dataclass(frozen=True)
class SensitivityLine:
    """P(convert) across one feature's range with every other input held."""

    control: Control
    x: tuple[Value, ...]
    p: np.ndarray
    current: Value

    @property
    def current_p(self) -> float:
        return float(self.p[self.x.index(self.current)])


@dataclass(frozen=True)
class WhatIfPrediction:
    """Everything the what-if view shows for one set of inputs."""

    values: dict[str, Value]  # after clipping to the training ranges
    clipped: tuple[str, ...]
    p: float
    threshold: float
    contributions: Contributions
    basket: float | None
    sensitivity: SensitivityLine | None

    @property
    def predicted(self) -> bool:
        return self.p >= self.threshold

    @property
    def expected_revenue(self) -> float | None:
        return None if self.basket is None else self.p * self.basket

    def basket_range(self, interval: Mapping[str, float] | None) -> tuple[float, float] | None:
        """The basket value's range from held-out residual quantiles (never below 0)."""
        if self.basket is None or not interval:
            return None
        return max(self.basket + float(interval["low"]), 0.0), max(self.basket + float(interval["high"]), 0.0)


def sensitivity_grid(control: Control, current: Value) -> tuple[Value, ...]:
    """Values to sweep: every step of a coarse slider or an even grid, the most frequent codes; plus ``current``."""
    if control.is_numeric:
        grid = control.positions or tuple(np.linspace(control.minimum, control.maximum, SENSITIVITY_POINTS))
        return tuple(sorted({float(v) for v in grid} | {float(current)}))
    codes = [code for code, _ in control.options][:SENSITIVITY_MAX_CODES]  # long lists: most frequent first
    return tuple(codes if current in codes else [*codes, int(current)])


def _grid_frame(model: WhatIfModel, values: Mapping[str, Value], control: Control) -> tuple[tuple, pd.DataFrame]:
    grid = sensitivity_grid(control, values[control.name])
    frame = feature_frame(model.controls, values, rows=len(grid))
    frame[control.name] = np.asarray(grid, dtype=frame[control.name].dtype)
    return grid, frame


def predict(
    model: WhatIfModel, values: Mapping[str, object], sensitivity_feature: str | None = None
) -> WhatIfPrediction:
    """P(convert), basket value, contributions and (optionally) a sensitivity line, in one model call."""
    clean, clipped = clip_values(model.controls, values)
    row = feature_frame(model.controls, clean)
    control = model.control(sensitivity_feature) if sensitivity_feature else None
    grid, grid_rows = _grid_frame(model, clean, control) if control else ((), None)
    with one_thread():
        contributions, p = model.explainer.explain(row, also=grid_rows)
        basket = None if model.basket_model is None else max(float(model.basket_model.predict(row)[0]), 0.0)
    line = SensitivityLine(control, grid, p[1:], clean[control.name]) if control else None
    return WhatIfPrediction(clean, clipped, float(p[0]), model.threshold, contributions, basket, line)


# ---------------------------------------------------------------- starting points
@dataclass(frozen=True)
class SessionStart:
    """A real session's window features, or why it cannot be a starting point."""

    session_id: object
    values: dict[str, Value] | None
    message: str
    converted: bool | None = None
    basket_value: float | None = None


def cached_window_features(data: PreparedData, window: int) -> WindowData:
    """Window features of every session for ``window`` clicks, built once per data set and window."""
    return data.once(f"whatif-window-{window}", lambda d: window_features(d.indexed, window, d.definition))


def parse_session_id(data: PreparedData, text: object) -> object:
    """A typed session ID as the data stores it; ``ValueError`` if it cannot be one."""
    raw = str(text if text is not None else "").strip()
    if not raw:
        raise ValueError("type a session ID")
    if pd.api.types.is_integer_dtype(data.indexed.session_ids.dtype):
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"session IDs in this data are whole numbers; {raw!r} is not one") from None
    return raw


def session_start(data: PreparedData, window: int, session_id: object) -> SessionStart:
    """A real session's first ``window`` clicks as control values, or a message saying why not."""
    try:
        key = parse_session_id(data, session_id)
    except ValueError as exc:
        return SessionStart(session_id, None, str(exc).capitalize() + ".")
    windowed = cached_window_features(data, window)
    if key not in windowed.status.index:
        return SessionStart(key, None, f"There is no session {key} in this data.")
    status, clicks = windowed.status[key], int(windowed.n_clicks[key])
    if status == STATUS_TOO_SHORT:
        clicks_text = f"{clicks} click{'s' if clicks != 1 else ''}"
        reason = f"is too short: it has {clicks_text} and the model reads the first {window}"
        return SessionStart(key, None, f"Session {key} {reason}, so it is not scored.")
    if status == STATUS_CONVERTED_IN_WINDOW:
        reason = f"already converted within its first {window} clicks"
        return SessionStart(key, None, f"Session {key} {reason}, so the model does not score it.")
    features = windowed.features
    values = {name: features.at[key, name].item() for name in features.columns}  # plain int or float
    converted = bool(windowed.converted[key])
    basket = float(windowed.basket_value[key])
    outcome = f"it converted later (basket ${basket:,.2f})" if converted else "it did not convert"
    message = f"Session {key}: its first {window} of {clicks} clicks; {outcome}."
    return SessionStart(key, values, message, converted, basket)
