"""Routing policies: rules, cascades and baselines here; learned, predictive, bandit and pheromone on first use.

Every policy implements :class:`agentroute.routing.RouterPolicy` (subclass :class:`~agentroute.routing.PolicyBase`
for the defaults of every optional capability). The same object runs in ``app.run``, in the Gymnasium environments,
and in replays. Every family saves the same way, a JSON card plus a ``.npz`` of plain arrays
(:func:`save_policy`), and loads through one :func:`load_policy`. λ (``cost_weight``) is per USD in every family.
The numpy-based families load lazily (``agentroute.policies.KNNRouter`` imports its module when first used), so
``import agentroute`` stays fast.
"""

from typing import Any

from agentroute.policies._card import load_policy, save_policy
from agentroute.policies.base import BasePolicy
from agentroute.policies.baselines import Cheapest, DeclaredDefault, Fixed, Random, Strongest
from agentroute.policies.cascade import CascadePolicy
from agentroute.policies.rules import Rule, RulePolicy, When
from agentroute.routing import GraphSpec, PolicyBase

_LAZY = {
    "KNNRouter": "agentroute.policies.predictive",
    "LinearRouter": "agentroute.policies.predictive",
    "MLPRouter": "agentroute.policies.predictive",
    "make_router": "agentroute.policies._factory",
    "PriorRouter": "agentroute.policies.prior",
    "EnsembleRouter": "agentroute.policies.ensemble",
    "GraphRouter": "agentroute.policies.graph",
    "TextRouter": "agentroute.policies.text",
    "LinUCBPolicy": "agentroute.policies.bandit",
    "ThompsonPolicy": "agentroute.policies.bandit",
    "LearnedPolicy": "agentroute.policies.learned",
    "load_learned": "agentroute.policies.learned",
    "PheromonePolicy": "agentroute.policies.pheromone",
    "WithDeadline": "agentroute.policies.deadline",
    "TargetSpend": "agentroute.policies.target",
    "TargetShare": "agentroute.policies.target",
    "calibrate": "agentroute.policies.calibration",
    "PreferencePolicy": "agentroute.policies.preference",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'agentroute.policies' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "BasePolicy",
    "CascadePolicy",
    "Cheapest",
    "DeclaredDefault",
    "EnsembleRouter",
    "Fixed",
    "GraphRouter",
    "GraphSpec",
    "KNNRouter",
    "LearnedPolicy",
    "LinUCBPolicy",
    "LinearRouter",
    "MLPRouter",
    "PheromonePolicy",
    "PolicyBase",
    "PreferencePolicy",
    "PriorRouter",
    "Random",
    "Rule",
    "RulePolicy",
    "Strongest",
    "TargetShare",
    "TargetSpend",
    "TextRouter",
    "ThompsonPolicy",
    "When",
    "WithDeadline",
    "calibrate",
    "load_learned",
    "load_policy",
    "make_router",
    "save_policy",
]
