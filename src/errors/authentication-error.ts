import { HttpError, type HttpErrorInit } from './http-error.js';

/** A 401: the key is missing, wrong or revoked. Stops the whole queue. */
export class AuthenticationError extends HttpError {
  constructor(init: Omit<HttpErrorInit, 'status'> & { status?: number }) {
    super({ status: 401, ...init }, 'Authentication failed: the API key was refused (HTTP 401): check the key the requests carry', 'AUTHENTICATION_FAILED');
  }
}
