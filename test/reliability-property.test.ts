/**
 * Property-based tests (fast-check) for the two claims of issue 7 about the
 * header parser and the budget state machine, on the input classes that
 * `engine-property.test.ts` does not reach:
 *
 * - the parser, on generated IETF structured fields (not a handful of
 *   constants), the legacy `RateLimit-Limit/-Remaining/-Reset` drafts,
 *   `X-RateLimit-Reset` as delta or epoch seconds, header sets that mix the
 *   X-RateLimit and IETF families, and every container shape (plain object
 *   with arrays, numbers and nulls, WHATWG `Headers`, `[name, value]` pairs,
 *   any letter case), with hostile `now` and `maxRetryAfterMs`: never a
 *   throw, never a negative, NaN or infinite number, never a duration above
 *   the bound, and the same answer from every container;
 * - the scheduler against a model of the server that speaks only IETF
 *   fields (or both families), that has a daily window, whose minute limit
 *   is raised and cut without notice, and that drops its headers at random.
 *   With every header present and the limit steady, after the first window
 *   it never sends a request the window refuses (IETF-only and mixed, not
 *   only X-RateLimit), and never more than one daily probe a day. With limit
 *   changes or dropped headers the strict claim did not hold: the
 *   properties below bound what happens instead (after a limit change,
 *   refusals only in the window of the change or the next; with dropped
 *   headers, at most the limit refused in a window), and the minimal
 *   counterexamples found are replayed at the end (`it.fails` for the one
 *   still open). The budget
 *   the scheduler reports is checked for negative and NaN values after every
 *   step of every run.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseRateLimitHeaders } from '../src/headers/parse.js';
import type { RateLimitSnapshot } from '../src/headers/types.js';
import type { SchedulerStats } from '../src/engine/scheduler.js';
import type { WindowView } from '../src/store/types.js';
import { setup, T0 } from './helpers/engine.js';
import type { ManualClock } from './helpers/manual-clock.js';

const finiteNonNegative = (x: number | undefined): boolean => x === undefined || (Number.isFinite(x) && x >= 0);

// ====================================================================== parser

/** An sf-token or a quoted string with escapes, sometimes malformed. */
const itemName = fc.oneof(
  fc.constantFrom('minute', 'daily', 'day', 'per-minute', 'Daily', 'burst', 'default', 'x'),
  fc.constantFrom('minute', 'daily', 'hour', 'a"b', 'a\\b', 'p,q', 'semi;colon').map((s) => `"${s.replace(/["\\]/g, '\\$&')}"`),
  fc.constantFrom('"unterminated', ':Ynl0ZXM=:', ':open', '', ' ', '""'),
);
const paramValue = fc.oneof(
  { weight: 5, arbitrary: fc.integer({ min: 0, max: 200_000 }).map(String) },
  { weight: 1, arbitrary: fc.constantFrom('-1', '1e9', '1e400', 'NaN', 'Infinity', '0x1f', '3.5', '.5', '5.', '"12"', '?1', ':AA==:', '', '99999999999999999999') },
  { weight: 1, arbitrary: fc.string({ maxLength: 5 }) },
);
const param = fc.tuple(fc.constantFrom('q', 'w', 'r', 't', 'Q', 'T', 'pk', 'x', ''), fc.option(paramValue, { nil: undefined })).map(([k, v]) =>
  v === undefined ? `;${k}` : `;${k}=${v}`,
);
const member = fc.tuple(itemName, fc.array(param, { maxLength: 5 }), fc.constantFrom('', ' ', '\t')).map(([n, ps, ows]) => `${ows}${n}${ps.join('')}${ows}`);
/** A generated `RateLimit` / `RateLimit-Policy` value: a list of 0..4 members, sometimes with junk between them. */
const structuredValue = fc.oneof(
  { weight: 6, arbitrary: fc.array(member, { maxLength: 4 }).map((ms) => ms.join(',')) },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 1, arbitrary: fc.array(member, { maxLength: 3 }).map((ms) => ms.join(',,;')) },
);
const countValue = fc.oneof(
  { weight: 5, arbitrary: fc.integer({ min: 0, max: 500 }).map(String) },
  { weight: 1, arbitrary: fc.constantFrom('-1', 'NaN', 'Infinity', '1e400', '', ' 7 ', '4.9', '0x10', '1000000001', '10, 10;w=1', '5;w=60') },
  { weight: 1, arbitrary: fc.string({ maxLength: 6 }) },
);
const secondsValue = fc.oneof(
  fc.integer({ min: 0, max: 120 }).map(String),
  // epoch seconds, in the past and in the future of T0
  fc.integer({ min: -3600, max: 3 * 86_400 }).map((d) => String(Math.floor(T0 / 1000) + d)),
  fc.constantFrom('-5', '1.25', 'soon', '', '1e3', 'Wed, 21 Oct 2015 07:28:00 GMT'),
  fc.integer({ min: -60_000, max: 3 * 86_400_000 }).map((ms) => new Date(T0 + ms).toUTCString()),
);

/** Every header the parser reads, X-RateLimit and IETF families mixed, each present or not. */
const mixedHeaders = fc.record(
  {
    'x-ratelimit-limit': countValue,
    'x-ratelimit-remaining': countValue,
    'x-ratelimit-daily-limit': countValue,
    'x-ratelimit-daily-remaining': countValue,
    'x-ratelimit-type': fc.constantFrom('minute', 'daily', 'DAILY ', 'hour', ''),
    'x-ratelimit-reset': secondsValue,
    'retry-after': secondsValue,
    'retry-after-ms': fc.oneof(fc.integer({ min: 0, max: 400_000_000 }).map(String), fc.constantFrom('-1', 'x', '2.5', '')),
    ratelimit: structuredValue,
    'ratelimit-policy': structuredValue,
    'ratelimit-limit': countValue,
    'ratelimit-remaining': countValue,
    'ratelimit-reset': secondsValue,
  },
  { requiredKeys: [] },
) as fc.Arbitrary<Record<string, string>>;

/** Mixed-case spellings of a header name, as proxies and frameworks hand them over. */
function recase(name: string, bits: number): string {
  let out = '';
  for (let i = 0; i < name.length; i++) out += (bits >> i % 31) & 1 ? (name[i] as string).toUpperCase() : (name[i] as string);
  return out;
}

function checkSnapshot(snap: RateLimitSnapshot, maxMs: number): void {
  for (const w of [snap.minute, snap.daily]) {
    for (const [k, v] of Object.entries(w)) {
      expect(finiteNonNegative(v as number), `${k} = ${String(v)}`).toBe(true);
      expect(v).not.toBeUndefined(); // absent fields are left out, never set to undefined
    }
    if (w.limit !== undefined) expect(Number.isInteger(w.limit)).toBe(true);
    if (w.remaining !== undefined) expect(Number.isInteger(w.remaining)).toBe(true);
    if (w.limit !== undefined && w.remaining !== undefined) expect(w.remaining).toBeLessThanOrEqual(w.limit);
    if (w.resetInMs !== undefined) expect(w.resetInMs).toBeLessThanOrEqual(maxMs);
  }
  if (snap.retryAfterMs !== undefined) {
    expect(finiteNonNegative(snap.retryAfterMs)).toBe(true);
    expect(snap.retryAfterMs).toBeLessThanOrEqual(maxMs);
  }
  expect(typeof snap.present).toBe('boolean');
  const anything = snap.type !== undefined || snap.retryAfterMs !== undefined || Object.keys(snap.minute).length > 0 || Object.keys(snap.daily).length > 0;
  expect(snap.present).toBe(anything);
}

describe('properties: the header parser on mixed X-RateLimit + IETF sets, any container', () => {
  it('never throws, never yields a negative/NaN/infinite number or a duration over the bound, and reads every container alike', () => {
    fc.assert(
      fc.property(
        mixedHeaders,
        fc.integer({ min: 0, max: 2 ** 30 }),
        fc.oneof(fc.constant(undefined), fc.integer({ min: 0, max: 10 * 86_400_000 }), fc.constantFrom(-1, Number.NaN, Infinity)),
        fc.oneof(fc.constant(T0), fc.integer({ min: 0, max: 4_000_000_000_000 }), fc.constantFrom(Number.NaN, -1, Infinity)),
        (headers, caseBits, maxRetryAfterMs, now) => {
          const options = maxRetryAfterMs === undefined ? { now } : { now, maxRetryAfterMs };
          const bound = typeof maxRetryAfterMs === 'number' && maxRetryAfterMs >= 0 ? maxRetryAfterMs : 2 * 86_400_000;
          const entries = Object.entries(headers);
          const asObject = parseRateLimitHeaders(Object.fromEntries(entries.map(([k, v]) => [recase(k, caseBits), v])), options);
          checkSnapshot(asObject, bound);
          // The same headers through WHATWG Headers and through [name, value] pairs give the same snapshot.
          let whatwg: Headers | undefined;
          try {
            whatwg = new Headers(entries);
          } catch {
            whatwg = undefined; // a value Headers itself refuses (e.g. a control character): nothing to compare
          }
          if (whatwg !== undefined && entries.every(([, v]) => v === v.trim())) {
            expect(parseRateLimitHeaders(whatwg, options)).toEqual(asObject);
          }
          expect(parseRateLimitHeaders(entries as Iterable<[string, string]>, options)).toEqual(parseRateLimitHeaders(headers, options));
        },
      ),
      { numRuns: 1500 },
    );
  });

  it('plain objects with arrays, numbers, nulls and junk values: never throws, never a bad number', () => {
    const junk = fc.oneof(
      countValue,
      fc.array(fc.oneof(countValue, fc.constant(''), fc.constant('  ')), { maxLength: 3 }),
      fc.oneof(fc.integer({ min: -5, max: 500 }), fc.double(), fc.constantFrom(Number.NaN, Infinity, -0)),
      fc.constantFrom(null, undefined, true, {}, [], [null], Symbol('x')),
    );
    const names = fc.constantFrom(
      'x-ratelimit-limit',
      'X-RateLimit-Remaining',
      'x-ratelimit-daily-limit',
      'x-ratelimit-daily-remaining',
      'retry-after',
      'Retry-After-Ms',
      'ratelimit',
      'RateLimit-Policy',
      'ratelimit-limit',
      'ratelimit-remaining',
      'ratelimit-reset',
      'x-ratelimit-reset',
      'x-ratelimit-type',
      'constructor',
      '__proto__',
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(names, junk), { maxLength: 12 }), (pairs) => {
        const record: Record<string, unknown> = {};
        for (const [k, v] of pairs) Object.defineProperty(record, k, { value: v, enumerable: true, configurable: true, writable: true });
        const snap = parseRateLimitHeaders(record as never, { now: T0 });
        checkSnapshot(snap, 2 * 86_400_000);
      }),
      { numRuns: 1000 },
    );
  });

  it('an X-RateLimit field always wins over the IETF field it competes with, whatever the IETF side holds', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 0, max: 1000 }), structuredValue, structuredValue, (limit, remaining, rl, policy) => {
        const snap = parseRateLimitHeaders(
          { 'x-ratelimit-limit': String(limit), 'x-ratelimit-remaining': String(remaining), ratelimit: rl, 'ratelimit-policy': policy, 'ratelimit-limit': '7' },
          { now: T0 },
        );
        expect(snap.minute.limit).toBe(limit);
        expect(snap.minute.remaining).toBe(Math.min(remaining, limit));
      }),
      { numRuns: 500 },
    );
  });
});

// ====================================================================== model server

type HeaderStyle = 'x' | 'ietf' | 'both';

interface ModelConfig {
  /** Fixed minute windows (aligned on multiples of `windowMs`). */
  windowMs: number;
  /** The minute limit from `at` (ms after T0) on; the first entry is at 0. */
  limits: { at: number; limit: number }[];
  /** A daily window (aligned on multiples of `dayMs`). */
  daily?: { limit: number; dayMs: number };
  style: HeaderStyle;
  /** Probability that a response carries no rate-limit header (a 429 keeps `Retry-After`). */
  missingRate: number;
}

interface Hit {
  at: number;
  status: 200 | 429;
  type?: 'minute' | 'daily';
}

/**
 * A rate-limited server as the scheduler meets it: fixed minute windows whose
 * limit changes at scheduled times without notice, an optional daily window,
 * and headers in the X-RateLimit family, the IETF family (`RateLimit-Policy`
 * + `RateLimit`, with `t` in whole seconds), or both. Requests reach it half
 * way through their latency; answers come back after the other half, so
 * answers overtake each other.
 */
class ModelServer {
  readonly hits: Hit[] = [];
  readonly #clock: ManualClock;
  readonly #c: ModelConfig;
  readonly #rand: () => number;
  #minuteKey = -1;
  #minuteUsed = 0;
  #dayKey = -1;
  #dayUsed = 0;

  constructor(clock: ManualClock, config: ModelConfig, rand: () => number) {
    this.#clock = clock;
    this.#c = config;
    this.#rand = rand;
  }

  limitAt(t: number): number {
    let limit = this.#c.limits[0]?.limit ?? 0;
    for (const change of this.#c.limits) if (T0 + change.at <= t) limit = change.limit;
    return limit;
  }

  handle(): { status: number; headers: Record<string, string> } {
    const now = this.#clock.now();
    const { windowMs, daily, style } = this.#c;
    const minuteKey = Math.floor(now / windowMs);
    if (minuteKey !== this.#minuteKey) {
      this.#minuteKey = minuteKey;
      this.#minuteUsed = 0;
    }
    const minuteReset = (minuteKey + 1) * windowMs - now;
    let dayReset = 0;
    if (daily) {
      const dayKey = Math.floor(now / daily.dayMs);
      if (dayKey !== this.#dayKey) {
        this.#dayKey = dayKey;
        this.#dayUsed = 0;
      }
      dayReset = (dayKey + 1) * daily.dayMs - now;
    }
    const limit = this.limitAt(now);
    const dayLeft = daily ? daily.limit - this.#dayUsed : Infinity;
    let status: 200 | 429 = 200;
    let type: 'minute' | 'daily' | undefined;
    if (dayLeft <= 0) {
      status = 429;
      type = 'daily';
    } else if (this.#minuteUsed >= limit) {
      status = 429;
      type = 'minute';
    } else {
      this.#minuteUsed++;
      this.#dayUsed++;
    }
    this.hits.push(type === undefined ? { at: now, status } : { at: now, status, type });
    const headers: Record<string, string> = {};
    if (status === 429) headers['retry-after'] = String(Math.max(1, Math.ceil((type === 'daily' ? dayReset : minuteReset) / 1000)));
    if (this.#rand() < this.#c.missingRate) return { status, headers };
    const remaining = Math.max(0, limit - this.#minuteUsed);
    const dayRemaining = daily ? Math.max(0, daily.limit - this.#dayUsed) : 0;
    if (style !== 'ietf') {
      headers['x-ratelimit-limit'] = String(limit);
      headers['x-ratelimit-remaining'] = String(remaining);
      if (daily) {
        headers['x-ratelimit-daily-limit'] = String(daily.limit);
        headers['x-ratelimit-daily-remaining'] = String(dayRemaining);
      }
      if (type !== undefined) headers['x-ratelimit-type'] = type;
    }
    if (style !== 'x') {
      const policies = [`"minute";q=${limit};w=${windowMs / 1000}`];
      const items = [`"minute";r=${remaining};t=${Math.ceil(minuteReset / 1000)}`];
      if (daily) {
        policies.push(`"daily";q=${daily.limit};w=${daily.dayMs / 1000}`);
        items.push(`"daily";r=${dayRemaining};t=${Math.ceil(dayReset / 1000)}`);
      }
      headers['ratelimit-policy'] = policies.join(', ');
      headers['ratelimit'] = items.join(', ');
    }
    return { status, headers };
  }
}

function checkWindowView(w: WindowView): void {
  for (const key of ['limit', 'available', 'remaining', 'uncounted', 'nextResetAfter', 'nextResetBy'] as const) {
    expect(finiteNonNegative(w[key]), `${key} = ${String(w[key])}`).toBe(true);
  }
}

function checkStats(s: SchedulerStats): void {
  if (s.budget) {
    checkWindowView(s.budget.minute);
    checkWindowView(s.budget.daily);
  }
  expect(Number.isInteger(s.concurrency) && s.concurrency >= 1).toBe(true);
  for (const n of [s.queued, s.inFlight, s.backingOff]) expect(Number.isInteger(n) && n >= 0).toBe(true);
  expect(finiteNonNegative(s.gateUntil)).toBe(true);
  expect(finiteNonNegative(s.parkedUntil)).toBe(true);
}

interface RunResult {
  server: ModelServer;
  /** Client-side times at which each answer arrived. */
  answeredAt: number[];
  done: number;
  jobs: number;
  maxLatency: number;
}

async function drive(config: ModelConfig, jobs: number, latency: { base: number; spread: number }, seed: number, maxWindows: number): Promise<RunResult> {
  let r = seed;
  const rand = (): number => {
    r = (r * 16807) % 2147483647;
    return r / 2147483647;
  };
  const { clock, scheduler } = setup({
    windows: { minuteMs: config.windowMs, dayMs: config.daily?.dayMs ?? config.windowMs * 1000 },
    random: rand,
  });
  const server = new ModelServer(clock, config, rand);
  const answeredAt: number[] = [];
  const task = (): Promise<{ status: number; headers: Record<string, string> }> =>
    new Promise((resolve) => {
      const latencyMs = latency.base + rand() * latency.spread;
      clock.setTimeout(() => {
        const response = server.handle();
        clock.setTimeout(() => {
          answeredAt.push(clock.now());
          resolve(response);
        }, latencyMs / 2);
      }, latencyMs / 2);
    });
  let done = 0;
  for (let i = 0; i < jobs; i++) void scheduler.schedule(task).then(() => done++, () => done++);
  const step = config.windowMs / 20;
  while (done < jobs && clock.now() - T0 < config.windowMs * maxWindows) {
    await clock.advance(step);
    checkStats(scheduler.stats());
  }
  const finished = done;
  // A run cut off by the time cap still has requests in flight, and the model's tasks ignore the abort
  // signal: their answers come only as the clock moves, so keep it moving until close() is through
  // (awaiting it alone hung the test until vitest's timeout).
  let closed = false;
  const closing = scheduler.close({ drain: false }).finally(() => {
    closed = true;
  });
  for (let i = 0; !closed && i < 100; i++) await clock.advance(step);
  if (!closed) throw new Error(`scheduler.close() still pending ${100 * step} ms after the run (${finished} of ${jobs} tasks done)`);
  await closing;
  return { server, answeredAt, done: finished, jobs, maxLatency: latency.base + latency.spread };
}

/** Requests sent (accepted or refused) in each fixed window, by window index. */
function sentPerWindow(hits: readonly Hit[], windowMs: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const h of hits) {
    const k = Math.floor(h.at / windowMs);
    out.set(k, (out.get(k) ?? 0) + 1);
  }
  return out;
}

/** Minute 429s after the first window (before it the scheduler knows nothing), by window index. */
function late429sPerWindow(result: RunResult, config: ModelConfig): Map<number, number> {
  const out = new Map<number, number>();
  for (const h of result.server.hits) {
    if (h.status !== 429 || h.type !== 'minute' || h.at < T0 + config.windowMs + result.maxLatency) continue;
    const k = Math.floor(h.at / config.windowMs);
    out.set(k, (out.get(k) ?? 0) + 1);
  }
  return out;
}

/** Window indexes touched by a limit change: the one it falls in and the next (the scheduler re-learns within it). */
function windowsAfterChanges(config: ModelConfig): Set<number> {
  const out = new Set<number>();
  for (const change of config.limits.slice(1)) {
    const k = Math.floor((T0 + change.at) / config.windowMs);
    out.add(k);
    out.add(k + 1);
  }
  return out;
}

const MINUTE = 60_000;

/** Longest a single run may take before it counts as a failure (a normal run takes well under a second). */
const RUN_MS = Number(process.env['PROP_RUN_MS'] ?? 15_000);
/** Time budget of one property, runs and shrinking together. */
const PROP_MS = Number(process.env['PROP_MS'] ?? 60_000);
/** The vitest timeout of a property test: above the property's own budget, so fast-check reports first. */
const PROP_TEST_MS = PROP_MS + 2 * RUN_MS + 15_000;

/**
 * fast-check parameters of the model-server properties. `PROP_RUNS` sets the
 * number of runs (hunts use thousands), `PROP_SEED` and `PROP_PATH` replay a
 * reported failure. A run that hangs fails after `RUN_MS` with its seed, and
 * the whole property (shrinking included) stops after `PROP_MS`: a
 * counterexample found by then is reported with its seed and the smallest
 * value reached, and a property cut short before its runs are done fails
 * too (`markInterruptAsFailure`), so a slow machine never passes on fewer
 * runs than asked, and nothing ends in a bare vitest timeout.
 */
function propOptions<Ts>(defaultRuns: number): fc.Parameters<Ts> {
  const seed = process.env['PROP_SEED'];
  const path = process.env['PROP_PATH'];
  return {
    numRuns: Number(process.env['PROP_RUNS'] ?? defaultRuns),
    timeout: RUN_MS,
    interruptAfterTimeLimit: PROP_MS,
    markInterruptAsFailure: true,
    ...(seed !== undefined ? { seed: Number(seed) } : {}),
    ...(path !== undefined ? { path } : {}),
  };
}

const limitScheduleArb = fc
  .tuple(
    fc.integer({ min: 2, max: 30 }),
    fc.array(fc.tuple(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: MINUTE - 1000 })), { minLength: 1, maxLength: 3 }),
  )
  .map(([first, changes]) => {
    const limits = [{ at: 0, limit: first }];
    let at = 0;
    for (const [windows, limit, offset] of changes) {
      at += windows * MINUTE + offset;
      limits.push({ at, limit });
    }
    return limits;
  });
const latencyArb = fc.record({ base: fc.integer({ min: 1, max: 800 }), spread: fc.integer({ min: 0, max: 400 }) });
const seedArb = fc.integer({ min: 1, max: 2 ** 31 - 2 });

/** The minute limit in force `at` ms after the start. */
function limitOf(limits: ModelConfig['limits'], at: number): number {
  let limit = limits[0]?.limit ?? 0;
  for (const change of limits) if (change.at <= at) limit = change.limit;
  return limit;
}

async function runModel(limits: ModelConfig['limits'], style: HeaderStyle, missingRate: number, latency: { base: number; spread: number }, seed: number, extraWindows: number): Promise<{ config: ModelConfig; result: RunResult }> {
  const config: ModelConfig = { windowMs: MINUTE, limits, style, missingRate };
  const last = limits[limits.length - 1] as { at: number; limit: number };
  const windows = Math.ceil(last.at / MINUTE) + extraWindows;
  // Enough work to keep every window busy until a few windows after the last change: what the server
  // accepts in that many windows. (The highest limit times the windows was more than a low last limit
  // lets through in the time cap, 40 windows more: such a run could only be cut off.)
  let jobs = 0;
  for (let k = 0; k < windows; k++) jobs += limitOf(limits, k * MINUTE);
  const result = await drive(config, jobs, latency, seed, windows + 40);
  expect(result.done, `tasks done within ${windows + 40} windows`).toBe(jobs);
  return { config, result };
}

describe('properties: against a model server (IETF-only or mixed headers, a daily window, limit changes, dropped headers)', () => {
  it.each<[string, HeaderStyle]>([
    ['IETF RateLimit / RateLimit-Policy only', 'ietf'],
    ['both families at once', 'both'],
    ['X-RateLimit (the reference)', 'x'],
  ])('%s, any limit, latency and answer order: after the first window no request is sent that the window refuses', async (_label, style) => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 2, max: 40 }), latencyArb, seedArb, async (limit, latency, seed) => {
        const { config, result } = await runModel([{ at: 0, limit }], style, 0, latency, seed, 8);
        expect([...late429sPerWindow(result, config)], 'windows with a 429 after the first').toEqual([]);
        for (const [k, sent] of sentPerWindow(result.server.hits, MINUTE)) {
          if (k * MINUTE + MINUTE <= T0 + MINUTE) continue; // the window the run started in
          expect(sent, `sent in window ${k - Math.floor(T0 / MINUTE)}`).toBeLessThanOrEqual(limit);
        }
      }),
      propOptions(25),
    );
  }, PROP_TEST_MS);

  it.each<[string, HeaderStyle]>([
    ['X-RateLimit (no daily reset time)', 'x'],
    ['IETF (the daily reset time in `t`)', 'ietf'],
    ['both families', 'both'],
  ])('%s, a daily window smaller than the work: at most one daily 429 per day, no minute 429 after the first window, never more than the day allows', async (_label, style) => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 3, max: 20 }), fc.integer({ min: 2, max: 6 }), latencyArb, seedArb, async (limit, share, latency, seed) => {
        const dayMs = MINUTE * 10;
        // the day allows only part of what its minute windows could carry
        const dailyLimit = limit * share;
        const config: ModelConfig = { windowMs: MINUTE, limits: [{ at: 0, limit }], daily: { limit: dailyLimit, dayMs }, style, missingRate: 0 };
        const jobs = dailyLimit * 3;
        const result = await drive(config, jobs, latency, seed, 10 * 6);
        expect(result.done).toBe(jobs);
        expect([...late429sPerWindow(result, config)]).toEqual([]);
        const dailyByDay = new Map<number, number>();
        const sentByDay = new Map<number, number>();
        for (const h of result.server.hits) {
          const day = Math.floor(h.at / dayMs);
          sentByDay.set(day, (sentByDay.get(day) ?? 0) + 1);
          if (h.type === 'daily') dailyByDay.set(day, (dailyByDay.get(day) ?? 0) + 1);
        }
        for (const [day, n] of dailyByDay) expect(n, `daily 429s on day ${day - Math.floor(T0 / dayMs)}`).toBeLessThanOrEqual(1);
        // sent in a day: what it allows, plus at most the one probe that learns the reset
        for (const [day, sent] of sentByDay) expect(sent, `sent on day ${day - Math.floor(T0 / dayMs)}`).toBeLessThanOrEqual(dailyLimit + 1);
      }),
      propOptions(10),
    );
  }, PROP_TEST_MS);

  it.each<[string, HeaderStyle]>([
    ['X-RateLimit', 'x'],
    ['IETF only', 'ietf'],
    ['both families', 'both'],
  ])('%s, the limit raised and cut without notice: the scheduler re-converges: refused requests only in the window of a change or the next', async (_label, style) => {
    await fc.assert(
      fc.asyncProperty(limitScheduleArb, latencyArb, seedArb, async (limits, latency, seed) => {
        const { config, result } = await runModel(limits, style, 0, latency, seed, 4);
        const touched = windowsAfterChanges(config);
        const late = late429sPerWindow(result, config);
        for (const k of late.keys()) expect(touched.has(k), `a 429 in window ${k - Math.floor(T0 / MINUTE)}, away from every change`).toBe(true);
        // sent per window, away from the changes: never above the window's limit
        for (const [k, sent] of sentPerWindow(result.server.hits, MINUTE)) {
          if (k * MINUTE + MINUTE <= T0 + MINUTE || touched.has(k)) continue;
          expect(sent, `sent in window ${k - Math.floor(T0 / MINUTE)}`).toBeLessThanOrEqual(result.server.limitAt(k * MINUTE));
        }
      }),
      propOptions(20),
    );
  }, PROP_TEST_MS);

  it.each<[string, HeaderStyle]>([
    ['X-RateLimit', 'x'],
    ['IETF only', 'ietf'],
  ])('%s, 30 percent of responses without any rate-limit header: every task ends, the budget stays sane, and refusals stay bounded (at most the limit in a window)', async (_label, style) => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 2, max: 40 }), latencyArb, seedArb, async (limit, latency, seed) => {
        const { config, result } = await runModel([{ at: 0, limit }], style, 0.3, latency, seed, 8);
        // (drive() also checks, after every step, that the budget is never negative or NaN, and that every task ends.)
        for (const [k, n] of late429sPerWindow(result, config)) expect(n, `429s in window ${k - Math.floor(T0 / MINUTE)}`).toBeLessThanOrEqual(limit);
      }),
      propOptions(20),
    );
  }, PROP_TEST_MS);
});

/**
 * Where the strict claim ("never more requests sent in a window than
 * the server allows") failed. Each is a minimal counterexample fast-check
 * found against the model above, replayed deterministically.
 */
describe('counterexamples found here, replayed', () => {
  async function strict(limits: ModelConfig['limits'], style: HeaderStyle, missingRate: number, latency: { base: number; spread: number }, seed: number, extra: number): Promise<void> {
    const { config, result } = await runModel(limits, style, missingRate, latency, seed, extra);
    expect([...late429sPerWindow(result, config)].map(([k]) => k - Math.floor(T0 / MINUTE))).toEqual([]);
  }

  // Fixed (budget-state: a jump of `Remaining` that comes with a limit change now forgets the answer log too,
  // as a reset does); these stay as regression tests.
  it('a limit raised mid-window (2 → 3): the jump is not credited twice', async () => {
    await strict([{ at: 0, limit: 2 }, { at: 60_000, limit: 3 }], 'both', 0, { base: 1, spread: 0 }, 1, 4);
  });

  it('a limit raised (2 → 12), then cut (→ 3): no burst right after a fresh "remaining 0"', async () => {
    await strict([{ at: 0, limit: 2 }, { at: 97_532, limit: 12 }, { at: 157_532, limit: 3 }], 'x', 0, { base: 1, spread: 0 }, 1, 4);
  });

  // The CI timeout of "IETF only, the limit raised and cut" (fast-check seed 777 of a 1,500-run hunt finds it
  // again): a last limit far below the highest one. The work was sized as the highest limit × the windows, more
  // than the server lets through before the time cap, so the run was cut off with requests in flight; then
  // `close({ drain: false })` waited for answers that only a moving clock delivers, and the test hung until
  // vitest's timeout, with no counterexample reported. The harness now sizes the work by what the server accepts,
  // and keeps the clock moving while it closes.
  const cutOff: ModelConfig['limits'] = [
    { at: 0, limit: 17 },
    { at: 113_929, limit: 26 },
    { at: 532_926, limit: 6 },
    { at: 950_455, limit: 5 },
  ];

  it('CI timeout, replayed: a run cut off by the time cap ends, and reports how far it got', async () => {
    const config: ModelConfig = { windowMs: MINUTE, limits: cutOff, style: 'ietf', missingRate: 0 };
    // the old sizing: 26 × 20 jobs, at most ~300 of which the server accepts in 60 windows
    const result = await drive(config, 26 * 20, { base: 257, spread: 4 }, 12, 60);
    expect(result.done).toBeGreaterThan(250);
    expect(result.done).toBeLessThan(26 * 20);
  });

  it('CI timeout, replayed: the same limits with the work sized to what the server accepts: done, and no refusal away from a change', async () => {
    const { config, result } = await runModel(cutOff, 'ietf', 0, { base: 257, spread: 4 }, 12, 4);
    const touched = windowsAfterChanges(config);
    for (const k of late429sPerWindow(result, config).keys()) expect(touched.has(k), `a 429 in window ${k - Math.floor(T0 / MINUTE)}`).toBe(true);
  });

  // Fixed (budget-state: a jump that frees more than a raised limit explains drops the phase; a header-less
  // answer is not absorbed only while `rem` is a probe's leave, not a count; header-less answers counted
  // after the previous snapshot lower the value a fresh `Remaining` is compared with). Kept as regression tests.
  it('a limit raised after the phase was learned (2 → 3): the reset seen together with the change is not predicted again a window later', async () => {
    await strict([{ at: 0, limit: 2 }, { at: 120_243, limit: 3 }], 'x', 0, { base: 1, spread: 0 }, 1, 4);
  });

  it('headers missing on a few answers, limit constant: no "refresh" request after header-less answers into a full window', async () => {
    await strict([{ at: 0, limit: 2 }], 'x', 0.3, { base: 1, spread: 0 }, 2036108656, 8);
  });

  it('header-less answers hide a window reset: the fresh snapshot after them still sees the reset, and their answer-log entries are not credited back', async () => {
    // limit 3: two header-less answers at the end of one window expire 2.5 ms after a fresh `remaining 1` in the next;
    // the budget used to rise to 3 then, and the two requests sent together were both refused.
    await strict([{ at: 0, limit: 3 }], 'x', 0.3, { base: 1, spread: 2 }, 1242365703, 8);
  });

  // Found by a strict hunt with 30 % of headers missing: after a predicted reset, the probe that reads the new
  // numbers answered without headers, so one more request was let through to read them, and so on: three
  // header-less probes in a row sent a third request into a window of 2. Now the probes answered without a count
  // stop at the limit (the server counted each), and they stay uncounted until they have left the window, so
  // neither the refresh request nor the time raise of an older snapshot sends into the spent window.
  it('header-less answers to the probes after a predicted reset: never more probes than the limit', async () => {
    await strict([{ at: 0, limit: 2 }], 'x', 0.3, { base: 1, spread: 0 }, 29, 8);
  });
});
