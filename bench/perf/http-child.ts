/**
 * HTTP measurements in a fresh process (started by `http-ceiling` and
 * `idle-cpu`), against a fake ModelBeam server running in another process:
 *
 *     node --import tsx bench/perf/http-child.ts ceiling <ours|undici> <baseUrl> <requests> <connections> <warmup>
 *     node --import tsx bench/perf/http-child.ts idle <baseUrl> <seconds> <startAt> <backlog> <burst|smooth>
 *
 * - `ceiling`: `connections` workers, each sending one request after the
 *   other until `requests` have been answered (after `warmup` untimed ones).
 *   `ours` calls `client.balance()` on a `ModelBeamClient` (scheduler +
 *   transport + JSON parsing and checking); `undici` calls `Pool.request`
 *   on a pool with the same number of connections and parses the same body;
 *   `scheduler` sends the same raw `Pool.request` as a task of a bare
 *   `RateLimitScheduler`, with the attempt's abort as the transport passes
 *   it (the engine's share of the client's cost).
 * - `idle`: a `ModelBeamClient` (default scheduler: real 60 s minute) is
 *   handed `backlog` `balance()` calls at `startAt` (epoch ms) and left to
 *   drain them at the server's quota for `seconds`; prints the process's CPU
 *   time over that span, and per second. Style `raw` is the floor: raw
 *   undici `Pool.request` on a 200 ms timer (the same 300 a minute), no
 *   client, no scheduler.
 *
 * Profiling aid: with `BENCH_HEAP_SAMPLE=all` (every allocation) or
 * `BENCH_HEAP_SAMPLE=promoted` (only what outlived the young generation),
 * `ceiling` runs V8's sampling heap profiler over the timed requests and
 * adds `heapBytesPerRequest` and the top allocation sites to its result.
 */
import { Session } from 'node:inspector/promises';
import { Pool } from 'undici';
import { attemptAbort, RateLimitScheduler } from '../../src/engine/scheduler.js';
import { ModelBeamClient } from '../../src/modelbeam/client.js';
import { reportResult } from './children.js';
import { startMetrics } from './metrics-mode.js';

const API_KEY = 'test-key';
const [mode, ...rest] = process.argv.slice(2);

function isBalanceBody(body: unknown): boolean {
  const data = (body as { data?: { balance?: unknown } } | null)?.data;
  return typeof data?.balance === 'number';
}

async function workers(count: number, total: number, send: () => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: count }, async () => {
      while (next < total) {
        next++;
        await send();
      }
    }),
  );
}

interface SampleNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: SampleNode[];
}

/** Starts V8's sampling heap profiler if `BENCH_HEAP_SAMPLE` asks for it; the returned stop gives bytes per site. */
async function startHeapSampling(): Promise<((requests: number) => Promise<Record<string, unknown>>) | undefined> {
  const mode = process.env['BENCH_HEAP_SAMPLE'];
  if (mode !== 'all' && mode !== 'promoted') return undefined;
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.startSampling', {
    samplingInterval: 256,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: mode === 'all',
  });
  return async (requests) => {
    const { profile } = (await session.post('HeapProfiler.stopSampling')) as { profile: { head: SampleNode } };
    session.disconnect();
    const sites = new Map<string, number>();
    let total = 0;
    const walk = (node: SampleNode): void => {
      const f = node.callFrame;
      total += node.selfSize;
      if (node.selfSize > 0) {
        const site = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(node_modules|build\/[^/]+)\//, '')}:${f.lineNumber + 1}`;
        sites.set(site, (sites.get(site) ?? 0) + node.selfSize);
      }
      node.children.forEach(walk);
    };
    walk(profile.head);
    const top = [...sites].sort((a, b) => b[1] - a[1]).slice(0, 15);
    return { heapSample: mode, heapBytesPerRequest: total / requests, heapTopSites: top.map(([site, bytes]) => [site, Math.round(bytes / requests)]) };
  };
}

async function ceiling(): Promise<void> {
  const [contender, baseUrl, requestsArg, connectionsArg, warmupArg] = rest;
  if ((contender !== 'ours' && contender !== 'undici' && contender !== 'scheduler') || !baseUrl) {
    throw new Error('usage: ceiling <ours|undici|scheduler> <baseUrl> <requests> <connections> <warmup>');
  }
  const requests = Number(requestsArg);
  const connections = Number(connectionsArg);
  const warmup = Number(warmupArg);
  let send: () => Promise<void>;
  let close: () => Promise<void>;
  let errors = 0;
  // `BENCH_METRICS`: metrics off, or on through Prometheus or OpenTelemetry (bench/perf/metrics-mode.ts).
  const metrics = startMetrics();
  if (contender === 'ours') {
    const client = new ModelBeamClient({ apiKey: API_KEY, baseUrl, connections, scheduler: { maxConcurrent: connections } });
    metrics.track(client);
    send = async () => {
      try {
        const balance = await client.balance();
        if (typeof balance !== 'number') errors++;
      } catch {
        errors++;
      }
    };
    close = () => client.close();
  } else {
    const url = new URL(baseUrl);
    const pool = new Pool(url.origin, { connections, keepAliveTimeout: 10_000 });
    const path = `${url.pathname.replace(/\/+$/, '')}/balance`;
    const headers = { authorization: `Bearer ${API_KEY}`, accept: 'application/json', 'user-agent': 'bench-raw-undici' };
    if (contender === 'undici') {
      send = async () => {
        try {
          const res = await pool.request({ method: 'GET', path, headers });
          const body = await res.body.json();
          if (res.statusCode !== 200 || !isBalanceBody(body)) errors++;
        } catch {
          errors++;
        }
      };
      close = () => pool.close();
    } else {
      const scheduler = new RateLimitScheduler({ maxConcurrent: connections });
      send = async () => {
        try {
          const res = await scheduler.schedule(async (ctx) => {
            const r = await pool.request({ method: 'GET', path, headers, signal: attemptAbort(ctx) as AbortSignal });
            // The engine reads status and headers off what the task returns; the body is read inside the attempt.
            return { statusCode: r.statusCode, headers: r.headers, body: await r.body.json() };
          });
          if (res.statusCode !== 200 || !isBalanceBody(res.body)) errors++;
        } catch {
          errors++;
        }
      };
      close = async () => {
        await scheduler.close();
        await pool.close();
      };
    }
  }
  await workers(connections, warmup, send);
  const warmupErrors = errors;
  errors = 0;
  const stopSampling = await startHeapSampling();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await workers(connections, requests, send);
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const heap = stopSampling ? await stopSampling(requests) : {};
  await close();
  const counted = await metrics.check('modelbeam_scheduler_attempts_total', 'modelbeam.scheduler.attempts');
  await metrics.close();
  reportResult({
    contender,
    metrics: metrics.mode,
    counted,
    requests,
    connections,
    ms,
    perSecond: (requests / ms) * 1000,
    cpuMs: (cpu.user + cpu.system) / 1000,
    errors,
    warmupErrors,
    maxRssMB: process.resourceUsage().maxRSS / 1024,
    ...heap,
  });
}

async function idle(): Promise<void> {
  const [baseUrl, secondsArg, startAtArg, backlogArg, style] = rest;
  if (!baseUrl) throw new Error('usage: idle <baseUrl> <seconds> <startAt> <backlog> <burst|smooth>');
  const seconds = Number(secondsArg);
  const startAt = Number(startAtArg);
  const backlog = Number(backlogArg);
  const client = style === 'raw' ? undefined : new ModelBeamClient({ apiKey: API_KEY, baseUrl, scheduler: { smooth: style === 'smooth' } });
  const url = new URL(baseUrl);
  const pool = style === 'raw' ? new Pool(url.origin, { connections: 16 }) : undefined;
  let answered = 0;
  let failed = 0;
  const answeredAt: number[] = [];
  // Let module loading and JIT warm-up settle, then start on the agreed instant.
  await new Promise((r) => setTimeout(r, Math.max(0, startAt - Date.now())));
  const t0 = Date.now();
  const cpu0 = process.cpuUsage();
  const perSecond: { t: number; cpuMs: number; answered: number }[] = [];
  let lastCpu = cpu0;
  let lastAnswered = 0;
  const sampler = setInterval(() => {
    const now = process.cpuUsage();
    perSecond.push({ t: (Date.now() - t0) / 1000, cpuMs: (now.user - lastCpu.user + now.system - lastCpu.system) / 1000, answered: answered - lastAnswered });
    lastCpu = now;
    lastAnswered = answered;
  }, 1000);
  const onAnswer = (): void => {
    answered++;
    answeredAt.push(Date.now() - t0);
  };
  const onFail = (): void => {
    failed++;
  };
  const calls: Promise<void>[] = [];
  let ticker: NodeJS.Timeout | undefined;
  if (client) {
    for (let i = 0; i < backlog; i++) calls.push(client.balance().then(onAnswer, onFail));
  } else if (pool) {
    const path = `${url.pathname.replace(/\/+$/, '')}/balance`;
    const headers = { authorization: `Bearer ${API_KEY}`, accept: 'application/json' };
    const send = async (): Promise<void> => {
      const res = await pool.request({ method: 'GET', path, headers });
      const body = await res.body.json();
      if (res.statusCode !== 200 || !isBalanceBody(body)) throw new Error(`HTTP ${res.statusCode}`);
    };
    calls.push(send().then(onAnswer, onFail));
    ticker = setInterval(() => calls.push(send().then(onAnswer, onFail)), 200);
  }
  await new Promise((r) => setTimeout(r, seconds * 1000 - (Date.now() - t0)));
  const cpu = process.cpuUsage(cpu0);
  const wallMs = Date.now() - t0;
  clearInterval(sampler);
  if (ticker) clearInterval(ticker);
  const stats = client?.scheduler.stats();
  await client?.close();
  await Promise.allSettled(calls);
  await pool?.close();
  reportResult({
    style,
    seconds,
    wallMs,
    cpuMs: (cpu.user + cpu.system) / 1000,
    userMs: cpu.user / 1000,
    systemMs: cpu.system / 1000,
    answered: answeredAt.filter((t) => t <= wallMs).length,
    failedBeforeClose: failed,
    queuedAtEnd: stats?.queued ?? 0,
    dispatched: stats?.counts.dispatched ?? answered + failed,
    rateLimited: stats?.counts.rateLimited ?? 0,
    minuteLimit: stats?.budget?.minute.limit,
    perSecond,
    answeredAt,
    maxRssMB: process.resourceUsage().maxRSS / 1024,
  });
}

await (mode === 'ceiling' ? ceiling() : mode === 'idle' ? idle() : Promise.reject(new Error(`unknown mode ${mode}`)));
process.exit(0);
