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
import { DEFAULT_SCOPE } from '../src/store/scope.js';
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
  snap,
  spreadOverScopes,
  T0,
  config as budgetConfig,
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

/** As `compare`, with the state of every scope after every step (the default one's at the top of Redis's document). */
async function compareScoped(cfg: BudgetConfig, scenario: Scenario): Promise<{ memory: Step[]; redis: Step[] }> {
  const mem = new MemoryStore();
  const memory = await record(mem, cfg, scenario, () => Object.fromEntries(mem.scopes().sort().map((s) => [s, mem.toJSON(s)])));
  const store = redisStore();
  try {
    const key = store.keys[0] as string;
    const redis = await record(store, cfg, scenario, async () => {
      const doc = await readSharedDoc(admin, key);
      const all: Record<string, unknown> = { [DEFAULT_SCOPE]: { data: doc.budget, log: doc.log } };
      for (const [name, part] of Object.entries(doc.scopes ?? {})) all[name] = { data: part.budget, log: part.log };
      return Object.fromEntries(Object.entries(all).sort(([a], [b]) => (a < b ? -1 : 1)));
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

  describe('scopes', () => {
    it('each scope keeps its own numbers, gate and park; both stores agree on every scope after every step', async () => {
      const cfg = budgetConfig();
      const { memory, redis } = await compareScoped(cfg, async (d) => {
        // Two endpoints of different limits, answered in turn.
        const img = await d.reserve(5, T0, 0, 'txt2img');
        const emb = await d.reserve(5, T0, 0, 'txt2embedding');
        await d.settle(img.tickets[0], T0 + 10, { snapshot: snap({ limit: 3, remaining: 2 }) });
        await d.settle(emb.tickets[0], T0 + 11, { snapshot: snap({ limit: 10, remaining: 9 }) });
        const img2 = await d.reserve(5, T0 + 12, 0, 'txt2img');
        const emb2 = await d.reserve(5, T0 + 12, 0, 'txt2embedding');
        await d.view(T0 + 13, 'txt2img');
        await d.view(T0 + 13, 'txt2embedding');
        // A 429 on txt2img closes txt2img's gate alone.
        for (const t of img2.tickets) await d.settle(t, T0 + 20, { status: 429, snapshot: snap({ limit: 3, remaining: 0 }, undefined, { retryAfterMs: 5000 }) });
        for (const t of emb2.tickets) await d.settle(t, T0 + 21, { snapshot: snap({ limit: 10, remaining: 5 }) });
        await d.reserve(2, T0 + 30, 0, 'txt2img');
        await d.reserve(2, T0 + 30, 0, 'txt2embedding');
        // The default scope has seen nothing.
        await d.view(T0 + 31);
        // A daily 429 on txt2embedding parks it alone.
        const emb3 = await d.reserve(1, T0 + 40, 0, 'txt2embedding');
        await d.settle(emb3.tickets[0], T0 + 50, { status: 429, snapshot: snap({ limit: 10, remaining: 4 }, { limit: 20, remaining: 0 }, { type: 'daily', retryAfterMs: 60_000 }) });
        await d.reserve(1, T0 + 5100, 0, 'txt2img');
        await d.reserve(1, T0 + 5100, 0, 'txt2embedding');
        await d.view(T0 + 5101, 'txt2img');
        await d.view(T0 + 5101, 'txt2embedding');
      });
      expectSame(memory, redis);
      const reserves = memory.filter((s): s is Extract<Step, { op: 'reserve' }> => s.op === 'reserve');
      const views = memory.filter((s): s is Extract<Step, { op: 'view' }> => s.op === 'view');
      // Each scope's view shows its own endpoint's numbers, not the other's.
      expect(views[0]?.result.minute.limit).toBe(3);
      expect(views[1]?.result.minute.limit).toBe(10);
      // The 429 on txt2img gated txt2img only: txt2embedding was granted meanwhile.
      expect(reserves[4]).toMatchObject({ scope: 'txt2img', result: { granted: 0, blockedBy: 'gate' } });
      expect(reserves[5]).toMatchObject({ scope: 'txt2embedding', result: { granted: 2 } });
      expect(views[2]?.result.minute.limit).toBeUndefined();
      expect(views[2]?.result.gateUntil).toBeUndefined();
      // The daily park holds txt2embedding; txt2img's gate has reopened and it goes on.
      expect(reserves[7]).toMatchObject({ scope: 'txt2img', result: { granted: 1 } });
      expect(reserves[8]).toMatchObject({ scope: 'txt2embedding', result: { granted: 0, blockedBy: 'park' } });
      expect(views[4]?.result.parkedUntil).toBeGreaterThan(T0 + 5101);
      expect(views[3]?.result.parkedUntil).toBeUndefined();
    });

    it('random sequences spread over three scopes: identical outputs and states', async () => {
      await fc.assert(
        fc.asyncProperty(
          randomConfigArb,
          fc.array(randomLaneOpArb, { minLength: 1, maxLength: 60 }),
          fc.array(fc.nat(2), { minLength: 1, maxLength: 20 }),
          async (cfg, ops, picks) => {
            const scenario = randomScenario(ops, 6, cfg.minuteMs);
            const { memory, redis } = await compareScoped(cfg, (d) => scenario(spreadOverScopes(d, [undefined, 'a', 'b'], picks)));
            for (const step of memory) expect(invariantProblems(step), JSON.stringify(step)).toEqual([]);
            expectSame(memory, redis);
          },
        ),
        { numRuns: Number(process.env.CONFORMANCE_RUNS ?? 60), interruptAfterTimeLimit: Number(process.env.CONFORMANCE_MS ?? 15_000) },
      );
    }, Number(process.env.CONFORMANCE_MS ?? 15_000) + 20_000);
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
