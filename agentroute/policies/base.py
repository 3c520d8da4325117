"""The base class most policies share: naming, versioning, validation of choices, and no-op feedback.

A policy never imports the runtime. It sees an :class:`~agentroute.routing.Observation` and returns a
:class:`~agentroute.routing.Decision`; ``bind`` lets it check, at compile time, that every option it names exists.
"""

from __future__ import annotations

from collections.abc import Sequence

from agentroute.errors import ConfigError
from agentroute.routing import Decision, Feedback, GraphSpec, Observation


class BasePolicy:
    """Shared plumbing: ``name``/``version``, ``bind`` (compile-time checks), and a no-op ``feedback``.

    Subclasses implement :meth:`decide`. Online learners override :meth:`feedback`.
    """

    name: str = "policy"
    version: str = "1"

    def decide(self, obs: Observation) -> Decision:
        """Choose one of ``obs.candidates``."""
        raise NotImplementedError

    def feedback(self, fb: Feedback) -> None:
        """Learn from an outcome. Fixed policies ignore it."""

    def bind(self, spec: GraphSpec) -> None:
        """Check this policy against a graph at compile time; raise :class:`ConfigError` naming what is unknown."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, version={self.version!r})"


def check_known(names: Sequence[str], known: set[str], *, what: str, policy: str) -> None:
    """Raise :class:`ConfigError` for the first of ``names`` that is not in ``known``."""
    for n in names:
        if n not in known:
            raise ConfigError(
                f"policy {policy!r} refers to unknown {what} {n!r}",
                name=n,
                hint=f"known: {', '.join(sorted(known)) or 'none'}",
            )
