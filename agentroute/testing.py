"""Test doubles that ship with the library, so users test their graphs the way we test ours.

- :class:`Scripted`: an offline provider whose replies (texts, token counts, errors) are scripted per tier; it is
  registered with LiteLLM like :class:`~agentroute.providers.Simulated`, so the real call path runs.
- :class:`RecordingHooks`: keeps every record a run emits, for assertions.
- :class:`FakeOpenAIServer`: a small OpenAI-compatible HTTP server on 127.0.0.1 that can answer 429, 500, or stall
  on demand, to test retries, timeouts and fallbacks over real HTTP through LiteLLM.
- :func:`no_network`: refuses any connection that leaves the machine, so a test can never reach a real provider.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NoReturn

from agentroute.llm import ModelTier, RawReply, count_tokens, ensure_litellm
from agentroute.providers import simulated as _sim
from agentroute.records import CallRecord, LedgerEntry, RunHooks, RunResult, StepEnd, StepStart, TaskStart
from agentroute.routing import DecisionRecord


@dataclass(frozen=True, slots=True)
class Say:
    """One scripted reply: ``text``, the output tokens it reports (default: words of text), an optional quality."""

    text: str = "ok"
    output_tokens: int | None = None
    quality: float | None = None


@dataclass(frozen=True, slots=True)
class Fail:
    """One scripted failure: ``status`` 429 or 5xx (retryable), 400/401 (not), ``"timeout"``, or ``"credentials"``.

    ``"credentials"`` is a missing API key as LiteLLM reports it for OpenAI: a 500 saying "Missing credentials"
    (never retried).
    """

    status: int | str = 429


Step = Say | Fail | str


class Scripted:
    """An offline provider replaying a script per tier name (or ``"*"`` for any tier), through LiteLLM.

    ``Scripted({"small": ["hi", Fail(429), Say("long answer", output_tokens=300)], "*": ["fallback"]})``.
    When a tier's script runs out its last item repeats. ``input_tokens`` fixes the reported input tokens
    (default: LiteLLM's count, as the runtime reserves). Each call is logged in ``calls``.
    """

    name = "scripted"

    def __init__(self, script: Mapping[str, Sequence[Step]] | Callable[[str, list[Any]], Step] | None = None,
                 *, input_tokens: int | None = None) -> None:
        self.script = script if script is not None else {"*": ["ok"]}
        self.input_tokens = input_tokens
        self.calls: list[dict[str, Any]] = []
        self._pos: dict[str, int] = {}
        self._lock = threading.Lock()
        self._tiers: dict[str, str] = {}
        self._quality: dict[str, float] = {}
        self.id = f"scripted{next(_ids)}"
        _sim._instances[self.id] = self
        _sim._register()

    def bind(self, tiers: Sequence[ModelTier]) -> None:
        """Remember which model serves which tier."""
        for t in tiers:
            self._tiers[t.model] = t.name

    def kwargs_for(self, tier: ModelTier) -> dict[str, Any]:
        """Route through LiteLLM's custom-provider path to this script."""
        return {"model": f"{_sim.PROVIDER}/{tier.model}", "api_base": f"sim://{self.id}", "api_key": "scripted"}

    def provider_name(self, tier: ModelTier) -> str:
        """Reported as ``gen_ai.provider.name``."""
        return "scripted"

    def quality_of(self, reply: RawReply) -> float | None:
        """The scripted quality of a reply, if the script gave one."""
        with self._lock:
            return self._quality.pop(getattr(reply.response, "id", ""), None)

    def _next(self, tier: str, messages: list[Any]) -> Step:
        if callable(self.script):
            return self.script(tier, messages)
        items = self.script.get(tier) or self.script.get("*")
        if not items:
            raise KeyError(f"Scripted has no script for tier {tier!r}")
        with self._lock:
            i = self._pos.get(tier, 0)
            self._pos[tier] = i + 1
        return items[min(i, len(items) - 1)]

    def respond(self, model: str, messages: list[Any], optional_params: Mapping[str, Any]) -> tuple[Any, float]:
        """Produce the next scripted reply (or raise the scripted error) as LiteLLM would."""
        litellm = ensure_litellm()
        tier = self._tiers.get(model, model)
        max_tokens = int(optional_params.get("max_tokens") or 512)
        step = self._next(tier, messages)
        self.calls.append({"tier": tier, "model": model, "max_tokens": max_tokens, "messages": messages})
        if isinstance(step, Fail):
            _raise(litellm, step.status, model)
        say = Say(step) if isinstance(step, str) else step
        n_out = say.output_tokens if say.output_tokens is not None else max(1, len(say.text.split()))
        finish = "stop"
        if n_out > max_tokens:  # a real model stops at max_tokens
            n_out, finish = max_tokens, "length"
        n_in = self.input_tokens if self.input_tokens is not None else count_tokens(model, messages)
        rid = f"scr-{next(_ids)}"
        if say.quality is not None:
            with self._lock:
                self._quality[rid] = say.quality
        resp = litellm.ModelResponse(
            id=rid, model=model,
            choices=[{"index": 0, "finish_reason": finish, "message": {"role": "assistant", "content": say.text}}],
            usage={"prompt_tokens": n_in, "completion_tokens": n_out, "total_tokens": n_in + n_out},
        )
        return resp, 0.0


_ids = itertools.count(1)


def _raise(litellm: Any, status: int | str, model: str) -> NoReturn:
    kw = {"message": f"scripted {status}", "llm_provider": "scripted", "model": model}
    if status == "timeout":
        raise litellm.Timeout(**kw)
    if status == "credentials":
        raise litellm.InternalServerError(**{**kw, "message": "OpenAIException - Missing credentials. Please pass an "
                                                            "`api_key`, or set the `OPENAI_API_KEY` environment "
                                                            "variable."})
    if status == 429:
        raise litellm.RateLimitError(**kw)
    if status == 401:
        raise litellm.AuthenticationError(**kw)
    if status == 400:
        raise litellm.BadRequestError(**kw)
    if status == 503:
        raise litellm.ServiceUnavailableError(**kw)
    raise litellm.InternalServerError(**kw)


@dataclass
class RecordingHooks(RunHooks):
    """Keeps every record of every run (for tests and notebooks)."""

    tasks: list[TaskStart] = field(default_factory=list)
    steps: list[StepStart] = field(default_factory=list)
    step_ends: list[StepEnd] = field(default_factory=list)
    decisions: list[DecisionRecord] = field(default_factory=list)
    calls: list[CallRecord] = field(default_factory=list)
    ledger: list[LedgerEntry] = field(default_factory=list)
    results: list[RunResult] = field(default_factory=list)

    def on_task_start(self, task: TaskStart) -> None:  # noqa: D102
        self.tasks.append(task)

    def on_step_start(self, step: StepStart) -> None:  # noqa: D102
        self.steps.append(step)

    def on_decision(self, record: DecisionRecord) -> None:  # noqa: D102
        self.decisions.append(record)

    def on_model_call(self, call: CallRecord) -> None:  # noqa: D102
        self.calls.append(call)

    def on_ledger(self, entry: LedgerEntry) -> None:  # noqa: D102
        self.ledger.append(entry)

    def on_step_end(self, step: StepEnd) -> None:  # noqa: D102
        self.step_ends.append(step)

    def on_task_end(self, result: RunResult) -> None:  # noqa: D102
        self.results.append(result)


class FakeOpenAIServer:
    """An OpenAI-compatible ``/v1/chat/completions`` server on 127.0.0.1 for tests, honest or hostile on demand.

    ``server.plan`` is a list of what to do for the next requests; when it is empty, ``server.default`` (``"ok"``)
    is done. Every request (path, body, headers) is kept in ``server.requests``, and what the server really
    generated for each reply it sent, whatever it *reported*, in ``server.billed`` (``(prompt_tokens,
    completion_tokens)``, what a real provider would bill; :meth:`billed_usd` prices it). Use as a context manager.

    Actions (each an item of ``plan`` or the ``default``):

    - ``"ok"``: an honest reply of ``completion_tokens`` tokens at most (capped by the request's ``max_tokens``);
    - ``429``, ``500`` (any int status): an error answer, nothing generated;
    - ``("stall", s)``: wait ``s`` seconds, then answer ``ok`` (billed even if the client gave up);
    - ``("trickle", s)``: an ``ok`` reply whose body comes a few bytes at a time over ``s`` seconds (billed);
    - ``("overgenerate", k)``: ignore ``max_tokens`` and generate ``k`` times it (reported honestly);
    - ``"no_usage"``: an honest reply whose body has no ``usage`` at all;
    - ``("usage", prompt, completion)``: an honest reply that *reports* this usage (negative or under-reported
      counts), while ``billed`` keeps what was generated;
    - ``("echo", status)``: an error (``401`` for ``"echo"`` alone) whose message echoes the request's
      ``Authorization`` header and every ``x-*`` header, as careless gateways do;
    - a dict, for any mix: ``{"generate": n, "usage": (p, c) | "omit"}`` (``generate`` tokens
      whatever ``max_tokens`` says; ``usage`` reported as given, or omitted).

    The prompt is counted as its words plus 4 per message, plus the words of ``tools`` and ``response_format``
    (never more than LiteLLM's count of the same request); a completion is ``n`` words ``"tok"``, one token each.
    """

    def __init__(self, *, completion_tokens: int = 12, text: str = "hello from the fake server") -> None:
        self.plan: list[Any] = []
        self.default: Any = "ok"
        self.requests: list[dict[str, Any]] = []
        self.billed: list[tuple[int, int]] = []
        self.completion_tokens = completion_tokens
        self.text = text
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                n = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(n) or b"{}")
                headers = {k.lower(): v for k, v in self.headers.items()}
                outer.requests.append({"path": self.path, "body": body, "auth": self.headers.get("authorization"),
                                       "headers": headers})
                action = outer.plan.pop(0) if outer.plan else outer.default
                if isinstance(action, tuple) and action[0] == "stall":
                    time.sleep(float(action[1]))
                    action = "ok"
                if isinstance(action, tuple) and action[0] == "trickle":
                    self.trickle = float(action[1])
                    action = "ok"
                if action == "echo" or (isinstance(action, tuple) and action[0] == "echo"):
                    status = 401 if action == "echo" else int(action[1])
                    seen = {k: v for k, v in headers.items() if k == "authorization" or k.startswith("x-")}
                    message = f"fake {status}: invalid credentials; request headers were {json.dumps(seen)}"
                    self._send(status, json.dumps({"error": {"message": message, "type": "invalid_request_error",
                                                              "code": status}}))
                    return
                if isinstance(action, int):
                    payload = json.dumps({"error": {"message": f"fake {action}", "type": "fake", "code": action}})
                    self._send(action, payload)
                    return
                self._reply(body, outer._shape(action, body))

            def _reply(self, body: dict[str, Any], shape: tuple[int, Any, bool]) -> None:
                n_out, usage, honest = shape
                max_tokens = _max_tokens(body)
                prompt = _prompt_words(body)
                outer.billed.append((prompt, n_out * max(1, int(body.get("n") or 1))))
                text = outer.text if honest else " ".join(["tok"] * n_out)
                out: dict[str, Any] = {
                    "id": f"chatcmpl-{len(outer.requests)}", "object": "chat.completion", "created": int(time.time()),
                    "model": body.get("model", "fake"),
                    "choices": [{"index": i, "finish_reason": "stop" if n_out < max_tokens else "length",
                                 "message": {"role": "assistant", "content": text}}
                                for i in range(max(1, int(body.get("n") or 1)))],
                }
                billed_out = outer.billed[-1][1]
                if usage != "omit":
                    p, c = (prompt, billed_out) if usage is None else usage
                    out["usage"] = {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}
                self._send(200, json.dumps(out))

            trickle = 0.0

            def _send(self, status: int, payload: str) -> None:
                data = payload.encode()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    if self.trickle <= 0:
                        self.wfile.write(data)
                        return
                    # a slow body: the client sees bytes every trickle/40 seconds, never a silent read
                    pieces = 40
                    size = max(1, -(-len(data) // pieces))
                    for i in range(0, len(data), size):
                        self.wfile.write(data[i:i + size])
                        self.wfile.flush()
                        time.sleep(self.trickle / pieces)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # stop() waits for the serving loop's next poll: 0.5 s by default, per server (a suite starts dozens)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def _shape(self, action: Any, body: dict[str, Any]) -> tuple[int, Any, bool]:
        """What to answer: tokens generated per choice, the usage reported and whether the reply is the usual text.

        The usage is ``None`` (honest), ``"omit"`` or ``(prompt, completion)``.
        """
        max_tokens = _max_tokens(body)
        honest = min(self.completion_tokens, max_tokens)
        if action == "ok":
            return honest, None, True
        if action == "no_usage":
            return honest, "omit", True
        if isinstance(action, tuple) and action[0] == "overgenerate":
            return int(float(action[1]) * max_tokens), None, False
        if isinstance(action, tuple) and action[0] == "usage":
            return honest, (int(action[1]), int(action[2])), True
        if isinstance(action, Mapping):
            usage = action.get("usage")
            if "generate" not in action:
                return honest, (tuple(usage) if isinstance(usage, list | tuple) else usage), True
            return int(action["generate"]), (tuple(usage) if isinstance(usage, list | tuple) else usage), False
        raise ValueError(f"FakeOpenAIServer: unknown action {action!r}")

    def billed_usd(self, input_price: Any, output_price: Any) -> Any:
        """What the server really generated, priced per input and output token (``Decimal`` in, ``Decimal`` out)."""
        from decimal import Decimal

        pin, pout = Decimal(str(input_price)), Decimal(str(output_price))
        return sum((pin * p + pout * c for p, c in self.billed), Decimal(0))

    @property
    def url(self) -> str:
        """Base URL for ``ModelTier(api_base=...)``, ending in ``/v1``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def __enter__(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _max_tokens(body: Mapping[str, Any]) -> int:
    return int(body.get("max_tokens") or body.get("max_completion_tokens") or 100)


def _prompt_words(body: Mapping[str, Any]) -> int:
    words = sum(len(str(m.get("content", "")).split()) + 4 for m in body.get("messages", []))
    for key in ("tools", "functions", "response_format"):
        if body.get(key):
            words += len(json.dumps(body[key]).split())
    return words


_LOCAL = ("127.", "::1", "localhost", "0.0.0.0")


@contextlib.contextmanager
def no_network() -> Iterator[None]:
    """Refuse every connection to a non-loopback address (a test must never reach a real provider)."""
    real = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else str(address)
        if self.family == socket.AF_UNIX or str(host).startswith(_LOCAL):
            return real(self, address)
        raise ConnectionRefusedError(f"agentroute.testing.no_network: a test tried to reach {address!r}")

    socket.socket.connect = guarded  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        socket.socket.connect = real  # type: ignore[method-assign]


__all__ = ["Fail", "FakeOpenAIServer", "RecordingHooks", "Say", "Scripted", "no_network"]
