/**
 * Options of `ModelBeamClient` (types with TSDoc), their defaults in one
 * object, and eager validation in the project's one message shape.
 */
import { defaults as schedulerDefaults, resolveOptions as resolveSchedulerOptions, scaled, SCHEDULER_OPTION_NAMES } from '../engine/options.js';
import type { SchedulerOptions, SchedulerTiming } from '../engine/options.js';
import { RateLimitScheduler } from '../engine/scheduler.js';
import { systemClock, type Clock, type Random } from '../internal/clock.js';
import { silentLogger, type Logger } from '../internal/logger.js';
import type { LimitScope } from './limit-scope.js';
import {
  bool,
  checkClock,
  checkHttpUrl,
  checkLogger,
  checkRandom,
  invalid,
  invalidSecret,
  keyList,
  missing,
  num,
  object,
  oneOf,
  checkKeys,
  hasMethods,
  type Keys,
  type NumberRule,
} from '../internal/validate.js';

/**
 * How often `generate()` resubmits a job that failed with each retryable
 * code. Every resubmission is a new billed job, so each count is bounded:
 * `WORKER_TIMEOUT` up to 10 times, the others at most once (issue #3). 0 switches a code's retries off.
 */
export interface JobRetryOptions {
  /** An integer in 0-10. @default 2 */
  WORKER_TIMEOUT?: number;
  /** 0 or 1. @default 1 */
  PROCESSING_ERROR?: number;
  /** Also spent by codes the docs do not list. 0 or 1. @default 1 */
  UNKNOWN_ERROR?: number;
}

/** The longest URL the API takes (`webhook_url` is documented as ≤ 2048 characters). */
export const MAX_URL_LENGTH = 2048;

/** The most `jobRetries.WORKER_TIMEOUT` may be: each retry is a new billed job. */
export const MAX_WORKER_TIMEOUT_RETRIES = 10;

/** How jobs are polled. Polls go through the scheduler, below submissions. */
export interface PollingOptions {
  /**
   * The share of the minute budget polls may take while submissions wait
   * (read from `scheduler.budget(scope).minute.limit`, the budget polls draw
   * from). With no submission waiting, or when polls have a budget of their
   * own (`limitScope`), polls may use what their budget allows.
   * @default 0.5
   */
  maxShare?: number;
  /**
   * The shortest time between two polls of one job, and before its first.
   * @default 1000 × the scheduler's timeScale
   */
  minIntervalMs?: number;
  /**
   * The longest a job waiting for its result goes unpolled: before its first
   * poll (whatever duration has been learned) and between two polls. Jobs
   * that take longer are polled this often. With webhooks, safety-net polls
   * may wait `overdueFactor` times longer.
   * @default 60_000 × the scheduler's timeScale
   */
  maxIntervalMs?: number;
  /**
   * With a webhook configured, a job is polled only once it is overdue: after
   * `overdueFactor` × its expected duration.
   * @default 3
   */
  overdueFactor?: number;
  /**
   * The duration assumed for an endpoint + model before any job of it has
   * finished. The first job of each polls then; the others wait for what it learns.
   * @default 5000 × the scheduler's timeScale
   */
  initialEstimateMs?: number;
  /**
   * Length of the window `maxShare` is counted over.
   * @default the scheduler's minute window (`scheduler.timing.minuteMs`), whether the client builds it or is given it
   */
  windowMs?: number;
}

/** Webhook delivery of job events. */
export interface WebhookClientOptions {
  /**
   * The public URL ModelBeam posts to (HTTPS for the real API, ≤2048 chars),
   * sent as `webhook_url` with every submission. Polling then drops to a slow
   * safety net for overdue jobs, and takes over if deliveries stop arriving.
   */
  url: string;
  /** The account's signing secret. Required to receive deliveries (`startWebhookServer`, `webhookHandler`). Never logged. */
  secret?: string;
  /**
   * Largest accepted |now − X-ModelBeam-Timestamp|, in seconds. Not scaled by
   * `timeScale`: it bounds the skew between two real clocks.
   * @default 300
   */
  toleranceSec?: number;
  /**
   * Largest accepted body.
   * @default 1 MiB
   */
  maxBodyBytes?: number;
}

/** Options of `ModelBeamClient`. Only `apiKey` is required. */
export interface ModelBeamClientOptions {
  /**
   * The API key (sent as `Authorization: Bearer`). Never logged, never in an error.
   * @example { apiKey: process.env.MODELBEAM_API_KEY }
   */
  apiKey: string;
  /** @default 'https://api.modelbeam.ai/api/v1/client' */
  baseUrl?: string;
  /**
   * The scheduler every request goes through, or options for a new one. A
   * scheduler passed in is shared and is not closed by `close()`. The
   * client's time defaults follow the scheduler's `timeScale` and its
   * minute window either way (see `SchedulerOptions.timeScale`): compress
   * time there, once.
   * @default new RateLimitScheduler() (with this client's clock, random and logger)
   */
  scheduler?: RateLimitScheduler | SchedulerOptions;
  /**
   * Most connections to the API host.
   * @default 16
   */
  connections?: number;
  /**
   * Time to open a connection. Like the other I/O timeouts below, not scaled
   * by `timeScale` (a round trip costs the same in compressed time).
   * @default 10_000
   */
  connectTimeoutMs?: number;
  /**
   * Time to wait for response headers. A timeout on a submission is an unknown outcome.
   * @default 60_000
   */
  headersTimeoutMs?: number;
  /**
   * Time to wait between two chunks of a response body. A timeout on a submission is an unknown outcome.
   * @default 60_000
   */
  bodyTimeoutMs?: number;
  /**
   * How long an idle keep-alive connection to the API host is kept open when the server
   * sends no `Keep-Alive: timeout=…` hint (with one, undici follows the
   * hint less 2 s).
   * @default 10_000
   */
  keepAliveTimeoutMs?: number;
  /** Job-level retries of `generate()`. Every resubmission is a new billed job. */
  jobRetries?: JobRetryOptions;
  /**
   * Most billed resubmissions per `generate()` call, whatever the reason.
   * @default 2
   */
  maxResubmissions?: number;
  /**
   * Base of the wait before a job-level resubmission (doubling, ±50 % jitter).
   * @default 2000 × the scheduler's timeScale
   */
  jobRetryDelayMs?: number;
  /**
   * Which requests the daily quota counts. `'auto'`: job submissions do;
   * status polls and reads (`balance`, `models`, price calculations) are sent
   * as not counting there, so a spent day does not hold back the results of
   * jobs already submitted. The scheduler tests that once while the day is
   * spent (one poll alone) and, if the daily window refuses it, holds them
   * like the rest until the day resets. `'all'`: every request counts (never
   * sent while the day is spent; saves that one test on an API that counts
   * everything).
   * @default 'auto'
   */
  dailyCounts?: 'auto' | 'all';
  /**
   * Which requests share a rate-limit budget. `'account'`: all of them, one
   * budget (Premium: limits "across all endpoints"). `'endpoint'`: each
   * route its own (Basic: RPM and RPD per endpoint): each job endpoint,
   * `request-status` (polls), `balance`, `models`, `price-calculation`; the
   * Whisper endpoints share `transcription`. `'auto'`: one budget until the
   * answers show two routes on different counters (they state different
   * limits, or twice one route's `Remaining` stays above the other's while
   * counting down its own), then one per route, for good. A 429 holds back
   * the budget it was drawn from only.
   * @default 'auto'
   */
  limitScope?: LimitScope;
  /**
   * When a submission's response is lost (the job may exist), submit again
   * and mark the result `possibleDuplicate`. Otherwise `generate()` rejects
   * with `OutcomeUnknownError`.
   * @default false
   */
  resubmitOnUnknownOutcome?: boolean;
  /**
   * After a 422 about the balance, submissions pause (polls go on).
   * `'wait'`: later submissions wait until `resumeSubmissions()` or until the
   * balance rises; `'reject'`: they reject with `InsufficientBalanceError`
   * until then.
   * @default 'wait'
   */
  onInsufficientBalance?: 'wait' | 'reject';
  /**
   * While paused on the balance, check `/balance` this often and resume when
   * it rises (0: never; resume by hand).
   * @default 60_000 × the scheduler's timeScale
   */
  balanceCheckIntervalMs?: number;
  polling?: PollingOptions;
  webhook?: WebhookClientOptions;
  /**
   * Check parameters against the documented ranges before sending.
   * @default true
   */
  validate?: boolean;
  /**
   * Most bytes buffered from one stream given as a file.
   * @default 100 MiB
   */
  maxUploadBytes?: number;
  /**
   * Finished jobs the client remembers, with their results, so that a late
   * `wait()` for one (or a late webhook delivery) still finds it. Each costs
   * memory until it is pushed out by newer ones; a batch that takes every
   * result as it comes can set this low. 0 keeps none: a late `wait()` then
   * asks the server again.
   * @default 10_000
   */
  rememberFinishedJobs?: number;
  /** A pino logger (or anything with its methods). Silent by default. */
  logger?: Logger;
  /** The time source. Every timer of the client runs on it. */
  clock?: Clock;
  /** Random source in [0, 1) for jitter. */
  random?: Random;
}

/** The one defaults object. Time values are at `timeScale` 1: the client multiplies them by its scheduler's. */
export const CLIENT_DEFAULTS = {
  baseUrl: 'https://api.modelbeam.ai/api/v1/client',
  connections: 16,
  connectTimeoutMs: 10_000,
  headersTimeoutMs: 60_000,
  bodyTimeoutMs: 60_000,
  keepAliveTimeoutMs: 10_000,
  jobRetries: { WORKER_TIMEOUT: 2, PROCESSING_ERROR: 1, UNKNOWN_ERROR: 1 },
  maxResubmissions: 2,
  jobRetryDelayMs: 2000,
  dailyCounts: 'auto',
  limitScope: 'auto',
  resubmitOnUnknownOutcome: false,
  onInsufficientBalance: 'wait',
  balanceCheckIntervalMs: 60_000,
  polling: { maxShare: 0.5, minIntervalMs: 1000, maxIntervalMs: 60_000, overdueFactor: 3, initialEstimateMs: 5000, windowMs: schedulerDefaults.minuteMs },
  webhook: { toleranceSec: 300, maxBodyBytes: 1024 * 1024 },
  validate: true,
  maxUploadBytes: 100 * 1024 * 1024,
  rememberFinishedJobs: 10_000,
} as const;

export interface ResolvedClientOptions {
  apiKey: string;
  baseUrl: string;
  scheduler: RateLimitScheduler;
  ownsScheduler: boolean;
  connections: number;
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  keepAliveTimeoutMs: number;
  jobRetries: Required<JobRetryOptions>;
  maxResubmissions: number;
  jobRetryDelayMs: number;
  dailyCounts: 'auto' | 'all';
  limitScope: LimitScope;
  resubmitOnUnknownOutcome: boolean;
  onInsufficientBalance: 'wait' | 'reject';
  balanceCheckIntervalMs: number;
  polling: Required<PollingOptions>;
  webhook: { url: string; secret: string | undefined; toleranceSec: number; maxBodyBytes: number } | undefined;
  validate: boolean;
  maxUploadBytes: number;
  rememberFinishedJobs: number;
  logger: Logger;
  clock: Clock;
  random: Random;
}

const KNOWN = keyList({
  apiKey: true,
  baseUrl: true,
  scheduler: true,
  connections: true,
  connectTimeoutMs: true,
  headersTimeoutMs: true,
  bodyTimeoutMs: true,
  keepAliveTimeoutMs: true,
  jobRetries: true,
  maxResubmissions: true,
  jobRetryDelayMs: true,
  dailyCounts: true,
  limitScope: true,
  resubmitOnUnknownOutcome: true,
  onInsufficientBalance: true,
  balanceCheckIntervalMs: true,
  polling: true,
  webhook: true,
  validate: true,
  maxUploadBytes: true,
  rememberFinishedJobs: true,
  logger: true,
  clock: true,
  random: true,
} satisfies Keys<ModelBeamClientOptions>);
const JOB_RETRY_KEYS = keyList({ WORKER_TIMEOUT: true, PROCESSING_ERROR: true, UNKNOWN_ERROR: true } satisfies Keys<JobRetryOptions>);
const POLLING_KEYS = keyList({
  maxShare: true,
  minIntervalMs: true,
  maxIntervalMs: true,
  overdueFactor: true,
  initialEstimateMs: true,
  windowMs: true,
} satisfies Keys<PollingOptions>);
const WEBHOOK_KEYS = keyList({ url: true, secret: true, toleranceSec: true, maxBodyBytes: true } satisfies Keys<WebhookClientOptions>);

/**
 * A `jobRetries` count: an integer from 0 to `max`. Above it the message says
 * why: each retry is a new billed job, and issue #3 bounds them.
 */
function retryCount(code: keyof JobRetryOptions, value: unknown, fallback: number, max: number): number {
  const name = `jobRetries.${code}`;
  const count = num(name, value, fallback, { integer: true });
  if (count > max) {
    const expected =
      max === 1 ? '0 or 1 (every retry is a new billed job; this code is retried at most once)' : `an integer from 0 to ${max} (every retry is a new billed job)`;
    invalid(name, expected, count);
  }
  return count;
}

/** The key is checked without ever being shown: only its type and length appear in the message. */
function checkApiKey(value: unknown): string {
  if (value === undefined || value === null || value === '') {
    throw new TypeError(
      'Expected `apiKey` to be a non-empty string, e.g. `new ModelBeamClient({ apiKey: process.env.MODELBEAM_API_KEY })`',
    );
  }
  if (typeof value !== 'string') invalidSecret('apiKey', 'a non-empty string', value);
  if (!/^[\x21-\x7e]+$/.test(value)) {
    throw new TypeError(
      `Expected \`apiKey\` to be printable ASCII without spaces or line breaks, got a string of length ${value.length} that is not (check for a stray newline)`,
    );
  }
  return value;
}

function isScheduler(value: unknown): value is RateLimitScheduler {
  if (value instanceof RateLimitScheduler) return true;
  const v = value as { schedule?: unknown; stats?: unknown; on?: unknown } | null;
  return typeof v === 'object' && v !== null && typeof v.schedule === 'function' && typeof v.stats === 'function' && typeof v.on === 'function';
}

/** The time settings of a scheduler the client is given (defaults for a look-alike without `timing`). */
function timingOf(scheduler: RateLimitScheduler): SchedulerTiming {
  const t = (scheduler as { timing?: SchedulerTiming }).timing;
  return t ?? { timeScale: schedulerDefaults.timeScale, minuteMs: schedulerDefaults.minuteMs, dayMs: schedulerDefaults.dayMs };
}

/** Scheduler options given at the client's top level: where they go. */
const SCHEDULER_HINTS = Object.fromEntries(
  SCHEDULER_OPTION_NAMES.filter((k) => !(KNOWN as readonly string[]).includes(k)).map((k) => [k, `\`${k}\` is a scheduler option: \`scheduler: { ${k}: … }\``]),
);

/** Validates eagerly and fills in the defaults. Unknown keys throw: a typo must not vanish. */
export function resolveClientOptions(options: ModelBeamClientOptions): ResolvedClientOptions {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError('Expected `options` to be an object, e.g. `new ModelBeamClient({ apiKey: process.env.MODELBEAM_API_KEY })`');
  }
  checkKeys('', options, KNOWN, SCHEDULER_HINTS);
  const d = CLIENT_DEFAULTS;
  const apiKey = checkApiKey(options.apiKey);
  const baseUrl = options.baseUrl === undefined ? d.baseUrl : checkHttpUrl('baseUrl', options.baseUrl, MAX_URL_LENGTH);

  const clock = checkClock<Clock>(options.clock, systemClock);
  const random = checkRandom<Random>(options.random, Math.random);
  const logger = checkLogger<Logger>(options.logger, silentLogger);

  const given = options.scheduler !== undefined && isScheduler(options.scheduler) ? options.scheduler : undefined;
  if (!given && options.scheduler !== undefined && (typeof options.scheduler !== 'object' || options.scheduler === null)) {
    invalid('scheduler', 'a RateLimitScheduler or scheduler options', options.scheduler);
  }
  if (!given && hasMethods(options.scheduler, ['reserve', 'settle'])) {
    throw new TypeError('Expected `scheduler` to be a RateLimitScheduler or scheduler options, got a store: a store goes inside them, `scheduler: { store }`');
  }
  const schedulerOptions = given ? undefined : { clock, random, logger, ...(options.scheduler as SchedulerOptions | undefined) };
  // The scheduler's time settings, read before anything is built (its options are checked here, once more when it is built).
  const timing: SchedulerTiming = given ? timingOf(given) : resolveSchedulerOptions(schedulerOptions ?? {});
  const t = (ms: number): number => scaled(ms, timing.timeScale);

  const retriesIn = object('jobRetries', options.jobRetries, JOB_RETRY_KEYS);
  const jobRetries = {
    WORKER_TIMEOUT: retryCount('WORKER_TIMEOUT', retriesIn.WORKER_TIMEOUT, d.jobRetries.WORKER_TIMEOUT, MAX_WORKER_TIMEOUT_RETRIES),
    PROCESSING_ERROR: retryCount('PROCESSING_ERROR', retriesIn.PROCESSING_ERROR, d.jobRetries.PROCESSING_ERROR, 1),
    UNKNOWN_ERROR: retryCount('UNKNOWN_ERROR', retriesIn.UNKNOWN_ERROR, d.jobRetries.UNKNOWN_ERROR, 1),
  };

  const gt0: NumberRule = { min: 0, exclusiveMin: true };
  const pollingIn = object('polling', options.polling, POLLING_KEYS);
  const minIntervalMs = num('polling.minIntervalMs', pollingIn.minIntervalMs, t(d.polling.minIntervalMs));
  const maxIntervalMs = num('polling.maxIntervalMs', pollingIn.maxIntervalMs, t(d.polling.maxIntervalMs), gt0);
  if (maxIntervalMs < minIntervalMs) invalid('polling.maxIntervalMs', `at least polling.minIntervalMs (${minIntervalMs})`, maxIntervalMs);
  const polling = {
    maxShare: num('polling.maxShare', pollingIn.maxShare, d.polling.maxShare, { min: 0, exclusiveMin: true, max: 1 }),
    minIntervalMs,
    maxIntervalMs,
    overdueFactor: num('polling.overdueFactor', pollingIn.overdueFactor, d.polling.overdueFactor, { min: 1 }),
    initialEstimateMs: num('polling.initialEstimateMs', pollingIn.initialEstimateMs, t(d.polling.initialEstimateMs), gt0),
    windowMs: num('polling.windowMs', pollingIn.windowMs, timing.minuteMs, gt0),
  };

  let webhook: ResolvedClientOptions['webhook'];
  if (options.webhook !== undefined) {
    const w = object('webhook', options.webhook, WEBHOOK_KEYS);
    if (w.url === undefined) missing('webhook.url', "`{ webhook: { url: 'https://example.com/modelbeam-hook', secret: process.env.MODELBEAM_WEBHOOK_SECRET } }`");
    if (w.secret !== undefined && (typeof w.secret !== 'string' || w.secret === '')) invalidSecret('webhook.secret', 'a non-empty string', w.secret);
    webhook = {
      url: checkHttpUrl('webhook.url', w.url, MAX_URL_LENGTH),
      secret: w.secret as string | undefined,
      toleranceSec: num('webhook.toleranceSec', w.toleranceSec, d.webhook.toleranceSec, gt0),
      maxBodyBytes: num('webhook.maxBodyBytes', w.maxBodyBytes, d.webhook.maxBodyBytes, { min: 1, integer: true }),
    };
  }

  const onInsufficientBalance = oneOf('onInsufficientBalance', options.onInsufficientBalance, d.onInsufficientBalance, ['wait', 'reject']);
  const connections = num('connections', options.connections, d.connections, { min: 1, integer: true });
  const rest = {
    connectTimeoutMs: num('connectTimeoutMs', options.connectTimeoutMs, d.connectTimeoutMs),
    headersTimeoutMs: num('headersTimeoutMs', options.headersTimeoutMs, d.headersTimeoutMs),
    bodyTimeoutMs: num('bodyTimeoutMs', options.bodyTimeoutMs, d.bodyTimeoutMs),
    // undici refuses 0 here (it would mean "close at once"), so the bound is > 0, unlike the other timeouts.
    keepAliveTimeoutMs: num('keepAliveTimeoutMs', options.keepAliveTimeoutMs, d.keepAliveTimeoutMs, gt0),
    maxResubmissions: num('maxResubmissions', options.maxResubmissions, d.maxResubmissions, { integer: true, allowInfinity: true }),
    jobRetryDelayMs: num('jobRetryDelayMs', options.jobRetryDelayMs, t(d.jobRetryDelayMs)),
    dailyCounts: oneOf('dailyCounts', options.dailyCounts, d.dailyCounts, ['auto', 'all']),
    limitScope: oneOf('limitScope', options.limitScope, d.limitScope, ['auto', 'account', 'endpoint']),
    resubmitOnUnknownOutcome: bool('resubmitOnUnknownOutcome', options.resubmitOnUnknownOutcome, d.resubmitOnUnknownOutcome),
    balanceCheckIntervalMs: num('balanceCheckIntervalMs', options.balanceCheckIntervalMs, t(d.balanceCheckIntervalMs)),
    validate: bool('validate', options.validate, d.validate),
    maxUploadBytes: num('maxUploadBytes', options.maxUploadBytes, d.maxUploadBytes, { min: 1, integer: true }),
    rememberFinishedJobs: num('rememberFinishedJobs', options.rememberFinishedJobs, d.rememberFinishedJobs, { min: 0, integer: true }),
  };
  // Built last, once every option is known to be valid (a throwing constructor leaves nothing behind).
  const scheduler = given ?? new RateLimitScheduler(schedulerOptions);

  return {
    apiKey,
    baseUrl,
    scheduler,
    ownsScheduler: given === undefined,
    connections,
    ...rest,
    jobRetries,
    onInsufficientBalance,
    polling,
    webhook,
    logger,
    clock,
    random,
  };
}
