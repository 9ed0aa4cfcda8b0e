// Lua scripts for RedisStore. Each runs atomically in Redis and reads the clock with TIME, so
// every node in a pool shares one clock (the Redis server's) and no node's drift matters.
//
// Key layout (P = key prefix, e.g. "peergate:"):
//   P tb:{<key>}            hash   token bucket  {t = tokens, ts = last refill ms}
//   P{s}:tb:<key>           hash   call-rate bucket checked together with session slots (admit)
//   P{s}:scope:<scope>      zset   session id -> expiry ms   (one per scope: peer:<id>, global)
//   P{s}:node:<nodeId>      zset   session id -> expiry ms   (what a node must keep alive)
//   P{s}:sid:<sessionId>    string "<node key>\n<scope key>\n..." (what release must undo)
//   P rp:{<key>}            string replay-cache marker
//   P{b}:bans / P{b}:bexp   hash address -> reason / zset address -> expiry ms
//   P strk:{<source>}       zset   strike id -> time ms
// All session keys share the hash tag {s} so one script can check and take every scope at once
// on Redis Cluster (all-or-none across peer and global limits needs one slot; the call-rate
// bucket joins them so admission is one round trip); other buckets, replay markers and strikes
// are tagged by their own key and spread over the cluster.

const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

// Token bucket body: `bucket(key, rate, burst, nowf)` → allowed (0|1), retry-after ms.
// `nowf` is fractional ms so high rates refill smoothly.
const BUCKET_FN = `
local function bucket(key, rate, burst, nowf)
  local v = redis.call('HMGET', key, 't', 'ts')
  local tokens = tonumber(v[1])
  local ts = tonumber(v[2])
  if tokens == nil or ts == nil then tokens = burst; ts = nowf end
  if nowf > ts then
    tokens = math.min(burst, tokens + (nowf - ts) * rate / 1000)
    ts = nowf
  end
  local allowed = 0
  local wait = 0
  if tokens >= 1 then
    tokens = tokens - 1
    allowed = 1
  else
    wait = math.ceil((1 - tokens) * 1000 / rate)
  end
  -- string.format keeps full precision (tostring would round ms timestamps to 14 digits)
  redis.call('HSET', key, 't', string.format('%.6f', tokens), 'ts', string.format('%.3f', ts))
  redis.call('PEXPIRE', key, math.ceil(burst * 1000 / rate) + 1000)
  return allowed, wait
end`;

// Session-slot body: `slots(sidKey, nodeKey, first, ttl, sid, limitBase, now)` over KEYS[first..]
// with limits in ARGV[limitBase + i] → {1,0,0} taken (or already held) | {0, scope index, count}.
const SLOTS_FN = `
local function slots(sidKey, nodeKey, first, ttl, sid, limitBase, now)
  if redis.call('EXISTS', sidKey) == 1 then return {1, 0, 0} end
  local n = #KEYS - first + 1
  for i = 1, n do
    local k = KEYS[first + i - 1]
    redis.call('ZREMRANGEBYSCORE', k, '-inf', now)
    local limit = tonumber(ARGV[limitBase + i])
    if limit >= 0 then
      local c = redis.call('ZCARD', k)
      if c >= limit then return {0, i, c} end
    end
  end
  local exp = now + ttl
  local rec = nodeKey
  for i = 1, n do
    local k = KEYS[first + i - 1]
    redis.call('ZADD', k, exp, sid)
    rec = rec .. '\\n' .. k
  end
  redis.call('SET', sidKey, rec, 'PX', ttl)
  redis.call('ZADD', nodeKey, exp, sid)
  if redis.call('PTTL', nodeKey) < ttl then redis.call('PEXPIRE', nodeKey, ttl) end
  return {1, 0, 0}
end`;

const TIME = `local t = redis.call('TIME')
local nowf = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local now = math.floor(nowf)`;

/** KEYS[1] bucket; ARGV rate/s, burst → {allowed 0|1, retry-after ms}. */
export const TAKE = `
${TIME}
${BUCKET_FN}
local allowed, wait = bucket(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), nowf)
return {allowed, wait}`;

/**
 * KEYS[1] sid record, KEYS[2] node zset, KEYS[3..] scope zsets;
 * ARGV ttl ms, session id, then one limit per scope (-1 = no limit)
 * → {1,0,0} taken (or already held) | {0, scope index (1-based), count}.
 */
export const ACQUIRE = `
${TIME}
${SLOTS_FN}
return slots(KEYS[1], KEYS[2], 3, tonumber(ARGV[1]), ARGV[2], 2, now)`;

/**
 * A call admission in one round trip: call-rate token, then session slots.
 * KEYS[1] bucket, KEYS[2] sid record, KEYS[3] node zset, KEYS[4..] scope zsets;
 * ARGV rate/s, burst, ttl ms, session id, then one limit per scope
 * → {1,0,0} | {0, scope index, count} | {2, retry-after ms, 0} (rate limited).
 */
export const ADMIT = `
${TIME}
${BUCKET_FN}
${SLOTS_FN}
local allowed, wait = bucket(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), nowf)
if allowed == 0 then return {2, wait, 0} end
return slots(KEYS[2], KEYS[3], 4, tonumber(ARGV[3]), ARGV[4], 4, now)`;

/** KEYS[1] sid record; ARGV session id → 1 released | 0 unknown. */
export const RELEASE = `
local rec = redis.call('GET', KEYS[1])
if not rec then return 0 end
redis.call('DEL', KEYS[1])
for k in string.gmatch(rec, '[^\\n]+') do redis.call('ZREM', k, ARGV[1]) end
return 1`;

/**
 * KEYS[1] node zset; ARGV ttl ms, chunk size, sid key prefix, target expiry (0 on the first
 * call) → {sessions refreshed in this chunk, target expiry}. Refreshed sessions move out of the
 * selected score range (below the target), so calling again with the returned target until the
 * count is below the chunk size walks every session without a cursor and without blocking
 * Redis for one huge node.
 */
export const KEEPALIVE = `
${NOW}
local ttl = tonumber(ARGV[1])
local exp = tonumber(ARGV[4])
if exp == 0 then exp = now + ttl end
ttl = math.max(1, exp - now)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. exp, 'LIMIT', 0, tonumber(ARGV[2]))
for _, sid in ipairs(ids) do
  local sk = ARGV[3] .. sid
  local rec = redis.call('GET', sk)
  if rec then
    -- XX: a session that already expired from a scope stays expired (its slot may be reused)
    for k in string.gmatch(rec, '[^\\n]+') do redis.call('ZADD', k, 'XX', exp, sid) end
    redis.call('PEXPIRE', sk, ttl)
  else
    redis.call('ZREM', KEYS[1], sid)
  end
end
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return {#ids, exp}`;

/** KEYS[1] node zset; ARGV sid key prefix, chunk size → sessions dropped in this chunk. */
export const RECONCILE = `
local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)
for _, sid in ipairs(ids) do
  local sk = ARGV[1] .. sid
  local rec = redis.call('GET', sk)
  if rec then
    for k in string.gmatch(rec, '[^\\n]+') do redis.call('ZREM', k, sid) end
    redis.call('DEL', sk)
  end
  redis.call('ZREM', KEYS[1], sid)
end
return #ids`;

/** KEYS[1] scope zset → live sessions. */
export const COUNT = `
${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])`;

const PRUNE_BANS = `
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, a in ipairs(gone) do redis.call('HDEL', KEYS[1], a) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)`;

/** KEYS[1] bans hash, KEYS[2] expiry zset; ARGV address, ttl ms, reason, channel. */
export const BAN = `
${NOW}
${PRUNE_BANS}
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PUBLISH', ARGV[4], cjson.encode({type = 'ban', address = ARGV[1], ttlMs = tonumber(ARGV[2]), reason = ARGV[3]}))
return 1`;

/** KEYS as BAN; ARGV address, channel → 1 if a live ban was removed. */
export const UNBAN = `
${NOW}
${PRUNE_BANS}
local had = redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('PUBLISH', ARGV[2], cjson.encode({type = 'unban', address = ARGV[1]}))
return had`;

/** KEYS as BAN → flat {address, ttl ms, reason, ...}. */
export const LIST_BANS = `
${NOW}
${PRUNE_BANS}
local out = {}
local z = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
for i = 1, #z, 2 do
  local reason = redis.call('HGET', KEYS[1], z[i]) or ''
  out[#out + 1] = z[i]
  out[#out + 1] = tostring(math.floor(tonumber(z[i + 1]) - now))
  out[#out + 1] = reason
end
return out`;

/** KEYS[1] strikes zset; ARGV window ms, threshold, unique member → count (reset at threshold). */
export const STRIKE = `
${NOW}
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZADD', KEYS[1], now, ARGV[3])
local c = redis.call('ZCARD', KEYS[1])
if c >= tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[1])
else
  redis.call('PEXPIRE', KEYS[1], window)
end
return c`;
