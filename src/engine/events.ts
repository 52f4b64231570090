import { EventEmitter } from 'node:events';
import { channelsOf, type ChannelGroup, type ChannelSource } from '../diagnostics/channels.js';
import type { WindowName } from '../headers/types.js';
import type { WindowView } from '../store/types.js';

/** Why an attempt is retried (or, for outcome-unknown, why it is not). */
export type RetryReason = 'server-error' | 'request-timeout' | 'network' | 'timeout' | 'outcome-unknown';

export interface QueuedEvent {
  id: number;
  priority: number;
  queued: number;
}
export interface DispatchedEvent {
  id: number;
  attempt: number;
  inFlight: number;
}
export interface SucceededEvent {
  id: number;
  attempt: number;
  status: number | undefined;
  latencyMs: number;
}
export interface RetryingEvent {
  id: number;
  /** The attempt that failed. */
  attempt: number;
  delayMs: number;
  reason: RetryReason;
  error: unknown;
}
export interface OutcomeUnknownEvent {
  id: number;
  attempt: number;
  /** True when the task is idempotent and is sent again; false when it fails with `OutcomeUnknownError`. */
  resent: boolean;
  error: unknown;
}
export interface RateLimitedEvent {
  /** The task whose response was the 429, if any. */
  id: number | undefined;
  window: WindowName;
  /** How long the scope's queue waits. */
  waitMs: number;
  /** Epoch ms when the gate reopens. */
  until: number;
  /** What the server said, when it said it. */
  retryAfterMs: number | undefined;
  /** The budget scope the 429 closed (`ScheduleOptions.scope`; `'default'` unless named). */
  scope: string;
}
export interface BudgetUpdatedEvent {
  /** The budget scope that moved (`'default'` unless tasks name scopes). */
  scope: string;
  minute: WindowView;
  daily: WindowView;
  concurrency: number;
}
export interface DailyQuotaExhaustedEvent {
  /** Epoch ms of the expected reset; undefined until a daily 429 has told it. */
  resetAt: number | undefined;
  action: 'wait' | 'reject';
  /** The budget scope whose day is spent. */
  scope: string;
}
export interface PausedEvent {
  reason: 'user' | 'authentication' | 'closed' | 'store';
}
export interface ResumedEvent {
  reason: 'user' | 'store';
}
export interface FailedEvent {
  id: number;
  attempt: number;
  error: unknown;
}
export interface CancelledEvent {
  id: number;
  /** Attempts sent before the caller aborted (0: it never left the queue). */
  attempt: number;
  /** The caller's `signal.reason` (the task rejects with it). */
  reason: unknown;
}
export interface IdleEvent {
  succeeded: number;
  failed: number;
}
export interface StoreEvent {
  error: unknown;
}

/** Every event the scheduler emits, with its one payload object. Events observe; they never steer. */
export interface SchedulerEvents {
  queued: QueuedEvent;
  dispatched: DispatchedEvent;
  succeeded: SucceededEvent;
  retrying: RetryingEvent;
  outcomeUnknown: OutcomeUnknownEvent;
  rateLimited: RateLimitedEvent;
  budgetUpdated: BudgetUpdatedEvent;
  dailyQuotaExhausted: DailyQuotaExhaustedEvent;
  paused: PausedEvent;
  resumed: ResumedEvent;
  failed: FailedEvent;
  cancelled: CancelledEvent;
  idle: IdleEvent;
  storeUnavailable: StoreEvent;
  storeRecovered: Record<string, never>;
}

type Listener<T> = (event: T) => void;
/** The event names of a map, as `node:events` sees them. */
type EventName<Events> = keyof Events & string;

/**
 * The typed face of {@link TypedEmitter}: `on`, `once`, `off`, `emit` and
 * friends accept only the names of the event map, and each listener gets
 * that event's one payload object. Merged into the class below.
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export interface TypedEmitter<Events extends object> {
  on<K extends EventName<Events>>(name: K, listener: Listener<Events[K]>): this;
  addListener<K extends EventName<Events>>(name: K, listener: Listener<Events[K]>): this;
  prependListener<K extends EventName<Events>>(name: K, listener: Listener<Events[K]>): this;
  once<K extends EventName<Events>>(name: K, listener: Listener<Events[K]>): this;
  prependOnceListener<K extends EventName<Events>>(name: K, listener: Listener<Events[K]>): this;
  off<K extends EventName<Events>>(name: K, listener: Listener<Events[K]>): this;
  removeListener<K extends EventName<Events>>(name: K, listener: Listener<Events[K]>): this;
  removeAllListeners(name?: EventName<Events>): this;
  listeners<K extends EventName<Events>>(name: K): Listener<Events[K]>[];
  rawListeners<K extends EventName<Events>>(name: K): Listener<Events[K]>[];
  /** Listeners of `name` (that are `listener`, when given). */
  listenerCount(name: EventName<Events>, listener?: Listener<never>): number;
  /** Listeners of every event. */
  listenerCount(): number;
  eventNames(): EventName<Events>[];
  emit<K extends EventName<Events>>(name: K, event: Events[K]): boolean;
}

/**
 * A `node:events` `EventEmitter` with a typed event map, so `events.once()`,
 * `events.on()` (with an abort signal) and every other `EventEmitter`
 * consumer work with it. Each event carries one payload object.
 *
 * `has()` lets hot paths skip building payloads that nobody listens to. A
 * throwing listener is reported to `onListenerError`, never propagated into
 * the emitter's owner, and the other listeners still run.
 *
 * Given a `channels` source, every event is also published on its
 * `node:diagnostics_channel` channel (`modelbeam-scheduler:<source>:<event>`,
 * see `src/diagnostics/channels.ts`) while that channel has subscribers.
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class TypedEmitter<Events extends object> extends EventEmitter {
  /** Called with what a listener threw. */
  protected onListenerError: (error: unknown) => void;

  /** The diagnostics channels events are published on, if any. */
  readonly #channels: ChannelGroup | undefined;

  constructor(onListenerError: (error: unknown) => void = () => {}, channels?: ChannelSource) {
    super();
    this.onListenerError = onListenerError;
    this.#channels = channels === undefined ? undefined : channelsOf(channels);
    // Every task or call may wait on `events.once()`; the default cap of 10 would warn for a busy queue.
    this.setMaxListeners(0);
  }

  /** True when at least one listener waits for `name` (or its diagnostics channel has subscribers). */
  has(name: EventName<Events>): boolean {
    return super.listenerCount(name) > 0 || (this.#channels !== undefined && this.#channels.has(name));
  }

  override listenerCount(name?: string | symbol, listener?: (...args: never[]) => void): number {
    if (name !== undefined) return super.listenerCount(name, listener);
    let n = 0;
    for (const each of super.eventNames()) n += super.listenerCount(each);
    return n;
  }

  override emit(name: string | symbol, ...args: unknown[]): boolean {
    if (this.#channels !== undefined && typeof name === 'string') {
      try {
        this.#channels.publish(name, this, args[0]);
      } catch (error) {
        // A subscriber threw (Node reports it on process 'uncaughtException' in a later tick, but be safe).
        this.onListenerError(error);
      }
    }
    if (super.listenerCount(name) === 0) {
      // Keeps `'error'` semantics for anyone emitting it by hand (no listener: it throws).
      // (Checked before `rawListeners`, which copies the list: an event only a channel wanted allocates nothing here.)
      return name === 'error' ? super.emit(name, ...args) : false;
    }
    for (const listener of super.rawListeners(name)) {
      try {
        Reflect.apply(listener, this, args);
      } catch (error) {
        this.onListenerError(error);
      }
    }
    return true;
  }
}
