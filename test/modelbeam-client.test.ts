import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  AuthenticationError,
  InsufficientBalanceError,
  JobFailedError,
  NotFoundError,
  OutcomeUnknownError,
  ParamsValidationError,
  QueueClosedError,
  RetriesExhaustedError,
  ValidationError,
} from '../src/errors/index.js';
import { RateLimitScheduler } from '../src/engine/scheduler.js';
import { ModelBeamClient, type ModelBeamClientEvents } from '../src/modelbeam/index.js';
import { resolveClientOptions } from '../src/modelbeam/options.js';
import { ManualClock, startFakeModelBeam } from '../src/testing/index.js';
import { advanceWhileQuiet, closeAll, FAST_POLLING, harness, img, json, serve, stubApi, until, type Harness } from './modelbeam-harness.js';

/**
 * Drives a fake clock shared by a client and the fake server over real sockets: fake time moves by 1 ms only
 * when the client has no request on the wire (real I/O is awaited, never timed), until `done()`.
 */
const PNG = Buffer.from('89504e470d0a1a0a0000000d4948445200000001', 'hex');

function record<K extends keyof ModelBeamClientEvents>(client: ModelBeamClient, name: K): ModelBeamClientEvents[K][] {
  const seen: ModelBeamClientEvents[K][] = [];
  client.on(name, (e) => seen.push(e));
  return seen;
}

describe('each endpoint, end to end over HTTP', () => {
  let h: Harness;
  let dir: string;
  beforeAll(async () => {
    h = await harness();
    dir = await mkdtemp(join(tmpdir(), 'mb-client-'));
  });
  afterAll(async () => {
    await closeAll();
    await rm(dir, { recursive: true, force: true });
  });

  it.each([
    ['txt2img', img(), /\.png$/, undefined],
    ['img2img', { image: PNG, prompt: 'p', model: 'Flux_2_Klein_4B_BF16', steps: 4, seed: 1 }, /\.png$/, undefined],
    ['txt2embedding', { input: ['a', 'b'], model: 'Bge_M3_FP16' }, undefined, 'embeddings'],
    ['txt2audio', { text: 'hello', model: 'Kokoro', lang: 'en-us', speed: 1, format: 'wav', sample_rate: 44100 }, /\.wav$/, undefined],
    ['transcribe', { include_ts: true, model: 'WhisperLargeV3', source_url: 'https://x.com/i/spaces/1' }, undefined, 'text'],
    ['img2txt', { image: PNG, model: 'Nanonets_Ocr_S_F16', format: 'text' }, undefined, 'text'],
    ['txt2video', { prompt: 'waves', model: 'Ltxv_13B_0_9_8_Distilled_FP8', width: 512, height: 512, frames: 25 }, /\.mp4$/, undefined],
    ['img2video', { prompt: 'waves', model: 'Ltxv_13B_0_9_8_Distilled_FP8', first_frame_image: PNG }, /\.mp4$/, undefined],
    ['txt2music', { caption: 'calm piano', model: 'AceStep_1_5_Turbo', duration: 30, lyrics: '[Instrumental]' }, /\.flac$/, undefined],
  ] as const)('%s: generate() resolves with the result', async (endpoint, params, urlPattern, resultKind) => {
    const result = await h.client.generate(endpoint, params as never);
    expect(result).toMatchObject({ status: 'done', attempts: 1, resubmissions: 0, possibleDuplicate: false });
    if (urlPattern) expect(result.resultUrl).toMatch(urlPattern);
    if (resultKind === 'embeddings') expect((result.result as number[][]).map((v) => v.length)).toEqual([8, 8]);
    if (resultKind === 'text') expect(result.result).toMatch(/^(\[00:00|Fake OCR)/);
    const job = h.server.jobs.get(result.requestId);
    expect(job?.endpoint).toBe(endpoint);
  });

  it('typed methods submit; files go multipart from a Buffer, a path or a stream', async () => {
    const path = join(dir, 'in.png');
    await writeFile(path, PNG);
    const ids = await Promise.all([
      h.client.txt2img({ prompt: 'fox', model: 'Flux1schnell', width: 512, height: 512, steps: 4 }),
      h.client.img2img({ image: PNG, prompt: 'p', model: 'Flux_2_Klein_4B_BF16', steps: 4, seed: 1 }),
      h.client.img2img({ image: path, prompt: 'p', model: 'Flux_2_Klein_4B_BF16', steps: 4, seed: 1 }),
      h.client.img2txt({ image: Readable.from([PNG]), model: 'Nanonets_Ocr_S_F16', return_result_in_response: false }),
      h.client.txt2embedding({ input: 'x', model: 'Bge_M3_FP16' }),
      h.client.txt2audio({ text: 't', model: 'Kokoro', lang: 'en-us', speed: 1, format: 'mp3', sample_rate: 44100 }),
      h.client.transcribe({ include_ts: false, model: 'WhisperLargeV3', source_file: { data: PNG, filename: 'a.wav' } }),
      h.client.txt2video({ prompt: 'p', model: 'Ltxv_13B_0_9_8_Distilled_FP8' }),
      h.client.img2video({ prompt: 'p', model: 'Ltxv_13B_0_9_8_Distilled_FP8', first_frame_image: PNG }),
      h.client.txt2music({ model: 'AceStep_1_5_Turbo', caption: 'lofi' }),
    ]);
    for (const { requestId } of ids) expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
    const params = (i: number): Readonly<Record<string, unknown>> => h.server.jobs.get(ids[i]?.requestId ?? '')?.params ?? {};
    expect(params(1)['image']).toEqual({ filename: 'image.png', size: PNG.length, type: 'image/png' });
    expect(params(2)['image']).toEqual({ filename: 'in.png', size: PNG.length, type: 'image/png' });
    expect(params(3)['image']).toMatchObject({ size: PNG.length });
    expect(params(3)['return_result_in_response']).toBe('0');
    expect(params(6)['source_file']).toMatchObject({ filename: 'a.wav' });
    expect(params(0)['width']).toBe(512); // JSON keeps numbers
    await Promise.all(ids.map(({ requestId }) => h.client.wait(requestId)));
  });

  it('balance, price and models', async () => {
    expect(await h.client.balance()).toBeGreaterThan(0);
    expect(await h.client.price('txt2img', img({ width: 768, height: 768 }))).toBe(0.00187);
    const all = await h.client.models();
    expect(all.length).toBeGreaterThan(5);
    const flux = all.find((m) => m.slug === 'Flux1schnell');
    expect(flux).toMatchObject({ inferenceTypes: ['txt2img'], limits: { resolution_step: 128, max_steps: 10 }, features: { supports_guidance: false } });
    const tts = await h.client.models({ inferenceTypes: ['txt2audio', 'txt2music'] });
    expect(tts.map((m) => m.slug).sort()).toEqual(['AceStep_1_5_Turbo', 'Kokoro']);
  });

  it('downloads a result to a path (whole or not at all) and to a stream', async () => {
    const result = await h.client.generate('txt2img', img({ prompt: 'download me' }));
    const path = join(dir, 'out.png');
    await h.client.download(result, path);
    expect((await readFile(path)).subarray(0, 4)).toEqual(PNG.subarray(0, 4));
    const sink = new PassThrough();
    const chunks: Buffer[] = [];
    sink.on('data', (c: Buffer) => chunks.push(c));
    await h.client.download(result.resultUrl as string, sink);
    expect(Buffer.concat(chunks).subarray(0, 4)).toEqual(PNG.subarray(0, 4));
    const gone = `${h.server.url}/storage/00000000-0000-0000-0000-000000000000.png`;
    await expect(h.client.download(gone, join(dir, 'gone.png'))).rejects.toThrow(/may have expired/);
    await expect(readFile(join(dir, 'gone.png'))).rejects.toThrow(/ENOENT/);
    await expect(h.client.download({}, path)).rejects.toThrow(/resultUrl/);
  });
});

describe('HTTP errors surface with what the server said', () => {
  afterEach(closeAll);
  it('401 stops everything; the key never appears in errors or logs', async () => {
    const lines: string[] = [];
    const logger = {
      debug: (o: object, m?: string) => lines.push(JSON.stringify(o) + (m ?? '')),
      info: (o: object, m?: string) => lines.push(JSON.stringify(o) + (m ?? '')),
      warn: (o: object, m?: string) => lines.push(JSON.stringify(o) + (m ?? '')),
      error: (o: object, m?: string) => lines.push(JSON.stringify(o) + (m ?? '')),
      child() {
        return logger;
      },
    };
    const h = await harness();
    const client = h.make({ apiKey: 'sk-live-SECRET-123', logger });
    const error = await client.submit('txt2img', img()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthenticationError);
    expect(String((error as Error).message)).not.toContain('SECRET');
    expect(JSON.stringify(error)).not.toContain('SECRET');
    await expect(client.balance()).rejects.toBeInstanceOf(AuthenticationError);
    expect(h.server.stats().unauthorized401).toBe(1); // the second call was never sent
    expect(lines.join('\n')).not.toContain('SECRET');
    expect(lines.length).toBeGreaterThan(0);
  });

  it('404: unknown endpoint at once; unknown request id after a few tries', async () => {
    const h = await harness();
    // Validated (the default), an endpoint the docs do not name is refused before anything is sent.
    const local = await h.client.submit('txt2imgg' as never, { model: 'x' } as never).catch((e: unknown) => e);
    expect(local).toBeInstanceOf(ParamsValidationError);
    expect((local as ParamsValidationError).fieldErrors['endpoint']?.[0]).toMatch(/Unknown endpoint "txt2imgg" \(did you mean "txt2img"\?\)/);
    expect(h.server.stats().byRoute['POST /txt2imgg']).toBeUndefined();
    // Unvalidated, the server's 404 fails it at once.
    const raw = h.make({ validate: false });
    const notFound = await raw.submit('txt2nothing' as never, { model: 'x' } as never).catch((e: unknown) => e);
    expect(notFound).toBeInstanceOf(NotFoundError);
    // The error names what was asked (a wrong base URL shows there), never the key.
    expect((notFound as NotFoundError).request).toBe(`POST ${h.server.baseUrl.replace(/\/+$/, '')}/txt2nothing`);
    expect((notFound as Error).message).toContain(`(POST ${h.server.baseUrl.replace(/\/+$/, '')}/txt2nothing)`);
    expect((notFound as Error).message).not.toContain('test-key');
    const failed = record(h.client, 'pollFailed');
    const error = await h.client.wait('00000000-0000-0000-0000-000000000000').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotFoundError);
    expect((error as NotFoundError).requestId).toBe('00000000-0000-0000-0000-000000000000');
    expect(failed.at(-1)?.retryInMs).toBeUndefined();
    expect(h.server.stats().byRoute['GET /request-status']).toBe(3);
  });

  it('422 from the server carries the field errors', async () => {
    const h = await harness({ strictModels: true });
    const error = await h.client.generate('txt2img', img({ model: 'NoSuchModel' })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).fieldErrors).toEqual({ model: ['The selected model is invalid.'] });
    expect((error as ValidationError).status).toBe(422);
    const raw = h.make({ validate: false });
    const e2 = (await raw.submit('txt2img', img({ width: 100 })).catch((e: unknown) => e)) as ValidationError;
    expect(e2.fieldErrors).toEqual({ width: ['The width field must be between 256 and 2048.'] });
    expect(e2).not.toBeInstanceOf(ParamsValidationError);
  });

  it('bad parameters are refused locally: no request, no quota, no charge', async () => {
    const h = await harness();
    const error = (await h.client.generate('txt2img', img({ width: 100, steps: 99 })).catch((e: unknown) => e)) as ParamsValidationError;
    expect(error).toBeInstanceOf(ParamsValidationError);
    expect(error).toBeInstanceOf(ValidationError);
    expect(error.local).toBe(true);
    expect(Object.keys(error.fieldErrors)).toEqual(['width', 'steps']);
    expect(error.message).toMatch(/nothing was sent/);
    expect(h.server.stats().requests).toBe(0);
  });

  it('sends Authorization and Accept on every request', async () => {
    const stub = await stubApi((req, res) => {
      if (req.url.endsWith('/balance')) json(res, 200, { data: { balance: 3.5 } });
      else if (req.method === 'POST') json(res, 200, { data: { request_id: 'r-1' } });
      else json(res, 200, { data: { status: 'done', result_url: 'https://s.example/r-1.png' } });
    });
    const client = new ModelBeamClient({ apiKey: 'k-1', baseUrl: stub.baseUrl, polling: { minIntervalMs: 1, initialEstimateMs: 1 } });
    await client.balance();
    await client.generate('txt2img', img());
    await client.close();
    expect(stub.requests.length).toBe(3);
    for (const req of stub.requests) {
      expect(req.headers.authorization).toBe('Bearer k-1');
      expect(req.headers.accept).toBe('application/json');
    }
    expect(stub.requests[1]?.headers['content-type']).toBe('application/json');
  });
});

describe('job error codes and their retry rules', () => {
  afterEach(closeAll);
  it.each([
    ['WORKER_TIMEOUT', true, 3],
    ['PROCESSING_ERROR', true, 2],
    ['UNKNOWN_ERROR', true, 2],
    ['AGE_RESTRICTED', false, 1],
    ['CONTEXT_LENGTH_EXCEEDED', false, 1],
    ['INVALID_INPUT', false, 1],
  ])('FAIL:%s → retryable %s, %d billed submission(s)', async (code, retryable, attempts) => {
    const h = await harness();
    const resubmitted = record(h.client, 'resubmitted');
    const failed = record(h.client, 'jobFailed');
    const error = (await h.client.generate('txt2img', img({ prompt: `FAIL:${code}` })).catch((e: unknown) => e)) as JobFailedError;
    expect(error).toBeInstanceOf(JobFailedError);
    expect(error.code).toBe('JOB_FAILED');
    expect(error).toMatchObject({ jobErrorCode: code, retryable, attempts, resubmissions: attempts - 1, possibleDuplicate: false });
    expect(h.server.jobs.get(error.requestId)?.outcome).toMatchObject({ outcome: 'error', code });
    expect(h.server.stats().jobs.created).toBe(attempts);
    expect(resubmitted.map((e) => [e.reason, e.code])).toEqual(Array(attempts - 1).fill(['job-failed', code]));
    expect(failed).toHaveLength(attempts);
    expect(h.client.stats()).toMatchObject({ resubmissions: attempts - 1, failed: attempts, completed: 0, inFlightJobs: 0 });
  });

  it('a job that fails once with WORKER_TIMEOUT succeeds on its resubmission', async () => {
    const h = await harness();
    const result = await h.client.generate('txt2img', img({ prompt: 'FAIL_ONCE:WORKER_TIMEOUT sunrise' }));
    expect(result).toMatchObject({ status: 'done', attempts: 2, resubmissions: 1, possibleDuplicate: false });
  });

  it('maxResubmissions caps billed resubmissions; jobRetries can switch a code off', async () => {
    const h = await harness({}, { maxResubmissions: 1 });
    const e1 = (await h.client.generate('txt2img', img({ prompt: 'FAIL:WORKER_TIMEOUT a' })).catch((e: unknown) => e)) as JobFailedError;
    expect(e1.attempts).toBe(2);
    const strict = h.make({ jobRetries: { PROCESSING_ERROR: 0 } });
    const e2 = (await strict.generate('txt2img', img({ prompt: 'FAIL:PROCESSING_ERROR b' })).catch((e: unknown) => e)) as JobFailedError;
    expect(e2.attempts).toBe(1);
  });

  it('wait() rejects with the code; a failed job without a code is UNKNOWN_ERROR', async () => {
    const h = await harness({ jobs: { errorFieldsInStatus: false } });
    const { requestId } = await h.client.submit('txt2img', img({ prompt: 'FAIL:AGE_RESTRICTED c' }));
    const error = (await h.client.wait(requestId).catch((e: unknown) => e)) as JobFailedError;
    expect(error).toMatchObject({ requestId, jobErrorCode: 'UNKNOWN_ERROR', retryable: true });
    // The outcome is remembered: a later wait() settles without polling again.
    const polls = h.client.stats().polls;
    await expect(h.client.wait(requestId)).rejects.toBeInstanceOf(JobFailedError);
    expect(h.client.stats().polls).toBe(polls);
  });
});

describe('lost responses and transient failures', () => {
  afterEach(closeAll);
  it('a submission accepted but whose response was lost is "outcome unknown", never "failed"', async () => {
    const h = await harness();
    const events = record(h.client, 'outcomeUnknown');
    h.server.failNext('accept-then-reset', 1, (r) => r.submit);
    const error = await h.client.generate('txt2img', img()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OutcomeUnknownError);
    expect((error as OutcomeUnknownError).code).toBe('OUTCOME_UNKNOWN');
    expect(h.server.stats().jobs.created).toBe(1); // the job does exist
    expect(events).toMatchObject([{ endpoint: 'txt2img', attempt: 1, resubmitting: false }]);
    expect(h.client.stats()).toMatchObject({ outcomeUnknown: 1, possibleDuplicates: 0, failed: 0 });
  });

  it('with resubmitOnUnknownOutcome it submits again and marks the result a possible duplicate', async () => {
    const h = await harness({}, { resubmitOnUnknownOutcome: true });
    const resubmitted = record(h.client, 'resubmitted');
    h.server.failNext('accept-then-reset', 1, (r) => r.submit);
    const result = await h.client.generate('txt2img', img());
    expect(result).toMatchObject({ status: 'done', attempts: 2, resubmissions: 1, possibleDuplicate: true });
    expect(h.server.stats().jobs.created).toBe(2);
    expect(resubmitted).toMatchObject([{ reason: 'outcome-unknown', attempt: 2 }]);
    expect(h.client.stats()).toMatchObject({ outcomeUnknown: 1, possibleDuplicates: 1, resubmissions: 1 });
  });

  it('a gateway 504 on a submission is outcome unknown; a 502 (nothing reached the app) is resent', async () => {
    const h = await harness();
    h.server.failNext('504', 1, (r) => r.submit);
    await expect(h.client.submit('txt2img', img())).rejects.toBeInstanceOf(OutcomeUnknownError);
    h.server.failNext('502', 1, (r) => r.submit);
    const result = await h.client.generate('txt2img', img({ prompt: 'after 502' }));
    expect(result.attempts).toBe(1);
    expect(h.server.stats().byRoute['POST /txt2img']).toBe(3);
  });

  it('outcome unknown is marked explicitly (outcomeUnknown: true) with the real cause, not a borrowed network code', async () => {
    const h = await harness();
    h.server.failNext('504', 1, (r) => r.submit);
    const gateway = (await h.client.submit('txt2img', img()).catch((e: unknown) => e)) as OutcomeUnknownError;
    expect(gateway).toBeInstanceOf(OutcomeUnknownError);
    const g = gateway.cause as Error & { outcomeUnknown?: unknown; code?: unknown; cause?: unknown };
    expect(g).toMatchObject({ name: 'GatewayTimeoutError', outcomeUnknown: true });
    expect(g.code).toBeUndefined();
    expect(g.cause).toMatchObject({ status: 504 });
    h.server.failNext('malformed-json', 1, (r) => r.submit);
    const cut = (await h.client.submit('txt2img', img({ prompt: 'cut' })).catch((e: unknown) => e)) as OutcomeUnknownError;
    expect(cut).toBeInstanceOf(OutcomeUnknownError);
    const u = cut.cause as Error & { outcomeUnknown?: unknown; code?: unknown; cause?: unknown };
    expect(u).toMatchObject({ name: 'UnreadableResponseError', outcomeUnknown: true });
    expect(u.code).toBeUndefined();
    expect(u.cause).toBeInstanceOf(SyntaxError);
    expect(h.server.stats().jobs.created).toBe(1); // the 504 created none here, the cut body's did: both "unknown"
    expect(h.client.stats().outcomeUnknown).toBe(2);
  });

  it('a known job is polled through resets, 5xx and truncated bodies', async () => {
    const h = await harness({}, { scheduler: { retry: { baseDelayMs: 1, maxAttempts: 2 } } });
    const polls = (r: { route: string }): boolean => r.route === 'GET /request-status';
    h.server.failNext('reset', 2, polls);
    h.server.failNext('500', 2, polls);
    h.server.failNext('503', 2, polls);
    h.server.failNext('malformed-json', 2, polls);
    const result = await h.client.generate('txt2img', img());
    expect(result.status).toBe('done');
    expect(h.client.stats().pollErrors).toBeGreaterThan(0);
  });

  it('rememberFinishedJobs bounds the finished jobs kept: a late wait() is answered from memory, or asks the server again', async () => {
    const h = await harness();
    const keep = h.make({ rememberFinishedJobs: 1 });
    const none = h.make({ rememberFinishedJobs: 0 });
    for (const client of [keep, none]) {
      const a = await client.generate('txt2img', img());
      const b = await client.generate('txt2img', img());
      const before = client.stats().requests.polls;
      // b is the newest: remembered by `keep`, not by `none`
      expect(await client.wait(b.requestId)).toMatchObject({ requestId: b.requestId, status: 'done' });
      expect(client.stats().requests.polls - before).toBe(client === keep ? 0 : 1);
      // a was pushed out by b in both
      expect(await client.wait(a.requestId)).toMatchObject({ requestId: a.requestId, status: 'done' });
      expect(client.stats().requests.polls - before).toBe(client === keep ? 1 : 2);
    }
    expect(() => h.make({ rememberFinishedJobs: -1 })).toThrow(/rememberFinishedJobs/);
  });

  it('unknown status values are not terminal; progress strings and missing envelopes are read', async () => {
    let polls = 0;
    const statuses = [{ status: 'queued_on_gpu' }, { status: 'queued_on_gpu' }, { status: 'in_progress', progress: '50' }, { status: 'done', result: 'hello' }];
    const stub = await stubApi((req, res) => {
      if (req.method === 'POST') json(res, 200, { data: { request_id: 'r-2' } });
      else json(res, 200, statuses[Math.min(polls++, statuses.length - 1)]);
    });
    const debug: string[] = [];
    const warn: [object, string][] = [];
    const logger = {
      debug: (_o: object, m?: string) => debug.push(m ?? ''),
      info() {},
      warn: (o: object, m?: string) => warn.push([o, m ?? '']),
      error() {},
      child: () => logger,
    };
    const client = new ModelBeamClient({ apiKey: 'k', baseUrl: stub.baseUrl, logger, polling: { minIntervalMs: 1, initialEstimateMs: 1, maxIntervalMs: 20 } });
    const changes = record(client, 'statusChanged');
    const result = await client.generate('txt2img', img());
    await client.close();
    expect(result).toMatchObject({ requestId: 'r-2', status: 'done', result: 'hello' });
    expect(changes.map((c) => [c.status, c.progress])).toEqual([
      ['queued_on_gpu', undefined],
      ['in_progress', 50],
    ]);
    // The first sighting is a warning, the repeat is debug.
    expect(warn).toEqual([[{ requestId: 'r-2', status: 'queued_on_gpu' }, 'unrecognised job status: treated as not finished']]);
    expect(debug.filter((m) => m === 'unrecognised job status: treated as not finished')).toHaveLength(1);
  });

  it('unknown status values: each is warned about once, up to 32 distinct values; the rest go to debug', async () => {
    // 40 distinct values, each sent twice in a row, then done.
    const statuses = Array.from({ length: 40 }, (_, i) => `odd_status_${i}`).flatMap((s) => [s, s]);
    let polls = 0;
    const stub = await stubApi((req, res) => {
      if (req.method === 'POST') json(res, 200, { data: { request_id: 'r-odd' } });
      else json(res, 200, polls < statuses.length ? { status: statuses[polls++] } : { status: 'done', result: 'ok' });
    });
    const warned: string[] = [];
    const debugged: string[] = [];
    const message = 'unrecognised job status: treated as not finished';
    const logger = {
      debug: (o: { status?: string }, m?: string) => void (m === message && debugged.push(o.status ?? '')),
      info() {},
      warn: (o: { status?: string }, m?: string) => void (m === message && warned.push(o.status ?? '')),
      error() {},
      child: () => logger,
    };
    const client = new ModelBeamClient({
      apiKey: 'k',
      baseUrl: stub.baseUrl,
      logger,
      scheduler: { limits: { minute: 10_000 } },
      polling: { minIntervalMs: 0, initialEstimateMs: 1, maxIntervalMs: 1 },
    });
    const result = await client.generate('txt2img', img());
    await client.close();
    expect(result).toMatchObject({ requestId: 'r-odd', status: 'done' });
    expect(warned).toEqual(statuses.filter((_, i) => i % 2 === 0).slice(0, 32));
    expect(debugged).toHaveLength(statuses.length - 32);
  });
});

/**
 * A plain `node:http` server on port 0 that counts its open sockets and the requests it is answering at
 * once. `handle` gets each request (body read) with its 1-based number, and may never answer.
 */
async function socketServer(handle: (req: IncomingMessage, res: ServerResponse, n: number) => void, keepAliveTimeout?: number) {
  let open = 0;
  let active = 0;
  const seen = {
    maxOpenSockets: 0,
    maxActiveRequests: 0,
    requests: [] as string[],
    get openSockets(): number {
      return open;
    },
  };
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      seen.requests.push(`${req.method ?? ''} ${req.url ?? ''}`);
      seen.maxActiveRequests = Math.max(seen.maxActiveRequests, ++active);
      res.on('close', () => active--);
      handle(req, res, seen.requests.length);
    });
  });
  if (keepAliveTimeout !== undefined) server.keepAliveTimeout = keepAliveTimeout;
  server.on('connection', (socket) => {
    seen.maxOpenSockets = Math.max(seen.maxOpenSockets, ++open);
    socket.on('close', () => open--);
  });
  return { ...(await serve(server)), seen };
}

/** The first `cut` requests get the headers and the start of a body that never finishes; the rest are answered whole. */
function stallBody(res: ServerResponse, n: number, cut: number, body: unknown): void {
  if (n > cut) return json(res, 200, body);
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
  res.write('{"status":');
}

// undici runs its headers and body timeouts on its own coarse timers (about 1 s resolution), so each
// timeout below costs up to a second of real time whatever the option says; nothing asserts on time.
describe('pool timeouts and the connection cap (real sockets; real time for the HTTP timeouts only)', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of cleanup.splice(0).reverse()) await close();
  });
  async function setup(
    handle: Parameters<typeof socketServer>[0],
    options: Partial<ConstructorParameters<typeof ModelBeamClient>[0]> = {},
    serverKeepAliveTimeout?: number,
  ) {
    const server = await socketServer(handle, serverKeepAliveTimeout);
    cleanup.push(server.close);
    const client = new ModelBeamClient({
      apiKey: 'k',
      baseUrl: server.baseUrl,
      scheduler: { limits: { minute: 10_000 }, retry: { baseDelayMs: 1, maxAttempts: 3 } },
      ...options,
    });
    cleanup.push(() => client.close());
    return { server, client };
  }
  const isPost = (r: string): boolean => r.startsWith('POST ');
  const isGet = (r: string): boolean => r.startsWith('GET ');

  it('headers timeout on a status poll (an idempotent GET): resent, and it succeeds when an answer comes', async () => {
    const { server, client } = await setup((_req, res, n) => (n === 1 ? undefined : json(res, 200, { status: 'processing' })), { headersTimeoutMs: 30 });
    await expect(client.status('r-1')).resolves.toMatchObject({ status: 'processing' });
    expect(server.seen.requests).toEqual(['GET /api/v1/client/request-status/r-1', 'GET /api/v1/client/request-status/r-1']);
  });

  it('headers timeout on every try of a status poll: RetriesExhaustedError with the undici timeout as its cause', async () => {
    const { server, client } = await setup(() => {}, {
      headersTimeoutMs: 30,
      scheduler: { limits: { minute: 10_000 }, retry: { baseDelayMs: 1, maxAttempts: 2 } },
    });
    const error = (await client.status('r-1').catch((e: unknown) => e)) as RetriesExhaustedError;
    expect(error).toBeInstanceOf(RetriesExhaustedError);
    expect(error).toMatchObject({ code: 'RETRIES_EXHAUSTED', attempts: 2 });
    expect(error.cause).toMatchObject({ code: 'UND_ERR_HEADERS_TIMEOUT' });
    expect(server.seen.requests.filter(isGet)).toHaveLength(2);
  });

  it('headers timeout on a submission (POST): outcome unknown, never a plain failure, and never resent', async () => {
    const { server, client } = await setup(() => {}, { headersTimeoutMs: 30 });
    const unknown = record(client, 'outcomeUnknown');
    const error = (await client.generate('txt2img', img()).catch((e: unknown) => e)) as OutcomeUnknownError;
    expect(error).toBeInstanceOf(OutcomeUnknownError);
    expect(error.code).toBe('OUTCOME_UNKNOWN');
    expect(error.cause).toMatchObject({ code: 'UND_ERR_HEADERS_TIMEOUT' });
    expect(unknown).toMatchObject([{ endpoint: 'txt2img', attempt: 1, resubmitting: false }]);
    expect(client.stats()).toMatchObject({ outcomeUnknown: 1, failed: 0, resubmissions: 0 });
    expect(server.seen.requests.filter(isPost)).toHaveLength(1);
  });

  it('body timeout: a stalled status body is resent; a stalled submission body is outcome unknown', async () => {
    const poll = await setup((_req, res, n) => stallBody(res, n, 1, { status: 'processing' }), { bodyTimeoutMs: 30 });
    await expect(poll.client.status('r-1')).resolves.toMatchObject({ status: 'processing' });
    expect(poll.server.seen.requests.filter(isGet)).toHaveLength(2);

    const submit = await setup((_req, res, n) => stallBody(res, n, 1, { data: { request_id: 'r-2' } }), { bodyTimeoutMs: 30 });
    const error = (await submit.client.submit('txt2img', img()).catch((e: unknown) => e)) as OutcomeUnknownError;
    expect(error).toBeInstanceOf(OutcomeUnknownError);
    expect(error.cause).toMatchObject({ code: 'UND_ERR_BODY_TIMEOUT' });
    expect(submit.server.seen.requests.filter(isPost)).toHaveLength(1);
    expect(submit.client.stats()).toMatchObject({ outcomeUnknown: 1, failed: 0 });
  });

  it('connections: 2 caps the sockets: 10 concurrent slow calls never hold more than 2 open at once', async () => {
    const pending: ServerResponse[] = [];
    // Each answer waits until two requests are being held, so both connections are in use at once.
    const { server, client } = await setup((_req, res) => {
      pending.push(res);
      if (pending.length === 2) for (const r of pending.splice(0)) json(r, 200, { status: 'processing' });
    }, { connections: 2 });
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => client.status(`r-${i}`)));
    expect(results.map((r) => r.status)).toEqual(Array(10).fill('processing'));
    expect(server.seen.requests).toHaveLength(10);
    expect(server.seen.maxOpenSockets).toBe(2);
    expect(server.seen.maxActiveRequests).toBe(2);
  });

  it('keepAliveTimeoutMs: the client closes an idle connection itself when the server sends no Keep-Alive hint', async () => {
    // keepAliveTimeout 0: the server sends no `Keep-Alive: timeout` and never closes an idle socket itself.
    const { server, client } = await setup((_req, res) => json(res, 200, { status: 'processing' }), { keepAliveTimeoutMs: 50 }, 0);
    await client.status('r-1');
    expect(server.seen.maxOpenSockets).toBe(1);
    await until(() => server.seen.openSockets === 0, 'the idle socket closed by the client'); // the default would keep it 10 s
  });
});

describe('onDispatch', () => {
  afterEach(closeAll);
  it('submit(): called synchronously before each HTTP request of the submission, numbered from 1', async () => {
    const h = await harness();
    const seen: Array<[number, number]> = [];
    const sentSoFar = (): number => h.server.stats().byRoute['POST /txt2img'] ?? 0;
    h.server.failNext('502', 1, (r) => r.submit); // answered by the "gateway": nothing created, resent
    const { requestId } = await h.client.submit('txt2img', img(), { onDispatch: (attempt) => seen.push([attempt, sentSoFar()]) });
    // When it ran, the request it announced had not reached the server yet.
    expect(seen).toEqual([
      [1, 0],
      [2, 1],
    ]);
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('generate(): called before each request of every submission attempt, with that attempt number', async () => {
    const h = await harness();
    const seen: number[] = [];
    const submitted: number[] = [];
    h.server.failNext('502', 1, (r) => r.submit);
    const result = await h.client.generate('txt2img', img({ prompt: 'FAIL_ONCE:WORKER_TIMEOUT dispatch' }), {
      onDispatch: (attempt) => seen.push(attempt),
      onSubmitted: (_id, attempt) => submitted.push(attempt),
    });
    expect(result).toMatchObject({ status: 'done', attempts: 2, resubmissions: 1 });
    expect(seen).toEqual([1, 1, 2]); // the first submission went twice (502), then the resubmission
    expect(submitted).toEqual([1, 2]);
  });

  it('a throwing callback is logged and ignored; a submission refused locally never dispatches', async () => {
    const errors: string[] = [];
    const logger = { debug() {}, info() {}, warn() {}, error: (_o: object, m?: string) => errors.push(m ?? ''), child: () => logger };
    const h = await harness({}, { logger });
    let calls = 0;
    const onDispatch = (): void => {
      calls++;
      throw new Error('boom');
    };
    await expect(h.client.generate('txt2img', img(), { onDispatch })).resolves.toMatchObject({ status: 'done' });
    expect(calls).toBe(1);
    expect(errors).toContain('onDispatch threw');
    await expect(h.client.submit('txt2img', img({ width: 100 }), { onDispatch })).rejects.toBeInstanceOf(ParamsValidationError);
    expect(calls).toBe(1);
  });
});

describe('insufficient balance pauses submissions, not polls', () => {
  afterEach(closeAll);
  it('waits, keeps polling earlier jobs, and resumes when the balance rises', async () => {
    const h = await harness({ jobs: { processingMs: 150 } }, { balanceCheckIntervalMs: 20 });
    const exhausted = record(h.client, 'balanceExhausted');
    const resumed = record(h.client, 'submissionsResumed');
    const { requestId } = await h.client.submit('txt2img', img({ prompt: 'before' }));
    h.server.setBalance('acct-1', 0);
    const pending = h.client.generate('txt2img', img({ prompt: 'after' }));
    await until(() => exhausted.length === 1, 'balanceExhausted');
    expect(exhausted[0]?.error).toBeInstanceOf(InsufficientBalanceError);
    expect(h.client.stats().submissionsPaused).toBe(true);
    await expect(h.client.wait(requestId)).resolves.toMatchObject({ status: 'done' }); // polls go on
    const refusedSoFar = h.server.stats().insufficientBalance;
    expect(refusedSoFar).toBe(1); // paused: no more refused submissions
    h.server.setBalance('acct-1', 100);
    await expect(pending).resolves.toMatchObject({ status: 'done', attempts: 1, resubmissions: 0 });
    expect(resumed).toMatchObject([{ reason: 'balance', balance: 100 }]);
    expect(h.client.stats().submissionsPaused).toBe(false);
  });

  it("with 'reject', paused submissions fail fast without a request until resumed", async () => {
    const h = await harness({}, { onInsufficientBalance: 'reject', balanceCheckIntervalMs: 0 });
    h.server.setBalance('acct-1', 0);
    await expect(h.client.submit('txt2img', img())).rejects.toBeInstanceOf(InsufficientBalanceError);
    await expect(h.client.generate('txt2img', img())).rejects.toBeInstanceOf(InsufficientBalanceError);
    expect(h.server.stats().byRoute['POST /txt2img']).toBe(1);
    h.server.setBalance('acct-1', 100);
    h.client.resumeSubmissions();
    await expect(h.client.generate('txt2img', img())).resolves.toMatchObject({ status: 'done' });
  });
});

describe('polling spends little quota', () => {
  afterEach(closeAll);
  it('at most 2.1 requests per completed job on a small run with fixed durations', async () => {
    // Server and client share a fake clock, and fake time moves only while no request is on the wire: the
    // figure then depends on the poll planner alone, not on how busy the machine running the test is.
    const clock = new ManualClock(1_700_000_000_000);
    const server = await startFakeModelBeam({ clock, jobs: { pendingMs: 10, processingMs: 60, jitter: 0 } });
    const client = new ModelBeamClient({ apiKey: 'test-key', baseUrl: server.baseUrl, clock, jobRetryDelayMs: 0, polling: FAST_POLLING });
    try {
      const run = async (work: () => Promise<unknown>): Promise<void> => {
        let settled = false;
        const done = work().finally(() => (settled = true));
        await advanceWhileQuiet(clock, client, () => settled);
        await done;
      };
      await run(() => Promise.all(Array.from({ length: 20 }, (_, i) => client.generate('txt2img', img({ prompt: `burst ${i}` })))));
      for (let i = 0; i < 10; i++) await run(() => client.generate('txt2img', img({ prompt: `seq ${i}` })));
      await run(() => Promise.all(Array.from({ length: 20 }, (_, i) => client.generate('txt2img', img({ prompt: `burst2 ${i}` })))));
      const stats = client.stats();
      const byRoute = server.stats().byRoute;
      const perJob = (byRoute['POST /txt2img']! + byRoute['GET /request-status']!) / stats.completed;
      console.log(`requests per completed job: ${perJob.toFixed(3)} (${stats.polls} polls for ${stats.completed} jobs)`);
      expect(stats.completed).toBe(50);
      expect(stats.requestsPerCompletedJob).toBeCloseTo(perJob, 10);
      expect(perJob).toBeLessThanOrEqual(2.1);
      expect(stats.pollsPerJob).toBeLessThanOrEqual(1.1);
    } finally {
      await client.close();
      await server.close();
    }
  });

  it('polls are not starved by a stream of submissions: one starved for a window goes ahead of them', async () => {
    const h = await harness({ limits: { minute: { limit: 4, windowMs: 400 } } }, { scheduler: { windows: { minuteMs: 400 } } });
    const order: string[] = [];
    const { requestId } = await h.client.submit('txt2img', img({ prompt: 'first' }));
    const waited = h.client.wait(requestId).then(() => order.push('wait'));
    const submits = Array.from({ length: 14 }, (_, i) => h.client.submit('txt2img', img({ prompt: `queued ${i}` })).then(() => order.push('submit')));
    await Promise.all([waited, ...submits]);
    expect(order.indexOf('wait')).toBeLessThan(order.length - 1);
    expect(h.server.maxInAnyWindow()).toBeLessThanOrEqual(4);
  });

  it('waits on a job submitted elsewhere (a resumed batch): the first poll goes out at once', async () => {
    const h = await harness();
    const { requestId } = await h.client.submit('txt2img', img());
    await until(() => h.server.jobs.get(requestId)?.status === 'done', 'job done');
    const other = h.make();
    await expect(other.wait(requestId, { endpoint: 'txt2img' })).resolves.toMatchObject({ requestId, status: 'done' });
    expect(other.stats().polls).toBe(1);
  });

  it('stays under a tight limit with polls counted, riding out 429s', async () => {
    const h = await harness(
      { limits: { minute: { limit: 6, windowMs: 500 } }, headers: { onSuccess: false } },
      { scheduler: { windows: { minuteMs: 500 } } },
    );
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => h.client.generate('txt2img', img({ prompt: `tight ${i}` }))));
    expect(results.every((r) => r.status === 'done')).toBe(true);
    expect(h.server.maxInAnyWindow()).toBeLessThanOrEqual(6);
    expect(h.client.stats()['429s']).toBe(h.server.stats().rejected429.total);
    expect(h.server.stats().rejected429.total).toBeGreaterThan(0); // the limit was learned from a 429
  });
});

describe('resumed waits (issue: the learned estimate exploded to 1,435,417 ms)', () => {
  afterEach(closeAll);
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));

  it('20 jobs resumed by another client, then 40 new ones: the new ones finish and the estimate stays sane', async () => {
    // The reported run: jobs of 2.5 s (2 s of it queued), the CLI's polling at --minute-ms 10000 (× 1/6),
    // client A submits 20 and closes; client B waits on them ~1.8 s after submission with their endpoint, model
    // and submittedAt, then submits 40 more. Before the fix, B's 20 first polls went out together, all found a
    // pending job, and each miss multiplied the estimate (to 1,435,417 ms), which no cap bounded: the 40 were
    // not polled for ~24 minutes.
    const polling = { initialEstimateMs: 833, minIntervalMs: 167, maxIntervalMs: 10_000 };
    const h = await harness({ jobs: { pendingMs: 2000, processingMs: 500 } }, { polling });
    const a = h.client;
    const submitted = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const { requestId } = await a.submit('txt2img', img({ prompt: `resumed ${i}` }));
        return { requestId, submittedAt: Date.now() };
      }),
    );
    await a.close();
    await sleep(1800 - (Date.now() - Math.min(...submitted.map((s) => s.submittedAt))));

    const b = h.make({ polling });
    const resumed = await Promise.all(
      submitted.map(({ requestId, submittedAt }) => b.wait(requestId, { endpoint: 'txt2img', model: 'Flux1schnell', submittedAt })),
    );
    expect(resumed.every((r) => r.status === 'done')).toBe(true);
    const afterResumed = b.stats().durations;

    const began = Date.now();
    const fresh = Promise.all(Array.from({ length: 40 }, (_, i) => b.generate('txt2img', img({ prompt: `new ${i}` }))));
    const outcome = await Promise.race([fresh.then(() => 'finished'), sleep(15_000).then(() => 'stuck')]);
    expect(outcome).toBe('finished');
    expect(Date.now() - began).toBeLessThan(12_000);
    const durations = b.stats().durations;
    expect(durations['txt2img Flux1schnell']?.observations).toBe(40);
    for (const { expectedMs } of Object.values(durations)) expect(expectedMs).toBeLessThan(4 * 2500);
    // The resumed jobs' start is the caller's word (another run, another clock): nothing was learned from them.
    expect(afterResumed).toEqual({});
  }, 30_000);

  it('a learned duration longer than maxIntervalMs does not leave a job unpolled longer than that', async () => {
    const h = await harness({ jobs: { pendingMs: 10, processingMs: 800, jitter: 0 } }); // polling: maxIntervalMs 200
    for (let i = 0; i < 4; i++) await h.client.generate('txt2img', img({ prompt: `teach ${i}` }));
    expect(h.client.stats().durations['txt2img Flux1schnell']?.expectedMs).toBeGreaterThan(400);
    const times: number[] = [];
    let id = '';
    h.client.on('submitted', (e) => {
      id = e.requestId;
      times.push(Date.now());
    });
    h.client.on('polled', (e) => {
      if (e.requestId === id) times.push(Date.now());
    });
    await h.client.generate('txt2img', img({ prompt: 'watched' }));
    const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
    for (const gap of gaps) expect(gap).toBeLessThan(200 + 200); // slack for a loaded machine; uncapped, the first gap was ~800 ms
    expect(gaps.length).toBeGreaterThanOrEqual(3); // an 800 ms job, polled at least every 200 ms
  });

  it('a resumed wait whose submittedAt is far off teaches nothing, and new jobs are polled as usual', async () => {
    const h = await harness({ jobs: { pendingMs: 10, processingMs: 300 } });
    const ids = await Promise.all(Array.from({ length: 8 }, (_, i) => h.client.submit('txt2img', img({ prompt: `far ${i}` }))));
    const b = h.make();
    // Recorded on a clock 10 s behind: every first poll goes out at once and finds the job running.
    await Promise.all(ids.map(({ requestId }) => b.wait(requestId, { endpoint: 'txt2img', model: 'Flux1schnell', submittedAt: Date.now() - 10_000 })));
    expect(b.stats().durations).toEqual({});
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => b.generate('txt2img', img({ prompt: `after ${i}` }))));
    expect(results.every((r) => r.status === 'done')).toBe(true);
    expect(b.stats().durations['txt2img Flux1schnell']?.expectedMs).toBeLessThan(2000);
  });
});

describe('downloads', () => {
  afterEach(closeAll);

  it('retries a 5xx from storage, never sends the API key there', async () => {
    let calls = 0;
    const stub = await stubApi((_req, res) => {
      if (calls++ === 0) json(res, 503, { message: 'busy' });
      else {
        res.writeHead(200, { 'content-type': 'image/png' });
        res.end(PNG);
      }
    });
    const client = new ModelBeamClient({ apiKey: 'k-secret', baseUrl: 'http://127.0.0.1:9/api/v1/client', random: () => 0 });
    const sink = new PassThrough();
    const chunks: Buffer[] = [];
    sink.on('data', (c: Buffer) => chunks.push(c));
    await client.download({ resultUrl: `${stub.baseUrl}/r.png` }, sink);
    await client.close();
    expect(Buffer.concat(chunks)).toEqual(PNG);
    expect(stub.requests).toHaveLength(2);
    expect(stub.requests.every((r) => r.headers.authorization === undefined)).toBe(true);
  });
});

describe('pagination, options and lifecycle', () => {
  afterEach(closeAll);
  it('models() follows the paginator to the last page', async () => {
    const stub = await stubApi((req, res) => {
      const page = Number(new URL(req.url, 'http://x').searchParams.get('page'));
      json(res, 200, {
        data: [{ name: `M${page}`, slug: `m${page}`, inference_types: ['txt2img'], info: { limits: {} }, loras: [{ display_name: 'L', name: 'l' }], languages: null }],
        meta: { current_page: page, last_page: 3, per_page: 1, total: 3 },
      });
    });
    const client = new ModelBeamClient({ apiKey: 'k', baseUrl: stub.baseUrl });
    const models = await client.models({ inferenceTypes: ['txt2img'] });
    await client.close();
    expect(models.map((m) => m.slug)).toEqual(['m1', 'm2', 'm3']);
    expect(models[0]?.loras).toEqual([{ displayName: 'L', name: 'l' }]);
    expect(new URL(stub.requests[0]?.url ?? '', 'http://x').searchParams.get('filter[inference_types]')).toBe('txt2img');
  });

  it('validates options eagerly, in one message shape', () => {
    expect(() => new ModelBeamClient({} as never)).toThrow(/Expected `apiKey` to be a non-empty string, e.g. `new ModelBeamClient\(\{ apiKey: process.env.MODELBEAM_API_KEY \}\)`/);
    expect(() => new ModelBeamClient({ apiKey: 'abc\n' })).toThrow(/length 4/);
    expect(() => new ModelBeamClient({ apiKey: 'abc\n' })).not.toThrow(/abc/);
    expect(() => new ModelBeamClient({ apiKey: 'k', polling: { maxShare: 2 } })).toThrow('Expected `polling.maxShare` to be a number in (0, 1], got `2` (number)');
    expect(() => new ModelBeamClient({ apiKey: 'k', polling: { maxSahre: 1 } as never })).toThrow(/Unknown option `polling.maxSahre`/);
    expect(() => new ModelBeamClient({ apiKey: 'k', timeout: 1 } as never)).toThrow(/Unknown option `timeout`/);
    expect(() => new ModelBeamClient({ apiKey: 'k', baseUrl: 'ftp://x' })).toThrow(/Expected `baseUrl` to be an http\(s\) URL/);
    expect(() => new ModelBeamClient({ apiKey: 'k', webhook: { secret: 's' } as never })).toThrow(/webhook.url/);
    expect(() => new ModelBeamClient({ apiKey: 'k', maxResubmissions: -1 })).toThrow(/maxResubmissions/);
    expect(() => new ModelBeamClient({ apiKey: 'k', onInsufficientBalance: 'maybe' as never })).toThrow(/onInsufficientBalance/);
    expect(() => new ModelBeamClient({ apiKey: 'k' }).webhookHandler).toThrow(/webhook.secret/);
    // The bounds of jobRetries (issue #3: WORKER_TIMEOUT bounded, the others at most once) are accepted.
    void new ModelBeamClient({ apiKey: 'k', jobRetries: { WORKER_TIMEOUT: 10, PROCESSING_ERROR: 1, UNKNOWN_ERROR: 0 }, keepAliveTimeoutMs: 1 }).close();
    expect(() => new ModelBeamClient({ apiKey: 'k', jobRetries: { PROCESSING_ERROR: 2 } })).toThrow(/new billed job/);
  });

  it('close() rejects pending waits, refuses new calls, and is idempotent', async () => {
    const h = await harness({ jobs: { processingMs: 5000 } });
    const { requestId } = await h.client.submit('txt2img', img());
    const waiting = h.client.wait(requestId).catch((e: unknown) => e);
    const closing = h.client.close();
    expect(h.client.close()).toBe(closing);
    await closing;
    expect(await waiting).toBeInstanceOf(QueueClosedError);
    await expect(h.client.wait(requestId)).rejects.toBeInstanceOf(QueueClosedError);
    await expect(h.client.submit('txt2img', img())).rejects.toBeInstanceOf(QueueClosedError);
  });

  it('an aborted wait stops polling that job; stats count what is in flight', async () => {
    const h = await harness({ jobs: { processingMs: 2000 } });
    const { requestId } = await h.client.submit('txt2img', img());
    expect(h.client.stats()).toMatchObject({ submitted: 1, inFlightJobs: 1, waitingJobs: 0 });
    const controller = new AbortController();
    const waiting = h.client.wait(requestId, { signal: controller.signal });
    expect(h.client.stats().waitingJobs).toBe(1);
    controller.abort(new Error('stop'));
    await expect(waiting).rejects.toThrow('stop');
    expect(h.client.stats()).toMatchObject({ inFlightJobs: 1, waitingJobs: 0 });
  });
});

describe('one time setting: the scheduler\'s timeScale, handed out by the fake server', () => {
  afterEach(closeAll);

  it('server.clientOptions() gives baseUrl, apiKey and the server\'s windows as a timeScale', async () => {
    const server = await startFakeModelBeam({
      accounts: { 'key-a': 'acct-a', 'key-b': 'acct-b' },
      limits: { minute: { limit: 60, windowMs: 2000 }, daily: { limit: 1000, windowMs: 120_000 } },
    });
    try {
      expect(server.clientOptions()).toEqual({
        apiKey: 'key-a',
        baseUrl: server.baseUrl,
        scheduler: { timeScale: 2000 / 60_000, windows: { minuteMs: 2000, dayMs: 120_000 } },
      });
      expect(server.clientOptions('acct-b').apiKey).toBe('key-b');
      expect(() => server.clientOptions('acct-nope')).toThrow(/Unknown account `acct-nope`/);
    } finally {
      await server.close();
    }
  });

  it('every time default of the client follows the timeScale, whether the client builds the scheduler or is given it', async () => {
    const server = await startFakeModelBeam({ limits: { minute: { limit: 60, windowMs: 2000 } } });
    try {
      const options = server.clientOptions();
      const given = new RateLimitScheduler(options.scheduler);
      for (const o of [resolveClientOptions(options), resolveClientOptions({ ...options, scheduler: given })]) {
        expect(o.scheduler.timing).toEqual({ timeScale: 1 / 30, minuteMs: 2000, dayMs: 2_880_000 });
        expect(o.polling.windowMs).toBe(2000); // before: 60 000 for a scheduler given to the client
        expect(o.polling.minIntervalMs).toBeCloseTo(1000 / 30, 9);
        expect(o.polling.maxIntervalMs).toBeCloseTo(2000, 9);
        expect(o.polling.initialEstimateMs).toBeCloseTo(5000 / 30, 9);
        expect(o.jobRetryDelayMs).toBeCloseTo(2000 / 30, 9);
        expect(o.balanceCheckIntervalMs).toBeCloseTo(2000, 9);
        // Real I/O deadlines do not compress.
        expect(o.connectTimeoutMs).toBe(10_000);
        expect(o.headersTimeoutMs).toBe(60_000);
        expect(o.webhook).toBeUndefined();
        if (o.ownsScheduler) await o.scheduler.close();
      }
      await given.close();
      // Options given explicitly win over the scaled defaults.
      const own = resolveClientOptions({ ...options, polling: { minIntervalMs: 7 }, jobRetryDelayMs: 0 });
      expect([own.polling.minIntervalMs, own.jobRetryDelayMs]).toEqual([7, 0]);
      await own.scheduler.close();
    } finally {
      await server.close();
    }
  });

  it('a client built from server.clientOptions() alone runs in the server\'s compressed time', async () => {
    const clock = new ManualClock(1_700_000_000_000);
    // A 2 s "minute" (timeScale 1/30); jobs of 3 s and 6 s of real time.
    const server = await startFakeModelBeam({ clock, limits: { minute: { limit: 60, windowMs: 2000 } }, jobs: { pendingMs: 20, processingMs: 80 } });
    const client = new ModelBeamClient({ ...server.clientOptions(), clock });
    try {
      const start = clock.now();
      let settled = false;
      const prompts = ['one', 'two', 'three', 'FAIL_ONCE:WORKER_TIMEOUT four'];
      const all = Promise.all(prompts.map((prompt) => client.generate('txt2img', img({ prompt })))).finally(() => (settled = true));
      // Unscaled, the first poll alone would wait 5000 ms (initialEstimateMs) and the resubmission 2000 ms
      // (jobRetryDelayMs): more than this whole compressed minute.
      await advanceWhileQuiet(clock, client, () => settled, 2000);
      const results = await all;
      expect(results).toHaveLength(4);
      expect(clock.now() - start).toBeLessThan(2000);
      expect(client.stats().completed).toBe(4);
      expect(server.maxInAnyWindow()).toBeLessThanOrEqual(60);
    } finally {
      await client.close();
      await server.close();
    }
  });
});

describe('a daily quota that counts job submissions only, spent with jobs in flight', () => {
  afterEach(closeAll);

  async function run(dailyCounts: 'auto' | 'all'): Promise<{ doneAt: number[]; dayMs: number; start: number; rejectedDaily: number }> {
    const clock = new ManualClock(Date.UTC(2026, 0, 5, 10, 0, 0));
    const dayMs = 20_000;
    const server = await startFakeModelBeam({
      clock,
      countPolls: 'minute',
      limits: { minute: { limit: 60, windowMs: 2000 }, daily: { limit: 3, windowMs: dayMs } },
      jobs: { pendingMs: 100, processingMs: 300 },
    });
    const client = new ModelBeamClient({ ...server.clientOptions(), clock, dailyCounts });
    try {
      const start = clock.now();
      const doneAt: number[] = [];
      let settled = false;
      const all = Promise.all(['a', 'b', 'c', 'd'].map((prompt) => client.generate('txt2img', img({ prompt })).then(() => doneAt.push(clock.now() - start)))).finally(
        () => (settled = true),
      );
      // 'all' keeps daily units for the polls of the jobs in flight: with 3 a day, one job (and its polls) a day.
      await advanceWhileQuiet(clock, client, () => settled, 6 * dayMs);
      await all;
      console.log(`[daily ${dailyCounts}] results at ${doneAt.join(', ')} ms (day ${dayMs} ms), daily 429s ${server.stats().rejected429.daily}, polls ${server.stats().polls}`);
      return { doneAt, dayMs, start, rejectedDaily: server.stats().rejected429.daily };
    } finally {
      await client.close();
      await server.close();
    }
  }

  it("'auto': the three jobs submitted before the day ran out get their results the same day", async () => {
    const { doneAt, dayMs, rejectedDaily } = await run('auto');
    expect(doneAt).toHaveLength(4);
    const sameDay = doneAt.filter((t) => t < 2000);
    expect(sameDay).toHaveLength(3);
    expect(doneAt.filter((t) => t >= dayMs / 2)).toHaveLength(1); // the fourth waits for the next day
    expect(rejectedDaily).toBeLessThanOrEqual(1); // at most the one probe that learns the reset
  });

  it("'all': polls wait for the day too (the behaviour for an API that counts everything)", async () => {
    const { doneAt, dayMs } = await run('all');
    expect(doneAt).toHaveLength(4);
    expect(doneAt.filter((t) => t < 2000).length).toBeLessThan(3);
    expect(Math.max(...doneAt)).toBeGreaterThan(dayMs / 2);
  });

  it('once the day holds the queued submissions, polls take the whole minute budget (the share cap leaves room only for submissions that can go)', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 5, 10, 0, 0));
    const windowMs = 2000;
    const dayMs = 60 * windowMs;
    const server = await startFakeModelBeam({
      clock,
      countPolls: 'minute',
      limits: { minute: { limit: 10, windowMs }, daily: { limit: 20, windowMs: dayMs } },
      jobs: { pendingMs: 20, processingMs: 80 },
    });
    const client = new ModelBeamClient({ ...server.clientOptions(), clock });
    try {
      const start = clock.now();
      const doneAt: number[] = [];
      let settled = false;
      // 20 submissions fit the day; 20 more wait for the next one, queued all along.
      const all = Promise.allSettled(
        Array.from({ length: 40 }, (_, i) => client.generate('txt2img', img({ prompt: `job ${i}` })).then(() => doneAt.push(clock.now() - start))),
      ).finally(() => (settled = true));
      await advanceWhileQuiet(clock, client, () => doneAt.length >= 20 || settled, dayMs / 2);
      // 20 submissions and 20 polls at 10 a window: 4 windows at best. With polls capped at half the budget while
      // the held submissions "wait", the 20 polls would take 2 windows more.
      expect(doneAt).toHaveLength(20);
      expect(Math.max(...doneAt)).toBeLessThan(5 * windowMs);
      expect(server.maxInAnyWindow()).toBeLessThanOrEqual(10);
      await client.close();
      await all;
    } finally {
      await client.close();
      await server.close();
    }
  });
});

describe('a daily quota that counts status polls too: results of jobs in flight are never left for the next day', () => {
  afterEach(closeAll);

  /** 16 jobs against a day that fits about half of them (a submission and its polls each count). */
  async function run(dailyCounts: 'auto' | 'all'): Promise<{ waits: number[]; done: number; dayMs: number; submitted: number }> {
    const clock = new ManualClock(Date.UTC(2026, 0, 5, 10, 0, 0));
    const dayMs = 30_000;
    const server = await startFakeModelBeam({
      clock,
      countPolls: true,
      limits: { minute: { limit: 60, windowMs: 2000 }, daily: { limit: 30, windowMs: dayMs } },
      jobs: { pendingMs: 100, processingMs: 500 },
    });
    const client = new ModelBeamClient({ ...server.clientOptions(), clock, dailyCounts });
    const submittedAt = new Map<string, number>();
    const waits: number[] = [];
    client.on('submitted', ({ requestId }) => submittedAt.set(requestId, clock.now()));
    client.on('completed', ({ requestId }) => waits.push(clock.now() - (submittedAt.get(requestId) ?? Number.NaN)));
    try {
      let settled = false;
      const prompts = Array.from({ length: 16 }, (_, i) => `p${i}`);
      const all = Promise.all(prompts.map((prompt) => client.generate('txt2img', img({ prompt })))).finally(() => (settled = true));
      await advanceWhileQuiet(clock, client, () => settled, 4 * dayMs);
      await all;
      return { waits, done: waits.length, dayMs, submitted: client.stats().submitted };
    } finally {
      await client.close();
      await server.close();
    }
  }

  it.each(['auto', 'all'] as const)("dailyCounts '%s': every job's result comes the day it was submitted", async (dailyCounts) => {
    const { waits, done, dayMs } = await run(dailyCounts);
    expect(done).toBe(16);
    // A job takes 600 ms and a few polls; one whose polls were left without daily units would wait for the next day.
    // (Without the units kept, 3 of 16 did.) With 'auto', status requests are shown to count daily: with no job in
    // flight and a unit left, too few for a job, that unit is spent on a status request of a finished job (its
    // answer unused) instead of on a submission whose result would wait for the reset (1 of 16 did). With 'all'
    // nothing shows that status requests count: such a submission goes while the day has a unit.
    expect(waits.filter((w) => w > dayMs / 4).length).toBeLessThanOrEqual(dailyCounts === 'auto' ? 0 : 1);
  });
});
