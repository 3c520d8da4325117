"""Routing policies: rules, cascades, baselines (and, in their own modules, learned, bandit and pheromone).

Every policy implements :class:`agentroute.routing.RouterPolicy`: ``decide(obs) -> Decision`` and
``feedback(fb)``. The same object runs in ``app.run``, in the Gymnasium environments, and in replays.
"""

from agentroute.policies.base import BasePolicy, GraphSpec
from agentroute.policies.baselines import Cheapest, DeclaredDefault, Fixed, Random, Strongest
from agentroute.policies.cascade import CascadePolicy
from agentroute.policies.rules import Rule, RulePolicy, When

__all__ = [
    "BasePolicy",
    "CascadePolicy",
    "Cheapest",
    "DeclaredDefault",
    "Fixed",
    "GraphSpec",
    "Random",
    "Rule",
    "RulePolicy",
    "Strongest",
    "When",
]
