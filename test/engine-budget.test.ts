import { describe, expect, it } from 'vitest';
import { RateLimitScheduler } from '../src/engine/scheduler.js';
import { ManualClock } from './helpers/manual-clock.js';
import { SimServer, type SimWindow } from './helpers/sim-server.js';

async function drain(kind: SimWindow['kind'], opts: { limit: number; windowMs: number; jobs: number; phaseMs?: number; latencyMs?: number }) {
  const clock = new ManualClock(0);
  const server = new SimServer(clock, { limit: opts.limit, windowMs: opts.windowMs, kind, phaseMs: opts.phaseMs ?? 0 }, opts.latencyMs ?? 4);
  const scheduler = new RateLimitScheduler({ clock, windows: { minuteMs: opts.windowMs, dayMs: opts.windowMs * 1000 }, random: () => 0.5 });
  const done: number[] = [];
  for (let i = 0; i < opts.jobs; i++) void scheduler.schedule(server.task).then(() => done.push(clock.now()));
  await clock.runUntil(() => done.length === opts.jobs, opts.windowMs * (opts.jobs / opts.limit + 5), opts.windowMs / 50);
  return { server, done, scheduler, clock };
}

describe('budget: spends what the server allows and no more', () => {
  it.each([
    ['fixed', 0],
    ['fixed', 300],
    ['fixed', 700],
    ['sliding', 0],
    ['first-hit', 0],
  ] as const)('%s window, phase %d: no 429 and never over the limit', async (kind, phaseMs) => {
    const { server, done } = await drain(kind, { limit: 20, windowMs: 1000, jobs: 200, phaseMs });
    expect(done.length).toBe(200);
    expect(server.rejected).toBe(0);
    expect(server.maxInWindow()).toBeLessThanOrEqual(20);
    const last = Math.max(...done);
    console.log(kind, phaseMs, 'makespan', last, 'requests', server.requests);
  });
});
