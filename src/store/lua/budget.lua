--[[
  budget.lua: reads, or compare-and-sets, an account's shared budget
  document. Only I/O: the budget rules run in the calling process
  (budget-state.ts through shared-budget.ts), the same code MemoryStore runs.

  KEYS[1]  the budget hash `<prefix>{<account>}:budget`, with fields `gen`
           (generation id, new whenever the state is created), `ver` (writes
           in this generation) and `doc` (JSON, SharedDoc in shared-budget.ts)
  ARGV[1]  time override: '' (production) means Redis TIME, the one clock of
           every process; a number is used instead (test-only `clockOverride`)
  ARGV[2]  'read' or 'write'
  For 'write' (writes only if the hash still holds what the caller read;
  otherwise writes nothing and returns what it holds now, so that the caller
  runs its operation again on that without another round trip):
  ARGV[3]  generation read ('' = none)   ARGV[4] `ver` read ('0' = none)
  ARGV[5]  generation to write (a new one when the caller re-created the state)
  ARGV[6]  the document to write
  ARGV[7]  TTL of the hash in ms, refreshed on every write
  ARGV[8]  the writer's id
  ARGV[9]  lock ms: when this write is refused and nobody holds the write
           lock, the writer takes it for this long ('0': do not); while
           another writer holds it, every write is refused; the holder's
           next write releases it (so a writer that keeps being overtaken
           gets through, and a dead holder's lock expires by itself)
  Returns  {'OK', now, gen, ver, doc, lockHolder}   ('read': '' gen and doc when there is
                                          no state; 'write': doc is '' — the caller has it)
         | {'CONFLICT', now, gen, ver, doc, lockHolder}   (lockHolder: '' for none)
]]
local now
if ARGV[1] ~= '' then
  now = ARGV[1]
else
  local t = redis.call('TIME')
  now = string.format('%.17g', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
end
local h = redis.call('HMGET', KEYS[1], 'gen', 'ver', 'doc', 'lock', 'lockUntil')
local gen, ver, doc = h[1] or '', h[2] or '0', h[3] or ''
local holder = h[4] or ''
if holder ~= '' and tonumber(h[5]) <= tonumber(now) then holder = '' end
if ARGV[2] == 'read' then return { 'OK', now, gen, ver, doc, holder } end
if (holder ~= '' and holder ~= ARGV[8]) or gen ~= ARGV[3] or ver ~= ARGV[4] then
  if holder == '' and ARGV[9] ~= '0' then
    holder = ARGV[8]
    redis.call('HSET', KEYS[1], 'lock', holder, 'lockUntil', tostring(tonumber(now) + tonumber(ARGV[9])))
  end
  return { 'CONFLICT', now, gen, ver, doc, holder }
end
local newVer = ARGV[5] == gen and tostring(tonumber(ver) + 1) or '1'
redis.call('HSET', KEYS[1], 'gen', ARGV[5], 'ver', newVer, 'doc', ARGV[6])
redis.call('HDEL', KEYS[1], 'lock', 'lockUntil')
redis.call('PEXPIRE', KEYS[1], ARGV[7])
return { 'OK', now, ARGV[5], newVer, '', '' }
