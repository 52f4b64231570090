/**
 * What `bench/redis/fleet.ts` (the parent) and `bench/redis/worker.ts` (one
 * worker process) say to each other, over the child's IPC channel.
 *
 * parent → worker: `go { start }` (hand every job to the contender at epoch
 * ms `start`), `abort` (cut the run short), `exit`.
 * worker → parent: `ready` (connected, pool warm, limiter initialised),
 * `done { result }`, `error { message }`.
 */

/** The three configurations the `redis-shared` scenario compares. */
export type FleetConfig = 'shared' | 'memory' | 'bottleneck';

export interface WorkerArgs {
  config: FleetConfig;
  /** 0-based process index. */
  index: number;
  /** The fake server's origin, e.g. `http://127.0.0.1:40123`. */
  serverUrl: string;
  /** The compressed minute. */
  windowMs: number;
  /** The documented minute limit (only Bottleneck is told it). */
  limit: number;
  /** This process's jobs are `firstJob … firstJob + jobs − 1`. */
  firstJob: number;
  jobs: number;
  /** HTTP connections of the process's undici Pool (opened before the start). */
  connections: number;
  redisUrl: string;
  /** `shared`: the RedisStore's key prefix (unique per run) and account. */
  keyPrefix: string;
  account: string;
  /** `bottleneck`: the shared limiter id (unique per trial), and whether this process clears the datastore. */
  bottleneckId: string;
  clearDatastore: boolean;
  heartbeatMs: number;
  /** Bottleneck's `expiration` per job. */
  expirationMs: number;
  /** Retries on 429 before Bottleneck's glue gives a job up. */
  maxRetries: number;
  /** Where the worker writes its trace (JSON lines). */
  traceFile: string;
  /**
   * Epoch ms: create the limiter no earlier than this (the benchmark places
   * Bottleneck's refresh grid, which starts when the first process creates the
   * shared state, against the server's windows).
   */
  initAt?: number | undefined;
  /** The worker exits by itself this long after it started. */
  deadlineMs: number;
}

/** One HTTP request as the worker saw it (epoch ms, this host's clock). */
export interface WorkerAttempt {
  /** Global job number. */
  job: number;
  /** Process index. */
  proc: number;
  sentAt: number;
  recvAt: number;
  /** HTTP status; 0 for a network error. */
  status: number;
  limit?: number;
  remaining?: number;
  type?: string;
  retryAfterMs?: number;
  error?: string;
}

export interface WorkerResult {
  index: number;
  /** How late the worker handed its jobs over, in ms after `start`. */
  lateMs: number;
  attempts: WorkerAttempt[];
  /** Completion time (epoch ms) of each of the process's jobs, NaN when it failed or never finished. */
  completedAt: number[];
  failures: number;
  failureSamples: string[];
  aborted: boolean;
  /** Store calls by script (`shared` only). */
  storeCalls?: Record<string, number>;
  /** Reserve calls and what they granted (ours only). */
  reserves?: { calls: number; granted: number; blocked: Record<string, number> };
  /** Bottleneck retries (the `failed` listener returned a delay). */
  retries?: number;
}

export type ParentMessage = { type: 'go'; start: number } | { type: 'abort' } | { type: 'exit' };

export type WorkerMessage =
  | { type: 'ready'; index: number; setupMs: number; /** Epoch ms when the limiter was initialised (Bottleneck: its refresh grid starts here). */ readyAt: number }
  | { type: 'done'; result: WorkerResult }
  | { type: 'error'; index: number; message: string };
