--[[
  settle.lua: BudgetState.settle for one answer (or failure), plus the lease.
  The lease is removed; if it was not there (already reclaimed as expired, or
  from a state that was lost), `done` is not counted again. When the lease
  was not there, or the ticket comes from an earlier generation (ARGV[11]),
  its snapshot is untrusted: it may lower limits and remaining counts, never
  raise them or lower `uncounted`; a 429 still closes the gate or parks.
  Replaying a settle is therefore harmless.

  KEYS[1] state hash   KEYS[2] answer log   KEYS[3] leases
  ARGV[1..9]  common (see budget.lua); with the time override, ARGV[1] is the outcome's `now`
  ARGV[10] lease id ('' = no lease: settle as the memory store does)
  ARGV[11] foreign (1 = the ticket comes from an earlier generation of this state)
  ARGV[12] doneAtSend  [13] verMinute  [14] verDaily  [15] epochMinute  [16] epochDaily  [17] sentAt
  ARGV[18] HTTP status ('' = no response)
  ARGV[19] sent (0|1)  [20] jitterMs  [21] fallbackGateMs
  ARGV[22] snapshot.present (0|1)  [23] snapshot.type ('' | 'minute' | 'daily')
  ARGV[24] snapshot.retryAfterMs  [25] minute.limit  [26] minute.remaining
  ARGV[27] daily.limit  [28] daily.remaining      ('' = undefined, for 24..28)
  Returns
    {'REBUILT', gen, now}
    {'OK', gen, now, <17 view fields>,
     [21] gateUntil|'', [22] gateWindow|'', [23] parked ('' none | '1'), [24] parked until|'',
     [25] changed (0|1), [26] lease known (0|1)}
]]
--- @include "budget"

local stop = open()
if stop then return stop end

local lease = ARGV[10]
local known = true
if lease ~= '' then known = redis.call('ZREM', KLEASE, lease) == 1 end
local trusted = known and ARGV[11] ~= '1'

local ticket = {
  doneAtSend = tonumber(ARGV[12]), verMinute = tonumber(ARGV[13]), verDaily = tonumber(ARGV[14]),
  epochMinute = tonumber(ARGV[15]), epochDaily = tonumber(ARGV[16]), sentAt = tonumber(ARGV[17]),
}
local outcome = {
  status = optnum(ARGV[18]),
  sent = ARGV[19] == '1',
  jitterMs = tonumber(ARGV[20]),
  fallbackGateMs = tonumber(ARGV[21]),
  snap = {
    present = ARGV[22] == '1',
    type = ARGV[23] ~= '' and ARGV[23] or nil,
    retryAfterMs = optnum(ARGV[24]),
    minute = { limit = optnum(ARGV[25]), remaining = optnum(ARGV[26]) },
    daily = { limit = optnum(ARGV[27]), remaining = optnum(ARGV[28]) },
  },
}
local r = settle(ticket, outcome, NOW, { countDone = known, trusted = trusted })
saveState()

local out = reply('OK')
out[#out + 1] = optfmt(r.gateUntil)
out[#out + 1] = r.gateWindow or ''
out[#out + 1] = r.parked and '1' or ''
out[#out + 1] = r.parked and optfmt(r.parked.untilAt) or ''
out[#out + 1] = r.changed and '1' or '0'
out[#out + 1] = known and '1' or '0'
return out
