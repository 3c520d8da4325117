"""``agentroute/GraphRouting-v0``: tasks run through an AgentGraph by the real runtime, one step per routing point.

The environment does not copy the runtime, it drives it. Each episode runs ``app.run(task, policy=bridge)`` in a
daemon worker thread; at every routing point the runtime calls ``bridge.decide(obs)``, which hands the
:class:`~agentroute.routing.Observation` to the environment and blocks until :meth:`GraphRoutingEnv.step` supplies
the action. Budgets, masking, reservations, tier choice and truncation are therefore exactly the runtime's. A
``reset`` in mid-episode aborts the worker (its pending ``decide`` raises a private ``BaseException`` that no
agent's ``except Exception`` can swallow), an error in the worker is re-raised by ``step``, and ``close`` joins it.

Observations are :class:`~agentroute.envs.graph_obs.GraphObsSpec` dicts (query features, budget left per dimension,
step, current agent and point kind one-hot, per-action candidate features); ``action_masks()`` serves MaskablePPO.
An action that is not a candidate falls back to the cheapest candidate and costs ``invalid_action_penalty``.
Rewards (:mod:`.rewards`): ``tradeoff`` charges ``λ·cost`` as it is spent and pays the task's quality at the end;
``budgetmem`` and ``boundary`` score the finished task. Budget exhaustion ends an episode with ``truncated=True``.
**λ (``cost_weight``) is per USD**: costs reach the reward in USD, unless ``cost_unit="scale"`` divides them by the
cost scale (the mean USD cost of a task under always-strongest routing, estimated on the first tasks unless given;
the observation's candidate costs are always in that scale). ``budgetmem`` and ``boundary`` normalise costs
themselves, so for them λ has no unit. Don't give the budget a ``seconds`` limit here: it would count the learner's
time too.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from agentroute.budget import Budget
from agentroute.data import RoutingTable
from agentroute.envs.graph_obs import GraphObsSpec
from agentroute.envs.query_routing import resolve_table
from agentroute.envs.rewards import Boundary, Reward, TradeoffReward, difficulty, make_reward
from agentroute.errors import ConfigError, RunError
from agentroute.policies.baselines import Cheapest, Strongest
from agentroute.routing import Decision, Observation, one_hot

DEFAULT_BUDGET = Budget(usd="0.01", tokens=4000, steps=6)


class _Abort(BaseException):
    """Raised inside the runtime by the bridge when the environment abandons an episode."""


_ABORT = object()


class _Bridge:
    """The policy the runtime calls in the worker: hands each observation over and waits for the env's choice."""

    name = "gym-env"
    version = "1"

    def __init__(self, to_env: queue.Queue[tuple[str, Any]], to_worker: queue.Queue[Any]) -> None:
        self.to_env = to_env
        self.to_worker = to_worker

    def decide(self, obs: Observation) -> Decision:
        self.to_env.put(("decide", obs))
        msg = self.to_worker.get()
        if msg is _ABORT:
            raise _Abort
        return msg  # type: ignore[no-any-return]

    def feedback(self, fb: Any) -> None:
        return None


class _Episode:
    """One task running in a daemon thread, talking to the env through two queues of its own."""

    def __init__(self, app: Any, inputs: Mapping[str, Any], budget: Budget, *, category: str | None, task_id: str):
        self.to_env: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.to_worker: queue.Queue[Any] = queue.Queue()
        bridge = _Bridge(self.to_env, self.to_worker)

        def work() -> None:
            try:
                res = app.run(dict(inputs), budget=budget, policy=bridge, category=category, task_id=task_id)
                self.to_env.put(("done", res))
            except _Abort:
                self.to_env.put(("aborted", None))
            except BaseException as e:  # handed to the env thread, which re-raises it
                self.to_env.put(("error", e))

        self.thread = threading.Thread(target=work, name=f"agentroute-env-{task_id}", daemon=True)
        self.thread.start()

    def next(self, timeout: float) -> tuple[str, Any]:
        try:
            return self.to_env.get(timeout=timeout)
        except queue.Empty:
            raise RunError(
                f"the graph did not reach a routing point or finish within {timeout}s (raise step_timeout)"
            ) from None

    def abort(self, timeout: float = 10.0) -> None:
        if self.thread.is_alive():
            self.to_worker.put(_ABORT)
            self.thread.join(timeout)


def _load_graph(graph: Any) -> Any:
    if graph is None:
        from agentroute.examples import support_graph

        return support_graph()
    if isinstance(graph, str):  # checked to be a graph or an annotated factory before anything is called
        from agentroute.envs.scenario import resolve_graph

        return resolve_graph(graph, where=f"graph={graph[:200]!r}")
    return graph() if callable(graph) and not hasattr(graph, "compile") else graph


class GraphRoutingEnv(gym.Env[dict[str, np.ndarray], np.int64]):
    """Drive the real runtime over a graph's routing points; see the module docstring.

    ``graph``: an ``AgentGraph``, a ``"module:attr"`` (a graph, or a function annotated ``-> AgentGraph``, checked
    before any call: :func:`agentroute.envs.scenario.resolve_graph`), default the support example; ``tasks``
    (input dicts) or ``table``/``builtin`` (a routing table whose texts become tasks), default the support example's
    questions; ``provider`` (default :class:`~agentroute.providers.Simulated`, calibrated on the
    table when it offers ``from_table``); ``budget`` per task; ``featurizer``; ``cost_weight`` or
    ``cost_weight_range`` (observed, drawn per episode; λ per USD unless ``cost_unit="scale"``); ``reward``.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 - gymnasium's convention

    def __init__(
        self,
        graph: Any = None,
        *,
        tasks: Sequence[Mapping[str, Any]] | None = None,
        table: RoutingTable | str | Path | None = None,
        builtin: str | None = None,
        provider: Any = None,
        provider_seed: int = 0,
        budget: Budget | None = DEFAULT_BUDGET,
        featurizer: Any = None,
        cost_weight: float | None = None,
        cost_weight_range: Sequence[float] | None = None,
        reward: str | Reward | dict[str, Any] = "tradeoff",
        reward_kwargs: dict[str, Any] | None = None,
        cost_scale_usd: float | None = None,
        invalid_action_penalty: float = 0.1,
        text_key: str = "question",
        step_timeout: float = 60.0,
        render_mode: str | None = None,
        cost_unit: str = "usd",
    ) -> None:
        if cost_unit not in ("usd", "scale"):
            raise ConfigError(f"cost_unit={cost_unit!r}: use 'usd' (λ per USD) or 'scale' (per cost scale)",
                              name="cost_unit")
        if render_mode is not None:
            raise ConfigError("GraphRouting has no render modes", name="render_mode")
        self.render_mode = render_mode
        self.graph = _load_graph(graph)
        self.table: RoutingTable | None = None
        if tasks is None and (table is not None or builtin is not None):
            self.table = resolve_table(table, builtin)
            tasks = [{text_key: t} for t in self.table.texts]
            self.categories: list[str | None] = list(self.table.categories)
        elif tasks is None:
            from agentroute.examples import support_tasks

            tasks = support_tasks(200, seed=0)
            self.categories = [t.get("category") for t in tasks]
        else:
            self.categories = [t.get("category") for t in tasks]
        self.tasks = [dict(t) for t in tasks]
        if not self.tasks:
            raise ConfigError("GraphRouting needs at least one task", name="tasks")
        if provider is None:
            from agentroute.providers.simulated import Simulated

            from_table = getattr(Simulated, "from_table", None)
            if self.table is not None and from_table is not None:
                provider = from_table(self.table)
            else:
                provider = Simulated(seed=provider_seed)
        self.provider = provider
        self.budget = budget or Budget()
        self.app = self.graph.compile(Cheapest(), provider, budget=self.budget, text_key=text_key)
        self.text_key = text_key
        texts = [str(t.get(text_key, "")) for t in self.tasks]
        if featurizer is None:
            from agentroute.features import HashingFeaturizer

            featurizer = HashingFeaturizer(n_components=min(32, max(1, len(texts) - 1))).fit(texts, self.categories)
        self.featurizer = featurizer
        self._features = np.asarray(featurizer.transform(texts, self.categories), dtype=np.float32)

        if cost_weight is not None and cost_weight_range is not None:
            raise ConfigError("pass cost_weight or cost_weight_range, not both", name="cost_weight")
        if cost_weight_range is None:
            lam = 0.1 if cost_weight is None else float(cost_weight)
            rng = (lam, lam)
        else:
            lo, hi = (float(v) for v in cost_weight_range)
            if not 0.0 <= lo <= hi:
                raise ConfigError(f"cost_weight_range=({lo}, {hi}) must satisfy 0 <= a <= b", name="cost_weight_range")
            rng = (lo, hi)
        self.reward_fn = make_reward(reward, **(reward_kwargs or {}))
        self._tradeoff = type(self.reward_fn) is TradeoffReward
        self.invalid_action_penalty = float(invalid_action_penalty)
        self.step_timeout = float(step_timeout)
        self._bounds: dict[int, Boundary] = {}
        self._bound_cost: dict[int, tuple[float, float]] = {}
        scale = cost_scale_usd if cost_scale_usd is not None else self._estimate_scale()
        self.obs_spec = GraphObsSpec.for_app(
            self.app,
            feature_dim=self._features.shape[1],
            cost_scale_usd=scale,
            max_steps=self.budget.steps or 16,
            observe_cost_weight=rng[0] != rng[1],
            cost_weight_range=rng,
        )
        self.cost_scale = self.obs_spec.cost_scale_usd
        self.cost_unit = cost_unit
        self.cost_unit_usd = 1.0 if cost_unit == "usd" else self.cost_scale
        """USD per unit of cost in rewards: 1 (λ per USD) unless ``cost_unit="scale"``."""
        self.observation_space = self.obs_spec.spaces()
        self.action_space = spaces.Discrete(len(self.obs_spec.actions))
        self._episode: _Episode | None = None
        self._obs: Observation | None = None
        self._enc = self.obs_spec.zeros()
        self._mask = np.ones(len(self.obs_spec.actions), dtype=bool)
        self._lam = rng[0]
        self._i = 0
        self._spent = 0.0
        self._count = 0

    # ------------------------------------------------------------------ boundary rollouts

    def _run_with(self, i: int, policy: Any) -> tuple[float, float]:
        res = self.app.run(dict(self.tasks[i]), budget=self.budget, policy=policy, category=self.categories[i])
        usd = res.spent.usd
        return float(res.quality or 0.0), float(usd) if usd is not None else 0.0

    def boundary(self, i: int) -> Boundary:
        """Always-cheapest and always-strongest outcomes of task ``i`` (costs in the reward's unit; cached)."""
        b = self._bounds.get(i)
        if b is None:
            ql, cl = self._run_with(i, Cheapest())
            qh, ch = self._run_with(i, Strongest())
            s = self.cost_unit_usd
            b = self._bounds[i] = Boundary(ql, cl / s, qh, ch / s)
        return b

    def set_boundary(self, i: int, q_lo: float, usd_lo: float, q_hi: float, usd_hi: float) -> None:
        """Give task ``i`` boundary outcomes already run elsewhere (costs in USD), so they are not run again."""
        s = self.cost_unit_usd
        self._bounds[i] = Boundary(q_lo, usd_lo / s, q_hi, usd_hi / s)

    def _estimate_scale(self) -> float:
        n = min(16, len(self.tasks))
        costs = [self._run_with(i, Strongest())[1] for i in range(n)]
        m = float(np.mean(costs)) if costs else 0.0
        return m if m > 0 else 1.0

    # ------------------------------------------------------------------ episodes

    def _abort(self) -> None:
        if self._episode is not None:
            self._episode.abort()
            self._episode = None
        self._obs = None

    def _set_obs(self, obs: Observation) -> dict[str, np.ndarray]:
        self._obs = obs
        self._enc = self.obs_spec.encode(obs, self._features[self._i], self._lam)
        self._mask = self.obs_spec.mask(obs)
        self._spent = float(obs.budget.spent.usd or 0)
        return {k: v.copy() for k, v in self._enc.items()}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Abandon any running task and start a new one; ``options`` may pin ``task_index`` and ``cost_weight``."""
        super().reset(seed=seed)
        if seed is not None:
            self.reward_fn.reset()
        self._abort()
        opts = options or {}
        lo, hi = self.obs_spec.cost_weight_range
        for _ in range(20):
            self._lam = float(opts.get("cost_weight", self.np_random.uniform(lo, hi) if hi > lo else lo))
            self._i = int(opts["task_index"]) % len(self.tasks) if "task_index" in opts else int(
                self.np_random.integers(len(self.tasks))
            )
            self._count += 1
            ep = _Episode(self.app, self.tasks[self._i], self.budget, category=self.categories[self._i],
                          task_id=f"{self._i}-{self._count}")
            kind, payload = ep.next(self.step_timeout)
            if kind == "decide":
                self._episode = ep
                return self._set_obs(payload), {"task_index": self._i, "cost_weight": self._lam}
            if kind == "error":
                raise payload
        raise ConfigError("20 tasks in a row finished without a routing point", name="tasks",
                          hint="give the graph a route or a model tier choice, and a budget that allows a step")

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Answer the routing point the task is waiting at, then run the task to its next one (or to its end)."""
        ep, obs = self._episode, self._obs
        if ep is None or obs is None:
            raise ConfigError("step() called with no task running", name="step", hint="call reset() first")
        a = int(action)
        penalty = 0.0
        if 0 <= a < len(self._mask) and self._mask[a]:
            cid = self.obs_spec.actions[a]
        else:
            cid = min(obs.candidates, key=lambda c: c.rank).id
            penalty = self.invalid_action_penalty
        ep.to_worker.put(Decision(cid, one_hot(obs, cid), reason=f"env action {a}"))
        before = self._spent
        kind, payload = ep.next(self.step_timeout)
        lam, scale = self._lam, self.cost_unit_usd
        info: dict[str, Any] = {"task_index": self._i, "chosen": cid, "invalid_action": penalty > 0}
        if kind == "decide":
            enc = self._set_obs(payload)
            r = -lam * (self._spent - before) / scale if self._tradeoff else 0.0
            return enc, r - penalty, False, False, info
        self._episode, self._obs = None, None
        if kind == "error":
            raise payload
        res = payload
        q = float(res.quality or 0.0)
        total = float(res.spent.usd) if isinstance(res.spent.usd, Decimal) else 0.0
        if self._tradeoff:
            r = q - lam * (total - before) / scale
        else:
            b = self.boundary(self._i) if self.reward_fn.needs_boundaries else None
            r = self.reward_fn(q, total / scale, lam, b)
        if self.reward_fn.needs_boundaries:
            info["difficulty"] = difficulty(self.boundary(self._i), float(getattr(self.reward_fn, "success", 0.5)))
        truncated = bool(res.truncated and str(res.reason).startswith("budget"))
        info.update(quality=q, cost_usd=total, reason=str(res.reason), steps=int(res.steps),
                    decisions=len(res.decisions))
        self._mask = np.ones(len(self.obs_spec.actions), dtype=bool)
        return {k: v.copy() for k, v in self._enc.items()}, r - penalty, not truncated, truncated, info

    @property
    def observation(self) -> Observation | None:
        """The routing point the running task waits at (``None`` between tasks): what a scripted policy decides on."""
        return self._obs

    def action_masks(self) -> np.ndarray:
        """Which actions are affordable candidates at the current routing point (for MaskablePPO)."""
        return self._mask.copy()

    def close(self) -> None:
        """Abort any running task and join its thread."""
        self._abort()
        super().close()

    def describe(self) -> dict[str, Any]:
        """What a trained policy's card records about this environment."""
        return {
            "env": "agentroute/GraphRouting-v0",
            "graph": getattr(self.graph, "name", "graph"),
            "options": list(self.obs_spec.actions),
            "cost_scale_usd": self.cost_scale,
            "cost_weight_range": list(self.obs_spec.cost_weight_range),
            "cost_weight_unit": "usd" if self.cost_unit == "usd" else "cost_scale",
            "observe_cost_weight": self.obs_spec.observe_cost_weight,
            "feature_dim": self.obs_spec.feature_dim,
            "reward": self.reward_fn.to_dict(),
            "budget": self.budget.as_dict(),
            "tasks": len(self.tasks),
        }


__all__ = ["DEFAULT_BUDGET", "GraphRoutingEnv"]
