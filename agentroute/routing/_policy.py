"""The policy as the kernel calls it: every optional capability of the contract resolved once, with its default.

:class:`Policy` wraps whatever object was given as a policy (a :class:`~agentroute.routing.PolicyBase` subclass, or a
plain object with only ``decide`` and maybe ``feedback``). The optional methods of the contract are looked up here,
once, and nowhere else; a missing one gets the default the contract declares. A policy that raises is a
:class:`~agentroute.errors.PolicyError` naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from agentroute.errors import ConfigError, PolicyError
from agentroute.routing._types import Decision, Feedback, Observation
from agentroute.routing.policy import GraphSpec, TaskOutcome, implements


def _accept_all(obs: Observation, decision: Decision, reply: Any) -> bool:
    return True


class Policy:
    """A policy with every capability of :class:`~agentroute.routing.RouterPolicy` filled in (see the module doc)."""

    __slots__ = ("_accept", "_bind", "_decide", "_feedback", "_on_task_end", "name", "policy", "version")

    def __init__(self, policy: Any) -> None:
        if isinstance(policy, Policy):
            policy = policy.unwrapped
        decide = getattr(policy, "decide", None)
        if not callable(decide):
            raise ConfigError(f"policy must have a decide(obs) method, got {type(policy).__name__}", name="policy")
        self.policy: Any = policy
        """The object given as the policy."""
        self.name = str(getattr(policy, "name", type(policy).__name__))
        self.version = str(getattr(policy, "version", "0"))
        self._decide: Callable[[Observation], Decision] = decide
        self._feedback: Callable[[Feedback], None] | None = _method(policy, "feedback")
        self._bind: Callable[[GraphSpec], None] | None = _method(policy, "bind")
        self._accept: Callable[[Observation, Decision, Any], bool] = _method(policy, "accept") or _accept_all
        self._on_task_end: Callable[[TaskOutcome], None] | None = _method(policy, "on_task_end")

    @property
    def unwrapped(self) -> Any:
        """The object given as the policy."""
        return self.policy

    @property
    def learns(self) -> bool:
        """True when the policy implements ``feedback`` (:func:`~agentroute.routing.implements`)."""
        return self._feedback is not None

    def decide(self, obs: Observation) -> Decision:
        """Ask the policy; a crash is a :class:`PolicyError`."""
        try:
            return self._decide(obs)
        except Exception as e:
            raise PolicyError(f"policy {self.name!r} raised at {obs.point}: {e!r}", policy=self.name) from e

    def feedback(self, fb: Feedback) -> None:
        """Hand an outcome to the policy (nothing when it has no ``feedback``)."""
        if self._feedback is None:
            return
        try:
            self._feedback(fb)
        except Exception as e:
            raise PolicyError(f"policy {self.name!r} feedback raised: {e!r}", policy=self.name) from e

    def bind(self, spec: GraphSpec) -> None:
        """Check the policy against a compiled graph (its own ``ConfigError`` passes through)."""
        if self._bind is not None:
            self._bind(spec)

    def accept(self, obs: Observation, decision: Decision, reply: Any) -> bool:
        """Whether a model reply is good enough (a cascade may say no); default ``True``."""
        try:
            return bool(self._accept(obs, decision, reply))
        except Exception as e:
            raise PolicyError(f"policy {self.name!r} accept() raised: {e!r}", policy=self.name) from e

    def on_task_end(self, outcome: TaskOutcome) -> None:
        """End-of-task credit (nothing when the policy has no ``on_task_end``)."""
        if self._on_task_end is None:
            return
        try:
            self._on_task_end(outcome)
        except Exception as e:
            raise PolicyError(f"policy {self.name!r} on_task_end raised: {e!r}", policy=self.name) from e

    def __repr__(self) -> str:
        return f"Policy({self.policy!r})"


def _method(obj: Any, name: str) -> Any:
    """``obj.name`` when the policy implements it beyond :class:`PolicyBase`'s default (a default is not called)."""
    if not implements(obj, name):
        return None
    m = getattr(obj, name, None)
    return m if callable(m) else None


def shadow_decisions(shadows: Sequence[Policy], obs: Observation) -> dict[str, dict[str, Any]]:
    """What each shadow would choose on ``obs``, by name, never acted on.

    ``{"chosen", "probabilities"}``, or ``{"error"}`` when it raised or chose outside the candidates (a shadow never
    fails the task it watches).
    """
    out: dict[str, dict[str, Any]] = {}
    ids = obs.ids
    for s in shadows:
        name = s.name
        n = 2
        while name in out:
            name, n = f"{s.name}#{n}", n + 1
        try:
            d = s.decide(obs)
        except PolicyError as e:
            out[name] = {"error": str(e).splitlines()[0][:200]}
            continue
        if d.chosen not in ids:
            out[name] = {"error": f"chose {d.chosen!r}, not a candidate"}
            continue
        out[name] = {"chosen": d.chosen, "probabilities": {i: float(d.probabilities.get(i, 0.0)) for i in ids}}
    return out


__all__ = ["Policy", "shadow_decisions"]
