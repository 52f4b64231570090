import { HttpError, type HttpErrorInit } from './http-error.js';

/** Field name to messages, as in `{"errors": {"width": ["..."]}}`. */
export type FieldErrors = Record<string, string[]>;

/** Reads Laravel-style `{message, errors}` bodies defensively. */
export function readFieldErrors(body: unknown): FieldErrors {
  const out: FieldErrors = {};
  const errors = (body as { errors?: unknown } | null | undefined)?.errors;
  if (!errors || typeof errors !== 'object') return out;
  for (const [field, messages] of Object.entries(errors as Record<string, unknown>)) {
    if (Array.isArray(messages)) out[field] = messages.map(String);
    else if (messages !== undefined && messages !== null) out[field] = [String(messages)];
  }
  return out;
}

/** A 422: the server refused the parameters. Not retried. */
export class ValidationError extends HttpError {
  readonly fieldErrors: FieldErrors;

  constructor(init: Omit<HttpErrorInit, 'status'> & { fieldErrors?: FieldErrors }) {
    const fieldErrors = init.fieldErrors ?? readFieldErrors(init.body);
    const detail = Object.entries(fieldErrors)
      .map(([field, messages]) => `${field}: ${messages.join('; ')}`)
      .join(', ');
    super({ ...init, status: 422 }, `Validation failed (HTTP 422)${detail ? `: ${detail}` : ''}`, 'VALIDATION_FAILED');
    this.fieldErrors = fieldErrors;
  }
}
