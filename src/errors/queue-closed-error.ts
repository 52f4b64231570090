import { SchedulerError } from './scheduler-error.js';

/** The scheduler was closed (or stopped by a 401) before the task ran. */
export class QueueClosedError extends SchedulerError {
  constructor(message = 'The scheduler is closed', options?: { cause?: unknown }) {
    super('QUEUE_CLOSED', message, options);
  }
}
