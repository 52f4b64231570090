import type { Clock, Random } from '../internal/clock.js';
import type { Logger } from '../internal/logger.js';
import {
  bool,
  fn,
  checkClock,
  checkLogger,
  checkNumber,
  checkRandom,
  hasMethods,
  invalid,
  keyList,
  num,
  object,
  oneOf,
  options as rootOptions,
  type Keys,
} from '../internal/validate.js';
import type { Store, WindowView } from '../store/types.js';
import { MAX_SCOPE_LENGTH } from '../store/scope.js';

/** Retry policy for transient failures (5xx, 408, resets, timeouts). */
export interface RetryOptions {
  /**
   * Most attempts per task, the first included.
   * @default 5
   */
  maxAttempts?: number;
  /**
   * Base of the exponential backoff: attempt n waits a random time in
   * `[0, min(maxDelayMs, baseDelayMs * 2^(n-1)))` (full jitter).
   * @default 500 × timeScale
   */
  baseDelayMs?: number;
  /**
   * Cap of one backoff wait.
   * @default 30_000 × timeScale
   */
  maxDelayMs?: number;
  /**
   * Cap on the time a task's retries may cost it: its attempts' time on the
   * wire plus its backoff waits. Time queued for budget, behind the 429 gate
   * or in a daily park does not count.
   * @default 300_000 × timeScale
   */
  maxRetryTimeMs?: number;
}

/** Options of {@link RateLimitScheduler}. Every one is optional. */
export interface SchedulerOptions {
  /**
   * Limits known in advance. They seed the budgets; the server's headers
   * override them as soon as they arrive. Without seeds or headers the
   * scheduler sends one request, reads its headers, and goes from there.
   * @example { minute: 300 }
   */
  limits?: { minute?: number; daily?: number };
  /**
   * The one time setting: the length of this process's millisecond in the
   * API's milliseconds. `1/30` makes a 2 s "minute" and scales every other
   * time default with it: the windows, the retry backoff, `marginMs`,
   * `leaseMs`, and the time defaults of a `ModelBeamClient` and a `RedisStore`
   * that use this scheduler (polling intervals, job retry delay, balance
   * checks, the store's view cache and polls). Options given explicitly are
   * taken as they are. Deadlines of real I/O (HTTP and Redis connect/command
   * timeouts, the webhook signature tolerance) do not scale: a loopback round
   * trip costs the same in compressed time. Against the fake server,
   * `server.clientOptions()` sets it for you.
   * @default 1
   * @example { timeScale: 1 / 30 } // a 2 s minute, a 48 min day
   */
  timeScale?: number;
  /**
   * Window lengths. Set `timeScale` instead to compress time in tests and
   * benchmarks; set these for an API whose windows are not a minute and a day.
   * @default { minuteMs: 60_000 × timeScale, dayMs: 86_400_000 × timeScale }
   */
  windows?: { minuteMs?: number; dayMs?: number };
  /**
   * Most requests in flight at once. The scheduler derives its concurrency
   * from the limit and the observed latency, and never exceeds this.
   * @default 64
   */
  maxConcurrent?: number;
  /**
   * Spread requests evenly (one every `minute / limit`) instead of spending
   * what remains of a window at once.
   * @default false
   */
  smooth?: boolean;
  /**
   * What to do with queued work when the daily quota runs out: `'wait'` parks
   * the queue until the reset; `'reject'` rejects queued tasks with a
   * `DailyQuotaExhaustedError` that says when it resets.
   * @default 'wait'
   */
  onDailyLimit?: 'wait' | 'reject';
  /** Retry policy for transient failures. */
  retry?: RetryOptions;
  /**
   * Extra wait after a 429's `Retry-After`, as a share of it, drawn at random
   * in `[0, share)`, so that released requests do not stampede. Never shortens
   * what the server said.
   * @default 0.05
   */
  gateJitter?: number;
  /**
   * Default per-attempt timeout for tasks, in ms (0: none).
   * @default 0
   */
  timeoutMs?: number;
  /**
   * Slack added to every predicted window reset and expiry.
   * @default minuteMs / 500, between 1 and 250 ms
   */
  marginMs?: number;
  /**
   * How long a shared store trusts a reservation of this process.
   * @default minuteMs + 30_000 × timeScale
   */
  leaseMs?: number;
  /**
   * Where budgets, reservations, the gate and the park live. Share one
   * `RedisStore` among processes to share one quota.
   * @default new MemoryStore()
   */
  store?: Store;
  /** A pino logger (or anything with its methods). Silent by default. */
  logger?: Logger;
  /** The time source. Inject a fake one in tests. */
  clock?: Clock;
  /** The random source for jitter, in [0, 1). */
  random?: Random;
}

/** Per-task options of `schedule`. */
export interface ScheduleOptions {
  /**
   * Higher runs first. Tasks of equal priority run in order.
   * @default 0
   */
  priority?: number;
  /** Aborting removes a queued task, or aborts the running one through its context signal. */
  signal?: AbortSignal;
  /** Per-attempt timeout in ms; overrides the scheduler's `timeoutMs`. */
  timeoutMs?: number;
  /**
   * Whether sending the request twice is harmless. Only idempotent tasks are
   * resent when the outcome of an attempt is unknown (the connection dropped
   * after the request was sent).
   * @default false
   */
  idempotent?: boolean;
  /**
   * Whether the request counts against the daily window. `false` for
   * requests the server does not count there (a job's status polls, on an API
   * whose daily quota counts submissions only): a spent day does not hold them
   * back, and they spend no daily budget. One refused by the daily window all
   * the same counts there from then on.
   * @default true
   */
  countsDaily?: boolean;
  /**
   * Daily units this request leaves for others: it waits (the daily park is
   * not involved, and tasks that do not count daily go on) while sending it
   * would leave fewer than this in the daily window. A function is asked
   * again each time the task is about to go, with the daily window of its
   * scope as the scheduler sees it then, so the number can follow the work in
   * flight (the ModelBeam client keeps units for the status polls of the jobs
   * it has submitted, where polls count daily).
   * @default 0
   */
  keepDaily?: number | ((day: WindowView) => number);
  /**
   * The budget scope the request draws from. Each scope is a budget of its
   * own: its own minute and daily windows, `Remaining`/`Limit`, phase, 429
   * gate and daily park, so that a server limiting each endpoint on its own
   * (one counter per route) has one scope per counter. A 429 in one scope
   * holds back that scope only. Requests without a scope share one budget
   * (`'default'`, which also takes `limits`' seeds; other scopes learn
   * theirs from the answers).
   * @default 'default'
   */
  scope?: string;
}

/** The time settings of a scheduler, as a client or a store built on it reads them (`scheduler.timing`). */
export interface SchedulerTiming {
  /** See `SchedulerOptions.timeScale`. */
  timeScale: number;
  minuteMs: number;
  dayMs: number;
}

export interface ResolvedOptions extends SchedulerTiming {
  seeds: { minute: number | undefined; daily: number | undefined };
  maxConcurrent: number;
  smooth: boolean;
  onDailyLimit: 'wait' | 'reject';
  retry: Required<RetryOptions>;
  gateJitter: number;
  timeoutMs: number;
  marginMs: number;
  leaseMs: number;
}

/** The one defaults object. Time values are at `timeScale` 1 (see `scaled`). */
export const defaults = {
  timeScale: 1,
  minuteMs: 60_000,
  dayMs: 86_400_000,
  maxConcurrent: 64,
  smooth: false,
  onDailyLimit: 'wait',
  retry: { maxAttempts: 5, baseDelayMs: 500, maxDelayMs: 30_000, maxRetryTimeMs: 300_000 },
  gateJitter: 0.05,
  timeoutMs: 0,
  /** The part of the default `leaseMs` beyond one minute window. */
  leaseExtraMs: 30_000,
} as const;

/** A time default (ms at `timeScale` 1) in this scheduler's time. */
export function scaled(ms: number, timeScale: number): number {
  return ms * timeScale;
}

const SCHEDULER_KEYS = keyList({
  limits: true,
  timeScale: true,
  windows: true,
  maxConcurrent: true,
  smooth: true,
  onDailyLimit: true,
  retry: true,
  gateJitter: true,
  timeoutMs: true,
  marginMs: true,
  leaseMs: true,
  store: true,
  logger: true,
  clock: true,
  random: true,
} satisfies Keys<SchedulerOptions>);
const WINDOW_KEYS = keyList({ minuteMs: true, dayMs: true } satisfies Keys<NonNullable<SchedulerOptions['windows']>>);
const LIMIT_KEYS = keyList({ minute: true, daily: true } satisfies Keys<NonNullable<SchedulerOptions['limits']>>);
const RETRY_KEYS = keyList({ maxAttempts: true, baseDelayMs: true, maxDelayMs: true, maxRetryTimeMs: true } satisfies Keys<RetryOptions>);
const SCHEDULE_KEYS = keyList({
  priority: true,
  signal: true,
  timeoutMs: true,
  idempotent: true,
  countsDaily: true,
  keepDaily: true,
  scope: true,
} satisfies Keys<ScheduleOptions>);

/** The scheduler's option names (a client given one of them at its top level says where it goes). */
export const SCHEDULER_OPTION_NAMES: readonly string[] = SCHEDULER_KEYS;

/** `timeScale` alone, checked: a client or store reads it before the scheduler is built. */
export function resolveTimeScale(value: unknown): number {
  return num('timeScale', value, defaults.timeScale, { min: 0, exclusiveMin: true });
}

/** Validates eagerly and fills in defaults. Unknown keys throw: a typo must not vanish. */
export function resolveOptions(options: SchedulerOptions): ResolvedOptions {
  const o = rootOptions(options, SCHEDULER_KEYS);
  const timeScale = resolveTimeScale(o.timeScale);
  const t = (ms: number): number => scaled(ms, timeScale);
  const gt0 = { min: 0, exclusiveMin: true };

  const windows = object('windows', o.windows, WINDOW_KEYS);
  const minuteMs = num('windows.minuteMs', windows.minuteMs, t(defaults.minuteMs), gt0);
  const dayMs = num('windows.dayMs', windows.dayMs, t(defaults.dayMs), gt0);
  if (dayMs < minuteMs) invalid('windows.dayMs', `at least windows.minuteMs (${minuteMs})`, dayMs);

  const limits = object('limits', o.limits, LIMIT_KEYS);
  const seedMinute = limits.minute === undefined ? undefined : checkNumber('limits.minute', limits.minute, { min: 1, integer: true });
  const seedDaily = limits.daily === undefined ? undefined : checkNumber('limits.daily', limits.daily, { min: 1, integer: true });

  const retry = object('retry', o.retry, RETRY_KEYS);
  const d = defaults.retry;
  const resolvedRetry = {
    maxAttempts: num('retry.maxAttempts', retry.maxAttempts, d.maxAttempts, { min: 1, integer: true }),
    baseDelayMs: num('retry.baseDelayMs', retry.baseDelayMs, t(d.baseDelayMs)),
    maxDelayMs: num('retry.maxDelayMs', retry.maxDelayMs, t(d.maxDelayMs)),
    maxRetryTimeMs: num('retry.maxRetryTimeMs', retry.maxRetryTimeMs, t(d.maxRetryTimeMs), { allowInfinity: true }),
  };

  const onDailyLimit = oneOf('onDailyLimit', o.onDailyLimit, defaults.onDailyLimit, ['wait', 'reject']);
  const smooth = bool('smooth', o.smooth, defaults.smooth);
  if (o.store !== undefined && (typeof o.store !== 'object' || !hasMethods(o.store, ['reserve', 'settle']))) {
    invalid('store', 'a Store (MemoryStore or RedisStore)', o.store);
  }
  checkClock(o.clock, undefined);
  checkRandom(o.random, undefined);
  checkLogger(o.logger, undefined);

  return {
    timeScale,
    minuteMs,
    dayMs,
    seeds: { minute: seedMinute, daily: seedDaily },
    maxConcurrent: num('maxConcurrent', o.maxConcurrent, defaults.maxConcurrent, { min: 1, integer: true, allowInfinity: true }),
    smooth,
    onDailyLimit,
    retry: resolvedRetry,
    gateJitter: num('gateJitter', o.gateJitter, defaults.gateJitter),
    timeoutMs: num('timeoutMs', o.timeoutMs, defaults.timeoutMs),
    marginMs: num('marginMs', o.marginMs, Math.min(250, Math.max(1, minuteMs / 500))),
    leaseMs: num('leaseMs', o.leaseMs, minuteMs + t(defaults.leaseExtraMs), gt0),
  };
}

/** Validates per-task options. Unknown keys throw, as for the scheduler's options. */
export function checkScheduleOptions(options: ScheduleOptions): void {
  const o = rootOptions(options, SCHEDULE_KEYS);
  if (o.priority !== undefined) checkNumber('priority', o.priority, { min: -Infinity });
  num('timeoutMs', o.timeoutMs, 0);
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) invalid('signal', 'an AbortSignal', o.signal);
  bool('idempotent', o.idempotent, false);
  bool('countsDaily', o.countsDaily, true);
  if (typeof o.keepDaily !== 'function') num('keepDaily', o.keepDaily, 0);
  if (o.scope !== undefined) checkScope('scope', o.scope);
}

/** A budget scope's name: a non-empty string of at most `MAX_SCOPE_LENGTH` characters. */
export function checkScope(name: string, value: unknown): string {
  if (typeof value !== 'string' || value === '' || value.length > MAX_SCOPE_LENGTH) {
    invalid(name, `a non-empty string of at most ${MAX_SCOPE_LENGTH} characters`, value);
  }
  return value;
}
