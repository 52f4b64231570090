--[[
  adopt.lua: after the state was lost and re-created (FLUSHALL, a Redis
  restart without persistence), a process registers the requests it still
  has in flight, so the new state counts them: sent and both windows'
  uncounted grow by their number, and each gets its lease back (same id).

  KEYS[1] state hash   KEYS[2] answer log   KEYS[3] leases
  ARGV[1..9]  common (see budget.lua); ARGV[8] is the generation to adopt into
  ARGV[10] leaseMs
  ARGV[11..] lease ids of the requests in flight
  Returns {'REBUILT', gen, now} (yet another generation: start over)
        | {'OK', gen, now, <17 view fields>, adopted}
]]
--- @include "budget"

local stop = open()
if stop then return stop end
local ids = {}
for i = 11, #ARGV do
  if redis.call('ZSCORE', KLEASE, ARGV[i]) == false then ids[#ids + 1] = ARGV[i] end
end
local n = #ids
if n > 0 then
  S.sent = S.sent + n
  S.m.unc = S.m.unc + n
  S.d.unc = S.d.unc + n
  addLeases(ids, NOW + tonumber(ARGV[10]))
end
saveState()
local out = reply('OK')
out[#out + 1] = fmt(n)
return out
