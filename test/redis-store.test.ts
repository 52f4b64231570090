/**
 * RedisStore behaviours beyond the shared conformance suite: the Redis clock,
 * NOSCRIPT recovery, config checks, start-up errors, leases, several
 * processes sharing one account, outages (pause and local share), a lost
 * state, and the round trips the engine costs per request.
 */
import { randomUUID } from 'node:crypto';
import { Socket, createServer, type Server } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RateLimitScheduler } from '../src/engine/scheduler.js';
import { StoreUnavailableError } from '../src/errors/store-unavailable-error.js';
import { RedisStore, type RedisStoreOptions } from '../src/store/redis-store.js';
import type { BudgetConfig, Outcome, ReserveResult, Ticket } from '../src/store/types.js';
import { startFakeModelBeam } from '../src/testing/index.js';
import { REDIS_URL, deletePrefix, readSharedDoc, redisReachable, snap } from './helpers/store-cases.js';

const reachable = await redisReachable('redis-store.test.ts');
const PREFIX = `mbs-test:store:${randomUUID()}:`;
let admin: Redis;
let n = 0;

const CONFIG: BudgetConfig = { minuteMs: 1000, dayMs: 60_000, seeds: {}, marginMs: 2, leaseMs: 60_000 };

function cfg(overrides: Partial<BudgetConfig> = {}): BudgetConfig {
  return { ...CONFIG, ...overrides };
}

/** A store on its own account; `account` shares one between "processes". */
function store(options: RedisStoreOptions = {}): RedisStore {
  return new RedisStore({ redis: REDIS_URL, keyPrefix: PREFIX, account: `a${++n}`, ...options });
}

function tickets(r: ReserveResult): Ticket[] {
  return Array.from({ length: r.granted }, (_, i) => ({ ...r.ticket, lease: `${r.leasePrefix}${i}` }));
}

function outcome(now: number, overrides: Partial<Outcome> = {}): Outcome {
  return { now, status: 200, snapshot: undefined, sent: true, jitterMs: 0, fallbackGateMs: 1000, ...overrides };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(test: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await test())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A TCP proxy in front of Redis that a test can cut and restore, to play an outage. */
class Proxy {
  #server: Server | undefined;
  #sockets = new Set<Socket>();
  port = 0;

  async start(port = 0): Promise<void> {
    const target = new URL(REDIS_URL);
    this.#server = createServer((client) => {
      const upstream = new Socket();
      upstream.connect(Number(target.port || 6379), target.hostname);
      this.#sockets.add(client).add(upstream);
      client.pipe(upstream).pipe(client);
      const drop = (): void => {
        client.destroy();
        upstream.destroy();
        this.#sockets.delete(client);
        this.#sockets.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
    });
    await new Promise<void>((resolve) => this.#server!.listen(port, '127.0.0.1', resolve));
    this.port = (this.#server.address() as { port: number }).port;
  }

  /** Stops listening and drops every connection. */
  async cut(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
    this.#server = undefined;
  }

  url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }
}

describe('RedisStore options', () => {
  it('rejects unknown options and senseless combinations eagerly', () => {
    expect(() => new RedisStore({ redis: REDIS_URL, acount: 'x' } as RedisStoreOptions)).toThrow(/Unknown option `acount`/);
    expect(() => new RedisStore({ redis: REDIS_URL, localShare: 0.5 })).toThrow(/only applies with `onUnavailable: 'local-share'`/);
    expect(() => new RedisStore({ redis: REDIS_URL, onUnavailable: 'local-share', localShare: 2 })).toThrow(
      "Expected `localShare` to be a number in (0, 1], got `2` (number)",
    );
    expect(() => new RedisStore({ redis: REDIS_URL, account: '{x}' })).toThrow(/account/);
    expect(() => new RedisStore({ redis: 42 as unknown as string })).toThrow(/`redis`/);
  });
});

describe('RedisStore start-up without Redis', () => {
  it('rejects with StoreUnavailableError naming the URL without credentials when Redis is unreachable', async () => {
    const closed = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const port = (s.address() as { port: number }).port;
        s.close(() => resolve(port));
      });
    });
    const s = new RedisStore({ redis: `redis://alice:s3cret@127.0.0.1:${closed}/2`, connectTimeoutMs: 2000 });
    const error = await Promise.resolve(s.init(cfg())).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect((error as StoreUnavailableError).code).toBe('STORE_UNAVAILABLE');
    expect((error as Error).message).toContain(`redis://127.0.0.1:${closed}/2`);
    expect((error as Error).message).not.toContain('s3cret');
    expect((error as Error).message).not.toContain('alice');
    await s.close();
  });

  it('a scheduler with an unreachable store rejects ready() and its tasks', async () => {
    const s = new RedisStore({ redis: 'redis://127.0.0.1:1', connectTimeoutMs: 1000 });
    const scheduler = new RateLimitScheduler({ store: s });
    await expect(scheduler.ready()).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(scheduler.schedule(() => 1)).rejects.toBeInstanceOf(StoreUnavailableError);
    await s.close();
  });
});

describe.skipIf(!reachable && !process.env.CI)('RedisStore', () => {
  beforeAll(async () => {
    if (!reachable) throw new Error(`Redis is unreachable at ${REDIS_URL}; with CI set the Redis suites must not skip`);
    admin = new Redis(REDIS_URL);
  });
  afterAll(async () => {
    if (!admin) return;
    await deletePrefix(admin, PREFIX);
    admin.disconnect();
  });

  describe('start-up', () => {
    it('a database the server does not have is an error naming it, not a silent fall-back to database 0', async () => {
      const url = new URL(REDIS_URL);
      url.pathname = '/99';
      url.password = 's3cret-pw';
      const account = `a${++n}`;
      const s = new RedisStore({ redis: url.toString(), keyPrefix: PREFIX, account });
      const error = await Promise.resolve(s.init(cfg())).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect((error as Error).message).toMatch(/^Redis at redis:\/\/[^ ]*\/99 has no database 99 \(ERR DB index is out of range\)/);
      expect((error as Error).message).not.toContain('s3cret-pw');
      // Nothing was written to database 0 (or any other) under this account.
      expect(await admin.keys(`${PREFIX}*${account}*`)).toEqual([]);
      await s.close();
    });

    it('the first process writes the config; a later one with other windows gets a clear error', async () => {
      const a = store();
      const account = `a${n}`;
      await a.init(cfg({ minuteMs: 1000 }));
      const b = new RedisStore({ redis: REDIS_URL, keyPrefix: PREFIX, account });
      await expect(b.init(cfg({ minuteMs: 2000 }))).rejects.toThrow(
        /already runs windows \{ minuteMs: 1000, dayMs: 60000 \}, but this process has \{ minuteMs: 2000, dayMs: 60000 \}/,
      );
      const c = new RedisStore({ redis: REDIS_URL, keyPrefix: PREFIX, account });
      await c.init(cfg({ minuteMs: 1000, leaseMs: 5000 }));
      await Promise.all([a.close(), b.close(), c.close()]);
    });

    it('accepts an ioredis client and leaves it open on close', async () => {
      const client = new Redis(REDIS_URL);
      const s = new RedisStore({ redis: client, keyPrefix: PREFIX, account: `a${++n}` });
      await s.init(cfg());
      await s.close();
      expect(await client.ping()).toBe('PONG');
      client.disconnect();
    });
  });

  describe('Redis TIME is the clock', () => {
    it('ignores the engine time and returns the store time in every result', async () => {
      const s = store();
      await s.init(cfg({ seeds: { minute: 5 } }));
      const engineNow = 1_000; // far from real time
      const before = Date.now();
      const r = await s.reserve(2, engineNow);
      const t = await s.settle(tickets(r)[0]!, outcome(engineNow + 5));
      const after = Date.now();
      for (const now of [r.now, r.ticket.sentAt, t.now]) {
        expect(now).toBeGreaterThanOrEqual(before - 1000);
        expect(now).toBeLessThanOrEqual(after + 1000);
      }
      await s.close();
    });
  });

  describe('NOSCRIPT', () => {
    it('SCRIPT FLUSH mid-run breaks nothing (ioredis falls back to EVAL)', async () => {
      const s = store({ clockOverride: true, viewCacheMs: 0 });
      await s.init(cfg({ seeds: { minute: 10 } }));
      const unavailable: unknown[] = [];
      s.on('unavailable', (e) => unavailable.push(e));
      const r1 = await s.reserve(3, 1000);
      expect(r1.granted).toBe(3);
      await admin.script('FLUSH');
      const t = tickets(r1);
      const settled = await s.settle(t[0]!, outcome(1010, { snapshot: snap({ limit: 10, remaining: 9 }) }));
      expect(settled.changed).toBe(true);
      await admin.script('FLUSH');
      const r2 = await s.reserve(10, 1020);
      expect(r2.blockedBy).toBe('budget');
      expect(r2.granted).toBe(7); // 9 remaining, 2 still in flight
      await admin.script('FLUSH');
      const v = await s.view(1030);
      expect(v.sent).toBe(10);
      expect(v.done).toBe(1);
      expect(unavailable).toEqual([]);
      await s.close();
    });
  });

  describe('leases', () => {
    it('the units of a process that died come back once its leases expire', async () => {
      const a = store();
      const account = `a${n}`;
      const b = new RedisStore({ redis: REDIS_URL, keyPrefix: PREFIX, account });
      await a.init(cfg({ seeds: { minute: 3 }, leaseMs: 300 }));
      await b.init(cfg({ seeds: { minute: 3 }, leaseMs: 300 }));
      const ra = await a.reserve(3, Date.now());
      expect(ra.granted).toBe(3);
      await a.close(); // "crashes": never settles
      const blocked = await b.reserve(1, Date.now());
      expect(blocked.granted).toBe(0);
      const start = Date.now();
      let rb: ReserveResult;
      do {
        await sleep(25);
        rb = await b.reserve(1, Date.now());
      } while (rb.granted === 0 && Date.now() - start < 3000);
      const waited = Date.now() - start;
      expect(rb.granted).toBe(1);
      expect(waited).toBeLessThan(300 + 200);
      expect(b.stats().reclaimed).toBe(3);
      // A fresh answer then gives the whole budget back.
      await b.settle(tickets(rb)[0]!, outcome(Date.now(), { snapshot: snap({ limit: 3, remaining: 2 }) }));
      const again = await b.reserve(5, Date.now());
      expect(again.granted).toBe(2);
      const v = await b.view(Date.now());
      expect(v.sent - v.done).toBe(2);
      await b.close();
    });

    it('a settle after its lease was reclaimed counts nothing twice', async () => {
      const s = store({ clockOverride: true, viewCacheMs: 0 });
      await s.init(cfg({ seeds: { minute: 5 }, leaseMs: 100 }));
      const r = await s.reserve(2, 1000);
      await s.reserve(0, 1200); // reclaims both
      expect((await s.view(1200)).done).toBe(2);
      // The late answers' snapshots are not trusted: they may lower, never raise.
      await s.settle(tickets(r)[0]!, outcome(1210, { snapshot: snap({ limit: 5, remaining: 3 }) }));
      await s.settle(tickets(r)[1]!, outcome(1211, { snapshot: snap({ limit: 5, remaining: 4 }) }));
      const v = await s.view(1220);
      expect(v.done).toBe(2);
      expect(v.minute.remaining).toBe(3);
      expect(v.minute.uncounted).toBe(2);
      await s.close();
    });

    it('replaying a settle is harmless', async () => {
      const s = store({ clockOverride: true, viewCacheMs: 0 });
      await s.init(cfg({ seeds: { minute: 5 } }));
      const r = await s.reserve(2, 1000);
      const t = tickets(r)[0]!;
      await s.settle(t, outcome(1010, { snapshot: snap({ limit: 5, remaining: 4 }) }));
      const once = await s.view(1020);
      await s.settle(t, outcome(1015, { snapshot: snap({ limit: 5, remaining: 4 }) }));
      expect(await s.view(1020)).toEqual(once);
      await s.close();
    });
  });

  describe('several processes, one account', () => {
    async function pair(config: BudgetConfig): Promise<[RedisStore, RedisStore]> {
      const a = store({ viewCacheMs: 0 });
      const b = new RedisStore({ redis: REDIS_URL, keyPrefix: PREFIX, account: `a${n}`, viewCacheMs: 0 });
      await a.init(config);
      await b.init(config);
      return [a, b];
    }

    it('share the budget', async () => {
      const [a, b] = await pair(cfg({ seeds: { minute: 5 } }));
      expect((await a.reserve(3, 0)).granted).toBe(3);
      const rb = await b.reserve(5, 0);
      expect(rb.granted).toBe(2);
      expect(rb.blockedBy).toBe('budget');
      await Promise.all([a.close(), b.close()]);
    });

    it('a 429 seen by one closes the gate for all', async () => {
      const [a, b] = await pair(cfg({ seeds: { minute: 5 } }));
      const ra = await a.reserve(1, 0);
      const s = await a.settle(tickets(ra)[0]!, outcome(0, { status: 429, snapshot: snap({ limit: 5, remaining: 0 }, undefined, { retryAfterMs: 800 }) }));
      expect(s.gateWindow).toBe('minute');
      const rb = await b.reserve(2, 0);
      expect(rb.granted).toBe(0);
      expect(rb.blockedBy).toBe('gate');
      expect(rb.retryAt).toBe(s.gateUntil);
      expect(rb.retryAt! - rb.now).toBeGreaterThan(700);
      expect((await b.view(0)).gateUntil).toBe(s.gateUntil);
      await Promise.all([a.close(), b.close()]);
    });

    it('a daily park is shared the same way', async () => {
      const [a, b] = await pair(cfg({ seeds: { minute: 50, daily: 10 } }));
      const ra = await a.reserve(1, 0);
      const daily429 = snap({ limit: 50, remaining: 40 }, { limit: 10, remaining: 0 }, { type: 'daily', retryAfterMs: 30_000 });
      const s = await a.settle(tickets(ra)[0]!, outcome(0, { status: 429, snapshot: daily429 }));
      expect(s.parked?.until).toBeDefined();
      const rb = await b.reserve(1, 0);
      expect(rb.blockedBy).toBe('park');
      expect(rb.parkedUntil).toBe(s.parked!.until);
      await Promise.all([a.close(), b.close()]);
    });

    it('a snapshot from one updates the budget of all (fresh raises, stale never does)', async () => {
      const [a, b] = await pair(cfg({ seeds: { minute: 10 } }));
      const old = await a.reserve(1, 0); // sent before the next snapshot: ambiguous later
      const rb = await b.reserve(1, 0);
      await b.settle(tickets(rb)[0]!, outcome(0, { snapshot: snap({ limit: 10, remaining: 4 }) }));
      expect((await a.view(0)).minute.remaining).toBe(4);
      const before = await b.view(0);
      await a.settle(tickets(old)[0]!, outcome(0, { snapshot: snap({ limit: 10, remaining: 8 }) }));
      const after = await b.view(0);
      expect(after.minute.remaining).toBeLessThanOrEqual(4);
      expect(after.minute.available).toBeLessThanOrEqual(before.minute.available!);
      await Promise.all([a.close(), b.close()]);
    });
  });

  describe('Redis unreachable mid-run', () => {
    it("'pause': grants nothing, queues settles, recovers by itself and replays them", async () => {
      const proxy = new Proxy();
      await proxy.start();
      const s = new RedisStore({ redis: proxy.url(), keyPrefix: PREFIX, account: `a${++n}`, commandTimeoutMs: 500 });
      const events: string[] = [];
      s.on('unavailable', (e) => events.push(`unavailable:${e.mode}`));
      s.on('recovered', (e) => events.push(`recovered:${e.replayed}`));
      await s.init(cfg({ seeds: { minute: 10 } }));
      const r = await s.reserve(3, Date.now());
      expect(r.granted).toBe(3);
      const port = proxy.port;
      await proxy.cut();
      await until(() => !s.stats().available, 2000, 'the store to notice');
      const blocked = await s.reserve(2, Date.now());
      expect(blocked).toMatchObject({ granted: 0, blockedBy: 'store' });
      expect(blocked.retryAt! - blocked.now).toBeGreaterThan(0);
      const [t0, t1, t2] = tickets(r);
      const res = await s.settle(t0!, outcome(Date.now(), { snapshot: snap({ limit: 10, remaining: 9 }) }));
      expect(res.changed).toBe(false);
      await s.settle(t1!, outcome(Date.now(), { sent: false, status: undefined }));
      expect(s.stats().pendingSettles).toBe(2);
      await proxy.start(port);
      await until(() => events.includes('recovered:2'), 5000, 'recovery');
      expect(events).toEqual(['unavailable:pause', 'recovered:2']);
      const v = await s.view(Date.now());
      expect(v.done).toBe(2);
      expect(v.minute.remaining).toBe(9);
      await s.settle(t2!, outcome(Date.now()));
      expect((await s.reserve(1, Date.now())).granted).toBe(1);
      await s.close();
      await proxy.cut();
    });

    it('a settle replayed long after its answer leaves the store clock on time (its engine time is no reading of now)', async () => {
      const proxy = new Proxy();
      await proxy.start();
      const s = new RedisStore({ redis: proxy.url(), keyPrefix: PREFIX, account: `a${++n}`, commandTimeoutMs: 500 });
      let replayed = -1;
      s.on('recovered', (e) => (replayed = e.replayed));
      await s.init(cfg({ seeds: { minute: 10 } }));
      const r = await s.reserve(2, Date.now());
      const port = proxy.port;
      await proxy.cut();
      await until(() => !s.stats().available, 2000, 'the store to notice');
      const answeredAt = Date.now();
      await s.settle(tickets(r)[0]!, outcome(answeredAt, { snapshot: snap({ limit: 10, remaining: 9 }) }));
      // Redis is away for a while: the settle goes to Redis (alone in its write) well after its answer.
      await until(() => Date.now() - answeredAt >= 600, 2000, 'an outage of 600 ms');
      await proxy.start(port);
      await until(() => replayed === 1, 5000, 'the replay');
      const before = Date.now();
      const next = await s.reserve(1, before);
      const after = Date.now();
      // Redis runs on this host's clock: a store time matched against the replayed answer's time ran 600 ms ahead
      // (the margin is for round trips on a busy machine).
      expect(next.now).toBeGreaterThanOrEqual(before - 200);
      expect(next.now).toBeLessThanOrEqual(after + 200);
      await s.close();
      await proxy.cut();
    });

    it("'local-share': goes on with a share of the last known budget, never more, and reports it on return", async () => {
      const proxy = new Proxy();
      await proxy.start();
      const account = `a${++n}`;
      const s = new RedisStore({ redis: proxy.url(), keyPrefix: PREFIX, account, onUnavailable: 'local-share', localShare: 0.25, commandTimeoutMs: 500 });
      await s.init(cfg({ seeds: { minute: 40 } }));
      const r = await s.reserve(1, Date.now());
      await s.settle(tickets(r)[0]!, outcome(Date.now(), { snapshot: snap({ limit: 40, remaining: 30 }) }));
      const port = proxy.port;
      await proxy.cut();
      await until(() => !s.stats().available, 2000, 'the store to notice');
      const local = await s.reserve(100, Date.now());
      expect(local.granted).toBe(7); // floor(0.25 × 30)
      expect(local.blockedBy).toBe('budget');
      const localTickets = tickets(local);
      // Answers while cut off feed the local share, scaled down too.
      await s.settle(localTickets[0]!, outcome(Date.now(), { snapshot: snap({ limit: 40, remaining: 22 }) }));
      const more = await s.reserve(100, Date.now());
      expect(more.granted).toBeLessThanOrEqual(Math.floor(0.25 * 22));
      await proxy.start(port);
      const recovered = new Promise<{ absorbed: number }>((resolve) => s.once('recovered', resolve));
      expect((await recovered).absorbed).toBe(7 + more.granted);
      const v = await readSharedDoc(admin, s.keys[0]!);
      expect(v.budget.sent).toBe(1 + 7 + more.granted);
      await s.close();
      await proxy.cut();
    });
  });

  describe('state lost mid-run (FLUSHALL or a restart without persistence)', () => {
    it('is re-created, and the requests in flight are counted in it', async () => {
      const a = store({ clockOverride: true, viewCacheMs: 0 });
      const b = new RedisStore({ redis: REDIS_URL, keyPrefix: PREFIX, account: `a${n}`, clockOverride: true, viewCacheMs: 0 });
      await a.init(cfg({ seeds: { minute: 10 } }));
      await b.init(cfg({ seeds: { minute: 10 } }));
      const ra = await a.reserve(4, 1000);
      const rb = await b.reserve(3, 1000);
      const rebuilt: number[] = [];
      a.on('rebuilt', (e) => rebuilt.push(e.adopted));
      b.on('rebuilt', (e) => rebuilt.push(e.adopted));
      await admin.del(...a.keys);
      await admin.script('FLUSH');
      // a notices first and re-creates the state, counting its 4 in flight.
      const r1 = await a.reserve(10, 1010);
      expect(r1.granted).toBe(6);
      // b's next call adopts its 3; then its settles count, without trusting old tickets.
      await b.settle(tickets(rb)[0]!, outcome(1020, { snapshot: snap({ limit: 10, remaining: 9 }) }));
      const v = await a.view(1030);
      expect(rebuilt).toEqual([4, 3]);
      expect(v.sent).toBe(4 + 6 + 3);
      expect(v.done).toBe(1);
      expect(v.minute.uncounted).toBe(4 + 6 + 3);
      expect((await b.reserve(5, 1040)).granted).toBe(0);
      for (const t of tickets(ra)) await a.settle(t, outcome(1050));
      expect((await a.view(1060)).done).toBe(5);
      await Promise.all([a.close(), b.close()]);
    });
  });

  describe('cost per request', () => {
    it('about one reserve per batch of grants and one settle per response', async () => {
      const server = await startFakeModelBeam({ limits: { minute: { limit: 40, windowMs: 1000 } } });
      const s = store();
      const scheduler = new RateLimitScheduler({ store: s, windows: { minuteMs: 1000, dayMs: 1000 * 1000 } });
      const jobs = 120;
      const started = Date.now();
      await Promise.all(
        Array.from({ length: jobs }, () =>
          scheduler.schedule(async () => {
            const res = await fetch(`${server.baseUrl}/balance`, { headers: { authorization: 'Bearer test-key' } });
            await res.arrayBuffer();
            return res;
          }),
        ),
      );
      const elapsed = Date.now() - started;
      const { calls } = s.stats();
      const stats = server.stats();
      const responses = stats.requests;
      console.log(
        `[redis-store] ${jobs} jobs, ${responses} requests (${stats.rejected429.total} × 429) in ${elapsed} ms:`,
        `reserve ${calls.reserve} (${(calls.reserve / responses).toFixed(2)}/request),`,
        `settle ${calls.settle} (${(calls.settle / responses).toFixed(2)}/request), view ${calls.view}`,
      );
      expect(calls.settle).toBe(responses);
      expect(calls.view).toBeLessThanOrEqual(3);
      expect(calls.reserve).toBeLessThan(responses * 1.5 + 20);
      expect(server.maxInAnyWindow()).toBeLessThanOrEqual(40);
      await scheduler.close();
      await s.close();
      await server.close();
    });
  });
});
