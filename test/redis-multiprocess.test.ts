/**
 * Real processes on one account: 4 workers (child processes, each its own
 * RateLimitScheduler + RedisStore) drain requests into ONE fake ModelBeam
 * server with a compressed minute (40 per 1 s window).
 *
 * 1. The server never accepts more than the limit in any window, 429s stay
 *    rare, and every job finishes.
 * 2. kill -9 of one worker mid-run: its leases come back within the lease
 *    TTL and the others finish.
 * 3. Redis restarted mid-run (a private redis-server when the binary is
 *    there: a real restart without persistence) or, failing that, its keys and
 *    scripts flushed: no over-dispatch follows, and work resumes.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeModelBeam, type FakeModelBeamServer } from '../src/testing/index.js';
import type { WorkerArgs, WorkerMessage } from './helpers/redis-worker.js';
import { REDIS_URL, deletePrefix, readSharedDoc, redisReachable } from './helpers/store-cases.js';

const reachable = await redisReachable('redis-multiprocess.test.ts');

const LIMIT = 40;
const WINDOW_MS = 1000;
const LEASE_MS = 1500;
const WORKERS = 4;
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const WORKER = fileURLToPath(new URL('./helpers/redis-worker.ts', import.meta.url));
const PREFIX = `mbs-test:mp:${randomUUID()}:`;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Where the workers' Redis lives: a private redis-server we can restart, or the shared one. */
interface TestRedis {
  url: string;
  private: boolean;
  /** Loses the state mid-run: a real restart (private) or SCRIPT FLUSH + DEL of the account's keys. */
  disrupt(account: string): Promise<void>;
  stop(): Promise<void>;
}

async function waitPing(url: string, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const c = new Redis(url, { lazyConnect: true, enableOfflineQueue: false, retryStrategy: () => null });
    c.on('error', () => {});
    try {
      await c.connect();
      if ((await c.ping()) === 'PONG') return true;
    } catch {
      // not up yet
    } finally {
      c.disconnect();
    }
    await sleep(50);
  }
  return false;
}

async function privateRedis(): Promise<TestRedis | undefined> {
  if (spawnSync('redis-server', ['--version']).status !== 0) return undefined;
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  const start = async (): Promise<boolean> => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    return waitPing(url, 5000);
  };
  const kill = async (): Promise<void> => {
    const c = child;
    if (!c || c.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGKILL');
    });
  };
  if (!(await start())) {
    await kill();
    return undefined;
  }
  return {
    url,
    private: true,
    async disrupt() {
      await kill();
      await sleep(300); // down for a moment: the workers pause
      if (!(await start())) throw new Error('the private redis-server did not come back');
    },
    stop: kill,
  };
}

function sharedRedis(admin: Redis): TestRedis {
  return {
    url: REDIS_URL,
    private: false,
    async disrupt(account) {
      await admin.script('FLUSH');
      const base = `${PREFIX}{${account}}:`;
      await admin.del(`${base}state`, `${base}log`, `${base}leases`);
    },
    async stop() {},
  };
}

interface Worker {
  id: number;
  child: ChildProcess;
  processId: string;
  done: number;
  finished: WorkerMessage & { type: 'done' } | undefined;
  events: string[];
  errors: string[];
  exited: Promise<number | null>;
}

async function startWorkers(redisUrl: string, server: FakeModelBeamServer, account: string, jobs: readonly number[], holdMs: number): Promise<Worker[]> {
  const workers = await Promise.all(
    Array.from({ length: WORKERS }, (_, id) => {
      const args: WorkerArgs = {
        id,
        redisUrl,
        keyPrefix: PREFIX,
        account,
        baseUrl: server.baseUrl,
        apiKey: 'test-key',
        jobs: jobs[id] as number,
        minuteMs: WINDOW_MS,
        leaseMs: LEASE_MS,
        holdMs,
        deadlineMs: 40_000,
        trace: process.env.MBS_TRACE_WORKERS === '1',
      };
      const child = spawn(process.execPath, ['--import', 'tsx', WORKER, JSON.stringify(args)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      const worker: Worker = {
        id,
        child,
        processId: '',
        done: 0,
        finished: undefined,
        events: [],
        errors: [],
        exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))),
      };
      let stderr = '';
      child.stderr!.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        if (process.env.MBS_TRACE_WORKERS === '1') appendFileSync(join(tmpdir(), `mbs-trace-${account}-w${id}.log`), chunk);
      });
      const ready = new Promise<Worker>((resolve, reject) => {
        createInterface({ input: child.stdout! }).on('line', (line) => {
          let msg: WorkerMessage;
          try {
            msg = JSON.parse(line) as WorkerMessage;
          } catch {
            return;
          }
          if (msg.type === 'ready') {
            worker.processId = msg.processId;
            resolve(worker);
          } else if (msg.type === 'progress') worker.done = msg.done;
          else if (msg.type === 'event') worker.events.push(msg.name);
          else if (msg.type === 'error') worker.errors.push(msg.message);
          else if (msg.type === 'done') {
            worker.done = msg.done;
            worker.finished = msg;
          }
        });
        child.once('exit', (code) => reject(new Error(`worker ${id} exited (${code}) before ready: ${stderr.slice(-2000)}`)));
      });
      return ready;
    }),
  );
  return workers;
}

async function waitFor(test: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!test()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

function killAll(workers: Worker[]): void {
  for (const w of workers) if (w.child.exitCode === null) w.child.kill('SIGKILL');
}

describe.skipIf(!reachable && !process.env.CI)('4 worker processes, one account, one RedisStore', () => {
  let admin: Redis;
  let redis: TestRedis;
  let redisAdmin: Redis;
  let server: FakeModelBeamServer | undefined;
  let workers: Worker[] = [];

  beforeAll(async () => {
    if (!reachable) throw new Error(`Redis is unreachable at ${REDIS_URL}; with CI set the Redis suites must not skip`);
    admin = new Redis(REDIS_URL);
    // MBS_TEST_SHARED_REDIS=1 forces the fallback (flush instead of restart) even where redis-server exists.
    redis = (process.env.MBS_TEST_SHARED_REDIS ? undefined : await privateRedis()) ?? sharedRedis(admin);
    redisAdmin = new Redis(redis.url, { retryStrategy: (n) => Math.min(n * 50, 500) });
    redisAdmin.on('error', () => {});
    console.log(`[multiprocess] Redis: ${redis.private ? `a private redis-server at ${redis.url} (real restart)` : `${redis.url} (flush instead of restart)`}`);
  });

  afterAll(async () => {
    killAll(workers);
    await server?.close();
    if (admin) {
      await deletePrefix(admin, PREFIX);
      admin.disconnect();
    }
    redisAdmin?.disconnect();
    await redis?.stop();
  });

  async function run(account: string, jobs: number | readonly number[], holdMs: number, during?: (ws: Worker[]) => Promise<void>) {
    server = await startFakeModelBeam({ limits: { minute: { limit: LIMIT, windowMs: WINDOW_MS } } });
    const started = Date.now();
    workers = await startWorkers(redis.url, server, account, typeof jobs === 'number' ? Array(WORKERS).fill(jobs) : jobs, holdMs);
    const readyMs = Date.now() - started;
    const t0 = Date.now();
    await during?.(workers);
    await Promise.race([Promise.all(workers.map((w) => w.exited)), sleep(45_000)]);
    const ms = Date.now() - t0;
    const stats = server.stats();
    const result = {
      ms,
      readyMs,
      accepted: stats.accepted,
      rejected429: stats.rejected429.total,
      requests: stats.accepted + stats.rejected429.total,
      maxInWindow: server.maxInAnyWindow(WINDOW_MS),
      workers: workers.map((w) => ({ done: w.done, finished: w.finished, events: w.events, errors: w.errors })),
    };
    await server.close();
    server = undefined;
    return result;
  }

  it('never over the limit in any window, 429s rare, every job done', async () => {
    const jobs = 50;
    const r = await run('shared', jobs, 20);
    // The first batch goes at once and the last at the start of its window.
    const ideal = (Math.ceil((WORKERS * jobs) / LIMIT) - 1) * WINDOW_MS;
    const calls = r.workers.map((w) => w.finished?.calls);
    console.log(
      `[multiprocess] ${WORKERS}×${jobs} jobs in ${r.ms} ms (ideal ≈ ${ideal} ms, ×${(r.ms / ideal).toFixed(2)}):`,
      `max ${r.maxInWindow}/${LIMIT} in a window, ${r.rejected429} × 429 in ${r.requests} requests;`,
      `store calls per worker ${JSON.stringify(calls)}`,
    );
    expect(r.workers.map((w) => w.errors)).toEqual([[], [], [], []]);
    expect(r.workers.map((w) => w.finished?.done)).toEqual([jobs, jobs, jobs, jobs]);
    expect(r.maxInWindow).toBeLessThanOrEqual(LIMIT);
    expect(r.rejected429).toBeLessThanOrEqual(Math.max(2, r.requests * 0.02));
    for (const c of calls) expect(c!.settle).toBeGreaterThanOrEqual(jobs);
  }, 55_000);

  it('kill -9 one worker mid-run: its leases come back within the lease TTL, the others finish', async () => {
    const jobs = 75;
    const account = 'kill';
    const budgetKey = `${PREFIX}{${account}}:budget`;
    /** Lease id → expiry on the Redis clock, as the shared budget holds them. */
    const leaseList = async (): Promise<[string, number][]> => Object.entries((await readSharedDoc(redisAdmin, budgetKey)).leases);
    let returnMs = -1;
    let expiresInMs = Number.NaN;
    let stillHeld = -1;
    let heldAtKill = 0;
    let victim: Worker | undefined;
    let leftAtKill: number[] = [];
    const r = await run(account, jobs, 40, async (ws) => {
      // Early (about one window in), so the others still have work for longer than the lease TTL.
      await waitFor(() => ws.reduce((sum, w) => sum + w.done, 0) >= LIMIT, 20_000, 'the first window');
      // Kill a worker while it holds leases (requests in flight): whichever holds the most right now.
      const held = async (w: Worker): Promise<number> =>
        (await leaseList()).filter(([id]) => id.startsWith(`${w.processId}.`)).length;
      const end = Date.now() + 5000;
      while (!victim && Date.now() < end) {
        const counts = await Promise.all(ws.map(held));
        const best = counts.indexOf(Math.max(...counts));
        if ((counts[best] ?? 0) > 0) victim = ws[best];
        else await sleep(2);
      }
      if (!victim) throw new Error('no worker held a lease for 5 s');
      victim.child.kill('SIGKILL');
      const killedAt = Date.now();
      const [sec, usec] = await redisAdmin.time();
      const killedAtRedis = Number(sec) * 1000 + Number(usec) / 1000;
      leftAtKill = ws.filter((w) => w !== victim).map((w) => jobs - w.done);
      const mine = (await leaseList()).flatMap(([id, expiry]) => (id.startsWith(`${victim!.processId}.`) ? [expiry] : []));
      heldAtKill = mine.length;
      // A lease's expiry is on the Redis clock; from then on every process counts it as free.
      expiresInMs = Math.max(...mine) - killedAtRedis;
      // They leave the shared budget at the next write of a survivor after that (lazily), however busy the machine is.
      while ((await held(victim)) > 0 && Date.now() - killedAt < LEASE_MS + 10_000) await sleep(10);
      returnMs = Date.now() - killedAt;
      stillHeld = await held(victim);
    });
    const others = r.workers.filter((_, i) => i !== victim!.id);
    console.log(
      `[multiprocess] kill -9 of worker ${victim!.id}: it held ${heldAtKill} leases (the others had ${leftAtKill} jobs left);`,
      `they expired ${expiresInMs.toFixed(0)} ms after the kill and were reclaimed after ${returnMs} ms (lease TTL ${LEASE_MS} ms); others: ${others.map((w) => w.finished?.done)} done in ${r.ms} ms;`,
      `max ${r.maxInWindow}/${LIMIT}, ${r.rejected429} × 429`,
    );
    expect(heldAtKill).toBeGreaterThan(0);
    // Only meaningful while someone is left to reclaim them: a process that asks the store.
    expect(Math.max(...leftAtKill)).toBeGreaterThanOrEqual((LIMIT * LEASE_MS) / WINDOW_MS);
    // Back within the lease TTL: every lease it held expires (is free to every script) at most LEASE_MS after the kill
    // (a lease is renewed when granted, so its expiry is at most LEASE_MS after the last moment the victim lived)...
    expect(expiresInMs).toBeLessThanOrEqual(LEASE_MS);
    // ...and a survivor's next call reclaims them.
    expect(stillHeld).toBe(0);
    expect(others.map((w) => w.finished?.done)).toEqual([jobs, jobs, jobs]);
    expect(others.flatMap((w) => w.errors)).toEqual([]);
    expect(r.maxInWindow).toBeLessThanOrEqual(LIMIT);
    expect(r.rejected429).toBeLessThanOrEqual(Math.max(2, r.requests * 0.02));
    // Everything granted was answered or reclaimed.
    const state = (await readSharedDoc(redisAdmin, budgetKey)).budget;
    expect(state.sent).toBe(state.done);
  }, 55_000);

  it('Redis restarted (or flushed) mid-run: no over-dispatch follows, and work resumes', async () => {
    const jobs = 50;
    const account = 'restart';
    let before429 = 0;
    let restartedAt = 0;
    let acceptedAtRestart = 0;
    let running: number[] = [];
    const r = await run(account, jobs, 20, async (ws) => {
      await waitFor(() => ws.reduce((sum, w) => sum + w.done, 0) >= WORKERS * jobs * 0.3, 20_000, 'a third of the work');
      before429 = server!.stats().rejected429.total;
      acceptedAtRestart = server!.stats().accepted;
      running = ws.filter((w) => w.done < jobs - 5).map((w) => w.id);
      await redis.disrupt(account);
      restartedAt = Date.now();
    });
    const after429 = r.rejected429 - before429;
    const events = r.workers.map((w) => w.events.join(','));
    console.log(
      `[multiprocess] ${redis.private ? 'restart' : 'flush'} after ${acceptedAtRestart} accepted: ${after429} × 429 after it (${before429} before);`,
      `max ${r.maxInWindow}/${LIMIT} in a window; finished ${r.ms} ms after start (${Date.now() - restartedAt} ms after the restart); events ${JSON.stringify(events)}`,
    );
    expect(r.workers.map((w) => w.errors)).toEqual([[], [], [], []]);
    expect(r.workers.map((w) => w.finished?.done)).toEqual([jobs, jobs, jobs, jobs]);
    expect(r.maxInWindow).toBeLessThanOrEqual(LIMIT);
    expect(after429).toBeLessThanOrEqual(3);
    // Every worker still at work found the state re-created (and, with a real restart, Redis gone for a moment).
    expect(running.length).toBeGreaterThan(0);
    for (const id of running) expect(r.workers[id]!.events).toContain('rebuilt');
    if (redis.private) for (const id of running) expect(r.workers[id]!.events).toContain('recovered');
  }, 55_000);
});
