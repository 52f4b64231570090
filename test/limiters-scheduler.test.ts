/**
 * The real RateLimitScheduler against real server-side limiters over HTTP on
 * 127.0.0.1, with the limit NOT told (only the window length): express 5 +
 * express-rate-limit 8 (draft-6, draft-7, draft-8, `legacyHeaders` alone, no
 * headers) and fastify 5 + @fastify/rate-limit 11 (default,
 * `enableDraftSpec`). Limit 8 per 1 s (both limiters keep first-hit windows and
 * speak whole seconds), 32 requests.
 *
 * On the real clock (the limiters read `Date.now()`); every assertion is about
 * counts: all requests complete, the limiter's own log shows no 429 to a
 * request that arrived after the first window, and the engine learned the limit.
 */
import { Pool } from 'undici';
import { describe, expect, it } from 'vitest';
import { LIMITED_PATH, startLimiterServer, type LimiterKind } from '../bench/lib/limiter-servers.js';
import { RateLimitScheduler, type TaskContext } from '../src/engine/scheduler.js';

const LIMIT = 8;
const WINDOW_MS = 1000;
const N = 32;

interface Run {
  /** Statuses the limiter sent, with arrival times relative to the first request. */
  hits: Array<{ t: number; status: number }>;
  fulfilled: number;
  learnedLimit: number | undefined;
}

async function run(kind: LimiterKind): Promise<Run> {
  const server = await startLimiterServer({ kind, limit: LIMIT, windowMs: WINDOW_MS });
  const pool = new Pool(server.origin, { connections: 16 });
  const scheduler = new RateLimitScheduler({ windows: { minuteMs: WINDOW_MS } });
  try {
      const task = async (ctx: TaskContext) => {
      const res = await pool.request({ path: LIMITED_PATH, method: 'POST', signal: ctx.signal });
      await res.body.dump();
      return { statusCode: res.statusCode, headers: res.headers };
    };
    const outcomes = await Promise.allSettled(Array.from({ length: N }, () => scheduler.schedule(task)));
    const first = server.hits[0]?.at ?? 0;
    return {
      hits: server.hits.map((h) => ({ t: h.at - first, status: h.status })),
      fulfilled: outcomes.filter((o) => o.status === 'fulfilled' && o.value.statusCode === 200).length,
      learnedLimit: scheduler.stats().budget?.minute.limit,
    };
  } finally {
    await scheduler.close({ drain: false });
    await pool.close();
    await server.close();
  }
}

// Concurrently: each test has its own server (its own windows), pool and scheduler; the runs are I/O-bound.
describe.concurrent('RateLimitScheduler against real limiters, limit not told', () => {
  it.each<LimiterKind>(['express-draft-6', 'express-draft-7', 'express-draft-8', 'express-legacy', 'fastify-default', 'fastify-draft'])(
    `%s: all ${N} requests complete, no 429 after the first window, the limit is learned`,
    async (kind) => {
      const r = await run(kind);
      expect(r.fulfilled).toBe(N);
      expect(r.hits.filter((h) => h.status === 200)).toHaveLength(N);
      expect(r.hits.filter((h) => h.status === 429 && h.t >= WINDOW_MS)).toEqual([]);
      expect(r.learnedLimit).toBe(LIMIT);
    },
  );

  /**
   * No headers at all: the header-less fallback (issue 11, item 7, engine work
   * in progress elsewhere) still draws 1–3 late 429s in 32 requests here
   * (measured on this branch). What this test holds it to for now: everything
   * completes, and no burst is refused whole after the first window (fewer
   * late 429s than one window's limit). The bench scenario `limiters` reports
   * the rate per 1,000 against the target (≤ 30).
   */
  it('express-rate-limit with no headers at all (429 without Retry-After): all requests complete, no burst refused whole', async () => {
    const r = await run('express-none');
    expect(r.fulfilled).toBe(N);
    expect(r.hits.filter((h) => h.status === 200)).toHaveLength(N);
    const late429 = r.hits.filter((h) => h.status === 429 && h.t >= WINDOW_MS);
    expect(late429.length).toBeLessThan(LIMIT);
  });
});
