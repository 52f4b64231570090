/**
 * The rate-limit headers real server-side limiters send, read live over HTTP
 * on 127.0.0.1: express 5 + express-rate-limit 8 (draft-6, draft-7, draft-8,
 * `legacyHeaders` alone, no headers) and fastify 5 + @fastify/rate-limit 11
 * (default, `enableDraftSpec`). Each server gets limit 3 per 2 s and four
 * requests: three accepted, one refused. The exact strings are checked (they
 * are the rows of the dialect table in test/headers.test.ts), then the parser
 * must turn the real response into the expected snapshot.
 *
 * Runs on the real clock (the limiters read `Date.now()`): resets are whole
 * seconds rounded up, so every assertion allows the one-second step a window
 * boundary can fall into.
 */
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LIMITED_PATH, LIMITER_KINDS, startLimiterServer, type LimiterKind, type LimiterServer } from '../bench/lib/limiter-servers.js';
import { parseRateLimitHeaders, type RateLimitSnapshot } from '../src/headers/index.js';

const LIMIT = 3;
const WINDOW_S = 2;

interface Captured {
  status: number;
  /** The rate-limit and Retry-After headers, lower-case names. */
  headers: Record<string, string>;
  snapshot: RateLimitSnapshot;
  /** Epoch ms when the response arrived. */
  at: number;
}

/** Four requests in a row against a fresh server of `kind`. */
async function capture(kind: LimiterKind): Promise<{ server: LimiterServer; replies: Captured[] }> {
  const server = await startLimiterServer({ kind, limit: LIMIT, windowMs: WINDOW_S * 1000 });
  const pool = new Pool(server.origin, { connections: 1 });
  const replies: Captured[] = [];
  try {
    for (let i = 0; i < LIMIT + 1; i++) {
      const res = await pool.request({ path: LIMITED_PATH, method: 'POST' });
      const at = Date.now();
      await res.body.dump();
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(res.headers)) {
        if (/^(x-)?ratelimit|^retry-after/i.test(name) && typeof value === 'string') headers[name.toLowerCase()] = value;
      }
      replies.push({ status: res.statusCode, headers, snapshot: parseRateLimitHeaders(res.headers, { now: at }), at });
    }
  } finally {
    await pool.close();
    await server.close();
  }
  return { server, replies };
}

const results = new Map<LimiterKind, { server: LimiterServer; replies: Captured[] }>();

beforeAll(async () => {
  // Concurrently: each server has its own window and its own client.
  await Promise.all(LIMITER_KINDS.map(async (kind) => results.set(kind, await capture(kind))));
});

afterAll(() => results.clear());

function of(kind: LimiterKind): Captured[] {
  const r = results.get(kind);
  if (!r) throw new Error(`no capture for ${kind}`);
  return r.replies;
}

/** A whole-second reset/Retry-After as the limiters send it: the window's rest, rounded up (1 or 2 here). */
const WHOLE_SECONDS = /^[12]$/;

describe('real limiters: every request reached the limiter, three accepted, the fourth refused', () => {
  it.each(LIMITER_KINDS)('%s', (kind) => {
    expect(of(kind).map((r) => r.status)).toEqual([200, 200, 200, 429]);
    expect(results.get(kind)?.server.hits.map((h) => h.status)).toEqual([200, 200, 200, 429]);
  });
});

describe('the exact header strings, as in the table of test/headers.test.ts', () => {
  it.each<[LimiterKind, (remaining: number, reset: string) => Record<string, string>]>([
    ['express-draft-6', (r, t) => ({ 'ratelimit-limit': '3', 'ratelimit-policy': '3;w=2', 'ratelimit-remaining': String(r), 'ratelimit-reset': t })],
    ['express-draft-7', (r, t) => ({ ratelimit: `limit=3, remaining=${r}, reset=${t}`, 'ratelimit-policy': '3;w=2' })],
    ['express-draft-8', (r, t) => ({ ratelimit: `"3-in-2sec"; r=${r}; t=${t}` })],
    ['express-legacy', (r, t) => ({ 'x-ratelimit-limit': '3', 'x-ratelimit-remaining': String(r), 'x-ratelimit-reset': t })],
    ['express-none', () => ({})],
    ['fastify-default', (r, t) => ({ 'x-ratelimit-limit': '3', 'x-ratelimit-remaining': String(r), 'x-ratelimit-reset': t })],
    ['fastify-draft', (r, t) => ({ 'ratelimit-limit': '3', 'ratelimit-remaining': String(r), 'ratelimit-reset': t })],
  ])('%s', (kind, expected) => {
    of(kind).forEach((reply, i) => {
      const remaining = Math.max(0, LIMIT - 1 - i);
      const reset = reply.headers['x-ratelimit-reset'] ?? reply.headers['ratelimit-reset'] ?? /(?:\breset=|;\s*t=)(\d+)/.exec(reply.headers.ratelimit ?? '')?.[1];
      if (kind === 'express-legacy') {
        // Epoch seconds: the end of the first-hit window, rounded up.
        expect(Number(reset) * 1000 - reply.at).toBeGreaterThan(0);
        expect(Number(reset) * 1000 - reply.at).toBeLessThanOrEqual(WINDOW_S * 1000 + 1000);
      } else if (kind !== 'express-none') {
        expect(reset).toMatch(WHOLE_SECONDS);
      }
      const { 'retry-after': retryAfter, 'ratelimit-policy': policy, ...rest } = reply.headers;
      const want = expected(remaining, reset ?? '');
      const { 'ratelimit-policy': wantPolicy, ...wantRest } = want;
      expect(rest).toEqual(wantRest);
      if (kind === 'express-draft-8') expect(policy).toMatch(/^"3-in-2sec"; q=3; w=2; pk=:[A-Za-z0-9+/=]+:$/);
      else expect(policy).toBe(wantPolicy);
      // Retry-After only on the 429, in whole seconds; never when headers are off.
      if (i < LIMIT || kind === 'express-none') expect(retryAfter).toBeUndefined();
      else expect(retryAfter).toMatch(WHOLE_SECONDS);
    });
  });
});

describe('the parser turns each real response into the expected snapshot', () => {
  /** Which fields each dialect carries: the window length only where a policy gives it. */
  const carries: Record<LimiterKind, { counts: boolean; windowMs: boolean }> = {
    'express-draft-6': { counts: true, windowMs: true },
    'express-draft-7': { counts: true, windowMs: true },
    'express-draft-8': { counts: true, windowMs: true },
    'express-legacy': { counts: true, windowMs: false },
    'express-none': { counts: false, windowMs: false },
    'fastify-default': { counts: true, windowMs: false },
    'fastify-draft': { counts: true, windowMs: false },
  };

  it.each(LIMITER_KINDS)('%s', (kind) => {
    const c = carries[kind];
    of(kind).forEach((reply, i) => {
      const s = reply.snapshot;
      expect(s.daily).toEqual({});
      if (!c.counts) {
        expect(s).toEqual({ minute: {}, daily: {}, present: false });
        return;
      }
      expect(s.present).toBe(true);
      expect(s.minute.limit).toBe(LIMIT);
      expect(s.minute.remaining).toBe(Math.max(0, LIMIT - 1 - i));
      expect(s.minute.windowMs).toBe(c.windowMs ? WINDOW_S * 1000 : undefined);
      // The reset: seconds to go, or (legacy express) an epoch read by magnitude; never more than a window and the rounding.
      expect(s.minute.resetInMs).toBeGreaterThan(0);
      expect(s.minute.resetInMs).toBeLessThanOrEqual(WINDOW_S * 1000 + 1000);
      if (i === LIMIT) {
        expect(s.retryAfterMs).toBeGreaterThanOrEqual(1000);
        expect(s.retryAfterMs).toBeLessThanOrEqual(WINDOW_S * 1000);
      } else {
        expect(s.retryAfterMs).toBeUndefined();
      }
    });
  });
});
