import { HttpError, type HttpErrorInit } from './http-error.js';

/** A 404: unknown endpoint or request id. Not retried. */
export class NotFoundError extends HttpError {
  constructor(init: Omit<HttpErrorInit, 'status'>) {
    super({ ...init, status: 404 }, 'Not found (HTTP 404)', 'NOT_FOUND');
  }
}
