"""Float arrays in JSON: float32 bytes as base64 with their shape (policy cards and featurizers store them so)."""

from __future__ import annotations

import base64
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
