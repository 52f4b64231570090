import { HttpError, type HttpErrorInit } from './http-error.js';

/** A 422 whose message is about the account balance. Submissions pause until it is topped up. */
export class InsufficientBalanceError extends HttpError {
  constructor(init: Omit<HttpErrorInit, 'status'>) {
    super({ ...init, status: 422 }, 'Insufficient balance: top up the account, then resume', 'INSUFFICIENT_BALANCE');
  }
}
