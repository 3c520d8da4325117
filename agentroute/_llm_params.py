"""What a tier's extra LiteLLM parameters may make a call spend: checked when the tier is built, read by the worst case.

A call's worst case is its input tokens plus ``max_tokens`` of answer, priced. Some parameters widen that: ``n`` /
``best_of`` (and their provider spellings) generate several answers, tool definitions (``tools``, ``functions``) and
``response_format`` are sent, and billed, as input. Those are bounded here: the answer is multiplied by
:func:`choices_of` and the definitions are counted as input (:func:`input_parts`). Others cannot be bounded by a
token worst case (a stream, hidden retries, a second ``max_tokens``, a price tier or per-search fees) and are a
:class:`~agentroute.errors.ConfigError` naming the tier and the parameter, raised when the
:class:`~agentroute.llm.ModelTier` is built. ``extra_body`` reaches the provider unread, so its keys are checked
against a list of parameters known to stay within the worst case; any other key is refused rather than trusted.

This module must never import LiteLLM: it reads plain dictionaries.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from agentroute.errors import ConfigError

CHOICE_KEYS = ("n", "best_of", "candidate_count", "num_return_sequences")
"""Parameters that generate several answers (each up to ``max_tokens``): the worst case multiplies by the largest."""

INPUT_KEYS = ("tools", "functions", "response_format")
"""Parameters billed as input tokens on every call: counted with the messages."""

_REFUSED: dict[str, str] = {
    "max_tokens": "set ModelTier(max_tokens=...) instead: the runtime sends it, capped to what the budget affords",
    "max_completion_tokens": "set ModelTier(max_tokens=...) instead: the runtime sends it, capped to what the "
                             "budget affords",
    "max_output_tokens": "set ModelTier(max_tokens=...) instead: the runtime sends it, capped to what the budget "
                         "affords",
    "stream": "calls are not streamed: the runtime reads one reply and its usage",
    "stream_options": "calls are not streamed: the runtime reads one reply and its usage",
    "num_retries": "the runtime owns retries (compile(max_retries=...)), so that every attempt is charged and clocked",
    "max_retries": "the runtime owns retries (compile(max_retries=...)), so that every attempt is charged and clocked",
    "timeout": "set ModelTier(timeout=...) instead: the runtime caps it to the task's time left",
    "messages": "messages are given to ctx.complete, not to the tier",
    "model": "set ModelTier(model=...) instead",
    "web_search_options": "searches are billed per call, outside the token prices a budget can reserve",
    "audio": "audio output is priced apart from text tokens, which a budget cannot reserve",
    "modalities": "audio output is priced apart from text tokens, which a budget cannot reserve",
}

_PRICED_ONLY = {"service_tier": "a service tier changes the price per token: state input_cost_per_token and "
                                "output_cost_per_token for it"}

EXTRA_BODY_SAFE = frozenset({
    "temperature", "top_p", "top_k", "min_p", "typical_p", "frequency_penalty", "presence_penalty",
    "repetition_penalty", "length_penalty", "stop", "stop_token_ids", "seed", "logit_bias", "logprobs",
    "top_logprobs", "user", "metadata", "tool_choice", "parallel_tool_calls", "reasoning_effort", "guided_json",
    "guided_regex", "guided_choice", "guided_grammar", "guided_decoding_backend", "min_tokens", "ignore_eos",
    "skip_special_tokens", "spaces_between_special_tokens", "include_stop_str_in_output", "chat_template",
    "chat_template_kwargs", "add_generation_prompt", "safe_prompt", *CHOICE_KEYS, *INPUT_KEYS,
})
"""``extra_body`` keys known to stay within the worst case (sampling, decoding constraints, the bounded ones)."""


def check_params(tier: str, params: Mapping[str, Any], *, priced: bool) -> None:
    """Refuse a parameter whose spend the worst case cannot bound (see the module docstring)."""
    if not isinstance(params, Mapping):
        raise ConfigError(f"ModelTier {tier!r}: params must be a dict, got {type(params).__name__}", name=tier)
    _check_level(tier, params, "params", priced)
    body = params.get("extra_body")
    if body is None:
        return
    if not isinstance(body, Mapping):
        raise ConfigError(f"ModelTier {tier!r}: params['extra_body'] must be a dict, got {type(body).__name__}",
                          name="extra_body")
    _check_level(tier, body, "params['extra_body']", priced)
    for key in body:
        if key not in EXTRA_BODY_SAFE and key not in _REFUSED and key not in _PRICED_ONLY:
            raise ConfigError(
                f"ModelTier {tier!r}: cannot bound what params['extra_body'][{key!r}] may spend (extra_body reaches "
                "the provider unread)", name=str(key),
                hint="pass it at the top level of params if LiteLLM knows it, or drop it; extra_body accepts "
                     "sampling and decoding keys (temperature, top_k, stop, guided_json, ...), n and best_of, "
                     "tools, functions and response_format")


def _check_level(tier: str, params: Mapping[str, Any], where: str, priced: bool) -> None:
    for key, value in params.items():
        if key in _REFUSED:
            raise ConfigError(f"ModelTier {tier!r}: {where}[{key!r}] is refused: it changes what a call may spend "
                              "beyond its reserved worst case", name=str(key), hint=_REFUSED[key])
        if key in _PRICED_ONLY and not priced:
            raise ConfigError(f"ModelTier {tier!r}: {where}[{key!r}] changes what a call may spend",
                              name=str(key), hint=_PRICED_ONLY[key])
        if key in CHOICE_KEYS and (isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 128):
            raise ConfigError(f"ModelTier {tier!r}: {where}[{key!r}] must be an int from 1 to 128, got {value!r}",
                              name=str(key))
        if key in INPUT_KEYS and value is not None:
            try:
                json.dumps(value, sort_keys=True)
            except (TypeError, ValueError) as e:
                raise ConfigError(f"ModelTier {tier!r}: {where}[{key!r}] must be JSON (its tokens are counted as "
                                  f"input): {e}", name=str(key)) from None


def choices_of(params: Mapping[str, Any]) -> int:
    """How many answers one call may generate: the largest of ``n``, ``best_of`` and their spellings (default 1)."""
    body = params.get("extra_body")
    levels = (params, body) if isinstance(body, Mapping) else (params,)
    return max([1, *(int(level[k]) for level in levels for k in CHOICE_KEYS if level.get(k) is not None)])


def input_parts(params: Mapping[str, Any]) -> str:
    """The tool definitions and response format sent with every call, as JSON text ("" when there are none)."""
    body = params.get("extra_body")
    levels = (params, body) if isinstance(body, Mapping) else (params,)
    parts = [level[k] for level in levels for k in INPUT_KEYS if level.get(k) is not None]
    return json.dumps(parts, sort_keys=True, default=str) if parts else ""


__all__ = ["CHOICE_KEYS", "EXTRA_BODY_SAFE", "INPUT_KEYS", "check_params", "choices_of", "input_parts"]
