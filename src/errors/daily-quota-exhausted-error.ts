import { SchedulerError } from './scheduler-error.js';

/** The daily quota is spent and the scheduler was told to reject rather than wait. */
export class DailyQuotaExhaustedError extends SchedulerError {
  /** Epoch ms when the quota is expected back, if known. */
  readonly resetAt: number | undefined;

  constructor(resetAt: number | undefined) {
    super(
      'DAILY_QUOTA_EXHAUSTED',
      resetAt === undefined
        ? 'Daily quota exhausted; the reset time is unknown'
        : `Daily quota exhausted; it resets at ${new Date(resetAt).toISOString()}`,
    );
    this.resetAt = resetAt;
  }
}
