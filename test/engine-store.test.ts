/**
 * The engine against a store that answers with promises, as a shared (Redis)
 * store does: readiness, leases, failures and recovery. The store here wraps
 * the memory store and can be told to fail.
 */
import { describe, expect, it } from 'vitest';
import { BudgetState } from '../src/store/budget-state.js';
import { MemoryStore } from '../src/store/memory-store.js';
import type { BudgetConfig, BudgetView, Outcome, ReserveResult, SettleResult, Store, Ticket } from '../src/store/types.js';
import { of, record, roomy, Script, setup, T0, track } from './helpers/engine.js';

class AsyncStore implements Store {
  readonly shared = true;
  readonly inner = new MemoryStore();
  readonly leases: string[] = [];
  failInit: Error | undefined;
  failReserve = 0;
  failSettle = 0;
  failView = 0;
  /** Answer `blockedBy: 'store'` this many times (a store that reports itself down). */
  down = 0;
  #ready: () => void = () => {};
  #reservations = 0;
  readonly readyGate: Promise<void>;

  constructor(readyAtOnce = true) {
    this.readyGate = readyAtOnce ? Promise.resolve() : new Promise((r) => (this.#ready = r));
  }

  open(): void {
    this.#ready();
  }

  async init(config: BudgetConfig): Promise<void> {
    await this.readyGate;
    if (this.failInit) throw this.failInit;
    this.inner.init(config);
  }

  async reserve(want: number, now: number): Promise<ReserveResult> {
    if (this.failReserve > 0) {
      this.failReserve--;
      throw new Error('ECONNREFUSED redis');
    }
    if (this.down > 0) {
      this.down--;
      const r = this.inner.reserve(0, now);
      return { ...r, granted: 0, blockedBy: 'store', retryAt: now + 100 };
    }
    const r = this.inner.reserve(want, now);
    // as a shared store does: a prefix unique to this reservation
    return { ...r, leasePrefix: `p${++this.#reservations}:` };
  }

  async settle(ticket: Ticket, outcome: Outcome): Promise<SettleResult> {
    this.leases.push(ticket.lease);
    if (this.failSettle > 0) {
      this.failSettle--;
      throw new Error('settle lost');
    }
    return this.inner.settle(ticket, outcome);
  }

  async view(now: number): Promise<BudgetView> {
    if (this.failView > 0) {
      this.failView--;
      throw new Error('view lost');
    }
    return this.inner.view(now);
  }

  async close(): Promise<void> {}
}

describe('a store that answers with promises (shared)', () => {
  it('waits for init: nothing is dispatched before the store is ready', async () => {
    const store = new AsyncStore(false);
    const { clock, scheduler } = setup({ store });
    const script = new Script(clock);
    const tasks = Array.from({ length: 3 }, () => track(scheduler.schedule(script.task)));
    const ready = track(scheduler.ready());
    await clock.advance(100);
    expect(script.calls).toHaveLength(0);
    expect(ready.state).toBe('pending');
    expect(scheduler.stats().budget).toBeUndefined();
    store.open();
    await clock.advance(100);
    expect(ready.state).toBe('fulfilled');
    expect(tasks.every((t) => t.state === 'fulfilled')).toBe(true);
    // leases are per request: prefix + index
    expect(new Set(store.leases).size).toBe(store.leases.length);
    expect(store.leases.every((l) => /^p\d+:\d+$/.test(l))).toBe(true);
  });

  it('a store that cannot be reached at init stops the scheduler: ready() and every task reject with its error', async () => {
    const store = new AsyncStore(false);
    store.failInit = new Error('connect ECONNREFUSED 127.0.0.1:6379');
    const { clock, scheduler } = setup({ store });
    const log = record(scheduler, clock, ['paused']);
    const script = new Script(clock);
    const tasks = Array.from({ length: 2 }, () => track(scheduler.schedule(script.task)));
    store.open();
    await clock.advance(10);
    await expect(scheduler.ready()).rejects.toBe(store.failInit);
    expect(tasks.map((t) => t.error)).toEqual([store.failInit, store.failInit]);
    expect(of(log, 'paused')).toEqual([{ reason: 'store' }]);
    await expect(scheduler.schedule(script.task)).rejects.toBe(store.failInit);
    expect(script.calls).toHaveLength(0);
  });

  it('a failed reservation is reported once, retried, and the recovery is reported', async () => {
    const store = new AsyncStore();
    const { clock, scheduler } = setup({ store });
    const log = record(scheduler, clock, ['storeUnavailable', 'storeRecovered']);
    await scheduler.ready();
    store.failReserve = 2;
    const script = new Script(clock);
    const p = track(scheduler.schedule(script.task));
    await clock.advance(400);
    expect(script.calls).toHaveLength(0);
    expect(log.map((e) => e.name)).toEqual(['storeUnavailable']);
    expect((of(log, 'storeUnavailable')[0]?.error as Error).message).toBe('ECONNREFUSED redis');
    await clock.advance(1500);
    expect(p.state).toBe('fulfilled');
    expect(log.map((e) => e.name)).toEqual(['storeUnavailable', 'storeRecovered']);
  });

  it('a store that answers "down" is reported as unavailable, then recovered', async () => {
    const store = new AsyncStore();
    const { clock, scheduler } = setup({ store });
    const log = record(scheduler, clock, ['storeUnavailable', 'storeRecovered']);
    await scheduler.ready();
    store.down = 2;
    const script = new Script(clock);
    const p = track(scheduler.schedule(script.task));
    await clock.advance(1000);
    expect(p.state).toBe('fulfilled');
    expect(log.map((e) => [e.name, (e.event as { error?: unknown }).error])).toEqual([
      ['storeUnavailable', undefined],
      ['storeRecovered', undefined],
    ]);
  });

  it('a lost settle is reported and does not lose the task', async () => {
    const store = new AsyncStore();
    const { clock, scheduler } = setup({ store });
    const log = record(scheduler, clock, ['storeUnavailable']);
    await scheduler.ready();
    const script = new Script(clock);
    await Promise.all([scheduler.schedule(script.task), clock.advance(20)]);
    // (a shared store reclaims the unit of a lost settle when its lease expires)
    store.failSettle = 1;
    const tasks = Array.from({ length: 3 }, () => track(scheduler.schedule(script.task)));
    await clock.advance(2000);
    expect(tasks.every((t) => t.state === 'fulfilled')).toBe(true);
    expect(of(log, 'storeUnavailable')).toHaveLength(1);
  });

  it('stats() serves the last view it has, and refreshes it in the background', async () => {
    const store = new AsyncStore();
    const { clock, scheduler } = setup({ store });
    await scheduler.ready();
    expect(scheduler.stats().budget).toBeUndefined(); // asked, not yet answered
    await clock.flush();
    expect(scheduler.stats().budget?.sent).toBe(0);
    const script = new Script(clock, [], { fallback: { status: 200, headers: roomy(40, 50) } });
    await Promise.all([scheduler.schedule(script.task), clock.advance(50)]);
    await clock.flush();
    expect(scheduler.stats().budget?.minute.limit).toBe(50);
    store.failView = 1;
    await Promise.all([scheduler.schedule(script.task), clock.advance(50)]);
    await clock.flush();
    // the refresh failed: the last view stays, and the next call reads again
    expect(scheduler.stats().budget?.minute.limit).toBe(50);
    await clock.flush();
    expect(scheduler.stats().budget?.sent).toBe(2);
  });

  it('retunes concurrency from the limit and tells budgetUpdated, once the shared view arrives', async () => {
    const store = new AsyncStore();
    const { clock, scheduler } = setup({ store });
    const log = record(scheduler, clock, ['budgetUpdated']);
    await scheduler.ready();
    const script = new Script(clock, [], { latencyMs: 200, fallback: { status: 200, headers: roomy(250, 300) } });
    const tasks = Array.from({ length: 100 }, () => track(scheduler.schedule(script.task)));
    await clock.runUntil(() => tasks.every((t) => t.state !== 'pending'), 10_000, 100);
    expect(tasks.every((t) => t.state === 'fulfilled')).toBe(true);
    const updates = of(log, 'budgetUpdated');
    expect(updates.length).toBeGreaterThan(0);
    expect(updates.at(-1)?.minute.limit).toBe(300);
    // 300 per minute at ~200 ms: about 50, not the default 64
    expect(scheduler.stats().concurrency).toBeLessThanOrEqual(50);
    expect(scheduler.stats().concurrency).toBeGreaterThanOrEqual(40);
  });

  it('close() releases the tickets it was granted but did not use', async () => {
    const store = new AsyncStore();
    const { clock, scheduler } = setup({ store, maxConcurrent: 4 });
    await scheduler.ready();
    const script = new Script(clock, [], { latencyMs: 100 });
    const first = track(scheduler.schedule(script.task));
    await clock.advance(150);
    expect(first.state).toBe('fulfilled');
    // a reservation is answered while the queue was drained by close({drain: false})
    const tasks = Array.from({ length: 4 }, () => track(scheduler.schedule(script.task)));
    const closing = track(scheduler.close({ drain: false }));
    await clock.advance(200);
    expect(closing.state).toBe('fulfilled');
    expect(tasks.every((t) => t.state === 'rejected')).toBe(true);
    const { sent, done } = store.inner.view(clock.now());
    expect(done).toBe(sent);
  });
});

describe('the budget state machine, directly', () => {
  const config = { minuteMs: 1000, dayMs: 100_000, seeds: {}, marginMs: 2, leaseMs: 5000 };

  it('nothing known: one request, then wait for its answer', () => {
    const state = new BudgetState(config);
    expect(state.reserve(3, T0)).toMatchObject({ granted: 1, blockedBy: 'budget' });
    expect(state.reserve(1, T0)).toMatchObject({ granted: 0, blockedBy: 'unknown-limit', retryAt: undefined });
  });

  it('keeps an answer log longer than its first ring (growth), and expires it a window later', () => {
    const state = new BudgetState({ ...config, seeds: { minute: 500 } });
    const r = state.reserve(200, T0);
    expect(r.granted).toBe(200);
    const ticket = { ...r.ticket, lease: '' };
    for (let i = 0; i < 200; i++) {
      state.settle(ticket, { now: T0 + 10 + i, status: 200, snapshot: undefined, sent: true, jitterMs: 0, fallbackGateMs: 0 });
    }
    // no counts from the server: each answer is charged until it leaves the window
    expect(state.view(T0 + 300).minute).toMatchObject({ remaining: 300, uncounted: 0, available: 300 });
    expect(state.view(T0 + 1112).minute.remaining).toBe(401);
    expect(state.view(T0 + 1300).minute.remaining).toBe(500);
  });

  it('memory store: used before init, it says how to fix it', () => {
    expect(() => new MemoryStore().reserve(1, T0)).toThrow(/before init\(\)/);
  });
});
