/**
 * The Redis a benchmark runs against, and cleaning up after it.
 *
 * - `REDIS_URL` set: that server (nothing is started; only our keys are deleted).
 * - else, when a `redis-server` binary is on the PATH: a private one on a free
 *   loopback port, without persistence, killed at the end (and when this
 *   process exits). Other users of the machine's Redis (test runs, other
 *   benchmarks) then cannot disturb the measurement, nor it them.
 * - else: `redis://127.0.0.1:6379`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { killOnExit } from '../lib/kill-on-exit.js';

export interface BenchRedis {
  url: string;
  /** `private`: started here; `external`: REDIS_URL or the default port. */
  kind: 'private' | 'external';
  /** e.g. `7.0.15`. */
  version: string;
  /** A client for set-up and clean-up. */
  admin: Redis;
  /** Deletes every key whose name starts with one of `prefixes` (SCAN + DEL). Returns how many went. */
  deleteKeys(prefixes: readonly string[]): Promise<number>;
  /** Closes the admin client and stops a private server. Idempotent. */
  close(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function ping(url: string, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const c = new Redis(url, { lazyConnect: true, enableOfflineQueue: false, connectTimeout: 500, retryStrategy: () => null });
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

function hasRedisServer(): boolean {
  try {
    return spawnSync('redis-server', ['--version'], { stdio: 'ignore', timeout: 5000 }).status === 0;
  } catch {
    return false;
  }
}

async function startPrivate(): Promise<{ url: string; child: ChildProcess } | undefined> {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  const child = killOnExit(
    spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'yes', '--loglevel', 'warning'],
      { stdio: 'ignore' },
    ),
  );
  if (await ping(url, 5000)) return { url, child };
  await stopChild(child);
  return undefined;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}

/** Opens the benchmark's Redis (see the module comment). Throws when none answers. */
export async function openBenchRedis(): Promise<BenchRedis> {
  let url = process.env.REDIS_URL;
  let child: ChildProcess | undefined;
  if (url === undefined && hasRedisServer()) {
    const started = await startPrivate();
    if (started) {
      url = started.url;
      child = started.child;
    }
  }
  url ??= 'redis://127.0.0.1:6379';
  if (!child && !(await ping(url, 3000))) {
    throw new Error(`No Redis answers at ${url}. Start one (redis-server --daemonize yes), install redis-server, or set REDIS_URL.`);
  }
  const admin = new Redis(url, { maxRetriesPerRequest: 2, retryStrategy: (n) => (n > 20 ? null : Math.min(n * 50, 500)) });
  admin.on('error', () => {});
  const info = await admin.info('server');
  const version = /redis_version:([0-9.]+)/.exec(info)?.[1] ?? 'unknown';
  let closed = false;
  return {
    url,
    kind: child ? 'private' : 'external',
    version,
    admin,
    async deleteKeys(prefixes) {
      let deleted = 0;
      for (const prefix of prefixes) {
        // SCAN's MATCH is a glob: escape its special characters in the prefix.
        const pattern = `${prefix.replace(/[*?[\]\\]/g, (c) => `\\${c}`)}*`;
        let cursor = '0';
        do {
          const [next, keys] = await admin.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
          cursor = next;
          if (keys.length > 0) deleted += await admin.del(...keys);
        } while (cursor !== '0');
      }
      return deleted;
    },
    async close() {
      if (closed) return;
      closed = true;
      admin.disconnect();
      if (child) await stopChild(child);
    },
  };
}
