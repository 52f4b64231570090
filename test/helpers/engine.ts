/**
 * Small helpers shared by the engine tests: a scheduler on a ManualClock, a
 * scripted transport that records when each attempt started and ended, a
 * promise tracker, and an event recorder.
 */
import type { SchedulerEvents } from '../../src/engine/events.js';
import type { SchedulerOptions } from '../../src/engine/options.js';
import { RateLimitScheduler, type TaskContext } from '../../src/engine/scheduler.js';
import { ManualClock } from './manual-clock.js';

export const T0 = 1_700_000_000_000;

export interface Setup {
  clock: ManualClock;
  scheduler: RateLimitScheduler;
}

/** A scheduler on a fresh ManualClock with a fixed random source (0.5) unless given. */
export function setup(options: SchedulerOptions = {}, clock = new ManualClock(T0)): Setup {
  const scheduler = new RateLimitScheduler({ clock, random: () => 0.5, ...options });
  return { clock, scheduler };
}

/** A response-like value, as undici or fetch would resolve it. */
export interface Res {
  status: number;
  headers: Record<string, string>;
  body?: unknown;
}

export function res(status: number, headers: Record<string, string> = {}, body?: unknown): Res {
  return body === undefined ? { status, headers } : { status, headers, body };
}

/** Headers of a roomy budget, so tests about control flow are not throttled. */
export function roomy(remaining = 999, limit = 1000): Record<string, string> {
  return { 'x-ratelimit-limit': String(limit), 'x-ratelimit-remaining': String(remaining) };
}

/** An error shaped like a network failure (`code` as Node and undici set it). */
export function netError(code: string, message = code): Error {
  return Object.assign(new Error(message), { code });
}

export type Answer =
  | { status: number; headers?: Record<string, string>; body?: unknown; after?: number; throws?: boolean }
  | { error: unknown; after?: number };

export interface Call {
  id: number;
  attempt: number;
  start: number;
  end: number | undefined;
  outcome: string;
  signal: AbortSignal;
}

/**
 * A scripted transport. Each call takes the next answer from `answers` (a
 * list, consumed in order, then `fallback`), answers after `after` ms (default
 * `latencyMs`) on the clock, and records a START/END log.
 */
export class Script {
  readonly calls: Call[] = [];
  readonly answers: Answer[];
  /** Answers for one task id, consumed before `answers`. */
  readonly byId = new Map<number, Answer[]>();
  fallback: Answer;
  latencyMs: number;
  readonly #clock: ManualClock;

  constructor(clock: ManualClock, answers: Answer[] = [], { fallback = { status: 200, headers: roomy() } as Answer, latencyMs = 10 } = {}) {
    this.#clock = clock;
    this.answers = [...answers];
    this.fallback = fallback;
    this.latencyMs = latencyMs;
  }

  /** Plans the answers of one task, attempt by attempt. */
  plan(id: number, ...answers: Answer[]): this {
    this.byId.set(id, answers);
    return this;
  }

  /** Attempts in flight right now. */
  get open(): number {
    return this.calls.filter((c) => c.end === undefined).length;
  }

  /** Most attempts that were ever in flight at once. */
  maxOpen(): number {
    const edges: [number, number][] = [];
    for (const c of this.calls) {
      edges.push([c.start, 1]);
      edges.push([c.end ?? Infinity, -1]);
    }
    edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let open = 0;
    let best = 0;
    for (const [, d] of edges) {
      open += d;
      best = Math.max(best, open);
    }
    return best;
  }

  task = (ctx: TaskContext): Promise<Res> => {
    const answer = this.byId.get(ctx.id)?.shift() ?? this.answers.shift() ?? this.fallback;
    const call: Call = { id: ctx.id, attempt: ctx.attempt, start: this.#clock.now(), end: undefined, outcome: '', signal: ctx.signal };
    this.calls.push(call);
    return new Promise<Res>((resolve, reject) => {
      const handle = this.#clock.setTimeout(() => {
        call.end = this.#clock.now();
        if ('error' in answer) {
          call.outcome = 'error';
          reject(answer.error);
          return;
        }
        call.outcome = String(answer.status);
        const value = res(answer.status, answer.headers ?? {}, answer.body);
        if (answer.throws) reject(Object.assign(new Error(`HTTP ${answer.status}`), { response: value }));
        else resolve(value);
      }, answer.after ?? this.latencyMs);
      ctx.signal.addEventListener(
        'abort',
        () => {
          if (call.end !== undefined) return;
          this.#clock.clearTimeout(handle);
          call.end = this.#clock.now();
          call.outcome = 'aborted';
          reject(ctx.signal.reason);
        },
        { once: true },
      );
    });
  };
}

export interface Tracked<T> {
  state: 'pending' | 'fulfilled' | 'rejected';
  value: T | undefined;
  error: unknown;
  promise: Promise<T>;
}

/** Watches a promise without letting a rejection go unhandled. */
export function track<T>(promise: Promise<T>): Tracked<T> {
  const t: Tracked<T> = { state: 'pending', value: undefined, error: undefined, promise };
  promise.then(
    (value) => {
      t.state = 'fulfilled';
      t.value = value;
    },
    (error: unknown) => {
      t.state = 'rejected';
      t.error = error;
    },
  );
  return t;
}

export type Recorded = { [K in keyof SchedulerEvents]: { name: K; at: number; event: SchedulerEvents[K] } }[keyof SchedulerEvents];

/** Records every event of the given names, in order, with the clock time. */
export function record(scheduler: RateLimitScheduler, clock: { now(): number }, names: (keyof SchedulerEvents)[]): Recorded[] {
  const out: Recorded[] = [];
  for (const name of names) {
    const listener = (event: unknown): void => void out.push({ name, at: clock.now(), event } as Recorded);
    scheduler.on(name, listener as never);
  }
  return out;
}

/** Events of one name, payloads only. */
export function of<K extends keyof SchedulerEvents>(log: Recorded[], name: K): SchedulerEvents[K][] {
  return log.filter((r) => r.name === name).map((r) => r.event as SchedulerEvents[K]);
}

/** A seeded PRNG (mulberry32), for reproducible random sources in tests. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
