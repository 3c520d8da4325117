"""The one exception tree of agentroute.

Every error the library raises on purpose derives from :class:`AgentRouteError`. Misuse is kept apart from
failures of a run, so callers can tell "fix your code" from "this task could not finish"::

    AgentRouteError
    ├── ConfigError              misuse, raised at build/compile time, names the offending thing
    │   ├── DataError            a routing table or data file that does not validate
    │   │   └── NotRecorded      a recorded replay was asked for a prompt or model it does not hold
    │   └── StoreError           the store cannot be used as asked: unreachable, empty, another schema
    │       └── SchemaMismatch   the database holds agentroute tables of another schema version
    ├── Unaffordable             a ledger refused a reservation (the ledger's answer; the runtime turns it into
    │                            a truncation, callers of Ledger.reserve see it)
    └── RunError                 a task could not finish; carries the partial state
        ├── BudgetExhausted      nothing affordable was left (only with on_exhausted="error")
        ├── BudgetViolation      a call spent past its worst case, or an unknown cost under a USD limit (only
        │                        with on_violation="error"; by default the run returns with status "overrun")
        ├── PolicyError          a policy chose a masked or unknown candidate, or crashed
        ├── ProviderError        a model call failed after its retries and fallbacks
        ├── AgentError           an agent function raised
        └── LedgerError          a shared ledger (Redis, SQL) failed; what was held is accounted for

Errors carry structured fields (``.name``, ``.reason``, ``.state`` ...) and their message says what to do next.
This module must never import anything heavy: it is imported by everything.
"""

from __future__ import annotations

from typing import Any


class AgentRouteError(Exception):
    """Root of every error agentroute raises on purpose."""


class ConfigError(AgentRouteError, ValueError):
    """The library was used wrongly; raised before any task runs, naming what is wrong and how to fix it.

    ``name`` is the offending thing (an agent, a tier, a rule, a field), when there is one.
    """

    def __init__(self, message: str, *, name: str | None = None, hint: str | None = None) -> None:
        self.name = name
        self.hint = hint
        super().__init__(f"{message} ({hint})" if hint else message)


class DataError(ConfigError):
    """A data file or table is malformed: missing columns, NaN quality, negative cost, incomplete queries."""


class RunError(AgentRouteError):
    """A task could not finish. ``state`` is its partial state; ``result`` the partial :class:`RunResult`."""

    def __init__(self, message: str, *, state: dict[str, Any] | None = None, result: Any = None) -> None:
        self.state = state if state is not None else {}
        self.result = result
        super().__init__(message)


class BudgetExhausted(RunError):
    """Nothing affordable was left. Raised only when the run asked for ``on_exhausted="error"``.

    ``reason`` names the exhausted dimension; ``spent`` and ``limits`` are the task's totals at that moment.
    """

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        spent: Any = None,
        limits: Any = None,
        state: dict[str, Any] | None = None,
        result: Any = None,
    ) -> None:
        self.reason = reason
        self.spent = spent
        self.limits = limits
        super().__init__(message, state=state, result=result)


class BudgetViolation(RunError):
    """A commit broke its worst case (``result.violations`` lists each). Raised only with ``on_violation="error"``.

    What was spent was charged in full; ``violations`` are the :class:`~agentroute.budget.Violation` s and
    ``result`` the partial run (status ``overrun``). By default (``on_violation="record"``) the run returns instead.
    """

    def __init__(self, message: str, *, violations: Any = (), state: dict[str, Any] | None = None,
                 result: Any = None) -> None:
        self.violations = list(violations)
        super().__init__(message, state=state, result=result)


class PolicyError(RunError):
    """A policy returned a candidate that was masked or unknown, or raised while deciding."""

    def __init__(self, message: str, *, policy: str = "", chosen: str | None = None, **kw: Any) -> None:
        self.policy = policy
        self.chosen = chosen
        super().__init__(message, **kw)


class ProviderError(RunError):
    """A model call failed after every retry and fallback. ``attempts`` lists what was tried."""

    def __init__(self, message: str, *, attempts: list[dict[str, Any]] | None = None, **kw: Any) -> None:
        self.attempts = attempts or []
        super().__init__(message, **kw)


class AgentError(RunError):
    """An agent function raised. ``agent`` names it; the original exception is ``__cause__``."""

    def __init__(self, message: str, *, agent: str, **kw: Any) -> None:
        self.agent = agent
        super().__init__(message, **kw)


class NotRecorded(DataError):
    """A :class:`~agentroute.providers.Recorded` replay was asked for a prompt or a model it holds no answer for.

    ``model`` and ``prompt`` (cut short) name what was asked; a replay never invents an answer.
    """

    def __init__(self, message: str, *, model: str, prompt: str | None = None, hint: str | None = None) -> None:
        self.model = model
        self.prompt = prompt
        super().__init__(message, name=model, hint=hint)


class StoreError(ConfigError):
    """The store cannot be used as asked: unreachable, another schema version, or empty."""


class SchemaMismatch(StoreError):
    """The database holds agentroute tables of another schema version (``found``; ``expected`` is ours)."""

    def __init__(self, message: str, *, found: int, expected: int) -> None:
        self.found = found
        self.expected = expected
        super().__init__(message, name="schema")


class Unaffordable(AgentRouteError):
    """A reservation did not fit; ``dimension`` names the limit it would break. Nothing was held."""

    def __init__(self, dimension: str, needed: Any, remaining: Any) -> None:
        self.dimension = dimension
        self.needed = needed
        self.remaining = remaining
        super().__init__(f"{dimension}: needs {needed}, {remaining} left")


class LedgerError(RunError):
    """A shared ledger (Redis, SQL) failed while a task reserved or settled; ``backend`` names it.

    Carries the task's partial result like every :class:`RunError`; what the task held is released or reclaimed by
    its lease, and what it spent is never forgotten.
    """

    def __init__(self, message: str, *, backend: str = "", **kw: Any) -> None:
        self.backend = backend
        super().__init__(message, **kw)


__all__ = [
    "AgentError",
    "AgentRouteError",
    "BudgetExhausted",
    "ConfigError",
    "DataError",
    "LedgerError",
    "NotRecorded",
    "PolicyError",
    "ProviderError",
    "RunError",
    "SchemaMismatch",
    "StoreError",
    "Unaffordable",
]
