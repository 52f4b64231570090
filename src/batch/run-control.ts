/**
 * The state a run shares with its items: whether (and why) it is stopping,
 * how many items are submitting, the run of transient failures, and the one
 * "something changed" signal the run's loops wait on. It is the
 * {@link ItemHost} every item of the run gets.
 */
import type { Clock } from '../internal/clock.js';
import type { Logger } from '../internal/logger.js';
import { errorCode, transientCause } from './classify.js';
import type { ItemHost } from './item.js';
import type { Journal, TerminalRecord } from './journal.js';
import type { ResolvedBatchOptions } from './options.js';
import type { Tally } from './tally.js';
import type { BatchClient, StopInfo } from './types.js';

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
  /** Set by the first stop requested; later requests keep the first reason. */
  stopInfo: StopInfo | undefined;
  /** A stop that cut requests on the wire. */
  hardAbort = false;
  /** Items between their `submitting` record and the answer to their POST. */
  submittingNow = 0;
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

  async waitForSubmitSlot(signal: AbortSignal): Promise<void> {
    while (this.submittingNow >= this.#settings.maxSubmitting && !this.stopInfo && !signal.aborted) await this.nextChange();
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
}
