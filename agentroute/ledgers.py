"""Ledger backends shared by many processes: Redis and SQL (PostgreSQL, or SQLite for one machine).

``SharedBudget(Budget(usd="5"), backend=RedisLedger("redis://127.0.0.1:6379/0", name="team-a"))`` lets workers in
any number of processes draw on one budget. Each backend makes :meth:`try_reserve` atomic on the server: Redis runs
one Lua script (check every limit, then add), SQL runs one conditional ``UPDATE ... WHERE spent + reserved + amount
<= limit`` — so concurrent reservations can never together pass a limit, and no update is lost.

Money is kept exactly, as integer units of 10^-10 USD (amounts are rounded *up*, so the ledger may only over-count,
never under-count). An unknown cost (``None``) is stored as 0, which is only
possible when no USD limit applies. This module imports redis / SQLAlchemy lazily.
"""

from __future__ import annotations

import contextlib
import threading
from decimal import ROUND_CEILING, Decimal
from typing import Any

from agentroute.budget import ZERO, Budget, Spend
from agentroute.errors import ConfigError

_SCALE = Decimal(10) ** 10  # Redis money unit: 1e-10 USD

_RESERVE = """
local lims = {tonumber(ARGV[1]), tonumber(ARGV[3]), tonumber(ARGV[5])}
local amts = {tonumber(ARGV[2]), tonumber(ARGV[4]), tonumber(ARGV[6])}
local names = {'usd', 'tokens', 'steps'}
for i = 1, 3 do
  if lims[i] >= 0 and amts[i] > 0 then
    local spent = tonumber(redis.call('HGET', KEYS[1], 's' .. i) or '0')
    local used = spent + tonumber(redis.call('HGET', KEYS[1], 'r' .. i) or '0')
    if used + amts[i] > lims[i] then return names[i] end
  end
end
for i = 1, 3 do
  if amts[i] ~= 0 then redis.call('HINCRBY', KEYS[1], 'r' .. i, amts[i]) end
end
return ''
"""

_SETTLE = """
for i = 1, 3 do
  local r = tonumber(ARGV[i])
  local a = tonumber(ARGV[i + 3])
  if r ~= 0 then redis.call('HINCRBY', KEYS[1], 'r' .. i, -r) end
  if a ~= 0 then redis.call('HINCRBY', KEYS[1], 's' .. i, a) end
end
return 1
"""


def _units(usd: Decimal | None) -> int:
    if usd is None or usd <= 0:
        return 0
    return int((usd * _SCALE).to_integral_value(rounding=ROUND_CEILING))


def _lim(v: Any) -> int:
    return -1 if v is None else int(v)


class RedisLedger:
    """Totals of a shared budget in one Redis hash (key ``agentroute:ledger:<name>``)."""

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", *, name: str, client: Any = None) -> None:
        if not name:
            raise ConfigError("RedisLedger needs a name: the budget's key in Redis", name="name")
        if client is None:
            try:
                import redis
            except ImportError:  # pragma: no cover - the redis extra
                raise ConfigError("RedisLedger needs the redis package",
                                  hint="pip install 'agentroute[redis]'") from None
            client = redis.Redis.from_url(url)
        self.client = client
        self.key = f"agentroute:ledger:{name}"
        self._reserve = client.register_script(_RESERVE)
        self._settle = client.register_script(_SETTLE)

    def try_reserve(self, limits: Budget, amount: Spend) -> str | None:
        """Atomically check every limit and reserve (one Lua script)."""
        lim_usd = -1 if limits.usd is None else int((limits.usd * _SCALE).to_integral_value())
        failed = self._reserve(keys=[self.key], args=[
            lim_usd, _units(amount.usd), _lim(limits.tokens), amount.tokens, _lim(limits.steps), amount.steps])
        failed = failed.decode() if isinstance(failed, bytes) else failed
        return failed or None

    def settle(self, reserved: Spend, actual: Spend | None) -> None:
        """Drop the reservation and add what was spent (one Lua script)."""
        a = actual or Spend()
        self._settle(keys=[self.key], args=[_units(reserved.usd), reserved.tokens, reserved.steps,
                                            _units(a.usd), a.tokens, a.steps])

    def totals(self) -> tuple[Spend, Spend]:
        """``(spent, reserved)`` read from Redis."""
        h = {k.decode() if isinstance(k, bytes) else k: int(v) for k, v in self.client.hgetall(self.key).items()}
        def side(p: str) -> Spend:
            return Spend(usd=Decimal(h.get(f"{p}1", 0)) / _SCALE, tokens=h.get(f"{p}2", 0), steps=h.get(f"{p}3", 0))
        return side("s"), side("r")

    def reset(self) -> None:
        """Forget every total (start the budget afresh)."""
        self.client.delete(self.key)


class SqlLedger:
    """Totals of a shared budget in one SQL row (table ``agentroute_ledger``), PostgreSQL or SQLite."""

    _lock = threading.Lock()

    def __init__(self, url: str, *, name: str, engine: Any = None) -> None:
        if not name:
            raise ConfigError("SqlLedger needs a name: the budget's row in the table", name="name")
        import sqlalchemy as sa

        self.sa = sa
        if engine is None:
            # SQLite serialises writers with a file lock: wait for it rather than fail.
            connect_args = {"timeout": 30} if url.startswith("sqlite") else {}
            engine = sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args)
        self.engine = engine
        self.name = name
        meta = sa.MetaData()
        self.table = sa.Table(
            "agentroute_ledger", meta,
            sa.Column("name", sa.String(200), primary_key=True),
            # money in integer units of 1e-10 USD: exact on every database (SQLite has no exact NUMERIC)
            *(sa.Column(f"{p}_usd", sa.BigInteger, nullable=False, default=0) for p in ("spent", "reserved")),
            *(sa.Column(f"{p}_{d}", sa.BigInteger, nullable=False, default=0)
              for p in ("spent", "reserved") for d in ("tokens", "steps")),
        )
        with self._lock:
            meta.create_all(self.engine, checkfirst=True)
        with self.engine.begin() as cx:
            exists = cx.execute(sa.select(self.table.c.name).where(self.table.c.name == name)).first()
            if exists is None:
                with contextlib.suppress(sa.exc.IntegrityError):  # another process may create it first
                    cx.execute(self.table.insert().values(
                        name=name, spent_usd=0, reserved_usd=0, spent_tokens=0, reserved_tokens=0, spent_steps=0,
                        reserved_steps=0))

    def try_reserve(self, limits: Budget, amount: Spend) -> str | None:
        """One conditional UPDATE: it changes the row only if every limit still holds."""
        t = self.table
        usd = _units(amount.usd)
        conds = [t.c.name == self.name]
        if limits.usd is not None and usd > 0:
            conds.append(t.c.spent_usd + t.c.reserved_usd + usd <= _units(limits.usd))
        if limits.tokens is not None and amount.tokens:
            conds.append(t.c.spent_tokens + t.c.reserved_tokens + amount.tokens <= limits.tokens)
        if limits.steps is not None and amount.steps:
            conds.append(t.c.spent_steps + t.c.reserved_steps + amount.steps <= limits.steps)
        stmt = t.update().where(*conds).values(
            reserved_usd=t.c.reserved_usd + usd, reserved_tokens=t.c.reserved_tokens + amount.tokens,
            reserved_steps=t.c.reserved_steps + amount.steps)
        with self.engine.begin() as cx:
            if cx.execute(stmt).rowcount == 1:
                return None
        spent, reserved = self.totals()
        for dim, lim, used, amt in (("usd", limits.usd, (spent.usd or ZERO) + (reserved.usd or ZERO), amount.usd),
                                    ("tokens", limits.tokens, spent.tokens + reserved.tokens, amount.tokens),
                                    ("steps", limits.steps, spent.steps + reserved.steps, amount.steps)):
            if lim is not None and amt and used + amt > lim:
                return dim
        return "usd" if limits.usd is not None else "tokens"  # refused, then freed in between: still a refusal

    def settle(self, reserved: Spend, actual: Spend | None) -> None:
        """Drop the reservation and add what was spent, in one UPDATE."""
        t = self.table
        a = actual or Spend()
        with self.engine.begin() as cx:
            cx.execute(t.update().where(t.c.name == self.name).values(
                reserved_usd=t.c.reserved_usd - _units(reserved.usd), spent_usd=t.c.spent_usd + _units(a.usd),
                reserved_tokens=t.c.reserved_tokens - reserved.tokens, spent_tokens=t.c.spent_tokens + a.tokens,
                reserved_steps=t.c.reserved_steps - reserved.steps, spent_steps=t.c.spent_steps + a.steps))

    def totals(self) -> tuple[Spend, Spend]:
        """``(spent, reserved)`` read from the row."""
        t = self.table
        with self.engine.connect() as cx:
            r = cx.execute(self.sa.select(t).where(t.c.name == self.name)).one()
        return (Spend(usd=Decimal(r.spent_usd) / _SCALE, tokens=int(r.spent_tokens), steps=int(r.spent_steps)),
                Spend(usd=Decimal(r.reserved_usd) / _SCALE, tokens=int(r.reserved_tokens),
                      steps=int(r.reserved_steps)))

    def reset(self) -> None:
        """Set every total back to zero."""
        t = self.table
        with self.engine.begin() as cx:
            cx.execute(t.update().where(t.c.name == self.name).values(
                spent_usd=0, reserved_usd=0, spent_tokens=0, reserved_tokens=0, spent_steps=0, reserved_steps=0))


__all__ = ["RedisLedger", "SqlLedger"]


