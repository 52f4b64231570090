import { AuthenticationError } from '../errors/authentication-error.js';
import { DailyQuotaExhaustedError } from '../errors/daily-quota-exhausted-error.js';
import { OutcomeUnknownError } from '../errors/outcome-unknown-error.js';
import { QueueClosedError } from '../errors/queue-closed-error.js';
import { RetriesExhaustedError } from '../errors/retries-exhausted-error.js';
import { TimeoutError } from '../errors/timeout-error.js';
import { parseRateLimitHeaders } from '../headers/parse.js';
import type { RateLimitSnapshot } from '../headers/types.js';
import { sleep, systemClock, type Clock, type Random, type TimerHandle } from '../internal/clock.js';
import { LinkedList } from '../internal/linked-list.js';
import { isDebugEnabled, silentLogger, type Logger } from '../internal/logger.js';
import { MemoryStore } from '../store/memory-store.js';
import { DEFAULT_SCOPE, scopeOf } from '../store/scope.js';
import type { BudgetView, ReserveResult, SettleResult, Store, Ticket, WindowView } from '../store/types.js';
import { Aimd } from './aimd.js';
import { SlowStart } from './slow-start.js';
import {
  classifyStatus,
  discardBody,
  errorForStatus,
  inspectError,
  inspectResponse,
  networkErrorKind,
  shouldRetryHint,
  type ResponseInfo,
} from './classify.js';
import { publishAnswered } from '../diagnostics/channels.js';
import { TypedEmitter, type SchedulerEvents } from './events.js';
import { checkScheduleOptions, checkScope, resolveOptions, type ResolvedOptions, type ScheduleOptions, type SchedulerOptions, type SchedulerTiming } from './options.js';
import { LANES, ScopedQueue, type Lane } from './queue.js';
import { SignalWatch } from './signal-watch.js';
import { Entry, Flight, RetryableFailure, ticketFor, type Task } from './task.js';

export { AttemptAbort, attemptAbort, type Task, type TaskContext } from './task.js';

/** A snapshot of the scheduler's state. */
export interface SchedulerStats {
  queued: number;
  inFlight: number;
  /** Tasks waiting out a retry backoff (they hold no slot). */
  backingOff: number;
  concurrency: number;
  paused: boolean;
  closed: boolean;
  /** The default scope's budget as last known (always fresh with the memory store). */
  budget: BudgetView | undefined;
  /** Every budget scope the tasks have drawn from (`ScheduleOptions.scope`), the default one included. */
  scopes: Record<string, BudgetView | undefined>;
  /** Epoch ms when the default scope's 429 gate reopens, while it is closed. */
  gateUntil: number | undefined;
  parkedUntil: number | undefined;
  counts: {
    scheduled: number;
    dispatched: number;
    succeeded: number;
    failed: number;
    /** Tasks ended by their caller's signal (not failures). */
    cancelled: number;
    retried: number;
    rateLimited: number;
    outcomeUnknown: number;
  };
}

type Waiter = { test: () => boolean; resolve: () => void };

/** The last view of one scope's budget read from an asynchronous (shared) store. */
interface ViewCache {
  view: BudgetView | undefined;
  pending: boolean;
  /** The budget moved since `view` was read: read it again. */
  stale: boolean;
  /** The budget moved and nobody was told yet (retune, `budgetUpdated`). */
  moved: boolean;
}

/** Whether a snapshot says anything about a window (a bare `Retry-After` does not). */
function hasWindowInfo(snapshot: RateLimitSnapshot): boolean {
  const { minute: m, daily: d } = snapshot;
  return (
    m.limit !== undefined || m.remaining !== undefined || m.resetInMs !== undefined ||
    d.limit !== undefined || d.remaining !== undefined || d.resetInMs !== undefined
  );
}

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

/**
 * Drains a queue of tasks into a rate-limited API as fast as the server's own
 * numbers allow: it reads `X-RateLimit-*` on every response, closes one gate
 * for the whole queue on a 429, parks on an exhausted daily quota, and
 * retries only what can succeed.
 */
export class RateLimitScheduler extends TypedEmitter<SchedulerEvents> {
  readonly #options: ResolvedOptions;
  readonly #store: Store;
  readonly #ownsStore: boolean;
  readonly #clock: Clock;
  readonly #random: Random;
  readonly #logger: Logger;
  readonly #queue = new ScopedQueue<Entry>();
  readonly #aimd: Aimd;
  /**
   * Header-less pacing after a 429: `'due'` while the next request must go
   * alone and read whether the window turned (the gate reopened); the task
   * whose attempt is that read while it is out; `'idle'` otherwise.
   */
  #aimdRead: 'idle' | 'due' | Entry = 'idle';
  #init: Promise<void> | undefined;
  #nextId = 1;
  #inFlight = 0;
  #backingOff = 0;
  /** Attempts in flight, to abort on `close({ drain: false })` (a list, not a Set: see `LinkedList`). */
  readonly #flights = new LinkedList<Flight>();
  /** One watch per caller's signal that unsettled tasks listen to. */
  readonly #watches = new Map<AbortSignal, SignalWatch>();
  #concurrency: number;
  #latencyMs = 50;
  #paused = false;
  #closed = false;
  #stopped: Error | undefined;
  /** Set by `close({drain: false})`: nothing more is dispatched or retried. */
  #dropping: Error | undefined;
  /** Tasks waiting out a retry backoff. */
  readonly #sleepers = new Set<Entry>();
  /** Scopes whose reservation is out (asynchronous stores), and how many units those ask for in all. */
  readonly #pumping = new Set<string>();
  #asked = 0;
  #wakeTimer: TimerHandle | undefined;
  #wakeAt = Infinity;
  #waiters: Waiter[] = [];
  /** Per scope: the last view read from an asynchronous (shared) store. */
  readonly #views = new Map<string, ViewCache>();
  /** The minute limit of each scope, as last known: concurrency follows their sum. */
  readonly #limits = new Map<string, number>();
  /** True once any response said something about a window: the budget then governs, not AIMD or slow start. */
  #sawWindow = false;
  /** While nothing is known: the most requests in flight (see slow-start.ts). */
  readonly #slowStart: SlowStart;
  readonly #seeded: boolean;
  #throttles = 0;
  /** When the last 429 was acted on: 429s of requests sent before it belong to the same burst. */
  #lastThrottleAt = -Infinity;
  #nextSmoothAt = 0;
  /** Scopes whose daily park was told (`dailyQuotaExhausted`). */
  readonly #parkNotified = new Set<string>();
  #minuteLaneCountsDaily: boolean | undefined = undefined;
  #storeDown = false;
  #wasIdle = true;
  #counts = { scheduled: 0, dispatched: 0, succeeded: 0, failed: 0, cancelled: 0, retried: 0, rateLimited: 0, outcomeUnknown: 0 };

  constructor(options: SchedulerOptions = {}) {
    const resolved = resolveOptions(options);
    super((error) => this.#logger.error({ err: error }, 'event listener threw'), 'scheduler');
    this.#options = resolved;
    this.#clock = options.clock ?? systemClock;
    const random = options.random ?? Math.random;
    // An injected source that strays outside [0, 1) (or returns NaN) must not
    // open the 429 gate early or turn a backoff into NaN: clamp it.
    this.#random = () => {
      const r = random();
      return r > 0 ? Math.min(r, 1 - Number.EPSILON) : 0;
    };
    this.#logger = (options.logger ?? silentLogger).child({ component: 'scheduler' });
    this.#ownsStore = options.store === undefined;
    this.#store = options.store ?? new MemoryStore();
    this.#concurrency = resolved.maxConcurrent;
    this.#aimd = new Aimd({ windowMs: resolved.minuteMs });
    this.#slowStart = new SlowStart(resolved.minuteMs);
    this.#seeded = resolved.seeds.minute !== undefined || resolved.seeds.daily !== undefined;
    const init = this.#store.init({
      minuteMs: resolved.minuteMs,
      dayMs: resolved.dayMs,
      seeds: resolved.seeds,
      marginMs: resolved.marginMs,
      leaseMs: resolved.leaseMs,
    });
    if (isPromise(init)) {
      this.#init = init.then(
        () => {
          this.#init = undefined;
          this.#pump();
        },
        (error: unknown) => {
          this.#stop(error instanceof Error ? error : new Error(String(error)), 'store');
        },
      );
    }
    if (resolved.seeds.minute !== undefined) this.#retune(DEFAULT_SCOPE, resolved.seeds.minute);
  }

  /** Resolves once the store is ready (shared stores connect first). Rejects if it cannot be reached. */
  async ready(): Promise<void> {
    await this.#init;
    if (this.#stopped) throw this.#stopped;
  }

  /** The time settings (`timeScale` and window lengths) that a client built on this scheduler follows. */
  get timing(): SchedulerTiming {
    const { timeScale, minuteMs, dayMs } = this.#options;
    return { timeScale, minuteMs, dayMs };
  }

  /** Queued tasks, not counting those in flight. */
  get size(): number {
    return this.#queue.size;
  }

  /** Tasks in flight. */
  get pending(): number {
    return this.#inFlight;
  }

  get isPaused(): boolean {
    return this.#paused;
  }

  /**
   * What the server's numbers showed of requests scheduled with
   * `countsDaily: false`: `true`, they count in the daily window all the same
   * (they are then held and counted like the rest); `false`, they do not;
   * `undefined` while nothing showed either. A client reads it to size
   * `keepDaily`: the results of work in flight need daily units unless it is
   * `false`.
   */
  get minuteLaneCountsDaily(): boolean | undefined {
    return this.#minuteLaneCountsDaily;
  }

  /**
   * Queues a task. Resolves with what the task resolved with, once it
   * succeeds; rejects with the error that made it fail for good.
   */
  schedule<T>(task: Task<T>, options?: ScheduleOptions): Promise<T> {
    if (typeof task !== 'function') {
      return Promise.reject(new TypeError(`Expected \`task\` to be a function, got \`${String(task)}\` (${typeof task})`));
    }
    if (options !== undefined) {
      try {
        checkScheduleOptions(options);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    if (this.#stopped) return Promise.reject(this.#stopped);
    if (this.#closed) return Promise.reject(new QueueClosedError());
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);

    const entry = new Entry(this.#nextId++, task as Task<unknown>, options?.priority ?? 0, options);
    const promise = new Promise<T>((resolve, reject) => {
      entry.resolve = resolve as (value: unknown) => void;
      entry.reject = reject;
    });
    if (signal) this.#watchAbort(entry, signal);
    this.#counts.scheduled++;
    this.#wasIdle = false;
    entry.queued = true;
    this.#queue.push(entry);
    if (this.has('queued')) this.emit('queued', { id: entry.id, priority: entry.priority, queued: this.#queue.size });
    this.#pump();
    return promise;
  }

  /**
   * Moves queued tasks to other budget scopes (a client that learnt that its
   * routes count on separate counters moves the tasks it queued on the shared
   * budget). `to` gets a task's options and scope and returns the scope it
   * draws from from now on (undefined: it stays). Tasks in flight or backing
   * off move when they come back to the queue (a 429, a retry). Returns how
   * many queued tasks moved.
   */
  rescope(to: (options: ScheduleOptions | undefined, scope: string) => string | undefined): number {
    if (typeof to !== 'function') throw new TypeError(`Expected \`rescope\`'s argument to be a function, got ${typeof to}`);
    // A mapping that throws (or returns no scope name) leaves that task where it is: the queue stays whole.
    let failure: { error: unknown } | undefined;
    const moved = this.#queue.rescope((entry, scope) => {
      try {
        const next = to(entry.options, scope);
        return next === undefined ? undefined : checkScope('rescope() result', next);
      } catch (error) {
        failure ??= { error };
        this.#logger.warn({ err: error instanceof Error ? error.message : String(error) }, 'rescope mapping threw: the task stays in its scope');
        return undefined;
      }
    });
    if (moved > 0) this.#pump();
    // Thrown to the caller once, after every task is back in the queue; later calls (a task coming back) only log.
    const thrown = failure;
    failure = undefined;
    if (thrown) throw thrown.error;
    return moved;
  }

  /** Stops dispatching; tasks in flight go on. */
  pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.emit('paused', { reason: 'user' });
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.emit('resumed', { reason: 'user' });
    this.#pump();
  }

  /**
   * Stops taking tasks. With `drain` (the default) it waits for the queue to
   * empty; without, it rejects queued tasks with `QueueClosedError`, aborts
   * those in flight, and waits for them to settle.
   */
  async close({ drain = true }: { drain?: boolean } = {}): Promise<void> {
    this.#closed = true;
    if (drain && !this.#stopped) {
      await this.onIdle();
    } else {
      const error = new QueueClosedError();
      this.#dropping ??= error;
      for (const entry of this.#queue.drain()) this.#finishAttempt(entry, false, error);
      this.#abortInFlight(error);
      this.#abortBackoffs(error);
      this.#checkWaiters();
      await this.#until(() => this.#isIdle());
    }
    this.#clearWake();
    if (this.#ownsStore) await this.#store.close();
  }

  /** Resolves when nothing is queued, in flight, or backing off. */
  onIdle(): Promise<void> {
    return this.#until(() => this.#isIdle());
  }

  /** Resolves when the queue is empty (tasks may still be in flight). */
  onEmpty(): Promise<void> {
    return this.#until(() => this.#queue.size === 0);
  }

  /** Resolves when fewer than `limit` tasks are queued: the backpressure hook for producers. */
  onSizeLessThan(limit: number): Promise<void> {
    return this.#until(() => this.#queue.size < limit);
  }

  /** The budget of one scope as last known (`stats().scopes[scope]`, without building the rest of the stats). */
  budget(scope: string = DEFAULT_SCOPE): BudgetView | undefined {
    return this.#currentView(this.#clock.now(), scope);
  }

  stats(): SchedulerStats {
    const now = this.#clock.now();
    const budget = this.#currentView(now);
    const scopes: Record<string, BudgetView | undefined> = { [DEFAULT_SCOPE]: budget };
    for (const scope of this.#queue.scopes()) if (scope !== DEFAULT_SCOPE) scopes[scope] = this.#currentView(now, scope);
    return {
      queued: this.#queue.size,
      inFlight: this.#inFlight,
      backingOff: this.#backingOff,
      concurrency: this.#concurrency,
      paused: this.#paused,
      closed: this.#closed,
      budget,
      scopes,
      gateUntil: budget?.gateUntil,
      parkedUntil: budget?.parkedUntil,
      counts: { ...this.#counts },
    };
  }

  // ---- dispatch -------------------------------------------------------------

  /**
   * Serves every scope in turn (`known`: the clock as the caller just read
   * it, an answer's arrival, saving a reading for the first round). A scope
   * held back by its budget does not hold back the others.
   */
  #pump(known?: number): void {
    if (this.#paused || this.#stopped || this.#dropping || this.#init) return;
    let at = known;
    for (const scope of this.#queue.inTurn()) {
      if (this.#pumping.has(scope)) continue;
      if (this.#pumpScope(scope, at, 0) === 'stop') return;
      at = undefined;
    }
  }

  /**
   * Dispatches what `scope`'s budget grants. `from`: its daily window just
   * held the lanes before `LANES[from]` (parked, spent, or keeping units):
   * only the later lanes may go.
   * Returns `'stop'` when nothing more may go in any scope now (no slot,
   * pacing), `'next'` otherwise.
   */
  #pumpScope(scope: string, known: number | undefined, from: number): 'stop' | 'next' {
    if (this.#paused || this.#stopped || this.#dropping || this.#init) return 'stop';
    const queue = this.#queue.of(scope);
    let at = known;
    for (let lane = queue.next(from); lane !== undefined; lane = queue.next(from)) {
      const room = this.#concurrency - this.#inFlight - this.#asked;
      if (room <= 0) return 'stop';
      const now = at ?? this.#clock.now();
      at = undefined; // dispatching ran tasks: later rounds read the clock again
      const queued = queue.sizeOf(lane);
      let want = Math.min(queued, room);
      if (this.#options.smooth) {
        if (now < this.#nextSmoothAt) {
          this.#wake(this.#nextSmoothAt - now);
          return 'stop';
        }
        want = 1;
      }
      if (!this.#sawWindow && !this.#seeded && !this.#aimd.active) {
        // Neither headers nor seeds: start conservatively. The next answer pumps again.
        want = Math.min(want, this.#slowStart.limit - this.#inFlight - this.#asked);
        if (want <= 0) return 'stop';
      }
      if (this.#aimd.active) {
        if (this.#aimdRead !== 'idle') {
          // After a 429's gate, one request reads first; its answer pumps again.
          if (this.#aimdRead !== 'due') return 'stop';
          if (!this.#aimd.mayRead(now)) {
            this.#wake(Math.max(1, this.#aimd.nextAt(now) - now));
            return 'stop';
          }
          want = 1;
        } else {
          want = this.#aimd.take(want, now);
          if (want === 0) {
            this.#wake(Math.max(1, this.#aimd.nextAt(now) - now));
            return 'stop';
          }
        }
      }
      // Where the daily window is known (elsewhere nothing is kept), what a task keeps may follow each one
      // sent (the client counts its submissions): one at a time while it keeps units, or while other requests
      // may count daily (nothing in flight to keep for yet, so the keep reads 0 until the first one goes).
      const day = lane === 'kept' ? this.#currentView(now, scope)?.daily : undefined;
      const keep = day?.limit !== undefined ? keepDaily(queue.peek(lane)?.options?.keepDaily, day) : -1;
      if (keep > 0 || (keep === 0 && this.#minuteLaneCountsDaily !== false)) want = 1;
      const result = this.#store.reserve(want, now, queued - want, lane !== 'minute', scope, Math.max(0, keep));
      if (isPromise(result)) {
        this.#pumping.add(scope);
        this.#asked += want;
        const held = from;
        result.then(
          (granted) => {
            this.#pumping.delete(scope);
            this.#asked -= want;
            if (this.#onGrant(granted, want, this.#clock.now(), lane, scope)) this.#pumpScope(scope, undefined, held);
            else if (this.#heldByDay(granted, lane, scope)) this.#pumpScope(scope, undefined, LANES.indexOf(lane) + 1);
          },
          (error: unknown) => {
            this.#pumping.delete(scope);
            this.#asked -= want;
            this.#onStoreError(error);
          },
        );
        return 'next';
      }
      if (!this.#onGrant(result, want, now, lane, scope)) {
        if (!this.#heldByDay(result, lane, scope)) return 'next';
        from = LANES.indexOf(lane) + 1;
      }
    }
    return 'next';
  }

  /** The daily window alone held back `lane`, and later lanes of the scope have tasks: they may still go. */
  #heldByDay(result: ReserveResult, lane: Lane, scope: string): boolean {
    const byDay = result.blockedBy === 'park' || result.blockedBy === 'daily';
    return byDay && this.#queue.of(scope).hasAfter(lane);
  }

  /**
   * Dispatches what was granted (`now`: when, read by the caller right before;
   * the clock is read as few times as possible per task, as it is a system call
   * on some machines). Returns false when the loop should stop and wait.
   */
  #onGrant(result: ReserveResult, want: number, now: number, lane: Lane, scope: string): boolean {
    if (result.blockedBy !== 'store' && this.#storeDown) {
      this.#storeDown = false;
      this.emit('storeRecovered', {});
    }
    // Granted outside a park (and not as the probe of an exhausted day): the park is over.
    if (lane !== 'minute' && result.granted > 0 && result.parkedUntil === undefined && !result.dailyUnknownReset) this.#parkNotified.delete(scope);
    const shared = result.leasePrefix === '' ? ticketFor(result.ticket, '') : undefined;
    let dispatched = 0;
    for (let i = 0; i < result.granted; i++) {
      const ticket = shared ?? ticketFor(result.ticket, `${result.leasePrefix}${i}`);
      const entry = this.#stopped || this.#dropping || this.#paused ? undefined : this.#queue.shift(scope, lane);
      if (!entry) {
        this.#giveBack(ticket, now);
        continue;
      }
      if (this.#aimdRead === 'due' && this.#aimd.active) this.#aimdRead = entry;
      this.#dispatch(entry, ticket, now);
      dispatched++;
    }
    this.#aimd.sent(dispatched, now);
    // The queue shrank: `onEmpty` and `onSizeLessThan` may be due (dispatch can happen on a timer).
    if (dispatched > 0) this.#checkWaiters();
    if (this.#options.smooth && result.granted > 0) {
      const limit = this.#currentView(now, scope)?.minute.limit;
      if (limit) this.#nextSmoothAt = now + this.#options.minuteMs / limit;
    }
    if (result.granted >= want) return true;
    this.#onBlocked(result, now, scope);
    return false;
  }

  #onBlocked(result: ReserveResult, now: number, scope: string): void {
    if (result.blockedBy === 'store' && !this.#storeDown) {
      this.#storeDown = true;
      this.emit('storeUnavailable', { error: undefined });
    }
    if (result.blockedBy === 'park' && result.parkedUntil !== undefined) {
      this.#onParked(now + (result.parkedUntil - result.now), scope);
    }
    // Refused now, so asking again at the same instant cannot help: at least 1 ms (no spin).
    if (result.retryAt !== undefined) this.#wake(Math.max(1, result.retryAt - result.now));
    else if (this.#inFlight === 0 && result.blockedBy !== 'park') this.#wake(this.#options.marginMs * 10);
  }

  #dispatch(entry: Entry, ticket: Ticket, now: number): void {
    entry.attempt++;
    const flight = new Flight(entry, ticket, entry.attempt, now);
    entry.flight = flight;
    entry.queued = false;
    flight.node = this.#flights.push(flight);
    this.#inFlight++;
    this.#counts.dispatched++;
    const timeoutMs = entry.options?.timeoutMs ?? this.#options.timeoutMs;
    if (timeoutMs > 0) {
      flight.timer = this.#clock.setTimeout(() => {
        const error = new TimeoutError(timeoutMs);
        flight.abort(error);
        this.#settled(flight, false, error);
      }, timeoutMs);
    }
    if (this.has('dispatched')) this.emit('dispatched', { id: entry.id, attempt: entry.attempt, inFlight: this.#inFlight });
    let result: unknown;
    try {
      result = entry.task(flight);
    } catch (error) {
      this.#settled(flight, false, error);
      return;
    }
    if (isPromise(result as Promise<unknown>)) {
      (result as Promise<unknown>).then(
        (value) => this.#settled(flight, true, value),
        (error: unknown) => this.#settled(flight, false, error),
      );
    } else {
      this.#settled(flight, true, result);
    }
  }

  // ---- outcomes -------------------------------------------------------------

  #settled(flight: Flight, ok: boolean, value: unknown): void {
    if (flight.finished) {
      if (ok) discardBody(value);
      return;
    }
    flight.finished = true;
    if (flight.timer !== undefined) this.#clock.clearTimeout(flight.timer);
    const entry = flight.entry;
    entry.flight = undefined;
    if (flight.node) this.#flights.remove(flight.node);
    flight.node = undefined;
    this.#inFlight--;
    const now = this.#clock.now();
    entry.retryCostMs += now - flight.dispatchedAt;

    const info: ResponseInfo | undefined = ok ? inspectResponse(value) : inspectError(value);
    let snapshot: RateLimitSnapshot | undefined;
    if (info?.headers) {
      // The parser wraps a logger it is given in a guard object per call: give it one only when it can log.
      snapshot = parseRateLimitHeaders(info.headers, isDebugEnabled(this.#logger) ? { now, logger: this.#logger } : { now });
    }
    const windowInfo = snapshot !== undefined && hasWindowInfo(snapshot);
    if (windowInfo && !this.#sawWindow) {
      this.#sawWindow = true;
      this.#aimd.reset();
      this.#aimdRead = 'idle';
    }
    const status = info?.status;
    const aborted = entry.options?.signal?.aborted === true;
    const network = ok || info ? undefined : networkErrorKind(value);
    const timedOut = value instanceof TimeoutError;
    // For the request-latency metric (diagnostics channel only, nothing built while nobody subscribes).
    if (status !== undefined) publishAnswered(this, entry.id, flight.attempt, status, now - flight.dispatchedAt);

    let jitterMs = 0;
    let fallbackGateMs = 0;
    if (status === 429) {
      // React once per burst: the other 429s of requests already in flight say nothing new.
      const fresh = flight.dispatchedAt > this.#lastThrottleAt;
      if (fresh) {
        this.#lastThrottleAt = now;
        this.#throttles++;
        // No numbers to go by (a bare Retry-After is not a budget): pace by AIMD. A refused read
        // after the gate only says the window has not turned yet: no new cut.
        if (!this.#sawWindow && this.#aimdRead !== entry) this.#aimd.onThrottle(flight.dispatchedAt, now);
      }
      if (!this.#sawWindow && (fresh || this.#aimdRead === entry)) this.#aimdRead = 'due';
      const retryAfter = snapshot?.retryAfterMs;
      // Without Retry-After: with numbers, seconds doubling per 429; without, shares of the window (see Aimd).
      fallbackGateMs = this.#sawWindow
        ? Math.min(60_000, 1000 * 2 ** Math.min(6, this.#throttles - 1)) * (0.5 + this.#random() / 2)
        : this.#aimd.gateMs(this.#throttles, this.#random(), now);
      jitterMs = this.#random() * this.#options.gateJitter * (retryAfter ?? 0);
      jitterMs = Math.min(jitterMs, 1000);
    } else if (status !== undefined && status < 400) {
      this.#throttles = 0;
      if (!this.#sawWindow) this.#slowStart.accepted(now - flight.dispatchedAt);
    }
    if (!this.#sawWindow) {
      // Its place in the pacing log moves from its sending to its answer (see Aimd.answered).
      this.#aimd.answered(flight.dispatchedAt, now);
      // Any answer but a 429 was counted by the server's limiter: AIMD measures its ceiling from them.
      if (status !== undefined && status !== 429) this.#aimd.accepted(flight.dispatchedAt, now);
      if (this.#aimdRead === entry && status !== 429) {
        // The read came back: accepted, pacing resumes; never answered, another request reads.
        if (status === undefined) this.#aimdRead = 'due';
        else {
          this.#aimdRead = 'idle';
          this.#aimd.restart(flight.dispatchedAt, now);
        }
      }
    }

    const outcome = { now, status, snapshot, sent: network !== 'not-sent', jitterMs, fallbackGateMs };
    const settledResult = this.#store.settle(flight.ticket, outcome);
    const scope = scopeOf(flight.ticket);
    if (isPromise(settledResult)) {
      settledResult.then(
        (r) => this.#afterSettle(r, entry.id, snapshot, this.#clock.now(), scope),
        (error: unknown) => this.#onStoreError(error),
      );
    } else {
      this.#afterSettle(settledResult, entry.id, snapshot, now, scope);
    }

    if (ok && (status === undefined || status < 400)) {
      this.#latencyMs = this.#latencyMs * 0.8 + (now - flight.dispatchedAt) * 0.2;
      this.#counts.succeeded++;
      if (this.has('succeeded')) {
        this.emit('succeeded', { id: entry.id, attempt: flight.attempt, status, latencyMs: now - flight.dispatchedAt });
      }
      this.#finishAttempt(entry, true, value);
    } else if (aborted) {
      if (ok) discardBody(value);
      this.#finishAttempt(entry, false, entry.options?.signal?.reason ?? value);
    } else if (flight.halted !== undefined) {
      if (ok) discardBody(value);
      this.#finishAttempt(entry, false, flight.halted);
    } else if (status === 429) {
      if (ok) discardBody(value);
      this.#counts.rateLimited++;
      entry.attempt--; // a 429 spends no attempt
      if (this.#stopped) this.#finishAttempt(entry, false, this.#stopped);
      else this.#requeue(entry, true);
    } else if (info) {
      if (ok) discardBody(value);
      this.#onHttpFailure(entry, info, flight.attempt, ok ? undefined : value);
    } else if (network === 'not-sent') {
      this.#finishAttempt(entry, false, new RetryableFailure(value, 'network'));
    } else if (network === 'outcome-unknown' || timedOut) {
      this.#onOutcomeUnknown(entry, flight.attempt, value);
    } else {
      // Not an HTTP or network failure: a bug in the task. Never retried.
      this.#finishAttempt(entry, false, value);
    }
    this.#pump(now);
    this.#checkWaiters();
  }

  #onHttpFailure(entry: Entry, info: ResponseInfo, attempt: number, cause: unknown): void {
    const kind = classifyStatus(info.status, shouldRetryHint(info.headers));
    const error = cause instanceof Error && inspectError(cause) && 'code' in cause ? cause : errorForStatus(info, attempt, cause);
    if (kind === 'auth') {
      const auth = error instanceof AuthenticationError ? error : new AuthenticationError({ status: info.status, attempt });
      this.#finishAttempt(entry, false, auth);
      this.#stop(auth, 'authentication');
      return;
    }
    if (kind === 'transient') {
      this.#finishAttempt(entry, false, new RetryableFailure(error, info.status === 408 ? 'request-timeout' : 'server-error'));
      return;
    }
    this.#finishAttempt(entry, false, error);
  }

  #onOutcomeUnknown(entry: Entry, attempt: number, error: unknown): void {
    const idempotent = entry.options?.idempotent === true;
    this.#counts.outcomeUnknown++;
    if (this.has('outcomeUnknown')) this.emit('outcomeUnknown', { id: entry.id, attempt, resent: idempotent, error });
    if (idempotent) {
      this.#finishAttempt(entry, false, new RetryableFailure(error, error instanceof TimeoutError ? 'timeout' : 'outcome-unknown'));
    } else {
      this.#finishAttempt(entry, false, new OutcomeUnknownError(attempt, error));
    }
  }

  /** Routes an attempt's end: success or final failure to the caller, a retryable failure to a backoff. */
  #finishAttempt(entry: Entry, ok: boolean, value: unknown): void {
    if (ok) {
      entry.succeed(value);
      return;
    }
    if (value instanceof RetryableFailure) {
      this.#retryLater(entry, value);
      return;
    }
    this.#fail(entry, value, true);
  }

  #fail(entry: Entry, error: unknown, emit: boolean): void {
    const signal = entry.options?.signal;
    if (signal?.aborted === true && error === signal.reason) {
      // The caller's own abort: the task was withdrawn, it did not fail.
      this.#counts.cancelled++;
      if (emit && this.has('cancelled')) this.emit('cancelled', { id: entry.id, attempt: entry.attempt, reason: error });
    } else {
      this.#counts.failed++;
      if (emit && this.has('failed')) this.emit('failed', { id: entry.id, attempt: entry.attempt, error });
    }
    entry.failWith(error);
  }

  /**
   * The retry loop, owned here rather than by p-retry (see the README, "Why
   * these dependencies"): after a transient failure the task waits out a
   * full-jitter backoff, holding no slot, then re-enters the queue at the back
   * and spends budget like any request. It gives up after `maxAttempts`
   * attempts (429s are not attempts), or when the backoff would take what the
   * retries cost it (`Entry.retryCostMs`: time on the wire plus backoffs) past
   * `maxRetryTimeMs`.
   */
  #retryLater(entry: Entry, failure: RetryableFailure): void {
    const halted = this.#stopped ?? this.#dropping;
    if (halted) return this.#fail(entry, halted, true);
    const { maxAttempts, maxRetryTimeMs } = this.#options.retry;
    const attempt = entry.attempt;
    const delayMs = attempt < maxAttempts ? this.#backoff(attempt) : 0;
    if (attempt >= maxAttempts || entry.retryCostMs + delayMs > maxRetryTimeMs) {
      return this.#fail(entry, new RetriesExhaustedError(attempt, failure.error), true);
    }
    const signal = entry.options?.signal;
    if (signal?.aborted) return this.#fail(entry, signal.reason, true);
    entry.retryCostMs += delayMs;
    this.#counts.retried++;
    if (this.has('retrying')) this.emit('retrying', { id: entry.id, attempt, delayMs, reason: failure.reason, error: failure.error });
    this.#logger.debug({ id: entry.id, attempt, delayMs, reason: failure.reason }, 'retrying');
    // The wait is ours to abort: the caller's signal, close without drain, a 401 (`#abortBackoffs`).
    const backoff = new AbortController();
    entry.backoff = backoff;
    this.#sleepers.add(entry);
    this.#backingOff++;
    const leave = (): void => {
      this.#backingOff--;
      this.#sleepers.delete(entry);
      entry.backoff = undefined;
    };
    sleep(delayMs, this.#clock, backoff.signal).then(
      () => {
        leave();
        const stop = this.#stopped ?? this.#dropping;
        if (stop) this.#fail(entry, stop, true);
        else {
          this.#requeue(entry, false);
          this.#pump();
        }
        this.#checkWaiters();
      },
      (reason: unknown) => {
        leave();
        this.#fail(entry, reason, true);
        this.#checkWaiters();
      },
    );
  }

  /** Full jitter: a random wait in [0, min(max, base * 2^(n-1))). */
  #backoff(failedAttempt: number): number {
    const { baseDelayMs, maxDelayMs } = this.#options.retry;
    return this.#random() * Math.min(maxDelayMs, baseDelayMs * 2 ** (failedAttempt - 1));
  }

  #afterSettle(result: SettleResult, id: number, snapshot: RateLimitSnapshot | undefined, now: number, scope: string): void {
    if (result.minuteLaneCountsDaily !== undefined) this.#minuteLaneCountsDaily = result.minuteLaneCountsDaily;
    if (result.gateUntil !== undefined && result.gateWindow !== undefined) {
      const until = now + (result.gateUntil - result.now);
      this.#logger.debug({ window: result.gateWindow, waitMs: until - now }, 'rate limited: gate closed');
      if (this.has('rateLimited')) {
        this.emit('rateLimited', {
          id,
          window: result.gateWindow,
          waitMs: Math.max(0, until - now),
          until,
          retryAfterMs: snapshot?.retryAfterMs,
          scope,
        });
      }
      this.#wake(Math.max(0, until - now));
    }
    if (result.parked) {
      const until = result.parked.until === undefined ? undefined : now + (result.parked.until - result.now);
      if (until !== undefined) this.#onParked(until, scope);
    }
    if (result.changed) {
      const cache = this.#cache(scope);
      cache.stale = true;
      cache.moved = true;
      // Synchronous stores answer at once; a shared store's answer arrives later (see #currentView).
      const view = this.#currentView(now, scope);
      if (view && !cache.pending) this.#onBudgetMoved(view, scope);
    }
  }

  #onBudgetMoved(view: BudgetView, scope: string): void {
    this.#cache(scope).moved = false;
    if (view.minute.limit !== undefined) this.#retune(scope, view.minute.limit);
    if (this.has('budgetUpdated')) {
      this.emit('budgetUpdated', { scope, minute: view.minute, daily: view.daily, concurrency: this.#concurrency });
    }
  }

  /** Parked on the daily window: tell once per park; with `'reject'`, reject what is queued, now and later. */
  #onParked(until: number, scope: string): void {
    const action = this.#options.onDailyLimit;
    if (!this.#parkNotified.has(scope)) {
      this.#parkNotified.add(scope);
      this.#logger.info({ resetAt: new Date(until).toISOString(), action, scope }, 'daily quota exhausted');
      this.emit('dailyQuotaExhausted', { resetAt: until, action, scope });
    }
    if (action === 'reject') {
      // Tasks the daily window does not count are not refused by it, nor are other scopes' tasks.
      const error = new DailyQuotaExhaustedError(until);
      for (const entry of this.#queue.drain('daily', scope)) this.#finishAttempt(entry, false, error);
      this.#checkWaiters();
    }
    this.#wake(Math.max(0, until - this.#clock.now()));
  }

  /**
   * Concurrency from the limits and the latency: enough to spend a window's
   * budget in 2% of it. With several scopes, their limits add up.
   */
  #retune(scope: string, scopeLimit: number): void {
    this.#limits.set(scope, scopeLimit);
    let limit = 0;
    for (const l of this.#limits.values()) limit += l;
    const derived = Math.ceil((limit * this.#latencyMs) / (this.#options.minuteMs * 0.02));
    const floor = Math.min(4, limit);
    this.#concurrency = Math.max(1, Math.min(this.#options.maxConcurrent, limit, Math.max(floor, derived)));
  }

  /**
   * The budget now. A shared store answers asynchronously: this serves the
   * last view read (never dropping it, even when a refresh fails) and reads it
   * again in the background once it moved.
   */
  #currentView(now: number, scope = DEFAULT_SCOPE): BudgetView | undefined {
    if (this.#init) return undefined;
    const cache = this.#cache(scope);
    if (cache.pending) return cache.view;
    if (cache.view && this.#store.shared && !cache.stale) return cache.view;
    const view = this.#store.view(now, scope);
    if (!isPromise(view)) return view;
    cache.pending = true;
    cache.stale = false;
    view.then(
      (v) => {
        cache.pending = false;
        cache.view = v;
        if (cache.stale) this.#currentView(this.#clock.now(), scope); // moved again meanwhile
        else if (cache.moved) this.#onBudgetMoved(v, scope);
      },
      () => {
        cache.pending = false;
        cache.stale = true; // keep the last view; the next call tries again
      },
    );
    return cache.view;
  }

  #cache(scope: string): ViewCache {
    let cache = this.#views.get(scope);
    if (!cache) {
      cache = { view: undefined, pending: false, stale: false, moved: false };
      this.#views.set(scope, cache);
    }
    return cache;
  }

  // ---- control --------------------------------------------------------------

  #requeue(entry: Entry, front: boolean): void {
    if (entry.cancelled) return;
    entry.queued = true;
    this.#queue.requeue(entry, front);
  }

  #giveBack(ticket: Ticket, now: number): void {
    const result = this.#store.settle(ticket, { now, status: undefined, snapshot: undefined, sent: false, jitterMs: 0, fallbackGateMs: 0 });
    if (isPromise(result)) result.catch((error: unknown) => this.#onStoreError(error));
  }

  #watchAbort(entry: Entry, signal: AbortSignal): void {
    const watch = this.#watches.get(signal) ?? new SignalWatch(signal, this.#watches, (e, s) => this.#onCallerAbort(e, s));
    // The entry leaves the watch when it settles (`succeed`/`failWith`).
    entry.watch = watch.add(entry);
  }

  /** The caller aborted: drop the task if queued, abort its attempt if running, cut its backoff short. */
  #onCallerAbort(entry: Entry, signal: AbortSignal): void {
    if (entry.flight) {
      entry.flight.abort(signal.reason);
    } else if (entry.queued) {
      entry.queued = false;
      this.#queue.cancel(entry);
      this.#finishAttempt(entry, false, signal.reason);
      this.#checkWaiters();
    } else if (entry.backoff) {
      entry.backoff.abort(signal.reason);
    }
  }

  #stop(error: Error, reason: 'authentication' | 'store'): void {
    if (this.#stopped) return;
    this.#stopped = error;
    this.#logger.warn({ reason, code: (error as { code?: string }).code }, 'scheduler stopped');
    for (const entry of this.#queue.drain()) this.#finishAttempt(entry, false, error);
    this.#abortBackoffs(error);
    this.emit('paused', { reason });
    this.#checkWaiters();
  }

  #abortInFlight(reason: unknown): void {
    for (const flight of this.#flights.values()) {
      flight.halted = reason;
      flight.abort(reason);
    }
  }

  #abortBackoffs(reason: unknown): void {
    for (const entry of [...this.#sleepers]) entry.backoff?.abort(reason);
  }

  #onStoreError(error: unknown): void {
    this.#logger.warn({ err: error instanceof Error ? error.message : String(error) }, 'store error');
    if (!this.#storeDown) {
      this.#storeDown = true;
      this.emit('storeUnavailable', { error });
    }
    this.#wake(500);
  }

  #wake(delayMs: number): void {
    const at = this.#clock.now() + Math.max(0, delayMs);
    if (this.#wakeTimer !== undefined && at >= this.#wakeAt) return;
    this.#clearWake();
    this.#wakeAt = at;
    this.#wakeTimer = this.#clock.setTimeout(() => {
      this.#wakeTimer = undefined;
      this.#wakeAt = Infinity;
      this.#pump();
    }, Math.max(0, delayMs));
  }

  #clearWake(): void {
    if (this.#wakeTimer !== undefined) this.#clock.clearTimeout(this.#wakeTimer);
    this.#wakeTimer = undefined;
    this.#wakeAt = Infinity;
  }

  #isIdle(): boolean {
    return this.#queue.size === 0 && this.#inFlight === 0 && this.#backingOff === 0;
  }

  #until(test: () => boolean): Promise<void> {
    if (test()) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ test, resolve }));
  }

  #checkWaiters(): void {
    if (!this.#wasIdle && this.#isIdle()) {
      this.#wasIdle = true;
      if (this.#queue.size === 0 && this.#inFlight === 0) this.#clearWake();
      if (this.has('idle')) this.emit('idle', { succeeded: this.#counts.succeeded, failed: this.#counts.failed });
    }
    const waiters = this.#waiters;
    if (waiters.length === 0) return;
    // Compacted in place: no new array per call (this runs after every answer).
    let kept = 0;
    for (let i = 0; i < waiters.length; i++) {
      const waiter = waiters[i] as Waiter;
      if (waiter.test()) waiter.resolve();
      else waiters[kept++] = waiter;
    }
    if (kept < waiters.length) waiters.length = kept; // setting the length is a runtime call: only when it shrinks
  }
}

/** A task's `keepDaily`, read when it is about to be reserved for (a function answers for now and `day`). */
function keepDaily(keep: ScheduleOptions['keepDaily'], day: WindowView): number {
  const n = typeof keep === 'function' ? keep(day) : (keep ?? 0);
  return Number.isFinite(n) && n > 0 ? Math.ceil(n) : 0;
}
