/**
 * `redis-shared`: many processes, one quota (issue 5, "Done when").
 *
 * Four worker processes drain one account's jobs into ONE fake ModelBeam
 * server (its own child process) with a compressed minute, in three
 * configurations measured in the same run:
 *
 * - `shared`: ours, every process on one `RedisStore` (same URL, key prefix, account);
 * - `memory`: ours, each process with its own in-memory budget (the default `MemoryStore`);
 * - `bottleneck`: Bottleneck 2.19.5 clustered on Redis through ioredis, configured the usual way.
 *
 * For each it prints the aggregate utilisation of the minute limit, 429s per
 * 1,000 requests, makespan / ideal and what each process did (median over
 * window phases), checks `shared` against the issue's targets, draws the
 * accepted (and sent) requests per server window, and writes the "Many
 * processes, one quota" section of RESULTS.md.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { idealSchedule, verifyIdeal, type IdealInput, type IdealResult } from '../lib/ideal.js';
import { MAX_429_RETRIES } from '../lib/rate-contenders.js';
import { computeMetrics, perWindowSeries, type TrialMetrics, type TrialSpec } from '../lib/rate-trial.js';
import { ServerProcess, type Collected } from '../lib/server-process.js';
import { fmt, max, median } from '../lib/stats.js';
import { formatMarkdown } from '../lib/table.js';
import type { Chart, ChartSeries, Scenario, ScenarioContext, ScenarioResult, Table } from '../lib/types.js';
import { runFleet } from '../redis/fleet.js';
import type { FleetConfig, WorkerAttempt, WorkerResult } from '../redis/protocol.js';
import { openBenchRedis, type BenchRedis } from '../redis/redis-server.js';

/** The compressed minute. 5000 ms (Bottleneck's clustered heartbeat) × 1200 / 60 000 = 100 ms: a whole number of ms, and W is a multiple of it. */
const WINDOW_MS = 1200;
/** The documented minute limit: 120 per 1.2 s window (100 requests/s for the account). */
const LIMIT = 120;
const WORKERS = 4;
/** HTTP connections per process (also ours' default `maxConcurrent`). */
const CONNECTIONS = 64;
/** Bottleneck's clustered default heartbeat (5000 ms per real minute), compressed with the minute. */
const HEARTBEAT_MS = Math.round((5000 * WINDOW_MS) / 60_000);
/** Bottleneck `expiration` per job: the docs strongly recommend one in a cluster; far above any request here. */
const EXPIRATION_MS = 30_000;

/** Targets for `shared` (issue 5). */
const TARGET_UTILISATION = 0.95;
const TARGET_PER_1000 = 1;
const TARGET_RATIO = 1.08;

interface ConfigInfo {
  key: FleetConfig;
  name: string;
  color: string;
}

const CONFIGS: readonly ConfigInfo[] = [
  { key: 'shared', name: 'ours, one shared RedisStore', color: '#0072B2' },
  { key: 'memory', name: 'ours, 4 in-memory budgets', color: '#D55E00' },
  { key: 'bottleneck', name: 'Bottleneck 2.19.5 clustered (ioredis)', color: '#009E73' },
];

interface Figures {
  /** Accepted in the counted windows ÷ (limit × counted windows); NaN when no window counts. */
  utilisation: number;
  /** Counted windows (whole windows from the start to the last acceptance). */
  windows: number;
  /** All 429s per 1,000 requests (the target figure). */
  per1000All: number;
  metrics: TrialMetrics;
  /** Most requests sent (all statuses) in one server window. */
  peakSent: number;
}

interface ProcFigures {
  jobs: number;
  done: number;
  requests: number;
  r429: number;
  /** Seconds from the start to its last job's completion (NaN when unfinished). */
  finishedS: number;
  lateMs: number;
}

interface Outcome {
  config: ConfigInfo;
  phase: number;
  start: number;
  phaseMs: number;
  jobs: number;
  collected: Collected;
  attempts: WorkerAttempt[];
  ideal: IdealResult;
  figures: Figures;
  procs: ProcFigures[];
  results: WorkerResult[];
  timedOut: boolean;
  setupMs: number[];
  /**
   * Where the limiter's own window grid starts, as a share of W after a server
   * boundary: Bottleneck's refresh grid begins when the first process creates
   * the shared state (measured: when that process reported ready).
   */
  gridOffset: number;
  /** …and where it was meant to start. */
  gridTarget: number;
  /** Ours: the longest waits of a process that still had work, read from its store trace. */
  stalls: Stall[];
}

/** A process of ours that asked the store nothing for a long time while its jobs waited. */
interface Stall {
  /** Process index (0-based). */
  proc: number;
  /** Start of the wait, ms after the start. */
  at: number;
  /** How long until its next reserve, ms. */
  ms: number;
  /** The reserve that began it: wanted, granted, why not more, and the retry time the store gave. */
  want: number;
  granted: number;
  by: string | undefined;
  retryIn: number | undefined;
  /** Requests the server accepted (from any process) during the wait. */
  acceptedMeanwhile: number;
}

/**
 * The longest wait per process (over `minMs`) between a reserve that left
 * work queued and the next reserve (or the end: `finish`, when the process
 * finished or was cut off).
 */
async function findStalls(files: readonly string[], start: number, finish: readonly number[], accepted: readonly number[], minMs: number): Promise<Stall[]> {
  const out: Stall[] = [];
  for (const [proc, file] of files.entries()) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      continue;
    }
    const reserves: Array<{ t: number; want: number; granted: number; by?: string; retryIn?: number }> = [];
    for (const line of text.split('\n')) {
      if (!line.includes('"k":"reserve"')) continue;
      try {
        reserves.push(JSON.parse(line) as (typeof reserves)[number]);
      } catch {
        // a torn line: skip
      }
    }
    reserves.sort((a, b) => a.t - b.t);
    const end = finish[proc] ?? Infinity;
    let worst: Stall | undefined;
    for (let i = 0; i < reserves.length; i++) {
      const r = reserves[i] as (typeof reserves)[number];
      if (r.granted >= r.want || r.t >= end) continue;
      // Until its next reserve, or until it finished or was cut off.
      const nextT = reserves[i + 1]?.t ?? end;
      const ms = nextT - r.t;
      if (ms >= minMs && (!worst || ms > worst.ms)) {
        worst = { proc, at: r.t - start, ms, want: r.want, granted: r.granted, by: r.by, retryIn: r.retryIn, acceptedMeanwhile: accepted.filter((a) => a > r.t && a < nextT).length };
      }
    }
    if (worst) out.push(worst);
  }
  return out;
}

function stallText(s: Stall): string {
  return (
    `process ${s.proc + 1} asked nothing for ${fmt(s.ms / 1000, 1)} s from +${fmt(s.at / 1000, 2)} s: reserve(${s.want}) → ${s.granted} ` +
    `(blocked by ${s.by ?? '?'}), told to ask again in ${s.retryIn ?? '?'} ms; the server accepted ${s.acceptedMeanwhile} requests of other processes meanwhile`
  );
}

/**
 * Utilisation of the minute limit. The counted windows are the server's fixed
 * windows `[phase + kW, phase + (k+1)W)` that start at or after the start and
 * end at or before `end`: the last acceptance when every job was accepted,
 * else the moment the run was cut off. They are the whole windows during which
 * work was queued throughout. Utilisation = requests the server accepted in
 * them ÷ (limit × their number). The ideal schedule scores 1 by construction.
 */
export function utilisation(
  accepted: readonly number[],
  start: number,
  end: number,
  phaseMs: number,
  windowMs: number,
  limit: number,
): { utilisation: number; windows: number } {
  const k0 = Math.ceil((start - phaseMs) / windowMs);
  const k1 = Math.floor((end - phaseMs) / windowMs); // the window holding `end`: not whole
  const windows = Math.max(0, k1 - k0);
  if (windows === 0) return { utilisation: Number.NaN, windows: 0 };
  const from = phaseMs + k0 * windowMs;
  const to = phaseMs + k1 * windowMs;
  let n = 0;
  for (const t of accepted) if (t >= from && t < to) n++;
  return { utilisation: n / (limit * windows), windows };
}

function peakPerWindow(times: readonly number[], phaseMs: number, windowMs: number): number {
  const counts = new Map<number, number>();
  let best = 0;
  for (const t of times) {
    const k = Math.floor((t - phaseMs) / windowMs);
    const c = (counts.get(k) ?? 0) + 1;
    counts.set(k, c);
    if (c > best) best = c;
  }
  return best;
}

/** Shares of a window drawn at random, one in each of `n` equal strata (spread, but not chosen), in random order when `shuffle`. */
function stratified(n: number, shuffle: boolean): number[] {
  const out = Array.from({ length: n }, (_, i) => Math.round(((i + 0.05 + 0.9 * Math.random()) / n) * 1000) / 1000);
  if (shuffle) {
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [out[i], out[j]] = [out[j] as number, out[i] as number];
    }
  }
  return out;
}


function pct(x: number): string {
  return Number.isFinite(x) ? `${(100 * x).toFixed(1)} %` : '–';
}

function ratioText(x: number): string {
  return Number.isFinite(x) ? fmt(x, 3) : 'cut off';
}

async function runOne(
  ctx: ScenarioContext,
  server: ServerProcess,
  redis: BenchRedis,
  config: ConfigInfo,
  phase: number,
  phaseIndex: number,
  /** Bottleneck: where its refresh grid should start, as a share of W after a server boundary (the first process creates the shared state then). */
  gridTarget: number,
  jobsPerWorker: number,
  ids: { prefix: string; bottleneckBase: string },
  traceDir: string,
): Promise<Outcome> {
  const W = WINDOW_MS;
  const jobs = WORKERS * jobsPerWorker;
  // Whole ms, as on the server (ideal.ts steps from boundary to boundary, and a fractional phase can make it stall).
  const idealSpan = idealSchedule({ start: 0, requests: jobs, minute: { kind: 'fixed', windowMs: W, phaseMs: Math.round(phase * W), limit: LIMIT } }).makespanMs;
  // Bounded: a stalled configuration is cut off (and reported so) rather than waited for.
  const capMs = ctx.quick ? Math.round(2 * idealSpan + 5_000) : Math.round(3 * idealSpan + 10_000);
  // Any start `planned + k·W` has the same window phase: the fleet picks the first one after its workers are ready.
  const planned = Date.now() + 1000;
  const phaseMs = Math.round(planned + phase * W);
  const account = `phase${phaseIndex}`;
  const bottleneckId = `${ids.bottleneckBase}-${phaseIndex}`;
  const { url: serverUrl } = await server.startServer({
    seed: 5000 + phaseIndex,
    balance: 1e6,
    limits: { minute: { limit: LIMIT, windowMs: W, kind: 'fixed', phaseMs }, daily: false },
    // With a 1.2 s minute a whole-second Retry-After would be most of a window: every contender reads retry-after-ms first.
    headers: { retryAfterMs: true },
  });
  let collected: Collected | undefined;
  let fleet: Awaited<ReturnType<typeof runFleet>> | undefined;
  const tag = `${config.key}-phase${phase}`;
  try {
    // Late enough for the first worker to start and warm up; it creates the shared limiter at that moment.
    const firstInitAt = config.key === 'bottleneck' ? phaseMs + Math.round(gridTarget * W) + W * Math.ceil((Date.now() + 2500 - phaseMs) / W) : undefined;
    fleet = await runFleet({
      base: {
        config: config.key,
        serverUrl,
        windowMs: W,
        limit: LIMIT,
        connections: CONNECTIONS,
        redisUrl: redis.url,
        keyPrefix: ids.prefix,
        account,
        bottleneckId,
        heartbeatMs: HEARTBEAT_MS,
        expirationMs: EXPIRATION_MS,
        maxRetries: MAX_429_RETRIES,
        deadlineMs: capMs + 60_000,
      },
      workers: WORKERS,
      jobsPerWorker,
      traceFile: (i) => join(traceDir, `${tag}-w${i}.jsonl`),
      firstClearsAlone: config.key === 'bottleneck',
      firstInitAt,
      origin: planned,
      period: W,
      capMs,
      signal: ctx.signal,
      log: ctx.log,
    });
  } finally {
    try {
      collected = await server.collect();
    } finally {
      await server.stopServer();
      await redis.deleteKeys([`${ids.prefix}{${account}}`, `b_${bottleneckId}`]);
    }
  }
  if (!fleet || !collected) throw new Error('no data from the trial');
  const { start, results, timedOut } = fleet;
  const attempts = results.flatMap((r) => r.attempts).sort((a, b) => a.sentAt - b.sentAt);
  const completedAt = results.flatMap((r) => r.completedAt);
  const failures = results.reduce((s, r) => s + r.failures, 0);
  const idealInput: IdealInput = { start, requests: jobs, minute: { kind: 'fixed', windowMs: W, phaseMs, limit: LIMIT } };
  const ideal = idealSchedule(idealInput);
  const problems = verifyIdeal(idealInput, ideal);
  if (problems.length > 0) throw new Error(`ideal schedule failed its replay through the server's RateWindow: ${problems.slice(0, 3).join('; ')}`);
  const spec: TrialSpec = { scenario: 'redis-shared', windowMs: W, kind: 'fixed', limit: LIMIT, jobs, phase, seed: 5000 + phaseIndex, capMs, maxConcurrent: CONNECTIONS };
  const metrics = computeMetrics(spec, start, undefined, attempts, completedAt, ideal, failures, timedOut);
  const complete = collected.accepted.length >= jobs && !timedOut && failures === 0;
  // Work remained until the last acceptance, or (cut off) until the cap.
  const u = utilisation(collected.accepted, start, complete ? max(collected.accepted) : start + capMs, phaseMs, W, LIMIT);
  const figures: Figures = {
    utilisation: u.utilisation,
    windows: u.windows,
    per1000All: attempts.length > 0 ? (metrics.total429 / attempts.length) * 1000 : 0,
    metrics,
    peakSent: peakPerWindow(
      attempts.map((a) => a.sentAt),
      phaseMs,
      W,
    ),
  };
  const procs: ProcFigures[] = results.map((r) => {
    const done = r.completedAt.filter((t) => !Number.isNaN(t));
    return {
      jobs: r.completedAt.length,
      done: done.length,
      requests: r.attempts.length,
      r429: r.attempts.filter((a) => a.status === 429).length,
      finishedS: done.length === r.completedAt.length && done.length > 0 ? (max(done) - start) / 1000 : Number.NaN,
      lateMs: r.lateMs,
    };
  });
  const gridOffset = (((((fleet.readyAt[0] ?? start) - phaseMs) % W) + W) % W) / W;
  const stalls =
    config.key === 'bottleneck'
      ? []
      : await findStalls(
          Array.from({ length: WORKERS }, (_, i) => join(traceDir, `${tag}-w${i}.jsonl`)),
          start,
          results.map((r) => {
            const done = r.completedAt.filter((t) => !Number.isNaN(t));
            return done.length === r.completedAt.length ? max(done) : start + capMs;
          }),
          collected.accepted,
          2 * W,
        );
  const outcome: Outcome = { config, phase, start, phaseMs, jobs, collected, attempts, ideal, figures, procs, results, timedOut, setupMs: fleet.setupMs, gridOffset, gridTarget, stalls };
  await writeHeader(traceDir, tag, outcome);
  return outcome;
}

/** The trial's header (server log, figures) next to the workers' traces. */
async function writeHeader(dir: string, tag: string, o: Outcome): Promise<void> {
  const rel = (t: number): number => t - o.start;
  const header = {
    config: o.config.key,
    phase: o.phase,
    start: o.start,
    windowMs: WINDOW_MS,
    limit: LIMIT,
    jobs: o.jobs,
    /** The first window boundary at or after the start, ms after it. */
    firstBoundary: ((((o.phaseMs - o.start) % WINDOW_MS) + WINDOW_MS) % WINDOW_MS),
    /** Server-side acceptance times, ms after the start. */
    accepted: o.collected.accepted.map(rel),
    idealEnd: rel(o.ideal.end),
    figures: o.figures,
    procs: o.procs,
    setupMs: o.setupMs,
    gridOffset: o.gridOffset,
    gridTarget: o.gridTarget,
    stalls: o.stalls,
    workers: o.results.map((r) => ({ index: r.index, lateMs: r.lateMs, failures: r.failures, failureSamples: r.failureSamples, storeCalls: r.storeCalls, reserves: r.reserves, retries: r.retries })),
  };
  await writeFile(join(dir, `${tag}-server.json`), `${JSON.stringify(header)}\n`);
}

interface Row {
  config: ConfigInfo;
  outcomes: Outcome[];
  utilisation: number;
  per1000All: number;
  per1000After: number;
  ratio: number;
  requestsPerJob: number;
}

function summarise(config: ConfigInfo, outcomes: Outcome[]): Row {
  return {
    config,
    outcomes,
    utilisation: median(outcomes.map((o) => o.figures.utilisation)),
    per1000All: median(outcomes.map((o) => o.figures.per1000All)),
    per1000After: median(outcomes.map((o) => o.figures.metrics.per1000)),
    ratio: median(outcomes.map((o) => o.figures.metrics.ratio)),
    requestsPerJob: median(outcomes.map((o) => o.figures.metrics.requestsPerJob)),
  };
}

function verdict(r: Row): string {
  if (r.config.key !== 'shared') return '';
  const cut = r.outcomes.filter((o) => !Number.isFinite(o.figures.metrics.ratio)).length;
  const why = [
    r.utilisation >= TARGET_UTILISATION ? '' : `utilisation < ${TARGET_UTILISATION * 100} %`,
    r.per1000All <= TARGET_PER_1000 ? '' : `429s > ${TARGET_PER_1000}/1k`,
    r.ratio <= TARGET_RATIO ? '' : `ratio > ${TARGET_RATIO}`,
    cut === 0 ? '' : `${cut} run${cut > 1 ? 's' : ''} cut off`,
  ].filter(Boolean);
  return why.length === 0 ? 'PASS' : `FAIL (${why.join(', ')})`;
}

function procCell(p: ProcFigures): string {
  return `${p.done}/${p.jobs} · ${p.requests} · ${p.r429} · ${Number.isFinite(p.finishedS) ? fmt(p.finishedS, 1) : '–'}`;
}

function charts(rows: readonly Row[], phaseIndex: number, jobs: number): Chart[] {
  const W = WINDOW_MS;
  const picked = rows.map((r) => r.outcomes[Math.min(phaseIndex, r.outcomes.length - 1)]).filter((o): o is Outcome => o !== undefined);
  const any = picked[0];
  if (!any) return [];
  // Every trial's window grid sits at the same phase from its own start: align the trials on their starts.
  const first = any.phaseMs + Math.floor((any.start - any.phaseMs) / W) * W - any.start;
  const lastT = max(picked.flatMap((o) => [max(o.collected.accepted) - o.start, max(o.attempts.map((a) => a.sentAt)) - o.start, o.ideal.end - o.start]));
  const bins = Math.ceil((lastT - first) / W) + 1;
  const make = (kind: 'accepted' | 'sent'): Chart => {
    const series: ChartSeries[] = [];
    if (kind === 'accepted') {
      series.push({ name: 'ideal', points: perWindowSeries(any.ideal.times, any.start, W, any.phaseMs, bins), color: '#999999', dash: 'dotted', width: 3, layer: 4 });
    }
    for (const o of picked) {
      const times = kind === 'accepted' ? o.collected.accepted : o.attempts.map((a) => a.sentAt);
      const f = o.figures;
      const label =
        kind === 'accepted'
          ? `${o.config.name} (${pct(f.utilisation)}, ${ratioText(f.metrics.ratio)}× ideal)`
          : `${o.config.name} (${f.metrics.total429} × 429)`;
      series.push({
        name: label,
        points: perWindowSeries(times, o.start, W, o.phaseMs, bins),
        color: o.config.color,
        width: o.config.key === 'shared' ? 2.5 : o.config.key === 'bottleneck' ? 4 : 2,
        layer: o.config.key === 'shared' ? 3 : o.config.key === 'bottleneck' ? 1 : 2,
      });
    }
    const xEnd = (series[0]?.points.at(-1)?.[0] ?? 0) as number;
    series.push({ name: 'minute limit', points: [[first / 1000, LIMIT], [xEnd, LIMIT]], color: '#000000', dash: 'dashed', width: 1.5 });
    return {
      file: kind === 'accepted' ? 'redis-shared.svg' : 'redis-shared-sent.svg',
      title:
        kind === 'accepted'
          ? 'Many processes, one quota: requests the server accepted per window'
          : 'Many processes, one quota: requests sent per window (429s included)',
      subtitle: `4 worker processes, one account, ${jobs} jobs; fixed window, ${LIMIT} per ${W} ms; window phase ${any.phase}. Bins are the server's windows.`,
      xLabel: 'seconds since start',
      yLabel: `${kind} per ${W} ms window`,
      series,
    };
  };
  return [make('accepted'), make('sent')];
}

async function run(ctx: ScenarioContext): Promise<ScenarioResult> {
  const phases = stratified(ctx.quick ? 1 : 3, false);
  // Independent of the phases: where Bottleneck's own refresh grid falls within a server window.
  const gridTargets = stratified(phases.length, true);
  // Full: 22.5 windows' worth of jobs (≥ 20 whole windows at any phase; a half-full last window). Quick: 8.5.
  const jobsPerWorker = ((ctx.quick ? 8.5 : 22.5) * LIMIT) / WORKERS;
  if (!Number.isInteger(jobsPerWorker)) throw new Error(`jobs per worker must be whole, got ${jobsPerWorker}`);
  const jobs = WORKERS * jobsPerWorker;
  const runId = randomBytes(4).toString('hex');
  const ids = { prefix: `mbs-bench:redis-shared:${runId}:`, bottleneckBase: `mbs-bench-redis-shared-${runId}` };
  const traceDir = join(ctx.workDir, 'traces', 'redis-shared');
  await mkdir(traceDir, { recursive: true });

  const redis = await openBenchRedis();
  ctx.log(`  Redis ${redis.version} at ${redis.url} (${redis.kind === 'private' ? 'a private redis-server, started for this run' : 'external'}); key prefix ${ids.prefix}, Bottleneck ids ${ids.bottleneckBase}-*`);
  const byConfig = new Map<FleetConfig, Outcome[]>(CONFIGS.map((c) => [c.key, []]));
  let server: ServerProcess | undefined;
  try {
    server = await ServerProcess.spawn();
    for (const [pi, phase] of phases.entries()) {
      for (const config of CONFIGS) {
        if (ctx.signal.aborted) throw new Error('interrupted');
        const o = await runOne(ctx, server, redis, config, phase, pi, gridTargets[pi] ?? 0, jobsPerWorker, ids, traceDir);
        byConfig.get(config.key)?.push(o);
        const f = o.figures;
        const m = f.metrics;
        const late = max(o.procs.map((p) => p.lateMs));
        ctx.log(
          `  phase ${String(phase).padEnd(5)} ${config.key.padEnd(10)} utilisation ${pct(f.utilisation)} (${f.windows} windows); ` +
            `429s ${m.total429} of ${m.requests} (${fmt(f.per1000All, 2)}/1k); makespan ${fmt(m.makespanMs / 1000, 2)} s / ideal ${fmt(m.idealMs / 1000, 2)} s = ${ratioText(m.ratio)}; ` +
            `per process ${o.procs.map((p) => `${p.done}/${p.requests}/${p.r429}`).join(' ')} (done/requests/429s)` +
            (m.failures > 0 ? `; ${m.failures} FAILED (${o.results.flatMap((r) => r.failureSamples)[0] ?? ''})` : '') +
            (o.timedOut ? '; CUT OFF at the cap' : '') +
            (late > 2 ? `; a worker started ${late} ms late` : '') +
            (config.key === 'bottleneck' ? `; its refresh grid starts ${fmt(o.gridOffset, 2)} W after the server's boundaries (target ${fmt(o.gridTarget, 2)})` : ''),
        );
        for (const stall of o.stalls) ctx.log(`    ${stallText(stall)}`);
      }
    }
  } finally {
    await server?.close();
    try {
      await redis.deleteKeys([ids.prefix, `b_${ids.bottleneckBase}`]);
    } finally {
      await redis.close();
    }
  }

  const rows = CONFIGS.map((c) => summarise(c, byConfig.get(c.key) ?? []));
  const summary: Table = {
    title: `Many processes, one quota: median over ${phases.length} phase${phases.length > 1 ? 's' : ''} (4 processes, W = ${WINDOW_MS} ms, limit ${LIMIT}/window, ${jobs} jobs)`,
    columns: ['configuration', 'utilisation', '429s per 1,000', '(after 1st window)', 'makespan / ideal', 'requests / job', 'target'],
    rows: rows.map((r) => [r.config.name, pct(r.utilisation), fmt(r.per1000All, 2), fmt(r.per1000After, 2), ratioText(r.ratio), fmt(r.requestsPerJob, 3), verdict(r)]),
    align: ['left', 'right', 'right', 'right', 'right', 'right', 'left'],
  };
  const detail: Table = {
    title: "Per phase: utilisation · 429s (of requests) · makespan / ideal · peak sent in one window (Bottleneck: its refresh grid's offset after the server's boundaries)",
    columns: ['configuration', ...phases.map((p) => `phase ${p}`)],
    rows: rows.map((r) => [
      r.config.name,
      ...r.outcomes.map(
        (o) =>
          `${pct(o.figures.utilisation)} · ${o.figures.metrics.total429} (of ${o.figures.metrics.requests}) · ${ratioText(o.figures.metrics.ratio)} · ${o.figures.peakSent}` +
          (o.config.key === 'bottleneck' ? ` · grid +${fmt(o.gridOffset, 2)} W` : ''),
      ),
    ]),
  };
  const perProcess: Table = {
    title: 'Per process: jobs done/assigned · requests · 429s · finished (s after the start)',
    columns: ['configuration', 'phase', ...Array.from({ length: WORKERS }, (_, i) => `process ${i + 1}`)],
    rows: rows.flatMap((r) => r.outcomes.map((o) => [r.config.name, String(o.phase), ...o.procs.map(procCell)])),
  };
  const shared = rows.find((r) => r.config.key === 'shared');
  const storeCalls = shared
    ? median(
        shared.outcomes.map((o) => {
          const calls = o.results.reduce((s, r) => s + (r.storeCalls?.reserve ?? 0) + (r.storeCalls?.settle ?? 0), 0);
          return calls / o.jobs;
        }),
      )
    : Number.NaN;
  const memory = rows.find((r) => r.config.key === 'memory');
  const bottleneck = rows.find((r) => r.config.key === 'bottleneck');
  const sharedVerdict = shared ? verdict(shared) : 'FAIL (not run)';
  const perPhaseMisses = (shared?.outcomes ?? [])
    .filter((o) => !(o.figures.utilisation >= TARGET_UTILISATION) || o.figures.per1000All > TARGET_PER_1000 || !(o.figures.metrics.ratio <= TARGET_RATIO))
    .map((o) => `phase ${o.phase}: ${pct(o.figures.utilisation)}, ${fmt(o.figures.per1000All, 2)} 429s/1k, ${Number.isFinite(o.figures.metrics.ratio) ? `${fmt(o.figures.metrics.ratio, 3)}× ideal` : 'cut off'}`);
  const notes = [
    sharedVerdict === 'PASS'
      ? `ours with one shared RedisStore meets every target (median): utilisation ≥ ${TARGET_UTILISATION * 100} %, ≤ ${TARGET_PER_1000} 429 per 1,000 requests, makespan ≤ ${TARGET_RATIO} × ideal.`
      : `ours with one shared RedisStore: ${sharedVerdict}.`,
    ...(perPhaseMisses.length > 0 ? [`shared store, single phases over a target: ${perPhaseMisses.join('; ')}`] : []),
    ...(shared?.outcomes ?? [])
      .filter((o) => o.stalls.length > 0)
      .map((o) => `shared store, phase ${o.phase}, waits over ${2 * WINDOW_MS} ms with work queued: ${o.stalls.map(stallText).join('; ')}.`),
    `shared store: ${fmt(storeCalls, 2)} Redis script calls (reserve + settle) per job, median.`,
    ...(memory
      ? [
          `4 in-memory budgets: each process spends what it believes is the whole remaining budget, so every window opens with a burst of up to ` +
            `${WORKERS} × ${LIMIT} requests: ${fmt(memory.per1000All, 0)} of every 1,000 requests are 429s (${fmt(memory.requestsPerJob, 2)} requests per job, median).`,
        ]
      : []),
    ...(bottleneck
      ? [
          `Bottleneck, 429s per 1,000 by phase: ${bottleneck.outcomes.map((o) => `${fmt(o.figures.per1000All, 1)} (grid +${fmt(o.gridOffset, 2)} W)`).join(', ')}. ` +
            "The rate depends on where its own refresh grid falls against the server's windows (and retries of 429s, which bypass its reservoir), so its median moves from run to run.",
        ]
      : []),
    `Redis ${redis.version} (${redis.kind === 'private' ? 'a private redis-server on a loopback port, no persistence' : redis.url}).`,
    `traces (per worker: every request, and every reserve/settle of our store, as JSON lines): ${traceDir}`,
  ];
  const chartList = charts(rows, ctx.quick ? 0 : 1, jobs);
  return {
    tables: [summary, detail, perProcess],
    charts: chartList,
    targetsMet: sharedVerdict === 'PASS',
    notes,
    section: {
      id: 'redis-shared',
      title: 'Many processes, one quota',
      markdown: markdown(ctx, phases, jobs, summary, detail, perProcess, chartList, notes, redis),
    },
  };
}

function markdown(
  ctx: ScenarioContext,
  phases: readonly number[],
  jobs: number,
  summary: Table,
  detail: Table,
  perProcess: Table,
  chartList: readonly Chart[],
  notes: readonly string[],
  redis: BenchRedis,
): string {
  const W = WINDOW_MS;
  const lines = [
    ctx.quick ? '> **Quick run** (`--quick`): one phase, shorter runs. Not a valid result; run without `--quick`.\n' : '',
    "Issue 5's benchmark: **4 worker processes share one account** (one API key) on one fake ModelBeam server in",
    'compressed time, in three configurations measured in the same run. Targets for the shared store: utilisation of the',
    `minute limit ≥ ${TARGET_UTILISATION * 100} %, ≤ ${TARGET_PER_1000} 429 per 1,000 requests, makespan ≤ ${TARGET_RATIO} × ideal.`,
    '',
    '### Results',
    '',
    `Median over ${phases.length} window phase${phases.length > 1 ? 's' : ''} (${phases.join(', ')}, drawn at random, one per third of a window).`,
    '',
    formatMarkdown(summary),
    '',
    ...notes.filter((n) => !n.startsWith('traces')).map((n) => `- ${n}`),
    '',
    '<details><summary>Per phase, and per process</summary>',
    '',
    `**${detail.title}**`,
    '',
    formatMarkdown(detail),
    '',
    `**${perProcess.title}**`,
    '',
    formatMarkdown(perProcess),
    '',
    '</details>',
    '',
    '### Charts',
    '',
    `Requests per server window, at window phase ${phases[ctx.quick ? 0 : Math.min(1, phases.length - 1)]}: accepted by the server (with the ideal, dotted),`,
    'and sent (429s included), against the minute limit (dashed).',
    '',
    ...chartList.map((c) => `![${c.title}](results/${c.file})\n`),
    '### Set-up',
    '',
    `- **Compressed time.** A "minute" is W = ${W} ms with a limit of ${LIMIT} requests (${(LIMIT * 1000) / W} requests/s for the`,
    `  account), a fixed window whose boundaries fall at a random phase from the start. ${jobs} jobs (${jobs / LIMIT} windows' worth, so`,
    '  at least 20 whole windows at any phase), each one `POST /api/v1/client/txt2embedding` (it answers at once).',
    `- **Processes.** The fake server runs in a child process of its own; the ${WORKERS} workers are child processes`,
    `  (\`node --import tsx bench/redis/worker.ts\`), each with an undici \`Pool\` of ${CONNECTIONS} connections opened beforehand on a`,
    `  route that is not rate limited, and ${jobs / WORKERS} jobs of its own, all handed to its limiter at one common start time.`,
    "  The server answers 429s with `Retry-After` and `retry-after-ms` (a whole-second Retry-After would be most of a",
    '  window here); every configuration reads `retry-after-ms` first.',
    "- **Where Bottleneck's windows fall.** Its refresh grid starts when the first process creates the shared state (and",
    "  drifts later by up to a heartbeat per refresh). The first process creates it at an offset from the server's boundaries",
    '  drawn at random, one per third of a window in random order over the phases; the per-phase table gives the offset measured.',
    `- **Redis**: ${redis.version}, ${redis.kind === 'private' ? 'a private `redis-server` started for the run on a loopback port, without persistence' : `\`${redis.url}\``}`,
    '  (`REDIS_URL` selects another). Every run uses a fresh key prefix and fresh Bottleneck ids, and deletes its keys.',
    '',
    '### The three configurations',
    '',
    '- **ours, one shared RedisStore**: in each process `new RateLimitScheduler({ store: new RedisStore({ redis: url,',
    `  keyPrefix, account }), windows: { minuteMs: ${W} } })\`, the same prefix and account in all four. It is told the window`,
    '  length only: the limit, the remaining budget and the phase come from the response headers, shared through Redis.',
    `- **ours, 4 in-memory budgets**: the same without \`store\` (each process has the default \`MemoryStore\`). Each learns`,
    '  the same headers, but believes it has the whole remaining budget to itself.',
    '- **Bottleneck 2.19.5, clustered**: in each process',
    `  \`new Bottleneck({ id, datastore: 'ioredis', clientOptions: { host, port }, Redis, clearDatastore, reservoir: ${LIMIT},`,
    `  reservoirRefreshAmount: ${LIMIT}, reservoirRefreshInterval: ${W}, heartbeatInterval: ${HEARTBEAT_MS} })\` with one shared \`id\`;`,
    '  `clearDatastore: true` on the first process only, which starts and initialises the shared state before the other',
    `  three start. Each job is \`limiter.schedule({ expiration: ${EXPIRATION_MS} }, task)\` (the docs strongly recommend an`,
    `  \`expiration\` in a cluster); a \`failed\` listener returns the 429's Retry-After (ms) for up to ${MAX_429_RETRIES} retries.`,
    `  **heartbeatInterval**: the clustered default is 5000 ms per real minute and the docs ask for refresh intervals that are`,
    `  multiples of it; compressed like the minute (× ${W} / 60 000) that is ${HEARTBEAT_MS} ms, and W is ${W / HEARTBEAT_MS} heartbeats.`,
    '  Left at 5000 ms, a refresh would come every fifth window at best (see `../shared/deps.md` §2: queued jobs wait up',
    '  to a full heartbeat after a refresh).',
    '',
    '### How the figures are computed',
    '',
    '- **Utilisation**: the counted windows are the server\'s fixed windows `[phase + kW, phase + (k+1)W)` that begin at or',
    '  after the start and end at or before the server\'s last acceptance: the whole windows during which work was queued',
    '  throughout. Utilisation = requests the server accepted in them ÷ (limit × their number). The ideal scores 100 %.',
    '- **429s per 1,000**: every 429 the workers received ÷ every request they sent × 1,000 (the target figure).',
    '  "After 1st window" is the core scheduler\'s rule (429s to requests sent at least W after the start, per 1,000 of',
    '  those requests), for comparison.',
    '- **Ideal** (`bench/lib/ideal.ts`): every request accepted at the earliest moment the server\'s limiter allows, all',
    '  jobs ready at the start (replayed through the server\'s `RateWindow` to check it). **Makespan**: from the start',
    `  until the last job's response was read in any process; a run that fails a job or hits its cap (${ctx.quick ? '2 × ideal + 5 s' : '3 × ideal + 10 s'})`,
    '  is "cut off".',
    '- **Per process**: jobs done of those assigned, HTTP requests sent, 429s received, and when its last job finished.',
    '',
    'Traces (per worker: every request with its status and headers, every reserve and settle of our store with the budget',
    'it reported, Bottleneck\'s retries) are written to `bench/.work/traces/redis-shared/` (git-ignored).',
  ];
  return lines.join('\n');
}

export const scenario: Scenario = {
  name: 'redis-shared',
  description: '4 processes on one account: one shared RedisStore vs 4 in-memory budgets vs clustered Bottleneck (issue 5)',
  run,
};

export default scenario;
