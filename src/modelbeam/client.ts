/**
 * `ModelBeamClient`: wires the transport, the job tracker and poller, the
 * webhook receiver, the balance stop and `generate()` together. The parts
 * live in their own modules; this file mostly connects them.
 */
import { setMaxListeners } from 'node:events';
import { TypedEmitter } from '../engine/events.js';
import type { RateLimitScheduler } from '../engine/scheduler.js';
import { InsufficientBalanceError } from '../errors/insufficient-balance-error.js';
import { OutcomeUnknownError } from '../errors/outcome-unknown-error.js';
import { ParamsValidationError } from '../errors/params-validation-error.js';
import { QueueClosedError } from '../errors/queue-closed-error.js';
import type { Logger } from '../internal/logger.js';
import { checkHttpUrl } from '../internal/validate.js';
import { encodeBody, prepareParams, type PreparedParams } from './body.js';
import { CALL_OPTIONS, checkCallOptions } from './call-options.js';
import { Downloader, type DownloadOptions } from './download.js';
import {
  isValidEndpointName,
  unknownEndpointErrors,
  validateParams,
  type Img2ImgParams,
  type KnownEndpoint,
  type ParamsOf,
  type Img2TxtParams,
  type Img2VideoParams,
  type TranscribeParams,
  type Txt2AudioParams,
  type Txt2EmbeddingParams,
  type Txt2ImgParams,
  type Txt2MusicParams,
  type Txt2VideoParams,
} from './endpoints.js';
import type { ClientStats, Emit, ModelBeamClientEvents } from './events.js';
import { runGenerate, type GenerateResult, type SubmittedJob } from './generate.js';
import { JobTracker, type TrackerCounters } from './job-tracker.js';
import { copyResultFields, hasOutput, parseJobStatus, readRequestId, toJobResult, unwrapData, type JobResult, type JobStatus } from './jobs.js';
import { linkSignals } from './lru.js';
import { MAX_URL_LENGTH, resolveClientOptions, type ModelBeamClientOptions, type ResolvedClientOptions } from './options.js';
import { PollGate } from './poll-gate.js';
import { DurationEstimator, type PlannerConfig } from './poll-planner.js';
import { estimateBatch, type BatchEstimate, type EstimateItem, type EstimateOptions } from './estimate.js';
import { PriceBook } from './price-book.js';
import { Poller } from './poller.js';
import { SubmitGate } from './submit-gate.js';
import { Transport, type DayReading, type ApiCall, type ApiResponse, type TransportCounters } from './transport.js';
import { createWebhookHandler, listenWebhookServer, type WebhookHandler, type WebhookServer, type WebhookServerOptions } from './webhooks.js';

const USER_AGENT = 'modelbeam-scheduler/0.1';

/** Per-call options of submissions. */
export interface SubmitOptions {
  /** Aborts the submission while it is queued (a request already sent may still create a job). */
  signal?: AbortSignal;
  /** Scheduler priority; higher goes first. @default 0 */
  priority?: number;
  /**
   * Called synchronously just before each HTTP request of the submission is
   * sent: once the POST leaves, a job may exist. `attempt` counts the
   * requests of this submission from 1 (a resend after a 429 or a 5xx that
   * the server did not process is the next number). An exception it throws is
   * logged and ignored.
   */
  onDispatch?: (attempt: number) => void;
}

export interface SubmitResult {
  /** The job's id (`''` only when the API answered with the output inline and no id). */
  requestId: string;
  /** The output, when the API answered the submission with it (`return_result_in_response`). */
  result?: unknown;
}

export interface WaitOptions {
  signal?: AbortSignal;
  /** The job's endpoint and model: used to learn how long such jobs take. */
  endpoint?: string;
  model?: string;
  /** When it was submitted (epoch ms, client clock). Unknown: the first poll goes out at once. */
  submittedAt?: number;
}

export interface GenerateOptions extends SubmitOptions {
  /**
   * Called synchronously just before each HTTP request of every submission
   * attempt is sent, with that submission's attempt number (1 for the first
   * submission, 2 for the first resubmission, …, as in `onSubmitted`; a
   * resend of the same submission after a 429 repeats the number). An
   * exception it throws is logged and ignored.
   */
  onDispatch?: (attempt: number) => void;
  /** Called after each billed submission with its request id (1-based attempt). */
  onSubmitted?: (requestId: string, attempt: number) => void;
}

export interface CallOptions {
  signal?: AbortSignal;
}

/** A model from `GET /models`. */
export interface Model {
  name: string;
  slug: string;
  inferenceTypes: string[];
  /** `info.limits`: min/max width, height, steps, `resolution_step`, … */
  limits: Record<string, unknown>;
  /** `info.features`: `supports_guidance`, … */
  features: Record<string, unknown>;
  /** `info.defaults`. */
  defaults: Record<string, unknown>;
  loras: { displayName: string; name: string }[] | null;
  languages: string[] | null;
  /** The item as the API sent it. */
  raw: unknown;
}

export interface ModelsFilter {
  /** Sent as `filter[inference_types]=a,b`. */
  inferenceTypes?: string[];
}

export type { GenerateResult };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function readModel(item: unknown): Model | undefined {
  if (!isObject(item) || typeof item['slug'] !== 'string') return undefined;
  const info = isObject(item['info']) ? item['info'] : {};
  const obj = (v: unknown): Record<string, unknown> => (isObject(v) ? v : {});
  const loras = Array.isArray(item['loras'])
    ? item['loras'].filter(isObject).map((l) => ({ displayName: String(l['display_name'] ?? l['name'] ?? ''), name: String(l['name'] ?? '') }))
    : null;
  return {
    name: typeof item['name'] === 'string' ? item['name'] : item['slug'],
    slug: item['slug'],
    inferenceTypes: Array.isArray(item['inference_types']) ? item['inference_types'].map(String) : [],
    limits: obj(info['limits']),
    features: obj(info['features']),
    defaults: obj(info['defaults']),
    loras,
    languages: Array.isArray(item['languages']) ? item['languages'].map(String) : null,
    raw: item,
  };
}

function readNumberField(body: unknown, field: string): number | undefined {
  const value = unwrapData(body)?.[field];
  const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
  return Number.isFinite(n) ? n : undefined;
}

/**
 * A client for the ModelBeam API on top of a `RateLimitScheduler`.
 *
 * @example
 * const client = new ModelBeamClient({ apiKey: process.env.MODELBEAM_API_KEY! });
 * const result = await client.generate('txt2img', { prompt: 'a fox', model: 'Flux1schnell', width: 512, height: 512, steps: 4 });
 * await client.download(result, 'fox.png');
 * await client.close();
 */
export class ModelBeamClient extends TypedEmitter<ModelBeamClientEvents> {
  /** The scheduler every API request goes through. */
  readonly scheduler: RateLimitScheduler;

  readonly #o: ResolvedClientOptions;
  readonly #logger: Logger;
  readonly #transport: Transport;
  readonly #estimator: DurationEstimator;
  readonly #pollGate: PollGate;
  readonly #tracker: JobTracker;
  readonly #poller: Poller;
  readonly #submitGate: SubmitGate;
  readonly #downloader: Downloader;
  readonly #prices = new PriceBook((endpoint, params, signal) => this.price(endpoint, params, signal ? { signal } : {}));
  readonly #requests: TransportCounters = { submits: 0, polls: 0, other: 0, rateLimited: 0 };
  readonly #jobs: TrackerCounters = { completed: 0, failed: 0, pollErrors: 0, webhooksUnknownJob: 0 };
  readonly #counts = { submitted: 0, resubmissions: 0, outcomeUnknown: 0, possibleDuplicates: 0, webhooksAccepted: 0, webhooksRejected: 0, webhooksDuplicate: 0 };
  readonly #closer = new AbortController();
  readonly #servers = new Set<WebhookServer>();
  #handler: WebhookHandler | undefined;
  #webhookUrl: string | undefined;
  #submitsQueued = 0;
  #closing: Promise<void> | undefined;
  /** A status request sent to spend the day's last units (see `#pollsToKeep`) is on its way. */
  #spendingDay = false;

  constructor(options: ModelBeamClientOptions) {
    const o = resolveClientOptions(options);
    super((error) => o.logger.error({ err: error }, 'client event listener threw'), 'client');
    this.#o = o;
    this.scheduler = o.scheduler;
    this.#logger = o.logger.child({ component: 'modelbeam' });
    this.#webhookUrl = o.webhook?.url;
    setMaxListeners(0, this.#closer.signal); // one listener per call in flight, removed when it settles
    if (this.#webhookUrl?.startsWith('http:')) this.#logger.warn({}, 'webhook.url is plain http: the real API only posts to https URLs');

    const emit: Emit = (name, event) => this.emit(name, event);
    this.#transport = new Transport({
      baseUrl: o.baseUrl,
      apiKey: o.apiKey,
      connections: o.connections,
      connectTimeoutMs: o.connectTimeoutMs,
      headersTimeoutMs: o.headersTimeoutMs,
      bodyTimeoutMs: o.bodyTimeoutMs,
      keepAliveTimeoutMs: o.keepAliveTimeoutMs,
      userAgent: USER_AGENT,
      scheduler: o.scheduler,
      logger: this.#logger,
      counters: this.#requests,
      dailyCounts: o.dailyCounts,
      pollsToKeep: (submitting, route, day) => this.#pollsToKeep(submitting, route, day),
      limitScope: o.limitScope,
      clock: o.clock,
    });
    const config: PlannerConfig = {
      minIntervalMs: o.polling.minIntervalMs,
      maxIntervalMs: o.polling.maxIntervalMs,
      overdueFactor: o.polling.overdueFactor,
    };
    this.#estimator = new DurationEstimator({
      initialMs: o.polling.initialEstimateMs,
      minMs: Math.max(1, o.polling.minIntervalMs / 2),
      // No poll waits longer than maxIntervalMs (× overdueFactor with webhooks): an estimate above that plans
      // nothing differently, and would only take longer to come back down.
      maxMs: Math.max(o.polling.initialEstimateMs, o.polling.maxIntervalMs * o.polling.overdueFactor),
    });
    this.#pollGate = new PollGate({ windowMs: o.polling.windowMs, maxShare: o.polling.maxShare, fallbackLimit: 60 });
    this.#tracker = new JobTracker({
      clock: o.clock,
      logger: this.#logger,
      emit,
      estimator: this.#estimator,
      config,
      counters: this.#jobs,
      webhookConfigured: this.#webhookUrl !== undefined,
      rememberFinished: o.rememberFinishedJobs,
    });
    this.#poller = new Poller({
      clock: o.clock,
      scheduler: o.scheduler,
      transport: this.#transport,
      estimator: this.#estimator,
      gate: this.#pollGate,
      config,
      windowMs: o.polling.windowMs,
      logger: this.#logger,
      mode: () => (this.#webhookUrl === undefined ? 'poll' : this.#tracker.mode()),
      submissionsWaiting: () => this.#submitsQueued > 0 && !this.#dayHoldsSubmissions(),
      onResult: (job, status, sentAt) => this.#tracker.onPollResult(job, status, sentAt),
      onError: (job, error) => this.#tracker.onPollError(job, error),
    });
    this.#tracker.attach(this.#poller);
    this.#submitGate = new SubmitGate({
      clock: o.clock,
      logger: this.#logger,
      emit,
      action: o.onInsufficientBalance,
      checkIntervalMs: o.balanceCheckIntervalMs,
      checkBalance: () => this.balance(),
    });
    this.#downloader = new Downloader({
      connectTimeoutMs: o.connectTimeoutMs,
      headersTimeoutMs: o.headersTimeoutMs,
      bodyTimeoutMs: o.bodyTimeoutMs,
      userAgent: USER_AGENT,
      clock: o.clock,
      random: o.random,
      logger: this.#logger,
    });
  }

  // ---- submissions ------------------------------------------------------------

  /**
   * Submits a job to `endpoint` (e.g. `'txt2img'`, `'videos/replace'`).
   * Parameters are checked locally first (`ParamsValidationError`, nothing
   * sent). Resolves with the request id. A lost response rejects with
   * `OutcomeUnknownError` (the job may exist); a 422 about the balance pauses
   * submissions and rejects with `InsufficientBalanceError`.
   */
  submit<E extends KnownEndpoint>(endpoint: E, params: ParamsOf<E>, options?: SubmitOptions): Promise<SubmitResult>;
  async submit(endpoint: string, params: Record<string, unknown>, options: SubmitOptions = {}): Promise<SubmitResult> {
    checkCallOptions(options, CALL_OPTIONS.submit);
    const prepared = await this.#prepare(endpoint, params, true);
    let job: SubmittedJob;
    try {
      job = await this.#submitPrepared(endpoint, prepared, options, 1);
    } catch (error) {
      if (error instanceof OutcomeUnknownError) {
        this.#counts.outcomeUnknown++;
        this.emit('outcomeUnknown', { endpoint, attempt: 1, resubmitting: false, error });
      }
      throw error;
    }
    return job.inline?.result !== undefined ? { requestId: job.requestId, result: job.inline.result } : { requestId: job.requestId };
  }

  txt2img(params: Txt2ImgParams, options?: SubmitOptions): Promise<SubmitResult> {
    return this.submit('txt2img', params, options);
  }
  img2img(params: Img2ImgParams, options?: SubmitOptions): Promise<SubmitResult> {
    return this.submit('img2img', params, options);
  }
  txt2embedding(params: Txt2EmbeddingParams, options?: SubmitOptions): Promise<SubmitResult> {
    return this.submit('txt2embedding', params, options);
  }
  txt2audio(params: Txt2AudioParams, options?: SubmitOptions): Promise<SubmitResult> {
    return this.submit('txt2audio', params, options);
  }
  transcribe(params: TranscribeParams, options?: SubmitOptions): Promise<SubmitResult> {
    return this.submit('transcribe', params, options);
  }
  img2txt(params: Img2TxtParams, options?: SubmitOptions): Promise<SubmitResult> {
    return this.submit('img2txt', params, options);
  }
  txt2video(params: Txt2VideoParams, options?: SubmitOptions): Promise<SubmitResult> {
    return this.submit('txt2video', params, options);
  }
  img2video(params: Img2VideoParams, options?: SubmitOptions): Promise<SubmitResult> {
    return this.submit('img2video', params, options);
  }
  txt2music(params: Txt2MusicParams, options?: SubmitOptions): Promise<SubmitResult> {
    return this.submit('txt2music', params, options);
  }

  /**
   * Waits for a job: resolves with its result once `done`, rejects with
   * `JobFailedError` (code, retryable) once `error`. Polls spend little quota
   * (see `polling`); with a webhook configured they are a safety net only.
   * Transient failures (5xx, resets, 429s) are polled through: a known job is
   * never given up on while it can still finish.
   */
  wait(requestId: string, options: WaitOptions = {}): Promise<JobResult> {
    if (typeof requestId !== 'string' || requestId.trim() === '') {
      return Promise.reject(new TypeError(`Expected \`requestId\` to be a non-empty string, got \`${String(requestId)}\` (${typeof requestId})`));
    }
    try {
      checkCallOptions(options, CALL_OPTIONS.wait);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    if (this.#closing) return Promise.reject(new QueueClosedError('The ModelBeam client is closed'));
    return this.#tracker.wait(requestId, options);
  }

  /**
   * Submits and waits, resubmitting jobs that failed with a retryable code
   * (within `jobRetries` and `maxResubmissions`; each one a new billed job).
   * A lost submission response rejects with `OutcomeUnknownError` unless
   * `resubmitOnUnknownOutcome`, which submits again and marks the result
   * `possibleDuplicate`.
   */
  generate<E extends KnownEndpoint>(endpoint: E, params: ParamsOf<E>, options?: GenerateOptions): Promise<GenerateResult>;
  async generate(endpoint: string, params: Record<string, unknown>, options: GenerateOptions = {}): Promise<GenerateResult> {
    checkCallOptions(options, CALL_OPTIONS.generate);
    const prepared = await this.#prepare(endpoint, params, true);
    const model = typeof params['model'] === 'string' ? params['model'] : undefined;
    return runGenerate({
      submit: (attempt) => {
        const onDispatch = options.onDispatch;
        return this.#submitPrepared(endpoint, prepared, onDispatch ? { ...options, onDispatch: () => onDispatch(attempt) } : options, attempt);
      },
      wait: (job) =>
        this.#tracker.wait(job.requestId, {
          signal: options.signal,
          endpoint,
          model,
          submittedAt: job.submittedAt,
        }),
      endpoint,
      jobRetries: this.#o.jobRetries,
      maxResubmissions: this.#o.maxResubmissions,
      jobRetryDelayMs: this.#o.jobRetryDelayMs,
      resubmitOnUnknownOutcome: this.#o.resubmitOnUnknownOutcome,
      waitOnBalance: this.#o.onInsufficientBalance === 'wait',
      clock: this.#o.clock,
      random: this.#o.random,
      emit: (name, event) => this.emit(name, event),
      logger: this.#logger,
      counters: this.#counts,
      signal: options.signal,
      onSubmitted: options.onSubmitted,
    });
  }

  /** Lets submissions go again after a balance stop (they also resume by themselves once `/balance` rises). */
  resumeSubmissions(): void {
    this.#submitGate.resume('manual');
  }

  // ---- reads --------------------------------------------------------------------

  /** One `GET /request-status/{id}` (through the scheduler, like every call). */
  async status(requestId: string, options: CallOptions = {}): Promise<JobStatus> {
    if (typeof requestId !== 'string' || requestId.trim() === '') {
      throw new TypeError(`Expected \`requestId\` to be a non-empty string, got \`${String(requestId)}\` (${typeof requestId})`);
    }
    checkCallOptions(options, CALL_OPTIONS.call);
    const res = await this.#call({
      kind: 'poll',
      method: 'GET',
      path: `/request-status/${encodeURIComponent(requestId)}`,
      idempotent: true,
      requestId,
      check: (body) => (parseJobStatus(requestId, body) ? undefined : 'the request-status body has no status'),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    return parseJobStatus(requestId, res.body) as JobStatus;
  }

  /** The account balance, USD. */
  async balance(options: CallOptions = {}): Promise<number> {
    checkCallOptions(options, CALL_OPTIONS.call);
    const res = await this.#call({ kind: 'other', method: 'GET', path: '/balance', idempotent: true, check: checkBalanceBody, signal: options.signal });
    return readNumberField(res.body, 'balance') as number;
  }

  /** The exact price of a job, without running it (`POST /{endpoint}/price-calculation`). */
  async price(endpoint: string, params: Record<string, unknown>, options: CallOptions = {}): Promise<number> {
    checkCallOptions(options, CALL_OPTIONS.call);
    const prepared = await this.#prepare(endpoint, params, false);
    const res = await this.#call({
      kind: 'other',
      method: 'POST',
      path: `/${endpoint}/price-calculation`,
      idempotent: true, // a quote creates nothing
      body: () => encodeBody(prepared),
      check: (body) => (readNumberField(body, 'price') === undefined ? 'no price in the body' : undefined),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    return readNumberField(res.body, 'price') as number;
  }

  /**
   * The price of a job, from a cache keyed by the parameters that can change it (see `price-key.ts`): one
   * `price-calculation` call per distinct set, shared with {@link estimate} and with batch runs that have a
   * spend cap. Rejects as {@link price} does.
   */
  quote(endpoint: string, params: Record<string, unknown>, options: CallOptions = {}): Promise<number> {
    try {
      checkCallOptions(options, CALL_OPTIONS.call);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    return this.#prices.quote(endpoint, params, options.signal);
  }

  /**
   * What a batch will cost, before anything is submitted: every item priced through {@link quote} (one
   * `price-calculation` call per distinct set of price-changing parameters, through the scheduler), summed
   * exactly, with the balance, the limits the scheduler will run under and a duration from them. An item
   * that cannot be priced is counted in `failed` with its line (`PRICE_UNAVAILABLE`).
   *
   * @example
   * const e = await client.estimate([{ endpoint: 'txt2img', params: { prompt: 'a fox', model: 'Flux1schnell', width: 512, height: 512, steps: 4 } }]);
   * console.log(e.total, e.balance, e.durationMs);
   */
  estimate(items: Iterable<EstimateItem> | AsyncIterable<EstimateItem>, options: EstimateOptions = {}): Promise<BatchEstimate> {
    if (items === null || typeof items !== 'object' || (!(Symbol.asyncIterator in items) && !(Symbol.iterator in items))) {
      return Promise.reject(new TypeError('Expected `items` to be an iterable or async iterable of `{ endpoint, params, line? }`'));
    }
    try {
      checkCallOptions(options, CALL_OPTIONS.estimate);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    return estimateBatch(
      {
        prices: this.#prices,
        balance: (signal) => this.balance(signal ? { signal } : {}),
        limits: () => {
          const budget = this.scheduler.stats().budget;
          const { minuteMs, dayMs } = this.scheduler.timing;
          return { minute: budget?.minute.limit, daily: budget?.daily.limit, dailyRemaining: budget?.daily.remaining, minuteMs, dayMs };
        },
      },
      items,
      options,
    );
  }

  /** Every model (all pages), optionally only those of some inference types. */
  async models(filter: ModelsFilter = {}, options: CallOptions = {}): Promise<Model[]> {
    checkCallOptions(options, CALL_OPTIONS.call);
    const types = filter.inferenceTypes;
    if (types !== undefined && (!Array.isArray(types) || !types.every((t) => typeof t === 'string' && t !== ''))) {
      throw new TypeError(`Expected \`inferenceTypes\` to be an array of non-empty strings, got \`${JSON.stringify(types)}\``);
    }
    const out: Model[] = [];
    for (let page = 1; page <= 1000; page++) {
      const query: Record<string, string> = { per_page: '100', page: String(page) };
      if (types && types.length > 0) query['filter[inference_types]'] = types.join(',');
      const res = await this.#call({
        kind: 'other',
        method: 'GET',
        path: '/models',
        query,
        idempotent: true,
        ...(options.signal ? { signal: options.signal } : {}),
      });
      const body = res.body as { data?: unknown; meta?: { last_page?: unknown; current_page?: unknown }; links?: { next?: unknown } };
      const items = Array.isArray(body.data) ? body.data : [];
      for (const item of items) {
        const model = readModel(item);
        if (model) out.push(model);
      }
      const last = typeof body.meta?.last_page === 'number' ? body.meta.last_page : undefined;
      const more = last !== undefined ? page < last : typeof body.links?.next === 'string' && body.links.next !== '';
      if (!more || items.length === 0) break;
    }
    return out;
  }

  /**
   * Streams a result (`result.resultUrl`, or a URL) to a file path (written
   * whole or not at all) or a writable stream. Result URLs are temporary:
   * download promptly.
   */
  async download(result: { resultUrl?: string } | string, dest: string | NodeJS.WritableStream, options: DownloadOptions = {}): Promise<void> {
    const url = typeof result === 'string' ? result : result?.resultUrl;
    if (typeof url !== 'string' || !/^https?:\/\//i.test(url) || !URL.canParse(url)) {
      throw new TypeError('Expected a result with a `resultUrl` (or an http(s) URL); this job has no file output (see `result.result`)');
    }
    if (typeof dest !== 'string' && (typeof dest !== 'object' || dest === null || typeof (dest as NodeJS.WritableStream).write !== 'function')) {
      throw new TypeError('Expected `dest` to be a file path or a writable stream');
    }
    if (this.#closing) throw new QueueClosedError('The ModelBeam client is closed');
    const link = linkSignals(this.#closer.signal, options.signal);
    try {
      await this.#downloader.download(url, dest, { signal: link.signal });
    } finally {
      link.dispose();
    }
  }

  // ---- webhooks -------------------------------------------------------------------

  /**
   * The webhook receiver bound to this client's jobs (mount it on your own
   * server, or use `startWebhookServer`). Needs `webhook.secret`.
   */
  get webhookHandler(): WebhookHandler {
    if (this.#handler) return this.#handler;
    const secret = this.#o.webhook?.secret;
    if (secret === undefined) {
      throw new TypeError(
        "Expected `webhook.secret` to be set to receive webhooks, e.g. `{ webhook: { url: 'https://example.com/hook', secret: process.env.MODELBEAM_WEBHOOK_SECRET } }`",
      );
    }
    this.#handler = createWebhookHandler({
      secret,
      toleranceSec: this.#o.webhook?.toleranceSec ?? 300,
      maxBodyBytes: this.#o.webhook?.maxBodyBytes ?? 1024 * 1024,
      clock: this.#o.clock,
      logger: this.#logger,
      onEvent: (event) => {
        this.#counts.webhooksAccepted++;
        this.emit('webhookAccepted', { requestId: event.requestId, event: event.event, deliveryId: event.deliveryId });
        this.#tracker.onWebhook(event);
      },
      onRejected: (r) => {
        this.#counts.webhooksRejected++;
        this.emit('webhookRejected', { reason: r.reason, status: r.status, remoteAddress: r.remoteAddress });
      },
      onDuplicate: (event, by) => {
        this.#counts.webhooksDuplicate++;
        this.emit('webhookDuplicate', { requestId: event.requestId, event: event.event, deliveryId: event.deliveryId, by });
      },
    });
    return this.#handler;
  }

  /** Starts a small `node:http` server for the webhook handler (closed by `close()`). */
  async startWebhookServer(options: WebhookServerOptions): Promise<WebhookServer> {
    if (this.#closing) throw new QueueClosedError('The ModelBeam client is closed');
    const server = await listenWebhookServer(this.webhookHandler, options);
    this.#servers.add(server);
    this.#logger.info({ url: server.url }, 'webhook server listening');
    return {
      url: server.url,
      port: server.port,
      close: async () => {
        this.#servers.delete(server);
        await server.close();
      },
    };
  }

  /**
   * Changes the URL sent as `webhook_url` with later submissions (a tunnel
   * that moved, a server started on port 0). Only when `webhook` is configured.
   */
  setWebhookUrl(url: string): void {
    if (this.#o.webhook === undefined) throw new TypeError('Expected the `webhook` option to be set before `setWebhookUrl()`');
    this.#webhookUrl = checkHttpUrl('url', url, MAX_URL_LENGTH);
  }

  // ---- stats and lifecycle --------------------------------------------------------

  stats(): ClientStats {
    const r = this.#requests;
    const done = this.#jobs.completed + this.#jobs.failed;
    const total = r.submits + r.polls + r.other;
    return {
      submitted: this.#counts.submitted,
      completed: this.#jobs.completed,
      failed: this.#jobs.failed,
      polls: r.polls,
      pollsPerJob: done === 0 ? 0 : r.polls / done,
      webhooksAccepted: this.#counts.webhooksAccepted,
      webhooksRejected: this.#counts.webhooksRejected,
      webhooksDuplicate: this.#counts.webhooksDuplicate,
      webhooksUnknownJob: this.#jobs.webhooksUnknownJob,
      resubmissions: this.#counts.resubmissions,
      outcomeUnknown: this.#counts.outcomeUnknown,
      possibleDuplicates: this.#counts.possibleDuplicates,
      '429s': r.rateLimited,
      inFlightJobs: this.#tracker.inFlight,
      waitingJobs: this.#poller.size,
      requests: { total, submits: r.submits, polls: r.polls, other: r.other },
      requestsPerCompletedJob: this.#jobs.completed === 0 ? 0 : total / this.#jobs.completed,
      pollErrors: this.#jobs.pollErrors,
      submissionsPaused: this.#submitGate.paused,
      webhookMode: this.#webhookUrl !== undefined && !this.#tracker.fallback,
      webhookFallback: this.#webhookUrl !== undefined && this.#tracker.fallback,
      durations: this.#estimator.snapshot(),
      scheduler: this.scheduler.stats(),
    };
  }

  /**
   * Closes the client: pending waits and queued calls reject with
   * `QueueClosedError`, timers stop, webhook servers and connections close.
   * A scheduler passed in is left open. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const error = new QueueClosedError('The ModelBeam client is closed');
      this.#submitGate.close(error);
      this.#tracker.close(error);
      this.#closer.abort(error);
      await Promise.all([...this.#servers].map((s) => s.close()));
      this.#servers.clear();
      if (this.#o.ownsScheduler) await this.scheduler.close({ drain: false }).catch(() => undefined);
      await this.#transport.close();
      await this.#downloader.close();
    })();
    return this.#closing;
  }

  // ---- internals ------------------------------------------------------------------

  async #prepare(endpoint: string, params: Record<string, unknown>, forSubmit: boolean): Promise<PreparedParams> {
    if (this.#closing) throw new QueueClosedError('The ModelBeam client is closed');
    if (!isValidEndpointName(endpoint)) {
      throw new TypeError(`Expected \`endpoint\` to be an endpoint path such as 'txt2img' or 'videos/replace', got \`${String(endpoint)}\``);
    }
    if (typeof params !== 'object' || params === null || Array.isArray(params)) {
      throw new TypeError(`Expected \`params\` to be an object, got ${params === null ? 'null' : Array.isArray(params) ? 'an array' : typeof params}`);
    }
    let body: Record<string, unknown> = params;
    if (forSubmit && this.#webhookUrl !== undefined && body['webhook_url'] === undefined) body = { ...params, webhook_url: this.#webhookUrl };
    if (this.#o.validate) {
      const errors = unknownEndpointErrors(endpoint) ?? validateParams(endpoint, body);
      if (errors) throw new ParamsValidationError(endpoint, errors);
    }
    return prepareParams(endpoint, body, this.#o.maxUploadBytes);
  }

  /**
   * The daily units a submission on `route` leaves for polls (see `JobTracker.pollsToKeep`). With no job in
   * flight or on the way, units left that are too few for one more job (its submission and its polls) can buy
   * only a result held to the next day, unless the submission goes so late that its job is polled after the
   * reset: where when the day ends is not known, they are spent instead on a status request of a finished job
   * (its answer unused), and the submission that then finds the day spent is the one refused with the reset
   * time (the daily probe), the queue parked until then. One unit spent for nothing once, instead of a result
   * held (or the queue held up to a day) for want of the reset time.
   */
  #pollsToKeep(submitting: number, route: string, day: DayReading): number {
    const keep = this.#tracker.pollsToKeep(submitting, this.#estimator.expected(route), day.endsBy);
    const left = day.available;
    if (day.endsBy !== undefined || submitting > 0 || this.#tracker.inFlight > 0 || left === undefined || left <= 0 || left > keep) return keep;
    if (this.#spendingDay) return keep;
    const job = this.#tracker.lastFinished();
    // Nothing to ask about, or status requests not shown to count daily (the day might not get spent): the
    // submission goes while the day has a unit (its result comes today if its polls find units, else tomorrow).
    if (job === undefined || this.#closing || this.scheduler.minuteLaneCountsDaily !== true) return 0;
    this.#spendingDay = true;
    // Not from inside the scheduler's dispatch loop (this runs while it reserves).
    queueMicrotask(() => {
      void this.#poller.readStatus(job).finally(() => {
        this.#spendingDay = false;
      });
    });
    return keep;
  }

  /**
   * The daily window has nothing left for submissions (spent, parked until it
   * resets, or what is left is kept for the polls of the jobs in flight): the
   * queued ones cannot go, so polls need not leave them room
   * (the share cap would otherwise hold the results of jobs in flight back to
   * half the minute budget until the next day).
   */
  #dayHoldsSubmissions(): boolean {
    const budget = this.scheduler.budget();
    if (budget === undefined) return false;
    if (budget.parkedUntil !== undefined) return true;
    const available = budget.daily.available;
    if (available === undefined) return false;
    // Spent, or all that is left is kept for the polls of the jobs in flight (see Transport's keepForPolls).
    return available <= 0 || available <= this.#transport.keepForPolls('/request-status/');
  }

  async #submitPrepared(endpoint: string, prepared: PreparedParams, options: SubmitOptions, attempt: number): Promise<SubmittedJob> {
    await this.#submitGate.pass(options.signal);
    let waiting = true;
    const left = (): void => {
      if (!waiting) return;
      waiting = false;
      this.#submitsQueued--;
      this.#poller.kick();
    };
    const onDispatch = options.onDispatch;
    const dispatched = (request: number): void => {
      left();
      if (!onDispatch) return;
      try {
        onDispatch(request);
      } catch (error) {
        this.#logger.error({ err: error, endpoint }, 'onDispatch threw');
      }
    };
    this.#submitsQueued++;
    let res: ApiResponse;
    try {
      res = await this.#call({
        kind: 'submit',
        method: 'POST',
        path: `/${endpoint}`,
        idempotent: false,
        body: () => encodeBody(prepared),
        onDispatch: dispatched,
        check: (body) => (readRequestId(body) !== undefined || hasOutput(inlineFields(body)) ? undefined : 'no request_id in the body'),
        ...(options.priority === undefined ? {} : { priority: options.priority }),
        ...(options.signal ? { signal: options.signal } : {}),
      });
    } catch (error) {
      if (error instanceof InsufficientBalanceError) this.#submitGate.pause(error, endpoint);
      throw error;
    } finally {
      left();
    }
    // The transport counts an answered submission among the jobs on the way until it is tracked here.
    let requestId: string;
    let submittedAt: number;
    let inline: JobResult | undefined;
    const model = prepared.values.get('model');
    try {
      submittedAt = this.#o.clock.now();
      requestId = readRequestId(res.body) ?? '';
      const fields = inlineFields(res.body);
      inline = hasOutput(fields) ? toJobResult(requestId, fields) : undefined;
      this.#counts.submitted++;
      if (requestId !== '') {
        const job = this.#tracker.register(requestId, {
          endpoint,
          model: typeof model === 'string' ? model : undefined,
          submittedAt,
          submittedKnown: true,
          learns: true,
        });
        if (inline) this.#tracker.completeInline(job, inline);
      }
    } finally {
      this.#transport.tracked();
    }
    this.emit('submitted', { requestId, endpoint, model: typeof model === 'string' ? model : undefined, attempt });
    return { requestId, submittedAt, inline };
  }

  /** Sends `call` (a fresh object, taken over) so that closing the client aborts it. */
  #call(call: ApiCall): Promise<ApiResponse> {
    if (this.#closing) return Promise.reject(new QueueClosedError('The ModelBeam client is closed'));
    const own = call.signal;
    if (own === undefined) {
      // The client's close signal alone: no linked controller to build and dispose per call.
      call.signal = this.#closer.signal;
      return this.#transport.call(call);
    }
    const link = linkSignals(this.#closer.signal, own);
    call.signal = link.signal;
    return this.#transport.call(call).finally(link.dispose);
  }
}

function checkBalanceBody(body: unknown): string | undefined {
  return readNumberField(body, 'balance') === undefined ? 'no balance in the body' : undefined;
}

function inlineFields(body: unknown): { resultUrl?: string; resultsAltFormats?: unknown; result?: unknown; preview?: unknown } {
  const out: { resultUrl?: string; resultsAltFormats?: unknown; result?: unknown; preview?: unknown } = {};
  const data = unwrapData(body);
  if (data) copyResultFields(data, out);
  return out;
}
