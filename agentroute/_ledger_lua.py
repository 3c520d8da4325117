"""The Redis ledger's Lua scripts: each runs atomically on the server (see :mod:`agentroute.ledgers`).

Keys: ``KEYS[1]`` the totals hash (``s1..s3`` spent, ``r1..r3`` reserved: USD in 1e-10 units, tokens, steps),
``KEYS[2]`` the holds hash (hold id -> ``"usd,tokens,steps,owner"``), ``KEYS[3]`` the leases sorted set (hold id
-> expiry in ms of the server clock), ``KEYS[4]`` the settled sorted set (hold id -> when; kept a day, so a retried
settle is recognised). Amounts travel as decimal strings and are compared exactly in base-1e9 halves, because Lua
numbers are doubles (exact only below 2^53) while the totals are 64-bit integers.
"""

from __future__ import annotations

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

__all__ = ["RECLAIM", "RENEW", "RESERVE", "SETTLE"]
