/**
 * The spend counter behind `maxSpend`: the memory ledger and the Redis ledger (real Redis) pass the same
 * cases, concurrency included: the cap is never exceeded, a release gives back, `open` keeps an existing total.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, test } from 'vitest';
import { MemorySpendLedger, fitsUnderCap, type SpendLedger } from '../src/store/spend-ledger.js';
import { RedisStore } from '../src/store/redis-store.js';
import { REDIS_URL, config, deletePrefix, redisReachable } from './helpers/store-cases.js';

const reachable = await redisReachable('spend-ledger.test.ts');
const PREFIX = `mbs-test:spend:${randomUUID()}:`;
const stores: RedisStore[] = [];

afterAll(async () => {
  for (const s of stores) await s.close();
  if (reachable) {
    const c = new Redis(REDIS_URL);
    await deletePrefix(c, PREFIX);
    c.disconnect();
  }
});

async function redisLedger(name = randomUUID()): Promise<SpendLedger> {
  const store = new RedisStore({ redis: REDIS_URL, keyPrefix: PREFIX, account: 'acct' });
  stores.push(store);
  await store.init(config());
  return store.spendLedger(name);
}

test.each([
  [0, 5, 10, true],
  [5, 5, 10, true],
  [6, 5, 10, false],
  [10, 0, 10, true],
])('fitsUnderCap(%i, %i, %i) is %s', (total, amount, cap, fits) => {
  expect(fitsUnderCap(total, amount, cap)).toBe(fits);
});

const kinds: [string, () => Promise<SpendLedger>][] = [['MemorySpendLedger', () => Promise.resolve(new MemorySpendLedger())]];
if (reachable) kinds.push(['RedisSpendLedger', () => redisLedger()]);

describe.each(kinds)('%s', (_name, make) => {
  test('reserves within the cap, refuses past it, and gives back', async () => {
    const l = await make();
    expect(await l.open(30)).toBe(30);
    expect(await l.reserve(50, 100)).toEqual({ ok: true, totalNano: 80 });
    expect(await l.reserve(30, 100)).toEqual({ ok: false, totalNano: 80 });
    expect(await l.reserve(20, 100)).toEqual({ ok: true, totalNano: 100 });
    expect(await l.release(50)).toBe(50);
    expect(await l.total()).toBe(50);
  });

  test('100 concurrent reservations never take the total past the cap', async () => {
    const l = await make();
    await l.open(0);
    const price = 1_020_000; // $0.00102
    const cap = 25 * price + 5;
    const answers = await Promise.all(Array.from({ length: 100 }, () => l.reserve(price, cap)));
    expect(answers.filter((a) => a.ok)).toHaveLength(25);
    expect(await l.total()).toBe(25 * price);
  });

  test('amounts are exact integers (nano-dollars) up to millions of dollars', async () => {
    const l = await make();
    await l.open(0);
    const big = 4_000_000 * 1e9; // $4M
    expect((await l.reserve(big, 2 * big)).ok).toBe(true);
    expect((await l.reserve(1, 2 * big)).totalNano).toBe(big + 1);
  });
});

describe.skipIf(!reachable)('RedisSpendLedger sharing', () => {
  test('two stores naming one counter share it; open() keeps the shared total; another name starts from zero', async () => {
    const name = randomUUID();
    const a = await redisLedger(name);
    const b = await redisLedger(name);
    expect(await a.open(7)).toBe(7);
    expect(await b.open(999)).toBe(7); // exists: kept
    await a.reserve(3, 100);
    expect(await b.total()).toBe(10);
    expect((await b.reserve(91, 100)).ok).toBe(false);
    const other = await redisLedger(randomUUID());
    expect(await other.open(0)).toBe(0);
  });
});
