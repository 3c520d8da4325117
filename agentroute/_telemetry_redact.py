"""Scrubbing of credentials from everything telemetry writes: span attributes, events and store rows.

Spans leave the process (OTLP collectors, SQL stores, JSONL exports), so no API key, bearer token or password
may reach them, whatever a provider echoes back in an error message or a user puts in a descriptor. Scrubbing
works on text, in one pass of one compiled regular expression, so the hot path pays a single C-level scan per
string:

* well-known key shapes (``sk-…``, ``sk-ant-…``, ``AKIA…``, ``AIza…``, ``ghp_…``, ``hf_…``, ``Bearer …``);
* ``name=value`` / ``"name": "value"`` pairs whose name says it is a secret (``api_key``, ``password``, ...);
* the literal values of environment variables whose names say they hold a secret (``OPENAI_API_KEY`` ...), and
  any value registered with :func:`register_secret` (the model adapter registers the keys, header values and
  credential-like parameters it is configured with), whatever its shape, also JSON-escaped, URL-encoded or
  repr'd.

This module must stay free of OpenTelemetry and SQL imports: the hooks and the exporter both use it.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "[REDACTED]"

_SECRET_NAME = r"(?:api[_-]?key|apikey|secret(?:[_-]?key)?|password|passwd|access[_-]?token|auth[_-]?token|" \
    r"refresh[_-]?token|session[_-]?token|authorization|x-api-key|credentials?|private[_-]?key)"
# A mapping key or environment variable name that says its value is a secret.
SECRET_KEY_RE = re.compile(rf"(?i:(?:^|[_.\-]){_SECRET_NAME}$|^{_SECRET_NAME})|(?:^|_)TOKEN$")

# (substrings that must occur, lower-cased; the pattern): a pattern only runs on text holding one of its
# triggers, because most strings hold no secret and a substring test costs far less than a regex scan.
_SHAPES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("sk-",), r"sk-[A-Za-z0-9_\-]{16,}"),  # OpenAI, Anthropic (sk-ant-...), gateways
    (("akia",), r"AKIA[0-9A-Z]{16}"),  # AWS access key id
    (("aiza",), r"AIza[0-9A-Za-z_\-]{30,}"),  # Google API key
    (("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), r"gh[pousr]_[A-Za-z0-9]{20,}"),  # GitHub tokens
    (("hf_",), r"hf_[A-Za-z0-9]{20,}"),  # Hugging Face tokens
    (("xox",), r"xox[abprs]-[A-Za-z0-9\-]{10,}"),  # Slack tokens
    (("bearer ", "basic "), r"(?i:bearer|basic)\s+[A-Za-z0-9._~+/=\-]{8,}"),  # Authorization header values
)
_NAME_TRIGGERS = (
    "api_key", "api-key", "apikey", "secret", "password", "passwd", "authorization", "credential", "private_key",
    "private-key", "privatekey", *(f"{w}{sep}token" for w in ("access", "auth", "refresh", "session")
                                   for sep in ("_", "-", "")),
)  # fmt: skip
# name, separator, value: `api_key=abc`, `"password": "abc"`, `Authorization: Bearer xyz`
_PAIR = re.compile(
    rf"(?P<name>{_SECRET_NAME})(?P<sep>[\"']?\s*[:=]\s*[\"']?)"
    r"(?P<value>(?:(?:bearer|basic)\s+)?[^\s\"',;&}\]]{4,})",
    re.IGNORECASE,
)
_RULES = tuple((triggers, re.compile(p)) for triggers, p in _SHAPES)
_ALL_TRIGGERS = tuple(t for triggers, _ in _SHAPES for t in triggers) + _NAME_TRIGGERS

_lock = threading.Lock()
_registered: dict[str, frozenset[str]] = {}
"""Each registered value with the forms it may take in text: as is, JSON-escaped, URL-encoded, Python-repr'd."""
_literals: tuple[str, ...] | None = None
"""Exact secret values (registered, or held by secret-named environment variables), longest first."""


def _env_secrets() -> set[str]:
    found = set()
    for name, value in os.environ.items():
        if len(value) >= 8 and SECRET_KEY_RE.search(name) and value.lower() not in ("true", "false"):
            found.add(value)
    return found


def _forms(value: str) -> frozenset[str]:
    """The shapes a secret takes once it is embedded in a JSON body, a URL or a repr'd exception."""
    from urllib.parse import quote, quote_plus

    forms = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1], quote(value, safe=""),
             quote_plus(value), repr(value)[1:-1]}
    return frozenset(f for f in forms if len(f) >= 4)


def _build() -> tuple[str, ...]:
    found: set[str] = set(_env_secrets())
    for forms in _registered.values():
        found |= forms
    return tuple(sorted(found, key=len, reverse=True))


def _known() -> tuple[str, ...]:
    global _literals
    lits = _literals
    if lits is None:
        with _lock:
            if _literals is None:
                _literals = _build()
            lits = _literals
    return lits


def refresh() -> None:
    """Re-read the environment for secret values (call after setting ``*_API_KEY`` variables at run time)."""
    global _literals
    with _lock:
        _literals = _build()


def register_secret(value: str | None) -> None:
    """Never let ``value`` appear in telemetry: spans, store rows, ``traces show``, stored error texts.

    For credentials of any shape (an ``api_key``, an ``extra_headers`` value, a credential-like parameter): the
    value is scrubbed wherever it occurs in a string, as is and in the forms it takes inside a JSON body, a URL
    or a ``repr``. Values shorter than 4 characters are ignored (they would scrub ordinary text).
    """
    if not value or not isinstance(value, str) or len(value) < 4:
        return
    global _literals
    with _lock:
        if value not in _registered:
            _registered[value] = _forms(value)
            _literals = _build()


def unregister_secret(value: str) -> None:
    """Stop scrubbing a value given to :func:`register_secret` (a rotated key; tests)."""
    global _literals
    with _lock:
        if _registered.pop(value, None) is not None:
            _literals = _build()


def _sub_pair(m: re.Match[str]) -> str:
    return f"{m.group('name')}{m.group('sep')}{REDACTED}"


def redact_text(text: str) -> str:
    """``text`` with every credential it contains replaced by ``[REDACTED]``."""
    for lit in _known():
        if lit in text:
            text = text.replace(lit, REDACTED)
    low = text.lower()
    for t in _ALL_TRIGGERS:
        if t in low:
            break
    else:
        return text  # the common case: nothing that looks like a credential
    for triggers, pattern in _RULES:
        if any(t in low for t in triggers):
            text = pattern.sub(_shape_sub(text), text)
    if any(t in low for t in _NAME_TRIGGERS):
        text = _PAIR.sub(_sub_pair, text)
    return text


def _shape_sub(text: str) -> Any:
    def sub(m: re.Match[str]) -> str:
        start = m.start()
        if start > 0 and text[start - 1].isalnum():  # "task-..." is not a key: a key starts a word
            return m.group(0)
        return REDACTED

    return sub


def redact_mapping(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``data``, values under secret-looking keys replaced, recursively (strings scrubbed too)."""
    return {str(k): (REDACTED if SECRET_KEY_RE.search(str(k)) else redact_value(v)) for k, v in data.items()}


def redact_value(value: Any) -> Any:
    """Scrub one value of any JSON-like shape."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return redact_mapping(value)
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    return value


def contains_secret(texts: Iterable[str], secrets: Iterable[str]) -> list[str]:
    """The ``secrets`` that occur in any of ``texts`` (for tests and audits)."""
    blob = "\n".join(texts)
    return [s for s in secrets if s and s in blob]


__all__ = [
    "REDACTED",
    "SECRET_KEY_RE",
    "contains_secret",
    "redact_mapping",
    "redact_text",
    "redact_value",
    "refresh",
    "register_secret",
    "unregister_secret",
]
