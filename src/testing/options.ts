/**
 * Options of the fake ModelBeam server (types with TSDoc), their defaults in
 * one object, and eager validation into a resolved shape.
 */
import { systemClock, type Clock } from '../internal/clock.js';
import { silentLogger, type Logger } from '../internal/logger.js';
import {
  bool,
  checkClock,
  checkHttpUrl,
  checkLogger,
  fn,
  invalid,
  keyList,
  missing,
  num,
  object,
  oneOf,
  options as rootOptions,
  text,
  type Keys,
  type NumberRule,
} from '../internal/validate.js';
import { TYPED_ENDPOINTS, type KnownEndpoint } from '../modelbeam/endpoints.js';
import { JOB_ERROR_CODES, type JobErrorCode } from '../modelbeam/jobs.js';
import { DEFAULT_DAILY_MS, DEFAULT_MINUTE_MS } from './limiter.js';
import type { ResolvedWindowOptions, WindowKind, WindowOptions } from './windows.js';

/** The job error codes of the API (§6.2): the client's list, the one definition. */
export { JOB_ERROR_CODES, type JobErrorCode } from '../modelbeam/jobs.js';

/** The job-creating endpoints the fake serves (`POST /api/v1/client/{endpoint}`): the client's typed ones and `aud2video`. */
export const FAKE_ENDPOINTS = [...TYPED_ENDPOINTS, 'aud2video'] as const satisfies readonly KnownEndpoint[];
export type FakeEndpoint = (typeof FAKE_ENDPOINTS)[number];

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
   * Limits per route instead of per account (ModelBeam's Basic tier: RPM and
   * RPD per endpoint). Keys: a job-creating endpoint (`txt2img`,
   * `txt2embedding`, ...), `request-status` (polls), `balance`, `models` or
   * `price-calculation`. Each listed route gets counters of its own in every
   * account: `minute` and `daily` as in `limits` (`windowMs`, `kind` and
   * `phaseMs` default to `limits`' windows; a window left out is one like
   * `limits`', counted for this route alone). Routes not listed share the
   * account's counters, as without this option. `countPolls` still says
   * which windows a poll counts in. Example: `{ txt2img: { minute: { limit: 3 } },
   * txt2embedding: { minute: { limit: 10 } } }`.
   * @default {} (every route shares the account's counters)
   */
  routeLimits?: Readonly<Record<string, LimitsOptions>>;
  /**
   * Whether `GET /request-status/{id}` counts against (and is refused by) the limiter. When false, polls
   * bypass the limiter entirely; `'minute'`: they count in the minute window only (a daily quota that
   * counts job submissions only, as the docs' per-endpoint RPD suggests).
   * @default true
   */
  countPolls?: boolean | 'minute';
  headers?: HeaderOptions;
  jobs?: JobOptions;
  webhook?: WebhookOptions;
  faults?: FaultOptions;
  /**
   * Price of one job in USD.
   * @default txt2img/img2img: 0.00034 + 6.485e-10 × width × height × steps (matches the documented
   *   0.00187 for 768², 4 steps and 0.00306 for 1024², 4 steps), rounded to 6 decimals; txt2video, img2video,
   *   aud2video: 0.0001 + 5.245e-11 × width × height × frames × steps (~0.0056 for 512², 100 frames, 4 steps);
   *   txt2audio: $0.77 per million characters of `text` (at least 0.000001); others 0.001
   */
  pricing?: (endpoint: FakeEndpoint, params: JobParams) => number;
  /**
   * Reject unknown model slugs (422 `The selected model is invalid.`) and enforce the per-model limits of
   * `/models` on txt2img (size range, `resolution_step`, steps).
   * @default false
   */
  strictModels?: boolean;
  /**
   * Simulated network latency, in ms of the server clock: each request waits a uniform 0 to
   * `latencyMs / 2` before the server reads its clock and counts it (the way in), and each response
   * another uniform 0 to `latencyMs / 2` before it is written (the way back); a round trip adds up to
   * `latencyMs`. Drawn from its own seeded stream.
   * @default 0
   */
  latencyMs?: number;
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
  routeLimits: Map<string, { minute: ResolvedWindowOptions | false; daily: ResolvedWindowOptions | false }>;
  countPolls: boolean | 'minute';
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
  latencyMs: number;
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
  latencyMs: 0,
  maxBodyBytes: 100 * 1024 * 1024,
} as const;

// ---------------------------------------------------------------- validation

const INT_GE0: NumberRule = { integer: true };
const INT_GE1: NumberRule = { min: 1, integer: true };
const GE0: NumberRule = {};
const FINITE: NumberRule = { min: -Infinity };
const SHARE: NumberRule = { max: 1 };

const WINDOW_KINDS: readonly WindowKind[] = ['fixed', 'sliding', 'first-hit'];
const WINDOW_KEYS = keyList({ limit: true, windowMs: true, kind: true, phaseMs: true } satisfies Keys<WindowOptions>);

export function resolveWindow(
  path: string,
  value: unknown,
  defaultWindowMs: number,
  fallback: ResolvedWindowOptions | false,
): ResolvedWindowOptions | false {
  if (value === undefined) return fallback;
  if (value === false) return false;
  const o = object(path, value, WINDOW_KEYS);
  if (o['limit'] === undefined) missing(`${path}.limit`, '`{ limit: 300, windowMs: 60_000 }`');
  return {
    limit: num(`${path}.limit`, o['limit'], 0, INT_GE0),
    windowMs: num(`${path}.windowMs`, o['windowMs'], defaultWindowMs, INT_GE1),
    kind: oneOf(`${path}.kind`, o['kind'], 'fixed', WINDOW_KINDS),
    phaseMs: num(`${path}.phaseMs`, o['phaseMs'], 0, FINITE),
  };
}

/** The route names `routeLimits` takes besides the job-creating endpoints. */
export const LIMITED_READ_ROUTES = ['request-status', 'balance', 'models', 'price-calculation'] as const;

/** `routeLimits`: each route's windows, missing parts taken from the account's (`limits`). */
function resolveRouteLimits(value: unknown, limits: ResolvedOptions['limits']): ResolvedOptions['routeLimits'] {
  const out: ResolvedOptions['routeLimits'] = new Map();
  if (value === undefined) return out;
  if (!isObject(value)) invalid('routeLimits', 'an object of route name to `{ minute?, daily? }`', value);
  const routes: readonly string[] = [...FAKE_ENDPOINTS, ...LIMITED_READ_ROUTES];
  for (const [route, windows] of Object.entries(value)) {
    if (!routes.includes(route)) invalid(`routeLimits.${route}`, `a key of ${routes.join(', ')}`, route);
    const w = object(`routeLimits.${route}`, windows, LIMITS_KEYS);
    const one = (name: 'minute' | 'daily', defaultMs: number): ResolvedWindowOptions | false => {
      const account = limits[name];
      const raw = w[name];
      if (raw === undefined || raw === false) return raw === false ? false : account;
      // Unset fields follow the account's window.
      const merged = isObject(raw) && account ? { windowMs: account.windowMs, kind: account.kind, phaseMs: account.phaseMs, ...raw } : raw;
      return resolveWindow(`routeLimits.${route}.${name}`, merged, account ? account.windowMs : defaultMs, false);
    };
    out.set(route, { minute: one('minute', DEFAULT_MINUTE_MS), daily: one('daily', DEFAULT_DAILY_MS) });
  }
  return out;
}

const TOP_KEYS = keyList({
  port: true,
  host: true,
  clock: true,
  seed: true,
  logger: true,
  accounts: true,
  balance: true,
  limits: true,
  routeLimits: true,
  countPolls: true,
  headers: true,
  jobs: true,
  webhook: true,
  faults: true,
  pricing: true,
  strictModels: true,
  latencyMs: true,
  maxBodyBytes: true,
} satisfies Keys<FakeServerOptions>);
const LIMITS_KEYS = keyList({ minute: true, daily: true } satisfies Keys<LimitsOptions>);
const HEADER_KEYS = keyList({ onSuccess: true, daily: true, missingRate: true, retryAfterMs: true, retryAfterFormat: true } satisfies Keys<HeaderOptions>);
const JOB_KEYS = keyList({
  pendingMs: true,
  processingMs: true,
  jitter: true,
  failureRate: true,
  failureCodes: true,
  script: true,
  failMarkers: true,
  errorFieldsInStatus: true,
} satisfies Keys<JobOptions>);
const WEBHOOK_KEYS = keyList({
  url: true,
  accountUrls: true,
  secret: true,
  timeoutMs: true,
  retryBaseMs: true,
  maxAttempts: true,
  disableAfterFailures: true,
  duplicateRate: true,
  reorder: true,
} satisfies Keys<WebhookOptions>);
const FAULT_KEYS = keyList({
  error5xxRate: true,
  error5xxStatuses: true,
  resetRate: true,
  acceptThenResetRate: true,
  slowRate: true,
  slowMs: true,
  malformedJsonRate: true,
} satisfies Keys<FaultOptions>);

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Validates `options` eagerly (unknown keys throw) and fills in the defaults. */
export function resolveOptions(options: FakeServerOptions = {}): ResolvedOptions {
  const top = rootOptions(options, TOP_KEYS);
  const d = FAKE_SERVER_DEFAULTS;

  const port = num('port', top['port'], d.port, { integer: true, max: 65535 });

  const clock = checkClock<Clock>(top['clock'], systemClock);
  const logger = checkLogger<Logger>(top['logger'], silentLogger);

  const accountsIn = top['accounts'] ?? d.accounts;
  if (!isObject(accountsIn) || Object.keys(accountsIn).length === 0) {
    invalid('accounts', "a non-empty map of API key to account id, e.g. `{ 'test-key': 'acct-1' }`", accountsIn);
  }
  const accounts = new Map<string, string>();
  for (const [key, account] of Object.entries(accountsIn)) {
    accounts.set(key, text(`accounts.${key}`, account, ''));
  }

  const limitsIn = object('limits', top['limits'], LIMITS_KEYS);
  const limits = {
    minute: resolveWindow('limits.minute', limitsIn['minute'], DEFAULT_MINUTE_MS, d.minute),
    daily: resolveWindow('limits.daily', limitsIn['daily'], DEFAULT_DAILY_MS, false),
  };
  const routeLimits = resolveRouteLimits(top['routeLimits'], limits);
  const headersIn = object('headers', top['headers'], HEADER_KEYS);
  const format = oneOf('headers.retryAfterFormat', headersIn['retryAfterFormat'], d.headers.retryAfterFormat, ['seconds', 'http-date']);

  const jobsIn = object('jobs', top['jobs'], JOB_KEYS);
  const processingMs = jobsIn['processingMs'];
  const failureCodes = jobsIn['failureCodes'] ?? d.jobs.failureCodes;
  if (
    !Array.isArray(failureCodes) ||
    failureCodes.length === 0 ||
    !failureCodes.every((c) => JOB_ERROR_CODES.includes(c as JobErrorCode))
  ) {
    invalid('jobs.failureCodes', `a non-empty array of ${JOB_ERROR_CODES.join(', ')}`, failureCodes);
  }

  const webhookIn = object('webhook', top['webhook'], WEBHOOK_KEYS);
  const accountUrls = new Map<string, string>();
  if (webhookIn['accountUrls'] !== undefined) {
    if (!isObject(webhookIn['accountUrls'])) invalid('webhook.accountUrls', 'an object', webhookIn['accountUrls']);
    for (const [account, url] of Object.entries(webhookIn['accountUrls'])) {
      accountUrls.set(account, checkHttpUrl(`webhook.accountUrls.${account}`, url));
    }
  }

  const faultsIn = object('faults', top['faults'], FAULT_KEYS);
  const statuses = faultsIn['error5xxStatuses'] ?? d.faults.error5xxStatuses;
  if (!Array.isArray(statuses) || statuses.length === 0 || !statuses.every((s) => [500, 502, 503, 504].includes(s as number))) {
    invalid('faults.error5xxStatuses', 'a non-empty array of 500, 502, 503, 504', statuses);
  }

  return {
    port,
    host: text('host', top['host'], d.host),
    clock,
    seed: num('seed', top['seed'], d.seed, FINITE),
    logger,
    accounts,
    balance: num('balance', top['balance'], d.balance, GE0),
    limits,
    routeLimits,
    countPolls: top['countPolls'] === 'minute' ? 'minute' : bool('countPolls', top['countPolls'], d.countPolls),
    headers: {
      onSuccess: bool('headers.onSuccess', headersIn['onSuccess'], d.headers.onSuccess),
      daily: bool('headers.daily', headersIn['daily'], d.headers.daily),
      missingRate: num('headers.missingRate', headersIn['missingRate'], d.headers.missingRate, SHARE),
      retryAfterMs: bool('headers.retryAfterMs', headersIn['retryAfterMs'], d.headers.retryAfterMs),
      retryAfterFormat: format,
    },
    jobs: {
      pendingMs: num('jobs.pendingMs', jobsIn['pendingMs'], d.jobs.pendingMs, GE0),
      processingMs:
        typeof processingMs === 'function'
          ? (processingMs as (endpoint: FakeEndpoint, params: JobParams) => number)
          : num('jobs.processingMs', processingMs, d.jobs.processingMs, GE0),
      jitter: num('jobs.jitter', jobsIn['jitter'], d.jobs.jitter, SHARE),
      failureRate: num('jobs.failureRate', jobsIn['failureRate'], d.jobs.failureRate, SHARE),
      failureCodes: failureCodes as readonly JobErrorCode[],
      script: fn<JobScript>('jobs.script', jobsIn['script']),
      failMarkers: bool('jobs.failMarkers', jobsIn['failMarkers'], d.jobs.failMarkers),
      errorFieldsInStatus: bool('jobs.errorFieldsInStatus', jobsIn['errorFieldsInStatus'], d.jobs.errorFieldsInStatus),
    },
    webhook: {
      url: webhookIn['url'] === undefined ? undefined : checkHttpUrl('webhook.url', webhookIn['url']),
      accountUrls,
      secret: text('webhook.secret', webhookIn['secret'], d.webhook.secret),
      timeoutMs: num('webhook.timeoutMs', webhookIn['timeoutMs'], d.webhook.timeoutMs, INT_GE1),
      retryBaseMs: num('webhook.retryBaseMs', webhookIn['retryBaseMs'], d.webhook.retryBaseMs, GE0),
      maxAttempts: num('webhook.maxAttempts', webhookIn['maxAttempts'], d.webhook.maxAttempts, INT_GE1),
      disableAfterFailures: num('webhook.disableAfterFailures', webhookIn['disableAfterFailures'], d.webhook.disableAfterFailures, INT_GE1),
      duplicateRate: num('webhook.duplicateRate', webhookIn['duplicateRate'], d.webhook.duplicateRate, SHARE),
      reorder: bool('webhook.reorder', webhookIn['reorder'], d.webhook.reorder),
    },
    faults: {
      error5xxRate: num('faults.error5xxRate', faultsIn['error5xxRate'], d.faults.error5xxRate, SHARE),
      error5xxStatuses: statuses as readonly Error5xxStatus[],
      resetRate: num('faults.resetRate', faultsIn['resetRate'], d.faults.resetRate, SHARE),
      acceptThenResetRate: num('faults.acceptThenResetRate', faultsIn['acceptThenResetRate'], d.faults.acceptThenResetRate, SHARE),
      slowRate: num('faults.slowRate', faultsIn['slowRate'], d.faults.slowRate, SHARE),
      slowMs: num('faults.slowMs', faultsIn['slowMs'], d.faults.slowMs, GE0),
      malformedJsonRate: num('faults.malformedJsonRate', faultsIn['malformedJsonRate'], d.faults.malformedJsonRate, SHARE),
    },
    pricing: fn<(endpoint: FakeEndpoint, params: JobParams) => number>('pricing', top['pricing']),
    strictModels: bool('strictModels', top['strictModels'], false),
    latencyMs: num('latencyMs', top['latencyMs'], d.latencyMs, GE0),
    maxBodyBytes: num('maxBodyBytes', top['maxBodyBytes'], d.maxBodyBytes, INT_GE1),
  };
}

/** Validates a runtime `setFaults` patch against the same rules; returns the merged faults. */
export function mergeFaults(current: Required<FaultOptions>, patch: FaultOptions): Required<FaultOptions> {
  const resolved = resolveOptions({ faults: { ...current, ...patch } });
  return resolved.faults;
}
