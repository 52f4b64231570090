import { CLIENT_DEFAULTS } from '../modelbeam/options.js';
import type { ItemError, StopReason, TransientCause } from './types.js';

/**
 * What an error from `submit` or `wait` means for a batch item:
 * - `unknown-outcome`: the POST may have been processed (`OUTCOME_UNKNOWN`);
 * - `stop`: an account-level condition; the whole run stops, resumable;
 * - `job-failed`: the job ran and failed (`JOB_FAILED`);
 * - `fatal`: the request was refused for this item (422, 404, other 4xx): the item fails;
 * - `transient`: it may work later (retries exhausted, timeouts, 5xx, anything unexpected):
 *   the item stays pending, and a run of them stops the batch as `api-unavailable`.
 */
export type ErrorClass = 'unknown-outcome' | 'stop' | 'job-failed' | 'fatal' | 'transient';

interface ErrorLike {
  code?: unknown;
  status?: unknown;
  message?: unknown;
  resetAt?: unknown;
  jobErrorCode?: unknown;
  retryable?: unknown;
  fieldErrors?: unknown;
  requestId?: unknown;
}

function fields(error: unknown): ErrorLike {
  return typeof error === 'object' && error !== null ? (error as ErrorLike) : {};
}

export function errorCode(error: unknown): string | undefined {
  const code = fields(error).code;
  return typeof code === 'string' ? code : undefined;
}

export function classifyError(error: unknown): ErrorClass {
  const e = fields(error);
  switch (e.code) {
    case 'OUTCOME_UNKNOWN':
      return 'unknown-outcome';
    case 'AUTHENTICATION_FAILED':
    case 'DAILY_QUOTA_EXHAUSTED':
    case 'INSUFFICIENT_BALANCE':
    case 'QUEUE_CLOSED':
    case 'STORE_UNAVAILABLE':
      return 'stop';
    case 'JOB_FAILED':
      return 'job-failed';
    case 'VALIDATION_FAILED':
    case 'NOT_FOUND':
    case 'INVALID_INPUT':
      return 'fatal';
    case 'HTTP_ERROR': {
      const status = typeof e.status === 'number' ? e.status : 0;
      if (status === 401 || status === 403) return 'stop';
      if (status >= 400 && status < 500 && status !== 408 && status !== 429) return 'fatal';
      return 'transient';
    }
    default:
      // A TypeError without a code is the client refusing its arguments before sending (a bad endpoint name,
      // parameters that are not an object): deterministic, so the item fails.
      if (error instanceof TypeError && e.code === undefined) return 'fatal';
      return 'transient';
  }
}

/**
 * A transient error as plain data, for the summary: its message and code, and the lowest-level code in its
 * `cause` chain (undici's `UND_ERR_HEADERS_TIMEOUT`, a socket's `ECONNREFUSED`, ...).
 */
export function transientCause(error: unknown): TransientCause {
  const e = fields(error);
  const out: TransientCause = { message: typeof e.message === 'string' ? e.message : String(error) };
  if (typeof e.code === 'string') out.code = e.code;
  let current: unknown = (error as { cause?: unknown } | null)?.cause;
  for (let depth = 0; depth < 5 && typeof current === 'object' && current !== null; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') out.causeCode = code;
    current = (current as { cause?: unknown }).cause;
  }
  return out;
}

/**
 * Whether an error says the base URL is not the API, when nothing has worked there yet: a 404 (no such
 * path), a 405 or a 410. After a request succeeded at the same base URL, the same 404 means the item's
 * endpoint or job is unknown, and the item fails on its own.
 *
 * A 2xx whose body is not JSON is not one of them: a body cut in the middle by the network reads the same
 * as a web page, and only the first is a fault to ride out (an unknown outcome, resubmitted flagged).
 */
export function isConfigurationError(error: unknown): boolean {
  const e = fields(error);
  if (e.code === 'NOT_FOUND') return true;
  return e.code === 'HTTP_ERROR' && (e.status === 405 || e.status === 410);
}

/** What a configuration error says: the URL that was tried, and that it does not look like the API. */
export function configurationProblem(error: unknown, baseUrl: string | undefined, path: string, method: 'POST' | 'GET'): string {
  const e = fields(error);
  const base = baseUrl === undefined ? undefined : baseUrl.replace(/\/+$/, '');
  const url = base === undefined ? `the API base URL + /${path}` : `${base}/${path}${method === 'GET' ? '/…' : ''}`;
  const answer = typeof e.status === 'number' ? `HTTP ${e.status}` : String(e.code ?? 'an error');
  return (
    `${method} ${url} answered ${answer} before any request of this run succeeded: ${base ?? 'the base URL'} does not look like the ModelBeam API ` +
    `(its base URL is ${CLIENT_DEFAULTS.baseUrl}).`
  );
}

/** The stop for a configuration error: it names the URL that was tried. */
export function configurationStop(error: unknown, baseUrl: string | undefined, path: string, method: 'POST' | 'GET'): { reason: StopReason; message: string } {
  return {
    reason: 'configuration',
    message: `${configurationProblem(error, baseUrl, path, method)} Nothing was marked finished. Fix the base URL (--base-url), then run the batch again to resume.`,
  };
}

/**
 * The stop an error of class `stop` calls for. `apiBaseUrl`, when known, is named in the message of a refused
 * key: a base URL that is not the ModelBeam API refuses every key too.
 */
export function stopFor(error: unknown, apiBaseUrl?: string): { reason: StopReason; message: string; resetAt?: number } {
  const e = fields(error);
  switch (e.code) {
    case 'DAILY_QUOTA_EXHAUSTED': {
      const resetAt = typeof e.resetAt === 'number' ? e.resetAt : undefined;
      return resetAt === undefined ? { reason: 'daily-quota', message: dailyMessage(undefined) } : { reason: 'daily-quota', message: dailyMessage(resetAt), resetAt };
    }
    case 'INSUFFICIENT_BALANCE':
      return { reason: 'insufficient-balance', message: 'The account balance is too low for more jobs. Top it up, then run the batch again to resume.' };
    case 'STORE_UNAVAILABLE':
      return { reason: 'store-unavailable', message: `The shared quota store is unavailable: ${String(e.message)}` };
    case 'QUEUE_CLOSED':
      return { reason: 'stopped', message: 'The client was closed while the batch ran.' };
    default: {
      const status = typeof e.status === 'number' ? e.status : 401;
      return {
        reason: 'authentication',
        message:
          `The API key was refused (HTTP ${status}${apiBaseUrl === undefined ? '' : ` from ${apiBaseUrl}`}). Dispatch stopped and nothing was retried. ` +
          `Fix the key (MODELBEAM_API_KEY)${apiBaseUrl === undefined ? '' : ', or the base URL (--base-url) if it is not the ModelBeam API'}, then run the batch again to resume.`,
      };
    }
  }
}

export function dailyMessage(resetAt: number | undefined, now = Date.now()): string {
  if (resetAt === undefined) {
    return 'The daily quota is exhausted; the server did not say when it resets (ModelBeam daily quotas reset at midnight UTC).';
  }
  return `The daily quota is exhausted; it resets at ${new Date(resetAt).toISOString()} (in ${formatDuration(resetAt - now)}).`;
}

/** `2 h 05 min`, `3 min 20 s`, `12 s`. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`;
  const h = Math.floor(m / 60);
  return `${h} h ${String(m % 60).padStart(2, '0')} min`;
}

/** The error as the results file keeps it: code, message, and the useful context. Never the cause chain. */
export function toItemError(error: unknown): ItemError {
  const e = fields(error);
  const code = typeof e.code === 'string' ? e.code : error instanceof TypeError ? 'INVALID_INPUT' : 'UNEXPECTED';
  const message = typeof e.message === 'string' ? e.message : String(error);
  const out: ItemError = { code, message };
  if (typeof e.jobErrorCode === 'string') out.jobErrorCode = e.jobErrorCode;
  if (typeof e.status === 'number') out.status = e.status;
  if (typeof e.fieldErrors === 'object' && e.fieldErrors !== null && Object.keys(e.fieldErrors).length > 0) {
    out.fields = e.fieldErrors as Record<string, string[]>;
  }
  return out;
}

/** Whether a failed job may be submitted again, given what this item already spent. */
export function mayResubmit(error: unknown, spent: { total: number; byCode: Map<string, number> }, maxResubmissions: number): boolean {
  const e = fields(error);
  if (e.retryable !== true || spent.total >= maxResubmissions) return false;
  const code = typeof e.jobErrorCode === 'string' ? e.jobErrorCode : 'UNKNOWN_ERROR';
  if (code === 'WORKER_TIMEOUT') return true;
  return (spent.byCode.get(code) ?? 0) < 1;
}
