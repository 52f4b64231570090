/**
 * The options of `runBatch`: their defaults, in one object, and the eager
 * check that refuses a bad one before anything is read or sent. Shaped as
 * `engine/options.ts` is (a defaults object, a key list, one validate
 * function), so that it moves onto the shared validation helper unchanged.
 */
import { checkNumber, hasMethods, invalid } from '../internal/validate.js';
import { unknownEndpointErrors, validateParams } from '../modelbeam/endpoints.js';
import type { BatchClient, RunBatchOptions } from './types.js';

/** The defaults of {@link RunBatchOptions}, in one place. */
export const BATCH_DEFAULTS = {
  maxInFlight: 256,
  maxQueued: 32,
  maxSubmitting: 8,
  maxResubmissions: 2,
  resubmitOnUnknownOutcome: true,
  onDailyLimit: 'stop',
  graceMs: 30_000,
  maxConsecutiveTransient: 10,
  fsyncIntervalMs: 1000,
  fsyncEveryRecords: 1000,
  retryFailed: false,
} as const;

/** Every key of {@link RunBatchOptions}; an unknown key is refused (a typo must not vanish). */
export const BATCH_OPTION_KEYS = [
  'out',
  'errorsOut',
  'endpoint',
  'params',
  'maxInFlight',
  'maxQueued',
  'maxSubmitting',
  'maxResubmissions',
  'resubmitOnUnknownOutcome',
  'onDailyLimit',
  'graceMs',
  'maxConsecutiveTransient',
  'fsyncIntervalMs',
  'fsyncEveryRecords',
  'retryFailed',
  'apiBaseUrl',
  'signal',
  'validate',
  'keepPreview',
  'maxSpend',
  'spendLedger',
  'onResult',
  'logger',
  'clock',
] as const satisfies readonly (keyof RunBatchOptions)[];

const KNOWN = new Set<string>(BATCH_OPTION_KEYS);

/** The integer options, with their lower bounds. */
const INTEGERS = [
  ['maxInFlight', 1],
  ['maxQueued', 1],
  ['maxSubmitting', 1],
  ['maxResubmissions', 0],
  ['graceMs', 0],
  ['maxConsecutiveTransient', 1],
  ['fsyncIntervalMs', 0],
  ['fsyncEveryRecords', 1],
] as const satisfies readonly (readonly [keyof RunBatchOptions, number])[];

/** {@link RunBatchOptions} with every default filled in. */
export interface ResolvedBatchOptions {
  maxInFlight: number;
  maxQueued: number;
  maxSubmitting: number;
  maxResubmissions: number;
  resubmitOnUnknownOutcome: boolean;
  onDailyLimit: 'stop' | 'wait';
  graceMs: number;
  maxConsecutiveTransient: number;
  fsyncIntervalMs: number;
  fsyncEveryRecords: number;
  retryFailed: boolean;
  errorsOut: string;
  /** USD; undefined: no cap. */
  maxSpend: number | undefined;
}

function isBoolean(name: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'boolean') {
    throw new TypeError(`Expected \`${name}\` to be a boolean, got \`${String(value)}\` (${typeof value})`);
  }
}

/** Validates `options` eagerly (each message names the option) and fills in the defaults. */
export function resolveBatchOptions(options: RunBatchOptions): ResolvedBatchOptions {
  if (typeof options !== 'object' || options === null) throw new TypeError('Expected `options` to be an object, e.g. `{ out: "results.jsonl" }`');
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) throw new TypeError(`Unknown option \`${key}\`; expected one of ${BATCH_OPTION_KEYS.map((k) => `\`${k}\``).join(', ')}`);
  }
  if (typeof options.out !== 'string' || options.out === '') {
    throw new TypeError('Expected `out` to be the path of the results file, e.g. `runBatch(client, items, { out: "results.jsonl" })`');
  }
  for (const [name, min] of INTEGERS) {
    const value: unknown = options[name];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
      throw new TypeError(`Expected \`${name}\` to be an integer >= ${min}, got \`${String(value)}\` (${typeof value})`);
    }
  }
  if (options.onDailyLimit !== undefined && options.onDailyLimit !== 'stop' && options.onDailyLimit !== 'wait') {
    throw new TypeError(`Expected \`onDailyLimit\` to be 'stop' or 'wait', got \`${String(options.onDailyLimit)}\``);
  }
  if (options.endpoint !== undefined && (typeof options.endpoint !== 'string' || options.endpoint === '')) {
    throw new TypeError(`Expected \`endpoint\` to be a non-empty string, got \`${String(options.endpoint)}\``);
  }
  if (options.params !== undefined && (typeof options.params !== 'object' || options.params === null || Array.isArray(options.params))) {
    throw new TypeError('Expected `params` to be an object of default job parameters');
  }
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) throw new TypeError('Expected `signal` to be an AbortSignal');
  for (const name of ['validate', 'onResult'] as const) {
    if (options[name] !== undefined && typeof options[name] !== 'function') throw new TypeError(`Expected \`${name}\` to be a function`);
  }
  if (options.errorsOut !== undefined && (typeof options.errorsOut !== 'string' || options.errorsOut === '')) {
    throw new TypeError(`Expected \`errorsOut\` to be the path of the errors file, got \`${String(options.errorsOut)}\` (${typeof options.errorsOut})`);
  }
  if (options.apiBaseUrl !== undefined && (typeof options.apiBaseUrl !== 'string' || options.apiBaseUrl === '')) {
    throw new TypeError(`Expected \`apiBaseUrl\` to be the API base URL, got \`${String(options.apiBaseUrl)}\` (${typeof options.apiBaseUrl})`);
  }
  if (options.maxSpend !== undefined) checkNumber('maxSpend', options.maxSpend, { min: 0, exclusiveMin: true });
  if (options.spendLedger !== undefined) {
    if (!hasMethods(options.spendLedger, ['open', 'reserve', 'release', 'total'])) invalid('spendLedger', 'a spend ledger (e.g. `redisStore.spendLedger()`)', options.spendLedger);
    if (options.maxSpend === undefined) throw new TypeError('Expected `maxSpend` to be set with `spendLedger` (the ledger counts spend against it)');
  }
  isBoolean('keepPreview', options.keepPreview);
  isBoolean('retryFailed', options.retryFailed);
  isBoolean('resubmitOnUnknownOutcome', options.resubmitOnUnknownOutcome);
  const logger = options.logger as unknown as Record<string, unknown> | null | undefined;
  if (logger !== undefined && (typeof logger !== 'object' || logger === null || typeof logger['child'] !== 'function' || typeof logger['warn'] !== 'function')) {
    throw new TypeError('Expected `logger` to be a pino logger');
  }
  const clock = options.clock as unknown as Record<string, unknown> | null | undefined;
  if (clock !== undefined && (typeof clock !== 'object' || clock === null || typeof clock['now'] !== 'function' || typeof clock['setTimeout'] !== 'function' || typeof clock['clearTimeout'] !== 'function')) {
    throw new TypeError('Expected `clock` to be an object with now(), setTimeout() and clearTimeout()');
  }
  const d = BATCH_DEFAULTS;
  return {
    maxInFlight: options.maxInFlight ?? d.maxInFlight,
    maxQueued: options.maxQueued ?? d.maxQueued,
    maxSubmitting: options.maxSubmitting ?? d.maxSubmitting,
    maxResubmissions: options.maxResubmissions ?? d.maxResubmissions,
    resubmitOnUnknownOutcome: options.resubmitOnUnknownOutcome ?? d.resubmitOnUnknownOutcome,
    onDailyLimit: options.onDailyLimit ?? d.onDailyLimit,
    graceMs: options.graceMs ?? d.graceMs,
    maxConsecutiveTransient: options.maxConsecutiveTransient ?? d.maxConsecutiveTransient,
    fsyncIntervalMs: options.fsyncIntervalMs ?? d.fsyncIntervalMs,
    fsyncEveryRecords: options.fsyncEveryRecords ?? d.fsyncEveryRecords,
    retryFailed: options.retryFailed ?? d.retryFailed,
    errorsOut: options.errorsOut ?? `${options.out}.errors.jsonl`,
    maxSpend: options.maxSpend,
  };
}

/**
 * The default local check of a batch item: the endpoint must be one the ModelBeam docs name
 * (`KNOWN_ENDPOINTS`), and the parameters must pass `validateParams` (the documented ranges).
 */
export function validateBatchItem(endpoint: string, params: Record<string, unknown>): Record<string, string[]> | undefined {
  return unknownEndpointErrors(endpoint) ?? validateParams(endpoint, params);
}

/** Checks that `client` has what `runBatch` uses (a ModelBeamClient, or a stand-in with the same members). */
export function checkBatchClient(client: BatchClient): void {
  const c = client as unknown as Record<string, unknown> | null;
  if (typeof c !== 'object' || c === null || typeof c['submit'] !== 'function' || typeof c['wait'] !== 'function') {
    throw new TypeError('Expected `client` to be a ModelBeamClient (with submit() and wait())');
  }
  const s = c['scheduler'] as Record<string, unknown> | undefined;
  if (typeof s !== 'object' || s === null || typeof s['onSizeLessThan'] !== 'function' || typeof s['stats'] !== 'function') {
    throw new TypeError('Expected `client.scheduler` to be a RateLimitScheduler');
  }
}
