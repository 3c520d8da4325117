"""GraphRouter: routing as edge prediction on a graph of query, task and model nodes.

After GraphRouter (Feng et al., ICLR 2025), compactly. The nodes are the queries (their text features), the tasks
(a query's category; a task node's features are the mean of its training queries') and the models (their
**descriptor**: price, size, provider/family, description text; see :mod:`agentroute.policies._graph_nodes`). A
query–model edge carries what the model did on the query (quality, cost). One hop of message passing gives a query
node ``h = [x, task(x)]``; a model node is ``m`` from its descriptor alone. The edge predictor is a low-rank bilinear
model with node biases,

    q̂(h, m) = σ( (h U) · (m̃ V) + m̃ · w + h · a + c )

trained on every observed edge (cross-entropy, Adam, early stopping on held-out queries); the cost of an edge is the
per-model token-cost line of every table router, and for a model added later its descriptor's price times the
query's estimated input tokens. Routing is ``argmax q̂ − λ · ĉost`` (λ per USD), as for the other table routers.

Because nothing is learned per model name, :meth:`GraphRouter.add_model` adds a model that was never in a training
table by its descriptor, without retraining: it is scored from its price, size and words the moment it is added.
Saved as a card + arrays like the other routers (the descriptors ride in the card).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from agentroute.errors import ConfigError
from agentroute.policies._card import Arrays, Card
from agentroute.policies._graph_nodes import N_HASH, check_descriptor, model_matrix, one_hop, task_nodes
from agentroute.policies._table import CostModel, TableRouter, holdout

if TYPE_CHECKING:
    from agentroute.data.table import RoutingTable


def _sigmoid(z: np.ndarray) -> np.ndarray:
    out: np.ndarray = 0.5 * (1.0 + np.tanh(0.5 * z))
    return out


class GraphRouter(TableRouter):
    """Quality of every query–model edge from the query's and the model's nodes; new models by descriptor.

    ``descriptors`` maps option names to descriptors (see :mod:`agentroute.policies._graph_nodes`); an option without
    one is described by its name and the price it was charged in the training table (USD per million input tokens).
    ``rank`` is the width of the bilinear interaction; training stops early on a 15% holdout of the queries.
    """

    kind = "graph"

    def __init__(
        self,
        rank: int = 16,
        *,
        descriptors: Mapping[str, Mapping[str, Any]] | None = None,
        epochs: int = 60,
        lr: float = 3e-3,
        weight_decay: float = 1e-4,
        batch_size: int = 64,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        if int(rank) < 1:
            raise ConfigError(f"graph router: rank={rank} must be >= 1", name="rank")
        self.rank, self.epochs, self.lr = int(rank), int(epochs), float(lr)
        self.weight_decay, self.batch_size = float(weight_decay), int(batch_size)
        self.given = {str(k): dict(v) for k, v in (descriptors or {}).items()}
        self.descriptors: list[dict[str, Any]] = []
        self.tasks: list[str] = []
        self.task_x = np.zeros((0, 0), dtype=np.float32)
        self.overall = np.zeros(0, dtype=np.float32)
        self.m_mu = np.zeros(0)
        self.m_sd = np.ones(0)
        self.params: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------------ nodes

    def _models(self, names: Sequence[str], descs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        m = model_matrix(names, descs)
        m[:, N_HASH:] = (m[:, N_HASH:] - self.m_mu) / self.m_sd
        return m.astype(np.float32)

    def _queries(self, x: np.ndarray, categories: Sequence[str | None] | None) -> np.ndarray:
        return one_hop(x, categories, self.tasks, self.task_x, self.overall)

    def _logits(self, h: np.ndarray, m: np.ndarray) -> np.ndarray:
        p = self.params
        z: np.ndarray = (h @ p["U"]) @ (m @ p["V"]).T + (m @ p["w"])[None, :] + (h @ p["a"])[:, None] + p["c"][0]
        return z

    # ------------------------------------------------------------------ fitting

    def _fit(self, x: np.ndarray, table: RoutingTable) -> dict[str, Any]:
        unknown = sorted(set(self.given) - set(table.options))
        if unknown:
            raise ConfigError(f"graph router: descriptors for {', '.join(unknown)}, which the table does not have",
                              name=unknown[0], hint="add a new model after fit with add_model(name, descriptor)")
        descs = []
        for j, o in enumerate(table.options):
            d = dict(self.given.get(o, {}))
            if not any(k in d for k in ("price", "input_price")):
                tok = float(np.mean(table.input_tokens[:, j]))
                d["price"] = float(np.mean(table.cost[:, j])) / max(tok, 1e-9) * 1e6
            descs.append(check_descriptor(o, d))
        self.descriptors = descs
        raw = model_matrix(table.options, descs)[:, N_HASH:]
        self.m_mu = raw.mean(axis=0)
        self.m_sd = np.where(raw.std(axis=0) > 1e-9, raw.std(axis=0), 1.0)
        self.tasks, self.task_x = task_nodes(x, table.categories)
        self.overall = x.mean(axis=0).astype(np.float32)
        h = self._queries(x, table.categories)
        m = self._models(table.options, descs)
        return self._train(h, m, table.quality.astype(np.float32))

    def _train(self, h: np.ndarray, m: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        rng = np.random.default_rng(self.seed)
        (n, dh), (k, dm), r = h.shape, m.shape, self.rank
        tr, va = holdout(n, self.seed) if n >= 20 else (np.arange(n), np.zeros(0, dtype=np.int64))
        ybar = float(np.clip(y[tr].mean(), 1e-3, 1 - 1e-3))
        p = {
            "U": (rng.standard_normal((dh, r)) / np.sqrt(max(dh, 1))).astype(np.float32),
            "V": (rng.standard_normal((dm, r)) / np.sqrt(dm)).astype(np.float32),
            "w": np.zeros(dm, dtype=np.float32),
            "a": np.zeros(dh, dtype=np.float32),
            "c": np.array([np.log(ybar / (1 - ybar))], dtype=np.float32),
        }
        self.params = p
        mom = {key: np.zeros_like(v) for key, v in p.items()}
        vel = {key: np.zeros_like(v) for key, v in p.items()}
        step, best, best_loss, best_epoch, bad, history = 0, {kk: v.copy() for kk, v in p.items()}, np.inf, 0, 0, []
        for epoch in range(self.epochs):
            order = rng.permutation(tr)
            for s in range(0, len(order), self.batch_size):
                bi = order[s : s + self.batch_size]
                hb = h[bi]
                hu, mv = hb @ p["U"], m @ p["V"]
                g = (_sigmoid(self._logits(hb, m).astype(np.float64)).astype(np.float32) - y[bi]) / np.float32(
                    len(bi) * k)
                grads = {
                    "U": hb.T @ (g @ mv),
                    "V": m.T @ (g.T @ hu),
                    "w": m.T @ g.sum(axis=0),
                    "a": hb.T @ g.sum(axis=1),
                    "c": np.array([g.sum()], dtype=np.float32),
                }
                step += 1
                for key, gr in grads.items():
                    if key in ("U", "V", "a"):
                        gr = gr + np.float32(self.weight_decay) * p[key]
                    mom[key] = 0.9 * mom[key] + 0.1 * gr
                    vel[key] = 0.999 * vel[key] + 0.001 * gr * gr
                    upd = self.lr * (mom[key] / (1 - 0.9**step)) / (np.sqrt(vel[key] / (1 - 0.999**step)) + 1e-8)
                    p[key] = (p[key] - upd).astype(np.float32)
            if len(va) == 0:
                best, best_epoch = {kk: v.copy() for kk, v in p.items()}, epoch
                continue
            q = np.clip(_sigmoid(self._logits(h[va], m).astype(np.float64)), 1e-6, 1 - 1e-6)
            loss = float(-np.mean(y[va] * np.log(q) + (1 - y[va]) * np.log(1 - q)))
            history.append(round(loss, 5))
            if loss < best_loss - 1e-5:
                best, best_loss, best_epoch, bad = {kk: v.copy() for kk, v in p.items()}, loss, epoch, 0
            else:
                bad += 1
                if bad >= 6:
                    break
        self.params = best
        return {"best_epoch": best_epoch + 1, "holdout_bce": None if len(va) == 0 else round(best_loss, 5),
                "holdout_history": history, "n_tasks": len(self.tasks), "rank": r}

    # ------------------------------------------------------------------ prediction

    def _quality(
        self, x: np.ndarray, texts: Sequence[str], categories: Sequence[str | None] | None = None
    ) -> np.ndarray:
        h = self._queries(x.astype(np.float32), categories)
        return _sigmoid(self._logits(h, self._models(self.options, self.descriptors)).astype(np.float64))

    def add_model(self, name: str, descriptor: Mapping[str, Any]) -> GraphRouter:
        """Add model ``name`` by its descriptor, without retraining: it is scored from the descriptor alone.

        Its cost is the descriptor's ``price`` (USD per million input tokens, all-in; or ``input_price`` +
        ``output_price``) times the query's estimated input tokens. Returns the router.
        """
        self._check()
        assert self.cost_model is not None
        if not isinstance(name, str) or not name:
            raise ConfigError(f"add_model: name {name!r} must be non-empty text", name="name")
        if name in self.options:
            raise ConfigError(f"add_model: {name!r} is already an option", name=name,
                              hint=f"options: {', '.join(self.options)}")
        desc = check_descriptor(name, descriptor)
        self.options = [*self.options, name]
        self.descriptors = [*self.descriptors, desc]
        self.cost_model = CostModel(np.vstack([self.cost_model.coef, [0.0, desc["price"] / 1e6]]))
        return self

    # ------------------------------------------------------------------ persistence

    def _params(self) -> dict[str, Any]:
        return {"rank": self.rank, "epochs": self.epochs, "lr": self.lr, "weight_decay": self.weight_decay,
                "batch_size": self.batch_size, "descriptors": self.descriptors, "tasks": self.tasks}

    def _arrays(self) -> dict[str, np.ndarray]:
        return {**{f"p_{k}": v for k, v in self.params.items()}, "task_x": self.task_x, "overall": self.overall,
                "m_mu": self.m_mu, "m_sd": self.m_sd}

    def _restore(self, arrays: Arrays, params: Card) -> None:
        self.rank = params.whole("rank", lo=1, hi=4096)
        for key in ("epochs", "batch_size"):
            setattr(self, key, params.whole(key, lo=1, hi=2**31))
        self.lr, self.weight_decay = params.num("lr", lo=0.0), params.num("weight_decay", lo=0.0)
        self.given = {}
        raw = params.raw().get("descriptors")
        if not isinstance(raw, list) or len(raw) != len(self.options):
            raise params.error("descriptors", f"must list one descriptor per option ({len(self.options)})")
        try:
            self.descriptors = [check_descriptor(o, d) for o, d in zip(self.options, raw, strict=True)]
        except ConfigError as e:
            raise params.error("descriptors", str(e)) from None
        self.tasks = params.texts("tasks", unique=True)
        d = self.featurizer.dim if self.featurizer is not None else None
        self.task_x = arrays.get("task_x", shape=(len(self.tasks), d), dtype=np.float32)
        self.overall = arrays.get("overall", shape=(d,), dtype=np.float32)
        dh = len(self.overall) * 2
        self.m_mu = arrays.get("m_mu", shape=(None,), dtype=np.float64)
        self.m_sd = arrays.get("m_sd", shape=(len(self.m_mu),), dtype=np.float64)
        dm = N_HASH + len(self.m_mu)
        self.params = {
            "U": arrays.get("p_U", shape=(dh, self.rank), dtype=np.float32),
            "V": arrays.get("p_V", shape=(dm, self.rank), dtype=np.float32),
            "w": arrays.get("p_w", shape=(dm,), dtype=np.float32),
            "a": arrays.get("p_a", shape=(dh,), dtype=np.float32),
            "c": arrays.get("p_c", shape=(1,), dtype=np.float32),
        }


__all__ = ["GraphRouter"]
