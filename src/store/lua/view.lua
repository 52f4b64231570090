--[[
  view.lua: BudgetState.view: lets time raise the minute budget (tick), then
  returns the raw state the engine reports in stats and events.

  KEYS[1] state hash   KEYS[2] answer log   KEYS[3] leases
  ARGV[1..9]  common (see budget.lua)
  Returns {'REBUILT', gen, now} | {'OK', gen, now, <17 view fields>}
]]
--- @include "budget"

local stop = open()
if stop then return stop end
tick(NOW)
saveState()
return reply('OK')
