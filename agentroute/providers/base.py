"""The provider protocol and the live default.

A provider turns a :class:`~agentroute.llm.ModelTier` into the keyword arguments of a LiteLLM call and may report
a quality signal for a reply (only simulated worlds can). It never sees budgets.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from agentroute._telemetry_redact import SECRET_KEY_RE, register_secret
from agentroute.errors import ConfigError
from agentroute.llm import ModelTier, RawReply


@runtime_checkable
class Provider(Protocol):
    """Where model calls go. ``name`` is reported as ``gen_ai.provider.name``."""

    name: str

    def bind(self, tiers: Sequence[ModelTier]) -> None:
        """Called once at compile time with every tier of the graph."""
        ...

    def kwargs_for(self, tier: ModelTier) -> dict[str, Any]:
        """Keyword arguments (``model``, ``api_base``, ...) of a LiteLLM call for ``tier``."""
        ...

    def provider_name(self, tier: ModelTier) -> str:
        """The ``gen_ai.provider.name`` of calls to ``tier``."""
        ...

    def quality_of(self, reply: RawReply) -> float | None:
        """A quality signal in [0, 1] for ``reply``, when the provider can tell; else ``None``."""
        ...


@functools.lru_cache(maxsize=1024)
def _credential_key(key: str) -> bool:
    """Whether a params key names a credential (tiers repeat the same few keys: the answer is remembered)."""
    return bool(SECRET_KEY_RE.search(key)) or key.lower().endswith(("_key", "secret", "_token", "password"))


def _register_params(params: Mapping[str, Any]) -> None:
    """Register every credential a tier's params carry (``api_key``, header values, credential-named params).

    Run at every call: a rotated key may have been unregistered since.
    """
    for key, value in params.items():
        if key == "extra_headers" and isinstance(value, Mapping):
            for v in value.values():
                register_secret(v if isinstance(v, str) else None)
        elif isinstance(value, str) and _credential_key(str(key)):
            register_secret(value)


class Live:
    """Real APIs through LiteLLM. Keys come from the environment (``tier.api_key_env`` or LiteLLM's defaults)."""

    name = "live"

    def bind(self, tiers: Sequence[ModelTier]) -> None:
        """Nothing to prepare."""

    def kwargs_for(self, tier: ModelTier) -> dict[str, Any]:
        """The tier's model, base URL and key, plus its extra params."""
        kw: dict[str, Any] = {"model": tier.model, **tier.params}
        _register_params(tier.params)
        if tier.api_base:
            kw["api_base"] = tier.api_base
        if tier.api_key_env:
            key = os.environ.get(tier.api_key_env)
            if not key:
                raise ConfigError(
                    f"tier {tier.name!r}: environment variable {tier.api_key_env} is not set",
                    name=tier.api_key_env,
                    hint="export it, or use provider=agentroute.providers.Simulated() offline",
                )
            kw["api_key"] = key
            register_secret(key)  # whatever its variable is called, it never reaches a span or a row
        return kw

    def provider_name(self, tier: ModelTier) -> str:
        """The prefix of the model name (``openai`` for ``openai/gpt-4o``)."""
        return tier.model.split("/", 1)[0] if "/" in tier.model else "openai"

    def quality_of(self, reply: RawReply) -> float | None:
        """Real APIs report no quality."""
        return None
