"""Model calls under a task's ``seconds`` limit, and LiteLLM's warm-up kept off every task's clock.

A timeout handed to LiteLLM bounds each read of the reply, not the call: a provider that trickles its body a few bytes
at a time (or a retry inside the HTTP client) can hold a call far past it. So a call made while a ``seconds`` limit
applies also runs under a hard deadline, the task's time left: the async twin under ``asyncio.timeout`` (the call is
cancelled), the sync twin on a worker thread that the task stops waiting for at the deadline (the thread is
abandoned and ends when its HTTP timeout fires or the reply ends; its result is dropped). Either way the attempt ends
as :class:`CallDeadline`, which the runtime settles like any failed attempt, and the task stops with
``budget:seconds``.

LiteLLM imports its provider clients on the first call (hundreds of modules, seconds on a loaded machine).
:func:`warm_up` does that once per process, offline, before a task's clock starts.

This module must never decide what a call costs or whether it may run: it only bounds how long the runtime waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from agentroute import llm


class CallDeadline(TimeoutError):
    """The task's ``seconds`` ran out while a model call was in flight: the runtime stopped waiting for it."""


def _deadline_error(seconds: float) -> CallDeadline:
    return CallDeadline(f"the task's time limit ran out {seconds:.3f}s into the call; the call was abandoned")


def complete_within(kwargs: Mapping[str, Any], seconds: float | None) -> llm.RawReply:
    """:func:`agentroute.llm.complete`, but waited for ``seconds`` at most (``None``: no limit, same thread)."""
    if seconds is None:
        return llm.complete(kwargs)
    box: dict[str, Any] = {}
    done = threading.Event()
    ctx = contextvars.copy_context()  # the caller's trace context and redaction registry follow the call

    def work() -> None:
        try:
            box["reply"] = ctx.run(llm.complete, kwargs)
        except BaseException as e:  # handed back to the waiting task, never lost
            box["error"] = e
        finally:
            done.set()

    threading.Thread(target=work, name="agentroute-call", daemon=True).start()
    if not done.wait(max(0.0, seconds)):
        raise _deadline_error(seconds)
    if "error" in box:
        raise box["error"]
    reply: llm.RawReply = box["reply"]
    return reply


async def acomplete_within(kwargs: Mapping[str, Any], seconds: float | None) -> llm.RawReply:
    """Async twin of :func:`complete_within`: the call is cancelled at the deadline."""
    if seconds is None:
        return await llm.acomplete(kwargs)
    try:
        async with asyncio.timeout(max(0.0, seconds)) as scope:
            return await llm.acomplete(kwargs)
    except TimeoutError:
        if scope.expired():
            raise _deadline_error(seconds) from None
        raise


_WARM: set[str] = set()
_WARM_LOCK = threading.Lock()


def warm_up(models: Iterable[str], *, clients: bool = True) -> bool:
    """Import LiteLLM and run its call path once per process, offline, so no task's clock pays for it.

    ``models`` are the LiteLLM model names the tiers call. Every model's tokenizer is loaded; when one goes through
    LiteLLM's OpenAI client (``openai/...``, OpenAI-compatible servers), one call is made through that client over an
    in-memory transport (nothing leaves the process; ``clients=False`` skips it, for providers that never use
    it). Failures are ignored: warming up is an optimisation. Returns ``True`` (done).
    """
    models = list(models)
    with _WARM_LOCK:
        litellm = llm.ensure_litellm()
        for m in models:
            if m not in _WARM:
                _WARM.add(m)
                with contextlib.suppress(Exception):  # a tokenizer LiteLLM cannot load is tried again at the call
                    llm.count_tokens(m, [{"role": "user", "content": "warm up"}])
        if not clients or "client:openai" in _WARM:
            return True
        for m in models:
            try:
                provider = litellm.get_llm_provider(m)[1]
            except Exception:
                continue
            if provider in ("openai", "openai_like", "text-completion-openai"):
                _WARM.add("client:openai")
                _openai_call(litellm)
                break
    return True


def _openai_call(litellm: Any) -> None:
    try:
        import httpx
        import openai

        def answer(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, json={
                "id": "warm-up", "object": "chat.completion", "created": 0, "model": "warm-up",
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})

        with httpx.Client(transport=httpx.MockTransport(answer)) as http:
            client = openai.OpenAI(api_key="warm-up", base_url="http://127.0.0.1:9/v1", http_client=http)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                litellm.completion(model="openai/gpt-4o-mini", api_key="warm-up", client=client, max_tokens=1,
                                   messages=[{"role": "user", "content": "warm up"}], num_retries=0)
    except Exception:  # pragma: no cover - another LiteLLM layout: the first real call pays instead
        pass


__all__ = ["CallDeadline", "acomplete_within", "complete_within", "warm_up"]
