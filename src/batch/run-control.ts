/**
 * The state a run shares with its items: the items under way and the one
 * signal they run with, whether (and why) the run is stopping and the stop
 * procedure, how many items are submitting, the run of transient failures,
 * and the one "something changed" signal the run's loops wait on. It is the
 * {@link ItemHost} every item of the run gets.
 */
import { setMaxListeners } from 'node:events';
import { sleep, type Clock } from '../internal/clock.js';
import type { Logger } from '../internal/logger.js';
import { errorCode, transientCause } from './classify.js';
import type { ItemHost } from './item.js';
import type { Journal, TerminalRecord } from './journal.js';
import type { ResolvedBatchOptions } from './options.js';
import type { RunSpend } from './spend.js';
import type { Tally } from './tally.js';
import type { BatchClient, StopInfo } from './types.js';

class Stopped extends Error {
  override readonly name = 'AbortError';
}

export interface RunControlOptions {
  client: BatchClient;
  clock: Clock;
  logger: Logger;
  settings: ResolvedBatchOptions;
  tally: Tally;
  keepPreview: boolean;
  apiBaseUrl: string | undefined;
  /** Writes a terminal record and hands the result out. */
  finishTerminal: (record: TerminalRecord, resumed: boolean) => void;
}

export class RunControl implements ItemHost {
  readonly client: BatchClient;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly counters: ItemHost['counters'];
  readonly maxResubmissions: number;
  readonly resubmitUnknown: boolean;
  readonly keepPreview: boolean;
  readonly apiBaseUrl: string | undefined;
  apiConfirmed = false;
  /** With `maxSpend`: prices and the cap (set before items start). */
  spend: RunSpend | undefined;
  /** Set by the first stop requested; later requests keep the first reason. */
  stopInfo: StopInfo | undefined;
  /** A stop that cut requests on the wire. */
  hardAbort = false;
  /** Items between their `submitting` record and the answer to their POST. */
  submittingNow = 0;
  /** Items under way, by id; `done` settles when the item ends. */
  readonly active = new Map<string, { done: Promise<void> }>();
  /**
   * The signal every item runs with. A stop aborts all items at once (never one alone), so one
   * controller serves the run: a per-item AbortController cost ~1 KB of heap that outlived the young
   * generation, and 2–3 µs, for every item of a million-line batch.
   */
  readonly itemSignal = new AbortController();
  /** How long a stop lets requests on the wire finish. */
  stopGraceMs: number;
  #stopping: Promise<void> | undefined;
  readonly finishTerminal: (record: TerminalRecord, resumed: boolean) => void;
  readonly #settings: ResolvedBatchOptions;
  readonly #tally: Tally;
  #journal: Journal | undefined;
  #changeWaiters: (() => void)[] = [];
  #consecutiveTransient = 0;

  constructor(options: RunControlOptions) {
    this.client = options.client;
    this.clock = options.clock;
    this.logger = options.logger;
    this.counters = options.tally.counters;
    this.maxResubmissions = options.settings.maxResubmissions;
    this.resubmitUnknown = options.settings.resubmitOnUnknownOutcome;
    this.keepPreview = options.keepPreview;
    this.apiBaseUrl = options.apiBaseUrl;
    this.finishTerminal = options.finishTerminal;
    this.#settings = options.settings;
    this.#tally = options.tally;
    this.stopGraceMs = options.settings.graceMs;
    // One listener per client call in flight (up to `maxInFlight` items), each removed when its call settles.
    setMaxListeners(0, this.itemSignal.signal);
  }

  /** Aborts every item at once, even with a request on the wire (`Batch.abort`). */
  abortItems(message: string): void {
    if (this.active.size > 0) this.itemSignal.abort(new Stopped(message));
  }

  /** The results file; items start only once it is open. */
  get journal(): Journal {
    if (this.#journal === undefined) throw new Error('The results file is not open yet');
    return this.#journal;
  }

  set journal(journal: Journal) {
    this.#journal = journal;
  }

  get stopping(): boolean {
    return this.stopInfo !== undefined;
  }

  /** Resolves at the next {@link changed}. */
  nextChange(): Promise<void> {
    return new Promise<void>((resolve) => this.#changeWaiters.push(resolve));
  }

  /** Something the run's loops wait on changed: an item ended, a result was consumed, a stop was asked. */
  changed(): void {
    const waiters = this.#changeWaiters;
    if (waiters.length === 0) return;
    this.#changeWaiters = [];
    for (const resolve of waiters) resolve();
  }

  async waitForSubmitSlot(signal: AbortSignal): Promise<boolean> {
    while (this.submittingNow >= this.#settings.maxSubmitting && !this.stopInfo && !signal.aborted) await this.nextChange();
    if (this.stopInfo || signal.aborted) return false;
    // Taken in the same tick as the check: two items woken together cannot both take the last slot.
    this.submittingNow++;
    return true;
  }

  submitting(delta: 1 | -1): void {
    this.submittingNow += delta;
    if (delta < 0) this.changed();
  }

  requestStop(info: StopInfo): void {
    if (this.stopInfo) return;
    this.stopInfo = info;
    this.logger.warn({ reason: info.reason, resetAt: info.resetAt }, `batch stopping: ${info.message}`);
    this.changed();
  }

  noteSuccess(): void {
    this.#consecutiveTransient = 0;
  }

  noteTransient(error: unknown): void {
    this.#consecutiveTransient++;
    const cause = transientCause(error);
    this.#tally.lastTransient = cause;
    this.logger.warn({ code: errorCode(error), err: cause.message, inARow: this.#consecutiveTransient }, 'transient failure; item left pending');
    if (this.#consecutiveTransient >= this.#settings.maxConsecutiveTransient) {
      this.requestStop({
        reason: 'api-unavailable',
        message: `${this.#consecutiveTransient} items in a row ended with transient errors (last: ${cause.message}). The API looks unavailable; run the batch again later to resume.`,
      });
    }
  }

  /**
   * The stop procedure (once, however often it is asked for): pause the scheduler, let requests on the wire
   * finish within the grace period, then abort every item still waiting (they stay resumable).
   */
  stopProcedure(): Promise<void> {
    this.#stopping ??= this.#runStop();
    return this.#stopping;
  }

  async #runStop(): Promise<void> {
    const scheduler = this.client.scheduler;
    const wasPaused = scheduler.isPaused;
    if (!wasPaused) scheduler.pause();
    try {
      const deadline = this.clock.now() + this.stopGraceMs;
      // Let requests on the wire finish, so that every POST's outcome is known.
      while (this.active.size > 0 && scheduler.stats().inFlight > 0 && this.clock.now() < deadline && !this.hardAbort) {
        await sleep(Math.min(20, Math.max(1, deadline - this.clock.now())), this.clock);
      }
      if (this.active.size > 0) {
        if (scheduler.stats().inFlight > 0) this.hardAbort = true;
        await sleep(0, this.clock); // let answered requests reach their continuations
        this.itemSignal.abort(new Stopped(this.stopInfo?.message ?? 'Stopped'));
        const settled = Promise.all([...this.active.values()].map((a) => a.done));
        // A timer that outlived the race would hold the process open for 5 s after the run ended: cancel it.
        const timeout = new AbortController();
        const cap = sleep(5000, this.clock, timeout.signal);
        cap.catch(() => {});
        try {
          await Promise.race([settled, cap]);
        } finally {
          timeout.abort();
        }
      }
    } finally {
      if (!wasPaused && !this.hardAbort) scheduler.resume();
    }
  }
}
