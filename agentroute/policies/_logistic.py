"""L2-penalised logistic regression of fractional outcomes on sparse TF-IDF rows, by L-BFGS in numpy alone.

The text router's word model when ``link="logistic"``: per option, ``p̂ = σ(x · w + b)`` minimising
scikit-learn's ``LogisticRegression`` objective ``Σ_i [−q_i log p̂_i − (1 − q_i) log(1 − p̂_i)] + ‖w‖² / (2C)``
(the intercept not penalised; a fractional outcome ``q`` counts as ``q`` of a success and ``1 − q`` of a failure).
On 0/1 outcomes a logistic link ranks queries better than a ridge on the same rows (ridge spends its fit on the
many easy queries every model answers; see ``benchmarks/frontier.py``). The options' objectives are independent;
they are solved together (one L-BFGS over all columns, the products shared), each column stopping the solve only
when all have converged. ``start`` warm-starts a solve from a nearby penalty's weights.
"""

from __future__ import annotations

import numpy as np

from agentroute._tfidf import SparseRows

MAX_ITER = 500
HISTORY = 10


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """``a · b`` of two vectors without BLAS (a threaded BLAS dot of 10⁵ floats costs ~10 ms on a busy machine)."""
    return float(np.einsum("i,i->", a, b))


def _loss_grad(x: SparseRows, y: np.ndarray, c: float, w: np.ndarray, b: np.ndarray
               ) -> tuple[float, np.ndarray, np.ndarray]:
    """Objective (scaled by ``1/n``), its gradient in ``w`` ``(d, k)`` and in ``b`` ``(k,)``."""
    n = len(y)
    z = x.dot(w) + b
    # log(1 + e^z) − y z, computed stably
    loss = float((np.logaddexp(0.0, z) - y * z).sum()) / n + _dot(w.ravel(), w.ravel()) / (2.0 * c * n)
    r = (0.5 * (1.0 + np.tanh(0.5 * z)) - y) / n  # σ(z) − y, scaled
    return loss, x.tdot(r) + w / (c * n), r.sum(axis=0)


def fit_logistic(
    x: SparseRows, y: np.ndarray, c: float, start: tuple[np.ndarray, np.ndarray] | None = None, *,
    tol: float = 1e-4, max_iter: int = MAX_ITER,
) -> tuple[np.ndarray, np.ndarray]:
    """Weights ``(d, k)`` and intercepts ``(k,)`` of one L2 logistic regression per column of ``y`` ``(n, k)``.

    ``c`` is scikit-learn's inverse penalty. Stops when every gradient entry is below ``tol`` (scaled by ``1/n``,
    as scikit-learn's ``lbfgs``) or after ``max_iter`` iterations.
    """
    y = np.clip(np.asarray(y, dtype=np.float64).reshape(len(y), -1), 0.0, 1.0)
    d, k = x.n_cols, y.shape[1]
    if start is None:
        m = np.clip(y.mean(axis=0), 1e-6, 1 - 1e-6)
        w, b = np.zeros((d, k)), np.log(m / (1 - m))
    else:
        w, b = start[0].copy(), start[1].copy()
    f, gw, gb = _loss_grad(x, y, c, w, b)
    hist: list[tuple[np.ndarray, np.ndarray, float]] = []
    for _ in range(max_iter):
        g = np.concatenate([gw.ravel(), gb])
        if float(np.abs(g).max()) <= tol:
            break
        # two-loop recursion: direction −H·g
        q = g.copy()
        alphas = []
        for s, yv, rho in reversed(hist):
            a = rho * _dot(s, q)
            alphas.append(a)
            q -= a * yv
        if hist:
            s, yv, _ = hist[-1]
            q *= _dot(s, yv) / _dot(yv, yv)
        else:
            q /= max(float(np.abs(g).max()), 1.0)
        for (s, yv, rho), a in zip(hist, reversed(alphas), strict=True):
            q += (a - rho * _dot(yv, q)) * s
        direction = -q
        slope = _dot(g, direction)
        if slope >= 0:  # not a descent direction (numerical trouble): restart from the gradient
            hist.clear()
            direction, slope = -g, -_dot(g, g)
        step = 1.0
        for _ in range(30):  # backtracking (Armijo)
            w_new = w + step * direction[: d * k].reshape(d, k)
            b_new = b + step * direction[d * k :]
            f_new, gw_new, gb_new = _loss_grad(x, y, c, w_new, b_new)
            if f_new <= f + 1e-4 * step * slope:
                break
            step *= 0.5
        else:
            break  # no decrease possible at this precision: converged as far as floats allow
        s_vec = np.concatenate([(w_new - w).ravel(), b_new - b])
        y_vec = np.concatenate([gw_new.ravel(), gb_new]) - g
        sy = _dot(s_vec, y_vec)
        if sy > 1e-12:
            hist.append((s_vec, y_vec, 1.0 / sy))
            if len(hist) > HISTORY:
                hist.pop(0)
        w, b, f, gw, gb = w_new, b_new, f_new, gw_new, gb_new
    return w, b


def predict_logistic(x: SparseRows, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``σ(x · w + b)`` ``(n, k)``."""
    out: np.ndarray = 0.5 * (1.0 + np.tanh(0.5 * (x.dot(w) + b)))
    return out


__all__ = ["fit_logistic", "predict_logistic"]
