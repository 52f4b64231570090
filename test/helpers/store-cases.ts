/**
 * The store conformance suite's cases: scripted scenarios and random
 * sequences (fast-check) that run against any `Store` and record every
 * output, so two stores can be compared step by step. Also the Redis
 * availability check shared by the Redis test files.
 */
import { Redis } from 'ioredis';
import fc from 'fast-check';
import { parseRateLimitHeaders } from '../../src/headers/parse.js';
import type { RateLimitSnapshot } from '../../src/headers/types.js';
import type { Clock } from '../../src/internal/clock.js';
import { parseDoc, type SharedDoc } from '../../src/store/shared-budget.js';
import type { BudgetConfig, BudgetView, Outcome, ReserveResult, SettleResult, Store, Ticket } from '../../src/store/types.js';
import { SimServer } from './sim-server.js';

// ---- Redis availability ------------------------------------------------------

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * Whether Redis answers at REDIS_URL. On a developer machine without Redis the
 * Redis suites skip with a loud warning; with CI set they must fail instead,
 * so callers turn `false` into a failing test when `process.env.CI` is set.
 */
export async function redisReachable(file: string): Promise<boolean> {
  const client = new Redis(REDIS_URL, { lazyConnect: true, enableOfflineQueue: false, connectTimeout: 1500, retryStrategy: () => null });
  let lastError: unknown;
  client.on('error', (error: unknown) => {
    lastError = error;
  });
  try {
    await client.connect();
    await client.ping();
    return true;
  } catch (error) {
    const cause = lastError ?? error;
    const why = cause instanceof Error ? cause.message : String(cause);
    if (!process.env.CI) {
      const bar = '!'.repeat(78);
      console.warn(
        `\n${bar}\n!! ${file}: SKIPPING the Redis tests: no Redis at ${REDIS_URL} (${why}).\n` +
          '!! Start one (`redis-server --daemonize yes`) or set REDIS_URL. In CI (CI=true) these tests fail instead.\n' +
          `${bar}\n`,
      );
    }
    return false;
  } finally {
    client.disconnect();
  }
}

/** Deletes every key under `prefix` (tests use one unique prefix each). */
export async function deletePrefix(client: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    cursor = next;
    if (keys.length > 0) await client.del(...keys);
  } while (cursor !== '0');
}

// ---- recording ---------------------------------------------------------------

/** The shared budget document a RedisStore keeps at `key` (see src/store/shared-budget.ts). */
export async function readSharedDoc(client: Redis, key: string): Promise<SharedDoc> {
  const text = await client.hget(key, 'doc');
  if (text === null) throw new Error(`no shared budget at ${key}`);
  return parseDoc(text, key);
}

export const T0 = 1_700_000_000_000;
/** A whole second past 2024 (2025-12-06T05:33:20Z): an `X-RateLimit-Reset` epoch second reads as one from here on. */
export const EPOCH_T0 = 1_765_000_000_000;

export function config(overrides: Partial<BudgetConfig> = {}): BudgetConfig {
  return {
    minuteMs: 1000,
    dayMs: 50_000,
    seeds: {},
    marginMs: 2,
    // Leases never expire in conformance runs: the memory store has none.
    leaseMs: 1e9,
    ...overrides,
  };
}

/** What a scenario can do; times are absolute store times. */
export interface Driver {
  /**
   * `backlog`: tasks queued beyond `want` (undefined: the store's default, many);
   * `scope`: the budget scope drawn from (undefined: the default one);
   * `lane`: `countsDaily` and `keepDaily` as the scheduler passes them.
   */
  reserve(want: number, at: number, backlog?: number, scope?: string, lane?: Lane): Promise<{ result: ReserveResult; tickets: Ticket[] }>;
  /** A missing ticket (fewer granted than the scenario hoped, after a rule change) is skipped and noted. */
  settle(ticket: Ticket | undefined, at: number, outcome?: Partial<Omit<Outcome, 'now'>>): Promise<SettleResult | undefined>;
  view(at: number, scope?: string): Promise<BudgetView>;
  /** Free-form note in the trace (e.g. what the server did). */
  note(value: unknown): void;
}

/** A reservation's lane: whether the daily window counts it, and the daily units it leaves for others. */
export interface Lane {
  countsDaily?: boolean;
  keepDaily?: number;
}

export type Scenario = (d: Driver) => Promise<void>;

export type Step = (
  | { op: 'reserve'; want: number; at: number; backlog?: number; scope?: string; lane?: Lane; result: Omit<ReserveResult, 'leasePrefix'> }
  | { op: 'settle'; at: number; status: number | undefined; result: SettleResult }
  | { op: 'view'; at: number; scope?: string; result: BudgetView }
  | { op: 'note'; value: unknown }
) & { state?: unknown };

/**
 * Runs `scenario` on `store` (after `init(cfg)`) and returns every output;
 * with `capture`, also the store's whole state after every step.
 */
export async function record(store: Store, cfg: BudgetConfig, scenario: Scenario, capture?: () => unknown): Promise<Step[]> {
  await store.init(cfg);
  const steps: Step[] = [];
  const push = async (step: Step): Promise<void> => {
    if (capture) step.state = await capture();
    steps.push(step);
  };
  const driver: Driver = {
    async reserve(want, at, backlog, scope, lane) {
      const result = await store.reserve(want, at, backlog, lane?.countsDaily, scope, lane?.keepDaily);
      const tickets: Ticket[] = [];
      for (let i = 0; i < result.granted; i++) {
        tickets.push({ ...result.ticket, lease: result.leasePrefix === '' ? '' : `${result.leasePrefix}${i}` });
      }
      const { leasePrefix: _, ...rest } = result;
      await push({
        op: 'reserve',
        want,
        at,
        ...(backlog === undefined ? {} : { backlog }),
        ...(scope === undefined ? {} : { scope }),
        ...(lane === undefined ? {} : { lane }),
        result: structuredClone(rest),
      });
      return { result, tickets };
    },
    async settle(ticket, at, outcome = {}) {
      if (!ticket) {
        steps.push({ op: 'note', value: `no ticket to settle at ${at}` });
        return undefined;
      }
      const full: Outcome = {
        now: at,
        status: 'status' in outcome ? outcome.status : 200,
        snapshot: outcome.snapshot,
        sent: outcome.sent ?? true,
        jitterMs: outcome.jitterMs ?? 0,
        fallbackGateMs: outcome.fallbackGateMs ?? 1000,
      };
      const result = await store.settle(ticket, full);
      await push({ op: 'settle', at, status: full.status, result: structuredClone(result) });
      return result;
    },
    async view(at, scope) {
      const result = await store.view(at, scope);
      await push({ op: 'view', at, ...(scope === undefined ? {} : { scope }), result: structuredClone(result) });
      return result;
    },
    note(value) {
      steps.push({ op: 'note', value });
    },
  };
  await scenario(driver);
  return steps;
}

/** Index and both sides of the first differing step, or undefined. */
export function firstDivergence(a: Step[], b: Step[]): { index: number; a: Step | undefined; b: Step | undefined; before: Step[] } | undefined {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (JSON.stringify(a[i]) !== JSON.stringify(b[i])) {
      return { index: i, a: a[i], b: b[i], before: a.slice(Math.max(0, i - 4), i) };
    }
  }
  return undefined;
}

// ---- invariants --------------------------------------------------------------

/** Problems with one step, independent of the other store: negative or NaN budgets, grants beyond `want`. */
export function invariantProblems(step: Step): string[] {
  const problems: string[] = [];
  const finite = (name: string, v: number | undefined, min = -Infinity): void => {
    if (v === undefined) return;
    if (!Number.isFinite(v)) problems.push(`${name} is ${v}`);
    else if (v < min) problems.push(`${name} is ${v} < ${min}`);
  };
  if (step.op === 'reserve') {
    const r = step.result;
    if (!Number.isInteger(r.granted) || r.granted < 0 || r.granted > step.want) problems.push(`granted ${r.granted} of ${step.want}`);
    finite('retryAt', r.retryAt, 0);
    finite('parkedUntil', r.parkedUntil, 0);
    for (const [k, v] of Object.entries(r.ticket)) if (typeof v === 'number') finite(`ticket.${k}`, v, 0);
  } else if (step.op === 'view') {
    const v = step.result;
    for (const name of ['minute', 'daily'] as const) {
      const w = v[name];
      finite(`${name}.limit`, w.limit, 0);
      finite(`${name}.available`, w.available, 0);
      finite(`${name}.remaining`, w.remaining, 0);
      finite(`${name}.uncounted`, w.uncounted, 0);
      if (w.available !== undefined && w.remaining !== undefined && w.available > w.remaining) problems.push(`${name}.available > remaining`);
    }
    finite('sent', v.sent, 0);
    finite('done', v.done, 0);
    if (v.done > v.sent) problems.push(`done ${v.done} > sent ${v.sent}`);
  } else if (step.op === 'settle') {
    finite('gateUntil', step.result.gateUntil, 0);
  }
  return problems;
}

// ---- snapshots ---------------------------------------------------------------

export function snap(
  minute: { limit?: number; remaining?: number } | undefined,
  daily?: { limit?: number; remaining?: number },
  extra: { type?: 'minute' | 'daily'; retryAfterMs?: number } = {},
): RateLimitSnapshot {
  const s: RateLimitSnapshot = { minute: { ...minute }, daily: { ...daily }, present: true };
  if (extra.type !== undefined) s.type = extra.type;
  if (extra.retryAfterMs !== undefined) s.retryAfterMs = extra.retryAfterMs;
  return s;
}

const NO_HEADERS: RateLimitSnapshot = { minute: {}, daily: {}, present: false };

// ---- scripted scenarios --------------------------------------------------------

export interface NamedScenario {
  name: string;
  config: BudgetConfig;
  run: Scenario;
}

/** A fixed-window server run: batches of requests with latency, answered through the header parser. */
function simRun(opts: {
  limit: number;
  windowMs: number;
  kind: 'fixed' | 'sliding' | 'first-hit';
  phaseMs: number;
  latency: (i: number) => number;
  steps: number;
  stepMs: number;
  want: number;
  dropHeadersEvery?: number;
  daily?: { limit: number; dayMs: number };
  limitAt?: { step: number; limit: number };
  script?: { step: number; statuses: number[] };
  /** Another client on the same account, unseen by the store: one request every this many steps. */
  otherEvery?: number;
  /** The server states its reset (see SimServer.statesReset). */
  statesReset?: 'seconds' | 'ms' | 'epoch-seconds';
  /** Store time of the first step (default T0; epoch-second resets need a clock past 2024). */
  start?: number;
}): Scenario {
  return async (d) => {
    const start = opts.start ?? T0;
    let now = start;
    const clock: Clock = { now: () => now, setTimeout: () => 0, clearTimeout: () => {} };
    const server = new SimServer(clock, { limit: opts.limit, windowMs: opts.windowMs, kind: opts.kind, phaseMs: opts.phaseMs });
    if (opts.dropHeadersEvery) server.dropHeadersEvery = opts.dropHeadersEvery;
    if (opts.statesReset) server.statesReset = opts.statesReset;
    if (opts.daily) server.daily = { limit: opts.daily.limit, used: 0, resetAt: start + opts.daily.dayMs, dayMs: opts.daily.dayMs };
    type Flight = { ticket: Ticket; arriveAt: number; answerAt: number; status?: number; headers?: Record<string, string> };
    let flights: Flight[] = [];
    let n = 0;
    for (let step = 0; step < opts.steps; step++) {
      const stepEnd = now + opts.stepMs;
      if (opts.limitAt && step === opts.limitAt.step) server.window = { ...server.window, limit: opts.limitAt.limit };
      if (opts.script && step === opts.script.step) server.script.push(...opts.script.statuses);
      if (opts.otherEvery && step % opts.otherEvery === 3) server.handle();
      // Process arrivals and answers in time order within the step.
      for (;;) {
        const next = flights
          .map((f) => (f.status === undefined ? f.arriveAt : f.answerAt))
          .reduce((a, b) => Math.min(a, b), Infinity);
        if (next > stepEnd) break;
        now = Math.max(now, next);
        for (const f of flights) {
          if (f.status === undefined && f.arriveAt <= now) {
            const r = server.handle();
            f.status = r.status;
            f.headers = r.headers;
          }
        }
        const due = flights.filter((f) => f.status !== undefined && f.answerAt <= now);
        flights = flights.filter((f) => !due.includes(f));
        for (const f of due) {
          const snapshot = parseRateLimitHeaders(f.headers ?? {}, { now });
          await d.settle(f.ticket, now, { status: f.status, snapshot, fallbackGateMs: 500 });
        }
      }
      now = stepEnd;
      const { tickets } = await d.reserve(opts.want, now);
      for (const ticket of tickets) {
        const lat = opts.latency(n++);
        flights.push({ ticket, arriveAt: now + lat / 2, answerAt: now + lat });
      }
      if (step % 10 === 0) await d.view(now);
    }
    d.note({ accepted: server.accepted.length, rejected: server.rejected, maxInWindow: server.maxInWindow() });
  };
}

export const scenarios: NamedScenario[] = [
  {
    name: 'unknown limit: one at a time until the first answer, then learned from headers',
    config: config(),
    async run(d) {
      const a = await d.reserve(3, T0);
      await d.reserve(3, T0 + 1);
      await d.view(T0 + 2);
      await d.settle(a.tickets[0], T0 + 10, { snapshot: snap({ limit: 10, remaining: 9 }) });
      const b = await d.reserve(20, T0 + 11);
      await d.view(T0 + 11);
      for (const [i, t] of b.tickets.entries()) await d.settle(t, T0 + 20 + i, { snapshot: snap({ limit: 10, remaining: 8 - i }) });
      await d.reserve(5, T0 + 40);
      await d.view(T0 + 40);
    },
  },
  {
    name: 'unknown limit and no headers at all: unlimited after the first answer',
    config: config(),
    async run(d) {
      const a = await d.reserve(2, T0);
      await d.settle(a.tickets[0], T0 + 5, { snapshot: NO_HEADERS });
      const b = await d.reserve(50, T0 + 6);
      for (const t of b.tickets.slice(0, 5)) await d.settle(t, T0 + 10, { snapshot: undefined });
      await d.view(T0 + 11);
    },
  },
  {
    name: 'fresh and ambiguous answers: only fresh ones raise',
    config: config({ seeds: { minute: 10 } }),
    async run(d) {
      const a = await d.reserve(4, T0);
      await d.settle(a.tickets[1], T0 + 10, { snapshot: snap({ limit: 10, remaining: 7 }) });
      // a[0] was sent before that snapshot: ambiguous. Higher: ignored; lower: applied.
      await d.settle(a.tickets[0], T0 + 11, { snapshot: snap({ limit: 10, remaining: 9 }) });
      await d.view(T0 + 11);
      await d.settle(a.tickets[2], T0 + 12, { snapshot: snap({ limit: 10, remaining: 6 }) });
      await d.view(T0 + 12);
      const b = await d.reserve(3, T0 + 13);
      await d.settle(b.tickets[0], T0 + 20, { snapshot: snap({ limit: 10, remaining: 3 }) });
      await d.settle(a.tickets[3], T0 + 21, { snapshot: snap({ limit: 10, remaining: 2 }) });
      await d.settle(b.tickets[1], T0 + 22, { snapshot: snap({ limit: 10, remaining: 5 }) });
      await d.settle(b.tickets[2], T0 + 23, { snapshot: snap({ limit: 10, remaining: 1 }) });
      await d.reserve(10, T0 + 24);
      await d.view(T0 + 24);
    },
  },
  {
    name: 'answers out of order: no refresh request after a fresh count that a stale 0, arrived first, had spent',
    config: config(),
    async run(d) {
      // The server takes A, P, X, Y, L, F, Z in that order (Remaining 6 down to 0); the answers come back
      // A, P, L (lowering), then F goes, then X, Y (ignored), Z's 0 (ignored), F's fresh 1.
      const a = await d.reserve(1, T0, 0);
      await d.settle(a.tickets[0], T0 + 1, { snapshot: snap({ limit: 7, remaining: 6 }) });
      const b = await d.reserve(5, T0 + 2, 0);
      const [p, x, y, l, z] = b.tickets;
      await d.settle(p, T0 + 3, { snapshot: snap({ limit: 7, remaining: 5 }) });
      await d.settle(l, T0 + 4, { snapshot: snap({ limit: 7, remaining: 2 }) });
      const f = await d.reserve(1, T0 + 5, 0);
      await d.settle(x, T0 + 6, { snapshot: snap({ limit: 7, remaining: 4 }) });
      await d.settle(y, T0 + 7, { snapshot: snap({ limit: 7, remaining: 3 }) });
      await d.settle(z, T0 + 8, { snapshot: snap({ limit: 7, remaining: 0 }) });
      await d.settle(f.tickets[0], T0 + 9, { snapshot: snap({ limit: 7, remaining: 1 }) });
      // Nothing in flight: the window is full (Z's 0 may not be in F's 1), so nothing goes.
      await d.reserve(1, T0 + 10, 0);
      await d.view(T0 + 10);
    },
  },
  {
    name: 'jumps: a fixed window is recognised, its reset bracketed and scouted',
    config: config(),
    run: simRun({ limit: 12, windowMs: 1000, kind: 'fixed', phaseMs: 370, latency: (i) => 20 + ((i * 7) % 30), steps: 120, stepMs: 50, want: 6 }),
  },
  {
    name: 'sliding window server: never judged fixed',
    config: config(),
    run: simRun({ limit: 10, windowMs: 1000, kind: 'sliding', phaseMs: 0, latency: (i) => 15 + ((i * 13) % 40), steps: 100, stepMs: 60, want: 4 }),
  },
  {
    name: 'a sliding window after the opening burst: the partial jump keeps the answers it may still count',
    config: config(),
    run: simRun({ limit: 10, windowMs: 1000, kind: 'sliding', phaseMs: 0, latency: (i) => 4 + ((i * 7) % 20), steps: 160, stepMs: 25, want: 12 }),
  },
  {
    name: 'answers kept across a partial jump, then a minute 429: they are dropped and a jump keeps none again',
    config: config(),
    async run(d) {
      const a = await d.reserve(1, T0);
      await d.settle(a.tickets[0], T0 + 1, { snapshot: snap({ limit: 10, remaining: 9 }) });
      for (let i = 0; i < 9; i++) {
        const b = await d.reserve(1, T0 + 500 + i);
        await d.settle(b.tickets[0], T0 + 500.5 + i, { snapshot: snap({ limit: 10, remaining: 8 - i }) });
      }
      const jump = await d.reserve(1, T0 + 1300);
      await d.settle(jump.tickets[0], T0 + 1301, { snapshot: snap({ limit: 10, remaining: 0 }) });
      await d.view(T0 + 1501);
      const back = await d.reserve(3, T0 + 1504);
      await d.view(T0 + 1504);
      await d.settle(back.tickets[0], T0 + 1505, { status: 429, snapshot: snap({ limit: 10, remaining: 0 }, undefined, { retryAfterMs: 100 }), jitterMs: 0 });
      await d.settle(back.tickets[1], T0 + 1505, { status: 429, snapshot: snap({ limit: 10, remaining: 0 }, undefined, { retryAfterMs: 100 }), jitterMs: 0 });
      await d.view(T0 + 1510);
      const after = await d.reserve(5, T0 + 1700);
      for (const t of after.tickets) await d.settle(t, T0 + 1701, { snapshot: snap({ limit: 10, remaining: 5 }) });
      await d.view(T0 + 1702);
    },
  },
  {
    name: 'first-hit window server',
    config: config({ seeds: { minute: 8 } }),
    run: simRun({ limit: 8, windowMs: 1000, kind: 'first-hit', phaseMs: 0, latency: () => 30, steps: 90, stepMs: 70, want: 5 }),
  },
  {
    name: '429 gate: closes for all, reopens with one request',
    config: config({ seeds: { minute: 5 } }),
    async run(d) {
      const a = await d.reserve(5, T0);
      await d.settle(a.tickets[0], T0 + 5, { snapshot: snap({ limit: 5, remaining: 4 }) });
      await d.settle(a.tickets[1], T0 + 6, { status: 429, snapshot: snap({ limit: 5, remaining: 0 }, undefined, { retryAfterMs: 300, type: 'minute' }), jitterMs: 7.25 });
      await d.reserve(2, T0 + 7);
      await d.view(T0 + 8);
      await d.settle(a.tickets[2], T0 + 9, { snapshot: snap({ limit: 5, remaining: 3 }) });
      await d.settle(a.tickets[3], T0 + 200, { snapshot: snap({ limit: 5, remaining: 3 }) });
      await d.settle(a.tickets[4], T0 + 201, { snapshot: NO_HEADERS });
      await d.reserve(2, T0 + 320);
      const b = await d.reserve(3, T0 + 400);
      await d.view(T0 + 400);
      for (const t of b.tickets) await d.settle(t, T0 + 420, { snapshot: snap({ limit: 5, remaining: 4 }) });
      const c = await d.reserve(5, T0 + 430);
      await d.view(T0 + 430);
      for (const t of c.tickets) await d.settle(t, T0 + 440, { snapshot: snap({ limit: 5, remaining: 3 }) });
      await d.reserve(5, T0 + 450);
    },
  },
  {
    name: '429 without Retry-After: the fallback and jitter decide the gate',
    config: config({ seeds: { minute: 3 } }),
    async run(d) {
      const a = await d.reserve(3, T0);
      await d.settle(a.tickets[0], T0 + 3, { status: 429, snapshot: undefined, fallbackGateMs: 1234.5678, jitterMs: 0.125 });
      await d.settle(a.tickets[1], T0 + 4, { status: 429, snapshot: NO_HEADERS, fallbackGateMs: 50, jitterMs: 0 });
      await d.reserve(1, T0 + 100);
      await d.reserve(1, T0 + 1240);
      await d.settle(a.tickets[2], T0 + 1241, { status: 503, snapshot: undefined });
      await d.view(T0 + 1250);
    },
  },
  {
    name: 'fixed window + 429 with Retry-After tightens the predicted reset',
    config: config(),
    run: simRun({ limit: 6, windowMs: 1000, kind: 'fixed', phaseMs: 120, latency: () => 24, steps: 80, stepMs: 45, want: 6, script: { step: 30, statuses: [429] } }),
  },
  {
    name: 'daily park with a known reset, then unpark',
    config: config({ seeds: { minute: 10, daily: 4 } }),
    async run(d) {
      const a = await d.reserve(3, T0);
      for (const [i, t] of a.tickets.entries()) await d.settle(t, T0 + 10 + i, { snapshot: snap({ limit: 10, remaining: 9 - i }, { limit: 4, remaining: 3 - i }) });
      const b = await d.reserve(3, T0 + 20);
      await d.settle(b.tickets[0], T0 + 30, { status: 429, snapshot: snap({ limit: 10, remaining: 6 }, { limit: 4, remaining: 0 }, { type: 'daily', retryAfterMs: 5000 }), jitterMs: 3 });
      await d.reserve(1, T0 + 40);
      await d.view(T0 + 41);
      await d.reserve(1, T0 + 5040);
      const c = await d.reserve(2, T0 + 5100);
      for (const t of c.tickets) await d.settle(t, T0 + 5200, { snapshot: snap({ limit: 10, remaining: 9 }, { limit: 4, remaining: 3 }) });
      await d.view(T0 + 5300);
    },
  },
  {
    name: 'daily exhausted with an unknown reset: one probe learns it',
    config: config({ seeds: { minute: 20 } }),
    async run(d) {
      const a = await d.reserve(2, T0);
      await d.settle(a.tickets[0], T0 + 5, { snapshot: snap({ limit: 20, remaining: 19 }, { limit: 2, remaining: 1 }) });
      await d.settle(a.tickets[1], T0 + 6, { snapshot: snap({ limit: 20, remaining: 18 }, { limit: 2, remaining: 0 }) });
      const probe = await d.reserve(3, T0 + 10);
      await d.reserve(3, T0 + 11);
      await d.settle(probe.tickets[0], T0 + 20, { status: 429, snapshot: snap({ limit: 20, remaining: 17 }, { limit: 2, remaining: 0 }, { retryAfterMs: 8000 }) });
      await d.reserve(1, T0 + 30);
      await d.view(T0 + 30);
      await d.reserve(1, T0 + 8100);
      await d.view(T0 + 8100);
    },
  },
  {
    name: 'daily exhausted after the last answer: parked where the reset is known',
    config: config({ seeds: { minute: 20, daily: 3 } }),
    async run(d) {
      const a = await d.reserve(3, T0);
      await d.settle(a.tickets[0], T0 + 5, { snapshot: snap({ limit: 20, remaining: 19 }, { limit: 3, remaining: 2 }) });
      await d.settle(a.tickets[1], T0 + 6, { snapshot: snap({ limit: 20, remaining: 18 }, { limit: 3, remaining: 1 }) });
      await d.settle(a.tickets[2], T0 + 7, { snapshot: snap({ limit: 20, remaining: 17 }, { limit: 3, remaining: 0 }) });
      await d.reserve(1, T0 + 8);
      await d.view(T0 + 9);
    },
  },
  {
    name: 'daily exhausted at reserve time with a known reset: parks there',
    config: config({ seeds: { minute: 20, daily: 5 } }),
    async run(d) {
      const a = await d.reserve(1, T0);
      await d.settle(a.tickets[0], T0 + 5, { status: 429, snapshot: snap({ limit: 20, remaining: 19 }, { limit: 5, remaining: 0 }, { type: 'daily', retryAfterMs: 1000 }) });
      const b = await d.reserve(2, T0 + 1020);
      const [first, second] = b.tickets;
      // The day turns out exhausted while the other request is still out: no park yet.
      if (first) await d.settle(first, T0 + 1030, { snapshot: snap({ limit: 20, remaining: 18 }, { limit: 5, remaining: 0 }) });
      // That one never left: no settle-time park check, so the next reserve parks.
      if (second) await d.settle(second, T0 + 1036, { sent: false, status: undefined });
      await d.reserve(2, T0 + 1040);
      await d.view(T0 + 1041);
      await d.reserve(1, T0 + 60_000);
    },
  },
  {
    name: 'requests said not to count daily, shown counted there; a reservation that keeps daily units',
    config: config({ seeds: { minute: 50 } }),
    async run(d) {
      const a = await d.reserve(1, T0);
      await d.settle(a.tickets[0], T0 + 10, { snapshot: snap({ limit: 50, remaining: 49 }, { limit: 10, remaining: 8 }) });
      // A poll said not to count daily; the server's daily count went down all the same (8 -> 7).
      const poll = await d.reserve(1, T0 + 20, 0, undefined, { countsDaily: false });
      await d.settle(poll.tickets[0], T0 + 30, { snapshot: snap({ limit: 50, remaining: 48 }, { limit: 10, remaining: 7 }) });
      // From now on such requests count daily; a submission keeping 5 units gets 2 of the 7.
      const polls = await d.reserve(2, T0 + 40, 0, undefined, { countsDaily: false });
      const subs = await d.reserve(4, T0 + 41, 0, undefined, { keepDaily: 2 });
      await d.reserve(1, T0 + 42, 0, undefined, { keepDaily: 2 });
      for (const t of [...polls.tickets, ...subs.tickets]) await d.settle(t, T0 + 50, { snapshot: snap({ limit: 50, remaining: 40 }, { limit: 10, remaining: 2 }) });
      await d.reserve(1, T0 + 60, 0, undefined, { keepDaily: 2 });
      await d.reserve(2, T0 + 61, 0, undefined, { countsDaily: false });
      await d.view(T0 + 62);
    },
  },
  {
    name: 'high limit: a long answer log',
    config: config(),
    run: simRun({ limit: 150, windowMs: 1000, kind: 'fixed', phaseMs: 600, latency: (i) => 4 + (i % 7), steps: 90, stepMs: 25, want: 30 }),
  },
  {
    name: 'daily remaining jumps back up on a fresh answer: the day reset',
    config: config({ seeds: { minute: 50 } }),
    async run(d) {
      const a = await d.reserve(1, T0);
      for (const t of a.tickets) await d.settle(t, T0 + 10, { snapshot: snap({ limit: 50, remaining: 49 }, { limit: 40, remaining: 10 }) });
      const b = await d.reserve(2, T0 + 20);
      for (const t of b.tickets) await d.settle(t, T0 + 30, { snapshot: snap({ limit: 50, remaining: 48 }, { limit: 40, remaining: 39 }) });
      await d.view(T0 + 31);
      await d.reserve(3, T0 + 40);
    },
  },
  {
    name: 'daily window reset seen as a jump',
    config: config(),
    run: simRun({ limit: 30, windowMs: 1000, kind: 'fixed', phaseMs: 0, latency: () => 10, steps: 120, stepMs: 100, want: 3, daily: { limit: 40, dayMs: 5000 } }),
  },
  {
    name: 'lease give-back: units that never left come back',
    config: config({ seeds: { minute: 4 } }),
    async run(d) {
      const a = await d.reserve(4, T0);
      await d.settle(a.tickets[3], T0 + 1, { sent: false, status: undefined });
      await d.settle(a.tickets[2], T0 + 1, { sent: false, status: undefined });
      await d.reserve(4, T0 + 2);
      await d.settle(a.tickets[0], T0 + 10, { snapshot: snap({ limit: 4, remaining: 3 }) });
      // A snapshot came in since: this give-back must not lower `uncounted` again.
      await d.settle(a.tickets[1], T0 + 11, { sent: false, status: undefined });
      await d.view(T0 + 12);
      await d.reserve(4, T0 + 12);
      await d.view(T0 + 13);
    },
  },
  {
    name: 'limit changes: lowered by any answer, raised only by a fresh one',
    config: config({ seeds: { minute: 10 } }),
    async run(d) {
      const a = await d.reserve(6, T0);
      await d.settle(a.tickets[0], T0 + 5, { snapshot: snap({ limit: 10, remaining: 9 }) });
      await d.settle(a.tickets[1], T0 + 6, { snapshot: snap({ limit: 6, remaining: 4 }) });
      await d.settle(a.tickets[2], T0 + 7, { snapshot: snap({ limit: 20, remaining: 15 }) });
      await d.view(T0 + 8);
      const b = await d.reserve(10, T0 + 9);
      await d.settle(b.tickets[0], T0 + 15, { snapshot: snap({ limit: 20, remaining: 14 }) });
      await d.view(T0 + 16);
      await d.settle(a.tickets[3], T0 + 17, { snapshot: snap({ limit: 20, remaining: 13 }, { limit: 100, remaining: 90 }) });
      await d.settle(a.tickets[4], T0 + 18, { snapshot: snap({ limit: 1 }, { limit: 50 }) });
      await d.reserve(10, T0 + 19);
      await d.view(T0 + 20);
    },
  },
  {
    name: 'limit lowered on a fixed-window server mid-run',
    config: config(),
    run: simRun({ limit: 20, windowMs: 1000, kind: 'fixed', phaseMs: 500, latency: (i) => 10 + (i % 5) * 6, steps: 100, stepMs: 40, want: 8, limitAt: { step: 50, limit: 9 } }),
  },
  {
    name: 'missing headers: uncounted stays until one request refreshes it',
    config: config({ seeds: { minute: 6 } }),
    async run(d) {
      const a = await d.reserve(6, T0);
      for (const t of a.tickets) await d.settle(t, T0 + 10, { snapshot: NO_HEADERS });
      await d.view(T0 + 11);
      const b = await d.reserve(3, T0 + 12);
      await d.settle(b.tickets[0], T0 + 20, { snapshot: snap({ limit: 6, remaining: 5 }) });
      await d.reserve(6, T0 + 21);
      await d.view(T0 + 21);
    },
  },
  {
    name: 'missing headers on a fixed-window server, every third answer',
    config: config(),
    run: simRun({ limit: 15, windowMs: 1000, kind: 'fixed', phaseMs: 250, latency: () => 18, steps: 100, stepMs: 40, want: 5, dropHeadersEvery: 3 }),
  },
  {
    name: 'header-less answers after a time raise are counted; after a gate, the probe\'s are not',
    config: config(),
    async run(d) {
      const a = await d.reserve(1, T0);
      await d.settle(a.tickets[0], T0 + 1, { snapshot: snap({ limit: 2, remaining: 1 }) });
      // (the first-window probe holds one unit: the second request goes at its time)
      const b = await d.reserve(1, T0 + 500);
      await d.settle(b.tickets[0], T0 + 501, { snapshot: snap({ limit: 2, remaining: 0 }) });
      const c = await d.reserve(1, T0 + 1003);
      await d.settle(c.tickets[0], T0 + 1004, { snapshot: NO_HEADERS });
      await d.view(T0 + 1004);
      const e = await d.reserve(1, T0 + 1503);
      await d.settle(e.tickets[0], T0 + 1504, { snapshot: NO_HEADERS });
      await d.reserve(1, T0 + 1504);
      await d.view(T0 + 1504);
      // a 429 gate; the probe after it answers without headers, so one more may read the numbers
      const f = await d.reserve(1, T0 + 2600);
      await d.settle(f.tickets[0], T0 + 2601, { status: 429, snapshot: snap({ limit: 2, remaining: 0 }, undefined, { retryAfterMs: 300 }) });
      const g = await d.reserve(3, T0 + 2902);
      await d.settle(g.tickets[0], T0 + 2903, { snapshot: NO_HEADERS });
      await d.reserve(3, T0 + 2903);
      await d.view(T0 + 2903);
    },
  },
  {
    name: 'a reset hidden by header-less answers counted since the previous snapshot',
    config: config(),
    async run(d) {
      const a = await d.reserve(1, T0);
      await d.settle(a.tickets[0], T0 + 1, { snapshot: snap({ limit: 5, remaining: 4 }) });
      const late = await d.reserve(3, T0 + 900);
      for (const t of late.tickets) await d.settle(t, T0 + 905, { snapshot: NO_HEADERS });
      const next = await d.reserve(2, T0 + 1003);
      // the one processed second answers first: lower than before, yet a reset
      await d.settle(next.tickets[1], T0 + 1004, { snapshot: snap({ limit: 5, remaining: 3 }) });
      await d.settle(next.tickets[0], T0 + 1005, { snapshot: snap({ limit: 5, remaining: 4 }) });
      await d.view(T0 + 1950);
      await d.reserve(5, T0 + 1950);
    },
  },
  {
    name: 'limit raised on a fixed-window server once its phase is known (the reset seen with the change)',
    config: config(),
    run: simRun({ limit: 8, windowMs: 1000, kind: 'fixed', phaseMs: 300, latency: (i) => 6 + (i % 3) * 4, steps: 120, stepMs: 40, want: 6, limitAt: { step: 80, limit: 14 } }),
  },
  {
    name: 'a fixed grid over 20 windows: scouts show the grid, then the bracket keeps its upper side',
    config: config({ minuteMs: 500 }),
    run: simRun({ limit: 10, windowMs: 500, kind: 'fixed', phaseMs: 130, latency: (i) => 3 + (i % 4), steps: 1000, stepMs: 10, want: 12 }),
  },
  {
    name: 'first-hit windows over 20 windows: the bracket follows the read that starts each window',
    config: config({ minuteMs: 500 }),
    run: simRun({ limit: 10, windowMs: 500, kind: 'first-hit', phaseMs: 0, latency: (i) => 3 + (i % 4), steps: 1000, stepMs: 10, want: 12 }),
  },
  {
    name: 'stated resets in whole seconds (rounded up) on a fixed grid',
    config: config({ minuteMs: 2000 }),
    run: simRun({ limit: 10, windowMs: 2000, kind: 'fixed', phaseMs: 700, latency: (i) => 3 + (i % 4), steps: 1200, stepMs: 10, want: 12, statesReset: 'seconds' }),
  },
  {
    name: 'stated resets to the millisecond on first-hit windows',
    config: config({ minuteMs: 2000 }),
    run: simRun({ limit: 10, windowMs: 2000, kind: 'first-hit', phaseMs: 0, latency: (i) => 3 + (i % 4), steps: 1200, stepMs: 10, want: 12, statesReset: 'ms' }),
  },
  {
    // The first window opens a millisecond or so after a whole second: its reset, rounded up, is stated a second late.
    name: 'stated resets as epoch seconds (rounded up) on first-hit windows of 1 s, from a whole second',
    config: config({ minuteMs: 1000 }),
    run: simRun({ limit: 10, windowMs: 1000, kind: 'first-hit', phaseMs: 0, latency: (i) => 2 + (i % 3), steps: 1200, stepMs: 10, want: 12, statesReset: 'epoch-seconds', start: EPOCH_T0 }),
  },
  {
    name: 'header-less answers to the probes after a gate: they stop at the limit and stay uncounted a window',
    config: config(),
    async run(d) {
      const a = await d.reserve(1, T0);
      await d.settle(a.tickets[0], T0 + 1, { snapshot: snap({ limit: 3, remaining: 2 }) });
      const b = await d.reserve(1, T0 + 5);
      await d.settle(b.tickets[0], T0 + 6, { status: 429, snapshot: snap({ limit: 3, remaining: 0 }, undefined, { retryAfterMs: 100 }), jitterMs: 0 });
      // the gate reopens: one probe, then one refresh per answer without a count, up to the limit
      for (let k = 0; k < 4; k++) {
        const p = await d.reserve(1, T0 + 200 + 10 * k);
        for (const t of p.tickets) await d.settle(t, T0 + 201 + 10 * k, { snapshot: NO_HEADERS });
      }
      await d.view(T0 + 1000);
      await d.reserve(2, T0 + 1150);
      await d.view(T0 + 1300);
      await d.reserve(2, T0 + 1300);
    },
  },
  {
    name: 'a fixed window shared with a client we do not see: a refusal before the predicted reset stops the held units',
    config: config({ minuteMs: 500 }),
    run: simRun({ limit: 10, windowMs: 500, kind: 'fixed', phaseMs: 130, latency: () => 6, steps: 600, stepMs: 10, want: 4, otherEvery: 7 }),
  },
  {
    name: 'time raises: answers expire after a window, stale snapshots after their window',
    config: config({ seeds: { minute: 5 } }),
    async run(d) {
      const a = await d.reserve(5, T0);
      for (const [i, t] of a.tickets.entries()) await d.settle(t, T0 + 100 * (i + 1), { snapshot: snap({ limit: 5, remaining: 4 - i }) });
      await d.reserve(1, T0 + 600);
      await d.view(T0 + 1101);
      await d.view(T0 + 1102);
      await d.reserve(1, T0 + 1250);
      await d.view(T0 + 1350);
      await d.reserve(5, T0 + 2600);
      await d.view(T0 + 2600);
    },
  },
  {
    name: 'fractional times and margins survive the trip',
    config: config({ minuteMs: 999.5, marginMs: 1.9990000000000001, seeds: { minute: 3 } }),
    async run(d) {
      const a = await d.reserve(3, T0 + 0.1);
      await d.settle(a.tickets[0], T0 + 3.3, { snapshot: snap({ limit: 3, remaining: 2 }) });
      await d.settle(a.tickets[1], T0 + 7.7, { status: 429, snapshot: snap({ limit: 3, remaining: 0 }, undefined, { retryAfterMs: 33.3 }), jitterMs: 0.1 + 0.2 });
      await d.reserve(1, T0 + 30);
      await d.reserve(1, T0 + 41.40000000000001);
      await d.view(T0 + 1e3 / 3);
    },
  },
];

// ---- random sequences ----------------------------------------------------------

export type RandomOp =
  | { kind: 'reserve'; dt: number; want: number; backlog: number | undefined; lane: Lane | undefined }
  | { kind: 'view'; dt: number }
  | {
      kind: 'settle';
      dt: number;
      pick: number;
      status: 200 | 429 | 500 | 'none' | 'not-sent';
      headers: 'model' | 'random' | 'none';
      limit: number;
      remaining: number;
      dailyLimit: number | undefined;
      dailyRemaining: number | undefined;
      type: 'minute' | 'daily' | undefined;
      retryAfterMs: number | undefined;
      jitterMs: number;
    };

export const randomOpArb: fc.Arbitrary<RandomOp> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('reserve' as const),
      dt: fc.integer({ min: 0, max: 400 }),
      want: fc.integer({ min: 0, max: 6 }),
      backlog: fc.option(fc.integer({ min: 0, max: 8 }), { nil: undefined, freq: 2 }),
      lane: fc.constant(undefined),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('view' as const), dt: fc.integer({ min: 0, max: 1500 }) }) },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('settle' as const),
      dt: fc.integer({ min: 0, max: 120 }),
      pick: fc.nat(),
      status: fc.constantFrom(200, 200, 200, 200, 429, 500, 'none', 'not-sent') as fc.Arbitrary<200 | 429 | 500 | 'none' | 'not-sent'>,
      headers: fc.constantFrom('model', 'model', 'random', 'none') as fc.Arbitrary<'model' | 'random' | 'none'>,
      limit: fc.integer({ min: 0, max: 12 }),
      remaining: fc.integer({ min: 0, max: 12 }),
      dailyLimit: fc.option(fc.integer({ min: 0, max: 40 }), { nil: undefined }),
      dailyRemaining: fc.option(fc.integer({ min: 0, max: 40 }), { nil: undefined }),
      type: fc.option(fc.constantFrom('minute', 'daily') as fc.Arbitrary<'minute' | 'daily'>, { nil: undefined }),
      retryAfterMs: fc.option(fc.double({ min: 0, max: 3000, noNaN: true }), { nil: undefined }),
      jitterMs: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 50, noNaN: true })),
    }),
  },
);

/**
 * `randomOpArb` plus reservations in the other lanes: requests the daily
 * window is said not to count, and ones that keep daily units for others.
 * (A separate arbitrary, so that the seeded golden sequences stay as they were.)
 */
export const randomLaneOpArb: fc.Arbitrary<RandomOp> = fc.oneof(
  { weight: 9, arbitrary: randomOpArb },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('reserve' as const),
      dt: fc.integer({ min: 0, max: 400 }),
      want: fc.integer({ min: 0, max: 6 }),
      backlog: fc.option(fc.integer({ min: 0, max: 8 }), { nil: undefined, freq: 2 }),
      lane: fc.oneof(
        fc.constant<Lane | undefined>({ countsDaily: false }),
        fc.record({ countsDaily: fc.constant(true), keepDaily: fc.integer({ min: 0, max: 10 }) }),
      ),
    }),
  },
);

export const randomConfigArb: fc.Arbitrary<BudgetConfig> = fc.record({
  minuteMs: fc.constantFrom(1000, 750),
  dayMs: fc.constantFrom(20_000, 6_000),
  seeds: fc.record({
    minute: fc.option(fc.integer({ min: 0, max: 10 }), { nil: undefined }),
    daily: fc.option(fc.integer({ min: 0, max: 30 }), { nil: undefined }),
  }),
  marginMs: fc.constantFrom(2, 0.5, 10),
  leaseMs: fc.constant(1e9),
});

/**
 * Replays random operations. Settles pick one of the tickets in flight;
 * "model" headers come from a fixed window of `limit` requests (so jumps and
 * resets happen), "random" ones are arbitrary numbers.
 */
export function randomScenario(ops: RandomOp[], modelLimit = 8, windowMs = 1000): Scenario {
  return async (d) => {
    let now = T0;
    const inFlight: Ticket[] = [];
    let windowStart = T0;
    let used = 0;
    for (const op of ops) {
      now += op.dt;
      if (op.kind === 'reserve') {
        const { tickets } = await d.reserve(op.want, now, op.backlog, undefined, op.lane);
        inFlight.push(...tickets);
      } else if (op.kind === 'view') {
        await d.view(now);
      } else {
        if (inFlight.length === 0) continue;
        const [ticket] = inFlight.splice(op.pick % inFlight.length, 1) as [Ticket];
        if (op.status === 'not-sent') {
          await d.settle(ticket, now, { sent: false, status: undefined });
          continue;
        }
        const status = op.status === 'none' ? undefined : op.status;
        let snapshot: RateLimitSnapshot | undefined;
        if (op.headers === 'model') {
          while (now >= windowStart + windowMs) {
            windowStart += windowMs;
            used = 0;
          }
          if (status === 200 || status === 500) used = Math.min(modelLimit, used + 1);
          snapshot = snap({ limit: modelLimit, remaining: modelLimit - used });
          if (status === 429) snapshot.retryAfterMs = windowStart + windowMs - now;
        } else if (op.headers === 'random') {
          snapshot = snap(
            { limit: op.limit, remaining: Math.min(op.remaining, op.limit) },
            op.dailyLimit === undefined ? undefined : { limit: op.dailyLimit, remaining: Math.min(op.dailyRemaining ?? op.dailyLimit, op.dailyLimit) },
            { ...(op.type ? { type: op.type } : {}), ...(op.retryAfterMs !== undefined ? { retryAfterMs: op.retryAfterMs } : {}) },
          );
        } else {
          snapshot = status === undefined ? undefined : NO_HEADERS;
        }
        await d.settle(ticket, now, { status, snapshot, jitterMs: op.jitterMs, fallbackGateMs: 300 });
      }
    }
    // Let time pass: the raises and reopenings at the end must agree too.
    await d.view(now + 5000);
    await d.reserve(3, now + 5001);
  };
}

/**
 * A driver that spreads `d`'s reserves and views over `scopes` in turn (the
 * i-th reserve or view goes to `scopes[picks[i % picks.length] % scopes.length]`;
 * settles follow their ticket's scope): any scenario, on several budgets at once.
 */
export function spreadOverScopes(d: Driver, scopes: readonly (string | undefined)[], picks: readonly number[]): Driver {
  let i = 0;
  const next = (): string | undefined => scopes[(picks[i++ % picks.length] ?? 0) % scopes.length];
  return {
    reserve: (want, at, backlog, _scope, lane) => d.reserve(want, at, backlog, next(), lane),
    settle: (ticket, at, outcome) => d.settle(ticket, at, outcome),
    view: (at) => d.view(at, next()),
    note: (value) => d.note(value),
  };
}
