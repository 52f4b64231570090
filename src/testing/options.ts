/**
 * Options of the fake ModelBeam server (types with TSDoc), their defaults in
 * one object, and eager validation into a resolved shape.
 */
import { systemClock, type Clock } from '../internal/clock.js';
import { silentLogger, type Logger } from '../internal/logger.js';
import { DEFAULT_DAILY_MS, DEFAULT_MINUTE_MS } from './limiter.js';
import type { ResolvedWindowOptions, WindowKind, WindowOptions } from './windows.js';

/** The job error codes of the API (§6.2). */
export type JobErrorCode =
  | 'WORKER_TIMEOUT'
  | 'PROCESSING_ERROR'
  | 'AGE_RESTRICTED'
  | 'CONTEXT_LENGTH_EXCEEDED'
  | 'INVALID_INPUT'
  | 'UNKNOWN_ERROR';

export const JOB_ERROR_CODES: readonly JobErrorCode[] = [
  'WORKER_TIMEOUT',
  'PROCESSING_ERROR',
  'AGE_RESTRICTED',
  'CONTEXT_LENGTH_EXCEEDED',
  'INVALID_INPUT',
  'UNKNOWN_ERROR',
];

/** The job-creating endpoints the fake serves (`POST /api/v1/client/{endpoint}`). */
export type FakeEndpoint =
  | 'txt2img'
  | 'img2img'
  | 'txt2embedding'
  | 'txt2audio'
  | 'transcribe'
  | 'img2txt'
  | 'txt2video'
  | 'img2video'
  | 'txt2music'
  | 'aud2video';

export const FAKE_ENDPOINTS: readonly FakeEndpoint[] = [
  'txt2img',
  'img2img',
  'txt2embedding',
  'txt2audio',
  'transcribe',
  'img2txt',
  'txt2video',
  'img2video',
  'txt2music',
  'aud2video',
];

/** Request parameters as the server stored them: uploaded files are replaced by `{filename, size, type}`. */
export type JobParams = Readonly<Record<string, unknown>>;

export interface JobScriptContext {
  endpoint: FakeEndpoint;
  params: JobParams;
  /** 1 for the first submission of this endpoint + prompt/input text, 2 for the second, ... */
  attempt: number;
  account: string;
}

export type JobOutcome = { outcome: 'done' } | { outcome: 'error'; code: JobErrorCode; message?: string };

/** Decides a job's outcome; `undefined` falls through to the `FAIL:` markers and `failureRate`. */
export type JobScript = (ctx: JobScriptContext) => JobOutcome | undefined;

export interface JobOptions {
  /**
   * Time from creation until a job turns `processing`, in ms.
   * @default 200
   */
  pendingMs?: number;
  /**
   * Time spent `processing`, in ms, or a function of the endpoint and params.
   * @default 1000
   */
  processingMs?: number | ((endpoint: FakeEndpoint, params: JobParams) => number);
  /**
   * Random spread of both durations: each is multiplied by `1 ± jitter` (uniform).
   * @default 0
   */
  jitter?: number;
  /**
   * Probability that a job without a scripted outcome fails.
   * @default 0
   */
  failureRate?: number;
  /**
   * Codes drawn (uniformly) for random failures.
   * @default ['WORKER_TIMEOUT']
   */
  failureCodes?: readonly JobErrorCode[];
  /**
   * Scripted per-job outcomes, consulted first.
   * @default undefined
   */
  script?: JobScript;
  /**
   * Honour `FAIL:<CODE>` (always fails) and `FAIL_ONCE:<CODE>` (fails the first submission of that exact
   * text) in `prompt`, `input`, `text`, `caption` or `lyrics`.
   * @default true
   */
  failMarkers?: boolean;
  /**
   * When false, the status of a failed job carries `error_code: null` and `error_message: null`; only the
   * webhook tells the code.
   * @default true
   */
  errorFieldsInStatus?: boolean;
}

export interface HeaderOptions {
  /**
   * Send `X-RateLimit-*` on non-429 responses too (Laravel does). When false, only 429s carry them.
   * @default true
   */
  onSuccess?: boolean;
  /**
   * Send `X-RateLimit-Daily-Limit` / `-Remaining` (only ever sent when a daily limit is set).
   * @default true
   */
  daily?: boolean;
  /**
   * Probability (0..1) that a response carries no rate-limit headers at all. A 429 keeps `Retry-After`.
   * @default 0
   */
  missingRate?: number;
  /**
   * Also send `retry-after-ms` (integer ms) on 429s.
   * @default false
   */
  retryAfterMs?: boolean;
  /**
   * Format of `Retry-After`: delta-seconds (ceil) or an HTTP-date (rounded up to the next second).
   * @default 'seconds'
   */
  retryAfterFormat?: 'seconds' | 'http-date';
}

export interface WebhookOptions {
  /**
   * Account-level webhook URL applied to every account without its own (`accountUrls`). A job's
   * `webhook_url` overrides it.
   * @default undefined (no account-level webhook)
   */
  url?: string;
  /**
   * Account-level webhook URLs by account id.
   * @default {}
   */
  accountUrls?: Readonly<Record<string, string>>;
  /**
   * HMAC-SHA256 signing secret (shared by all accounts). Never logged.
   * @default 'whsec_test'
   */
  secret?: string;
  /**
   * A delivery attempt that has no 2xx status within this many ms (server clock) fails.
   * @default 10_000
   */
  timeoutMs?: number;
  /**
   * Backoff before retry n (1-based) is `retryBaseMs * 2^(n-1)`.
   * @default 1000
   */
  retryBaseMs?: number;
  /**
   * Attempts per delivery, the first included.
   * @default 10
   */
  maxAttempts?: number;
  /**
   * The account's webhook is disabled after this many consecutive failed attempts (any 2xx resets the
   * count). Pending retries of a disabled account are dropped.
   * @default 10
   */
  disableAfterFailures?: number;
  /**
   * Probability that a successful delivery is sent once more (same delivery id).
   * @default 0
   */
  duplicateRate?: number;
  /**
   * Hold back `job.processing` and send it after the terminal event (`job.completed`/`job.failed`).
   * @default false
   */
  reorder?: boolean;
}

export type Error5xxStatus = 500 | 502 | 503 | 504;

export interface FaultOptions {
  /**
   * Probability of a 5xx instead of the normal response. 500 comes from the "app" (counted against the
   * window, no job created, rate-limit headers present); 502/503/504 come from the "gateway" (not
   * counted, HTML body, no rate-limit headers).
   * @default 0
   */
  error5xxRate?: number;
  /**
   * The statuses an `error5xxRate` fault picks from (uniformly).
   * @default [500, 502, 503]
   */
  error5xxStatuses?: readonly Error5xxStatus[];
  /**
   * Probability that the socket is destroyed before anything happens (not counted, no job).
   * @default 0
   */
  resetRate?: number;
  /**
   * POST submits only: probability that the job is created and counted, then the socket is destroyed.
   * @default 0
   */
  acceptThenResetRate?: number;
  /**
   * Probability that the (normally processed) response is held back `slowMs` (server clock).
   * @default 0
   */
  slowRate?: number;
  /**
   * @default 3000
   */
  slowMs?: number;
  /**
   * Probability that the (normally processed) response body is truncated JSON.
   * @default 0
   */
  malformedJsonRate?: number;
}

export interface LimitsOptions {
  /**
   * The per-account minute window; `false` for none.
   * @default { limit: 300, windowMs: 60_000, kind: 'fixed', phaseMs: 0 }
   */
  minute?: WindowOptions | false;
  /**
   * The per-account daily window; `false` for none.
   * @default false
   */
  daily?: WindowOptions | false;
}

export interface FakeServerOptions {
  /**
   * Port to listen on; 0 picks a free one.
   * @default 0
   */
  port?: number;
  /**
   * Interface to listen on.
   * @default '127.0.0.1'
   */
  host?: string;
  /**
   * Every timestamp, window, job transition and timer runs on this clock.
   * @default systemClock
   */
  clock?: Clock;
  /**
   * Seed of the PRNG streams (faults, job durations/outcomes, ids, header drops, webhook duplicates).
   * @default 1
   */
  seed?: number;
  /**
   * A pino-compatible logger. Never receives API keys or the webhook secret.
   * @default silent
   */
  logger?: Logger;
  /**
   * API key → account id. Limits and balance are per account.
   * @default { 'test-key': 'acct-1' }
   */
  accounts?: Readonly<Record<string, string>>;
  /**
   * Starting balance of every account, USD.
   * @default 1000
   */
  balance?: number;
  limits?: LimitsOptions;
  /**
   * Whether `GET /request-status/{id}` counts against (and is refused by) the limiter. When false, polls
   * bypass the limiter entirely.
   * @default true
   */
  countPolls?: boolean;
  headers?: HeaderOptions;
  jobs?: JobOptions;
  webhook?: WebhookOptions;
  faults?: FaultOptions;
  /**
   * Price of one job in USD.
   * @default txt2img/img2img: 0.00034 + 6.485e-10 × width × height × steps (matches the documented
   *   0.00187 for 768², 4 steps and 0.00306 for 1024², 4 steps), rounded to 6 decimals; others 0.001
   */
  pricing?: (endpoint: FakeEndpoint, params: JobParams) => number;
  /**
   * Reject unknown model slugs (422 `The selected model is invalid.`) and enforce the per-model limits of
   * `/models` on txt2img (size range, `resolution_step`, steps).
   * @default false
   */
  strictModels?: boolean;
  /**
   * Request bodies larger than this get 413.
   * @default 100 MiB
   */
  maxBodyBytes?: number;
}

export interface ResolvedOptions {
  port: number;
  host: string;
  clock: Clock;
  seed: number;
  logger: Logger;
  accounts: Map<string, string>;
  balance: number;
  limits: { minute: ResolvedWindowOptions | false; daily: ResolvedWindowOptions | false };
  countPolls: boolean;
  headers: Required<HeaderOptions>;
  jobs: {
    pendingMs: number;
    processingMs: number | ((endpoint: FakeEndpoint, params: JobParams) => number);
    jitter: number;
    failureRate: number;
    failureCodes: readonly JobErrorCode[];
    script: JobScript | undefined;
    failMarkers: boolean;
    errorFieldsInStatus: boolean;
  };
  webhook: {
    url: string | undefined;
    accountUrls: Map<string, string>;
    secret: string;
    timeoutMs: number;
    retryBaseMs: number;
    maxAttempts: number;
    disableAfterFailures: number;
    duplicateRate: number;
    reorder: boolean;
  };
  faults: Required<FaultOptions>;
  pricing: ((endpoint: FakeEndpoint, params: JobParams) => number) | undefined;
  strictModels: boolean;
  maxBodyBytes: number;
}

/** All defaults in one place. */
export const FAKE_SERVER_DEFAULTS = {
  port: 0,
  host: '127.0.0.1',
  seed: 1,
  accounts: { 'test-key': 'acct-1' } as Readonly<Record<string, string>>,
  balance: 1000, // USD
  minute: { limit: 300, windowMs: DEFAULT_MINUTE_MS, kind: 'fixed', phaseMs: 0 } as ResolvedWindowOptions,
  countPolls: true,
  headers: { onSuccess: true, daily: true, missingRate: 0, retryAfterMs: false, retryAfterFormat: 'seconds' } as Required<HeaderOptions>,
  jobs: {
    pendingMs: 200,
    processingMs: 1000,
    jitter: 0,
    failureRate: 0,
    failureCodes: ['WORKER_TIMEOUT'] as readonly JobErrorCode[],
    failMarkers: true,
    errorFieldsInStatus: true,
  },
  webhook: {
    secret: 'whsec_test',
    timeoutMs: 10_000,
    retryBaseMs: 1000,
    maxAttempts: 10,
    disableAfterFailures: 10,
    duplicateRate: 0,
    reorder: false,
  },
  faults: {
    error5xxRate: 0,
    error5xxStatuses: [500, 502, 503] as readonly Error5xxStatus[],
    resetRate: 0,
    acceptThenResetRate: 0,
    slowRate: 0,
    slowMs: 3000,
    malformedJsonRate: 0,
  } as Required<FaultOptions>,
  maxBodyBytes: 100 * 1024 * 1024,
} as const;

// ---------------------------------------------------------------- validation

function describe(value: unknown): string {
  let shown: string;
  try {
    // (JSON would show NaN and Infinity as `null`.)
    shown = typeof value === 'string' ? value : typeof value === 'number' ? String(value) : (JSON.stringify(value) ?? String(value));
  } catch {
    shown = String(value);
  }
  return `\`${shown}\` (${value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value})`;
}

export function invalid(path: string, expected: string, value: unknown): never {
  throw new TypeError(`Expected \`${path}\` to be ${expected}, got ${describe(value)}`);
}

function checkKeys(path: string, value: object, allowed: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) {
      throw new TypeError(`Unknown option \`${path ? `${path}.` : ''}${key}\`. Known options: ${allowed.join(', ')}`);
    }
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function object(path: string, value: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (value === undefined) return {};
  if (!isObject(value)) invalid(path, 'an object', value);
  checkKeys(path, value, allowed);
  return value;
}

function nonNegInt(path: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) invalid(path, 'a non-negative integer', value);
  return value;
}

function posInt(path: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) invalid(path, 'a positive integer', value);
  return value;
}

function nonNegNumber(path: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) invalid(path, 'a non-negative finite number', value);
  return value;
}

function finiteNumber(path: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value)) invalid(path, 'a finite number', value);
  return value;
}

function probability(path: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value >= 0 && value <= 1)) invalid(path, 'a probability between 0 and 1', value);
  return value;
}

function bool(path: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') invalid(path, 'a boolean', value);
  return value;
}

function str(path: string, value: unknown, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || value === '') invalid(path, 'a non-empty string', value);
  return value;
}

function httpUrl(path: string, value: unknown): string {
  if (typeof value !== 'string' || !/^https?:\/\//i.test(value) || !URL.canParse(value)) invalid(path, 'an http(s) URL', value);
  return value;
}

function fn<T>(path: string, value: unknown): T | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'function') invalid(path, 'a function', value);
  return value as T;
}

const WINDOW_KINDS: readonly WindowKind[] = ['fixed', 'sliding', 'first-hit'];

export function resolveWindow(
  path: string,
  value: unknown,
  defaultWindowMs: number,
  fallback: ResolvedWindowOptions | false,
): ResolvedWindowOptions | false {
  if (value === undefined) return fallback;
  if (value === false) return false;
  const o = object(path, value, ['limit', 'windowMs', 'kind', 'phaseMs']);
  if (o['limit'] === undefined) {
    throw new TypeError(`Expected \`${path}.limit\` to be set, e.g. \`{ limit: 300, windowMs: 60_000 }\``);
  }
  const kind = o['kind'] ?? 'fixed';
  if (typeof kind !== 'string' || !WINDOW_KINDS.includes(kind as WindowKind)) {
    invalid(`${path}.kind`, `one of ${WINDOW_KINDS.join(', ')}`, kind);
  }
  return {
    limit: nonNegInt(`${path}.limit`, o['limit'], 0),
    windowMs: posInt(`${path}.windowMs`, o['windowMs'], defaultWindowMs),
    kind: kind as WindowKind,
    phaseMs: finiteNumber(`${path}.phaseMs`, o['phaseMs'], 0),
  };
}

const TOP_KEYS = [
  'port',
  'host',
  'clock',
  'seed',
  'logger',
  'accounts',
  'balance',
  'limits',
  'countPolls',
  'headers',
  'jobs',
  'webhook',
  'faults',
  'pricing',
  'strictModels',
  'maxBodyBytes',
] as const;

/** Validates `options` eagerly (unknown keys throw) and fills in the defaults. */
export function resolveOptions(options: FakeServerOptions = {}): ResolvedOptions {
  const top = object('', options, TOP_KEYS);
  const d = FAKE_SERVER_DEFAULTS;

  const port = nonNegInt('port', top['port'], d.port);
  if (port > 65535) invalid('port', 'a port number (0-65535)', port);

  const clock = (top['clock'] ?? systemClock) as Clock;
  if (typeof clock.now !== 'function' || typeof clock.setTimeout !== 'function' || typeof clock.clearTimeout !== 'function') {
    invalid('clock', 'a Clock ({ now, setTimeout, clearTimeout })', clock);
  }
  const logger = (top['logger'] ?? silentLogger) as Logger;
  if (typeof logger.child !== 'function') invalid('logger', 'a pino-compatible logger', logger);

  const accountsIn = top['accounts'] ?? d.accounts;
  if (!isObject(accountsIn) || Object.keys(accountsIn).length === 0) {
    invalid('accounts', "a non-empty map of API key to account id, e.g. `{ 'test-key': 'acct-1' }`", accountsIn);
  }
  const accounts = new Map<string, string>();
  for (const [key, account] of Object.entries(accountsIn)) {
    accounts.set(key, str(`accounts.${key}`, account, ''));
  }

  const limitsIn = object('limits', top['limits'], ['minute', 'daily']);
  const headersIn = object('headers', top['headers'], ['onSuccess', 'daily', 'missingRate', 'retryAfterMs', 'retryAfterFormat']);
  const format = headersIn['retryAfterFormat'] ?? d.headers.retryAfterFormat;
  if (format !== 'seconds' && format !== 'http-date') invalid('headers.retryAfterFormat', "'seconds' or 'http-date'", format);

  const jobsIn = object('jobs', top['jobs'], [
    'pendingMs',
    'processingMs',
    'jitter',
    'failureRate',
    'failureCodes',
    'script',
    'failMarkers',
    'errorFieldsInStatus',
  ]);
  const processingMs = jobsIn['processingMs'];
  const failureCodes = jobsIn['failureCodes'] ?? d.jobs.failureCodes;
  if (
    !Array.isArray(failureCodes) ||
    failureCodes.length === 0 ||
    !failureCodes.every((c) => JOB_ERROR_CODES.includes(c as JobErrorCode))
  ) {
    invalid('jobs.failureCodes', `a non-empty array of ${JOB_ERROR_CODES.join(', ')}`, failureCodes);
  }
  const jitter = nonNegNumber('jobs.jitter', jobsIn['jitter'], d.jobs.jitter);
  if (jitter > 1) invalid('jobs.jitter', 'a fraction between 0 and 1', jitter);

  const webhookIn = object('webhook', top['webhook'], [
    'url',
    'accountUrls',
    'secret',
    'timeoutMs',
    'retryBaseMs',
    'maxAttempts',
    'disableAfterFailures',
    'duplicateRate',
    'reorder',
  ]);
  const accountUrls = new Map<string, string>();
  if (webhookIn['accountUrls'] !== undefined) {
    if (!isObject(webhookIn['accountUrls'])) invalid('webhook.accountUrls', 'an object', webhookIn['accountUrls']);
    for (const [account, url] of Object.entries(webhookIn['accountUrls'])) {
      accountUrls.set(account, httpUrl(`webhook.accountUrls.${account}`, url));
    }
  }

  const faultsIn = object('faults', top['faults'], [
    'error5xxRate',
    'error5xxStatuses',
    'resetRate',
    'acceptThenResetRate',
    'slowRate',
    'slowMs',
    'malformedJsonRate',
  ]);
  const statuses = faultsIn['error5xxStatuses'] ?? d.faults.error5xxStatuses;
  if (!Array.isArray(statuses) || statuses.length === 0 || !statuses.every((s) => [500, 502, 503, 504].includes(s as number))) {
    invalid('faults.error5xxStatuses', 'a non-empty array of 500, 502, 503, 504', statuses);
  }

  return {
    port,
    host: str('host', top['host'], d.host),
    clock,
    seed: finiteNumber('seed', top['seed'], d.seed),
    logger,
    accounts,
    balance: nonNegNumber('balance', top['balance'], d.balance),
    limits: {
      minute: resolveWindow('limits.minute', limitsIn['minute'], DEFAULT_MINUTE_MS, d.minute),
      daily: resolveWindow('limits.daily', limitsIn['daily'], DEFAULT_DAILY_MS, false),
    },
    countPolls: bool('countPolls', top['countPolls'], d.countPolls),
    headers: {
      onSuccess: bool('headers.onSuccess', headersIn['onSuccess'], d.headers.onSuccess),
      daily: bool('headers.daily', headersIn['daily'], d.headers.daily),
      missingRate: probability('headers.missingRate', headersIn['missingRate'], d.headers.missingRate),
      retryAfterMs: bool('headers.retryAfterMs', headersIn['retryAfterMs'], d.headers.retryAfterMs),
      retryAfterFormat: format,
    },
    jobs: {
      pendingMs: nonNegNumber('jobs.pendingMs', jobsIn['pendingMs'], d.jobs.pendingMs),
      processingMs:
        typeof processingMs === 'function'
          ? (processingMs as (endpoint: FakeEndpoint, params: JobParams) => number)
          : nonNegNumber('jobs.processingMs', processingMs, d.jobs.processingMs),
      jitter,
      failureRate: probability('jobs.failureRate', jobsIn['failureRate'], d.jobs.failureRate),
      failureCodes: failureCodes as readonly JobErrorCode[],
      script: fn<JobScript>('jobs.script', jobsIn['script']),
      failMarkers: bool('jobs.failMarkers', jobsIn['failMarkers'], d.jobs.failMarkers),
      errorFieldsInStatus: bool('jobs.errorFieldsInStatus', jobsIn['errorFieldsInStatus'], d.jobs.errorFieldsInStatus),
    },
    webhook: {
      url: webhookIn['url'] === undefined ? undefined : httpUrl('webhook.url', webhookIn['url']),
      accountUrls,
      secret: str('webhook.secret', webhookIn['secret'], d.webhook.secret),
      timeoutMs: posInt('webhook.timeoutMs', webhookIn['timeoutMs'], d.webhook.timeoutMs),
      retryBaseMs: nonNegNumber('webhook.retryBaseMs', webhookIn['retryBaseMs'], d.webhook.retryBaseMs),
      maxAttempts: posInt('webhook.maxAttempts', webhookIn['maxAttempts'], d.webhook.maxAttempts),
      disableAfterFailures: posInt('webhook.disableAfterFailures', webhookIn['disableAfterFailures'], d.webhook.disableAfterFailures),
      duplicateRate: probability('webhook.duplicateRate', webhookIn['duplicateRate'], d.webhook.duplicateRate),
      reorder: bool('webhook.reorder', webhookIn['reorder'], d.webhook.reorder),
    },
    faults: {
      error5xxRate: probability('faults.error5xxRate', faultsIn['error5xxRate'], d.faults.error5xxRate),
      error5xxStatuses: statuses as readonly Error5xxStatus[],
      resetRate: probability('faults.resetRate', faultsIn['resetRate'], d.faults.resetRate),
      acceptThenResetRate: probability('faults.acceptThenResetRate', faultsIn['acceptThenResetRate'], d.faults.acceptThenResetRate),
      slowRate: probability('faults.slowRate', faultsIn['slowRate'], d.faults.slowRate),
      slowMs: nonNegNumber('faults.slowMs', faultsIn['slowMs'], d.faults.slowMs),
      malformedJsonRate: probability('faults.malformedJsonRate', faultsIn['malformedJsonRate'], d.faults.malformedJsonRate),
    },
    pricing: fn<(endpoint: FakeEndpoint, params: JobParams) => number>('pricing', top['pricing']),
    strictModels: bool('strictModels', top['strictModels'], false),
    maxBodyBytes: posInt('maxBodyBytes', top['maxBodyBytes'], d.maxBodyBytes),
  };
}

/** Validates a runtime `setFaults` patch against the same rules; returns the merged faults. */
export function mergeFaults(current: Required<FaultOptions>, patch: FaultOptions): Required<FaultOptions> {
  const resolved = resolveOptions({ faults: { ...current, ...patch } });
  return resolved.faults;
}
