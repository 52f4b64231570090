/**
 * HTTP transport: one undici `Pool` to the API origin, every request through
 * the scheduler, one `pool.request` per attempt, and the response read into
 * something the engine understands (status + headers) or an error of the
 * `HttpError` family carrying the body.
 */
import { Pool } from 'undici';
import { headerRecord } from '../engine/classify.js';
import type { RateLimitScheduler, TaskContext } from '../engine/scheduler.js';
import { AuthenticationError } from '../errors/authentication-error.js';
import { HttpError } from '../errors/http-error.js';
import { InsufficientBalanceError } from '../errors/insufficient-balance-error.js';
import { NotFoundError } from '../errors/not-found-error.js';
import { ValidationError } from '../errors/validation-error.js';
import type { Logger } from '../internal/logger.js';
import type { EncodedBody } from './body.js';

export type RequestKind = 'submit' | 'poll' | 'other';

/** Counters the transport keeps (read by the client's stats). */
export interface TransportCounters {
  submits: number;
  polls: number;
  other: number;
  rateLimited: number;
}

export interface ApiCall {
  kind: RequestKind;
  method: 'GET' | 'POST';
  /** Path below the base URL, starting with `/`. */
  path: string;
  query?: Record<string, string>;
  /** Called once per attempt: a FormData body can be sent only once. */
  body?: () => EncodedBody;
  priority?: number;
  signal?: AbortSignal;
  /** Resent when the outcome of an attempt is unknown. False for job submissions. */
  idempotent: boolean;
  /** The job this call is about (status polls), for errors. */
  requestId?: string;
  /** Runs when an attempt is dispatched (before the request is written). */
  onDispatch?: () => void;
  /**
   * Checks a 2xx body inside the attempt; a returned message makes the
   * attempt fail as "unreadable" (outcome unknown: resent only if idempotent).
   */
  check?: (body: unknown) => string | undefined;
}

/** A 2xx response, its body parsed as JSON. */
export interface ApiResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

export interface TransportOptions {
  baseUrl: string;
  apiKey: string;
  connections: number;
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  userAgent: string;
  scheduler: RateLimitScheduler;
  logger: Logger;
  counters: TransportCounters;
}

/**
 * A 2xx response whose body could not be read as the JSON it should be. It
 * carries a network-style `code` from the engine's outcome-unknown set on
 * purpose: the request WAS processed (a POST may have created a job), we just
 * cannot tell the result. The engine then resends it only when idempotent,
 * and a submission rejects with `OutcomeUnknownError`.
 */
export class UnreadableResponseError extends Error {
  readonly code = 'ERR_STREAM_PREMATURE_CLOSE';

  constructor(message: string, cause?: unknown) {
    super(message, { cause });
    this.name = 'UnreadableResponseError';
  }
}

/**
 * A 504 from a gateway in front of the API on a job submission: the gateway
 * gave up waiting, the API may still have created (and billed) the job. It
 * has no `status`, so the engine classifies it by `code` (a timeout: outcome
 * unknown) instead of retrying it as a 5xx.
 */
export class GatewayTimeoutError extends Error {
  readonly code = 'ETIMEDOUT';

  constructor() {
    super('HTTP 504 from the gateway: the submission may or may not have been processed');
    this.name = 'GatewayTimeoutError';
  }
}

const BALANCE_RE = /balance|insufficient (?:funds|credit)|top.?up/i;

/** Whether a 422 body is about the account balance rather than the parameters. */
export function isBalanceError(body: unknown): boolean {
  if (typeof body !== 'object' || body === null) return typeof body === 'string' && BALANCE_RE.test(body);
  const { message, errors } = body as { message?: unknown; errors?: unknown };
  if (typeof message === 'string' && BALANCE_RE.test(message)) return true;
  return typeof errors === 'object' && errors !== null && Object.keys(errors).some((k) => /balance|credit/i.test(k));
}

function parseJson(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** Maps a non-2xx, non-429 response to the error the engine and the caller see. */
export function errorForResponse(
  status: number,
  headers: Record<string, string>,
  text: string,
  attempt: number,
  requestId: string | undefined,
): Error {
  const parsed = parseJson(text);
  const body = parsed ?? (text.length > 2048 ? `${text.slice(0, 2048)}…` : text);
  const init = { headers, body, attempt, ...(requestId === undefined ? {} : { requestId }) };
  if (status === 401) return new AuthenticationError(init);
  if (status === 404) return new NotFoundError(init);
  if ((status === 422 || status === 402) && isBalanceError(body)) return new InsufficientBalanceError(init);
  if (status === 422) return new ValidationError(init);
  const message = typeof (parsed as { message?: unknown } | undefined)?.message === 'string' ? `: ${(parsed as { message: string }).message}` : '';
  return new HttpError({ ...init, status }, `HTTP ${status}${message}`);
}

export class Transport {
  readonly #pool: Pool;
  readonly #prefix: string;
  readonly #baseHeaders: Record<string, string>;
  readonly #scheduler: RateLimitScheduler;
  readonly #logger: Logger;
  readonly #counters: TransportCounters;
  #closed = false;

  constructor(options: TransportOptions) {
    const url = new URL(options.baseUrl);
    this.#prefix = url.pathname.replace(/\/+$/, '');
    this.#pool = new Pool(url.origin, {
      connections: options.connections,
      connectTimeout: options.connectTimeoutMs,
      headersTimeout: options.headersTimeoutMs,
      bodyTimeout: options.bodyTimeoutMs,
      keepAliveTimeout: 10_000,
    });
    // The key lives only in this header object, never in a log or an error.
    this.#baseHeaders = {
      authorization: `Bearer ${options.apiKey}`,
      accept: 'application/json',
      'user-agent': options.userAgent,
    };
    this.#scheduler = options.scheduler;
    this.#logger = options.logger;
    this.#counters = options.counters;
  }

  /** Sends `call` through the scheduler; resolves with the parsed 2xx response. */
  call(call: ApiCall): Promise<ApiResponse> {
    const task = (ctx: TaskContext): Promise<ApiResponse> => this.#attempt(call, ctx);
    return this.#scheduler.schedule(task, {
      idempotent: call.idempotent,
      ...(call.priority === undefined ? {} : { priority: call.priority }),
      ...(call.signal === undefined ? {} : { signal: call.signal }),
    });
  }

  async #attempt(call: ApiCall, ctx: TaskContext): Promise<ApiResponse> {
    call.onDispatch?.();
    this.#counters[call.kind === 'submit' ? 'submits' : call.kind === 'poll' ? 'polls' : 'other']++;
    const query = call.query ? `?${new URLSearchParams(call.query).toString()}` : '';
    const encoded = call.body?.();
    const path = `${this.#prefix}${call.path}${query}`;
    this.#logger.debug({ method: call.method, path: `${call.path}${query}`, attempt: ctx.attempt, kind: call.kind }, 'request');
    const res = await this.#pool.request({
      method: call.method,
      path,
      headers: { ...this.#baseHeaders, ...encoded?.headers },
      ...(encoded ? { body: encoded.body } : {}),
      signal: ctx.signal,
    });
    const status = res.statusCode;
    if (status === 429) {
      this.#counters.rateLimited++;
      await res.body.dump().catch(() => undefined);
      // Returned, not thrown: the engine reads the status and the headers, closes its gate and runs us again.
      return { statusCode: 429, headers: res.headers, body: undefined };
    }
    if (status === 504 && call.kind === 'submit') {
      await res.body.dump().catch(() => undefined);
      throw new GatewayTimeoutError();
    }
    let text: string;
    try {
      text = await res.body.text();
    } catch (error) {
      if (status >= 200 && status < 300) throw error; // a cut body: a network error the engine knows
      text = '';
    }
    if (status >= 200 && status < 300) {
      const body = parseJson(text);
      if (body === undefined || typeof body !== 'object' || body === null) {
        throw new UnreadableResponseError(`HTTP ${status} with a body that is not JSON (${text.length} bytes)`);
      }
      const problem = call.check?.(body);
      if (problem !== undefined) throw new UnreadableResponseError(`HTTP ${status}: ${problem}`);
      return { statusCode: status, headers: res.headers, body };
    }
    throw errorForResponse(status, headerRecord(res.headers), text, ctx.attempt, call.requestId);
  }

  /** Closes the pool (idempotent). Requests in flight are aborted by their signals first. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.close().catch(() => this.#pool.destroy());
  }
}
