import { SchedulerError } from './scheduler-error.js';

/** A record could not be written to the results file: the checkpoint cannot advance, so the run stops. */
export class JournalWriteError extends SchedulerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('JOURNAL_WRITE_FAILED', message, options);
  }
}
