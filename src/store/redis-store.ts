/**
 * `RedisStore`: one account's budgets, reservations, 429 gate and daily park,
 * shared by every process (and host) that points at the same Redis, the same
 * key prefix and the same account.
 *
 * - The budget rules are `BudgetState`'s, the code `MemoryStore` runs: Redis
 *   holds the state as one JSON document (`shared-budget.ts`), and a process
 *   applies its operations to it in process, then writes it back with a
 *   compare-and-set (`lua/budget.lua`, I/O only). A write refused because
 *   another process wrote first is run again on the newer document, which
 *   the refusal carries: one round trip per batch of operations when nobody
 *   else wrote, two when someone did.
 * - Operations of one process run one batch at a time, in order: answers that
 *   arrive together share one write.
 * - Redis `TIME` is the one clock: every reply carries the store's time, and
 *   the state's clock never runs back.
 * - Every granted unit holds a lease that expires after `leaseMs`: the units
 *   of a process that died come back (as answers of unknown outcome).
 * - Redis unreachable mid-run: `onUnavailable: 'pause'` (the default) grants
 *   nothing (`blockedBy: 'store'`) and queues settles to replay;
 *   `'local-share'` goes on alone with `localShare` of the last known budget.
 *   Either way it reconnects by itself and emits `unavailable`/`recovered`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Redis } from './ioredis.js';
import { RedisSpendLedger } from './spend-ledger.js';
import { StoreUnavailableError } from '../errors/store-unavailable-error.js';
import type { RateLimitSnapshot } from '../headers/types.js';
import { sleep, systemClock } from '../internal/clock.js';
import { silentLogger, type Logger } from '../internal/logger.js';
import { BudgetState } from './budget-state.js';
import { budgetScript, parseCasReply, type CasReply } from './redis-scripts.js';
import { DEFAULT_SCOPE, scopeConfig, scopeOf } from './scope.js';
import {
  StoreEmitter,
  clientUrl,
  resolveOptions,
  safeUrl,
  type RedisStoreEvents,
  type RedisStoreOptions,
  type RedisStoreStats,
} from './redis-options.js';
import { SharedBudget, createDoc, parseDoc, type SharedDoc } from './shared-budget.js';
import type { BudgetConfig, BudgetView, Outcome, ReserveResult, SettleResult, Store, Ticket } from './types.js';

export type { RedisStoreEvents, RedisStoreOptions, RedisStoreStats } from './redis-options.js';

/**
 * The oldest major accepted. The script calls TIME, HMGET, HSET with several fields (4.0) and PEXPIRE,
 * and writes after TIME need effect replication (on by default since 5.0); the suites run on Redis 7.0.
 * Older majors are refused at start rather than trusted untested.
 */
const MIN_REDIS_MAJOR = 6;
/** Blocked reserves while Redis is away ask again after 100, 200, 400 … ms, at most this. */
const MAX_OFFLINE_RETRY_MS = 2000;
/** Settles kept for replay while Redis is away; beyond this the oldest go (their leases expire instead). */
const MAX_PENDING_SETTLES = 100_000;
/** Replayed settles per batch when Redis is back. */
const REPLAY_BATCH = 200;
/** Operations applied in one write at most. */
const MAX_BATCH = 500;
/**
 * After this many writes of one batch were overtaken, each next attempt first
 * waits a random time up to the last attempt's length; from `CONFLICTS_BEFORE_DOUBLING`
 * on, doubled per further conflict (up to 2^6): writers that keep colliding spread out.
 */
const CONFLICTS_BEFORE_PAUSE = 2;
const CONFLICTS_BEFORE_DOUBLING = 5;
/**
 * A writer overtaken this many times in a row asks for the write lock: while
 * it holds it, other writers' writes are refused, so its next write lands
 * (no writer starves, however long the state takes to compute).
 */
const CONFLICTS_BEFORE_LOCK = 8;

type OpName = RedisStoreStats['calls'] extends Record<infer K, number> ? K : never;

/** One operation waiting for the next write. */
interface Op {
  /** Engine time of the call (undefined: none, the freshest reading stands in). */
  engineNow: number | undefined;
  /**
   * The time is when an answer arrived: it is turned into the latest store
   * time it can be (a reset or expiry predicted from it then comes late,
   * never early); other times into the earliest (a request is sent after it).
   */
  answer: boolean;
  run(budget: SharedBudget): unknown;
  resolve(value: unknown): void;
  reject(error: unknown): void;
  /** The write timed out but went through after all. */
  late?: (value: unknown) => void;
}

/** What a process read of the shared budget: the base of its next write. */
interface Base {
  gen: string;
  ver: string;
  /** The document ('' for none), as text: each attempt parses its own copy. */
  doc: string;
}
/** Scales a snapshot to this process's local share (floors, so never more). */
function scaleSnapshot(snap: RateLimitSnapshot | undefined, share: number, status: number | undefined): RateLimitSnapshot | undefined {
  if (!snap) return undefined;
  const scale = (x: number | undefined): number | undefined => (x === undefined ? undefined : Math.floor(share * x));
  const out: RateLimitSnapshot = {
    present: snap.present,
    minute: {},
    daily: {},
  };
  const ml = scale(snap.minute.limit);
  const mr = scale(snap.minute.remaining);
  const dl = scale(snap.daily.limit);
  const dr = scale(snap.daily.remaining);
  if (ml !== undefined) out.minute.limit = ml;
  if (mr !== undefined) out.minute.remaining = mr;
  if (dl !== undefined) out.daily.limit = dl;
  if (dr !== undefined) out.daily.remaining = dr;
  if (snap.retryAfterMs !== undefined) out.retryAfterMs = snap.retryAfterMs;
  // Which window a 429 is about follows the real numbers, not the scaled ones.
  if (snap.type !== undefined) out.type = snap.type;
  else if (status === 429) out.type = snap.daily.remaining === 0 ? 'daily' : 'minute';
  return out;
}

interface LeaseGroup {
  /** Generation of the state that granted them. */
  gen: string;
  /** The budget scope they were granted in. */
  scope: string;
  open: Set<number>;
}

interface LocalGroup {
  state: BudgetState;
  scope: string;
  open: number;
}

interface PendingSettle {
  ticket: Ticket;
  outcome: Outcome;
  /** When `outcome.now` was the engine's time (`performance.now()`). */
  readAt: number;
}

/**
 * A `Store` on Redis (ioredis) that many processes share. See the module
 * comment and `RedisStoreOptions`.
 *
 * @example
 * const store = new RedisStore({ redis: process.env.REDIS_URL, account: 'acct-1' });
 * const scheduler = new RateLimitScheduler({ store });
 * await scheduler.ready(); // rejects with StoreUnavailableError when Redis is unreachable
 */
export class RedisStore extends StoreEmitter<RedisStoreEvents> implements Store {
  readonly shared = true;
  readonly #redis: Redis;
  readonly #ownsClient: boolean;
  readonly #url: string;
  readonly #key: string;
  readonly #mode: 'pause' | 'local-share';
  readonly #pollMs: number | undefined;
  readonly #share: number;
  readonly #commandTimeoutMs: number;
  readonly #connectTimeoutMs: number;
  readonly #viewCacheMs: number;
  readonly #clockOverride: boolean;
  readonly #logger: Logger;
  readonly #pid = randomBytes(5).toString('hex');
  #command = '';

  #config: BudgetConfig | undefined;
  #ttlMs = 0;
  /** The generation of the state this process works in ('' before init). */
  #gen = '';
  #seq = 0;
  #closed = false;
  /** init() succeeded once: from then on an outage is something to recover from. */
  #started = false;
  #available = false;
  #recovering: Promise<boolean> | undefined;
  #offlineRetries = 0;
  #lastError: unknown;
  /**
   * Store time minus engine time, as if Redis read its clock when its last
   * reply arrived: the true offset lies between this and `#offset + #skew`.
   */
  #offset = 0;
  #skew = 0;
  /** The freshest engine time seen (operations without one run at it), and when it was read (`performance.now()`). */
  #engineNow: number | undefined;
  #engineReadAt = -Infinity;
  /** `#offset` was measured against the engine's clock (not only the system clock, before its first call). */
  #offsetKnown = false;
  /** The views of each scope as last read or written, and when (engine time; -Infinity: not to be served from cache). */
  readonly #lastViews = new Map<string, BudgetView>();
  readonly #lastViewAt = new Map<string, number>();
  /** What this process last read or wrote: the next write assumes it is still current. */
  #base: Base | undefined;
  /** Operations waiting for the next write, and whether a write is under way. */
  #ops: Op[] = [];
  /** The batches being written (settled when the queue is empty). */
  #writing: Promise<void> | undefined;
  readonly #leases = new Map<string, LeaseGroup>();
  readonly #pending: PendingSettle[] = [];
  /** The local stand-in of each scope while Redis is away (`local-share`). */
  readonly #local = new Map<string, BudgetState>();
  readonly #localGroups = new Map<string, LocalGroup>();
  /** Units granted by each scope's current local state, not yet reported to Redis. */
  readonly #debt = new Map<string, number>();
  #reclaimed = 0;
  readonly #calls: RedisStoreStats['calls'] = { init: 0, reserve: 0, settle: 0, view: 0, absorb: 0 };
  #roundTrips = 0;
  #conflicts = 0;
  readonly #onClose: () => void;
  readonly #onReady: () => void;
  readonly #onError: (error: unknown) => void;

  constructor(options: RedisStoreOptions = {}) {
    super();
    const o = resolveOptions(options);
    const { redis, keyPrefix, account } = o;
    this.#commandTimeoutMs = o.commandTimeoutMs;
    this.#connectTimeoutMs = o.connectTimeoutMs;
    this.#viewCacheMs = o.viewCacheMs;
    this.#clockOverride = o.clockOverride;
    this.#mode = o.onUnavailable;
    this.#pollMs = o.pollMs;
    this.#share = o.localShare;
    this.#logger = (o.logger ?? silentLogger).child({ component: 'redis-store' });
    this.onListenerError = (error) => this.#logger.error({ err: error }, 'RedisStore event listener threw');

    if (typeof redis === 'string') {
      this.#url = safeUrl(redis);
      this.#ownsClient = true;
      this.#redis = new Redis(redis, {
        lazyConnect: true,
        // Fail fast while disconnected: the store decides what to do (pause or local share).
        enableOfflineQueue: false,
        // A write must not run twice behind our back; settles are replayed by the store itself.
        autoResendUnfulfilledCommands: false,
        connectTimeout: this.#connectTimeoutMs,
        retryStrategy: (times) => Math.min(times * 100, 2000),
      });
    } else {
      this.#redis = redis;
      this.#ownsClient = false;
      this.#url = clientUrl(redis);
    }
    this.#key = `${keyPrefix}{${account}}:budget`;

    this.#onClose = () => {
      if (this.#available && !this.#closed) this.#markDown(new StoreUnavailableError(`Lost the connection to Redis at ${this.#url}`));
    };
    this.#onReady = () => {
      if (!this.#available && this.#started && !this.#closed) void this.#tryRecover();
    };
    this.#onError = (error) => {
      this.#lastError = error;
      this.#logger.debug({ err: error instanceof Error ? error.message : String(error) }, 'redis connection error');
    };
    this.#redis.on('close', this.#onClose);
    this.#redis.on('ready', this.#onReady);
    this.#redis.on('error', this.#onError);
  }

  /** This store's id: every lease it takes is named `${processId}.<n>:<i>`. */
  get processId(): string {
    return this.#pid;
  }

  /** The keys of this account's state (for tools and tests). */
  get keys(): readonly string[] {
    return [this.#key];
  }

  /**
   * The spend counter named `name` of this store's account, beside its budgets: pass it as the `spendLedger`
   * of every `runBatch` (or `--redis` run) that must share one `maxSpend`. It persists in Redis until
   * deleted; use a name per campaign to start another from zero.
   */
  spendLedger(name = 'default'): RedisSpendLedger {
    if (typeof name !== 'string' || !/^[\w.:-]{1,100}$/.test(name)) {
      throw new TypeError(`Expected \`name\` to be 1 to 100 letters, digits, '_', '.', ':' or '-', got \`${String(name)}\``);
    }
    return new RedisSpendLedger(this.#redis, `${this.#key.slice(0, -':budget'.length)}:spend:${name}`, { commandTimeoutMs: this.#commandTimeoutMs, url: this.#url });
  }

  stats(): RedisStoreStats {
    let inFlight = 0;
    for (const group of this.#leases.values()) inFlight += group.open.size;
    return {
      available: this.#available,
      calls: { ...this.#calls },
      roundTrips: this.#roundTrips,
      conflicts: this.#conflicts,
      pendingSettles: this.#pending.length,
      leasesInFlight: inFlight,
      reclaimed: this.#reclaimed,
    };
  }

  // ---- Store -----------------------------------------------------------------

  async init(config: BudgetConfig): Promise<void> {
    if (this.#closed) throw new StoreUnavailableError('RedisStore is closed');
    this.#config = config;
    this.#ttlMs = Math.ceil(Math.max(2 * config.dayMs, 2 * config.leaseMs, 2 * (config.minuteMs + config.marginMs), 60_000));
    try {
      await this.#connect();
      await this.#checkVersion();
      await this.#checkDatabase();
      this.#defineCommand();
      // No engine time yet: until the first reserve, assume the engine runs on the system clock.
      const stored = await this.#enqueue<SharedDoc['cfg']>('init', undefined, (b) => b.doc.cfg);
      if (stored.minuteMs !== config.minuteMs || stored.dayMs !== config.dayMs) {
        throw new TypeError(
          `RedisStore: the shared state \`${this.#key}\` at ${this.#url} already runs windows ` +
            `{ minuteMs: ${stored.minuteMs}, dayMs: ${stored.dayMs} }, but this process has ` +
            `{ minuteMs: ${config.minuteMs}, dayMs: ${config.dayMs} }. Every process that shares an account ` +
            'must pass the same `windows` to RateLimitScheduler (or use another `account` or `keyPrefix`).',
        );
      }
      if (stored.marginMs !== config.marginMs) {
        this.#logger.warn({ stored: stored.marginMs, own: config.marginMs }, 'marginMs differs from the shared state; the shared value applies');
      }
      this.#lastViewAt.clear();
      this.#available = true;
      this.#started = true;
    } catch (error) {
      if (this.#ownsClient) this.#redis.disconnect();
      throw error;
    }
  }

  async reserve(want: number, now: number, backlog = Infinity, countsDaily = true, scope = DEFAULT_SCOPE, keepDaily = 0): Promise<ReserveResult> {
    if (!this.#available && !(await this.#tryRecover())) return this.#reserveOffline(want, now, backlog, countsDaily, scope, keepDaily);
    const prefix = `${this.#pid}.${++this.#seq}:`;
    const config = this.#require();
    type Reserved = ReturnType<SharedBudget['reserve']>;
    let result: Reserved;
    try {
      result = await this.#enqueue<Reserved>(
        'reserve',
        now,
        (b) => b.reserve(want, backlog, prefix, config.leaseMs, countsDaily, scope, keepDaily),
        (late) => this.#giveBackLate(late as Reserved, prefix),
      );
    } catch (error) {
      this.#markDown(error);
      return this.#reserveOffline(want, now, backlog, countsDaily, scope, keepDaily);
    }
    if (result.granted > 0) {
      this.#leases.set(prefix, { gen: this.#gen, scope, open: new Set(Array.from({ length: result.granted }, (_, i) => i)) });
    }
    if (result.reclaimed > 0) {
      this.#reclaimed += result.reclaimed;
      this.#logger.info({ reclaimed: result.reclaimed }, 'reclaimed expired leases of another process');
    }
    const { reclaimed: _, oldestLease, ...out } = result;
    // Other processes' answers raise the shared budget without telling this
    // one: while blocked on the budget, ask again soon rather than at the
    // next time-based raise (or a lease expiry a whole lease TTL away).
    const pollMs = this.#pollMs ?? Math.max(5, config.minuteMs / 100);
    const waitsForOthers = out.blockedBy === 'budget' || out.blockedBy === 'daily' || out.blockedBy === 'unknown-limit';
    if (pollMs > 0 && out.granted < want && waitsForOthers) {
      const poll = out.now + pollMs;
      if (out.retryAt === undefined || out.retryAt > poll) out.retryAt = poll;
    }
    // Held back while another process holds a lease: ask again when it expires,
    // in case that process died (its units come back then). Our own leases we settle.
    if (
      oldestLease &&
      out.granted < want &&
      waitsForOthers &&
      !oldestLease.id.startsWith(`${this.#pid}.`) &&
      (out.retryAt === undefined || oldestLease.expiresAt < out.retryAt)
    ) {
      out.retryAt = oldestLease.expiresAt;
    }
    return out;
  }

  settle(ticket: Ticket, outcome: Outcome): Promise<SettleResult> {
    return this.#settle(ticket, outcome, performance.now());
  }

  /** `readAt`: when `outcome.now` was the engine's time (`performance.now()`; -Infinity: it is no reading of its clock). */
  async #settle(ticket: Ticket, outcome: Outcome, readAt: number): Promise<SettleResult> {
    const prefix = ticket.lease.slice(0, ticket.lease.lastIndexOf(':') + 1);
    const local = this.#localGroups.get(prefix);
    if (local) return this.#settleLocal(prefix, local, ticket, outcome);
    if ((!this.#available || this.#pending.length > 0) && !(await this.#tryRecover())) {
      this.#queue(ticket, outcome, readAt);
      return this.#neutral(outcome.now);
    }
    try {
      return await this.#settleRedis(ticket, outcome, readAt);
    } catch (error) {
      this.#markDown(error);
      this.#queue(ticket, outcome, readAt);
      return this.#neutral(outcome.now);
    }
  }

  view(now: number, scope = DEFAULT_SCOPE): BudgetView | Promise<BudgetView> {
    if (!this.#available) return this.#offlineView(now, scope);
    const last = this.#lastViews.get(scope);
    if (last && this.#viewCacheMs > 0 && now - (this.#lastViewAt.get(scope) ?? -Infinity) <= this.#viewCacheMs) return last;
    return this.#fetchView(now, scope);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    // Operations already queued (a give-back, a last settle) are written first, as a script call sent before QUIT would be.
    while (this.#writing) await this.#writing;
    this.#closed = true;
    if (this.#pending.length > 0) {
      this.#logger.warn({ pending: this.#pending.length }, 'closing with settles not replayed: their leases expire instead');
    }
    this.#redis.off('close', this.#onClose);
    this.#redis.off('ready', this.#onReady);
    if (this.#ownsClient) {
      try {
        if (this.#redis.status === 'ready') await this.#redis.quit();
        else this.#redis.disconnect();
      } catch {
        this.#redis.disconnect();
      }
    }
    this.#redis.off('error', this.#onError);
  }

  // ---- Redis -----------------------------------------------------------------

  async #connect(): Promise<void> {
    const redis = this.#redis;
    if (redis.status === 'ready') return;
    const unreachable = (cause: unknown): StoreUnavailableError => {
      const detail = cause instanceof Error ? `: ${cause.message}` : '';
      return new StoreUnavailableError(`Cannot reach Redis at ${this.#url}${detail}`, { cause });
    };
    if (redis.status === 'end' || redis.status === 'close') {
      throw unreachable(new Error(`the ioredis client is ${redis.status}`));
    }
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => finish(unreachable(this.#lastError ?? new Error(`no connection within ${this.#connectTimeoutMs} ms`))), this.#connectTimeoutMs);
      const onReady = (): void => finish(undefined);
      const finish = (error: StoreUnavailableError | undefined): void => {
        clearTimeout(timer);
        redis.off('ready', onReady);
        if (error) reject(error);
        else resolve();
      };
      redis.on('ready', onReady);
      if (redis.status === 'wait') {
        redis.connect().catch((error: unknown) => finish(unreachable(this.#lastError ?? error)));
      }
    });
  }

  /**
   * ioredis answers a failed SELECT (`/99` on a Redis with 16 databases) with an error event and goes on in
   * database 0: another tenant's database, silently. Selecting it again here fails loudly instead.
   */
  async #checkDatabase(): Promise<void> {
    const db = this.#redis.options.db ?? 0;
    if (db === 0) return;
    try {
      await this.#timeout(this.#redis.select(db), 'SELECT');
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      throw new StoreUnavailableError(
        `Redis at ${this.#url} has no database ${db} (${why}): give a database the server has (0 to \`databases\` − 1 in redis.conf, 16 by default)`,
        { cause: error },
      );
    }
  }

  async #checkVersion(): Promise<void> {
    const info = await this.#timeout(this.#redis.info('server'), 'INFO server');
    const version = /redis_version:([0-9.]+)/.exec(info)?.[1];
    const major = version === undefined ? NaN : Number(version.split('.')[0]);
    if (!(major >= MIN_REDIS_MAJOR)) {
      throw new StoreUnavailableError(
        `Redis at ${this.#url} is version ${version ?? 'unknown'}; RedisStore needs Redis ${MIN_REDIS_MAJOR} or newer`,
      );
    }
  }

  #defineCommand(): void {
    const source = budgetScript();
    // Named after the source: two library versions sharing one client never run each other's script.
    const command = `modelbeamScheduler_budget_${createHash('sha1').update(source).digest('hex').slice(0, 10)}`;
    // ioredis sends EVALSHA and falls back to EVAL on NOSCRIPT (a restart or SCRIPT FLUSH).
    if (typeof (this.#redis as unknown as Record<string, unknown>)[command] !== 'function') {
      this.#redis.defineCommand(command, { numberOfKeys: 1, lua: source });
    }
    this.#command = command;
  }

  #timeout<T>(promise: Promise<T>, what: string, onLate?: (value: T) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        reject(new StoreUnavailableError(`Redis at ${this.#url} did not answer ${what} within ${this.#commandTimeoutMs} ms`));
      }, this.#commandTimeoutMs);
      promise.then(
        (value) => {
          clearTimeout(timer);
          if (timedOut) onLate?.(value);
          else resolve(value);
        },
        (error: unknown) => {
          clearTimeout(timer);
          if (!timedOut) reject(error);
        },
      );
    });
  }

  /**
   * One call of budget.lua: one round trip. `engineNow` is the engine's time
   * at `readAt` (`performance.now()`), which may be well before the call.
   */
  async #script(args: string[], engineNow: number | undefined, readAt: number, onLate?: (reply: CasReply) => void): Promise<CasReply> {
    if (this.#redis.status !== 'ready') {
      throw new StoreUnavailableError(`Redis at ${this.#url} is not connected (${this.#redis.status})`, { cause: this.#lastError });
    }
    const fn = (this.#redis as unknown as Record<string, (...a: string[]) => Promise<unknown>>)[this.#command] as (...a: string[]) => Promise<unknown>;
    this.#roundTrips++;
    const time = this.#clockOverride && engineNow !== undefined ? String(engineNow) : '';
    const sentAt = performance.now();
    const raw = await this.#timeout(fn.call(this.#redis, this.#key, time, ...args), args[0] === 'read' ? 'a read' : 'a write', (late) => {
      try {
        onLate?.(parseCasReply(late));
      } catch {
        // A late reply that cannot be read is dropped; its leases expire.
      }
    });
    const reply = parseCasReply(raw);
    if (engineNow !== undefined) {
      // Redis read its clock between the call and the reply, and floored it to the millisecond. The engine's
      // clock ran on since `engineNow` was read: matched against that stale reading, the offset would take in
      // the wait, and every later operation would run that much in the future (a budget raised early).
      const repliedAt = performance.now();
      const roundTrip = repliedAt - sentAt;
      this.#offset = reply.now - (engineNow + (repliedAt - readAt));
      this.#skew = roundTrip + 1;
    }
    return reply;
  }

  /** Store time for an operation at engine time `engineNow` (see `Op.answer`). */
  #storeNow(engineNow: number, answer: boolean): number {
    if (this.#clockOverride) return engineNow;
    return engineNow + this.#offset + (answer ? this.#skew : 0);
  }

  /** Queues one operation for the next write; operations of this process are applied in call order. */
  #enqueue<T>(
    name: OpName,
    engineNow: number | undefined,
    run: (budget: SharedBudget) => T,
    late?: (value: unknown) => void,
    readAt = engineNow === undefined ? -Infinity : performance.now(),
  ): Promise<T> {
    this.#calls[name]++;
    if (engineNow !== undefined && readAt >= this.#engineReadAt) {
      this.#engineNow = engineNow;
      this.#engineReadAt = readAt;
    }
    return new Promise<T>((resolve, reject) => {
      const op: Op = { engineNow, answer: name === 'settle', run, resolve: resolve as (value: unknown) => void, reject };
      if (late) op.late = late;
      this.#ops.push(op);
      this.#writing ??= this.#drain();
    });
  }

  async #drain(): Promise<void> {
    try {
      while (this.#ops.length > 0) {
        const batch = this.#ops.splice(0, MAX_BATCH);
        try {
          const values = await this.#write(batch);
          batch.forEach((op, i) => op.resolve(values[i]));
        } catch (error) {
          for (const op of batch) op.reject(error);
        }
      }
    } finally {
      this.#writing = undefined;
    }
  }

  /**
   * Applies `batch` to the shared document and writes it back, again on the
   * newer document as long as another process wrote first. Returns each
   * operation's result.
   */
  async #write(batch: Op[]): Promise<unknown[]> {
    const config = this.#require();
    const started = performance.now();
    // The engine time the reply's store time is matched against: the freshest reading of the engine's clock,
    // not the batch's last time, which may have been read long before the write is sent (an operation queued
    // behind a write that timed out, a settle replayed after an outage). The system clock stands in before the
    // engine's first call.
    const fromEngine = this.#engineNow;
    const engineNow = fromEngine ?? (this.#clockOverride ? undefined : Date.now());
    const readAt = fromEngine === undefined ? started : this.#engineReadAt;
    // The engine's clock may be far from the system's (fake timers): until a reply was matched against it, read first.
    let base =
      this.#base && (this.#offsetKnown || this.#clockOverride || fromEngine === undefined) ? this.#base : await this.#read(engineNow, readAt);
    // From here on the offset is matched against the engine's clock (not the system clock standing in for it).
    if (fromEngine !== undefined) this.#offsetKnown = true;
    for (let attempt = 0; ; attempt++) {
      const attemptStarted = performance.now();
      let doc: SharedDoc;
      let gen = base.gen;
      if (base.doc === '') {
        // No state (first process, or it was lost): create it.
        gen = `${this.#pid}-${++this.#seq}`;
        doc = createDoc(config, gen);
      } else {
        doc = parseDoc(base.doc, `${this.#key} (${this.#url})`);
      }
      const budget = new SharedBudget(doc, config);
      // The state was re-created since this process last wrote: register what it still has in flight.
      const adopted = this.#gen !== '' && doc.gen !== this.#gen ? budget.adopt(this.#inFlightLeases(), config.leaseMs) : -1;
      const values = batch.map((op) => {
        const at = op.engineNow ?? this.#engineNow;
        if (at !== undefined) budget.at(this.#storeNow(at, op.answer));
        return op.run(budget);
      });
      const text = JSON.stringify(budget.toDoc());
      const onLate = (reply: CasReply): void => {
        if (!reply.ok) return;
        batch.forEach((op, i) => op.late?.(values[i]));
      };
      const lockMs = attempt + 1 >= CONFLICTS_BEFORE_LOCK ? Math.max(1, Math.ceil(this.#commandTimeoutMs / 2)) : 0;
      const reply = await this.#script(['write', base.gen, base.ver, gen, text, String(this.#ttlMs), this.#pid, String(lockMs)], engineNow, readAt, onLate);
      if (reply.ok) {
        this.#base = { gen: reply.gen, ver: reply.ver, doc: text };
        for (const [scope, view] of budget.touchedViews()) {
          this.#lastViews.set(scope, view);
          if (engineNow !== undefined) this.#lastViewAt.set(scope, engineNow);
        }
        if (adopted >= 0) {
          this.#gen = reply.gen;
          this.#logger.warn({ adopted }, 'shared state was lost (flush or restart) and re-created; requests in flight re-registered');
          this.emit('rebuilt', { adopted });
        } else if (this.#gen === '') {
          this.#gen = reply.gen;
        }
        return values;
      }
      this.#conflicts++;
      base = { gen: reply.gen, ver: reply.ver, doc: reply.doc };
      this.#base = base;
      // Contention is not an outage: go on while the batch is within the command timeout.
      const spent = performance.now() - started;
      if (spent > this.#commandTimeoutMs) {
        throw new StoreUnavailableError(
          `Writes to ${this.#key} at ${this.#url} kept being overtaken by other processes for ${Math.round(spent)} ms (${attempt + 1} in a row)`,
        );
      }
      // Holding the write lock, the next write lands: no pause. Another holds it: wait about one attempt.
      if (reply.lockHolder !== this.#pid && attempt + 1 >= CONFLICTS_BEFORE_PAUSE) {
        const slot = performance.now() - attemptStarted;
        const backoff = reply.lockHolder === '' ? 2 ** Math.min(Math.max(0, attempt + 1 - CONFLICTS_BEFORE_DOUBLING), 6) : 1;
        // Real time, like the command timeout: I/O pacing, not the engine's clock.
        await sleep(Math.random() * slot * backoff, systemClock);
      }
      // Operations queued meanwhile join this batch: under contention, fewer and larger writes.
      if (batch.length < MAX_BATCH) batch.push(...this.#ops.splice(0, MAX_BATCH - batch.length));
    }
  }

  async #read(engineNow: number | undefined, readAt: number): Promise<Base> {
    const reply = await this.#script(['read'], engineNow, readAt);
    const base = { gen: reply.gen, ver: reply.ver, doc: reply.doc };
    this.#base = base;
    return base;
  }

  /** Lease ids of this process still in flight, settles waiting for replay included, each with its scope. */
  *#inFlightLeases(): Iterable<readonly [string, string]> {
    const seen = new Map<string, string>();
    for (const [prefix, group] of this.#leases) for (const i of group.open) seen.set(`${prefix}${i}`, group.scope);
    for (const p of this.#pending) if (p.ticket.lease !== '') seen.set(p.ticket.lease, scopeOf(p.ticket));
    yield* seen;
  }

  async #settleRedis(ticket: Ticket, outcome: Outcome, readAt: number): Promise<SettleResult> {
    const prefix = ticket.lease.slice(0, ticket.lease.lastIndexOf(':') + 1);
    const index = Number(ticket.lease.slice(prefix.length));
    const group = this.#leases.get(prefix);
    const result = await this.#enqueue<SettleResult>(
      'settle',
      outcome.now,
      (b) =>
        // Decided per attempt: the generation may change under #write (state lost and re-created).
        b.settle(ticket, outcome, ticket.lease !== '' && (group === undefined || group.gen !== b.doc.gen)),
      undefined,
      readAt,
    );
    if (group) {
      group.open.delete(index);
      if (group.open.size === 0) this.#leases.delete(prefix);
    }
    return result;
  }

  async #fetchView(now: number, scope: string): Promise<BudgetView> {
    try {
      return await this.#enqueue<BudgetView>('view', now, (b) => b.view(scope));
    } catch (error) {
      this.#markDown(error);
      return this.#offlineView(now, scope);
    }
  }

  /** A reserve whose write timed out but went through after all: its units go back at once instead of waiting for their leases. */
  #giveBackLate(result: ReturnType<SharedBudget['reserve']>, prefix: string): void {
    if (result.granted === 0) return;
    this.#leases.set(prefix, { gen: this.#gen, scope: scopeOf(result.ticket), open: new Set(Array.from({ length: result.granted }, (_, i) => i)) });
    for (let i = 0; i < result.granted; i++) {
      const ticket: Ticket = { ...result.ticket, lease: `${prefix}${i}` };
      // (Its time is the reserve's, long past: no reading of the engine's clock.)
      const outcome: Outcome = { now: result.ticket.sentAt - this.#offset, status: undefined, snapshot: undefined, sent: false, jitterMs: 0, fallbackGateMs: 0 };
      void this.#settle(ticket, outcome, -Infinity);
    }
  }

  #require(): BudgetConfig {
    if (!this.#config) throw new Error('RedisStore used before init(): pass it to a RateLimitScheduler');
    return this.#config;
  }

  // ---- outages -----------------------------------------------------------------

  #markDown(error: unknown): void {
    this.#lastError = error;
    if (!this.#available || this.#closed) return;
    this.#available = false;
    this.#offlineRetries = 0;
    this.#logger.warn({ err: error instanceof Error ? error.message : String(error), mode: this.#mode }, 'Redis unavailable');
    this.emit('unavailable', { error, mode: this.#mode });
  }

  #tryRecover(): Promise<boolean> {
    if (this.#available && this.#pending.length === 0) return Promise.resolve(true);
    if (this.#closed || !this.#started || this.#redis.status !== 'ready') return Promise.resolve(false);
    this.#recovering ??= this.#recover().finally(() => {
      this.#recovering = undefined;
    });
    return this.#recovering;
  }

  async #recover(): Promise<boolean> {
    try {
      let absorbed = 0;
      for (const [scope, local] of this.#local) {
        const debt = this.#debt.get(scope) ?? 0;
        if (debt > 0 || local.data.gateUntil > 0 || local.data.parked === 1) {
          absorbed += debt;
          const d = local.data;
          const parkUntil = d.parked === 1 ? d.parkUntil : 0;
          await this.#enqueue('absorb', undefined, (b) => b.stateOf(scope).absorbOffline(debt, d.gateUntil, parkUntil, b.now));
        }
      }
      this.#local.clear();
      this.#debt.clear();
      let replayed = 0;
      while (this.#pending.length > 0) {
        const batch = this.#pending.slice(0, REPLAY_BATCH);
        // Sent together: ioredis writes them back to back on one connection, in order.
        const results = await Promise.allSettled(batch.map((p) => this.#settleRedis(p.ticket, p.outcome, p.readAt)));
        const failed = results.findIndex((r) => r.status === 'rejected');
        const ok = failed === -1 ? batch.length : failed;
        this.#pending.splice(0, ok);
        replayed += ok;
        if (failed !== -1) throw (results[failed] as PromiseRejectedResult).reason;
      }
      const wasDown = !this.#available;
      this.#available = true;
      this.#offlineRetries = 0;
      if (wasDown || replayed > 0) {
        this.#logger.info({ replayed, absorbed }, 'Redis available again');
        this.emit('recovered', { replayed, absorbed });
      }
      return true;
    } catch (error) {
      this.#lastError = error;
      this.#logger.debug({ err: error instanceof Error ? error.message : String(error) }, 'Redis recovery failed');
      this.#markDown(error);
      return false;
    }
  }

  #queue(ticket: Ticket, outcome: Outcome, readAt: number): void {
    if (this.#pending.length >= MAX_PENDING_SETTLES) {
      const dropped = this.#pending.shift();
      this.#logger.warn({ lease: dropped?.ticket.lease }, 'too many settles waiting for Redis: the oldest is dropped (its lease expires instead)');
    }
    this.#pending.push({ ticket, outcome, readAt });
  }

  #neutral(engineNow: number): SettleResult {
    return { now: engineNow + this.#offset, gateUntil: undefined, gateWindow: undefined, parked: undefined, changed: false };
  }

  #reserveOffline(want: number, now: number, backlog: number, countsDaily: boolean, scope: string, keepDaily: number): ReserveResult {
    const storeNow = now + this.#offset;
    const lastView = this.#lastViews.get(scope);
    if (this.#mode === 'local-share' && lastView) {
      let local = this.#local.get(scope);
      if (!local) {
        local = this.#seedLocal(lastView, storeNow, scope);
        this.#local.set(scope, local);
      }
      const result = local.reserve(want, storeNow, backlog, countsDaily, keepDaily);
      if (scope !== DEFAULT_SCOPE) result.ticket.scope = scope;
      if (result.granted > 0) {
        const prefix = `${this.#pid}.L${++this.#seq}:`;
        this.#localGroups.set(prefix, { state: local, scope, open: result.granted });
        this.#debt.set(scope, (this.#debt.get(scope) ?? 0) + result.granted);
        result.leasePrefix = prefix;
      }
      return result;
    }
    const backoff = Math.min(MAX_OFFLINE_RETRY_MS, 100 * 2 ** Math.min(5, this.#offlineRetries++));
    return {
      now: storeNow,
      granted: 0,
      ticket: { doneAtSend: 0, verMinute: 0, verDaily: 0, epochMinute: 0, epochDaily: 0, sentAt: storeNow, ...(scope === DEFAULT_SCOPE ? {} : { scope }) },
      leasePrefix: '',
      retryAt: storeNow + backoff,
      blockedBy: 'store',
      parkedUntil: undefined,
      dailyUnknownReset: false,
    };
  }

  /**
   * The local stand-in while Redis is away: the same rules, on `localShare`
   * of the last known limits and available budget (floored), with the gate
   * and park as last seen. Unknown stays unknown.
   */
  #seedLocal(view: BudgetView, storeNow: number, scope: string): BudgetState {
    const share = this.#share;
    const scale = (x: number | undefined): number | undefined => (x === undefined ? undefined : Math.floor(share * x));
    const config = scopeConfig(this.#require(), scope);
    const state = new BudgetState({ ...config, seeds: { minute: scale(view.minute.limit), daily: scale(view.daily.limit) } });
    const s = state.data;
    for (const [w, v] of [
      [s.minute, view.minute],
      [s.daily, view.daily],
    ] as const) {
      if (w.limit >= 0) {
        w.rem = scale(v.available) ?? -1;
        w.snapAt = storeNow;
      }
    }
    if (s.minute.limit >= 0 || s.daily.limit >= 0) s.headers = 1;
    if (view.gateUntil !== undefined && view.gateUntil > storeNow) {
      s.gateUntil = view.gateUntil;
      s.gated = 1;
    }
    if (view.parkedUntil !== undefined) {
      s.parked = 1;
      s.parkUntil = view.parkedUntil;
    }
    this.#logger.warn({ share, scope, minute: s.minute.rem, daily: s.daily.rem }, 'Redis unavailable: going on with a local share');
    return state;
  }

  #settleLocal(prefix: string, group: LocalGroup, ticket: Ticket, outcome: Outcome): SettleResult {
    const storeNow = outcome.now + this.#offset;
    if (!outcome.sent && group.state === this.#local.get(group.scope)) this.#debt.set(group.scope, Math.max(0, (this.#debt.get(group.scope) ?? 0) - 1));
    if (--group.open <= 0) this.#localGroups.delete(prefix);
    return group.state.settle(ticket, { ...outcome, now: storeNow, snapshot: scaleSnapshot(outcome.snapshot, this.#share, outcome.status) });
  }

  #offlineView(now: number, scope: string): BudgetView {
    const local = this.#local.get(scope);
    if (local) return local.view(now + this.#offset);
    const last = this.#lastViews.get(scope);
    if (last) return last;
    const empty = { limit: undefined, available: undefined, remaining: undefined, uncounted: 0, kind: 'unknown' as const, nextResetAfter: undefined, nextResetBy: undefined };
    return { minute: { ...empty }, daily: { ...empty }, gateUntil: undefined, parkedUntil: undefined, sent: 0, done: 0 };
  }
}
