"""The long format's vocabulary, shared by :mod:`agentroute.data.table` and its frame validator.

No tunables here: the limits a user may raise live in :mod:`agentroute.data.table`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

REQUIRED_COLUMNS = ("query_id", "text", "option", "quality")
CHARS_PER_TOKEN = 4
"""The documented token estimate when a release has no counts: ``ceil(len(text) / 4)`` tokens."""


def short(value: Any, limit: int = 200) -> str:
    """``str(value)`` cut to ``limit`` characters, for error messages about hostile data."""
    text = str(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def estimate_tokens(text: str) -> int:
    """Estimated token count of ``text``: ``ceil(len(text) / 4)``, at least 1 (the usual rule for English)."""
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN))


def _first(rows: Sequence[Any], k: int = 5) -> str:
    shown = ", ".join(repr(r) for r in list(rows)[:k])
    more = f" and {len(rows) - k} more" if len(rows) > k else ""
    return shown + more
