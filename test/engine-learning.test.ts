import { describe, expect, it } from 'vitest';
import { Aimd } from '../src/engine/aimd.js';
import type { SchedulerOptions } from '../src/engine/options.js';
import { MemoryStore } from '../src/store/memory-store.js';
import type { RateLimitSnapshot } from '../src/headers/types.js';
import type { Ticket } from '../src/store/types.js';
import { SimServer, type SimWindow } from './helpers/sim-server.js';
import { of, prng, record, roomy, Script, setup, T0, track } from './helpers/engine.js';

interface Drive {
  kind?: SimWindow['kind'];
  limit: number;
  windowMs?: number;
  jobs: number;
  phaseMs?: number;
  latencyMs?: number;
  options?: SchedulerOptions;
  configure?: (server: SimServer) => void;
  /** Called once per step with the time since the start. */
  during?: (elapsed: number, server: SimServer) => void;
}

/** Runs `jobs` tasks against a SimServer and reports what the server saw. */
async function drive(d: Drive) {
  const windowMs = d.windowMs ?? 1000;
  const { clock, scheduler } = setup({ windows: { minuteMs: windowMs, dayMs: windowMs * 1000 }, ...d.options });
  const server = new SimServer(clock, { limit: d.limit, windowMs, kind: d.kind ?? 'fixed', phaseMs: d.phaseMs ?? 0 }, d.latencyMs ?? 10);
  d.configure?.(server);
  const log = record(scheduler, clock, ['dispatched', 'budgetUpdated']);
  let done = 0;
  let failed = 0;
  for (let i = 0; i < d.jobs; i++) {
    void scheduler.schedule(server.task).then(
      () => done++,
      () => failed++,
    );
  }
  const step = windowMs / 20;
  const maxMs = windowMs * (d.jobs / Math.max(1, d.limit) + 10) * 4;
  while (done + failed < d.jobs && clock.now() - T0 < maxMs) {
    d.during?.(clock.now() - T0, server);
    await clock.advance(step);
  }
  const makespan = Math.max(...server.accepted) - T0;
  /** Index of the server window (fixed kind) that `t` falls in. */
  const windowOf = (t: number) => Math.floor((t - T0 - (d.phaseMs ?? 0)) / windowMs);
  const firstWindow = windowOf(T0);
  return { clock, scheduler, server, log, done, failed, makespan, windowOf, firstWindow, windowMs };
}

/** Accepted requests per fixed window index. */
function perWindow(accepted: number[], windowOf: (t: number) => number): Map<number, number> {
  const counts = new Map<number, number>();
  for (const t of accepted) counts.set(windowOf(t), (counts.get(windowOf(t)) ?? 0) + 1);
  return counts;
}

describe('when the server sends no rate-limit headers, AIMD converges without storms', () => {
  it.each([
    ['fixed, 429s bare', 'fixed', 'none'],
    ['fixed, 429s with Retry-After only', 'fixed', 'retry-after'],
    ['sliding, 429s bare', 'sliding', 'none'],
  ] as const)('%s', async (_label, kind, on429) => {
    const r = await drive({
      kind,
      limit: 10,
      jobs: 150,
      configure: (s) => {
        s.headers = false;
        s.headersOn429 = on429;
      },
    });
    expect(r.done).toBe(150);
    // No storm: the slow start overshoots the first window by at most about the limit ...
    const first = r.server.rejectedAt.filter((t) => t - T0 < 1000).length;
    expect(first).toBeLessThanOrEqual(2 * 10);
    // ... and afterwards a 429 is rare: about one per AIMD probe of the ceiling.
    expect(r.server.rejected - first).toBeLessThanOrEqual(10);
    // It still gets the work done at a decent pace (ideal: 14 windows).
    expect(r.makespan).toBeLessThan(2 * 14_000);
    expect(r.scheduler.stats().budget?.minute.limit).toBeUndefined();
  });

  it('starts with one request, then grows by one per answer (slow start)', async () => {
    const r = await drive({
      limit: 1000,
      jobs: 40,
      latencyMs: 100,
      configure: (s) => {
        s.headers = false;
      },
    });
    // dispatches per round trip (100 ms): 1, 2, 4, 8, ... one more allowed in flight per answer
    const rounds = new Map<number, number>();
    for (const e of r.log) if (e.name === 'dispatched') rounds.set(Math.round((e.at - T0) / 100), (rounds.get(Math.round((e.at - T0) / 100)) ?? 0) + 1);
    expect([...rounds.values()].slice(0, 5)).toEqual([1, 2, 4, 8, 16]);
    expect(r.server.rejected).toBe(0);
  });

  it('a 429 that carries the window numbers does not switch AIMD on: the budget governs', async () => {
    const { clock, scheduler } = setup({ windows: { minuteMs: 1000 } });
    const script = new Script(clock, [{ status: 200, headers: roomy(50, 100) }, { status: 429, headers: { 'retry-after-ms': '200', ...roomy(0, 100) } }], {
      fallback: { status: 200, headers: roomy(90, 100) },
    });
    const a = track(scheduler.schedule(script.task));
    await clock.advance(10);
    expect(a.state).toBe('fulfilled');
    const tasks = Array.from({ length: 20 }, () => track(scheduler.schedule(script.task)));
    await clock.advance(1000);
    expect(tasks.every((t) => t.state === 'fulfilled')).toBe(true);
    // after the gate: one probe, then everything at once (AIMD would release ~1 at a time)
    const starts = script.calls.slice(2).map((c) => c.start);
    const burst = starts.filter((t) => t === starts[1]).length;
    expect(burst).toBeGreaterThanOrEqual(10);
  });

  it('once headers appear, AIMD steps aside', async () => {
    const r = await drive({
      limit: 10,
      jobs: 150,
      configure: (s) => {
        s.headers = false;
        s.headersOn429 = 'none';
      },
      during: (elapsed, s) => {
        if (elapsed >= 3000) {
          s.headers = true;
          s.headersOn429 = 'all';
        }
      },
    });
    expect(r.done).toBe(150);
    expect(r.server.rejectedAt.filter((t) => t - T0 >= 3000)).toEqual([]);
    // with headers from 3 s on, the phase is learned and the rest goes at the full 10 per window
    const late = perWindow(r.server.accepted, r.windowOf);
    const full = [...late].filter(([k]) => k >= 10 && k < r.windowOf(T0 + r.makespan)).map(([, n]) => n);
    expect(full.length).toBeGreaterThan(3);
    expect(Math.min(...full)).toBeGreaterThanOrEqual(9);
    expect(full.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(0.95 * 10 * full.length);
  });
});

describe('rate-limit headers on only 70% of responses', () => {
  it.each([
    [1, 0],
    [2, 370],
    [3, 850],
  ])('seed %d, phase %d: never a 429, and close to the ideal makespan', async (seed, phaseMs) => {
    const random = prng(seed);
    const r = await drive({
      limit: 20,
      jobs: 400,
      phaseMs,
      configure: (s) => {
        s.omitHeaders = () => random() < 0.3;
      },
    });
    expect(r.done).toBe(400);
    expect(r.server.rejected).toBe(0);
    expect(r.server.maxInWindow()).toBeLessThanOrEqual(20);
    // 400 jobs need 20 windows (the first may be partial); learning costs at most about one
    const ideal = Math.max(0, phaseMs + (phaseMs > 0 ? 18 : 19) * 1000);
    expect(r.makespan).toBeLessThanOrEqual(ideal + 1200);
  });
});

describe('the limit changes mid-run', () => {
  it('raised, then lowered: the scheduler follows the server both ways', async () => {
    const r = await drive({
      limit: 10,
      jobs: 300,
      during: (elapsed, s) => {
        if (elapsed >= 4000 && elapsed < 9000) s.window.limit = 30;
        if (elapsed >= 9000) s.window.limit = 5;
      },
    });
    expect(r.done).toBe(300);
    const counts = perWindow(r.server.accepted, r.windowOf);
    // raised at 4 s: from the next window on, 30 per window
    for (let k = 5; k < 9; k++) expect(counts.get(k)).toBe(30);
    // lowered at 9 s: at most a 429 or two while it learns, then 5 per window
    const after = r.server.rejectedAt.filter((t) => t - T0 >= 9000);
    expect(after.length).toBeLessThanOrEqual(2);
    expect(r.server.rejectedAt.filter((t) => t - T0 >= 11_000)).toEqual([]);
    const last = r.windowOf(T0 + r.makespan);
    for (let k = 11; k < last; k++) expect(counts.get(k)).toBe(5);
    expect(r.scheduler.stats().budget?.minute.limit).toBe(5);
    // budgetUpdated told each change of the limit
    const limits = of(r.log, 'budgetUpdated').map((e) => e.minute.limit);
    expect(limits).toContain(10);
    expect(limits).toContain(30);
    expect(limits.at(-1)).toBe(5);
  });
});

describe('seeds', () => {
  it('a seed that matches the server spends the first window at once', async () => {
    const r = await drive({ limit: 20, jobs: 60, options: { limits: { minute: 20 } } });
    expect(r.server.rejected).toBe(0);
    const starts = of(r.log, 'dispatched').slice(0, 20);
    expect(new Set(starts.map((e) => e.inFlight)).size).toBe(20);
    expect(perWindow(r.server.accepted, r.windowOf).get(0)).toBe(20);
  });

  it('without a seed, the first answer is awaited alone', async () => {
    const r = await drive({ limit: 20, jobs: 60 });
    expect(r.server.rejected).toBe(0);
    expect(of(r.log, 'dispatched')[1]?.inFlight).toBe(1);
  });

  it("the server's numbers win over a seed that is too high", async () => {
    const r = await drive({ limit: 20, jobs: 200, options: { limits: { minute: 50 } } });
    expect(r.done).toBe(200);
    expect(r.scheduler.stats().budget?.minute.limit).toBe(20);
    // the seed is trusted for the first burst; from the second window on, never a 429
    expect(r.server.rejectedAt.filter((t) => r.windowOf(t) > 0)).toEqual([]);
  });

  it('a seed with a server that sends no headers acts as the limit: no 429, ideal pace', async () => {
    const r = await drive({
      limit: 10,
      jobs: 100,
      options: { limits: { minute: 10 } },
      configure: (s) => {
        s.headers = false;
        s.headersOn429 = 'none';
      },
    });
    expect(r.done).toBe(100);
    expect(r.server.rejected).toBe(0);
    expect(r.makespan).toBeLessThanOrEqual(9000 + 2 * 10 * 10 + 500);
  });

  it('headers only on 429s (successes carry none): the limit is learned from the 429, and no storm follows', async () => {
    const r = await drive({
      limit: 10,
      jobs: 100,
      configure: (s) => {
        s.headers = false;
      },
    });
    expect(r.done).toBe(100);
    expect(r.scheduler.stats().budget?.minute.limit).toBe(10);
    // With no count on successes, every answer to a probe is one the server
    // counted: the probes stop at the limit, and what they spent comes back a
    // window after them. No 429 after the first window.
    expect(r.server.rejectedAt.filter((t) => t - T0 >= 1000)).toEqual([]);
    expect(r.makespan).toBeLessThanOrEqual(9000 + 500);
  });
});

describe('stale responses never raise the budget', () => {
  const snap = (remaining: number, limit = 10): RateLimitSnapshot => ({ minute: { limit, remaining }, daily: {}, present: true });

  it('in the store: an answer to an older request cannot undo a newer, lower count', () => {
    const store = new MemoryStore();
    store.init({ minuteMs: 1000, dayMs: 100_000, seeds: {}, marginMs: 2, leaseMs: 5000 });
    const first = store.reserve(1, T0);
    expect(first.granted).toBe(1);
    const a: Ticket = { ...first.ticket, lease: '' };
    store.settle(a, { now: T0 + 5, status: 200, snapshot: snap(9), sent: true, jitterMs: 0, fallbackGateMs: 0 });
    const batch = store.reserve(3, T0 + 5);
    expect(batch.granted).toBe(3);
    const t: Ticket = { ...batch.ticket, lease: '' };
    const ok = (r: number, at: number) => store.settle(t, { now: T0 + at, status: 200, snapshot: snap(r), sent: true, jitterMs: 0, fallbackGateMs: 0 });
    ok(6, 10); // the newest count, fresh
    expect(store.view(T0 + 10).minute.remaining).toBe(6);
    ok(8, 11); // sent with it, answered later, higher: stale, ignored
    expect(store.view(T0 + 11).minute.remaining).toBe(6);
    expect(store.view(T0 + 11).minute.available).toBeLessThanOrEqual(6);
    ok(5, 12); // stale but lower: the server counted more, so it lowers
    expect(store.view(T0 + 12).minute.remaining).toBe(5);
  });

  it('in the engine: a slow response with a higher Remaining does not raise the budget', async () => {
    const { clock, scheduler } = setup({ windows: { minuteMs: 10_000 }, limits: { minute: 10 } });
    const script = new Script(clock)
      .plan(1, { status: 200, headers: roomy(9, 10), after: 500 }) // processed first, answered last
      .plan(2, { status: 200, headers: roomy(3, 10), after: 10 });
    const a = track(scheduler.schedule(script.task));
    const b = track(scheduler.schedule(script.task));
    await clock.advance(20);
    expect(b.state).toBe('fulfilled');
    expect(scheduler.stats().budget?.minute.remaining).toBe(3);
    const before = scheduler.stats().budget!.minute;
    await clock.advance(500);
    expect(a.state).toBe('fulfilled');
    const after = scheduler.stats().budget!.minute;
    expect(after.remaining).toBeLessThanOrEqual(3);
    expect(after.available).toBeLessThanOrEqual(before.remaining as number);
  });
});

describe('the phase of fixed windows is learned from Remaining, never from 429s', () => {
  it.each([0, 137, 370, 850])('phase %d ms: after the first window no 429, every window full, a tight bracket', async (phaseMs) => {
    const r = await drive({ limit: 10, jobs: 250, phaseMs, latencyMs: 8 });
    expect(r.done).toBe(250);
    expect(r.server.rejected).toBe(0);
    const counts = perWindow(r.server.accepted, r.windowOf);
    const last = r.windowOf(T0 + r.makespan);
    // While the phase is learned, a scout that lands after the reset leaves a
    // unit of its window unused. Once learned, each window is spent in full: a
    // scout that saw a reset before a window started by our own read could have
    // ended showed the windows are on a grid, so the bracket keeps its upper
    // side instead of following the read (as it must for first-hit windows),
    // and it stays narrow without scouts.
    const learning = [...counts].filter(([k]) => k >= r.firstWindow + 6 && k < r.firstWindow + 10).map(([, n]) => n);
    const learned = [...counts].filter(([k]) => k >= r.firstWindow + 10 && k < last).map(([, n]) => n);
    expect(Math.min(...learning)).toBeGreaterThanOrEqual(9);
    expect(learned.length).toBeGreaterThanOrEqual(14);
    expect(Math.min(...learned)).toBe(10);
    // 25 windows' worth: the ideal puts the last batch at the start of the 25th window
    const ideal = phaseMs + (phaseMs > 0 ? 23 : 24) * r.windowMs;
    expect(r.makespan).toBeLessThanOrEqual(1.05 * ideal);
    const view = r.scheduler.stats().budget!.minute;
    expect(view.kind).toBe('fixed');
    const after = view.nextResetAfter as number;
    const by = view.nextResetBy as number;
    expect(by - after).toBeLessThanOrEqual(r.windowMs / 10);
    // the bracket holds a real reset of the server
    const k = Math.ceil((after - T0 - phaseMs - 5) / r.windowMs);
    const reset = T0 + phaseMs + k * r.windowMs;
    expect(reset).toBeGreaterThanOrEqual(after - 5);
    expect(reset).toBeLessThanOrEqual(by + 5);
  });

  it('a sliding window is never mistaken for a fixed one, and never overrun', async () => {
    const r = await drive({ kind: 'sliding', limit: 10, jobs: 150, latencyMs: 8 });
    expect(r.done).toBe(150);
    expect(r.server.rejected).toBe(0);
    expect(r.server.maxInWindow()).toBeLessThanOrEqual(10);
    expect(r.scheduler.stats().budget?.minute.kind).toBe('unknown');
  });

  it.each([
    ['fixed', 130],
    ['fixed', 610],
    ['sliding', 0],
  ] as const)('a %s window shared with a client we do not see (phase %d ms): a few refusals, not one a window', async (kind, phaseMs) => {
    // The other client sends one request every 350 ms (about 3 a window, a third of the limit), whatever
    // the window says. Each of our answers shows its count, so our reads stay right; what no client can
    // avoid is the race for the last units. Before a refusal inside a predicted window stopped the units
    // held back for the late probe and the scouts, the other client took them: 21 and 30 refusals here.
    let step = 0;
    let other = 0;
    const r = await drive({
      kind,
      limit: 10,
      jobs: 250,
      phaseMs,
      latencyMs: 8,
      during: (_elapsed, server) => {
        if (step++ % 7 !== 3) return;
        const before = server.rejected;
        server.handle();
        other += server.rejected - before;
      },
    });
    expect(r.done).toBe(250);
    const ours = r.server.rejected - other;
    expect(ours).toBeLessThanOrEqual(5);
    expect(r.server.maxInWindow()).toBeLessThanOrEqual(10);
  });

  it.each([8, 30])('first-hit windows (Laravel: a window starts at the first hit after the last ended), latency %d ms: the bracket follows the read, never a 429', async (latencyMs) => {
    const r = await drive({ kind: 'first-hit', limit: 10, jobs: 250, latencyMs });
    expect(r.done).toBe(250);
    expect(r.server.rejected).toBe(0);
    expect(r.server.maxInWindow()).toBeLessThanOrEqual(10);
    // each window starts with the read sent after the predicted end of the last: 25 windows,
    // each a little over W (the margin, the read's round trip and the bracket's width)
    expect(r.makespan).toBeLessThanOrEqual(24 * r.windowMs * 1.05);
  });
});

describe('concurrency', () => {
  it('is derived from limit × latency (enough for a window in 2% of it)', async () => {
    const { clock, scheduler } = setup({ maxConcurrent: 1000 });
    const script = new Script(clock, [], { latencyMs: 200, fallback: { status: 200, headers: roomy(250, 300) } });
    const log = record(scheduler, clock, ['budgetUpdated']);
    const tasks = Array.from({ length: 400 }, () => track(scheduler.schedule(script.task)));
    await clock.runUntil(() => tasks.every((t) => t.state !== 'pending'), 10_000, 100);
    // latency 200 ms, 300 per 60 s: 300 × 200 / 1200 = 50
    const c = scheduler.stats().concurrency;
    expect(c).toBeGreaterThanOrEqual(45);
    expect(c).toBeLessThanOrEqual(50);
    expect(script.maxOpen()).toBeLessThanOrEqual(50);
    expect(of(log, 'budgetUpdated').at(-1)?.concurrency).toBe(c);
  });

  it('is capped by maxConcurrent', async () => {
    const { clock, scheduler } = setup({ maxConcurrent: 8 });
    const script = new Script(clock, [], { latencyMs: 200, fallback: { status: 200, headers: roomy(250, 300) } });
    const tasks = Array.from({ length: 100 }, () => track(scheduler.schedule(script.task)));
    await clock.runUntil(() => tasks.every((t) => t.state !== 'pending'), 10_000, 100);
    expect(scheduler.stats().concurrency).toBe(8);
    expect(script.maxOpen()).toBe(8);
  });

  it('is never more than the limit, and at least 1', async () => {
    const { clock, scheduler } = setup({ windows: { minuteMs: 1000 } });
    const script = new Script(clock, [], { latencyMs: 500, fallback: { status: 200, headers: roomy(2, 3) } });
    const tasks = Array.from({ length: 10 }, () => track(scheduler.schedule(script.task)));
    await clock.runUntil(() => tasks.every((t) => t.state !== 'pending'), 30_000, 100);
    expect(scheduler.stats().concurrency).toBe(3);
    expect(script.maxOpen()).toBeLessThanOrEqual(3);
    const zero = setup({ limits: { minute: 1 } });
    expect(zero.scheduler.stats().concurrency).toBe(1);
  });
});

describe('smooth mode', () => {
  it('spaces requests one every window / limit', async () => {
    const r = await drive({ limit: 10, jobs: 40, options: { smooth: true } });
    expect(r.done).toBe(40);
    expect(r.server.rejected).toBe(0);
    const starts = r.server.accepted.slice(1);
    for (let i = 1; i < starts.length; i++) expect((starts[i] as number) - (starts[i - 1] as number)).toBeGreaterThanOrEqual(100 - 1e-6);
    // and yet it keeps the pace: 40 at 10 per second
    expect(r.makespan).toBeLessThanOrEqual(4200);
  });

  it('without smooth, what remains of a window goes at once', async () => {
    const r = await drive({ limit: 10, jobs: 40, options: { smooth: false } });
    const gaps = r.server.accepted.slice(2).map((t, i) => t - (r.server.accepted[i + 1] as number));
    expect(gaps.filter((g) => g === 0).length).toBeGreaterThan(20);
  });
});

describe('Aimd (pure)', () => {
  const W = 1000;

  it('is off until the first throttle, then cuts below the ceiling it measured and climbs back by windows', () => {
    const aimd = new Aimd({ windowMs: W });
    expect(aimd.active).toBe(false);
    expect(aimd.take(50, T0)).toBe(50);
    expect(aimd.nextAt(T0)).toBe(T0);
    // 40 accepted in the window before the refused request (sent at T0 + 1000), then 5 refused with it
    for (let t = 25; t <= 1000; t += 25) {
      aimd.sent(1, T0 + t);
      aimd.accepted(T0 + t, T0 + t + 10);
    }
    aimd.sent(5, T0 + 1000);
    aimd.onThrottle(T0 + 1000, T0 + 1010);
    expect(aimd.active).toBe(true);
    expect(aimd.ceiling).toBe(40);
    expect(aimd.rate).toBe(38); // min(0.95 × 40, 40 - 1)
    // The log starts with the 40 the server counted (not the refused): 38 allowed, so the 3rd oldest
    // (sent at T0 + 75) must leave first
    expect(aimd.take(5, T0 + 1010)).toBe(0);
    expect(aimd.nextAt(T0 + 1010)).toBeCloseTo(T0 + 75 + W * 1.01, 6);
    expect(aimd.take(5, T0 + 1084)).toBe(0);
    expect(aimd.take(5, T0 + 1085)).toBe(1);
    aimd.sent(1, T0 + 1085);
    // Driven for 20 windows: never more than the rate in any window, and it climbs to ceiling - 1, then past it
    const sends: number[] = [];
    for (let t = 1090; t <= 21_200; t += 5) {
      const n = aimd.take(100, T0 + t);
      aimd.sent(n, T0 + t);
      for (let i = 0; i < n; i++) sends.push(t);
    }
    let j = 0;
    let most = 0;
    for (let i = 0; i < sends.length; i++) {
      while (sends[i]! - sends[j]! >= W * 1.01) j++;
      most = Math.max(most, i - j + 1);
    }
    expect(most).toBeLessThanOrEqual(Math.floor(aimd.rate));
    expect(sends.filter((t) => t >= 3000 && t < 3000 + W * 1.01).length).toBeGreaterThanOrEqual(38);
    expect(aimd.rate).toBeGreaterThan(39);
    expect(aimd.rate).toBeLessThan(44); // 39 + 0.2 a window
    // a second throttle cuts from the lower of the rate and what was accepted
    for (const t of sends.filter((x) => x > 20_200)) aimd.accepted(T0 + t, T0 + 21_200);
    aimd.onThrottle(T0 + 21_200, T0 + 21_210);
    expect(aimd.ceiling).toBeLessThanOrEqual(most);
    expect(aimd.rate).toBeLessThan(most);
  });

  it('never goes below its floor; reads; restarts on a grid or a slide; resets', () => {
    const aimd = new Aimd({ windowMs: W, minRate: 2 });
    aimd.onThrottle(T0, T0);
    aimd.onThrottle(T0 + 10, T0 + 10);
    expect(aimd.rate).toBe(2);
    expect(aimd.take(5, T0 + 20)).toBe(2);
    aimd.sent(2, T0 + 20);
    expect(aimd.take(5, T0 + 30)).toBe(0);
    // while the first ceiling is learnt, the read after a gate goes whatever the log says
    expect(aimd.mayRead(T0 + 30)).toBe(true);
    // a read accepted before anything counted could leave a window: the window turned on a grid
    aimd.sent(1, T0 + 500);
    aimd.restart(T0 + 500, T0 + 510);
    expect(aimd.take(5, T0 + 510)).toBe(1); // only the read counts now
    aimd.sent(1, T0 + 510);
    // learnt: a read waits for room in the log
    expect(aimd.mayRead(T0 + 520)).toBe(false);
    expect(aimd.nextAt(T0 + 520)).toBeCloseTo(T0 + 500 + W * 1.01, 6);
    // a read accepted once the counted ones could have left keeps the log (a sliding window)
    const slide = new Aimd({ windowMs: W });
    for (let t = 0; t < 10; t++) {
      slide.sent(1, T0 + t);
      slide.accepted(T0 + t, T0 + t);
    }
    slide.onThrottle(T0 + 10, T0 + 20);
    slide.sent(1, T0 + 1015);
    slide.restart(T0 + 1015, T0 + 1015);
    expect(slide.take(20, T0 + 1015)).toBe(Math.floor(slide.rate) - 5); // sent at T0+6..9, and the read
    slide.reset();
    expect(slide.active).toBe(false);
    expect(slide.ceiling).toBe(Infinity);
    expect(slide.take(3, T0 + 2000)).toBe(3);
  });

  it('closes the gate for a share of the window that doubles per refused read, at most half a window or until the oldest counted request left', () => {
    const aimd = new Aimd({ windowMs: W });
    for (let t = 50; t <= 1000; t += 50) aimd.accepted(T0 + t, T0 + 1000); // 20 accepted
    aimd.onThrottle(T0 + 1000, T0 + 1000);
    expect([1, 2, 3, 4, 5, 6].map((n) => aimd.gateMs(n, 0, T0 + 2100))).toEqual([25, 50, 100, 200, 250, 250]);
    expect(aimd.gateMs(1, 1, T0 + 2100)).toBeCloseTo(50, 6);
    // never past the moment the oldest request counted (sent at T0 + 50) has left a window
    expect(aimd.gateMs(4, 1, T0 + 1000)).toBeCloseTo(50 + 1000 * 1.01 - 1000, 6);
  });

  it('an answered request leaves the log a window after its answer, not after its sending', () => {
    const aimd = new Aimd({ windowMs: W });
    for (let t = 0; t < 10; t++) aimd.accepted(T0 + t, T0 + t + 1);
    aimd.onThrottle(T0 + 10, T0 + 11);
    // the rate is 9 (10 measured); the 10 counted leave at T0 + 0..9 + 1010; one read goes at T0 + 1100
    expect(aimd.rate).toBe(9);
    expect(aimd.take(9, T0 + 1100)).toBe(9);
    aimd.sent(1, T0 + 1100);
    aimd.restart(T0 + 1100, T0 + 1101);
    aimd.sent(8, T0 + 1101);
    // Answered 40 ms after their sending (a busy machine: they may have reached the server that late)
    aimd.answered(T0 + 1100, T0 + 1140);
    for (let k = 0; k < 8; k++) aimd.answered(T0 + 1101, T0 + 1141);
    // Counted from the sending, all 9 would be free again at T0 + 1100 + 1010; from the answer, not before T0 + 1140 + 1010
    expect(aimd.take(9, T0 + 2111)).toBe(0);
    expect(aimd.nextAt(T0 + 2111)).toBeCloseTo(T0 + 1140 + W * 1.01, 6);
    expect(aimd.take(9, T0 + 1140 + W * 1.01)).toBe(1);
    expect(aimd.take(9, T0 + 1141 + W * 1.01)).toBe(9);
    // An answer to a request no longer in the log (or never in it) changes nothing
    aimd.answered(T0 + 5, T0 + 3000);
    expect(aimd.take(9, T0 + 3000)).toBe(9);
  });

  it('is the same at any window length, in window units', () => {
    const trace = (w: number) => {
      const aimd = new Aimd({ windowMs: w });
      const at = (u: number) => T0 + u * w;
      for (let k = 0; k < 30; k++) {
        aimd.sent(1, at(k / 30));
        aimd.accepted(at(k / 30), at(1));
      }
      aimd.onThrottle(at(1), at(1.01));
      const round = (x: number) => Math.round(x * 1e6) / 1e6;
      const out: number[] = [round(aimd.rate), round(aimd.gateMs(1, 0.5, at(1.01)) / w)];
      let t = 1.01;
      for (let k = 0; k < 2000; k++, t += 0.005) {
        const n = aimd.take(3, at(t));
        aimd.sent(n, at(t));
        if (n > 0) out.push(Math.round(t * 1000), n);
      }
      out.push(round(aimd.rate));
      return out;
    };
    const short = trace(1000);
    expect(short.length).toBeGreaterThan(250);
    expect(trace(60_000)).toEqual(short);
  });
});
