/**
 * The public surface, by name. Each entry point's runtime exports are listed
 * here, sorted, so a reviewer sees any addition or removal in the diff; an
 * internal that leaks into an entry point fails this test.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as root from '../src/index.js';
import * as otel from '../src/otel.js';
import * as redis from '../src/redis.js';
import * as testing from '../src/testing/index.js';

const ROOT = [
  'ANSWERED_CHANNEL',
  'AuthenticationError',
  'BATCH_DEFAULTS',
  'BatchSetupError',
  'CHANNEL_PREFIX',
  'CLIENT_DEFAULTS',
  'DELIVERY_HEADER',
  'DailyQuotaExhaustedError',
  'EVENT_HEADER',
  'HttpError',
  'InsufficientBalanceError',
  'JOB_ERROR_CODES',
  'JobFailedError',
  'KNOWN_ENDPOINTS',
  'METRICS',
  'MemorySpendLedger',
  'MemoryStore',
  'ModelBeamClient',
  'NotFoundError',
  'OutcomeUnknownError',
  'PROMETHEUS_CONTENT_TYPE',
  'ParamsValidationError',
  'PriceUnavailableError',
  'PrometheusMetrics',
  'QueueClosedError',
  'RateLimitScheduler',
  'RetriesExhaustedError',
  'SCHEDULER_DEFAULTS',
  'SIGNATURE_HEADER',
  'SPEND_CHANNEL',
  'SchedulerError',
  'SpendCapReachedError',
  'StoreUnavailableError',
  'TIMESTAMP_HEADER',
  'TYPED_ENDPOINTS',
  'TimeoutError',
  'UNTYPED_ENDPOINTS',
  'ValidationError',
  'WebhookVerificationError',
  'channelName',
  'createWebhookHandler',
  'formatSummary',
  'isRetryableJobError',
  'isSchedulerError',
  'listenWebhookServer',
  'parseRateLimitHeaders',
  'readJsonlLines',
  'runBatch',
  'validateParams',
  'verifyWebhook',
];

const REDIS = ['RedisSpendLedger', 'RedisStore'];

const OTEL = ['METER_NAME', 'METRICS', 'instrumentOpenTelemetry'];

const TESTING = [
  'FAKE_ENDPOINTS',
  'FAKE_MODELS',
  'FAKE_SERVER_DEFAULTS',
  'FAULT_KINDS',
  'JOB_ERROR_CODES',
  'ManualClock',
  'RateWindow',
  'maxInAnyWindow',
  'retryAfterSeconds',
  'signWebhook',
  'startFakeModelBeam',
];

/** Internals that once leaked into the root; none may come back. */
const INTERNALS = [
  'IdTable',
  'Journal',
  'JournalWriteError',
  'PollGate',
  'DurationEstimator',
  'parseJobStatus',
  'readJobError',
  'readRequestId',
  'retryAllowanceFor',
  'firstPollDelay',
  'nextPollDelay',
  'predictRemaining',
  'predictTotal',
  'loadJournal',
  'readJournal',
  'countLines',
  'parseInput',
  'autoId',
  'RESERVED_KEYS',
  'validateBatchItem',
  'FILE_FIELDS',
  'maxFileBytes',
  'isValidEndpointName',
  'readFieldErrors',
  'systemClock',
  'RateLimitError',
  'defaults',
];

const names = (module: object): string[] => Object.keys(module).sort();

describe('export lists', () => {
  it('the root', () => {
    expect(names(root)).toEqual(ROOT);
  });
  it('modelbeam-scheduler/redis', () => {
    expect(names(redis)).toEqual(REDIS);
  });
  it('modelbeam-scheduler/otel', () => {
    expect(names(otel)).toEqual(OTEL);
    expect(otel.METRICS).toBe(root.METRICS);
  });
  it('modelbeam-scheduler/testing', () => {
    expect(names(testing)).toEqual(TESTING);
  });
  it('no internal at the root', () => {
    expect(names(root).filter((n) => INTERNALS.includes(n))).toEqual([]);
  });
  it('a name exported by two entry points is the same value there', () => {
    const shared = names(testing).filter((n) => n in root);
    expect(shared).toEqual(['JOB_ERROR_CODES']);
    for (const n of shared) expect((testing as Record<string, unknown>)[n]).toBe((root as Record<string, unknown>)[n]);
  });
});

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith('.ts') ? [path] : [];
  });
}

describe('errors', () => {
  const errorClasses = Object.entries(root).filter(
    ([, value]) => typeof value === 'function' && (value as { prototype?: unknown }).prototype instanceof Error,
  ) as [string, new (...args: never[]) => Error][];

  it('every exported error class extends SchedulerError', () => {
    expect(errorClasses.length).toBeGreaterThan(10);
    for (const [name, cls] of errorClasses) {
      if (cls === root.SchedulerError) continue;
      expect(Object.prototype.isPrototypeOf.call(root.SchedulerError.prototype, cls.prototype), name).toBe(true);
    }
  });

  it('the batch errors are SchedulerErrors with stable codes', () => {
    const setup = new root.BatchSetupError('cannot read input.jsonl');
    expect(setup).toBeInstanceOf(root.SchedulerError);
    expect(setup).toMatchObject({ name: 'BatchSetupError', code: 'BATCH_SETUP_FAILED' });
    expect(root.isSchedulerError(setup)).toBe(true);
  });

  it('every exported error class is thrown somewhere in the library (outside src/errors)', () => {
    const code = sourceFiles('src')
      .filter((f) => !f.startsWith(join('src', 'errors')))
      .map((f) => readFileSync(f, 'utf8'))
      .join('\n');
    const neverThrown = errorClasses
      .map(([name]) => name)
      .filter((name) => name !== 'SchedulerError' && !code.includes(`new ${name}(`));
    expect(neverThrown).toEqual([]);
  });
});
