/**
 * The job store: creation (durations, outcome, price), lazy lifecycle
 * (the status is computed from timestamps whenever it is read, so a million
 * jobs cost no timers), the request-status body and the stored results.
 */
import type {
  FakeEndpoint,
  JobErrorCode,
  JobOutcome,
  JobParams,
  ResolvedOptions,
} from './options.js';
import { JOB_ERROR_CODES } from './options.js';
import { hashString, mulberry32, Prng } from './prng.js';
import { primaryText } from './validation.js';

export type JobStatus = 'pending' | 'processing' | 'done' | 'error';

/** One job as the fake stores it. Times are server-clock ms. */
export interface FakeJob {
  readonly id: string;
  readonly account: string;
  readonly endpoint: FakeEndpoint;
  /** The request parameters; files are replaced by `{filename, size, type}`. */
  readonly params: JobParams;
  readonly createdAt: number;
  /** pending → processing at this time. */
  readonly processingAt: number;
  /** processing → done/error at this time. */
  readonly finishedAt: number;
  readonly outcome: JobOutcome;
  /** USD charged at creation. */
  readonly price: number;
  /** Where this job's webhooks go (the job's `webhook_url`, else the account's), if anywhere. */
  readonly webhookUrl: string | undefined;
  /** 1-based count of submissions of the same endpoint + prompt/input text. */
  readonly attempt: number;
  /** File extension of the stored result (`png`, `mp3`, ...); undefined for text/embedding results. */
  readonly resultExt: string | undefined;
}

/** `FakeJob` plus its state at the time it was read. */
export interface FakeJobView extends FakeJob {
  readonly status: JobStatus;
  readonly progress: number;
}

export interface RequestStatusData {
  status: JobStatus;
  progress: number;
  result_url: string | null;
  results_alt_formats: null;
  result: string | number[][] | null;
  preview: null;
  error_code: JobErrorCode | null;
  error_message: string | null;
}

const ERROR_MESSAGES: Record<JobErrorCode, string> = {
  WORKER_TIMEOUT: 'The worker timed out while processing the job.',
  PROCESSING_ERROR: 'An error occurred during inference.',
  AGE_RESTRICTED: 'The content was flagged as age-restricted.',
  CONTEXT_LENGTH_EXCEEDED: "The input exceeds the model's context length.",
  INVALID_INPUT: 'The input parameters are invalid.',
  UNKNOWN_ERROR: 'An unknown error occurred.',
};

export function errorMessageFor(code: JobErrorCode): string {
  return ERROR_MESSAGES[code];
}

/** A 1×1 transparent PNG. */
const PNG_BYTES = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==',
  'base64',
);

export const CONTENT_TYPES: Record<string, string> = {
  png: 'image/png',
  mp3: 'audio/mpeg',
  wav: 'audio/wav',
  flac: 'audio/flac',
  mp4: 'video/mp4',
};

/** The bytes the fake storage serves for a result of this extension. */
export function resultBytes(ext: string, id: string): Buffer {
  if (ext === 'png') return PNG_BYTES;
  return Buffer.from(`FAKE-${ext.toUpperCase()}:${id}`);
}

function resultExtFor(endpoint: FakeEndpoint, params: JobParams): string | undefined {
  const format = typeof params['format'] === 'string' ? params['format'] : undefined;
  switch (endpoint) {
    case 'txt2img':
    case 'img2img':
      return 'png';
    case 'txt2audio':
      return format === 'wav' || format === 'flac' ? format : 'mp3';
    case 'txt2music':
      return format === 'wav' || format === 'mp3' ? format : 'flac';
    case 'txt2video':
    case 'img2video':
    case 'aud2video':
      return 'mp4';
    default:
      return undefined;
  }
}

/** The default price formula (see `FakeServerOptions.pricing`). */
export function defaultPrice(endpoint: FakeEndpoint, params: JobParams): number {
  if (endpoint === 'txt2img' || endpoint === 'img2img') {
    const w = Number(params['width'] ?? 1024) || 1024;
    const h = Number(params['height'] ?? 1024) || 1024;
    const steps = Number(params['steps'] ?? 4) || 4;
    return Math.round((0.00034 + 6.485e-10 * w * h * steps) * 1e6) / 1e6;
  }
  if (endpoint === 'txt2video' || endpoint === 'img2video' || endpoint === 'aud2video') {
    // Resolution × frames × steps: ~$0.0056 for 512², 100 frames, 4 steps (the documented 512², 4 s).
    const w = Number(params['width'] ?? 512) || 512;
    const h = Number(params['height'] ?? 512) || 512;
    const frames = Number(params['frames'] ?? 100) || 100;
    const steps = Number(params['steps'] ?? 4) || 4;
    return Math.round((0.0001 + 5.245e-11 * w * h * frames * steps) * 1e6) / 1e6;
  }
  if (endpoint === 'txt2audio') {
    // Characters: $0.77 per million (the documented TTS price), at least $0.000001.
    const text = typeof params['text'] === 'string' ? params['text'] : '';
    return Math.max(1, Math.round(0.77 * text.length)) / 1e6;
  }
  return 0.001;
}

/** Deterministic fake embeddings: 8 dimensions per input, derived from the input text. */
export function fakeEmbeddings(input: unknown): number[][] {
  const inputs = Array.isArray(input) ? input.map(String) : [String(input ?? '')];
  return inputs.map((text) => {
    const next = mulberry32(hashString(text));
    return Array.from({ length: 8 }, () => Math.round((next() * 2 - 1) * 1e6) / 1e6);
  });
}

const MARKER_ONCE = /FAIL_ONCE:([A-Z_]+)/;
const MARKER = /\bFAIL:([A-Z_]+)/;

function markerCode(text: string, re: RegExp): JobErrorCode | undefined {
  const code = re.exec(text)?.[1];
  return code !== undefined && JOB_ERROR_CODES.includes(code as JobErrorCode) ? (code as JobErrorCode) : undefined;
}

export class JobStore {
  readonly #opts: ResolvedOptions['jobs'];
  readonly #pricing: (endpoint: FakeEndpoint, params: JobParams) => number;
  readonly #jobs = new Map<string, FakeJob>();
  readonly #attempts = new Map<string, number>();
  readonly #ids: Prng;
  readonly #durations: Prng;
  readonly #outcomes: Prng;

  constructor(options: ResolvedOptions) {
    this.#opts = options.jobs;
    this.#pricing = options.pricing ?? defaultPrice;
    this.#ids = new Prng(options.seed, 'ids');
    this.#durations = new Prng(options.seed, 'durations');
    this.#outcomes = new Prng(options.seed, 'outcomes');
  }

  get size(): number {
    return this.#jobs.size;
  }

  price(endpoint: FakeEndpoint, params: JobParams): number {
    return this.#pricing(endpoint, params);
  }

  get(id: string): FakeJob | undefined {
    return this.#jobs.get(id);
  }

  values(): IterableIterator<FakeJob> {
    return this.#jobs.values();
  }

  create(input: {
    account: string;
    endpoint: FakeEndpoint;
    params: JobParams;
    price: number;
    now: number;
    webhookUrl: string | undefined;
  }): FakeJob {
    const { endpoint, params, now } = input;
    const text = primaryText(params);
    const key = `${endpoint}\u0000${text}`;
    const attempt = (this.#attempts.get(key) ?? 0) + 1;
    this.#attempts.set(key, attempt);

    const pending = this.#jittered(this.#opts.pendingMs);
    const baseProcessing =
      typeof this.#opts.processingMs === 'function' ? this.#opts.processingMs(endpoint, params) : this.#opts.processingMs;
    const processing = this.#jittered(Math.max(0, Number(baseProcessing) || 0));
    const outcome = this.#decide({ endpoint, params, attempt, account: input.account }, text);

    const job: FakeJob = {
      id: this.#uniqueId(),
      account: input.account,
      endpoint,
      params,
      createdAt: now,
      processingAt: now + pending,
      finishedAt: now + pending + processing,
      outcome,
      price: input.price,
      webhookUrl: input.webhookUrl,
      attempt,
      resultExt: outcome.outcome === 'done' ? resultExtFor(endpoint, params) : undefined,
    };
    this.#jobs.set(job.id, job);
    return job;
  }

  statusOf(job: FakeJob, now: number): { status: JobStatus; progress: number } {
    if (now < job.processingAt) return { status: 'pending', progress: 0 };
    if (now < job.finishedAt) {
      const fraction = (now - job.processingAt) / (job.finishedAt - job.processingAt);
      return { status: 'processing', progress: Math.min(99.9, Math.round(fraction * 1000) / 10) };
    }
    return { status: job.outcome.outcome === 'done' ? 'done' : 'error', progress: 100 };
  }

  view(job: FakeJob, now: number): FakeJobView {
    return { ...job, ...this.statusOf(job, now) };
  }

  /** The `data` of `GET /request-status/{id}`. */
  statusData(job: FakeJob, now: number, serverUrl: string): RequestStatusData {
    const { status, progress } = this.statusOf(job, now);
    const data: RequestStatusData = {
      status,
      progress,
      result_url: null,
      results_alt_formats: null,
      result: null,
      preview: null,
      error_code: null,
      error_message: null,
    };
    if (status === 'done') {
      data.result_url = job.resultExt ? resultUrl(serverUrl, job) : null;
      data.result = this.#textResult(job);
    } else if (status === 'error' && job.outcome.outcome === 'error' && this.#opts.errorFieldsInStatus) {
      data.error_code = job.outcome.code;
      data.error_message = job.outcome.message ?? errorMessageFor(job.outcome.code);
    }
    return data;
  }

  /** Job counts by state at `now`. O(number of jobs). */
  counts(now: number): { created: number; pending: number; processing: number; done: number; failed: number } {
    const counts = { created: this.#jobs.size, pending: 0, processing: 0, done: 0, failed: 0 };
    for (const job of this.#jobs.values()) {
      if (now < job.processingAt) counts.pending++;
      else if (now < job.finishedAt) counts.processing++;
      else if (job.outcome.outcome === 'done') counts.done++;
      else counts.failed++;
    }
    return counts;
  }

  #textResult(job: FakeJob): string | number[][] | null {
    switch (job.endpoint) {
      case 'txt2embedding':
        return fakeEmbeddings(job.params['input']);
      case 'transcribe':
        return `[00:00.000 --> 00:02.000] Fake transcript of job ${job.id}.`;
      case 'img2txt':
        return `Fake OCR text of job ${job.id}.`;
      default:
        return null;
    }
  }

  #decide(ctx: { endpoint: FakeEndpoint; params: JobParams; attempt: number; account: string }, text: string): JobOutcome {
    const scripted = this.#opts.script?.(ctx);
    if (scripted) return scripted;
    if (this.#opts.failMarkers && text.includes('FAIL')) {
      const once = markerCode(text, MARKER_ONCE);
      if (once !== undefined && ctx.attempt === 1) return { outcome: 'error', code: once };
      const always = markerCode(text, MARKER);
      if (always !== undefined) return { outcome: 'error', code: always };
    }
    if (this.#outcomes.chance(this.#opts.failureRate)) {
      const codes = this.#opts.failureCodes;
      const code = codes[codes.length === 1 ? 0 : this.#outcomes.int(codes.length)] ?? 'UNKNOWN_ERROR';
      return { outcome: 'error', code };
    }
    return { outcome: 'done' };
  }

  #jittered(ms: number): number {
    const jitter = this.#opts.jitter;
    if (jitter <= 0 || ms <= 0) return ms;
    return Math.max(0, Math.round(ms * (1 + (this.#durations.next() * 2 - 1) * jitter)));
  }

  #uniqueId(): string {
    let id = this.#ids.uuid();
    while (this.#jobs.has(id)) id = this.#ids.uuid();
    return id;
  }
}

export function resultUrl(serverUrl: string, job: FakeJob): string {
  return `${serverUrl}/storage/${job.id}.${job.resultExt ?? 'bin'}`;
}
