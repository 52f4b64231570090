/**
 * Webhook receiving: signature verification (HMAC-SHA256 over
 * `${timestamp}.${rawBody}`, constant-time compare, a replay window), a
 * handler for `node:http` (and express/fastify through `process()` on the
 * raw body), deduplication with bounded memory, and a small server.
 *
 * The secret never appears in a log, an error or an event.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebhookVerificationError, type WebhookRejectReason } from '../errors/webhook-verification-error.js';
import { systemClock, type Clock, type TimerHandle } from '../internal/clock.js';
import { silentLogger, type Logger } from '../internal/logger.js';
import { checkClock, checkKeys, checkNumber, checkLogger, fn, invalid, keyList, num, type Keys } from '../internal/validate.js';
import { BoundedSet } from './lru.js';

/** A verified delivery. Values are read from the signed body first; unsigned headers only fill gaps. */
export interface WebhookEvent {
  /** `job.processing`, `job.completed`, `job.failed` (others are passed on as sent). */
  event: string;
  /** `delivery_id` (or `X-ModelBeam-Delivery-Id`). */
  deliveryId: string | undefined;
  /** `data.job_request_id` (or `data.request_id`). */
  requestId: string | undefined;
  /** `data.status`. */
  status: string | undefined;
  /** `X-ModelBeam-Timestamp`, Unix seconds. */
  timestamp: number;
  /** `data`, or `{}`. */
  data: Record<string, unknown>;
  /** The whole parsed body. */
  payload: Record<string, unknown>;
}

/** Headers as node:http, express, fastify or fetch hand them over. */
export type WebhookHeaders = Headers | Record<string, string | string[] | undefined>;

export interface VerifyWebhookOptions {
  /** The signing secret; several are tried in turn (for a rotation). */
  secret: string | readonly string[];
  /** @default 300 */
  toleranceSec?: number;
  /** Now, in ms since the epoch. @default Date.now() */
  now?: number;
}

export const SIGNATURE_HEADER = 'x-modelbeam-signature';
export const TIMESTAMP_HEADER = 'x-modelbeam-timestamp';
export const EVENT_HEADER = 'x-modelbeam-event';
export const DELIVERY_HEADER = 'x-modelbeam-delivery-id';

function header(headers: WebhookHeaders, name: string): string | undefined {
  let value: unknown;
  if (typeof (headers as Headers).get === 'function') value = (headers as Headers).get(name);
  else {
    const record = headers as Record<string, unknown>;
    value = record[name];
    if (value === undefined) {
      for (const key of Object.keys(record)) {
        if (key.toLowerCase() === name) {
          value = record[key];
          break;
        }
      }
    }
  }
  if (Array.isArray(value)) value = value.join(',');
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

const SIGNATURE_RE = /^sha256=([0-9a-f]{64})$/i;

/** The secret(s) as a non-empty list of non-empty strings, or a TypeError that never shows them. */
function checkSecrets(secret: unknown): readonly string[] {
  const secrets = typeof secret === 'string' ? [secret] : secret;
  if (!Array.isArray(secrets) || secrets.length === 0 || !secrets.every((s) => typeof s === 'string' && s !== '')) {
    throw new TypeError('Expected `secret` to be a non-empty string (or a non-empty array of them), e.g. `{ secret: process.env.MODELBEAM_WEBHOOK_SECRET }`');
  }
  return secrets as readonly string[];
}

/**
 * Verifies one delivery and parses it. Throws `WebhookVerificationError`
 * (`reason`, `status`) when it is unsigned, forged, stale or from the
 * future (beyond `toleranceSec` either way), or not a JSON object; a
 * `TypeError` for bad options (an empty secret, a NaN tolerance or `now`).
 *
 * Pass the raw body exactly as received: re-serialised JSON does not verify.
 */
export function verifyWebhook(rawBody: Buffer | Uint8Array | string, headers: WebhookHeaders, options: VerifyWebhookOptions): WebhookEvent {
  // Bad options fail closed: an empty secret would accept anyone's signature, a NaN tolerance or clock would
  // switch the replay window off (every comparison with NaN is false).
  const secrets = checkSecrets(options?.secret);
  const tolerance = num('toleranceSec', options.toleranceSec, 300, { min: 0, exclusiveMin: true });
  const nowMs = options.now ?? Date.now();
  if (typeof nowMs !== 'number' || !Number.isFinite(nowMs)) invalid('now', 'a finite number of ms since the epoch', nowMs);
  const signature = header(headers, SIGNATURE_HEADER);
  const timestamp = header(headers, TIMESTAMP_HEADER);
  if (signature === undefined) throw new WebhookVerificationError('missing-signature', 'Webhook rejected: no X-ModelBeam-Signature header');
  if (timestamp === undefined) throw new WebhookVerificationError('missing-timestamp', 'Webhook rejected: no X-ModelBeam-Timestamp header');
  if (!/^\d{1,12}$/.test(timestamp)) {
    throw new WebhookVerificationError('malformed-timestamp', 'Webhook rejected: X-ModelBeam-Timestamp is not Unix seconds');
  }
  const raw = typeof rawBody === 'string' ? Buffer.from(rawBody, 'utf8') : Buffer.from(rawBody.buffer, rawBody.byteOffset, rawBody.byteLength);

  const given: Buffer[] = [];
  for (const part of signature.split(/[\s,]+/)) {
    const match = SIGNATURE_RE.exec(part);
    if (match?.[1]) given.push(Buffer.from(match[1], 'hex'));
  }
  if (given.length === 0) throw new WebhookVerificationError('malformed-signature', 'Webhook rejected: the signature is not sha256=<64 hex digits>');
  let valid = false;
  for (const secret of secrets) {
    const expected = createHmac('sha256', secret).update(`${timestamp}.`).update(raw).digest();
    // Every candidate is compared in full (equal lengths: 32 bytes each), match or not.
    for (const candidate of given) if (timingSafeEqual(candidate, expected)) valid = true;
  }
  if (!valid) throw new WebhookVerificationError('bad-signature', 'Webhook rejected: the signature does not match');

  const ageSec = nowMs / 1000 - Number(timestamp);
  if (ageSec > tolerance) throw new WebhookVerificationError('stale', `Webhook rejected: signed ${Math.round(ageSec)} s ago (tolerance ${tolerance} s)`);
  if (ageSec < -tolerance) {
    throw new WebhookVerificationError('future', `Webhook rejected: signed ${Math.round(-ageSec)} s in the future (tolerance ${tolerance} s)`);
  }

  let payload: unknown;
  try {
    payload = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new WebhookVerificationError('malformed-body', 'Webhook rejected: the body is not JSON');
  }
  if (!isObject(payload)) throw new WebhookVerificationError('malformed-body', 'Webhook rejected: the body is not a JSON object');
  const data = isObject(payload['data']) ? payload['data'] : {};
  const event = str(payload['event']) ?? header(headers, EVENT_HEADER);
  if (event === undefined) throw new WebhookVerificationError('malformed-body', 'Webhook rejected: no event name');
  return {
    event,
    deliveryId: str(payload['delivery_id']) ?? header(headers, DELIVERY_HEADER),
    requestId: str(data['job_request_id']) ?? str(data['request_id']) ?? str(payload['request_id']),
    status: str(data['status']),
    timestamp: Number(timestamp),
    data,
    payload,
  };
}

// ------------------------------------------------------------------ handler

export interface WebhookRejection {
  reason: WebhookRejectReason;
  status: number;
  error: WebhookVerificationError;
  remoteAddress: string | undefined;
}

export interface WebhookHandlerOptions {
  /** The signing secret (or several, during a rotation). */
  secret: string | readonly string[];
  /** @default 300 */
  toleranceSec?: number;
  /** Larger bodies get 413. @default 1 MiB */
  maxBodyBytes?: number;
  /** A body not received within this time gets 408 (ModelBeam wants an answer within 10 s). @default 10_000 */
  bodyTimeoutMs?: number;
  /** Delivery ids (and request-event pairs) remembered for deduplication. @default 10_000 */
  dedupeSize?: number;
  /**
   * Receives each verified, first-seen delivery, after the 2xx is sent. A
   * slow or throwing consumer never delays or fails the answer.
   */
  onEvent: (event: WebhookEvent) => void | Promise<void>;
  /** A forged, stale or malformed delivery (answered 4xx, nothing else happens). */
  onRejected?: (rejection: WebhookRejection) => void;
  /** A verified delivery already seen (answered 200, not passed on). */
  onDuplicate?: (event: WebhookEvent, by: 'delivery-id' | 'request-event') => void;
  /** @default systemClock */
  clock?: Clock;
  logger?: Logger;
}

/** What `process()` decided for one delivery. */
export interface WebhookProcessResult {
  status: number;
  /** A small JSON body to answer with. */
  body: string;
  event?: WebhookEvent;
  duplicate?: 'delivery-id' | 'request-event';
  rejection?: WebhookRejection;
}

/** A `node:http` request listener, plus the same logic for raw-body adapters. */
export interface WebhookHandler {
  (req: IncomingMessage, res: ServerResponse): void;
  /** Verifies and parses only (no dedupe, no `onEvent`). Throws `WebhookVerificationError`. */
  verify(rawBody: Buffer | Uint8Array | string, headers: WebhookHeaders): WebhookEvent;
  /**
   * Everything the node handler does, for a body an adapter already read:
   * verify, dedupe, schedule `onEvent`; answer with `status` and `body`.
   *
   * @example
   * // express: keep the raw bytes for this route
   * app.post('/modelbeam', express.raw({ type: '*\/*' }), (req, res) => {
   *   const r = handler.process(req.body, req.headers);
   *   res.status(r.status).type('json').send(r.body);
   * });
   */
  process(rawBody: Buffer | Uint8Array | string, headers: WebhookHeaders, remoteAddress?: string): WebhookProcessResult;
}

const HANDLER_KEYS = keyList({
  secret: true,
  toleranceSec: true,
  maxBodyBytes: true,
  bodyTimeoutMs: true,
  dedupeSize: true,
  onEvent: true,
  onRejected: true,
  onDuplicate: true,
  clock: true,
  logger: true,
} satisfies Keys<WebhookHandlerOptions>);

const OK = JSON.stringify({ received: true });
const DUPLICATE = JSON.stringify({ received: true, duplicate: true });

/**
 * Creates a webhook receiver.
 *
 * @example
 * const handler = createWebhookHandler({ secret: process.env.MODELBEAM_WEBHOOK_SECRET!, onEvent: (e) => console.log(e.event, e.requestId) });
 * http.createServer(handler).listen(8080);
 */
export function createWebhookHandler(options: WebhookHandlerOptions): WebhookHandler {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError('Expected `options` to be an object, e.g. `createWebhookHandler({ secret: process.env.MODELBEAM_WEBHOOK_SECRET, onEvent })`');
  }
  checkKeys('', options, HANDLER_KEYS);
  const secrets = checkSecrets(options.secret);
  if (typeof options.onEvent !== 'function') invalid('onEvent', 'a function', options.onEvent);
  fn('onRejected', options.onRejected);
  fn('onDuplicate', options.onDuplicate);
  const gt0 = { min: 0, exclusiveMin: true };
  const toleranceSec = num('toleranceSec', options.toleranceSec, 300, gt0);
  const maxBodyBytes = num('maxBodyBytes', options.maxBodyBytes, 1024 * 1024, gt0);
  const bodyTimeoutMs = num('bodyTimeoutMs', options.bodyTimeoutMs, 10_000, gt0);
  // (NaN would make the dedupe memory unbounded.)
  const dedupeSize = num('dedupeSize', options.dedupeSize, 10_000, { min: 1, integer: true });
  const clock = checkClock<Clock>(options.clock, systemClock);
  const baseLogger = checkLogger<Logger>(options.logger, silentLogger);
  const logger = baseLogger.child({ component: 'modelbeam-webhooks' });
  const deliveries = new BoundedSet<string>(dedupeSize);
  const pairs = new BoundedSet<string>(dedupeSize);

  const verify = (rawBody: Buffer | Uint8Array | string, headers: WebhookHeaders): WebhookEvent =>
    verifyWebhook(rawBody, headers, { secret: secrets, toleranceSec, now: clock.now() });

  const reject = (error: WebhookVerificationError, remoteAddress: string | undefined): WebhookProcessResult => {
    const rejection: WebhookRejection = { reason: error.reason, status: error.status, error, remoteAddress };
    logger.debug({ reason: error.reason, status: error.status, remoteAddress }, 'webhook rejected');
    try {
      options.onRejected?.(rejection);
    } catch (err) {
      logger.error({ err }, 'onRejected threw');
    }
    return { status: error.status, body: JSON.stringify({ error: error.reason }), rejection };
  };

  const process = (rawBody: Buffer | Uint8Array | string, headers: WebhookHeaders, remoteAddress?: string): WebhookProcessResult => {
    let event: WebhookEvent;
    try {
      event = verify(rawBody, headers);
    } catch (error) {
      if (error instanceof WebhookVerificationError) return reject(error, remoteAddress);
      throw error;
    }
    // Only verified deliveries enter the dedupe memory: forged ones cannot evict or shadow real ids.
    const pair = event.requestId === undefined ? undefined : `${event.requestId}\u0000${event.event}`;
    const by = event.deliveryId !== undefined && deliveries.has(event.deliveryId) ? 'delivery-id' : pair !== undefined && pairs.has(pair) ? 'request-event' : undefined;
    if (by !== undefined) {
      logger.debug({ deliveryId: event.deliveryId, requestId: event.requestId, event: event.event, by }, 'webhook duplicate');
      try {
        options.onDuplicate?.(event, by);
      } catch (err) {
        logger.error({ err }, 'onDuplicate threw');
      }
      return { status: 200, body: DUPLICATE, event, duplicate: by };
    }
    if (event.deliveryId !== undefined) deliveries.add(event.deliveryId);
    if (pair !== undefined) pairs.add(pair);
    // The consumer runs after the answer is on its way.
    setImmediate(() => {
      try {
        const result = options.onEvent(event);
        if (result && typeof (result as Promise<void>).then === 'function') {
          (result as Promise<void>).then(undefined, (err: unknown) => logger.error({ err, event: event.event }, 'webhook consumer failed'));
        }
      } catch (err) {
        logger.error({ err, event: event.event }, 'webhook consumer threw');
      }
    });
    return { status: 200, body: OK, event };
  };

  const handler = ((req: IncomingMessage, res: ServerResponse): void => {
    const remoteAddress = req.socket.remoteAddress;
    let done = false;
    let timer: TimerHandle | undefined;
    const answer = (status: number, body: string, headers: Record<string, string> = {}): void => {
      if (done) return;
      done = true;
      if (timer !== undefined) clock.clearTimeout(timer);
      if (res.headersSent || res.destroyed) return;
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...headers });
      res.end(body);
    };
    const refuse = (reason: WebhookRejectReason, message: string, close: boolean): void => {
      const r = reject(new WebhookVerificationError(reason, message), remoteAddress);
      answer(r.status, r.body, close ? { connection: 'close' } : {});
      if (close) {
        res.once('finish', () => req.destroy());
        req.resume();
      }
    };

    if (req.method !== 'POST') {
      req.resume();
      const r = reject(new WebhookVerificationError('method-not-allowed', `Webhook rejected: method ${String(req.method)}`), remoteAddress);
      answer(r.status, r.body, { allow: 'POST' });
      return;
    }
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBodyBytes) {
      refuse('too-large', `Webhook rejected: body of ${declared} bytes (limit ${maxBodyBytes})`, true);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    timer = clock.setTimeout(() => {
      timer = undefined;
      refuse('body-timeout', `Webhook rejected: body not received within ${bodyTimeoutMs} ms`, true);
    }, bodyTimeoutMs);
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > maxBodyBytes) {
        refuse('too-large', `Webhook rejected: body over ${maxBodyBytes} bytes`, true);
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (done) return;
      let result: WebhookProcessResult;
      try {
        result = process(Buffer.concat(chunks, size), req.headers, remoteAddress);
      } catch (err) {
        logger.error({ err }, 'webhook handler failed');
        answer(500, JSON.stringify({ error: 'internal' }));
        return;
      }
      answer(result.status, result.body);
    });
    req.on('error', () => {
      done = true;
      if (timer !== undefined) clock.clearTimeout(timer);
    });
  }) as WebhookHandler;
  handler.verify = verify;
  handler.process = process;
  return handler;
}

// ------------------------------------------------------------------ server

export interface WebhookServer {
  /** Where the server listens, e.g. `http://127.0.0.1:8080/`. (The URL ModelBeam posts to is your public one.) */
  readonly url: string;
  readonly port: number;
  /** Stops listening and closes every connection. Idempotent. */
  close(): Promise<void>;
}

export interface WebhookServerOptions {
  /** 0 picks a free port. */
  port: number;
  /** @default '127.0.0.1' */
  host?: string;
}

/** Serves `handler` on every path of a small `node:http` server. */
export async function listenWebhookServer(handler: WebhookHandler, options: WebhookServerOptions): Promise<WebhookServer> {
  const { port } = options;
  checkNumber('port', port, { integer: true, max: 65535 });
  const host = options.host ?? '127.0.0.1';
  const server: Server = createServer(handler);
  server.headersTimeout = 15_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${shownHost}:${address.port}/`,
    port: address.port,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}
