/**
 * A deterministic model of the scheduler scenarios on a fake clock, for tuning
 * (not a benchmark: no real HTTP, no wall time). The scheduler runs against
 * the test suite's `SimServer` with a server that takes `serviceMs` per
 * request in turn, so a burst queues as it does on the fake HTTP server. It
 * prints makespan / ideal per window phase, and our 429s (and another
 * client's, for the shared cases).
 *
 *     npx tsx bench/tools/phase-sweep.ts raise-lower 0,0.05,0.1 [serviceMs]
 *
 * Cases: raise-lower, steady, sliding, first-hit (ratios are against a fixed
 * window's ideal, so only their spread means something), shared-sliding and
 * shared-fixed (another client sends EXT requests per window, default 10;
 * their ratios ignore what it takes). WIN=1 prints accepted requests per
 * server window; POS=1 where in its window each of our 429s came.
 */
import { RateLimitScheduler } from '../../src/engine/scheduler.js';
import { ManualClock } from '../../src/testing/index.js';
import { SimServer, type SimWindow } from '../../test/helpers/sim-server.js';
import { idealSchedule } from '../lib/ideal.js';

const T0 = 1_700_000_000_000;
const W = 250;
const LIMIT = 50;

interface Case {
  kind: SimWindow['kind'];
  jobs: number;
  changes: Array<{ at: number; limit: number }>;
  external?: number;
}

const EXT = Number(process.env['EXT'] ?? 10);
const CASES: Record<string, Case> = {
  'raise-lower': { kind: 'fixed', jobs: 1825, changes: [{ at: 5.3, limit: 150 }, { at: 11.3, limit: 50 }] },
  steady: { kind: 'fixed', jobs: 1125, changes: [] },
  sliding: { kind: 'sliding', jobs: 1125, changes: [] },
  'first-hit': { kind: 'first-hit', jobs: 1125, changes: [] },
  'shared-sliding': { kind: 'sliding', jobs: 1125, changes: [], external: EXT },
  'shared-fixed': { kind: 'fixed', jobs: 1125, changes: [], external: EXT },
};

interface Outcome {
  ratio: number;
  ours429: number;
  other: number;
  other429: number;
}

async function run(c: Case, phase: number, serviceMs: number, seed: number): Promise<Outcome> {
  const clock = new ManualClock(T0);
  let r = seed;
  const rnd = (): number => (r = (r * 16807) % 2147483647) / 2147483647;
  const scheduler = new RateLimitScheduler({ clock, random: rnd, windows: { minuteMs: W, dayMs: W * 100_000 }, maxConcurrent: 64 });
  const window: SimWindow = { limit: LIMIT, windowMs: W, kind: c.kind, phaseMs: (((T0 + phase * W) % W) + W) % W };
  const server = new SimServer(clock, window, 1);
  for (const ch of c.changes) clock.setTimeout(() => (server.window.limit = ch.limit), ch.at * W);
  let busyUntil = 0;
  const ours429: number[] = [];
  const task = (): Promise<{ status: number; headers: Record<string, string> }> =>
    new Promise((resolve) => {
      const at = Math.max(clock.now() + 0.3 + rnd() * 0.4, busyUntil) + serviceMs * (0.5 + rnd());
      busyUntil = at;
      clock.setTimeout(() => {
        const res = server.handle();
        if (res.status === 429) ours429.push(clock.now());
        clock.setTimeout(() => resolve(res), 0.3 + rnd() * 0.4);
      }, at - clock.now());
    });
  let done = 0;
  let last = 0;
  let other = 0;
  let other429 = 0;
  if (c.external) {
    const every = W / c.external;
    const next = (): void => {
      clock.setTimeout(() => {
        if (done >= c.jobs) return;
        other++;
        if (server.handle().status === 429) other429++;
        next();
      }, every * 2 * rnd());
    };
    next();
  }
  for (let i = 0; i < c.jobs; i++) {
    void scheduler.schedule(task).then(
      () => {
        done++;
        last = clock.now();
      },
      () => done++,
    );
  }
  while (done < c.jobs && clock.now() - T0 < 60 * W) await clock.advance(0.5);
  await scheduler.close({ drain: false }).catch(() => undefined);
  const ideal = idealSchedule({
    start: 0,
    requests: c.jobs,
    minute: { kind: c.kind === 'sliding' ? 'sliding' : 'fixed', windowMs: W, phaseMs: phase * W, limit: LIMIT },
    changes: c.changes.map((x) => ({ at: Math.round(x.at * W), minute: x.limit })),
  });
  if (process.env['POS']) console.log(`  phase ${phase}: our 429s at ${ours429.map((t) => ((((t - window.phaseMs!) % W) + W) % W).toFixed(0)).join(' ')} ms into their window`);
  if (process.env['WIN']) {
    const first = window.phaseMs! + Math.floor((T0 - window.phaseMs!) / W) * W;
    const counts = new Map<number, number>();
    for (const t of server.accepted) counts.set(Math.floor((t - first) / W), (counts.get(Math.floor((t - first) / W)) ?? 0) + 1);
    console.log(`  phase ${phase}: ${[...counts].map(([k, n]) => `${k}:${n}`).join(' ')}`);
  }
  return { ratio: (last - T0) / ideal.makespanMs, ours429: server.rejected - other429, other, other429 };
}

const name = process.argv[2] ?? 'raise-lower';
const c = CASES[name];
if (!c) throw new Error(`unknown case ${name}; one of ${Object.keys(CASES).join(', ')}`);
const phases = (process.argv[3] ?? '0.1,0.5,0.9').split(',').map(Number);
const serviceMs = Number(process.argv[4] ?? 0.2);
const parts: string[] = [];
const ratios: number[] = [];
for (const phase of phases) {
  const o = await run(c, phase, serviceMs, 7 + Math.round(phase * 100));
  ratios.push(o.ratio);
  parts.push(`${phase}:${o.ratio.toFixed(4)}${o.ours429 ? ` (${o.ours429}×429)` : ''}${o.other ? ` [other ${o.other}, ${o.other429}×429]` : ''}`);
}
const sorted = [...ratios].sort((a, b) => a - b);
console.log(`${name}: median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(4)}, max ${sorted.at(-1)!.toFixed(4)}, ${ratios.filter((x) => x <= 1.05).length}/${ratios.length} phases ≤ 1.05`);
console.log(parts.join('  '));
