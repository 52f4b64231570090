import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FormData, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ManualClock,
  signWebhook,
  startFakeModelBeam,
  type FakeModelBeamServer,
  type FakeServerOptions,
} from '../src/testing/index.js';

// ------------------------------------------------------------------ helpers

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

interface CallResult {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  json: Json;
}

interface CallInit {
  method?: string;
  body?: unknown;
  /** API key; null sends no Authorization header. */
  key?: string | null;
}

const T0 = Date.UTC(2024, 0, 1); // midnight UTC: a multiple of every window length used below

const servers: FakeModelBeamServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start(options: FakeServerOptions = {}): Promise<{ server: FakeModelBeamServer; clock: ManualClock }> {
  const clock = (options.clock as ManualClock | undefined) ?? new ManualClock(T0);
  const server = await startFakeModelBeam({ ...options, clock });
  servers.push(server);
  return { server, clock };
}

async function call(server: FakeModelBeamServer, path: string, init: CallInit = {}): Promise<CallResult> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (init.key !== null) headers['authorization'] = `Bearer ${init.key ?? 'test-key'}`;
  let body: string | FormData | undefined;
  if (init.body instanceof FormData) body = init.body;
  else if (init.body !== undefined) {
    body = JSON.stringify(init.body);
    headers['content-type'] = 'application/json';
  }
  const url = path.startsWith('http') ? path : `${server.baseUrl}${path}`;
  const method = (init.method ?? (init.body === undefined ? 'GET' : 'POST')) as 'GET';
  const res = await request(url, { method, headers, ...(body === undefined ? {} : { body }) });
  const text = await res.body.text();
  let json: Json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.statusCode, headers: res.headers, text, json };
}

const img = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  prompt: 'a red fox',
  model: 'Flux1schnell',
  width: 512,
  height: 512,
  steps: 4,
  ...over,
});

function without(obj: Record<string, unknown>, key: string): Record<string, unknown> {
  const copy = { ...obj };
  delete copy[key];
  return copy;
}

async function waitFor(cond: () => boolean, what: string, maxMs = 2000): Promise<void> {
  const end = Date.now() + maxMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

const RATE_HEADERS = ['x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-daily-limit', 'x-ratelimit-daily-remaining', 'x-ratelimit-type'];
const rateHeaderNames = (h: IncomingHttpHeaders): string[] => RATE_HEADERS.filter((n) => h[n] !== undefined);

interface Received {
  headers: IncomingHttpHeaders;
  raw: string;
  body: Json;
}

/** A tiny webhook receiver that answers with the next status of `statuses` (then 200). */
async function receiver(statuses: number[] = []): Promise<{ url: string; got: Received[]; close: () => Promise<void> }> {
  const got: Received[] = [];
  const srv: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      got.push({ headers: req.headers, raw, body: JSON.parse(raw) });
      res.statusCode = statuses.shift() ?? 200;
      res.end('ok');
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    got,
    close: () =>
      new Promise<void>((r) => {
        srv.closeAllConnections();
        srv.close(() => r());
      }),
  };
}

// ------------------------------------------------------------------ tests

describe('options', () => {
  it('rejects unknown and invalid options eagerly', async () => {
    await expect(startFakeModelBeam({ limitz: {} } as FakeServerOptions)).rejects.toThrow(/Unknown option `limitz`/);
    await expect(startFakeModelBeam({ limits: { minute: { limit: -1 } } })).rejects.toThrow(
      'Expected `limits.minute.limit` to be an integer >= 0, got `-1` (number)',
    );
    await expect(startFakeModelBeam({ faults: { resetRate: 2 } })).rejects.toThrow(/faults.resetRate/);
    await expect(startFakeModelBeam({ webhook: { url: 'ftp://x' } })).rejects.toThrow(/webhook.url/);
  });

  it('exposes url and baseUrl', async () => {
    const { server } = await start();
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(server.baseUrl).toBe(`${server.url}/api/v1/client`);
  });
});

describe('auth and routing', () => {
  it('401 for missing, unknown and revoked keys; not counted, no rate-limit headers', async () => {
    const { server } = await start({ accounts: { 'test-key': 'acct-1', 'key-2': 'acct-1' } });
    for (const key of [null, 'nope']) {
      const r = await call(server, '/balance', { key });
      expect(r.status).toBe(401);
      expect(r.json).toEqual({ message: 'Unauthenticated.' });
      expect(rateHeaderNames(r.headers)).toEqual([]);
    }
    expect((await call(server, '/balance', { key: 'key-2' })).status).toBe(200);
    expect(server.revokeKey('key-2')).toBe(true);
    expect((await call(server, '/balance', { key: 'key-2' })).status).toBe(401);
    expect(server.stats().unauthorized401).toBe(3);
    expect(server.stats().accepted).toBe(1);
  });

  it('404 for unknown routes and unknown or foreign request ids; 405 for a wrong method', async () => {
    const { server } = await start({ accounts: { 'test-key': 'acct-1', 'other-key': 'acct-2' } });
    const unknown = await call(server, '/nope');
    expect(unknown.status).toBe(404);
    expect(unknown.json).toEqual({ message: 'Not Found' });
    expect((await call(server, `${server.url}/api/v2/jobs/x`)).status).toBe(404);

    const missing = await call(server, '/request-status/00000000-0000-4000-8000-000000000000');
    expect(missing.status).toBe(404);
    expect(missing.headers['x-ratelimit-remaining']).toBe('299'); // counted: it reached the app (the 404 routes did not)

    const { json } = await call(server, '/txt2img', { body: img() });
    expect((await call(server, `/request-status/${json.data.request_id}`, { key: 'other-key' })).status).toBe(404);
    expect((await call(server, `/request-status/${json.data.request_id}`)).status).toBe(200);

    const wrong = await call(server, '/txt2img');
    expect(wrong.status).toBe(405);
    expect(wrong.json.message).toMatch(/GET method is not supported/);
    expect(server.stats().byRoute).toMatchObject({ unmatched: 2, 'POST /txt2img': 1, 'GET /request-status': 3, 'GET /txt2img': 1 });
  });
});

describe('validation (422)', () => {
  const cases: [string, Record<string, unknown>, string, string][] = [
    ['prompt missing', without(img(), 'prompt'), 'prompt', 'The prompt field is required.'],
    ['prompt blank', img({ prompt: '  ' }), 'prompt', 'The prompt field is required.'],
    ['prompt not a string', img({ prompt: 5 }), 'prompt', 'The prompt field must be a string.'],
    ['model missing', without(img(), 'model'), 'model', 'The model field is required.'],
    ['width missing', without(img(), 'width'), 'width', 'The width field is required.'],
    ['width too small', img({ width: 128 }), 'width', 'The width field must be between 256 and 2048.'],
    ['width not an integer', img({ width: 512.5 }), 'width', 'The width field must be an integer.'],
    ['height too large', img({ height: 4096 }), 'height', 'The height field must be between 256 and 2048.'],
    ['steps missing', without(img(), 'steps'), 'steps', 'The steps field is required.'],
    ['steps too many', img({ steps: 51 }), 'steps', 'The steps field must be between 1 and 50.'],
    ['guidance out of range', img({ guidance: 21 }), 'guidance', 'The guidance field must be between 0 and 20.'],
    ['webhook_url invalid', img({ webhook_url: 'not a url' }), 'webhook_url', 'The webhook url field must be a valid URL.'],
  ];

  it.each(cases)('txt2img: %s', async (_name, body, field, message) => {
    const { server } = await start();
    const r = await call(server, '/txt2img', { body });
    expect(r.status).toBe(422);
    expect(r.json).toEqual({ message: 'The given data was invalid.', errors: { [field]: [message] } });
    expect(r.headers['x-ratelimit-remaining']).toBe('299'); // validation runs after the limiter: counted
    expect(server.jobs.size).toBe(0);
  });

  it('accepts numeric strings as integers (Laravel integer rule)', async () => {
    const { server } = await start();
    expect((await call(server, '/txt2img', { body: img({ width: '512', steps: '4' }) })).status).toBe(200);
  });

  it('txt2embedding: input and model', async () => {
    const { server } = await start();
    const r1 = await call(server, '/txt2embedding', { body: {} });
    expect(r1.json.errors).toEqual({ input: ['The input field is required.'], model: ['The model field is required.'] });
    const r2 = await call(server, '/txt2embedding', { body: { model: 'Bge_M3_FP16', input: Array.from({ length: 2049 }, () => 'x') } });
    expect(r2.json.errors).toEqual({ input: ['The input field must not have more than 2048 items.'] });
    const r3 = await call(server, '/txt2embedding', { body: { model: 'Bge_M3_FP16', input: ['ok', 3] } });
    expect(r3.json.errors).toEqual({ 'input.1': ['The input.1 field must be a string.'] });
  });

  it('img2img: image, prompt, model, steps and seed are required', async () => {
    const { server } = await start();
    const r = await call(server, '/img2img', { body: new FormData() });
    expect(r.status).toBe(422);
    expect(Object.keys(r.json.errors).sort()).toEqual(['image', 'model', 'prompt', 'seed', 'steps']);
    expect(r.json.errors.image).toEqual(['The image field is required.']);
    const form = new FormData();
    form.set('image', 'not-a-file');
    form.set('prompt', 'p');
    form.set('model', 'Flux_2_Klein_4B_BF16');
    form.set('steps', '4');
    form.set('seed', 'abc');
    const r2 = await call(server, '/img2img', { body: form });
    expect(r2.json.errors).toEqual({ image: ['The image field must be a file.'], seed: ['The seed field must be an integer.'] });
  });

  it('generic endpoints need a model', async () => {
    const { server } = await start();
    expect((await call(server, '/txt2audio', { body: { text: 'hi' } })).json.errors).toEqual({ model: ['The model field is required.'] });
    expect((await call(server, '/txt2audio', { body: { text: 'hi', model: 'Kokoro' } })).status).toBe(200);
  });

  it('strictModels rejects unknown slugs and enforces model limits', async () => {
    const { server } = await start({ strictModels: true });
    expect((await call(server, '/txt2img', { body: img({ model: 'Nope' }) })).json.errors).toEqual({ model: ['The selected model is invalid.'] });
    expect((await call(server, '/txt2img', { body: img({ steps: 20 }) })).json.errors).toEqual({ steps: ['The steps field must be between 1 and 10.'] });
    expect((await call(server, '/txt2img', { body: img({ width: 500 }) })).json.errors).toEqual({ width: ['The width field must be a multiple of 128.'] });
  });
});

describe('jobs', () => {
  it('txt2img: pending -> processing -> done, result downloadable without auth', async () => {
    const { server, clock } = await start();
    const submit = await call(server, '/txt2img', { body: img() });
    expect(submit.status).toBe(200);
    const id: string = submit.json.data.request_id;
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);

    const pending = await call(server, `/request-status/${id}`);
    expect(pending.json.data).toEqual({
      status: 'pending',
      progress: 0,
      result_url: null,
      results_alt_formats: null,
      result: null,
      preview: null,
      error_code: null,
      error_message: null,
    });
    expect((await call(server, `${server.url}/storage/${id}.png`, { key: null })).status).toBe(404);

    clock.advance(200 + 450);
    const processing = await call(server, `/request-status/${id}`);
    expect(processing.json.data).toMatchObject({ status: 'processing', progress: 45 });
    expect((await call(server, `${server.url}/storage/${id}.png`, { key: null })).status).toBe(404);

    clock.advance(550);
    const done = await call(server, `/request-status/${id}`);
    expect(done.json.data).toMatchObject({ status: 'done', progress: 100, result_url: `${server.url}/storage/${id}.png`, error_code: null });
    const png = await request(done.json.data.result_url);
    expect(png.statusCode).toBe(200);
    expect(png.headers['content-type']).toBe('image/png');
    const bytes = Buffer.from(await png.body.arrayBuffer());
    expect(bytes.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));

    const view = server.jobs.get(id);
    expect(view).toMatchObject({ status: 'done', endpoint: 'txt2img', account: 'acct-1', createdAt: T0, processingAt: T0 + 200, finishedAt: T0 + 1200 });
    const stats = server.stats();
    expect(stats.jobs).toEqual({ created: 1, pending: 0, processing: 0, done: 1, failed: 0 });
    expect(stats.polls).toBe(3);
    expect(stats.storageDownloads).toBe(1);
  });

  it('img2img accepts multipart with an image file', async () => {
    const { server } = await start();
    const form = new FormData();
    form.set('image', new Blob([Buffer.from('fake-png-bytes')], { type: 'image/png' }), 'in.png');
    form.set('prompt', 'make it blue');
    form.set('model', 'Flux_2_Klein_4B_BF16');
    form.set('steps', '4');
    form.set('seed', '42');
    const r = await call(server, '/img2img', { body: form });
    expect(r.status).toBe(200);
    const job = server.jobs.get(r.json.data.request_id);
    expect(job?.params).toMatchObject({ prompt: 'make it blue', steps: '4', image: { filename: 'in.png', size: 14, type: 'image/png' } });
  });

  it('txt2embedding returns one vector per input; transcribe returns text', async () => {
    const { server, clock } = await start({ jobs: { pendingMs: 0, processingMs: 10 } });
    const emb = await call(server, '/txt2embedding', { body: { model: 'Bge_M3_FP16', input: ['a', 'b'] } });
    const tr = await call(server, '/transcribe', { body: { model: 'WhisperLargeV3', include_ts: true, source_url: 'https://x.test/a' } });
    clock.advance(10);
    const e = (await call(server, `/request-status/${emb.json.data.request_id}`)).json.data;
    expect(e.status).toBe('done');
    expect(e.result_url).toBeNull();
    expect(e.result).toHaveLength(2);
    expect(e.result[0]).toHaveLength(8);
    expect(e.result[0]).not.toEqual(e.result[1]);
    const again = await call(server, '/txt2embedding', { body: { model: 'Bge_M3_FP16', input: 'a' } });
    clock.advance(10);
    expect((await call(server, `/request-status/${again.json.data.request_id}`)).json.data.result).toEqual([e.result[0]]);
    const t = (await call(server, `/request-status/${tr.json.data.request_id}`)).json.data;
    expect(typeof t.result).toBe('string');
  });

  it('FAIL:<CODE> fails every time, FAIL_ONCE:<CODE> only the first submission', async () => {
    const { server, clock } = await start({ jobs: { pendingMs: 0, processingMs: 100 } });
    const a = await call(server, '/txt2img', { body: img({ prompt: 'x FAIL:AGE_RESTRICTED' }) });
    const b1 = await call(server, '/txt2img', { body: img({ prompt: 'y FAIL_ONCE:WORKER_TIMEOUT' }) });
    const b2 = await call(server, '/txt2img', { body: img({ prompt: 'y FAIL_ONCE:WORKER_TIMEOUT' }) });
    const a2 = await call(server, '/txt2img', { body: img({ prompt: 'x FAIL:AGE_RESTRICTED' }) });
    clock.advance(100);
    const status = async (r: CallResult): Promise<Json> => (await call(server, `/request-status/${r.json.data.request_id}`)).json.data;
    expect(await status(a)).toMatchObject({ status: 'error', error_code: 'AGE_RESTRICTED', result_url: null });
    expect((await status(a)).error_message).toEqual(expect.any(String));
    expect(await status(a2)).toMatchObject({ status: 'error', error_code: 'AGE_RESTRICTED' });
    expect(await status(b1)).toMatchObject({ status: 'error', error_code: 'WORKER_TIMEOUT' });
    expect(await status(b2)).toMatchObject({ status: 'done', error_code: null });
    expect(server.stats().jobs).toMatchObject({ done: 1, failed: 3 });
  });

  it('script decides outcomes; errorFieldsInStatus=false hides the code', async () => {
    const { server, clock } = await start({
      jobs: {
        pendingMs: 0,
        processingMs: 5,
        errorFieldsInStatus: false,
        script: ({ params, attempt }) =>
          params['prompt'] === 'boom' && attempt < 3 ? { outcome: 'error', code: 'PROCESSING_ERROR', message: 'gpu oom' } : undefined,
      },
    });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await call(server, '/txt2img', { body: img({ prompt: 'boom' }) })).json.data.request_id);
    clock.advance(5);
    const s0 = (await call(server, `/request-status/${ids[0]}`)).json.data;
    expect(s0).toMatchObject({ status: 'error', error_code: null, error_message: null });
    expect(server.jobs.get(ids[0] as string)?.outcome).toEqual({ outcome: 'error', code: 'PROCESSING_ERROR', message: 'gpu oom' });
    expect((await call(server, `/request-status/${ids[2]}`)).json.data.status).toBe('done');
  });

  it('failureRate and jitter are deterministic for a seed', async () => {
    const run = async (seed: number): Promise<string[]> => {
      const { server, clock } = await start({ seed, jobs: { failureRate: 0.5, jitter: 0.5, failureCodes: ['WORKER_TIMEOUT', 'UNKNOWN_ERROR'] } });
      const out: string[] = [];
      for (let i = 0; i < 12; i++) {
        const id = (await call(server, '/txt2img', { body: img({ prompt: `p${i}` }) })).json.data.request_id;
        const j = server.jobs.get(id);
        out.push(`${id}:${j?.finishedAt}:${j?.outcome.outcome === 'error' ? j.outcome.code : 'done'}`);
      }
      clock.advance(10_000);
      return out;
    };
    const a = await run(7);
    expect(await run(7)).toEqual(a);
    expect(await run(8)).not.toEqual(a);
    expect(a.some((s) => s.endsWith(':done'))).toBe(true);
    expect(a.some((s) => !s.endsWith(':done'))).toBe(true);
  });
});

describe('models, balance, price', () => {
  it('paginates models like Laravel and filters by inference type', async () => {
    const { server } = await start();
    const p1 = (await call(server, '/models?per_page=5')).json;
    expect(p1.data).toHaveLength(5);
    expect(p1.meta).toMatchObject({ current_page: 1, last_page: 3, per_page: 5, total: 12 });
    expect(p1.links.prev).toBeNull();
    expect(p1.links.next).toContain('page=2');
    const p3 = (await call(server, '/models?per_page=5&page=3')).json;
    expect(p3.data).toHaveLength(2);
    expect(p3.links.next).toBeNull();
    const f = (await call(server, `/models?${new URLSearchParams({ 'filter[inference_types]': 'txt2img,txt2embedding' })}`)).json;
    expect(f.data.map((m: Json) => m.slug)).toEqual(['Flux1schnell', 'ZImageTurbo_INT8', 'Bge_M3_FP16']);
    expect(f.data[0].info.limits).toMatchObject({ min_width: 256, max_width: 2048, min_steps: 1, max_steps: 10, resolution_step: 128 });
  });

  it('charges the price on submit and refuses with 422 when the balance is short', async () => {
    const { server } = await start();
    expect((await call(server, '/balance')).json).toEqual({ data: { balance: 1000 } });
    await call(server, '/txt2img', { body: img({ width: 1024, height: 1024 }) });
    expect((await call(server, '/balance')).json.data.balance).toBeCloseTo(1000 - 0.00306, 9);
    server.setBalance('acct-1', 0.001);
    const r = await call(server, '/txt2img', { body: img() });
    expect(r.status).toBe(422);
    expect(r.json).toEqual({ message: 'Insufficient balance.', errors: { balance: ['Insufficient balance to run this job.'] } });
    expect(server.jobs.size).toBe(1);
    expect(server.balance('acct-1')).toBe(0.001);
    expect(server.stats().insufficientBalance).toBe(1);
  });

  it('price-calculation matches the documented examples, validates, and charges nothing', async () => {
    const { server } = await start();
    expect((await call(server, '/txt2img/price-calculation', { body: img({ width: 768, height: 768 }) })).json).toEqual({ data: { price: 0.00187 } });
    expect((await call(server, '/txt2img/price-calculation', { body: img({ width: 1024, height: 1024 }) })).json).toEqual({ data: { price: 0.00306 } });
    expect((await call(server, '/txt2embedding/price-calculation', { body: { model: 'Bge_M3_FP16', input: 'x' } })).json).toEqual({ data: { price: 0.001 } });
    expect((await call(server, '/txt2img/price-calculation', { body: {} })).status).toBe(422);
    expect(server.balance('acct-1')).toBe(1000);
    expect(server.jobs.size).toBe(0);
  });
});

describe('rate limits', () => {
  it('fixed window with phase: Remaining counts down, 429 carries Retry-After to the window end', async () => {
    const { server, clock } = await start({ limits: { minute: { limit: 3, windowMs: 10_000, phaseMs: 2_000 } } });
    clock.set(T0 + 2_500); // window [T0+2000, T0+12000)
    const remaining: (string | string[] | undefined)[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await call(server, '/balance');
      expect(r.status).toBe(200);
      expect(r.headers['x-ratelimit-limit']).toBe('3');
      remaining.push(r.headers['x-ratelimit-remaining']);
    }
    expect(remaining).toEqual(['2', '1', '0']);
    const refused = await call(server, '/balance');
    expect(refused.status).toBe(429);
    expect(refused.json).toEqual({ message: 'Too Many Attempts.' });
    expect(refused.headers).toMatchObject({ 'retry-after': '10', 'x-ratelimit-type': 'minute', 'x-ratelimit-remaining': '0' });
    expect(refused.headers['x-ratelimit-daily-limit']).toBeUndefined();
    clock.set(T0 + 11_999);
    expect((await call(server, '/balance')).headers['retry-after']).toBe('1');
    clock.set(T0 + 12_000);
    const again = await call(server, '/balance');
    expect(again.status).toBe(200);
    expect(again.headers['x-ratelimit-remaining']).toBe('2');
    expect(server.stats().rejected429).toEqual({ minute: 2, daily: 0, total: 2 });
    expect(server.acceptedLog('acct-1')).toEqual([T0 + 2_500, T0 + 2_500, T0 + 2_500, T0 + 12_000]);
    expect(server.maxInAnyWindow()).toBe(3);
    expect(server.maxInAnyWindow(20_000, 'acct-1', 'sliding')).toBe(4);
  });

  it('sliding: Retry-After is when the oldest entry expires', async () => {
    const { server, clock } = await start({ limits: { minute: { limit: 2, windowMs: 10_000, kind: 'sliding' } } });
    await call(server, '/balance');
    clock.set(T0 + 4_000);
    await call(server, '/balance');
    clock.set(T0 + 5_000);
    expect((await call(server, '/balance')).headers['retry-after']).toBe('5');
    clock.set(T0 + 10_000);
    const ok = await call(server, '/balance');
    expect(ok.status).toBe(200);
    expect(ok.headers['x-ratelimit-remaining']).toBe('0');
    clock.set(T0 + 10_001);
    const r = await call(server, '/balance');
    expect(r.status).toBe(429);
    expect(r.headers['retry-after']).toBe('4'); // (T0+4000+10000) - (T0+10001) = 3999 ms
    expect(server.maxInAnyWindow()).toBe(2);
  });

  it('first-hit: the window opens at the first counted hit', async () => {
    const { server, clock } = await start({ limits: { minute: { limit: 2, windowMs: 10_000, kind: 'first-hit' } } });
    clock.set(T0 + 3_000);
    await call(server, '/balance');
    clock.set(T0 + 3_500);
    await call(server, '/balance');
    clock.set(T0 + 4_000);
    expect((await call(server, '/balance')).headers['retry-after']).toBe('9');
    clock.set(T0 + 12_999);
    expect((await call(server, '/balance')).status).toBe(429);
    clock.set(T0 + 13_000);
    expect((await call(server, '/balance')).status).toBe(200);
  });

  it('polls count against the window unless countPolls is false', async () => {
    const { server } = await start({ limits: { minute: { limit: 3 } } });
    const id = (await call(server, '/txt2img', { body: img() })).json.data.request_id;
    expect((await call(server, `/request-status/${id}`)).headers['x-ratelimit-remaining']).toBe('1');
    expect((await call(server, `/request-status/${id}`)).headers['x-ratelimit-remaining']).toBe('0');
    expect((await call(server, `/request-status/${id}`)).status).toBe(429);

    const { server: s2 } = await start({ limits: { minute: { limit: 3 } }, countPolls: false });
    const id2 = (await call(s2, '/txt2img', { body: img() })).json.data.request_id;
    for (let i = 0; i < 5; i++) {
      const r = await call(s2, `/request-status/${id2}`);
      expect(r.status).toBe(200);
      expect(r.headers['x-ratelimit-remaining']).toBe('2');
    }
    expect(s2.stats()).toMatchObject({ accepted: 1, polls: 5 });
  });

  it('daily limit: headers, 429 with X-RateLimit-Type daily and Retry-After to midnight UTC; daily wins', async () => {
    const clock = new ManualClock(Date.UTC(2024, 0, 15, 23, 59, 0));
    const { server } = await start({ clock, limits: { minute: { limit: 3 }, daily: { limit: 3 } } });
    const daily: unknown[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await call(server, '/balance');
      expect(r.headers['x-ratelimit-daily-limit']).toBe('3');
      daily.push(r.headers['x-ratelimit-daily-remaining']);
    }
    expect(daily).toEqual(['2', '1', '0']);
    const r = await call(server, '/balance');
    expect(r.status).toBe(429);
    expect(r.headers).toMatchObject({ 'x-ratelimit-type': 'daily', 'retry-after': '60', 'x-ratelimit-daily-remaining': '0', 'x-ratelimit-remaining': '0' });
    expect(server.stats().rejected429).toMatchObject({ daily: 1, minute: 0 });
    clock.set(Date.UTC(2024, 0, 16));
    expect((await call(server, '/balance')).status).toBe(200);
  });

  it('routeLimits: listed routes count on their own, each with its numbers; the rest share the account\'s', async () => {
    const { server } = await start({
      limits: { minute: { limit: 5, windowMs: 1000 }, daily: { limit: 100, windowMs: 20_000 } },
      routeLimits: { txt2img: { minute: { limit: 2 }, daily: { limit: 3 } }, txt2embedding: { minute: { limit: 4 } } },
    });
    const emb = { input: 'hello', model: 'Bge_M3_FP16' };
    const a = await call(server, '/txt2img', { body: img() });
    const b = await call(server, '/txt2embedding', { body: emb });
    const c = await call(server, '/balance');
    // Each route reads its own counters: limits of its own, windows like the account's.
    expect(a.headers).toMatchObject({ 'x-ratelimit-limit': '2', 'x-ratelimit-remaining': '1', 'x-ratelimit-daily-limit': '3', 'x-ratelimit-daily-remaining': '2' });
    expect(b.headers).toMatchObject({ 'x-ratelimit-limit': '4', 'x-ratelimit-remaining': '3', 'x-ratelimit-daily-limit': '100', 'x-ratelimit-daily-remaining': '99' });
    expect(c.headers).toMatchObject({ 'x-ratelimit-limit': '5', 'x-ratelimit-remaining': '4', 'x-ratelimit-daily-remaining': '99' });
    expect((await call(server, '/txt2img', { body: img() })).status).toBe(200);
    const refused = await call(server, '/txt2img', { body: img() });
    expect(refused.status).toBe(429);
    expect(refused.headers).toMatchObject({ 'x-ratelimit-type': 'minute', 'retry-after': '1' });
    // txt2img's spent minute refuses nothing else.
    expect((await call(server, '/txt2embedding', { body: emb })).headers['x-ratelimit-remaining']).toBe('2');
    expect(server.routeAcceptedLog('txt2img')).toEqual([T0, T0]);
    expect(server.routeAcceptedLog('txt2embedding')).toHaveLength(2);
    expect(server.routeMaxInAnyWindow('txt2img')).toBe(2);
    expect(server.acceptedLog('acct-1')).toEqual([T0]);
    expect(() => server.routeAcceptedLog('models')).toThrow(/no limits of its own/);
    await expect(start({ routeLimits: { txt2imgg: { minute: { limit: 1 } } } })).rejects.toThrow(/routeLimits\.txt2imgg/);
  });

  it('limits are per account: keys of one account share them', async () => {
    const { server } = await start({ accounts: { k1: 'a', k2: 'a', k3: 'b' }, limits: { minute: { limit: 2 } } });
    expect((await call(server, '/balance', { key: 'k1' })).status).toBe(200);
    expect((await call(server, '/balance', { key: 'k2' })).status).toBe(200);
    expect((await call(server, '/balance', { key: 'k1' })).status).toBe(429);
    expect((await call(server, '/balance', { key: 'k3' })).status).toBe(200);
    expect(server.acceptedLog()).toEqual({ a: [T0, T0], b: [T0] });
  });

  it('setLimits mid-run takes effect immediately', async () => {
    const { server } = await start({ limits: { minute: { limit: 5 } } });
    for (let i = 0; i < 3; i++) await call(server, '/balance');
    server.setLimits({ minute: 2 });
    const r = await call(server, '/balance');
    expect(r.status).toBe(429);
    expect(r.headers).toMatchObject({ 'x-ratelimit-limit': '2', 'x-ratelimit-remaining': '0' });
    server.setLimits({ minute: 10, daily: 4 }, 'acct-1');
    const ok = await call(server, '/balance');
    expect(ok.headers).toMatchObject({ 'x-ratelimit-limit': '10', 'x-ratelimit-remaining': '6', 'x-ratelimit-daily-remaining': '3' });
    expect(() => server.setLimits({ minute: -1 })).toThrow(TypeError);
    expect(() => server.setLimits({ minute: 1 }, 'nope')).toThrow(/Unknown account/);
  });

  it('header options: missingRate, onSuccess=false, retry-after-ms, http-date', async () => {
    const { server } = await start({ limits: { minute: { limit: 1 } }, headers: { missingRate: 1 } });
    const ok = await call(server, '/balance');
    expect(rateHeaderNames(ok.headers)).toEqual([]);
    const refused = await call(server, '/balance');
    expect(refused.status).toBe(429);
    expect(rateHeaderNames(refused.headers)).toEqual([]);
    expect(refused.headers['retry-after']).toBe('60');

    const { server: s2, clock } = await start({
      limits: { minute: { limit: 1 } },
      headers: { onSuccess: false, retryAfterMs: true, retryAfterFormat: 'http-date' },
    });
    clock.set(T0 + 500);
    expect(rateHeaderNames((await call(s2, '/balance')).headers)).toEqual([]);
    const r2 = await call(s2, '/balance');
    expect(r2.headers).toMatchObject({ 'x-ratelimit-limit': '1', 'x-ratelimit-type': 'minute', 'retry-after-ms': '59500' });
    expect(r2.headers['retry-after']).toBe(new Date(T0 + 60_000).toUTCString());
  });

  it('maxInAnyWindow over many requests never exceeds the limit', async () => {
    const { server, clock } = await start({ limits: { minute: { limit: 4, windowMs: 1000 } } });
    let ok = 0;
    for (let i = 0; i < 60; i++) {
      clock.advance(97);
      if ((await call(server, '/balance')).status === 200) ok++;
    }
    expect(server.maxInAnyWindow()).toBe(4);
    expect(server.acceptedLog('acct-1')).toHaveLength(ok);
    expect(server.stats().accepted).toBe(ok);
    expect(server.stats().rejected429.total).toBe(60 - ok);
  });
});

describe('faults', () => {
  it('500: counted, JSON, rate-limit headers, no job', async () => {
    const { server } = await start();
    server.failNext('500');
    const r = await call(server, '/txt2img', { body: img() });
    expect(r.status).toBe(500);
    expect(r.json).toEqual({ message: 'Server Error' });
    expect(r.headers['x-ratelimit-remaining']).toBe('299');
    expect(server.jobs.size).toBe(0);
    expect(server.stats()).toMatchObject({ accepted: 1, injected5xx: 1 });
  });

  it.each(['502', '503'] as const)('%s: gateway HTML, not counted, no rate-limit headers', async (kind) => {
    const { server } = await start();
    server.failNext(kind);
    const r = await call(server, '/txt2img', { body: img() });
    expect(r.status).toBe(Number(kind));
    expect(r.headers['content-type']).toBe('text/html');
    expect(r.text).toContain(`<h1>${kind}`);
    expect(rateHeaderNames(r.headers)).toEqual([]);
    expect(server.stats()).toMatchObject({ accepted: 0, injected5xx: 1 });
    expect(server.jobs.size).toBe(0);
  });

  it('reset: socket destroyed, nothing counted or created', async () => {
    const { server } = await start();
    server.failNext('reset');
    await expect(call(server, '/txt2img', { body: img() })).rejects.toThrow();
    expect(server.jobs.size).toBe(0);
    expect(server.stats()).toMatchObject({ accepted: 0, resetsInjected: 1 });
    expect((await call(server, '/balance')).status).toBe(200);
  });

  it('accept-then-reset: job created and charged, then the socket is destroyed', async () => {
    const { server } = await start();
    server.failNext('accept-then-reset');
    await expect(call(server, '/txt2img', { body: img() })).rejects.toThrow();
    expect(server.jobs.size).toBe(1);
    expect(server.balance('acct-1')).toBeLessThan(1000);
    expect(server.stats()).toMatchObject({ accepted: 1, resetsInjected: 1 });
  });

  it('slow: the response waits slowMs on the server clock', async () => {
    const { server, clock } = await start({ faults: { slowMs: 5_000 } });
    server.failNext('slow');
    let settled = false;
    const p = call(server, '/balance').finally(() => {
      settled = true;
    });
    await waitFor(() => clock.pendingTimers > 0, 'the slow timer');
    await new Promise((r) => setTimeout(r, 20));
    expect(settled).toBe(false);
    clock.advance(5_000);
    expect((await p).status).toBe(200);
  });

  it('malformed-json, no-headers and 401', async () => {
    const { server } = await start();
    server.failNext('malformed-json');
    const m = await call(server, '/balance');
    expect(m.status).toBe(200);
    expect(m.text.length).toBeGreaterThan(0);
    expect(() => JSON.parse(m.text)).toThrow();

    server.failNext('no-headers');
    const n = await call(server, '/balance');
    expect(n.status).toBe(200);
    expect(rateHeaderNames(n.headers)).toEqual([]);

    server.failNext('401');
    expect((await call(server, '/balance')).status).toBe(401);
    expect((await call(server, '/balance')).status).toBe(200);
    expect(server.stats().injected).toMatchObject({ 'malformed-json': 1, 'no-headers': 1, '401': 1 });
  });

  it('failNext honours count and filter', async () => {
    const { server } = await start();
    server.failNext('503', 2, (r) => r.submit);
    expect((await call(server, '/balance')).status).toBe(200);
    expect((await call(server, '/txt2img', { body: img() })).status).toBe(503);
    expect((await call(server, '/txt2img', { body: img() })).status).toBe(503);
    expect((await call(server, '/txt2img', { body: img() })).status).toBe(200);
    expect(() => server.failNext('nope' as never)).toThrow(TypeError);
  });

  it('random faults are reproducible for a seed and never touch /storage', async () => {
    const run = async (): Promise<number[]> => {
      const { server } = await start({ seed: 42, faults: { error5xxRate: 0.5 } });
      const out: number[] = [];
      for (let i = 0; i < 20; i++) out.push((await call(server, '/balance')).status);
      return out;
    };
    const a = await run();
    expect(await run()).toEqual(a);
    expect(a.filter((s) => s >= 500).length).toBeGreaterThan(2);
    expect(a.filter((s) => s === 200).length).toBeGreaterThan(2);

    const { server, clock } = await start({ jobs: { pendingMs: 0, processingMs: 0 } });
    const id = (await call(server, '/txt2img', { body: img() })).json.data.request_id;
    server.setFaults({ resetRate: 1 });
    clock.advance(1);
    expect((await request(`${server.url}/storage/${id}.png`)).statusCode).toBe(200);
    await expect(call(server, '/balance')).rejects.toThrow();
  });
});

describe('webhooks', () => {
  const secret = 'whsec_unit';

  it('delivers signed job.processing and job.completed to a job webhook_url', async () => {
    const hook = await receiver();
    try {
      const { server, clock } = await start({ webhook: { secret } });
      const id = (await call(server, '/txt2img', { body: img({ webhook_url: hook.url }) })).json.data.request_id;
      clock.advance(200);
      await server.flushWebhooks();
      clock.advance(1000);
      await server.flushWebhooks();
      expect(hook.got.map((g) => g.body.event)).toEqual(['job.processing', 'job.completed']);
      for (const g of hook.got) {
        const ts = g.headers['x-modelbeam-timestamp'] as string;
        const expected = `sha256=${createHmac('sha256', secret).update(`${ts}.${g.raw}`).digest('hex')}`;
        expect(g.headers['x-modelbeam-signature']).toBe(expected);
        expect(signWebhook(secret, ts, g.raw)).toBe(expected);
        expect(g.headers['content-type']).toBe('application/json');
        expect(g.headers['x-modelbeam-event']).toBe(g.body.event);
        expect(g.headers['x-modelbeam-delivery-id']).toBe(g.body.delivery_id);
      }
      const [p, c] = hook.got;
      expect(p?.headers['x-modelbeam-timestamp']).toBe(String(Math.floor((T0 + 200) / 1000)));
      expect(p?.body).toMatchObject({
        timestamp: new Date(T0 + 200).toISOString(),
        data: { job_request_id: id, status: 'processing', previous_status: 'pending', job_type: 'txt2img' },
      });
      expect(c?.body.data).toMatchObject({
        job_request_id: id,
        status: 'done',
        previous_status: 'processing',
        result_url: `${server.url}/storage/${id}.png`,
        processing_time_ms: 1000,
        completed_at: new Date(T0 + 1200).toISOString(),
      });
      expect(server.stats().webhooks).toMatchObject({ delivered: 2, failedAttempts: 0 });
    } finally {
      await hook.close();
    }
  });

  it('job.failed carries the error code even when the status hides it', async () => {
    const hook = await receiver();
    try {
      const { server, clock } = await start({ webhook: { url: hook.url }, jobs: { errorFieldsInStatus: false, pendingMs: 0, processingMs: 10 } });
      const id = (await call(server, '/txt2img', { body: img({ prompt: 'FAIL:CONTEXT_LENGTH_EXCEEDED' }) })).json.data.request_id;
      clock.advance(10);
      await server.flushWebhooks();
      expect((await call(server, `/request-status/${id}`)).json.data).toMatchObject({ status: 'error', error_code: null });
      const failed = hook.got.find((g) => g.body.event === 'job.failed');
      expect(failed?.body.data).toMatchObject({ job_request_id: id, status: 'error', error_code: 'CONTEXT_LENGTH_EXCEEDED', error_message: expect.any(String) });
    } finally {
      await hook.close();
    }
  });

  it('retries a failed delivery with backoff under the same delivery id', async () => {
    const hook = await receiver([500, 503]);
    try {
      const { server, clock } = await start({ webhook: { url: hook.url, retryBaseMs: 1000 }, jobs: { pendingMs: 0, processingMs: 60_000 } });
      await call(server, '/txt2img', { body: img() });
      clock.advance(0);
      await server.flushWebhooks();
      expect(hook.got).toHaveLength(1);
      clock.advance(999);
      await server.flushWebhooks();
      expect(hook.got).toHaveLength(1);
      clock.advance(1);
      await server.flushWebhooks();
      expect(hook.got).toHaveLength(2);
      clock.advance(2000); // second backoff: 2 s
      await server.flushWebhooks();
      expect(hook.got).toHaveLength(3);
      const ids = new Set(hook.got.map((g) => g.headers['x-modelbeam-delivery-id']));
      expect(ids.size).toBe(1);
      expect(server.webhookLog().map((a) => [a.attempt, a.outcome, a.status])).toEqual([
        [1, 'failed', 500],
        [2, 'failed', 503],
        [3, 'delivered', 200],
      ]);
    } finally {
      await hook.close();
    }
  });

  it('disables the account webhook after N consecutive failures; enableWebhook re-enables it', async () => {
    const hook = await receiver(Array.from({ length: 100 }, () => 500));
    try {
      const { server, clock } = await start({
        webhook: { url: hook.url, retryBaseMs: 10, disableAfterFailures: 3, maxAttempts: 10 },
        jobs: { pendingMs: 0, processingMs: 100_000 },
      });
      await call(server, '/txt2img', { body: img() });
      for (let i = 0; i < 6; i++) {
        clock.advance(i === 0 ? 0 : 1000);
        await server.flushWebhooks();
      }
      expect(hook.got).toHaveLength(3);
      expect(server.stats().webhooks).toMatchObject({ failedAttempts: 3, disabledAccounts: ['acct-1'] });

      await call(server, '/txt2img', { body: img() });
      clock.advance(0);
      await server.flushWebhooks();
      expect(hook.got).toHaveLength(3);
      expect(server.stats().webhooks.dropped).toBeGreaterThanOrEqual(1);

      hook.got.length = 0;
      server.enableWebhook('acct-1');
      await call(server, '/txt2img', { body: img() });
      clock.advance(0);
      await server.flushWebhooks();
      expect(hook.got).toHaveLength(1);
      expect(server.stats().webhooks.disabledAccounts).toEqual([]);
    } finally {
      await hook.close();
    }
  });

  it('times out a receiver that does not answer within timeoutMs', async () => {
    const hang = createServer(() => {
      /* never answers */
    });
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(hang.address() as AddressInfo).port}/`;
    try {
      const { server, clock } = await start({ webhook: { url, timeoutMs: 5_000, maxAttempts: 1 }, jobs: { pendingMs: 0, processingMs: 100_000 } });
      await call(server, '/txt2img', { body: img() });
      clock.advance(0);
      await waitFor(() => server.webhookLog().length === 0 && clock.pendingTimers >= 2, 'the delivery to start');
      clock.advance(5_000);
      await server.flushWebhooks();
      expect(server.webhookLog()[0]).toMatchObject({ outcome: 'failed', error: expect.stringContaining('timed out') });
      expect(server.stats().webhooks.exhausted).toBe(1);
    } finally {
      hang.closeAllConnections();
      hang.close();
    }
  });

  it('reorder sends the terminal event before job.processing; duplicateRate repeats a delivery', async () => {
    const hook = await receiver();
    try {
      const { server, clock } = await start({ webhook: { url: hook.url, reorder: true, duplicateRate: 1 }, jobs: { pendingMs: 0, processingMs: 10 } });
      await call(server, '/txt2img', { body: img() });
      clock.advance(10);
      await waitFor(() => hook.got.length === 4, 'four deliveries');
      await server.flushWebhooks();
      const events = hook.got.map((g) => g.body.event);
      expect(events.indexOf('job.completed')).toBeLessThan(events.indexOf('job.processing'));
      const byId = new Map<string, number>();
      for (const g of hook.got) byId.set(g.body.delivery_id, (byId.get(g.body.delivery_id) ?? 0) + 1);
      expect([...byId.values()]).toEqual([2, 2]);
      expect(server.stats().webhooks.duplicates).toBe(2);
    } finally {
      await hook.close();
    }
  });
});

describe('close', () => {
  it('clears every timer and refuses connections afterwards', async () => {
    const { server, clock } = await start({ webhook: { url: 'http://127.0.0.1:9/never' } });
    await call(server, '/txt2img', { body: img() });
    expect(clock.pendingTimers).toBeGreaterThan(0);
    await server.close();
    expect(clock.pendingTimers).toBe(0);
    await expect(request(`${server.baseUrl}/balance`)).rejects.toThrow();
    await server.close(); // idempotent
  });
});

describe('fake server: simulated latency and the log of refusals', () => {
  const settle = async (): Promise<void> => {
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  };

  it('latencyMs: a request is counted after up to half of it and answered after up to half again (server clock)', async () => {
    const { server, clock } = await start({ latencyMs: 100, limits: { minute: { limit: 5, windowMs: 10_000 } } });
    let answered = false;
    const pending = call(server, '/balance').then((r) => {
      answered = true;
      return r;
    });
    await settle();
    expect(server.acceptedLog('acct-1')).toEqual([]); // still on its way in
    clock.advance(50);
    await settle();
    const [countedAt] = server.acceptedLog('acct-1');
    expect(countedAt).toBeGreaterThan(T0);
    expect(countedAt).toBeLessThanOrEqual(T0 + 50);
    expect(answered).toBe(false); // on its way back
    clock.advance(50);
    expect((await pending).status).toBe(200);
  });

  it('refusedLog: time, account, window and route of every 429', async () => {
    const { server, clock } = await start({ limits: { minute: { limit: 1, windowMs: 10_000 }, daily: { limit: 2 } } });
    expect((await call(server, '/balance')).status).toBe(200);
    clock.advance(1_000);
    expect((await call(server, '/balance')).status).toBe(429);
    clock.advance(10_000);
    expect((await call(server, '/txt2img', { body: img() })).status).toBe(200);
    clock.advance(10_000);
    expect((await call(server, '/balance')).status).toBe(429);
    expect(server.refusedLog()).toEqual([
      { at: T0 + 1_000, account: 'acct-1', type: 'minute', route: 'GET /balance' },
      { at: T0 + 21_000, account: 'acct-1', type: 'daily', route: 'GET /balance' },
    ]);
  });
});
