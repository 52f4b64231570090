/**
 * What every rate trial does the same way around its contender (the
 * `scheduler` trials of `rate-trial.ts`, the `limiters` scenario and the
 * `redis-shared` workers): wait to the ms, warm the pool, send one request and
 * note when its answer came, run every job and note when each completed or why
 * it failed, and end the run at a cap.
 */
import type { Dispatcher, Pool } from 'undici';
import type { ContenderRun } from './rate-contenders.js';

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/** Waits until epoch time `at`, with a short spin at the end for ms accuracy. */
export async function until(at: number): Promise<void> {
  const ahead = at - Date.now();
  if (ahead > 3) await sleep(ahead - 2);
  while (Date.now() < at) await new Promise((r) => setImmediate(r));
}

type Headers = Dispatcher.ResponseData['headers'];

/** A header as a finite number, or undefined. */
export function headerNumber(headers: Headers, name: string): number | undefined {
  const raw = headers[name];
  const v = Array.isArray(raw) ? raw[0] : raw;
  if (v === undefined) return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

/** A header's (first) value. */
export function headerString(headers: Headers, name: string): string | undefined {
  const raw = headers[name];
  return Array.isArray(raw) ? raw[0] : raw;
}

/** Opens the pool's `connections` on `path` (a route that is not rate limited), so nobody pays for TCP set-up during the run. */
export async function warmUp(pool: Pool, connections: number, path: string): Promise<void> {
  await Promise.all(Array.from({ length: connections }, () => pool.request({ path, method: 'GET' }).then((r) => r.body.dump())));
}

/** One request as the client saw it. */
export interface SentAttempt {
  sentAt: number;
  recvAt: number;
  /** HTTP status; 0 for a network error. */
  status: number;
  /** The network error's code (or message). */
  error?: string;
}

/** The job's own signal (if any) and the run's. */
export function jobSignal(signal: AbortSignal | undefined, run: AbortSignal): AbortSignal {
  return signal ? AbortSignal.any([signal, run]) : run;
}

/**
 * Sends `request` on `pool` and appends its record to `attempts`: `fields`,
 * the send time, the answer's time and status (or the error's code);
 * `readHeaders` copies what the caller keeps from the response.
 */
export async function sendRecorded<R extends SentAttempt>(
  pool: Pool,
  attempts: R[],
  fields: Omit<R, keyof SentAttempt>,
  request: Dispatcher.RequestOptions,
  readHeaders: (res: Dispatcher.ResponseData, record: R) => void,
): Promise<Dispatcher.ResponseData> {
  const sentAt = Date.now();
  const record = { ...fields, sentAt, recvAt: sentAt, status: 0 } as R;
  attempts.push(record);
  try {
    const res = await pool.request(request);
    record.recvAt = Date.now();
    record.status = res.statusCode;
    readHeaders(res, record);
    return res;
  } catch (error) {
    record.recvAt = Date.now();
    record.error = (error as { code?: string }).code ?? (error instanceof Error ? error.message : String(error));
    throw error;
  }
}

/** Failures of a run: how many, and the first five in words. */
export class FailureLog {
  count = 0;
  readonly samples: string[] = [];

  note(job: number, error: unknown): void {
    this.count++;
    if (this.samples.length < 5) this.samples.push(`job ${job}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/**
 * Runs job `jobs[i]` for every i; `completedAt[i]` becomes its completion
 * time (epoch ms), and a failure goes to `onFailure`. Settles when all have.
 */
export function runJobs(
  run: (job: number) => Promise<void>,
  jobs: readonly number[],
  completedAt: number[],
  onFailure: (job: number, error: unknown) => void,
): Promise<unknown> {
  return Promise.allSettled(
    jobs.map((job, i) =>
      run(job).then(
        () => {
          completedAt[i] = Date.now();
        },
        (error: unknown) => onFailure(job, error),
      ),
    ),
  );
}

/** Job numbers `first` … `first + count - 1`. */
export function jobRange(count: number, first = 0): number[] {
  return Array.from({ length: count }, (_, i) => first + i);
}

/**
 * Waits for `settled` (from `runJobs`), at most `capMs` and not past an abort
 * of `trialAbort`; then closes the run, or, when cut short, aborts it and
 * gives its jobs two seconds to settle. True when cut short.
 */
export async function finishRun(run: ContenderRun, settled: Promise<unknown>, capMs: number, trialAbort: AbortController): Promise<boolean> {
  let capTimer: NodeJS.Timeout | undefined;
  const capped = new Promise<'cap'>((resolve) => {
    capTimer = setTimeout(() => resolve('cap'), capMs);
  });
  const aborted = new Promise<'cap'>((resolve) => trialAbort.signal.addEventListener('abort', () => resolve('cap'), { once: true }));
  const first = await Promise.race([settled.then(() => 'done' as const), capped, aborted]);
  clearTimeout(capTimer);
  if (first === 'cap') {
    trialAbort.abort(new Error('trial cut short'));
    await run.abort().catch(() => {});
    await Promise.race([settled, sleep(2_000)]);
    return true;
  }
  await run.close();
  return false;
}
