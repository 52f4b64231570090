/**
 * `RedisStore`'s options (types with TSDoc), their defaults in one object,
 * eager validation, its events, and a tiny typed emitter.
 */
import type { Redis } from 'ioredis';
import { TypedEmitter } from '../engine/events.js';
import type { Logger } from '../internal/logger.js';
import { bool, checkLogger, invalid, keyList, num, oneOf, options as rootOptions, type Keys } from '../internal/validate.js';

export interface RedisStoreOptions {
  /**
   * An ioredis client, or a `redis://` / `rediss://` URL. A client you pass
   * stays yours (the store never closes it, and adds its commands to it); a
   * URL gets a connection of the store's own, closed by `close()`.
   * @default 'redis://127.0.0.1:6379'
   */
  redis?: Redis | string;
  /**
   * Prefix of every key. The shared budget of one account is the hash
   * `${keyPrefix}{${account}}:budget` (a hash tag, so a cluster puts it in one slot).
   * @default 'mbs:'
   */
  keyPrefix?: string;
  /**
   * The account (API key owner) whose quota the processes share.
   * @default 'default'
   */
  account?: string;
  /**
   * What to do when Redis cannot be reached mid-run. `'pause'` grants
   * nothing until it is back (the engine reports `blockedBy: 'store'`).
   * `'local-share'` goes on with `localShare` of the last known budget.
   * @default 'pause'
   */
  onUnavailable?: 'pause' | 'local-share';
  /**
   * With `'local-share'`: the share of the last known available budget (and
   * of the limits) this process may use alone. Safe only while the shares of
   * all processes add up to at most 1.
   * @default 0.25
   */
  localShare?: number;
  /**
   * A command without an answer after this long counts as "Redis unreachable".
   * Not scaled by the scheduler's `timeScale` (a round trip to Redis costs the
   * same in compressed time); nor is `connectTimeoutMs`.
   * @default 2000
   */
  commandTimeoutMs?: number;
  /**
   * How long `init()` waits for the first connection.
   * @default 5000
   */
  connectTimeoutMs?: number;
  /**
   * `view()` answers from the view that came back with the last
   * reserve/settle when it is at most this old (engine clock), instead of a
   * round trip. 0 always asks Redis. Not scaled by the scheduler's
   * `timeScale`: it bounds Redis round trips, whose cost does not compress
   * (every reserve/settle refreshes the view anyway).
   * @default 1000
   */
  viewCacheMs?: number;
  /**
   * A pino-compatible logger.
   * @default silent
   */
  logger?: Logger;
  /**
   * While this process is blocked on the shared budget, ask Redis again this
   * often: other processes' answers raise the budget without telling it.
   * 0 turns polling off (only the budget's own next raise wakes it).
   * @default minuteMs / 100, at least 5 ms (follows the scheduler's windows, so its `timeScale`)
   */
  pollMs?: number;
  /**
   * Test only: the scripts use the engine's `now` instead of Redis `TIME`, so
   * a test can drive time. Never set it when several processes share a store.
   * @default false
   */
  clockOverride?: boolean;
}

/** Events of a `RedisStore` (one payload object each). */
export interface RedisStoreEvents {
  /** Redis stopped answering; `mode` says what the store does meanwhile. */
  unavailable: { error: unknown; mode: 'pause' | 'local-share' };
  /** Redis answers again; queued settles were replayed and local use was reported. */
  recovered: { replayed: number; absorbed: number };
  /** The shared state had been lost (FLUSHALL, a restart without persistence) and was re-created. */
  rebuilt: { adopted: number };
}

/** Counters for tests and benchmarks. */
export interface RedisStoreStats {
  available: boolean;
  /** Operations on the shared budget, by kind (several may share one round trip). */
  calls: Record<'init' | 'reserve' | 'settle' | 'view' | 'absorb', number>;
  /** Round trips to Redis: reads and compare-and-set writes. */
  roundTrips: number;
  /** Writes refused because another process wrote first (each is run again on the newer state). */
  conflicts: number;
  /** Settles waiting for Redis to come back. */
  pendingSettles: number;
  /** Granted units of this process not settled yet. */
  leasesInFlight: number;
  /** Expired leases this process reclaimed (units of processes that died). */
  reclaimed: number;
}

const DEFAULTS = {
  redis: 'redis://127.0.0.1:6379',
  keyPrefix: 'mbs:',
  account: 'default',
  onUnavailable: 'pause' as 'pause' | 'local-share',
  localShare: 0.25,
  commandTimeoutMs: 2000, // ms
  connectTimeoutMs: 5000, // ms
  viewCacheMs: 1000, // ms, engine clock
  clockOverride: false,
};

const OPTION_KEYS = keyList({
  redis: true,
  keyPrefix: true,
  account: true,
  onUnavailable: true,
  localShare: true,
  commandTimeoutMs: true,
  connectTimeoutMs: true,
  viewCacheMs: true,
  logger: true,
  pollMs: true,
  clockOverride: true,
} satisfies Keys<RedisStoreOptions>);

/** Names other Redis libraries use for the connection. */
const REDIS_HINTS = Object.fromEntries(
  ['url', 'host', 'port', 'client', 'connection', 'password'].map((k) => [k, `the connection goes in \`redis\` (a redis:// URL or an ioredis client): \`new RedisStore({ redis: 'redis://127.0.0.1:6379' })\``]),
);

/** Options after defaults and validation. */
export interface ResolvedRedisStoreOptions {
  redis: Redis | string;
  keyPrefix: string;
  account: string;
  onUnavailable: 'pause' | 'local-share';
  localShare: number;
  commandTimeoutMs: number;
  connectTimeoutMs: number;
  viewCacheMs: number;
  /** undefined: derive from the window length (the scheduler's, so it follows `timeScale`). */
  pollMs: number | undefined;
  clockOverride: boolean;
  logger: Logger | undefined;
}

/** Validates eagerly: a typo or a value out of range throws a TypeError naming it. */
export function resolveOptions(options: RedisStoreOptions): ResolvedRedisStoreOptions {
  const o = rootOptions(options, OPTION_KEYS, REDIS_HINTS);
  const redis = (o.redis ?? DEFAULTS.redis) as Redis | string;
  if (typeof redis === 'string') checkRedisUrl(redis);
  else if (!isRedisClient(redis)) invalid('redis', 'an ioredis client or a redis:// URL', redis);
  const keyPrefix = o.keyPrefix ?? DEFAULTS.keyPrefix;
  if (typeof keyPrefix !== 'string') invalid('keyPrefix', 'a string', keyPrefix);
  const account = o.account ?? DEFAULTS.account;
  if (typeof account !== 'string' || account === '' || /[{}]/.test(account)) {
    invalid('account', 'a non-empty string without `{` or `}`', account);
  }
  const mode = oneOf('onUnavailable', o.onUnavailable, DEFAULTS.onUnavailable, ['pause', 'local-share']);
  const localShare = num('localShare', o.localShare, DEFAULTS.localShare, { min: 0, exclusiveMin: true, max: 1 });
  if (o.localShare !== undefined && mode !== 'local-share') {
    throw new TypeError("`localShare` only applies with `onUnavailable: 'local-share'`; remove it or set that mode");
  }
  const gt0 = { min: 0, exclusiveMin: true };
  return {
    redis,
    keyPrefix,
    account,
    onUnavailable: mode,
    localShare,
    commandTimeoutMs: num('commandTimeoutMs', o.commandTimeoutMs, DEFAULTS.commandTimeoutMs, gt0),
    connectTimeoutMs: num('connectTimeoutMs', o.connectTimeoutMs, DEFAULTS.connectTimeoutMs, gt0),
    viewCacheMs: num('viewCacheMs', o.viewCacheMs, DEFAULTS.viewCacheMs),
    clockOverride: bool('clockOverride', o.clockOverride, DEFAULTS.clockOverride),
    pollMs: o.pollMs === undefined ? undefined : num('pollMs', o.pollMs, 0),
    logger: checkLogger<Logger | undefined>(o.logger, undefined),
  };
}

/**
 * A string for `redis` must be what ioredis reads as a server: a `redis://` or
 * `rediss://` URL, or the path of a Unix socket. Checked here, not at the first
 * command, so that a typo fails at construction. The message never shows the
 * value itself: a URL may carry a password.
 */
function checkRedisUrl(value: string): void {
  if (value.startsWith('/')) return;
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (url && (url.protocol === 'redis:' || url.protocol === 'rediss:') && url.hostname !== '') return;
  const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(value)?.[0];
  throw new TypeError(
    `Expected \`redis\` to be an ioredis client, a redis:// or rediss:// URL with a host, or a socket path; ` +
      `got a string of ${value.length} characters${scheme ? ` with the scheme \`${scheme}\`` : ' with no URL scheme'} (not shown: it may hold a password)`,
  );
}

/**
 * The store's typed `node:events` emitter (the scheduler's {@link TypedEmitter}):
 * listeners observe; one that throws is logged, never propagated.
 */
export class StoreEmitter<Events extends object> extends TypedEmitter<Events> {}

/** The URL without user name or password, for messages. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return '(unparsable Redis URL)';
  }
}

export function clientUrl(redis: Redis): string {
  const o = redis.options;
  if (o.path) return `redis+unix://${o.path}`;
  return `redis://${o.host ?? '127.0.0.1'}:${o.port ?? 6379}/${o.db ?? 0}`;
}

function isRedisClient(value: unknown): value is Redis {
  return typeof value === 'object' && value !== null && typeof (value as Redis).defineCommand === 'function' && 'status' in value;
}

