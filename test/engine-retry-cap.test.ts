import { describe, expect, it } from 'vitest';
import { RetriesExhaustedError } from '../src/errors/retries-exhausted-error.js';
import type { TaskContext } from '../src/engine/scheduler.js';
import { SimServer, type SimResponse } from './helpers/sim-server.js';
import { of, record, roomy, Script, setup, T0, track } from './helpers/engine.js';

/**
 * `retry.maxRetryTimeMs` caps the time a task's retries cost it: the backoff
 * waits and the time its attempts spend on the wire. Time spent queued for
 * budget, behind the 429 gate or in a daily park is the queue's, not the
 * retry's, and does not count.
 */
describe('the retry time cap counts backoff and time on the wire only', () => {
  it('a backlogged 5xx retry succeeds on its third attempt after waiting longer than maxRetryTimeMs in the queue', async () => {
    const windowMs = 1000;
    const maxRetryTimeMs = 1500;
    const { clock, scheduler } = setup({ windows: { minuteMs: windowMs }, retry: { maxAttempts: 3, baseDelayMs: 20, maxRetryTimeMs } });
    // 2 per window, told by the server's headers. The queue holds 12 tasks, so the first retry waits ~5 windows
    // for budget; the producer adds 6 more as it goes, so the second waits ~3.
    const server = new SimServer(clock, { limit: 2, windowMs, kind: 'fixed' }, 10);
    // Task 1's first two attempts reach the server (and are counted) but answer 503.
    const task = async (ctx: TaskContext): Promise<SimResponse> => {
      const answer = await server.task();
      return ctx.id === 1 && ctx.attempt < 3 ? { status: 503, headers: answer.headers } : answer;
    };
    const log = record(scheduler, clock, ['dispatched', 'retrying', 'failed']);
    const first = track(scheduler.schedule(task));
    const rest = Array.from({ length: 11 }, () => track(scheduler.schedule(task)));
    scheduler.on('dispatched', ({ id, attempt }) => {
      if (id === 1 && attempt === 2) for (let i = 0; i < 6; i++) rest.push(track(scheduler.schedule(task)));
    });
    await clock.runUntil(() => first.state !== 'pending', 30 * windowMs, 50);

    expect(first.error).toBeUndefined();
    expect(first.state).toBe('fulfilled');
    const attempts = of(log, 'dispatched').filter((e) => e.id === 1);
    expect(attempts.map((e) => e.attempt)).toEqual([1, 2, 3]);
    const at = log.filter((r) => r.name === 'dispatched' && r.event.id === 1).map((r) => r.at - T0);
    // Each retry queued behind the backlog for longer than the whole cap ...
    expect(at[1]! - at[0]!).toBeGreaterThan(maxRetryTimeMs);
    expect(at[2]! - at[1]!).toBeGreaterThan(maxRetryTimeMs);
    // ... while its backoffs and round trips stayed far below it.
    const backoffs = of(log, 'retrying').filter((e) => e.id === 1).map((e) => e.delayMs);
    expect(backoffs).toHaveLength(2);
    expect(backoffs.reduce((a, b) => a + b, 0) + 3 * 10).toBeLessThan(maxRetryTimeMs);
    expect(of(log, 'failed')).toEqual([]);
    expect(server.rejected).toBe(0);
    await clock.runUntil(() => rest.every((t) => t.state !== 'pending'), 30 * windowMs, 50);
    expect(rest.every((t) => t.state === 'fulfilled')).toBe(true);
  });

  it('time behind the 429 gate does not count either', async () => {
    const { clock, scheduler } = setup({ gateJitter: 0, retry: { maxAttempts: 3, baseDelayMs: 20, maxRetryTimeMs: 1000 } });
    const r429 = { status: 429, headers: { ...roomy(0, 100), 'retry-after': '5' } };
    // attempt 1: 503; attempt 2: 429 (gate of 5 s), then 503 again; attempt 3 succeeds.
    const script = new Script(clock, [{ status: 503, headers: roomy(90, 100) }, r429, { status: 503, headers: roomy(90, 100) }], {
      fallback: { status: 200, headers: roomy(90, 100) },
    });
    const p = track(scheduler.schedule(script.task));
    await clock.advance(10_000);
    expect(p.state).toBe('fulfilled');
    expect(script.calls.map((c) => `${c.attempt}:${c.outcome}`)).toEqual(['1:503', '2:429', '2:503', '3:200']);
    // the last attempt started more than the cap after the first, all of it but backoffs and round trips behind the gate
    expect(script.calls[3]!.start - script.calls[0]!.start).toBeGreaterThan(5000);
  });

  it('nor does time parked on an exhausted daily quota', async () => {
    const dayMs = 10_000;
    const maxRetryTimeMs = 2000;
    const { clock, scheduler } = setup({ windows: { minuteMs: 1000, dayMs }, retry: { maxAttempts: 3, baseDelayMs: 20, maxRetryTimeMs } });
    const server = new SimServer(clock, { limit: 1000, windowMs: 1000, kind: 'fixed' }, 10);
    server.daily = { limit: 4, used: 0, resetAt: T0 + dayMs, dayMs };
    const task = async (ctx: TaskContext): Promise<SimResponse> => {
      const answer = await server.task();
      return ctx.id === 1 && ctx.attempt < 3 && answer.status === 200 ? { status: 503, headers: answer.headers } : answer;
    };
    const log = record(scheduler, clock, ['dispatched', 'dailyQuotaExhausted']);
    const tasks = Array.from({ length: 6 }, () => track(scheduler.schedule(task)));
    await clock.runUntil(() => tasks.every((t) => t.state !== 'pending'), 4 * dayMs, 100);
    expect(tasks.map((t) => t.state)).toEqual(Array(6).fill('fulfilled'));
    expect(of(log, 'dailyQuotaExhausted').length).toBeGreaterThanOrEqual(1);
    const at = log.filter((r) => r.name === 'dispatched' && r.event.id === 1).map((r) => r.at - T0);
    expect(at).toHaveLength(3);
    // the retries waited out the park: far longer than the cap
    expect(at[2]! - at[0]!).toBeGreaterThan(dayMs - 1000);
  });

  it('time on the wire counts: a slow attempt can use up the cap by itself', async () => {
    const { clock, scheduler } = setup({ retry: { maxAttempts: 5, baseDelayMs: 20, maxRetryTimeMs: 1000 } });
    const script = new Script(clock, [{ status: 503, headers: roomy(), after: 1200 }]);
    const log = record(scheduler, clock, ['retrying']);
    const p = track(scheduler.schedule(script.task));
    await clock.advance(5000);
    expect(script.calls).toHaveLength(1);
    expect(p.error).toBeInstanceOf(RetriesExhaustedError);
    expect((p.error as RetriesExhaustedError).attempts).toBe(1);
    expect(of(log, 'retrying')).toEqual([]);
  });

  it('backoff and round trips add up across attempts', async () => {
    // latency 300 ms, backoffs 0.5 × 400 = 200 and 0.5 × 800 = 400 (random 0.5):
    // after attempt 1: 300 + 200 = 500; after attempt 2: 500 + 300 + 400 = 1200 > 1100.
    const { clock, scheduler } = setup({ retry: { maxAttempts: 10, baseDelayMs: 400, maxRetryTimeMs: 1100 } });
    const script = new Script(clock, [], { fallback: { status: 503, headers: roomy() }, latencyMs: 300 });
    const p = track(scheduler.schedule(script.task));
    await clock.advance(10_000);
    expect(script.calls).toHaveLength(2);
    expect((p.error as RetriesExhaustedError).attempts).toBe(2);
  });
});
