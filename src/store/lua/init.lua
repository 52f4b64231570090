--[[
  init.lua: first call of every process. Creates the account's state when it
  does not exist yet (the first process writes its config), and checks that
  an existing state runs the same windows as this process.

  KEYS[1] state hash   KEYS[2] answer log   KEYS[3] leases
  ARGV[1..9]  common (see budget.lua): time override ('' = Redis TIME),
              minuteMs, dayMs, marginMs, seed minute, seed daily, TTL ms,
              known gen (always '' here), gen to use when creating
  Returns
    {'OK', gen, now, <17 view fields>, cfg.minuteMs, cfg.dayMs, cfg.marginMs, created (0|1)}
    {'MISMATCH', gen, now, cfg.minuteMs, cfg.dayMs, cfg.marginMs}  (state left untouched)
]]
--- @include "budget"

local created = loadState()
local minuteMs, dayMs = tonumber(ARGV[2]), tonumber(ARGV[3])
if not created and (S['cfg.minuteMs'] ~= minuteMs or S['cfg.dayMs'] ~= dayMs) then
  return { 'MISMATCH', S.gen, fmt(NOW), fmt(S['cfg.minuteMs']), fmt(S['cfg.dayMs']), fmt(S['cfg.marginMs']) }
end
saveState()
local out = reply('OK')
out[#out + 1] = fmt(S['cfg.minuteMs'])
out[#out + 1] = fmt(S['cfg.dayMs'])
out[#out + 1] = fmt(S['cfg.marginMs'])
out[#out + 1] = created and '1' or '0'
return out
