"""Gymnasium environments for training routing policies, and their registration.

- ``agentroute/QueryRouting-v0`` (:class:`~agentroute.envs.query_routing.QueryRoutingEnv`): one decision per
  query of a routing table of real outcomes.
- ``agentroute/GraphRouting-v0`` (:class:`~agentroute.envs.graph_routing.GraphRoutingEnv`): tasks run through an
  ``AgentGraph`` by the real runtime, one step per routing point.
- ``agentroute/MemoryTier-v0`` (``agentroute.envs.memory_tier:MemoryTierEnv``): memory budget tiers.

Importing this package registers the three ids (:func:`register_envs`, idempotent; Gymnasium also finds it through
the ``gymnasium.envs`` entry point). Registration is by string entry point, so nothing heavy is imported until an
environment is made; without Gymnasium installed it is a no-op, so numpy-only serving code may import submodules.
"""

from __future__ import annotations

ENV_IDS = {
    "agentroute/QueryRouting-v0": "agentroute.envs.query_routing:QueryRoutingEnv",
    "agentroute/GraphRouting-v0": "agentroute.envs.graph_routing:GraphRoutingEnv",
    "agentroute/MemoryTier-v0": "agentroute.envs.memory_tier:MemoryTierEnv",
}


def register_envs() -> None:
    """Register every agentroute environment with Gymnasium (safe to call any number of times)."""
    try:
        from gymnasium.envs.registration import register, registry
    except ImportError:  # serving without the learn extra
        return
    for env_id, entry_point in ENV_IDS.items():
        if env_id not in registry:
            register(id=env_id, entry_point=entry_point, disable_env_checker=False)


register_envs()

__all__ = ["ENV_IDS", "register_envs"]
