"""Multi-model strategies: more than one model (or agent) per task, each call a routing point under the task's budget.

- :class:`ACAR` — σ-probe escalation: cheap probes answer, their disagreement decides which stronger models to add.
- :class:`FanOut` — a routing point picks a set of agents by their descriptors (Plackett–Luce propensities), every
  member reserved first, run in parallel, a refine node merges.
- :class:`LLMPolicy` — a Router-R1-style LLM router: a model tier reads the candidates and the budget, names its
  choice, reads the answer, routes again or finishes; unparseable or late answers fall back to a rule.
- :class:`Cached` / :class:`SemanticCache` — a category-aware semantic cache offered like a tier (a hit costs 0).
- :func:`run_strategy` / :func:`evaluate_strategies` — strategies on a recorded table (real answers, real costs).

Every strategy calls models through :class:`Caller` (offer → take → reserve the worst case → call → commit → record),
so none can spend past the task's budget. Guide: ``docs/strategies.md``.
"""

from agentroute.strategies._answers import extract, family_of, sigma
from agentroute.strategies._driver import Answer, ByModel, Caller, Outcome
from agentroute.strategies.acar import ACAR, select_probes
from agentroute.strategies.cache import Cached, CacheRule, SemanticCache, repeat_stream
from agentroute.strategies.evaluate import Report, Single, evaluate_strategies, run_strategy
from agentroute.strategies.fanout import Descriptor, FanOut, plackett_luce, set_propensity
from agentroute.strategies.llm_router import LLMPolicy

__all__ = ["ACAR", "Answer", "ByModel", "CacheRule", "Cached", "Caller", "Descriptor", "FanOut", "LLMPolicy",
           "Outcome", "Report", "SemanticCache", "Single", "evaluate_strategies", "extract", "family_of",
           "plackett_luce", "repeat_stream", "run_strategy", "select_probes", "set_propensity", "sigma"]
