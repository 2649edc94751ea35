"""Conversion label definitions: the one module that says what "converted" means.

When the events include purchases, a session *converts* when it purchases, and
its revenue (the *basket value*) is the sum of its purchase prices, or of the
source's revenue column where it has one: "Conversion (purchases)".

The bundled UCI file records views only, so there the label is a proxy for
purchase intent: a session *converts* when it views a product it has already
viewed in the same session (a re-view), and its basket value is the sum of the
prices of the distinct products that were re-viewed: "Conversion (proxy)". When
the input carries a real ``converted`` (and optionally ``revenue``) column, that
is used instead.

Each definition also says at which click a session converted, so the early
prediction task can leave out sessions that converted inside the window.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.data import schema as S
from ml.data.clicks import IndexedClicks

TARGET_CONVERTED = "converted"
TARGET_BASKET = "basket_value"
NEVER = np.iinfo(np.int64).max  # conversion rank for sessions that never convert (or unknown)


@dataclass(frozen=True)
class SessionTargets:
    """Per-session targets, aligned with ``IndexedClicks.session_ids``."""

    converted: np.ndarray  # bool
    basket_value: np.ndarray  # float, 0 where not converted
    conversion_rank: np.ndarray  # 0-based click at which it converted, NEVER if not / unknown
    definition: LabelDefinition


@dataclass(frozen=True)
class LabelDefinition:
    """A named way of deriving ``converted`` and ``basket_value`` from clicks."""

    name: str
    title: str  # short, for the UI ("Conversion (proxy)")
    converted_text: str
    basket_text: str
    compute: Callable[[IndexedClicks], tuple[np.ndarray, np.ndarray, np.ndarray]]
    is_proxy: bool = True

    def targets(self, indexed: IndexedClicks) -> SessionTargets:
        converted, basket, rank = self.compute(indexed)
        return SessionTargets(converted=converted, basket_value=basket, conversion_rank=rank, definition=self)

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "title": self.title,
            "converted": self.converted_text,
            "basket_value": self.basket_text,
            "is_proxy": self.is_proxy,
        }


def _first_review_rank(indexed: IndexedClicks) -> np.ndarray:
    rank = np.full(indexed.n_sessions, NEVER, dtype=np.int64)
    review_pos = np.flatnonzero(indexed.is_review)
    if len(review_pos):
        sessions = indexed.session[review_pos]
        first = ~pd.Series(sessions).duplicated(keep="first").to_numpy()
        rank[sessions[first]] = indexed.rank[review_pos[first]]
    return rank


def _reviewed_basket(indexed: IndexedClicks) -> np.ndarray:
    """Sum of prices of the distinct models each session re-viewed."""
    review_pos = np.flatnonzero(indexed.is_review)
    basket = np.zeros(indexed.n_sessions, dtype=np.float64)
    if len(review_pos):
        n_models = int(indexed.product_code.max()) + 1
        keys = indexed.session[review_pos] * n_models + indexed.product_code[review_pos]
        distinct = review_pos[~pd.Series(keys).duplicated(keep="first").to_numpy()]
        price = np.nan_to_num(indexed.column(S.PRICE)[distinct])
        basket += np.bincount(indexed.session[distinct], weights=price, minlength=indexed.n_sessions)
    return basket


def _review_proxy(indexed: IndexedClicks) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rank = _first_review_rank(indexed)
    return rank != NEVER, _reviewed_basket(indexed), rank


def _input_label(indexed: IndexedClicks) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    converted = np.maximum.reduceat(indexed.column(S.LABEL_CONVERTED), indexed.starts) > 0
    if S.LABEL_REVENUE in indexed.source:
        basket = np.maximum.reduceat(indexed.column(S.LABEL_REVENUE, np.float64), indexed.starts)
    else:
        basket = _reviewed_basket(indexed)
    basket = np.where(converted, basket, 0.0)
    # When the purchase happened is not recorded, so no session is known to convert in the window.
    return converted, basket, np.full(indexed.n_sessions, NEVER, dtype=np.int64)


REVIEW_PROXY = LabelDefinition(
    name="review",
    title="Conversion (proxy)",
    converted_text=(
        "proxy for purchase intent: the session views a clothing model it has already viewed "
        "in the same session (a re-view)"
    ),
    basket_text="proxy: sum of the prices (USD) of the distinct models that were re-viewed; 0 otherwise",
    compute=_review_proxy,
)
INPUT_LABEL = LabelDefinition(
    name="input",
    title="Conversion (from file)",
    converted_text="the input file's 'converted' column (1 if any click of the session says 1)",
    basket_text="the input file's 'revenue' column where given, else the re-view proxy; 0 if not converted",
    compute=_input_label,
    is_proxy=False,
)


def _unlabelled(indexed: IndexedClicks) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = indexed.n_sessions
    return np.zeros(n, dtype=bool), np.zeros(n), np.full(n, NEVER, dtype=np.int64)


# For scoring with a model trained on real labels: nothing is known about conversion in the file.
UNLABELLED = LabelDefinition(
    name="none",
    title="Conversion (unknown)",
    converted_text="not known for this file",
    basket_text="not known for this file",
    compute=_unlabelled,
    is_proxy=False,
)


def _purchases(indexed: IndexedClicks) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Converted = any purchase event; revenue = its purchase prices (or revenue column) summed; rank = first."""
    bought = np.flatnonzero(indexed.event == S.EVENT_PURCHASE)
    n = indexed.n_sessions
    rank = np.full(n, NEVER, dtype=np.int64)
    basket = np.zeros(n, dtype=np.float64)
    if len(bought):
        sessions = indexed.session[bought]
        np.minimum.at(rank, sessions, indexed.rank[bought])
        amount = indexed.at(S.PRICE, bought, np.float64)
        if S.LABEL_REVENUE in indexed.source:
            revenue = indexed.at(S.LABEL_REVENUE, bought, np.float64)
            amount = np.where(np.isnan(revenue), amount, revenue)
        basket = np.bincount(sessions, weights=np.nan_to_num(amount), minlength=n)
    return rank != NEVER, basket, rank


PURCHASES = LabelDefinition(
    name="purchases",
    title="Conversion (purchases)",
    converted_text="the session has at least one purchase event",
    basket_text="the sum of the session's purchase prices (or of the source's revenue column where it has one)",
    compute=_purchases,
    is_proxy=False,
)
DEFINITIONS: Mapping[str, LabelDefinition] = {d.name: d for d in (REVIEW_PROXY, INPUT_LABEL, PURCHASES)}
DEFAULT_DEFINITION = REVIEW_PROXY.name


def label_source(definition: LabelDefinition) -> str:
    """Where the label comes from: "proxy", "purchases" or "input" (a label column)."""
    if definition.is_proxy:
        return "proxy"
    return "purchases" if definition.name == PURCHASES.name else "input"


def has_purchases(clicks: pd.DataFrame) -> bool:
    """True when the events include at least one purchase."""
    return S.EVENT_TYPE in clicks and bool((clicks[S.EVENT_TYPE].to_numpy() == S.EVENT_PURCHASE).any())


def choose_definition(clicks: pd.DataFrame, requested: str | None = None) -> LabelDefinition:
    """The definition to use: a real label column, else purchases when there are any, else the proxy."""
    if requested is not None:
        if requested not in DEFINITIONS:
            raise ValueError(f"unknown label definition {requested!r}; choose from {sorted(DEFINITIONS)}")
        if requested == INPUT_LABEL.name and S.LABEL_CONVERTED not in clicks:
            raise ValueError("label definition 'input' needs a 'converted' column in the data")
        if requested == PURCHASES.name and not has_purchases(clicks):
            raise ValueError("label definition 'purchases' needs purchase events in the data")
        return DEFINITIONS[requested]
    if S.LABEL_CONVERTED in clicks:
        return INPUT_LABEL
    return PURCHASES if has_purchases(clicks) else REVIEW_PROXY


def definition_for_scoring(clicks: pd.DataFrame, trained_with: str) -> LabelDefinition:
    """How to tell, in a file to score, which sessions already converted inside the window.

    A model trained on the re-view proxy applies the proxy to the file, one
    trained on purchases looks for purchases in the file; a model trained on a
    label column uses the file's label if it has one, else nothing is known.
    """
    if trained_with in (REVIEW_PROXY.name, PURCHASES.name):
        return DEFINITIONS[trained_with]
    return INPUT_LABEL if S.LABEL_CONVERTED in clicks else UNLABELLED


def session_targets(indexed: IndexedClicks, definition: LabelDefinition | None = None) -> SessionTargets:
    """Targets for every session under ``definition`` (default: chosen from the columns)."""
    definition = definition or choose_definition(indexed.source)
    return indexed.once(("targets", definition), lambda: definition.targets(indexed))
