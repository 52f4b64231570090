/**
 * Real server-side rate limiters on loopback, as many APIs run them in
 * production: express 5 + express-rate-limit 8 (every `standardHeaders` draft,
 * `legacyHeaders` alone, and no headers at all) and fastify 5 +
 * @fastify/rate-limit 11 (default headers and `enableDraftSpec`). Used by the
 * integration tests (test/limiters-*.test.ts) and by the `limiters` bench
 * scenario (through `limiter-child.ts`).
 *
 * Both limiters keep first-hit windows per client (one client here: every
 * request comes from 127.0.0.1), count refused requests too, and speak whole
 * seconds only (resets and `Retry-After` rounded up).
 *
 * Every request that reaches the limiter is logged (`hits`) with its arrival
 * time and final status, so a caller can replay the server's own windows.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import { rateLimit } from 'express-rate-limit';
import Fastify from 'fastify';
import fastifyRateLimit from '@fastify/rate-limit';

/** The seven configurations of issue 11, item 3. */
export const LIMITER_KINDS = [
  'express-draft-6',
  'express-draft-7',
  'express-draft-8',
  'express-legacy',
  'express-none',
  'fastify-default',
  'fastify-draft',
] as const;

export type LimiterKind = (typeof LIMITER_KINDS)[number];

/** What each configuration is, in words (for tables and test names). */
export const LIMITER_TITLES: Readonly<Record<LimiterKind, string>> = {
  'express-draft-6': "express-rate-limit `standardHeaders: 'draft-6'`, `legacyHeaders: false`",
  'express-draft-7': "express-rate-limit `standardHeaders: 'draft-7'`, `legacyHeaders: false`",
  'express-draft-8': "express-rate-limit `standardHeaders: 'draft-8'`, `legacyHeaders: false`",
  'express-legacy': 'express-rate-limit `standardHeaders: false`, `legacyHeaders: true`',
  'express-none': 'express-rate-limit `standardHeaders: false`, `legacyHeaders: false` (no headers, 429 without Retry-After)',
  'fastify-default': '@fastify/rate-limit defaults (`x-ratelimit-*`, `retry-after`)',
  'fastify-draft': '@fastify/rate-limit `enableDraftSpec: true` (`ratelimit-*`, `retry-after`)',
};

/** The rate-limited route. Any method. */
export const LIMITED_PATH = '/api/v1/work';

export interface LimiterServerOptions {
  kind: LimiterKind;
  /** Requests per window. */
  limit: number;
  /** Window length in ms. Use whole seconds: both limiters report whole seconds. */
  windowMs: number;
}

/** One request as the limiter saw it. */
export interface LimiterHit {
  /** Arrival time, epoch ms (the server's clock). */
  at: number;
  /** Status sent: 200 or 429. */
  status: number;
}

export interface LimiterServer {
  readonly kind: LimiterKind;
  /** `http://127.0.0.1:<port>` */
  readonly origin: string;
  /** `origin + LIMITED_PATH` */
  readonly url: string;
  /** Every request that reached the limiter, in arrival order. */
  readonly hits: LimiterHit[];
  close(): Promise<void>;
}

/** Starts one configuration on 127.0.0.1 (a free port). */
export async function startLimiterServer(options: LimiterServerOptions): Promise<LimiterServer> {
  return options.kind.startsWith('express') ? startExpress(options) : startFastify(options);
}

/** Notes one request's arrival in `hits`; its status is filled in when the answer is sent. */
function newHit(hits: LimiterHit[]): LimiterHit {
  const hit: LimiterHit = { at: Date.now(), status: 0 };
  hits.push(hit);
  return hit;
}

/** The `LimiterServer` for a server listening on 127.0.0.1. */
function served(kind: LimiterKind, server: Server, hits: LimiterHit[], close: () => Promise<void>): LimiterServer {
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  return { kind, origin, url: origin + LIMITED_PATH, hits, close };
}

function expressHeaderOptions(kind: LimiterKind): { standardHeaders: false | 'draft-6' | 'draft-7' | 'draft-8'; legacyHeaders: boolean } {
  switch (kind) {
    case 'express-draft-6':
      return { standardHeaders: 'draft-6', legacyHeaders: false };
    case 'express-draft-7':
      return { standardHeaders: 'draft-7', legacyHeaders: false };
    case 'express-draft-8':
      return { standardHeaders: 'draft-8', legacyHeaders: false };
    case 'express-legacy':
      return { standardHeaders: false, legacyHeaders: true };
    default:
      return { standardHeaders: false, legacyHeaders: false };
  }
}

async function startExpress(options: LimiterServerOptions): Promise<LimiterServer> {
  const hits: LimiterHit[] = [];
  const app = express();
  app.use(LIMITED_PATH, (req, res, next) => {
    const hit = newHit(hits);
    res.on('finish', () => {
      hit.status = res.statusCode;
    });
    next();
  });
  app.use(
    LIMITED_PATH,
    rateLimit({
      windowMs: options.windowMs,
      limit: options.limit,
      ...expressHeaderOptions(options.kind),
      // One client on loopback; the default IP key is what we want, without the proxy checks' warnings.
      validate: false,
    }),
  );
  app.all(LIMITED_PATH, (_req, res) => {
    res.json({ ok: true });
  });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(0, '127.0.0.1', (error?: Error) => (error ? reject(error) : resolve(s)));
  });
  server.keepAliveTimeout = 60_000;
  return served(
    options.kind,
    server,
    hits,
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
}

async function startFastify(options: LimiterServerOptions): Promise<LimiterServer> {
  const hits: LimiterHit[] = [];
  const app = Fastify({ logger: false, keepAliveTimeout: 60_000 });
  app.addHook('onRequest', async (req) => {
    if (req.url.startsWith(LIMITED_PATH)) {
      (req as unknown as { limiterHit: LimiterHit }).limiterHit = newHit(hits);
    }
  });
  app.addHook('onResponse', async (req, reply) => {
    const hit = (req as unknown as { limiterHit?: LimiterHit }).limiterHit;
    if (hit) hit.status = reply.statusCode;
  });
  await app.register(fastifyRateLimit, {
    max: options.limit,
    timeWindow: options.windowMs,
    enableDraftSpec: options.kind === 'fastify-draft',
  });
  app.all(LIMITED_PATH, async () => ({ ok: true }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  return served(options.kind, app.server, hits, async () => {
    app.server.closeAllConnections();
    await app.close();
  });
}
