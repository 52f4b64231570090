/**
 * Secrets (issue 7): the API key and the webhook secret never appear in a
 * log line, an output file, an error message or stack, or an event.
 *
 * 1. A CLI batch (child process) with both set to distinctive random strings,
 *    `--log-level debug`, webhooks on, faults and job failures on the fake
 *    server, bad input lines, and a 401 at the end (the key revoked mid-run),
 *    then a resume that logs to a file. Every byte of stdout, stderr, the log
 *    file, the results and errors files, and the fake server's own debug log
 *    is searched.
 * 2. "The whole suite at debug", in practice: representative flows of every
 *    layer (scheduler, client, webhooks, batch runner, Redis store, fake
 *    server) with a pino logger at `trace` writing to a buffer, with no
 *    scrubbing in between (the CLI scrubs its output; the library must not
 *    need it): 401s, 422s (parameters and balance), 404s, 5xx retried to
 *    exhaustion, resets, lost answers, bad JSON, webhook rejections of every
 *    kind, a batch with faults, a Redis URL with a password, bad options.
 *    Every log line, every error (message, stack, `util.inspect` with hidden
 *    fields and causes, JSON), every event payload and the client's own
 *    inspection are searched, for the whole secret and for either half of it.
 */
import type { Txt2ImgParams } from '../src/modelbeam/endpoints.js';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { pino, type Logger as PinoLogger } from 'pino';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runBatch } from '../src/batch/run-batch.js';
import { EXIT } from '../src/cli/exit-codes.js';
import { RateLimitScheduler } from '../src/engine/scheduler.js';
import { createWebhookHandler, ModelBeamClient, verifyWebhook } from '../src/modelbeam/index.js';
import { RedisStore } from '../src/store/redis-store.js';
import { signWebhook, startFakeModelBeam, type FakeModelBeamServer } from '../src/testing/index.js';
import { freePort, jsonLines, runCli, startCli, terminalRecords, until } from './helpers/cli.js';

const KEY = `mbk_live_${randomBytes(18).toString('hex')}`;
const SECRET = `whsec_${randomBytes(18).toString('hex')}`;
const OTHER_KEY = `mbk_live_${randomBytes(18).toString('hex')}`;
const REDIS_PASSWORD = `redispw_${randomBytes(12).toString('hex')}`;

/** The secrets, and each half of each (a truncated secret is still a leak). */
const NEEDLES = [KEY, SECRET, OTHER_KEY, REDIS_PASSWORD].flatMap((s) => [s, s.slice(0, Math.ceil(s.length / 2)), s.slice(Math.floor(s.length / 2))]);

function leaks(haystack: string): string[] {
  return NEEDLES.filter((n) => haystack.includes(n));
}

/** A pino logger at `level` writing every line to `lines`. */
function bufferLogger(lines: string[], level = 'trace'): PinoLogger {
  return pino({ level, base: { pid: process.pid } }, { write: (line: string) => void lines.push(line) });
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rel-secrets-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('a CLI batch at debug level: webhooks, faults, failures, bad lines, a 401 at the end, then a resume', () => {
  let server: FakeModelBeamServer;
  const serverLog: string[] = [];

  beforeAll(async () => {
    server = await startFakeModelBeam({
      accounts: { [KEY]: 'acct-secrets' },
      logger: bufferLogger(serverLog),
      limits: { minute: { limit: 300, windowMs: 1000 } },
      jobs: { pendingMs: 5, processingMs: 40, failureRate: 0.1, failureCodes: ['WORKER_TIMEOUT', 'PROCESSING_ERROR'] },
      headers: { missingRate: 0.2 },
      faults: { error5xxRate: 0.05, resetRate: 0.03, acceptThenResetRate: 0.05, malformedJsonRate: 0.03, slowRate: 0.05, slowMs: 150 },
      webhook: { secret: SECRET, duplicateRate: 0.1 },
    });
  });
  afterAll(async () => {
    await server.close();
  });

  it('neither the key nor the webhook secret appears anywhere', async () => {
    const input = join(dir, 'cli-in.jsonl');
    const out = join(dir, 'cli-out.jsonl');
    const logFile = join(dir, 'cli-log.jsonl');
    const lines = Array.from({ length: 80 }, (_, i) => {
      if (i === 7) return '{"id": "broken", "prompt": ';
      if (i === 11) return JSON.stringify({ id: 'too-small', prompt: 'x', model: 'Flux1schnell', width: 1, height: 512, steps: 4 });
      const prompt = i % 25 === 3 ? `secrets ${i} FAIL:AGE_RESTRICTED` : `secrets item ${i}`;
      return JSON.stringify({ id: `s${i}`, prompt, model: 'Flux1schnell', width: 512, height: 512, steps: 4 });
    });
    writeFileSync(input, `${lines.join('\n')}\n`);
    const port = await freePort();
    const env = { MODELBEAM_API_KEY: KEY, MODELBEAM_WEBHOOK_SECRET: SECRET };
    const base = ['run', input, '--out', out, '--endpoint', 'txt2img', '--base-url', server.baseUrl, '--minute-ms', '1000', '--log-level', 'debug', '--progress', 'json', '--progress-interval', '0.1'];

    // First run: logs (JSON) to stderr, webhooks on, slow enough that the 401 lands mid-run.
    const first = startCli([...base, '--webhook-port', String(port), '--max-concurrent', '2'], env);
    await until(() => terminalRecords(out).size >= 25, 30_000);
    const before401 = server.stats().unauthorized401;
    server.revokeKey(KEY);
    const { code } = await first.exited;
    expect(code, first.stderr()).toBe(EXIT.AUTH_FAILED);
    expect(first.stdout()).toMatch(/HTTP 401/);
    expect(server.stats().unauthorized401 - before401).toBeGreaterThanOrEqual(1);
    // deliveries were signed with the secret and reached the CLI's receiver
    expect(server.webhookLog().some((a) => a.outcome === 'delivered' && a.url.includes(`:${port}`))).toBe(true);

    // The key is fixed; the resume logs to a file.
    server.addKey(KEY, 'acct-secrets');
    const second = await runCli([...base, '--webhook-port', String(port), '--log-file', logFile], env);
    expect([EXIT.OK, EXIT.ITEMS_FAILED, EXIT.STOPPED]).toContain(second.code);

    const texts: [string, string][] = [
      ['first run stdout', first.stdout()],
      ['first run stderr', first.stderr()],
      ['resume stdout', second.stdout],
      ['resume stderr', second.stderr],
      ['log file', readFileSync(logFile, 'utf8')],
      ['results file', readFileSync(out, 'utf8')],
      ['errors file', readFileSync(`${out}.errors.jsonl`, 'utf8')],
      ['fake server log', serverLog.join('')],
    ];
    // The debug level was in force, and the outputs are not empty.
    const debugLines = (t: string): number => t.split('\n').filter((l) => l.includes('"level":20')).length;
    expect(debugLines(first.stderr())).toBeGreaterThan(20);
    expect(debugLines(readFileSync(logFile, 'utf8'))).toBeGreaterThan(20);
    expect(jsonLines(`${out}.errors.jsonl`).length).toBe(2);
    for (const [name, text] of texts) {
      if (name !== 'resume stderr') expect(text.length, name).toBeGreaterThan(0); // (the resume logs to its file)
      expect(leaks(text), name).toEqual([]);
    }
    const scrubbed = texts.reduce((n, [, t]) => n + (t.match(/\[redacted\]/g)?.length ?? 0), 0);
    console.log(`secrets (CLI): ${texts.map(([n, t]) => `${n} ${t.length} B`).join(', ')}; "[redacted]" markers: ${scrubbed}; 401s: ${server.stats().unauthorized401}; injected: ${JSON.stringify(server.stats().injected)}`);
  }, 90_000);
});

describe('library flows of every layer with a pino logger at trace, no scrubbing', () => {
  const logLines: string[] = [];
  const errors: unknown[] = [];
  const events: unknown[] = [];
  const closers: (() => Promise<unknown>)[] = [];

  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close().catch(() => {});
  });

  async function capture<T>(p: Promise<T> | (() => Promise<T>)): Promise<T | undefined> {
    try {
      return await (typeof p === 'function' ? p() : p);
    } catch (error) {
      errors.push(error);
      return undefined;
    }
  }

  function syncCapture(fn: () => unknown): void {
    try {
      fn();
    } catch (error) {
      errors.push(error);
    }
  }

  function listenAll(client: ModelBeamClient): void {
    const names = ['submitted', 'completed', 'jobFailed', 'resubmitted', 'outcomeUnknown', 'webhookAccepted', 'webhookDuplicate', 'webhookRejected', 'webhookUnknownJob', 'webhookFallback', 'balanceExhausted', 'submissionsResumed', 'polled', 'pollFailed', 'statusChanged'] as const;
    for (const name of names) client.on(name, (e: unknown) => void events.push({ name, e }));
    const schedulerNames = ['queued', 'dispatched', 'succeeded', 'retrying', 'outcomeUnknown', 'rateLimited', 'budgetUpdated', 'dailyQuotaExhausted', 'paused', 'resumed', 'failed', 'idle'] as const;
    for (const name of schedulerNames) client.scheduler.on(name, (e: unknown) => void events.push({ name, e }));
  }

  it('client, scheduler, webhooks, batch, store and fake server: nothing logged, thrown or emitted contains a secret', async () => {
    const logger = bufferLogger(logLines);
    const server = await startFakeModelBeam({
      accounts: { [KEY]: 'acct-lib', [OTHER_KEY]: 'acct-poor' },
      logger: logger.child({ side: 'fake-server' }),
      limits: { minute: { limit: 400, windowMs: 1000 } },
      jobs: { pendingMs: 5, processingMs: 30 },
      webhook: { secret: SECRET },
      strictModels: true,
    });
    closers.push(() => server.close());
    server.setBalance('acct-poor', 0);
    const make = (apiKey: string, extra: Partial<ConstructorParameters<typeof ModelBeamClient>[0]> = {}): ModelBeamClient => {
      const client = new ModelBeamClient({
        apiKey,
        baseUrl: server.baseUrl,
        logger,
        scheduler: { windows: { minuteMs: 1000 }, retry: { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 20 } },
        polling: { minIntervalMs: 5, maxIntervalMs: 200, initialEstimateMs: 40 },
        jobRetryDelayMs: 0,
        webhook: { url: 'http://127.0.0.1:9/unused', secret: SECRET, maxBodyBytes: 2048 },
        ...extra,
      });
      listenAll(client);
      closers.push(() => client.close());
      return client;
    };
    const img = (prompt: string, over: Record<string, unknown> = {}): Txt2ImgParams & Record<string, unknown> => ({ prompt, model: 'Flux1schnell', width: 512, height: 512, steps: 4, ...over });

    // ---- the client: success through webhooks, then every error the API gives
    const client = make(KEY);
    const wh = await client.startWebhookServer({ port: 0 });
    client.setWebhookUrl(wh.url);
    expect((await client.generate('txt2img', img('a fine job'))).status).toBe('done');
    await capture(client.generate('txt2img', img('FAIL:AGE_RESTRICTED please')));
    await capture(client.generate('txt2img', img('unknown model', { model: 'NoSuchModel' }))); // local check: ParamsValidationError
    await capture(make(KEY, { validate: false }).submit('txt2img', img('server 422', { model: 'NoSuchModel' }))); // the server's 422
    await capture(client.wait('00000000-0000-0000-0000-000000000000')); // 404s
    await capture(client.submit('txt2nothing' as never, { prompt: 'x' } as never)); // 404 route
    server.failNext('503', 5);
    await capture(client.balance()); // 503 until retries run out
    server.failNext('accept-then-reset', 1, (r) => r.submit);
    await capture(client.submit('txt2img', img('lost answer'))); // OutcomeUnknownError
    server.failNext('malformed-json', 1, (r) => r.submit);
    await capture(client.submit('txt2img', img('cut body'))); // OutcomeUnknownError (unreadable)
    server.failNext('reset', 2);
    await capture(client.balance()); // resets, retried
    await capture(client.download('http://127.0.0.1:9/nothing.png', join(dir, 'nothing.png')));
    await capture(client.download(`${server.url}/storage/00000000-0000-0000-0000-000000000000.png`, join(dir, 'gone.png')));
    const poor = make(OTHER_KEY, { onInsufficientBalance: 'reject' });
    await capture(poor.submit('txt2img', img('no money'))); // 422 balance
    await capture(poor.submit('txt2img', img('still no money')));
    await capture(make(`${KEY}x`).submit('txt2img', img('wrong key'))); // 401
    await capture(make(`${KEY}x`).balance());

    // ---- webhook rejections, through the client's receiver
    const ts = Math.floor(Date.now() / 1000);
    const body = JSON.stringify({ event: 'job.completed', delivery_id: 'd-lib-1', data: { job_request_id: 'not-ours', status: 'done' } });
    const deliveries: [string, Record<string, string>][] = [
      [body, { 'x-modelbeam-signature': signWebhook('whsec_wrong', ts, body), 'x-modelbeam-timestamp': String(ts) }],
      [body, { 'x-modelbeam-signature': signWebhook(SECRET, ts - 900, body), 'x-modelbeam-timestamp': String(ts - 900) }],
      [body, { 'x-modelbeam-signature': signWebhook(SECRET, ts + 900, body), 'x-modelbeam-timestamp': String(ts + 900) }],
      ['not json', { 'x-modelbeam-signature': signWebhook(SECRET, ts, 'not json'), 'x-modelbeam-timestamp': String(ts) }],
      ['x'.repeat(5000), { 'x-modelbeam-signature': signWebhook(SECRET, ts, 'x'.repeat(5000)), 'x-modelbeam-timestamp': String(ts) }],
      [body, { 'x-modelbeam-signature': 'sha256=zz', 'x-modelbeam-timestamp': String(ts) }],
      [body, { 'x-modelbeam-signature': signWebhook(SECRET, ts, body), 'x-modelbeam-timestamp': String(ts) }], // unknown job: 200
      [body, { 'x-modelbeam-signature': signWebhook(SECRET, ts, body), 'x-modelbeam-timestamp': String(ts) }], // duplicate: 200
    ];
    for (const [raw, headers] of deliveries) {
      const res = await request(wh.url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: raw });
      await res.body.text();
    }
    await until(() => client.stats().webhooksRejected >= 6 && client.stats().webhooksDuplicate >= 1, 10_000);
    // verifyWebhook and createWebhookHandler directly (errors thrown to the caller)
    syncCapture(() => verifyWebhook(body, { 'x-modelbeam-signature': signWebhook('whsec_wrong', ts, body), 'x-modelbeam-timestamp': String(ts) }, { secret: SECRET }));
    syncCapture(() => verifyWebhook(body, { 'x-modelbeam-signature': signWebhook(SECRET, ts, body), 'x-modelbeam-timestamp': String(ts) }, { secret: [SECRET, KEY], toleranceSec: 1, now: (ts + 60) * 1000 }));
    syncCapture(() => createWebhookHandler({ secret: SECRET, toleranceSec: -1, onEvent: () => {} }));
    syncCapture(() => createWebhookHandler({ secret: [SECRET, 5 as never], onEvent: () => {} }));

    // ---- bad options that carry a secret
    syncCapture(() => new ModelBeamClient({ apiKey: `${KEY}\n` }));
    syncCapture(() => new ModelBeamClient({ apiKey: `${KEY} ${SECRET}` }));
    syncCapture(() => new ModelBeamClient({ apiKey: KEY, webhook: { url: 'ftp://x', secret: SECRET } }));
    syncCapture(() => new ModelBeamClient({ apiKey: KEY, webhook: { url: 'https://x.example/h', secret: 42 as never } }));
    syncCapture(() => new ModelBeamClient({ apiKey: KEY, baseUrl: `https://user:${KEY}@exa mple` }));
    syncCapture(() => new ModelBeamClient({ apiKey: KEY, apiKeys: [KEY] } as never));
    syncCapture(() => new ModelBeamClient({ apiKey: KEY, webhook: { url: `https://hook:${SECRET}@exa mple/h`, secret: SECRET } }));
    syncCapture(() => client.setWebhookUrl(`https://hook:${SECRET}@exa mple/h`));

    // ---- the batch runner with faults, on the same logger
    server.setFaults({ error5xxRate: 0.1, resetRate: 0.05, acceptThenResetRate: 0.1, malformedJsonRate: 0.05 });
    const batchClient = make(KEY);
    const items = Array.from({ length: 30 }, (_, i) => ({ id: `b${i}`, prompt: i === 4 ? 'FAIL:INVALID_INPUT b' : `batch ${i}`, model: 'Flux1schnell', width: 512, height: 512, steps: 4 }));
    const out = join(dir, 'lib-out.jsonl');
    const summary = await runBatch(batchClient, [...items, { id: 'bad', prompt: 'x', width: 3 }], { out, endpoint: 'txt2img', logger }).summary;
    expect(summary.run.invalid).toBe(1);
    // a key revoked mid-batch
    server.setFaults({ error5xxRate: 0, resetRate: 0, acceptThenResetRate: 0, malformedJsonRate: 0 });
    const revoked = make(KEY);
    const more = Array.from({ length: 40 }, (_, i) => ({ id: `r${i}`, prompt: `revoked ${i}`, model: 'Flux1schnell', width: 512, height: 512, steps: 4 }));
    const batch = runBatch(revoked, more, { out: join(dir, 'lib-revoked.jsonl'), endpoint: 'txt2img', logger, maxInFlight: 4 });
    setTimeout(() => server.revokeKey(KEY), 30);
    const stopped = await batch.summary;
    expect(stopped.stopped?.reason).toBe('authentication');
    server.addKey(KEY, 'acct-lib');

    // ---- a Redis store whose URL carries a password (the local Redis has none: AUTH fails)
    const store = new RedisStore({ redis: `redis://default:${REDIS_PASSWORD}@127.0.0.1:6379/0`, logger, connectTimeoutMs: 500, commandTimeoutMs: 500 });
    const redisScheduler = new RateLimitScheduler({ store, logger });
    await capture(redisScheduler.ready());
    await capture(redisScheduler.schedule(() => ({ status: 200, headers: {} })));
    await redisScheduler.close({ drain: false }).catch(() => {});
    await capture(Promise.resolve(store.close()));
    syncCapture(() => new RedisStore({ redis: `redis://default:${REDIS_PASSWORD}@127.0.0.1:6379`, account: '{x}' }));
    syncCapture(() => new RedisStore({ redis: `redis://default:${REDIS_PASSWORD}@127.0.0.1:6379`, commandTimeoutMs: -1 }));

    // ---- search everything
    const inspected = (v: unknown): string => inspect(v, { depth: 12, showHidden: true, getters: true, breakLength: Infinity });
    const json = (v: unknown): string => {
      try {
        return JSON.stringify(v) ?? '';
      } catch {
        return '';
      }
    };
    expect(errors.length).toBeGreaterThan(20);
    expect(logLines.filter((l) => l.includes('"level":20')).length).toBeGreaterThan(50);
    for (const error of errors) {
      const e = error as Error;
      for (const text of [String(e?.message), String(e?.stack), inspected(error), json(error)]) expect(leaks(text), `${e?.name}: ${e?.message}`).toEqual([]);
    }
    expect(leaks(logLines.join('')), 'log lines').toEqual([]);
    expect(leaks(inspected(events)), 'event payloads').toEqual([]);
    expect(leaks(json(events)), 'event payloads (JSON)').toEqual([]);
    for (const c of [client, poor, batchClient, revoked]) {
      expect(leaks(inspected(c)), 'util.inspect(client)').toEqual([]);
      expect(leaks(json(c.stats())), 'client.stats()').toEqual([]);
    }
    expect(leaks(readFileSync(out, 'utf8') + readFileSync(`${out}.errors.jsonl`, 'utf8'))).toEqual([]);
    const names = new Set(errors.map((e) => (e as Error)?.name));
    console.log(`secrets (library): ${logLines.length} log lines (${logLines.filter((l) => l.includes('"level":20')).length} debug), ${errors.length} errors (${[...names].join(', ')}), ${events.length} events searched`);
  }, 60_000);
});
