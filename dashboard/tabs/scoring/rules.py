"""Which model scores and whom to target: the pinned scoring model and the decision rule.

The dataset's scoring model is pinned (``ml.serving.scoring``): the dropdown
shows it, marks the champion, and choosing another run pins that one. The rule
is a capacity ("the top N% of sessions") or the saved threshold; its held-out
numbers come from the classifier's metadata, and once a file is scored the
note also says how many of its sessions the rule targets.
"""

from __future__ import annotations

import math

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard import ids
from ml.errors import ArtifactError, NoModelError
from ml.models.capacity import at_share
from ml.serving.registry import Registry
from ml.serving.scoring import RULE_CAPACITY, RULE_THRESHOLD, pin_model, scoring_choice
from ml.tasks import CLASSIFICATION

DEFAULT_CAPACITY = 10  # percent
RULE_OPTIONS = (
    (RULE_CAPACITY, "Capacity: the top N% of scored sessions"),
    (RULE_THRESHOLD, "Threshold: P(convert) at or above the model's saved threshold"),
)


def model_choices(registry: Registry) -> tuple[list[dict], str | None]:
    """The classifiers that can score (in use, plus the pinned run if it is an earlier one) and the one in use."""
    try:
        choice = scoring_choice(registry)
    except NoModelError:
        return [], None
    runs = [r for r in registry.latest_per_model(CLASSIFICATION) if r.metadata is not None]
    if choice.run.run_id not in {r.run_id for r in runs}:
        runs.append(choice.run)
    options = []
    for run in runs:
        meta = run.metadata or {}
        tags = []
        if run.run_id == choice.run.run_id and choice.pinned:
            tags.append("pinned")
        if run.run_id == choice.champion.run_id:
            tags.append("★ champion")
        label = f"{meta.get('title', run.model)} · k={meta.get('window')} · AUC {run.metric('roc_auc'):.3f}"
        label += f" · {run.created:%Y-%m-%d %H:%M}" + (f" ({', '.join(tags)})" if tags else "")
        options.append({"label": label, "value": run.run_id})
    return options, choice.run.run_id


def pin_choice(registry: Registry, run_id: str | None, by: str | None) -> bool:
    """Pin a run the user chose (not the one already in use); true when the pin changed."""
    if not run_id:
        return False
    try:
        if scoring_choice(registry).run.run_id == run_id:
            return False
        pin_model(registry, run_id, by)
    except (NoModelError, ArtifactError):
        return False
    return True


def model_note(info: dict | None) -> list:
    """Which model scores this dataset, whether it is pinned, a newer champion, and the basket model."""
    if info is None:
        return []
    pinned = "pinned for this dataset" if info["pinned"] else "the champion; it is pinned when you score"
    lines = [
        html.Div(
            [
                "Scoring with ",
                html.Strong(info["model"], **{"data-scoring-model": info["run_id"]}),
                f" (run {info['run_id']}, window k = {info['window']}), {pinned}.",
            ]
        )
    ]
    if info.get("pin_note"):
        lines.append(html.Div(info["pin_note"].capitalize() + ".", className="text-warning-emphasis"))
    if info.get("champion"):
        lines.append(
            html.Div(
                f"A newer training run made {info['champion']} the champion; scoring stays with the pinned model "
                "until you choose another above.",
                className="text-body-secondary",
            )
        )
    if not info.get("basket_model"):
        lines.append(
            html.Div(
                f"No basket-value model was trained with a {info['window']}-click window: scores come without basket "
                "value or expected revenue.",
                className="text-warning-emphasis",
            )
        )
    return lines


def rule_note(
    registry: Registry, run_id: str | None, rule: str | None, percent: float | None, result: dict | None
) -> list:
    """What the rule flags on the model's held-out sessions, and on the scored file when there is one."""
    if not run_id:
        return []
    try:
        run = registry.find(run_id)
    except ArtifactError:
        return []
    meta = run.metadata or {}
    share = float(percent or DEFAULT_CAPACITY) / 100
    lines = []
    if rule == RULE_THRESHOLD:
        held = meta.get("threshold_rule")
        if held:
            lines.append(
                f"On held-out sessions the threshold {held['threshold']:.3f} flags {held['share']:.0%} "
                f"({held['flagged']:,} of {held['sessions']:,}): {held['converted']:,} conversions expected, "
                f"precision {held['precision']:.1%}, lift {held['lift']:.2f}×."
            )
    elif meta.get("capacity"):
        row = at_share(meta["capacity"], share)
        lines.append(
            f"On held-out sessions the top {row['share']:.0%} (P ≥ {row['threshold']:.3f}) holds "
            f"{row['converted']:,} of the {row['flagged']:,} flagged converting: precision {row['precision']:.1%}, "
            f"lift {row['lift']:.2f}× over the {row['base_rate']:.1%} base rate."
        )
    if result and result.get("ok") and result.get("target_counts"):
        counts = result["target_counts"]
        scored = result["summary"]["status_counts"].get("scored", 0)
        n = counts["threshold"] if rule == RULE_THRESHOLD else math.ceil(share * scored)
        lines.append(f"In the scored file this rule targets {min(n, scored):,} of {scored:,} scored sessions.")
    return [html.Div(line) for line in lines]


def rule_card() -> dbc.Card:
    """The scoring model (pinned), the decision rule, and the ranked target list download."""
    return dbc.Card(
        [
            dbc.CardHeader(html.H6("Scoring model and decision rule", className="mb-0")),
            dbc.CardBody(
                [
                    dbc.Label(
                        "Scoring model for this dataset (choosing one pins it)", html_for=ids.SCORING_MODEL_DROPDOWN
                    ),
                    dcc.Dropdown(id=ids.SCORING_MODEL_DROPDOWN, clearable=False, placeholder="No trained model yet"),
                    html.Div(id=ids.SCORING_MODEL_NOTE, className="small text-muted mt-1 mb-2"),
                    dbc.Label("Whom to target", html_for=ids.SCORING_RULE_RADIO, className="mb-0"),
                    dbc.RadioItems(
                        id=ids.SCORING_RULE_RADIO,
                        options=[{"label": text, "value": key} for key, text in RULE_OPTIONS],
                        value=RULE_CAPACITY,
                        className="small",
                    ),
                    dbc.Label(
                        "Capacity: target the top N% of sessions",
                        html_for=ids.SCORING_CAPACITY_SLIDER,
                        className="small mb-0 mt-1",
                    ),
                    dcc.Slider(
                        id=ids.SCORING_CAPACITY_SLIDER,
                        min=1,
                        max=100,
                        step=1,
                        value=DEFAULT_CAPACITY,
                        marks={p: f"{p}%" for p in (1, 10, 25, 50, 100)},
                        tooltip={"placement": "bottom", "template": "top {value}%"},
                    ),
                    html.Div(id=ids.SCORING_RULE_NOTE, className="small text-muted", **{"aria-live": "polite"}),
                ]
            ),
        ],
        className="mb-3",
    )
