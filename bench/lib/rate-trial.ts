/**
 * One trial: one contender drains `jobs` POSTs into a fake ModelBeam server
 * (in a child process) whose limits it may or may not know, starting at a
 * chosen window phase; then the server's accepted log is compared with the
 * ideal schedule.
 *
 * Timing. The trial picks a start time `T` a little in the future and puts
 * the server's minute-window boundaries at `T + phase·W + k·W` (and the daily
 * ones at `T + phase·D + k·D`). Every job is handed to the contender at `T`.
 * The ideal is computed from the actual start, the server's windows and the
 * limit changes as the server applied them.
 */
import { setMaxListeners } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Pool, type Dispatcher } from 'undici';
import type { FakeServerOptions } from '../../src/testing/index.js';
import { idealSchedule, verifyIdeal, type IdealInput, type IdealLimitChange, type IdealResult } from './ideal.js';
import { FailureLog, finishRun, headerNumber, headerString, jobRange, jobSignal, runJobs, sendRecorded, until, warmUp } from './attempts.js';
import type { Contender, ContenderSetup } from './rate-contenders.js';
import type { Collected, ServerProcess } from './server-process.js';

export interface TrialSpec {
  /** Scenario key, for traces. */
  scenario: string;
  windowMs: number;
  kind: 'fixed' | 'sliding';
  /** Initial minute limit (also the "documented" one given to the static contenders). */
  limit: number;
  /** Daily window, if any. */
  daily?: { dayMs: number; limit: number } | undefined;
  jobs: number;
  /** Where the first server window boundary falls, as a share of the window after the start. */
  phase: number;
  /** Limit changes, at `start + atWindows·W`. */
  changes?: ReadonlyArray<{ atWindows: number; minute?: number; daily?: number }>;
  /** Share of responses without rate-limit headers. */
  missingRate?: number;
  seed: number;
  /** Hard cap on the trial's wall time after the start. */
  capMs: number;
  maxConcurrent: number;
}

/** One HTTP request as the client saw it. Times are epoch ms. */
export interface AttemptRecord {
  job: number;
  sentAt: number;
  recvAt: number;
  /** HTTP status; 0 for a network error. */
  status: number;
  limit?: number;
  remaining?: number;
  dailyLimit?: number;
  dailyRemaining?: number;
  type?: string;
  retryAfterMs?: number;
  error?: string;
}

export interface TrialMetrics {
  makespanMs: number;
  idealMs: number;
  /** makespan / ideal; Infinity when jobs failed or the cap was hit. */
  ratio: number;
  requests: number;
  requestsPerJob: number;
  /** All 429 responses. */
  total429: number;
  minute429: number;
  daily429: number;
  /** 429s to requests sent during the first window (not counted). */
  firstWindow429: number;
  /** Daily 429s forgiven: the first one of each server day. */
  excusedDaily429: number;
  /** 429s that count against the target. */
  counted429: number;
  /** Requests sent after the first window (the denominator). */
  requestsAfterFirstWindow: number;
  per1000: number;
  failures: number;
  timedOut: boolean;
}

export interface TrialOutcome {
  spec: TrialSpec;
  contender: string;
  start: number;
  /** How late the start was against the planned one (the ideal uses the actual start; the phase shifts by this). */
  lateMs: number;
  minutePhaseMs: number;
  dailyPhaseMs: number | undefined;
  attempts: AttemptRecord[];
  completedAt: number[];
  collected: Collected;
  idealInput: IdealInput;
  ideal: IdealResult;
  metrics: TrialMetrics;
  failureSamples: string[];
}

const API_PATH = '/api/v1/client/txt2embedding';
const HEADERS = {
  authorization: 'Bearer test-key',
  'content-type': 'application/json',
  accept: 'application/json',
};
/** Time between choosing the start and starting: enough to start the server and warm the pool. */
const LEAD_MS = 600;

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/** Least common multiple of two positive integers. */
function lcm(a: number, b: number): number {
  return (a / gcd(a, b)) * b;
}

function setupOf(spec: TrialSpec, signal: AbortSignal): ContenderSetup {
  return {
    windowMs: spec.windowMs,
    dayMs: spec.daily?.dayMs,
    limit: spec.limit,
    dailyLimit: spec.daily?.limit,
    maxConcurrent: spec.maxConcurrent,
    signal,
  };
}

/** Runs one trial. Always stops the server it started, also on error. */
export async function runTrial(
  server: ServerProcess,
  spec: TrialSpec,
  contender: Contender,
  options: { signal: AbortSignal; traceDir?: string | undefined },
): Promise<TrialOutcome> {
  const W = spec.windowMs;
  // The server's window grids (minute and day) repeat with this period: any start `planned + k·period` has the same phases.
  const period = spec.daily ? lcm(W, spec.daily.dayMs) : W;
  let planned = Date.now() + LEAD_MS;
  const minutePhaseMs = Math.round(planned + spec.phase * W);
  const dailyPhaseMs = spec.daily ? Math.round(planned + spec.phase * spec.daily.dayMs) : undefined;
  const serverOptions: FakeServerOptions = {
    seed: spec.seed,
    balance: 1e6,
    limits: {
      minute: { limit: spec.limit, windowMs: W, kind: spec.kind, phaseMs: minutePhaseMs },
      daily: spec.daily ? { limit: spec.daily.limit, windowMs: spec.daily.dayMs, kind: 'fixed', phaseMs: dailyPhaseMs ?? 0 } : false,
    },
    headers: { retryAfterMs: true, missingRate: spec.missingRate ?? 0 },
  };

  const { url } = await server.startServer(serverOptions);
  const attempts: AttemptRecord[] = [];
  const completedAt: number[] = new Array<number>(spec.jobs).fill(Number.NaN);
  const failures = new FailureLog();
  let timedOut = false;
  let start = planned;
  let collected: Collected | undefined;
  const trialAbort = new AbortController();
  // Every sleeping retry and every request listens to it: no leak, just many listeners.
  setMaxListeners(0, trialAbort.signal);
  const onOuterAbort = (): void => trialAbort.abort(options.signal.reason);
  options.signal.addEventListener('abort', onOuterAbort, { once: true });
  const pool = new Pool(url, { connections: spec.maxConcurrent, keepAliveTimeout: 60_000, keepAliveMaxTimeout: 600_000 });

  try {
    await warmUp(pool, spec.maxConcurrent, '/storage/warm-up');
    // Set-up took longer than the lead: start one period later, at the same phases.
    while (planned < Date.now() + 30) planned += period;
    const send = (job: number, signal?: AbortSignal): Promise<Dispatcher.ResponseData> =>
      sendRecorded(
        pool,
        attempts,
        { job },
        {
          path: API_PATH,
          method: 'POST',
          headers: HEADERS,
          body: JSON.stringify({ input: `job ${job}`, model: 'Bge_M3_FP16' }),
          signal: jobSignal(signal, trialAbort.signal),
        },
        (res, record) => {
          const h = res.headers;
          const limit = headerNumber(h, 'x-ratelimit-limit');
          const remaining = headerNumber(h, 'x-ratelimit-remaining');
          const dailyLimit = headerNumber(h, 'x-ratelimit-daily-limit');
          const dailyRemaining = headerNumber(h, 'x-ratelimit-daily-remaining');
          const type = headerString(h, 'x-ratelimit-type');
          const ra = headerNumber(h, 'retry-after-ms');
          if (limit !== undefined) record.limit = limit;
          if (remaining !== undefined) record.remaining = remaining;
          if (dailyLimit !== undefined) record.dailyLimit = dailyLimit;
          if (dailyRemaining !== undefined) record.dailyRemaining = dailyRemaining;
          if (type !== undefined) record.type = type;
          if (ra !== undefined) record.retryAfterMs = ra;
        },
      );

    // Start on time, or one period later (same phases): a late start would shift the phase.
    for (let attempt = 0; ; attempt++) {
      await until(planned);
      if (Date.now() - planned <= 2 || attempt >= 4) break;
      planned += period;
    }
    start = Date.now();
    const run = contender.start(setupOf(spec, trialAbort.signal), send);
    // Limit changes are over a second away; schedule them now that the start is fixed (the child applies them on its clock).
    const scheduled =
      spec.changes && spec.changes.length > 0
        ? server.schedule(
            spec.changes.map((c) => ({
              at: planned + Math.round(c.atWindows * W),
              limits: { ...(c.minute !== undefined ? { minute: c.minute } : {}), ...(c.daily !== undefined ? { daily: c.daily } : {}) },
            })),
          )
        : Promise.resolve();
    scheduled.catch(() => {});
    const settled = runJobs((job) => run.run(job), jobRange(spec.jobs), completedAt, (job, error) => failures.note(job, error));
    timedOut = await finishRun(run, settled, spec.capMs, trialAbort);
    await scheduled;
  } finally {
    options.signal.removeEventListener('abort', onOuterAbort);
    trialAbort.abort(new Error('trial over'));
    await pool.destroy().catch(() => {});
    try {
      collected = await server.collect();
    } finally {
      await server.stopServer();
    }
  }

  if (!collected) throw new Error('no data collected from the fake server');
  const idealInput: IdealInput = {
    start,
    requests: spec.jobs,
    minute: { kind: spec.kind, windowMs: W, phaseMs: minutePhaseMs, limit: spec.limit },
    daily: spec.daily ? { kind: 'fixed', windowMs: spec.daily.dayMs, phaseMs: dailyPhaseMs ?? 0, limit: spec.daily.limit } : undefined,
    changes: collected.applied.map((a): IdealLimitChange => {
      const change: IdealLimitChange = { at: a.appliedAt };
      if (typeof a.limits.minute === 'number') change.minute = a.limits.minute;
      if (typeof a.limits.daily === 'number') change.daily = a.limits.daily;
      return change;
    }),
  };
  const ideal = idealSchedule(idealInput);
  const problems = verifyIdeal(idealInput, ideal);
  if (problems.length > 0) throw new Error(`ideal schedule failed its replay through the server's RateWindow: ${problems.slice(0, 3).join('; ')}`);

  const metrics = computeMetrics(spec, start, dailyPhaseMs, attempts, completedAt, ideal, failures.count, timedOut);
  const outcome: TrialOutcome = {
    spec,
    contender: contender.key,
    start,
    lateMs: start - planned,
    minutePhaseMs,
    dailyPhaseMs,
    attempts,
    completedAt,
    collected,
    idealInput,
    ideal,
    metrics,
    failureSamples: failures.samples,
  };
  if (options.traceDir) await writeTrace(options.traceDir, outcome);
  return outcome;
}

/**
 * The figures of one trial.
 *
 * 429s are counted from the client's trace: a 429 counts when its request was
 * sent at or after `start + W` (after the first window), except that the
 * first daily 429 (`X-RateLimit-Type: daily`) of each server day is forgiven.
 * A 429 without a type header counts as a minute 429. The rate is per 1,000
 * requests sent after the first window.
 */
export function computeMetrics(
  spec: TrialSpec,
  start: number,
  dailyPhaseMs: number | undefined,
  attempts: readonly AttemptRecord[],
  completedAt: readonly number[],
  ideal: IdealResult,
  failures: number,
  timedOut: boolean,
): TrialMetrics {
  const W = spec.windowMs;
  const firstWindowEnd = start + W;
  let total429 = 0;
  let minute429 = 0;
  let daily429 = 0;
  let firstWindow429 = 0;
  let excusedDaily429 = 0;
  let counted429 = 0;
  let after = 0;
  const excusedDays = new Set<number>();
  for (const a of attempts) {
    const late = a.sentAt >= firstWindowEnd;
    if (late) after++;
    if (a.status !== 429) continue;
    total429++;
    const isDaily = a.type === 'daily';
    if (isDaily) daily429++;
    else minute429++;
    if (!late) {
      firstWindow429++;
      continue;
    }
    if (isDaily && spec.daily && dailyPhaseMs !== undefined) {
      const day = Math.floor((a.sentAt - dailyPhaseMs) / spec.daily.dayMs);
      if (!excusedDays.has(day)) {
        excusedDays.add(day);
        excusedDaily429++;
        continue;
      }
    }
    counted429++;
  }
  let last = -Infinity;
  for (const t of completedAt) if (t > last) last = t;
  const complete = failures === 0 && !timedOut && completedAt.every((t) => !Number.isNaN(t));
  const makespanMs = complete ? last - start : Infinity;
  const idealMs = ideal.makespanMs;
  return {
    makespanMs,
    idealMs,
    ratio: complete ? makespanMs / idealMs : Infinity,
    requests: attempts.length,
    requestsPerJob: attempts.length / spec.jobs,
    total429,
    minute429,
    daily429,
    firstWindow429,
    excusedDaily429,
    counted429,
    requestsAfterFirstWindow: after,
    per1000: after > 0 ? (counted429 / after) * 1000 : 0,
    failures,
    timedOut,
  };
}

/**
 * Accepted requests per window over time (x in seconds since the start), as
 * step-chart points: bins are the server's fixed windows, or windows from the
 * start for a sliding window. A closing point ends the last bin.
 */
export function perWindowSeries(
  times: readonly number[],
  start: number,
  windowMs: number,
  origin: number,
  bins: number,
): Array<[number, number]> {
  const first = origin + Math.floor((start - origin) / windowMs) * windowMs;
  const counts = new Array<number>(bins).fill(0);
  for (const t of times) {
    const k = Math.floor((t - first) / windowMs);
    if (k >= 0 && k < bins) counts[k] = (counts[k] ?? 0) + 1;
  }
  const points: Array<[number, number]> = counts.map((c, k) => [(first + k * windowMs - start) / 1000, c]);
  points.push([(first + bins * windowMs - start) / 1000, counts[bins - 1] ?? 0]);
  return points;
}

/** Offset from `start` of the first grid point `origin + k·period` at or after it. */
function firstAfter(origin: number, start: number, period: number): number {
  return (((origin - start) % period) + period) % period;
}

async function writeTrace(dir: string, o: TrialOutcome): Promise<void> {
  await mkdir(dir, { recursive: true });
  const name = `${o.spec.scenario}-phase${o.spec.phase}-${o.contender}.jsonl`;
  const lines: string[] = [];
  const rel = (t: number): number => t - o.start;
  lines.push(
    JSON.stringify({
      kind: 'header',
      scenario: o.spec.scenario,
      contender: o.contender,
      start: o.start,
      windowMs: o.spec.windowMs,
      phase: o.spec.phase,
      lateMs: o.lateMs,
      /** The first minute-window boundary at or after the start, ms since the start. */
      firstMinuteBoundary: firstAfter(o.minutePhaseMs, o.start, o.spec.windowMs),
      firstDailyBoundary:
        o.dailyPhaseMs === undefined || !o.spec.daily ? undefined : firstAfter(o.dailyPhaseMs, o.start, o.spec.daily.dayMs),
      /** Server-side acceptance times of every counted request, ms since the start. */
      accepted: o.collected.accepted.map(rel),
      applied: o.collected.applied.map((a) => ({ ...a.limits, at: rel(a.appliedAt) })),
      metrics: o.metrics,
    }),
  );
  for (const a of o.attempts) {
    const { sentAt, recvAt, ...rest } = a;
    lines.push(JSON.stringify({ t: rel(sentAt), rtt: recvAt - sentAt, ...rest }));
  }
  await writeFile(join(dir, name), `${lines.join('\n')}\n`);
}
