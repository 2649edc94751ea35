"""Transition features: how a session moves between its first ``k`` clicks.

The window features of ``ml.features.window`` summarise *what* the first
``k`` clicks viewed (prices, shares, distinct counts); these describe the
*steps* between consecutive clicks: whether the visitor moves to a neighbour
in the catalogue, keeps the colour, switches the photo type, and how the price
moved from the first click to the last. Plus the day of the month, which is
known at the first click.

Everything is computed on ``(sessions x k)`` grids of the first ``k`` clicks
with numpy, so nothing after click ``k`` can reach a feature; a window of one
click has no steps, and its step counts are 0.

The set was chosen by grouped cross-validation on sessions that are in the
training part of every benchmark split (``bench/bench_model_quality.py``);
features that did not help there (page and photo-position moves, price
up/down counts, product numbers themselves, premium-price switches, date
indices) are not computed. The benchmark report lists the numbers.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ml.data import schema as S
from ml.features.specs import FeatureSpec

# Two products are catalogue neighbours when their codes share the letter (the
# category's catalogue) and their numbers differ by at most this much.
CATALOGUE_NEIGHBOUR_DISTANCE = 2
PRODUCT_CODE_PATTERN = r"^([A-Za-z]+)(\d+)$"  # "A13": catalogue letter, catalogue number

TRANSITION_COLUMNS: tuple[str, ...] = (S.CLOTHING_MODEL, S.PRICE, S.COLOUR, S.PHOTOGRAPHY, S.DAY)

TRANSITION_FEATURES: tuple[FeatureSpec, ...] = (
    FeatureSpec(
        "w_catalogue_neighbours",
        "numeric",
        f"Steps to a catalogue neighbour (same letter, at most {CATALOGUE_NEIGHBOUR_DISTANCE} numbers away)",
        integer=True,
    ),
    FeatureSpec("w_price_net_change", "numeric", "Price change, first to last click (USD)"),
    FeatureSpec("w_colour_repeats", "numeric", "Steps that keep the colour", integer=True),
    FeatureSpec("w_photo_switches", "numeric", "Switches between en face and profile photos", integer=True),
    FeatureSpec("day_of_month", "numeric", "Day of month", integer=True),
)
TRANSITION_FEATURE_NAMES = tuple(f.name for f in TRANSITION_FEATURES)


def product_code_parts(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Catalogue letter and number of each product code ("B20" -> "B", 20.0), same shape as ``codes``.

    Codes that are not a letter group followed by digits (another shop's
    product IDs) get the letter "" and the number NaN, so they are never
    anyone's catalogue neighbour. Each distinct code is parsed once.
    """
    codes = np.asarray(codes)
    positions, uniques = pd.factorize(codes.ravel().astype(str))
    parts = pd.Series(uniques, dtype="string").str.extract(PRODUCT_CODE_PATTERN)
    letters = parts[0].fillna("").to_numpy(dtype=object)
    numbers = pd.to_numeric(parts[1], errors="coerce").to_numpy(dtype=np.float64)
    return letters[positions].reshape(codes.shape), numbers[positions].reshape(codes.shape)


def _steps(grid: np.ndarray) -> np.ndarray:
    """Change between consecutive clicks: ``(sessions x k-1)``."""
    return np.diff(np.asarray(grid, dtype=np.float64), axis=1)


def transition_features(
    grids: Mapping[str, np.ndarray], product_parts: tuple[np.ndarray, np.ndarray] | None = None
) -> dict[str, np.ndarray]:
    """The transition features of every session, from ``(sessions x k)`` grids of its first ``k`` clicks.

    ``grids`` maps each name in ``TRANSITION_COLUMNS`` to its grid (row: a
    session; column ``j``: its click ``j``). ``product_parts`` is
    ``product_code_parts`` of the product grid when the caller has it (then the
    product grid itself is not needed). Returns one array per name in
    ``TRANSITION_FEATURE_NAMES``, in that order.
    """
    needed = [name for name in TRANSITION_COLUMNS if name != S.CLOTHING_MODEL or product_parts is None]
    missing = [name for name in needed if name not in grids]
    if missing:
        raise KeyError(f"transition features need grids of {', '.join(missing)}")
    letters, numbers = product_parts if product_parts is not None else product_code_parts(grids[S.CLOTHING_MODEL])
    price = np.asarray(grids[S.PRICE], dtype=np.float64)
    same_letter = letters[:, 1:] == letters[:, :-1]
    with np.errstate(invalid="ignore"):  # NaN numbers (unparsed codes) compare False
        distance = np.abs(_steps(numbers))
        neighbour = same_letter & (distance > 0) & (distance <= CATALOGUE_NEIGHBOUR_DISTANCE)
    return {
        "w_catalogue_neighbours": neighbour.sum(axis=1),
        "w_price_net_change": price[:, -1] - price[:, 0],
        "w_colour_repeats": (_steps(grids[S.COLOUR]) == 0).sum(axis=1),
        "w_photo_switches": (_steps(grids[S.PHOTOGRAPHY]) != 0).sum(axis=1),
        "day_of_month": np.asarray(grids[S.DAY])[:, 0],
    }
