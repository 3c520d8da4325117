"""Multi-model strategies: more than one model (or agent) per task, each call a routing point under the task's budget.

- :class:`ACAR` — σ-probe escalation: cheap probes answer, their disagreement decides which stronger models to add.
- :func:`run_strategy` / :func:`evaluate_strategies` — strategies on a recorded table (real answers, real costs).
"""

from agentroute.strategies._answers import extract, family_of, sigma
from agentroute.strategies._driver import Answer, Caller, Outcome
from agentroute.strategies.acar import ACAR, select_probes
from agentroute.strategies.evaluate import Report, Single, evaluate_strategies, run_strategy

__all__ = ["ACAR", "Answer", "Caller", "Outcome", "Report", "Single", "evaluate_strategies", "extract",
           "family_of", "run_strategy", "select_probes", "sigma"]
