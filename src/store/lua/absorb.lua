--[[
  absorb.lua: after an outage survived with `onUnavailable: 'local-share'`,
  a process reports what it sent on its own meanwhile, so the shared state
  stops believing that budget is still there: sent, done and both windows'
  uncounted grow by that number (a fresh snapshot corrects `uncounted` later),
  and a gate or park the process saw is shared.

  KEYS[1] state hash   KEYS[2] answer log   KEYS[3] leases
  ARGV[1..9]  common (see budget.lua)
  ARGV[10] requests sent while cut off
  ARGV[11] gate closed until (store time; 0 = none)
  ARGV[12] parked until (store time; 0 = none)
  Returns {'REBUILT', gen, now} | {'OK', gen, now, <17 view fields>}
]]
--- @include "budget"

local stop = open()
if stop then return stop end
local n = tonumber(ARGV[10])
if n > 0 then
  S.sent = S.sent + n
  S.done = S.done + n
  S.m.unc = S.m.unc + n
  S.d.unc = S.d.unc + n
end
local gate = tonumber(ARGV[11])
if gate > NOW and gate > S.gateUntil then
  S.gateUntil = gate
  S.gated = 1
end
local parkUntil = tonumber(ARGV[12])
if parkUntil > NOW and (S.parked == 0 or (S.parkUntil > 0 and parkUntil > S.parkUntil)) then
  S.parked = 1
  S.parkUntil = parkUntil
end
saveState()
return reply('OK')
