import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
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
  ValidationError,
} from '../src/errors/index.js';
import { ModelBeamClient, type ModelBeamClientEvents } from '../src/modelbeam/index.js';
import { closeAll, harness, img, json, stubApi, until, type Harness } from './modelbeam-harness.js';

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
    const result = await h.client.generate(endpoint, params as Record<string, unknown>);
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
    await expect(h.client.submit('txt2nothing', { model: 'x' })).rejects.toBeInstanceOf(NotFoundError);
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

  it('unknown status values are not terminal; progress strings and missing envelopes are read', async () => {
    let polls = 0;
    const statuses = [{ status: 'queued_on_gpu' }, { status: 'in_progress', progress: '50' }, { status: 'done', result: 'hello' }];
    const stub = await stubApi((req, res) => {
      if (req.method === 'POST') json(res, 200, { data: { request_id: 'r-2' } });
      else json(res, 200, statuses[Math.min(polls++, statuses.length - 1)]);
    });
    const debug: string[] = [];
    const logger = { debug: (_o: object, m?: string) => debug.push(m ?? ''), info() {}, warn() {}, error() {}, child: () => logger };
    const client = new ModelBeamClient({ apiKey: 'k', baseUrl: stub.baseUrl, logger, polling: { minIntervalMs: 1, initialEstimateMs: 1, maxIntervalMs: 20 } });
    const changes = record(client, 'statusChanged');
    const result = await client.generate('txt2img', img());
    await client.close();
    expect(result).toMatchObject({ requestId: 'r-2', status: 'done', result: 'hello' });
    expect(changes.map((c) => [c.status, c.progress])).toEqual([
      ['queued_on_gpu', undefined],
      ['in_progress', 50],
    ]);
    expect(debug).toContain('unrecognised job status: treated as not finished');
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
    const h = await harness({ jobs: { pendingMs: 10, processingMs: 60, jitter: 0 } });
    await Promise.all(Array.from({ length: 20 }, (_, i) => h.client.generate('txt2img', img({ prompt: `burst ${i}` }))));
    for (let i = 0; i < 10; i++) await h.client.generate('txt2img', img({ prompt: `seq ${i}` }));
    await Promise.all(Array.from({ length: 20 }, (_, i) => h.client.generate('txt2img', img({ prompt: `burst2 ${i}` }))));
    const stats = h.client.stats();
    const server = h.server.stats();
    const perJob = (server.byRoute['POST /txt2img']! + server.byRoute['GET /request-status']!) / stats.completed;
    console.log(`requests per completed job: ${perJob.toFixed(3)} (${stats.polls} polls for ${stats.completed} jobs)`);
    expect(stats.completed).toBe(50);
    expect(stats.requestsPerCompletedJob).toBeCloseTo(perJob, 10);
    expect(perJob).toBeLessThanOrEqual(2.1);
    expect(stats.pollsPerJob).toBeLessThanOrEqual(1.1);
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
    expect(() => new ModelBeamClient({ apiKey: 'k', polling: { maxShare: 2 } })).toThrow('Expected `polling.maxShare` to be a share in (0, 1], got `2` (number)');
    expect(() => new ModelBeamClient({ apiKey: 'k', polling: { maxSahre: 1 } as never })).toThrow(/Unknown option `polling.maxSahre`/);
    expect(() => new ModelBeamClient({ apiKey: 'k', timeout: 1 } as never)).toThrow(/Unknown option `timeout`/);
    expect(() => new ModelBeamClient({ apiKey: 'k', baseUrl: 'ftp://x' })).toThrow(/Expected `baseUrl` to be an http\(s\) URL/);
    expect(() => new ModelBeamClient({ apiKey: 'k', webhook: { secret: 's' } as never })).toThrow(/webhook.url/);
    expect(() => new ModelBeamClient({ apiKey: 'k', maxResubmissions: -1 })).toThrow(/maxResubmissions/);
    expect(() => new ModelBeamClient({ apiKey: 'k', onInsufficientBalance: 'maybe' as never })).toThrow(/onInsufficientBalance/);
    expect(() => new ModelBeamClient({ apiKey: 'k' }).webhookHandler).toThrow(/webhook.secret/);
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
