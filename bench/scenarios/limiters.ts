/**
 * `limiters`: the scheduler against real server-side rate limiters (issue 11,
 * item 3): express 5 + express-rate-limit 8 with `standardHeaders` draft-6,
 * draft-7 and draft-8, `legacyHeaders` alone and no headers at all, and
 * fastify 5 + @fastify/rate-limit 11 with its default headers and with
 * `enableDraftSpec`, each run for real on loopback in a child process. 600
 * requests per run; ours is told only the window length, Bottleneck and
 * p-queue are told the limit (bench/lib/rate-contenders.ts).
 *
 * Both limiters keep first-hit windows (one client), count refused requests
 * too and speak whole seconds, so the window is 1 s. The ideal is the
 * first-hit schedule from the start (bench/lib/ideal.ts); unused capacity is
 * counted on the windows the limiter itself kept, replayed from every request
 * it saw (bench/lib/unused.ts).
 */
import { setMaxListeners } from 'node:events';
import { Pool, type Dispatcher } from 'undici';
import { parseRateLimitHeaders } from '../../src/headers/index.js';
import { finishRun, jobRange, jobSignal, runJobs, sendRecorded, sleep, warmUp } from '../lib/attempts.js';
import { idealSchedule } from '../lib/ideal.js';
import { LIMITED_PATH, LIMITER_KINDS, LIMITER_TITLES, type LimiterHit, type LimiterKind } from '../lib/limiter-servers.js';
import { LimiterProcess } from '../lib/limiter-process.js';
import { CONTENDERS, type Contender } from '../lib/rate-contenders.js';
import { computeMetrics, type AttemptRecord, type TrialMetrics, type TrialSpec } from '../lib/rate-trial.js';
import { selected } from '../lib/flags.js';
import { fmt } from '../lib/stats.js';
import { formatMarkdown } from '../lib/table.js';
import { unusedCapacity, unusedPer1000 } from '../lib/unused.js';
import type { Scenario, ScenarioContext, ScenarioResult, Table } from '../lib/types.js';

/** Whole seconds: both limiters report resets and Retry-After in whole seconds. */
const WINDOW_MS = 1000;
/** 30 per window, as in the strings; 600 requests are 20 windows. */
const LIMIT = 30;
const JOBS = 600;
const QUICK_JOBS = 200;
const MAX_CONCURRENT = 64;
/** Time between choosing the start and starting: enough to warm the pool. */
const LEAD_MS = 500;

/** Targets for ours (issue 11, "Done when"). */
const TARGET_RATIO = 1.03;
const TARGET_RATIO_NO_HEADERS = 1.15;
const TARGET_PER_1000_NO_HEADERS = 30;

const HEADERS = { 'content-type': 'application/json', accept: 'application/json' };

export interface LimiterTrial {
  kind: LimiterKind;
  contender: string;
  metrics: TrialMetrics;
  /** All 429s per 1,000 requests sent (the first window included). */
  all429Per1000: number;
  unusedPer1000: number;
  hits: number;
}

/** One contender drains `jobs` requests into a fresh limiter of `kind`; the server is stopped whatever happens. */
async function runLimiterTrial(server: LimiterProcess, kind: LimiterKind, jobs: number, contender: Contender, signal: AbortSignal): Promise<LimiterTrial> {
  const { origin } = await server.startServer({ kind, limit: LIMIT, windowMs: WINDOW_MS });
  const attempts: AttemptRecord[] = [];
  const completedAt = new Array<number>(jobs).fill(Number.NaN);
  let failures = 0;
  let timedOut = false;
  const trialAbort = new AbortController();
  setMaxListeners(0, trialAbort.signal);
  const onOuterAbort = (): void => trialAbort.abort(signal.reason);
  signal.addEventListener('abort', onOuterAbort, { once: true });
  const pool = new Pool(origin, { connections: MAX_CONCURRENT, keepAliveTimeout: 60_000 });
  let start = Date.now();
  let hits: LimiterHit[] = [];
  const idealMs = idealSchedule({ start: 0, requests: jobs, minute: { kind: 'first-hit', windowMs: WINDOW_MS, phaseMs: 0, limit: LIMIT } }).makespanMs;
  try {
    // A route the limiter does not guard.
    await warmUp(pool, MAX_CONCURRENT, '/warm-up');
    await sleep(LEAD_MS);
    const send = (job: number, signal?: AbortSignal): Promise<Dispatcher.ResponseData> =>
      sendRecorded(
        pool,
        attempts,
        { job },
        { path: LIMITED_PATH, method: 'POST', headers: HEADERS, body: JSON.stringify({ job }), signal: jobSignal(signal, trialAbort.signal) },
        (res, record) => {
          const s = parseRateLimitHeaders(res.headers, { now: record.recvAt });
          if (s.minute.limit !== undefined) record.limit = s.minute.limit;
          if (s.minute.remaining !== undefined) record.remaining = s.minute.remaining;
          if (s.retryAfterMs !== undefined) record.retryAfterMs = s.retryAfterMs;
        },
      );
    start = Date.now();
    const run = contender.start(
      { windowMs: WINDOW_MS, dayMs: undefined, limit: LIMIT, dailyLimit: undefined, maxConcurrent: MAX_CONCURRENT, signal: trialAbort.signal },
      send,
    );
    const settled = runJobs((job) => run.run(job), jobRange(jobs), completedAt, () => {
      failures++;
    });
    timedOut = await finishRun(run, settled, 4 * idealMs + 10_000, trialAbort);
  } finally {
    signal.removeEventListener('abort', onOuterAbort);
    trialAbort.abort(new Error('trial over'));
    await pool.destroy().catch(() => {});
    try {
      hits = await server.collect();
    } finally {
      await server.stopServer();
    }
  }
  const ideal = idealSchedule({ start, requests: jobs, minute: { kind: 'first-hit', windowMs: WINDOW_MS, phaseMs: 0, limit: LIMIT } });
  // computeMetrics reads the window length, the job count and the daily window from the spec; the rest is for traces.
  const spec: TrialSpec = { scenario: `limiters-${kind}`, windowMs: WINDOW_MS, kind: 'fixed', limit: LIMIT, jobs, phase: 0, seed: 0, capMs: 0, maxConcurrent: MAX_CONCURRENT };
  const metrics = computeMetrics(spec, start, undefined, attempts, completedAt, ideal, failures, timedOut);
  // Both limiters count refused requests too: every request that reached the limiter used a unit.
  const unused = unusedCapacity({ kind: 'first-hit', windowMs: WINDOW_MS, limit: LIMIT, counted: hits.map((h) => h.at) });
  return {
    kind,
    contender: contender.key,
    metrics,
    all429Per1000: attempts.length > 0 ? (1000 * metrics.total429) / attempts.length : 0,
    unusedPer1000: unusedPer1000(unused, jobs),
    hits: hits.length,
  };
}

/** Whether ours meets the target for this configuration. */
export function meetsTarget(kind: LimiterKind, m: TrialMetrics): boolean {
  if (kind === 'express-none') return m.ratio <= TARGET_RATIO_NO_HEADERS && m.per1000 <= TARGET_PER_1000_NO_HEADERS;
  return m.ratio <= TARGET_RATIO && m.counted429 === 0;
}

function ratioText(x: number): string {
  return Number.isFinite(x) ? fmt(x, 3) : 'cut off';
}

async function run(ctx: ScenarioContext): Promise<ScenarioResult> {
  const jobs = ctx.quick ? QUICK_JOBS : JOBS;
  const kinds = selected(ctx.flags, 'config', LIMITER_KINDS);
  const contenderKeys = selected(
    ctx.flags,
    'contender',
    CONTENDERS.map((c) => c.key),
  );
  const server = await LimiterProcess.spawn();
  const trials: LimiterTrial[] = [];
  try {
    for (const kind of kinds) {
      for (const contender of CONTENDERS.filter((c) => contenderKeys.includes(c.key))) {
        if (ctx.signal.aborted) break;
        const t = await runLimiterTrial(server, kind, jobs, contender, ctx.signal);
        ctx.log(
          `${kind} / ${contender.key}: ${ratioText(t.metrics.ratio)} × ideal, ${t.metrics.total429} 429s (${t.metrics.counted429} after the first window), unused ${fmt(t.unusedPer1000, 1)}/1000`,
        );
        trials.push(t);
      }
    }
  } finally {
    await server.close();
  }

  const notes: string[] = [];
  let targetsMet = true;
  const rows = trials.map((t) => {
    const isOurs = t.contender === 'ours';
    const met = isOurs ? meetsTarget(t.kind, t.metrics) : undefined;
    if (met === false) {
      targetsMet = false;
      notes.push(`MISS ${t.kind}: ours at ${ratioText(t.metrics.ratio)} × ideal, ${fmt(t.metrics.per1000, 1)} 429s per 1,000 after the first window`);
    }
    return [
      t.kind,
      t.contender,
      ratioText(t.metrics.ratio),
      fmt(t.all429Per1000, 1),
      fmt(t.metrics.per1000, 1),
      fmt(t.unusedPer1000, 1),
      t.metrics.requests,
      met === undefined ? '' : met ? 'yes' : 'NO',
    ];
  });
  const table: Table = {
    title: `Real limiters: ${jobs} requests, ${LIMIT} per ${WINDOW_MS} ms first-hit window (ours told only the window; Bottleneck and p-queue told the limit)`,
    columns: ['configuration', 'contender', 'makespan / ideal', '429s / 1000', '429s / 1000 after 1st window', 'unused / 1000', 'requests', 'target (ours)'],
    rows,
    align: ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'left'],
  };
  const configurations = LIMITER_KINDS.map((k) => `- \`${k}\`: ${LIMITER_TITLES[k]}`).join('\n');
  const contenders = CONTENDERS.map(
    (c) => `- ${c.name}: ${c.given({ windowMs: WINDOW_MS, dayMs: undefined, limit: LIMIT, dailyLimit: undefined, maxConcurrent: MAX_CONCURRENT })}`,
  ).join('\n');
  const markdown = [
    `Each configuration runs for real on 127.0.0.1 in a child process (express 5.3.0 + express-rate-limit 8.7.5, fastify 5.12.8 + @fastify/rate-limit 11.2.0), ${LIMIT} requests per ${WINDOW_MS} ms. Both keep first-hit windows per client, count refused requests too, and report whole seconds.`,
    '',
    configurations,
    '',
    contenders,
    '',
    `Targets for ours (issue 11): every header dialect ≤ ${TARGET_RATIO} × ideal and 0 429s after the first window; no headers ≤ ${TARGET_RATIO_NO_HEADERS} × ideal and ≤ ${TARGET_PER_1000_NO_HEADERS} 429s per 1,000. Unused capacity: units the limiter would have accepted between the first and the last request that went unused, on its own (replayed) windows.`,
    '',
    formatMarkdown(table),
  ].join('\n');
  return {
    tables: [table],
    charts: [],
    section: { id: 'limiters', title: 'Real server-side limiters', markdown },
    targetsMet,
    notes,
  };
}

export const scenario: Scenario = {
  name: 'limiters',
  description: 'ours vs Bottleneck and p-queue against express-rate-limit (draft-6/7/8, legacy, none) and @fastify/rate-limit (default, draft spec), 600 requests each',
  run,
};
