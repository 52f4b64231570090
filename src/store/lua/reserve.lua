--[[
  reserve.lua: BudgetState.reserve, plus leases. Reclaims expired leases
  first (each counts as an answer of unknown outcome), then grants up to
  `want` units and gives each one a lease `<leasePrefix><i>` that expires at
  now + leaseMs.

  KEYS[1] state hash   KEYS[2] answer log   KEYS[3] leases
  ARGV[1..9]  common (see budget.lua)
  ARGV[10] want (integer >= 0)
  ARGV[11] leasePrefix (unique per process and reservation)
  ARGV[12] leaseMs
  ARGV[13] backlog: tasks queued beyond `want` ('' = unknown, assume many)
  Returns
    {'REBUILT', gen, now}  (the state is not the generation ARGV[8] names; nothing granted)
    {'OK', gen, now, <17 view fields>,
     [21] granted, [22] doneAtSend, [23] verMinute, [24] verDaily, [25] epochMinute,
     [26] epochDaily, [27] sentAt, [28] retryAt|'', [29] blockedBy|'', [30] parkedUntil|'',
     [31] dailyUnknownReset (0|1), [32] leases reclaimed,
     [33] expiry of the oldest lease still held (any process) | '', [34] its id | ''}
    ([33]/[34] let a blocked process wake when a lease of a process that may
    have died expires, instead of waiting for its own next reason to ask.)
]]
--- @include "budget"

local stop = open()
if stop then return stop end

local reclaimed = reclaimLeases(NOW)
local want = tonumber(ARGV[10])
local r = reserve(want, NOW, optnum(ARGV[13]) or math.huge)
if r.granted > 0 then
  local prefix = ARGV[11]
  local ids = {}
  for i = 0, r.granted - 1 do ids[#ids + 1] = prefix .. i end
  addLeases(ids, NOW + tonumber(ARGV[12]))
end
saveState()

local out = reply('OK')
local tail = {
  fmt(r.granted), fmt(r.doneAtSend), fmt(r.verMinute), fmt(r.verDaily), fmt(r.epochMinute),
  fmt(r.epochDaily), fmt(r.sentAt), optfmt(r.retryAt), r.blockedBy or '', optfmt(r.parkedUntil),
  r.dailyUnknownReset and '1' or '0', fmt(reclaimed),
}
local oldest = redis.call('ZRANGE', KLEASE, 0, 0, 'WITHSCORES')
tail[#tail + 1] = oldest[2] or ''
tail[#tail + 1] = oldest[1] or ''
for _, v in ipairs(tail) do out[#out + 1] = v end
return out
