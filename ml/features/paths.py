"""The paths sessions take through the first steps of a visit, as nodes and links for a Sankey chart.

A session's path is the sequence of values of one dimension (main category by
default, or the catalogue page, or any coded column) over its events, with
consecutive repeats merged so that a step is a *move* ("trousers, then
skirts"), not another click in the same place (``merge_repeats=False`` keeps
every event as a step). The first ``steps`` steps are kept; a session whose
path ends earlier moves to the next step's ``exit`` node.

Links leaving a step carry the number of sessions and their share of the
sessions at that step, so the shares of the links leaving each step sum to 1.
To keep the chart readable, values of step 1 seen by fewer than ``min_share``
of sessions become ``other``, and so does the target of every later link
below ``min_share`` of its step: those sessions then continue from the
``other`` node, so every node's sessions still add up. Exits are never
pooled. With purchases in the data, ``purchase_paths`` gives the sessions,
purchasing sessions and purchase rate per path of the first two steps.

Everything here is a plain DataFrame; the figure is drawn in the dashboard.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.data import schema as S
from ml.data.clicks import index_clicks, position_in_group
from ml.features.products import event_types, has_event

DEFAULT_STEPS = 4
DEFAULT_MIN_SHARE = 0.02
NONE, EXIT, OTHER = -1, -2, -3  # path codes: no step (after an exit), exit, pooled values


@dataclass(frozen=True)
class SessionPaths:
    """Sankey inputs: ``nodes`` (node, step, code, label, sessions) and ``links`` (source, target, ...)."""

    nodes: pd.DataFrame
    links: pd.DataFrame
    purchase_paths: pd.DataFrame | None  # None when the data has no purchases
    dimension: str
    steps: int
    sessions: int


def _path_matrix(
    events: pd.DataFrame, dimension: str, steps: int, merge_repeats: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Sessions x steps codes (NONE after the path ends, EXIT at its first missing step) and purchase flags."""
    rows = events[events[dimension].notna().to_numpy()]
    indexed = index_clicks(rows)
    session = indexed.session
    values = indexed.column(dimension).astype(np.int64)
    keep = np.ones(len(values), dtype=bool)
    if merge_repeats and len(values):
        keep[1:] = (values[1:] != values[:-1]) | (session[1:] != session[:-1])
    step_session, step_values = session[keep], values[keep]
    step = position_in_group(step_session)
    paths = np.full((indexed.n_sessions, steps + 1), NONE, dtype=np.int64)
    within = step < steps
    paths[step_session[within], step[within]] = step_values[within]
    length = np.minimum(np.bincount(step_session, minlength=indexed.n_sessions), steps)
    paths[np.arange(indexed.n_sessions), length] = EXIT
    is_purchase = event_types(events) == S.EVENT_PURCHASE
    purchased = indexed.session_ids.isin(events.loc[is_purchase, S.SESSION_ID].unique())
    return paths[:, :steps], np.asarray(purchased)


def _pool_rare(column: np.ndarray, sessions: int, min_share: float) -> np.ndarray:
    """Values of one step seen by fewer than ``min_share`` of the sessions become OTHER."""
    values, counts = np.unique(column[column >= 0], return_counts=True)
    rare = values[counts < min_share * sessions]
    return np.where(np.isin(column, rare), OTHER, column)


def _pool_small_links(paths: np.ndarray, min_share: float) -> np.ndarray:
    """Step by step, the target of every link below ``min_share`` of its step becomes OTHER."""
    paths = paths.copy()
    for step in range(1, paths.shape[1]):
        source, target = paths[:, step - 1], paths[:, step]
        at_step = (source != NONE) & (source != EXIT)
        pairs = pd.DataFrame({"s": source[at_step], "t": target[at_step]})
        share = pairs.groupby(["s", "t"])["t"].transform("size").to_numpy() / at_step.sum()
        small = (share < min_share) & (pairs["t"].to_numpy() >= 0)
        rows = np.flatnonzero(at_step)[small]
        paths[rows, step] = OTHER
    return paths


def _label(code: int, step: int, names: Mapping[int, str], dimension: str) -> str:
    if code == EXIT:
        name = "exit"
    elif code == OTHER:
        name = "other"
    else:
        name = names.get(code, f"{dimension} {code}")
    return f"step {step}: {name}"


def session_paths(
    events: pd.DataFrame,
    dimension: str = S.CATEGORY,
    steps: int = DEFAULT_STEPS,
    min_share: float = DEFAULT_MIN_SHARE,
    merge_repeats: bool = True,
    names: Mapping[int, str] | None = None,
) -> SessionPaths:
    """Nodes, links and purchase rates of the first ``steps`` steps of every session (see module docstring).

    ``names`` label the codes (default: the codebook of ``dimension`` if it has
    one, else "<dimension> <code>"); the caller filters ``events`` beforehand.
    """
    if dimension not in events:
        raise ValueError(f"no column {dimension!r} in the events")
    if steps < 2:
        raise ValueError(f"a path needs at least 2 steps, not {steps}")
    names = dict(S.CODEBOOK.get(dimension, {})) if names is None else dict(names)
    paths, purchased = _path_matrix(events, dimension, steps, merge_repeats)
    n_sessions = len(paths)
    if n_sessions:
        paths[:, 0] = _pool_rare(paths[:, 0], n_sessions, min_share)
        paths = _pool_small_links(paths, min_share)
    node_frames = []
    for step in range(steps):
        codes, counts = np.unique(paths[:, step][paths[:, step] != NONE], return_counts=True)
        order = np.lexsort((codes, codes < 0))  # values first, then "other" and "exit"
        node_frames.append(pd.DataFrame({"step": step + 1, "code": codes[order], "sessions": counts[order]}))
    nodes = pd.concat(node_frames, ignore_index=True)
    nodes["label"] = [_label(c, s, names, dimension) for c, s in zip(nodes["code"], nodes["step"], strict=True)]
    nodes.insert(0, "node", np.arange(len(nodes)))
    node_of = {(s, c): i for i, s, c in zip(nodes["node"], nodes["step"], nodes["code"], strict=True)}
    link_frames = []
    for step in range(1, steps):
        source, target = paths[:, step - 1], paths[:, step]
        at_step = (source != NONE) & (source != EXIT)
        counts = pd.DataFrame({"s": source[at_step], "t": target[at_step]}).value_counts().reset_index(name="sessions")
        counts["step"] = step
        counts["share"] = counts["sessions"] / max(int(at_step.sum()), 1)
        link_frames.append(counts)
    links = pd.concat(link_frames, ignore_index=True)
    links.insert(0, "source", [node_of[(st, s)] for st, s in zip(links["step"], links["s"], strict=True)])
    links.insert(1, "target", [node_of[(st + 1, t)] for st, t in zip(links["step"], links["t"], strict=True)])
    links = links.drop(columns=["s", "t"]).sort_values(["step", "sessions"], ascending=[True, False], ignore_index=True)
    return SessionPaths(
        nodes=nodes[["node", "step", "code", "label", "sessions"]],
        links=links[["source", "target", "step", "sessions", "share"]],
        purchase_paths=_purchase_paths(paths, purchased, nodes) if has_event(events, S.EVENT_PURCHASE) else None,
        dimension=dimension,
        steps=steps,
        sessions=n_sessions,
    )


def _purchase_paths(paths: np.ndarray, purchased: np.ndarray, nodes: pd.DataFrame) -> pd.DataFrame:
    """Sessions, purchasing sessions and purchase rate per (step 1, step 2) path, most sessions first."""
    label = dict(zip(zip(nodes["step"], nodes["code"], strict=True), nodes["label"], strict=True))
    frame = pd.DataFrame({"first": paths[:, 0], "second": paths[:, 1], "purchased": purchased})
    out = frame.groupby(["first", "second"])["purchased"].agg(sessions="size", purchases="sum").reset_index()
    out["purchase_rate"] = out["purchases"] / out["sessions"]
    out["path"] = [
        f"{label[(1, a)].removeprefix('step 1: ')} → {label[(2, b)].removeprefix('step 2: ')}"
        for a, b in zip(out["first"], out["second"], strict=True)
    ]
    out = out.sort_values("sessions", ascending=False, kind="stable", ignore_index=True)
    return out[["path", "first", "second", "sessions", "purchases", "purchase_rate"]]
