"""Stable hashing of texts to numbers in [0, 1): the offline providers' only source of randomness per query."""

from __future__ import annotations

import hashlib


def _unit(*parts: object) -> float:
    h = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2**64
