"""Amounts of spend (:class:`Spend`) and the record of a broken worst case (:class:`Violation`).

A :class:`Spend` keeps money in two parts: the *known* USD (``known_usd``, always a ``Decimal``) and a count of
amounts whose cost was *unknown* (``unknown_usd``). ``usd`` reads ``None`` while any part is unknown (never a
silent 0), but the known part is never lost: a ledger adds up and enforces ``known_usd``, so committing one
unknown cost cannot erase what was spent before it. :mod:`agentroute.budget` re-exports both classes.

This module is plain data: it imports nothing of agentroute.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

ZERO = Decimal(0)


@dataclass(slots=True, init=False)
class Spend:
    """Amounts spent, reserved or requested, with the same fields as :class:`~agentroute.budget.Budget`.

    ``Spend(usd=None)`` is one amount of unknown cost. Adding it to a total keeps the total's known USD and counts
    one more unknown part (:attr:`unknown_usd`); the total's :attr:`usd` then reads ``None``.
    """

    known_usd: Decimal
    """The USD of every part whose cost is known (what ledgers enforce)."""
    unknown_usd: int
    """How many parts had no known cost (0: :attr:`usd` is exact)."""
    tokens: int
    steps: int
    seconds: float

    def __init__(self, usd: Decimal | None = ZERO, tokens: int = 0, steps: int = 0, seconds: float = 0.0, *,
                 unknown_usd: int = 0) -> None:
        if usd is None:
            self.known_usd, self.unknown_usd = ZERO, max(1, unknown_usd)
        else:
            self.known_usd, self.unknown_usd = usd, unknown_usd
        self.tokens = tokens
        self.steps = steps
        self.seconds = seconds

    @property
    def usd(self) -> Decimal | None:
        """The USD, or ``None`` when some part of it has no known price (see :attr:`known_usd`)."""
        return None if self.unknown_usd else self.known_usd

    @usd.setter
    def usd(self, value: Decimal | None) -> None:
        if value is None:
            self.known_usd, self.unknown_usd = ZERO, max(1, self.unknown_usd)
        else:
            self.known_usd, self.unknown_usd = value, 0

    def copy(self) -> Spend:
        """An independent copy."""
        return Spend(self.known_usd, self.tokens, self.steps, self.seconds, unknown_usd=self.unknown_usd)

    def add(self, other: Spend) -> None:
        """Add ``other`` in place: known parts add up, unknown parts are counted (never erase the known)."""
        self.known_usd += other.known_usd
        self.unknown_usd += other.unknown_usd
        self.tokens += other.tokens
        self.steps += other.steps
        self.seconds += other.seconds

    def sub(self, other: Spend) -> None:
        """Subtract ``other`` in place (used to release reservations)."""
        self.known_usd -= other.known_usd
        self.unknown_usd = max(0, self.unknown_usd - other.unknown_usd)
        self.tokens -= other.tokens
        self.steps -= other.steps
        self.seconds -= other.seconds

    def as_dict(self) -> dict[str, Any]:
        """Plain values (``usd`` as a string) for JSON, spans and rows.

        With an unknown part, ``usd`` is ``None``; when some USD is known as well, ``known_usd`` and ``unknown_usd``
        say how much is known and how many parts are not.
        """
        out: dict[str, Any] = {
            "usd": None if self.unknown_usd else str(self.known_usd),
            "tokens": self.tokens,
            "steps": self.steps,
            "seconds": round(self.seconds, 6),
        }
        if self.unknown_usd and self.known_usd:
            out["known_usd"] = str(self.known_usd)
            out["unknown_usd"] = self.unknown_usd
        return out


@dataclass(frozen=True, slots=True)
class Violation:
    """A commit that broke its worst case on a limited dimension.

    The provider (or a driver) spent past what was reserved, or spent an unknown amount under a USD limit. What
    was spent is charged in full all the same; the task's status becomes ``overrun`` and no further step runs.
    """

    dimension: str
    """``"usd"``, ``"tokens"`` or ``"steps"``."""
    limit: Decimal | int
    """The limit of that dimension on :attr:`ledger`."""
    spent: Decimal | int
    """What :attr:`ledger` had spent on that dimension right after the commit (may exceed :attr:`limit`)."""
    cause: str
    """What happened, e.g. ``"call:answer:small: spent 4000 tokens, 600 reserved"`` or ``"unknown cost: ..."``."""
    ledger: str = "task"
    """The ledger whose limit it is: ``"task"`` or a :class:`~agentroute.budget.SharedBudget`'s name."""

    @property
    def over_limit(self) -> bool:
        """True when the spend went past the limit itself (not only past the reservation)."""
        return self.spent > self.limit

    def as_dict(self) -> dict[str, Any]:
        """Plain values for JSON, spans and rows."""
        return {"dimension": self.dimension, "limit": str(self.limit), "spent": str(self.spent), "cause": self.cause,
                "ledger": self.ledger}


__all__ = ["ZERO", "Spend", "Violation"]
