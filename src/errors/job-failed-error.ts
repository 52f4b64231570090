import { SchedulerError } from './scheduler-error.js';

export interface JobFailedErrorInit {
  requestId: string;
  /** The job error code (`WORKER_TIMEOUT`, `PROCESSING_ERROR`, …), `UNKNOWN_ERROR` when the API gave none. */
  jobErrorCode: string;
  jobErrorMessage?: string | undefined;
  /** Whether the code is one that may succeed when submitted again (a policy fact, not a promise). */
  retryable: boolean;
  endpoint?: string | undefined;
  /** Billed submissions made for this call so far (1 for `wait()`). */
  attempts?: number;
  resubmissions?: number;
  possibleDuplicate?: boolean;
}

/**
 * An asynchronous job ended in `error`. Carries the job error code (read
 * defensively from the status or the `job.failed` webhook) and whether the
 * code is retryable. `generate()` fills in how many billed submissions it made.
 */
export class JobFailedError extends SchedulerError {
  readonly requestId: string;
  readonly jobErrorCode: string;
  readonly jobErrorMessage: string | undefined;
  readonly retryable: boolean;
  readonly endpoint: string | undefined;
  /** Billed submissions made by the call that failed (each one a new job). */
  attempts: number;
  /** Of those, how many were re-submissions. */
  resubmissions: number;
  /** True when a submission's outcome was unknown and it was sent again: a duplicate job may exist. */
  possibleDuplicate: boolean;

  constructor(init: JobFailedErrorInit) {
    const detail = init.jobErrorMessage ? `: ${init.jobErrorMessage}` : '';
    super('JOB_FAILED', `Job ${init.requestId} failed with ${init.jobErrorCode}${detail}`);
    this.requestId = init.requestId;
    this.jobErrorCode = init.jobErrorCode;
    this.jobErrorMessage = init.jobErrorMessage;
    this.retryable = init.retryable;
    this.endpoint = init.endpoint;
    this.attempts = init.attempts ?? 1;
    this.resubmissions = init.resubmissions ?? 0;
    this.possibleDuplicate = init.possibleDuplicate ?? false;
  }
}
