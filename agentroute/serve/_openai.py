"""The OpenAI wire format the server speaks: request checks, completion and chunk objects, error bodies.

Only what the ``openai`` client reads is produced: ``chat.completion`` and ``chat.completion.chunk`` objects with
``usage``, server-sent events ending in ``data: [DONE]``, and errors as ``{"error": {"message", "type", "param",
"code"}}``. This module is pure (no HTTP, no runs), so its shapes are easy to test.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from typing import Any

from agentroute.records import RunResult

CHUNK_WORDS = 8
"""Words per streamed chunk: the reply is complete before streaming starts, so chunks only pace the client."""


class RequestError(Exception):
    """A request the server refuses: the HTTP status and the OpenAI error body's fields."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error", code: str | None = None,
                 param: str | None = None, extra: Mapping[str, Any] | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"error": {"message": message, "type": type, "param": param, "code": code}}
        if extra:
            self.body.update(extra)
        self.headers = dict(headers or {})


def check_body(body: Any) -> tuple[str, list[dict[str, Any]], bool, bool]:
    """``(model, messages, stream, include_usage)`` of a chat request, or :class:`RequestError` (400)."""
    if not isinstance(body, dict):
        raise RequestError(400, "the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError(400, "`model` is required: one of GET /v1/models", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise RequestError(400, "`messages` must be a non-empty list of message objects", param="messages")
    for m in messages:
        if not isinstance(m.get("role"), str):
            raise RequestError(400, "every message needs a `role`", param="messages")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise RequestError(400, "`stream` must be true or false", param="stream")
    opts = body.get("stream_options") or {}
    include_usage = bool(isinstance(opts, dict) and opts.get("include_usage"))
    n = body.get("n", 1)
    if n not in (1, None):
        raise RequestError(400, "only n=1 is supported", param="n")
    return model, messages, stream, include_usage


def usage_of(result: RunResult) -> dict[str, int]:
    """The task's tokens over every model-call attempt, as OpenAI ``usage``."""
    prompt = sum(c.input_tokens for c in result.calls)
    completion = sum(c.output_tokens for c in result.calls)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def finish_reason(result: RunResult) -> str:
    """``stop`` for a completed task, ``length`` for one cut short by its budget (its partial output stands)."""
    return "stop" if not result.truncated else "length"


def completion(result: RunResult, model: str, text: str) -> dict[str, Any]:
    """A ``chat.completion`` object for a finished task."""
    return {
        "id": f"chatcmpl-{result.task_id}",
        "object": "chat.completion",
        "created": int(result.started_ns // 1_000_000_000) or int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": finish_reason(result), "logprobs": None}],
        "usage": usage_of(result),
    }


def chunk(task_id: str, created: int, model: str, delta: dict[str, Any], finish: str | None, *,
          usage: dict[str, int] | None = None, choices: bool = True, extra: Mapping[str, Any] | None = None) -> str:
    """One ``chat.completion.chunk`` as a server-sent event (``choices`` empty for usage and event chunks)."""
    obj: dict[str, Any] = {
        "id": f"chatcmpl-{task_id}", "object": "chat.completion.chunk", "created": created, "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}] if choices else [],
    }
    if usage is not None:
        obj["usage"] = usage
    if extra:
        obj.update(extra)
    return f"data: {json.dumps(obj, separators=(',', ':'))}\n\n"


def event_chunk(task_id: str, created: int, model: str, event: Mapping[str, Any]) -> str:
    """A step or decision event of the running task, as a chunk with no choices and an ``agentroute`` field."""
    return chunk(task_id, created, model, {}, None, choices=False, extra={"agentroute": dict(event)})


def error_event(body: Mapping[str, Any]) -> str:
    """An error in the middle of a stream, in the shape the ``openai`` client raises as an ``APIError``."""
    return f"data: {json.dumps(body, separators=(',', ':'))}\n\n"


DONE = "data: [DONE]\n\n"


def sse_events(result: RunResult, model: str, text: str, *, include_usage: bool, created: int | None = None,
               role: bool = True) -> Iterator[str]:
    """The server-sent events of a finished task: a role chunk, text chunks, a finish chunk, usage, ``[DONE]``.

    The stream carries exactly the text the task produced, and the task ran within its reservations, so a stream
    can never deliver more than its budget paid for (the text is not re-generated while streaming).
    """
    at = created if created is not None else int(result.started_ns // 1_000_000_000) or int(time.time())
    if role:
        yield chunk(result.task_id, at, model, {"role": "assistant", "content": ""}, None)
    words = text.split(" ")
    for i in range(0, len(words), CHUNK_WORDS):
        piece = " ".join(words[i:i + CHUNK_WORDS])
        if i + CHUNK_WORDS < len(words):
            piece += " "
        if piece:
            yield chunk(result.task_id, at, model, {"content": piece}, None)
    yield chunk(result.task_id, at, model, {}, finish_reason(result))
    if include_usage:
        yield chunk(result.task_id, at, model, {}, None, usage=usage_of(result), choices=False)
    yield DONE


__all__ = ["DONE", "RequestError", "check_body", "chunk", "completion", "error_event", "event_chunk", "finish_reason",
           "sse_events", "usage_of"]
