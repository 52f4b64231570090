import { SchedulerError } from './scheduler-error.js';

/**
 * The request was sent but no response came back (the connection dropped
 * after the body was sent). The server may have processed it. It is not
 * resent unless the task is idempotent.
 */
export class OutcomeUnknownError extends SchedulerError {
  readonly attempt: number;

  constructor(attempt: number, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super('OUTCOME_UNKNOWN', `The request may or may not have been processed: ${reason}`, { cause });
    this.attempt = attempt;
  }
}
