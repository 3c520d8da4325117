"""Pheromone routing (ant colony, after AMRO-S): task-type specialists, gated asynchronous learning, evidence.

One pheromone specialist τ^t per task type over the routing graph's edges: each ``(routing point, option)`` and
each transition from the task's previous choice to this one, so whole paths are reinforced. A query's task-type
mixture w(q) (:class:`IntentModel`) fuses the specialists, ``τ(q) = Σ_t w_t(q)·τ^t``, and the colony picks among
the affordable candidates with ``P ∝ τ(q)^α · η^β``; the heuristic η multiplies normalised terms for prior ability,
price, observed latency and load. Selection follows the Ant Colony System's pseudo-random proportional rule: with
probability ``exploit`` (q0) the best candidate, otherwise a draw from ``P``; ``Decision.probabilities`` is the
exact mixture of the two, so it is a true propensity. ``mode="greedy"`` always exploits.

Learning never runs on the serving path: ``feedback`` and ``end_task`` only queue an outcome; a background worker
gates it and moves the table (see :mod:`agentroute.policies._pheromone_store` for the update rule and
:mod:`agentroute.policies._pheromone_worker` for the buffer). A decision reads an in-process mirror only.

Credit: a ``feedback`` carrying a quality deposits on that decision's edges at once. A decision whose quality is
unknown (``None``: multi-step graphs that only score the final answer) waits on its task's path until
``end_task(task_id, quality, cost)`` deposits the task's outcome along every such decision. Both can be mixed;
no decision is credited twice.
"""

from __future__ import annotations

import math
import random
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agentroute.errors import ConfigError
from agentroute.policies._pheromone_eta import DEFAULT_ETA, ETA_TERMS, CandInfo, eta_terms
from agentroute.policies._pheromone_intent import IntentModel
from agentroute.policies._pheromone_store import PheromoneParams, PheromoneTable, open_table
from agentroute.policies._pheromone_warmup import warm_snapshot
from agentroute.policies._pheromone_worker import Gate, PheromoneUpdate, QualityGate, UpdateWorker
from agentroute.policies.base import BasePolicy
from agentroute.records import RunHooks, RunResult
from agentroute.routing import Decision, Feedback, Observation

SIGNALS = ("utility", "ratio")
_MAX_TASKS = 50_000


def _num(name: str, v: Any, *, lo: float, hi: float = math.inf, open_lo: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or math.isnan(float(v)):
        raise ConfigError(f"PheromonePolicy: {name} must be a number, got {v!r}", name=name)
    f = float(v)
    if (f <= lo if open_lo else f < lo) or f > hi:
        rng = f"{'(' if open_lo else '['}{lo}, {hi}]"
        raise ConfigError(f"PheromonePolicy: {name}={v!r} is out of range", name=name, hint=f"use a value in {rng}")
    return f


@dataclass(slots=True)
class _Step:
    point: str
    prev: str
    option: str
    weights: dict[str, float]
    cost_weight: float
    cost_scale: float
    cost: float | None = None
    credited: bool = False
    fed: bool = False


@dataclass(slots=True)
class _Path:
    steps: list[_Step] = field(default_factory=list)
    cost: float = 0.0


class PheromonePolicy(BasePolicy):
    """The ant-colony router.

    Parameters (all validated; defaults tuned on RouterBench replays):

    - ``alpha`` α ≥ 0 (8.0): weight of the pheromone; ``beta`` β ≥ 0 (1.0): weight of the heuristic η.
    - ``exploit`` q0 in [0, 1] (0.97): probability of taking the best candidate outright; ``mode``
      ``"sample"`` (default) or ``"greedy"`` (always the best: one-hot propensities).
    - ``rho``, ``q``, ``tau_min``, ``tau_max``, ``tau0``, ``prior_visits``, ``drift_threshold``, ``drift_rate``,
      ``reopen``, ``decay``, ``decay_every``: the update rule (:class:`PheromoneParams`), or pass ``params``;
      ``params="stored"`` resumes a durable colony with the rule it was created with.
    - ``eta``: weights of the η terms ``ability`` (a candidate's ``descriptor["ability"|"quality"|"prior"]``),
      ``price`` (``exp(−λ·Δcost/scale)``: neutral at λ = 0), ``latency`` (observed, else ``latency_estimate``),
      ``load`` (decisions still waiting for feedback) and ``uncertainty`` (``exp(Σ_t w_t/√(1 + visits_t))``: an
      option the colony has seen less of looks better, so an unlucky start is revisited). Default
      :data:`DEFAULT_ETA`; the terms you name replace the defaults, 0 switches one off.
    - ``signal``: ``"utility"`` (default: ``quality − λ·cost/scale`` clipped to [0, 1], the reward replays
      measure), ``"ratio"`` (AMRO-S's ``quality / (cost + ε)``, as ``quality·ε/(ε + cost/scale)``), or a callable.
      λ is ``obs.extra["cost_weight"]`` when given, else ``cost_weight``; the scale ``obs.extra["cost_scale"]``,
      else ``cost_scale`` (USD per unit; 1.0 = λ per dollar).
    - ``gate``: a quality threshold in [0, 1] or a callable judge of a :class:`PheromoneUpdate` (default: every
      successful outcome with a quality passes). Failing outcomes only evaporate their path.
    - ``buffer_size`` (10 000) and ``batch_size`` (256) of the asynchronous worker; ``asynchronous=False``
      applies updates inside ``feedback`` (deterministic replays and tests).
    - ``transition_weight`` κ in [0, 1] (0.5): share of the transition edge in an edge's level after a previous
      decision. ``task_types``, ``intent`` (an :class:`IntentModel`; ``rules`` builds one) set w(q).
    - ``store``: ``None`` (in process), a :class:`PheromoneTable`, or a database URL / SQLite path (durable and
      shared; ``namespace`` names the colony in it).
    """

    name = "pheromone"
    version = "1"

    def __init__(
        self,
        *,
        task_types: Sequence[str] | None = None,
        intent: IntentModel | None = None,
        rules: Mapping[str, Sequence[str]] | None = None,
        alpha: float = 8.0,
        beta: float = 1.0,
        exploit: float = 0.97,
        mode: str = "sample",
        rho: float = 0.02,
        q: float = 1.0,
        tau_min: float = 0.01,
        tau_max: float = 1.0,
        tau0: float | None = None,
        prior_visits: float = 1.0,
        drift_threshold: float | None = 0.3,
        drift_rate: float = 0.1,
        reopen: float = 0.5,
        decay: float = 0.0,
        decay_every: int = 200,
        params: PheromoneParams | str | None = None,
        eta: Mapping[str, float] | None = None,
        signal: str | Callable[[PheromoneUpdate], float] = "utility",
        cost_weight: float = 0.0,
        cost_scale: float = 1.0,
        cost_epsilon: float = 1.0,
        gate: float | Gate | None = None,
        buffer_size: int = 10_000,
        batch_size: int = 256,
        asynchronous: bool = True,
        transition_weight: float = 0.5,
        store: str | PheromoneTable | None = None,
        namespace: str = "default",
        record_events: bool = True,
        refresh_s: float = 2.0,
        seed: int | None = None,
    ) -> None:
        self.alpha = _num("alpha", alpha, lo=0.0, hi=50.0)
        self.beta = _num("beta", beta, lo=0.0, hi=50.0)
        self.exploit = _num("exploit", exploit, lo=0.0, hi=1.0)
        if mode not in ("sample", "greedy"):
            raise ConfigError(f"PheromonePolicy: mode must be 'sample' or 'greedy', got {mode!r}", name="mode")
        self.mode = mode
        self.transition_weight = _num("transition_weight", transition_weight, lo=0.0, hi=1.0)
        self.cost_weight = _num("cost_weight", cost_weight, lo=0.0)
        self.cost_scale = _num("cost_scale", cost_scale, lo=0.0, open_lo=True)
        self.cost_epsilon = _num("cost_epsilon", cost_epsilon, lo=0.0, open_lo=True)
        weights = {**DEFAULT_ETA, **(eta or {})}  # the terms you name replace the defaults; 0 switches one off
        unknown = sorted(set(weights) - set(ETA_TERMS))
        if unknown:
            raise ConfigError(
                f"PheromonePolicy: unknown eta term(s) {unknown}", name=unknown[0], hint=f"known: {ETA_TERMS}"
            )
        self.eta = {k: _num(f"eta[{k}]", weights.get(k, 0.0), lo=0.0, hi=50.0) for k in ETA_TERMS}
        if callable(signal):
            self._signal: Callable[[PheromoneUpdate], float] = signal
        elif signal == "utility":
            self._signal = _utility
        elif signal == "ratio":
            eps = self.cost_epsilon
            self._signal = lambda u: _ratio(u, eps)
        else:
            raise ConfigError(f"PheromonePolicy: unknown signal {signal!r}", name="signal", hint=f"use {SIGNALS}")
        self.signal = signal if isinstance(signal, str) else getattr(signal, "__name__", "custom")
        rule: PheromoneParams | None
        if params == "stored":
            if not isinstance(store, str):
                raise ConfigError("params='stored' needs a durable store (a database URL)", name="params")
            rule = None  # adopt the rule the colony was created with
        elif isinstance(params, PheromoneParams):
            rule = params
        elif params is None:
            rule = PheromoneParams(rho=rho, q=q, tau_min=tau_min, tau_max=tau_max, tau0=tau0,
                                   prior_visits=prior_visits, drift_threshold=drift_threshold,
                                   drift_rate=drift_rate, reopen=reopen, decay=decay, decay_every=decay_every)
        else:
            raise ConfigError(f"params must be a PheromoneParams or 'stored', got {params!r}", name="params")
        if intent is None:
            intent = IntentModel(task_types, rules=rules)
        elif task_types or rules:
            raise ConfigError("PheromonePolicy: give task_types/rules or an intent model, not both", name="intent")
        self.intent = intent
        if isinstance(store, PheromoneTable):
            self.table = store
        else:
            self.table = open_table(store, namespace=namespace, params=rule, record_events=record_events,
                                    memory=store is None)
        self.params = self.table.params
        self.worker = UpdateWorker(self.table, self._signal, gate=gate, buffer_size=buffer_size,
                                   batch_size=batch_size, refresh_s=refresh_s)
        self.asynchronous = bool(asynchronous)
        self._rng = random.Random(seed)
        self._wcache: dict[str, tuple[Any, tuple[dict[str, float], str]]] = {}
        self._cands: tuple[Any, CandInfo] | None = None
        self._paths: OrderedDict[str, _Path] = OrderedDict()
        self._inflight: dict[str, int] = {}
        self._latency: dict[str, float] = {}
        self._lat_version = 0

    # ------------------------------------------------------------------ intent

    def task_weights(self, obs: Observation) -> tuple[dict[str, float], str]:
        """``(w(q), source)`` for the observation's task (cached per task id and declared intent)."""
        task = obs.task
        hit = self._wcache.get(task.id)
        if hit is not None and hit[0] is task.intent:
            return hit[1]
        res = self.intent.weights(task.text, category=task.category, intent=task.intent)
        if len(self._wcache) >= _MAX_TASKS:
            self._wcache.clear()
        self._wcache[task.id] = (task.intent, res)
        return res

    def fit_intent(self, texts: Sequence[str], labels: Sequence[str | None], **kw: Any) -> PheromonePolicy:
        """Fit the intent classifier on labelled queries (e.g. a routing table's texts and categories)."""
        self.intent.fit(texts, labels, **kw)
        self._wcache.clear()
        return self

    def prime_intent(
        self, task_ids: Sequence[str], texts: Sequence[str], categories: Sequence[str | None] | None = None
    ) -> None:
        """Compute w(q) of known upcoming tasks in one classifier pass (replays, batch runs)."""
        for tid, res in zip(task_ids, self.intent.batch_weights(texts, categories), strict=True):
            self._wcache[str(tid)] = (None, res)

    # ------------------------------------------------------------------ η

    def _eta(self, info: CandInfo, lam: float, scale: float) -> tuple[dict[str, list[float]], list[float] | None]:
        return eta_terms(info, self.eta, lam, scale, self._latency, self._lat_version, self._inflight)

    def _cand_info(self, cands: tuple[Any, ...]) -> CandInfo:
        """What η needs from a candidate set, computed once per set (the runtime reuses its tuples)."""
        hit = self._cands
        if hit is not None and hit[0] is cands:
            return hit[1]
        info = CandInfo(cands)
        self._cands = (cands, info)
        return info


    # ------------------------------------------------------------------ decide

    def decide(self, obs: Observation) -> Decision:
        """Pick a candidate with ``P ∝ τ(q)^α · η^β`` (pseudo-random proportional); record the evidence."""
        cands = obs.candidates
        info = self._cand_info(cands)
        ids = info.ids
        point = obs.point
        w, source = self.task_weights(obs)
        prev = f"{obs.history[-1][0]}={obs.history[-1][1]}" if obs.history else ""
        kappa = self.transition_weight if prev else 0.0
        t0 = self.params.initial
        table = self.table
        levels = table.levels
        n = len(ids)
        tau = [0.0] * n
        unc: list[float] | None = [0.0] * n if self.eta["uncertainty"] > 0 and self.beta > 0 else None
        for t, wt in w.items():
            node = levels(t, point, "")
            if kappa:
                trans = levels(t, point, prev) or {}
                node = node or {}
                k1, k0 = kappa * wt, (1.0 - kappa) * wt
                for i, cid in enumerate(ids):
                    tau[i] += k0 * node.get(cid, t0) + k1 * trans.get(cid, t0)
            elif node is None:
                tau = [x + wt * t0 for x in tau]
            else:
                get = node.get
                for i, cid in enumerate(ids):
                    tau[i] += wt * get(cid, t0)
            if unc is not None:  # fused like τ: Σ_t w_t / √(1 + visits_t)
                b = table.bonus(t, point, "")
                if b is None:
                    unc = [u + wt for u in unc]
                else:
                    bget = b.get
                    for i, cid in enumerate(ids):
                        unc[i] += wt * bget(cid, 1.0)
        extra = obs.extra
        lam = float(extra.get("cost_weight", self.cost_weight)) if extra else self.cost_weight
        scale = float(extra.get("cost_scale", self.cost_scale)) if extra else self.cost_scale
        alpha, beta = self.alpha, self.beta
        log = math.log
        if beta > 0:
            terms, log_eta = self._eta(info, lam, scale)
            if unc is not None:
                # log η = w·(bonus − best bonus): fewer visits, higher η. The evidence shows the bonus itself
                # (Σ_t w_t/√(1 + visits_t)); the shift by the best bonus cancels in P.
                terms["uncertainty"] = unc
                wk = self.eta["uncertainty"]
                log_eta = [wk * u for u in unc] if log_eta is None else [a + wk * u for a, u in
                                                                         zip(log_eta, unc, strict=True)]
        else:
            terms, log_eta = {}, None
        if log_eta is None:
            score = [alpha * log(x) for x in tau]
        else:
            score = [alpha * log(x) + beta * e for x, e in zip(tau, log_eta, strict=True)]
        top = max(score)
        exp = math.exp
        p = [exp(x - top) for x in score]
        z = sum(p)
        p = [x / z for x in p]
        best = score.index(top)
        if self.mode == "greedy":
            chosen, probs, how = best, [0.0] * n, "greedy"
            probs[best] = 1.0
        else:
            q0 = self.exploit
            probs = [(1.0 - q0) * x for x in p]
            probs[best] += q0
            if self._rng.random() < q0:
                chosen, how = best, "exploit"
            else:
                chosen, how = _draw(p, self._rng.random()), "explore"
        cid = ids[chosen]
        evidence = {
            "tau": dict(zip(ids, tau, strict=True)),
            "eta": {k: dict(zip(ids, v, strict=True)) for k, v in terms.items()},
            "weights": w,
            "intent_source": source,
            "prev": prev,
            "selection": how,
        }
        self._remember(obs, cid, prev, w, lam, scale)
        return Decision(
            cid,
            dict(zip(ids, probs, strict=True)),
            reason=f"pheromone {how}: {cid}",
            scores=dict(zip(ids, p, strict=True)),
            explored=chosen != best,
            evidence=evidence,
        )

    def _remember(self, obs: Observation, cid: str, prev: str, w: dict[str, float], lam: float, sc: float) -> None:
        path = self._paths.get(obs.task.id)
        if path is None:
            if len(self._paths) >= _MAX_TASKS:  # tasks whose end never came: forget the oldest
                _, old = self._paths.popitem(last=False)
                self._release(old.steps)
            path = self._paths[obs.task.id] = _Path()
        path.steps.append(_Step(obs.point, prev, cid, w, lam, sc))
        self._inflight[cid] = self._inflight.get(cid, 0) + 1

    def _release(self, steps: Iterable[_Step]) -> None:
        for s in steps:
            if not s.fed:
                s.fed = True
                n = self._inflight.get(s.option, 0) - 1
                if n > 0:
                    self._inflight[s.option] = n
                else:
                    self._inflight.pop(s.option, None)

    # ------------------------------------------------------------------ learning

    def feedback(self, fb: Feedback) -> None:
        """Queue the decision's outcome (never blocks). Without a quality it waits for :meth:`end_task`."""
        obs, chosen = fb.observation, fb.decision.chosen
        path = self._paths.get(obs.task.id)
        steps = path.steps if path is not None else []
        step = next((s for s in reversed(steps) if s.point == obs.point and s.option == chosen and not s.fed), None)
        if step is None:  # a decision this process did not make (e.g. replayed records): learn it all the same
            w, _ = self.task_weights(obs)
            prev = f"{obs.history[-1][0]}={obs.history[-1][1]}" if obs.history else ""
            extra = obs.extra or {}
            step = _Step(obs.point, prev, chosen, w, float(extra.get("cost_weight", self.cost_weight)),
                         float(extra.get("cost_scale", self.cost_scale)))
        else:
            self._release([step])
        cost = fb.cost_usd
        if cost is None:
            cand = obs.candidate(chosen)
            cost = cand.cost_estimate if cand is not None else None
        step.cost = None if cost is None else float(cost)
        if path is not None and step.cost is not None:
            path.cost += step.cost
        if fb.latency and fb.latency > 0:
            old = self._latency.get(chosen)
            new = fb.latency if old is None else 0.8 * old + 0.2 * fb.latency
            if old is None or abs(new - old) > 0.02 * old:  # η-latency is refreshed when a latency moved > 2%
                self._latency[chosen] = new
                self._lat_version += 1
        quality = fb.quality if fb.ok else 0.0
        if quality is None:
            return
        step.credited = True
        if path is not None and step in steps:
            steps.remove(step)  # credited: the path keeps only what end_task may still credit
        self._submit(obs.task.id, step, quality, step.cost, ok=fb.ok, kind="step")

    def end_task(self, task_id: str, quality: float, cost: float | None = None, *, ok: bool = True) -> int:
        """Deposit a task-level outcome along every decision of the task not yet credited; return how many.

        ``cost`` is the task's total USD (default: the sum of its decisions' costs).
        """
        path = self._paths.pop(task_id, None)
        if path is None:
            return 0
        self._release(path.steps)
        total = path.cost if cost is None else float(cost)
        n = 0
        for s in path.steps:
            if not s.credited:
                s.credited = True
                self._submit(task_id, s, float(quality), total, ok=ok, kind="path")
                n += 1
        return n

    def task_hook(self) -> RunHooks:
        """A run hook that calls :meth:`end_task` with each finished task's quality and spend (path credit).

        Pass it to the runtime (``hooks=[policy.task_hook()]``). A task without a quality only releases its
        path; a task that raised counts as a failure (its path evaporates, nothing is deposited).
        """
        return _TaskEndHook(self)

    def forget_task(self, task_id: str) -> None:
        """Drop a task's pending path without learning from it (its outcome will never be known)."""
        path = self._paths.pop(task_id, None)
        if path is not None:
            self._release(path.steps)

    def _submit(self, task_id: str, s: _Step, quality: float, cost: float | None, *, ok: bool, kind: str) -> None:
        u = PheromoneUpdate(task_id, s.point, s.option, s.weights, quality, cost, s.prev, s.cost_weight,
                            s.cost_scale, ok, kind)
        if self.asynchronous:
            self.worker.submit(u)
        else:
            self.worker.process([u])

    # ------------------------------------------------------------------ warm-up, control

    def warm_up(self, source: Any, *, point: str = "model", cost_weight: float | None = None,
                cost_scale: float | None = None, visits_cap: float | None = None) -> int:
        """Seed the table from a routing table (full information) or from exported decision records.

        ``source`` is a :class:`~agentroute.data.RoutingTable` (every option's outcome on every query: each
        edge starts at the clamped mean deposit signal) or an iterable of decision records (``DecisionRecord``
        or mappings with ``task_id``, ``point``, ``chosen``, ``quality``, ``cost_usd``; ``evidence.weights``
        when recorded by this policy). Visits are capped at ``visits_cap`` (default ``1/rho``) so live traffic
        can still move the levels. Merged into what the table holds; returns the number of edges written.
        """
        snap = warm_snapshot(self, source, point=point,
                             cost_weight=self.cost_weight if cost_weight is None else cost_weight,
                             cost_scale=self.cost_scale if cost_scale is None else cost_scale,
                             visits_cap=visits_cap)
        return self.table.restore(snap, mode="merge")

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until queued outcomes are applied."""
        return self.worker.flush(timeout)

    def close(self) -> None:
        """Apply what is queued and stop the worker."""
        self.worker.close()
        self.table.close()

    def stats(self) -> dict[str, Any]:
        """Worker counters plus the table's update and decay counts."""
        return {**self.worker.stats(), "table_updates": self.table.total_updates, "decays": self.table.decays}

    def __enter__(self) -> PheromonePolicy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _TaskEndHook(RunHooks):
    """Forwards task ends to :meth:`PheromonePolicy.end_task`."""

    def __init__(self, policy: PheromonePolicy) -> None:
        self.policy = policy

    def on_task_end(self, result: RunResult) -> None:
        """Credit the task's path with its outcome."""
        cost = None if result.spent.usd is None else float(result.spent.usd)
        if result.error is not None:
            self.policy.end_task(result.task_id, 0.0, cost, ok=False)
        elif result.quality is not None:
            self.policy.end_task(result.task_id, float(result.quality), cost)
        else:
            self.policy.forget_task(result.task_id)


def _draw(p: Sequence[float], u: float) -> int:
    acc = 0.0
    for i, x in enumerate(p):
        acc += x
        if u < acc:
            return i
    return len(p) - 1


def _utility(u: PheromoneUpdate) -> float:
    q = 0.0 if u.quality is None else u.quality
    c = 0.0 if u.cost_usd is None else u.cost_usd
    return q - u.cost_weight * c / u.cost_scale


def _ratio(u: PheromoneUpdate, eps: float) -> float:
    q = 0.0 if u.quality is None else u.quality
    c = 0.0 if u.cost_usd is None else u.cost_usd
    return q * eps / (eps + c / u.cost_scale)


__all__ = [
    "DEFAULT_ETA",
    "ETA_TERMS",
    "IntentModel",
    "PheromoneParams",
    "PheromonePolicy",
    "PheromoneTable",
    "PheromoneUpdate",
    "QualityGate",
]
