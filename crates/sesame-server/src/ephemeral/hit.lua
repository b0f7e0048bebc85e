-- hit: one step of the rate limiter (crates/sesame-server/src/limiter.rs, `apply`),
-- atomic because Redis runs a script alone. KEYS[1] is a hash: s (window start), c (count),
-- g (gate opens at); all times are milliseconds of the server clock passed in as ARGV[1].
-- ARGV: 1 now, 2 window, 3 limit, 4 idle window (1/0), 5 backoff free hits,
-- 6 first delay (0: no backoff), 7 doubling (1/0), 8 longest delay, 9 record mode (1/0),
-- 10 grace kept past the state's end (garbage collection only).
-- Returns {allowed (1/0), count, wait before retrying (ms)}.
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
-- A key of another type (a counter left by an older version) is replaced, not an error.
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind ~= 'hash' and kind ~= 'none' then
  redis.call('DEL', KEYS[1])
end
local st = redis.call('HMGET', KEYS[1], 's', 'c', 'g')
local s = tonumber(st[1]) or now
local c = tonumber(st[2]) or 0
local g = tonumber(st[3]) or 0
if now >= s + window then
  s = now
  c = 0
end
if ARGV[9] ~= '1' then
  if now < g then
    return {0, c, g - now}
  end
  if c >= limit then
    return {0, c, s + window - now}
  end
end
c = c + 1
if ARGV[4] == '1' then
  s = now
end
local first = tonumber(ARGV[6])
local free = tonumber(ARGV[5])
local d = 0
if first > 0 and c > free then
  if ARGV[7] == '1' then
    d = first * 2 ^ math.min(c - free - 1, 30)
  else
    d = first
  end
  d = math.min(d, tonumber(ARGV[8]))
end
if d > 0 and g <= now then
  g = now + d
end
-- %.0f: whole numbers without exponent notation.
redis.call('HSET', KEYS[1], 's', string.format('%.0f', s), 'c', string.format('%.0f', c),
  'g', string.format('%.0f', g))
local keep = math.max(s + window, g) - now + tonumber(ARGV[10])
redis.call('PEXPIRE', KEYS[1], string.format('%.0f', math.max(keep, 1)))
return {1, c, 0}
