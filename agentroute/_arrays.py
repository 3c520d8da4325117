"""Small numpy helpers the featurizers share.

Float arrays in JSON (float32 bytes as base64 with their shape, as policy cards store them), and the length and
category block every featurizer appends to its text features.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import numpy as np


def encode_array(a: np.ndarray) -> dict[str, Any]:
    """A float32 array as JSON-safe base64 with its shape."""
    arr = np.ascontiguousarray(a, dtype=np.float32)
    return {"shape": list(arr.shape), "b64": base64.b64encode(arr.tobytes()).decode("ascii")}


def decode_array(d: dict[str, Any]) -> np.ndarray:
    """Inverse of :func:`encode_array`."""
    raw = base64.b64decode(d["b64"])
    return np.frombuffer(raw, dtype=np.float32).reshape(d["shape"]).copy()


def length_and_category(texts: Sequence[str], categories: Sequence[str | None] | None, *, length_mean: float,
                        length_std: float, known: Sequence[str]) -> np.ndarray:
    """The standardised log length of each text, then its one-hot category when ``known`` is not empty.

    The category block's last column is for a category not in ``known`` (or none).
    Float64 ``(n, 1 [+ len(known) + 1])``.
    """
    lengths = (np.log1p([len(str(t)) for t in texts]) - length_mean) / length_std
    blocks = [np.asarray(lengths, dtype=np.float64).reshape(-1, 1)]
    if known:
        onehot = np.zeros((len(texts), len(known) + 1))
        index = {c: i for i, c in enumerate(known)}
        for i in range(len(texts)):
            c = categories[i] if categories is not None else None
            onehot[i, index.get(str(c), len(known)) if c is not None else len(known)] = 1.0
        blocks.append(onehot)
    return np.hstack(blocks)
