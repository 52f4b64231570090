/**
 * Store conformance: MemoryStore and RedisStore run the same budget code
 * (RedisStore on a JSON document in Redis, written back with compare-and-set),
 * so on the same sequences (scripted scenarios and fast-check random ones)
 * they must give identical outputs and hold an identical state after every
 * step: this checks what sharing adds (the document's round trip through
 * Redis, leases, batching, the clock). RedisStore runs with `clockOverride`
 * so that it uses the scenario's time instead of Redis TIME.
 */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStore } from '../src/store/memory-store.js';
import { RedisStore } from '../src/store/redis-store.js';
import type { BudgetConfig } from '../src/store/types.js';
import {
  REDIS_URL,
  deletePrefix,
  firstDivergence,
  invariantProblems,
  randomConfigArb,
  randomLaneOpArb,
  randomScenario,
  readSharedDoc,
  record,
  scenarios,
  type Scenario,
  type Step,
} from './helpers/store-cases.js';
import { redisReachable } from './helpers/store-cases.js';

const reachable = await redisReachable('store-conformance.test.ts');
const PREFIX = `mbs-test:conf:${randomUUID()}:`;

let admin: Redis;
let accounts = 0;

function redisStore(): RedisStore {
  return new RedisStore({ redis: admin, keyPrefix: PREFIX, account: `a${++accounts}`, clockOverride: true, viewCacheMs: 0, pollMs: 0 });
}

/** Both stores on one scenario: every output, and the whole budget state (both windows, the answer log) after every step. */
async function compare(cfg: BudgetConfig, scenario: Scenario): Promise<{ memory: Step[]; redis: Step[] }> {
  const mem = new MemoryStore();
  const memory = await record(mem, cfg, scenario, () => mem.toJSON());
  const store = redisStore();
  try {
    const key = store.keys[0] as string;
    const redis = await record(store, cfg, scenario, async () => {
      const doc = await readSharedDoc(admin, key);
      return { data: doc.budget, log: doc.log };
    });
    return { memory, redis };
  } finally {
    await store.close();
  }
}

function expectSame(memory: Step[], redis: Step[]): void {
  const diff = firstDivergence(memory, redis);
  if (diff) {
    // Show where they part, with a little context, before the full comparison fails.
    expect({ index: diff.index, before: diff.before, memory: diff.a, redis: diff.b }).toEqual({
      index: diff.index,
      before: diff.before,
      memory: diff.a,
      redis: diff.a,
    });
  }
  expect(redis).toEqual(memory);
}

describe.skipIf(!reachable && !process.env.CI)('store conformance: MemoryStore ≡ RedisStore', () => {
  beforeAll(async () => {
    if (!reachable) throw new Error(`Redis is unreachable at ${REDIS_URL}; with CI set the Redis suites must not skip`);
    admin = new Redis(REDIS_URL);
  });
  afterAll(async () => {
    if (!admin) return;
    await deletePrefix(admin, PREFIX);
    admin.disconnect();
  });

  describe('scripted scenarios', () => {
    it.each(scenarios.map((s) => [s.name, s] as const))('%s', async (_name, scenario) => {
      const { memory, redis } = await compare(scenario.config, scenario.run);
      for (const step of memory) expect(invariantProblems(step), JSON.stringify(step)).toEqual([]);
      expectSame(memory, redis);
      // The scenario must exercise something: at least one grant.
      expect(memory.some((s) => s.op === 'reserve' && s.result.granted > 0)).toBe(true);
    });

    it('the simulated server runs see their expected outcomes (sanity of the harness)', async () => {
      const jumps = scenarios.find((s) => s.name.startsWith('jumps'))!;
      const { memory } = await compare(jumps.config, jumps.run);
      const views = memory.filter((s): s is Extract<Step, { op: 'view' }> => s.op === 'view');
      expect(views.some((v) => v.result.minute.kind === 'fixed')).toBe(true);
      const note = memory.find((s) => s.op === 'note') as { value: { accepted: number; rejected: number; maxInWindow: number } };
      expect(note.value.maxInWindow).toBeLessThanOrEqual(12);
      expect(note.value.accepted).toBeGreaterThan(50);
    });
  });

  describe('random sequences (fast-check)', () => {
    it('identical outputs, no negative or NaN budget, never more granted than wanted', async () => {
      await fc.assert(
        fc.asyncProperty(randomConfigArb, fc.array(randomLaneOpArb, { minLength: 1, maxLength: 80 }), fc.integer({ min: 1, max: 12 }), async (cfg, ops, modelLimit) => {
          const { memory, redis } = await compare(cfg, randomScenario(ops, modelLimit, cfg.minuteMs));
          for (const step of memory) expect(invariantProblems(step), JSON.stringify(step)).toEqual([]);
          expectSame(memory, redis);
        }),
        { numRuns: Number(process.env.CONFORMANCE_RUNS ?? 150), interruptAfterTimeLimit: Number(process.env.CONFORMANCE_MS ?? 20_000) },
      );
    }, Number(process.env.CONFORMANCE_MS ?? 20_000) + 20_000);
  });
});
