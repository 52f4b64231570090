/**
 * Mutation check of the budget rules: applies one-line changes to the budget
 * source, one at a time, runs the budget suites on both stores, and reports
 * whether each change was caught (some test failed). The first six rows are
 * the slips of issue #13 (there tried on the Lua copy, which is gone: the
 * same changes are made to the one TypeScript source).
 *
 *   npx tsx bench/tools/mutation-check.ts          # every mutation
 *   npx tsx bench/tools/mutation-check.ts 3 7      # only these (1-based)
 *   npx tsx bench/tools/mutation-check.ts --check  # only check that every change still applies
 *
 * Needs Redis (REDIS_URL or 127.0.0.1:6379) for the conformance suite. The
 * source files are restored after each run, also on Ctrl-C.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const STATE = 'src/store/budget-state.ts';
const WINDOW = 'src/store/window.ts';
const PHASE = 'src/store/phase.ts';
const SHARED = 'src/store/shared-budget.ts';

/** The suites a budget change must answer to: the rules alone, what sharing adds, and MemoryStore ≡ RedisStore. */
const SUITES = ['test/budget-golden.test.ts', 'test/budget-state.test.ts', 'test/shared-budget.test.ts', 'test/store-conformance.test.ts'];

interface Mutation {
  what: string;
  file: string;
  from: string;
  to: string;
}

const MUTATIONS: Mutation[] = [
  // The six slips of issue #13.
  { what: 'late probe at 1/7 instead of 1/8 of a window', file: PHASE, from: 'const LATE_PROBE = 1 / 8;', to: 'const LATE_PROBE = 1 / 7;' },
  { what: '`holdOff` line removed', file: PHASE, from: 'if (w.kind === 1 && w.nextHi > 0 && now < w.nextLo) w.holdOff = 1;', to: '' },
  { what: '`unc` reset removed (probes answered without a count leave the window)', file: STATE, from: 'w.unc = Math.min(w.unc, this.data.sent - this.data.done);', to: '' },
  { what: '`phantomN <` turned into `<=`', file: STATE, from: 'm.phantomN < Math.max(1, m.limit)', to: 'm.phantomN <= Math.max(1, m.limit)' },
  { what: 'the `backlog` argument ignored', file: STATE, from: 'want + backlog > a', to: 'want + Infinity > a' },
  { what: '`applyUntrusted` stops lowering the limit', file: WINDOW, from: '    w.limit = snap.limit;\n    if (w.rem > w.limit) w.rem = w.limit;\n    changed = true;', to: '    changed = true;' },
  // More, across the rules.
  { what: 'scout tolerance 1/10 instead of 1/20', file: PHASE, from: 'const SCOUT_TOLERANCE = 1 / 20;', to: 'const SCOUT_TOLERANCE = 1 / 10;' },
  { what: 'scout at 1/3 of the bracket instead of 1/4', file: PHASE, from: 'const SCOUT_POSITION = 1 / 4;', to: 'const SCOUT_POSITION = 1 / 3;' },
  { what: 'no refresh request when nothing is in flight', file: STATE, from: 'if (a <= 0 && inFlight === 0 && m.rem > 0 && m.phantomN < Math.max(1, m.limit)) a = 1;', to: '' },
  { what: 'a reopened gate lets no read through', file: STATE, from: '    if (m.limit >= 0) letOneRead(m);\n', to: '' },
  { what: 'a minute 429 leaves the budget as it was', file: STATE, from: '        if (m.limit >= 0) m.rem = 0;\n', to: '' },
  { what: 'the caller\'s jitter not added to the gate', file: STATE, from: 'const wait = (snap?.retryAfterMs ?? outcome.fallbackGateMs) + outcome.jitterMs;', to: 'const wait = snap?.retryAfterMs ?? outcome.fallbackGateMs;' },
  { what: 'a stale answer may raise the budget', file: STATE, from: 'if (epoch !== w.epoch || w.srvRem < 0 || r >= w.srvRem) return limitChanged;', to: 'if (epoch !== w.epoch || w.srvRem < 0) return limitChanged;' },
  { what: 'the fresh bound counts the answer itself as uncounted', file: STATE, from: 'this.data.sent - ticket.doneAtSend - 1)', to: 'this.data.sent - ticket.doneAtSend)' },
  { what: 'a snapshot does not bump the version', file: WINDOW, from: '  w.unc = unc;\n  w.ver++;', to: '  w.unc = unc;' },
  { what: 'remaining above the limit kept', file: WINDOW, from: '  w.rem = Math.min(r, w.limit);\n  w.srvRem = w.rem;', to: '  w.rem = r;\n  w.srvRem = w.rem;' },
  { what: 'expiry one tick early (`<` for `<=`)', file: STATE, from: '    while (this.#log.peekRecv() + expiry <= now) {', to: '    while (this.#log.peekRecv() + expiry < now) {' },
  { what: 'no margin on expiries', file: STATE, from: '    const expiry = w.windowMs + this.#config.marginMs;\n    while', to: '    const expiry = w.windowMs;\n    while' },
  { what: 'sliding-window test `>` turned into `>=`', file: PHASE, from: 'if (j.remaining > w.limit - 1 - j.recentAnswers()) w.kind = 1;', to: 'if (j.remaining >= w.limit - 1 - j.recentAnswers()) w.kind = 1;' },
  { what: 'late probe planned from the upper side of the bracket', file: PHASE, from: 'const late = w.nextLo - w.windowMs * LATE_PROBE;', to: 'const late = w.nextHi - w.windowMs * LATE_PROBE;' },
  { what: 'an answer with no reset does not raise the lower side', file: PHASE, from: 'if (w.nextHi > 0 && sentAt > w.nextLo && sentAt < w.nextHi) w.nextLo = sentAt;', to: '' },
  { what: 'no daily refresh request when nothing is in flight', file: STATE, from: 'if (a <= 0 && inFlight === 0 && d.rem > 0) a = 1;', to: '' },
  { what: 'a daily 429 does not learn the reset', file: STATE, from: 's.dailyResetKnown = snap?.retryAfterMs !== undefined || realDay ? 1 : 0;', to: '' },
  { what: 'the daily reset not carried to the next day', file: STATE, from: 'if (s.nextDailyReset > 0 && s.nextDailyReset <= now) s.nextDailyReset += d.windowMs;', to: '' },
  { what: 'an absorbed answer does not move `snapAt`', file: WINDOW, from: '  if (w.srvRem >= 0) w.srvRem = w.rem;\n  w.snapAt = now;', to: '  if (w.srvRem >= 0) w.srvRem = w.rem;' },
  { what: 'hidden answers not counted', file: WINDOW, from: '  w.hidN++;', to: '' },
  { what: 'slide read planned up to W/2 instead of W/4', file: PHASE, from: 'if (at > j.now && at <= j.now + w.windowMs / 4) {', to: 'if (at > j.now && at <= j.now + w.windowMs / 2) {' },
  { what: 'the grid never learned', file: PHASE, from: 'if (w.hitLo > 0 && j.now < w.hitLo) w.grid = 1;', to: '' },
  { what: 'a read with nothing in flight gives no first-hit bound', file: PHASE, from: 'w.readHitLo = idle ? now + w.windowMs : 0;', to: 'w.readHitLo = idle ? now : 0;' },
  { what: 'an untrusted answer that never left gives its unit back', file: STATE, from: 'if (trusted && ticket.verMinute === s.minute.ver && s.minute.unc > 0) s.minute.unc--;', to: 'if (ticket.verMinute === s.minute.ver && s.minute.unc > 0) s.minute.unc--;' },
  { what: 'untrusted answers logged', file: STATE, from: 'if (counted && trusted && s.minute.limit >= 0) {', to: 'if (counted && s.minute.limit >= 0) {' },
  { what: 'absorbOffline does not count the answers', file: STATE, from: '      s.sent += n;\n      s.done += n;', to: '      s.sent += n;' },
  { what: 'a lease reclaimed one tick late (`>=` for `>`)', file: SHARED, from: 'if (expiry > this.now) continue;', to: 'if (expiry >= this.now) continue;' },
  { what: 'an answer with an unknown lease counted again', file: SHARED, from: '{ countDone: known, trusted: known && !foreign }', to: '{ countDone: true, trusted: known && !foreign }' },
  { what: 'a foreign ticket trusted', file: SHARED, from: '{ countDone: known, trusted: known && !foreign }', to: '{ countDone: known, trusted: known }' },
  { what: 'adopted leases not counted as sent', file: SHARED, from: '    for (const [scope, count] of byScope) this.#part(scope).state.adopt(count);\n', to: '' },
  // The rules added for issue #11.
  { what: 'a stated reset not used', file: STATE, from: 'phase.onStatedReset(w, ticket.sentAt + snap.resetInMs - RESET_GRAIN_MS, now + snap.resetInMs, now);', to: '' },
  { what: 'a stated reset taken as exact (no second of rounding)', file: STATE, from: 'const RESET_GRAIN_MS = 1000;', to: 'const RESET_GRAIN_MS = 1;' },
  { what: 'a stated reset replaces the bracket instead of narrowing it', file: PHASE, from: '    w.nextLo = Math.max(w.nextLo, lo);\n    w.nextHi = Math.min(w.nextHi, hi);', to: '    w.nextLo = lo;\n    w.nextHi = hi;' },
  { what: 'a stated reset beyond the window used', file: STATE, from: 'snap.resetInMs <= w.windowMs + RESET_GRAIN_MS', to: 'snap.resetInMs >= 0' },
  { what: 'the queue parks on a guessed daily reset', file: STATE, from: 'if (s.nextDailyReset > now && s.dailyResetKnown === 1) {\n              this.#park', to: 'if (s.nextDailyReset > now) {\n              this.#park' },
  { what: 'a real day guessed to end a whole day later, not at midnight UTC', file: STATE, from: 'd.nextDailyReset = w.windowMs === DAY_MS ? now + untilMidnightUtc(now) : now + w.windowMs;', to: 'd.nextDailyReset = now + w.windowMs;' },
  { what: 'a stated daily reset not used', file: STATE, from: '        d.nextDailyReset = now + snap.resetInMs;\n        d.dailyResetKnown = 1;', to: '' },
  { what: 'a request said not to count daily counted in the daily window', file: STATE, from: 'if (countsDaily) s.daily.unc += granted;', to: 's.daily.unc += granted;' },
  { what: 'that word never tested while the day is spent', file: STATE, from: 'if (!countsDaily && s.minuteOnly === 0 && this.#daySpent()) {', to: 'if (!countsDaily && s.minuteOnly === 0 && false) {' },
  { what: 'a daily refusal of such a request does not revoke the word', file: STATE, from: '        if (s.minuteOnly !== 3) s.minuteOnly = 2;\n', to: '' },
  { what: 'shown to count daily for good, a daily refusal makes it a day\'s word again', file: STATE, from: '        if (s.minuteOnly !== 3) s.minuteOnly = 2;\n', to: '        s.minuteOnly = 2;\n' },
  { what: 'the revoked word not heard again when the day resets', file: STATE, from: '    if (s.minuteOnly === 2) s.minuteOnly = 0;\n    if (s.nextDailyReset > 0', to: '    if (s.nextDailyReset > 0' },
  { what: 'an answer the daily window did not count passes for a daily count', file: STATE, from: 'ticket, counted && daily, now, false);', to: 'ticket, counted, now, false);' },
  // Polls that count daily after all, and units kept for them.
  { what: 'a daily count below what daily requests explain proves nothing', file: WINDOW, from: '  return r < w.srvRem - w.unc;', to: '  return false;' },
  { what: 'daily requests in flight not allowed for in that proof', file: WINDOW, from: '  return r < w.srvRem - w.unc;', to: '  return r < w.srvRem;' },
  { what: 'a changed limit taken as that proof', file: WINDOW, from: '  if (snap.limit !== undefined && snap.limit !== w.limit) return false;\n  return r < w.srvRem - w.unc;', to: '  return r < w.srvRem - w.unc;' },
  { what: 'an unchanged daily count after a stale send taken as proof they do not count', file: WINDOW, from: '  if (sentVer !== w.ver || sentEpoch !== w.epoch) return false;\n', to: '' },
  { what: 'requests shown to count daily still not counted there', file: STATE, from: 'const countsDaily = countsDailyAsked || s.minuteOnly >= 2;', to: 'const countsDaily = countsDailyAsked || s.minuteOnly === 2;' },
  { what: 'kept daily units not kept', file: STATE, from: '          const keep = now < dayEnd ? keepDailyAsked : 0;', to: '          const keep = 0;' },
  { what: 'kept units leave one too many', file: STATE, from: '            avail = Math.min(avail, a - keep);', to: '            avail = Math.min(avail, a - keep + 1);' },
  { what: 'a keep outlives its day (held with nothing in flight, nothing reads the new day)', file: STATE, from: '          const keep = now < dayEnd ? keepDailyAsked : 0;', to: '          const keep = keepDailyAsked;' },
];

function run(files: string[]): boolean {
  const r = spawnSync('npx', ['vitest', 'run', ...files], { cwd: root, encoding: 'utf8', env: { ...process.env, CONFORMANCE_RUNS: '60' } });
  return r.status === 0;
}

const check = process.argv.includes('--check');
const only = process.argv.slice(2).map(Number).filter((n) => n > 0);
const chosen = MUTATIONS.map((m, i) => ({ ...m, n: i + 1 })).filter((m) => only.length === 0 || only.includes(m.n));

let restore: (() => void) | undefined;
process.on('SIGINT', () => {
  restore?.();
  process.exit(130);
});

for (const m of chosen) {
  const text = readFileSync(`${root}${m.file}`, 'utf8');
  const at = text.indexOf(m.from);
  if (at < 0 || text.indexOf(m.from, at + 1) >= 0) {
    console.error(`#${m.n} (${m.what}): the text to change is ${at < 0 ? 'not in' : 'more than once in'} ${m.file}`);
    process.exit(2);
  }
}
if (check) {
  console.log(`${chosen.length} mutations, each text found once`);
  process.exit(0);
}

if (!run(SUITES)) {
  console.error('The suites fail on the unchanged source: fix that first.');
  process.exit(2);
}

const rows: string[] = [];
let caught = 0;
const started = Date.now();
for (const m of chosen) {
  const path = `${root}${m.file}`;
  const original = readFileSync(path, 'utf8');
  const at = original.indexOf(m.from);
  restore = () => writeFileSync(path, original);
  writeFileSync(path, original.slice(0, at) + m.to + original.slice(at + m.from.length));
  let ok: boolean;
  try {
    ok = !run(SUITES);
  } finally {
    restore();
    restore = undefined;
  }
  if (ok) caught++;
  const row = `| ${m.n} | ${m.what} | \`${m.file.replace('src/store/', '')}\` | ${ok ? 'caught' : '**missed**'} |`;
  rows.push(row);
  console.log(row);
}
console.log(`\n${caught} of ${chosen.length} caught (${((Date.now() - started) / 1000).toFixed(0)} s; suites: ${SUITES.join(', ')})`);
process.exit(caught === chosen.length ? 0 : 1);
