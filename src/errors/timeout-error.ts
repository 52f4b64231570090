import { SchedulerError } from './scheduler-error.js';

/** A task ran longer than its `timeoutMs`. */
export class TimeoutError extends SchedulerError {
  readonly timeoutMs: number;

  constructor(timeoutMs: number) {
    super('TASK_TIMEOUT', `Task timed out after ${timeoutMs} ms`);
    this.timeoutMs = timeoutMs;
  }
}
