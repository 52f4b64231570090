import { describe, expect, it } from 'vitest';
import { SimServer, type SimWindow } from './helpers/sim-server.js';
import { record, setup, T0 } from './helpers/engine.js';

/**
 * A server that sends no rate-limit headers at all, and answers a 429 with
 * nothing (no Retry-After): the scheduler paces by its AIMD, in window units.
 */
async function headerless(windowMs: number, { limit = 10, jobs = 200, kind = 'fixed' as SimWindow['kind'], phase = 0, latency = 1 / 100 } = {}) {
  const { clock, scheduler } = setup({ windows: { minuteMs: windowMs, dayMs: windowMs * 1000 } });
  // (The server's fixed grid is on epoch time: shifted so that its windows start at T0 + phase, whatever their length.)
  const server = new SimServer(clock, { limit, windowMs, kind, phaseMs: (T0 % windowMs) + phase * windowMs }, windowMs * latency);
  server.headers = false;
  server.headersOn429 = 'none';
  const log = record(scheduler, clock, ['dispatched', 'rateLimited']);
  let done = 0;
  for (let i = 0; i < jobs; i++) void scheduler.schedule(server.task).then(() => done++);
  while (done < jobs && clock.now() - T0 < windowMs * 200) await clock.advance(windowMs / 20);
  expect(done).toBe(jobs);
  /** Times in windows since the start, to a ten-thousandth of a window (epoch-ms floats round differently at each length). */
  const units = (ts: number[]) => ts.map((t) => Math.round(((t - T0) / windowMs) * 1e4) / 1e4);
  const first = Math.min(...server.accepted);
  const last = Math.max(...server.accepted);
  // Ideal: the server's windows from the first accepted request, each full.
  const firstWindow = Math.floor((first - T0) / windowMs - phase);
  const idealLast = T0 + (firstWindow + phase + Math.ceil(jobs / limit) - 1) * windowMs;
  return {
    server,
    log,
    accepted: units(server.accepted),
    rejected: units(server.rejectedAt),
    dispatched: units(log.filter((r) => r.name === 'dispatched').map((r) => r.at)),
    ratio: (last - first) / (idealLast - first),
  };
}

describe('a server with no rate-limit headers at all', () => {
  it('after a 429 gate reopens, one request reads first: no burst is refused whole', async () => {
    const r = await headerless(1000);
    // The slow start overshoots the first window once (every request in flight when the first 429 comes) ...
    const burst = r.rejected.filter((u) => u - r.rejected[0]! < 0.05);
    expect(burst.length).toBeGreaterThan(0);
    expect(burst.length).toBeLessThanOrEqual(12);
    // ... reads look for the window's turn (a share of the window, doubling: at most log2(10) + 1 refused) ...
    expect(r.rejected.filter((u) => u < 1).length - burst.length).toBeLessThanOrEqual(5);
    // ... and from then on every 429 comes alone: a read refused, or one request past the limit.
    const later = r.rejected.slice(burst.length);
    for (let i = 1; i < later.length; i++) expect(later[i]! - later[i - 1]!).toBeGreaterThan(0.02);
    // After each later 429, the next request goes alone, and nothing follows it until it is answered.
    for (const u of later) {
      const after = r.dispatched.filter((d) => d > u);
      if (after.length < 2) continue;
      expect(after[1]! - after[0]!).toBeGreaterThanOrEqual(0.0099); // a round trip (latency: 1/100 window)
    }
    expect(later.filter((u) => u >= 1).length).toBeLessThanOrEqual(5);
    // close to ideal: 200 jobs at 10 per window
    expect(r.ratio).toBeLessThanOrEqual(1.15);
  });

  it('behaves the same at any window length: 1 s and 60 s give one sequence in window units', async () => {
    const short = await headerless(1000);
    const long = await headerless(60_000);
    expect(long.accepted).toEqual(short.accepted);
    expect(long.rejected).toEqual(short.rejected);
    expect(long.dispatched).toEqual(short.dispatched);
    expect(long.ratio).toBeCloseTo(short.ratio, 6);
    expect(long.ratio).toBeLessThanOrEqual(1.15);
  });

  it.each([
    ['fixed', 0],
    ['fixed', 0.4],
    ['sliding', 0],
    ['first-hit', 0.7],
  ] as const)('%s window (phase %d): fills windows evenly once it has met the limit', async (kind, phase) => {
    const r = await headerless(2000, { limit: 30, jobs: 1000, kind, phase });
    expect(r.ratio).toBeLessThanOrEqual(1.1);
    const later = r.rejected.filter((u) => u >= 1);
    expect(later.length).toBeLessThanOrEqual(10);
  });

  it.each([1000, 60_000])(
    'round trips short against the window (%d ms window, a thousandth of it per round trip): the first window is overshot by a few, not by about the limit',
    async (windowMs) => {
      // (The real express-rate-limit bench: 30 per 1 s first-hit window, about 1 ms round trips.)
      const r = await headerless(windowMs, { limit: 30, jobs: 600, kind: 'first-hit', latency: 1 / 1000 });
      const firstWindow = r.rejected.filter((u) => u - r.accepted[0]! < 1).length;
      // In flight when the first 429 comes: what sends twice the 30 accepted in a twentieth of a window, 2;
      // then the reads that look for the window's turn (a share of it, doubling: at most log2(30) + 1).
      expect(firstWindow).toBeGreaterThan(0);
      expect(firstWindow).toBeLessThanOrEqual(10);
      expect((1000 * r.rejected.length) / (r.accepted.length + r.rejected.length)).toBeLessThanOrEqual(30);
      expect(r.ratio).toBeLessThanOrEqual(1.15);
    },
  );

  it('requests that reach the server well after they were sent (a busy machine) do not make the pacing refuse bursts', async () => {
    // First-hit windows of 1 s, 30 each, served one at a time in arrival order, answers 0.5 ms after; one
    // request in ten stalls up to 40 ms on its way, and those behind it wait for it. A window opened by a late
    // arrival ends late: paced from the sending, the next window's burst reached it before its end, was
    // refused in part (13 429s after the first window here), and the cut measured from the sending fell below the limit.
    const windowMs = 1000;
    const { clock, scheduler } = setup({ windows: { minuteMs: windowMs } });
    const server = new SimServer(clock, { limit: 30, windowMs, kind: 'first-hit' }, 1);
    server.headers = false;
    server.headersOn429 = 'none';
    let r = 12345;
    const rnd = (): number => (r = (r * 16807) % 2147483647) / 2147483647;
    let busyUntil = 0;
    const task = () =>
      new Promise<{ status: number; headers: Record<string, string> }>((resolve) => {
        const stall = rnd() < 0.1 ? 40 * rnd() : 0;
        const at = Math.max(clock.now() + 0.5 + stall, busyUntil) + 0.3;
        busyUntil = at;
        clock.setTimeout(() => {
          const res = server.handle();
          clock.setTimeout(() => resolve(res), 0.5);
        }, at - clock.now());
      });
    const jobs = 600;
    let done = 0;
    for (let i = 0; i < jobs; i++) void scheduler.schedule(task).then(() => done++);
    while (done < jobs && clock.now() - T0 < windowMs * 100) await clock.advance(1);
    expect(done).toBe(jobs);
    const first = Math.min(...server.accepted);
    const later = server.rejectedAt.filter((t) => t >= first + windowMs);
    expect(later.length).toBeLessThanOrEqual(5);
    expect(server.maxInWindow()).toBeLessThanOrEqual(30);
    // Ideal: 20 first-hit windows from the first request, the last one's requests at its start.
    const ratio = (Math.max(...server.accepted) - first) / (19 * windowMs);
    expect(ratio).toBeLessThanOrEqual(1.15);
  });
});
