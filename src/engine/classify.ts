/**
 * Pure classification of what a task returned or threw: which status and
 * headers it carries, and what the scheduler should do about it. One ordered
 * ladder: server hint → status → network error kind → everything else fails.
 */
import { AuthenticationError } from '../errors/authentication-error.js';
import { HttpError } from '../errors/http-error.js';
import { NotFoundError } from '../errors/not-found-error.js';
import { ValidationError } from '../errors/validation-error.js';
import type { HeaderSource } from '../headers/types.js';

/** The status and headers of an HTTP response, from whichever client produced it. */
export interface ResponseInfo {
  status: number;
  headers: HeaderSource | undefined;
  body: unknown;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/**
 * Reads a response-like value: undici's `{statusCode, headers}`, a fetch
 * `Response` (`{status, headers: Headers}`), or any `{status, headers}`.
 */
export function inspectResponse(value: unknown): ResponseInfo | undefined {
  if (!isObject(value)) return undefined;
  const status = typeof value.statusCode === 'number' ? value.statusCode : value.status;
  if (typeof status !== 'number' || status < 100 || status > 599) return undefined;
  const headers = isObject(value.headers) ? (value.headers as HeaderSource) : undefined;
  return { status, headers, body: value.body };
}

/** Reads a thrown error that carries a response: our `HttpError`, or anything with `status`/`response`. */
export function inspectError(error: unknown): ResponseInfo | undefined {
  if (!isObject(error)) return undefined;
  if (error instanceof HttpError) return { status: error.status, headers: error.headers, body: error.body };
  return inspectResponse(error) ?? inspectResponse(error.response);
}

/** Errors raised before the request reached the server: resending is always safe. */
const NOT_SENT = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'ENETDOWN',
  'EHOSTDOWN',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** Errors after the request may have been sent: the server may have processed it. */
const OUTCOME_UNKNOWN = new Set([
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

export type NetworkErrorKind = 'not-sent' | 'outcome-unknown';

/**
 * Tells a network failure apart from a bug; looks through `cause` chains (fetch wraps them).
 * A task can also mark an error `outcomeUnknown: true` itself.
 */
export function networkErrorKind(error: unknown): NetworkErrorKind | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && isObject(current); depth++) {
    // An explicit marker from the task: "the request left, and no answer came back".
    if (current.outcomeUnknown === true) return 'outcome-unknown';
    const code = current.code;
    if (typeof code === 'string') {
      if (NOT_SENT.has(code)) return 'not-sent';
      if (OUTCOME_UNKNOWN.has(code)) return 'outcome-unknown';
    }
    current = current.cause;
  }
  return undefined;
}

export type StatusClass = 'ok' | 'rate-limited' | 'auth' | 'not-found' | 'validation' | 'transient' | 'fatal';

/** What a status means for the queue. `x-should-retry` (openai/anthropic style) overrides for errors. */
export function classifyStatus(status: number, shouldRetryHint?: boolean): StatusClass {
  if (status < 400) return 'ok';
  if (status === 429) return 'rate-limited';
  if (status === 401) return 'auth';
  if (shouldRetryHint === true) return 'transient';
  if (shouldRetryHint === false) return 'fatal';
  if (status === 404) return 'not-found';
  if (status === 422) return 'validation';
  if (status === 408 || status >= 500) return 'transient';
  return 'fatal';
}

/** Reads the `x-should-retry` hint from any header container. */
export function shouldRetryHint(headers: HeaderSource | undefined): boolean | undefined {
  if (!headers) return undefined;
  let value: unknown;
  if (typeof (headers as Headers).get === 'function') value = (headers as Headers).get('x-should-retry');
  else if (!(Symbol.iterator in headers)) value = (headers as Record<string, unknown>)['x-should-retry'];
  if (value === 'true') return true;
  if (value === 'false') return false;
  return undefined;
}

/** Plain lower-case header record for error objects (never includes request headers). */
export function headerRecord(headers: HeaderSource | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!headers) return out;
  const entries: Iterable<[string, unknown]> =
    typeof (headers as Headers).entries === 'function' && typeof (headers as Headers).get === 'function'
      ? (headers as Headers).entries()
      : Symbol.iterator in headers
        ? (headers as Iterable<[string, string]>)
        : Object.entries(headers as Record<string, unknown>);
  for (const [name, value] of entries) {
    if (value === undefined || value === null) continue;
    out[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  return out;
}

/** Builds the error a failed response becomes. */
export function errorForStatus(info: ResponseInfo, attempt: number, cause?: unknown): HttpError {
  const init = { headers: headerRecord(info.headers), body: info.body, attempt, cause };
  switch (info.status) {
    case 401:
      return new AuthenticationError(init);
    case 404:
      return new NotFoundError(init);
    case 422:
      return new ValidationError(init);
    default:
      return new HttpError({ ...init, status: info.status }, `HTTP ${info.status}`);
  }
}

/** Releases the body of a response the caller will never see (undici needs it, or the socket leaks). */
export function discardBody(value: unknown): void {
  if (!isObject(value) || !isObject(value.body)) return;
  const body = value.body as { dump?: () => Promise<void>; cancel?: () => Promise<void>; resume?: () => void };
  try {
    if (typeof body.dump === 'function') void body.dump().catch(() => {});
    else if (typeof body.cancel === 'function') void body.cancel().catch(() => {});
    else if (typeof body.resume === 'function') body.resume();
  } catch {
    // Nothing more can be done for a body that refuses to be released.
  }
}
