/**
 * The three ways of draining jobs into a rate-limited HTTP API that the
 * benchmarks compare, each configured the way its users usually do it:
 *
 * - `ours`: `RateLimitScheduler`, given nothing but the window lengths. It
 *   learns the limits, the remaining budget and the window phase from the
 *   responses' headers and handles 429s itself.
 * - `bottleneck`: Bottleneck 2.19.5 with a static reservoir that refreshes to
 *   the documented limit every window (`reservoir` + `reservoirRefreshAmount`
 *   + `reservoirRefreshInterval`), and the usual retry glue: the `failed`
 *   listener returns the 429's Retry-After as the retry delay. With a daily
 *   quota, a second limiter with a daily reservoir is chained in front
 *   (`daily.chain(minute)`, jobs scheduled on `daily`).
 * - `p-queue`: p-queue 9 with `intervalCap` = the documented limit and
 *   `interval` = the window, each task wrapped in p-retry that retries 429s
 *   after their Retry-After (slept in `onFailedAttempt`, `minTimeout: 0`).
 *   With a daily quota, a second queue (`intervalCap` = daily quota,
 *   `interval` = day) feeds the minute queue.
 *
 * Every contender sends each attempt through the same `send` function, which
 * records a trace line per HTTP request.
 */
import Bottleneck from 'bottleneck';
import PQueue from 'p-queue';
import pRetry from 'p-retry';
import type { Dispatcher } from 'undici';
import { RateLimitScheduler } from '../../src/engine/scheduler.js';

/** What a contender may know in advance. The static ones get the documented limits; ours only the window lengths. */
export interface ContenderSetup {
  windowMs: number;
  /** The server's daily window length, when it has a daily quota. */
  dayMs: number | undefined;
  /** The documented minute limit. */
  limit: number;
  /** The documented daily quota, if any. */
  dailyLimit: number | undefined;
  /** The cap on requests in flight (also the HTTP pool's connection count). */
  maxConcurrent: number;
  /** Aborted when the trial is cut short: stop sleeping and sending. */
  signal: AbortSignal;
}

/** Sends one HTTP attempt for job `job` and records it in the trace. */
export type SendAttempt = (job: number, signal?: AbortSignal) => Promise<Dispatcher.ResponseData>;

export interface ContenderRun {
  /** Runs one job to success; rejects when it fails for good. */
  run(job: number): Promise<void>;
  /** Cuts everything short (trial timeout or Ctrl-C). Queued jobs may never settle. */
  abort(): Promise<void>;
  /** Releases timers and listeners after the jobs are done. */
  close(): Promise<void>;
}

export interface Contender {
  readonly key: string;
  readonly name: string;
  /** What this contender is given, in words, for RESULTS.md. */
  given(setup: Omit<ContenderSetup, 'signal'>): string;
  start(setup: ContenderSetup, send: SendAttempt): ContenderRun;
}

/** Retries on 429 before a static contender gives a job up (bounded, as the usual glue is). */
export const MAX_429_RETRIES = 50;

/** A 429 as the static contenders' glue sees it. */
export class RateLimited extends Error {
  constructor(readonly retryAfterMs: number) {
    super(`429, retry after ${retryAfterMs} ms`);
  }
}

export class HttpFailure extends Error {
  constructor(readonly status: number) {
    super(`HTTP ${status}`);
  }
}

function header(headers: Dispatcher.ResponseData['headers'], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * The wait a 429 asks for, as the usual glue reads it: `retry-after-ms` when
 * present (the benchmarks' fake server sends it, because with a compressed
 * minute a whole-second `Retry-After` would be several windows long), else
 * `Retry-After` as delta-seconds or an HTTP-date; 1 s when absent.
 */
export function retryAfterMs(headers: Dispatcher.ResponseData['headers'], now = Date.now()): number {
  const ms = Number(header(headers, 'retry-after-ms'));
  if (Number.isFinite(ms) && ms >= 0) return ms;
  const raw = header(headers, 'retry-after');
  if (raw !== undefined) {
    const seconds = Number(raw);
    if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
    const date = Date.parse(raw);
    if (Number.isFinite(date)) return Math.max(0, date - now);
  }
  return 1000;
}

/** The static contenders' (and the usual Bottleneck glue's) reading of an answer: 429 → `RateLimited`, other errors → `HttpFailure`; the body is released. */
export async function throwIfRefused(res: Pick<Dispatcher.ResponseData, 'statusCode' | 'headers' | 'body'>): Promise<void> {
  if (res.statusCode === 429) {
    const wait = retryAfterMs(res.headers);
    await res.body.dump();
    throw new RateLimited(wait);
  }
  if (res.statusCode >= 400) {
    await res.body.dump();
    throw new HttpFailure(res.statusCode);
  }
}

/** One attempt, the way the static contenders' task does it (see `throwIfRefused`). */
export async function attemptOnce(send: SendAttempt, job: number, signal?: AbortSignal): Promise<void> {
  const res = await send(job, signal);
  await throwIfRefused(res);
  await res.body.json();
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, Math.max(0, ms));
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

export const ours: Contender = {
  key: 'ours',
  name: 'ours (RateLimitScheduler)',
  given: (s) =>
    `\`new RateLimitScheduler({ windows: { minuteMs: ${s.windowMs}${s.dayMs !== undefined ? `, dayMs: ${s.dayMs}` : ''} } })\`: ` +
    'the window lengths only; no limits, every other option at its default (`maxConcurrent` 64). 429s are handled inside.',
  start(setup, send) {
    const scheduler = new RateLimitScheduler({
      windows: { minuteMs: setup.windowMs, ...(setup.dayMs !== undefined ? { dayMs: setup.dayMs } : {}) },
    });
    return {
      async run(job) {
        const res = await scheduler.schedule((ctx) => send(job, ctx.signal));
        await res.body.json();
      },
      abort: () => scheduler.close({ drain: false }),
      close: () => scheduler.close(),
    };
  },
};

/**
 * Bottleneck's heartbeat (250 ms by default) is the granularity of its
 * reservoir refresh. Real minutes are 60 s; the benchmarks compress them, so
 * the heartbeat is compressed by the same factor, keeping its share of the
 * window what it is in real use.
 */
export function bottleneckHeartbeat(windowMs: number): number {
  return Math.max(1, Math.round((250 * windowMs) / 60_000));
}

/** The limits as the static contenders are told them. */
export interface ToldLimits {
  maxConcurrent: number;
  limit: number;
  windowMs: number;
  dailyLimit?: number | undefined;
  dayMs?: number | undefined;
}

/** p-queue told the limits: `intervalCap` per window (`minute`) and, with a daily limit, a daily queue to feed it through. */
export function pQueueLimiters(setup: ToldLimits): { minute: PQueue; daily: PQueue | undefined } {
  const minute = new PQueue({ concurrency: setup.maxConcurrent, intervalCap: setup.limit, interval: setup.windowMs });
  const daily =
    setup.dailyLimit !== undefined && setup.dayMs !== undefined ? new PQueue({ intervalCap: setup.dailyLimit, interval: setup.dayMs }) : undefined;
  return { minute, daily };
}

/** p-retry around one attempt, as the p-queue contender uses it: only 429s are retried, after their Retry-After. */
export function retryOn429<T>(attempt: () => Promise<T>, signal: AbortSignal): Promise<T> {
  return pRetry(attempt, {
    retries: MAX_429_RETRIES,
    minTimeout: 0,
    maxTimeout: 0,
    factor: 1,
    signal,
    shouldRetry: ({ error }) => error instanceof RateLimited,
    onFailedAttempt: async ({ error }) => {
      if (error instanceof RateLimited) await sleep(error.retryAfterMs, signal);
    },
  });
}

/**
 * Bottleneck told the limits: a reservoir refilled every window (`minute`) and, with a daily limit, a daily
 * one chained in front of it (`daily.chain(minute)`: a job counts in both). Both never let 'error' crash a run.
 */
export function bottleneckLimiters(setup: ToldLimits): { minute: Bottleneck; daily: Bottleneck | undefined } {
  const heartbeatInterval = bottleneckHeartbeat(setup.windowMs);
  // `heartbeatInterval` is a documented store option that Bottleneck's typings omit.
  const minute = new Bottleneck({
    maxConcurrent: setup.maxConcurrent,
    reservoir: setup.limit,
    reservoirRefreshAmount: setup.limit,
    reservoirRefreshInterval: setup.windowMs,
    heartbeatInterval,
  } as Bottleneck.ConstructorOptions);
  let daily: Bottleneck | undefined;
  if (setup.dailyLimit !== undefined && setup.dayMs !== undefined) {
    daily = new Bottleneck({
      reservoir: setup.dailyLimit,
      reservoirRefreshAmount: setup.dailyLimit,
      reservoirRefreshInterval: setup.dayMs,
      heartbeatInterval,
    } as Bottleneck.ConstructorOptions);
    daily.chain(minute);
  }
  // Bottleneck emits 'error' for problems in listeners; never let it crash the run.
  minute.on('error', () => {});
  daily?.on('error', () => {});
  return { minute, daily };
}

export const bottleneck: Contender = {
  key: 'bottleneck',
  name: 'Bottleneck 2.19.5',
  given: (s) =>
    `\`new Bottleneck({ reservoir: ${s.limit}, reservoirRefreshAmount: ${s.limit}, reservoirRefreshInterval: ${s.windowMs}, maxConcurrent: ${s.maxConcurrent} })\`` +
    (s.dailyLimit !== undefined && s.dayMs !== undefined
      ? `, with \`daily = new Bottleneck({ reservoir: ${s.dailyLimit}, reservoirRefreshAmount: ${s.dailyLimit}, reservoirRefreshInterval: ${s.dayMs} })\` and \`daily.chain(minute)\` (jobs scheduled on \`daily\`)`
      : '') +
    `; \`heartbeatInterval: ${bottleneckHeartbeat(s.windowMs)}\` (the default 250 ms scaled to the compressed minute); ` +
    `a \`failed\` listener returns the 429's Retry-After (ms) for up to ${MAX_429_RETRIES} retries.`,
  start(setup, send) {
    const { minute, daily } = bottleneckLimiters(setup);
    const entry = daily ?? minute;
    entry.on('failed', (error: unknown, info: Bottleneck.EventInfoRetryable) => {
      if (error instanceof RateLimited && info.retryCount < MAX_429_RETRIES && !setup.signal.aborted) return error.retryAfterMs;
      return undefined;
    });
    const limiters = daily ? [daily, minute] : [minute];
    return {
      run: (job) => entry.schedule(() => attemptOnce(send, job, setup.signal)),
      async abort() {
        await Promise.allSettled(limiters.map((l) => l.stop({ dropWaitingJobs: true })));
        await Promise.allSettled(limiters.map((l) => l.disconnect()));
      },
      async close() {
        await Promise.allSettled(limiters.map((l) => l.disconnect()));
      },
    };
  },
};

export const pQueue: Contender = {
  key: 'p-queue',
  name: 'p-queue 9 + p-retry',
  given: (s) =>
    `\`new PQueue({ intervalCap: ${s.limit}, interval: ${s.windowMs}, concurrency: ${s.maxConcurrent} })\`` +
    (s.dailyLimit !== undefined && s.dayMs !== undefined
      ? `, fed by \`daily = new PQueue({ intervalCap: ${s.dailyLimit}, interval: ${s.dayMs} })\` (\`daily.add(() => minute.add(task))\`)`
      : '') +
    `; each task is \`pRetry(attempt, { retries: ${MAX_429_RETRIES}, minTimeout: 0, shouldRetry: 429 only, onFailedAttempt: sleep(Retry-After) })\`.`,
  start(setup, send) {
    const { minute, daily } = pQueueLimiters(setup);
    const task = (job: number) => (): Promise<void> => retryOn429(() => attemptOnce(send, job, setup.signal), setup.signal);
    return {
      async run(job) {
        if (daily) await daily.add(() => minute.add(task(job)));
        else await minute.add(task(job));
      },
      async abort() {
        daily?.clear();
        minute.clear();
      },
      async close() {
        daily?.clear();
        minute.clear();
      },
    };
  },
};

export const CONTENDERS: readonly Contender[] = [ours, bottleneck, pQueue];
