import { SchedulerError } from './scheduler-error.js';

/**
 * The price of a job could not be computed (`price-calculation` refused its parameters, or the parameters
 * failed the local check). In a batch it is that line's error, with its line number; nothing is spent on it.
 * `cause` holds the error of the price call.
 */
export class PriceUnavailableError extends SchedulerError {
  /** The endpoint priced. */
  readonly endpoint: string;
  /** The input line, when the job came from one. */
  readonly line: number | undefined;

  constructor(endpoint: string, line: number | undefined, options: { cause: unknown }) {
    const reason = options.cause instanceof Error ? options.cause.message : String(options.cause);
    super('PRICE_UNAVAILABLE', `${line !== undefined ? `Line ${line}: ` : ''}no price for this ${endpoint} job: ${reason}`, options);
    this.endpoint = endpoint;
    this.line = line;
  }
}
