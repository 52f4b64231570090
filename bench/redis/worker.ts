/**
 * One worker process of the `redis-shared` scenario: drains its share of the
 * jobs (one `POST /api/v1/client/txt2embedding` each) into the fake ModelBeam
 * server, through one of three configurations:
 *
 * - `shared`: `RateLimitScheduler` on a `RedisStore` that all workers share
 *   (same URL, key prefix and account), told the window length only;
 * - `memory`: `RateLimitScheduler` with its own in-memory budget (a
 *   `MemoryStore`, as by default), told the window length only;
 * - `bottleneck`: Bottleneck 2.19.5 clustered on Redis through ioredis (one
 *   shared `id`), with the documented limit as a refreshing reservoir and the
 *   usual 429 glue (`failed` listener → Retry-After).
 *
 * Run by `bench/redis/fleet.ts` as
 * `node --import tsx bench/redis/worker.ts '<WorkerArgs as JSON>'` with an IPC
 * channel (see `protocol.ts`). It writes a trace of every request (and, for
 * ours, every reserve and settle of the store) to `args.traceFile`, and exits
 * by itself when the parent goes away or its deadline passes.
 */
import { setMaxListeners } from 'node:events';
import { writeFile } from 'node:fs/promises';
import Bottleneck from 'bottleneck';
import { Redis } from 'ioredis';
import { Pool, type Dispatcher } from 'undici';
import { RateLimitScheduler } from '../../src/engine/scheduler.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { RedisStore } from '../../src/store/redis-store.js';
import type { Outcome, ReserveResult, SettleResult, Store, Ticket } from '../../src/store/types.js';
import { FailureLog, headerNumber, jobRange, jobSignal, runJobs, sendRecorded, sleep, until, warmUp } from '../lib/attempts.js';
import { attemptOnce, RateLimited } from '../lib/rate-contenders.js';
import type { ParentMessage, WorkerArgs, WorkerAttempt, WorkerMessage, WorkerResult } from './protocol.js';

const args = JSON.parse(process.argv[2] ?? '{}') as WorkerArgs;
const bornAt = Date.now();

const API_PATH = '/api/v1/client/txt2embedding';
const HEADERS = { authorization: 'Bearer test-key', 'content-type': 'application/json', accept: 'application/json' };

function tell(message: WorkerMessage): void {
  if (process.connected) process.send?.(message);
}

// The parent went away (or killed the IPC channel): nothing left to do.
process.on('disconnect', () => process.exit(0));
// Ctrl-C reaches the whole process group: the parent decides (it sends `abort`, then `exit`, or kills).
process.on('SIGINT', () => {});
const deadline = setTimeout(() => {
  tell({ type: 'error', index: args.index, message: `worker ${args.index} passed its deadline (${args.deadlineMs} ms)` });
  process.exit(3);
}, args.deadlineMs);
deadline.unref();

const trace: string[] = [];
const line = (o: Record<string, unknown>): void => {
  trace.push(JSON.stringify(o));
};

const runAbort = new AbortController();
setMaxListeners(0, runAbort.signal);

const attempts: WorkerAttempt[] = [];
const pool = new Pool(args.serverUrl, { connections: args.connections, keepAliveTimeout: 60_000, keepAliveMaxTimeout: 600_000 });

function send(job: number, signal?: AbortSignal): Promise<Dispatcher.ResponseData> {
  return sendRecorded(
    pool,
    attempts,
    { job, proc: args.index },
    {
      path: API_PATH,
      method: 'POST',
      headers: HEADERS,
      body: JSON.stringify({ input: `job ${job}`, model: 'Bge_M3_FP16' }),
      signal: jobSignal(signal, runAbort.signal),
    },
    (res, record) => {
      const limit = headerNumber(res.headers, 'x-ratelimit-limit');
      const remaining = headerNumber(res.headers, 'x-ratelimit-remaining');
      const type = res.headers['x-ratelimit-type'];
      const ra = headerNumber(res.headers, 'retry-after-ms');
      if (limit !== undefined) record.limit = limit;
      if (remaining !== undefined) record.remaining = remaining;
      if (typeof type === 'string') record.type = type;
      if (ra !== undefined) record.retryAfterMs = ra;
    },
  );
}

interface Run {
  ready(): Promise<void>;
  run(job: number): Promise<void>;
  abort(): Promise<void>;
  close(): Promise<void>;
  extra(): Partial<WorkerResult>;
}

function isPromise<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown } | null)?.then === 'function';
}

/** Wraps a store so that every reserve and settle lands in the trace, with the budget the store reported. */
function traced(store: Store): { store: Store; counts: NonNullable<WorkerResult['reserves']> } {
  const counts = { calls: 0, granted: 0, blocked: {} as Record<string, number> };
  const reserve = store.reserve.bind(store);
  const settle = store.settle.bind(store);
  const view = store.view.bind(store);
  const logReserve = (want: number, backlog: number | undefined, r: ReserveResult): ReserveResult => {
    counts.calls++;
    counts.granted += r.granted;
    if (r.granted < want) counts.blocked[r.blockedBy ?? 'none'] = (counts.blocked[r.blockedBy ?? 'none'] ?? 0) + 1;
    const t = Date.now();
    const v = view(t);
    const m = isPromise(v) ? undefined : v.minute;
    line({
      k: 'reserve',
      t,
      want,
      backlog,
      granted: r.granted,
      by: r.blockedBy,
      retryIn: r.retryAt === undefined ? undefined : Math.round(r.retryAt - r.now),
      storeNow: r.now,
      lease: r.leasePrefix,
      limit: m?.limit,
      available: m?.available,
      remaining: m?.remaining,
      uncounted: m?.uncounted,
      kind: m?.kind,
      resetIn: m?.nextResetAfter === undefined ? undefined : Math.round(m.nextResetAfter - r.now),
      gateIn: isPromise(v) || v.gateUntil === undefined ? undefined : Math.round(v.gateUntil - r.now),
    });
    return r;
  };
  const logSettle = (ticket: Ticket, outcome: Outcome, r: SettleResult): SettleResult => {
    line({
      k: 'settle',
      t: Date.now(),
      lease: ticket.lease,
      sentAtStore: ticket.sentAt,
      status: outcome.status,
      sent: outcome.sent,
      remaining: outcome.snapshot?.minute.remaining,
      limit: outcome.snapshot?.minute.limit,
      retryAfterMs: outcome.snapshot?.retryAfterMs,
      gateIn: r.gateUntil === undefined ? undefined : Math.round(r.gateUntil - r.now),
      changed: r.changed,
    });
    return r;
  };
  const wrapped: Store = {
    shared: store.shared,
    init: (config) => store.init(config),
    // Every argument is passed on as it came (the engine may pass more than these).
    reserve(...a: Parameters<Store['reserve']>) {
      const r = reserve(...a);
      return isPromise(r) ? r.then((x) => logReserve(a[0], a[2], x)) : logReserve(a[0], a[2], r);
    },
    settle(...a: Parameters<Store['settle']>) {
      const r = settle(...a);
      return isPromise(r) ? r.then((x) => logSettle(a[0], a[1], x)) : logSettle(a[0], a[1], r);
    },
    view: (now) => view(now),
    close: () => store.close(),
  };
  return { store: wrapped, counts };
}

function ours(shared: boolean): Run {
  const redisStore = shared ? new RedisStore({ redis: args.redisUrl, keyPrefix: args.keyPrefix, account: args.account }) : undefined;
  const { store, counts } = traced(redisStore ?? new MemoryStore());
  const scheduler = new RateLimitScheduler({ store, windows: { minuteMs: args.windowMs } });
  scheduler.on('rateLimited', (e) => line({ k: 'rateLimited', t: Date.now(), ...e }));
  return {
    ready: () => scheduler.ready(),
    async run(job) {
      const res = await scheduler.schedule((ctx) => send(job, ctx.signal));
      await res.body.json();
    },
    async abort() {
      await scheduler.close({ drain: false });
      await store.close();
    },
    async close() {
      await scheduler.close();
      await store.close();
    },
    extra: () => ({ reserves: counts, ...(redisStore ? { storeCalls: { ...redisStore.stats().calls } } : {}) }),
  };
}

function bottleneck(): Run {
  const url = new URL(args.redisUrl);
  const limiter = new Bottleneck({
    id: args.bottleneckId,
    datastore: 'ioredis',
    clearDatastore: args.clearDatastore,
    clientOptions: { host: url.hostname, port: Number(url.port || 6379) },
    Redis,
    reservoir: args.limit,
    reservoirRefreshAmount: args.limit,
    reservoirRefreshInterval: args.windowMs,
    // A documented store option that Bottleneck's typings omit.
    heartbeatInterval: args.heartbeatMs,
  } as Bottleneck.ConstructorOptions);
  let retries = 0;
  const errors: string[] = [];
  limiter.on('error', (error: unknown) => {
    if (errors.length < 5) errors.push(error instanceof Error ? error.message : String(error));
    line({ k: 'error', t: Date.now(), message: error instanceof Error ? error.message : String(error) });
  });
  limiter.on('failed', (error: unknown, info: Bottleneck.EventInfoRetryable) => {
    if (error instanceof RateLimited && info.retryCount < args.maxRetries && !runAbort.signal.aborted) {
      retries++;
      line({ k: 'retry', t: Date.now(), job: info.options.id, delay: error.retryAfterMs, retryCount: info.retryCount });
      return error.retryAfterMs;
    }
    return undefined;
  });
  return {
    async ready() {
      await limiter.ready();
    },
    run: (job) => limiter.schedule({ id: String(job), expiration: args.expirationMs }, () => attemptOnce(send, job)),
    async abort() {
      await limiter.stop({ dropWaitingJobs: true }).catch(() => {});
      await limiter.disconnect().catch(() => {});
    },
    async close() {
      await limiter.disconnect().catch(() => {});
    },
    extra: () => ({ retries }),
  };
}

let go: ((start: number) => void) | undefined;
const started = new Promise<number>((resolve) => {
  go = resolve;
});
let abortRun: (() => void) | undefined;
const abortedPromise = new Promise<'aborted'>((resolve) => {
  abortRun = () => resolve('aborted');
});
process.on('message', (raw: unknown) => {
  const m = raw as ParentMessage;
  if (m.type === 'go') go?.(m.start);
  else if (m.type === 'abort') {
    runAbort.abort(new Error('run aborted by the parent'));
    abortRun?.();
  } else if (m.type === 'exit') process.exit(0);
});

async function main(): Promise<void> {
  // Open every connection first, on a route that is not rate limited: nobody pays for TCP set-up during the run.
  await warmUp(pool, args.connections, '/storage/warm-up');
  if (args.initAt !== undefined) await until(args.initAt);
  const contender = args.config === 'bottleneck' ? bottleneck() : ours(args.config === 'shared');
  await contender.ready();
  tell({ type: 'ready', index: args.index, setupMs: Date.now() - bornAt, readyAt: Date.now() });

  const start = await started;
  line({ k: 'header', config: args.config, index: args.index, firstJob: args.firstJob, jobs: args.jobs, start, windowMs: args.windowMs });
  await until(start);
  const lateMs = Date.now() - start;
  const completedAt = new Array<number>(args.jobs).fill(Number.NaN);
  const failures = new FailureLog();
  const settled = runJobs((job) => contender.run(job), jobRange(args.jobs, args.firstJob), completedAt, (job, error) => failures.note(job, error));
  const first = await Promise.race([settled.then(() => 'done' as const), abortedPromise]);
  const aborted = first === 'aborted';
  if (aborted) {
    await contender.abort().catch(() => {});
    await Promise.race([settled, sleep(2000)]);
  } else {
    await contender.close();
  }
  await pool.destroy().catch(() => {});
  for (const a of attempts) {
    const { sentAt, recvAt, proc: _, ...rest } = a;
    line({ k: 'req', t: sentAt, rtt: recvAt - sentAt, ...rest });
  }
  await writeFile(args.traceFile, `${trace.join('\n')}\n`);
  const result: WorkerResult = {
    index: args.index,
    lateMs,
    attempts,
    completedAt,
    failures: failures.count,
    failureSamples: failures.samples,
    aborted,
    ...contender.extra(),
  };
  tell({ type: 'done', result });
}

main().catch((error: unknown) => {
  tell({ type: 'error', index: args.index, message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  setTimeout(() => process.exit(1), 50);
});
