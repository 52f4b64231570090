/**
 * `generate()`: submit, wait, and resubmit what may succeed the second time.
 *
 * - A job that failed with a retryable code is resubmitted within its
 *   allowance (`jobRetries`), after a backoff. Deterministic codes never are.
 * - A submission whose response was lost is never reported as a failure: it
 *   rejects with `OutcomeUnknownError`, or, with `resubmitOnUnknownOutcome`,
 *   is submitted again and the result marked `possibleDuplicate`.
 * - A 422 about the balance created no job: with `onInsufficientBalance:
 *   'wait'` the submission waits for the pause to end and goes again (not
 *   billed, not counted as a resubmission).
 * - Every billed resubmission is counted, announced, and capped by `maxResubmissions`.
 */
import { InsufficientBalanceError } from '../errors/insufficient-balance-error.js';
import { JobFailedError } from '../errors/job-failed-error.js';
import { OutcomeUnknownError } from '../errors/outcome-unknown-error.js';
import { sleep, type Clock, type Random } from '../internal/clock.js';
import type { Logger } from '../internal/logger.js';
import type { Emit } from './events.js';
import { retryAllowanceFor, type JobResult, type RetryableJobErrorCode } from './jobs.js';

/** What `generate()` resolves with. */
export type GenerateResult = JobResult & {
  /** Billed submissions made (1 when the first job succeeded). */
  attempts: number;
  resubmissions: number;
  /** A submission's outcome was unknown and it was sent again: a second (billed) job may exist. */
  possibleDuplicate: boolean;
};

export interface SubmittedJob {
  requestId: string;
  submittedAt: number;
  /** The output, when the API answered the submission with it. */
  inline: JobResult | undefined;
}

export interface GenerateDeps {
  submit: (attempt: number) => Promise<SubmittedJob>;
  wait: (job: SubmittedJob) => Promise<JobResult>;
  endpoint: string;
  jobRetries: Readonly<Record<RetryableJobErrorCode, number>>;
  maxResubmissions: number;
  jobRetryDelayMs: number;
  resubmitOnUnknownOutcome: boolean;
  waitOnBalance: boolean;
  clock: Clock;
  random: Random;
  emit: Emit;
  logger: Logger;
  counters: { resubmissions: number; possibleDuplicates: number; outcomeUnknown: number };
  signal: AbortSignal | undefined;
  onSubmitted: ((requestId: string, attempt: number) => void) | undefined;
}

export async function runGenerate(d: GenerateDeps): Promise<GenerateResult> {
  const used: Record<RetryableJobErrorCode, number> = { WORKER_TIMEOUT: 0, PROCESSING_ERROR: 0, UNKNOWN_ERROR: 0 };
  let attempts = 0;
  let resubmissions = 0;
  let possibleDuplicate = false;

  const resubmit = (reason: 'job-failed' | 'outcome-unknown', previousRequestId: string | undefined, code: string | undefined): void => {
    resubmissions++;
    d.counters.resubmissions++;
    if (reason === 'outcome-unknown') {
      possibleDuplicate = true;
      d.counters.possibleDuplicates++;
    }
    d.logger.info({ endpoint: d.endpoint, reason, code, previousRequestId, attempt: attempts + 1 }, 'resubmitting (a new billed job)');
    d.emit('resubmitted', { endpoint: d.endpoint, reason, previousRequestId, code, attempt: attempts + 1, resubmissions });
  };

  for (;;) {
    let job: SubmittedJob;
    try {
      job = await d.submit(attempts + 1);
    } catch (error) {
      if (error instanceof InsufficientBalanceError && d.waitOnBalance) continue; // nothing was created; the next submit waits for the resume
      if (!(error instanceof OutcomeUnknownError)) throw error;
      attempts++; // the lost submission may well be a billed job
      const again = d.resubmitOnUnknownOutcome && resubmissions < d.maxResubmissions;
      d.counters.outcomeUnknown++;
      d.emit('outcomeUnknown', { endpoint: d.endpoint, attempt: attempts, resubmitting: again, error });
      if (!again) throw error;
      resubmit('outcome-unknown', undefined, undefined);
      continue;
    }
    attempts++;
    try {
      d.onSubmitted?.(job.requestId, attempts);
    } catch (error) {
      d.logger.error({ err: error }, 'onSubmitted threw');
    }
    try {
      const result = job.inline ?? (await d.wait(job));
      return { ...result, attempts, resubmissions, possibleDuplicate };
    } catch (error) {
      if (!(error instanceof JobFailedError)) throw error;
      error.attempts = attempts;
      error.resubmissions = resubmissions;
      error.possibleDuplicate = possibleDuplicate;
      const allowance = retryAllowanceFor(error.jobErrorCode);
      if (allowance === undefined || used[allowance] >= d.jobRetries[allowance] || resubmissions >= d.maxResubmissions) throw error;
      used[allowance]++;
      resubmit('job-failed', error.requestId, error.jobErrorCode);
      const delay = d.jobRetryDelayMs * 2 ** (used[allowance] - 1) * (0.5 + d.random());
      if (delay > 0) await sleep(delay, d.clock, d.signal);
    }
  }
}
