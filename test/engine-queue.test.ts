import { describe, expect, it } from 'vitest';
import { PriorityQueue } from '../src/engine/queue.js';
import { QueueClosedError } from '../src/errors/queue-closed-error.js';
import { OutcomeUnknownError } from '../src/errors/outcome-unknown-error.js';
import { TimeoutError } from '../src/errors/timeout-error.js';
import type { Logger } from '../src/internal/logger.js';
import { netError, of, record, res, roomy, Script, setup, T0, track } from './helpers/engine.js';

const ALL = ['queued', 'dispatched', 'succeeded', 'retrying', 'outcomeUnknown', 'failed', 'idle', 'paused', 'resumed'] as const;

describe('priorities and order', () => {
  it('runs higher priorities first and keeps FIFO within a priority', async () => {
    const { clock, scheduler } = setup({ maxConcurrent: 1 });
    const script = new Script(clock);
    scheduler.pause();
    const plan = [0, 5, -1, 5, 10, 0, 5, -1];
    const results = plan.map((priority) => track(scheduler.schedule(script.task, { priority })));
    expect(scheduler.size).toBe(plan.length);
    scheduler.resume();
    await clock.runUntil(() => results.every((r) => r.state !== 'pending'), 5000);
    const order = script.calls.map((c) => c.id);
    // ids are 1-based in scheduling order
    expect(order).toEqual([5, 2, 4, 7, 1, 6, 3, 8]);
    expect(results.every((r) => r.state === 'fulfilled')).toBe(true);
  });

  it('keeps FIFO for a long run of equal priority (ring buffer growth)', async () => {
    const { clock, scheduler } = setup({ maxConcurrent: 3 });
    const script = new Script(clock);
    scheduler.pause();
    const results = Array.from({ length: 100 }, () => track(scheduler.schedule(script.task)));
    scheduler.resume();
    await clock.runUntil(() => results.every((r) => r.state !== 'pending'), 10_000, 50);
    expect(script.calls.map((c) => c.id)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
  });

  it('a task scheduled later with a higher priority overtakes the queue', async () => {
    const { clock, scheduler } = setup({ maxConcurrent: 1 });
    const script = new Script(clock);
    const a = track(scheduler.schedule(script.task)); // dispatched at once
    const b = track(scheduler.schedule(script.task));
    const c = track(scheduler.schedule(script.task, { priority: 1 }));
    await clock.runUntil(() => [a, b, c].every((r) => r.state !== 'pending'), 1000);
    expect(script.calls.map((x) => x.id)).toEqual([1, 3, 2]);
  });
});

describe('abort', () => {
  it('a queued task is removed and rejects with the reason; the task never runs', async () => {
    const { clock, scheduler } = setup({ maxConcurrent: 1 });
    const script = new Script(clock);
    const log = record(scheduler, clock, ['failed', 'cancelled']);
    const first = track(scheduler.schedule(script.task));
    const controller = new AbortController();
    const queued = track(scheduler.schedule(script.task, { signal: controller.signal }));
    const third = track(scheduler.schedule(script.task));
    expect(scheduler.size).toBe(2);
    const reason = new Error('not needed any more');
    controller.abort(reason);
    await clock.flush();
    expect(queued.state).toBe('rejected');
    expect(queued.error).toBe(reason);
    expect(scheduler.size).toBe(1);
    expect(scheduler.stats().queued).toBe(1);
    await clock.runUntil(() => third.state !== 'pending', 1000);
    expect(first.state).toBe('fulfilled');
    expect(third.state).toBe('fulfilled');
    expect(script.calls.map((c) => c.id)).toEqual([1, 3]);
    // Withdrawn by its caller: cancelled, not failed (a dashboard alerting on failures must not fire).
    expect(of(log, 'cancelled')).toEqual([{ id: 2, attempt: 0, reason }]);
    expect(of(log, 'failed')).toEqual([]);
    expect(scheduler.stats().counts).toMatchObject({ scheduled: 3, dispatched: 2, succeeded: 2, failed: 0, cancelled: 1 });
  });

  it('an in-flight task receives the signal and rejects with the reason', async () => {
    const { clock, scheduler } = setup();
    const script = new Script(clock, [], { latencyMs: 1000 });
    const controller = new AbortController();
    const p = track(scheduler.schedule(script.task, { signal: controller.signal }));
    await clock.advance(100);
    expect(scheduler.pending).toBe(1);
    const reason = new Error('stop');
    controller.abort(reason);
    await clock.flush();
    expect(script.calls[0]?.signal.aborted).toBe(true);
    expect(script.calls[0]?.signal.reason).toBe(reason);
    expect(p.state).toBe('rejected');
    expect(p.error).toBe(reason);
    expect(scheduler.pending).toBe(0);
  });

  it('an in-flight task that ignores the signal and then fails still rejects with the reason, not its own error', async () => {
    const { clock, scheduler } = setup();
    const controller = new AbortController();
    const p = track(
      scheduler.schedule(
        () =>
          new Promise((_, reject) => {
            clock.setTimeout(() => reject(Object.assign(new Error('HTTP 503'), { status: 503 })), 500);
          }),
        { signal: controller.signal },
      ),
    );
    await clock.advance(10);
    controller.abort('user');
    await clock.advance(600);
    expect(p.state).toBe('rejected');
    expect(p.error).toBe('user');
    expect(scheduler.stats().counts.retried).toBe(0);
  });

  it.each([
    ['an Error', new Error('cancelled')],
    ['a string', 'cancelled'],
  ])('a task backing off is rejected at once with the reason (%s), and never sent again', async (_label, reason) => {
    const { clock, scheduler } = setup({ retry: { baseDelayMs: 10_000, maxDelayMs: 10_000 } });
    const script = new Script(clock, [{ status: 503 }]);
    const controller = new AbortController();
    const p = track(scheduler.schedule(script.task, { signal: controller.signal }));
    await clock.advance(20);
    expect(scheduler.stats().backingOff).toBe(1);
    controller.abort(reason);
    await clock.flush();
    expect(p.state).toBe('rejected');
    expect(p.error).toBe(reason);
    expect(scheduler.stats().backingOff).toBe(0);
    await clock.advance(20_000);
    expect(script.calls).toHaveLength(1);
    await scheduler.onIdle();
  });

  it('a task re-queued for a retry can be aborted while queued', async () => {
    const { clock, scheduler } = setup({ maxConcurrent: 1, retry: { baseDelayMs: 100, maxDelayMs: 100 } });
    const script = new Script(clock, [{ status: 500 }, { status: 200, headers: roomy(), after: 5000 }]);
    const controller = new AbortController();
    const p = track(scheduler.schedule(script.task, { signal: controller.signal }));
    const blocker = track(scheduler.schedule(script.task, { priority: 9 }));
    // attempt 1 fails at 10; the blocker takes the only slot; the retry waits in the queue
    await clock.advance(500);
    expect(script.calls.map((c) => c.id)).toEqual([1, 2]);
    expect(scheduler.size).toBe(1);
    controller.abort(new Error('gone'));
    await clock.flush();
    expect(p.state).toBe('rejected');
    expect((p.error as Error).message).toBe('gone');
    expect(scheduler.size).toBe(0);
    await clock.advance(5000);
    expect(blocker.state).toBe('fulfilled');
    expect(script.calls).toHaveLength(2);
  });
});

describe('timeouts', () => {
  it('a per-task timeout aborts the attempt; without idempotency the outcome is unknown', async () => {
    const { clock, scheduler } = setup();
    const script = new Script(clock, [{ status: 200, headers: roomy(), after: 10_000 }]);
    const log = record(scheduler, clock, ['outcomeUnknown', 'retrying']);
    const p = track(scheduler.schedule(script.task, { timeoutMs: 300 }));
    await clock.advance(299);
    expect(p.state).toBe('pending');
    await clock.advance(2);
    expect(p.state).toBe('rejected');
    expect(p.error).toBeInstanceOf(OutcomeUnknownError);
    expect((p.error as OutcomeUnknownError).cause).toBeInstanceOf(TimeoutError);
    expect(script.calls[0]?.signal.reason).toBeInstanceOf(TimeoutError);
    expect(of(log, 'outcomeUnknown')).toEqual([expect.objectContaining({ id: 1, attempt: 1, resent: false })]);
    expect(of(log, 'retrying')).toEqual([]);
  });

  it('an idempotent task that times out is retried with reason "timeout"', async () => {
    const { clock, scheduler } = setup({ timeoutMs: 300, retry: { baseDelayMs: 100 } });
    const script = new Script(clock, [{ status: 200, headers: roomy(), after: 10_000 }]);
    const log = record(scheduler, clock, ['retrying', 'outcomeUnknown']);
    const p = track(scheduler.schedule(script.task, { idempotent: true }));
    await clock.advance(1000);
    expect(p.state).toBe('fulfilled');
    expect(script.calls).toHaveLength(2);
    expect(of(log, 'outcomeUnknown')).toEqual([expect.objectContaining({ resent: true })]);
    expect(of(log, 'retrying')).toEqual([expect.objectContaining({ id: 1, attempt: 1, reason: 'timeout' })]);
  });

  it('a per-task timeoutMs of 0 overrides the scheduler default', async () => {
    const { clock, scheduler } = setup({ timeoutMs: 100 });
    const script = new Script(clock, [{ status: 200, headers: roomy(), after: 5000 }]);
    const p = track(scheduler.schedule(script.task, { timeoutMs: 0 }));
    await clock.advance(5001);
    expect(p.state).toBe('fulfilled');
  });

  it('a task that settles after its timeout is ignored: its body is released and nothing is counted twice', async () => {
    const { clock, scheduler } = setup();
    let dumped = 0;
    const late = { statusCode: 200, headers: roomy(), body: { dump: async () => void dumped++ } };
    const p = track(
      scheduler.schedule(() => new Promise((resolve) => clock.setTimeout(() => resolve(late), 1000)), { timeoutMs: 100 }),
    );
    await clock.advance(2000);
    expect(p.state).toBe('rejected');
    expect(dumped).toBe(1);
    expect(scheduler.stats().counts).toMatchObject({ dispatched: 1, succeeded: 0, failed: 1, outcomeUnknown: 1 });
    expect(scheduler.stats().inFlight).toBe(0);
  });
});

describe('pause and resume', () => {
  it('pause stops dispatching, lets in-flight work finish, and resume restarts it', async () => {
    const { clock, scheduler } = setup();
    const script = new Script(clock, [], { latencyMs: 100 });
    const log = record(scheduler, clock, ['paused', 'resumed']);
    const a = track(scheduler.schedule(script.task));
    scheduler.pause();
    scheduler.pause();
    expect(scheduler.isPaused).toBe(true);
    const b = track(scheduler.schedule(script.task));
    await clock.advance(1000);
    expect(a.state).toBe('fulfilled');
    expect(b.state).toBe('pending');
    expect(script.calls).toHaveLength(1);
    expect(scheduler.stats()).toMatchObject({ paused: true, queued: 1, inFlight: 0 });
    scheduler.resume();
    scheduler.resume();
    await clock.advance(200);
    expect(b.state).toBe('fulfilled');
    expect(log.map((r) => [r.name, r.event])).toEqual([
      ['paused', { reason: 'user' }],
      ['resumed', { reason: 'user' }],
    ]);
  });
});

describe('close', () => {
  it('close() drains by default: queued and in-flight tasks finish, new ones are refused', async () => {
    const { clock, scheduler } = setup({ maxConcurrent: 2 });
    const script = new Script(clock, [], { latencyMs: 100 });
    const results = Array.from({ length: 6 }, () => track(scheduler.schedule(script.task)));
    const closed = track(scheduler.close());
    await expect(scheduler.schedule(script.task)).rejects.toBeInstanceOf(QueueClosedError);
    expect(scheduler.stats().closed).toBe(true);
    await clock.runUntil(() => closed.state !== 'pending', 5000);
    expect(closed.state).toBe('fulfilled');
    expect(results.every((r) => r.state === 'fulfilled')).toBe(true);
    expect(script.calls).toHaveLength(6);
    expect(clock.pendingTimers).toBe(0);
  });

  it('close({drain: true}) waits for a task backing off, which is still retried', async () => {
    const { clock, scheduler } = setup({ retry: { baseDelayMs: 1000, maxDelayMs: 1000 } });
    const script = new Script(clock, [{ status: 502 }]);
    const p = track(scheduler.schedule(script.task));
    await clock.advance(20);
    expect(scheduler.stats().backingOff).toBe(1);
    const closed = track(scheduler.close());
    await clock.advance(2000);
    expect(p.state).toBe('fulfilled');
    expect(closed.state).toBe('fulfilled');
    expect(script.calls).toHaveLength(2);
  });

  it('close({drain: false}) rejects queued tasks, aborts in-flight ones, and cancels backoffs at once', async () => {
    const { clock, scheduler } = setup({ maxConcurrent: 1, retry: { baseDelayMs: 30_000, maxDelayMs: 30_000 } });
    const script = new Script(clock, [{ status: 503 }, { status: 200, headers: roomy(), after: 60_000 }]);
    const backing = track(scheduler.schedule(script.task)); // 503, then backs off ~15 s
    await clock.advance(20);
    expect(scheduler.stats().backingOff).toBe(1);
    const inFlight = track(scheduler.schedule(script.task)); // a slow 200
    const queued = track(scheduler.schedule(script.task));
    await clock.advance(10);
    expect(scheduler.stats()).toMatchObject({ inFlight: 1, queued: 1, backingOff: 1 });
    const closed = track(scheduler.close({ drain: false }));
    await clock.advance(10);
    expect(closed.state).toBe('fulfilled');
    expect(queued.error).toBeInstanceOf(QueueClosedError);
    expect(inFlight.error).toBeInstanceOf(QueueClosedError);
    expect(script.calls[1]?.signal.reason).toBeInstanceOf(QueueClosedError);
    expect(backing.error).toBeInstanceOf(QueueClosedError);
    await clock.advance(60_000);
    // nothing was sent after close
    expect(script.calls).toHaveLength(2);
    expect(scheduler.stats()).toMatchObject({ inFlight: 0, queued: 0, backingOff: 0 });
    expect(clock.pendingTimers).toBe(0);
  });

  it('an idle scheduler closes at once and leaves no timer behind', async () => {
    const { clock, scheduler } = setup();
    const script = new Script(clock);
    const p = track(scheduler.schedule(script.task));
    await clock.advance(50);
    expect(p.state).toBe('fulfilled');
    await scheduler.close();
    expect(clock.pendingTimers).toBe(0);
  });
});

describe('onIdle, onEmpty, onSizeLessThan', () => {
  it('onEmpty resolves as soon as the last queued task is dispatched, while it is still in flight', async () => {
    const { clock, scheduler } = setup();
    const script = new Script(clock, [], { latencyMs: 10_000 });
    scheduler.pause();
    for (let i = 0; i < 3; i++) void scheduler.schedule(script.task);
    const empty = track(scheduler.onEmpty());
    const idle = track(scheduler.onIdle());
    await clock.advance(10);
    expect(empty.state).toBe('pending');
    scheduler.resume();
    await clock.advance(10);
    // the first answer is awaited alone (unknown limits); then all go
    await clock.advance(10_000);
    expect(scheduler.size).toBe(0);
    expect(scheduler.pending).toBe(2);
    expect(empty.state).toBe('fulfilled');
    expect(idle.state).toBe('pending');
    await clock.advance(10_000);
    expect(idle.state).toBe('fulfilled');
  });

  it('onSizeLessThan(n) resolves as dispatch makes room, for backpressure', async () => {
    const { clock, scheduler } = setup({ maxConcurrent: 2 });
    const script = new Script(clock, [], { latencyMs: 1000 });
    for (let i = 0; i < 6; i++) void scheduler.schedule(script.task);
    await clock.advance(1000); // the first answer sets the budget: two go at a time
    expect(scheduler.size).toBe(3);
    const below3 = track(scheduler.onSizeLessThan(3));
    const below1 = track(scheduler.onSizeLessThan(1));
    const below10 = track(scheduler.onSizeLessThan(10));
    await clock.flush();
    expect(below10.state).toBe('fulfilled');
    expect(below3.state).toBe('pending');
    await clock.advance(1000);
    expect(scheduler.size).toBe(1);
    expect(below3.state).toBe('fulfilled');
    expect(below1.state).toBe('pending');
    await clock.advance(1000);
    expect(below1.state).toBe('fulfilled');
  });

  it('onEmpty and onSizeLessThan also resolve when a dispatch happens on a timer', async () => {
    // A 429 closes the gate; the wake timer reopens it and lets one request through.
    const { clock, scheduler } = setup();
    const script = new Script(clock, [{ status: 429, headers: { 'retry-after': '1', ...roomy(0) } }], { latencyMs: 5000 });
    const tasks = Array.from({ length: 2 }, () => track(scheduler.schedule(script.task)));
    await clock.advance(5000); // the 429 arrives: both tasks wait at the gate
    expect(scheduler.size).toBe(2);
    const below2 = track(scheduler.onSizeLessThan(2));
    await clock.advance(1000);
    expect(below2.state).toBe('pending');
    await clock.advance(100); // the gate reopens on a timer: one probe goes
    expect(scheduler.size).toBe(1);
    expect(scheduler.pending).toBe(1);
    expect(below2.state).toBe('fulfilled');
    const empty = track(scheduler.onEmpty());
    await clock.advance(5000); // the probe's answer lets the last one go
    expect(scheduler.size).toBe(0);
    expect(empty.state).toBe('fulfilled');
    await clock.advance(5000);
    expect(tasks.every((t) => t.state === 'fulfilled')).toBe(true);
  });

  it('the idle event fires once per busy period, with totals', async () => {
    const { clock, scheduler } = setup();
    const script = new Script(clock, [{ status: 404 }]);
    const log = record(scheduler, clock, ['idle']);
    const a = track(scheduler.schedule(script.task));
    const b = track(scheduler.schedule(script.task));
    const idle = track(scheduler.onIdle());
    await clock.runUntil(() => idle.state !== 'pending', 1000);
    expect([a.state, b.state]).toEqual(['rejected', 'fulfilled']);
    expect(of(log, 'idle')).toEqual([{ succeeded: 1, failed: 1 }]);
    void scheduler.schedule(script.task);
    await clock.advance(50);
    expect(of(log, 'idle')).toEqual([
      { succeeded: 1, failed: 1 },
      { succeeded: 2, failed: 1 },
    ]);
  });
});

describe('stats and events', () => {
  it('counts every kind of outcome, and events carry one payload object each', async () => {
    const { clock, scheduler } = setup({ maxConcurrent: 1, retry: { baseDelayMs: 100 } });
    const script = new Script(clock)
      .plan(1, { status: 200, headers: roomy(999) }) // ok
      .plan(2, { status: 503 }, { status: 200, headers: roomy(990) }) // retried, then ok
      .plan(3, { status: 429, headers: { 'retry-after': '1', ...roomy(0) } }, { status: 200, headers: roomy(980) }) // 429, then ok
      .plan(4, { status: 404 }) // fails
      .plan(5, { error: netError('ECONNRESET') }); // outcome unknown, not idempotent
    const log = record(scheduler, clock, [...ALL]);
    const results = Array.from({ length: 5 }, () => track(scheduler.schedule(script.task)));
    await clock.runUntil(() => results.every((r) => r.state !== 'pending'), 10_000);
    expect(results.map((r) => r.state)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'rejected']);
    expect(scheduler.stats().counts).toEqual({
      scheduled: 5,
      dispatched: 7,
      succeeded: 3,
      failed: 2,
      cancelled: 0,
      retried: 1,
      rateLimited: 1,
      outcomeUnknown: 1,
    });
    expect(scheduler.stats()).toMatchObject({ queued: 0, inFlight: 0, backingOff: 0, paused: false, closed: false });
    expect(of(log, 'queued')[0]).toEqual({ id: 1, priority: 0, queued: 1 });
    const dispatched = of(log, 'dispatched').map((e) => `${e.id}.${e.attempt}`);
    expect(dispatched.sort()).toEqual(['1.1', '2.1', '2.2', '3.1', '3.1', '4.1', '5.1']);
    expect(of(log, 'succeeded')[0]).toEqual({ id: 1, attempt: 1, status: 200, latencyMs: 10 });
    expect(of(log, 'retrying')).toEqual([expect.objectContaining({ id: 2, attempt: 1, reason: 'server-error' })]);
    expect(of(log, 'failed').map((e) => [e.id, e.attempt, (e.error as Error).name])).toEqual([
      [4, 1, 'NotFoundError'],
      [5, 1, 'OutcomeUnknownError'],
    ]);
    expect(of(log, 'outcomeUnknown')).toEqual([expect.objectContaining({ id: 5, attempt: 1, resent: false })]);
    expect(of(log, 'idle')).toEqual([{ succeeded: 3, failed: 2 }]);
  });

  it('a listener that throws is logged and changes nothing', async () => {
    const errors: unknown[] = [];
    const logger: Logger = {
      debug() {},
      info() {},
      warn() {},
      error: (obj, msg) => errors.push([msg, (obj as { err: Error }).err.message]),
      child: () => logger,
    };
    const { clock, scheduler } = setup({ logger });
    const script = new Script(clock);
    for (const name of ALL) {
      scheduler.on(name, () => {
        throw new Error(`listener of ${name}`);
      });
    }
    const seen: number[] = [];
    scheduler.on('succeeded', (e) => seen.push(e.id));
    const results = Array.from({ length: 3 }, () => track(scheduler.schedule(script.task)));
    await clock.advance(100);
    expect(results.map((r) => r.state)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
    expect(seen).toEqual([1, 2, 3]);
    expect(errors).toContainEqual(['event listener threw', 'listener of succeeded']);
    expect(errors).toContainEqual(['event listener threw', 'listener of queued']);
  });

  it('once() and off() detach listeners, and listenerCount reflects it', async () => {
    const { clock, scheduler } = setup();
    const script = new Script(clock);
    const seen: string[] = [];
    const every = (): void => void seen.push('every');
    scheduler.once('succeeded', () => seen.push('once'));
    scheduler.on('succeeded', every);
    expect(scheduler.listenerCount('succeeded')).toBe(2);
    await Promise.all([scheduler.schedule(script.task), clock.advance(20)]);
    scheduler.off('succeeded', every);
    scheduler.off('idle', every);
    await Promise.all([scheduler.schedule(script.task), clock.advance(20)]);
    expect(seen).toEqual(['once', 'every']);
    expect(scheduler.listenerCount()).toBe(0);
    scheduler.on('idle', every);
    scheduler.removeAllListeners();
    expect(scheduler.has('idle')).toBe(false);
  });
});

describe('task shapes', () => {
  it('synchronous tasks, values without a status, and thousands of them, do not overflow the stack', async () => {
    const { clock, scheduler } = setup({ maxConcurrent: Infinity });
    const n = 20_000;
    const results: Promise<number>[] = [];
    for (let i = 0; i < n; i++) results.push(scheduler.schedule(() => i));
    await clock.advance(10);
    const values = await Promise.all(results);
    expect(values[n - 1]).toBe(n - 1);
    expect(scheduler.stats().counts.succeeded).toBe(n);
  });

  it('a task that throws synchronously fails without a retry (a bug, not a transient error)', async () => {
    const { scheduler } = setup();
    const bug = new TypeError('x is not a function');
    await expect(
      scheduler.schedule(() => {
        throw bug;
      }),
    ).rejects.toBe(bug);
    expect(scheduler.stats().counts.retried).toBe(0);
  });

  it('reads undici-style {statusCode, headers} and fetch-style Headers', async () => {
    const { clock, scheduler } = setup();
    const a = track(scheduler.schedule(async () => ({ statusCode: 200, headers: roomy(41, 42) })));
    await clock.advance(10);
    expect(a.state).toBe('fulfilled');
    expect(scheduler.stats().budget?.minute.limit).toBe(42);
    const b = track(scheduler.schedule(async () => new Response(null, { status: 200, headers: roomy(30, 40) })));
    await clock.advance(10);
    expect(b.state).toBe('fulfilled');
    expect(scheduler.stats().budget?.minute.limit).toBe(40);
    expect(res(200).status).toBe(200);
  });

  it('exposes the task context: id, attempt and a signal', async () => {
    const { clock, scheduler } = setup({ retry: { baseDelayMs: 1 } });
    const seen: [number, number, boolean][] = [];
    let n = 0;
    const p = scheduler.schedule(async (ctx) => {
      seen.push([ctx.id, ctx.attempt, ctx.signal.aborted]);
      return n++ === 0 ? { status: 500, headers: {} } : { status: 200, headers: roomy() };
    });
    await clock.advance(100);
    await expect(p).resolves.toMatchObject({ status: 200 });
    expect(seen).toEqual([
      [1, 1, false],
      [1, 2, false],
    ]);
    expect(T0).toBeGreaterThan(0);
  });
});

describe('PriorityQueue (pure)', () => {
  const item = (id: number, priority = 0) => ({ id, priority, cancelled: false });

  it('orders by priority, FIFO within one, through ring growth and wrap-around', () => {
    const q = new PriorityQueue<ReturnType<typeof item>>();
    const out: number[] = [];
    // wrap the ring: push and shift so the head moves, then grow past 16
    for (let i = 1; i <= 10; i++) q.push(item(i));
    for (let i = 0; i < 8; i++) out.push(q.shift()!.id);
    for (let i = 11; i <= 40; i++) q.push(item(i, i % 2 === 0 ? 1 : 0));
    while (q.size > 0) out.push(q.shift()!.id);
    const high = Array.from({ length: 15 }, (_, i) => 12 + 2 * i); // priority 1: 12, 14, ..., 40
    const low = [9, 10, ...Array.from({ length: 15 }, (_, i) => 11 + 2 * i)]; // priority 0: 9, 10, 11, 13, ..., 39
    expect(out).toEqual([1, 2, 3, 4, 5, 6, 7, 8, ...high, ...low]);
    expect(q.shift()).toBeUndefined();
  });

  it('unshift puts items back ahead of later ones, keeping their own order, across a wrapped ring', () => {
    const q = new PriorityQueue<ReturnType<typeof item>>();
    for (let i = 1; i <= 14; i++) q.push(item(i));
    const a = q.shift()!;
    const b = q.shift()!;
    const c = q.shift()!;
    // sent back in reverse order of arrival
    q.unshift(c);
    q.unshift(a);
    q.unshift(b);
    for (let i = 15; i <= 20; i++) q.push(item(i)); // grow while returned items sit at the front
    const out: number[] = [];
    while (q.size > 0) out.push(q.shift()!.id);
    expect(out).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  it('cancel removes lazily, drain returns only live items and empties the queue', () => {
    const q = new PriorityQueue<ReturnType<typeof item>>();
    const items = [item(1), item(2, 5), item(3), item(4, -1)];
    for (const i of items) q.push(i);
    q.cancel(items[0]!);
    q.cancel(items[0]!);
    expect(q.size).toBe(3);
    expect([...q.drain()].map((i) => i.id)).toEqual([2, 3, 4]);
    expect(q.size).toBe(0);
    expect(q.shift()).toBeUndefined();
    q.push(item(9));
    expect(q.shift()?.id).toBe(9);
  });
});

