"""Codebooks: integer codes for text values, so models use codes and the UI shows labels.

A shop's categories, brands or devices arrive as text. Each distinct value
gets a code, 1 for the most frequent, then 2, ... (ties by label), and code 0
stands for a missing value or, when a file is coded with another dataset's
codebook (scoring with a trained model), a value that dataset never had.
The UCI file keeps its own published codes and codebook.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

NONE_CODE = 0
NONE_LABEL = "(none)"
Codebook = Mapping[int, str]  # code -> label


def build_codebook(labels: np.ndarray, counts: np.ndarray) -> dict[int, str]:
    """Codes by descending frequency (ties by label), with 0 for missing."""
    order = sorted(range(len(labels)), key=lambda i: (-int(counts[i]), str(labels[i])))
    book = {NONE_CODE: NONE_LABEL}
    for code, i in enumerate(order, start=1):
        book[code] = str(labels[i])
    return book


def encode(labels: np.ndarray, codebook: Codebook) -> np.ndarray:
    """The code of each label under ``codebook``; labels it does not hold get ``NONE_CODE``."""
    lookup = {label: code for code, label in codebook.items() if code != NONE_CODE}
    return np.asarray([lookup.get(str(label), NONE_CODE) for label in labels], dtype=np.int64)


def codebook_to_json(codebook: Codebook) -> dict[str, str]:
    """JSON object keys are text; codes come back with ``codebook_from_json``."""
    return {str(int(code)): str(label) for code, label in codebook.items()}


def codebook_from_json(data: Mapping[str, object]) -> dict[int, str]:
    return {int(code): str(label) for code, label in data.items()}


def decode_codes(codes: np.ndarray, codebook: Codebook) -> list[str]:
    """Labels for codes; a code the codebook lacks shows as ``code N``."""
    return [codebook.get(int(c), f"code {int(c)}") for c in codes]


def recode(codes: np.ndarray, source: Codebook, target: Codebook) -> np.ndarray:
    """Codes under ``source`` turned into the codes the same labels have under ``target`` (unseen -> 0)."""
    if dict(source) == dict(target):
        return codes
    lookup = {label: code for code, label in target.items() if code != NONE_CODE}
    top = max(max(source, default=0), int(codes.max()) if len(codes) else 0) + 1
    table = np.zeros(top, dtype=np.int64)
    for code, label in source.items():
        if 0 <= code < top:
            table[code] = lookup.get(label, NONE_CODE)
    return table[np.clip(codes, 0, top - 1)].astype(codes.dtype)


def text_from_codes(
    codes: np.ndarray, labels: Sequence[str] | np.ndarray, dtype: object
) -> pd.api.extensions.ExtensionArray:
    """``pd.array(labels_as_objects[codes], dtype=dtype)`` without a Python string per row.

    When ``dtype`` keeps text in Arrow (pandas' default string types), the
    values are built from the codes as an Arrow dictionary and cast in Arrow;
    otherwise as above. ``labels`` must hold no missing value.
    """
    dtype = pd.api.types.pandas_dtype(dtype)
    objects = np.asarray(labels, dtype=object)
    if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow":
        import pyarrow as pa

        target = pd.array([], dtype=dtype)._pa_array.type  # the Arrow type pandas uses for this text
        dictionary = pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(objects, type=target))
        return pd.array(dictionary.cast(target), dtype=dtype)
    return pd.array(objects[codes], dtype=dtype)
