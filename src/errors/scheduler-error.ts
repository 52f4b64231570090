/** Stable error codes. They are part of the public API: never rename one. */
export type ErrorCode =
  | 'HTTP_ERROR'
  | 'AUTHENTICATION_FAILED'
  | 'NOT_FOUND'
  | 'VALIDATION_FAILED'
  | 'INSUFFICIENT_BALANCE'
  | 'DAILY_QUOTA_EXHAUSTED'
  | 'RETRIES_EXHAUSTED'
  | 'OUTCOME_UNKNOWN'
  | 'TASK_TIMEOUT'
  | 'QUEUE_CLOSED'
  | 'JOB_FAILED'
  | 'WEBHOOK_INVALID'
  | 'STORE_UNAVAILABLE'
  | 'INVALID_INPUT'
  | 'BATCH_SETUP_FAILED'
  | 'JOURNAL_WRITE_FAILED'
  | 'MISSING_DEPENDENCY'
  | 'PRICE_UNAVAILABLE'
  | 'SPEND_CAP_REACHED';

const kSchedulerError = Symbol.for('modelbeam-scheduler.error');

/** The base of every error the library throws on purpose. */
export class SchedulerError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
    Object.defineProperty(this, kSchedulerError, { value: true });
  }

  /** Works across copies of the library loaded twice. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (this !== SchedulerError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === 'object' && value !== null && kSchedulerError in value;
  }
}

export function isSchedulerError(value: unknown): value is SchedulerError {
  return value instanceof SchedulerError;
}
