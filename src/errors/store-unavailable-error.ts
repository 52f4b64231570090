import { SchedulerError } from './scheduler-error.js';

/** The shared store (Redis) cannot be reached. */
export class StoreUnavailableError extends SchedulerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('STORE_UNAVAILABLE', message, options);
  }
}
