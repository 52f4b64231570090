/**
 * Webhook signing and delivery: HMAC-SHA256 over `${unixSeconds}.${rawBody}`,
 * POSTed with undici, retried with exponential backoff under the same
 * delivery id, and an account's webhook disabled after N consecutive failed
 * attempts.
 */
import { createHmac } from 'node:crypto';
import { Agent, request } from 'undici';
import type { Clock } from '../internal/clock.js';
import type { Logger } from '../internal/logger.js';
import type { ResolvedOptions } from './options.js';
import type { Prng } from './prng.js';
import type { TimerSet } from './timers.js';

/**
 * The `X-ModelBeam-Signature` value for a body: `sha256=` + hex
 * HMAC-SHA256(secret, `${timestamp}.${rawBody}`). `timestamp` is the
 * `X-ModelBeam-Timestamp` value (Unix seconds).
 */
export function signWebhook(secret: string, timestamp: number | string, rawBody: string | Uint8Array): string {
  const hmac = createHmac('sha256', secret);
  hmac.update(`${timestamp}.`);
  hmac.update(rawBody);
  return `sha256=${hmac.digest('hex')}`;
}

export type WebhookEvent = 'job.processing' | 'job.completed' | 'job.failed';

/** One delivery attempt (or a drop), as recorded by the fake. */
export interface WebhookAttempt {
  readonly deliveryId: string;
  readonly event: WebhookEvent;
  readonly jobId: string;
  readonly account: string;
  readonly url: string;
  /** 1-based attempt number of this delivery (a duplicate repeats the number of the attempt it copies). */
  readonly attempt: number;
  /** Server-clock ms when the attempt started. */
  readonly at: number;
  /** `dropped`: not sent because the account's webhook is disabled or the server closed. */
  readonly outcome: 'delivered' | 'failed' | 'dropped';
  readonly status?: number;
  readonly error?: string;
  /** True for a deliberate duplicate (`webhook.duplicateRate`). */
  readonly duplicate: boolean;
}

export interface WebhookCounters {
  /** Attempts answered with 2xx (duplicates included). */
  delivered: number;
  /** Attempts that failed (non-2xx, network error or timeout). */
  failedAttempts: number;
  /** Deliveries abandoned after `maxAttempts`. */
  exhausted: number;
  /** Deliveries not sent because the webhook was disabled. */
  dropped: number;
  duplicates: number;
}

interface Delivery {
  readonly id: string;
  readonly event: WebhookEvent;
  readonly account: string;
  readonly jobId: string;
  readonly url: string;
  readonly body: string;
  attempt: number;
}

export class WebhookDispatcher {
  readonly #opts: ResolvedOptions['webhook'];
  readonly #clock: Clock;
  readonly #timers: TimerSet;
  readonly #prng: Prng;
  readonly #ids: Prng;
  readonly #logger: Logger;
  readonly #agent = new Agent({ keepAliveTimeout: 2_000, headersTimeout: 0, bodyTimeout: 0 });
  readonly #consecutiveFailures = new Map<string, number>();
  readonly #disabled = new Set<string>();
  readonly #controllers = new Set<AbortController>();
  readonly #log: WebhookAttempt[] = [];
  #inFlight = 0;
  #idleWaiters: (() => void)[] = [];
  #closed = false;
  readonly counters: WebhookCounters = { delivered: 0, failedAttempts: 0, exhausted: 0, dropped: 0, duplicates: 0 };

  constructor(deps: { options: ResolvedOptions['webhook']; clock: Clock; timers: TimerSet; prng: Prng; ids: Prng; logger: Logger }) {
    this.#opts = deps.options;
    this.#clock = deps.clock;
    this.#timers = deps.timers;
    this.#prng = deps.prng;
    this.#ids = deps.ids;
    this.#logger = deps.logger;
  }

  /** Every attempt so far, in start order. */
  get log(): readonly WebhookAttempt[] {
    return this.#log;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  isDisabled(account: string): boolean {
    return this.#disabled.has(account);
  }

  disabledAccounts(): string[] {
    return [...this.#disabled];
  }

  enable(account: string): void {
    this.#disabled.delete(account);
    this.#consecutiveFailures.set(account, 0);
  }

  /**
   * Sends one event. Resolves when its first attempt has settled (later
   * retries run on clock timers).
   */
  send(input: { event: WebhookEvent; account: string; jobId: string; url: string; data: Record<string, unknown> }): Promise<void> {
    const id = this.#ids.uuid();
    const body = JSON.stringify({
      event: input.event,
      delivery_id: id,
      timestamp: new Date(this.#clock.now()).toISOString(),
      data: input.data,
    });
    const delivery: Delivery = { id, event: input.event, account: input.account, jobId: input.jobId, url: input.url, body, attempt: 0 };
    return this.#attempt(delivery, false);
  }

  /** Resolves once no attempt is in flight (scheduled retries are not waited for). */
  flush(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const c of this.#controllers) c.abort(new Error('fake server closed'));
    await this.flush();
    await this.#agent.destroy();
  }

  #record(d: Delivery, entry: Omit<WebhookAttempt, 'deliveryId' | 'event' | 'jobId' | 'account' | 'url'>): void {
    this.#log.push({ deliveryId: d.id, event: d.event, jobId: d.jobId, account: d.account, url: d.url, ...entry });
  }

  async #attempt(d: Delivery, duplicate: boolean): Promise<void> {
    const at = this.#clock.now();
    if (this.#closed || this.#disabled.has(d.account)) {
      this.counters.dropped++;
      this.#record(d, { attempt: d.attempt + 1, at, outcome: 'dropped', duplicate });
      return;
    }
    if (!duplicate) d.attempt++;
    const attempt = d.attempt;
    this.#inFlight++;
    const controller = new AbortController();
    this.#controllers.add(controller);
    const timer = this.#timers.set(() => controller.abort(new Error(`webhook timed out after ${this.#opts.timeoutMs} ms`)), this.#opts.timeoutMs);
    let status: number | undefined;
    let error: string | undefined;
    try {
      const timestamp = Math.floor(at / 1000);
      const res = await request(d.url, {
        method: 'POST',
        dispatcher: this.#agent,
        signal: controller.signal,
        headers: {
          'content-type': 'application/json',
          'user-agent': 'ModelBeam-Webhook/1.0',
          'x-modelbeam-signature': signWebhook(this.#opts.secret, timestamp, d.body),
          'x-modelbeam-timestamp': String(timestamp),
          'x-modelbeam-event': d.event,
          'x-modelbeam-delivery-id': d.id,
        },
        body: d.body,
      });
      status = res.statusCode;
      await res.body.dump().catch(() => undefined);
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
    } finally {
      this.#timers.clear(timer);
      this.#controllers.delete(controller);
    }

    const ok = status !== undefined && status >= 200 && status < 300;
    const base = { attempt, at, duplicate, ...(status === undefined ? {} : { status }), ...(error === undefined ? {} : { error }) };
    if (ok) {
      this.counters.delivered++;
      if (duplicate) this.counters.duplicates++;
      this.#consecutiveFailures.set(d.account, 0);
      this.#record(d, { ...base, outcome: 'delivered' });
      this.#logger.debug({ event: d.event, deliveryId: d.id, url: d.url, attempt, status }, 'webhook delivered');
      if (!duplicate && this.#prng.chance(this.#opts.duplicateRate)) void this.#attempt(d, true);
    } else {
      this.counters.failedAttempts++;
      this.#record(d, { ...base, outcome: 'failed' });
      this.#logger.debug({ event: d.event, deliveryId: d.id, url: d.url, attempt, status, error }, 'webhook attempt failed');
      const failures = (this.#consecutiveFailures.get(d.account) ?? 0) + 1;
      this.#consecutiveFailures.set(d.account, failures);
      if (failures >= this.#opts.disableAfterFailures && !this.#disabled.has(d.account)) {
        this.#disabled.add(d.account);
        this.#logger.warn({ account: d.account, failures }, 'webhook disabled after consecutive failures');
      }
      if (!duplicate && !this.#closed) {
        if (d.attempt >= this.#opts.maxAttempts) {
          this.counters.exhausted++;
        } else if (!this.#disabled.has(d.account)) {
          const backoff = this.#opts.retryBaseMs * 2 ** (d.attempt - 1);
          this.#timers.set(() => void this.#attempt(d, false), backoff);
        } else {
          this.counters.dropped++;
        }
      }
    }

    this.#inFlight--;
    if (this.#inFlight === 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const w of waiters) w();
    }
  }
}
