"""The one MLP forward pass of every policy, and a small multi-output MLP fitted in numpy.

:func:`forward` serves every network a policy holds: the MLP router's quality model, the exported actor of a learned
policy (PPO, MaskablePPO) and the memory tier MLP. Layers are ``(W (in, out), b (out,))`` pairs; hidden layers take
an activation (``tanh``, ``relu`` or ``identity``), the last layer is linear. :func:`fit_mlp` trains the MLP router
(ReLU hidden layer, sigmoid outputs, cross-entropy, Adam, early stopping). numpy only (no torch at fit or serving
time), seeded, and small enough to train on a few thousand queries in seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _sigmoid(z: np.ndarray) -> np.ndarray:
    out: np.ndarray = 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free logistic
    return out


ACTIVATIONS = ("tanh", "relu", "identity")
Layers = Sequence[tuple[np.ndarray, np.ndarray]]


def _act(h: np.ndarray, activation: str) -> np.ndarray:
    if activation == "tanh":
        np.tanh(h, out=h)
    elif activation == "relu":
        np.maximum(h, 0.0, out=h)
    return h


def forward(layers: Layers, x: np.ndarray, *, activation: str = "tanh", bufs: Sequence[np.ndarray] | None = None
            ) -> np.ndarray:
    """The network's outputs (logits) for ``x`` ``(d,)`` or ``(n, d)``; float32 arithmetic.

    ``bufs`` (one float32 array per layer, shaped like its output) makes a one-row pass allocation-free: the
    serving hot path of a learned policy. The result is then the last buffer (copy it to keep it).
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}")
    last = len(layers) - 1
    if bufs is not None:
        h = x
        for i, ((w, b), buf) in enumerate(zip(layers, bufs, strict=True)):
            np.matmul(h, w, out=buf)
            buf += b
            if i < last:
                _act(buf, activation)
            h = buf
        return h
    h = np.asarray(x, dtype=np.float32)
    for i, (w, b) in enumerate(layers):
        h = h @ w + b
        if i < last:
            h = _act(h, activation)
    return h


def check_layers(layers: Layers) -> None:
    """Raise ``ValueError`` unless ``layers`` chain: each ``W`` is 2-D, matches its bias and the previous output."""
    if not layers:
        raise ValueError("a network needs at least one layer")
    for i, (w, b) in enumerate(layers):
        if w.ndim != 2 or b.ndim != 1 or w.shape[1] != b.shape[0]:
            raise ValueError(f"layer {i}: W {w.shape} does not match b {b.shape}")
        if i and w.shape[0] != layers[i - 1][0].shape[1]:
            raise ValueError(f"layer {i} expects {w.shape[0]} inputs, gets {layers[i - 1][0].shape[1]}")


def mlp_forward(layers: Layers, x: np.ndarray) -> np.ndarray:
    """Sigmoid outputs of the MLP router's network for inputs ``x`` ``(n, d)``."""
    return _sigmoid(forward(layers, x, activation="relu").astype(np.float64))


def _bce(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def fit_mlp(
    x: np.ndarray,
    y: np.ndarray,
    *,
    hidden: int = 128,
    epochs: int = 60,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    batch_size: int = 64,
    patience: int = 6,
    holdout: float = 0.15,
    seed: int = 0,
) -> tuple[list[tuple[np.ndarray, np.ndarray]], dict[str, Any]]:
    """Train on ``x`` ``(n, d)`` → ``y`` ``(n, k)`` in [0, 1]; returns the best layers and training facts."""
    rng = np.random.default_rng(seed)
    x = x.astype(np.float32)
    y = y.astype(np.float32)
    n, d = x.shape
    k = y.shape[1]
    perm = rng.permutation(n)
    n_va = max(1, int(n * holdout)) if n >= 20 else 0
    va, tr = perm[:n_va], perm[n_va:]
    params = [
        (rng.standard_normal((d, hidden)).astype(np.float32) * np.float32(np.sqrt(2.0 / max(d, 1)))),
        np.zeros(hidden, dtype=np.float32),
        (rng.standard_normal((hidden, k)).astype(np.float32) * np.float32(np.sqrt(1.0 / hidden))),
        np.log(np.clip(y[tr].mean(axis=0), 1e-3, 1 - 1e-3) / (1 - np.clip(y[tr].mean(axis=0), 1e-3, 1 - 1e-3))).astype(
            np.float32
        ),
    ]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    b1, b2, eps = 0.9, 0.999, 1e-8
    step = 0

    def layers() -> list[tuple[np.ndarray, np.ndarray]]:
        return [(params[0].copy(), params[1].copy()), (params[2].copy(), params[3].copy())]

    best, best_loss, best_epoch, bad = layers(), np.inf, 0, 0
    history: list[float] = []
    for epoch in range(epochs):
        order = rng.permutation(tr)
        for s in range(0, len(order), batch_size):
            bi = order[s : s + batch_size]
            xb, yb = x[bi], y[bi]
            z1 = xb @ params[0] + params[1]
            h = np.maximum(z1, 0.0)
            p = _sigmoid((h @ params[2] + params[3]).astype(np.float64)).astype(np.float32)
            g_out = (p - yb) / np.float32(len(bi) * k)  # d(mean BCE)/d logits
            grads = [
                np.zeros_like(params[0]),
                np.zeros_like(params[1]),
                h.T @ g_out,
                g_out.sum(axis=0),
            ]
            g_h = (g_out @ params[2].T) * (z1 > 0)
            grads[0] = xb.T @ g_h
            grads[1] = g_h.sum(axis=0)
            step += 1
            for i, g in enumerate(grads):
                if i in (0, 2):
                    g = g + np.float32(weight_decay) * params[i]
                m[i] = b1 * m[i] + (1 - b1) * g
                v[i] = b2 * v[i] + (1 - b2) * g * g
                mh = m[i] / (1 - b1**step)
                vh = v[i] / (1 - b2**step)
                params[i] = (params[i] - lr * mh / (np.sqrt(vh) + eps)).astype(np.float32)
        if n_va == 0:
            best, best_epoch = layers(), epoch
            continue
        loss = _bce(mlp_forward(layers(), x[va]), y[va])
        history.append(round(loss, 5))
        if loss < best_loss - 1e-5:
            best, best_loss, best_epoch, bad = layers(), loss, epoch, 0
        else:
            bad += 1
            if bad >= patience:
                break
    info = {
        "best_epoch": best_epoch + 1,
        "holdout_bce": None if n_va == 0 else round(float(best_loss), 5),
        "holdout_history": history,
    }
    return best, info


__all__ = ["ACTIVATIONS", "check_layers", "fit_mlp", "forward", "mlp_forward"]
