/**
 * Webhook security, the cases `modelbeam-webhooks.test.ts` does not reach:
 *
 * - every hostile delivery against the client's own receiver (real HTTP),
 *   with a job in flight: forged signature, wrong secret, stale and future
 *   timestamps, replays (the same bytes; the same body under a fresh
 *   delivery-id header; an old signature under a fresh timestamp; a capture
 *   replayed after the tolerance), oversized bodies (declared, and chunked
 *   with no length), non-JSON, non-object and event-less bodies, malformed
 *   signature headers. Each is refused (or acknowledged as a duplicate) and
 *   moves nothing: the job's wait stays unsettled, no job event fires, and
 *   every stat stays put but the one counter that reports the rejection. A
 *   valid delivery at the end completes the job (the same path works);
 * - slow-loris bodies, including a validly signed body finished after the
 *   timeout: 408, and the delivery is never processed;
 * - the compare is constant-time: `timingSafeEqual` on equal-length buffers
 *   for every candidate and every secret, with no early exit, and
 *   wrong-length signatures never reach it (no exception, a 401).
 */
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { timingSafeEqual } from 'node:crypto';
import { request } from 'undici';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createWebhookHandler, listenWebhookServer, verifyWebhook, type ModelBeamClient, type ModelBeamClientEvents, type WebhookEvent } from '../src/modelbeam/index.js';
import type { ClientStats } from '../src/modelbeam/events.js';
import { WebhookVerificationError } from '../src/errors/index.js';
import { ManualClock, signWebhook } from '../src/testing/index.js';
import { closeAll, harness, img, until } from './modelbeam-harness.js';

vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:crypto')>();
  return { ...actual, timingSafeEqual: vi.fn(actual.timingSafeEqual) };
});

const SECRET = 'whsec_reliability_0123456789';
const spy = vi.mocked(timingSafeEqual);

afterEach(closeAll);

const nowSec = (): number => Math.floor(Date.now() / 1000);

function delivery(event: string, requestId: string, extra: Record<string, unknown> = {}, deliveryId: string | null = `d-${Math.random().toString(36).slice(2)}`): string {
  const status = event === 'job.completed' ? 'done' : event === 'job.failed' ? 'error' : 'processing';
  const body: Record<string, unknown> = { event, timestamp: new Date().toISOString(), data: { job_request_id: requestId, status, ...extra } };
  if (deliveryId !== null) body['delivery_id'] = deliveryId;
  return JSON.stringify(body);
}

function signed(raw: string, { secret = SECRET, ts = nowSec(), deliveryId }: { secret?: string; ts?: number; deliveryId?: string } = {}): Record<string, string> {
  return {
    'content-type': 'application/json',
    'x-modelbeam-signature': signWebhook(secret, ts, raw),
    'x-modelbeam-timestamp': String(ts),
    ...(deliveryId ? { 'x-modelbeam-delivery-id': deliveryId } : {}),
  };
}

async function post(url: string, body: string | Readable, headers: Record<string, string>): Promise<{ status: number; text: string }> {
  const res = await request(url, { method: 'POST', headers, body });
  return { status: res.statusCode, text: await res.body.text() };
}

/** Everything in the client's stats that a delivery could move, minus the time-dependent parts. */
function stateOf(client: ModelBeamClient): Omit<ClientStats, 'scheduler' | 'durations'> {
  const { scheduler: _s, durations: _d, ...rest } = client.stats();
  return rest;
}

const JOB_EVENTS: (keyof ModelBeamClientEvents)[] = [
  'completed',
  'jobFailed',
  'statusChanged',
  'webhookAccepted',
  'webhookDuplicate',
  'webhookUnknownJob',
  'webhookFallback',
  'resubmitted',
  'polled',
  'pollFailed',
];

function recordEvents(client: ModelBeamClient): { name: string; event: unknown }[] {
  const seen: { name: string; event: unknown }[] = [];
  for (const name of JOB_EVENTS) client.on(name, (event: unknown) => void seen.push({ name, event }));
  return seen;
}

describe('hostile deliveries to the client\'s receiver, with a job in flight: refused, and nothing moves', () => {
  async function setup() {
    // Jobs that take ten minutes, and polling that waits far longer: nothing but our deliveries can move the job.
    const h = await harness(
      { jobs: { pendingMs: 600_000, processingMs: 600_000 }, webhook: { secret: SECRET } },
      {
        webhook: { url: 'http://127.0.0.1:9/unused', secret: SECRET, toleranceSec: 3, maxBodyBytes: 4096 },
        polling: { minIntervalMs: 1000, maxIntervalMs: 3_600_000, initialEstimateMs: 3_600_000 },
      },
    );
    const wh = await h.client.startWebhookServer({ port: 0 });
    h.client.setWebhookUrl(wh.url);
    const { requestId } = await h.client.submit('txt2img', img({ prompt: 'a job hostile deliveries must not touch' }));
    let settled: 'pending' | 'done' | 'failed' = 'pending';
    const waiting = h.client.wait(requestId, { submittedAt: Date.now() }).then(
      (r) => {
        settled = 'done';
        return r;
      },
      (e: unknown) => {
        settled = 'failed';
        throw e;
      },
    );
    waiting.catch(() => {});
    const rejected: string[] = [];
    h.client.on('webhookRejected', (e) => rejected.push(e.reason));
    return { ...h, wh, requestId, waiting, settledState: () => settled, rejected };
  }

  it('each one is answered 4xx (or 200 as a duplicate), counted once, and leaves the job, its wait and every other stat as they were', async () => {
    const s = await setup();
    const { url } = s.wh;
    const id = s.requestId;
    const completed = (extra: Record<string, unknown> = {}, deliveryId?: string | null): string =>
      delivery('job.completed', id, { result_url: 'https://evil.example/pwned.png', ...extra }, deliveryId);
    const failed = delivery('job.failed', id, { error_code: 'AGE_RESTRICTED', error_message: 'forged' });
    const goodSig = signWebhook(SECRET, nowSec(), failed);

    // A valid delivery for ANOTHER (unknown) job, captured for the replays below. It changes nothing for our job.
    const capturedBody = delivery('job.completed', 'another-job', { result_url: 'https://s/other.png' }, null);
    const capturedTs = nowSec();
    const captured = signed(capturedBody, { ts: capturedTs, deliveryId: 'dlv-original' });
    expect((await post(url, capturedBody, captured)).status).toBe(200);
    await until(() => s.client.stats().webhooksUnknownJob === 1, 'the captured delivery was processed');

    const cases: [string, () => Promise<{ status: number; text: string }>, number, string | 'duplicate'][] = [
      ['forged signature (random hex)', () => post(url, failed, { ...signed(failed), 'x-modelbeam-signature': `sha256=${'ab'.repeat(32)}` }), 401, 'bad-signature'],
      ['signature of another body', () => post(url, failed, { ...signed(failed), 'x-modelbeam-signature': signWebhook(SECRET, nowSec(), completed()) }), 401, 'bad-signature'],
      ['wrong secret', () => post(url, failed, signed(failed, { secret: 'whsec_guess' })), 401, 'bad-signature'],
      ['secret with one character changed', () => post(url, failed, signed(failed, { secret: `${SECRET.slice(0, -1)}8` })), 401, 'bad-signature'],
      ['no signature', () => post(url, failed, { 'content-type': 'application/json', 'x-modelbeam-timestamp': String(nowSec()) }), 401, 'missing-signature'],
      ['no timestamp', () => post(url, failed, { 'content-type': 'application/json', 'x-modelbeam-signature': goodSig }), 401, 'missing-timestamp'],
      ['stale timestamp (tolerance + 10 s), validly signed', () => post(url, failed, signed(failed, { ts: nowSec() - 13 })), 401, 'stale'],
      ['timestamp an hour old, validly signed', () => post(url, failed, signed(failed, { ts: nowSec() - 3600 })), 401, 'stale'],
      ['future timestamp (tolerance + 10 s), validly signed', () => post(url, failed, signed(failed, { ts: nowSec() + 13 })), 401, 'future'],
      ['timestamp not in seconds', () => post(url, failed, { ...signed(failed), 'x-modelbeam-timestamp': String(Date.now()) + '0' }), 401, 'malformed-timestamp'],
      ['timestamp with junk', () => post(url, failed, { ...signed(failed), 'x-modelbeam-timestamp': '1e9' }), 401, 'malformed-timestamp'],
      ['signature of 63 hex digits', () => post(url, failed, { ...signed(failed), 'x-modelbeam-signature': goodSig.slice(0, -1) }), 401, 'malformed-signature'],
      ['signature of 66 hex digits', () => post(url, failed, { ...signed(failed), 'x-modelbeam-signature': `${goodSig}00` }), 401, 'malformed-signature'],
      ['sha1= scheme', () => post(url, failed, { ...signed(failed), 'x-modelbeam-signature': goodSig.replace('sha256=', 'sha1=') }), 401, 'malformed-signature'],
      ['bare hex, no scheme', () => post(url, failed, { ...signed(failed), 'x-modelbeam-signature': goodSig.slice(7) }), 401, 'malformed-signature'],
      ['forty forged candidates', () => post(url, failed, { ...signed(failed), 'x-modelbeam-signature': Array.from({ length: 40 }, (_, i) => `sha256=${i.toString(16).padStart(64, '0')}`).join(', ') }), 401, 'bad-signature'],
      // Replays: the attacker has a captured delivery (bytes and headers), not the secret.
      ['replay of the captured delivery, byte for byte', () => post(url, capturedBody, captured), 200, 'duplicate'],
      ['replay with a fresh X-ModelBeam-Delivery-Id header', () => post(url, capturedBody, { ...captured, 'x-modelbeam-delivery-id': 'dlv-fresh-1' }), 200, 'duplicate'],
      ['replay with a fresh timestamp header, old signature', () => post(url, capturedBody, { ...captured, 'x-modelbeam-timestamp': String(capturedTs + 1) }), 401, 'bad-signature'],
      ['replay with the event header changed', () => post(url, capturedBody, { ...captured, 'x-modelbeam-event': 'job.failed', 'x-modelbeam-delivery-id': 'dlv-fresh-2' }), 200, 'duplicate'],
      ['captured body, retargeted to our job, old signature', () => post(url, capturedBody.replace('another-job', id), captured), 401, 'bad-signature'],
      // Bodies.
      ['body over maxBodyBytes, declared', () => post(url, completed({ pad: 'x'.repeat(5000) }), signed(completed({ pad: 'x'.repeat(5000) }))), 413, 'too-large'],
      [
        'body over maxBodyBytes, chunked with no length',
        () => {
          const big = completed({ pad: 'y'.repeat(8000) });
          return post(url, Readable.from([Buffer.from(big.slice(0, 3000)), Buffer.from(big.slice(3000))]), signed(big));
        },
        413,
        'too-large',
      ],
      ['signed, not JSON', () => post(url, 'not json at all', signed('not json at all')), 400, 'malformed-body'],
      ['signed, a JSON array', () => post(url, '[{"event":"job.completed"}]', signed('[{"event":"job.completed"}]')), 400, 'malformed-body'],
      ['signed, a JSON string', () => post(url, '"job.completed"', signed('"job.completed"')), 400, 'malformed-body'],
      ['signed, no event anywhere', () => post(url, JSON.stringify({ data: { job_request_id: id, status: 'done' } }), signed(JSON.stringify({ data: { job_request_id: id, status: 'done' } }))), 400, 'malformed-body'],
      ['signed, empty body', () => post(url, '', signed('')), 400, 'malformed-body'],
      ['GET instead of POST', async () => {
        const res = await request(url, { method: 'GET', headers: signed('') });
        return { status: res.statusCode, text: await res.body.text() };
      }, 405, 'method-not-allowed'],
    ];

    const events = recordEvents(s.client);
    for (const [label, send, status, outcome] of cases) {
      const before = stateOf(s.client);
      const rejectedBefore = s.rejected.length;
      events.length = 0;
      const res = await send();
      expect(res.status, label).toBe(status);
      if (outcome === 'duplicate') {
        expect(JSON.parse(res.text), label).toEqual({ received: true, duplicate: true });
        await until(() => events.some((e) => e.name === 'webhookDuplicate'), `${label}: the duplicate event`);
        expect(events.map((e) => e.name), label).toEqual(['webhookDuplicate']);
        expect(stateOf(s.client), label).toEqual({ ...before, webhooksDuplicate: before.webhooksDuplicate + 1 });
      } else {
        expect(JSON.parse(res.text), label).toEqual({ error: outcome });
        await until(() => s.rejected.length === rejectedBefore + 1, `${label}: the rejection event`);
        expect(s.rejected.at(-1), label).toBe(outcome);
        await new Promise((r) => setTimeout(r, 5)); // a consumer would run on the next turns: give it the chance
        expect(events, label).toEqual([]);
        expect(stateOf(s.client), label).toEqual({ ...before, webhooksRejected: before.webhooksRejected + 1 });
      }
      expect(s.settledState(), label).toBe('pending');
    }

    // A capture replayed once the tolerance has passed: stale.
    await new Promise((r) => setTimeout(r, Math.max(0, (capturedTs + 4) * 1000 - Date.now())));
    const before = stateOf(s.client);
    expect((await post(url, capturedBody, captured)).status).toBe(401);
    await until(() => s.rejected.at(-1) === 'stale', 'stale replay rejected');
    expect(stateOf(s.client)).toEqual({ ...before, webhooksRejected: before.webhooksRejected + 1 });

    // The job never moved: still pending on our side, and the server never ran it to an end.
    expect(s.settledState()).toBe('pending');
    expect(s.client.stats()).toMatchObject({ completed: 0, failed: 0, inFlightJobs: 1, webhooksAccepted: 1 });

    // Positive control: a validly signed delivery through the same path completes the job.
    const real = completed({ result_url: 'https://s/real.png' }, 'dlv-real');
    expect((await post(url, real, signed(real))).status).toBe(200);
    await expect(s.waiting).resolves.toMatchObject({ requestId: id, status: 'done', resultUrl: 'https://s/real.png' });
    // ...and a forged failure afterwards cannot move the finished job back.
    expect((await post(url, failed, signed(failed, { secret: 'nope' }))).status).toBe(401);
    expect(s.client.stats()).toMatchObject({ completed: 1, failed: 0 });
  }, 30_000);
});

describe('slow-loris bodies', () => {
  async function serve(bodyTimeoutMs = 10_000) {
    const clock = new ManualClock(Date.now());
    const events: WebhookEvent[] = [];
    const rejected: string[] = [];
    const handler = createWebhookHandler({ secret: SECRET, clock, bodyTimeoutMs, onEvent: (e) => void events.push(e), onRejected: (r) => rejected.push(r.reason) });
    const server = await listenWebhookServer(handler, { port: 0 });
    return { clock, events, rejected, server };
  }

  function rawPost(port: number, headers: Record<string, string>, length: number): { socket: ReturnType<typeof connect>; answer: () => string; closed: () => boolean } {
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    let closed = false;
    socket.on('data', (c: Buffer) => (answer += c.toString()));
    socket.on('close', () => (closed = true));
    socket.on('error', () => {});
    const head = Object.entries({ ...headers, 'content-length': String(length) })
      .map(([k, v]) => `${k}: ${v}`)
      .join('\r\n');
    socket.write(`POST / HTTP/1.1\r\nhost: 127.0.0.1\r\n${head}\r\n\r\n`);
    return { socket, answer: () => answer, closed: () => closed };
  }

  it('a validly signed body trickled past the timeout gets 408 and the connection closed; the rest of it, when it comes, is never processed', async () => {
    const s = await serve();
    const raw = delivery('job.completed', 'r-slow', { result_url: 'https://s/slow.png' });
    const c = rawPost(s.server.port, signed(raw, { ts: Math.floor(s.clock.now() / 1000) }), Buffer.byteLength(raw));
    c.socket.write(raw.slice(0, 10));
    await until(() => s.clock.pendingTimers > 0, 'the body timer armed');
    c.socket.write(raw.slice(10, 20));
    s.clock.advance(10_000);
    await until(() => c.answer().includes('408'), 'a 408');
    expect(c.answer()).toMatch(/^HTTP\/1\.1 408/);
    expect(c.answer()).toMatch(/connection: close/i);
    if (!c.closed()) c.socket.write(raw.slice(20)); // the rest arrives late (if the socket still takes it)
    await until(() => c.closed(), 'the connection closed');
    await new Promise((r) => setTimeout(r, 20));
    expect(s.events).toEqual([]);
    expect(s.rejected).toEqual(['body-timeout']);
    await s.server.close();
  });

  it('one byte per turn, many connections at once: each gets its own 408, nothing is processed, no timer is left behind', async () => {
    const s = await serve(5000);
    const raw = delivery('job.failed', 'r-loris', { error_code: 'AGE_RESTRICTED' });
    const headers = signed(raw, { ts: Math.floor(s.clock.now() / 1000) });
    const conns = Array.from({ length: 20 }, () => rawPost(s.server.port, headers, Buffer.byteLength(raw)));
    for (let i = 0; i < 5; i++) {
      for (const c of conns) c.socket.write(raw[i] ?? ' ');
      await new Promise((r) => setTimeout(r, 2));
    }
    await until(() => s.clock.pendingTimers === 20, 'twenty body timers');
    s.clock.advance(5000);
    await until(() => conns.every((c) => c.answer().includes('408')), 'twenty 408s');
    await until(() => conns.every((c) => c.closed()), 'twenty closed connections');
    expect(s.rejected).toEqual(Array.from({ length: 20 }, () => 'body-timeout'));
    expect(s.events).toEqual([]);
    expect(s.clock.pendingTimers).toBe(0);
    await s.server.close();
  });

  it('a body that completes in time is accepted, and its timer is cleared', async () => {
    const s = await serve();
    const raw = delivery('job.completed', 'r-ok', { result_url: 'https://s/ok.png' });
    const c = rawPost(s.server.port, signed(raw, { ts: Math.floor(s.clock.now() / 1000) }), Buffer.byteLength(raw));
    c.socket.write(raw.slice(0, 5));
    await until(() => s.clock.pendingTimers === 1, 'the body timer armed');
    s.clock.advance(9_000);
    c.socket.write(raw.slice(5));
    await until(() => c.answer().includes('200'), 'a 200');
    await until(() => s.events.length === 1, 'the event');
    expect(s.clock.pendingTimers).toBe(0);
    c.socket.destroy();
    await s.server.close();
  });
});

describe('the signature compare is constant-time', () => {
  const NOW = Date.UTC(2025, 0, 1, 12);
  const TS = NOW / 1000;
  const raw = delivery('job.completed', 'r-ct', {}, 'd-ct');

  function verify(signature: string, secret: string | string[] = SECRET): WebhookVerificationError | WebhookEvent {
    try {
      return verifyWebhook(raw, { 'x-modelbeam-signature': signature, 'x-modelbeam-timestamp': String(TS) }, { secret, now: NOW });
    } catch (error) {
      return error as WebhookVerificationError;
    }
  }

  it('every candidate is compared with timingSafeEqual on two 32-byte buffers, match or not, for every secret: no early exit', () => {
    const good = signWebhook(SECRET, TS, raw);
    const forged = `sha256=${'00'.repeat(32)}`;
    spy.mockClear();
    expect(verify(forged)).toMatchObject({ reason: 'bad-signature' });
    expect(spy).toHaveBeenCalledTimes(1);
    spy.mockClear();
    // the valid candidate first: the forged one after it is still compared
    expect(verify(`${good}, ${forged}`)).toMatchObject({ requestId: 'r-ct' });
    expect(spy).toHaveBeenCalledTimes(2);
    spy.mockClear();
    // a rotation: every secret × every candidate, whichever matches
    expect(verify(`${forged}, ${good}`, ['whsec_old', SECRET, 'whsec_next'])).toMatchObject({ requestId: 'r-ct' });
    expect(spy).toHaveBeenCalledTimes(6);
    for (const [a, b] of spy.mock.calls) {
      expect((a as Buffer).length).toBe(32);
      expect((b as Buffer).length).toBe(32);
    }
    // a match changes nothing in how many compares run
    spy.mockClear();
    verify(`${forged}, ${forged}`, ['whsec_old', SECRET, 'whsec_next']);
    expect(spy).toHaveBeenCalledTimes(6);
  });

  it.each([
    ['63 hex digits', (g: string) => g.slice(0, -1)],
    ['65 hex digits', (g: string) => `${g}0`],
    ['128 hex digits', (g: string) => `${g}${g.slice(7)}`],
    ['empty digest', () => 'sha256='],
    ['odd characters', (g: string) => g.replace(/[0-9a-f]$/, 'g')],
  ])('a signature of the wrong length (%s) never reaches timingSafeEqual (which would throw) and is a plain 401', (_label, mangle) => {
    spy.mockClear();
    const result = verify(mangle(signWebhook(SECRET, TS, raw)));
    expect(result).toBeInstanceOf(WebhookVerificationError);
    expect(result).toMatchObject({ reason: 'malformed-signature', status: 401 });
    expect(spy).not.toHaveBeenCalled();
  });

  it('upper-case hex is the same digest (compared, and accepted)', () => {
    const good = signWebhook(SECRET, TS, raw);
    spy.mockClear();
    expect(verify(`sha256=${good.slice(7).toUpperCase()}`)).toMatchObject({ requestId: 'r-ct' });
    expect(spy).toHaveBeenCalledTimes(1);
  });
});
