/**
 * One scheduler scenario, ours only, against the fake server over real HTTP
 * (the `scheduler` benchmark's trial, without the other contenders and the
 * report), repeated: for looking at single phases. Prints makespan / ideal
 * per run and accepted requests per server window; traces go to
 * bench/.work/traces/trial/<repetition>/.
 *
 *     npx tsx bench/tools/trial.ts raise-lower 0.1,0.5,0.9 [repetitions]
 *
 * JOBS=n overrides the scenario's job count. One warm-up run (the steady
 * scenario) goes first, so that the first measured run is not a cold one.
 */
import { CONTENDERS } from '../lib/rate-contenders.js';
import { runTrial, type TrialSpec } from '../lib/rate-trial.js';
import { ServerProcess } from '../lib/server-process.js';
import { plannedIdeal, schedulerCases } from '../scenarios/scheduler.js';

const key = process.argv[2] ?? 'raise-lower';
const phases = (process.argv[3] ?? '0.1,0.5,0.9').split(',').map(Number);
const repetitions = Number(process.argv[4] ?? 1);
const cases = schedulerCases(false);
const c = cases.find((x) => x.key === key);
const ours = CONTENDERS.find((k) => k.key === 'ours');
if (!c || !ours) throw new Error(`unknown scenario ${key}; one of ${cases.map((x) => x.key).join(', ')}`);
const jobs = process.env['JOBS'] ? Number(process.env['JOBS']) : c.spec.jobs;
const signal = new AbortController().signal;
const server = await ServerProcess.spawn();
try {
  const warm = cases[0]!;
  await runTrial(server, { ...warm.spec, scenario: 'warm-up', phase: 0.5, seed: 1, capMs: 30_000 }, ours, { signal, traceDir: 'bench/.work/traces/trial/warm-up' });
  for (const phase of phases) {
    for (let rep = 0; rep < repetitions; rep++) {
      const spec: TrialSpec = { ...c.spec, jobs, scenario: c.key, phase, seed: 2000 + rep, capMs: Math.round(4 * plannedIdeal(c.spec, phase) + 5000) };
      const o = await runTrial(server, spec, ours, { signal, traceDir: `bench/.work/traces/trial/${rep}` });
      const W = spec.windowMs;
      const first = o.minutePhaseMs + Math.floor((o.start - o.minutePhaseMs) / W) * W;
      const counts = new Map<number, number>();
      for (const t of o.collected.accepted) counts.set(Math.floor((t - first) / W), (counts.get(Math.floor((t - first) / W)) ?? 0) + 1);
      const m = o.metrics;
      console.log(`phase ${phase}: ${m.ratio.toFixed(4)} (makespan ${m.makespanMs} ms, ideal ${m.idealMs} ms), ${m.total429} 429s${o.lateMs > 2 ? `, started ${o.lateMs} ms late` : ''}`);
      console.log(`  accepted per window: ${[...counts].map(([k, n]) => `${k}:${n}`).join(' ')}`);
    }
  }
} finally {
  await server.close();
}
