"""The model and task nodes of the graph router: model descriptors as fixed-width features, task nodes as means.

A model node is described by its **descriptor**, a small JSON object: ``price`` (all-in USD per million input
tokens; or ``input_price`` + ``output_price``, counted as if a call wrote as many tokens as it read), ``size``
(billions of parameters, a number or text such as ``"70B"``; read from the name when absent), ``provider``,
``family`` and ``description`` (free text). :func:`descriptor_features` turns one into a fixed-width vector: the
log price, the log size and whether it is known, and the hashed words of the name, provider, family and
description (crc32 buckets, so the same descriptor gives the same vector in every process). Nothing is learned per
model name, so a model that was never in a training table is scored from its descriptor alone.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from agentroute.errors import ConfigError

N_HASH = 48
"""Buckets of the hashed descriptor words."""
N_NUMERIC = 3
"""log10 price, log size, size known."""
DIM = N_HASH + N_NUMERIC
_WORD = re.compile(r"[a-z]+|\d+(?:\.\d+)?[bm]?")
_SIZE = re.compile(r"(?<![a-z0-9.])(\d+(?:\.\d+)?)\s*([bm])(?![a-z])", re.IGNORECASE)
KEYS = ("price", "input_price", "output_price", "size", "provider", "family", "description")


def parse_size(value: Any, name: str = "") -> float | None:
    """Billions of parameters from a number, from text like ``"70B"``/``"350M"``, or from the model's name."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) if math.isfinite(value) and value > 0 else None
    for text in (value if isinstance(value, str) else "", name):
        m = _SIZE.search(text)
        if m:
            v = float(m.group(1)) / (1000.0 if m.group(2).lower() == "m" else 1.0)
            if v > 0:
                return v
    return None


def descriptor_price(desc: Mapping[str, Any], name: str) -> float:
    """The all-in USD per million input tokens of a descriptor; :class:`ConfigError` when it gives none."""
    def num(key: str) -> float | None:
        v = desc.get(key)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
            raise ConfigError(f"model {name!r}: descriptor {key}={v!r} is not a price", name=key,
                              hint="give USD per million tokens, a number >= 0")
        return float(v)

    price = num("price")
    if price is None:
        inp, out = num("input_price"), num("output_price")
        if inp is None:
            raise ConfigError(f"model {name!r}: its descriptor has no price", name=name,
                              hint="give price (USD per million input tokens, all-in) or input_price/output_price")
        price = inp + (out or 0.0)
    return price


def check_descriptor(name: str, desc: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-ready copy of ``desc`` with its price set; unknown keys are refused (typos would be silent)."""
    if not isinstance(desc, Mapping):
        raise ConfigError(f"model {name!r}: a descriptor must be a mapping", name=name, hint=f"keys: {', '.join(KEYS)}")
    unknown = sorted(set(desc) - set(KEYS))
    if unknown:
        raise ConfigError(f"model {name!r}: unknown descriptor key(s) {', '.join(unknown)}", name=unknown[0],
                          hint=f"known keys: {', '.join(KEYS)}")
    out = {k: desc[k] for k in KEYS if desc.get(k) is not None}
    for k in ("provider", "family", "description"):
        if k in out and not isinstance(out[k], str):
            raise ConfigError(f"model {name!r}: descriptor {k} must be text", name=k)
    out["price"] = descriptor_price(desc, name)
    out.pop("input_price", None)
    out.pop("output_price", None)
    size = parse_size(out.get("size"), name)
    if size is None:
        out.pop("size", None)
    else:
        out["size"] = size
    return out


def _words(name: str, desc: Mapping[str, Any]) -> list[str]:
    parts = [name, *(str(desc.get(k, "")) for k in ("provider", "family", "description"))]
    text = " ".join(parts)
    return _WORD.findall(text.lower())


def descriptor_features(name: str, desc: Mapping[str, Any]) -> np.ndarray:
    """The raw ``(DIM,)`` feature vector of a checked descriptor (numeric part unscaled)."""
    v = np.zeros(DIM)
    words = _words(name, desc)
    for w in words:
        v[zlib.crc32(w.encode()) % N_HASH] += 1.0
    n = np.linalg.norm(v[:N_HASH])
    if n > 0:
        v[:N_HASH] /= n
    v[N_HASH] = math.log10(float(desc["price"]) + 1e-3)
    size = desc.get("size")
    v[N_HASH + 1] = math.log(float(size)) if size else 0.0
    v[N_HASH + 2] = 1.0 if size else 0.0
    return v


def model_matrix(names: Sequence[str], descs: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """``(n_models, DIM)`` raw features of the model nodes."""
    return np.stack([descriptor_features(n, d) for n, d in zip(names, descs, strict=True)])


def task_nodes(x: np.ndarray, cats: Sequence[str | None]) -> tuple[list[str], np.ndarray]:
    """(task names, each task node's features: the mean of its training queries' features, ``(n_tasks, d)``)."""
    col = [str(c) if c is not None else None for c in cats]
    names = sorted({c for c in col if c is not None})
    out = np.zeros((len(names), x.shape[1]), dtype=np.float32)
    for i, c in enumerate(names):
        out[i] = x[[j for j, cc in enumerate(col) if cc == c]].mean(axis=0)
    return names, out


def one_hop(x: np.ndarray, cats: Sequence[str | None] | None, names: Sequence[str], tasks: np.ndarray,
            overall: np.ndarray) -> np.ndarray:
    """Query node embeddings after one hop: ``[x, its task node]`` (the overall mean for an unknown task)."""
    index = {c: i for i, c in enumerate(names)}
    cats = list(cats) if cats is not None else [None] * len(x)
    rows = np.stack([tasks[index[str(c)]] if c is not None and str(c) in index else overall for c in cats]) \
        if len(x) else np.zeros((0, x.shape[1]), dtype=np.float32)
    return np.hstack([x, rows]).astype(np.float32)


__all__ = ["DIM", "KEYS", "check_descriptor", "descriptor_features", "descriptor_price", "model_matrix", "one_hop",
           "parse_size", "task_nodes"]
