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
  /** How long the whole queue waits. */
  waitMs: number;
  /** Epoch ms when the gate reopens. */
  until: number;
  /** What the server said, when it said it. */
  retryAfterMs: number | undefined;
}
export interface BudgetUpdatedEvent {
  minute: WindowView;
  daily: WindowView;
  concurrency: number;
}
export interface DailyQuotaExhaustedEvent {
  /** Epoch ms of the expected reset; undefined until a daily 429 has told it. */
  resetAt: number | undefined;
  action: 'wait' | 'reject';
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
  idle: IdleEvent;
  storeUnavailable: StoreEvent;
  storeRecovered: Record<string, never>;
}

type Listener<T> = (event: T) => void;

/**
 * A small typed emitter. `has()` lets hot paths skip building payloads that
 * nobody listens to. A throwing listener is reported, never propagated into
 * the scheduler.
 */
export class TypedEmitter<Events extends object> {
  #listeners = new Map<keyof Events, Listener<never>[]>();
  #onListenerError: (error: unknown) => void;

  constructor(onListenerError: (error: unknown) => void = () => {}) {
    this.#onListenerError = onListenerError;
  }

  on<K extends keyof Events>(name: K, listener: Listener<Events[K]>): this {
    const list = this.#listeners.get(name);
    if (list) list.push(listener as Listener<never>);
    else this.#listeners.set(name, [listener as Listener<never>]);
    return this;
  }

  once<K extends keyof Events>(name: K, listener: Listener<Events[K]>): this {
    const wrapped: Listener<Events[K]> = (event) => {
      this.off(name, wrapped);
      listener(event);
    };
    return this.on(name, wrapped);
  }

  off<K extends keyof Events>(name: K, listener: Listener<Events[K]>): this {
    const list = this.#listeners.get(name);
    if (!list) return this;
    const i = list.indexOf(listener as Listener<never>);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.#listeners.delete(name);
    return this;
  }

  has(name: keyof Events): boolean {
    return this.#listeners.has(name);
  }

  listenerCount(name?: keyof Events): number {
    if (name !== undefined) return this.#listeners.get(name)?.length ?? 0;
    let n = 0;
    for (const list of this.#listeners.values()) n += list.length;
    return n;
  }

  removeAllListeners(): void {
    this.#listeners.clear();
  }

  protected emit<K extends keyof Events>(name: K, event: Events[K]): void {
    const list = this.#listeners.get(name);
    if (!list) return;
    for (const listener of [...list]) {
      try {
        (listener as Listener<Events[K]>)(event);
      } catch (error) {
        this.#onListenerError(error);
      }
    }
  }
}
