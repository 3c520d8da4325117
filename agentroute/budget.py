"""Budgets and the ledger that enforces them.

This module owns the guarantee of the project: **a task never spends past any limit**. A :class:`Budget` is a
frozen set of limits; a :class:`Ledger` holds what was spent and what is reserved against those limits. Every step
of the routing loop *reserves* its worst case before it runs (``Ledger.reserve``), then *commits* what it really
spent and releases the rest (``Reservation.commit``), or *releases* everything on failure (``Reservation.release``).
A reservation that does not fit raises :class:`Unaffordable` and changes nothing, so concurrent tasks drawing on one
:class:`SharedBudget` can never overdraw it together.

It must never import LiteLLM, LangGraph or anything slow: the ledger sits on the hot path of every step.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from agentroute._spend import ZERO, Spend, Violation
from agentroute.errors import ConfigError, Unaffordable

DIMENSIONS = ("usd", "tokens", "steps", "seconds")


MAX_NUMBER_CHARS = 100
"""Longest numeric string a limit or a price may be given as (``"0.05"``); longer text is a :class:`ConfigError`."""
MAX_MAGNITUDE_DIGITS = 100
"""Limits and prices are below ``10 ** 100``: a value with more integer digits is a :class:`ConfigError`."""


def _parse(value: Any, *, name: str, what: str) -> Decimal:
    """The finite, non-negative ``Decimal`` of ``value``; anything else (or anything huge) is a :class:`ConfigError`.

    Parsing stays cheap for hostile input: strings are bounded by :data:`MAX_NUMBER_CHARS` before conversion, ints
    by their bit length (``str()`` of a 5000-digit int raises ``ValueError``), magnitudes by
    :data:`MAX_MAGNITUDE_DIGITS`.
    """
    too_large = ConfigError(f"{name} is too large (10**{MAX_MAGNITUDE_DIGITS} or more)", name=name,
                            hint="use None for unlimited")
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be {what}, got a bool", name=name)
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, int):
        if value.bit_length() > 3.33 * MAX_MAGNITUDE_DIGITS:
            raise too_large
        d = Decimal(value)
    elif isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ConfigError(f"{name}={value!r} is not finite", name=name, hint="use None for unlimited")
        d = Decimal(str(value))
    elif isinstance(value, str):
        if len(value) > MAX_NUMBER_CHARS:
            raise ConfigError(f"{name} is a string of {len(value)} characters, longer than {MAX_NUMBER_CHARS}",
                              name=name, hint='pass a number such as "0.05"')
        try:
            d = Decimal(value.strip())
        except InvalidOperation:
            raise ConfigError(f"{name}={value!r} is not a number", name=name, hint='pass e.g. "0.05"') from None
    else:
        raise ConfigError(f"{name} must be {what}, got {type(value).__name__}", name=name)
    if not d.is_finite():
        raise ConfigError(f"{name}={value!r} is not finite", name=name, hint="use None for unlimited")
    if d < 0:
        raise ConfigError(f"{name}={d} is negative", name=name, hint="limits and prices are >= 0")
    if d and d.adjusted() >= MAX_MAGNITUDE_DIGITS:
        raise too_large
    return d


def to_decimal(value: Any, *, name: str) -> Decimal:
    """Convert a money value to ``Decimal``; floats go through ``str`` so ``0.1`` stays ``0.1``."""
    return _parse(value, name=name, what="a number or a numeric string")


def _to_count(value: Any, *, name: str) -> int:
    d = _parse(value, name=name, what="a whole number")
    if d != d.to_integral_value():
        raise ConfigError(f"{name}={value!r} must be a whole number >= 0", name=name)
    return int(d)  # exact: 10**17 + 1 stays itself (a detour through float would round it)


def _to_seconds(value: Any, *, name: str) -> float:
    return float(_parse(value, name=name, what="a number of seconds"))


Number = Decimal | int | float | str


@dataclass(frozen=True, slots=True, init=False)
class Budget:
    """Hard limits for one task (or, wrapped in :class:`SharedBudget`, for many). ``None`` means unlimited.

    Example: ``Budget(usd="0.05", tokens=20_000, steps=12, seconds=30)``.
    """

    usd: Decimal | None = None
    """Money in USD. Enforced before every model call: the worst case (input at the input price plus ``max_tokens``
    at the output price) is reserved, and ``max_tokens`` is capped to what is left."""
    tokens: int | None = None
    """Input plus output tokens. Enforced like ``usd``: the worst case is reserved before each call."""
    steps: int | None = None
    """Agent executions. One step is reserved before an agent runs; a task with no step left ends."""
    seconds: float | None = None
    """Wall time of the task. Checked before each step; each model call's timeout is capped to the time left."""

    def __init__(self, usd: Number | None = None, tokens: Number | None = None, steps: Number | None = None,
                 seconds: Number | None = None) -> None:
        object.__setattr__(self, "usd", None if usd is None else to_decimal(usd, name="Budget.usd"))
        object.__setattr__(self, "tokens", None if tokens is None else _to_count(tokens, name="Budget.tokens"))
        object.__setattr__(self, "steps", None if steps is None else _to_count(steps, name="Budget.steps"))
        object.__setattr__(self, "seconds", None if seconds is None else _to_seconds(seconds, name="Budget.seconds"))

    @classmethod
    def _trusted(cls, usd: Decimal | None, tokens: int | None, steps: int | None, seconds: float | None) -> Budget:
        """Build from values already validated (the ledger's hot path: no conversion, no checks)."""
        b = object.__new__(cls)
        object.__setattr__(b, "usd", usd)
        object.__setattr__(b, "tokens", tokens)
        object.__setattr__(b, "steps", steps)
        object.__setattr__(b, "seconds", seconds)
        return b

    @classmethod
    def unlimited(cls) -> Budget:
        """A budget with no limit on any dimension."""
        return cls()

    @property
    def is_unlimited(self) -> bool:
        """True when no dimension has a limit."""
        return self.usd is None and self.tokens is None and self.steps is None and self.seconds is None

    def as_dict(self) -> dict[str, Any]:
        """Plain values (``usd`` as a string) for JSON, spans and rows."""
        return {
            "usd": None if self.usd is None else str(self.usd),
            "tokens": self.tokens,
            "steps": self.steps,
            "seconds": self.seconds,
        }


class LedgerBackend(Protocol):
    """Where a ledger's totals live: in this process (default) or in a shared store for many processes.

    Implementations must make ``try_reserve`` atomic: check every limit and add the amount, or change nothing.
    ``hold`` identifies one reservation (:attr:`Reservation.hold`): a shared backend keeps it under a lease
    renewed while the call runs, and uses it as the idempotency key of ``settle``, so a retried settle is not
    counted twice. Every method has an ``a``-prefixed twin for event loops that never blocks the loop
    (:class:`MemoryBackend` answers in place; :mod:`agentroute.ledgers` runs its I/O on worker threads).
    Failures of a shared store raise :class:`~agentroute.errors.LedgerError`.
    """

    def try_reserve(self, limits: Budget, amount: Spend, hold: str | None = None) -> str | None:
        """Reserve ``amount`` if it fits under ``limits``; return ``None`` or the name of the dimension that fails."""
        ...

    def settle(self, reserved: Spend, actual: Spend | None, hold: str | None = None) -> None:
        """Drop ``reserved`` from the reservations and add ``actual`` (``None`` = release) to the spend."""
        ...

    def totals(self) -> tuple[Spend, Spend]:
        """``(spent, reserved)`` right now."""
        ...

    async def atry_reserve(self, limits: Budget, amount: Spend, hold: str | None = None) -> str | None:
        """:meth:`try_reserve` for event loops."""
        ...

    async def asettle(self, reserved: Spend, actual: Spend | None, hold: str | None = None) -> None:
        """:meth:`settle` for event loops."""
        ...

    async def atotals(self) -> tuple[Spend, Spend]:
        """:meth:`totals` for event loops."""
        ...


class MemoryBackend:
    """Totals held in this process, guarded by a lock so threads and event loops can share them."""

    __slots__ = ("_lock", "reserved", "spent")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.spent = Spend()
        self.reserved = Spend()

    def try_reserve(self, limits: Budget, amount: Spend, hold: str | None = None) -> str | None:
        """Atomically reserve ``amount``; see :class:`LedgerBackend` (one process needs no ``hold``)."""
        with self._lock:
            failed = _first_breach(limits, self.spent, self.reserved, amount)
            if failed is None:
                self.reserved.add(amount)
            return failed

    def settle(self, reserved: Spend, actual: Spend | None, hold: str | None = None) -> None:
        """See :class:`LedgerBackend`."""
        with self._lock:
            self.reserved.sub(reserved)
            if actual is not None:
                self.spent.add(actual)

    def totals(self) -> tuple[Spend, Spend]:
        """See :class:`LedgerBackend`."""
        with self._lock:
            return self.spent.copy(), self.reserved.copy()

    async def atry_reserve(self, limits: Budget, amount: Spend, hold: str | None = None) -> str | None:
        """:meth:`try_reserve` in place: the lock is held for microseconds, never across an await."""
        return self.try_reserve(limits, amount, hold)

    async def asettle(self, reserved: Spend, actual: Spend | None, hold: str | None = None) -> None:
        """:meth:`settle` in place."""
        self.settle(reserved, actual, hold)

    async def atotals(self) -> tuple[Spend, Spend]:
        """:meth:`totals` in place."""
        return self.totals()


def _first_breach(limits: Budget, spent: Spend, reserved: Spend, amount: Spend) -> str | None:
    if limits.usd is not None and amount.usd is not None and amount.usd > 0:
        used = spent.known_usd + reserved.known_usd
        if used + amount.usd > limits.usd:
            return "usd"
    if limits.tokens is not None and amount.tokens and spent.tokens + reserved.tokens + amount.tokens > limits.tokens:
        return "tokens"
    if limits.steps is not None and amount.steps and spent.steps + reserved.steps + amount.steps > limits.steps:
        return "steps"
    return None


class SharedBudget:
    """One budget that many tasks draw on together, for a team or a tenant.

    ``team = SharedBudget(Budget(usd="1.00"))`` and pass ``budget=team`` to as many runs as you like, concurrently:
    their reservations are atomic, so together they never spend past the limit. ``backend`` holds the totals: in
    this process by default, or in Redis/PostgreSQL (:mod:`agentroute.ledgers`) for workers in many processes.
    ``per_task`` optionally limits each task as well. ``seconds`` is per task only.
    """

    def __init__(
        self,
        limits: Budget,
        *,
        per_task: Budget | None = None,
        backend: LedgerBackend | None = None,
        name: str = "shared",
    ) -> None:
        if not isinstance(limits, Budget):
            raise ConfigError(f"SharedBudget needs a Budget, got {type(limits).__name__}", name="limits")
        if limits.seconds is not None:
            raise ConfigError(
                "SharedBudget cannot limit seconds: wall time belongs to one task",
                name="seconds",
                hint="pass per_task=Budget(seconds=...) instead",
            )
        check = getattr(backend, "check_limits", None)
        if callable(check):  # a shared store counts exactly only within its range: refuse a limit beyond it
            check(limits)
        self.limits = limits
        self.per_task = per_task or Budget()
        self.name = name
        self.ledger = Ledger(limits, backend=backend, name=name, track_time=False)

    @property
    def spent(self) -> Spend:
        """What all tasks together have spent so far."""
        return self.ledger.spent

    @property
    def remaining(self) -> Budget:
        """What is left for all tasks together (``None`` = unlimited)."""
        return self.ledger.remaining()

    def __repr__(self) -> str:
        return f"SharedBudget({self.limits!r}, spent={self.spent.as_dict()})"


@dataclass(slots=True)
class Reservation:
    """Worst-case amounts held on one or more ledgers until the step commits or releases them.

    ``hold`` names the reservation on shared backends (its lease and the idempotency key of its settlement).
    Settling goes ledger by ledger: if a shared ledger fails (:class:`~agentroute.errors.LedgerError`), calling
    ``commit``/``release`` again settles only the ledgers not settled yet.

    **The one settlement rule** (:meth:`commit`): negative amounts are booked as 0; an unknown USD cost is booked as
    the reservation's worst case (and counted unknown), never as 0; whatever is booked is charged in full, even past
    the reservation. A booked amount beyond the reservation on a limited dimension, or an unknown cost that no
    worst case covers under a USD limit, is a :class:`Violation`, appended to the reserving ledger's
    :attr:`Ledger.violations` (and to :attr:`violations`).
    """

    ledgers: Sequence[Ledger]
    amount: Spend
    what: str = ""
    settled: bool = False
    hold: str = ""
    done: int = 0
    """How many of :attr:`ledgers` are settled already."""
    booked: Spend | None = None
    """What the commit charged (set by the first :meth:`commit`)."""
    violations: list[Violation] = field(default_factory=list)
    """The violations of this reservation's commit."""

    def _book(self, actual: Spend) -> Spend:
        """What to charge for ``actual``: never negative, never an unknown cost below the worst case reserved."""
        known = max(actual.known_usd, ZERO)
        if actual.unknown_usd and self.amount.usd is not None:
            known = max(known, self.amount.known_usd)
        return Spend(known, max(actual.tokens, 0), max(actual.steps, 0), max(actual.seconds, 0.0),
                     unknown_usd=max(actual.unknown_usd, 0))

    def _overruns(self, booked: Spend) -> list[tuple[Ledger, str, str]]:
        """``(ledger, dimension, cause)`` of every limited dimension the booked amount breaks."""
        out: list[tuple[Ledger, str, str]] = []
        what = self.what or "a step"
        amount = self.amount
        for led in self.ledgers:
            lim = led.limits
            if lim.usd is not None:
                if booked.unknown_usd and amount.usd is None:
                    out.append((led, "usd", f"unknown cost: {what} spent an amount with no known price under a "
                                            f"USD limit (${booked.known_usd} of it known)"))
                elif booked.known_usd > amount.known_usd:
                    out.append((led, "usd", f"{what}: spent ${booked.known_usd}, ${amount.known_usd} reserved"))
            if lim.tokens is not None and booked.tokens > amount.tokens:
                out.append((led, "tokens", f"{what}: spent {booked.tokens} tokens, {amount.tokens} reserved"))
            if lim.steps is not None and booked.steps > amount.steps:
                out.append((led, "steps", f"{what}: spent {booked.steps} steps, {amount.steps} reserved"))
        return out

    def _record(self, found: list[tuple[Ledger, str, str]], totals: list[Spend]) -> None:
        for (led, dim, cause), spent in zip(found, totals, strict=True):
            lim: Decimal | int = getattr(led.limits, dim)
            v = Violation(dim, lim, spent.known_usd if dim == "usd" else getattr(spent, dim), cause,
                          "task" if led is self.ledgers[0] else led.name)
            self.violations.append(v)
            self.ledgers[0].violations.append(v)

    def _settle(self, actual: Spend | None) -> None:
        hold = self.hold or None
        while self.done < len(self.ledgers):
            self.ledgers[self.done].backend.settle(self.amount, actual, hold)
            self.done += 1
        self.settled = True

    async def _asettle(self, actual: Spend | None) -> None:
        hold = self.hold or None
        while self.done < len(self.ledgers):
            await self.ledgers[self.done].backend.asettle(self.amount, actual, hold)
            self.done += 1
        self.settled = True

    def commit(self, actual: Spend) -> Spend:
        """Charge what the step really spent (see the settlement rule above), free the rest; return what was booked.

        Idempotent per reservation: a second call books nothing more.
        """
        if self.booked is None:
            self.booked = self._book(actual)
        if self.settled:
            return self.booked
        self._settle(self.booked)
        found = self._overruns(self.booked)
        if found:
            self._record(found, [led.backend.totals()[0] for led, _, _ in found])
        return self.booked

    def release(self) -> None:
        """Free the whole reservation (the step failed before spending, or was cancelled)."""
        if not self.settled:
            self._settle(None)

    async def acommit(self, actual: Spend) -> Spend:
        """:meth:`commit` for event loops (shared ledgers do their I/O off the loop)."""
        if self.booked is None:
            self.booked = self._book(actual)
        if self.settled:
            return self.booked
        await self._asettle(self.booked)
        found = self._overruns(self.booked)
        if found:
            self._record(found, [(await led.backend.atotals())[0] for led, _, _ in found])
        return self.booked

    async def arelease(self) -> None:
        """:meth:`release` for event loops."""
        if not self.settled:
            await self._asettle(None)


class Ledger:
    """Spent and reserved amounts against a :class:`Budget`, for one task (with optional shared parents)."""

    __slots__ = ("backend", "chain", "limits", "name", "parents", "shared", "started", "track_time", "violations")

    def __init__(
        self,
        limits: Budget,
        *,
        parents: Iterable[Ledger] = (),
        backend: LedgerBackend | None = None,
        name: str = "task",
        track_time: bool = True,
    ) -> None:
        self.limits = limits
        self.track_time = track_time
        self.parents = tuple(parents)
        self.backend: LedgerBackend = backend if backend is not None else MemoryBackend()
        self.name = name
        self.started = time.monotonic()
        self.chain: tuple[Ledger, ...] = (self, *self.parents)
        self.shared = any(not isinstance(led.backend, MemoryBackend) for led in self.chain)
        """True when a ledger of the chain lives outside this process (its reservations then carry a hold id)."""
        self.violations: list[Violation] = []
        """Every :class:`Violation` of a commit made through this ledger (see :meth:`Reservation.commit`)."""

    # -- reading -------------------------------------------------------------------------------------------
    @property
    def spent(self) -> Spend:
        """What this ledger has committed, with ``seconds`` the wall time since it started."""
        spent, _ = self.backend.totals()
        if self.track_time:
            spent.seconds = self.elapsed()
        return spent

    @property
    def reserved(self) -> Spend:
        """What is reserved and not yet committed."""
        return self.backend.totals()[1]

    def elapsed(self) -> float:
        """Seconds since the task started."""
        return time.monotonic() - self.started

    def held(self, dimension: str) -> bool:
        """True when some reservation on this ledger or a parent holds ``dimension``: waiting may free it."""
        for ledger in self.chain:
            value = getattr(ledger.backend.totals()[1], dimension, 0)
            if value:
                return True
        return False

    def remaining(self) -> Budget:
        """What is left on every dimension, across this ledger and its parents (``None`` = unlimited)."""
        return self._remaining([led.backend.totals() for led in self.chain])

    async def aremaining(self) -> Budget:
        """:meth:`remaining` for event loops."""
        return self._remaining([await led.backend.atotals() for led in self.chain])

    def snapshot(self) -> BudgetStatus:
        """Limits, spent, reserved and remaining, each backend read once: what one routing point looks at."""
        totals = [led.backend.totals() for led in self.chain]
        spent, reserved = totals[0]  # fresh objects from the backend: ours to set the time on
        spent.seconds = self.elapsed()
        return BudgetStatus(limits=self.limits, spent=spent, remaining=self._remaining(totals), reserved=reserved)

    def _remaining(self, totals: Sequence[tuple[Spend, Spend]]) -> Budget:
        usd: Decimal | None = None
        tokens: int | None = None
        steps: int | None = None
        for ledger, (spent, reserved) in zip(self.chain, totals, strict=True):
            lim = ledger.limits
            if lim.usd is not None:
                left = lim.usd - spent.known_usd - reserved.known_usd
                usd = left if usd is None else min(usd, left)
            if lim.tokens is not None:
                t = lim.tokens - spent.tokens - reserved.tokens
                tokens = t if tokens is None else min(tokens, t)
            if lim.steps is not None:
                s = lim.steps - spent.steps - reserved.steps
                steps = s if steps is None else min(steps, s)
        seconds = None
        if self.limits.seconds is not None:
            seconds = max(0.0, self.limits.seconds - self.elapsed())
        return Budget._trusted(
            None if usd is None else max(usd, ZERO),
            None if tokens is None else max(tokens, 0),
            None if steps is None else max(steps, 0),
            seconds,
        )

    # -- the enforcement point -------------------------------------------------------------------------------
    def reserve(self, amount: Spend, *, what: str = "") -> Reservation:
        """Hold ``amount`` on this ledger and every parent, atomically, or raise :class:`Unaffordable`.

        Nothing is held when it raises: a reservation that fits one ledger but not a parent is rolled back.
        """
        if self.limits.seconds is not None and self.elapsed() >= self.limits.seconds:
            raise Unaffordable("seconds", amount.seconds, 0.0)
        hold = os.urandom(12).hex() if self.shared else None
        done: list[Ledger] = []
        try:
            for ledger in self.chain:
                failed = ledger.backend.try_reserve(ledger.limits, amount, hold)
                if failed is not None:
                    raise Unaffordable(failed, getattr(amount, failed), getattr(self.remaining(), failed))
                done.append(ledger)
        except BaseException:
            for held in done:
                held.backend.settle(amount, None, hold)
            raise
        return Reservation(self.chain, amount, what, hold=hold or "")

    async def areserve(self, amount: Spend, *, what: str = "") -> Reservation:
        """:meth:`reserve` for event loops: shared ledgers do their I/O off the loop."""
        if self.limits.seconds is not None and self.elapsed() >= self.limits.seconds:
            raise Unaffordable("seconds", amount.seconds, 0.0)
        hold = os.urandom(12).hex() if self.shared else None
        done: list[Ledger] = []
        try:
            for ledger in self.chain:
                failed = await ledger.backend.atry_reserve(ledger.limits, amount, hold)
                if failed is not None:
                    raise Unaffordable(failed, getattr(amount, failed), getattr(await self.aremaining(), failed))
                done.append(ledger)
        except BaseException:
            for held in done:
                await held.backend.asettle(amount, None, hold)
            raise
        return Reservation(self.chain, amount, what, hold=hold or "")


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """What a policy sees of the budget at a routing point: limits, spent, reserved and remaining."""

    limits: Budget
    spent: Spend
    remaining: Budget
    reserved: Spend = field(default_factory=Spend)

    def fraction_left(self) -> float:
        """The smallest share left over the limited dimensions (1.0 when nothing is limited)."""
        fracs: list[float] = []
        lim, rem = self.limits, self.remaining
        if lim.usd is not None and rem.usd is not None:
            fracs.append(float(rem.usd / lim.usd) if lim.usd > 0 else 0.0)
        if lim.tokens is not None and rem.tokens is not None:
            fracs.append(rem.tokens / lim.tokens if lim.tokens > 0 else 0.0)
        if lim.steps is not None and rem.steps is not None:
            fracs.append(rem.steps / lim.steps if lim.steps > 0 else 0.0)
        if lim.seconds is not None and rem.seconds is not None:
            fracs.append(rem.seconds / lim.seconds if lim.seconds > 0 else 0.0)
        return min(fracs) if fracs else 1.0

    @classmethod
    def of(cls, ledger: Ledger, remaining: Budget | None = None) -> BudgetStatus:
        """Snapshot a ledger (its limits are the task's own; ``remaining`` also honours shared parents).

        Pass ``remaining`` when it was just computed, to save recomputing it.
        """
        spent, reserved = ledger.backend.totals()
        spent.seconds = ledger.elapsed()
        return cls(limits=ledger.limits, spent=spent, remaining=remaining or ledger.remaining(), reserved=reserved)


__all__ = [
    "ZERO",
    "Budget",
    "BudgetStatus",
    "Ledger",
    "LedgerBackend",
    "MemoryBackend",
    "Reservation",
    "SharedBudget",
    "Spend",
    "Unaffordable",
    "Violation",
    "to_decimal",
]
