"""Saving and loading a pheromone colony as a policy card, and the deprecated run hook of ``task_hook()``.

A colony's card holds its settings, its update rule, its intent model, its random state and a snapshot of its
table (the export format of :mod:`agentroute.policies._pheromone_store`, validated by ``parse_snapshot`` on load).
"""

from __future__ import annotations

from typing import Any

from agentroute.errors import ConfigError
from agentroute.policies._card import Card, py_rng_from, py_rng_state
from agentroute.policies._pheromone_intent import IntentModel
from agentroute.policies._pheromone_math import SIGNALS
from agentroute.policies._pheromone_prior import ESTIMATES
from agentroute.policies._pheromone_store import PheromoneParams, PheromoneTable, parse_snapshot
from agentroute.routing import TaskOutcome

Colony = Any
"""A :class:`~agentroute.policies.pheromone.PheromonePolicy` (not imported: the policy imports this module)."""

def colony_card(self: Colony) -> dict[str, Any]:
    """The card fields of a colony (see :meth:`PheromonePolicy.to_card`)."""
    custom = self._config["custom"]
    if custom:
        raise ConfigError(f"cannot save a PheromonePolicy with a custom {' and '.join(custom)} (a function)",
                          name=custom[0], hint="use a built-in signal and a numeric gate, or save the snapshot")
    self.flush()
    config = {k: v for k, v in self._config.items() if k != "custom"}
    return {"cost_unit": "usd", "config": config, "rule": self.params.as_dict(),
            "intent": self.intent.to_dict(), "rng": py_rng_state(self._rng),
            "snapshot": self.table.export()}


def colony_from_card(cls: type[Colony], card: Card, *, store: str | PheromoneTable | None = None,
                     cost_weight: float | None = None, asynchronous: bool | None = None) -> Colony:
    """Rebuild a colony from its card (see :meth:`PheromonePolicy.from_card`)."""
    config = card.obj("config")
    card.obj("rule")
    kw: dict[str, Any] = {k: config.num(k, lo=0.0, finite=True) for k in (
        "alpha", "beta", "exploit", "transition_weight", "cost_weight", "cost_scale", "cost_epsilon",
        "cost_span", "refresh_s")}
    kw.update(mode=config.text("mode", choices=("sample", "greedy")),
              signal=config.text("signal", choices=SIGNALS), eta={k: config.obj("eta").num(k) for k in
                                                                config.obj("eta")},
              gate=config.num("gate", None, lo=0.0, hi=1.0), buffer_size=config.whole("buffer_size", lo=1),
              batch_size=config.whole("batch_size", lo=1), asynchronous=config.flag("asynchronous"),
              namespace=config.text("namespace"), record_events=config.flag("record_events"),
              seed=config.whole("seed", None, lo=-(2**63), hi=2**63),
              # a card saved before the pooled estimate existed keeps reading its levels as it did
              estimate=config.text("estimate", "level", choices=ESTIMATES),
              optimism=config.num("optimism", 0.5, lo=0.0, hi=10.0),
              eliminate=config.num("eliminate", None, lo=0.0, hi=10.0),
              pool=config.num("pool", 4.0, lo=0.0, hi=1e6),
              prior_weight=config.num("prior_weight", 3.0, lo=0.0, hi=1e6),
              min_visits=config.num("min_visits", 3.0, lo=0.0, hi=1e6),
              price_prior=config.flag("price_prior", True),
              # a card saved before latency observation was opt-in keeps observing it
              observe_latency=config.flag("observe_latency", True),
              reprice=config.flag("reprice", False),
              descriptors={k: config.obj("descriptors").obj(k).raw() for k in config.obj("descriptors", {})})
    if cost_weight is not None:
        kw["cost_weight"] = cost_weight
    if asynchronous is not None:
        kw["asynchronous"] = asynchronous
    params = card.build("rule", lambda r: PheromoneParams(**r))
    snapshot = card.obj("snapshot")
    parse_snapshot(snapshot.raw(), source=card.source)
    policy = cls(**kw, params=params if not isinstance(store, str) else "stored",
                 intent=card.build("intent", IntentModel.from_dict), store=store)
    policy.table.restore(snapshot.raw(), mode="merge" if store is not None else "replace")
    policy._rng = py_rng_from(card, "rng", policy._seed)
    return policy


class TaskEndHook:
    """Forwards finished tasks to :meth:`PheromonePolicy.on_task_end` (the deprecated ``task_hook()``).

    Duck-typed like a run hook (the runtime's hook list calls each method by name), so the policies never import
    the runtime's hook module.
    """

    def __init__(self, policy: Colony) -> None:
        self.policy = policy

    def on_task_end(self, result: Any) -> None:
        """Credit the task's path with its outcome."""
        self.policy.on_task_end(TaskOutcome(
            task_id=result.task_id, quality=result.quality, cost_usd=result.spent.usd, tokens=result.spent.tokens,
            ok=result.error is None, truncated=bool(result.truncated), reason=str(getattr(result, "reason", "") or "")))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("on_") or name == "flush":
            return lambda *a, **k: None
        raise AttributeError(name)


__all__ = ["TaskEndHook", "colony_card", "colony_from_card"]
