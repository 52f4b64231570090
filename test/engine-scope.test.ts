import { describe, expect, it } from 'vitest';
import { DailyQuotaExhaustedError } from '../src/errors/daily-quota-exhausted-error.js';
import { of, record, roomy, Script, setup, T0, track } from './helpers/engine.js';
import { SimServer } from './helpers/sim-server.js';

describe('budget scopes', () => {
  it("a 429 in one scope holds back that scope only; each scope's numbers stay its own", async () => {
    const { clock, scheduler } = setup({ maxConcurrent: 8, gateJitter: 0 });
    const script = new Script(clock);
    const log = record(scheduler, clock, ['rateLimited', 'budgetUpdated']);
    // Scope a: limit 3, its first request is refused for 2 s. Scope b: limit 10, plenty left.
    script.plan(1, { status: 429, headers: { ...roomy(0, 3), 'retry-after': '2' } }, { status: 200, headers: roomy(2, 3) });
    for (let id = 2; id <= 5; id++) script.plan(id, { status: 200, headers: roomy(10 - id, 10) });
    const a = track(scheduler.schedule(script.task, { scope: 'a' }));
    const b = Array.from({ length: 4 }, () => track(scheduler.schedule(script.task, { scope: 'b' })));
    await clock.advance(10);
    expect(of(log, 'rateLimited')).toEqual([expect.objectContaining({ id: 1, scope: 'a', waitMs: 2000 })]);
    // b sends its first, reads its numbers, then the rest, while a's gate is closed.
    await clock.advance(30);
    expect(b.every((t) => t.state === 'fulfilled')).toBe(true);
    expect(a.state).toBe('pending');
    const stats = scheduler.stats();
    expect(stats.scopes['a']?.gateUntil).toBe(T0 + 2010);
    expect(stats.scopes['b']?.gateUntil).toBeUndefined();
    expect(stats.scopes['b']?.minute.limit).toBe(10);
    expect(stats.scopes['a']?.minute.limit).toBe(3);
    expect(stats.budget?.minute.limit).toBeUndefined(); // the default scope saw nothing
    expect(scheduler.budget('b')).toEqual(stats.scopes['b']);
    expect(scheduler.budget()).toEqual(stats.budget);
    expect(of(log, 'budgetUpdated').every((e) => e.scope === 'a' || e.scope === 'b')).toBe(true);
    await clock.advance(2000);
    expect(a.state).toBe('fulfilled');
    expect(scheduler.stats().scopes['a']?.minute.remaining).toBe(2);
  });

  it('rescope moves queued tasks to other scopes, in order, and those that come back later too', async () => {
    const { clock, scheduler } = setup({ maxConcurrent: 8, gateJitter: 0 });
    const script = new Script(clock);
    const routes = new WeakMap<object, string>();
    // Nothing known: the default scope sends one request; it is refused at T0 + 20, after the rescope.
    script.plan(1, { status: 429, headers: { ...roomy(0, 5), 'retry-after': '1' }, after: 20 });
    const tasks = ['x', 'y', 'x', 'y'].map((route) => {
      const options = { priority: 0 };
      routes.set(options, route);
      return track(scheduler.schedule(script.task, options));
    });
    await clock.advance(10);
    expect(scheduler.rescope((options) => (options ? routes.get(options) : undefined))).toBe(3);
    await clock.advance(15);
    // The refused task comes back to scope x, not behind the default scope's 1 s gate; y sends its first alongside.
    expect(script.calls.map((c) => [c.id, c.start - T0]).sort((p, q) => p[0]! - q[0]!)).toEqual([
      [1, 0],
      [1, 20],
      [2, 20],
    ]);
    await clock.advance(100);
    expect(tasks.every((t) => t.state === 'fulfilled')).toBe(true);
    expect(Object.keys(scheduler.stats().scopes).sort()).toEqual(['default', 'x', 'y']);
  });

  it("a spent day in one scope parks that scope only; 'reject' fails that scope's queued tasks, not the others'", async () => {
    const dayMs = 10_000;
    const { clock, scheduler } = setup({ windows: { minuteMs: 1000, dayMs }, onDailyLimit: 'reject' });
    // Two endpoints on counters of their own: a has 3 a day, b 100.
    const a = new SimServer(clock, { limit: 1000, windowMs: 1000, kind: 'fixed' }, 4);
    a.daily = { limit: 3, used: 0, resetAt: T0 + dayMs, dayMs };
    const b = new SimServer(clock, { limit: 1000, windowMs: 1000, kind: 'fixed' }, 4);
    b.daily = { limit: 100, used: 0, resetAt: T0 + dayMs, dayMs };
    const log = record(scheduler, clock, ['dailyQuotaExhausted']);
    const ta = Array.from({ length: 6 }, () => track(scheduler.schedule(a.task, { scope: 'a' })));
    const tb = Array.from({ length: 6 }, () => track(scheduler.schedule(b.task, { scope: 'b' })));
    await clock.advance(100);
    expect(ta.slice(0, 3).every((t) => t.state === 'fulfilled')).toBe(true);
    expect(ta.slice(3).every((t) => t.state === 'rejected' && t.error instanceof DailyQuotaExhaustedError)).toBe(true);
    expect(tb.every((t) => t.state === 'fulfilled')).toBe(true);
    expect(of(log, 'dailyQuotaExhausted').map((e) => e.scope)).toEqual(['a']);
    expect(scheduler.budget('a')?.parkedUntil).toBeGreaterThan(clock.now());
    expect(scheduler.budget('b')?.parkedUntil).toBeUndefined();
    // b goes on while a is parked.
    const later = track(scheduler.schedule(b.task, { scope: 'b' }));
    await clock.advance(10);
    expect(later.state).toBe('fulfilled');
  });

  it('rejects a scope that is not a non-empty string', async () => {
    const { clock, scheduler } = setup();
    scheduler.pause();
    const queued = track(scheduler.schedule(() => ({ status: 200, headers: roomy() })));
    expect(() => scheduler.rescope(() => '')).toThrow(/rescope\(\) result/);
    expect(() => scheduler.rescope(() => {
      throw new Error('boom');
    })).toThrow('boom');
    // The task stayed queued, in its scope, and still runs.
    expect(scheduler.stats().queued).toBe(1);
    scheduler.resume();
    await clock.advance(10);
    expect(queued.state).toBe('fulfilled');
    await expect(scheduler.schedule(() => 1, { scope: '' })).rejects.toThrow(/scope/);
    await expect(scheduler.schedule(() => 1, { scope: 5 as never })).rejects.toThrow(/scope/);
  });
});
