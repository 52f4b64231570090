/**
 * The cause of a run that did not finish, in words: which URL, which timeout.
 * Pure (tested with a table).
 */
import { formatDuration } from '../batch/classify.js';
import type { TransientCause } from '../batch/types.js';

export interface CauseContext {
  /** The API base URL the client sent to. */
  baseUrl: string;
  connectTimeoutMs: number;
  /** The headers (and body) timeout. */
  timeoutMs: number;
}

function duration(ms: number): string {
  return ms < 1000 ? `${ms} ms` : formatDuration(ms);
}

function origin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
}

/** E.g. `no answer from http://127.0.0.1:9/api/v1/client within 10 s (headers timeout)`. */
export function describeCause(cause: TransientCause, context: CauseContext): string {
  const { baseUrl } = context;
  switch (cause.causeCode ?? cause.code) {
    case 'UND_ERR_HEADERS_TIMEOUT':
      return `no answer from ${baseUrl} within ${duration(context.timeoutMs)} (headers timeout; raise it with --timeout <ms>)`;
    case 'UND_ERR_BODY_TIMEOUT':
      return `the answer from ${baseUrl} stalled for ${duration(context.timeoutMs)} (body timeout; raise it with --timeout <ms>)`;
    case 'UND_ERR_CONNECT_TIMEOUT':
      return `no connection to ${origin(baseUrl)} within ${duration(context.connectTimeoutMs)} (connect timeout; raise it with --connect-timeout <ms>)`;
    case 'ECONNREFUSED':
      return `${origin(baseUrl)} refused the connection (nothing listens there)`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `the host of ${baseUrl} was not found (DNS)`;
    case 'ECONNRESET':
    case 'UND_ERR_SOCKET':
    case 'EPIPE':
      return `${origin(baseUrl)} closed the connection before answering`;
    default:
      return cause.message;
  }
}
