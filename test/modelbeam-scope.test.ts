/**
 * Per-endpoint limits over real HTTP: the fake server counts txt2img and
 * txt2embedding on counters of their own (different limits), and polls on the
 * account's. The client mixes both endpoints and their polls; no endpoint's
 * numbers may overwrite another's: each scope's snapshot shows its own
 * endpoint's limit, nothing is refused after the first window, and each
 * endpoint is used at its own rate.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ModelBeamClient } from '../src/modelbeam/index.js';
import { ManualClock, startFakeModelBeam, type FakeModelBeamServer } from '../src/testing/index.js';
import { advanceWhileQuiet, closeAll, img, json, stubApi } from './modelbeam-harness.js';

const W = 2000;
const LIMITS = { txt2img: 6, txt2embedding: 15, account: 60 };
const JOBS = { txt2img: 60, txt2embedding: 150 };

/** The number of the server's fixed windows (phase 0) that `times` fall in, first to last. */
function windowsSpanned(times: number[]): number {
  return Math.floor(Math.max(...times) / W) - Math.floor(Math.min(...times) / W) + 1;
}

async function run(limitScope: 'auto' | 'endpoint' | 'account'): Promise<{
  server: FakeModelBeamServer;
  client: ModelBeamClient;
  refusedAt: number[];
  start: number;
}> {
  const clock = new ManualClock(Date.UTC(2026, 0, 5, 10, 0, 0)); // a multiple of W: windows start there
  const server = await startFakeModelBeam({
    clock,
    limits: { minute: { limit: LIMITS.account, windowMs: W } },
    routeLimits: { txt2img: { minute: { limit: LIMITS.txt2img } }, txt2embedding: { minute: { limit: LIMITS.txt2embedding } } },
    jobs: { pendingMs: 100, processingMs: 300 },
  });
  const client = new ModelBeamClient({ ...server.clientOptions(), clock, limitScope, polling: { minIntervalMs: 50, initialEstimateMs: 400 } });
  const refusedAt: number[] = [];
  client.scheduler.on('rateLimited', () => refusedAt.push(clock.now()));
  const start = clock.now();
  let settled = false;
  const all = Promise.all([
    ...Array.from({ length: JOBS.txt2img }, (_, i) => client.generate('txt2img', img({ prompt: `img ${i}` }))),
    ...Array.from({ length: JOBS.txt2embedding }, (_, i) => client.generate('txt2embedding', { input: `text ${i}`, model: 'Bge_M3_FP16' })),
  ]).finally(() => (settled = true));
  await advanceWhileQuiet(clock, client, () => settled, 30 * W);
  await all;
  return { server, client, refusedAt, start };
}

describe('per-endpoint limits over HTTP: txt2img, txt2embedding and polls', () => {
  afterEach(closeAll);

  it.each(['endpoint', 'auto'] as const)("limitScope '%s': each endpoint on its own budget, at its own rate, no 429 after the first window", async (limitScope) => {
    const { server, client, refusedAt, start } = await run(limitScope);
    try {
      const scopes = client.scheduler.stats().scopes;
      // Each scope's snapshot matches its own endpoint's counter: no endpoint's numbers overwrote another's.
      expect(scopes['txt2img']?.minute.limit).toBe(LIMITS.txt2img);
      expect(scopes['txt2embedding']?.minute.limit).toBe(LIMITS.txt2embedding);
      expect(scopes['request-status']?.minute.limit).toBe(LIMITS.account);
      const img = server.routeAcceptedLog('txt2img');
      const emb = server.routeAcceptedLog('txt2embedding');
      expect(img).toHaveLength(JOBS.txt2img);
      expect(emb).toHaveLength(JOBS.txt2embedding);
      console.log(
        `[limitScope ${limitScope}] txt2img ${img.length} in ${windowsSpanned(img)} windows, txt2embedding ${emb.length} in ${windowsSpanned(emb)} windows, ` +
          `429s ${refusedAt.length} (${refusedAt.map((t) => t - start).join(', ')} ms), polls ${server.stats().polls}`,
      );
      // Never over a counter's limit, and each endpoint at its own rate: its jobs in the windows they need (+1 for the phase).
      expect(server.routeMaxInAnyWindow('txt2img')).toBe(LIMITS.txt2img);
      expect(server.routeMaxInAnyWindow('txt2embedding')).toBe(LIMITS.txt2embedding);
      expect(windowsSpanned(img)).toBeLessThanOrEqual(JOBS.txt2img / LIMITS.txt2img + 1);
      expect(windowsSpanned(emb)).toBeLessThanOrEqual(JOBS.txt2embedding / LIMITS.txt2embedding + 1);
      // No 429 after the first window, nor in it: every scope starts one request at a time, and with 'auto' the
      // routes' first calls go ahead, so the split comes within the first round trips, and a route's first request
      // on its own budget waits for its requests still in flight on the shared one.
      expect(refusedAt.filter((t) => t >= start + W)).toEqual([]);
      expect(refusedAt).toEqual([]);
    } finally {
      await client.close();
      await server.close();
    }
  }, 60_000);

  it("limitScope 'account' against the same server: one budget, the endpoints' numbers overwrite each other and draw 429s", async () => {
    const { server, client, refusedAt, start } = await run('account');
    try {
      const scopes = client.scheduler.stats().scopes;
      expect(Object.keys(scopes)).toEqual(['default']);
      const late = refusedAt.filter((t) => t >= start + W);
      console.log(`[limitScope account] 429s ${refusedAt.length}, after the first window ${late.length}`);
      // What the scopes above prevent: a txt2embedding answer's Remaining lets txt2img requests go that its own counter refuses.
      expect(late.length).toBeGreaterThan(0);
    } finally {
      await client.close();
      await server.close();
    }
  }, 60_000);

  it("'auto', at the split: a route's first request on its own budget waits for its requests still in flight on the shared one", async () => {
    // Counters of their own: txt2img 5, txt2embedding 20 (no resets within the test). The second txt2img request
    // reaches the counter late (held 150 ms before it is counted, like a request on a slow new connection).
    const used = { txt2img: 0, txt2embedding: 0 };
    const limits = { txt2img: 5, txt2embedding: 20 };
    const log: string[] = [];
    let n = 0;
    const stub = await stubApi((req, res) => {
      const route = req.url.endsWith('/txt2img') ? 'txt2img' : 'txt2embedding';
      const id = `${route}#${route === 'txt2img' ? ++n : 1}`;
      const answer = (): void => {
        const refused = used[route] >= limits[route];
        if (!refused) used[route]++;
        log.push(`${refused ? 'refused' : 'counted'} ${id}`);
        const headers = { 'x-ratelimit-limit': String(limits[route]), 'x-ratelimit-remaining': String(limits[route] - used[route]) };
        if (refused) json(res, 429, { message: 'Too Many Attempts.' }, { ...headers, 'retry-after': '60' });
        else json(res, 200, { data: { request_id: id } }, headers);
      };
      if (id === 'txt2img#2') setTimeout(answer, 150);
      else answer();
    });
    const client = new ModelBeamClient({ apiKey: 'k', baseUrl: stub.baseUrl, limitScope: 'auto' });
    try {
      const calls = [
        ...Array.from({ length: 5 }, (_, i) => client.submit('txt2img', img({ prompt: `img ${i}` }))),
        client.submit('txt2embedding', { input: 'x', model: 'Bge_M3_FP16' }),
      ];
      await Promise.all(calls);
      // The shared budget sent txt2img #1 (first of its route), then #2 and #3 beside txt2embedding, whose answer
      // split the routes; txt2img #4 went on txt2img's own budget only after #2 was counted and answered.
      expect(log.indexOf('counted txt2img#4')).toBeGreaterThan(log.indexOf('counted txt2img#2'));
      expect(log.filter((l) => l.startsWith('refused'))).toEqual([]);
      expect(client.scheduler.stats().scopes['txt2img']?.minute.remaining).toBe(0);
    } finally {
      await client.close();
    }
  });
});
