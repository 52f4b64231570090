/**
 * A stand-in for ModelBeamClient for batch tests: the real RateLimitScheduler
 * in front of an in-process "server". Jobs are decided by the prompt:
 * `FAIL:<CODE>` fails the job, `FAIL_ONCE:<CODE>` fails its first job only,
 * `UNKNOWN_ONCE` loses the answer to the first POST (the job is created),
 * `AUTH` answers the POST with a 401.
 */
import { RateLimitScheduler } from '../../src/engine/scheduler.js';
import type { SchedulerOptions } from '../../src/engine/options.js';
import { AuthenticationError } from '../../src/errors/authentication-error.js';
import { JobFailedError } from '../../src/errors/job-failed-error.js';
import { NotFoundError } from '../../src/errors/not-found-error.js';
import { sleep, systemClock } from '../../src/internal/clock.js';
import type { BatchClient, BatchJobResult } from '../../src/batch/types.js';

const RETRYABLE = new Set(['WORKER_TIMEOUT', 'PROCESSING_ERROR', 'UNKNOWN_ERROR']);

interface StubJob {
  doneAt: number;
  failCode: string | undefined;
  text: string;
}

export interface StubClientOptions {
  /** Time of one HTTP exchange. @default 2 */
  latencyMs?: number;
  /** Time from submit to the job's end. @default 5 */
  jobMs?: number;
  scheduler?: SchedulerOptions;
  /** Called on every submit before anything else; throw to fail the POST. */
  onSubmit?: (endpoint: string, params: Record<string, unknown>) => void;
}

const HEADERS = { 'x-ratelimit-limit': '100000', 'x-ratelimit-remaining': '99999' };

export class StubClient implements BatchClient {
  readonly scheduler: RateLimitScheduler;
  readonly jobs = new Map<string, StubJob>();
  /** POSTs that reached the server (jobs created). */
  created = 0;
  /** Jobs created per prompt text. */
  readonly createdByText = new Map<string, number>();
  submitCalls = 0;
  /** Drop jobs once waited for, and keep no per-prompt counts (memory tests). */
  forgetFinishedJobs = false;
  waitCalls = 0;
  #nextId = 1;
  readonly #latencyMs: number;
  /** Time from submit to the end of jobs created from now on. */
  jobMs: number;
  readonly #onSubmit: StubClientOptions['onSubmit'];
  readonly #seenOnce = new Set<string>();

  constructor(options: StubClientOptions = {}) {
    this.scheduler = new RateLimitScheduler({ limits: { minute: 100_000 }, maxConcurrent: 64, ...options.scheduler });
    this.#latencyMs = options.latencyMs ?? 2;
    this.jobMs = options.jobMs ?? 5;
    this.#onSubmit = options.onSubmit;
  }

  async submit(endpoint: string, params: Record<string, unknown>, options: { signal?: AbortSignal; priority?: number }): Promise<{ requestId: string }> {
    this.submitCalls++;
    this.#onSubmit?.(endpoint, params);
    const text = String(params['prompt'] ?? params['input'] ?? '');
    const response = await this.scheduler.schedule(
      async (ctx) => {
        await sleep(this.#latencyMs, systemClock, ctx.signal);
        if (text.includes('AUTH')) throw new AuthenticationError({ status: 401 });
        const id = `job-${this.#nextId++}`;
        let failCode: string | undefined;
        const always = /FAIL:([A-Z_]+)/.exec(text);
        const once = /FAIL_ONCE:([A-Z_]+)/.exec(text);
        if (always) failCode = always[1];
        else if (once && !this.#seenOnce.has(`fail:${text}`)) {
          this.#seenOnce.add(`fail:${text}`);
          failCode = once[1];
        }
        this.jobs.set(id, { doneAt: Date.now() + this.jobMs, failCode, text });
        this.created++;
        if (!this.forgetFinishedJobs) this.createdByText.set(text, (this.createdByText.get(text) ?? 0) + 1);
        if (text.includes('UNKNOWN_ONCE') && !this.#seenOnce.has(`unknown:${text}`)) {
          this.#seenOnce.add(`unknown:${text}`);
          throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
        }
        return { status: 200, headers: HEADERS, requestId: id };
      },
      { signal: options.signal, ...(options.priority !== undefined ? { priority: options.priority } : {}) } as never,
    );
    return { requestId: response.requestId };
  }

  async wait(requestId: string, options: { signal?: AbortSignal }): Promise<BatchJobResult> {
    this.waitCalls++;
    const job = this.jobs.get(requestId);
    if (!job) throw new NotFoundError({});
    await sleep(Math.max(0, job.doneAt - Date.now()), systemClock, options.signal);
    await this.scheduler.schedule(
      async (ctx) => {
        await sleep(this.#latencyMs, systemClock, ctx.signal);
        return { status: 200, headers: HEADERS };
      },
      options.signal ? { signal: options.signal } : {},
    );
    if (this.forgetFinishedJobs) this.jobs.delete(requestId);
    if (job.failCode !== undefined) {
      throw new JobFailedError({ requestId, jobErrorCode: job.failCode, retryable: RETRYABLE.has(job.failCode) });
    }
    return { requestId, status: 'done', resultUrl: `https://storage.example/${requestId}.png` } as BatchJobResult;
  }
}

/** A valid txt2img item. */
export function item(id: string, prompt = `a picture of ${id}`, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { id, endpoint: 'txt2img', prompt, model: 'Flux1schnell', width: 512, height: 512, steps: 4, ...extra };
}
