/**
 * The three ways of running asynchronous jobs (submit, then poll until done)
 * against the fake ModelBeam API that the `jobs` scenario compares:
 *
 * - `ours`: `ModelBeamClient.generate()` per job, the client built from
 *   `server.clientOptions()` (the server's windows as its `timeScale`); it is
 *   told no limit and learns everything from the answers.
 * - `bottleneck`: Bottleneck 2.19.5 told the limits, configured as in
 *   `rate-contenders.ts` (a reservoir refreshed to the minute limit every
 *   window; a daily limiter chained in front for what the daily quota
 *   counts); every submission and every poll is one scheduled request; a
 *   `failed` listener on the minute limiter retries 429s after their
 *   Retry-After.
 * - `p-queue`: p-queue 9 told the limits (`intervalCap`/`interval`, a daily
 *   queue feeding the minute queue for what the daily quota counts), each
 *   request wrapped in p-retry that retries 429s after their Retry-After.
 *
 * Bottleneck and p-queue poll the usual hand-written way: a first poll after
 * the jobs' mean duration, then one every `pollEveryMs`, each poll a request
 * through the limiter.
 */
import Bottleneck from 'bottleneck';
import { Pool, type Dispatcher } from 'undici';
import { ModelBeamClient } from '../../src/modelbeam/index.js';
import type { FakeModelBeamServer } from '../../src/testing/index.js';
import type { Txt2ImgParams } from '../../src/modelbeam/endpoints.js';
import { bottleneckHeartbeat, bottleneckLimiters, MAX_429_RETRIES, pQueueLimiters, RateLimited, retryOn429, throwIfRefused } from './rate-contenders.js';
import { sleep as sleepMs, warmUp } from './attempts.js';

export interface JobSetup {
  server: FakeModelBeamServer;
  windowMs: number;
  /** The server's day length, when it has a daily quota. */
  dayMs: number | undefined;
  /** The minute limit (static contenders only). */
  limit: number;
  /** The daily quota (static contenders only). */
  dailyLimit: number | undefined;
  /** Whether the daily quota counts polls too (static contenders only: which requests go through the daily limiter). */
  pollsDaily: boolean;
  /** First poll this long after a submission (static contenders). */
  firstPollMs: number;
  /** Then a poll every this long (static contenders). */
  pollEveryMs: number;
  maxConcurrent: number;
  signal: AbortSignal;
}

/** What a job run reports back: its request id as soon as it is known. */
export type OnSubmitted = (requestId: string) => void;

export interface JobRun {
  /** Runs job `i` to its result; rejects when it fails for good. */
  run(i: number, onSubmitted: OnSubmitted): Promise<void>;
  /** Warms the HTTP connections where the contender lets us (on a route that is not rate limited). */
  warm(): Promise<void>;
  /** Cuts everything short. */
  abort(): Promise<void>;
  close(): Promise<void>;
}

export interface JobContender {
  readonly key: string;
  readonly name: string;
  given(setup: Omit<JobSetup, 'signal' | 'server'>): string;
  start(setup: JobSetup): JobRun;
}

/** Job `i`'s parameters (its prompt decides its duration on the server: `jobs.ts`). */
export function jobParams(i: number): Txt2ImgParams {
  return { prompt: `bench job ${i}`, model: 'Flux1schnell', width: 512, height: 512, steps: 4 };
}

export const oursJobs: JobContender = {
  key: 'ours',
  name: 'ours (ModelBeamClient)',
  given: () =>
    '`new ModelBeamClient(server.clientOptions())` (API key, base URL and the server\'s windows as the scheduler\'s `timeScale`), ' +
    'then `generate(\'txt2img\', params)` per job; no limit, every other option at its default (`dailyCounts: \'auto\'`).',
  start: (setup) => clientJobRun(new ModelBeamClient(setup.server.clientOptions()), setup),
};

/** Our client's run of the jobs: `generate` per job (also for tools that listen to the client first). */
export function clientJobRun(client: ModelBeamClient, setup: JobSetup): JobRun {
  return {
    async run(i, onSubmitted) {
      await client.generate('txt2img', jobParams(i), { onSubmitted: (id) => onSubmitted(id), signal: setup.signal });
    },
    warm: async () => {},
    abort: () => client.close(),
    close: () => client.close(),
  };
}

const HEADERS = { authorization: 'Bearer test-key', accept: 'application/json', 'content-type': 'application/json' };

/** The static contenders' two requests, over one undici pool. */
class JobHttp {
  readonly pool: Pool;
  constructor(readonly setup: JobSetup) {
    this.pool = new Pool(setup.server.url, { connections: setup.maxConcurrent, keepAliveTimeout: 60_000 });
  }

  async #send(options: Dispatcher.RequestOptions): Promise<Record<string, unknown>> {
    const res = await this.pool.request({ ...options, signal: this.setup.signal });
    await throwIfRefused(res);
    const body = (await res.body.json()) as { data?: Record<string, unknown> };
    return body.data ?? {};
  }

  async submit(i: number): Promise<string> {
    const data = await this.#send({ method: 'POST', path: '/api/v1/client/txt2img', headers: HEADERS, body: JSON.stringify(jobParams(i)) });
    return String(data['request_id']);
  }

  /** True when the job is done; throws when it failed. */
  async poll(id: string): Promise<boolean> {
    const data = await this.#send({ method: 'GET', path: `/api/v1/client/request-status/${encodeURIComponent(id)}`, headers: HEADERS });
    if (data['status'] === 'error') throw new Error(`job ${id} failed: ${String(data['error_code'])}`);
    return data['status'] === 'done';
  }
}

/** Submit, wait for the mean duration, then poll every `pollEveryMs` until done. */
async function submitThenPoll(
  setup: JobSetup,
  i: number,
  onSubmitted: OnSubmitted,
  submit: () => Promise<string>,
  poll: (id: string) => Promise<boolean>,
): Promise<void> {
  const id = await submit();
  onSubmitted(id);
  await sleepMs(setup.firstPollMs);
  for (;;) {
    if (setup.signal.aborted) throw setup.signal.reason;
    if (await poll(id)) return;
    await sleepMs(setup.pollEveryMs);
  }
}

function pollingWords(s: Omit<JobSetup, 'signal' | 'server'>): string {
  return `first poll ${s.firstPollMs} ms after the submission (the mean job duration), then every ${s.pollEveryMs} ms`;
}

export const bottleneckJobs: JobContender = {
  key: 'bottleneck',
  name: 'Bottleneck 2.19.5',
  given: (s) =>
    `\`new Bottleneck({ reservoir: ${s.limit}, reservoirRefreshAmount: ${s.limit}, reservoirRefreshInterval: ${s.windowMs}, maxConcurrent: ${s.maxConcurrent} })\`` +
    (s.dailyLimit !== undefined && s.dayMs !== undefined
      ? `, with \`daily = new Bottleneck({ reservoir: ${s.dailyLimit}, reservoirRefreshAmount: ${s.dailyLimit}, reservoirRefreshInterval: ${s.dayMs} })\` and \`daily.chain(minute)\` for submissions${s.pollsDaily ? ' and polls' : ' (polls on `minute` alone)'}`
      : '') +
    `; \`heartbeatInterval: ${bottleneckHeartbeat(s.windowMs)}\`; a \`failed\` listener on \`minute\` returns the 429's Retry-After for up to ${MAX_429_RETRIES} retries; ${pollingWords(s)}.`,
  start(setup) {
    const http = new JobHttp(setup);
    const { minute, daily } = bottleneckLimiters(setup);
    minute.on('failed', (error: unknown, info: Bottleneck.EventInfoRetryable) => {
      if (error instanceof RateLimited && info.retryCount < MAX_429_RETRIES && !setup.signal.aborted) return error.retryAfterMs;
      return undefined;
    });
    const submitVia = daily ?? minute;
    const pollVia = daily && setup.pollsDaily ? daily : minute;
    const limiters = daily ? [daily, minute] : [minute];
    return {
      run: (i, onSubmitted) =>
        submitThenPoll(
          setup,
          i,
          onSubmitted,
          () => submitVia.schedule(() => http.submit(i)),
          (id) => pollVia.schedule(() => http.poll(id)),
        ),
      warm: () => warmUp(http.pool, setup.maxConcurrent, '/storage/warm-up'),
      async abort() {
        await Promise.allSettled(limiters.map((l) => l.stop({ dropWaitingJobs: true })));
        await Promise.allSettled(limiters.map((l) => l.disconnect()));
        await http.pool.destroy().catch(() => {});
      },
      async close() {
        await Promise.allSettled(limiters.map((l) => l.disconnect()));
        await http.pool.close().catch(() => {});
      },
    };
  },
};

export const pQueueJobs: JobContender = {
  key: 'p-queue',
  name: 'p-queue 9 + p-retry',
  given: (s) =>
    `\`new PQueue({ intervalCap: ${s.limit}, interval: ${s.windowMs}, concurrency: ${s.maxConcurrent} })\`` +
    (s.dailyLimit !== undefined && s.dayMs !== undefined
      ? `, fed by \`daily = new PQueue({ intervalCap: ${s.dailyLimit}, interval: ${s.dayMs} })\` for submissions${s.pollsDaily ? ' and polls' : ''}`
      : '') +
    `; each request is \`pRetry(request, { retries: ${MAX_429_RETRIES}, minTimeout: 0, shouldRetry: 429 only, onFailedAttempt: sleep(Retry-After) })\`; ${pollingWords(s)}.`,
  start(setup) {
    const http = new JobHttp(setup);
    const { minute, daily } = pQueueLimiters(setup);
    const viaMinute = <T>(attempt: () => Promise<T>): Promise<T> => minute.add(() => retryOn429(attempt, setup.signal)) as Promise<T>;
    const viaDaily = <T>(attempt: () => Promise<T>): Promise<T> =>
      daily ? (daily.add(() => viaMinute(attempt)) as Promise<T>) : viaMinute(attempt);
    return {
      run: (i, onSubmitted) =>
        submitThenPoll(
          setup,
          i,
          onSubmitted,
          () => viaDaily(() => http.submit(i)),
          (id) => (setup.pollsDaily ? viaDaily(() => http.poll(id)) : viaMinute(() => http.poll(id))),
        ),
      warm: () => warmUp(http.pool, setup.maxConcurrent, '/storage/warm-up'),
      async abort() {
        daily?.clear();
        minute.clear();
        await http.pool.destroy().catch(() => {});
      },
      async close() {
        daily?.clear();
        minute.clear();
        await http.pool.close().catch(() => {});
      },
    };
  },
};

export const JOB_CONTENDERS: readonly JobContender[] = [oursJobs, bottleneckJobs, pQueueJobs];
