"""The one LiteLLM custom-provider handler behind every offline provider (simulated worlds, recorded replays).

An offline provider registers once per process under its LiteLLM provider name (``agentroute_sim``,
``agentroute_rec``); each instance is addressed through ``api_base="<scheme>://<id>"``, so several can coexist in one
process. The handler finds the instance and asks it to ``respond(model, messages, optional_params)`` ->
``(ModelResponse, latency)``; an instance with ``realtime=True`` sleeps for the latency.

An error of agentroute's own (a replay that holds no such prompt) raised by ``respond`` reaches the caller as a
non-retryable LiteLLM ``BadRequestError`` whose ``__cause__`` is the original error: LiteLLM wraps whatever a handler
raises, and a 400 is never retried or taken for a transient failure.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from typing import Any

from agentroute.errors import AgentRouteError, ConfigError
from agentroute.llm import ensure_litellm

_lock = threading.Lock()


def instance(registry: weakref.WeakValueDictionary[str, Any], scheme: str, api_base: str | None) -> Any:
    """The provider instance ``api_base`` (``<scheme>://<id>``) addresses."""
    sid = (api_base or "").removeprefix(f"{scheme}://")
    inst = registry.get(sid)
    if inst is None:
        raise ConfigError(f"no offline provider is registered as {api_base!r}", name="api_base")
    return inst


def _respond(inst: Any, model: str, messages: list[Any], kw: dict[str, Any]) -> tuple[Any, float]:
    try:
        out: tuple[Any, float] = inst.respond(model, messages, kw.get("optional_params") or {})
        return out
    except AgentRouteError as e:
        litellm = ensure_litellm()
        raise litellm.BadRequestError(message=str(e), model=model, llm_provider=str(inst.provider)) from e


def register(provider: str, scheme: str, registry: weakref.WeakValueDictionary[str, Any]) -> None:
    """Register the handler for ``provider`` with LiteLLM, once per process."""
    litellm = ensure_litellm()
    with _lock:
        current = list(getattr(litellm, "custom_provider_map", []))
        if any(item.get("provider") == provider for item in current):
            return
        from litellm.llms.custom_llm import CustomLLM

        class _Handler(CustomLLM):
            def completion(self, model: str, messages: list[Any], api_base: str, *a: Any, **kw: Any) -> Any:
                inst = instance(registry, scheme, api_base)
                resp, latency = _respond(inst, model, messages, kw)
                if getattr(inst, "realtime", False):
                    time.sleep(latency)
                return resp

            async def acompletion(self, model: str, messages: list[Any], api_base: str, *a: Any, **kw: Any) -> Any:
                inst = instance(registry, scheme, api_base)
                resp, latency = _respond(inst, model, messages, kw)
                if getattr(inst, "realtime", False):
                    await asyncio.sleep(latency)
                return resp

        entry = {"provider": provider, "custom_handler": _Handler()}
        setattr(litellm, "custom_provider_map", [*current, entry])  # noqa: B010 - litellm types omit it
        from litellm.utils import custom_llm_setup

        custom_llm_setup()  # type: ignore[no-untyped-call]


def cause(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    """The first error of type ``kind`` in ``exc``'s cause/context chain (LiteLLM wraps a handler's errors)."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, kind):
            return cur
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return None


__all__ = ["cause", "instance", "register"]
