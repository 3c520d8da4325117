"""What one model-call attempt is charged: the provider's usage when it is plausible, else the worst case.

The ledger's settlement rule (:meth:`agentroute.budget.Reservation.commit`) books whatever it is given, in full, and
records a :class:`~agentroute.budget.Violation` when that is more than was reserved. This module decides what a
model call is *given*, so that a provider that lies cannot make a task look cheaper than it was:

- **usage reported and plausible**: the reported input and output tokens, priced. More than the reservation (a
  provider that ignored ``max_tokens``) is charged in full; the ledger flags it.
- **usage missing** (LiteLLM then reports 0 input and 0 output tokens), **negative**, or **implausibly low** (input
  below half of agentroute's own count of the prompt it sent; output below half of its count of the text it got
  back, less :data:`SLACK` tokens, since tokenizers differ): the reservation's worst case (input as reserved plus
  ``max_tokens``), or what was reported or seen if that is more.
- **a failed attempt** (an exception: timeout, dropped connection, 5xx) or a **cancelled** one: with
  ``charge_failed="worst_case"`` (the default) its worst case, since providers bill work they did even when the
  answer never arrives; a request the provider refused before running it (an HTTP 4xx answer other than 408, or a
  credential error) is charged nothing. ``charge_failed="reported"`` charges failures nothing (LiteLLM's exceptions
  carry no usage).

The reply's text is tokenized only when its count can change the outcome: a text whose UTF-8 length (a proven upper
bound of a tiktoken count, :func:`agentroute.llm.text_tokens_at_most`) cannot reach the compared amount is not, since
the charge is then the same either way.

It must never touch a ledger itself: :mod:`agentroute._calls` commits what :func:`charge_reply` returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

from agentroute import llm
from agentroute._spend import Spend
from agentroute._telemetry_redact import redact_text, register_secret
from agentroute.errors import ConfigError

ChargeFailed = Literal["worst_case", "reported"]
CHARGE_FAILED = ("worst_case", "reported")
SLACK = 8
"""Tokens of slack when comparing a reported output count with agentroute's own count of the text."""


def check_charge_failed(value: Any) -> ChargeFailed:
    """``value`` if it is a known ``charge_failed`` mode, else a :class:`ConfigError` naming the choices."""
    if value not in CHARGE_FAILED:
        raise ConfigError(f"charge_failed={value!r}: use 'worst_case' (a failed call is billed, the default) or "
                          "'reported'", name="charge_failed")
    return value  # type: ignore[no-any-return]


def worst_case(prices: tuple[Decimal, Decimal] | None, input_tokens: int, max_tokens: int) -> Spend:
    """The most one attempt may cost: ``input_tokens`` in, ``max_tokens`` out."""
    out = max(max_tokens, 0)
    return Spend(usd=llm.cost_of(prices, input_tokens, out), tokens=input_tokens + out)


def _reply_text(response: Any, fallback: str) -> str:
    """The text of every choice of ``response`` (``fallback`` when it holds none)."""
    texts: list[str] = []
    for c in getattr(response, "choices", None) or ():
        msg = getattr(c, "message", None)
        content = getattr(msg, "content", None) if msg is not None else None
        if isinstance(content, str):
            texts.append(content)
    return "".join(texts) if texts else fallback


def _text_tokens(model: str, text: str, exact: bool) -> int:
    """How many tokens ``text`` holds (``exact=False``: the rough count)."""
    if not text:
        return 0
    if not exact:
        return len(text) // 4
    try:
        return llm.count_text(model, text)
    except Exception:  # a tokenizer that cannot count this model: the rough count (4 characters a token)
        return len(text) // 4


def _seen_above(model: str, text: str, exact: bool, floor: int) -> int | None:
    """Our count of the reply's ``text`` when it may exceed ``floor``; ``None`` when it provably does not.

    The count only matters above ``floor`` (a check that compares it with ``floor``, a ``max`` with it), so a text
    whose proven upper bound (:func:`agentroute.llm.text_tokens_at_most`) is at most ``floor`` is not tokenized:
    the outcome is the same as with the count.
    """
    if exact and text:
        bound = llm.text_tokens_at_most(model, text)
        if bound is not None and bound <= floor:
            return None
    return _text_tokens(model, text, exact)


def charge_reply(prices: tuple[Decimal, Decimal] | None, model: str, sent_in: int, reserved_in: int,
                 max_tokens: int, raw: llm.RawReply, *, metered: bool) -> tuple[Spend, int, int, str]:
    """What a successful reply is charged: ``(amount, input_tokens, output_tokens, basis)``.

    ``basis`` is ``"reported"``, or ``"worst_case: <why>"`` when the usage could not be trusted (see the module
    docstring). ``sent_in`` is agentroute's own count of the prompt sent (``llm.count_tokens`` of the messages, or
    :func:`llm.rough_tokens` when not metered: the count the call was planned with); ``reserved_in`` and
    ``max_tokens`` are the input and output the call reserved. Without a USD or token limit (``metered=False``)
    nothing is tokenized: the rough count (four characters a token) is compared. The reply's text is tokenized only
    when its count could change the outcome (:func:`_seen_above`).
    """
    rep_in, rep_out = raw.input_tokens, raw.output_tokens
    text = _reply_text(raw.response, raw.text)
    why = None
    seen_out: int | None = None
    if rep_in < 0 or rep_out < 0:
        why = f"negative usage reported ({rep_in} in, {rep_out} out)"
    elif rep_in == 0 and rep_out == 0:
        why = "no usage reported"
    elif 2 * rep_in < sent_in:
        why = f"usage under-reported ({rep_in} input tokens reported, {sent_in} sent)"
    else:
        seen_out = _seen_above(model, text, metered, 2 * rep_out + SLACK)
        if seen_out is not None and 2 * rep_out + SLACK < seen_out:
            why = f"usage under-reported ({rep_out} output tokens reported, {seen_out} received)"
    if why is None:
        return Spend(usd=llm.cost_of(prices, rep_in, rep_out), tokens=rep_in + rep_out), rep_in, rep_out, "reported"
    n_in = max(rep_in, reserved_in)
    n_out = max(rep_out, max_tokens)
    seen = seen_out if seen_out is not None else _seen_above(model, text, metered, n_out)
    if seen is not None:
        n_out = max(n_out, seen)
    return worst_case(prices, n_in, n_out), n_in, n_out, f"worst_case: {why}"


def error_text(exc: BaseException, kwargs: Mapping[str, Any]) -> str:
    """The text a failed attempt's record keeps: the attempt's credentials registered and scrubbed from it.

    A careless gateway echoes the request's ``Authorization`` and ``x-*`` headers in its error; the ``api_key`` and
    every ``extra_headers`` value of the attempt are registered for redaction (spans and rows scrub them too).
    """
    register_secret(kwargs.get("api_key"))
    headers = kwargs.get("extra_headers")
    if isinstance(headers, Mapping):
        for value in headers.values():
            register_secret(value if isinstance(value, str) else None)
    return redact_text(str(exc))[:500]


def billed_failure(exc: BaseException | None) -> bool:
    """Whether a failed attempt may have been billed: all but requests the provider refused before running them."""
    if exc is None:  # cancelled while in flight
        return True
    if llm.is_credential_error(exc):
        return False
    status = getattr(exc, "status_code", None)
    return not (isinstance(status, int) and 400 <= status < 500 and status != 408)


__all__ = ["CHARGE_FAILED", "SLACK", "ChargeFailed", "billed_failure", "charge_reply", "check_charge_failed",
           "error_text", "worst_case"]
