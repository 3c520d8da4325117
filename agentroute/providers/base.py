"""The provider protocol and the live default.

A provider turns a :class:`~agentroute.llm.ModelTier` into the keyword arguments of a LiteLLM call and may report
a quality signal for a reply (only simulated worlds can). It never sees budgets.
"""

from __future__ import annotations

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


def _secrets_in(params: Mapping[str, Any]) -> tuple[str, ...]:
    """Every credential a tier's params carry (``api_key``, header values, credential-named params)."""
    out: list[str] = []
    for key, value in params.items():
        if key == "extra_headers" and isinstance(value, Mapping):
            out.extend(v for v in value.values() if isinstance(v, str))
        elif isinstance(value, str) and (SECRET_KEY_RE.search(str(key))
                                         or str(key).lower().endswith(("_key", "secret", "_token", "password"))):
            out.append(value)
    return tuple(out)


_SECRETS: dict[int, tuple[Mapping[str, Any], tuple[tuple[str, Any], ...], tuple[str, ...]]] = {}
"""``id(params)`` -> (the params, their items, the credentials they carry): read again only when an item changed."""


def _register_params(params: Mapping[str, Any]) -> None:
    """Register every credential a tier's params carry (each call: a rotated key may have been unregistered)."""
    hit = _SECRETS.get(id(params))
    if (hit is None or hit[0] is not params or len(hit[1]) != len(params)
            or any(params.get(k) is not v for k, v in hit[1]) or "extra_headers" in params):
        hit = (params, tuple(params.items()), _secrets_in(params))
        if len(_SECRETS) < 4096:  # the params object is kept alive with its entry, so its id is never reused
            _SECRETS[id(params)] = hit
    for value in hit[2]:
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
