import type { Clock } from '../internal/clock.js';
import type { Logger } from '../internal/logger.js';
import type { RateLimitScheduler } from '../engine/scheduler.js';
import type { SpendLedger } from '../store/spend-ledger.js';

/**
 * The slice of `ModelBeamClient` that `runBatch` uses. `ModelBeamClient`
 * fits; so does any object with these members (tests use stubs).
 */
export interface BatchClient {
  readonly scheduler: BatchScheduler;
  /**
   * Sends one job. Resolves once the server has answered with its `request_id` (and with `result` when the
   * API answered with the output inline, `return_result_in_response`).
   */
  submit(
    endpoint: string,
    params: Record<string, unknown>,
    options: { signal?: AbortSignal; priority?: number },
  ): Promise<{ requestId: string; result?: unknown }>;
  /** Waits for a job's terminal state. Rejects with a `JobFailedError` (`code: 'JOB_FAILED'`) when the job failed. */
  wait(
    requestId: string,
    options: { signal?: AbortSignal; endpoint?: string; model?: string; submittedAt?: number },
  ): Promise<BatchJobResult>;
  /**
   * The price of one job, USD, from a cache keyed by its price-changing parameters (`ModelBeamClient.quote`).
   * Needed only with `maxSpend`.
   */
  quote?(endpoint: string, params: Record<string, unknown>, options: { signal?: AbortSignal }): Promise<number>;
}

/** What `runBatch` needs from the scheduler: backpressure, stats, events, pause. */
export type BatchScheduler = Pick<RateLimitScheduler, 'onSizeLessThan' | 'size' | 'stats' | 'on' | 'off' | 'pause' | 'resume' | 'isPaused'>;

/** A finished job as the client reports it. Only `requestId` is required; the rest is read defensively. */
export interface BatchJobResult {
  readonly requestId: string;
}

/** The output of a job, as kept in the results file. */
export interface JobOutput {
  resultUrl?: string;
  resultsAltFormats?: Record<string, string>;
  result?: unknown;
  preview?: unknown;
}

/** The terminal states of an item. Each input item ends with exactly one. */
export type TerminalState = 'done' | 'failed' | 'invalid';

/** Why an input line was refused before anything was sent. */
export type InputErrorKind =
  | 'malformed-json'
  | 'not-an-object'
  | 'bad-id'
  | 'missing-endpoint'
  | 'unknown-endpoint'
  | 'invalid-params'
  | 'duplicate-id';

/** The error of a failed or invalid item. `code` is a stable error code. */
export interface ItemError {
  /** `INVALID_INPUT` for bad input; otherwise the library error code (`JOB_FAILED`, `VALIDATION_FAILED`, ...). */
  code: string;
  message: string;
  /** For `INVALID_INPUT`: what was wrong with the line. */
  kind?: InputErrorKind;
  /** For `JOB_FAILED`: the job error code (`INVALID_INPUT`, `WORKER_TIMEOUT`, ...). */
  jobErrorCode?: string;
  /** For HTTP errors: the status. */
  status?: number;
  /** Field errors, from local validation or from a 422. */
  fields?: Record<string, string[]>;
}

/** One result, as `runBatch` yields it and as its terminal record in the results file says. */
export interface BatchResult {
  /** The input's id: its `id` field, or `line-<n>-<12 hex of the line's SHA-1>`. */
  id: string;
  /** 1-based line (or position in the iterable) of the input. */
  line: number;
  state: TerminalState;
  /** The last job's request id, when a job was created. */
  requestId?: string;
  /** For `done`. */
  output?: JobOutput;
  /** For `failed` and `invalid`. */
  error?: ItemError;
  /** Jobs submitted for this item, over every run (a job-level retry or a resubmission adds one). */
  attempts: number;
  /** Resubmissions after a failed job or an unknown outcome, over every run. */
  resubmissions: number;
  /**
   * True when a submission's outcome was unknown (the process died, or the connection dropped, after the POST
   * may have been accepted) and the item was submitted again: the account may hold a second, billed job.
   */
  possibleDuplicate: boolean;
  /** True when this run picked the item up where an earlier run left it. */
  resumed: boolean;
  /** The input's `meta` field, passed through. */
  meta?: unknown;
}

/** Why a run stopped before the input was finished. Every reason leaves the batch resumable. */
export type StopReason =
  | 'signal'
  | 'daily-quota'
  | 'authentication'
  | 'insufficient-balance'
  | 'api-unavailable'
  | 'store-unavailable'
  | 'input-error'
  | 'output-error'
  | 'configuration'
  | 'spend-cap'
  | 'stopped';

export interface StopInfo {
  reason: StopReason;
  message: string;
  /** For `daily-quota`: epoch ms when the quota is expected back, when known. */
  resetAt?: number;
}

/** An input line refused before sending. The errors file holds every one; the summary keeps the first 100. */
export interface InvalidLine {
  line: number;
  id: string;
  kind: InputErrorKind;
  message: string;
}

/** Counts by terminal state. */
export interface StateCounts {
  done: number;
  failed: number;
  invalid: number;
}

/** What a run did, and where the batch stands. */
export interface BatchSummary {
  /** The results file (the checkpoint). */
  out: string;
  /** The errors file (bad input lines). */
  errorsOut: string;
  /** True when the whole input was read and every item has a terminal record. */
  complete: boolean;
  /** Set when the run stopped early. The batch is resumable: run it again with the same results file. */
  stopped: StopInfo | undefined;
  /** Input items read this run, skipped ones included. */
  items: number;
  /** Terminal results written this run. */
  run: StateCounts;
  /** Terminal records in the whole results file (earlier runs included). */
  totals: StateCounts;
  /** Items skipped because the results file already had their terminal record. */
  skipped: number;
  /** Items with a known request id from an earlier run, picked up by polling (never resubmitted). */
  resumed: number;
  /** Items whose earlier submission's outcome was unknown, submitted again (each flagged `possibleDuplicate`). */
  resubmittedUnknown: number;
  /** Results of this run flagged `possibleDuplicate`. */
  possibleDuplicates: number;
  /** Resubmissions this run (failed jobs retried, unknown outcomes resent). */
  resubmissions: number;
  /** Items started and not finished: they resume on the next run. */
  pending: number;
  /** Input lines whose explicit `id` repeats an earlier line's (reported in the errors file, not run). */
  duplicateIds: number;
  /** Failed results of this run by error code (`JOB_FAILED:WORKER_TIMEOUT` for job failures). Bad lines are in `invalidLines`. */
  failuresByCode: Record<string, number>;
  /** The first 100 invalid lines of this run. */
  invalidLines: InvalidLine[];
  /** Wall time of the run. */
  elapsedMs: number;
  /** Scheduler counts at the end: requests sent, 429s seen. */
  requests: { dispatched: number; rateLimited: number };
  /** What reading the results file found at the start. */
  journal: { records: number; corruptLines: number; tornTail: boolean };
  /**
   * The last transient failure of the run (a timeout, a refused connection, retries exhausted), when one left
   * an item pending: the cause to show when the run did not finish.
   */
  lastTransient?: TransientCause;
  /** With `maxSpend`: what was spent. */
  spend?: SpendSummary;
}

/** What a run with `maxSpend` spent. Amounts are USD. */
export interface SpendSummary {
  /** The cap. */
  cap: number;
  /**
   * Spent so far under the cap: the results file's total (earlier runs included), or with a shared ledger
   * (Redis) the total of every process on it. Submissions whose outcome is unknown count as spent.
   */
  spent: number;
  /** Spent by this run (reserved, minus what was given back for submissions that were not charged). */
  run: number;
  /** The total the results file records (earlier runs included). */
  results: number;
  /** True when the ledger is shared with other processes. */
  shared: boolean;
}

/** A transient failure, as plain data: the error's message and code, and the first code in its `cause` chain. */
export interface TransientCause {
  message: string;
  code?: string;
  /** The lowest-level code in the cause chain, e.g. `UND_ERR_HEADERS_TIMEOUT`, `ECONNREFUSED`. */
  causeCode?: string;
}

/** A live snapshot for progress displays. Cheap: no I/O. */
export interface BatchProgress {
  items: number;
  skipped: number;
  done: number;
  failed: number;
  invalid: number;
  /** Items between their first request and their result. */
  inFlight: number;
  /** Requests waiting in the scheduler's queue (submits and polls). */
  queued: number;
  resumed: number;
  possibleDuplicates: number;
  /** Input lines whose id repeats an earlier line's (not run; they count as finished for a progress bar). Absent: 0. */
  duplicateIds?: number;
  /** The scheduler's counts: requests dispatched, 429s. */
  dispatched: number;
  rateLimited: number;
  /** The minute limit the scheduler believes in, when known. */
  minuteLimit: number | undefined;
  /**
   * Requests the server counted in its current minute window, by its newest answer (`limit − remaining`):
   * the count to hold against `minuteLimit`, window for window. Absent until an answer said.
   */
  minuteUsed?: number;
  /** Epoch ms of the daily park's end, while parked. */
  parkedUntil: number | undefined;
  stopping: boolean;
  elapsedMs: number;
  /** With `maxSpend`: what was spent so far (USD; the ledger's total as last seen). */
  spend?: SpendSummary;
}

/** Options of {@link runBatch}. Only `out` is required. */
export interface RunBatchOptions {
  /**
   * The results file. It is also the checkpoint: run the same batch with the same `out` to resume it.
   * Created when missing; appended to otherwise.
   */
  out: string;
  /**
   * Where bad input lines are reported, one JSON line each.
   * @default `${out}.errors.jsonl`
   */
  errorsOut?: string;
  /** Endpoint of the items that have no `endpoint` field of their own. */
  endpoint?: string;
  /** Default parameters, merged under each item's own. */
  params?: Record<string, unknown>;
  /**
   * Most items between their first request and their result at once (resumed ones included).
   * @default 256
   */
  maxInFlight?: number;
  /**
   * Input is read only while the scheduler's queue holds fewer requests than this
   * (`scheduler.onSizeLessThan`).
   * @default 32
   */
  maxQueued?: number;
  /**
   * Most items between their `submitting` record and the answer to their POST. After a crash, exactly these
   * items come back with an unknown outcome (resubmitted, flagged `possibleDuplicate`), so a small number
   * keeps false alarms few; it still lets submissions go out far faster than any quota allows.
   * @default 8
   */
  maxSubmitting?: number;
  /**
   * Most resubmissions per item (after a retryable job failure, or an unknown outcome), counted per run.
   * `WORKER_TIMEOUT` may use them all; `PROCESSING_ERROR` and `UNKNOWN_ERROR` get one; content errors none.
   * @default 2
   */
  maxResubmissions?: number;
  /**
   * Whether a submission whose outcome is unknown (the connection dropped after the POST was sent) is sent
   * again, flagged `possibleDuplicate`. When false, the item is left pending (resumable).
   * @default true
   */
  resubmitOnUnknownOutcome?: boolean;
  /**
   * When the daily quota runs out: `'stop'` ends the run, resumable, with the reset time in the summary;
   * `'wait'` lets the scheduler park until the reset (its `onDailyLimit` must then be `'wait'`).
   * @default 'stop'
   */
  onDailyLimit?: 'stop' | 'wait';
  /**
   * How long a stop waits for requests on the wire to finish before it aborts them.
   * @default 30_000
   */
  graceMs?: number;
  /**
   * Items in a row that end with a transient error (retries exhausted, timeouts) before the run stops as
   * `api-unavailable`. Such items stay pending.
   * @default 10
   */
  maxConsecutiveTransient?: number;
  /**
   * Fsync the results file at most this long after a record is written.
   * @default 1000
   */
  fsyncIntervalMs?: number;
  /**
   * Also fsync after this many records. `1` fsyncs every record before going on (durable across power
   * loss, and slow).
   * @default 1000
   */
  fsyncEveryRecords?: number;
  /**
   * Run again the items whose terminal record in `out` is `failed` (a new job each; `invalid` lines and
   * `done` items are still skipped). Without it, a rerun skips every item with a terminal record.
   * @default false
   */
  retryFailed?: boolean;
  /**
   * The API base URL the client sends to. Only for messages: a configuration stop (a 404 before any request
   * of the run succeeded) names the URL it tried.
   */
  apiBaseUrl?: string;
  /** Aborting it stops the run gracefully, as {@link Batch.stop} does. */
  signal?: AbortSignal;
  /**
   * Local check of an item's parameters; returns field errors (`undefined` or `{}` when valid). It runs
   * before anything is sent, so a bad value spends no quota. An error on the field `endpoint` alone marks
   * the line `unknown-endpoint`.
   * @default {@link validateBatchItem}: the endpoint must be one the docs name, and the parameters must
   *   pass `validateParams` (documented ranges)
   */
  validate?: (endpoint: string, params: Record<string, unknown>) => Record<string, string[]> | undefined;
  /**
   * A spend cap, USD. Every submission is priced first (`client.quote`: one `price-calculation` call per
   * distinct set of price-changing parameters) and its price reserved; no submission is sent whose price
   * would take the spend past the cap. The run then stops (`reason: 'spend-cap'`), resumable; the summary's
   * `spend` says what was spent. Each `submitting` record carries its price, so a resumed run continues the
   * same total. A line whose price cannot be computed fails with `PRICE_UNAVAILABLE` and spends nothing.
   * @default no cap (nothing is priced)
   */
  maxSpend?: number;
  /**
   * Where the spend is counted. Pass `redisStore.spendLedger()` to share one cap between every process on
   * the account (an atomic counter in Redis beside the budgets).
   * @default a counter of this run, started from the results file's total
   */
  spendLedger?: SpendLedger;
  /** Keep the job's `preview` (a thumbnail, often base64) in the results file. @default false */
  keepPreview?: boolean;
  /** Called with every result, in completion order, after its record is written. */
  onResult?: (result: BatchResult) => void;
  /** A pino logger. Silent by default. */
  logger?: Logger;
  /** The time source. */
  clock?: Clock;
}

/** One input item: a parsed object, or a raw JSONL line with its number. */
export type BatchInput = Record<string, unknown> | RawLine;

/** A line of a JSONL file, as `readJsonlLines` yields it. */
export interface RawLine {
  line: number;
  raw: string;
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
