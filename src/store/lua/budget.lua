--[[
  budget.lua: the budget state machine, a line-by-line port of
  src/store/budget-state.ts (BudgetState). Not a script on its own: every entry
  script starts with `--- @include "budget"` and the loader (redis-scripts.ts)
  pastes this file there. Keep it in step with budget-state.ts; the
  conformance suite (test/store-conformance.test.ts) runs both on the same
  sequences and compares every output.

  Conventions shared by every entry script:

  KEYS[1]  state hash   `<prefix>{<account>}:state`: one field per field of
           BudgetStateData / WindowState (`m.<field>` for the minute window,
           `d.<field>` for the daily window), plus `gen` (generation id, new
           whenever the state is created), `cfg.minuteMs`, `cfg.dayMs`,
           `cfg.marginMs` (the first writer's config) and `logSeq`.
  KEYS[2]  answer log   sorted set, score = recvAt, member = `<sentAt>:<seq>`
           (AnswerLog of budget-state.ts; answers arrive in time order, so
           score order is answer order).
  KEYS[3]  leases       sorted set, score = lease expiry, member = lease id
           (`<leasePrefix><i>`).

  ARGV[1]  time override: '' (production) means "use Redis TIME", the one
           clock of every process. A number is used instead of TIME; the client
           sends one only with the test-only `clockOverride: true` option.
  ARGV[2]  minuteMs   ARGV[3] dayMs   ARGV[4] marginMs
  ARGV[5]  seed of the minute limit ('' none)   ARGV[6] seed of the daily limit ('' none)
           (2..6 are used only when this call has to create the state, e.g.
           after a FLUSHALL; otherwise the stored config wins)
  ARGV[7]  TTL of every key, ms (refreshed on every call, so state never
           expires mid-run)
  ARGV[8]  the generation this process knows ('' none: no check)
  ARGV[9]  the generation id to use if this call creates the state
  ARGV[10..] script-specific

  Every reply is an array of strings (numbers as %.17g, so they survive the
  trip exactly; '' stands for undefined). It starts with
    [1] tag: 'OK', 'REBUILT' (the state's generation is not ARGV[8]: the
        state was lost and re-created; nothing else was done) or 'MISMATCH'
    [2] gen   [3] now (store time)
  and, for 'OK', the raw view block [4..20] (see viewBlock) follows.
]]

if redis.replicate_commands then redis.replicate_commands() end

local KSTATE, KLOG, KLEASE = KEYS[1], KEYS[2], KEYS[3]

local function fmt(x)
  return string.format('%.17g', x)
end

local function optnum(s)
  if s == nil or s == '' then return nil end
  return tonumber(s)
end

local function optfmt(x)
  if x == nil then return '' end
  return fmt(x)
end

local NOW
if ARGV[1] ~= '' then
  NOW = tonumber(ARGV[1])
else
  local t = redis.call('TIME')
  NOW = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local TTL = tonumber(ARGV[7])
local KNOWN_GEN = ARGV[8]

local WINDOW_FIELDS = {
  'windowMs', 'limit', 'rem', 'srvRem', 'lastSrvRem', 'unc', 'ver', 'epoch', 'snapSentAt',
  'snapAt', 'lastNoJumpSentAt', 'kind', 'nextLo', 'nextHi', 'scoutAt', 'raised', 'probed',
  'probe', 'hidN', 'hidDone', 'lastRecv', 'slide', 'slideAt', 'slideN', 'slideCap',
  'grid', 'hitLo', 'readHitLo', 'phantomN', 'phantomAt', 'holdOff',
}
-- Fields added after the first release: a state written before them reads as 0.
local LATER_WINDOW_FIELDS = {
  probe = true, hidN = true, hidDone = true, lastRecv = true, slide = true, slideAt = true, slideN = true, slideCap = true,
  grid = true, hitLo = true, readHitLo = true, phantomN = true, phantomAt = true, holdOff = true,
}
local TOP_FIELDS = {
  'sent', 'done', 'headers', 'answered', 'gateUntil', 'gated', 'parkUntil', 'parked', 'nextDailyReset', 'dailyProbe',
  'cfg.minuteMs', 'cfg.dayMs', 'cfg.marginMs', 'logSeq',
}

-- newWindow()
local function newWindow(windowMs, seed)
  local limit = seed or -1
  return {
    windowMs = windowMs, limit = limit, rem = limit, srvRem = -1, lastSrvRem = -1, unc = 0, ver = 0,
    epoch = 0, snapSentAt = 0, snapAt = 0, lastNoJumpSentAt = 0, kind = 0, nextLo = 0, nextHi = 0,
    scoutAt = 0, raised = 0, probed = 0, probe = 0, hidN = 0, hidDone = 0,
    lastRecv = 0, slide = 0, slideAt = 0, slideN = 0, slideCap = 0,
    grid = 0, hitLo = 0, readHitLo = 0, phantomN = 0, phantomAt = 0, holdOff = 0,
  }
end

-- The state, loaded by loadState(); S.m and S.d are the windows.
local S
local MARGIN

local function loadState()
  local flat = redis.call('HGETALL', KSTATE)
  local created = false
  if #flat == 0 then
    local minuteMs, dayMs = tonumber(ARGV[2]), tonumber(ARGV[3])
    S = {
      m = newWindow(minuteMs, optnum(ARGV[5])),
      d = newWindow(dayMs, optnum(ARGV[6])),
      sent = 0, done = 0, headers = 0, answered = 0, gateUntil = 0, gated = 0, parkUntil = 0, parked = 0,
      nextDailyReset = 0, dailyProbe = 0,
      ['cfg.minuteMs'] = minuteMs, ['cfg.dayMs'] = dayMs, ['cfg.marginMs'] = tonumber(ARGV[4]),
      logSeq = 0, gen = ARGV[9],
    }
    -- Whatever the log and leases held belongs to a state that is gone.
    redis.call('DEL', KLOG, KLEASE)
    created = true
  else
    local h = {}
    for i = 1, #flat, 2 do h[flat[i]] = flat[i + 1] end
    S = { m = {}, d = {}, gen = h['gen'] or '' }
    for _, f in ipairs(WINDOW_FIELDS) do
      S.m[f] = tonumber(h['m.' .. f])
      S.d[f] = tonumber(h['d.' .. f])
      if LATER_WINDOW_FIELDS[f] then
        S.m[f] = S.m[f] or 0
        S.d[f] = S.d[f] or 0
      end
    end
    for _, f in ipairs(TOP_FIELDS) do S[f] = tonumber(h[f]) end
    S.answered = S.answered or 0
  end
  MARGIN = S['cfg.marginMs']
  return created
end

local function saveState()
  local args = { 'gen', S.gen }
  for _, f in ipairs(WINDOW_FIELDS) do
    args[#args + 1] = 'm.' .. f
    args[#args + 1] = fmt(S.m[f])
    args[#args + 1] = 'd.' .. f
    args[#args + 1] = fmt(S.d[f])
  end
  for _, f in ipairs(TOP_FIELDS) do
    args[#args + 1] = f
    args[#args + 1] = fmt(S[f])
  end
  redis.call('HSET', KSTATE, unpack(args))
  redis.call('PEXPIRE', KSTATE, TTL)
  redis.call('PEXPIRE', KLOG, TTL)
  redis.call('PEXPIRE', KLEASE, TTL)
end

--- Loads (or creates) the state and checks the generation. Returns a reply
--- to send as is when the caller must stop ('REBUILT'), else nil.
local function open()
  local created = loadState()
  if KNOWN_GEN ~= '' and S.gen ~= KNOWN_GEN then
    if created then saveState() end
    return { 'REBUILT', S.gen, fmt(NOW) }
  end
  return nil
end

-- The raw view block: 17 fields, decoded by redis-store.ts into a BudgetView.
local function viewBlock(out)
  local m, d = S.m, S.d
  local fields = {
    m.limit, m.rem, m.unc, m.kind, m.nextLo, m.nextHi,
    d.limit, d.rem, d.unc, d.kind, d.nextLo, d.nextHi,
    S.gateUntil, S.parked, S.parkUntil, S.sent, S.done,
  }
  for _, v in ipairs(fields) do out[#out + 1] = fmt(v) end
  return out
end

local function reply(tag)
  return viewBlock({ tag, S.gen, fmt(NOW) })
end

-- ---- AnswerLog ---------------------------------------------------------------

local function logPush(sentAt, recvAt)
  S.logSeq = S.logSeq + 1
  redis.call('ZADD', KLOG, fmt(recvAt), fmt(sentAt) .. ':' .. fmt(S.logSeq))
end

local function logSize()
  return redis.call('ZCARD', KLOG)
end

--- recvAt of the oldest entry; math.huge when empty.
local function logPeekRecv()
  local first = redis.call('ZRANGE', KLOG, 0, 0, 'WITHSCORES')
  if #first == 0 then return math.huge end
  return tonumber(first[2])
end

local function logClear()
  redis.call('DEL', KLOG)
end

--- Removes the oldest entries while `recvAt + expiry <= now`; returns how many.
local function logShiftExpired(expiry, now)
  local items = redis.call('ZRANGEBYSCORE', KLOG, '-inf', fmt(now - expiry + 1), 'WITHSCORES')
  local n = 0
  for i = 2, #items, 2 do
    if tonumber(items[i]) + expiry <= now then n = n + 1 else break end
  end
  if n > 0 then redis.call('ZREMRANGEBYRANK', KLOG, 0, n - 1) end
  return n
end

--- Entries sent after `sentAfter` and answered before `recvBefore`.
local function logCount(sentAfter, recvBefore)
  local items = redis.call('ZRANGEBYSCORE', KLOG, '-inf', '(' .. fmt(recvBefore))
  local n = 0
  for _, member in ipairs(items) do
    local sentAt = tonumber(string.match(member, '^([^:]+):'))
    if sentAt > sentAfter then n = n + 1 end
  end
  return n
end

-- ---- BudgetState -------------------------------------------------------------

local SCOUT_TOLERANCE = 1 / 20
local SCOUT_POSITION = 1 / 4
local LATE_PROBE = 1 / 8

local function setSnapshot(w, r, unc, sentAt, now)
  w.snapAt = now
  w.rem = math.min(r, w.limit)
  w.srvRem = w.rem
  w.lastSrvRem = w.rem
  w.unc = unc
  w.ver = w.ver + 1
  w.snapSentAt = sentAt
  w.probe = 0
  w.hidN = 0
  w.hidDone = 0
  w.phantomN = 0
  w.phantomAt = 0
end

--- hide: a counted answer without this window's count, to a request sent after the current snapshot.
local function hide(w, done)
  if w.lastSrvRem < 0 then return end
  w.hidN = w.hidN + 1
  w.hidDone = done
end

--[[ absorb: one answered request whose count was not applied (none sent, or a
  stale one ignored): from `unc` into `rem` (rem - unc is unchanged), so that
  its expiry gives it back and `rem` runs out when the window does. Except an
  answer with no count at all while `rem` is a probe's leave (after a
  predicted reset or a gate), not a count: the refresh request reads the real
  count instead (it stays in `unc` until it has left the window: phantomN,
  phantomAt). `rem` now counts a request answered at `now`,
  so the bulk raise at `snapAt + W` must wait for it too. ]]
local function absorb(w, hadCount, now)
  if w.limit < 0 or w.rem <= 0 or w.unc <= 0 then return end
  if not hadCount and w.probe == 1 then
    w.phantomN = w.phantomN + 1
    w.phantomAt = now
    return
  end
  w.rem = w.rem - 1
  w.unc = w.unc - 1
  if w.srvRem >= 0 then w.srvRem = w.rem end
  w.snapAt = now
end

local function planProbe(w, firstSentAt)
  w.probed = 1
  if w.limit < 2 then return end
  w.scoutAt = firstSentAt + w.windowMs / 2
end

--- scoutTime: when the scout goes while the bracket of the next reset is wide; 0 when narrow enough.
local function scoutTime(w)
  local width = w.nextHi - w.nextLo
  if w.kind ~= 1 or w.nextHi <= 0 or w.holdOff == 1 or width <= w.windowMs * SCOUT_TOLERANCE then return 0 end
  return w.nextLo + width * SCOUT_POSITION
end

--- nextHold: when the next unit held back goes once the phase is known (0: none):
--- first the late probe, then the scout while the bracket is wide.
local function nextHold(w, now)
  if w.kind ~= 1 or w.nextHi <= 0 or w.holdOff == 1 then return 0 end
  local late = w.nextLo - w.windowMs * LATE_PROBE
  if late > now then return late end
  local scout = scoutTime(w)
  if scout > now then return scout end
  return 0
end

--- heldUnits: one for the hold planned at scoutAt, one for a scout still to follow it.
local function heldUnits(w, now)
  local scout = scoutTime(w)
  local n = 0
  if w.scoutAt > now then n = 1 end
  if w.scoutAt > 0 and scout > now and w.scoutAt ~= scout then n = n + 1 end
  return n
end

--- #planScout: a reset was bracketed: plan the units held back in the window now starting.
local function planScout(w, now)
  w.scoutAt = nextHold(w, now)
end

--- #forget: answered requests the server may no longer count must not raise the
--- budget again: all are dropped (see budget-state.ts).
local function forget(w, freed)
  logClear()
end

--- letOneRead: one request beyond those in flight goes, to read the server's numbers (it is the probe).
local function letOneRead(w)
  w.rem = math.max(w.rem, w.unc + 1)
  w.srvRem = -1
  w.ver = w.ver + 1
  w.scoutAt = 0
  w.probe = 1
  w.phantomN = 0
end

--- #tick: raises the minute budget for everything that time has set free.
local function tick(now)
  local w = S.m
  if w.limit < 0 or w.rem < 0 then return end
  if w.slideAt > 0 and now >= w.slideAt then
    w.slideAt = 0
    if w.rem - w.unc <= 0 and S.sent + 1 < w.slideCap then
      -- The slide read: one request reads what the window freed since the partial jump.
      letOneRead(w)
    else
      -- Units still known (they read the count anyway), or sent too much since to read without a risk of a 429.
      w.slide = 0
    end
  end
  local expiry = w.windowMs + MARGIN
  local n = logShiftExpired(expiry, now)
  for _ = 1, n do
    if w.rem < w.limit then
      w.rem = w.rem + 1
      w.srvRem = -1
    end
  end
  if w.snapAt > 0 and w.rem < w.limit and now >= w.snapAt + expiry and now >= w.phantomAt + expiry then
    w.rem = w.limit
    w.srvRem = -1
    w.snapAt = 0
    w.probe = 0
  end
  if w.phantomAt > 0 and now >= w.phantomAt + expiry then
    -- So have the probes answered without a count: only what is in flight stays uncounted.
    w.unc = math.min(w.unc, S.sent - S.done)
    w.rem = math.min(w.rem, w.limit)
    w.phantomN = 0
    w.phantomAt = 0
  end
  if w.kind == 1 and w.raised == 0 and w.nextHi > 0 and now >= w.nextHi + MARGIN then
    w.raised = 1
    w.readHitLo = (S.sent == S.done) and (now + w.windowMs) or 0
    logClear()
    letOneRead(w)
  end
end

--- #dropAnswered
local function dropAnswered(now)
  local expiry = S.m.windowMs + MARGIN
  logShiftExpired(expiry, now)
end

--- #nextMinuteRaise: nil when the budget cannot grow by itself.
local function nextMinuteRaise(now)
  local w = S.m
  local margin = MARGIN
  local t = math.huge
  if logSize() > 0 then t = logPeekRecv() + w.windowMs + margin end
  if w.snapAt > 0 and (w.rem < w.limit or w.limit == 0) then
    t = math.min(t, math.max(w.snapAt, w.phantomAt) + w.windowMs + margin)
  end
  if w.phantomAt > 0 and w.phantomAt + w.windowMs + margin > now then t = math.min(t, w.phantomAt + w.windowMs + margin) end
  if w.kind == 1 and w.raised == 0 and w.nextHi > 0 then t = math.min(t, w.nextHi + margin) end
  if w.slideAt > now then t = math.min(t, w.slideAt) end
  -- A scout time already passed frees nothing more: it would make callers retry at once, forever.
  if w.scoutAt > now then t = math.min(t, w.scoutAt) end
  if t == math.huge then return nil end
  return t
end

local function reopenGate()
  S.gated = 0
  local m = S.m
  if m.limit >= 0 then letOneRead(m) end
end

local function park(untilAt)
  S.parked = 1
  S.parkUntil = untilAt
end

local function unpark(now)
  local d = S.d
  S.parked = 0
  S.parkUntil = 0
  S.dailyProbe = 0
  if S.nextDailyReset > 0 and S.nextDailyReset <= now then S.nextDailyReset = S.nextDailyReset + d.windowMs end
  if d.limit >= 0 then
    -- (A limit of 0 still lets one request a day read whether it was raised.)
    d.rem = math.max(d.limit, 1)
    d.srvRem = -1
    -- The reset is applied here: the day's first answer must not count as another one.
    d.lastSrvRem = -1
    d.ver = d.ver + 1
    d.epoch = d.epoch + 1
  end
end

--- #dropPhase: forgets the phase of the window (see onLimitJump).
local function dropPhase(w)
  w.kind = 0
  w.nextLo = 0
  w.nextHi = 0
  w.scoutAt = 0
  w.raised = 0
  w.grid = 0
  w.epoch = w.epoch + 1
end

--- #onLimitJump: a fresh jump that came with a limit change. When it freed more
--- than the raised limit explains, the window also reset, where cannot be told:
--- a phase learnt before would predict a reset that has already happened.
local function onLimitJump(w, freed)
  if freed > 0 then dropPhase(w) end
  forget(w, freed)
end

--- #onReset
local function onReset(w, r, ticket, prevSnapSentAt, now, freed)
  w.epoch = w.epoch + 1
  if w.kind == 0 then
    local recent = logCount(now - w.windowMs, ticket.sentAt)
    if r > w.limit - 1 - recent then w.kind = 1 end
  end
  if w.slideAt > 0 then
    -- Another rise before the slide read: what it freed is read already.
    w.slideN = w.slideN - math.max(0, freed)
    if w.slideN <= 0 then
      w.slide = 0
      w.slideAt = 0
    end
  elseif w.slide == 0 and r + 1 + w.unc < w.limit and w.lastRecv > 0 then
    -- A partial jump: the answers forgotten below leave a sliding window soon; one request reads then what they freed.
    local at = w.lastRecv + w.windowMs + MARGIN
    if at > now and at <= now + w.windowMs / 4 then
      w.slide = 1
      w.slideAt = at
      w.slideN = w.limit - 1 - r - w.unc
      w.slideCap = S.sent + w.limit - 1 - w.unc
    end
  end
  forget(w, freed)
  if w.kind ~= 1 then return end
  if w.hitLo > 0 and now < w.hitLo then w.grid = 1 end
  w.hitLo = (w.raised == 1) and w.readHitLo or 0
  w.readHitLo = 0
  local seen = math.max(prevSnapSentAt, w.lastNoJumpSentAt)
  local lo = seen
  if w.nextLo > 0 and w.nextLo > lo and w.nextLo < now then lo = w.nextLo end
  -- On a grid, the bracket predicted for this reset (an answer came since the reset before it, and
  -- not a window later) still holds where it agrees with this one: keep its upper end, or it would
  -- creep by a margin and a round trip each window (the read goes after it).
  local predicted = seen >= w.nextHi - w.windowMs and now < w.nextLo + w.windowMs
  local hi = now
  if w.grid == 1 and predicted and w.nextHi > lo and w.nextHi < now then hi = w.nextHi end
  w.nextLo = lo + w.windowMs
  w.nextHi = hi + w.windowMs
  w.raised = 0
  w.lastNoJumpSentAt = 0
  planScout(w, now)
end

--- #onNoReset
local function onNoReset(w, sentAt)
  if sentAt > w.lastNoJumpSentAt then w.lastNoJumpSentAt = sentAt end
  if w.raised == 1 then
    w.kind = 0
    w.nextLo = 0
    w.nextHi = 0
    w.scoutAt = 0
    w.raised = 0
    w.grid = 0
    return
  end
  if w.nextHi > 0 and sentAt > w.nextLo and sentAt < w.nextHi then w.nextLo = sentAt end
end

--- #apply: one window's part of a snapshot (`snap` = {limit, remaining}, nil fields = absent).
local function apply(w, snap, ver, epoch, ticket, counted, now, minute)
  local fresh = ver == w.ver
  local limitChanged = false
  local prevLimit = w.limit
  if snap.limit ~= nil then
    if w.limit < 0 or (fresh and snap.limit ~= w.limit) or snap.limit < w.limit then
      limitChanged = w.limit >= 0 and snap.limit ~= w.limit
      w.limit = snap.limit
      if w.rem > w.limit then w.rem = w.limit end
      if minute and w.probed == 0 then planProbe(w, ticket.sentAt) end
    end
  end
  local r = snap.remaining
  if r == nil or w.limit < 0 then return limitChanged end
  if minute then dropAnswered(now) end
  local freshBound = math.max(0, S.sent - ticket.doneAtSend - 1)

  if not fresh then
    if epoch ~= w.epoch or w.srvRem < 0 or r >= w.srvRem then return limitChanged end
    local unc = math.min(freshBound, math.max(0, w.unc - (w.srvRem - r)))
    setSnapshot(w, r, unc, ticket.sentAt, now)
    return true
  end

  local first = w.lastSrvRem < 0
  -- Answers the server counted after the previous snapshot and before this request.
  local hidden = 0
  if minute and ticket.doneAtSend >= w.hidDone then hidden = w.hidN end
  local last = w.lastSrvRem - hidden
  local jump = false
  if not first then
    if counted then jump = r >= last else jump = r > last end
  end
  local unc = freshBound
  if not jump and w.srvRem >= 0 then unc = math.min(unc, math.max(0, w.unc - (w.srvRem - r))) end
  local prevSnapSentAt = w.snapSentAt
  local freed = r - last - math.max(0, w.limit - prevLimit)
  if counted then freed = freed + 1 end
  setSnapshot(w, r, unc, ticket.sentAt, now)
  -- The slide read (or a request after it) is answered, not refused: another may follow the next partial jump.
  if minute and counted and w.slide == 1 and w.slideAt == 0 then w.slide = 0 end
  if not minute then
    if jump and not limitChanged then
      if not (S.nextDailyReset > now) then S.nextDailyReset = now + w.windowMs end
      S.parked = 0
      S.parkUntil = 0
      S.dailyProbe = 0
      w.epoch = w.epoch + 1
    end
    return true
  end
  if jump and not limitChanged then
    onReset(w, r, ticket, prevSnapSentAt, now, freed)
  elseif jump then
    onLimitJump(w, freed)
  else
    onNoReset(w, ticket.sentAt)
  end
  return true
end

--- Redis only: a snapshot whose ticket cannot be judged (see settle's opts)
--- may teach an unknown limit or lower a limit or the remaining count, never
--- raise anything, and leaves `unc` alone. Time raises `rem` again after one
--- window, as for any snapshot.
local function applyUntrusted(w, snap, now)
  local changed = false
  if snap.limit ~= nil and (w.limit < 0 or snap.limit < w.limit) then
    w.limit = snap.limit
    if w.rem > w.limit then w.rem = w.limit end
    changed = true
  end
  local r = snap.remaining
  if r ~= nil and w.limit >= 0 and (w.rem < 0 or r < w.rem) then
    w.rem = math.min(r, w.limit)
    w.srvRem = -1
    w.snapAt = now
    changed = true
  end
  return changed
end

--- BudgetState.reserve. Returns a table with the ReserveResult fields (nil = undefined).
local function reserve(want, now, backlog)
  local s = S
  local result = {
    granted = 0,
    doneAtSend = s.done, verMinute = s.m.ver, verDaily = s.d.ver,
    epochMinute = s.m.epoch, epochDaily = s.d.epoch, sentAt = now,
    retryAt = nil, blockedBy = nil, parkedUntil = nil, dailyUnknownReset = false,
  }

  if s.gateUntil > now then
    result.blockedBy = 'gate'
    result.retryAt = s.gateUntil
    return result
  end
  if s.gated == 1 then reopenGate() end

  if s.parked == 1 then
    if s.parkUntil > now then
      result.blockedBy = 'park'
      result.retryAt = s.parkUntil
      result.parkedUntil = s.parkUntil
      return result
    end
    if s.parkUntil > 0 then unpark(now) end
  end

  tick(now)
  -- Versions may have moved just above (gate reopened, park lifted, predicted
  -- reset): the request sent now is the one that reads the new numbers, so
  -- its ticket must carry them, or its answer would count as stale.
  result.doneAtSend = s.done
  result.verMinute = s.m.ver
  result.verDaily = s.d.ver
  result.epochMinute = s.m.epoch
  result.epochDaily = s.d.epoch
  result.sentAt = now

  local avail = math.huge
  -- The daily probe goes with this grant (spent only if something is granted).
  local probe = false
  local retryAt = nil
  local blockedBy = nil

  if s.headers == 0 and s.m.limit < 0 and s.d.limit < 0 then
    -- Nothing known yet: one request at a time until the first real answer.
    if s.answered == 0 then
      avail = math.max(0, 1 - (s.sent - s.done))
      if avail == 0 then blockedBy = 'unknown-limit' end
    end
  else
    local inFlight = s.sent - s.done
    local m = s.m
    if m.limit >= 0 and m.rem >= 0 then
      local a = m.rem - m.unc
      -- unless the probes answered without a count have spent a whole window already
      if a <= 0 and inFlight == 0 and m.rem > 0 and m.phantomN < math.max(1, m.limit) then a = 1 end
      -- A limit of 0 would hold the queue forever: one request a window reads whether it was raised.
      if a <= 0 and inFlight == 0 and m.limit == 0 and now >= m.snapAt + m.windowMs + MARGIN then a = 1 end
      local held = heldUnits(m, now)
      if held > 0 and a > 0 and want + backlog > a then
        -- Keep units for the late probe and the scout (only when the queue would spend them all now anyway).
        a = a - math.min(held, a)
        if a <= 0 and want > 0 then
          if m.scoutAt > now then retryAt = m.scoutAt else retryAt = scoutTime(m) end
          blockedBy = 'scout'
        end
      end
      if a <= 0 and blockedBy == nil then
        blockedBy = 'budget'
        retryAt = nextMinuteRaise(now)
      end
      avail = math.min(avail, math.max(0, a))
    end
    local d = s.d
    if d.limit >= 0 and d.rem >= 0 then
      local a = d.rem - d.unc
      if a <= 0 and inFlight == 0 and d.rem > 0 then a = 1 end
      if a <= 0 then
        if inFlight == 0 then
          if s.nextDailyReset > now then
            park(s.nextDailyReset + MARGIN)
            result.blockedBy = 'park'
            result.retryAt = s.parkUntil
            result.parkedUntil = s.parkUntil
            return result
          end
          result.dailyUnknownReset = true
          if s.dailyProbe == 0 and s.sent - s.done == 0 then
            avail = math.min(avail, 1)
            probe = true
          else
            avail = 0
            blockedBy = 'park'
          end
        else
          avail = 0
          blockedBy = 'budget'
        end
      else
        avail = math.min(avail, a)
      end
    end
  end

  local granted = math.max(0, math.min(want, avail))
  if granted > 0 then
    s.sent = s.sent + granted
    s.m.unc = s.m.unc + granted
    s.d.unc = s.d.unc + granted
    if s.m.scoutAt > 0 and now >= s.m.scoutAt then s.m.scoutAt = nextHold(s.m, now) end
    if probe then
      s.dailyProbe = 1
      s.parked = 1
      s.parkUntil = 0
    end
  end
  result.granted = granted
  if granted < want then
    result.blockedBy = blockedBy or 'budget'
    result.retryAt = retryAt
  end
  return result
end

--[[ BudgetState.settle.
  ticket  = {doneAtSend, verMinute, verDaily, epochMinute, epochDaily, sentAt}
  outcome = {status (nil = no response), sent, jitterMs, fallbackGateMs,
             snap = {present, type, retryAfterMs, minute = {limit, remaining}, daily = {...}}}
  opts    = {countDone, trusted}: the Redis-only departures from BudgetState.
            countDone false: the lease was already reclaimed as answered (done
            counted then). trusted false: the ticket's counters do not belong
            to this state (reclaimed lease, or another generation), so its
            snapshot can be neither judged fresh nor trusted to lower `unc`
            or feed the answer log: it may only lower (applyUntrusted), and a
            429 still closes the gate or parks.
  Returns {gateUntil, gateWindow, parked (nil | {untilAt}), changed}.
]]
local function settle(ticket, outcome, now, opts)
  local s = S
  local result = { gateUntil = nil, gateWindow = nil, parked = nil, changed = false }
  if opts.countDone then s.done = s.done + 1 end
  -- The daily probe is answered (or never left): unless this answer parks the
  -- queue below, another may go; otherwise reserve() would refuse forever.
  if s.dailyProbe == 1 and s.parkUntil == 0 and s.sent == s.done then s.dailyProbe = 0 end
  if not outcome.sent then
    if opts.trusted then
      if ticket.verMinute == s.m.ver and s.m.unc > 0 then s.m.unc = s.m.unc - 1 end
      if ticket.verDaily == s.d.ver and s.d.unc > 0 then s.d.unc = s.d.unc - 1 end
    end
    return result
  end

  local is429 = outcome.status == 429
  local counted = (not is429) and outcome.status ~= nil
  if counted and outcome.status < 500 then s.answered = 1 end
  local snap = outcome.snap
  tick(now)

  local appliedMinute, appliedDaily = false, false
  if snap.present and opts.trusted then
    s.headers = 1
    appliedMinute = apply(s.m, snap.minute, ticket.verMinute, ticket.epochMinute, ticket, counted, now, true)
    appliedDaily = apply(s.d, snap.daily, ticket.verDaily, ticket.epochDaily, ticket, counted, now, false)
    result.changed = appliedMinute or appliedDaily
  elseif snap.present then
    s.headers = 1
    local mc = applyUntrusted(s.m, snap.minute, now)
    local dc = applyUntrusted(s.d, snap.daily, now)
    result.changed = mc or dc
  end
  if counted and opts.trusted then
    -- No count applied for a window (none sent, or a stale one ignored): the server counted it all the same.
    if not appliedMinute then
      -- (A gateway error may never have reached the limiter: only a status below 500 proves a count.)
      if ticket.verMinute == s.m.ver and outcome.status < 500 then hide(s.m, s.done) end
      absorb(s.m, snap.minute.remaining ~= nil, now)
    end
    if not appliedDaily then absorb(s.d, snap.daily.remaining ~= nil, now) end
  end
  if counted and s.m.limit >= 0 and opts.trusted then
    logPush(ticket.sentAt, now)
    s.m.lastRecv = now
  end

  if is429 then
    local daily = snap.type == 'daily' or (snap.type == nil and snap.daily.remaining == 0)
    local wait = (snap.retryAfterMs or outcome.fallbackGateMs) + outcome.jitterMs
    if daily then
      park(now + wait)
      s.nextDailyReset = now + (snap.retryAfterMs or outcome.fallbackGateMs)
      result.parked = { untilAt = s.parkUntil }
      result.gateWindow = 'daily'
      result.gateUntil = s.parkUntil
    else
      local m = s.m
      s.gateUntil = math.max(s.gateUntil, now + wait)
      s.gated = 1
      if m.limit >= 0 then m.rem = 0 end
      -- A refused slide read: the window did not slide, so no more of them.
      if m.slide == 1 and m.slideAt == 0 then m.slide = 2 end
      -- Refused before the predicted reset: the budget is shared (or was cut); hold no more units back.
      if m.kind == 1 and m.nextHi > 0 and now < m.nextLo then m.holdOff = 1 end
      if snap.retryAfterMs ~= nil and m.kind == 1 and now + snap.retryAfterMs < m.nextHi then
        m.nextHi = now + snap.retryAfterMs
        -- The server's word wins over a lower side it contradicts: never an inverted bracket.
        if m.nextLo > m.nextHi then m.nextLo = m.nextHi end
      end
      result.gateUntil = s.gateUntil
      result.gateWindow = 'minute'
    end
    return result
  end

  local d = s.d
  if d.limit >= 0 and d.rem == 0 and s.sent == s.done and s.parked == 0 then
    if s.nextDailyReset > now then
      park(s.nextDailyReset + MARGIN)
      result.parked = { untilAt = s.parkUntil }
    else
      result.parked = { untilAt = nil }
    end
  end
  return result
end

--- Expired leases belong to a process that crashed or stalled: each counts as
--- an answer of unknown outcome (done + 1), which raises nothing.
local function reclaimLeases(now)
  local n = redis.call('ZREMRANGEBYSCORE', KLEASE, '-inf', fmt(now))
  S.done = S.done + n
  return n
end

local function addLeases(ids, expiry)
  local score = fmt(expiry)
  local batch = {}
  for _, id in ipairs(ids) do
    batch[#batch + 1] = score
    batch[#batch + 1] = id
    if #batch >= 2000 then
      redis.call('ZADD', KLEASE, unpack(batch))
      batch = {}
    end
  end
  if #batch > 0 then redis.call('ZADD', KLEASE, unpack(batch)) end
end
