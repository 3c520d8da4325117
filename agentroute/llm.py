"""The one adapter to LiteLLM: model tiers, prices, token counts, and the call itself.

Everything agentroute knows about model calls goes through here: prices come from LiteLLM's cost map (overridable
per tier), input tokens are counted with LiteLLM's token counter, and calls go through ``litellm.completion`` /
``litellm.acompletion`` with LiteLLM's own retries turned off, so every attempt is visible, charged and traced by the
runtime. LiteLLM is imported lazily (its import takes seconds) and told to use its bundled price map, never the
network, unless the user set ``LITELLM_LOCAL_MODEL_COST_MAP`` themselves.

This module must never decide anything about budgets: it reports tokens and prices; the runtime enforces limits.
"""

from __future__ import annotations

import functools
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from types import ModuleType
from typing import Any

from agentroute import _llm_params
from agentroute.budget import to_decimal
from agentroute.errors import ConfigError

Message = Mapping[str, Any]


_LITELLM: ModuleType | None = None


def ensure_litellm() -> ModuleType:
    """Import LiteLLM configured for offline safety: local price map, no telemetry, quiet."""
    global _LITELLM
    if _LITELLM is not None:  # the hot path: every call asks
        return _LITELLM
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    if not getattr(litellm, "_agentroute_configured", False):
        litellm.suppress_debug_info = True
        litellm.telemetry = False
        litellm.drop_params = True
        litellm._agentroute_configured = True
    _LITELLM = litellm
    return litellm


@dataclass(frozen=True, slots=True)
class ModelTier:
    """One model an agent may call, under a short name the policy chooses by (``"small"``, ``"large"``).

    Prices default to LiteLLM's cost map for ``model``; state them (USD per token) for models it does not know.
    ``max_tokens`` is the default answer length, capped at run time to what the budget affords.
    """

    name: str
    model: str
    input_cost_per_token: Decimal | None = None
    output_cost_per_token: Decimal | None = None
    max_tokens: int = 512
    timeout: float = 60.0
    api_base: str | None = None
    api_key_env: str | None = None
    """Name of the environment variable holding the API key (never the key itself: it must not reach traces)."""
    description: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    """Extra keyword arguments for ``litellm.completion`` (temperature, ...). Those that change what a call may
    spend are bounded: ``n`` / ``best_of`` multiply the answer, ``tools`` / ``functions`` / ``response_format`` are
    counted as input; one that cannot be bounded (``stream``, ``max_tokens``, an unknown ``extra_body`` key, ...) is
    a :class:`~agentroute.errors.ConfigError` naming it."""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigError("ModelTier needs a non-empty name", name=repr(self.name))
        if not isinstance(self.model, str) or not self.model.strip():
            raise ConfigError(f"ModelTier {self.name!r} needs a model name", name=self.name,
                              hint='e.g. model="openai/gpt-4o-mini"')
        for attr in ("input_cost_per_token", "output_cost_per_token"):
            v = getattr(self, attr)
            if v is not None:
                object.__setattr__(self, attr, to_decimal(v, name=f"ModelTier({self.name}).{attr}"))
        if isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise ConfigError(f"ModelTier {self.name!r}: max_tokens must be a positive int", name=self.name)
        if not self.timeout > 0:
            raise ConfigError(f"ModelTier {self.name!r}: timeout must be > 0 seconds", name=self.name)
        priced = self.input_cost_per_token is not None and self.output_cost_per_token is not None
        _llm_params.check_params(self.name, self.params, priced=priced)

    @property
    def choices(self) -> int:
        """How many answers one call may generate (``n``, ``best_of``): the worst case multiplies the answer by it."""
        return _llm_params.choices_of(self.params)

    def prices(self) -> tuple[Decimal, Decimal] | None:
        """``(input, output)`` USD per token: the tier's own, else LiteLLM's map, else ``None`` (unknown)."""
        if self.input_cost_per_token is not None and self.output_cost_per_token is not None:
            return self.input_cost_per_token, self.output_cost_per_token
        known = price_of(self.model)
        if known is None:
            return None
        return (
            self.input_cost_per_token if self.input_cost_per_token is not None else known[0],
            self.output_cost_per_token if self.output_cost_per_token is not None else known[1],
        )


@functools.lru_cache(maxsize=512)
def price_of(model: str) -> tuple[Decimal, Decimal] | None:
    """USD per input and output token for ``model`` from LiteLLM's cost map, or ``None`` when it has no price."""
    litellm = ensure_litellm()
    try:
        info = litellm.get_model_info(model)
    except Exception:
        return None
    pin, pout = info.get("input_cost_per_token"), info.get("output_cost_per_token")
    if pin is None or pout is None:
        return None
    return Decimal(str(pin)), Decimal(str(pout))


def count_tokens(model: str, messages: Sequence[Message]) -> int:
    """Input tokens of ``messages`` for ``model``, with LiteLLM's counter (chat-template overhead included).

    Plain text messages are counted one message at a time, each remembered per *tokenizer* (models that share a
    tokenizer share the count; a conversation resent with one more turn counts only the new turn). The sum is the
    one LiteLLM's ``_count_messages`` + ``_count_extra`` make. Other messages (images, tool calls) are counted whole,
    each time.
    """
    tokenizer = tokenizer_key(model)
    _COUNT_WITH.setdefault(tokenizer, model)
    plain = _plain_params(tokenizer)
    if plain is not None and all(type(m.get("content")) is str and type(m.get("role")) is str
                                 and m.keys() <= _PLAIN_KEYS and (m.get("name") is None or type(m.get("name")) is str)
                                 for m in messages):
        if getattr(ensure_litellm(), "disable_token_counter", False):
            return 0
        n = 3 + plain[0] * len(messages)
        for m in messages:
            if len(m["content"]) > _CACHED_CHARS:  # a long text is counted, not kept alive by a cache
                n += _uncached_message_tokens(tokenizer, m["role"], m["content"], m.get("name"))
            else:
                n += _message_tokens(tokenizer, m["role"], m["content"], m.get("name"))
        return n
    return _count(model, messages)


@functools.lru_cache(maxsize=512)
def tokenizer_key(model: str) -> str:
    """What decides ``model``'s token count in LiteLLM: its tokenizer (and message accounting), as a string.

    Models with the same key get the same count for the same messages, so a call priced on several tiers is counted
    once per distinct key. Falls back to the model name when LiteLLM's choice cannot be read.
    """
    ensure_litellm()
    try:
        from litellm.litellm_core_utils import token_counter as tc
        from litellm.utils import huggingface_tokenizer_kind

        kind = huggingface_tokenizer_kind(model)
        if kind is not None:
            return f"hf:{kind}"
        legacy = "legacy" if tc.uses_legacy_message_accounting(model) else "chat"
        return f"tiktoken:{tc.openai_tokenizer_encoding_name(model)}:{legacy}"
    except Exception:  # another LiteLLM layout: count per model, as LiteLLM itself would
        return f"model:{model}"


def param_tokens(tier: ModelTier, *, rough: bool = False) -> int:
    """Input tokens the tier's ``tools``, ``functions`` and ``response_format`` add to every call (0 without them).

    Counted as the text of their JSON with ``tier.model``'s tokenizer (providers render them more compactly, so this
    errs high); ``rough=True`` uses four characters a token instead.
    """
    text = _llm_params.input_parts(tier.params)
    if not text:
        return 0
    if rough:
        return len(text) // 4 + 4
    return count_tokens(tier.model, [{"role": "system", "content": text}])


def count_text(model: str, text: str) -> int:
    """Tokens of a plain ``text`` for ``model``, as ``litellm.token_counter(model=..., text=...)`` counts them.

    The encoder is chosen once per model (``token_counter`` chooses it on every call).
    """
    if getattr(ensure_litellm(), "disable_token_counter", False) is True:
        return 0
    tokenizer = tokenizer_key(model)
    _COUNT_WITH.setdefault(tokenizer, model)
    if _plain_params(tokenizer) is not None:  # remembered: a reply counted here is the next prompt's message
        return _text_tokens(tokenizer, text) if len(text) <= _CACHED_CHARS else _tokenize(tokenizer, text)
    count = _text_counter(model)
    if count is None:
        return int(ensure_litellm().token_counter(model=model, text=text))
    return int(count(text))


@functools.lru_cache(maxsize=64)
def _count_params(model: str) -> Any:
    """LiteLLM's token-count parameters for ``model`` (its encoder and message accounting), chosen once per model.

    Both counters read this one choice: for a Hugging Face tokenizer (llama, cohere, ...) choosing asks the Hub, which
    without a network retries for ~23 s before LiteLLM falls back to tiktoken; it happens once per process, not per
    counter. ``None`` when this LiteLLM does not expose the parts.
    """
    try:
        from litellm.litellm_core_utils import token_counter as tc

        ensure_litellm()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return tc._MessageCountParams(model, None)
    except Exception:  # another LiteLLM layout: token_counter itself
        return None


def _text_counter(model: str) -> Callable[[str], int] | None:
    params = _count_params(model)
    if params is None:
        return None
    fn: Callable[[str], int] = params.count_function
    return fn


def rough_tokens(messages: Sequence[Message]) -> int:
    """A rough input-token estimate without a tokenizer: four characters a token, plus four per message."""
    return sum(len(str(m.get("content") or "")) // 4 + 4 for m in messages)


def _count(model: str, messages: Sequence[Message]) -> int:
    litellm = ensure_litellm()
    if getattr(litellm, "disable_token_counter", False):
        return 0
    counter = _counter(model)
    if counter is not None:
        return counter([dict(m) for m in messages])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return int(litellm.token_counter(model=model, messages=[dict(m) for m in messages]))


@functools.lru_cache(maxsize=64)
def _counter(model: str) -> Callable[[list[dict[str, Any]]], int] | None:
    """LiteLLM's own message count for ``model``, its encoder chosen once (``token_counter`` chooses it each call).

    ``None`` when this LiteLLM does not expose the parts: ``token_counter`` is used then.
    """
    params = _count_params(model)
    if params is None:
        return None
    try:
        from litellm.litellm_core_utils import token_counter as tc
        from litellm.utils import convert_list_message_to_dict

        count_messages, count_extra = tc._count_messages, tc._count_extra
    except Exception:
        return None

    count_text: Callable[[str], int] = params.count_function
    per_message: int = params.tokens_per_message
    per_name: int = params.tokens_per_name
    short = functools.lru_cache(maxsize=256)(count_text)  # roles and names repeat: their counts are remembered

    def count(messages: list[dict[str, Any]]) -> int:
        if all(type(m.get("content")) is str and type(m.get("role")) is str and m.keys() <= _PLAIN_KEYS
               and (m.get("name") is None or type(m.get("name")) is str) for m in messages):
            # plain text: the same sum as LiteLLM's _count_messages + _count_extra, without their per-call checks
            n = 3 + per_message * len(messages)
            for m in messages:
                n += short(m["role"]) + count_text(m["content"])
                if m.get("name") is not None:
                    n += short(m["name"]) + per_name
            return n
        msgs = convert_list_message_to_dict(messages)
        n = count_messages(params, msgs, False, None)
        return int(n + count_extra(params.count_function, None, None, any(m.get("role") == "system" for m in msgs)))

    return count


_PLAIN_KEYS = frozenset(("role", "content", "name"))

_COUNT_WITH: dict[str, str] = {}
"""Tokenizer key -> the model counted with (the first seen with that tokenizer: all of them count alike)."""


@functools.lru_cache(maxsize=64)
def _plain_params(tokenizer: str) -> tuple[int, int, Callable[[str], int]] | None:
    """``(tokens per message, tokens per name, text counter)`` of a tokenizer, or ``None`` (LiteLLM counts then)."""
    params = _count_params(_COUNT_WITH[tokenizer])
    if params is None or _counter(_COUNT_WITH[tokenizer]) is None:
        return None
    return params.tokens_per_message, params.tokens_per_name, params.count_function


_CACHED_CHARS = 65_536
"""Texts up to this length are remembered (8,192 of them at most); longer ones are counted each time they are sent."""


def _uncached_message_tokens(tokenizer: str, role: str, content: str, name: str | None) -> int:
    """One plain message's share of the count: its role, its content and its name (with LiteLLM's name tokens)."""
    n = _short_tokens(tokenizer, role) + (_text_tokens(tokenizer, content) if len(content) <= _CACHED_CHARS
                                          else _tokenize(tokenizer, content))
    if name is not None:
        n += _short_tokens(tokenizer, name) + _plain_params(tokenizer)[1]  # type: ignore[index]
    return n


_message_tokens = functools.lru_cache(maxsize=8192)(_uncached_message_tokens)
"""The same, remembered per tokenizer."""


@functools.lru_cache(maxsize=256)
def _short_tokens(tokenizer: str, text: str) -> int:
    """Roles and names repeat: their counts are remembered."""
    return _tokenize(tokenizer, text)


@functools.lru_cache(maxsize=8192)
def _text_tokens(tokenizer: str, text: str) -> int:
    """A text's count, remembered per tokenizer (a message's content, a reply's text)."""
    return _tokenize(tokenizer, text)


def _tokenize(tokenizer: str, text: str) -> int:
    """Run the tokenizer: LiteLLM's text count with its encoder chosen once (every cache above ends here)."""
    plain = _plain_params(tokenizer)
    assert plain is not None
    return plain[2](text)


def text_tokens_at_most(model: str, text: str) -> int | None:
    """A proven upper bound of :func:`count_text` ``(model, text)`` without tokenizing, or ``None`` when none is cheap.

    For the byte-level BPE encodings LiteLLM counts OpenAI-style models with (tiktoken), every token holds at least
    one byte of the UTF-8 text, chunks included; a text past LiteLLM's exact-count length is extrapolated from
    samples, each at most four bytes a character, so it is at most four tokens a character. Other tokenizers
    (Hugging Face ones may add tokens of their own): ``None``.
    """
    if not tokenizer_key(model).startswith("tiktoken:"):
        return None
    if len(text) <= _max_exact_chars():
        return len(text.encode("utf-8", "surrogatepass"))
    return 4 * len(text)


@functools.lru_cache(maxsize=1)
def _max_exact_chars() -> int:
    """LiteLLM's longest text counted exactly (longer ones are extrapolated from samples); 0 when unknown."""
    try:
        from litellm import constants

        return int(constants.TOKEN_COUNTER_MAX_EXACT_CHARS)
    except Exception:  # another LiteLLM layout: use the bound that holds for extrapolated counts too
        return 0


def cost_of(prices: tuple[Decimal, Decimal] | None, input_tokens: int, output_tokens: int) -> Decimal | None:
    """USD for a call; ``None`` when the price is unknown (never silently 0)."""
    if prices is None:
        return None
    return prices[0] * input_tokens + prices[1] * output_tokens


@dataclass(frozen=True, slots=True)
class RawReply:
    """What came back from one successful call, normalised."""

    text: str
    input_tokens: int
    output_tokens: int
    response_model: str | None
    finish_reason: str | None
    response: Any


_RETRYABLE_NAMES = frozenset(
    {
        "RateLimitError",
        "Timeout",
        "APITimeoutError",
        "APIConnectionError",
        "InternalServerError",
        "ServiceUnavailableError",
        "BadGatewayError",
    }
)


_CREDENTIAL_NAMES = frozenset({"AuthenticationError", "PermissionDeniedError"})
_CREDENTIAL_HINTS = ("missing credentials", "api key", "api_key", "invalid_api_key", "incorrect api key",
                     "unauthorized", "no auth credentials")


def is_credential_error(exc: BaseException) -> bool:
    """True when a call failed for want of a valid key: retrying cannot help (401/403, or a missing key).

    LiteLLM reports a missing OpenAI key as an ``InternalServerError`` (status 500) whose message says
    "Missing credentials", so the message is read as well as the type and status.
    """
    if type(exc).__name__ in _CREDENTIAL_NAMES:
        return True
    status = getattr(exc, "status_code", None)
    if status in (401, 403):
        return True
    text = str(exc).lower()
    return any(h in text for h in _CREDENTIAL_HINTS)


def is_retryable(exc: BaseException) -> bool:
    """True for failures worth another try of the same tier: 429, 5xx, timeouts and dropped connections.

    Credential errors (a missing or invalid API key) are never retried, whatever status they come with.
    """
    if is_credential_error(exc):
        return False
    if type(exc).__name__ in _RETRYABLE_NAMES:
        return True
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and (status == 429 or status >= 500)


def _normalise(response: Any) -> RawReply:
    choice = response.choices[0]
    usage = getattr(response, "usage", None)
    return RawReply(
        text=(choice.message.content or "") if getattr(choice, "message", None) else "",
        input_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        output_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        response_model=getattr(response, "model", None),
        finish_reason=getattr(choice, "finish_reason", None),
        response=response,
    )


def call_kwargs(
    kwargs: Mapping[str, Any], messages: Sequence[Message], max_tokens: int, timeout: float | None,
    choices: int = 1,
) -> dict[str, Any]:
    """The keyword arguments of one LiteLLM call (no retries inside LiteLLM: the runtime owns retries).

    ``max_tokens`` is the answer's cap and ``choices`` the most answers reserved, wherever else a provider's
    arguments name them (``max_completion_tokens``, ``n``, ``best_of``, in ``extra_body`` too): a provider may never
    widen the reserved worst case.
    """
    out = _capped(kwargs, max_tokens, choices)
    out.update(messages=list(messages), max_tokens=max_tokens, num_retries=0, max_retries=0)
    body = out.get("extra_body")
    if isinstance(body, Mapping):
        out["extra_body"] = _capped(body, max_tokens, choices)
    if out.get("tools"):  # LiteLLM's MCP gateway would run tool calls of its own, outside the budget
        out["_skip_mcp_handler"] = True
    if timeout is not None:
        out["timeout"] = timeout
    return out


def _capped(kwargs: Mapping[str, Any], max_tokens: int, choices: int) -> dict[str, Any]:
    out = dict(kwargs)
    for key in ("max_completion_tokens", "max_output_tokens", "max_tokens"):
        if key in out:
            out[key] = max_tokens
    for key in _llm_params.CHOICE_KEYS:
        if key in out and not (isinstance(out[key], int) and 1 <= out[key] <= choices):
            out[key] = choices
    return out


def complete(kwargs: Mapping[str, Any]) -> RawReply:
    """One synchronous call through ``litellm.completion``."""
    litellm = ensure_litellm()
    return _normalise(litellm.completion(**kwargs))


async def acomplete(kwargs: Mapping[str, Any]) -> RawReply:
    """One asynchronous call through ``litellm.acompletion``."""
    litellm = ensure_litellm()
    return _normalise(await litellm.acompletion(**kwargs))


def backoff(attempt: int, base: float = 0.25, cap: float = 4.0) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): exponential, capped."""
    return float(min(cap, base * (2 ** (attempt - 1))))


def now_ns() -> int:
    """Wall-clock nanoseconds, the unit of every record's times."""
    return time.time_ns()


__all__ = [
    "ModelTier",
    "RawReply",
    "acomplete",
    "backoff",
    "call_kwargs",
    "complete",
    "cost_of",
    "count_tokens",
    "ensure_litellm",
    "is_credential_error",
    "is_retryable",
    "param_tokens",
    "price_of",
    "rough_tokens",
    "text_tokens_at_most",
    "tokenizer_key",
]
