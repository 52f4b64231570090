/**
 * What the client knows about one job: status, progress readings, outcome,
 * who waits for it, and its polling state.
 */
import type { LearnedVia } from './events.js';
import type { JobResult, JobState } from './jobs.js';
import type { ProgressSample } from './poll-planner.js';

export interface Waiter {
  resolve: (result: JobResult) => void;
  reject: (error: unknown) => void;
}

export type Outcome =
  | { kind: 'done'; result: JobResult; complete: boolean; via: LearnedVia }
  | { kind: 'error'; code: string; message: string | undefined; codeKnown: boolean; via: LearnedVia };

/** A poll released to the scheduler. */
export interface OutstandingPoll {
  readonly controller: AbortController;
  dispatched: boolean;
  /** When the last attempt was sent. */
  sentAt: number;
  /** Withdrawn (escalated, untracked, closed): its settlement is ignored. */
  withdrawn: boolean;
  escalateTimer: unknown;
}

export interface TrackedJobInit {
  endpoint?: string | undefined;
  model?: string | undefined;
  submittedAt: number;
  submittedKnown: boolean;
  /** Submitted by this client (see {@link TrackedJob.learns}). */
  learns: boolean;
}

export class TrackedJob {
  readonly id: string;
  endpoint: string | undefined;
  model: string | undefined;
  /** When the submission was answered (or the caller's `submittedAt`). */
  submittedAt: number;
  /** False for `wait()` on an id whose submission time is unknown. */
  submittedKnown: boolean;
  /**
   * Submitted by this client: its polls and webhooks teach the duration
   * estimator. False for an id handed to `wait()` (a resumed batch, another
   * process): its `submittedAt` is the caller's word, from another run or
   * clock, so how long it "took" is not evidence.
   */
  readonly learns: boolean;

  status = 'pending';
  state: JobState = 'pending';
  progress: number | undefined = undefined;
  /** Progress readings, oldest first (at most 4). */
  readonly samples: ProgressSample[] = [];
  outcome: Outcome | undefined = undefined;
  /** A webhook about this job was accepted. */
  webhookSeen = false;
  /** Code and message of a `job.failed` webhook. */
  webhookError: { code: string | undefined; message: string | undefined } | undefined = undefined;
  readonly waiters = new Set<Waiter>();

  // ---- polling state (owned by the poller)
  polls = 0;
  firstPolled = false;
  /** Delay (from submission) the first poll was planned for. */
  plannedDelay = 0;
  probe = false;
  scout = false;
  /** The first poll was held to `maxIntervalMs`, well before the estimate. */
  capped = false;
  /** Planned in webhook (safety-net) mode. */
  safety = false;
  /** A poll to fetch the output after a webhook said done without it. */
  fetching = false;
  due: number | undefined = undefined;
  version = 0;
  outstanding: OutstandingPoll | undefined = undefined;
  notFound = 0;
  failures = 0;

  constructor(id: string, init: TrackedJobInit) {
    this.id = id;
    this.endpoint = init.endpoint;
    this.model = init.model;
    this.submittedAt = init.submittedAt;
    this.submittedKnown = init.submittedKnown;
    this.learns = init.learns;
  }

  get terminal(): boolean {
    return this.outcome !== undefined;
  }

  /** Finished with everything a caller needs (an incomplete `done` still needs a status fetch). */
  get settled(): boolean {
    return this.outcome !== undefined && (this.outcome.kind === 'error' || this.outcome.complete);
  }

  addSample(at: number, progress: number | undefined): void {
    if (progress === undefined) return;
    const last = this.samples.at(-1);
    if (last && last.progress === progress) return;
    this.samples.push({ at, progress });
    if (this.samples.length > 4) this.samples.shift();
  }
}
