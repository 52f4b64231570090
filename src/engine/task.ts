/**
 * A task as the scheduler holds it: the caller's function and promise
 * (`Entry`), one attempt in flight (`Flight`, also the task's context), the
 * failure that may be retried, and the light abort undici gets per attempt.
 */
import type { ListNode } from '../internal/linked-list.js';
import type { TimerHandle } from '../internal/clock.js';
import { DEFAULT_SCOPE } from '../store/scope.js';
import type { Ticket } from '../store/types.js';
import type { RetryReason } from './events.js';
import type { ScheduleOptions } from './options.js';
import type { Lane, Queueable } from './queue.js';
import type { WatchNode } from './signal-watch.js';

/** What a task receives on each attempt. */
export interface TaskContext {
  /** Aborted when the caller aborts, the attempt times out, or the scheduler closes without draining. */
  readonly signal: AbortSignal;
  /** 1 for the first attempt. 429s do not count as attempts. */
  readonly attempt: number;
  /** The task's id, as in events. */
  readonly id: number;
}

/**
 * A unit of work. It may resolve with an HTTP response (undici's
 * `{statusCode, headers}`, a fetch `Response`, or any `{status, headers}`) or
 * throw an error carrying one (`HttpError`, or anything with `status` or
 * `response`): the scheduler reads the status and the rate-limit headers from
 * it. A task that resolves with a non-2xx response is treated as failed.
 */
export type Task<T> = (context: TaskContext) => T | PromiseLike<T>;

/** A retryable attempt failure: the error it ended with and why it may be retried. */
export class RetryableFailure extends Error {
  constructor(
    readonly error: unknown,
    readonly reason: RetryReason,
  ) {
    super(error instanceof Error ? error.message : String(error));
  }
}

export class Entry implements Queueable {
  cancelled = false;
  queued = false;
  attempt = 0;
  /**
   * What the task's retries have cost it so far, against `retry.maxRetryTimeMs`:
   * the time its attempts spent on the wire and its backoff waits. Time queued
   * for budget, behind the 429 gate or in a daily park is not counted.
   */
  retryCostMs = 0;
  /** Aborts the backoff wait, while the task is waiting out one. */
  backoff: AbortController | undefined = undefined;
  flight: Flight | undefined = undefined;
  /** Its place among the tasks listening to the caller's signal, until it settles. */
  watch: WatchNode | undefined = undefined;
  resolve!: (value: unknown) => void;
  reject!: (error: unknown) => void;

  constructor(
    readonly id: number,
    readonly task: Task<unknown>,
    readonly priority: number,
    readonly options: ScheduleOptions | undefined,
  ) {}

  /**
   * The budget scope it asked for (`ScheduleOptions.scope`); read from the options, so a queued task costs
   * no more memory. `scheduler.rescope()` may move it (the queue keeps those moves, see `ScopedQueue`).
   */
  get scope(): string {
    return this.options?.scope ?? DEFAULT_SCOPE;
  }

  /** Which windows it counts against (`countsDaily`) and what it leaves (`keepDaily`); read from the options, so a queued task costs no more memory. */
  get lane(): Lane {
    const o = this.options;
    if (o?.countsDaily === false) return 'minute';
    return o?.keepDaily === undefined || o.keepDaily === 0 ? 'daily' : 'kept';
  }


  /** Settles the caller's promise with success (and stops listening to its signal). */
  succeed(value: unknown): void {
    this.#release();
    this.resolve(value);
  }

  /** Settles the caller's promise with failure (and stops listening to its signal). */
  failWith(error: unknown): void {
    this.#release();
    this.reject(error);
  }

  #release(): void {
    const node = this.watch;
    if (node === undefined) return;
    this.watch = undefined;
    node.watch.remove(node);
  }
}

type AbortListener = () => void;

/**
 * One attempt's abort in the emitter shape undici accepts as a request's
 * `signal` (`aborted`, `reason`, `on`/`once`, `removeListener`). An
 * `AbortSignal` per attempt costs Node 20 several microseconds and about
 * 2 KB (a dictionary-mode object plus its listener map, see bench/RESULTS.md,
 * "HTTP ceiling"); this is two fields and, usually, the one listener undici adds.
 */
export class AttemptAbort {
  aborted = false;
  reason: unknown = undefined;
  #first: AbortListener | undefined = undefined;
  #more: AbortListener[] | undefined = undefined;

  on(event: string, listener: AbortListener): this {
    if (event !== 'abort') return this;
    if (this.#first === undefined) this.#first = listener;
    else (this.#more ??= []).push(listener);
    return this;
  }

  /** Same as `on`: an attempt aborts at most once, and the listeners are dropped then. */
  once(event: string, listener: AbortListener): this {
    return this.on(event, listener);
  }

  removeListener(event: string, listener: AbortListener): this {
    if (event !== 'abort') return this;
    if (this.#first === listener) {
      this.#first = this.#more?.shift();
      return this;
    }
    const i = this.#more?.indexOf(listener) ?? -1;
    if (i >= 0) this.#more?.splice(i, 1);
    return this;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const first = this.#first;
    const more = this.#more;
    this.#first = undefined;
    this.#more = undefined;
    first?.();
    if (more) for (const listener of more) listener();
  }
}

/** One attempt in flight. It is also the task's context. */
export class Flight implements TaskContext {
  controller: AbortController | undefined = undefined;
  /** The light abort handed to undici by the client's transport (see `attemptAbort`). */
  light: AttemptAbort | undefined = undefined;
  /** Its place among the attempts in flight. */
  node: ListNode<Flight> | undefined = undefined;
  timer: TimerHandle | undefined = undefined;
  finished = false;
  /** Set when the scheduler itself aborted the attempt (close without drain): the task fails with it. */
  halted: unknown = undefined;

  constructor(
    readonly entry: Entry,
    readonly ticket: Ticket,
    readonly attempt: number,
    readonly dispatchedAt: number,
  ) {}

  get id(): number {
    return this.entry.id;
  }

  get signal(): AbortSignal {
    this.controller ??= new AbortController();
    return this.controller.signal;
  }

  abort(reason: unknown): void {
    (this.controller ??= new AbortController()).abort(reason);
    this.light?.abort(reason);
  }
}

/**
 * The abort of the attempt `context` belongs to, in the light form (see
 * `AttemptAbort`): it fires exactly when `context.signal` does. Contexts not
 * made by a scheduler give their `signal`.
 */
export function attemptAbort(context: TaskContext): AttemptAbort | AbortSignal {
  if (!(context instanceof Flight)) return context.signal;
  if (context.light === undefined) {
    context.light = new AttemptAbort();
    const aborted = context.controller?.signal;
    if (aborted?.aborted) context.light.abort(aborted.reason);
  }
  return context.light;
}

/**
 * One granted request's ticket, built field by field. An object spread here
 * (`{ ...ticket, lease }`) fell to V8's slow path: a dictionary-mode copy of
 * about 350 bytes per request that outlived the young generation, and half of
 * the dispatch loop's time went to collecting it (see bench/RESULTS.md,
 * "Overhead", Profiling).
 */
export function ticketFor(t: Omit<Ticket, 'lease'>, lease: string): Ticket {
  return {
    doneAtSend: t.doneAtSend,
    verMinute: t.verMinute,
    verDaily: t.verDaily,
    epochMinute: t.epochMinute,
    epochDaily: t.epochDaily,
    sentAt: t.sentAt,
    lease,
    minuteOnly: t.minuteOnly === true,
    minuteOnlyTest: t.minuteOnlyTest === true,
    scope: t.scope ?? DEFAULT_SCOPE,
  };
}
