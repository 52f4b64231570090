import type { Clock, Random } from '../internal/clock.js';
import type { Logger } from '../internal/logger.js';
import type { Store } from '../store/types.js';

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
   * @default 500
   */
  baseDelayMs?: number;
  /**
   * Cap of one backoff wait.
   * @default 30_000
   */
  maxDelayMs?: number;
  /**
   * Cap on the time a task's retries may cost it: its attempts' time on the
   * wire plus its backoff waits. Time queued for budget, behind the 429 gate
   * or in a daily park does not count.
   * @default 300_000
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
   * Window lengths. Compress them in tests and benchmarks (e.g. a 2 s "minute")
   * together with the fake server's.
   * @default { minuteMs: 60_000, dayMs: 86_400_000 }
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
   * @default minuteMs + 30_000
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
}

export interface ResolvedOptions {
  minuteMs: number;
  dayMs: number;
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

/** The one defaults object. */
export const defaults = {
  minuteMs: 60_000,
  dayMs: 86_400_000,
  maxConcurrent: 64,
  smooth: false,
  onDailyLimit: 'wait',
  retry: { maxAttempts: 5, baseDelayMs: 500, maxDelayMs: 30_000, maxRetryTimeMs: 300_000 },
  gateJitter: 0.05,
  timeoutMs: 0,
} as const;

const KNOWN = new Set([
  'limits',
  'windows',
  'maxConcurrent',
  'smooth',
  'onDailyLimit',
  'retry',
  'gateJitter',
  'timeoutMs',
  'marginMs',
  'leaseMs',
  'store',
  'logger',
  'clock',
  'random',
]);

function describe(value: unknown): string {
  let shown: string;
  try {
    shown = typeof value === 'string' ? JSON.stringify(value) : String(value);
  } catch {
    shown = Object.prototype.toString.call(value);
  }
  return `\`${shown}\` (${value === null ? 'null' : typeof value})`;
}

/** Throws the one message shape for a bad option. */
export function invalid(name: string, expected: string, value: unknown): never {
  throw new TypeError(`Expected \`${name}\` to be ${expected}, got ${describe(value)}`);
}

export function checkNumber(
  name: string,
  value: unknown,
  { min = 0, integer = false, allowInfinity = false, exclusiveMin = false } = {},
): number {
  const ok =
    typeof value === 'number' &&
    !Number.isNaN(value) &&
    (allowInfinity || Number.isFinite(value)) &&
    (exclusiveMin ? value > min : value >= min) &&
    (!integer || Number.isInteger(value) || (allowInfinity && value === Infinity));
  if (!ok) {
    const kind = integer ? 'an integer' : 'a number';
    invalid(name, `${kind} ${exclusiveMin ? '>' : '>='} ${min}${allowInfinity ? ' (or Infinity)' : ''}`, value);
  }
  return value as number;
}

function checkObject(name: string, value: unknown, keys: readonly string[]): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) invalid(name, 'an object', value);
  for (const key of Object.keys(value)) {
    if (!keys.includes(key)) {
      throw new TypeError(`Unknown option \`${name}.${key}\`; expected one of ${keys.map((k) => `\`${k}\``).join(', ')}`);
    }
  }
  return value as Record<string, unknown>;
}

/** Validates eagerly and fills in defaults. Unknown keys throw: a typo must not vanish. */
export function resolveOptions(options: SchedulerOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) invalid('options', 'an object', options);
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) throw new TypeError(`Unknown option \`${key}\`; expected one of ${[...KNOWN].map((k) => `\`${k}\``).join(', ')}`);
  }
  const windows = options.windows === undefined ? {} : checkObject('windows', options.windows, ['minuteMs', 'dayMs']);
  const minuteMs =
    windows.minuteMs === undefined ? defaults.minuteMs : checkNumber('windows.minuteMs', windows.minuteMs, { min: 0, exclusiveMin: true });
  const dayMs = windows.dayMs === undefined ? defaults.dayMs : checkNumber('windows.dayMs', windows.dayMs, { min: 0, exclusiveMin: true });
  if (dayMs < minuteMs) invalid('windows.dayMs', `at least windows.minuteMs (${minuteMs})`, dayMs);

  const limits = options.limits === undefined ? {} : checkObject('limits', options.limits, ['minute', 'daily']);
  const seedMinute = limits.minute === undefined ? undefined : checkNumber('limits.minute', limits.minute, { min: 1, integer: true });
  const seedDaily = limits.daily === undefined ? undefined : checkNumber('limits.daily', limits.daily, { min: 1, integer: true });

  const retry = options.retry === undefined ? {} : checkObject('retry', options.retry, ['maxAttempts', 'baseDelayMs', 'maxDelayMs', 'maxRetryTimeMs']);
  const resolvedRetry = {
    maxAttempts: retry.maxAttempts === undefined ? defaults.retry.maxAttempts : checkNumber('retry.maxAttempts', retry.maxAttempts, { min: 1, integer: true }),
    baseDelayMs: retry.baseDelayMs === undefined ? defaults.retry.baseDelayMs : checkNumber('retry.baseDelayMs', retry.baseDelayMs),
    maxDelayMs: retry.maxDelayMs === undefined ? defaults.retry.maxDelayMs : checkNumber('retry.maxDelayMs', retry.maxDelayMs),
    maxRetryTimeMs:
      retry.maxRetryTimeMs === undefined
        ? defaults.retry.maxRetryTimeMs
        : checkNumber('retry.maxRetryTimeMs', retry.maxRetryTimeMs, { allowInfinity: true }),
  };

  const onDailyLimit = options.onDailyLimit ?? defaults.onDailyLimit;
  if (onDailyLimit !== 'wait' && onDailyLimit !== 'reject') invalid('onDailyLimit', "'wait' or 'reject'", onDailyLimit);
  if (options.smooth !== undefined && typeof options.smooth !== 'boolean') invalid('smooth', 'a boolean', options.smooth);
  if (options.store !== undefined) {
    const s = options.store as unknown as Record<string, unknown>;
    if (typeof s !== 'object' || s === null || typeof s.reserve !== 'function' || typeof s.settle !== 'function') {
      invalid('store', 'a Store (MemoryStore or RedisStore)', options.store);
    }
  }
  if (options.clock !== undefined) {
    const c = options.clock as unknown as Record<string, unknown>;
    if (typeof c !== 'object' || c === null || typeof c.now !== 'function' || typeof c.setTimeout !== 'function' || typeof c.clearTimeout !== 'function') {
      invalid('clock', 'an object with now(), setTimeout() and clearTimeout()', options.clock);
    }
  }
  if (options.random !== undefined && typeof options.random !== 'function') invalid('random', 'a function returning [0, 1)', options.random);
  if (options.logger !== undefined) {
    const l = options.logger as unknown as Record<string, unknown>;
    if (typeof l !== 'object' || l === null || typeof l.child !== 'function' || typeof l.debug !== 'function') {
      invalid('logger', 'a pino logger', options.logger);
    }
  }

  return {
    minuteMs,
    dayMs,
    seeds: { minute: seedMinute, daily: seedDaily },
    maxConcurrent:
      options.maxConcurrent === undefined
        ? defaults.maxConcurrent
        : checkNumber('maxConcurrent', options.maxConcurrent, { min: 1, integer: true, allowInfinity: true }),
    smooth: options.smooth ?? defaults.smooth,
    onDailyLimit,
    retry: resolvedRetry,
    gateJitter: options.gateJitter === undefined ? defaults.gateJitter : checkNumber('gateJitter', options.gateJitter),
    timeoutMs: options.timeoutMs === undefined ? defaults.timeoutMs : checkNumber('timeoutMs', options.timeoutMs),
    marginMs: options.marginMs === undefined ? Math.min(250, Math.max(1, minuteMs / 500)) : checkNumber('marginMs', options.marginMs),
    leaseMs: options.leaseMs === undefined ? minuteMs + 30_000 : checkNumber('leaseMs', options.leaseMs, { min: 0, exclusiveMin: true }),
  };
}

const SCHEDULE_KEYS = ['priority', 'signal', 'timeoutMs', 'idempotent'];

/** Validates per-task options. Unknown keys throw, as for the scheduler's options. */
export function checkScheduleOptions(options: ScheduleOptions): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) invalid('options', 'an object', options);
  for (const key of Object.keys(options)) {
    if (!SCHEDULE_KEYS.includes(key)) {
      throw new TypeError(`Unknown option \`${key}\`; expected one of ${SCHEDULE_KEYS.map((k) => `\`${k}\``).join(', ')}`);
    }
  }
  if (options.priority !== undefined && (typeof options.priority !== 'number' || !Number.isFinite(options.priority))) {
    invalid('priority', 'a finite number', options.priority);
  }
  if (options.timeoutMs !== undefined) checkNumber('timeoutMs', options.timeoutMs);
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) invalid('signal', 'an AbortSignal', options.signal);
  if (options.idempotent !== undefined && typeof options.idempotent !== 'boolean') invalid('idempotent', 'a boolean', options.idempotent);
}
