/**
 * Integration over real HTTP: the scheduler drives undici `Pool.request`
 * against the project's fake ModelBeam server, with a compressed minute.
 *
 * Most scenarios share one ManualClock between the server and the scheduler:
 * windows, Retry-After and backoffs are then exact, while the sockets are real
 * (the loop below advances fake time a little whenever the event loop turns).
 * One smoke scenario runs both on the real clock. Every assertion is about
 * counts (what the server saw, how each task ended), never about durations.
 */
import { Pool } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { AuthenticationError } from '../src/errors/authentication-error.js';
import { DailyQuotaExhaustedError } from '../src/errors/daily-quota-exhausted-error.js';
import { OutcomeUnknownError } from '../src/errors/outcome-unknown-error.js';
import type { SchedulerOptions } from '../src/engine/options.js';
import { RateLimitScheduler, type TaskContext } from '../src/engine/scheduler.js';
import { startFakeModelBeam, type FakeModelBeamServer, type FakeServerOptions } from '../src/testing/index.js';
import { ManualClock } from './helpers/manual-clock.js';
import { of, record, T0, track, type Tracked } from './helpers/engine.js';

const API = '/api/v1/client';
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Rig {
  server: FakeModelBeamServer;
  scheduler: RateLimitScheduler;
  pool: Pool;
  clock: ManualClock | undefined;
  get: (path: string) => (ctx: TaskContext) => Promise<Reply>;
  post: (path: string, body: unknown) => (ctx: TaskContext) => Promise<Reply>;
  /** Runs until `done()` or `maxMs` of (fake or real) time passed. */
  until: (done: () => boolean, maxMs: number) => Promise<void>;
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

async function rig(serverOptions: FakeServerOptions, schedulerOptions: SchedulerOptions = {}, realClock = false): Promise<Rig> {
  const clock = realClock ? undefined : new ManualClock(T0);
  const server = await startFakeModelBeam({ ...serverOptions, ...(clock ? { clock } : {}) });
  const pool = new Pool(server.url, { connections: 32 });
  const scheduler = new RateLimitScheduler({ ...(clock ? { clock } : {}), ...schedulerOptions });
  cleanups.push(async () => {
    await scheduler.close({ drain: false });
    await pool.close();
    await server.close();
  });
  const call = async (ctx: TaskContext, path: string, method: 'GET' | 'POST', body?: unknown): Promise<Reply> => {
    const res = await pool.request({
      path: `${API}${path}`,
      method,
      headers: { authorization: 'Bearer test-key', accept: 'application/json', ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
      signal: ctx.signal,
    });
    const text = await res.body.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // HTML from the "gateway", or truncated JSON: keep the text
    }
    return { status: res.statusCode, headers: res.headers, body: parsed };
  };
  return {
    server,
    scheduler,
    pool,
    clock,
    get: (path) => (ctx) => call(ctx, path, 'GET'),
    post: (path, body) => (ctx) => call(ctx, path, 'POST', body),
    until: async (done, maxMs) => {
      const start = Date.now();
      const fakeEnd = clock ? clock.now() + maxMs : 0;
      while (!done()) {
        if (clock) {
          if (clock.now() >= fakeEnd) break;
          await clock.advance(2);
        } else {
          if (Date.now() - start >= maxMs) break;
          await new Promise((r) => setTimeout(r, 5));
        }
        await new Promise((r) => setImmediate(r));
      }
    },
  };
}

const settled = (tasks: Tracked<unknown>[]) => () => tasks.every((t) => t.state !== 'pending');
const img = (i: number) => ({ prompt: `a red fox #${i}`, model: 'Flux1schnell', width: 512, height: 512, steps: 4 });

describe('over real HTTP (fake server, compressed minute)', () => {
  it('a steady limit: every request accepted, no 429 after the first window, each learned window spent in full', async () => {
    const limit = 20;
    const r = await rig({ limits: { minute: { limit, windowMs: 1000, kind: 'fixed', phaseMs: 370 } }, headers: { retryAfterMs: true } }, { windows: { minuteMs: 1000 } });
    const tasks = Array.from({ length: 200 }, () => track(r.scheduler.schedule(r.get('/balance'))));
    await r.until(settled(tasks), 30_000);
    expect(tasks.filter((t) => t.state === 'fulfilled')).toHaveLength(200);
    expect(tasks.every((t) => (t.value as Reply).status === 200)).toBe(true);
    const stats = r.server.stats();
    expect(stats.byRoute['GET /balance']).toBe(200 + stats.rejected429.total);
    expect(stats.accepted).toBe(200);
    expect(stats.rejected429.total).toBe(0);
    expect(r.server.maxInAnyWindow()).toBeLessThanOrEqual(limit);
    // windows after the learning ones are full
    const perWindow = new Map<number, number>();
    for (const t of r.server.acceptedLog('acct-1')) {
      const k = Math.floor((t - T0 - 370) / 1000);
      perWindow.set(k, (perWindow.get(k) ?? 0) + 1);
    }
    const keys = [...perWindow.keys()].sort((a, b) => a - b);
    const middle = keys.slice(5, -1).map((k) => perWindow.get(k) as number);
    expect(middle.length).toBeGreaterThan(2);
    expect(middle.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(0.95 * limit * middle.length);
    expect(r.scheduler.stats().budget?.minute).toMatchObject({ limit, kind: 'fixed' });
  });

  it('a sliding window: never overrun, no 429', async () => {
    const r = await rig({ limits: { minute: { limit: 15, windowMs: 1000, kind: 'sliding' } }, headers: { retryAfterMs: true } }, { windows: { minuteMs: 1000 } });
    const tasks = Array.from({ length: 90 }, () => track(r.scheduler.schedule(r.get('/balance'))));
    await r.until(settled(tasks), 30_000);
    expect(tasks.filter((t) => t.state === 'fulfilled')).toHaveLength(90);
    expect(r.server.stats()).toMatchObject({ accepted: 90, rejected429: { total: 0 } });
    expect(r.server.maxInAnyWindow()).toBeLessThanOrEqual(15);
  });

  it('a limit unknown in advance, with Retry-After in HTTP-date form: one 429 at most, then the server is followed', async () => {
    const r = await rig(
      { limits: { minute: { limit: 10, windowMs: 1000, kind: 'fixed' } }, headers: { retryAfterFormat: 'http-date' } },
      { windows: { minuteMs: 1000 }, limits: { minute: 30 } }, // the seed is wrong: the server wins
    );
    const log = record(r.scheduler, { now: () => r.clock!.now() }, ['rateLimited']);
    const tasks = Array.from({ length: 60 }, () => track(r.scheduler.schedule(r.get('/balance'))));
    await r.until(settled(tasks), 30_000);
    expect(tasks.filter((t) => t.state === 'fulfilled')).toHaveLength(60);
    const stats = r.server.stats();
    expect(stats.accepted).toBe(60);
    // the wrong seed costs one burst in the first window, never more
    expect(stats.rejected429.total).toBeLessThanOrEqual(20);
    expect(r.scheduler.stats().budget?.minute.limit).toBe(10);
    for (const e of of(log, 'rateLimited')) expect(e.retryAfterMs).toBeGreaterThanOrEqual(0);
  });

  it('faults: 5xx are retried, resets of idempotent requests resent, outcome-unknown POSTs never duplicated', async () => {
    const r = await rig({ limits: { minute: { limit: 100, windowMs: 1000 } } }, { windows: { minuteMs: 1000 }, retry: { baseDelayMs: 20 } });
    // idempotent reads: every fault ends in a success
    r.server.failNext('500', 2);
    r.server.failNext('503', 2);
    r.server.failNext('reset', 2);
    const reads = Array.from({ length: 10 }, () => track(r.scheduler.schedule(r.get('/balance'), { idempotent: true })));
    await r.until(settled(reads), 20_000);
    expect(reads.filter((t) => t.state === 'fulfilled')).toHaveLength(10);
    const afterReads = r.server.stats();
    expect(afterReads.injected).toMatchObject({ '500': 2, '503': 2, reset: 2 });
    expect(afterReads.byRoute['GET /balance']).toBe(16);
    expect(r.scheduler.stats().counts.retried).toBe(6);

    // non-idempotent submissions: a dropped connection is reported, not resent
    r.server.failNext('accept-then-reset', 1, (q) => q.submit);
    r.server.failNext('500', 1, (q) => q.submit);
    const posts = Array.from({ length: 12 }, (_, i) => track(r.scheduler.schedule(r.post('/txt2img', img(i)))));
    await r.until(settled(posts), 20_000);
    const unknown = posts.filter((t) => t.error instanceof OutcomeUnknownError);
    expect(unknown).toHaveLength(1);
    expect(posts.filter((t) => t.state === 'fulfilled')).toHaveLength(11);
    const stats = r.server.stats();
    expect(stats.byRoute['POST /txt2img']).toBe(13); // 12 + the retried 500
    // every prompt was created exactly once: the one whose answer was lost included, never twice
    const prompts = r.server.jobs.list().map((j) => (j as unknown as { params: { prompt: string } }).params.prompt);
    expect(prompts).toHaveLength(12);
    expect(new Set(prompts).size).toBe(12);
    // two resets of reads were resent, one submission was not
    expect(r.scheduler.stats().counts.outcomeUnknown).toBe(3);
  });

  it('a key revoked mid-run: dispatch stops at once, nothing is retried, everything queued fails with AuthenticationError', async () => {
    const r = await rig({ limits: { minute: { limit: 5, windowMs: 1000 } } }, { windows: { minuteMs: 1000 }, maxConcurrent: 2 });
    const tasks = Array.from({ length: 30 }, () => track(r.scheduler.schedule(r.get('/balance'))));
    await r.until(() => tasks.filter((t) => t.state === 'fulfilled').length >= 5, 10_000);
    r.server.revokeKey('test-key');
    await r.until(settled(tasks), 10_000);
    const ok = tasks.filter((t) => t.state === 'fulfilled').length;
    const auth = tasks.filter((t) => t.error instanceof AuthenticationError);
    expect(ok + auth.length).toBe(30);
    const stats = r.server.stats();
    // at most the requests already in flight met the revoked key
    expect(stats.unauthorized401).toBeGreaterThanOrEqual(1);
    expect(stats.unauthorized401).toBeLessThanOrEqual(2);
    expect(stats.byRoute['GET /balance']).toBe(ok + stats.unauthorized401 + stats.rejected429.total);
    expect(r.scheduler.stats().counts.retried).toBe(0);
  });

  it("a daily quota smaller than the work, 'reject': one daily 429 teaches the reset, the rest fail with it", async () => {
    const r = await rig(
      { limits: { minute: { limit: 50, windowMs: 1000 }, daily: { limit: 12, windowMs: 60_000 } }, headers: { retryAfterMs: true } },
      { windows: { minuteMs: 1000, dayMs: 60_000 }, onDailyLimit: 'reject' },
    );
    const tasks = Array.from({ length: 20 }, () => track(r.scheduler.schedule(r.get('/balance'))));
    await r.until(settled(tasks), 30_000);
    expect(tasks.filter((t) => t.state === 'fulfilled')).toHaveLength(12);
    const failed = tasks.filter((t) => t.error instanceof DailyQuotaExhaustedError);
    expect(failed).toHaveLength(8);
    const resetAt = (failed[0]!.error as DailyQuotaExhaustedError).resetAt as number;
    // the server's days start at multiples of 60 s since the epoch
    const dayEnd = Math.ceil(T0 / 60_000) * 60_000;
    expect(resetAt).toBeGreaterThanOrEqual(dayEnd);
    expect(resetAt).toBeLessThan(dayEnd + 2000);
    expect(r.server.stats()).toMatchObject({ accepted: 12, rejected429: { daily: 1, minute: 0 } });
  });

  it('on the real clock too (smoke): all accepted, the window never overrun', async () => {
    const r = await rig(
      { limits: { minute: { limit: 10, windowMs: 400, kind: 'fixed' } }, headers: { retryAfterMs: true } },
      { windows: { minuteMs: 400 }, marginMs: 15 },
      true,
    );
    const tasks = Array.from({ length: 40 }, () => track(r.scheduler.schedule(r.get('/balance'), { idempotent: true })));
    await r.until(settled(tasks), 20_000);
    expect(tasks.filter((t) => t.state === 'fulfilled')).toHaveLength(40);
    const stats = r.server.stats();
    expect(stats.accepted).toBe(40);
    expect(r.server.maxInAnyWindow()).toBeLessThanOrEqual(10);
    // timers on a busy machine may fire late, never early: a 429 stays the exception
    expect(stats.rejected429.total).toBeLessThanOrEqual(3);
  });
});
