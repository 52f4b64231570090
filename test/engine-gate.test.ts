import { describe, expect, it } from 'vitest';
import { DailyQuotaExhaustedError } from '../src/errors/daily-quota-exhausted-error.js';
import { ManualClock } from './helpers/manual-clock.js';
import { SimServer } from './helpers/sim-server.js';
import { netError, of, record, roomy, Script, setup, T0, track } from './helpers/engine.js';

const r429 = (headers: Record<string, string>) => ({ status: 429, headers: { ...roomy(0, 100), ...headers } });

describe('the 429 gate', () => {
  it('closes the whole queue until Retry-After plus jitter, then lets one request read the numbers first', async () => {
    const { clock, scheduler } = setup({ maxConcurrent: 8 });
    const script = new Script(clock, [r429({ 'retry-after': '2' })], { fallback: { status: 200, headers: roomy(50, 100) } });
    const log = record(scheduler, clock, ['rateLimited', 'dispatched']);
    const tasks = Array.from({ length: 6 }, () => track(scheduler.schedule(script.task)));
    await clock.advance(10); // the first (and only) request answers 429 at T0+10
    expect(of(log, 'rateLimited')).toEqual([{ id: 1, window: 'minute', waitMs: 2050, until: T0 + 10 + 2050, retryAfterMs: 2000, scope: 'default' }]);
    expect(scheduler.stats().gateUntil).toBe(T0 + 2060);
    expect(scheduler.stats().counts.rateLimited).toBe(1);
    await clock.advance(2049);
    expect(script.calls).toHaveLength(1);
    await clock.advance(1);
    // one request first (the 429'd task keeps its place at the front) ...
    expect(script.calls.map((c) => [c.id, c.start - T0])).toEqual([
      [1, 0],
      [1, 2060],
    ]);
    await clock.advance(10);
    // ... then, with fresh numbers, the rest at once
    expect(script.calls.slice(2).map((c) => c.start - T0)).toEqual([2070, 2070, 2070, 2070, 2070]);
    await clock.advance(20);
    expect(tasks.every((t) => t.state === 'fulfilled')).toBe(true);
    expect(scheduler.stats().gateUntil).toBeUndefined();
  });

  it.each([
    ['delta-seconds', { 'retry-after': '3' }, 3000],
    ['an HTTP-date', { 'retry-after': new Date(T0 + 4000).toUTCString() }, 3990],
    ['retry-after-ms (wins over Retry-After)', { 'retry-after-ms': '1500', 'retry-after': '9' }, 1500],
  ])('reads Retry-After as %s', async (_label, headers, retryAfterMs) => {
    const { clock, scheduler } = setup({ gateJitter: 0 });
    const script = new Script(clock, [r429(headers)]);
    const log = record(scheduler, clock, ['rateLimited']);
    const p = track(scheduler.schedule(script.task));
    await clock.advance(10);
    expect(of(log, 'rateLimited')[0]).toMatchObject({ retryAfterMs, waitMs: retryAfterMs, until: T0 + 10 + retryAfterMs });
    await clock.advance(retryAfterMs - 1);
    expect(script.calls).toHaveLength(1);
    await clock.advance(1);
    expect(script.calls).toHaveLength(2);
    await clock.advance(10);
    expect(p.state).toBe('fulfilled');
  });

  it.each([0, 0.25, 0.5, 0.999])('jitter is never negative and at most gateJitter × Retry-After (random %d)', async (r) => {
    const { clock, scheduler } = setup({ random: () => r, gateJitter: 0.1 });
    const script = new Script(clock, [r429({ 'retry-after': '4' })]);
    const log = record(scheduler, clock, ['rateLimited']);
    void scheduler.schedule(script.task);
    await clock.advance(10);
    const { waitMs } = of(log, 'rateLimited')[0]!;
    expect(waitMs).toBeGreaterThanOrEqual(4000);
    expect(waitMs).toBeCloseTo(4000 + r * 0.1 * 4000, 2);
  });

  it('caps the jitter at one second however long the Retry-After', async () => {
    const { clock, scheduler } = setup({ random: () => 0.99, gateJitter: 0.5, windows: { minuteMs: 600_000 } });
    const script = new Script(clock, [r429({ 'retry-after': '300' })]);
    const log = record(scheduler, clock, ['rateLimited']);
    void scheduler.schedule(script.task);
    await clock.advance(10);
    expect(of(log, 'rateLimited')[0]?.waitMs).toBe(301_000);
  });

  it('a 429 spends no attempt: the task is re-sent as attempt 1, and nothing counts as a retry', async () => {
    const { clock, scheduler } = setup({ retry: { maxAttempts: 1 } });
    const script = new Script(clock, [r429({ 'retry-after-ms': '100' }), r429({ 'retry-after-ms': '100' }), r429({ 'retry-after-ms': '100' })]);
    const p = track(scheduler.schedule(script.task));
    await clock.advance(2000);
    expect(p.state).toBe('fulfilled');
    expect(script.calls.map((c) => c.attempt)).toEqual([1, 1, 1, 1]);
    expect(scheduler.stats().counts).toMatchObject({ rateLimited: 3, retried: 0, dispatched: 4, succeeded: 1 });
  });

  it('a 429 while retrying a 5xx keeps the attempt number', async () => {
    const { clock, scheduler } = setup({ retry: { maxAttempts: 2, baseDelayMs: 10 } });
    const script = new Script(clock, [{ status: 500 }, r429({ 'retry-after-ms': '50' })]);
    const p = track(scheduler.schedule(script.task));
    await clock.advance(500);
    expect(p.state).toBe('fulfilled');
    expect(script.calls.map((c) => [c.attempt, c.outcome])).toEqual([
      [1, '500'],
      [2, '429'],
      [2, '200'],
    ]);
  });

  it('without Retry-After the gate backs off exponentially, and a success resets it', async () => {
    const { clock, scheduler } = setup({ random: () => 0 });
    const script = new Script(clock, [r429({}), r429({}), r429({}), { status: 200, headers: roomy(90, 100) }, r429({})]);
    const log = record(scheduler, clock, ['rateLimited']);
    const a = track(scheduler.schedule(script.task));
    await clock.advance(10_000);
    expect(a.state).toBe('fulfilled');
    const b = track(scheduler.schedule(script.task));
    await clock.advance(10_000);
    expect(b.state).toBe('fulfilled');
    // 1 s × 2^(n-1) × (0.5 + random/2): 500, 1000, 2000; reset by the success: 500 again
    expect(of(log, 'rateLimited').map((e) => e.waitMs)).toEqual([500, 1000, 2000, 500]);
    expect(of(log, 'rateLimited').every((e) => e.retryAfterMs === undefined)).toBe(true);
  });

  it('tasks sent back by 429s keep their order, ahead of the rest of their priority', async () => {
    const { clock, scheduler } = setup({ limits: { minute: 100 }, maxConcurrent: 3 });
    const r = r429({ 'retry-after-ms': '100' });
    const script = new Script(clock, [r, r, r], { fallback: { status: 200, headers: roomy(90, 100) } });
    const tasks = Array.from({ length: 5 }, () => track(scheduler.schedule(script.task)));
    await clock.advance(1000);
    expect(tasks.every((t) => t.state === 'fulfilled')).toBe(true);
    expect(script.calls.map((c) => c.id)).toEqual([1, 2, 3, 1, 2, 3, 4, 5]);
  });

  it('429s from several requests in flight extend the gate, never shorten it', async () => {
    const { clock, scheduler } = setup({ gateJitter: 0, limits: { minute: 100 } });
    const script = new Script(clock, [
      { ...r429({ 'retry-after-ms': '3000' }), after: 10 },
      { ...r429({ 'retry-after-ms': '500' }), after: 20 },
      { ...r429({ 'retry-after-ms': '5000' }), after: 30 },
    ]);
    const log = record(scheduler, clock, ['rateLimited']);
    const tasks = Array.from({ length: 3 }, () => track(scheduler.schedule(script.task)));
    await clock.advance(40);
    expect(of(log, 'rateLimited').map((e) => e.until - T0)).toEqual([3010, 3010, 5030]);
    expect(scheduler.stats().gateUntil).toBe(T0 + 5030);
    await clock.advance(4989);
    expect(script.calls).toHaveLength(3);
    await clock.advance(200);
    expect(script.calls.length).toBeGreaterThan(3);
    await clock.advance(200);
    expect(tasks.every((t) => t.state === 'fulfilled')).toBe(true);
  });
});

/** A server with a roomy minute window and a daily quota of `limit`, its first day ending `dayMs` after T0. */
function dailyServer(clock: ManualClock, limit: number, dayMs: number): SimServer {
  const server = new SimServer(clock, { limit: 1000, windowMs: 1000, kind: 'fixed' }, 4);
  server.daily = { limit, used: 0, resetAt: T0 + dayMs, dayMs };
  return server;
}

describe('the daily quota', () => {

  it("'wait': parks until the reset with an event, learns the day from one 429, and finishes the work", async () => {
    const dayMs = 10_000;
    const { clock, scheduler } = setup({ windows: { minuteMs: 1000, dayMs } });
    const server = dailyServer(clock, 10, dayMs);
    const log = record(scheduler, clock, ['dailyQuotaExhausted', 'rateLimited']);
    const tasks = Array.from({ length: 25 }, () => track(scheduler.schedule(server.task)));
    await clock.advance(100);
    expect(server.accepted).toHaveLength(10);
    // The reset is unknown: one probe learns it from the daily 429's Retry-After.
    expect(server.rejected).toBe(1);
    expect(of(log, 'rateLimited')).toEqual([expect.objectContaining({ window: 'daily' })]);
    const parked = of(log, 'dailyQuotaExhausted');
    expect(parked).toHaveLength(1);
    expect(parked[0]?.action).toBe('wait');
    expect(parked[0]?.resetAt).toBeGreaterThanOrEqual(T0 + dayMs);
    expect(parked[0]?.resetAt).toBeLessThan(T0 + dayMs + 1000);
    expect(scheduler.stats().parkedUntil).toBe(parked[0]?.resetAt);
    await clock.advance(dayMs - 200);
    expect(server.requests).toBe(11);
    await clock.runUntil(() => tasks.every((t) => t.state !== 'pending'), 3 * dayMs, 100);
    expect(tasks.every((t) => t.state === 'fulfilled')).toBe(true);
    // Day 2 was predicted from the reset seen on day 1: no second 429.
    expect(server.rejected).toBe(1);
    expect(of(log, 'dailyQuotaExhausted')).toHaveLength(2);
    expect(scheduler.listenerCount()).toBe(2); // only the recorder's: the engine keeps none of its own
  });

  it("Daily-Remaining: 0 with the reset known parks at once, without a probe", async () => {
    const dayMs = 10_000;
    const { clock, scheduler } = setup({ windows: { minuteMs: 1000, dayMs } });
    const server = dailyServer(clock, 5, dayMs);
    const first = Array.from({ length: 6 }, () => track(scheduler.schedule(server.task)));
    await clock.runUntil(() => first.every((t) => t.state === 'fulfilled'), 2 * dayMs, 100);
    const rejected = server.rejected;
    expect(rejected).toBe(1);
    // Day 2: the quota runs out again; the reset is predicted, so nothing is sent until then.
    const second = Array.from({ length: 6 }, () => track(scheduler.schedule(server.task)));
    await clock.runUntil(() => second.every((t) => t.state === 'fulfilled'), 2 * dayMs, 100);
    expect(second.every((t) => t.state === 'fulfilled')).toBe(true);
    expect(server.rejected).toBe(rejected);
  });

  it("'reject': queued work fails with DailyQuotaExhaustedError.resetAt, and so does work scheduled while parked", async () => {
    const dayMs = 10_000;
    const { clock, scheduler } = setup({ windows: { minuteMs: 1000, dayMs }, onDailyLimit: 'reject' });
    const server = dailyServer(clock, 3, dayMs);
    const log = record(scheduler, clock, ['dailyQuotaExhausted']);
    const tasks = Array.from({ length: 6 }, () => track(scheduler.schedule(server.task)));
    await clock.advance(100);
    expect(tasks.slice(0, 3).every((t) => t.state === 'fulfilled')).toBe(true);
    const failures = tasks.slice(3);
    expect(failures.every((t) => t.state === 'rejected')).toBe(true);
    const resetAt = of(log, 'dailyQuotaExhausted')[0]?.resetAt;
    expect(of(log, 'dailyQuotaExhausted')).toEqual([{ resetAt, action: 'reject', scope: 'default' }]);
    for (const t of failures) {
      expect(t.error).toBeInstanceOf(DailyQuotaExhaustedError);
      expect((t.error as DailyQuotaExhaustedError).resetAt).toBe(resetAt);
      expect((t.error as DailyQuotaExhaustedError).code).toBe('DAILY_QUOTA_EXHAUSTED');
    }
    const late = track(scheduler.schedule(server.task));
    await clock.advance(10);
    expect(late.state).toBe('rejected');
    expect(late.error).toBeInstanceOf(DailyQuotaExhaustedError);
    expect(server.requests).toBe(4);
    // Until the reset everything is refused; after it, work is accepted again.
    const stillParked = track(scheduler.schedule(server.task));
    await clock.advance(dayMs - 200);
    expect(stillParked.state).toBe('rejected');
    await clock.advance(500);
    const next = track(scheduler.schedule(server.task));
    await clock.advance(100);
    expect(next.state).toBe('fulfilled');
  });

  it('a daily probe that never reaches the server does not leave the queue parked forever', async () => {
    const dayMs = 60_000;
    const { clock, scheduler } = setup({ windows: { minuteMs: 1000, dayMs }, retry: { baseDelayMs: 100, maxDelayMs: 100 } });
    const daily = (left: number) => ({ ...roomy(500, 1000), 'x-ratelimit-daily-limit': '2', 'x-ratelimit-daily-remaining': String(left) });
    const script = new Script(clock, [
      { status: 200, headers: daily(1) },
      { status: 200, headers: daily(0) },
      { error: netError('ECONNREFUSED') }, // the probe: refused before it was sent
      { status: 429, headers: { ...daily(0), 'x-ratelimit-type': 'daily', 'retry-after': '30' } },
    ]);
    const log = record(scheduler, clock, ['dailyQuotaExhausted']);
    const tasks = Array.from({ length: 4 }, () => track(scheduler.schedule(script.task)));
    await clock.advance(2000);
    expect(script.calls.map((c) => c.outcome)).toEqual(['200', '200', 'error', '429']);
    expect(of(log, 'dailyQuotaExhausted')).toHaveLength(1);
    await clock.runUntil(() => tasks.every((t) => t.state !== 'pending'), 40_000, 500);
    expect(tasks.every((t) => t.state === 'fulfilled')).toBe(true);
  });
});

describe('liveness: the queue never waits forever', () => {
  const daily = (limit: number, left: number) => ({ 'x-ratelimit-daily-limit': String(limit), 'x-ratelimit-daily-remaining': String(left) });

  it('the minute and the day run out together: the daily probe still goes once the minute allows', async () => {
    const { clock, scheduler } = setup({ windows: { minuteMs: 1000, dayMs: 60_000 } });
    const script = new Script(
      clock,
      [
        { status: 200, headers: { ...roomy(0, 1), ...daily(2, 0) } },
        { status: 429, headers: { ...roomy(0, 1), ...daily(2, 0), 'x-ratelimit-type': 'daily', 'retry-after': '30' } },
      ],
      { fallback: { status: 200, headers: { ...roomy(0, 1), ...daily(2, 1) } } },
    );
    const log = record(scheduler, clock, ['dailyQuotaExhausted']);
    const tasks = Array.from({ length: 3 }, () => track(scheduler.schedule(script.task)));
    await clock.advance(1100);
    // the probe waited for the minute window, then learned the day's reset
    expect(script.calls.map((c) => c.outcome)).toEqual(['200', '429']);
    expect(script.calls[1]!.start - T0).toBeGreaterThanOrEqual(1000);
    expect(of(log, 'dailyQuotaExhausted')).toHaveLength(1);
    await clock.runUntil(() => tasks.every((t) => t.state !== 'pending'), 60_000, 500);
    expect(tasks.every((t) => t.state === 'fulfilled')).toBe(true);
  });

  it('a minute limit of 0 is probed once a window, so a raised limit is noticed', async () => {
    const { clock, scheduler } = setup({ windows: { minuteMs: 1000 } });
    const zero = { status: 200, headers: roomy(0, 0) };
    const script = new Script(clock, [zero, zero, zero], { fallback: { status: 200, headers: roomy(8, 10) } });
    const tasks = Array.from({ length: 5 }, () => track(scheduler.schedule(script.task)));
    await clock.advance(900);
    expect(script.calls).toHaveLength(1);
    expect(scheduler.stats().budget?.minute.limit).toBe(0);
    await clock.advance(5000);
    // one probe a window while the limit is 0, then all of them
    expect(script.calls.slice(0, 4).map((c) => Math.floor((c.start - T0) / 1000))).toEqual([0, 1, 2, 3]);
    expect(tasks.every((t) => t.state === 'fulfilled')).toBe(true);
    expect(scheduler.stats().budget?.minute.limit).toBe(10);
  });

  it('a daily limit of 0 is probed once a day, so a raised quota is noticed', async () => {
    const dayMs = 10_000;
    const { clock, scheduler } = setup({ windows: { minuteMs: 1000, dayMs } });
    const script = new Script(
      clock,
      [
        { status: 200, headers: { ...roomy(), ...daily(0, 0) } },
        { status: 429, headers: { ...roomy(), ...daily(0, 0), 'x-ratelimit-type': 'daily', 'retry-after': '5' } },
        { status: 429, headers: { ...roomy(), ...daily(0, 0), 'x-ratelimit-type': 'daily', 'retry-after': '10' } },
      ],
      { fallback: { status: 200, headers: { ...roomy(), ...daily(100, 90) } } },
    );
    const tasks = Array.from({ length: 4 }, () => track(scheduler.schedule(script.task)));
    await clock.runUntil(() => tasks.every((t) => t.state !== 'pending'), 60_000, 500);
    expect(tasks.every((t) => t.state === 'fulfilled')).toBe(true);
    expect(script.calls.map((c) => c.outcome).slice(0, 4)).toEqual(['200', '429', '429', '200']);
    // one request per reset while the quota was 0
    expect(script.calls[2]!.start - script.calls[1]!.start).toBeGreaterThanOrEqual(5000);
  });
});


describe('tasks the daily window does not count (countsDaily: false)', () => {

  it('go on while the day is spent and parked; the daily tasks wait for the reset', async () => {
    const dayMs = 10_000;
    const { clock, scheduler } = setup({ windows: { minuteMs: 1000, dayMs } });
    const server = dailyServer(clock, 3, dayMs);
    const submissions = Array.from({ length: 6 }, () => track(scheduler.schedule(server.task)));
    await clock.advance(100);
    expect(submissions.filter((t) => t.state === 'fulfilled')).toHaveLength(3);
    expect(scheduler.stats().parkedUntil).toBeGreaterThanOrEqual(T0 + dayMs);
    // Polls of the jobs in flight, scheduled while parked (some ahead of the submissions in priority, some behind).
    const polls = Array.from({ length: 8 }, (_, i) => track(scheduler.schedule(server.minuteOnlyTask, { countsDaily: false, priority: i % 2 })));
    await clock.advance(100);
    expect(polls.every((t) => t.state === 'fulfilled')).toBe(true);
    expect(submissions.filter((t) => t.state === 'pending')).toHaveLength(3);
    expect(server.rejected).toBe(1); // the one probe that learned the day's reset
    await clock.runUntil(() => submissions.every((t) => t.state !== 'pending'), 2 * dayMs, 100);
    expect(submissions.every((t) => t.state === 'fulfilled')).toBe(true);
    expect(server.rejected).toBe(1);
  });

  it('keepDaily: where they count daily after all, submissions leave the day to the polls of the jobs in flight', async () => {
    const dayMs = 10_000;
    const { clock, scheduler } = setup({ windows: { minuteMs: 1000, dayMs } });
    // The server counts the polls daily too (server.task), though they are sent as not counting.
    const server = dailyServer(clock, 6, dayMs);
    // Jobs submitted and not polled yet, counted from the moment their submission goes (as the client does).
    let inFlight = 0;
    const submit = (): ReturnType<SimServer['task']> => {
      inFlight++;
      return server.task();
    };
    const polledAt: number[] = [];
    const jobs = Array.from({ length: 6 }, () =>
      track(
        scheduler.schedule(submit, { keepDaily: () => inFlight + 1 }).then(async () => {
          await scheduler.schedule(server.task, { countsDaily: false });
          inFlight--;
          polledAt.push(clock.now());
        }),
      ),
    );
    await clock.runUntil(() => jobs.every((t) => t.state !== 'pending'), 3 * dayMs, 50);
    expect(jobs.every((t) => t.state === 'fulfilled')).toBe(true);
    // Three jobs (a submission and a poll each) fit the first day, and every one of them is polled that day.
    expect(polledAt.filter((t) => t < T0 + dayMs)).toHaveLength(3);
    expect(server.rejected).toBeLessThanOrEqual(2); // at most the one probe a day that learns the reset
  });

  it("with onDailyLimit 'reject', only the daily tasks are refused", async () => {
    const dayMs = 10_000;
    const { clock, scheduler } = setup({ windows: { minuteMs: 1000, dayMs }, onDailyLimit: 'reject' });
    const server = dailyServer(clock, 2, dayMs);
    const submissions = Array.from({ length: 4 }, () => track(scheduler.schedule(server.task)));
    const polls = Array.from({ length: 4 }, () => track(scheduler.schedule(server.minuteOnlyTask, { countsDaily: false })));
    await clock.runUntil(() => [...submissions, ...polls].every((t) => t.state !== 'pending'), dayMs, 50);
    expect(submissions.map((t) => t.state)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'rejected']);
    expect(polls.every((t) => t.state === 'fulfilled')).toBe(true);
  });

  it('said not to count but refused by the daily window: one 429, then none goes on that word until the day resets', async () => {
    const dayMs = 10_000;
    const { clock, scheduler } = setup({ windows: { minuteMs: 1000, dayMs } });
    const server = dailyServer(clock, 2, dayMs);
    const log = record(scheduler, clock, ['rateLimited']);
    const first = Array.from({ length: 2 }, () => track(scheduler.schedule(server.task)));
    await clock.advance(100);
    expect(first.every((t) => t.state === 'fulfilled')).toBe(true);
    // The server counts these daily after all (server.task), though the caller says otherwise.
    const wrong = Array.from({ length: 6 }, () => track(scheduler.schedule(server.task, { countsDaily: false })));
    await clock.advance(1000);
    expect(of(log, 'rateLimited').filter((e) => e.window === 'daily')).toHaveLength(1);
    expect(wrong.every((t) => t.state === 'pending')).toBe(true);
    await clock.runUntil(() => wrong.every((t) => t.state !== 'pending'), 4 * dayMs, 100);
    expect(wrong.every((t) => t.state === 'fulfilled')).toBe(true);
    expect(server.maxInWindow()).toBeLessThanOrEqual(1000);
  });
});

describe('tasks that keep daily units for others (keepDaily)', () => {
  it('wait while sending would leave fewer than they keep; tasks behind them that keep nothing go on', async () => {
    const dayMs = 10_000;
    const { clock, scheduler } = setup({ windows: { minuteMs: 1000, dayMs } });
    const server = dailyServer(clock, 6, dayMs);
    // The first answer tells the daily window (6 a day); then two submissions keep 3 units each, as many as are left.
    const first = track(scheduler.schedule(server.task));
    await clock.advance(50);
    expect(first.state).toBe('fulfilled');
    let keep = 3;
    const kept = Array.from({ length: 3 }, () => track(scheduler.schedule(server.task, { keepDaily: () => keep, priority: 1 })));
    await clock.advance(50);
    // 5 left, 3 kept: two go; the third would leave 2.
    expect(kept.map((t) => t.state)).toEqual(['fulfilled', 'fulfilled', 'pending']);
    expect(scheduler.stats().parkedUntil).toBeUndefined();
    // Requests that keep nothing (the polls the units were kept for) go, behind it in priority or not.
    const others = Array.from({ length: 2 }, () => track(scheduler.schedule(server.task)));
    await clock.advance(50);
    expect(others.every((t) => t.state === 'fulfilled')).toBe(true);
    expect(kept[2]!.state).toBe('pending');
    // The function is asked again: with nothing more to keep, the last one takes the last unit.
    keep = 0;
    await clock.advance(50);
    expect(kept[2]!.state).toBe('fulfilled');
    expect(server.rejected).toBe(0);
  });

  it('a number is checked like every option', async () => {
    const { scheduler } = setup();
    await expect(scheduler.schedule(() => 1, { keepDaily: -1 })).rejects.toThrow(/keepDaily/);
  });
});
