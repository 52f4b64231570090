import { systemClock, type Clock } from '../internal/clock.js';
import { silentLogger, type Logger } from '../internal/logger.js';
import { BatchSetupError } from '../errors/batch-setup-error.js';
import { dailyMessage, stopFor } from './classify.js';
import { parseInput, type InvalidItem, type ParsedItem } from './input.js';
import { runItem } from './item.js';
import { RunControl } from './run-control.js';
import { CLAIMED, ErrorsFile, Journal, JournalWriteError, reopen, SEEN, STATE_CODE, type OpenEntry, type TerminalRecord } from './journal.js';
import { BATCH_DEFAULTS, checkBatchClient, resolveBatchOptions, validateBatchItem, type ResolvedBatchOptions } from './options.js';
import { ResultStream } from './result-stream.js';
import { RunSpend } from './spend.js';
import { invalidRecord, Tally, toResult } from './tally.js';
import type { Batch, BatchClient, BatchInput, BatchProgress, BatchResult, BatchSummary, RunBatchOptions, StopReason } from './types.js';

export { BATCH_DEFAULTS, validateBatchItem };
export type { Batch };

export { BatchSetupError };


/**
 * Runs a batch of jobs through `client`, with the results file as checkpoint.
 *
 * - **Streaming.** `inputs` (sync or async iterable of item objects, or of `{line, raw}` JSONL lines, e.g.
 *   from {@link readJsonlLines}) is read only while fewer than `maxInFlight` items are active and the
 *   scheduler's queue holds fewer than `maxQueued` requests (`scheduler.onSizeLessThan`), so it is read as
 *   fast as the quota drains it and memory stays flat for any input size.
 * - **Results** come out as they complete, each with its input's id: iterate the returned object (start
 *   iterating in the same tick as the call; results that completed before you iterate are only in the
 *   file), or pass `onResult`. A slow iterator holds the batch back.
 * - **Checkpoint.** See `journal.ts` for the records and when they are flushed and fsynced. A run over the
 *   same `out` skips finished items, polls items whose request id is known (never resubmitting them), and
 *   resubmits items whose submission's outcome is unknown, flagged `possibleDuplicate`.
 * - **Stops.** A daily quota (with `onDailyLimit: 'stop'`), a 401, an exhausted balance, a run of transient
 *   failures, a configuration error, `signal`, or {@link Batch.stop}: the run stops dispatching, lets requests
 *   on the wire finish (up to `graceMs`), and ends with `summary.stopped` set. Every stop is resumable.
 * - **Configuration errors.** A 404, 405 or 410 before any request of the run succeeded means the base URL
 *   is not the API: the run stops (`reason: 'configuration'`, the URL in
 *   the message) and no item is marked finished. After a request succeeded, a 404 is the item's own: it fails.
 * - **Retrying failures.** With `retryFailed`, items whose terminal record is `failed` run again.
 *
 * @example
 * const batch = runBatch(client, readJsonlLines('prompts.jsonl'), { out: 'results.jsonl', endpoint: 'txt2img' });
 * for await (const r of batch) console.log(r.id, r.state);
 * const summary = await batch.summary;
 */
export function runBatch(client: BatchClient, inputs: Iterable<BatchInput> | AsyncIterable<BatchInput>, options: RunBatchOptions): Batch {
  checkBatchClient(client);
  const resolved = resolveBatchOptions(options);
  if (inputs === null || typeof inputs !== 'object' || (!(Symbol.asyncIterator in inputs) && !(Symbol.iterator in inputs))) {
    throw new TypeError('Expected `inputs` to be an iterable or async iterable of items');
  }
  return new BatchRun(client, inputs, options, resolved);
}

class BatchRun implements Batch {
  readonly out: string;
  readonly summary: Promise<BatchSummary>;

  readonly #client: BatchClient;
  readonly #inputs: Iterable<BatchInput> | AsyncIterable<BatchInput>;
  readonly #options: RunBatchOptions;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #settings: ResolvedBatchOptions;
  readonly #validate: (endpoint: string, params: Record<string, unknown>) => Record<string, string[]> | undefined;
  /** What the run shares with its items (see `run-control.ts`). */
  readonly #ctl: RunControl;

  #journal: Journal | undefined;
  #errors: ErrorsFile | undefined;
  /** The one outstanding `scheduler.onSizeLessThan` wait (never one per loop: they would pile up). */
  #sizeWait: Promise<void> | undefined;
  #inputDone = false;
  #startedAt = 0;
  #dispatchedAtStart = 0;
  #rateLimitedAtStart = 0;
  readonly #tally = new Tally();
  readonly #results = new ResultStream(
    () => this.#ctl.changed(),
    () => this.stop(),
  );

  // listeners
  readonly #onDaily = (event: { resetAt: number | undefined; action: string }): void => {
    if (this.#settings.onDailyLimit !== 'stop') return;
    this.#ctl.requestStop(event.resetAt === undefined ? { reason: 'daily-quota', message: dailyMessage(undefined) } : { reason: 'daily-quota', message: dailyMessage(event.resetAt, this.#clock.now()), resetAt: event.resetAt });
  };
  readonly #onPaused = (event: { reason: string }): void => {
    if (event.reason === 'authentication') this.#ctl.requestStop(stopFor({ code: 'AUTHENTICATION_FAILED', status: 401 }, this.#options.apiBaseUrl));
    else if (event.reason === 'store') this.#ctl.requestStop({ reason: 'store-unavailable', message: 'The shared quota store is unavailable.' });
  };
  readonly #onAbortSignal = (): void => {
    this.#ctl.requestStop({ reason: 'signal', message: 'Stopped by the caller.' });
  };

  constructor(client: BatchClient, inputs: Iterable<BatchInput> | AsyncIterable<BatchInput>, options: RunBatchOptions, settings: ResolvedBatchOptions) {
    this.#client = client;
    this.#inputs = inputs;
    this.#options = options;
    this.#settings = settings;
    this.out = options.out;
    this.#clock = options.clock ?? systemClock;
    this.#logger = (options.logger ?? silentLogger).child({ component: 'batch' });
    this.#validate = options.validate ?? validateBatchItem;
    this.#ctl = new RunControl({
      client,
      clock: this.#clock,
      logger: this.#logger,
      settings,
      tally: this.#tally,
      keepPreview: options.keepPreview === true,
      apiBaseUrl: options.apiBaseUrl,
      finishTerminal: (record, resumed) => this.#finishTerminal(record, resumed),
    });
    if (settings.maxSpend !== undefined) this.#ctl.spend = new RunSpend(client, settings.maxSpend, options.spendLedger, this.#logger);
    // Start on the next macrotask, so that a caller iterating right away sees every result.
    this.summary = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.#main());
    this.summary.catch(() => {});
  }

  // ------------------------------------------------------------------ public

  progress(): BatchProgress {
    const stats = this.#client.scheduler.stats();
    const tally = this.#tally;
    const minute = stats.budget?.minute;
    return {
      ...(minute?.limit !== undefined && minute.remaining !== undefined ? { minuteUsed: Math.max(0, minute.limit - minute.remaining) } : {}),
      items: tally.items,
      skipped: tally.skipped,
      done: tally.run.done,
      failed: tally.run.failed,
      invalid: tally.run.invalid,
      inFlight: this.#ctl.active.size,
      queued: stats.queued,
      resumed: tally.counters.resumed,
      possibleDuplicates: tally.possibleDuplicates,
      duplicateIds: tally.duplicateIds,
      dispatched: stats.counts.dispatched - this.#dispatchedAtStart,
      rateLimited: stats.counts.rateLimited - this.#rateLimitedAtStart,
      minuteLimit: stats.budget?.minute.limit,
      parkedUntil: stats.parkedUntil,
      stopping: this.#ctl.stopInfo !== undefined,
      elapsedMs: this.#startedAt === 0 ? 0 : this.#clock.now() - this.#startedAt,
      ...(this.#ctl.spend ? { spend: this.#ctl.spend.summary() } : {}),
    };
  }

  stop(options: { graceMs?: number; reason?: StopReason; message?: string } = {}): Promise<BatchSummary> {
    if (options.graceMs !== undefined) this.#ctl.stopGraceMs = options.graceMs;
    this.#ctl.requestStop({ reason: options.reason ?? 'stopped', message: options.message ?? 'Stopped by the caller.' });
    return this.summary;
  }

  abort(message = 'Aborted.'): void {
    this.#ctl.requestStop({ reason: 'signal', message });
    this.#ctl.hardAbort = true;
    this.#ctl.abortItems(message);
    this.#journal?.closeSync();
    this.#errors?.close();
  }

  [Symbol.asyncIterator](): AsyncIterator<BatchResult> {
    return this.#results.iterator();
  }

  // ------------------------------------------------------------------ main

  async #main(): Promise<BatchSummary> {
    this.#startedAt = this.#clock.now();
    try {
      this.#journal = await Journal.open(this.out, {
        fsyncIntervalMs: this.#settings.fsyncIntervalMs,
        fsyncEveryRecords: this.#settings.fsyncEveryRecords,
        clock: this.#clock,
      });
      this.#errors = new ErrorsFile(this.#settings.errorsOut);
      await this.#ctl.spend?.open(this.#journal.index.spentNano);
    } catch (error) {
      this.#journal?.closeSync();
      const setupError = new BatchSetupError((error as Error).message, { cause: error });
      this.#results.end(setupError);
      throw setupError;
    }
    const journal = this.#journal;
    this.#ctl.journal = journal;
    const index = journal.index;
    const scheduler = this.#client.scheduler;
    const startStats = scheduler.stats();
    this.#dispatchedAtStart = startStats.counts.dispatched;
    this.#rateLimitedAtStart = startStats.counts.rateLimited;
    scheduler.on('dailyQuotaExhausted', this.#onDaily);
    scheduler.on('paused', this.#onPaused);
    const signal = this.#options.signal;
    signal?.addEventListener('abort', this.#onAbortSignal, { once: true });
    if (signal?.aborted) this.#onAbortSignal();
    this.#logger.info(
      {
        out: this.out,
        records: index.records,
        finished: index.totals.done + index.totals.failed + index.totals.invalid,
        open: index.open.size,
        corruptLines: index.corruptLines,
        tornTail: index.tornTail,
      },
      index.records > 0 ? 'resuming batch from the results file' : 'starting batch',
    );

    try {
      await this.#feed();
      if (!this.#ctl.stopInfo) await this.#resumeOrphans();
      if (this.#ctl.stopInfo) await this.#ctl.stopProcedure();
      else await this.#drain();
    } finally {
      scheduler.off('dailyQuotaExhausted', this.#onDaily);
      scheduler.off('paused', this.#onPaused);
      signal?.removeEventListener('abort', this.#onAbortSignal);
    }
    await this.#ctl.spend?.settled();
    const reached = this.#ctl.spend?.reached;
    if (reached && !this.#ctl.stopInfo) {
      this.#ctl.requestStop({ reason: 'spend-cap', message: `${reached.message}. Raise the cap (--max-spend, maxSpend), then run the batch again to resume.` });
    }
    let orphaned = 0;
    for (const [id] of index.open) if ((index.table.get(id) & CLAIMED) === 0) orphaned++;
    const endCounts = scheduler.stats().counts;
    const summary = this.#tally.summarize({
      out: this.out,
      errorsOut: this.#settings.errorsOut,
      inputDone: this.#inputDone,
      stopped: this.#ctl.stopInfo,
      orphaned,
      index,
      elapsedMs: this.#clock.now() - this.#startedAt,
      requests: { dispatched: endCounts.dispatched - this.#dispatchedAtStart, rateLimited: endCounts.rateLimited - this.#rateLimitedAtStart },
    });
    if (this.#ctl.spend) summary.spend = this.#ctl.spend.summary();
    await journal.close();
    this.#errors?.close();
    this.#results.end();
    this.#logger.info(
      { complete: summary.complete, stopped: summary.stopped?.reason, run: summary.run, pending: summary.pending, spend: summary.spend },
      'batch finished',
    );
    return summary;
  }

  /** Reads the input and starts items, as fast as room allows. */
  async #feed(): Promise<void> {
    const index = this.#journal!.index;
    const table = index.table;
    const retryFailed = this.#settings.retryFailed;
    const defaults = {
      endpoint: this.#options.endpoint,
      params: this.#options.params,
      validate: this.#validate,
      skip: (id: string): boolean => {
        const code = table.get(id);
        if ((code & SEEN) !== 0) return false; // a repeat: reported below
        if (retryFailed && (code & 3) === STATE_CODE.failed && (code & CLAIMED) === 0) return false; // run again
        // A line refused as invalid cost nothing: it is checked again under this run's settings (a run-wide
        // flag such as --endpoint or --params may have been what was wrong).
        if ((code & 3) === STATE_CODE.invalid && (code & CLAIMED) === 0) return false;
        if ((code & 3) !== 0 || (code & CLAIMED) !== 0) {
          table.mark(id, SEEN);
          return true;
        }
        return false;
      },
    };
    let position = 0;
    try {
      for await (const input of this.#inputs) {
        position++;
        if (this.#ctl.stopInfo || this.#ctl.spend?.reached) break;
        const item = parseInput(input, position, defaults);
        if (item === undefined) continue;
        this.#tally.items++;
        if (item.status === 'skip') {
          this.#tally.skipped++;
          continue;
        }
        const code = table.get(item.id);
        if ((code & SEEN) !== 0) {
          this.#reportDuplicate(item.id, item.line);
          continue;
        }
        table.mark(item.id, SEEN | CLAIMED);
        if (item.status === 'invalid' && (code & 3) === STATE_CODE.invalid) {
          // Still invalid: its record is in the results file already.
          this.#tally.skipped++;
          continue;
        }
        if (item.status === 'invalid') {
          this.#finishInvalid(item);
          await this.#waitForRoom();
          continue;
        }
        await this.#waitForRoom();
        if (this.#ctl.stopInfo || this.#ctl.spend?.reached) {
          // Read but not started: the next run reads it again.
          break;
        }
        // A line refused as invalid (or failed, with retryFailed) runs again: its old end no longer counts, as
        // the file read back would not count it either (the new records supersede it).
        reopen(index, item.id);
        const prior = index.open.get(item.id);
        this.#start(item.id, prior, item);
      }
      this.#inputDone = this.#ctl.stopInfo === undefined && this.#ctl.spend?.reached === undefined;
    } catch (error) {
      if (this.#ctl.stopInfo === undefined) {
        const message = error instanceof Error ? error.message : String(error);
        if (error instanceof JournalWriteError) {
          this.#logger.error({ err: message }, 'writing the results file failed');
          this.#ctl.requestStop({ reason: 'output-error', message });
        } else {
          this.#logger.error({ err: message }, 'reading the input failed');
          this.#ctl.requestStop({ reason: 'input-error', message: `Reading the input failed: ${message}` });
        }
      }
    }
  }

  /** Items a previous run submitted whose ids are not in this input: poll them to the end anyway. */
  async #resumeOrphans(): Promise<void> {
    const index = this.#journal!.index;
    const orphans: [string, OpenEntry][] = [];
    for (const [id, entry] of index.open) {
      if (entry.state === 'submitted' && (index.table.get(id) & CLAIMED) === 0) orphans.push([id, entry]);
    }
    for (const [id, entry] of orphans) {
      await this.#waitForRoom();
      if (this.#ctl.stopInfo) return;
      index.table.mark(id, CLAIMED);
      this.#start(id, entry, undefined);
    }
  }

  /** Waits until another item may start: room in flight, a short scheduler queue, a consumer keeping up. */
  async #waitForRoom(): Promise<void> {
    const scheduler = this.#client.scheduler;
    for (;;) {
      if (this.#ctl.stopInfo || this.#ctl.spend?.reached) return;
      const { maxInFlight, maxSubmitting, maxQueued } = this.#settings;
      const consumerBehind = this.#results.backlog >= maxInFlight;
      if (this.#ctl.active.size >= maxInFlight || this.#ctl.submittingNow >= maxSubmitting || consumerBehind) {
        await this.#ctl.nextChange();
        continue;
      }
      if (scheduler.size >= maxQueued) {
        this.#sizeWait ??= scheduler.onSizeLessThan(maxQueued).then(() => {
          this.#sizeWait = undefined;
        });
        // A stop, an item finishing or a result consumed also end the wait (#changed): no long-lived promise is
        // raced here, so nothing accumulates over millions of items.
        await Promise.race([this.#sizeWait, this.#ctl.nextChange()]);
        continue;
      }
      return;
    }
  }

  async #drain(): Promise<void> {
    while (this.#ctl.active.size > 0) {
      if (this.#ctl.stopInfo) return this.#ctl.stopProcedure();
      await this.#ctl.nextChange();
    }
  }

  // ------------------------------------------------------------------ items

  #start(id: string, prior: OpenEntry | undefined, item: ParsedItem | undefined): void {
    const active = { done: Promise.resolve() };
    this.#ctl.active.set(id, active);
    const ended = (): void => {
      this.#ctl.active.delete(id);
      this.#ctl.changed();
    };
    active.done = runItem(this.#ctl, id, prior, item, this.#ctl.itemSignal.signal).then(ended, (error: unknown) => {
      try {
        this.#onItemCrash(id, error);
      } finally {
        ended();
      }
    });
  }

  #onItemCrash(id: string, error: unknown): void {
    // A write to the results file failed (or a bug): stop, leaving the item resumable.
    const message = error instanceof Error ? error.message : String(error);
    this.#logger.error({ id, err: message }, 'batch item crashed');
    this.#tally.counters.deferred++;
    this.#ctl.requestStop({ reason: error instanceof JournalWriteError ? 'output-error' : 'stopped', message });
  }

  #finishInvalid(item: InvalidItem): void {
    this.#errors!.append({ line: item.line, id: item.id, kind: item.kind, message: item.message, ...(item.fields ? { fields: item.fields } : {}) });
    this.#tally.badLine({ line: item.line, id: item.id, kind: item.kind, message: item.message });
    this.#finishTerminal(invalidRecord(item, this.#clock.now()), false);
  }

  #reportDuplicate(id: string, line: number): void {
    this.#tally.duplicateIds++;
    const message = `Line ${line} repeats the id ${JSON.stringify(id)} of an earlier line; it was not run`;
    this.#errors!.append({ line, id, kind: 'duplicate-id', message });
    this.#tally.badLine({ line, id, kind: 'duplicate-id', message });
  }

  #finishTerminal(record: TerminalRecord, resumed: boolean): void {
    const journal = this.#journal!;
    journal.append(record);
    this.#tally.terminal(record, journal.index);
    const result = toResult(record, resumed);
    if (this.#options.onResult) {
      try {
        this.#options.onResult(result);
      } catch (error) {
        this.#logger.error({ err: error instanceof Error ? error.message : String(error) }, 'onResult threw');
      }
    }
    this.#results.push(result);
  }
}
