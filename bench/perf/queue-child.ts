/**
 * One queue measurement in a fresh process (started by `overhead` and
 * `memory`):
 *
 *     node --import tsx bench/perf/queue-child.ts throughput <ours|p-queue|bottleneck> <tasks> <concurrency>
 *     node --expose-gc --import tsx bench/perf/queue-child.ts memory <ours|p-queue|bottleneck> <tasks> <concurrency> [received]
 *
 * - `throughput`: hands `tasks` no-op async tasks to the queue in one loop,
 *   then waits until it is idle. Prints the wall time from the first
 *   `schedule`/`add` to idle, and the process's CPU time over the same span.
 * - `memory`: holds `tasks` tasks queued and not running (ours paused,
 *   p-queue `autoStart: false`, Bottleneck behind an empty reservoir), keeps
 *   every promise that `schedule`/`add` returned in a preallocated array,
 *   and prints the growth of the V8 heap and of the RSS, after full GCs,
 *   divided by `tasks`.
 */
import Bottleneck from 'bottleneck';
import PQueue from 'p-queue';
import { RateLimitScheduler } from '../../src/engine/scheduler.js';
import { reportResult } from './children.js';
import { startMetrics } from './metrics-mode.js';

type Contender = 'ours' | 'p-queue' | 'bottleneck';

const [mode, contenderArg, tasksArg, concurrencyArg, extra] = process.argv.slice(2);
const contender = contenderArg as Contender;
const tasks = Number(tasksArg);
const concurrency = Number(concurrencyArg);
if (!['throughput', 'memory'].includes(mode ?? '') || !['ours', 'p-queue', 'bottleneck'].includes(contender) || !(tasks > 0) || !(concurrency > 0)) {
  process.stderr.write('usage: queue-child.ts <throughput|memory> <ours|p-queue|bottleneck> <tasks> <concurrency> [received]\n');
  process.exit(2);
}

const noop = async (): Promise<void> => {};
/** `BENCH_TASK=response`: each task answers like an HTTP 200 without headers (the scheduler then reads a status). */
const RESPONSE = Object.freeze({ statusCode: 200, headers: Object.freeze({}) });
const answer = async (): Promise<typeof RESPONSE> => RESPONSE;

/**
 * Ours with "no limit": a seeded minute limit far above anything the run can
 * send (the documented way to tell the scheduler a limit in advance) and the
 * same concurrency as the others. Without a seed or headers it would start
 * with one task in flight and grow only on HTTP answers.
 */
function ours(paused: boolean): RateLimitScheduler {
  const s = new RateLimitScheduler({ maxConcurrent: concurrency, limits: { minute: Number.MAX_SAFE_INTEGER } });
  if (paused) s.pause();
  return s;
}

async function throughput(): Promise<void> {
  // `BENCH_METRICS` (ours only): metrics off, or on through Prometheus or OpenTelemetry (bench/perf/metrics-mode.ts).
  const metrics = startMetrics();
  const s = contender === 'ours' ? ours(false) : undefined;
  if (s) metrics.track(s);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let enqueuedMs: number;
  if (s) {
    const task: () => Promise<unknown> = process.env['BENCH_TASK'] === 'response' ? answer : noop;
    for (let i = 0; i < tasks; i++) void s.schedule(task);
    enqueuedMs = performance.now() - t0;
    await s.onIdle();
  } else if (contender === 'p-queue') {
    const q = new PQueue({ concurrency });
    for (let i = 0; i < tasks; i++) void q.add(noop);
    enqueuedMs = performance.now() - t0;
    await q.onIdle();
  } else {
    const b = new Bottleneck({ maxConcurrent: concurrency });
    const all: Promise<void>[] = [];
    for (let i = 0; i < tasks; i++) all.push(b.schedule(noop));
    enqueuedMs = performance.now() - t0;
    await Promise.all(all);
    await b.disconnect();
  }
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const counted = await metrics.check('modelbeam_scheduler_attempts_total', 'modelbeam.scheduler.attempts');
  await metrics.close();
  reportResult({
    contender,
    tasks,
    concurrency,
    metrics: metrics.mode,
    counted,
    ms,
    enqueuedMs,
    cpuMs: (cpu.user + cpu.system) / 1000,
    maxRssMB: process.resourceUsage().maxRSS / 1024,
  });
}

function gcNow(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('memory mode needs --expose-gc');
  for (let i = 0; i < 3; i++) gc();
}

async function memory(): Promise<void> {
  // The holder is allocated (and filled with small integers, so its backing store is a plain
  // array of tagged slots) before the baseline: only what the queue and the promises take is counted.
  const hold: unknown[] = new Array<unknown>(tasks).fill(0);
  // Build the queue first: its fixed cost is not per task.
  const s = contender === 'ours' ? ours(true) : undefined;
  const q = contender === 'p-queue' ? new PQueue({ concurrency, autoStart: false }) : undefined;
  const b = contender === 'bottleneck' ? new Bottleneck({ maxConcurrent: concurrency, reservoir: 0 }) : undefined;
  await new Promise((r) => setTimeout(r, 50));
  gcNow();
  const before = process.memoryUsage();
  const t0 = performance.now();
  if (s) for (let i = 0; i < tasks; i++) hold[i] = s.schedule(noop);
  if (q) for (let i = 0; i < tasks; i++) hold[i] = q.add(noop);
  let state = 'queued';
  if (b) {
    for (let i = 0; i < tasks; i++) hold[i] = b.schedule(noop);
    if (extra === 'received') {
      state = 'RECEIVED';
    } else {
      // Bottleneck moves each job from RECEIVED to QUEUED behind its submit lock (about 2.5 ms a job).
      const deadline = Date.now() + 20 * 60_000;
      while (b.counts().QUEUED < tasks && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      state = `QUEUED (${b.counts().QUEUED})`;
    }
  }
  const enqueueMs = performance.now() - t0;
  gcNow();
  const after = process.memoryUsage();
  const queued = s?.size ?? q?.size ?? (b ? b.counts().QUEUED + b.counts().RECEIVED : 0);
  reportResult({
    contender,
    tasks,
    queued,
    state,
    enqueueMs,
    heapPerTask: (after.heapUsed - before.heapUsed) / tasks,
    rssPerTask: (after.rss - before.rss) / tasks,
    externalPerTask: (after.external - before.external) / tasks,
    heapMB: after.heapUsed / 1e6,
    rssMB: after.rss / 1e6,
    held: hold.length,
  });
  process.exit(0);
}

await (mode === 'throughput' ? throughput() : memory());
