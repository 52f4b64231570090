/**
 * One worker process of test/redis-multiprocess.test.ts: a RateLimitScheduler
 * on a shared RedisStore, draining `jobs` requests into the fake ModelBeam
 * server. Talks to the parent in JSON lines on stdout.
 *
 * Run: node --import tsx test/helpers/redis-worker.ts '<WorkerArgs as JSON>'
 */
import { RateLimitScheduler } from '../../src/engine/scheduler.js';
import { RedisStore } from '../../src/store/redis-store.js';

export interface WorkerArgs {
  id: number;
  redisUrl: string;
  keyPrefix: string;
  account: string;
  baseUrl: string;
  apiKey: string;
  jobs: number;
  minuteMs: number;
  leaseMs: number;
  /** Each task holds its response up to this long (uniform), so requests stay in flight. */
  holdMs: number;
  /** The worker gives up (exit 2) after this long. */
  deadlineMs: number;
  /** Write every reserve and settle result to stderr (for debugging a failing run). */
  trace?: boolean;
}

export type WorkerPayload =
  | { type: 'ready'; processId: string }
  | { type: 'progress'; done: number; rateLimited: number }
  | { type: 'event'; name: 'unavailable' | 'recovered' | 'rebuilt' | 'storeUnavailable' | 'storeRecovered'; detail?: unknown }
  | { type: 'done'; done: number; failed: number; rateLimited: number; calls: Record<string, number>; ms: number }
  | { type: 'error'; message: string };

export type WorkerMessage = { id: number } & WorkerPayload;

const args = JSON.parse(process.argv[2] ?? '{}') as WorkerArgs;
const send = (msg: WorkerPayload): void => {
  process.stdout.write(`${JSON.stringify({ id: args.id, ...msg })}\n`);
};

const deadline = setTimeout(() => {
  send({ type: 'error', message: `worker ${args.id} passed its deadline` });
  process.exit(2);
}, args.deadlineMs);
deadline.unref();

const store = new RedisStore({ redis: args.redisUrl, keyPrefix: args.keyPrefix, account: args.account, commandTimeoutMs: 1000 });
store.on('unavailable', () => send({ type: 'event', name: 'unavailable' }));
store.on('recovered', (e) => send({ type: 'event', name: 'recovered', detail: e }));
store.on('rebuilt', (e) => send({ type: 'event', name: 'rebuilt', detail: e }));

if (args.trace) {
  const reserve = store.reserve.bind(store);
  const settle = store.settle.bind(store);
  store.reserve = async (want, now) => {
    const r = await reserve(want, now);
    const retryIn = r.retryAt === undefined ? '-' : Math.round(r.retryAt - r.now);
    process.stderr.write(`w${args.id} ${Date.now()} reserve ${r.granted}/${want} ${r.blockedBy ?? ''} retryIn=${retryIn}\n`);
    return r;
  };
  store.settle = async (ticket, outcome) => {
    const r = await settle(ticket, outcome);
    process.stderr.write(`w${args.id} ${Date.now()} settle ${outcome.status} rem=${outcome.snapshot?.minute.remaining}\n`);
    return r;
  };
}

const scheduler = new RateLimitScheduler({ store, windows: { minuteMs: args.minuteMs, dayMs: args.minuteMs * 1000 }, leaseMs: args.leaseMs });
let rateLimited = 0;
scheduler.on('rateLimited', () => rateLimited++);

try {
  await scheduler.ready();
} catch (error) {
  send({ type: 'error', message: error instanceof Error ? error.message : String(error) });
  process.exit(1);
}
send({ type: 'ready', processId: store.processId });

const started = Date.now();
let done = 0;
let failed = 0;
const progress = setInterval(() => send({ type: 'progress', done, rateLimited }), 50);
const task = async (): Promise<Response> => {
  const res = await fetch(`${args.baseUrl}/balance`, { headers: { authorization: `Bearer ${args.apiKey}` } });
  await res.arrayBuffer();
  if (args.holdMs > 0) await new Promise((r) => setTimeout(r, Math.random() * args.holdMs));
  return res;
};
await Promise.all(
  Array.from({ length: args.jobs }, () =>
    scheduler.schedule(task).then(
      () => done++,
      (error: unknown) => {
        failed++;
        send({ type: 'error', message: error instanceof Error ? error.message : String(error) });
      },
    ),
  ),
);
clearInterval(progress);
send({ type: 'done', done, failed, rateLimited, calls: store.stats().calls, ms: Date.now() - started });
await scheduler.close();
await store.close();
process.exit(0);
