import { SchedulerError } from './scheduler-error.js';

/**
 * A batch run could not start (unreadable input or results file, a results
 * file of another tool, …). Nothing was sent. `batch.summary` rejects with it.
 */
export class BatchSetupError extends SchedulerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('BATCH_SETUP_FAILED', message, options);
  }
}
