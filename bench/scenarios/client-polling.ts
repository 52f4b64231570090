/**
 * `client-polling`: issue 3's benchmark. 1,000 asynchronous jobs of varying
 * duration against the fake ModelBeam server in compressed time, with status
 * polls counted against the same minute limit as submissions, handed over all
 * at once (the limit decides) and then one every 400 ms (half the limit: the
 * poll planning decides), each run three ways:
 *
 * - ours, polling: `ModelBeamClient.generate()` for every job, no webhook;
 * - ours, webhooks: the same, with the client's own webhook server started
 *   and the fake server's webhook pointed at it (polling is a safety net);
 * - a plain worker pool (p-queue) with p-retry and a poll every 2 s, the way
 *   the documented example and most hand-written clients do it.
 *
 * Prints requests per completed job, makespan / ideal, 429s and jobs given up
 * on, checks ours against the targets (≤ 2.1 requests per completed job with
 * polling, ≤ 1.05 with webhooks) and writes the "ModelBeam client: polling
 * and webhooks" section of RESULTS.md.
 */
import { setMaxListeners } from 'node:events';
import PQueue from 'p-queue';
import pRetry, { AbortError } from 'p-retry';
import { Pool } from 'undici';
import { ModelBeamClient } from '../../src/modelbeam/index.js';
import { startFakeModelBeam, type FakeModelBeamServer, type FakeServerOptions } from '../../src/testing/index.js';
import { fmt, max, quantile } from '../lib/stats.js';
import { formatMarkdown } from '../lib/table.js';
import type { Scenario, ScenarioContext, ScenarioResult, Table } from '../lib/types.js';
import type { Txt2ImgParams } from '../../src/modelbeam/endpoints.js';

/** Compression: one real minute is `60_000 × SCALE` ms here. Every duration, interval and timeout is scaled by it. */
const SCALE = 1 / 20;
/** The compressed minute window. */
const WINDOW_MS = 60_000 * SCALE;
/** Premium's documented 300 requests per minute, one budget for submissions and polls. */
const LIMIT = 300;
/** Where in the server's window the run starts (share of a window after a boundary). */
const PHASE = 0.5;
/** Job durations, real time: pending 0.2–0.8 s, then processing 1.8–7.2 s, uniform: 2–8 s in all. */
const PENDING_MS = 500;
const PROCESSING_MS = 4500;
const JITTER = 0.6;
/** The plain pool: workers (= connections, as ours), p-retry's usual `retries: 5`, a poll every 2 s, give up after 300 s. */
const NAIVE_WORKERS = 16;
const NAIVE_RETRIES = 5;
const NAIVE_POLL_MS = 2000;
const NAIVE_TIMEOUT_MS = 300_000;
const SECRET = 'whsec_bench';

const TARGET_POLLING = 2.1;
const TARGET_WEBHOOKS = 1.05;

type Mode = 'polling' | 'webhooks' | 'naive';

interface Case {
  key: 'burst' | 'paced';
  title: string;
  /** Real-time gap between two jobs being handed over (0: all at once). */
  gapMs: number;
}

const CASES: readonly Case[] = [
  { key: 'burst', title: '1. All at once', gapMs: 0 },
  { key: 'paced', title: '2. One every 400 ms', gapMs: 400 },
];

interface Contender {
  key: Mode;
  name: string;
  /** The requests-per-completed-job target, if any. */
  target: number | undefined;
}

const CONTENDERS: readonly Contender[] = [
  { key: 'polling', name: 'ours, polling', target: TARGET_POLLING },
  { key: 'webhooks', name: 'ours, webhooks', target: TARGET_WEBHOOKS },
  { key: 'naive', name: 'p-queue + p-retry, 2 s polling', target: undefined },
];

interface Outcome {
  k: Case;
  c: Contender;
  jobs: number;
  completed: number;
  /** Jobs the contender gave up on (rejected, timed out, retries exhausted). */
  gaveUp: number;
  /** Of those, jobs the server had in fact finished (`done`) by the end. */
  gaveUpDone: number;
  /** Jobs still unsettled when the time cap cut the run short. */
  unfinished: number;
  requests: number;
  submits: number;
  polls: number;
  rateLimited: number;
  webhooksDelivered: number;
  makespanMs: number;
  idealMs: number;
  /** Per completed job: from the server's finish to the moment the contender knew (ms), p50 and p95. */
  noticeP50: number;
  noticeP95: number;
  capped: boolean;
  /** Sum of the jobs' own durations ÷ jobs (ms), as the server drew them. */
  meanDurationMs: number;
}

const params = (i: number): Txt2ImgParams => ({ prompt: `bench job ${i}`, model: 'Flux1schnell', width: 512, height: 512, steps: 4 });

function serverOptions(seed: number): FakeServerOptions {
  return {
    seed,
    limits: { minute: { limit: LIMIT, windowMs: WINDOW_MS, kind: 'fixed', phaseMs: 0 } },
    countPolls: true,
    // Compressed time: a whole-second Retry-After would be a third of a window. Every contender may read the ms header.
    headers: { retryAfterMs: true },
    jobs: { pendingMs: PENDING_MS * SCALE, processingMs: PROCESSING_MS * SCALE, jitter: JITTER },
    webhook: { secret: SECRET },
  };
}

/**
 * The ideal, for a clairvoyant client that knows every duration and the limit:
 * job j's submission is accepted at the earliest moment at or after its
 * arrival that the server's fixed window allows, in order; the job then runs
 * its own duration (as the server drew it); with polling, its one poll is
 * accepted at the earliest moment at or after its finish that the window
 * still has room for (polls placed after every submission, earliest finish
 * first). The ideal makespan runs from `start` to the last poll (polling) or
 * the last finish (webhooks, delivery taken as instant). Round trips (~1 ms
 * on loopback) are not counted.
 */
export function idealMakespan(
  start: number,
  arrivals: readonly number[],
  durations: readonly number[],
  withPolls: boolean,
  windowMs = WINDOW_MS,
  limit = LIMIT,
): number {
  const used = new Map<number, number>();
  const accept = (t: number): number => {
    let k = Math.floor(t / windowMs);
    while ((used.get(k) ?? 0) >= limit) k++;
    used.set(k, (used.get(k) ?? 0) + 1);
    return Math.max(t, k * windowMs);
  };
  const finishes = durations.map((d, j) => accept(arrivals[j] ?? start) + d);
  if (!withPolls) return max(finishes) - start;
  let end = start;
  for (const f of [...finishes].sort((a, b) => a - b)) end = Math.max(end, accept(f));
  return end - start;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, Math.max(0, ms));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Whether `work` settled within `ms` (or Ctrl-C came first: `cap`). Leaves no timer behind. */
async function raceCap(work: Promise<unknown>, ms: number, signal: AbortSignal): Promise<'done' | 'cap'> {
  const timer = new AbortController();
  const onAbort = (): void => timer.abort();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    const cap = sleep(ms, timer.signal).then(
      () => 'cap' as const,
      () => 'cap' as const,
    );
    return await Promise.race([work.then(() => 'done' as const), cap]);
  } finally {
    signal.removeEventListener('abort', onAbort);
    timer.abort();
  }
}

/** Hands job i over at `start + i × gapMs` (all at once for 0); resolves when every job has settled. Stops handing over on `stop`. */
async function handOver(jobs: number, gapMs: number, start: number, stop: AbortSignal, run: (i: number) => Promise<unknown>): Promise<unknown> {
  const settled: Promise<unknown>[] = [];
  for (let i = 0; i < jobs && !stop.aborted; i++) {
    const wait = start + i * gapMs - Date.now();
    if (gapMs > 0 && wait > 0) await sleep(wait, stop).catch(() => undefined);
    if (stop.aborted) break;
    settled.push(run(i));
  }
  return Promise.allSettled(settled);
}

/** Waits until the server's fixed window is at `PHASE` of a window. */
async function alignToPhase(signal: AbortSignal): Promise<void> {
  const now = Date.now();
  const into = now % WINDOW_MS;
  const target = PHASE * WINDOW_MS;
  await sleep((target - into + WINDOW_MS) % WINDOW_MS, signal);
}

interface Tally {
  done: Map<number, number>;
  gaveUp: Set<number>;
  ids: Map<number, string>;
}

/** Runs the jobs; returns when they started (epoch ms) and whether the time cap cut the run short. */
type RunResult = { start: number; capped: boolean };

/** Ours: one `generate()` per job. */
async function runOurs(fake: FakeModelBeamServer, k: Case, jobs: number, webhooks: boolean, capAt: number, tally: Tally, signal: AbortSignal): Promise<RunResult> {
  // The server's windows as the scheduler's timeScale (SCALE): every time default of the client follows.
  const client = new ModelBeamClient({
    ...fake.clientOptions(),
    ...(webhooks ? { webhook: { url: 'http://127.0.0.1:9/not-yet', secret: SECRET } } : {}),
  });
  const stop = new AbortController();
  try {
    if (webhooks) {
      const hook = await client.startWebhookServer({ port: 0 });
      client.setWebhookUrl(hook.url); // sent as `webhook_url` with each submission…
      fake.setWebhook('acct-1', hook.url); // …and the account's webhook points there too
    }
    await alignToPhase(signal);
    const start = Date.now();
    const all = handOver(jobs, k.gapMs * SCALE, start, stop.signal, (i) =>
      client.generate('txt2img', params(i), { onSubmitted: (id) => tally.ids.set(i, id) }).then(
        () => void tally.done.set(i, Date.now()),
        () => {
          if (!stop.signal.aborted) tally.gaveUp.add(i);
        },
      ),
    );
    const how = await raceCap(all, capAt - (Date.now() - start), signal);
    return { start, capped: how === 'cap' };
  } finally {
    stop.abort();
    await client.close();
  }
}

/** The plain pool, written the usual way: p-queue workers, p-retry around each request, a poll every 2 s. */
async function runNaive(fake: FakeModelBeamServer, k: Case, jobs: number, capAt: number, tally: Tally, signal: AbortSignal): Promise<RunResult> {
  const pool = new Pool(fake.url, { connections: NAIVE_WORKERS });
  const queue = new PQueue({ concurrency: NAIVE_WORKERS });
  const cut = new AbortController();
  setMaxListeners(0, cut.signal); // one listener per request and sleep in flight, removed as each settles
  const onAbort = (): void => cut.abort(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  const headers = { authorization: 'Bearer test-key', accept: 'application/json', 'content-type': 'application/json' };
  const retry = { retries: NAIVE_RETRIES, minTimeout: 1000 * SCALE, signal: cut.signal };

  const call = async (method: 'GET' | 'POST', path: string, body?: string): Promise<Record<string, unknown>> => {
    const res = await pool.request({ method, path: `/api/v1/client${path}`, headers, ...(body ? { body } : {}), signal: cut.signal });
    if (res.statusCode === 429 || res.statusCode >= 500) {
      await res.body.dump();
      throw new Error(`HTTP ${res.statusCode}`); // retried by p-retry
    }
    if (res.statusCode >= 400) {
      await res.body.dump();
      throw new AbortError(`HTTP ${res.statusCode}`);
    }
    const json = (await res.body.json()) as { data?: Record<string, unknown> };
    return json.data ?? {};
  };

  const job = async (i: number): Promise<void> => {
    const created = await pRetry(() => call('POST', '/txt2img', JSON.stringify(params(i))), retry);
    const id = String(created['request_id']);
    tally.ids.set(i, id);
    const deadline = Date.now() + NAIVE_TIMEOUT_MS * SCALE;
    while (Date.now() < deadline) {
      await sleep(NAIVE_POLL_MS * SCALE, cut.signal);
      const status = await pRetry(() => call('GET', `/request-status/${id}`), retry);
      if (status['status'] === 'done') return;
      if (status['status'] === 'error') throw new Error(`job failed: ${String(status['error_code'])}`);
    }
    throw new Error('gave up after 300 s');
  };

  try {
    await alignToPhase(signal);
    const start = Date.now();
    const all = handOver(jobs, k.gapMs * SCALE, start, cut.signal, (i) =>
      queue.add(() => job(i)).then(
        () => void tally.done.set(i, Date.now()),
        () => {
          if (!cut.signal.aborted) tally.gaveUp.add(i);
        },
      ),
    );
    const how = await raceCap(all, capAt - (Date.now() - start), signal);
    if (how === 'cap') {
      queue.clear();
      cut.abort(new Error('time cap'));
      await all;
    }
    return { start, capped: how === 'cap' };
  } finally {
    signal.removeEventListener('abort', onAbort);
    queue.clear();
    await pool.close().catch(() => pool.destroy());
  }
}

async function runOne(k: Case, c: Contender, jobs: number, seed: number, ctx: ScenarioContext): Promise<Outcome> {
  const fake = await startFakeModelBeam(serverOptions(seed));
  const tally: Tally = { done: new Map(), gaveUp: new Set(), ids: new Map() };
  try {
    const gap = k.gapMs * SCALE;
    const planned = Array.from({ length: jobs }, (_, i) => i * gap);
    // Sized for the plain pool: its 429 storms and 2 s polls take several times the ideal.
    const capMs = Math.round(Math.max(60_000, 4 * idealMakespan(0, planned, Array<number>(jobs).fill((PENDING_MS + PROCESSING_MS) * SCALE), true)));
    const { start: t0, capped } =
      c.key === 'naive' ? await runNaive(fake, k, jobs, capMs, tally, ctx.signal) : await runOurs(fake, k, jobs, c.key === 'webhooks', capMs, tally, ctx.signal);
    if (ctx.signal.aborted) throw new Error('interrupted');
    await fake.flushWebhooks();
    // Each job's own duration as the server drew it; a job never created (given up before its submission was
    // accepted) gets the next unclaimed one in order of creation, so that the ideal always has `jobs` jobs.
    const created = fake.jobs.list();
    const claimed = new Set(tally.ids.values());
    const spare = created.filter((j) => !claimed.has(j.id));
    const durations = Array.from({ length: jobs }, (_, i) => {
      const job = fake.jobs.get(tally.ids.get(i) ?? '') ?? spare.shift();
      return job ? job.finishedAt - job.createdAt : (PENDING_MS + PROCESSING_MS) * SCALE;
    });
    const idealMs = idealMakespan(t0, planned.map((a) => t0 + a), durations, c.key !== 'webhooks');
    const settledAt = [...tally.done.values()];
    const lastSettle = Math.max(...settledAt, 0);
    const stats = fake.stats();
    const notice: number[] = [];
    for (const [i, at] of tally.done) {
      const job = fake.jobs.get(tally.ids.get(i) ?? '');
      if (job) notice.push(at - job.finishedAt);
    }
    let gaveUpDone = 0;
    for (const i of tally.gaveUp) {
      const id = tally.ids.get(i);
      if (id !== undefined && fake.jobs.get(id)?.status === 'done') gaveUpDone++;
    }
    const submits = stats.byRoute['POST /txt2img'] ?? 0;
    const polls = stats.byRoute['GET /request-status'] ?? 0;
    const requests = Object.entries(stats.byRoute)
      .filter(([route]) => route !== 'GET /storage')
      .reduce((sum, [, n]) => sum + n, 0);
    return {
      k,
      c,
      jobs,
      completed: tally.done.size,
      gaveUp: tally.gaveUp.size,
      gaveUpDone,
      unfinished: jobs - tally.done.size - tally.gaveUp.size,
      requests,
      submits,
      polls,
      rateLimited: stats.rejected429.total,
      webhooksDelivered: stats.webhooks.delivered,
      makespanMs: capped ? Number.POSITIVE_INFINITY : lastSettle - t0,
      idealMs,
      noticeP50: quantile(notice, 0.5),
      noticeP95: quantile(notice, 0.95),
      capped,
      meanDurationMs: durations.reduce((a, b) => a + b, 0) / Math.max(1, durations.length),
    };
  } finally {
    await fake.close();
  }
}

function verdict(o: Outcome): string {
  const target = o.c.target;
  if (target === undefined) return '';
  const perJob = o.completed === 0 ? Infinity : o.requests / o.completed;
  const why = [
    perJob <= target ? '' : `${fmt(perJob, 3)} > ${target} requests/job`,
    o.gaveUp === 0 ? '' : `${o.gaveUp} given up`,
    o.capped ? 'cut off' : '',
  ].filter(Boolean);
  return why.length === 0 ? `PASS (≤ ${target})` : `FAIL (${why.join(', ')})`;
}

async function run(ctx: ScenarioContext): Promise<ScenarioResult> {
  const jobs = ctx.quick ? 240 : 1000;
  const outcomes: Outcome[] = [];
  for (const k of CASES) {
    for (const c of CONTENDERS) {
      if (ctx.signal.aborted) throw new Error('interrupted');
      const o = await runOne(k, c, jobs, 7, ctx);
      ctx.log(
        `  ${k.key.padEnd(6)} ${c.name.padEnd(32)} ${o.completed}/${jobs} done, ${o.gaveUp} given up; ${o.requests} requests ` +
          `(${fmt(o.requests / Math.max(1, o.completed), 3)}/job), ${o.rateLimited} 429s; makespan ${fmt(o.makespanMs / 1000, 2)} s / ideal ${fmt(o.idealMs / 1000, 2)} s`,
      );
      outcomes.push(o);
    }
  }

  const summary: Table = {
    title: `ModelBeam client: ${jobs} jobs of 2–8 s (×${SCALE} time: minute = ${WINDOW_MS} ms), ${LIMIT} requests per minute, polls counted`,
    columns: ['jobs handed over', 'contender', 'completed', 'given up (done on server)', 'requests / completed job', '429s', 'makespan / ideal', 'target'],
    rows: outcomes.map((o) => [
      o.k.title,
      o.c.name,
      `${o.completed} / ${o.jobs}`,
      `${o.gaveUp} (${o.gaveUpDone})${o.unfinished > 0 ? `, ${o.unfinished} unfinished` : ''}`,
      fmt(o.requests / Math.max(1, o.completed), 3),
      o.rateLimited,
      o.capped ? 'cut off' : fmt(o.makespanMs / o.idealMs, 3),
      verdict(o),
    ]),
    align: ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'left'],
  };
  const detail: Table = {
    title: `Detail (times in real seconds: compressed ms × ${1 / SCALE} / 1000)`,
    columns: ['jobs handed over', 'contender', 'submits', 'polls', 'polls / job', 'webhooks delivered', 'makespan', 'ideal', 'result known after finish, p50 / p95'],
    rows: outcomes.map((o) => [
      o.k.title,
      o.c.name,
      o.submits,
      o.polls,
      fmt(o.polls / Math.max(1, o.completed), 3),
      o.webhooksDelivered,
      o.capped ? 'cut off' : `${fmt(real(o.makespanMs), 1)} s`,
      `${fmt(real(o.idealMs), 1)} s`,
      `${fmt(real(o.noticeP50), 1)} / ${fmt(real(o.noticeP95), 1)} s`,
    ]),
    align: ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
  };
  const ours = outcomes.filter((o) => o.c.target !== undefined);
  const met = ours.every((o) => verdict(o).startsWith('PASS'));
  const notes = [
    met
      ? `ours meets both targets in both cases: ≤ ${TARGET_POLLING} requests per completed job with polling, ≤ ${TARGET_WEBHOOKS} with webhooks, nothing given up.`
      : `ours misses a target: ${ours
          .filter((o) => !verdict(o).startsWith('PASS'))
          .map((o) => `${o.k.title}, ${o.c.name}: ${verdict(o)}`)
          .join('; ')}.`,
    `mean job duration ${fmt(real(outcomes[0]?.meanDurationMs ?? 0), 2)} s real (${fmt(outcomes[0]?.meanDurationMs ?? 0, 0)} ms compressed).`,
  ];
  return {
    tables: [summary, detail],
    charts: [],
    targetsMet: met,
    notes,
    section: { id: 'client-polling', title: 'ModelBeam client: polling and webhooks', markdown: markdown(ctx, jobs, summary, detail, notes) },
  };
}

/** Compressed ms → real seconds. */
const real = (ms: number): number => ms / SCALE / 1000;

function markdown(ctx: ScenarioContext, jobs: number, summary: Table, detail: Table, notes: readonly string[]): string {
  const s = (ms: number): string => `${fmt(ms * SCALE, 0)} ms`;
  return [
    ctx.quick ? `> **Quick run** (\`--quick\`): ${jobs} jobs. Not a valid result; run without \`--quick\`.\n` : '',
    "Issue 3's benchmark: the same jobs through `ModelBeamClient` with polling, with webhooks, and through a plain worker",
    'pool with p-retry and 2 s polling, against the fake ModelBeam server with status polls counted against the limit.',
    `Targets for ours: at most ${TARGET_POLLING} requests per completed job with polling (the floor is 2: one submission and`,
    `one poll), at most ${TARGET_WEBHOOKS} with webhooks; no job given up.`,
    '',
    '### Results',
    '',
    formatMarkdown(summary),
    '',
    ...notes.map((n) => `- ${n}`),
    '',
    formatMarkdown(detail),
    '',
    '### Set-up',
    '',
    `- **Compressed time.** Everything runs ${1 / SCALE}× faster than real time: the server's minute window is ${WINDOW_MS} ms,`,
    '  and every duration, interval and timeout below is the real one × 1/20 (real values shown, compressed ones in',
    '  brackets). Loopback round trips (~1 ms) are not compressed, so they weigh 20× more than against the real API.',
    `- **Server** (\`startFakeModelBeam\`, in this process, so that the ideal can read each job's own duration): a fixed`,
    `  window of ${LIMIT} requests per minute (Premium's documented limit, one budget for the whole account), and`,
    '  `GET /request-status` counted against it like a submission (`countPolls: true`). 429s carry `Retry-After` and',
    '  `retry-after-ms`. No faults.',
    `- **Jobs.** ${jobs} \`txt2img\` jobs, each with its own prompt. Each is pending for`,
    `  ${PENDING_MS * (1 - JITTER)}–${PENDING_MS * (1 + JITTER)} ms (${s(PENDING_MS * (1 - JITTER))}–${s(PENDING_MS * (1 + JITTER))}), then processing for`,
    `  ${PROCESSING_MS * (1 - JITTER)}–${PROCESSING_MS * (1 + JITTER)} ms (${s(PROCESSING_MS * (1 - JITTER))}–${s(PROCESSING_MS * (1 + JITTER))}), both uniform (server seed 7): 2–8 s in all. Progress`,
    '  rises linearly while processing. The server draws the durations in order of creation, so every contender gets the',
    '  same ones (to the same jobs, when they are created in the same order).',
    `- **Two cases.** 1: every job handed over at the start: the limit decides (${jobs} jobs need ${jobs} submissions, and as`,
    `  many polls without webhooks, at ${LIMIT} a minute). 2: one job handed over every ${CASES[1]?.gapMs ?? 0} ms (${fmt((60_000 / (CASES[1]?.gapMs ?? 1)), 0)} a minute, half the limit):`,
    '  the limit has room, and how soon a result is known depends on when each job is polled.',
    `- **The run starts** at ${PHASE} of a server window (the first window is half left).`,
    '',
    '### What each contender was given',
    '',
    '- **ours, polling**: `new ModelBeamClient(fake.clientOptions())`: the server\'s windows as the scheduler\'s `timeScale`,',
    '  which scales every time default (polling 1 s to 60 s, first estimate 5 s, job retry delay 2 s, all × 1/20), then one',
    '  `generate()` per job. It learns the limit from the headers; polls go below submissions, at most half the budget',
    '  while submissions wait, planned from the learned duration of `txt2img Flux1schnell` and the reported progress.',
    '- **ours, webhooks**: the same, plus `webhook: { url, secret }`; `startWebhookServer({ port: 0 })`, its URL set with',
    '  `setWebhookUrl()` (sent as `webhook_url`) and as the fake account\'s webhook. Polling is a safety net for jobs',
    '  overdue by 3× their expected duration.',
    `- **p-queue + p-retry, 2 s polling**: \`new PQueue({ concurrency: ${NAIVE_WORKERS} })\` over an undici \`Pool\` of ${NAIVE_WORKERS} connections; each`,
    `  job submits with \`pRetry(post, { retries: ${NAIVE_RETRIES}, minTimeout: 1 s })\` (retrying 429s and 5xx, Retry-After not read),`,
    `  then sleeps ${NAIVE_POLL_MS / 1000} s and polls with the same p-retry until \`done\`/\`error\`, giving up after ${NAIVE_TIMEOUT_MS / 1000} s (the documented`,
    '  example\'s timeout). A job whose retries run out is given up on; "done on server" counts those whose job had in',
    '  fact finished.',
    '',
    '### How the figures are computed',
    '',
    '- **Requests / completed job**: every API request the server received (submissions, polls and 429s included; webhook',
    '  deliveries are the server calling the client and are not counted) ÷ jobs completed.',
    '- **Ideal** (`idealMakespan` in `bench/scenarios/client-polling.ts`): a clairvoyant client that knows the limit and',
    '  every duration. Each submission is accepted at the earliest moment at or after its job was handed over that the',
    '  server\'s fixed window allows, in order; each job then runs its own duration as the server drew it; with polling, its one poll is accepted',
    '  at the earliest moment at or after the job\'s finish that the window still has room for (polls placed after all',
    '  submissions, earliest finish first). The ideal makespan runs from the start to the last such poll; with webhooks,',
    '  to the last job\'s finish (delivery taken as instant). Round trips are not counted. With polling every job needs',
    '  two slots of the limit, so the ideal is about twice as long as with webhooks.',
    '- **Makespan**: from the start (the first job handed over) to the moment the last job settled at the client.',
    '- **Result known after finish**: for each completed job, the time from its finish on the server to the moment the',
    '  contender had the result (real seconds). In case 1 the polls of ours wait for the submissions (so does the',
    '  ideal\'s): with the whole budget spent, a poll sooner would only delay a submission. In case 2 ours polls each job',
    '  first at the learned 95th percentile of the duration, so a short job waits for it; the plain pool polls every',
    '  2 s, at more than twice the requests, and loses results to its retries running out.',
    '- **Webhooks delivered**: `job.processing` and `job.completed`, two per job.',
    '- **429s**: every 429 the server sent. **Given up**: jobs the contender rejected or abandoned.',
  ].join('\n');
}

export const scenario: Scenario = {
  name: 'client-polling',
  description: "ModelBeam client (issue 3): 1,000 async jobs with polling, with webhooks, and a p-retry worker pool polling every 2 s: requests/job, makespan/ideal, 429s",
  run,
};

export default scenario;
