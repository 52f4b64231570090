/**
 * The registry of jobs: who waits for what, what polls and webhooks said,
 * and the rules that keep it sane. A terminal job never goes back to
 * running (out-of-order deliveries); the first terminal outcome wins; a
 * failed job without a code is `UNKNOWN_ERROR` unless a webhook told more;
 * the webhook channel is trusted until safety-net polls keep finding jobs it
 * never reported, and trusted again as soon as a delivery arrives.
 */
import { AuthenticationError } from '../errors/authentication-error.js';
import { DailyQuotaExhaustedError } from '../errors/daily-quota-exhausted-error.js';
import { HttpError } from '../errors/http-error.js';
import { JobFailedError } from '../errors/job-failed-error.js';
import { NotFoundError } from '../errors/not-found-error.js';
import { QueueClosedError } from '../errors/queue-closed-error.js';
import type { Clock } from '../internal/clock.js';
import type { Logger } from '../internal/logger.js';
import type { Emit, LearnedVia } from './events.js';
import {
  copyResultFields,
  hasOutput,
  isRetryableJobError,
  readJobError,
  toJobResult,
  type JobResult,
  type JobStatus,
} from './jobs.js';
import { BoundedMap } from './lru.js';
import type { DurationEstimator, PlannerConfig } from './poll-planner.js';
import { predictTotal } from './poll-planner.js';
import type { Poller } from './poller.js';
import { TrackedJob, type Outcome, type TrackedJobInit, type Waiter } from './tracked-job.js';
import type { WebhookEvent } from './webhooks.js';

export interface TrackerCounters {
  completed: number;
  failed: number;
  pollErrors: number;
  webhooksUnknownJob: number;
}

export interface TrackerDeps {
  clock: Clock;
  logger: Logger;
  emit: Emit;
  estimator: DurationEstimator;
  config: PlannerConfig;
  counters: TrackerCounters;
  /** A webhook URL is configured (polling is then a safety net). */
  webhookConfigured: boolean;
  /** Finished jobs remembered (late `wait()` calls, late deliveries): `rememberFinishedJobs`. */
  rememberFinished: number;
}

export interface WaitOptions {
  signal?: AbortSignal | undefined;
  endpoint?: string | undefined;
  model?: string | undefined;
  /** When the job was submitted (epoch ms, on the client's clock). Unknown: the first poll goes out at once. */
  submittedAt?: number | undefined;
}

/** Non-terminal jobs kept without anyone waiting (fire-and-forget submissions). */
const MAX_ACTIVE = 100_000;
/** Deliveries for ids not known yet (a webhook that beat its submit response, or a resumed batch). */
const MAX_ORPHANS = 1_000;
/** Consecutive safety-net polls that found a job finished with no delivery for it: polling takes over. */
const MISSED_FOR_FALLBACK = 2;
/** Polls per job assumed before any job finished (see `pollsToKeep`). */
const POLLS_PER_JOB_GUESS = 2;
/** Finished jobs whose poll counts size `pollsToKeep` (their mean). */
const POLLS_SAMPLE = 16;
/** Consecutive 404s before a wait gives up on an id. */
const NOT_FOUND_LIMIT = 3;
/** Distinct unrecognised status values logged at warn (each once); the rest, and repeats, go to debug. */
const MAX_UNKNOWN_STATUSES_WARNED = 32;

export class JobTracker {
  readonly #d: TrackerDeps;
  #poller!: Poller;
  readonly #active = new Map<string, TrackedJob>();
  readonly #done: BoundedMap<string, TrackedJob>;
  readonly #orphans = new BoundedMap<string, WebhookEvent[]>(MAX_ORPHANS);
  #fallback = false;
  #missed = 0;
  #closed: Error | undefined;
  /** Unrecognised status values already warned about (bounded: a server sending garbage cannot grow it). */
  readonly #unknownStatuses = new Set<string>();
  /** Polls each of the last finished jobs took (a ring of `POLLS_SAMPLE`). */
  readonly #pollCounts: number[] = [];
  #pollCountAt = 0;
  #lastFinished: string | undefined;

  constructor(deps: TrackerDeps) {
    this.#d = deps;
    this.#done = new BoundedMap(deps.rememberFinished);
  }

  attach(poller: Poller): void {
    this.#poller = poller;
  }

  /** `safety` while a webhook is configured and deliveries arrive; `poll` otherwise. */
  mode(): 'poll' | 'safety' {
    return this.#d.webhookConfigured && !this.#fallback ? 'safety' : 'poll';
  }

  get fallback(): boolean {
    return this.#fallback;
  }

  /** Jobs whose outcome is not known yet. */
  get inFlight(): number {
    return this.#active.size;
  }

  /**
   * The status polls to keep daily units for before one more submission goes:
   * those of the jobs in flight, of the `pending` ones (submissions on the
   * way) and of that one. Each may take as many as the last 16 finished jobs
   * took on average (2 before any finished), less those it took already, and
   * at least one more. (The most of them kept so many that the last
   * submissions of a day went to the next one: 1.3 × ideal in the jobs bench.)
   *
   * Only polls due before `dayEnd` (when the day's units run out, if known)
   * are kept for: a job in flight whose next poll is planned later, and a new
   * one whose first poll is (`expectedMs` from now), poll on the next day's
   * units. So the day's last units buy a submission only when its job will be
   * polled after the reset: it finishes at most about its expected duration
   * before the day ends, not hours before with its result held to the next
   * day (with nothing in flight, a submission that went while the day had a
   * unit left but none for its poll held 2 of 320 results in the jobs bench).
   */
  pollsToKeep(pending: number, expectedMs: number, dayEnd: number | undefined): number {
    const now = this.#d.clock.now();
    const today = (at: number): boolean => dayEnd === undefined || at < dayEnd;
    const counts = this.#pollCounts;
    const perJob = counts.length === 0 ? POLLS_PER_JOB_GUESS : Math.max(1, counts.reduce((a, b) => a + b, 0) / counts.length);
    let keep = today(now + expectedMs) ? (pending + 1) * perJob : 0;
    for (const job of this.#active.values()) if (today(job.due ?? now)) keep += Math.max(1, perJob - job.polls);
    return keep;
  }

  /** The job that finished last and is still remembered (for a status request whose answer does not matter). */
  lastFinished(): TrackedJob | undefined {
    return this.#lastFinished !== undefined ? this.#done.get(this.#lastFinished) : undefined;
  }

  get(requestId: string): TrackedJob | undefined {
    return this.#active.get(requestId) ?? this.#done.get(requestId);
  }

  /** Records a new job (a submission answered with its id, or an id handed to `wait()`). */
  register(requestId: string, init: TrackedJobInit): TrackedJob {
    const existing = this.get(requestId);
    if (existing) return existing;
    const job = new TrackedJob(requestId, init);
    this.#active.set(requestId, job);
    if (this.#active.size > MAX_ACTIVE) {
      for (const old of this.#active.values()) {
        if (old.waiters.size === 0) {
          this.#active.delete(old.id);
          this.#d.logger.warn({ requestId: old.id }, 'forgot a job nobody waits on (too many in flight)');
          break;
        }
      }
    }
    const early = this.#orphans.get(requestId);
    if (early) {
      this.#orphans.delete(requestId);
      for (const event of early) this.#applyWebhook(job, event);
    }
    return job;
  }

  /** A submission answered with the output inline (`return_result_in_response`). */
  completeInline(job: TrackedJob, result: JobResult): void {
    if (!job.terminal) this.#finish(job, { kind: 'done', result, complete: true, via: 'inline' });
  }

  /** Resolves with the job's result once it is done; rejects with `JobFailedError` if it fails. */
  wait(requestId: string, options: WaitOptions = {}): Promise<JobResult> {
    if (this.#closed) return Promise.reject(this.#closed);
    const signal = options.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const now = this.#d.clock.now();
    let job = this.get(requestId);
    if (!job) {
      job = this.register(requestId, {
        endpoint: options.endpoint,
        model: options.model,
        submittedAt: options.submittedAt ?? now,
        submittedKnown: options.submittedAt !== undefined,
        // Not submitted by this client: `submittedAt` is the caller's word (another run, another clock), so
        // what its polls find plans its own polls but teaches the estimator nothing.
        learns: false,
      });
    } else {
      job.endpoint ??= options.endpoint;
      job.model ??= options.model;
      if (!job.submittedKnown && options.submittedAt !== undefined) {
        job.submittedAt = options.submittedAt;
        job.submittedKnown = true;
      }
    }
    const tracked = job;
    if (tracked.settled) return this.#settledPromise(tracked);
    return new Promise<JobResult>((resolve, reject) => {
      const onAbort = (): void => {
        tracked.waiters.delete(waiter);
        if (tracked.waiters.size === 0) this.#poller.untrack(tracked);
        reject(signal?.reason);
      };
      const waiter: Waiter = {
        resolve: (result) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(result);
        },
        reject: (error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(error);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      tracked.waiters.add(waiter);
      if (tracked.terminal) this.#poller.pollSoon(tracked);
      else this.#poller.track(tracked);
    });
  }

  /** What a poll found. */
  onPollResult(job: TrackedJob, status: JobStatus, sentAt: number): void {
    job.failures = 0;
    job.notFound = 0;
    const outcome = job.outcome;
    if (outcome) {
      // Already terminal (a webhook was first): only fill in an output the webhook did not carry.
      if (outcome.kind === 'done' && !outcome.complete) {
        if (status.state === 'done' || job.polls >= 3) {
          copyResultFields(statusFields(status), outcome.result);
          outcome.complete = true;
          job.fetching = false;
          this.#settle(job);
        } else {
          this.#poller.planFollowUp(job);
        }
      }
      return;
    }
    const first = !job.firstPolled;
    job.firstPolled = true;
    job.addSample(sentAt, status.progress);
    if (first && !job.safety && !job.fetching && job.learns && job.endpoint !== undefined) {
      const elapsedMs = sentAt - job.submittedAt;
      const predictedMs = status.terminal ? undefined : predictTotal(job.samples, sentAt, job.submittedAt);
      this.#d.estimator.observe(job.endpoint, job.model, {
        kind: 'first-poll',
        done: status.terminal,
        elapsedMs,
        plannedMs: job.plannedDelay,
        // A poll held well before the estimate (maxIntervalMs) tests it as an early probe does.
        probe: job.probe || job.capped,
        ...(predictedMs === undefined ? {} : { predictedMs }),
      });
      this.#poller.replanKey(job.endpoint, job.model);
    }
    if (status.terminal) {
      if (job.safety && !job.webhookSeen) this.#missedDelivery(job);
      this.#emitPolled(job, status, undefined);
      this.#finishFromStatus(job, status, 'poll');
      return;
    }
    this.#setRunning(job, status.status, status.state, status.progress, 'poll');
    this.#poller.planFollowUp(job);
    this.#emitPolled(job, status, job.due === undefined ? undefined : Math.max(0, job.due - this.#d.clock.now()));
  }

  /** A poll failed. Transient trouble is polled through; 401, closing, repeated 404s and other 4xx end the wait. */
  onPollError(job: TrackedJob, error: unknown): void {
    this.#d.counters.pollErrors++;
    if (this.#closed) return;
    const status = error instanceof HttpError ? error.status : undefined;
    let fatal = error instanceof AuthenticationError || error instanceof QueueClosedError;
    if (error instanceof NotFoundError) fatal = ++job.notFound >= NOT_FOUND_LIMIT;
    else if (status !== undefined && status >= 400 && status < 500 && ![404, 408, 409, 425, 429].includes(status)) fatal = true;
    if (fatal || job.waiters.size === 0) {
      this.#d.emit('pollFailed', { requestId: job.id, error, retryInMs: undefined });
      this.#d.logger.warn({ requestId: job.id, err: errorSummary(error) }, 'giving up polling a job');
      this.#rejectWaiters(job, error);
      this.#poller.untrack(job);
      return;
    }
    job.failures++;
    const { minIntervalMs, maxIntervalMs } = this.#d.config;
    let delay = Math.min(maxIntervalMs, Math.max(minIntervalMs, 1) * 2 ** Math.min(job.failures, 16));
    if (error instanceof DailyQuotaExhaustedError && error.resetAt !== undefined) delay = Math.max(delay, error.resetAt - this.#d.clock.now());
    this.#d.emit('pollFailed', { requestId: job.id, error, retryInMs: delay });
    this.#d.logger.debug({ requestId: job.id, err: errorSummary(error), retryInMs: delay }, 'poll failed; polling again later');
    this.#poller.retryIn(job, delay);
  }

  /** Applies a verified, first-seen delivery. Returns false for a job this client does not know. */
  onWebhook(event: WebhookEvent): boolean {
    this.#missed = 0;
    if (this.#fallback) {
      this.#fallback = false;
      this.#d.logger.info({}, 'webhook deliveries are back: polling returns to a safety net');
      this.#d.emit('webhookFallback', { active: false, reason: 'a verified delivery arrived' });
      this.#poller.replanAll();
    }
    const id = event.requestId;
    const job = id === undefined ? undefined : this.get(id);
    if (!job) {
      this.#d.counters.webhooksUnknownJob++;
      if (id !== undefined) {
        const list = this.#orphans.get(id) ?? [];
        if (list.length < 4) list.push(event);
        this.#orphans.set(id, list);
      }
      this.#d.emit('webhookUnknownJob', { requestId: id, event: event.event, deliveryId: event.deliveryId });
      return false;
    }
    this.#applyWebhook(job, event);
    return true;
  }

  /** Rejects every wait with `error` and stops polling. */
  close(error: Error): void {
    if (this.#closed) return;
    this.#closed = error;
    for (const job of [...this.#active.values(), ...this.#done.values()]) this.#rejectWaiters(job, error);
    this.#poller.close();
  }

  // ---- internals --------------------------------------------------------------

  #applyWebhook(job: TrackedJob, event: WebhookEvent): void {
    job.webhookSeen = true;
    const kind = webhookKind(event);
    const outcome = job.outcome;
    if (outcome) {
      // Terminal already: never back to running. A `done` without output may still get it here.
      if (kind === 'done' && outcome.kind === 'done' && !outcome.complete) {
        copyResultFields(event.data, outcome.result);
        if (hasOutput(outcome.result)) {
          outcome.complete = true;
          this.#settle(job);
        }
      }
      if (kind === 'error' && outcome.kind === 'done') this.#d.logger.warn({ requestId: job.id }, 'job.failed delivery for a job already done: ignored');
      return;
    }
    const now = this.#d.clock.now();
    if (kind === 'running') {
      this.#setRunning(job, event.status ?? 'processing', 'running', undefined, 'webhook');
      return;
    }
    if (kind === 'unknown') {
      this.#d.logger.debug({ requestId: job.id, event: event.event, status: event.status }, 'unrecognised webhook event: ignored');
      return;
    }
    if (job.learns && job.endpoint !== undefined) {
      this.#d.estimator.observe(job.endpoint, job.model, { kind: 'exact', durationMs: now - job.submittedAt });
      this.#poller.replanKey(job.endpoint, job.model);
    }
    if (kind === 'done') {
      const result = toJobResult(job.id, {});
      copyResultFields(event.data, result);
      this.#finish(job, { kind: 'done', result, complete: hasOutput(result), via: 'webhook' });
    } else {
      const { code, message } = readJobError(event.data);
      job.webhookError = { code, message };
      this.#finish(job, { kind: 'error', code: code ?? 'UNKNOWN_ERROR', message, codeKnown: code !== undefined, via: 'webhook' });
    }
  }

  #finishFromStatus(job: TrackedJob, status: JobStatus, via: LearnedVia): void {
    if (status.state === 'done') {
      // What a poll says about a done job is all there is: complete.
      this.#finish(job, { kind: 'done', result: toJobResult(job.id, statusFields(status)), complete: true, via });
      return;
    }
    const code = status.errorCode ?? job.webhookError?.code;
    const message = status.errorMessage ?? job.webhookError?.message;
    this.#finish(job, { kind: 'error', code: code ?? 'UNKNOWN_ERROR', message, codeKnown: code !== undefined, via });
  }

  #finish(job: TrackedJob, outcome: Outcome): void {
    job.outcome = outcome;
    job.status = outcome.kind === 'done' ? 'done' : 'error';
    job.state = outcome.kind;
    this.#active.delete(job.id);
    this.#done.set(job.id, job);
    this.#lastFinished = job.id;
    if (job.learns) {
      this.#pollCounts[this.#pollCountAt] = job.polls;
      this.#pollCountAt = (this.#pollCountAt + 1) % POLLS_SAMPLE;
    }
    const durationMs = job.submittedKnown ? this.#d.clock.now() - job.submittedAt : undefined;
    if (outcome.kind === 'done') {
      this.#d.counters.completed++;
      this.#d.emit('completed', { requestId: job.id, endpoint: job.endpoint, durationMs, polls: job.polls, via: outcome.via });
    } else {
      this.#d.counters.failed++;
      this.#d.emit('jobFailed', {
        requestId: job.id,
        endpoint: job.endpoint,
        code: outcome.code,
        message: outcome.message,
        retryable: isRetryableJobError(outcome.code),
        via: outcome.via,
      });
    }
    if (job.settled) this.#settle(job);
    else if (job.waiters.size > 0) this.#poller.pollSoon(job);
    else this.#poller.untrack(job);
  }

  #settle(job: TrackedJob): void {
    this.#poller.untrack(job);
    const waiters = [...job.waiters];
    job.waiters.clear();
    const outcome = job.outcome;
    if (!outcome) return;
    for (const waiter of waiters) {
      if (outcome.kind === 'done') waiter.resolve({ ...outcome.result });
      else waiter.reject(this.#failure(job, outcome));
    }
  }

  #settledPromise(job: TrackedJob): Promise<JobResult> {
    const outcome = job.outcome;
    if (outcome?.kind === 'done') return Promise.resolve({ ...outcome.result });
    if (outcome?.kind === 'error') return Promise.reject(this.#failure(job, outcome));
    return Promise.reject(new Error('unreachable: job not settled'));
  }

  #failure(job: TrackedJob, outcome: Outcome & { kind: 'error' }): JobFailedError {
    return new JobFailedError({
      requestId: job.id,
      jobErrorCode: outcome.code,
      jobErrorMessage: outcome.message,
      retryable: isRetryableJobError(outcome.code),
      endpoint: job.endpoint,
    });
  }

  #rejectWaiters(job: TrackedJob, error: unknown): void {
    const waiters = [...job.waiters];
    job.waiters.clear();
    for (const waiter of waiters) waiter.reject(error);
  }

  #setRunning(job: TrackedJob, status: string, state: TrackedJob['state'], progress: number | undefined, via: LearnedVia): void {
    if (state === 'unknown') this.#logUnknownStatus(job, status);
    const changed = job.status !== status || (progress !== undefined && progress !== job.progress);
    job.status = status;
    job.state = state;
    if (progress !== undefined) job.progress = progress;
    if (changed) this.#d.emit('statusChanged', { requestId: job.id, status, progress: job.progress, via });
  }

  /** The first sighting of each unrecognised value (up to a bound) at warn: the API may have added a status. */
  #logUnknownStatus(job: TrackedJob, status: string): void {
    const seen = this.#unknownStatuses;
    // Kept and shown cut short: the value comes from the server, whatever its size.
    const value = status.length > 64 ? `${status.slice(0, 64)}…` : status;
    if (!seen.has(value) && seen.size < MAX_UNKNOWN_STATUSES_WARNED) {
      seen.add(value);
      this.#d.logger.warn({ requestId: job.id, status: value }, 'unrecognised job status: treated as not finished');
    } else {
      this.#d.logger.debug({ requestId: job.id, status: value }, 'unrecognised job status: treated as not finished');
    }
  }

  #emitPolled(job: TrackedJob, status: JobStatus, nextPollInMs: number | undefined): void {
    this.#d.emit('polled', { requestId: job.id, status: status.status, progress: status.progress, polls: job.polls, nextPollInMs });
  }

  #missedDelivery(job: TrackedJob): void {
    this.#missed++;
    this.#d.logger.debug({ requestId: job.id, missed: this.#missed }, 'safety-net poll found a finished job no delivery reported');
    if (this.#missed >= MISSED_FOR_FALLBACK && !this.#fallback) {
      this.#fallback = true;
      this.#d.logger.warn({ missed: this.#missed }, 'webhook deliveries are not arriving: polling takes over');
      this.#d.emit('webhookFallback', { active: true, reason: `${this.#missed} finished jobs found by polling with no delivery` });
      this.#poller.replanAll();
    }
  }
}

function statusFields(status: JobStatus): { resultUrl?: string; resultsAltFormats?: unknown; result?: unknown; preview?: unknown } {
  const out: { resultUrl?: string; resultsAltFormats?: unknown; result?: unknown; preview?: unknown } = {};
  if (status.resultUrl !== undefined) out.resultUrl = status.resultUrl;
  if (status.resultsAltFormats !== undefined) out.resultsAltFormats = status.resultsAltFormats;
  if (status.result !== undefined) out.result = status.result;
  if (status.preview !== undefined) out.preview = status.preview;
  return out;
}

function webhookKind(event: WebhookEvent): 'running' | 'done' | 'error' | 'unknown' {
  const status = event.status?.toLowerCase();
  if (event.event === 'job.completed' || status === 'done') return 'done';
  if (event.event === 'job.failed' || status === 'error') return 'error';
  if (event.event === 'job.processing' || status === 'processing' || status === 'in_progress') return 'running';
  return 'unknown';
}

function errorSummary(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}
