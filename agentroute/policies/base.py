"""Deprecated home of the policy base class: :class:`agentroute.routing.PolicyBase` is the one base now.

``BasePolicy`` stays an alias of :class:`~agentroute.routing.PolicyBase` for one release, so ``class
MyPolicy(ar.policies.BasePolicy)`` keeps working; :func:`check_known` is the shared compile-time check of the names
a policy refers to.
"""

from __future__ import annotations

from collections.abc import Iterable

from agentroute.errors import ConfigError
from agentroute.routing import PolicyBase

BasePolicy = PolicyBase
"""Alias of :class:`agentroute.routing.PolicyBase` (kept for one release)."""


def check_known(names: Iterable[str], known: set[str], *, what: str, policy: str) -> None:
    """Raise :class:`ConfigError` for the first of ``names`` that is not in ``known``."""
    for n in names:
        if n not in known:
            raise ConfigError(
                f"policy {policy!r} refers to unknown {what} {n!r}",
                name=n,
                hint=f"known: {', '.join(sorted(known)) or 'none'}",
            )


__all__ = ["BasePolicy", "check_known"]
