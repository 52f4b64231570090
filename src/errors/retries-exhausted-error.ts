import { SchedulerError } from './scheduler-error.js';

/** A transient failure kept happening until the attempt or time bound ran out. `cause` is the last error. */
export class RetriesExhaustedError extends SchedulerError {
  readonly attempts: number;

  constructor(attempts: number, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super('RETRIES_EXHAUSTED', `Gave up after ${attempts} attempt(s): ${reason}`, { cause });
    this.attempts = attempts;
  }
}
