/**
 * `scopes`: two endpoints with limits of their own (issue 11, item 4), as
 * ModelBeam's Basic tier counts them: the fake server keeps one counter for
 * txt2img (10 per window) and one for txt2embedding (30 per window), and
 * both are drained at once.
 *
 * - ours, one scope per endpoint: one `RateLimitScheduler`, told only the
 *   window length, each task with `scope: <endpoint>` (what the ModelBeam
 *   client does with `limitScope: 'endpoint'`, or once `'auto'` has learnt it);
 * - ours, the ModelBeam client with `limitScope: 'auto'` (submissions only,
 *   `client.submit`): one budget until the answers show separate counters,
 *   then one per endpoint, the calls queued meanwhile moved over;
 * - ours, one shared scope: the same scheduler without scopes (the engine
 *   before scopes, or `limitScope: 'account'`): the two endpoints' numbers
 *   overwrite each other;
 * - Bottleneck and p-queue, each told both limits: one limiter per endpoint
 *   (bench/lib/rate-contenders.ts).
 *
 * Per endpoint: how much of its capacity between its first and its last
 * request was used (requests / (requests + unused capacity, bench/lib/unused.ts)),
 * makespan / ideal (ideal: every request at the earliest moment its counter
 * accepts it, bench/lib/ideal.ts), and 429s per 1,000 requests.
 */
import { setMaxListeners } from 'node:events';
import { Pool, type Dispatcher } from 'undici';
import { RateLimitScheduler } from '../../src/engine/scheduler.js';
import { ModelBeamClient } from '../../src/modelbeam/index.js';
import { startFakeModelBeam, type FakeModelBeamServer } from '../../src/testing/index.js';
import { sleep, warmUp } from '../lib/attempts.js';
import { idealSchedule } from '../lib/ideal.js';
import { bottleneck, pQueue, type Contender, type ContenderRun, type SendAttempt } from '../lib/rate-contenders.js';
import { fmt } from '../lib/stats.js';
import { formatMarkdown } from '../lib/table.js';
import { unusedCapacity } from '../lib/unused.js';
import type { Scenario, ScenarioContext, ScenarioResult, Table } from '../lib/types.js';

const WINDOW_MS = 1000;
const ENDPOINTS = ['txt2img', 'txt2embedding'] as const;
type Endpoint = (typeof ENDPOINTS)[number];
const LIMITS: Record<Endpoint, number> = { txt2img: 10, txt2embedding: 30 };
/** 20 windows of each endpoint's limit (6 in a quick run). */
const WINDOWS = 20;
const QUICK_WINDOWS = 6;
const MAX_CONCURRENT = 64;
/** Target (issue 11, "Done when"): each endpoint used at least this share of its capacity. */
const TARGET_USED = 0.95;
const CAP_MS = 120_000;

const BODIES: Record<Endpoint, string> = {
  txt2img: JSON.stringify({ prompt: 'a red fox', model: 'Flux1schnell', width: 512, height: 512, steps: 4 }),
  txt2embedding: JSON.stringify({ input: 'hello', model: 'Bge_M3_FP16' }),
};
const HEADERS = { 'content-type': 'application/json', accept: 'application/json', authorization: 'Bearer test-key' };

interface EndpointResult {
  endpoint: Endpoint;
  requests: number;
  used: number;
  ratio: number;
  per1000: number;
}

interface Trial {
  contender: string;
  endpoints: EndpointResult[];
}

type Runner = (endpoint: Endpoint, job: number, send: SendAttempt) => Promise<void>;

interface Way {
  key: string;
  name: string;
  given: string;
  start(signal: AbortSignal, server: FakeModelBeamServer): { run: Runner; close(): Promise<void>; abort(): Promise<void> };
}

const CLIENT_AUTO: Way = {
  key: 'ours-client-auto',
  name: "ours, ModelBeamClient limitScope 'auto'",
  given: "`new ModelBeamClient({ ...server.clientOptions(), limitScope: 'auto', connections: 64 })` (the window length only), `client.submit(endpoint, params)`",
  start(_signal, server) {
    const client = new ModelBeamClient({ ...server.clientOptions(), limitScope: 'auto', connections: MAX_CONCURRENT });
    const params: Record<Endpoint, Record<string, unknown>> = { txt2img: JSON.parse(BODIES.txt2img), txt2embedding: JSON.parse(BODIES.txt2embedding) };
    return {
      async run(endpoint) {
        await client.submit(endpoint, params[endpoint] as never);
      },
      close: () => client.close(),
      abort: () => client.close(),
    };
  },
};

function oursWay(scoped: boolean): Way {
  return {
    key: scoped ? 'ours-scopes' : 'ours-one',
    name: scoped ? 'ours, one scope per endpoint' : 'ours, one shared scope',
    given: `\`new RateLimitScheduler({ windows: { minuteMs: ${WINDOW_MS} } })\`, limits not told; ${scoped ? 'each task `{ scope: endpoint }`' : 'no scopes'}`,
    start() {
      const scheduler = new RateLimitScheduler({ windows: { minuteMs: WINDOW_MS } });
      return {
        async run(endpoint, job, send) {
          const res = await scheduler.schedule((ctx) => send(job, ctx.signal), scoped ? { scope: endpoint } : undefined);
          await res.body.json();
        },
        close: () => scheduler.close(),
        abort: () => scheduler.close({ drain: false }),
      };
    },
  };
}

/** A static contender told each endpoint's limit: one of its limiters per endpoint. */
function staticWay(contender: Contender): Way {
  return {
    key: contender.key,
    name: `${contender.name} (told both limits)`,
    given: ENDPOINTS.map((e) => `${e}: ${contender.given({ windowMs: WINDOW_MS, dayMs: undefined, limit: LIMITS[e], dailyLimit: undefined, maxConcurrent: MAX_CONCURRENT })}`).join(' '),
    start(signal) {
      const runs = new Map<Endpoint, { run: ContenderRun; send?: SendAttempt }>();
      const senders = new Map<Endpoint, SendAttempt>();
      for (const e of ENDPOINTS) {
        // Each limiter sends through the endpoint's own sender (set on first use).
        const send: SendAttempt = (job, s) => (senders.get(e) as SendAttempt)(job, s);
        runs.set(e, { run: contender.start({ windowMs: WINDOW_MS, dayMs: undefined, limit: LIMITS[e], dailyLimit: undefined, maxConcurrent: MAX_CONCURRENT, signal }, send) });
      }
      return {
        run(endpoint, job, send) {
          senders.set(endpoint, send);
          return (runs.get(endpoint) as { run: ContenderRun }).run.run(job);
        },
        async close() {
          for (const r of runs.values()) await r.run.close();
        },
        async abort() {
          for (const r of runs.values()) await r.run.abort();
        },
      };
    },
  };
}

const oursScoped = oursWay(true);
const WAYS: readonly Way[] = [oursScoped, CLIENT_AUTO, oursWay(false), staticWay(bottleneck), staticWay(pQueue)];

async function runTrial(way: Way, windows: number, ctx: ScenarioContext): Promise<Trial> {
  const server: FakeModelBeamServer = await startFakeModelBeam({
    limits: { minute: { limit: 100_000, windowMs: WINDOW_MS } },
    routeLimits: { txt2img: { minute: { limit: LIMITS.txt2img } }, txt2embedding: { minute: { limit: LIMITS.txt2embedding } } },
    // The static contenders' glue reads retry-after-ms: a whole-second Retry-After would be a whole window here.
    headers: { retryAfterMs: true },
    jobs: { pendingMs: 10, processingMs: 10 },
  });
  const pool = new Pool(server.url, { connections: MAX_CONCURRENT, keepAliveTimeout: 60_000 });
  const abort = new AbortController();
  setMaxListeners(0, abort.signal);
  const onOuter = (): void => abort.abort(ctx.signal.reason);
  ctx.signal.addEventListener('abort', onOuter, { once: true });
  const runner = way.start(abort.signal, server);
  try {
    await warmUp(pool, MAX_CONCURRENT, '/api/v1/client/models');
    await sleep(300);
    const start = Date.now();
    const sender = (endpoint: Endpoint): SendAttempt => async (_job, signal) => {
      const res: Dispatcher.ResponseData = await pool.request({
        method: 'POST',
        path: `/api/v1/client/${endpoint}`,
        headers: HEADERS,
        body: BODIES[endpoint],
        ...(signal ? { signal } : {}),
      });
      return res;
    };
    const jobs: Promise<void>[] = [];
    for (const e of ENDPOINTS) {
      const send = sender(e);
      for (let i = 0; i < LIMITS[e] * windows; i++) jobs.push(runner.run(e, i, send));
    }
    const cap = setTimeout(() => abort.abort(new Error('trial cap')), CAP_MS);
    const outcomes = await Promise.allSettled(jobs);
    clearTimeout(cap);
    const failed = outcomes.filter((o) => o.status === 'rejected').length;
    if (failed > 0) ctx.log(`  ${way.name}: ${failed} jobs failed`);
    const byRoute = server.stats().byRoute;
    const endpoints = ENDPOINTS.map((e): EndpointResult => {
      const counted = server.routeAcceptedLog(e);
      // Every request the route saw, refused ones included (the fake server counts each by route).
      const sent = byRoute[`POST /${e}`] ?? 0;
      const limit = LIMITS[e];
      const unused = unusedCapacity({ kind: 'fixed', windowMs: WINDOW_MS, phaseMs: 0, limit, counted });
      const ideal = idealSchedule({ start, requests: counted.length, minute: { kind: 'fixed', windowMs: WINDOW_MS, phaseMs: 0, limit } }).makespanMs;
      const makespan = Math.max(...counted) - start;
      return {
        endpoint: e,
        requests: counted.length,
        used: counted.length / (counted.length + unused),
        ratio: makespan / ideal,
        per1000: (1000 * (sent - counted.length)) / Math.max(1, sent),
      };
    });
    return { contender: way.name, endpoints };
  } finally {
    ctx.signal.removeEventListener('abort', onOuter);
    await runner.close().catch(() => {});
    await pool.close();
    await server.close();
  }
}

export const scenario: Scenario = {
  name: 'scopes',
  description: 'two endpoints with limits of their own (10 and 30 per window): per-scope budgets vs one shared budget, Bottleneck and p-queue told both limits',
  async run(ctx: ScenarioContext): Promise<ScenarioResult> {
    const windows = ctx.quick ? QUICK_WINDOWS : WINDOWS;
    const trials: Trial[] = [];
    for (const way of WAYS) {
      if (ctx.signal.aborted) break;
      ctx.log(`scopes: ${way.name}`);
      trials.push(await runTrial(way, windows, ctx));
    }
    const table: Table = {
      title: `Two endpoints, ${windows} windows of ${WINDOW_MS} ms each (txt2img ${LIMITS.txt2img}/window, txt2embedding ${LIMITS.txt2embedding}/window, counted apart)`,
      columns: ['contender', 'endpoint', 'requests', 'capacity used', 'makespan / ideal', '429s per 1,000'],
      rows: trials.flatMap((t) => t.endpoints.map((e) => [t.contender, e.endpoint, e.requests, `${fmt(100 * e.used, 1)} %`, fmt(e.ratio, 3), fmt(e.per1000, 1)])),
    };
    // Targets: ours with a scope per endpoint, told (scheduler) or learnt (client, 'auto').
    const checked = trials.filter((t) => t.contender === oursScoped.name || t.contender === CLIENT_AUTO.name);
    const targetsMet = checked.length === 2 && checked.every((t) => t.endpoints.every((e) => e.used >= TARGET_USED));
    const notes = [
      `target: ours with a scope per endpoint (told, or learnt by the client's 'auto') uses each endpoint >= ${100 * TARGET_USED} % of its capacity: ${targetsMet ? 'met' : 'MISSED'}`,
    ];
    const given = WAYS.map((w) => `- ${w.name}: ${w.given}`).join('\n');
    return {
      tables: [table],
      charts: [],
      targetsMet,
      notes,
      section: {
        id: 'scopes',
        title: 'Per-endpoint limits (scopes)',
        markdown: [
          'Two endpoints on counters of their own, drained at once against the fake server (`routeLimits`). ' +
            '"Capacity used" is requests / (requests + the units the endpoint\'s counter would have accepted between its first and its last request that went unused).',
          '',
          formatMarkdown(table),
          '',
          notes[0],
          '',
          'The shared-scope rows show what scopes fix: one budget learns one limit (the lower, 10) and one FIFO queue, so txt2embedding starts only once txt2img\'s backlog is dispatched and then runs at txt2img\'s rate: its makespan doubles, while "capacity used" (counted from its own first request) hides it. With a scope each, both endpoints run at their own rate at once.',
          '',
          'What each was given:',
          '',
          given,
        ].join('\n'),
      },
    };
  },
};
