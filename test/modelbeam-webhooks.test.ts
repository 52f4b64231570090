import { connect } from 'node:net';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { JobFailedError, WebhookVerificationError } from '../src/errors/index.js';
import {
  createWebhookHandler,
  listenWebhookServer,
  verifyWebhook,
  type ModelBeamClient,
  type ModelBeamClientEvents,
  type WebhookEvent,
} from '../src/modelbeam/index.js';
import { ManualClock, signWebhook } from '../src/testing/index.js';
import { closeAll, harness, img, until } from './modelbeam-harness.js';

const SECRET = 'whsec_test';
const NOW = Date.UTC(2024, 0, 1, 12); // ms
const TS = NOW / 1000;

afterEach(closeAll);

function body(event: string, requestId: string, extra: Record<string, unknown> = {}, deliveryId = `d-${Math.random()}`): string {
  const status = event === 'job.completed' ? 'done' : event === 'job.failed' ? 'error' : 'processing';
  return JSON.stringify({ event, delivery_id: deliveryId, timestamp: new Date(NOW).toISOString(), data: { job_request_id: requestId, status, ...extra } });
}

function signed(raw: string, options: { secret?: string; ts?: number; event?: string } = {}): Record<string, string> {
  const ts = options.ts ?? TS;
  return {
    'content-type': 'application/json',
    'x-modelbeam-signature': signWebhook(options.secret ?? SECRET, ts, raw),
    'x-modelbeam-timestamp': String(ts),
    ...(options.event ? { 'x-modelbeam-event': options.event } : {}),
  };
}

function record<K extends keyof ModelBeamClientEvents>(client: ModelBeamClient, name: K): ModelBeamClientEvents[K][] {
  const seen: ModelBeamClientEvents[K][] = [];
  client.on(name, (e) => seen.push(e));
  return seen;
}

async function post(url: string, raw: string, headers: Record<string, string>): Promise<{ status: number; text: string }> {
  const res = await request(url, { method: 'POST', headers, body: raw });
  return { status: res.statusCode, text: await res.body.text() };
}

describe('verifyWebhook', () => {
  const raw = body('job.completed', 'r1', { result_url: 'https://s/r1.png' }, 'd-1');
  const verify = (headers: Record<string, string>, over: { body?: string; now?: number; secret?: string | string[] } = {}): WebhookEvent =>
    verifyWebhook(over.body ?? raw, headers, { secret: over.secret ?? SECRET, now: over.now ?? NOW });

  it('accepts a valid delivery and reads the signed body first', () => {
    const event = verify(signed(raw, { event: 'job.processing' }));
    expect(event).toMatchObject({ event: 'job.completed', deliveryId: 'd-1', requestId: 'r1', status: 'done', timestamp: TS });
    expect(event.data['result_url']).toBe('https://s/r1.png');
    expect(verifyWebhook(Buffer.from(raw), new Headers(signed(raw)), { secret: SECRET, now: NOW }).requestId).toBe('r1');
  });

  it.each<[string, () => Record<string, string>, { body?: string; now?: number; secret?: string | string[] }, string, number]>([
    ['wrong secret', () => signed(raw, { secret: 'other' }), {}, 'bad-signature', 401],
    ['tampered body', () => signed(raw), { body: raw.replace('r1', 'r2') }, 'bad-signature', 401],
    ['no signature', () => ({ 'x-modelbeam-timestamp': String(TS) }), {}, 'missing-signature', 401],
    ['no timestamp', () => ({ 'x-modelbeam-signature': signWebhook(SECRET, TS, raw) }), {}, 'missing-timestamp', 401],
    ['timestamp not seconds', () => ({ ...signed(raw), 'x-modelbeam-timestamp': '2024-01-01' }), {}, 'malformed-timestamp', 401],
    ['signature not hex', () => ({ ...signed(raw), 'x-modelbeam-signature': 'sha256=zz' }), {}, 'malformed-signature', 401],
    ['signed with another timestamp', () => ({ ...signed(raw), 'x-modelbeam-timestamp': String(TS + 1) }), {}, 'bad-signature', 401],
    ['stale (301 s)', () => signed(raw, { ts: TS - 301 }), {}, 'stale', 401],
    ['from the future (301 s)', () => signed(raw, { ts: TS + 301 }), {}, 'future', 401],
    ['signed, not JSON', () => signed('not json'), { body: 'not json' }, 'malformed-body', 400],
    ['signed, JSON but not an object', () => signed('[1]'), { body: '[1]' }, 'malformed-body', 400],
  ])('rejects: %s', (_name, headers, over, reason, status) => {
    let error: unknown;
    try {
      verify(headers(), over);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(WebhookVerificationError);
    expect(error).toMatchObject({ reason, status, code: 'WEBHOOK_INVALID' });
    expect(String((error as Error).message)).not.toContain(SECRET);
  });

  it('accepts up to the tolerance either way, and any secret of a rotation', () => {
    expect(verify(signed(raw, { ts: TS - 300 })).requestId).toBe('r1');
    expect(verify(signed(raw, { ts: TS + 300 })).requestId).toBe('r1');
    expect(verify(signed(raw, { secret: 'new' }), { secret: ['old', 'new'] }).requestId).toBe('r1');
    expect(verify({ ...signed(raw), 'x-modelbeam-signature': `sha256=${'0'.repeat(64)}, ${signWebhook(SECRET, TS, raw)}` }).requestId).toBe('r1');
  });
});

describe('webhook handler over node:http', () => {
  async function serve(options: Partial<Parameters<typeof createWebhookHandler>[0]> = {}) {
    const events: WebhookEvent[] = [];
    const rejected: string[] = [];
    const clock = new ManualClock(NOW);
    const handler = createWebhookHandler({
      secret: SECRET,
      clock,
      onEvent: (e) => {
        events.push(e);
      },
      onRejected: (r) => rejected.push(r.reason),
      ...options,
    });
    const server = await listenWebhookServer(handler, { port: 0 });
    return { server, events, rejected, clock, handler, close: () => server.close() };
  }

  it('answers 200 at once, even with a consumer that never finishes', async () => {
    let calls = 0;
    const s = await serve({ onEvent: () => new Promise<void>(() => void calls++) });
    const raw = body('job.completed', 'r1');
    expect((await post(s.server.url, raw, signed(raw))).status).toBe(200);
    await until(() => calls === 1, 'consumer called');
    await s.close();
  });

  it('dedupes by delivery id and by (request id, event), with bounded memory', async () => {
    const s = await serve({ dedupeSize: 2 });
    const a = body('job.completed', 'r1', {}, 'd-1');
    expect((await post(s.server.url, a, signed(a))).text).toBe('{"received":true}');
    expect((await post(s.server.url, a, signed(a))).text).toBe('{"received":true,"duplicate":true}');
    const sameJobOtherId = body('job.completed', 'r1', {}, 'd-2');
    expect((await post(s.server.url, sameJobOtherId, signed(sameJobOtherId))).text).toContain('duplicate');
    // A forged delivery must not enter the dedupe memory.
    const forged = body('job.completed', 'r9', {}, 'd-9');
    expect((await post(s.server.url, forged, signed(forged, { secret: 'x' }))).status).toBe(401);
    const real = body('job.completed', 'r9', {}, 'd-9');
    expect((await post(s.server.url, real, signed(real))).text).toBe('{"received":true}');
    await until(() => s.events.length === 2, 'two events');
    expect(s.events.map((e) => e.deliveryId)).toEqual(['d-1', 'd-9']);
    await s.close();
  });

  it('dedupeSize bounds the memory: the oldest delivery is forgotten (treated as new), the newest still deduplicated', async () => {
    const events: string[] = [];
    const duplicates: [string | undefined, string][] = [];
    const handler = createWebhookHandler({
      secret: SECRET,
      clock: new ManualClock(NOW),
      dedupeSize: 2,
      onEvent: (e) => void events.push(e.deliveryId ?? ''),
      onDuplicate: (e, by) => duplicates.push([e.deliveryId, by]),
    });
    // Distinct delivery ids and distinct jobs, so neither dedupe key (delivery id, request id + event) is shared.
    const deliveries = [1, 2, 3].map((i) => body('job.completed', `r${i}`, {}, `d-${i}`));
    const send = (raw: string) => handler.process(raw, signed(raw));
    for (const raw of deliveries) expect(send(raw)).toMatchObject({ status: 200, body: '{"received":true}' });
    expect(send(deliveries[0] as string).duplicate).toBeUndefined(); // d-1 was pushed out by d-3: new again
    expect(send(deliveries[2] as string)).toMatchObject({ status: 200, duplicate: 'delivery-id' }); // d-3 is still remembered
    expect(send(deliveries[0] as string)).toMatchObject({ status: 200, duplicate: 'delivery-id' }); // and d-1 is again
    expect(send(deliveries[1] as string).duplicate).toBeUndefined(); // d-2 was pushed out by the re-sent d-1
    await new Promise((resolve) => setImmediate(resolve)); // onEvent runs after the answer
    expect(events).toEqual(['d-1', 'd-2', 'd-3', 'd-1', 'd-2']);
    expect(duplicates).toEqual([
      ['d-3', 'delivery-id'],
      ['d-1', 'delivery-id'],
    ]);
  });

  it('refuses wrong methods, oversized and non-JSON bodies, and never calls the consumer', async () => {
    const s = await serve({ maxBodyBytes: 64 });
    const get = await request(s.server.url, { method: 'GET' });
    expect([get.statusCode, get.headers['allow']]).toEqual([405, 'POST']);
    await get.body.dump();
    const big = 'x'.repeat(200);
    expect((await post(s.server.url, big, signed(big))).status).toBe(413);
    const notJson = 'hello';
    expect((await post(s.server.url, notJson, signed(notJson))).status).toBe(400);
    expect((await post(s.server.url, '{}', {})).status).toBe(401);
    expect(s.rejected).toEqual(['method-not-allowed', 'too-large', 'malformed-body', 'missing-signature']);
    expect(s.events).toEqual([]);
    await s.close();
  });

  it('times out a slow body on the injected clock (408)', async () => {
    const s = await serve({ bodyTimeoutMs: 10_000 });
    const port = s.server.port;
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    socket.on('data', (c: Buffer) => (answer += c.toString()));
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"event":');
    await until(() => s.clock.pendingTimers > 0, 'body timer armed');
    s.clock.advance(10_000);
    await until(() => answer.includes('408'), '408 answer');
    expect(s.rejected).toEqual(['body-timeout']);
    socket.destroy();
    await s.close();
  });

  it('process() serves raw-body adapters (express, fastify)', () => {
    const handler = createWebhookHandler({ secret: SECRET, clock: new ManualClock(NOW), onEvent: () => {} });
    const raw = body('job.failed', 'r5', { error_code: 'WORKER_TIMEOUT' });
    expect(handler.process(Buffer.from(raw), signed(raw))).toMatchObject({ status: 200, event: { event: 'job.failed', requestId: 'r5' } });
    expect(handler.process(raw, signed(raw, { secret: 'x' }))).toMatchObject({ status: 401, rejection: { reason: 'bad-signature' } });
    expect(() => handler.verify(raw, {})).toThrow(WebhookVerificationError);
    expect(() => createWebhookHandler({ secret: '', onEvent: () => {} })).toThrow(/secret/);
  });
});

describe('the client with webhooks', () => {
  async function webhookHarness(server: Parameters<typeof harness>[0] = {}, client: Parameters<typeof harness>[1] = {}) {
    const h = await harness(server, { webhook: { url: 'http://127.0.0.1:9/unused', secret: SECRET }, ...client });
    const wh = await h.client.startWebhookServer({ port: 0 });
    h.client.setWebhookUrl(wh.url);
    return { ...h, wh };
  }

  it('valid deliveries complete jobs with no polls: at most 1.05 requests per job', async () => {
    // 50 ms jobs: with the fast polling's 40 ms estimate, a delivery held up > 120 ms by a loaded machine would draw a
    // safety-net poll. That is the net working, not what this test is about: give it 400 ms.
    const h = await webhookHarness({}, { polling: { overdueFactor: 10 } });
    const accepted = record(h.client, 'webhookAccepted');
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => h.client.generate('txt2img', img({ prompt: `wh ${i}` }))));
    expect(results.every((r) => r.status === 'done' && r.resultUrl?.endsWith('.png'))).toBe(true);
    const stats = h.client.stats();
    expect(stats.requestsPerCompletedJob).toBeLessThanOrEqual(1.05);
    expect(stats.webhookMode).toBe(true);
    expect(accepted.length).toBeGreaterThanOrEqual(20);
    expect(h.server.jobs.get(results[0]?.requestId ?? '')?.webhookUrl).toBe(h.wh.url);
  });

  it('text results a delivery does not carry are fetched with one status request', async () => {
    const h = await webhookHarness();
    const result = await h.client.generate('img2txt', { image: Buffer.from('89504e47', 'hex'), model: 'Nanonets_Ocr_S_F16' });
    expect(result.result).toMatch(/^Fake OCR text/);
    expect(h.client.stats().polls).toBe(1);
  });

  it('forged and stale deliveries get 401 and an event, and change nothing', async () => {
    const h = await webhookHarness({ jobs: { processingMs: 400 } });
    const rejected = record(h.client, 'webhookRejected');
    const { requestId } = await h.client.submit('txt2img', img());
    let settled = false;
    const waiting = h.client.wait(requestId).then((r) => {
      settled = true;
      return r;
    });
    const forged = body('job.failed', requestId, { error_code: 'AGE_RESTRICTED' });
    const now = Math.floor(Date.now() / 1000);
    expect((await post(h.wh.url, forged, signed(forged, { secret: 'guess', ts: now }))).status).toBe(401);
    expect((await post(h.wh.url, forged, signed(forged, { ts: now - 3600 }))).status).toBe(401);
    expect((await post(h.wh.url, forged, { 'content-type': 'application/json' })).status).toBe(401);
    expect(rejected.map((r) => r.reason)).toEqual(['bad-signature', 'stale', 'missing-signature']);
    expect(settled).toBe(false);
    await expect(waiting).resolves.toMatchObject({ status: 'done' }); // the real outcome, not the forged one
    expect(h.client.stats()).toMatchObject({ webhooksRejected: 3, failed: 0, completed: 1 });
  });

  it('duplicated deliveries are acknowledged and ignored', async () => {
    const h = await webhookHarness({ webhook: { duplicateRate: 1 } });
    const completed = record(h.client, 'completed');
    await Promise.all(Array.from({ length: 5 }, (_, i) => h.client.generate('txt2img', img({ prompt: `dup ${i}` }))));
    await until(() => h.client.stats().webhooksDuplicate >= 10, 'duplicates seen');
    expect(completed).toHaveLength(5);
    expect(h.client.stats().completed).toBe(5);
  });

  it('reordered deliveries never move a finished job back', async () => {
    const h = await webhookHarness({ webhook: { reorder: true } });
    const changes = record(h.client, 'statusChanged');
    const results = await Promise.all(Array.from({ length: 5 }, (_, i) => h.client.generate('txt2img', img({ prompt: `reorder ${i}` }))));
    await h.server.flushWebhooks();
    await until(() => h.client.stats().webhooksAccepted >= 10, 'late processing deliveries');
    expect(changes).toEqual([]); // `job.processing` arrived after `job.completed`: ignored
    expect(results.every((r) => r.status === 'done')).toBe(true);
    expect(h.client.stats()).toMatchObject({ completed: 5, inFlightJobs: 0, polls: 0 });
  });

  it('a signed delivery for an unknown job gets 2xx and an event, and changes nothing', async () => {
    const h = await webhookHarness();
    const unknown = record(h.client, 'webhookUnknownJob');
    const raw = body('job.completed', 'not-ours', { result_url: 'https://s/x.png' }, 'd-x');
    expect((await post(h.wh.url, raw, signed(raw, { ts: Math.floor(Date.now() / 1000) }))).status).toBe(200);
    await until(() => unknown.length === 1, 'webhookUnknownJob');
    expect(unknown[0]).toEqual({ requestId: 'not-ours', event: 'job.completed', deliveryId: 'd-x' });
    expect(h.client.stats()).toMatchObject({ completed: 0, webhooksUnknownJob: 1, inFlightJobs: 0 });
  });

  it('a delivery that arrives before anyone knows the job is kept, and settles a later wait()', async () => {
    const h = await webhookHarness();
    const raw = body('job.completed', 'resumed-1', { result_url: 'https://s/resumed-1.png' }, 'd-r');
    expect((await post(h.wh.url, raw, signed(raw, { ts: Math.floor(Date.now() / 1000) }))).status).toBe(200);
    await until(() => h.client.stats().webhooksUnknownJob === 1, 'unknown job');
    await expect(h.client.wait('resumed-1', { submittedAt: Date.now() - 1000 })).resolves.toEqual({
      requestId: 'resumed-1',
      status: 'done',
      resultUrl: 'https://s/resumed-1.png',
    });
    expect(h.client.stats().polls).toBe(0);
  });

  it("a failed job's code comes from the delivery when the status has none, and is not retried", async () => {
    const h = await webhookHarness({ jobs: { errorFieldsInStatus: false } });
    const error = (await h.client.generate('txt2img', img({ prompt: 'FAIL:AGE_RESTRICTED x' })).catch((e: unknown) => e)) as JobFailedError;
    expect(error).toBeInstanceOf(JobFailedError);
    expect(error).toMatchObject({ jobErrorCode: 'AGE_RESTRICTED', retryable: false, attempts: 1 });
  });

  it('falls back to polling when deliveries stop, and back to webhooks when they return', async () => {
    const h = await harness({}, { webhook: { url: 'http://127.0.0.1:9/nobody-listens', secret: SECRET }, polling: { overdueFactor: 2 } });
    const fallback = record(h.client, 'webhookFallback');
    const first = await Promise.all(Array.from({ length: 4 }, (_, i) => h.client.generate('txt2img', img({ prompt: `fb ${i}` }))));
    expect(first.every((r) => r.status === 'done')).toBe(true);
    expect(fallback).toMatchObject([{ active: true }]);
    expect(h.client.stats()).toMatchObject({ webhookFallback: true, webhookMode: false });
    const during = await h.client.generate('txt2img', img({ prompt: 'during fallback' }));
    expect(during.status).toBe('done');

    // ModelBeam disables a webhook after 10 failed deliveries; the user fixes the receiver and re-enables it.
    const wh = await h.client.startWebhookServer({ port: 0 });
    h.client.setWebhookUrl(wh.url);
    h.server.enableWebhook('acct-1');
    await h.client.generate('txt2img', img({ prompt: 'webhooks are back' }));
    await until(() => fallback.length === 2, 'fallback cleared');
    expect(fallback[1]).toMatchObject({ active: false });
    expect(h.client.stats().webhookMode).toBe(true);
  });
});
