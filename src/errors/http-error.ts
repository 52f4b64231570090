import { SchedulerError, type ErrorCode } from './scheduler-error.js';

export interface HttpErrorInit {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
  retryAfterMs?: number;
  attempt?: number;
  requestId?: string;
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

  constructor(init: HttpErrorInit, message?: string, code: ErrorCode = 'HTTP_ERROR') {
    super(code, message ?? `HTTP ${init.status}`, { cause: init.cause });
    this.status = init.status;
    this.headers = init.headers ?? {};
    this.body = init.body;
    this.retryAfterMs = init.retryAfterMs;
    this.attempt = init.attempt ?? 1;
    this.requestId = init.requestId;
  }
}
