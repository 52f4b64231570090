import { HttpError, type HttpErrorInit } from './http-error.js';

/** A 429. The scheduler handles these itself; callers see one only from `classify` hooks. */
export class RateLimitError extends HttpError {
  readonly window: 'minute' | 'daily' | undefined;

  constructor(init: Omit<HttpErrorInit, 'status'> & { window?: 'minute' | 'daily' }) {
    super({ ...init, status: 429 }, `Rate limited (${init.window ?? 'unknown'} window)`, 'RATE_LIMITED');
    this.window = init.window;
  }
}
