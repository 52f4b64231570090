/**
 * HTTP transport: one undici `Pool` to the API origin, every request through
 * the scheduler, one exchange per attempt (`exchange.ts`: the body read whole
 * as text), and the response turned into something the engine understands
 * (status + headers) or an error of the `HttpError` family carrying the body.
 */
import { Pool } from 'undici';
import { headerRecord } from '../engine/classify.js';
import type { ScheduleOptions } from '../engine/options.js';
import { attemptAbort, type RateLimitScheduler, type TaskContext } from '../engine/scheduler.js';
import { AuthenticationError } from '../errors/authentication-error.js';
import { HttpError } from '../errors/http-error.js';
import { InsufficientBalanceError } from '../errors/insufficient-balance-error.js';
import { NotFoundError } from '../errors/not-found-error.js';
import { ValidationError } from '../errors/validation-error.js';
import { parseRateLimitHeaders } from '../headers/parse.js';
import type { HeaderSource } from '../headers/types.js';
import type { Clock } from '../internal/clock.js';
import type { WindowView } from '../store/types.js';
import { isDebugEnabled, type Logger } from '../internal/logger.js';
import { ScopeLearner, routeOf, type LimitScope } from './limit-scope.js';
import type { EncodedBody } from './body.js';
import { exchange } from './exchange.js';

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
  signal?: AbortSignal | undefined;
  /** Resent when the outcome of an attempt is unknown. False for job submissions. */
  idempotent: boolean;
  /** The job this call is about (status polls), for errors. */
  requestId?: string;
  /**
   * Runs synchronously just before each HTTP request of this call is sent,
   * with its 1-based number (every request counts: a resend after a 429 or a
   * 5xx is the next number).
   */
  onDispatch?: (request: number) => void;
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
  keepAliveTimeoutMs: number;
  userAgent: string;
  scheduler: RateLimitScheduler;
  logger: Logger;
  counters: TransportCounters;
  /** See `ModelBeamClientOptions.dailyCounts`. */
  dailyCounts: 'auto' | 'all';
  /**
   * Status polls the jobs in flight and `submitting` more on `route` may still need today (see
   * `JobTracker.pollsToKeep`), with the day's budget as the scheduler knows it: when it ends at the latest
   * (`endsBy`, undefined while unknown) and what is left (`available`).
   */
  pollsToKeep: (submitting: number, route: string, day: DayReading) => number;
  /** See `ModelBeamClientOptions.limitScope`. */
  limitScope: LimitScope;
  clock: Clock;
}

/** The daily window as a submission's keep reads it (store time; see `WindowView`). */
export interface DayReading {
  endsBy: number | undefined;
  available: number | undefined;
}

/**
 * A 2xx response whose body could not be read as the JSON it should be: the
 * request WAS processed (a POST may have created a job), we just cannot tell
 * the result. It carries the engine's explicit marker `outcomeUnknown: true`,
 * so the engine resends it only when idempotent, and a submission rejects
 * with `OutcomeUnknownError`. `cause`: what failed (the JSON parse error, or
 * the problem found in the body).
 */
export class UnreadableResponseError extends Error {
  readonly outcomeUnknown = true;

  constructor(message: string, cause: unknown) {
    super(message, { cause });
    this.name = 'UnreadableResponseError';
  }
}

/**
 * A 504 from a gateway in front of the API on a job submission: the gateway
 * gave up waiting, the API may still have created (and billed) the job. It
 * has no `status` of its own (the engine would retry a 5xx) but the marker
 * `outcomeUnknown: true`; the 504 itself is its `cause` (an `HttpError` with
 * the status, headers and body).
 */
export class GatewayTimeoutError extends Error {
  readonly outcomeUnknown = true;

  constructor(cause: HttpError) {
    super('HTTP 504 from the gateway: the submission may or may not have been processed', { cause });
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
  return tryParseJson(text).value;
}

function tryParseJson(text: string): { value: unknown; error?: unknown } {
  if (text === '') return { value: undefined, error: new SyntaxError('empty body') };
  try {
    return { value: JSON.parse(text) as unknown };
  } catch (error) {
    return { value: undefined, error };
  }
}

/** A 2xx body as the JSON object it must be, or an `UnreadableResponseError`. */
function parseObjectBody(status: number, text: string): object {
  let body: unknown;
  let error: unknown;
  if (text === '') error = new SyntaxError('empty body');
  else {
    try {
      body = JSON.parse(text) as unknown;
    } catch (e) {
      error = e;
    }
  }
  if (typeof body === 'object' && body !== null) return body;
  const cause = error ?? new TypeError(`expected a JSON object, got ${body === null ? 'null' : typeof body}`);
  throw new UnreadableResponseError(`HTTP ${status} with a body that is not a JSON object (${text.length} bytes)`, cause);
}

/** Maps a non-2xx, non-429 response to the error the engine and the caller see. */
export function errorForResponse(
  status: number,
  headers: Record<string, string>,
  text: string,
  attempt: number,
  requestId: string | undefined,
  request?: string,
): Error {
  const parsed = parseJson(text);
  const body = parsed ?? (text.length > 2048 ? `${text.slice(0, 2048)}…` : text);
  const init = { headers, body, attempt, ...(requestId === undefined ? {} : { requestId }), ...(request === undefined ? {} : { request }) };
  if (status === 401) return new AuthenticationError(init);
  if (status === 404) return new NotFoundError(init);
  if ((status === 422 || status === 402) && isBalanceError(body)) return new InsufficientBalanceError(init);
  if (status === 422) return new ValidationError(init);
  const message = typeof (parsed as { message?: unknown } | undefined)?.message === 'string' ? `: ${(parsed as { message: string }).message}` : '';
  return new HttpError({ ...init, status }, `HTTP ${status}${message}`);
}

/** The route status polls count on (see `routeOf`). */
const POLL_ROUTE = 'request-status';

/** Submissions answered with a job and handed to the client, which tracks the job (and calls `tracked()`). */
const answeredCalls = new WeakSet<ApiCall>();
/** The priority of a route's first call while `limitScope: 'auto'` learns (ahead of every other). */
const LEARNING_PRIORITY = Number.MAX_SAFE_INTEGER;

export class Transport {
  readonly #pool: Pool;
  readonly #prefix: string;
  /** The base URL as errors name it: origin and path, no credentials. */
  readonly #where: string;
  readonly #baseHeaders: Record<string, string>;
  readonly #scheduler: RateLimitScheduler;
  readonly #logger: Logger;
  readonly #counters: TransportCounters;
  readonly #dailyCounts: 'auto' | 'all';
  /** Status polls the jobs in flight and on the way may still need (`TransportOptions.pollsToKeep`). */
  readonly #pollsToKeep: (submitting: number, route: string, day: DayReading) => number;
  /**
   * Submissions on the wire, and answered ones not yet tracked by the client
   * (`tracked()`): jobs on the way, whose polls need daily units too.
   */
  #submitting = 0;
  readonly #scopes: ScopeLearner;
  /** While learning: the route of each call scheduled on the shared budget, to move it when the routes split. */
  readonly #routes = new WeakMap<ScheduleOptions, string>();
  /**
   * limitScope 'auto': requests of each route in flight on the shared budget. Once the routes split, a
   * route's requests on its own budget wait until these are answered: the server counts them on the
   * route's counter, and the new budget's first read must include them.
   */
  readonly #sharedInFlight = new Map<string, { n: number; idle: (() => void)[] }>();
  /** While learning: the routes scheduled so far (the first call of each goes ahead, see `call`). */
  readonly #seenRoutes = new Set<string>();
  readonly #clock: Clock;
  #closed = false;

  constructor(options: TransportOptions) {
    const url = new URL(options.baseUrl);
    this.#prefix = url.pathname.replace(/\/+$/, '');
    this.#where = `${url.origin}${this.#prefix}`;
    this.#pool = new Pool(url.origin, {
      connections: options.connections,
      connectTimeout: options.connectTimeoutMs,
      headersTimeout: options.headersTimeoutMs,
      bodyTimeout: options.bodyTimeoutMs,
      keepAliveTimeout: options.keepAliveTimeoutMs,
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
    this.#dailyCounts = options.dailyCounts;
    this.#pollsToKeep = options.pollsToKeep;
    this.#scopes = new ScopeLearner(options.limitScope, options.scheduler.timing.minuteMs);
    this.#clock = options.clock;
  }

  /**
   * Daily units a submission on `path` leaves for the polls of the jobs in flight and on the way (its
   * `keepDaily`): none where polls are shown not to count daily ('auto') or draw on a budget of their own
   * (limitScope). Until an answer shows whether polls count daily, they are assumed to (a unit kept too many
   * only delays).
   */
  keepForPolls(path: string): number {
    return this.#keepFor(routeOf(path));
  }

  /** `daily`: the route's daily window as the caller has just read it (read here when not given). */
  #keepFor(route: string, daily?: WindowView): number {
    if (this.#dailyCounts === 'auto' && this.#scheduler.minuteLaneCountsDaily === false) return 0;
    const scope = this.#scopes.scopeFor(route);
    if (this.#scopes.scopeFor(POLL_ROUTE) !== scope) return 0;
    daily ??= this.#scheduler.budget(scope)?.daily;
    return this.#pollsToKeep(this.#submitting, route, { endsBy: daily?.nextResetBy, available: daily?.available });
  }

  /** The scheduler scope requests on `path` draw from now (undefined: the account's, the default scope). */
  scopeFor(path: string): string | undefined {
    return this.#scopes.scopeFor(routeOf(path));
  }

  /** Sends `call` through the scheduler; resolves with the parsed 2xx response. */
  call(call: ApiCall): Promise<ApiResponse> {
    let requests = 0;
    const route = routeOf(call.path);
    const task = (ctx: TaskContext): Promise<ApiResponse> => this.#attempt(call, ctx, ++requests, route);
    // Priority 0 is the scheduler's default; the options are built in one of two fixed shapes (no spreads).
    let priority = call.priority ?? 0;
    if (this.#scopes.learning && !this.#seenRoutes.has(route)) {
      // limitScope 'auto': the first call of a route goes ahead of the shared queue, so that every route
      // answers early and separate counters show before a backlog of one route is spent on shared numbers.
      this.#seenRoutes.add(route);
      priority = LEARNING_PRIORITY;
    }
    // Only job submissions are sure to count against the daily quota (see dailyCounts).
    const countsDaily = call.kind === 'submit' || this.#dailyCounts === 'all';
    // A submission leaves the daily units the polls of the jobs in flight need.
    const keepDaily = call.kind === 'submit' ? (day: WindowView) => this.#keepFor(route, day) : 0;
    const { idempotent, signal } = call;
    const options: ScheduleOptions =
      signal === undefined
        ? { idempotent, priority, countsDaily, keepDaily }
        : { idempotent, priority, countsDaily, keepDaily, signal };
    // The budget this route draws from: the account's (the default scope), or its own (limitScope).
    const scope = this.#scopes.scopeFor(route);
    if (scope !== undefined) options.scope = scope;
    else if (this.#scopes.learning) this.#routes.set(options, route);
    const result = this.#scheduler.schedule(task, options);
    if (call.kind !== 'submit') return result;
    // Answered, then failed all the same (aborted meanwhile): nobody will track it.
    return result.catch((error: unknown) => {
      if (answeredCalls.has(call)) this.tracked();
      throw error;
    });
  }

  /** What `call` asked, as errors name it (method and URL, without the query). */
  #asked(call: ApiCall): string {
    return `${call.method} ${this.#where}${call.path}`;
  }

  /** A submission answered with a job is tracked by the client: no longer on the way. */
  tracked(): void {
    if (this.#submitting > 0) this.#submitting--;
  }

  async #attempt(call: ApiCall, ctx: TaskContext, request: number, route: string): Promise<ApiResponse> {
    if (call.kind !== 'submit') return this.#send(call, ctx, request, route);
    this.#submitting++;
    let answered = false;
    try {
      const res = await this.#send(call, ctx, request, route);
      answered = res.statusCode !== 429;
      if (answered) answeredCalls.add(call);
      return res;
    } finally {
      // An answered submission stays counted until the client tracks its job (`tracked()`).
      if (!answered) this.#submitting--;
    }
  }

  async #send(call: ApiCall, ctx: TaskContext, request: number, route: string): Promise<ApiResponse> {
    const query = call.query ? `?${new URLSearchParams(call.query).toString()}` : '';
    const encoded = call.body?.();
    this.#counters[call.kind === 'submit' ? 'submits' : call.kind === 'poll' ? 'polls' : 'other']++;
    if (isDebugEnabled(this.#logger)) {
      this.#logger.debug({ method: call.method, path: `${call.path}${query}`, attempt: ctx.attempt, kind: call.kind }, 'request');
    }
    const learning = this.#scopes.learning;
    if (!learning && this.#sharedInFlight.size > 0) await this.#sharedAnswered(route, ctx.signal);
    call.onDispatch?.(request);
    const mark = learning ? this.#scopes.sent(route) : undefined;
    if (learning) this.#sharedSent(route, 1);
    let res: Awaited<ReturnType<typeof exchange>>;
    try {
      res = await exchange(
        this.#pool,
        {
          method: call.method,
          path: `${this.#prefix}${call.path}${query}`,
          headers: encoded ? { ...this.#baseHeaders, ...encoded.headers } : this.#baseHeaders,
          body: encoded ? encoded.body : null,
        },
        // The attempt's light abort: it fires exactly when `ctx.signal` would, without an AbortSignal per request.
        attemptAbort(ctx),
      );
    } finally {
      if (learning) this.#sharedSent(route, -1);
    }
    const status = res.statusCode;
    if (mark !== undefined) this.#learnScope(route, mark, res.headers);
    if (status === 429) {
      this.#counters.rateLimited++;
      // Returned, not thrown: the engine reads the status and the headers, closes its gate and runs us again.
      return { statusCode: 429, headers: res.headers, body: undefined };
    }
    if (status === 504 && call.kind === 'submit') {
      throw new GatewayTimeoutError(errorForResponse(504, headerRecord(res.headers), res.text, ctx.attempt, call.requestId, this.#asked(call)) as HttpError);
    }
    const ok = status >= 200 && status < 300;
    // A cut 2xx body is a network error the engine knows; an error's body is only detail (read as empty).
    if (ok && res.bodyError !== undefined) throw res.bodyError;
    if (!ok) throw errorForResponse(status, headerRecord(res.headers), res.text, ctx.attempt, call.requestId, this.#asked(call));
    const body = parseObjectBody(status, res.text);
    const problem = call.check?.(body);
    if (problem !== undefined) throw new UnreadableResponseError(`HTTP ${status}: ${problem}`, new TypeError(problem));
    return { statusCode: status, headers: res.headers, body };
  }

  /** Counts a request of `route` on the shared budget in (+1) or out (-1); the last one out wakes the waiters. */
  #sharedSent(route: string, delta: 1 | -1): void {
    let entry = this.#sharedInFlight.get(route);
    if (!entry) {
      entry = { n: 0, idle: [] };
      this.#sharedInFlight.set(route, entry);
    }
    entry.n += delta;
    if (entry.n > 0) return;
    this.#sharedInFlight.delete(route);
    for (const wake of entry.idle) wake();
  }

  /** Resolves once no request of `route` is in flight on the shared budget; rejects when `signal` aborts. */
  #sharedAnswered(route: string, signal: AbortSignal): Promise<void> {
    const entry = this.#sharedInFlight.get(route);
    if (!entry) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      if (signal.aborted) {
        reject(signal.reason);
        return;
      }
      const onAbort = (): void => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      entry.idle.push(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }

  /** Reads an answer's minute numbers for the limit-scope learner (`limitScope: 'auto'`, until it decided). */
  #learnScope(route: string, mark: { answersAtSend: number; routeSent: number }, headers: HeaderSource): void {
    const now = this.#clock.now();
    const { minute } = parseRateLimitHeaders(headers, { now });
    const before = this.#scopes.mode;
    this.#scopes.answered(route, mark, now, minute.limit, minute.remaining);
    if (this.#scopes.mode !== before) {
      // Calls queued on the shared budget move to their routes' budgets (and those in flight when they come back).
      const moved = this.#scheduler.rescope((options) => (options === undefined ? undefined : this.#routes.get(options)));
      this.#logger.info({ route, moved }, 'limitScope auto: routes count on separate counters; each route draws from its own budget from now on');
    }
  }

  /** Closes the pool (idempotent). Requests in flight are aborted by their signals first. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.close().catch(() => this.#pool.destroy());
  }
}
