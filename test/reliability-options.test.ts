/**
 * Bad options and bad input everywhere in the public API (issue 7): every
 * constructor and function gives a clear error that names what is wrong,
 * before anything is sent or started. Tables, one per entry point. The
 * scheduler's own options and `schedule()` are in `engine-options.test.ts`.
 *
 * `parseRateLimitHeaders` is the one exception by design ("never throws,
 * whatever it is given"): bad options fall back to their defaults, checked
 * below too.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runBatch } from '../src/batch/run-batch.js';
import { RateLimitScheduler } from '../src/engine/scheduler.js';
import { MemoryStore } from '../src/store/memory-store.js';
import { parseRateLimitHeaders } from '../src/headers/parse.js';
import { createWebhookHandler, listenWebhookServer, ModelBeamClient, verifyWebhook, type ModelBeamClientOptions } from '../src/modelbeam/index.js';
import { RedisStore, type RedisStoreOptions } from '../src/store/redis-store.js';
import { ManualClock, signWebhook, startFakeModelBeam, type FakeModelBeamServer, type FakeServerOptions } from '../src/testing/index.js';
import { closeAll, harness, img, type Harness } from './modelbeam-harness.js';

type Case = [label: string, input: unknown, message: string | RegExp];

/** Runs `fn`; returns the error it throws (or the rejection), or fails. */
async function errorOf(fn: () => unknown): Promise<Error> {
  try {
    await fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected an error, got none');
}

function expectMessage(error: Error, message: string | RegExp): void {
  expect(error).toBeInstanceOf(TypeError);
  if (typeof message === 'string') expect(error.message).toBe(message);
  else expect(error.message).toMatch(message);
}

// ------------------------------------------------------------------ ModelBeamClient

describe('new ModelBeamClient(options): bad options throw a TypeError naming the option', () => {
  const k = { apiKey: 'mbk_test_key_1' };
  const cases: Case[] = [
    ['no options', undefined, /^Expected `options` to be an object, e\.g\. `new ModelBeamClient\(\{ apiKey: process\.env\.MODELBEAM_API_KEY \}\)`$/],
    ['options null', null, /^Expected `options` to be an object/],
    ['no apiKey', {}, /^Expected `apiKey` to be a non-empty string, e\.g\./],
    ['apiKey empty', { apiKey: '' }, /^Expected `apiKey` to be a non-empty string/],
    ['apiKey a number', { apiKey: 42 }, 'Expected `apiKey` to be a non-empty string, got a value of type number'],
    ['apiKey with a newline', { apiKey: 'mbk_abc\n' }, /^Expected `apiKey` to be printable ASCII without spaces or line breaks, got a string of length 8 that is not \(check for a stray newline\)$/],
    ['apiKey with a space', { apiKey: 'mbk abc' }, /printable ASCII without spaces/],
    ['a typo', { ...k, timeoutMs: 5 }, /^Unknown option `timeoutMs`; expected one of `apiKey`, `baseUrl`/],
    ['baseUrl ftp', { ...k, baseUrl: 'ftp://api.example' }, 'Expected `baseUrl` to be an http(s) URL of at most 2048 characters, got `"ftp://api.example"` (string)'],
    ['baseUrl not a URL', { ...k, baseUrl: 'https://exa mple' }, /^Expected `baseUrl` to be an http\(s\) URL/],
    ['baseUrl with credentials, invalid: the password is masked', { ...k, baseUrl: 'https://user:hunter2@exa mple' }, 'Expected `baseUrl` to be an http(s) URL of at most 2048 characters, got `"https://***@exa mple"` (string)'],
    ['scheduler a string', { ...k, scheduler: 'fast' }, 'Expected `scheduler` to be a RateLimitScheduler or scheduler options, got `"fast"` (string)'],
    ['scheduler options with a typo', { ...k, scheduler: { maxConcurent: 4 } }, /^Unknown option `maxConcurent`; expected one of `limits`/],
    ['scheduler options out of range', { ...k, scheduler: { maxConcurrent: 0 } }, /^Expected `maxConcurrent` to be an integer >= 1/],
    ['connections 0', { ...k, connections: 0 }, 'Expected `connections` to be an integer >= 1, got `0` (number)'],
    ['connections 2.5', { ...k, connections: 2.5 }, 'Expected `connections` to be an integer >= 1, got `2.5` (number)'],
    ['connectTimeoutMs -1', { ...k, connectTimeoutMs: -1 }, 'Expected `connectTimeoutMs` to be a number >= 0, got `-1` (number)'],
    ['headersTimeoutMs Infinity', { ...k, headersTimeoutMs: Infinity }, 'Expected `headersTimeoutMs` to be a number >= 0, got `Infinity` (number)'],
    ['bodyTimeoutMs "60s"', { ...k, bodyTimeoutMs: '60s' }, 'Expected `bodyTimeoutMs` to be a number >= 0, got `"60s"` (string)'],
    ['jobRetries not an object', { ...k, jobRetries: 3 }, 'Expected `jobRetries` to be an object, got `3` (number)'],
    ['jobRetries.WORKER_TIMEOUT -1', { ...k, jobRetries: { WORKER_TIMEOUT: -1 } }, 'Expected `jobRetries.WORKER_TIMEOUT` to be an integer >= 0, got `-1` (number)'],
    ['jobRetries.PROCESSING_ERROR 2 (retried at most once)', { ...k, jobRetries: { PROCESSING_ERROR: 2 } }, 'Expected `jobRetries.PROCESSING_ERROR` to be 0 or 1 (every retry is a new billed job; this code is retried at most once), got `2` (number)'],
    ['jobRetries.UNKNOWN_ERROR 3 (retried at most once)', { ...k, jobRetries: { UNKNOWN_ERROR: 3 } }, 'Expected `jobRetries.UNKNOWN_ERROR` to be 0 or 1 (every retry is a new billed job; this code is retried at most once), got `3` (number)'],
    ['jobRetries.UNKNOWN_ERROR Infinity', { ...k, jobRetries: { UNKNOWN_ERROR: Infinity } }, 'Expected `jobRetries.UNKNOWN_ERROR` to be an integer >= 0, got `Infinity` (number)'],
    ['jobRetries.WORKER_TIMEOUT 11 (bounded)', { ...k, jobRetries: { WORKER_TIMEOUT: 11 } }, 'Expected `jobRetries.WORKER_TIMEOUT` to be an integer from 0 to 10 (every retry is a new billed job), got `11` (number)'],
    ['jobRetries.WORKER_TIMEOUT 1.5', { ...k, jobRetries: { WORKER_TIMEOUT: 1.5 } }, 'Expected `jobRetries.WORKER_TIMEOUT` to be an integer >= 0, got `1.5` (number)'],
    ['keepAliveTimeoutMs 0', { ...k, keepAliveTimeoutMs: 0 }, 'Expected `keepAliveTimeoutMs` to be a number > 0, got `0` (number)'],
    ['keepAliveTimeoutMs Infinity', { ...k, keepAliveTimeoutMs: Infinity }, 'Expected `keepAliveTimeoutMs` to be a number > 0, got `Infinity` (number)'],
    ['jobRetries with an unknown code', { ...k, jobRetries: { AGE_RESTRICTED: 1 } }, /^Unknown option `jobRetries\.AGE_RESTRICTED`; expected one of `WORKER_TIMEOUT`, `PROCESSING_ERROR`, `UNKNOWN_ERROR`$/],
    ['maxResubmissions -1', { ...k, maxResubmissions: -1 }, 'Expected `maxResubmissions` to be an integer >= 0 (or Infinity), got `-1` (number)'],
    ['jobRetryDelayMs NaN', { ...k, jobRetryDelayMs: Number.NaN }, 'Expected `jobRetryDelayMs` to be a number >= 0, got `NaN` (number)'],
    ['resubmitOnUnknownOutcome "yes"', { ...k, resubmitOnUnknownOutcome: 'yes' }, 'Expected `resubmitOnUnknownOutcome` to be a boolean, got `"yes"` (string)'],
    ['onInsufficientBalance "retry"', { ...k, onInsufficientBalance: 'retry' }, 'Expected `onInsufficientBalance` to be \'wait\' or \'reject\', got `"retry"` (string)'],
    ['balanceCheckIntervalMs -5', { ...k, balanceCheckIntervalMs: -5 }, 'Expected `balanceCheckIntervalMs` to be a number >= 0, got `-5` (number)'],
    ['polling null', { ...k, polling: null }, 'Expected `polling` to be an object, got `null` (null)'],
    ['polling typo', { ...k, polling: { maxSahre: 0.5 } }, /^Unknown option `polling\.maxSahre`/],
    ['polling.maxShare 0', { ...k, polling: { maxShare: 0 } }, 'Expected `polling.maxShare` to be a number in (0, 1], got `0` (number)'],
    ['polling.maxShare 1.5', { ...k, polling: { maxShare: 1.5 } }, 'Expected `polling.maxShare` to be a number in (0, 1], got `1.5` (number)'],
    ['polling.minIntervalMs NaN', { ...k, polling: { minIntervalMs: Number.NaN } }, 'Expected `polling.minIntervalMs` to be a number >= 0, got `NaN` (number)'],
    ['polling.maxIntervalMs below minIntervalMs', { ...k, polling: { minIntervalMs: 5000, maxIntervalMs: 1000 } }, 'Expected `polling.maxIntervalMs` to be at least polling.minIntervalMs (5000), got `1000` (number)'],
    ['polling.overdueFactor 0.5', { ...k, polling: { overdueFactor: 0.5 } }, 'Expected `polling.overdueFactor` to be a number >= 1, got `0.5` (number)'],
    ['polling.initialEstimateMs 0', { ...k, polling: { initialEstimateMs: 0 } }, 'Expected `polling.initialEstimateMs` to be a number > 0, got `0` (number)'],
    ['polling.windowMs -1', { ...k, polling: { windowMs: -1 } }, 'Expected `polling.windowMs` to be a number > 0, got `-1` (number)'],
    ['webhook without url', { ...k, webhook: { secret: 's' } }, /^Expected `webhook\.url` to be set, e\.g\./],
    ['webhook.url ftp', { ...k, webhook: { url: 'ftp://x.example/h' } }, /^Expected `webhook\.url` to be an http\(s\) URL of at most 2048 characters/],
    ['webhook.url with credentials, invalid: masked', { ...k, webhook: { url: 'https://hook:s3cr3t@exa mple/h' } }, /got `"https:\/\/\*\*\*@exa mple\/h"`/],
    ['webhook.url over 2048 characters', { ...k, webhook: { url: `https://x.example/${'a'.repeat(2048)}` } }, /^Expected `webhook\.url` to be an http\(s\) URL of at most 2048 characters/],
    ['webhook.secret empty', { ...k, webhook: { url: 'https://x.example/h', secret: '' } }, 'Expected `webhook.secret` to be a non-empty string, got a value of type string'],
    ['webhook.secret a number', { ...k, webhook: { url: 'https://x.example/h', secret: 42 } }, 'Expected `webhook.secret` to be a non-empty string, got a value of type number'],
    ['webhook.toleranceSec 0', { ...k, webhook: { url: 'https://x.example/h', toleranceSec: 0 } }, 'Expected `webhook.toleranceSec` to be a number > 0, got `0` (number)'],
    ['webhook.maxBodyBytes 0.5', { ...k, webhook: { url: 'https://x.example/h', maxBodyBytes: 0.5 } }, 'Expected `webhook.maxBodyBytes` to be an integer >= 1, got `0.5` (number)'],
    ['webhook typo', { ...k, webhook: { url: 'https://x.example/h', secrt: 's' } }, /^Unknown option `webhook\.secrt`/],
    ['validate "no"', { ...k, validate: 'no' }, 'Expected `validate` to be a boolean, got `"no"` (string)'],
    ['maxUploadBytes 0', { ...k, maxUploadBytes: 0 }, 'Expected `maxUploadBytes` to be an integer >= 1, got `0` (number)'],
    ['logger console', { ...k, logger: console }, /^Expected `logger` to be a pino logger .*: console has no child\(\)$/],
    ['a scheduler option at the top', { ...k, maxConcurrent: 4 }, /^Unknown option `maxConcurrent`; .*; `maxConcurrent` is a scheduler option: `scheduler: \{ maxConcurrent: … \}`$/],
    ['a store as the scheduler', { ...k, scheduler: new MemoryStore() }, /^Expected `scheduler` to be .*got a store: a store goes inside them, `scheduler: \{ store \}`$/],
    ['clock Date', { ...k, clock: Date }, /^Expected `clock` to be an object with now\(\), setTimeout\(\) and clearTimeout\(\)/],
    ['random 0.5', { ...k, random: 0.5 }, 'Expected `random` to be a function returning [0, 1), got `0.5` (number)'],
  ];

  it.each(cases)('%s', async (_label, options, message) => {
    expectMessage(await errorOf(() => new ModelBeamClient(options as ModelBeamClientOptions)), message);
  });

  it('the key never appears in an apiKey error', async () => {
    const key = 'mbk_live_very_secret_value_0987';
    for (const bad of [`${key}\n`, ` ${key}`, `${key} x`]) expect((await errorOf(() => new ModelBeamClient({ apiKey: bad }))).message).not.toContain(key);
  });

  it('a throwing constructor leaves nothing running (no scheduler, no timer, no socket)', async () => {
    const before = process.getActiveResourcesInfo().length;
    for (let i = 0; i < 20; i++) await errorOf(() => new ModelBeamClient({ apiKey: 'k', polling: { maxShare: 2 } }));
    expect(process.getActiveResourcesInfo().length).toBeLessThanOrEqual(before);
  });
});

describe('ModelBeamClient methods: bad arguments reject with a TypeError naming them, and send nothing', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness({}, { webhook: { url: 'https://hooks.example/modelbeam' } });
  });
  afterAll(closeAll);

  const fine = img();
  const cases: [string, (c: ModelBeamClient) => unknown, string | RegExp][] = [
    ['submit: endpoint not a path', (c) => c.submit('../balance' as never, fine as never), "Expected `endpoint` to be an endpoint path such as 'txt2img' or 'videos/replace', got `../balance`"],
    ['submit: endpoint a number', (c) => c.submit(5 as never, fine as never), /^Expected `endpoint` to be an endpoint path/],
    ['submit: endpoint with a query', (c) => c.submit('txt2img?x=1' as never, fine as never), /^Expected `endpoint` to be an endpoint path/],
    ['submit: params null', (c) => c.submit('txt2img', null as never), 'Expected `params` to be an object, got null'],
    ['submit: params an array', (c) => c.submit('txt2img', [] as never), 'Expected `params` to be an object, got an array'],
    ['submit: params a string', (c) => c.submit('txt2img', 'a fox' as never), 'Expected `params` to be an object, got string'],
    ['submit: priority not finite', (c) => c.submit('txt2img', fine, { priority: Number.NaN }), 'Expected `priority` to be a finite number, got `NaN` (number)'],
    ['submit: options a string', (c) => c.submit('txt2img', fine, 'high' as never), /^Expected `options` to be an object, got/],
    ['submit: a typo in the options', (c) => c.submit('txt2img', fine, { priorty: 5 } as never), /^Unknown option `priorty`; expected one of `signal`, `priority`, `onDispatch`/],
    ['submit: signal not an AbortSignal', (c) => c.submit('txt2img', fine, { signal: {} as never }), /^Expected `signal` to be an AbortSignal, got/],
    ['submit: onDispatch not a function', (c) => c.submit('txt2img', fine, { onDispatch: 'log' as never }), /^Expected `onDispatch` to be a function, got/],
    ['generate: onSubmitted not a function', (c) => c.generate('txt2img', fine, { onSubmitted: 1 as never }), /^Expected `onSubmitted` to be a function, got `1` \(number\)/],
    ['generate: idempotent is not a client option', (c) => c.generate('txt2img', fine, { idempotent: true } as never), /^Unknown option `idempotent`/],
    ['wait: submittedAt NaN', (c) => c.wait('r-1', { submittedAt: Number.NaN }), 'Expected `submittedAt` to be a finite number, got `NaN` (number)'],
    ['wait: endpoint empty', (c) => c.wait('r-1', { endpoint: '' }), /^Expected `endpoint` to be a non-empty string/],
    ['wait: a typo in the options', (c) => c.wait('r-1', { sigal: undefined } as never), /^Unknown option `sigal`; expected one of `signal`, `endpoint`, `model`, `submittedAt`/],
    ['balance: signal a boolean', (c) => c.balance({ signal: true as never }), /^Expected `signal` to be an AbortSignal, got/],
    ['status: a typo in the options', (c) => c.status('r-1', { timeout: 5 } as never), /^Unknown option `timeout`; expected one of `signal`/],
    ['models: options null', (c) => c.models({}, null as never), 'Expected `options` to be an object, got `null` (null)'],
    ['generate: endpoint empty', (c) => c.generate('' as never, fine as never), /^Expected `endpoint` to be an endpoint path/],
    ['generate: params undefined', (c) => c.generate('txt2img', undefined as never), 'Expected `params` to be an object, got undefined'],
    ['wait: empty id', (c) => c.wait(''), 'Expected `requestId` to be a non-empty string, got `` (string)'],
    ['wait: blank id', (c) => c.wait('   '), 'Expected `requestId` to be a non-empty string, got `   ` (string)'],
    ['wait: a number', (c) => c.wait(42 as never), 'Expected `requestId` to be a non-empty string, got `42` (number)'],
    ['status: undefined', (c) => c.status(undefined as never), 'Expected `requestId` to be a non-empty string, got `undefined` (undefined)'],
    ['models: inferenceTypes a string', (c) => c.models({ inferenceTypes: 'txt2img' as never }), 'Expected `inferenceTypes` to be an array of non-empty strings, got `"txt2img"`'],
    ['models: an empty type', (c) => c.models({ inferenceTypes: [''] }), 'Expected `inferenceTypes` to be an array of non-empty strings, got `[""]`'],
    ['price: endpoint with a space', (c) => c.price('txt 2img', fine), /^Expected `endpoint` to be an endpoint path/],
    ['download: no resultUrl', (c) => c.download({}, '/tmp/x.png'), /^Expected a result with a `resultUrl` \(or an http\(s\) URL\)/],
    ['download: a file: URL', (c) => c.download('file:///etc/passwd', '/tmp/x'), /^Expected a result with a `resultUrl`/],
    ['download: dest a number', (c) => c.download('https://x.example/a.png', 5 as never), 'Expected `dest` to be a file path or a writable stream'],
    ['setWebhookUrl: not a URL', (c) => c.setWebhookUrl('hooks.example/x'), 'Expected `url` to be an http(s) URL of at most 2048 characters, got `"hooks.example/x"` (string)'],
    ['setWebhookUrl: credentials masked', (c) => c.setWebhookUrl('https://u:pw-123@exa mple/x'), 'Expected `url` to be an http(s) URL of at most 2048 characters, got `"https://***@exa mple/x"` (string)'],
    ['webhookHandler without a secret', (c) => c.webhookHandler, /^Expected `webhook\.secret` to be set to receive webhooks/],
  ];

  it.each(cases)('%s', async (_label, call, message) => {
    const before = h.server.stats().requests;
    expectMessage(await errorOf(() => call(h.client)), message);
    expect(h.server.stats().requests).toBe(before);
  });

  it('local parameter checks name every bad field, and send nothing', async () => {
    const before = h.server.stats().requests;
    const error = (await errorOf(() => h.client.submit('txt2img', { prompt: '', model: 'Flux1schnell', width: 100_000, height: 'tall', steps: -1 } as never))) as Error & { fieldErrors?: Record<string, string[]> };
    expect(error.name).toBe('ParamsValidationError');
    expect(Object.keys(error.fieldErrors ?? {}).sort()).toEqual(expect.arrayContaining(['height', 'steps', 'width']));
    expect(error.message).toMatch(/width/);
    expect(h.server.stats().requests).toBe(before);
  });

  it('startWebhookServer: a bad port is refused', async () => {
    const c = h.make({ webhook: { url: 'https://hooks.example/x', secret: 'whsec_x' } });
    for (const port of [-1, 65536, 1.5, Number.NaN, '8080'])
      expectMessage(await errorOf(() => c.startWebhookServer({ port: port as number })), /^Expected `port` to be an integer in \[0, 65535\], got /);
  });
});

// ------------------------------------------------------------------ webhooks

describe('createWebhookHandler(options)', () => {
  const ok = { secret: 'whsec_ok', onEvent: () => {} };
  const cases: Case[] = [
    ['no options', undefined, /^Expected `options` to be an object, e\.g\. `createWebhookHandler\(/],
    ['options null', null, /^Expected `options` to be an object/],
    ['a typo (tolerance)', { ...ok, tolerance: 60 }, /^Unknown option `tolerance`; expected one of `secret`, `toleranceSec`/],
    ['no secret', { onEvent: () => {} }, /^Expected `secret` to be a non-empty string \(or a non-empty array of them\)/],
    ['secret empty', { ...ok, secret: '' }, /^Expected `secret` to be a non-empty string/],
    ['secret an empty array', { ...ok, secret: [] }, /^Expected `secret` to be a non-empty string/],
    ['secret array with a number', { ...ok, secret: ['whsec_a', 5] }, /^Expected `secret` to be a non-empty string/],
    ['secret array with an empty string', { ...ok, secret: ['whsec_a', ''] }, /^Expected `secret` to be a non-empty string/],
    ['no onEvent', { secret: 'whsec_ok' }, 'Expected `onEvent` to be a function, got `undefined` (undefined)'],
    ['onEvent a string', { ...ok, onEvent: 'log' }, 'Expected `onEvent` to be a function, got `"log"` (string)'],
    ['onRejected a number', { ...ok, onRejected: 5 }, 'Expected `onRejected` to be a function, got `5` (number)'],
    ['onDuplicate an object', { ...ok, onDuplicate: {} }, 'Expected `onDuplicate` to be a function, got `{}` (object)'],
    ['toleranceSec 0', { ...ok, toleranceSec: 0 }, 'Expected `toleranceSec` to be a number > 0, got `0` (number)'],
    ['toleranceSec NaN', { ...ok, toleranceSec: Number.NaN }, 'Expected `toleranceSec` to be a number > 0, got `NaN` (number)'],
    ['toleranceSec "300"', { ...ok, toleranceSec: '300' }, 'Expected `toleranceSec` to be a number > 0, got `"300"` (string)'],
    ['maxBodyBytes -1', { ...ok, maxBodyBytes: -1 }, 'Expected `maxBodyBytes` to be a number > 0, got `-1` (number)'],
    ['bodyTimeoutMs 0', { ...ok, bodyTimeoutMs: 0 }, 'Expected `bodyTimeoutMs` to be a number > 0, got `0` (number)'],
    ['dedupeSize NaN (would be unbounded)', { ...ok, dedupeSize: Number.NaN }, 'Expected `dedupeSize` to be an integer >= 1, got `NaN` (number)'],
    ['dedupeSize 0', { ...ok, dedupeSize: 0 }, 'Expected `dedupeSize` to be an integer >= 1, got `0` (number)'],
    ['dedupeSize "1000"', { ...ok, dedupeSize: '1000' }, 'Expected `dedupeSize` to be an integer >= 1, got `"1000"` (string)'],
    ['clock without setTimeout', { ...ok, clock: { now: () => 0 } }, 'Expected `clock` to be an object with now(), setTimeout() and clearTimeout(), got `{ now }` (object)'],
    ['logger console-like', { ...ok, logger: { info() {} } }, 'Expected `logger` to be a pino logger (child(), debug(), info(), warn(), error()), got `{ info }` (object): it has no child(), debug(), warn(), error()'],
  ];
  it.each(cases)('%s', async (_label, options, message) => {
    expectMessage(await errorOf(() => createWebhookHandler(options as never)), message);
  });

  it('the secret never appears in its error', async () => {
    expect((await errorOf(() => createWebhookHandler({ secret: ['whsec_real_one', ''], onEvent: () => {} }))).message).not.toContain('whsec_real_one');
  });
});

describe('verifyWebhook(raw, headers, options): bad options fail closed with a TypeError', () => {
  const raw = JSON.stringify({ event: 'job.completed', data: { job_request_id: 'r1' } });
  const ts = 1_000; // 1970: stale under any sane clock
  const headers = { 'x-modelbeam-signature': signWebhook('whsec_v', ts, raw), 'x-modelbeam-timestamp': String(ts) };
  const emptyKeyHeaders = { 'x-modelbeam-signature': signWebhook('', Math.floor(Date.now() / 1000), raw), 'x-modelbeam-timestamp': String(Math.floor(Date.now() / 1000)) };
  const cases: [string, Record<string, string>, unknown, string | RegExp][] = [
    ['an empty secret (anyone could sign)', emptyKeyHeaders, { secret: '' }, /^Expected `secret` to be a non-empty string/],
    ['no secret (an unset env var)', headers, { secret: undefined }, /^Expected `secret` to be a non-empty string/],
    ['secret a number', headers, { secret: 42 }, /^Expected `secret` to be a non-empty string/],
    ['NaN tolerance (would switch the replay window off)', headers, { secret: 'whsec_v', toleranceSec: Number.NaN, now: Date.now() }, 'Expected `toleranceSec` to be a number > 0, got `NaN` (number)'],
    ['negative tolerance', headers, { secret: 'whsec_v', toleranceSec: -1 }, 'Expected `toleranceSec` to be a number > 0, got `-1` (number)'],
    ['tolerance as a string', headers, { secret: 'whsec_v', toleranceSec: '300' }, 'Expected `toleranceSec` to be a number > 0, got `"300"` (string)'],
    ['NaN now (would switch the replay window off)', headers, { secret: 'whsec_v', now: Number.NaN }, 'Expected `now` to be a finite number of ms since the epoch, got `NaN` (number)'],
    ['now as a Date', headers, { secret: 'whsec_v', now: new Date() }, /^Expected `now` to be a finite number of ms since the epoch/],
  ];
  it.each(cases)('%s', async (_label, h, options, message) => {
    expectMessage(await errorOf(() => verifyWebhook(raw, h, options as never)), message);
  });

  it('a handler whose clock goes NaN answers 500 and passes nothing on (fail closed)', () => {
    const events: unknown[] = [];
    const clock = new ManualClock(Date.now());
    const handler = createWebhookHandler({ secret: 'whsec_v', clock, onEvent: (e) => void events.push(e) });
    (clock as unknown as { now: () => number }).now = () => Number.NaN;
    expect(() => handler.process(raw, headers)).toThrow(TypeError);
    expect(events).toEqual([]);
  });
});

describe('listenWebhookServer(handler, { port })', () => {
  const handler = createWebhookHandler({ secret: 'whsec_l', onEvent: () => {} });
  it.each([[-1], [65536], [80.5], [Number.NaN], ['0'], [undefined]])('port %s', async (port) => {
    expectMessage(await errorOf(() => listenWebhookServer(handler, { port: port as number })), /^Expected `port` to be an integer in \[0, 65535\], got /);
  });
});

// ------------------------------------------------------------------ runBatch

describe('runBatch(client, inputs, options)', () => {
  let dir: string;
  let client: ModelBeamClient;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'rel-options-'));
    client = new ModelBeamClient({ apiKey: 'mbk_options', baseUrl: 'http://127.0.0.1:9/api/v1/client' });
  });
  afterAll(async () => {
    await client.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const out = (): string => join(dir, 'out.jsonl');
  const cases: [string, () => unknown, string | RegExp][] = [
    ['options missing', () => runBatch(client, [], undefined as never), 'Expected `options` to be an object, e.g. `{ out: "results.jsonl" }`'],
    ['out missing', () => runBatch(client, [], {} as never), /^Expected `out` to be the path of the results file/],
    ['out empty', () => runBatch(client, [], { out: '' }), /^Expected `out` to be the path of the results file/],
    ['a typo', () => runBatch(client, [], { out: out(), maxInflight: 3 } as never), /^Unknown option `maxInflight`; expected one of `out`/],
    ['maxInFlight 0', () => runBatch(client, [], { out: out(), maxInFlight: 0 }), 'Expected `maxInFlight` to be an integer >= 1, got `0` (number)'],
    ['maxInFlight Infinity', () => runBatch(client, [], { out: out(), maxInFlight: Infinity }), 'Expected `maxInFlight` to be an integer >= 1, got `Infinity` (number)'],
    ['maxQueued "32"', () => runBatch(client, [], { out: out(), maxQueued: '32' as never }), 'Expected `maxQueued` to be an integer >= 1, got `32` (string)'],
    ['maxSubmitting 1.5', () => runBatch(client, [], { out: out(), maxSubmitting: 1.5 }), 'Expected `maxSubmitting` to be an integer >= 1, got `1.5` (number)'],
    ['maxResubmissions -1', () => runBatch(client, [], { out: out(), maxResubmissions: -1 }), 'Expected `maxResubmissions` to be an integer >= 0, got `-1` (number)'],
    ['graceMs NaN', () => runBatch(client, [], { out: out(), graceMs: Number.NaN }), 'Expected `graceMs` to be an integer >= 0, got `NaN` (number)'],
    ['maxConsecutiveTransient 0', () => runBatch(client, [], { out: out(), maxConsecutiveTransient: 0 }), 'Expected `maxConsecutiveTransient` to be an integer >= 1, got `0` (number)'],
    ['fsyncEveryRecords 0', () => runBatch(client, [], { out: out(), fsyncEveryRecords: 0 }), 'Expected `fsyncEveryRecords` to be an integer >= 1, got `0` (number)'],
    ['onDailyLimit "later"', () => runBatch(client, [], { out: out(), onDailyLimit: 'later' as never }), "Expected `onDailyLimit` to be 'stop' or 'wait', got `later`"],
    ['endpoint empty', () => runBatch(client, [], { out: out(), endpoint: '' }), 'Expected `endpoint` to be a non-empty string, got ``'],
    ['params an array', () => runBatch(client, [], { out: out(), params: [] as never }), 'Expected `params` to be an object of default job parameters'],
    ['signal not a signal', () => runBatch(client, [], { out: out(), signal: { aborted: false } as never }), 'Expected `signal` to be an AbortSignal'],
    ['validate not a function', () => runBatch(client, [], { out: out(), validate: true as never }), 'Expected `validate` to be a function'],
    ['onResult not a function', () => runBatch(client, [], { out: out(), onResult: 'print' as never }), 'Expected `onResult` to be a function'],
    ['errorsOut a number', () => runBatch(client, [], { out: out(), errorsOut: 42 as never }), 'Expected `errorsOut` to be the path of the errors file, got `42` (number)'],
    ['keepPreview "yes"', () => runBatch(client, [], { out: out(), keepPreview: 'yes' as never }), 'Expected `keepPreview` to be a boolean, got `yes` (string)'],
    ['logger console-like', () => runBatch(client, [], { out: out(), logger: { info() {} } as never }), 'Expected `logger` to be a pino logger'],
    ['clock without now', () => runBatch(client, [], { out: out(), clock: { setTimeout, clearTimeout } as never }), 'Expected `clock` to be an object with now(), setTimeout() and clearTimeout()'],
    ['client not a client', () => runBatch({} as never, [], { out: out() }), 'Expected `client` to be a ModelBeamClient (with submit() and wait())'],
    ['client without a scheduler', () => runBatch({ submit() {}, wait() {} } as never, [], { out: out() }), 'Expected `client.scheduler` to be a RateLimitScheduler'],
    ['inputs a number', () => runBatch(client, 5 as never, { out: out() }), 'Expected `inputs` to be an iterable or async iterable of items'],
    ['inputs null', () => runBatch(client, null as never, { out: out() }), 'Expected `inputs` to be an iterable or async iterable of items'],
  ];
  it.each(cases)('%s', async (_label, call, message) => {
    expectMessage(await errorOf(call), message);
  });
});

// ------------------------------------------------------------------ the fake server

describe('startFakeModelBeam(options)', () => {
  const servers: FakeModelBeamServer[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close();
  });
  const cases: Case[] = [
    ['a typo', { limitz: {} }, /^Unknown option `limitz`; expected one of `port`, `host`, .*; did you mean `limits`\?$/],
    ['port 70000', { port: 70000 }, 'Expected `port` to be an integer in [0, 65535], got `70000` (number)'],
    ['port -1', { port: -1 }, 'Expected `port` to be an integer in [0, 65535], got `-1` (number)'],
    ['seed NaN', { seed: Number.NaN }, 'Expected `seed` to be a finite number, got `NaN` (number)'],
    ['accounts empty', { accounts: {} }, /^Expected `accounts` to be a non-empty map of API key to account id/],
    ['an account id empty', { accounts: { k: '' } }, 'Expected `accounts.k` to be a non-empty string, got `""` (string)'],
    ['balance -1', { balance: -1 }, 'Expected `balance` to be a number >= 0, got `-1` (number)'],
    ['limits.minute without limit', { limits: { minute: { windowMs: 1000 } } }, /^Expected `limits\.minute\.limit` to be set/],
    ['limits.minute.limit -1', { limits: { minute: { limit: -1 } } }, 'Expected `limits.minute.limit` to be an integer >= 0, got `-1` (number)'],
    ['limits.minute.windowMs 0', { limits: { minute: { limit: 5, windowMs: 0 } } }, 'Expected `limits.minute.windowMs` to be an integer >= 1, got `0` (number)'],
    ['limits.daily.kind "rolling"', { limits: { daily: { limit: 5, kind: 'rolling' } } }, /^Expected `limits\.daily\.kind` to be 'fixed', 'sliding' or 'first-hit', got `"rolling"`/],
    ['headers.missingRate 1.5', { headers: { missingRate: 1.5 } }, 'Expected `headers.missingRate` to be a number in [0, 1], got `1.5` (number)'],
    ['headers.retryAfterFormat "ms"', { headers: { retryAfterFormat: 'ms' } }, /^Expected `headers\.retryAfterFormat` to be 'seconds' or 'http-date'/],
    ['jobs.failureCodes empty', { jobs: { failureCodes: [] } }, /^Expected `jobs\.failureCodes` to be a non-empty array of WORKER_TIMEOUT/],
    ['jobs.failureCodes unknown', { jobs: { failureCodes: ['OOPS'] } }, /^Expected `jobs\.failureCodes` to be a non-empty array/],
    ['jobs.jitter 2', { jobs: { jitter: 2 } }, 'Expected `jobs.jitter` to be a number in [0, 1], got `2` (number)'],
    ['jobs.processingMs -5', { jobs: { processingMs: -5 } }, 'Expected `jobs.processingMs` to be a number >= 0, got `-5` (number)'],
    ['jobs.script not a function', { jobs: { script: 'fail' } }, 'Expected `jobs.script` to be a function, got `"fail"` (string)'],
    ['webhook.url ftp', { webhook: { url: 'ftp://x' } }, 'Expected `webhook.url` to be an http(s) URL, got `"ftp://x"` (string)'],
    ['webhook.secret empty', { webhook: { secret: '' } }, 'Expected `webhook.secret` to be a non-empty string, got `""` (string)'],
    ['webhook.maxAttempts 0', { webhook: { maxAttempts: 0 } }, 'Expected `webhook.maxAttempts` to be an integer >= 1, got `0` (number)'],
    ['faults.resetRate 2', { faults: { resetRate: 2 } }, 'Expected `faults.resetRate` to be a number in [0, 1], got `2` (number)'],
    ['faults.error5xxRate NaN', { faults: { error5xxRate: Number.NaN } }, 'Expected `faults.error5xxRate` to be a number in [0, 1], got `NaN` (number)'],
    ['faults.error5xxStatuses [418]', { faults: { error5xxStatuses: [418] } }, /^Expected `faults\.error5xxStatuses` to be a non-empty array of 500, 502, 503, 504/],
    ['faults typo', { faults: { resetrate: 0.1 } }, /^Unknown option `faults\.resetrate`/],
    ['maxBodyBytes 0', { maxBodyBytes: 0 }, 'Expected `maxBodyBytes` to be an integer >= 1, got `0` (number)'],
    ['clock {}', { clock: {} }, /^Expected `clock` to be an object with now\(\), setTimeout\(\) and clearTimeout\(\)/],
  ];
  it.each(cases)('%s', async (_label, options, message) => {
    const error = await errorOf(async () => servers.push(await startFakeModelBeam(options as FakeServerOptions)));
    expectMessage(error, message);
  });

  it('runtime controls check their arguments too', async () => {
    const server = await startFakeModelBeam();
    servers.push(server);
    expectMessage(await errorOf(() => server.setLimits({ minute: -1 })), 'Expected `limits.minute` to be an integer >= 0 or false, got `-1` (number)');
    expectMessage(await errorOf(() => server.setFaults({ slowRate: 3 })), 'Expected `faults.slowRate` to be a number in [0, 1], got `3` (number)');
    expectMessage(await errorOf(() => server.failNext('418' as never)), /^Expected `kind` to be one of 500, 502/);
    expectMessage(await errorOf(() => server.failNext('500', 0)), 'Expected `count` to be an integer >= 1, got `0` (number)');
    expectMessage(await errorOf(() => server.setBalance('acct-1', Number.NaN)), 'Expected `usd` to be a finite number, got `NaN` (number)');
    expectMessage(await errorOf(() => server.balance('acct-nope')), /^Unknown account `acct-nope`\. Known accounts: acct-1/);
    expectMessage(await errorOf(() => server.addKey('', 'acct-1')), 'Expected `key` to be a non-empty string, got `""` (string)');
    expectMessage(await errorOf(() => server.setWebhook('acct-1', 'javascript:alert(1)')), 'Expected `url` to be an http(s) URL or undefined, got `"javascript:alert(1)"` (string)');
  });
});

// ------------------------------------------------------------------ RedisStore

describe('new RedisStore(options)', () => {
  const cases: Case[] = [
    ['options null', null, /^Expected `options` to be an object/],
    ['a typo', { acount: 'a' }, /^Unknown option `acount`/],
    ['url, not redis', { url: 'redis://:pw-SECRET@127.0.0.1:6379' }, /^Unknown option `url`; .*; the connection goes in `redis` \(a redis:\/\/ URL or an ioredis client\): `new RedisStore\(\{ redis: 'redis:\/\/127\.0\.0\.1:6379' \}\)`$/],
    ['a URL instead of options, its password masked', 'redis://:pw-SECRET@127.0.0.1:6379', 'Expected `options` to be an object, got `"redis://***@127.0.0.1:6379"` (string)'],
    ['redis a number', { redis: 6379 }, /^Expected `redis` to be an ioredis client or a redis:\/\/ URL, got `6379` \(number\)/],
    ['redis a host name, not a URL', { redis: 'localhost:6379' }, /^Expected `redis` to be an ioredis client, a redis:\/\/ or rediss:\/\/ URL with a host, or a socket path; got a string of 14 characters with the scheme `localhost:`/],
    ['redis an http URL', { redis: 'http://127.0.0.1:6379' }, /^Expected `redis` to be .* with the scheme `http:`/],
    ['redis a word', { redis: 'redis' }, /^Expected `redis` to be .* got a string of 5 characters with no URL scheme/],
    ['redis a URL without a host', { redis: 'redis://' }, /^Expected `redis` to be .* with the scheme `redis:`/],
    ['keyPrefix a number', { keyPrefix: 5 }, /^Expected `keyPrefix` to be a string, got `5` \(number\)/],
    ['account empty', { account: '' }, /^Expected `account` to be a non-empty string without `\{` or `\}`/],
    ['account with a hash tag', { account: 'a{b}' }, /^Expected `account` to be a non-empty string without `\{` or `\}`/],
    ['onUnavailable "crash"', { onUnavailable: 'crash' }, /^Expected `onUnavailable` to be 'pause' or 'local-share'/],
    ['localShare without its mode', { localShare: 0.5 }, /only applies with `onUnavailable: 'local-share'`/],
    ['localShare 2', { onUnavailable: 'local-share', localShare: 2 }, /^Expected `localShare` to be a number in \(0, 1\]/],
    ['commandTimeoutMs 0', { commandTimeoutMs: 0 }, /^Expected `commandTimeoutMs` to be a number > 0, got `0` \(number\)/],
    ['connectTimeoutMs -1', { connectTimeoutMs: -1 }, /^Expected `connectTimeoutMs` to be a number > 0/],
    ['viewCacheMs NaN', { viewCacheMs: Number.NaN }, /^Expected `viewCacheMs` to be a number >= 0/],
    ['clockOverride "yes"', { clockOverride: 'yes' }, /^Expected `clockOverride` to be a boolean/],
  ];
  it.each(cases)('%s', async (_label, options, message) => {
    expectMessage(await errorOf(() => new RedisStore(options as RedisStoreOptions)), message);
  });

  it('a URL password never appears in its errors', async () => {
    const error = await errorOf(() => new RedisStore({ redis: 'redis://default:pw-9f8e7d@127.0.0.1:6379', account: '{x}' }));
    expect(error.message).not.toContain('pw-9f8e7d');
    const bad = await errorOf(() => new RedisStore({ redis: 'htp://default:pw-9f8e7d@127.0.0.1:6379' }));
    expect(bad.message).toMatch(/`redis`/);
    expect(bad.message).not.toContain('pw-9f8e7d');
  });

  it('accepts redis://, rediss:// and a socket path without connecting', async () => {
    for (const redis of ['redis://127.0.0.1:1', 'rediss://user:pw@example.invalid:6380/2', '/tmp/no-such-redis.sock']) {
      const store = new RedisStore({ redis, connectTimeoutMs: 50 });
      await store.close();
    }
  });
});

// ------------------------------------------------------------------ the scheduler, once more through the client

describe('RateLimitScheduler through the client', () => {
  it('a scheduler passed in is used as is (its options were checked when it was built)', () => {
    const scheduler = new RateLimitScheduler({ windows: { minuteMs: 1000 } });
    const client = new ModelBeamClient({ apiKey: 'k', scheduler });
    expect(client.scheduler).toBe(scheduler);
    void client.close();
    void scheduler.close();
  });
});

// ------------------------------------------------------------------ parseRateLimitHeaders: never throws, by design

describe('parseRateLimitHeaders(headers, options): bad options fall back to their defaults (it never throws, by contract)', () => {
  const now = Date.UTC(2025, 0, 1);
  const headers = { 'x-ratelimit-limit': '60', 'x-ratelimit-remaining': '7', 'retry-after': '5' };
  const expected = { minute: { limit: 60, remaining: 7 }, daily: {}, retryAfterMs: 5000, present: true };
  it.each<[string, unknown]>([
    ['options null', null],
    ['options a string', 'now'],
    ['now NaN', { now: Number.NaN }],
    ['now a string', { now: 'yesterday' }],
    ['now Infinity', { now: Infinity }],
    ['maxRetryAfterMs -1', { now, maxRetryAfterMs: -1 }],
    ['maxRetryAfterMs NaN', { now, maxRetryAfterMs: Number.NaN }],
    ['maxRetryAfterMs "1h"', { now, maxRetryAfterMs: '1h' }],
    ['a logger without methods (unused here: every value is valid)', { now, logger: {} }],
  ])('%s', (_label, options) => {
    expect(() => parseRateLimitHeaders(headers, options as never)).not.toThrow();
    expect(parseRateLimitHeaders(headers, options as never)).toEqual(expected);
  });

  it('a bound of 0 is honoured, not replaced: any wait is then "absurd" and dropped', () => {
    expect(parseRateLimitHeaders(headers, { now, maxRetryAfterMs: 0 }).retryAfterMs).toBeUndefined();
  });
});
