-- set_nx: store ARGV[1] (a stamped value) under KEYS[1] unless a live value is there.
-- ARGV[2]: now (ms, server clock); ARGV[3]: backend TTL (ms, garbage collection only).
-- A value whose stamp (its first 20 characters: expiry in ms) is not after now is dead.
local old = redis.call('GET', KEYS[1])
if old then
  local expires = tonumber(string.sub(old, 1, 20))
  if expires and expires > tonumber(ARGV[2]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
