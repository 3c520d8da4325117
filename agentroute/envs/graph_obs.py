"""The graph observation encoding, re-exported: it lives in :mod:`agentroute.policies._graph_obs`.

A served learned policy needs the encoder, and a policy never imports the environments, so the encoder moved to
the policies; ``GraphRouting-v0`` imports it from here (or from there), and both see the same layout.
"""

from agentroute.policies._graph_obs import CANDIDATE_FEATURES, END, FEATURE_BOUND, GraphObsSpec, action_ids

__all__ = ["CANDIDATE_FEATURES", "END", "FEATURE_BOUND", "GraphObsSpec", "action_ids"]
