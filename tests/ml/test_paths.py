"""Session paths for the Sankey: hand-counted flows, shares per step, pooling and purchase rates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.data import schema as S
from ml.features.paths import SessionPaths, session_paths
from tests.ml.factories import make_clicks


def _paths_log(sessions: dict[int, list[int]]) -> pd.DataFrame:
    """Clicks from ``{session_id: [main category of each click]}`` (product ids do not matter here)."""
    return make_clicks(
        {
            sid: [{"page2_clothing_model": f"X{c}", "page1_main_category": c} for c in cats]
            for sid, cats in sessions.items()
        }
    )


HAND = {1: [1, 1, 2, 3], 2: [1, 2], 3: [2], 4: [1, 1, 1]}


def _flows(paths: SessionPaths) -> dict[tuple[str, str], int]:
    label = paths.nodes.set_index("node")["label"]
    return {
        (label[s], label[t]): n
        for s, t, n in zip(paths.links["source"], paths.links["target"], paths.links["sessions"], strict=True)
    }


def _assert_shares_sum_to_one(paths: SessionPaths) -> None:
    sums = paths.links.groupby("step")["share"].sum()
    assert sums.index.min() == 1 and sums.index.max() < paths.steps
    np.testing.assert_allclose(sums.to_numpy(), 1.0)


def _assert_flows_add_up(paths: SessionPaths) -> None:
    """Every node below step 1 receives its sessions; every non-exit node before the last step passes them on."""
    nodes = paths.nodes.set_index("node")
    incoming = paths.links.groupby("target")["sessions"].sum()
    outgoing = paths.links.groupby("source")["sessions"].sum()
    later = nodes[nodes["step"] > 1]
    assert (incoming.reindex(later.index) == later["sessions"]).all()
    passing = nodes[(nodes["step"] < paths.steps) & ~nodes["label"].str.endswith(": exit")]
    assert (outgoing.reindex(passing.index) == passing["sessions"]).all()


def test_flows_match_a_hand_count_with_repeats_merged():
    paths = session_paths(_paths_log(HAND), min_share=0)
    nodes = paths.nodes.set_index("label")["sessions"]
    assert nodes["step 1: trousers"] == 3 and nodes["step 1: skirts"] == 1
    assert nodes["step 2: skirts"] == 2 and nodes["step 2: exit"] == 2
    assert nodes["step 3: blouses"] == 1 and nodes["step 4: exit"] == 1
    assert _flows(paths) == {
        ("step 1: trousers", "step 2: skirts"): 2,
        ("step 1: trousers", "step 2: exit"): 1,
        ("step 1: skirts", "step 2: exit"): 1,
        ("step 2: skirts", "step 3: blouses"): 1,
        ("step 2: skirts", "step 3: exit"): 1,
        ("step 3: blouses", "step 4: exit"): 1,
    }
    shares = paths.links.set_index(["source", "target"])["share"]
    assert shares.iloc[0] == pytest.approx(2 / 4)  # of the 4 sessions at step 1
    assert paths.purchase_paths is None  # views only
    _assert_shares_sum_to_one(paths)
    _assert_flows_add_up(paths)


def test_without_merging_every_click_is_a_step():
    paths = session_paths(_paths_log(HAND), min_share=0, merge_repeats=False)
    assert _flows(paths)[("step 1: trousers", "step 2: trousers")] == 2  # sessions 1 and 4
    _assert_shares_sum_to_one(paths)


def test_rare_values_and_small_links_are_pooled_into_other():
    sessions = {i: [1, 2] for i in range(20)}
    sessions[100] = [3, 2]  # blouses first: 1 session in 22
    sessions[101] = [1, 4]  # trousers then sale: a link of 1 session in 22
    paths = session_paths(_paths_log(sessions), min_share=0.1)
    labels = set(paths.nodes["label"])
    assert "step 1: blouses" not in labels and "step 1: other" in labels
    assert "step 2: sale" not in labels and "step 2: other" in labels
    assert _flows(paths)[("step 1: trousers", "step 2: other")] == 1
    _assert_shares_sum_to_one(paths)
    _assert_flows_add_up(paths)


def test_purchase_rate_per_first_two_step_path():
    clicks = _paths_log({1: [1, 2], 2: [1, 2], 3: [1], 4: [2, 1]})
    events = clicks.assign(**{S.EVENT_TYPE: np.zeros(len(clicks), dtype=np.int8)})
    events.loc[1, S.EVENT_TYPE] = S.EVENT_PURCHASE  # session 1 buys at its second step
    paths = session_paths(events, min_share=0)
    table = paths.purchase_paths.set_index("path")
    assert table.loc["trousers → skirts", "sessions"] == 2
    assert table.loc["trousers → skirts", "purchase_rate"] == pytest.approx(1 / 2)
    assert table.loc["trousers → exit", "purchases"] == 0
    assert table["sessions"].sum() == 4


@pytest.mark.parametrize("dimension", [S.CATEGORY, S.PAGE, S.COLOUR])
def test_shares_sum_to_one_per_step_on_the_bundled_data(bundled_clicks: pd.DataFrame, dimension: str):
    paths = session_paths(bundled_clicks, dimension=dimension, steps=4)
    assert paths.sessions == bundled_clicks[S.SESSION_ID].nunique()
    assert paths.nodes.loc[paths.nodes["step"] == 1, "sessions"].sum() == paths.sessions
    _assert_shares_sum_to_one(paths)
    _assert_flows_add_up(paths)


def test_bad_arguments_are_refused(bundled_clicks: pd.DataFrame):
    with pytest.raises(ValueError, match="no column"):
        session_paths(bundled_clicks.head(10), dimension="device")
    with pytest.raises(ValueError, match="at least 2 steps"):
        session_paths(bundled_clicks.head(10), steps=1)
