/**
 * A deterministic model of the `jobs` benchmark on a fake clock, for tuning
 * the budget against spread-out traffic (not a benchmark: no real HTTP, no
 * wall time). The scheduler runs against the test suite's `SimServer`; each
 * job is one submission and, once the server has finished it, one poll.
 * Polls queue below submissions and go above them after waiting a window
 * (as the client's poller does). Prints makespan / ideal, unused capacity
 * per 1,000 requests (bench/lib/unused.ts) and our 429s, per repetition.
 *
 *     npx tsx bench/tools/jobs-sim.ts sliding [repetitions] [rttMs]
 *
 * Kinds: fixed, first-hit, sliding. Each leg of a round trip is uniform in
 * [0, rttMs / 2]; default rttMs 3.75 (1.5 % of the 250 ms window, as in the
 * benchmark). With `TRACE=<file>`, the budget, queue and in-flight count at
 * every step where they change go to that file; `ONLY=k` runs repetition k
 * alone.
 */
import { RateLimitScheduler } from '../../src/engine/scheduler.js';
import { ManualClock } from '../../src/testing/index.js';
import { mulberry32 } from '../../src/testing/prng.js';
import { SimServer, type SimWindow } from '../../test/helpers/sim-server.js';
import { idealJobs } from '../lib/job-ideal.js';
import { unusedCapacity, unusedPer1000 } from '../lib/unused.js';

const T0 = 1_700_000_000_000;
const W = 250;
const LIMIT = 30;
const JOBS = 320;

async function run(kind: SimWindow['kind'], seed: number, rttMs: number, phase: number): Promise<string> {
  const clock = new ManualClock(T0);
  const rnd = mulberry32(seed);
  const durations = Array.from({ length: JOBS }, () => Math.round(0.15 * W + 0.6 * W * rnd()));
  const scheduler = new RateLimitScheduler({ clock, random: rnd, windows: { minuteMs: W, dayMs: W * 100_000 }, maxConcurrent: 64 });
  const window: SimWindow = { limit: LIMIT, windowMs: W, kind, phaseMs: (((T0 + phase * W) % W) + W) % W };
  const server = new SimServer(clock, window, 1);
  const counted: number[] = [];
  const refusedAt: number[] = [];
  /** One request: half the round trip out, the server, half back. */
  const request = (onServer?: (at: number) => void) => (): Promise<{ status: number; headers: Record<string, string> }> =>
    new Promise((resolve) => {
      const out = (rnd() * rttMs) / 2;
      const back = (rnd() * rttMs) / 2;
      clock.setTimeout(() => {
        const res = server.handle();
        if (res.status === 429) refusedAt.push(clock.now() - T0);
        else {
          counted.push(clock.now());
          onServer?.(clock.now());
        }
        clock.setTimeout(() => resolve(res), back);
      }, out);
    });
  let done = 0;
  let last = 0;
  const poll = (): void => {
    const ac = new AbortController();
    const timer = clock.setTimeout(() => {
      ac.abort();
    }, W);
    scheduler.schedule(request(), { priority: -1, signal: ac.signal }).then(
      () => {
        clock.clearTimeout(timer);
        done++;
        last = clock.now();
      },
      () => {
        // Starved for a window: again, above submissions.
        void scheduler.schedule(request(), { priority: 1 }).then(() => {
          done++;
          last = clock.now();
        });
      },
    );
  };
  for (let i = 0; i < JOBS; i++) {
    void scheduler.schedule(request((at) => clock.setTimeout(poll, Math.max(0, at + (durations[i] as number) - clock.now()))));
  }
  const trace: string[] = [];
  let lastLine = '';
  while (done < JOBS && clock.now() - T0 < 100 * W) {
    await clock.advance(0.5);
    if (process.env['TRACE']) {
      const st = scheduler.stats();
      const m = st.budget?.minute;
      const t = clock.now();
      let busy = 0;
      for (const h of counted) if (h > t - W && h <= t) busy++;
      const line = `busy=${busy} q=${st.queued} f=${st.inFlight} av=${m?.available} rem=${m?.remaining} unc=${m?.uncounted}`;
      if (line !== lastLine) trace.push(`${(t - T0).toFixed(1)} ${line}`);
      lastLine = line;
    }
  }
  if (process.env['TRACE']) (await import('node:fs')).writeFileSync(process.env['TRACE'], trace.join('\n'));
  await scheduler.close({ drain: false }).catch(() => undefined);
  const minute = { kind, windowMs: W, phaseMs: T0 + phase * W, limit: LIMIT };
  const ideal = idealJobs({ start: T0, durations, minute });
  const unused = unusedPer1000(unusedCapacity({ ...minute, counted }), counted.length);
  const refused = refusedAt.length > 0 ? `, 429s at ${refusedAt.map((t) => t.toFixed(1)).join(' ')} ms` : '';
  return `${((last - T0) / (ideal.end - T0)).toFixed(3)} × ideal, unused ${unused.toFixed(1)}/1000${refused}`;
}

const kind = (process.argv[2] ?? 'sliding') as SimWindow['kind'];
const repetitions = Number(process.argv[3] ?? 5);
const rtt = Number(process.argv[4] ?? 3.75);
const only = process.env['ONLY'] === undefined ? undefined : Number(process.env['ONLY']);
for (let k = 0; k < repetitions; k++) if (only === undefined || only === k) console.log(`${kind} #${k}: ${await run(kind, 101 + k, rtt, [0.1, 0.3, 0.5, 0.7, 0.9][k % 5] as number)}`);
