import { SchedulerError, type ErrorCode } from './scheduler-error.js';

export interface HttpErrorInit {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
  retryAfterMs?: number;
  attempt?: number;
  requestId?: string;
  /** What was asked, e.g. `POST https://api.modelbeam.ai/api/v1/client/txt2img` (no query, no credentials). */
  request?: string;
  cause?: unknown;
}

/** A response whose status says the call failed. Carries what the server said. */
export class HttpError extends SchedulerError {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: unknown;
  readonly retryAfterMs: number | undefined;
  attempt: number;
  readonly requestId: string | undefined;
  /** What was asked (method and URL without query), when known: a wrong base URL shows here. */
  readonly request: string | undefined;

  constructor(init: HttpErrorInit, message?: string, code: ErrorCode = 'HTTP_ERROR') {
    const text = message ?? `HTTP ${init.status}`;
    super(code, init.request === undefined ? text : `${text} (${init.request})`, { cause: init.cause });
    this.request = init.request;
    this.status = init.status;
    this.headers = init.headers ?? {};
    this.body = init.body;
    this.retryAfterMs = init.retryAfterMs;
    this.attempt = init.attempt ?? 1;
    this.requestId = init.requestId;
  }
}
