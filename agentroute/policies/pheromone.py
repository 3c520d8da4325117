"""Pheromone routing (ant colony, after AMRO-S): task-type specialists, gated asynchronous learning, evidence.

One pheromone specialist τ^t per task type over the routing graph's edges: each ``(routing point, option)`` and
each transition from the task's previous choice to this one, so whole paths are reinforced. A query's task-type
mixture w(q) (:class:`IntentModel`) fuses the specialists, ``τ(q) = Σ_t w_t(q)·τ^t``, and the colony picks among
the affordable candidates with ``P ∝ τ(q)^α · η^β``; the heuristic η multiplies normalised terms for prior ability,
price, observed latency and load. Selection follows the Ant Colony System's pseudo-random proportional rule: with
probability ``exploit`` (q0) the best candidate, otherwise a draw from ``P``; ``Decision.probabilities`` is the
exact mixture of the two, so it is a true propensity. ``mode="greedy"`` always exploits.

Learning never runs on the serving path: ``feedback`` and ``on_task_end`` only queue an outcome; a background worker
gates it and moves the table (see :mod:`agentroute.policies._pheromone_store` for the update rule and
:mod:`agentroute.policies._pheromone_worker` for the buffer). A decision reads an in-process mirror only.

Credit: a ``feedback`` carrying a quality deposits on that decision's edges at once. A decision whose quality is
unknown (``None``: multi-step graphs that only score the final answer) waits on its task's path until
``on_task_end(outcome)`` (the runtime calls it once per task; ``end_task(task_id, quality, cost)`` by hand) deposits
the task's outcome along every such decision. Both can be mixed; no decision is credited twice.

λ (``cost_weight``) is per USD. ``cost_scale`` is the colony's cost unit in USD (default 1: a dollar): the
deposit signal's ``cost_span`` and ``cost_epsilon`` are in that unit, so set it to a typical task cost (a replay
uses the table's cost scale). A colony saves as a card with its snapshot (:func:`agentroute.policies.save_policy`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from agentroute.errors import ConfigError
from agentroute.policies._card import Arrays, Card, register
from agentroute.policies._pheromone_credit import MAX_TASKS, ColonyCredit
from agentroute.policies._pheromone_eta import DEFAULT_ETA, ETA_TERMS, CandInfo, eta_terms, load_eta, static_eta
from agentroute.policies._pheromone_fuse import ColonyFusion
from agentroute.policies._pheromone_intent import IntentModel
from agentroute.policies._pheromone_math import NO_ETA, SIGNALS, Evidence, Path, draw, ratio, softmax, utility
from agentroute.policies._pheromone_open import open_table
from agentroute.policies._pheromone_prior import ESTIMATES, Priors
from agentroute.policies._pheromone_store import PheromoneParams, PheromoneTable
from agentroute.policies._pheromone_warmup import warm_snapshot
from agentroute.policies._pheromone_worker import Gate, PheromoneUpdate, QualityGate, UpdateWorker
from agentroute.routing import Decision, Observation, PolicyBase


def _num(name: str, v: Any, *, lo: float, hi: float = math.inf, open_lo: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or math.isnan(float(v)):
        raise ConfigError(f"PheromonePolicy: {name} must be a number, got {v!r}", name=name)
    f = float(v)
    if (f <= lo if open_lo else f < lo) or f > hi:
        rng = f"{'(' if open_lo else '['}{lo}, {hi}]"
        raise ConfigError(f"PheromonePolicy: {name}={v!r} is out of range", name=name, hint=f"use a value in {rng}")
    return f


@register("pheromone", "colony")
class PheromonePolicy(ColonyCredit, ColonyFusion, PolicyBase):
    """The ant-colony router.

    Parameters (all validated; defaults tuned on RouterBench replays):

    - ``alpha`` α ≥ 0 (8.0): weight of the pheromone; ``beta`` β ≥ 0 (1.0): weight of the heuristic η.
    - ``exploit`` q0 in [0, 1] (0.97): probability of taking the best candidate outright; ``mode``
      ``"sample"`` (default) or ``"greedy"`` (always the best: one-hot propensities).
    - ``rho``, ``q``, ``tau_min``, ``tau_max``, ``tau0``, ``prior_visits``, ``drift_threshold``, ``drift_rate``,
      ``reopen``, ``decay``, ``decay_every``: the update rule (:class:`PheromoneParams`), or pass ``params``;
      ``params="stored"`` resumes a durable colony with the rule it was created with.
    - ``eta``: weights of the η terms ``ability`` (a candidate's ``descriptor["ability"|"quality"|"prior"]``),
      ``price`` (``exp(−λ·Δcost/scale)``: neutral at λ = 0), ``latency`` (the candidate's ``latency_estimate``;
      with ``observe_latency=True`` the measured latencies of its feedback override it: off by default, since a
      measured latency makes two runs of the same simulated stream differ),
      ``load`` (decisions still waiting for feedback) and ``uncertainty`` (``exp(Σ_t w_t/√(1 + visits_t))``: an
      option the colony has seen less of looks better, so an unlucky start is revisited). Default
      :data:`DEFAULT_ETA`; the terms you name replace the defaults, 0 switches one off.
    - ``signal``: ``"utility"`` (default: the reward replays measure, ``r = quality − λ·cost/scale``, mapped
      affinely onto [0, 1] as ``(r + λ·cost_span)/(1 + λ·cost_span)`` and clipped, so edges rank options by mean
      reward; ``cost_span=0`` clips at 0), ``"ratio"`` (AMRO-S's ``quality / (cost + ε)``, as
      ``quality·ε/(ε + cost/scale)``), or a callable.
      λ is ``obs.extra["cost_weight"]`` (per USD) when given, else ``cost_weight`` (per USD); ``cost_scale`` is
      the cost unit in USD that ``cost_span`` and ``cost_epsilon`` are measured in (1.0: a dollar).
    - ``gate``: a quality threshold in [0, 1] or a callable judge of a :class:`PheromoneUpdate` (default: every
      successful outcome with a quality passes). Failing outcomes only evaporate their path.
    - ``buffer_size`` (10 000) and ``batch_size`` (256) of the asynchronous worker; ``asynchronous=False``
      applies updates inside ``feedback`` (deterministic replays and tests).
    - ``transition_weight`` κ in [0, 1] (0.5): share of the transition edge in an edge's level after a previous
      decision. ``task_types``, ``intent`` (an :class:`IntentModel`; ``rules`` builds one) set w(q).
    - ``store``: ``None`` (in process), a :class:`PheromoneTable`, or a database URL / SQLite path (durable and
      shared; ``namespace`` names the colony in it).
    - ``estimate``: how a decision reads the table: ``"level"`` (the fused levels and η), ``"pooled"`` (the
      pooled estimate of :mod:`~agentroute.policies._pheromone_prior`: price-aware prior and ceiling, task types
      pooled, optimism, elimination of dominated options; tuned by ``optimism``, ``eliminate``, ``pool``,
      ``prior_weight``, ``min_visits``, ``price_prior`` and ``descriptors``) or ``"auto"`` (default: pooled at a
      point with 12+ candidates or where the dearest candidate's price premium, λ·Δprice, is worth ¾ of a
      perfect answer; the levels otherwise).
    - ``reprice`` (False): learn each outcome's quality (its deposit signal at λ = 0) and price it at each
      decision's λ instead of depositing the reward at the λ of its decision, so a λ that moves (a colony held to a
      target by :class:`~agentroute.policies.TargetSpend`, which switches it on for an empty colony) is followed at
      once rather than after the levels re-learn. Needs ``signal="utility"``.
    """

    family = "pheromone"
    kind = "colony"
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
        cost_span: float = 1.0,
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
        estimate: str = "auto",
        optimism: float = 0.5,
        eliminate: float | None = 2.5,
        pool: float = 4.0,
        prior_weight: float = 3.0,
        min_visits: float = 3.0,
        price_prior: bool = False,
        descriptors: Mapping[str, Mapping[str, Any]] | None = None,
        observe_latency: bool = False,
        reprice: bool = False,
    ) -> None:
        self.alpha = _num("alpha", alpha, lo=0.0, hi=50.0)
        self.beta = _num("beta", beta, lo=0.0, hi=50.0)
        self.exploit = _num("exploit", exploit, lo=0.0, hi=1.0)
        if mode not in ("sample", "greedy"):
            raise ConfigError(f"PheromonePolicy: mode must be 'sample' or 'greedy', got {mode!r}", name="mode")
        self.mode = mode
        self.transition_weight = _num("transition_weight", transition_weight, lo=0.0, hi=1.0)
        self.cost_weight = _num("cost_weight", cost_weight, lo=0.0)
        """λ per USD."""
        self.cost_scale = _num("cost_scale", cost_scale, lo=0.0, open_lo=True)
        """The colony's cost unit in USD (``cost_span`` and ``cost_epsilon`` are in it)."""
        self.cost_epsilon = _num("cost_epsilon", cost_epsilon, lo=0.0, open_lo=True)
        self.cost_span = _num("cost_span", cost_span, lo=0.0, hi=1e6)
        if estimate not in ESTIMATES:
            raise ConfigError(f"PheromonePolicy: estimate must be one of {ESTIMATES}, got {estimate!r}",
                              name="estimate")
        self.estimate = estimate
        self.optimism = _num("optimism", optimism, lo=0.0, hi=10.0)
        self.eliminate = None if eliminate is None else _num("eliminate", eliminate, lo=0.0, hi=10.0, open_lo=True)
        self.pool = _num("pool", pool, lo=0.0, hi=1e6)
        self.prior_weight = _num("prior_weight", prior_weight, lo=0.0, hi=1e6, open_lo=True)
        self.min_visits = _num("min_visits", min_visits, lo=0.0, hi=1e6)
        self.price_prior = bool(price_prior)
        self.observe_latency = bool(observe_latency)
        self.reprice = bool(reprice)
        if self.reprice and signal != "utility":
            raise ConfigError("PheromonePolicy: reprice=True needs signal='utility' (the one affine in quality)",
                              name="reprice")
        if descriptors is not None and not (isinstance(descriptors, Mapping) and all(
                isinstance(k, str) and isinstance(v, Mapping) for k, v in descriptors.items())):
            raise ConfigError("PheromonePolicy: descriptors must map option ids to descriptor mappings",
                              name="descriptors", hint='e.g. {"gpt-4o": {"ability": 0.8}}')
        self.descriptors = {k: dict(v) for k, v in (descriptors or {}).items()}
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
            span = self.cost_span
            self._signal = lambda u: utility(u, span)
        elif signal == "ratio":
            eps = self.cost_epsilon
            self._signal = lambda u: ratio(u, eps)
        else:
            raise ConfigError(f"PheromonePolicy: unknown signal {signal!r}", name="signal", hint=f"use {SIGNALS}")
        self.signal = signal if isinstance(signal, str) else getattr(signal, "__name__", "custom")
        self._config: dict[str, Any] = {
            "alpha": self.alpha, "beta": self.beta, "exploit": self.exploit, "mode": mode,
            "transition_weight": self.transition_weight, "cost_weight": self.cost_weight,
            "cost_scale": self.cost_scale, "cost_epsilon": self.cost_epsilon, "cost_span": self.cost_span,
            "eta": dict(self.eta), "signal": self.signal if isinstance(signal, str) else None,
            "gate": gate if gate is None or isinstance(gate, int | float) else None,
            "custom": [k for k, v in (("signal", signal), ("gate", gate)) if callable(v)],
            "buffer_size": buffer_size, "batch_size": batch_size, "asynchronous": bool(asynchronous),
            "namespace": namespace, "record_events": record_events, "refresh_s": refresh_s, "seed": seed,
            "estimate": estimate, "optimism": self.optimism, "eliminate": self.eliminate, "pool": self.pool,
            "prior_weight": self.prior_weight, "min_visits": self.min_visits,
            "price_prior": self.price_prior, "descriptors": self.descriptors,
            "observe_latency": self.observe_latency, "reprice": self.reprice,
        }
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
        self._seed = seed
        self._wcache: dict[str, tuple[Any, tuple[dict[str, float], str]]] = {}
        self._cands: tuple[Any, CandInfo] | None = None
        self._paths: dict[str, Path] = {}  # insertion-ordered: the oldest task comes first
        self._mixtures: dict[tuple[tuple[str, float], ...], dict[str, float]] = {}
        self._load_w = self.eta["load"] if self.beta > 0 else 0.0
        self._beta_load = self.beta * self.eta["load"]
        self._inflight: dict[str, int] = {}
        self._latency: dict[str, float] = {}
        self._lat_version = 0
        self._priors: dict[tuple[Any, ...], Priors] = {}

    # ------------------------------------------------------------------ intent

    def task_weights(self, obs: Observation) -> tuple[dict[str, float], str]:
        """``(w(q), source)`` for the observation's task (cached per task id and declared intent).

        Equal mixtures are one shared dict (do not mutate it): decisions cache the fused pheromone per mixture.
        """
        task = obs.task
        hit = self._wcache.get(task.id)
        if hit is not None and hit[0] is task.intent:
            return hit[1]
        res = self._intern(self.intent.weights(task.text, category=task.category, intent=task.intent))
        if len(self._wcache) >= MAX_TASKS:
            self._wcache.clear()
        self._wcache[task.id] = (task.intent, res)
        return res

    def _intern(self, res: tuple[dict[str, float], str]) -> tuple[dict[str, float], str]:
        key = tuple(res[0].items())
        w = self._mixtures.get(key)
        if w is None:
            if len(self._mixtures) >= MAX_TASKS:
                self._mixtures.clear()
            w = self._mixtures[key] = res[0]
        return w, res[1]

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
            self._wcache[str(tid)] = (None, self._intern(res))

    # ------------------------------------------------------------------ η

    def _eta(self, info: CandInfo, lam: float, scale: float) -> tuple[dict[str, list[float]], list[float] | None]:
        return eta_terms(info, self.eta, lam, scale, self._latency, self._lat_version, self._inflight)

    def _cand_info(self, cands: tuple[Any, ...]) -> CandInfo:
        """What η needs from a candidate set, computed once per set (the runtime reuses its tuples)."""
        hit = self._cands
        if hit is not None and hit[0] is cands:
            return hit[1]
        info = CandInfo(cands, self.descriptors)
        self._cands = (cands, info)
        return info

    # ------------------------------------------------------------------ decide

    def decide(self, obs: Observation) -> Decision:
        """Pick a candidate with ``P ∝ τ(q)^α · η^β`` (pseudo-random proportional); record the evidence.

        The hot path: the fused τ, η and ``P`` of a (mixture, point, previous choice) are cached on the candidate
        set until the table, λ or an observed latency moves; only the ``load`` term (decisions waiting for their
        feedback) is recomputed per call, and the evidence is built when read.
        """
        cands = obs.candidates
        hit = self._cands
        info = hit[1] if hit is not None and hit[0] is cands else self._cand_info(cands)
        task = obs.task
        wc = self._wcache.get(task.id)
        w, source = wc[1] if wc is not None and wc[0] is task.intent else self.task_weights(obs)
        hist = obs.history
        prev = f"{hist[-1][0]}={hist[-1][1]}" if hist else ""
        point = obs.point
        extra = obs.extra
        lam, scale = self._lam_scale(extra) if extra else (self.cost_weight * self.cost_scale, self.cost_scale)
        static = static_eta(info, self.eta, lam, scale, self._latency, self._lat_version) if self.beta else NO_ETA
        ent = info.fused.get((id(w), point, prev))
        if ent is None or ent.version != self.table.version or ent.static is not static or ent.w is not w:
            ent = self._fuse(info, w, point, prev, static, lam, scale)
        load = None
        if self._inflight and self._load_w > 0:
            load = load_eta(info, self._inflight)
        if load is None:
            p, best = ent.p, ent.best
        else:
            wl, log = self._beta_load, math.log
            p, best = softmax([s + wl * log(x) for s, x in zip(ent.score, load, strict=True)])
        ids = info.ids
        rng = self._rng
        if self.mode == "greedy":
            chosen, how = best, "greedy"
            probs = {cid: 0.0 for cid in ids}
            probs[ids[best]] = 1.0
        else:
            if load is None:
                probs = ent.probs.copy()
            else:
                q1 = 1.0 - self.exploit
                probs = {cid: q1 * x for cid, x in zip(ids, p, strict=True)}
                probs[ids[best]] += self.exploit
            if rng.random() < self.exploit:
                chosen, how = best, "exploit"
            else:
                chosen, how = draw(p, rng.random()), "explore"
        cid = ids[chosen]
        self._remember(task.id, point, cid, prev, w, 0.0 if self.reprice else lam, scale)
        return Decision(
            cid,
            probs,
            reason=f"pheromone {how}: {cid}",
            scores=ent.scores.copy() if load is None else dict(zip(ids, p, strict=True)),
            explored=chosen != best,
            evidence=Evidence(ids, ent.tau, static[0], ent.unc, load, w, source, prev, how),
        )

    def _lam_scale(self, extra: Mapping[str, Any]) -> tuple[float, float]:
        """``(λ per cost unit, the unit in USD)`` of a decision: what the η and signal arithmetic is written in.

        ``obs.extra["cost_weight"]`` is per USD; a driver of an earlier release that also gave ``cost_scale``
        meant λ per that unit, which is taken as it is.
        """
        given = extra.get("cost_scale")
        scale = self.cost_scale if given is None else float(given)
        lam = extra.get("cost_weight")
        if lam is None:
            return self.cost_weight * scale, scale
        return (float(lam) if given is not None else float(lam) * scale), scale

    # ------------------------------------------------------------------ warm-up, control

    def follow_cost_weight(self) -> bool:
        """Price at each decision from now on (``reprice=True``) if nothing was learnt yet; whether it does.

        Called by the target wrappers, whose λ moves: deposits made at past λs would answer a new λ only as the
        levels re-learn. A colony that already holds levels learnt as rewards keeps them as they are.
        """
        if not self.reprice and self.signal == "utility" and not self.table.edges():
            self.reprice = True
            self._config["reprice"] = True
        return self.reprice

    def warm_up(self, source: Any, *, point: str = "model", cost_weight: float | None = None,
                cost_scale: float | None = None, visits_cap: float | None = None) -> int:
        """Seed the table from a routing table (full information) or from exported decision records.

        ``cost_weight`` is λ per USD and ``cost_scale`` the cost unit (defaults: the policy's).
        ``source`` is a :class:`~agentroute.data.RoutingTable` (every option's outcome on every query: each
        edge starts at the clamped mean deposit signal) or an iterable of decision records (``DecisionRecord``
        or mappings with ``task_id``, ``point``, ``chosen``, ``quality``, ``cost_usd``; ``evidence.weights``
        when recorded by this policy). Visits are capped at ``visits_cap`` (default ``1/rho``) so live traffic
        can still move the levels. Merged into what the table holds; returns the number of edges written.
        """
        scale = self.cost_scale if cost_scale is None else float(cost_scale)
        lam = self.cost_weight if cost_weight is None else float(cost_weight)
        snap = warm_snapshot(self, source, point=point, cost_weight=lam * scale, cost_scale=scale,
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

    # ------------------------------------------------------------------ save / load

    def to_card(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Card fields: the settings, the update rule, the intent model, the random state and a snapshot.

        A durable colony's database URL is not saved (it may carry a password): pass ``store=`` to
        :func:`agentroute.policies.load_policy` to attach the loaded colony to a database.
        """
        from agentroute.policies._pheromone_card import colony_card

        return colony_card(self), {}

    @classmethod
    def from_card(cls, card: Card, arrays: Arrays, *, store: str | PheromoneTable | None = None,
                  cost_weight: float | None = None, asynchronous: bool | None = None) -> PheromonePolicy:
        """Rebuild a colony from its card: an in-process table holding the snapshot (or ``store``, merged)."""
        from agentroute.policies._pheromone_card import colony_from_card

        policy: PheromonePolicy = colony_from_card(cls, card, store=store, cost_weight=cost_weight,
                                                   asynchronous=asynchronous)
        return policy


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
