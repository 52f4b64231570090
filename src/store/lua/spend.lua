-- The spend counter of a capped batch, shared by every process on the account.
-- KEYS[1]  the counter: integer nano-dollars (1e-9 USD) spent or reserved
-- ARGV[1]  'open' | 'reserve' | 'release' | 'read'
-- ARGV[2]  amount (nano-dollars): the starting total for 'open', the price for 'reserve' and 'release'
-- ARGV[3]  cap (nano-dollars), for 'reserve'
-- Returns {granted (1|0), total}. The rule is spend-rule.ts's fitsUnderCap: total + amount <= cap.
local op = ARGV[1]
local raw = redis.call('GET', KEYS[1])
local total = tonumber(raw or '0')
if op == 'open' then
  if raw == false then
    redis.call('SET', KEYS[1], ARGV[2])
    return {1, tonumber(ARGV[2])}
  end
  return {1, total}
elseif op == 'reserve' then
  local amount = tonumber(ARGV[2])
  if total + amount > tonumber(ARGV[3]) then return {0, total} end
  return {1, redis.call('INCRBY', KEYS[1], ARGV[2])}
elseif op == 'release' then
  return {1, redis.call('DECRBY', KEYS[1], ARGV[2])}
end
return {1, total}
