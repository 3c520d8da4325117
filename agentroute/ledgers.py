"""Ledger backends shared by many processes: Redis, and SQL (the store's database: PostgreSQL, or SQLite).

``SharedBudget(Budget(usd="5"), backend=RedisLedger("redis://127.0.0.1:6379/0", name="team-a"))`` lets workers in
any number of processes draw on one budget. Each backend makes :meth:`try_reserve` atomic on the server: Redis runs
one Lua script (check every limit, then add), SQL one conditional ``UPDATE ... WHERE spent + reserved + amount <=
limit`` — so concurrent reservations can never together pass a limit, and no update is lost.

**Leases.** Every reservation is a *hold* with an owner (host, pid) and an expiry. While the call runs, one
renewer thread per backend object extends the leases of all its open holds (every ``lease / 3`` seconds, one
round trip for all of them); settling a hold stops its renewal. A worker that dies (``kill -9``) stops renewing:
once its leases run out, the next reservation that does not fit first gives the dead holds back (*reclaims* them)
and tries again, so the budget is usable again within one lease (default 30 s). What was spent is never touched.
``agentroute ledgers show|reclaim`` shows and reclaims holds by hand.

**Exact money.** Money is an integer count of 1e-10 USD (:data:`~agentroute.store.tables.USD_UNIT`): amounts round
*up* to it and limits *down*, so a ledger never grants past a limit; limits up to $1e8 (and counts up to 1e18)
are compared exactly (Redis compares in base-1e9 halves, since Lua numbers are doubles); a larger limit is a
:class:`~agentroute.errors.ConfigError` naming it. A spend's known USD (:attr:`~agentroute.budget.Spend.known_usd`)
is what is added: the settlement rule (:meth:`~agentroute.budget.Reservation.commit`) has already booked an unknown
cost as its reservation's worst case, and flagged one that no worst case covers under a USD limit as a violation.

**Failures.** A store that cannot be reached is retried with backoff (about 3 s in all), then raises
:class:`~agentroute.errors.LedgerError`; a settle is retried under its hold id, which the store remembers for a day,
so a settle that went through before its reply was lost is not counted twice. The ``a``-prefixed twins
(``atry_reserve``, ``asettle``, ``atotals``) run the same calls on the backend's worker threads, so an event loop
never waits on ledger I/O. ``reset()`` takes ``spend=`` explicitly: it never erases spend by default.

This module imports redis / SQLAlchemy lazily.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any, TypeVar

from agentroute.budget import Budget, Spend
from agentroute.errors import ConfigError, LedgerError

log = logging.getLogger("agentroute.ledgers")
T = TypeVar("T")
_SCALE = Decimal(10) ** 10  # money unit: 1e-10 USD
MAX_UNITS = 10**18
"""The largest limit, in ledger units (1e-10 USD, tokens, steps), that a shared ledger compares exactly."""
MAX_USD = Decimal(MAX_UNITS) / _SCALE
_PAUSES = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)
"""Pauses between the tries of one ledger call while its store is unreachable (about 3 s in all)."""
DEFAULT_LEASE = 30.0
_DAY_NS = 86_400 * 10**9


# -- the Redis scripts, each atomic on the server. Keys: KEYS[1] the totals hash (s1..s3 spent, r1..r3 reserved: USD in
# 1e-10 units, tokens, steps), KEYS[2] the holds hash (id -> "usd,tokens,steps,owner"), KEYS[3] the leases sorted set
# (id -> expiry, ms of the server clock), KEYS[4] the settled sorted set (id -> when; kept a day, so a retried settle
# is recognised). Amounts travel as decimal strings and are compared exactly in base-1e9 halves: Lua numbers are
# doubles (exact below 2^53), the totals 64-bit integers.
_COMMON = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- a decimal integer string as (hi, lo) with value = hi * 1e9 + lo, both exact doubles
local function split(s)
  s = tostring(s or '0')
  local neg = string.sub(s, 1, 1) == '-'
  if neg then s = string.sub(s, 2) end
  local n = string.len(s)
  local hi, lo = 0, tonumber(s)
  if n > 9 then hi = tonumber(string.sub(s, 1, n - 9)); lo = tonumber(string.sub(s, n - 8)) end
  if neg then return -hi, -lo end
  return hi, lo
end
-- true when a + b + c > lim (all decimal strings)
local function exceeds(a, b, c, lim)
  local ah, al = split(a); local bh, bl = split(b); local ch, cl = split(c); local lh, ll = split(lim)
  local hi, lo = ah + bh + ch, al + bl + cl
  hi = hi + math.floor(lo / 1e9); lo = lo % 1e9
  local lhi = lh + math.floor(ll / 1e9); local llo = ll % 1e9
  return hi > lhi or (hi == lhi and lo > llo)
end
local function neg(x) if x == '0' then return '0' end return '-' .. x end
local function parts(v)
  local out = {}
  for p in string.gmatch(v, '([^,]+)') do table.insert(out, p) end
  return out
end
-- give back the holds whose lease ran out (every hold when all is true); return how many
local function reclaim(now, all)
  local ids
  if all then ids = redis.call('HKEYS', KEYS[2]) else ids = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now) end
  local n = 0
  for _, id in ipairs(ids) do
    local v = redis.call('HGET', KEYS[2], id)
    if v then
      local p = parts(v)
      for i = 1, 3 do
        if p[i] ~= '0' then redis.call('HINCRBY', KEYS[1], 'r' .. i, neg(p[i])) end
      end
      redis.call('HDEL', KEYS[2], id)
      n = n + 1
    end
    redis.call('ZREM', KEYS[3], id)
  end
  return n
end
"""

RESERVE = _COMMON + """
-- ARGV: hold, owner, lease_ms, then (limit, amount) for usd, tokens, steps; limit -1 = unlimited
local hold = ARGV[1]
if redis.call('HEXISTS', KEYS[2], hold) == 1 then return '' end  -- a retry of a reservation that went through
local names = {'usd', 'tokens', 'steps'}
local function refused()
  for i = 1, 3 do
    local lim, amt = ARGV[2 + 2 * i], ARGV[3 + 2 * i]
    if lim ~= '-1' and amt ~= '0' then
      local s = redis.call('HGET', KEYS[1], 's' .. i) or '0'
      local r = redis.call('HGET', KEYS[1], 'r' .. i) or '0'
      if exceeds(s, r, amt, lim) then return names[i] end
    end
  end
  return nil
end
local now = now_ms()
local bad = refused()
if bad and reclaim(now, false) > 0 then bad = refused() end
if bad then return bad end
for i = 1, 3 do
  local amt = ARGV[3 + 2 * i]
  if amt ~= '0' then redis.call('HINCRBY', KEYS[1], 'r' .. i, amt) end
end
redis.call('HSET', KEYS[2], hold, ARGV[5] .. ',' .. ARGV[7] .. ',' .. ARGV[9] .. ',' .. ARGV[2])
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]), hold)
return ''
"""

SETTLE = _COMMON + """
-- ARGV: hold ('' = none), reserved usd/tokens/steps, actual usd/tokens/steps
local hold = ARGV[1]
local now = now_ms()
if hold ~= '' and redis.call('ZSCORE', KEYS[4], hold) then return 0 end  -- settled already: a retry
local v = hold ~= '' and redis.call('HGET', KEYS[2], hold)
if v then  -- still held: give back what it reserved
  local p = parts(v)
  for i = 1, 3 do
    if p[i] ~= '0' then redis.call('HINCRBY', KEYS[1], 'r' .. i, neg(p[i])) end
  end
  redis.call('HDEL', KEYS[2], hold)
  redis.call('ZREM', KEYS[3], hold)
elseif hold == '' then
  for i = 1, 3 do
    if ARGV[1 + i] ~= '0' then redis.call('HINCRBY', KEYS[1], 'r' .. i, neg(ARGV[1 + i])) end
  end
end  -- else its lease ran out and it was reclaimed: the reservation is back already, the spend is not
for i = 1, 3 do
  if ARGV[4 + i] ~= '0' then redis.call('HINCRBY', KEYS[1], 's' .. i, ARGV[4 + i]) end
end
if hold ~= '' then
  redis.call('ZADD', KEYS[4], now, hold)
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - 86400000)
end
return 1
"""

RENEW = _COMMON + """
-- ARGV: lease_ms, hold ids; returns the ids that are no longer held (reclaimed)
local now = now_ms()
local lost = {}
for i = 2, #ARGV do
  if redis.call('HEXISTS', KEYS[2], ARGV[i]) == 1 then
    redis.call('ZADD', KEYS[3], now + tonumber(ARGV[1]), ARGV[i])
  elseif not redis.call('ZSCORE', KEYS[4], ARGV[i]) then
    table.insert(lost, ARGV[i])
  end
end
return lost
"""

RECLAIM = _COMMON + """
-- ARGV: 1 to reclaim every hold, 0 for those whose lease ran out
return reclaim(now_ms(), ARGV[1] == '1')
"""


def _up(usd: Decimal | None) -> int:
    if usd is None or usd <= 0:
        return 0
    return int((usd * _SCALE).to_integral_value(rounding=ROUND_CEILING))


def _down(usd: Decimal) -> int:
    return int((usd * _SCALE).to_integral_value(rounding=ROUND_FLOOR))


def _usd(units: int) -> Decimal:
    return Decimal(units) / _SCALE


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


class _Leases:
    """The open holds of one backend object, renewed together by one daemon thread."""

    def __init__(self, backend: _Shared, period: float) -> None:
        self._renew = weakref.WeakMethod(backend._renew)
        self.period = period
        self.ids: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stop = False

    def add(self, hold: str) -> None:
        with self._lock:
            self.ids.add(hold)
            if self._thread is None or not self._thread.is_alive():
                self._stop = False
                self._thread = threading.Thread(target=self._run, name="agentroute-leases", daemon=True)
                self._thread.start()

    def discard(self, hold: str) -> None:
        with self._lock:
            self.ids.discard(hold)

    def _run(self) -> None:
        while not self._wake.wait(self.period) and not self._stop:
            renew = self._renew()
            if renew is None:  # the backend is gone
                return
            with self._lock:
                ids = sorted(self.ids)
            if not ids:
                continue
            try:
                lost = renew(ids)
            except Exception as e:  # the next round tries again; the lease covers a few missed rounds
                log.warning("agentroute: renewing %d lease(s) failed: %s", len(ids), e)
                continue
            for hold in lost:
                log.warning("agentroute: hold %s was reclaimed while its call ran (its lease lapsed)", hold)
                self.discard(hold)

    def close(self) -> None:
        self._stop = True
        self._wake.set()


class _Shared:
    """What both shared backends have in common: leases, retries, range checks and the async twins."""

    kind = "shared"

    def __init__(self, name: str, lease: float, owner: str | None) -> None:
        if not name:
            raise ConfigError(f"{type(self).__name__} needs a name: the budget's key in the store", name="name")
        if not 0.1 <= lease <= 3600:
            raise ConfigError(f"lease={lease!r} must be between 0.1 and 3600 seconds", name="lease")
        self.name = name
        self.lease = float(lease)
        self.owner = owner or _owner()
        self.leases = _Leases(self, self.lease / 3)
        self._pool: ThreadPoolExecutor | None = None

    # -- subclasses implement these (no retries, no error mapping)
    def _reserve(self, limits: tuple[int, int, int], amounts: tuple[int, int, int], hold: str, retry: bool) -> str:
        raise NotImplementedError

    def _settle(self, hold: str | None, reserved: tuple[int, int, int], actual: tuple[int, int, int]) -> None:
        raise NotImplementedError

    def _renew(self, ids: list[str]) -> list[str]:
        raise NotImplementedError

    def _totals(self) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        raise NotImplementedError

    def _outage(self, e: BaseException) -> bool:
        raise NotImplementedError

    # -- the protocol
    def check_limits(self, limits: Budget) -> None:
        """Refuse limits this ledger cannot compare exactly (a :class:`ConfigError` naming the limit)."""
        if limits.usd is not None and limits.usd > MAX_USD:
            raise ConfigError(f"Budget.usd={limits.usd} is beyond what a shared ledger counts exactly "
                              f"(at most {MAX_USD:f} USD)", name="Budget.usd", hint="use None for unlimited")
        for dim in ("tokens", "steps"):
            v = getattr(limits, dim)
            if v is not None and v > MAX_UNITS:
                raise ConfigError(f"Budget.{dim}={v} is beyond what a shared ledger counts exactly (at most "
                                  f"{MAX_UNITS})", name=f"Budget.{dim}", hint="use None for unlimited")

    def _call(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        for attempt, pause in enumerate((*_PAUSES, None)):
            try:
                return fn(*args)
            except (LedgerError, ConfigError):
                raise
            except Exception as e:
                first = str(getattr(e, "orig", None) or e).strip().splitlines()
                detail = first[0] if first else type(e).__name__
                if not self._outage(e):
                    raise LedgerError(f"{self.kind} ledger {self.name!r}: {what} failed: {detail}",
                                      backend=self.kind) from e
                if pause is None:
                    raise LedgerError(f"{self.kind} ledger {self.name!r} unreachable ({what}, {attempt + 1} tries "
                                      f"over {sum(_PAUSES):.1f} s): {detail}", backend=self.kind) from e
                time.sleep(pause)
        raise AssertionError("unreachable")  # pragma: no cover

    def try_reserve(self, limits: Budget, amount: Spend, hold: str | None = None) -> str | None:
        """Atomically check every limit and reserve; a refusal first reclaims holds whose lease ran out."""
        self.check_limits(limits)
        amounts = (_up(amount.known_usd), int(amount.tokens), int(amount.steps))
        lims = (-1 if limits.usd is None else _down(limits.usd), -1 if limits.tokens is None else int(limits.tokens),
                -1 if limits.steps is None else int(limits.steps))
        for dim, lim, amt in zip(("usd", "tokens", "steps"), lims, amounts, strict=True):
            if amt > MAX_UNITS or amt < 0:
                if lim >= 0 and amt > 0:
                    return dim  # more than any limit we accept: it cannot fit
                raise LedgerError(f"{self.kind} ledger {self.name!r}: a reservation of {getattr(amount, dim)} "
                                  f"{dim} is out of range", backend=self.kind)
        key = hold or os.urandom(12).hex()
        tries = 0

        def once() -> str:  # a retry first checks whether the lost attempt went through (the hold exists)
            nonlocal tries
            tries += 1
            return self._reserve(lims, amounts, key, tries > 1)

        failed = self._call("reserve", once)
        if failed:
            return failed
        self.leases.add(key)
        return None

    def settle(self, reserved: Spend, actual: Spend | None, hold: str | None = None) -> None:
        """Drop the hold (its reservation) and add what was spent; once per hold, however often it is retried."""
        a = actual or Spend()
        spend = (_up(a.known_usd), max(int(a.tokens), 0), max(int(a.steps), 0))
        held = (_up(reserved.known_usd), int(reserved.tokens), int(reserved.steps))
        self._call("settle", self._settle, hold, held, spend)
        if hold:
            self.leases.discard(hold)

    def totals(self) -> tuple[Spend, Spend]:
        """``(spent, reserved)`` read from the store."""
        s, r = self._call("totals", self._totals)
        return (Spend(usd=_usd(s[0]), tokens=s[1], steps=s[2]), Spend(usd=_usd(r[0]), tokens=r[1], steps=r[2]))

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix=f"agentroute-{self.kind}-ledger")
        return self._pool

    async def _off_loop(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor(), functools.partial(fn, *args))

    async def atry_reserve(self, limits: Budget, amount: Spend, hold: str | None = None) -> str | None:
        """:meth:`try_reserve` on a worker thread of this backend (the event loop never waits on I/O)."""
        return await self._off_loop(self.try_reserve, limits, amount, hold)

    async def asettle(self, reserved: Spend, actual: Spend | None, hold: str | None = None) -> None:
        """:meth:`settle` on a worker thread."""
        await self._off_loop(self.settle, reserved, actual, hold)

    async def atotals(self) -> tuple[Spend, Spend]:
        """:meth:`totals` on a worker thread."""
        return await self._off_loop(self.totals)

    def close(self) -> None:
        """Stop renewing leases and the worker threads (open holds then lapse after their lease)."""
        self.leases.close()
        if self._pool is not None:
            self._pool.shutdown(wait=False)


class RedisLedger(_Shared):
    """Totals of a shared budget in one Redis hash (``agentroute:ledger:<name>``), holds beside it.

    ``lease`` is how long a hold outlives its owner (seconds); ``owner`` names this process in ``ledgers show``.
    """

    kind = "redis"

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", *, name: str, client: Any = None,
                 lease: float = DEFAULT_LEASE, owner: str | None = None) -> None:
        super().__init__(name, lease, owner)
        if client is None:
            try:
                import redis
            except ImportError:  # pragma: no cover - the redis extra
                raise ConfigError("RedisLedger needs the redis package",
                                  hint="pip install 'agentroute[redis]'") from None
            client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
        self.client = client
        self.url = url  # where a process elsewhere (a Ray worker) reopens this ledger
        self.key = f"agentroute:ledger:{name}"
        self.keys = [self.key, f"{self.key}:holds", f"{self.key}:leases", f"{self.key}:done"]
        self._reserve_script = client.register_script(RESERVE)
        self._settle_script = client.register_script(SETTLE)
        self._renew_script = client.register_script(RENEW)
        self._reclaim_script = client.register_script(RECLAIM)

    def _outage(self, e: BaseException) -> bool:
        import redis

        return isinstance(e, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError | OSError)

    def _reserve(self, limits: tuple[int, int, int], amounts: tuple[int, int, int], hold: str, retry: bool) -> str:
        args = [hold, self.owner, int(self.lease * 1000)]
        for lim, amt in zip(limits, amounts, strict=True):
            args += [str(lim), str(amt)]
        out = self._reserve_script(keys=self.keys, args=args)
        return out.decode() if isinstance(out, bytes) else str(out)

    def _settle(self, hold: str | None, reserved: tuple[int, int, int], actual: tuple[int, int, int]) -> None:
        self._settle_script(keys=self.keys, args=[hold or "", *map(str, reserved), *map(str, actual)])

    def _renew(self, ids: list[str]) -> list[str]:
        lost = self._renew_script(keys=self.keys, args=[int(self.lease * 1000), *ids])
        return [x.decode() if isinstance(x, bytes) else str(x) for x in lost or []]

    def _totals(self) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        h = {k.decode() if isinstance(k, bytes) else k: int(v) for k, v in self.client.hgetall(self.key).items()}
        return ((h.get("s1", 0), h.get("s2", 0), h.get("s3", 0)), (h.get("r1", 0), h.get("r2", 0), h.get("r3", 0)))

    def holds(self) -> list[dict[str, Any]]:
        """Every live hold: id, owner, amounts and seconds until its lease runs out (negative: lapsed)."""
        raw = self.client.hgetall(self.keys[1])
        now_s, now_us = self.client.time()
        now = now_s * 1000 + now_us // 1000
        out = []
        for k, v in raw.items():
            hold = k.decode() if isinstance(k, bytes) else k
            u, t, s, owner = (v.decode() if isinstance(v, bytes) else v).split(",", 3)
            exp = self.client.zscore(self.keys[2], hold)
            out.append({"hold": hold, "owner": owner, "state": "held", "usd": _usd(int(u)), "tokens": int(t),
                        "steps": int(s), "expires_in": None if exp is None else (exp - now) / 1000})
        return sorted(out, key=lambda h: h["hold"])

    def reclaim(self, *, all_holds: bool = False) -> int:
        """Give back the holds whose lease ran out (every hold with ``all_holds``); return how many."""
        return int(self._call("reclaim", self._reclaim_script, self.keys, [1 if all_holds else 0]))

    def reset(self, *, spend: bool) -> None:
        """Drop every hold; with ``spend=True`` also forget what was spent (the budget starts afresh)."""
        if spend:
            self.client.delete(*self.keys)
        else:
            self.reclaim(all_holds=True)


class SqlLedger(_Shared):
    """Totals of a shared budget in a row of the store's ``agentroute_budgets``, holds in ``..._budget_holds``.

    ``url`` is a store URL (the same database can hold traces and pheromones); the engine is the store's one
    engine for that URL unless ``engine`` is given. ``lease`` and ``owner`` as for :class:`RedisLedger`.
    """

    kind = "sql"

    def __init__(self, url: str | None = None, *, name: str, engine: Any = None, lease: float = DEFAULT_LEASE,
                 owner: str | None = None) -> None:
        super().__init__(name, lease, owner)
        from agentroute.store.budgets import SqlLedgerStore

        self.store = SqlLedgerStore(url, name=name, engine=engine)
        self.engine = self.store.engine
        self.url: str = self.engine.url.render_as_string(hide_password=False)  # for a process elsewhere (Ray)

    def _outage(self, e: BaseException) -> bool:
        return self.store.outage(e)

    def _reserve(self, limits: tuple[int, int, int], amounts: tuple[int, int, int], hold: str, retry: bool) -> str:
        return self.store.reserve(limits, amounts, hold, self.owner, int(self.lease * 1e9), retry=retry)

    def _settle(self, hold: str | None, reserved: tuple[int, int, int], actual: tuple[int, int, int]) -> None:
        self.store.settle(hold, reserved, actual)

    def _renew(self, ids: list[str]) -> list[str]:
        return self.store.renew(ids, int(self.lease * 1e9))

    def _totals(self) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        return self.store.totals()

    def holds(self) -> list[dict[str, Any]]:
        """Every hold not yet settled: id, owner, state, amounts and seconds until its lease runs out."""
        now = time.time_ns()
        out = []
        for h in self.store.holds():
            expires = h.pop("expires_ns")
            out.append({**h, "usd": _usd(h["usd"]), "expires_in": (expires - now) / 1e9})
        return out

    def reclaim(self, *, all_holds: bool = False) -> int:
        """Give back the holds whose lease ran out (every held hold with ``all_holds``); return how many."""
        return self._call("reclaim", self.store.reclaim_now, all_holds)

    def reset(self, *, spend: bool) -> None:
        """Drop every hold; with ``spend=True`` also forget what was spent (the budget starts afresh)."""
        self._call("reset", self.store.reset, spend)


__all__ = ["DEFAULT_LEASE", "MAX_UNITS", "MAX_USD", "RedisLedger", "SqlLedger"]
