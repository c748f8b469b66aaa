/**
 * The Lua scripts of per-host politeness. Each runs atomically in Redis and reads the clock
 * from Redis (`TIME`), so every worker process agrees on one clock whatever its own says.
 * Times are milliseconds since the epoch; durations handed back are relative, so a caller
 * turns them into its own clock's time.
 */

const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/**
 * Takes a slot of the host, if its cooldown is over, it has a free slot and a token.
 * KEYS: leases (zset lease → expiry), bucket (hash), state (hash), hosts (zset host → last use).
 * ARGV: lease id, lease ms, concurrency, rate per second (0: none), burst, host, state ttl ms.
 * Returns {1, 0, 'granted'} or {0, retry-after ms, reason}; a slot refused for concurrency
 * says 0 ms (nobody knows when a request ends).
 */
export const ACQUIRE_LUA = `${NOW}
local leaseMs = tonumber(ARGV[2])
local stateTtl = tonumber(ARGV[7])
redis.call('ZADD', KEYS[4], now, ARGV[6])
-- Hosts idle longer than their state lives are forgotten by the status page too.
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - stateTtl)
local cooldown = tonumber(redis.call('HGET', KEYS[3], 'cooldownUntil') or '0') or 0
if cooldown > now then
  return {0, cooldown - now, 'cooldown'}
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return {0, 0, 'concurrency'}
end
local rate = tonumber(ARGV[4])
if rate > 0 then
  local burst = tonumber(ARGV[5])
  local bucket = redis.call('HMGET', KEYS[2], 'tokens', 'at')
  local tokens = tonumber(bucket[1]) or burst
  local at = tonumber(bucket[2]) or now
  if now > at then tokens = math.min(burst, tokens + (now - at) * rate / 1000) end
  if tokens < 1 then
    return {0, math.ceil((1 - tokens) * 1000 / rate), 'rate'}
  end
  redis.call('HSET', KEYS[2], 'tokens', tostring(tokens - 1), 'at', now)
  redis.call('PEXPIRE', KEYS[2], math.ceil(burst * 1000 / rate) + 60000)
end
redis.call('ZADD', KEYS[1], now + leaseMs, ARGV[1])
redis.call('PEXPIRE', KEYS[1], leaseMs * 2)
redis.call('HSET', KEYS[3], 'lastStartAt', now)
redis.call('PEXPIRE', KEYS[3], stateTtl)
return {1, 0, 'granted'}
`;

/**
 * Keeps a lease alive while its request runs (re-adding it if it had expired: the request is
 * still in flight, so it still counts). KEYS: leases. ARGV: lease id, lease ms.
 */
export const EXTEND_LUA = `${NOW}
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return 1
`;

/**
 * Gives a slot back (when a lease id is given) and records how the host answered.
 * KEYS: leases, state (hash), failures (list of recent failures, newest first).
 * ARGV: lease id ('' for none), outcome ('success' | 'failure' | 'neutral'), retry-after ms
 * the host asked for, backoff base ms, backoff max ms, failure record (JSON), recent failures
 * kept, state ttl ms.
 * A failure pauses the host for max(base * 2^(consecutive failures - 1), retry-after), capped
 * at max; a pause already running is never shortened. Success resets the failure count but
 * keeps a running pause: a request that started before a 429 must not end it early.
 */
export const RELEASE_LUA = `${NOW}
if ARGV[1] ~= '' then redis.call('ZREM', KEYS[1], ARGV[1]) end
local outcome = ARGV[2]
local stateTtl = tonumber(ARGV[8])
if outcome == 'success' then
  redis.call('HSET', KEYS[2], 'consecutiveFailures', 0, 'lastSuccessAt', now)
elseif outcome == 'failure' then
  local failures = redis.call('HINCRBY', KEYS[2], 'consecutiveFailures', 1)
  local base = tonumber(ARGV[4])
  local max = tonumber(ARGV[5])
  local backoff = base * math.pow(2, math.min(failures - 1, 40))
  local pause = math.min(max, math.max(backoff, tonumber(ARGV[3])))
  local untilAt = now + pause
  local current = tonumber(redis.call('HGET', KEYS[2], 'cooldownUntil') or '0') or 0
  if untilAt > current then
    redis.call('HSET', KEYS[2], 'cooldownUntil', untilAt)
  end
  redis.call('HSET', KEYS[2], 'lastFailureAt', now)
  local record = cjson.decode(ARGV[6])
  record['at'] = now
  record['pauseMs'] = pause
  redis.call('LPUSH', KEYS[3], cjson.encode(record))
  redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[7]) - 1)
  redis.call('PEXPIRE', KEYS[3], stateTtl)
end
redis.call('PEXPIRE', KEYS[2], stateTtl)
return 1
`;

/**
 * What the status page shows of one host. KEYS: leases, state, failures.
 * Returns {now, in flight, state fields (flat), recent failures (JSON strings)}.
 */
export const READ_STATE_LUA = `${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return {now, redis.call('ZCARD', KEYS[1]), redis.call('HGETALL', KEYS[2]), redis.call('LRANGE', KEYS[3], 0, -1)}
`;
