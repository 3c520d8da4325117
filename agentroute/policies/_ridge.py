"""The one ridge-regression solver of the policies: one Gram matrix, solved for as many penalties as asked.

Used by the linear and category-prior routers, the memory tier regressions and fitted-Q. With ``intercept=True`` the
inputs and targets are centred, so the intercept is not shrunk (the usual ridge); with ``intercept=False`` every
weight is shrunk (callers that put a bias column in ``x`` on purpose). The system is solved in the primal
(``d × d``) or the dual (``n × n``), whichever is smaller; both give the same weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class Ridge:
    """Ridge fits of any targets on inputs ``x`` ``(n, d)``: build once, call :meth:`weights` per penalty."""

    def __init__(self, x: np.ndarray, *, intercept: bool = True) -> None:
        x = np.asarray(x, dtype=np.float64)
        self.intercept = intercept
        self.mu = x.mean(axis=0) if intercept else np.zeros(x.shape[1])
        self.xc = x - self.mu if intercept else x
        n, d = self.xc.shape
        self.dual = n < d
        self.gram = self.xc @ self.xc.T if self.dual else self.xc.T @ self.xc
        self.eye = np.eye(len(self.gram))

    def weights(self, y: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
        """``(W (d, k), b (k,))`` of the fit of every column of ``y`` ``(n, k)`` with penalty ``alpha``."""
        y = np.asarray(y, dtype=np.float64)
        my = y.mean(axis=0) if self.intercept else np.zeros(y.shape[1:])
        yc = y - my
        if self.dual:
            w = self.xc.T @ np.linalg.solve(self.gram + alpha * self.eye, yc)
        else:  # a Cholesky-backed solve: fast on two cores
            w = np.linalg.solve(self.gram + alpha * self.eye, self.xc.T @ yc)
        return w, my - self.mu @ w


def ridge(x: np.ndarray, y: np.ndarray, alphas: Sequence[float], *, intercept: bool = True
          ) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(W, b)`` of the ridge fit of ``y`` on ``x`` for each penalty in ``alphas``."""
    r = Ridge(x, intercept=intercept)
    return [r.weights(y, float(a)) for a in alphas]


__all__ = ["Ridge", "ridge"]
