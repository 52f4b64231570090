/**
 * The fake ModelBeam API server: node:http, routing, auth, the limiter and
 * header policy, faults, and the glue to the job store and webhooks.
 *
 * Request pipeline (Laravel-like):
 *  1. `/storage/*` is served directly (no auth, no limits, no faults).
 *  2. Routing: unknown path → 404, wrong method → 405 (neither counted, no rate-limit headers).
 *  3. Fault draw. `reset` destroys the socket; 502/503/504 answer from the "gateway" (HTML, not counted).
 *  4. Auth: missing/unknown/revoked key (or the `'401'` fault) → 401 (not counted, no rate-limit headers).
 *  5. Limiter: exhausted → 429 (not counted). Otherwise the request is counted and logged.
 *  6. A `'500'` fault answers here (counted, no job).
 *  7. Handler: validation 422, balance 422, job creation, status, models, ...
 *  8. `accept-then-reset` destroys the socket; `no-headers`, `malformed-json`, `slow` shape the reply.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Clock } from '../internal/clock.js';
import type { Logger } from '../internal/logger.js';
import { FaultInjector, type FaultFilter, type FaultKind, type FaultRequestInfo } from './faults.js';
import { gatewayPage, json, parseParams, readBody, storableParams, type Reply } from './http-util.js';
import { processingEvent, terminalEvent } from './job-events.js';
import { CONTENT_TYPES, JobStore, resultBytes, type FakeJob, type FakeJobView } from './jobs.js';
import { AccountLimiter, DEFAULT_DAILY_MS, DEFAULT_MINUTE_MS, type LimitDecision } from './limiter.js';
import { listModels } from './models.js';
import { invalid } from '../internal/validate.js';
import { resolveOptions, type FakeServerOptions, type FaultOptions, type ResolvedOptions } from './options.js';
import { Prng } from './prng.js';
import { API_PREFIX, matchRoute, type Route } from './routes.js';
import { Counters, type FakeServerStats } from './stats.js';
import { TimerSet } from './timers.js';
import { validateParams } from './validation.js';
import { WebhookDispatcher, type WebhookAttempt } from './webhooks.js';
import { maxInAnyWindow, retryAfterSeconds, type WindowKind } from './windows.js';

/** Read access to the jobs of a running fake. */
export interface FakeJobs {
  /** The job with this request id, with its status at the time of the call. */
  get(requestId: string): FakeJobView | undefined;
  /** Every job, in creation order, with its status now. O(jobs). */
  list(): FakeJobView[];
  readonly size: number;
}

/** One 429 of the fake server's limiter. */
export interface FakeRefusal {
  /** Server-clock time the request was refused. */
  at: number;
  /** The account whose window refused it. */
  account: string;
  /** The window that refused it (`X-RateLimit-Type`). */
  type: 'minute' | 'daily';
  /** The route key, as in `stats().byRoute` (`'POST /txt2img'`, `'GET /request-status'`, ...). */
  route: string;
}

export interface FakeModelBeamServer {
  /** `http://host:port`. */
  readonly url: string;
  /** `${url}/api/v1/client`. */
  readonly baseUrl: string;
  readonly port: number;
  /** The clock the server runs on. */
  readonly clock: Clock;
  readonly jobs: FakeJobs;
  /** Closes the listener and every socket, aborts webhook deliveries and clears every timer. Idempotent. */
  close(): Promise<void>;
  stats(): FakeServerStats;
  /** Server-clock time and window of every 429 the limiter sent, in order (a copy; every account). */
  refusedLog(): FakeRefusal[];
  /** Server-clock timestamps of every counted request, per account (copies). */
  acceptedLog(): Record<string, number[]>;
  acceptedLog(account: string): number[];
  /**
   * The most counted requests of `account` in any one window: phase-aligned windows for `fixed`, replayed
   * first-hit windows for `first-hit`, any interval of `windowMs` for `sliding`.
   * @param windowMs default: the account's minute window length (60 000 without one)
   * @param account default: the first configured account
   * @param kind default: the minute window's kind (`fixed` without one)
   */
  maxInAnyWindow(windowMs?: number, account?: string, kind?: WindowKind): number;
  /**
   * The server-clock times of the requests counted on a route with limits of
   * its own (`routeLimits`), in arrival order; `acceptedLog` holds those of
   * the other routes.
   * @param account default: the first configured account
   */
  routeAcceptedLog(route: string, account?: string): number[];
  /** As `maxInAnyWindow`, for a route with limits of its own, on its minute window. */
  routeMaxInAnyWindow(route: string, account?: string): number;
  /**
   * Changes limits at once (remaining = max(0, limit − used)). `false` removes a window; a number on a
   * removed window creates a fixed window of the default length. Without `account`: every account.
   */
  setLimits(limits: { minute?: number | false; daily?: number | false }, account?: string): void;
  /** Patches the random fault rates (validated like the options). */
  setFaults(patch: FaultOptions): void;
  /**
   * Injects `kind` into the next `count` API requests (not `/storage`) that match `filter`.
   * @param count default 1
   */
  failNext(kind: FaultKind, count?: number, filter?: FaultFilter): void;
  /** The balance of an account, USD. */
  balance(account: string): number;
  setBalance(account: string, usd: number): void;
  /** Makes `key` unknown (401 from then on). Returns whether it existed. */
  revokeKey(key: string): boolean;
  /** Adds (or moves) a key; creates the account if new. */
  addKey(key: string, account: string): void;
  /** Sets or clears an account-level webhook URL (jobs created later use it). */
  setWebhook(account: string, url: string | undefined): void;
  /** Re-enables an auto-disabled webhook and resets its failure count. */
  enableWebhook(account: string): void;
  /**
   * The client options that match this server: its `baseUrl`, an `apiKey` of
   * `account`, and scheduler options whose `timeScale` is the server's minute
   * window over 60 s, with its windows. `new ModelBeamClient(server.clientOptions())`
   * runs in the server's compressed time with no other time option; spread it
   * to add more (`{ ...server.clientOptions(), webhook }`), or build a shared
   * scheduler from its `scheduler`. Reads the windows as they are now.
   * @param account default: the first configured account
   */
  clientOptions(account?: string): FakeClientOptions;
  /** Every webhook attempt so far. */
  webhookLog(): readonly WebhookAttempt[];
  /** Resolves when no webhook attempt is in flight (scheduled retries are not awaited). */
  flushWebhooks(): Promise<void>;
}

/** What `server.clientOptions()` returns: assignable to `ModelBeamClientOptions`. */
export interface FakeClientOptions {
  apiKey: string;
  baseUrl: string;
  scheduler: { timeScale: number; windows: { minuteMs: number; dayMs?: number } };
}

interface AccountState {
  readonly id: string;
  readonly limiter: AccountLimiter;
  /** Routes with limits of their own (`routeLimits`). */
  readonly routes: Map<string, AccountLimiter>;
  balance: number;
  webhookUrl: string | undefined;
}

/** The name a route goes by in `routeLimits`. */
function limitedRoute(route: Exclude<ReturnType<typeof matchRoute>, undefined>): string {
  switch (route.kind) {
    case 'submit':
      return route.endpoint;
    case 'status':
      return 'request-status';
    case 'price':
      return 'price-calculation';
    default:
      return route.kind;
  }
}

const NOT_FOUND = '{"message":"Not Found"}';
const UNAUTHENTICATED = '{"message":"Unauthenticated."}';
const TOO_MANY = '{"message":"Too Many Attempts."}';
const SERVER_ERROR = '{"message":"Server Error"}';
const INVALID = 'The given data was invalid.';

class FakeModelBeam implements FakeModelBeamServer {
  url = '';
  baseUrl = '';
  port = 0;
  readonly clock: Clock;
  readonly jobs: FakeJobs;

  readonly #opts: ResolvedOptions;
  readonly #logger: Logger;
  readonly #server: Server;
  readonly #timers: TimerSet;
  readonly #keys = new Map<string, string>();
  readonly #accounts = new Map<string, AccountState>();
  readonly #store: JobStore;
  readonly #faults: FaultInjector;
  readonly #webhooks: WebhookDispatcher;
  readonly #headerPrng: Prng;
  readonly #latencyPrng: Prng;
  readonly #refused: FakeRefusal[] = [];
  readonly #counters = new Counters();
  #closing: Promise<void> | undefined;

  constructor(options: ResolvedOptions) {
    this.#opts = options;
    this.clock = options.clock;
    this.#logger = options.logger.child({ component: 'fake-modelbeam' });
    this.#timers = new TimerSet(options.clock);
    this.#store = new JobStore(options);
    this.#faults = new FaultInjector(options.faults, new Prng(options.seed, 'faults'));
    this.#headerPrng = new Prng(options.seed, 'headers');
    this.#latencyPrng = new Prng(options.seed, 'latency');
    this.#webhooks = new WebhookDispatcher({
      options: options.webhook,
      clock: options.clock,
      timers: this.#timers,
      prng: new Prng(options.seed, 'webhooks'),
      ids: new Prng(options.seed, 'delivery-ids'),
      logger: this.#logger,
    });
    for (const [key, account] of options.accounts) this.addKey(key, account);
    const store = this.#store;
    const clock = this.clock;
    this.jobs = {
      get: (id) => {
        const job = store.get(id);
        return job ? store.view(job, clock.now()) : undefined;
      },
      list: () => {
        const now = clock.now();
        return Array.from(store.values(), (job) => store.view(job, now));
      },
      get size() {
        return store.size;
      },
    };
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((err: unknown) => {
        this.#logger.error({ err, method: req.method, path: req.url?.split('?')[0] }, 'fake server handler failed');
        if (!res.headersSent) this.#send(res, json(500, { message: 'Server Error' }));
        else res.destroy();
      });
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#opts.port, this.#opts.host, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    const address = this.#server.address() as AddressInfo;
    this.port = address.port;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    this.url = `http://${host}:${address.port}`;
    this.baseUrl = `${this.url}${API_PREFIX}`;
    this.#logger.info({ url: this.url }, 'fake ModelBeam listening');
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#timers.clearAll();
      await this.#webhooks.close();
      this.#timers.clearAll();
      await new Promise<void>((resolve) => {
        this.#server.close(() => resolve());
        this.#server.closeAllConnections();
      });
    })();
    return this.#closing;
  }

  // ------------------------------------------------------------ public controls

  stats(): FakeServerStats {
    const c = this.#counters;
    const i = c.injected;
    return {
      requests: c.requests,
      byRoute: Object.fromEntries(c.byRoute),
      accepted: c.accepted,
      rejected429: { minute: c.rejectedMinute, daily: c.rejectedDaily, total: c.rejectedMinute + c.rejectedDaily },
      unauthorized401: c.unauthorized401,
      notFound404: c.notFound404,
      validation422: c.validation422,
      insufficientBalance: c.insufficientBalance,
      injected: { ...i },
      injected5xx: i['500'] + i['502'] + i['503'] + i['504'],
      resetsInjected: i.reset + i['accept-then-reset'],
      polls: c.polls,
      jobs: this.#store.counts(this.clock.now()),
      webhooks: { ...this.#webhooks.counters, disabledAccounts: this.#webhooks.disabledAccounts() },
      storageDownloads: c.storageDownloads,
    };
  }

  refusedLog(): FakeRefusal[] {
    return this.#refused.map((r) => ({ ...r }));
  }

  acceptedLog(): Record<string, number[]>;
  acceptedLog(account: string): number[];
  acceptedLog(account?: string): Record<string, number[]> | number[] {
    if (account !== undefined) return [...this.#account(account).limiter.accepted];
    const out: Record<string, number[]> = {};
    for (const [id, state] of this.#accounts) out[id] = [...state.limiter.accepted];
    return out;
  }

  maxInAnyWindow(windowMs?: number, account?: string, kind?: WindowKind): number {
    const state = account === undefined ? this.#firstAccount() : this.#account(account);
    const minute = state.limiter.minute;
    return maxInAnyWindow(state.limiter.accepted, {
      windowMs: windowMs ?? minute?.windowMs ?? DEFAULT_MINUTE_MS,
      kind: kind ?? minute?.kind ?? 'fixed',
      phaseMs: minute?.phaseMs ?? 0,
    });
  }

  routeAcceptedLog(route: string, account?: string): number[] {
    return [...this.#routeLimiter(route, account).accepted];
  }

  routeMaxInAnyWindow(route: string, account?: string): number {
    const limiter = this.#routeLimiter(route, account);
    const minute = limiter.minute;
    return maxInAnyWindow(limiter.accepted, {
      windowMs: minute?.windowMs ?? DEFAULT_MINUTE_MS,
      kind: minute?.kind ?? 'fixed',
      phaseMs: minute?.phaseMs ?? 0,
    });
  }

  #routeLimiter(route: string, account?: string): AccountLimiter {
    const state = account === undefined ? this.#firstAccount() : this.#account(account);
    const limiter = state.routes.get(route);
    if (!limiter) throw new TypeError(`The route \`${route}\` has no limits of its own (see \`routeLimits\`)`);
    return limiter;
  }

  setLimits(limits: { minute?: number | false; daily?: number | false }, account?: string): void {
    for (const name of ['minute', 'daily'] as const) {
      const v = limits[name];
      if (v !== undefined && v !== false && (!Number.isSafeInteger(v) || v < 0)) {
        invalid(`limits.${name}`, 'an integer >= 0 or false', v);
      }
    }
    const targets = account === undefined ? [...this.#accounts.values()] : [this.#account(account)];
    for (const state of targets) state.limiter.setLimits(limits);
  }

  clientOptions(account?: string): FakeClientOptions {
    const state = account === undefined ? this.#firstAccount() : this.#account(account);
    const apiKey = [...this.#keys].find(([, id]) => id === state.id)?.[0];
    if (apiKey === undefined) throw new TypeError(`The account \`${state.id}\` has no API key (see \`addKey\`)`);
    const { minute, daily } = state.limiter;
    const timeScale = minute ? minute.windowMs / DEFAULT_MINUTE_MS : daily ? daily.windowMs / DEFAULT_DAILY_MS : 1;
    const minuteMs = minute?.windowMs ?? DEFAULT_MINUTE_MS * timeScale;
    const windows = daily && daily.windowMs >= minuteMs ? { minuteMs, dayMs: daily.windowMs } : { minuteMs };
    return { apiKey, baseUrl: this.baseUrl, scheduler: { timeScale, windows } };
  }

  setFaults(patch: FaultOptions): void {
    this.#faults.set(patch);
  }

  failNext(kind: FaultKind, count = 1, filter?: FaultFilter): void {
    this.#faults.failNext(kind, count, filter);
  }

  balance(account: string): number {
    return this.#account(account).balance;
  }

  setBalance(account: string, usd: number): void {
    if (typeof usd !== 'number' || !Number.isFinite(usd)) invalid('usd', 'a finite number', usd);
    this.#account(account).balance = usd;
  }

  revokeKey(key: string): boolean {
    return this.#keys.delete(key);
  }

  addKey(key: string, account: string): void {
    if (typeof key !== 'string' || key === '') invalid('key', 'a non-empty string', key);
    if (typeof account !== 'string' || account === '') invalid('account', 'a non-empty string', account);
    this.#keys.set(key, account);
    if (!this.#accounts.has(account)) {
      this.#accounts.set(account, {
        id: account,
        limiter: new AccountLimiter(this.#opts.limits),
        routes: new Map([...this.#opts.routeLimits].map(([route, limits]) => [route, new AccountLimiter(limits)])),
        balance: this.#opts.balance,
        webhookUrl: this.#opts.webhook.accountUrls.get(account) ?? this.#opts.webhook.url,
      });
    }
  }

  setWebhook(account: string, url: string | undefined): void {
    if (url !== undefined && (typeof url !== 'string' || !/^https?:\/\//i.test(url) || !URL.canParse(url))) {
      invalid('url', 'an http(s) URL or undefined', url);
    }
    this.#account(account).webhookUrl = url;
  }

  enableWebhook(account: string): void {
    this.#account(account);
    this.#webhooks.enable(account);
  }

  webhookLog(): readonly WebhookAttempt[] {
    return [...this.#webhooks.log];
  }

  flushWebhooks(): Promise<void> {
    return this.#webhooks.flush();
  }

  #account(id: string): AccountState {
    const state = this.#accounts.get(id);
    if (!state) throw new TypeError(`Unknown account \`${String(id)}\`. Known accounts: ${[...this.#accounts.keys()].join(', ')}`);
    return state;
  }

  #firstAccount(): AccountState {
    const first = this.#accounts.values().next();
    if (first.done) throw new TypeError('The fake server has no account');
    return first.value;
  }

  // ------------------------------------------------------------ request pipeline

  /** One way of the simulated network latency: uniform 0 to `latencyMs / 2` (0 without latency). */
  #oneWay(): number {
    const max = this.#opts.latencyMs;
    return max > 0 ? this.#latencyPrng.next() * (max / 2) : 0;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const wayIn = this.#oneWay();
    if (wayIn > 0) await new Promise<void>((resolve) => this.#timers.set(resolve, wayIn));
    const c = this.#counters;
    c.requests++;
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const path = q < 0 ? rawUrl : rawUrl.slice(0, q);
    const method = req.method ?? 'GET';

    if (path.startsWith('/storage/')) {
      c.route('GET /storage');
      this.#send(res, this.#storage(method, path));
      return;
    }

    const route = matchRoute(method, path);
    if (!route) {
      c.route('unmatched');
      c.notFound404++;
      this.#send(res, { status: 404, body: NOT_FOUND, contentType: 'application/json' });
      return;
    }
    c.route(route.key);
    if (route.kind === 'method-not-allowed') {
      this.#send(
        res,
        json(405, { message: `The ${method} method is not supported for route ${route.path}. Supported methods: ${route.allowed}.` }),
      );
      return;
    }

    const info: FaultRequestInfo = {
      method,
      route: route.key,
      submit: route.kind === 'submit',
      ...(route.kind === 'submit' || route.kind === 'price' ? { endpoint: route.endpoint } : {}),
    };
    const fault = this.#faults.draw(info);
    if (fault !== undefined) {
      c.injected[fault]++;
      this.#logger.debug({ fault, route: route.key }, 'fault injected');
    }
    if (fault === 'reset') {
      req.socket.destroy();
      return;
    }
    if (fault === '502' || fault === '503' || fault === '504') {
      this.#send(res, { status: Number(fault), body: gatewayPage(Number(fault)), contentType: 'text/html' });
      return;
    }

    const account = fault === '401' ? undefined : this.#authenticate(req);
    if (!account) {
      c.unauthorized401++;
      this.#send(res, { status: 401, body: UNAUTHENTICATED, contentType: 'application/json' });
      return;
    }

    const now = this.clock.now();
    const limiter = account.routes.get(limitedRoute(route)) ?? account.limiter;
    const poll = route.kind === 'status';
    const counts = !poll || this.#opts.countPolls !== false;
    const countsDaily = !poll || this.#opts.countPolls === true;
    const dropHeaders = fault === 'no-headers' || this.#headerPrng.chance(this.#opts.headers.missingRate);
    if (counts) {
      const decision = limiter.check(now, countsDaily);
      if (!decision.allowed) {
        if (decision.type === 'daily') c.rejectedDaily++;
        else c.rejectedMinute++;
        this.#refused.push({ at: now, account: account.id, type: decision.type, route: route.key });
        this.#send(res, this.#tooMany(limiter, decision, now, dropHeaders), fault);
        return;
      }
      limiter.count(now, countsDaily);
      c.accepted++;
    }
    const headers = dropHeaders || !this.#opts.headers.onSuccess ? {} : this.#rateHeaders(limiter, now);

    if (fault === '500') {
      this.#send(res, { status: 500, body: SERVER_ERROR, contentType: 'application/json', headers });
      return;
    }

    const reply = await this.#dispatch(route, req, account, now, q < 0 ? '' : rawUrl.slice(q + 1));
    if (fault === 'accept-then-reset') {
      req.socket.destroy();
      return;
    }
    reply.headers = { ...reply.headers, ...headers };
    this.#send(res, reply, fault);
  }

  #authenticate(req: IncomingMessage): AccountState | undefined {
    const header = req.headers.authorization;
    if (!header || !/^bearer\s/i.test(header)) return undefined;
    const accountId = this.#keys.get(header.slice(6).trim());
    return accountId === undefined ? undefined : this.#accounts.get(accountId);
  }

  #rateHeaders(limiter: AccountLimiter, now: number): Record<string, string> {
    const reading = limiter.read(now);
    const headers: Record<string, string> = {};
    if (reading.minute) {
      headers['X-RateLimit-Limit'] = String(reading.minute.limit);
      headers['X-RateLimit-Remaining'] = String(reading.minute.remaining);
    }
    if (reading.daily && this.#opts.headers.daily) {
      headers['X-RateLimit-Daily-Limit'] = String(reading.daily.limit);
      headers['X-RateLimit-Daily-Remaining'] = String(reading.daily.remaining);
    }
    return headers;
  }

  #tooMany(limiter: AccountLimiter, decision: LimitDecision & { allowed: false }, now: number, dropHeaders: boolean): Reply {
    const h = this.#opts.headers;
    const headers: Record<string, string> = dropHeaders ? {} : this.#rateHeaders(limiter, now);
    if (!dropHeaders) headers['X-RateLimit-Type'] = decision.type;
    headers['Retry-After'] =
      h.retryAfterFormat === 'http-date'
        ? new Date(Math.ceil((now + decision.retryAfterMs) / 1000) * 1000).toUTCString()
        : String(retryAfterSeconds(decision.retryAfterMs));
    if (h.retryAfterMs) headers['retry-after-ms'] = String(Math.ceil(decision.retryAfterMs));
    return { status: 429, body: TOO_MANY, contentType: 'application/json', headers };
  }

  async #dispatch(route: Route, req: IncomingMessage, account: AccountState, now: number, query: string): Promise<Reply> {
    switch (route.kind) {
      case 'balance':
        return json(200, { data: { balance: account.balance } });
      case 'models':
        return json(200, listModels(new URLSearchParams(query), `${this.baseUrl}/models`));
      case 'status': {
        this.#counters.polls++;
        const job = this.#store.get(route.id);
        if (!job || job.account !== account.id) {
          this.#counters.notFound404++;
          return { status: 404, body: NOT_FOUND, contentType: 'application/json' };
        }
        return json(200, { data: this.#store.statusData(job, now, this.url) });
      }
      case 'submit':
      case 'price':
        return this.#submitOrPrice(route, req, account, now);
      case 'method-not-allowed':
        return json(405, {});
    }
  }

  async #submitOrPrice(
    route: Route & { kind: 'submit' | 'price' },
    req: IncomingMessage,
    account: AccountState,
    now: number,
  ): Promise<Reply> {
    const body = await readBody(req, this.#opts.maxBodyBytes);
    if (!body) {
      const reply = json(413, { message: 'The request body is too large.' });
      reply.headers = { Connection: 'close' };
      return reply;
    }
    const raw = await parseParams(body, req.headers['content-type']);
    const errors = validateParams(route.endpoint, raw, this.#opts.strictModels);
    if (errors) {
      this.#counters.validation422++;
      return json(422, { message: INVALID, errors });
    }
    const params = storableParams(raw);
    const price = this.#store.price(route.endpoint, params);
    if (route.kind === 'price') return json(200, { data: { price } });

    if (account.balance < price) {
      this.#counters.validation422++;
      this.#counters.insufficientBalance++;
      return json(422, { message: 'Insufficient balance.', errors: { balance: ['Insufficient balance to run this job.'] } });
    }
    account.balance = Math.round((account.balance - price) * 1e9) / 1e9;
    const webhookUrl = typeof params['webhook_url'] === 'string' ? params['webhook_url'] : account.webhookUrl;
    const job = this.#store.create({ account: account.id, endpoint: route.endpoint, params, price, now, webhookUrl });
    if (webhookUrl !== undefined) this.#scheduleWebhooks(job, now);
    return json(200, { data: { request_id: job.id } });
  }

  #scheduleWebhooks(job: FakeJob, now: number): void {
    const url = job.webhookUrl;
    if (url === undefined) return;
    const base = { account: job.account, jobId: job.id, url };
    const processing = (): Promise<void> => this.#webhooks.send({ ...base, ...processingEvent(job) });
    const terminal = (): Promise<void> => this.#webhooks.send({ ...base, ...terminalEvent(job, this.url) });
    if (this.#opts.webhook.reorder) {
      this.#timers.set(() => void terminal().then(processing), job.finishedAt - now);
    } else {
      this.#timers.set(() => void processing(), job.processingAt - now);
      this.#timers.set(() => void terminal(), job.finishedAt - now);
    }
  }

  #storage(method: string, path: string): Reply {
    const notFound: Reply = { status: 404, body: 'Not Found', contentType: 'text/plain' };
    if (method !== 'GET' && method !== 'HEAD') return notFound;
    const name = path.slice('/storage/'.length);
    const dot = name.lastIndexOf('.');
    if (dot < 0) return notFound;
    const job = this.#store.get(name.slice(0, dot));
    const ext = name.slice(dot + 1);
    if (!job || job.resultExt !== ext || this.#store.statusOf(job, this.clock.now()).status !== 'done') return notFound;
    this.#counters.storageDownloads++;
    return { status: 200, body: resultBytes(ext, job.id), contentType: CONTENT_TYPES[ext] ?? 'application/octet-stream' };
  }

  #send(res: ServerResponse, reply: Reply, fault?: FaultKind): void {
    let body = reply.body;
    if (fault === 'malformed-json' && typeof body === 'string' && body.length > 1) {
      body = body.slice(0, Math.max(1, Math.floor(body.length / 2)));
    }
    const write = (): void => {
      if (res.destroyed) return;
      res.writeHead(reply.status, {
        'Content-Type': reply.contentType,
        'Content-Length': String(Buffer.byteLength(body)),
        'Cache-Control': 'no-cache, private',
        ...reply.headers,
      });
      res.end(body);
    };
    const delay = (fault === 'slow' ? this.#opts.faults.slowMs : 0) + this.#oneWay();
    if (delay > 0) this.#timers.set(write, delay);
    else write();
  }
}

/**
 * Starts a fake ModelBeam API on `options.host`:`options.port` (127.0.0.1, a free port by default).
 *
 * @example
 * const server = await startFakeModelBeam({ limits: { minute: { limit: 10 } } });
 * const res = await request(`${server.baseUrl}/balance`, { headers: { authorization: 'Bearer test-key' } });
 * await server.close();
 */
export async function startFakeModelBeam(options: FakeServerOptions = {}): Promise<FakeModelBeamServer> {
  const server = new FakeModelBeam(resolveOptions(options));
  await server.listen();
  return server;
}
