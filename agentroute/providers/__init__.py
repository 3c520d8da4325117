"""Model providers: where a tier's calls go. All of them go through LiteLLM, so one code path runs everywhere.

- :class:`Live` (the default): the tier's model through LiteLLM to the real API (keys from the environment).
- :class:`Simulated`: an offline provider registered with LiteLLM's custom-provider mechanism; deterministic with a
  seed, with a capability profile per model (quality that depends on query difficulty, token counts, latency), and a
  graph world (:class:`World`) in which research, writing and verification calls make a task's quality depend on
  its whole path.
- :class:`Recorded`: a replay of what real models answered (a routing table with a ``response`` column), through
  the same custom-provider path; a prompt or model it does not hold is an error, never an invented answer.
"""

from agentroute.providers._world import World, role_message
from agentroute.providers.base import Live, Provider
from agentroute.providers.recorded import Recorded
from agentroute.providers.simulated import SimProfile, Simulated

__all__ = ["Live", "Provider", "Recorded", "SimProfile", "Simulated", "World", "role_message"]
