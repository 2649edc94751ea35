"""The segments tab's views: settings from the controls, everything a setting shows, what-if starts, downloads.

Each function takes the app context and the dataset key (from the app-level
dataset store, or carried in a card button's ID) and returns what a callback
outputs; none fits anything that the run cache or the disk cache already holds.
"""

from __future__ import annotations

import re

import pandas as pd
from dash import dcc, no_update

from dashboard.context import AppContext
from dashboard.figures.segments import (
    CardContext,
    metric_tiles,
    projection_figure,
    segment_cards,
    silhouette_figure,
)
from dashboard.tabs.segments.champion import champion_scores, lift_table
from dashboard.tabs.whatif import TAB_ID as WHATIF_TAB_ID
from ml.data.export import to_csv_text
from ml.features.kpis import codebook_of, dimension_title
from ml.features.labels import TARGET_BASKET, TARGET_CONVERTED
from ml.features.prepared import PreparedData
from ml.models.segment_runs import SegmentRun, SegmentSetting, segment_base, segment_run
from ml.models.segments import DEFAULT_MIN_SAMPLES

KMEANS, DBSCAN = "kmeans", "dbscan"
EPS_RANGE = (0.3, 3.0, 0.05)
MIN_SAMPLES_RANGE = (5, 100)
CAPACITY_RANGE = (1, 50)  # percent of sessions targeted
DEFAULT_CAPACITY = 10


def cache_dir(context: AppContext):
    """Where fitted segment runs are kept on disk, per dataset key and data hash."""
    return context.settings.cache_dir / "segments"


def base_for(context: AppContext, key: object):
    return segment_base(context.dataset(key), context.settings.seed, cache_dir(context))


def default_eps(context: AppContext, key: object = None) -> float:
    """The k-distance eps of the data, on the slider's grid."""
    low, high, step = EPS_RANGE
    eps = base_for(context, key).default_eps
    return round(min(max(round(eps / step) * step, low), high), 2)


def setting_from_inputs(
    context: AppContext,
    method: str | None,
    k: int | None,
    eps: float | None,
    min_samples: int | None,
    key: object = None,
) -> SegmentSetting:
    """The setting the controls describe; anything missing falls back to the defaults."""
    if method == DBSCAN:
        return SegmentSetting.dbscan(eps or default_eps(context, key), min_samples or DEFAULT_MIN_SAMPLES)
    return SegmentSetting.kmeans(k or base_for(context, key).best_k)


def run_for(context: AppContext, setting: SegmentSetting, key: object = None) -> SegmentRun:
    data = context.dataset(key)
    return segment_run(data, setting, context.settings.window, context.settings.seed, cache_dir(context))


def warm(context: AppContext, key: object = None) -> SegmentRun:
    """Build (or read from disk) what the tab's first visit shows: the base and the default K-Means run."""
    return run_for(context, setting_from_inputs(context, None, None, None, None, key), key)


def _capacity(capacity: float | None) -> float:
    low, high = CAPACITY_RANGE
    value = capacity if isinstance(capacity, int | float) else DEFAULT_CAPACITY
    return min(max(float(value), low), high) / 100


def card_context(context: AppContext, key: object, run: SegmentRun, capacity: float | None) -> CardContext:
    """What the cards say beyond the run: the label, the champion's P and lift at the chosen capacity."""
    data = context.dataset(key)
    scores = champion_scores(context, key)
    share = _capacity(capacity)
    lift = lift_table(scores, run, share) if scores is not None else None
    p_start = {}
    if scores is not None:
        for seg, session in (run.representatives or {}).items():
            p_start[seg] = scores.p_of(session) if session is not None else None
    return CardContext(
        overall_rate=float(data.sessions[TARGET_CONVERTED].mean()),
        conversion_title=data.definition.title,
        revenue_title="Revenue / session" if data.has_purchases else "Potential revenue / session",
        dimension_title=_dimension_title(run),
        dataset=str(context.known(key)),
        share=share,
        lift=lift,
        model_title=scores.title if scores is not None else None,
        population=scores.population if scores is not None else None,
        p_start=p_start,
        model_window=scores.window if scores is not None else None,
        codebooks=dict(data.codebooks),
    )


def _dimension_title(run: SegmentRun) -> str:
    """The plural name of the dimension the cards list top values of ("Countries", "Main brands")."""
    dimension = run.profiles.attrs.get("dimension")
    if not dimension:
        return "Values"
    title = dimension_title(dimension)
    return title[:-1] + "ies" if title.endswith("y") else title + "s"


def capacity_note(cards: CardContext) -> str:
    """The line under the capacity slider: what the rule flags overall, or why there is no lift."""
    if cards.lift is None:
        return (
            "No model is trained on this dataset yet: train one on the leaderboard to see, per segment, "
            "how many sessions a capacity rule reaches and how well they convert."
        )
    totals = cards.lift.attrs
    return (
        f"Top {cards.share:.0%} by P(convert) of {cards.model_title}: P ≥ {totals['threshold']:.2f}; "
        f"{totals['flagged']:,} sessions flagged, {totals['precision']:.1%} of them converted after the first "
        f"{cards.model_window} clicks (base rate {totals['base_rate']:.1%}, lift {totals['lift']:.2f}×), "
        f"on {cards.population}."
    )


def segments_view(context: AppContext, setting: SegmentSetting, key: object = None, capacity=None) -> tuple:
    """Everything a setting shows (the body of the main callback)."""
    data = context.dataset(key)
    run = run_for(context, setting, key)
    base = base_for(context, key)
    cards_context = card_context(context, key, run, capacity)
    cards, others = segment_cards(run, cards_context)
    kind = "proxies" if data.definition.is_proxy else "from the data"
    revenue = data.sessions[TARGET_BASKET].mean()
    timing = (
        f"Read from the disk cache (computed in {run.seconds:.2f} s)"
        if run.from_disk
        else f"Computed in {run.seconds:.2f} s and kept for this setting"
    )
    note = (
        f"{run.note}. {timing}. {data.definition.title} and revenue are {kind}; all sessions: "
        f"{cards_context.overall_rate:.1%} converted, ${revenue:,.2f} revenue per session."
    )
    current_k = setting.k if setting.method == KMEANS else None
    return (
        projection_figure(run.display, run.profiles["persona"].to_dict(), base.explained),
        silhouette_figure(base.silhouette_by_k, base.best_k, current_k),
        metric_tiles(run),
        note,
        cards,
        others,
        capacity_note(cards_context),
    )


def _setting_of(button: dict) -> SegmentSetting:
    return SegmentSetting(button["method"], button["k"], button["eps"], button["min_samples"])


def whatif_choice(
    context: AppContext, setting: SegmentSetting, segment: int, key: object = None
) -> dict[str, object] | None:
    """The small JSON the what-if tab starts from: the segment, its persona and its representative session."""
    run = run_for(context, setting, key)
    if segment not in run.profiles.index or run.typical[segment] is None:
        return None
    row = run.profiles.loc[segment]
    session = (run.representatives or {}).get(segment)
    return {
        "method": setting.method,
        "params": setting.params,
        "segment": int(segment),
        "persona": str(row.persona),
        "sessions": int(row.sessions),
        "window": run.window,
        "typical": run.typical[segment],
        "session_id": session if isinstance(session, int | str) else str(session),
        "conversion_rate": round(float(row.conversion_rate), 4),
        "dataset": str(context.known(key)),
    }


def open_whatif(context: AppContext, trigger: dict | None) -> tuple:
    """Store the clicked segment's choice and switch to the what-if tab.

    ``trigger`` is the button that fired: ``{"id": open_button_id(...), "value": n_clicks}``.
    Buttons that just appeared (or went) with the cards fire with ``n_clicks`` None; they change nothing.
    """
    if not trigger or not trigger.get("value"):
        return no_update, no_update
    button = trigger["id"]
    choice = whatif_choice(context, _setting_of(button), int(button["segment"]), button.get("dataset"))
    if choice is None:
        return no_update, no_update
    return choice, WHATIF_TAB_ID


def _decoded(data: PreparedData, sessions: pd.DataFrame) -> pd.DataFrame:
    """The session rows with each coded column (main category, dimensions) beside its label."""
    out = sessions.reset_index()
    for column in [c for c in sessions.columns if c.startswith("main_") or c == "country"]:
        book = data.codebooks.get(codebook_of(column), {})
        if book:
            labels = [book.get(int(code), f"code {int(code)}") for code in sessions[column]]
            out.insert(out.columns.get_loc(column) + 1, f"{column}_label", labels)
    return out


def segment_sessions(context: AppContext, setting: SegmentSetting, segment: int, key: object = None) -> pd.DataFrame:
    """One segment's sessions: the session table's rows, decoded, with the segment and the champion's P."""
    data = context.dataset(key)
    run = run_for(context, setting, key)
    mask = run.labels == segment
    table = _decoded(data, data.sessions[mask])
    table.insert(1, "segment", segment)
    table.insert(2, "persona", str(run.profiles.loc[segment, "persona"]) if segment in run.profiles.index else "")
    scores = champion_scores(context, key)
    if scores is not None:
        p = pd.Series(scores.p, index=scores.session_ids)
        table["p_convert"] = p.reindex(data.sessions.index[mask]).round(6).to_numpy()
    return table


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "segment"


def download_segment(context: AppContext, trigger: dict | None) -> dict | object:
    """The clicked card's segment as a CSV download (formulas neutralised), or no update."""
    if not trigger or not trigger.get("value"):
        return no_update
    button = trigger["id"]
    key = button.get("dataset")
    setting, segment = _setting_of(button), int(button["segment"])
    table = segment_sessions(context, setting, segment, key)
    persona = str(table["persona"].iloc[0]) if len(table) else "segment"
    name = f"{context.known(key)}-segment-{segment}-{_slug(persona)}.csv"
    return dcc.send_string(to_csv_text(table), name)
