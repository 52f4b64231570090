import type { FieldErrors } from './validation-error.js';
import { ValidationError } from './validation-error.js';

/**
 * Parameters refused locally, before anything was sent (no quota spent, no
 * job billed). A `ValidationError`, so one `catch` handles both this and the
 * server's 422; `local` tells them apart. `status` is the 422 the server
 * would have answered.
 */
export class ParamsValidationError extends ValidationError {
  readonly local = true;
  readonly endpoint: string;

  constructor(endpoint: string, fieldErrors: FieldErrors) {
    super({ fieldErrors, body: { message: 'The given data was invalid.', errors: fieldErrors } });
    this.endpoint = endpoint;
    const detail = Object.entries(fieldErrors)
      .map(([field, messages]) => `${field}: ${messages.join('; ')}`)
      .join(', ');
    this.message = `Invalid ${endpoint} parameters (checked locally; nothing was sent): ${detail}`;
  }
}
