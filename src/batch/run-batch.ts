import { setMaxListeners } from 'node:events';
import { sleep, systemClock, type Clock } from '../internal/clock.js';
import { silentLogger, type Logger } from '../internal/logger.js';
import { BatchSetupError } from '../errors/batch-setup-error.js';
import { KNOWN_ENDPOINTS, validateParams } from '../modelbeam/endpoints.js';
import { classifyError, dailyMessage, errorCode, mayResubmit, stopFor, toItemError } from './classify.js';
import { parseInput, type InvalidItem, type ParsedItem } from './input.js';
import { CLAIMED, CODE_STATE, ErrorsFile, Journal, JournalWriteError, SEEN, STATE_CODE, type OpenEntry, type TerminalRecord } from './journal.js';
import type {
  BatchClient,
  BatchInput,
  BatchJobResult,
  BatchProgress,
  BatchResult,
  BatchSummary,
  InvalidLine,
  JobOutput,
  RunBatchOptions,
  StopInfo,
  StopReason,
  TerminalState,
} from './types.js';

/** The defaults of {@link RunBatchOptions}, in one place. */
export const BATCH_DEFAULTS = {
  maxInFlight: 256,
  maxQueued: 32,
  maxSubmitting: 8,
  maxResubmissions: 2,
  resubmitOnUnknownOutcome: true,
  onDailyLimit: 'stop',
  graceMs: 30_000,
  maxConsecutiveTransient: 10,
  fsyncIntervalMs: 1000,
  fsyncEveryRecords: 1000,
} as const;

const KNOWN_OPTIONS = new Set([
  'out',
  'errorsOut',
  'endpoint',
  'params',
  'maxInFlight',
  'maxQueued',
  'maxSubmitting',
  'maxResubmissions',
  'resubmitOnUnknownOutcome',
  'onDailyLimit',
  'graceMs',
  'maxConsecutiveTransient',
  'fsyncIntervalMs',
  'fsyncEveryRecords',
  'signal',
  'validate',
  'keepPreview',
  'onResult',
  'logger',
  'clock',
]);

/**
 * The default local check of a batch item: the endpoint must be one the ModelBeam docs name
 * (`KNOWN_ENDPOINTS`), and the parameters must pass `validateParams` (the documented ranges).
 */
export function validateBatchItem(endpoint: string, params: Record<string, unknown>): Record<string, string[]> | undefined {
  if (!KNOWN_ENDPOINTS.includes(endpoint)) {
    return { endpoint: [`Unknown endpoint ${JSON.stringify(endpoint)}; expected one of ${KNOWN_ENDPOINTS.join(', ')}`] };
  }
  return validateParams(endpoint, params);
}

/** A running batch: iterate it for results as they complete, or await `summary`. */
export interface Batch extends AsyncIterable<BatchResult> {
  /** The results file. */
  readonly out: string;
  /**
   * Resolves when the run ends: the input is done, or a stop finished. Rejects only when the run could not
   * start (the results file cannot be written, or it is in use) — before any request was sent.
   */
  readonly summary: Promise<BatchSummary>;
  /** A live snapshot for progress displays. */
  progress(): BatchProgress;
  /**
   * Stops gracefully: no new item starts; the client's scheduler is paused so no new request leaves;
   * requests on the wire get up to `graceMs` to finish; then every item still waiting is aborted and left
   * resumable. Resolves with the summary.
   */
  stop(options?: { graceMs?: number; reason?: StopReason; message?: string }): Promise<BatchSummary>;
  /**
   * Stops at once: aborts every item, even with a request on the wire, and closes the results file
   * synchronously. Items whose POST was on the wire are resubmitted by the next run, flagged
   * `possibleDuplicate`. For a process about to exit (a second Ctrl-C).
   */
  abort(message?: string): void;
}

export { BatchSetupError };

class Stopped extends Error {
  override readonly name = 'AbortError';
}

interface Active {
  done: Promise<void>;
}

function checkOptions(options: RunBatchOptions): void {
  if (typeof options !== 'object' || options === null) throw new TypeError('Expected `options` to be an object, e.g. `{ out: "results.jsonl" }`');
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(key)) throw new TypeError(`Unknown option \`${key}\`; expected one of ${[...KNOWN_OPTIONS].map((k) => `\`${k}\``).join(', ')}`);
  }
  if (typeof options.out !== 'string' || options.out === '') {
    throw new TypeError('Expected `out` to be the path of the results file, e.g. `runBatch(client, items, { out: "results.jsonl" })`');
  }
  const ints: [string, unknown, number][] = [
    ['maxInFlight', options.maxInFlight, 1],
    ['maxQueued', options.maxQueued, 1],
    ['maxSubmitting', options.maxSubmitting, 1],
    ['maxResubmissions', options.maxResubmissions, 0],
    ['graceMs', options.graceMs, 0],
    ['maxConsecutiveTransient', options.maxConsecutiveTransient, 1],
    ['fsyncIntervalMs', options.fsyncIntervalMs, 0],
    ['fsyncEveryRecords', options.fsyncEveryRecords, 1],
  ];
  for (const [name, value, min] of ints) {
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
      throw new TypeError(`Expected \`${name}\` to be an integer >= ${min}, got \`${String(value)}\` (${typeof value})`);
    }
  }
  if (options.onDailyLimit !== undefined && options.onDailyLimit !== 'stop' && options.onDailyLimit !== 'wait') {
    throw new TypeError(`Expected \`onDailyLimit\` to be 'stop' or 'wait', got \`${String(options.onDailyLimit)}\``);
  }
  if (options.endpoint !== undefined && (typeof options.endpoint !== 'string' || options.endpoint === '')) {
    throw new TypeError(`Expected \`endpoint\` to be a non-empty string, got \`${String(options.endpoint)}\``);
  }
  if (options.params !== undefined && (typeof options.params !== 'object' || options.params === null || Array.isArray(options.params))) {
    throw new TypeError('Expected `params` to be an object of default job parameters');
  }
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) throw new TypeError('Expected `signal` to be an AbortSignal');
  for (const name of ['validate', 'onResult'] as const) {
    if (options[name] !== undefined && typeof options[name] !== 'function') throw new TypeError(`Expected \`${name}\` to be a function`);
  }
  if (options.errorsOut !== undefined && (typeof options.errorsOut !== 'string' || options.errorsOut === '')) {
    throw new TypeError(`Expected \`errorsOut\` to be the path of the errors file, got \`${String(options.errorsOut)}\` (${typeof options.errorsOut})`);
  }
  if (options.keepPreview !== undefined && typeof options.keepPreview !== 'boolean') {
    throw new TypeError(`Expected \`keepPreview\` to be a boolean, got \`${String(options.keepPreview)}\` (${typeof options.keepPreview})`);
  }
  const logger = options.logger as unknown as Record<string, unknown> | null | undefined;
  if (logger !== undefined && (typeof logger !== 'object' || logger === null || typeof logger['child'] !== 'function' || typeof logger['warn'] !== 'function')) {
    throw new TypeError('Expected `logger` to be a pino logger');
  }
  const clock = options.clock as unknown as Record<string, unknown> | null | undefined;
  if (clock !== undefined && (typeof clock !== 'object' || clock === null || typeof clock['now'] !== 'function' || typeof clock['setTimeout'] !== 'function' || typeof clock['clearTimeout'] !== 'function')) {
    throw new TypeError('Expected `clock` to be an object with now(), setTimeout() and clearTimeout()');
  }
}

function checkClient(client: BatchClient): void {
  const c = client as unknown as Record<string, unknown> | null;
  if (typeof c !== 'object' || c === null || typeof c['submit'] !== 'function' || typeof c['wait'] !== 'function') {
    throw new TypeError('Expected `client` to be a ModelBeamClient (with submit() and wait())');
  }
  const s = c['scheduler'] as Record<string, unknown> | undefined;
  if (typeof s !== 'object' || s === null || typeof s['onSizeLessThan'] !== 'function' || typeof s['stats'] !== 'function') {
    throw new TypeError('Expected `client.scheduler` to be a RateLimitScheduler');
  }
}

/** Reads `resultUrl`, `resultsAltFormats`, `result` (and `preview` when kept) off a job result. */
function outputOf(job: BatchJobResult, keepPreview: boolean): JobOutput {
  const j = job as unknown as Record<string, unknown>;
  const out: JobOutput = {};
  if (typeof j['resultUrl'] === 'string') out.resultUrl = j['resultUrl'];
  if (typeof j['resultsAltFormats'] === 'object' && j['resultsAltFormats'] !== null) {
    out.resultsAltFormats = j['resultsAltFormats'] as Record<string, string>;
  }
  if (j['result'] !== undefined && j['result'] !== null) out.result = j['result'];
  if (keepPreview && j['preview'] !== undefined && j['preview'] !== null) out.preview = j['preview'];
  return out;
}

function toResult(record: TerminalRecord, resumed: boolean): BatchResult {
  const result: BatchResult = {
    id: record.id,
    line: record.line,
    state: record.state,
    attempts: record.attempts,
    resubmissions: record.resubmissions,
    possibleDuplicate: record.possibleDuplicate,
    resumed,
  };
  if (record.requestId !== undefined) result.requestId = record.requestId;
  if (record.output !== undefined) result.output = record.output;
  if (record.error !== undefined) result.error = record.error;
  if (record.meta !== undefined) result.meta = record.meta;
  return result;
}

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
 *   failures, `signal`, or {@link Batch.stop}: the run stops dispatching, lets requests on the wire finish
 *   (up to `graceMs`), and ends with `summary.stopped` set. Every stop is resumable.
 *
 * @example
 * const batch = runBatch(client, readJsonlLines('prompts.jsonl'), { out: 'results.jsonl', endpoint: 'txt2img' });
 * for await (const r of batch) console.log(r.id, r.state);
 * const summary = await batch.summary;
 */
export function runBatch(client: BatchClient, inputs: Iterable<BatchInput> | AsyncIterable<BatchInput>, options: RunBatchOptions): Batch {
  checkClient(client);
  checkOptions(options);
  if (inputs === null || typeof inputs !== 'object' || (!(Symbol.asyncIterator in inputs) && !(Symbol.iterator in inputs))) {
    throw new TypeError('Expected `inputs` to be an iterable or async iterable of items');
  }
  return new BatchRun(client, inputs, options);
}

class BatchRun implements Batch {
  readonly out: string;
  readonly summary: Promise<BatchSummary>;

  readonly #client: BatchClient;
  readonly #inputs: Iterable<BatchInput> | AsyncIterable<BatchInput>;
  readonly #options: RunBatchOptions;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #errorsOut: string;
  readonly #maxInFlight: number;
  readonly #maxQueued: number;
  readonly #maxSubmitting: number;
  /** Items between their `submitting` record and the answer to their POST. */
  #submitting = 0;
  readonly #maxResubmissions: number;
  readonly #resubmitUnknown: boolean;
  readonly #graceMs: number;
  readonly #maxTransient: number;
  readonly #validate: (endpoint: string, params: Record<string, unknown>) => Record<string, string[]> | undefined;

  #journal: Journal | undefined;
  #errors: ErrorsFile | undefined;
  readonly #active = new Map<string, Active>();
  /**
   * The signal every item runs with. A stop aborts all items at once (never one alone), so one
   * controller serves the run: a per-item AbortController cost ~1 KB of heap that outlived the young
   * generation, and 2–3 µs, for every item of a million-line batch.
   */
  readonly #itemSignal = new AbortController();
  #stop: StopInfo | undefined;
  #stopGraceMs: number;
  /** The one outstanding `scheduler.onSizeLessThan` wait (never one per loop: they would pile up). */
  #sizeWait: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  #hardAbort = false;
  #finished = false;
  #inputDone = false;
  #startedAt = 0;
  #consecutiveTransient = 0;
  #lastTransient = '';
  #dispatchedAtStart = 0;
  #rateLimitedAtStart = 0;

  // counters
  #items = 0;
  #skipped = 0;
  #resumed = 0;
  #resubmittedUnknown = 0;
  #possibleDuplicates = 0;
  #resubmissions = 0;
  #deferred = 0;
  #duplicateIds = 0;
  readonly #run = { done: 0, failed: 0, invalid: 0 };
  readonly #failuresByCode: Record<string, number> = {};
  readonly #invalidLines: InvalidLine[] = [];

  // iteration
  #iterating = false;
  readonly #buffer: BatchResult[] = [];
  #consumerWake: (() => void) | undefined;
  #changeWaiters: (() => void)[] = [];
  #setupError: unknown;

  // listeners
  readonly #onDaily = (event: { resetAt: number | undefined; action: string }): void => {
    if ((this.#options.onDailyLimit ?? BATCH_DEFAULTS.onDailyLimit) !== 'stop') return;
    this.#requestStop(event.resetAt === undefined ? { reason: 'daily-quota', message: dailyMessage(undefined) } : { reason: 'daily-quota', message: dailyMessage(event.resetAt, this.#clock.now()), resetAt: event.resetAt });
  };
  readonly #onPaused = (event: { reason: string }): void => {
    if (event.reason === 'authentication') this.#requestStop(stopFor({ code: 'AUTHENTICATION_FAILED', status: 401 }));
    else if (event.reason === 'store') this.#requestStop({ reason: 'store-unavailable', message: 'The shared quota store is unavailable.' });
  };
  readonly #onAbortSignal = (): void => {
    this.#requestStop({ reason: 'signal', message: 'Stopped by the caller.' });
  };

  constructor(client: BatchClient, inputs: Iterable<BatchInput> | AsyncIterable<BatchInput>, options: RunBatchOptions) {
    this.#client = client;
    this.#inputs = inputs;
    this.#options = options;
    this.out = options.out;
    this.#clock = options.clock ?? systemClock;
    this.#logger = (options.logger ?? silentLogger).child({ component: 'batch' });
    this.#errorsOut = options.errorsOut ?? `${options.out}.errors.jsonl`;
    this.#maxInFlight = options.maxInFlight ?? BATCH_DEFAULTS.maxInFlight;
    this.#maxQueued = options.maxQueued ?? BATCH_DEFAULTS.maxQueued;
    this.#maxSubmitting = options.maxSubmitting ?? BATCH_DEFAULTS.maxSubmitting;
    this.#maxResubmissions = options.maxResubmissions ?? BATCH_DEFAULTS.maxResubmissions;
    this.#resubmitUnknown = options.resubmitOnUnknownOutcome ?? BATCH_DEFAULTS.resubmitOnUnknownOutcome;
    this.#graceMs = options.graceMs ?? BATCH_DEFAULTS.graceMs;
    this.#stopGraceMs = this.#graceMs;
    this.#maxTransient = options.maxConsecutiveTransient ?? BATCH_DEFAULTS.maxConsecutiveTransient;
    this.#validate = options.validate ?? validateBatchItem;
    // One listener per client call in flight (up to `maxInFlight` items), each removed when its call settles.
    setMaxListeners(0, this.#itemSignal.signal);
    // Start on the next macrotask, so that a caller iterating right away sees every result.
    this.summary = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.#main());
    this.summary.catch(() => {});
  }

  // ------------------------------------------------------------------ public

  progress(): BatchProgress {
    const stats = this.#client.scheduler.stats();
    return {
      items: this.#items,
      skipped: this.#skipped,
      done: this.#run.done,
      failed: this.#run.failed,
      invalid: this.#run.invalid,
      inFlight: this.#active.size,
      queued: stats.queued,
      resumed: this.#resumed,
      possibleDuplicates: this.#possibleDuplicates,
      dispatched: stats.counts.dispatched - this.#dispatchedAtStart,
      rateLimited: stats.counts.rateLimited - this.#rateLimitedAtStart,
      minuteLimit: stats.budget?.minute.limit,
      parkedUntil: stats.parkedUntil,
      stopping: this.#stop !== undefined,
      elapsedMs: this.#startedAt === 0 ? 0 : this.#clock.now() - this.#startedAt,
    };
  }

  stop(options: { graceMs?: number; reason?: StopReason; message?: string } = {}): Promise<BatchSummary> {
    if (options.graceMs !== undefined) this.#stopGraceMs = options.graceMs;
    this.#requestStop({ reason: options.reason ?? 'stopped', message: options.message ?? 'Stopped by the caller.' });
    return this.summary;
  }

  abort(message = 'Aborted.'): void {
    this.#requestStop({ reason: 'signal', message });
    this.#hardAbort = true;
    if (this.#active.size > 0) this.#itemSignal.abort(new Stopped(message));
    this.#journal?.closeSync();
    this.#errors?.close();
  }

  [Symbol.asyncIterator](): AsyncIterator<BatchResult> {
    if (this.#iterating) throw new TypeError('A batch can be iterated only once');
    this.#iterating = true;
    return {
      next: async (): Promise<IteratorResult<BatchResult>> => {
        for (;;) {
          const result = this.#buffer.shift();
          if (result !== undefined) {
            this.#changed();
            return { value: result, done: false };
          }
          if (this.#setupError !== undefined) throw this.#setupError;
          if (this.#finished) return { value: undefined, done: true };
          await new Promise<void>((resolve) => {
            this.#consumerWake = resolve;
          });
        }
      },
      return: async (): Promise<IteratorResult<BatchResult>> => {
        this.#iterating = false;
        this.#buffer.length = 0;
        this.#changed();
        if (!this.#finished) await this.stop();
        return { value: undefined, done: true };
      },
    };
  }

  // ------------------------------------------------------------------ main

  async #main(): Promise<BatchSummary> {
    this.#startedAt = this.#clock.now();
    try {
      this.#journal = await Journal.open(this.out, {
        fsyncIntervalMs: this.#options.fsyncIntervalMs ?? BATCH_DEFAULTS.fsyncIntervalMs,
        fsyncEveryRecords: this.#options.fsyncEveryRecords ?? BATCH_DEFAULTS.fsyncEveryRecords,
        clock: this.#clock,
      });
      this.#errors = new ErrorsFile(this.#errorsOut);
    } catch (error) {
      this.#journal?.closeSync();
      this.#setupError = new BatchSetupError((error as Error).message, { cause: error });
      this.#finished = true;
      this.#wakeConsumer();
      throw this.#setupError;
    }
    const journal = this.#journal;
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
      if (!this.#stop) await this.#resumeOrphans();
      if (this.#stop) await this.#stopProcedure();
      else await this.#drain();
    } finally {
      scheduler.off('dailyQuotaExhausted', this.#onDaily);
      scheduler.off('paused', this.#onPaused);
      signal?.removeEventListener('abort', this.#onAbortSignal);
    }
    let orphaned = 0;
    for (const [id] of index.open) if ((index.table.get(id) & CLAIMED) === 0) orphaned++;
    const summary = this.#summarize(orphaned);
    await journal.close();
    this.#errors?.close();
    this.#finished = true;
    this.#wakeConsumer();
    this.#logger.info(
      { complete: summary.complete, stopped: summary.stopped?.reason, run: summary.run, pending: summary.pending },
      'batch finished',
    );
    return summary;
  }

  /** Reads the input and starts items, as fast as room allows. */
  async #feed(): Promise<void> {
    const index = this.#journal!.index;
    const table = index.table;
    const defaults = {
      endpoint: this.#options.endpoint,
      params: this.#options.params,
      validate: this.#validate,
      skip: (id: string): boolean => {
        const code = table.get(id);
        if ((code & SEEN) !== 0) return false; // a repeat: reported below
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
        if (this.#stop) break;
        const item = parseInput(input, position, defaults);
        if (item === undefined) continue;
        this.#items++;
        if (item.status === 'skip') {
          this.#skipped++;
          continue;
        }
        const code = table.get(item.id);
        if ((code & SEEN) !== 0) {
          this.#reportDuplicate(item.id, item.line);
          continue;
        }
        table.mark(item.id, SEEN | CLAIMED);
        if (item.status === 'invalid') {
          this.#finishInvalid(item);
          await this.#waitForRoom();
          continue;
        }
        await this.#waitForRoom();
        if (this.#stop) {
          // Read but not started: the next run reads it again.
          break;
        }
        const prior = index.open.get(item.id);
        this.#start(item.id, prior, item);
      }
      this.#inputDone = this.#stop === undefined;
    } catch (error) {
      if (this.#stop === undefined) {
        const message = error instanceof Error ? error.message : String(error);
        if (error instanceof JournalWriteError) {
          this.#logger.error({ err: message }, 'writing the results file failed');
          this.#requestStop({ reason: 'output-error', message });
        } else {
          this.#logger.error({ err: message }, 'reading the input failed');
          this.#requestStop({ reason: 'input-error', message: `Reading the input failed: ${message}` });
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
      if (this.#stop) return;
      index.table.mark(id, CLAIMED);
      this.#start(id, entry, undefined);
    }
  }

  /** Waits until another item may start: room in flight, a short scheduler queue, a consumer keeping up. */
  async #waitForRoom(): Promise<void> {
    const scheduler = this.#client.scheduler;
    for (;;) {
      if (this.#stop) return;
      const consumerBehind = this.#iterating && this.#buffer.length >= this.#maxInFlight;
      if (this.#active.size >= this.#maxInFlight || this.#submitting >= this.#maxSubmitting || consumerBehind) {
        await this.#nextChange();
        continue;
      }
      if (scheduler.size >= this.#maxQueued) {
        this.#sizeWait ??= scheduler.onSizeLessThan(this.#maxQueued).then(() => {
          this.#sizeWait = undefined;
        });
        // A stop, an item finishing or a result consumed also end the wait (#changed): no long-lived promise is
        // raced here, so nothing accumulates over millions of items.
        await Promise.race([this.#sizeWait, this.#nextChange()]);
        continue;
      }
      return;
    }
  }

  #nextChange(): Promise<void> {
    return new Promise<void>((resolve) => this.#changeWaiters.push(resolve));
  }

  #changed(): void {
    const waiters = this.#changeWaiters;
    if (waiters.length === 0) return;
    this.#changeWaiters = [];
    for (const resolve of waiters) resolve();
  }

  #wakeConsumer(): void {
    const wake = this.#consumerWake;
    this.#consumerWake = undefined;
    wake?.();
  }

  async #drain(): Promise<void> {
    while (this.#active.size > 0) {
      if (this.#stop) return this.#stopProcedure();
      await this.#nextChange();
    }
  }

  // ------------------------------------------------------------------ stops

  #requestStop(info: StopInfo): void {
    if (this.#stop) return;
    this.#stop = info;
    this.#logger.warn({ reason: info.reason, resetAt: info.resetAt }, `batch stopping: ${info.message}`);
    this.#changed();
  }

  #stopProcedure(): Promise<void> {
    this.#stopping ??= this.#runStop();
    return this.#stopping;
  }

  async #runStop(): Promise<void> {
    const scheduler = this.#client.scheduler;
    const wasPaused = scheduler.isPaused;
    if (!wasPaused) scheduler.pause();
    try {
      const deadline = this.#clock.now() + this.#stopGraceMs;
      // Let requests on the wire finish, so that every POST's outcome is known.
      while (this.#active.size > 0 && scheduler.stats().inFlight > 0 && this.#clock.now() < deadline && !this.#hardAbort) {
        await sleep(Math.min(20, Math.max(1, deadline - this.#clock.now())), this.#clock);
      }
      if (this.#active.size > 0) {
        if (scheduler.stats().inFlight > 0) this.#hardAbort = true;
        await sleep(0, this.#clock); // let answered requests reach their continuations
        this.#itemSignal.abort(new Stopped(this.#stop?.message ?? 'Stopped'));
        const settled = Promise.all([...this.#active.values()].map((a) => a.done));
        // A timer that outlived the race would hold the process open for 5 s after the run ended: cancel it.
        const timeout = new AbortController();
        const cap = sleep(5000, this.#clock, timeout.signal);
        cap.catch(() => {});
        try {
          await Promise.race([settled, cap]);
        } finally {
          timeout.abort();
        }
      }
    } finally {
      if (!wasPaused && !this.#hardAbort) scheduler.resume();
    }
  }

  // ------------------------------------------------------------------ items

  #start(id: string, prior: OpenEntry | undefined, item: ParsedItem | undefined): void {
    const active: Active = { done: Promise.resolve() };
    this.#active.set(id, active);
    const ended = (): void => {
      this.#active.delete(id);
      this.#changed();
    };
    active.done = this.#runItem(id, prior, item, this.#itemSignal.signal).then(ended, (error: unknown) => {
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
    this.#deferred++;
    this.#requestStop({ reason: error instanceof JournalWriteError ? 'output-error' : 'stopped', message });
  }

  async #runItem(id: string, prior: OpenEntry | undefined, item: ParsedItem | undefined, signal: AbortSignal): Promise<void> {
    const journal = this.#journal!;
    const line = item?.line ?? prior?.line ?? 0;
    const endpoint = item?.endpoint ?? prior?.endpoint ?? '';
    const model = typeof item?.params['model'] === 'string' ? item.params['model'] : prior?.model;
    let attempt = prior?.attempt ?? 0;
    let resubmissions = prior?.resubmissions ?? 0;
    let possibleDuplicate = prior?.possibleDuplicate ?? false;
    let requestId: string | undefined;
    let submittedAt = 0;
    const resumed = prior !== undefined;
    const spent = { total: 0, byCode: new Map<string, number>() };

    if (prior?.state === 'submitted' && prior.requestId !== undefined) {
      requestId = prior.requestId;
      submittedAt = prior.at;
      this.#resumed++;
    } else if (prior?.state === 'submitting') {
      // The previous run died (or stopped hard) between the POST and its answer: the job may exist.
      if (!this.#resubmitUnknown) {
        this.#deferred++;
        return;
      }
      possibleDuplicate = true;
      resubmissions++;
      this.#resubmissions++;
      this.#resubmittedUnknown++;
    }

    const finish = (state: TerminalState, extra: { output?: JobOutput; error?: ReturnType<typeof toItemError> }): void => {
      const record: TerminalRecord = { id, line, state, attempts: attempt, resubmissions, possibleDuplicate, at: this.#clock.now() };
      if (requestId !== undefined) record.requestId = requestId;
      if (extra.output !== undefined) record.output = extra.output;
      if (extra.error !== undefined) record.error = extra.error;
      if (item?.meta !== undefined) record.meta = item.meta;
      this.#finishTerminal(record, resumed);
    };

    for (;;) {
      if (requestId === undefined) {
        if (item === undefined) {
          // An orphan whose job failed: without its input it cannot be sent again.
          this.#deferred++;
          return;
        }
        if (signal.aborted || this.#stop) {
          this.#deferred++;
          return;
        }
        while (this.#submitting >= this.#maxSubmitting && !this.#stop && !signal.aborted) await this.#nextChange();
        if (signal.aborted || this.#stop) {
          this.#deferred++;
          return;
        }
        attempt++;
        journal.append({ id, line, state: 'submitting', attempt, ...(possibleDuplicate ? { possibleDuplicate: true } : {}), at: this.#clock.now() });
        this.#submitting++;
        try {
          let submitted: { requestId: string; result?: unknown };
          try {
            submitted = await this.#client.submit(endpoint, item.params, {
              signal,
              ...(item.priority !== undefined ? { priority: item.priority } : {}),
            });
          } finally {
            this.#submitting--;
            this.#changed();
          }
          requestId = submitted.requestId;
          if (submitted.result !== undefined) {
            // The API answered with the output inline (`return_result_in_response`): nothing to wait for.
            if (requestId === '') requestId = undefined;
            this.#consecutiveTransient = 0;
            finish('done', { output: { result: submitted.result } });
            return;
          }
        } catch (error) {
          if (signal.aborted) {
            // Aborted by a stop. After a graceful stop nothing was on the wire: the POST never left.
            if (!this.#hardAbort) this.#release(id, line, 'stopped');
            this.#deferred++;
            return;
          }
          const kind = classifyError(error);
          if (kind === 'unknown-outcome') {
            this.#logger.warn({ id, line, attempt }, 'submission outcome unknown');
            if (this.#resubmitUnknown && spent.total < this.#maxResubmissions && !this.#stop) {
              possibleDuplicate = true;
              spent.total++;
              resubmissions++;
              this.#resubmissions++;
              continue;
            }
            this.#deferred++; // its `submitting` record stays: the next run resubmits it, flagged
            return;
          }
          if (kind === 'stop') {
            // 401, 403, a daily 429, a balance 422, an unreachable store: the POST was refused or never left.
            // A closed client may have cut a POST on the wire: keep its `submitting` record then.
            if (errorCode(error) !== 'QUEUE_CLOSED') this.#release(id, line, errorCode(error) ?? 'stop');
            this.#deferred++;
            this.#requestStop(stopFor(error));
            return;
          }
          if (kind === 'fatal' || kind === 'job-failed') {
            this.#consecutiveTransient = 0;
            finish('failed', { error: toItemError(error) });
            return;
          }
          // Retries ran out on failures the engine knows were not processed (5xx, refused connections):
          // no job exists. Anything else unexpected may have reached the server: keep the `submitting` record,
          // so that the next run resubmits it flagged as a possible duplicate.
          if (errorCode(error) === 'RETRIES_EXHAUSTED') this.#release(id, line, 'RETRIES_EXHAUSTED');
          this.#deferred++;
          this.#noteTransient(error);
          return;
        }
        submittedAt = this.#clock.now();
        journal.append({
          id,
          line,
          state: 'submitted',
          requestId,
          endpoint,
          ...(model !== undefined ? { model } : {}),
          attempt,
          resubmissions,
          ...(possibleDuplicate ? { possibleDuplicate: true } : {}),
          at: submittedAt,
        });
      }

      try {
        const job = await this.#client.wait(requestId, {
          signal,
          ...(endpoint !== '' ? { endpoint } : {}),
          ...(model !== undefined ? { model } : {}),
          submittedAt,
        });
        this.#consecutiveTransient = 0;
        finish('done', { output: outputOf(job, this.#options.keepPreview === true) });
        return;
      } catch (error) {
        if (signal.aborted) {
          this.#deferred++; // its `submitted` record stands: the next run polls it
          return;
        }
        const kind = classifyError(error);
        if (kind === 'job-failed') {
          this.#consecutiveTransient = 0;
          if (item !== undefined && !this.#stop && mayResubmit(error, spent, this.#maxResubmissions)) {
            const jobCode = (error as { jobErrorCode?: string }).jobErrorCode ?? 'UNKNOWN_ERROR';
            spent.total++;
            spent.byCode.set(jobCode, (spent.byCode.get(jobCode) ?? 0) + 1);
            resubmissions++;
            this.#resubmissions++;
            this.#logger.debug({ id, line, requestId, jobErrorCode: jobCode }, 'job failed; resubmitting');
            requestId = undefined;
            continue;
          }
          finish('failed', { error: toItemError(error) });
          return;
        }
        if (kind === 'fatal') {
          this.#consecutiveTransient = 0;
          finish('failed', { error: toItemError(error) });
          return;
        }
        this.#deferred++;
        if (kind === 'stop') this.#requestStop(stopFor(error));
        else this.#noteTransient(error);
        return;
      }
    }
  }

  #noteTransient(error: unknown): void {
    this.#consecutiveTransient++;
    this.#lastTransient = error instanceof Error ? error.message : String(error);
    this.#logger.warn({ code: errorCode(error), err: this.#lastTransient, inARow: this.#consecutiveTransient }, 'transient failure; item left pending');
    if (this.#consecutiveTransient >= this.#maxTransient) {
      this.#requestStop({
        reason: 'api-unavailable',
        message: `${this.#consecutiveTransient} items in a row ended with transient errors (last: ${this.#lastTransient}). The API looks unavailable; run the batch again later to resume.`,
      });
    }
  }

  #release(id: string, line: number, reason: string): void {
    this.#journal!.append({ id, line, state: 'released', reason, at: this.#clock.now() });
  }

  #finishInvalid(item: InvalidItem): void {
    const error: ReturnType<typeof toItemError> = { code: 'INVALID_INPUT', kind: item.kind, message: item.message };
    if (item.fields !== undefined) error.fields = item.fields;
    const record: TerminalRecord = {
      id: item.id,
      line: item.line,
      state: 'invalid',
      error,
      attempts: 0,
      resubmissions: 0,
      possibleDuplicate: false,
      at: this.#clock.now(),
    };
    if (item.meta !== undefined) record.meta = item.meta;
    this.#errors!.append({ line: item.line, id: item.id, kind: item.kind, message: item.message, ...(item.fields ? { fields: item.fields } : {}) });
    if (this.#invalidLines.length < 100) this.#invalidLines.push({ line: item.line, id: item.id, kind: item.kind, message: item.message });
    this.#finishTerminal(record, false);
  }

  #reportDuplicate(id: string, line: number): void {
    this.#duplicateIds++;
    const message = `Line ${line} repeats the id ${JSON.stringify(id)} of an earlier line; it was not run`;
    this.#errors!.append({ line, id, kind: 'duplicate-id', message });
    if (this.#invalidLines.length < 100) this.#invalidLines.push({ line, id, kind: 'duplicate-id', message });
  }

  #finishTerminal(record: TerminalRecord, resumed: boolean): void {
    const journal = this.#journal!;
    journal.append(record);
    const table = journal.index.table;
    const previous = table.get(record.id);
    const old = CODE_STATE[previous & 3];
    if (old !== undefined) journal.index.totals[old]--;
    table.set(record.id, (previous & ~3) | STATE_CODE[record.state]);
    journal.index.totals[record.state]++;
    journal.index.open.delete(record.id);
    this.#run[record.state]++;
    if (record.possibleDuplicate) this.#possibleDuplicates++;
    if (record.state === 'failed') {
      const code = record.error?.jobErrorCode ? `${record.error.code}:${record.error.jobErrorCode}` : (record.error?.code ?? 'UNKNOWN');
      this.#failuresByCode[code] = (this.#failuresByCode[code] ?? 0) + 1;
    }
    const result = toResult(record, resumed);
    if (this.#options.onResult) {
      try {
        this.#options.onResult(result);
      } catch (error) {
        this.#logger.error({ err: error instanceof Error ? error.message : String(error) }, 'onResult threw');
      }
    }
    if (this.#iterating) {
      this.#buffer.push(result);
      this.#wakeConsumer();
    }
  }

  #summarize(orphaned: number): BatchSummary {
    const journal = this.#journal!;
    const stats = this.#client.scheduler.stats();
    const pending = this.#deferred + orphaned;
    return {
      out: this.out,
      errorsOut: this.#errorsOut,
      complete: this.#inputDone && this.#stop === undefined && this.#deferred === 0,
      stopped: this.#stop,
      items: this.#items,
      run: { ...this.#run },
      totals: { ...journal.index.totals },
      skipped: this.#skipped,
      resumed: this.#resumed,
      resubmittedUnknown: this.#resubmittedUnknown,
      possibleDuplicates: this.#possibleDuplicates,
      resubmissions: this.#resubmissions,
      pending,
      duplicateIds: this.#duplicateIds,
      failuresByCode: { ...this.#failuresByCode },
      invalidLines: [...this.#invalidLines],
      elapsedMs: this.#clock.now() - this.#startedAt,
      requests: {
        dispatched: stats.counts.dispatched - this.#dispatchedAtStart,
        rateLimited: stats.counts.rateLimited - this.#rateLimitedAtStart,
      },
      journal: { records: journal.index.records, corruptLines: journal.index.corruptLines, tornTail: journal.index.tornTail },
    };
  }
}
