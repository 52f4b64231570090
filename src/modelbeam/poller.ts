/**
 * Drives the polls of the jobs someone waits on: one clock timer for the
 * earliest due poll, the share cap of {@link PollGate}, and the scheduler.
 *
 * Polls go in below submissions (`POLL_PRIORITY`). A poll that has sat in the
 * scheduler's queue for a whole window without being sent is withdrawn and
 * sent again above submissions (`ESCALATED_PRIORITY`), so a steady stream of
 * submissions cannot starve them; the share cap still bounds what they take.
 */
import { heapPop, heapPush } from '../internal/min-heap.js';
import type { RateLimitScheduler } from '../engine/scheduler.js';
import type { Clock, TimerHandle } from '../internal/clock.js';
import type { Logger } from '../internal/logger.js';
import { parseJobStatus, type JobStatus } from './jobs.js';
import type { PollGate } from './poll-gate.js';
import { firstPollDelay, nextPollDelay, type DurationEstimator, type PlannerConfig } from './poll-planner.js';
import type { OutstandingPoll, TrackedJob } from './tracked-job.js';
import type { Transport } from './transport.js';

/** Below any submission of ordinary priority. */
export const POLL_PRIORITY = -1_000_000;
/** Above any submission of ordinary priority (starved polls only, within the share cap). */
export const ESCALATED_PRIORITY = 1_000_000;

/** The status route, below the base URL (the job id follows). */
const POLL_PATH = '/request-status/';

export interface PollerDeps {
  clock: Clock;
  scheduler: RateLimitScheduler;
  transport: Transport;
  estimator: DurationEstimator;
  gate: PollGate;
  config: PlannerConfig;
  windowMs: number;
  logger: Logger;
  /** `safety` while webhooks are trusted, else `poll`. */
  mode: () => 'poll' | 'safety';
  /** Whether a submission of this client waits in the scheduler's queue. */
  submissionsWaiting: () => boolean;
  onResult: (job: TrackedJob, status: JobStatus, sentAt: number) => void;
  onError: (job: TrackedJob, error: unknown) => void;
}

interface HeapEntry {
  due: number;
  seq: number;
  job: TrackedJob;
  version: number;
}

/** Withdrawn polls reject with this reason; their rejection is ignored. */
class Withdrawn extends Error {
  constructor() {
    super('poll withdrawn');
    this.name = 'Withdrawn';
  }
}

export class Poller {
  readonly #d: PollerDeps;
  readonly #heap: HeapEntry[] = [];
  #seq = 0;
  readonly #tracked = new Set<TrackedJob>();
  #timer: TimerHandle | undefined;
  #timerAt = Infinity;
  #closed = false;
  /** Set while re-planning many jobs: one pump at the end. */
  #batching = false;

  constructor(deps: PollerDeps) {
    this.#d = deps;
  }

  /** Jobs being polled. */
  get size(): number {
    return this.#tracked.size;
  }

  /** Starts polling `job` (someone waits on it). */
  track(job: TrackedJob): void {
    if (this.#closed || this.#tracked.has(job)) return;
    this.#tracked.add(job);
    if (job.fetching) this.#at(job, this.#d.clock.now());
    else if (job.firstPolled) this.#at(job, this.#d.clock.now() + this.#d.config.minIntervalMs);
    else this.#planFirst(job, true);
  }

  /** Stops polling `job` (nobody waits, or its outcome is known). */
  untrack(job: TrackedJob): void {
    if (!this.#tracked.delete(job)) return;
    job.version++;
    job.due = undefined;
    if (job.scout && !job.firstPolled && job.endpoint !== undefined) this.#d.estimator.releaseScout(job.endpoint, job.model);
    this.#withdraw(job);
  }

  /** Polls `job` as soon as the share cap allows (to fetch an output a webhook did not carry). */
  pollSoon(job: TrackedJob): void {
    job.fetching = true;
    if (!this.#tracked.has(job)) {
      this.track(job);
      return;
    }
    if (!job.outstanding) this.#at(job, this.#d.clock.now());
  }

  /** Plans the poll after one that found `job` unfinished. */
  planFollowUp(job: TrackedJob): void {
    if (!this.#tracked.has(job)) return;
    const now = this.#d.clock.now();
    const delay = nextPollDelay(
      {
        now,
        submittedAt: job.submittedAt,
        expectedMs: this.#expected(job),
        samples: job.samples,
        mode: job.fetching ? 'poll' : this.#d.mode(),
      },
      this.#d.config,
    );
    this.#at(job, now + (job.fetching ? Math.min(delay, this.#d.config.minIntervalMs) : delay));
  }

  /** Polls `job` again after `delayMs` (after a failed poll). */
  retryIn(job: TrackedJob, delayMs: number): void {
    if (this.#tracked.has(job)) this.#at(job, this.#d.clock.now() + delayMs);
  }

  /** Re-plans the first polls of the unpolled jobs of a key whose estimate moved. */
  replanKey(endpoint: string, model: string | undefined): void {
    this.#batch(() => {
      for (const job of this.#tracked) {
        if (!job.firstPolled && !job.fetching && !job.outstanding && job.endpoint === endpoint && (model === undefined || job.model === model)) {
          this.#planFirst(job, false);
        }
      }
    });
  }

  /** Re-plans every tracked job (the webhook mode changed). */
  replanAll(): void {
    this.#batch(() => {
      for (const job of this.#tracked) {
        if (job.outstanding || job.fetching) continue;
        if (!job.firstPolled) this.#planFirst(job, false);
        else this.planFollowUp(job);
      }
    });
  }

  #batch(fn: () => void): void {
    const outer = this.#batching;
    this.#batching = true;
    try {
      fn();
    } finally {
      this.#batching = outer;
    }
    if (!outer) {
      this.#compact();
      this.#pump();
    }
  }

  /**
   * One status request of `job` whose answer is not used (the client's way of spending the day's last daily
   * units, see `ModelBeamClient#pollsToKeep`). Settles when it is answered or has failed; never rejects.
   */
  readStatus(job: TrackedJob): Promise<void> {
    return this.#d.transport
      .call({ kind: 'poll', method: 'GET', path: `${POLL_PATH}${encodeURIComponent(job.id)}`, idempotent: true, priority: POLL_PRIORITY, requestId: job.id })
      .then(
        () => undefined,
        (error: unknown) => this.#d.logger.debug({ requestId: job.id, err: error }, 'status request to spend the day failed'),
      );
  }

  /** Releases due polls now if the cap allows (a slot may have freed). */
  kick(): void {
    this.#pump();
  }

  close(): void {
    this.#closed = true;
    this.#clearTimer();
    for (const job of this.#tracked) {
      job.version++;
      this.#withdraw(job, true);
    }
    this.#tracked.clear();
    this.#heap.length = 0;
  }

  // ---- planning -------------------------------------------------------------

  #expected(job: TrackedJob): number {
    return job.endpoint === undefined ? this.#d.estimator.expected('?') : this.#d.estimator.expected(job.endpoint, job.model);
  }

  #planFirst(job: TrackedJob, fresh: boolean): void {
    const now = this.#d.clock.now();
    if (!job.submittedKnown) {
      // An id from elsewhere: it may have finished long ago.
      this.#at(job, now);
      return;
    }
    const mode = this.#d.mode();
    job.safety = mode === 'safety';
    const endpoint = job.endpoint ?? '?';
    const est = this.#d.estimator;
    /** The duration the first poll is planned for, before the bounds. */
    let wanted: number;
    if (mode === 'safety') {
      wanted = est.expected(endpoint, job.model);
    } else if (!job.learns) {
      // Submitted elsewhere (a resumed batch): planned from the estimate, but it neither scouts nor probes,
      // since what its polls find will not be learned from.
      wanted = est.expected(endpoint, job.model);
    } else if (fresh) {
      const choice = est.choose(endpoint, job.model);
      job.probe = choice.probe;
      job.scout = choice.scout;
      wanted = choice.delayMs;
    } else {
      wanted = job.probe ? est.probeDelay(endpoint, job.model) : est.expected(endpoint, job.model);
    }
    const delay = firstPollDelay(wanted, mode, this.#d.config);
    // Polled well before the estimate (held to maxIntervalMs): a miss then is no news, and a hit is one.
    job.capped = mode === 'poll' && delay < wanted * 0.9;
    const due = Math.max(now, job.submittedAt + delay);
    // A re-plan that moves the poll by less than 2 % is not worth a heap entry.
    if (!fresh && job.due !== undefined && Math.abs(due - job.due) <= Math.max(1, delay * 0.02)) return;
    job.plannedDelay = delay;
    this.#at(job, due);
  }

  #at(job: TrackedJob, due: number): void {
    if (job.due === due) return;
    job.version++;
    job.due = due;
    heapPush(this.#heap, { due, seq: this.#seq++, job, version: job.version });
    if (!this.#batching) this.#pump();
  }

  /** Drops stale heap entries once they outnumber the live ones. */
  #compact(): void {
    if (this.#heap.length <= 4 * this.#tracked.size + 64) return;
    const live = this.#heap.filter((e) => e.version === e.job.version && this.#tracked.has(e.job));
    this.#heap.length = 0;
    for (const entry of live) heapPush(this.#heap, entry);
  }

  // ---- releasing ------------------------------------------------------------

  #pump(): void {
    if (this.#closed) return;
    this.#compact();
    const now = this.#d.clock.now();
    let wakeAt = Infinity;
    for (;;) {
      const top = this.#heap[0];
      if (!top) break;
      if (top.version !== top.job.version || !this.#tracked.has(top.job) || top.job.outstanding) {
        heapPop(this.#heap);
        continue;
      }
      if (top.due > now) {
        wakeAt = top.due;
        break;
      }
      // The share cap guards the budget polls share with submissions; with a scope of their own (limitScope) they share none.
      const scope = this.#d.transport.scopeFor(POLL_PATH);
      const limit = this.#d.scheduler.budget(scope)?.minute.limit;
      if (this.#d.gate.allowance(now, limit, scope === undefined && this.#d.submissionsWaiting()) <= 0) {
        // Blocked by the cap: retry when a counted poll leaves the window (or when an outstanding one settles: kick()).
        wakeAt = this.#d.gate.nextSlotAt(now) ?? now + this.#d.config.minIntervalMs;
        break;
      }
      heapPop(this.#heap);
      top.job.due = undefined;
      this.#release(top.job, POLL_PRIORITY);
    }
    this.#arm(wakeAt);
  }

  #release(job: TrackedJob, priority: number): void {
    const out: OutstandingPoll = {
      controller: new AbortController(),
      dispatched: false,
      sentAt: 0,
      withdrawn: false,
      escalateTimer: undefined,
    };
    job.outstanding = out;
    this.#d.gate.onRelease();
    if (priority < ESCALATED_PRIORITY) {
      out.escalateTimer = this.#d.clock.setTimeout(() => this.#escalate(job, out), this.#d.windowMs);
    }
    const { clock, gate, transport } = this.#d;
    transport
      .call({
        kind: 'poll',
        method: 'GET',
        path: `${POLL_PATH}${encodeURIComponent(job.id)}`,
        idempotent: true,
        priority,
        signal: out.controller.signal,
        requestId: job.id,
        onDispatch: () => {
          const now = clock.now();
          if (!out.dispatched) {
            out.dispatched = true;
            gate.onLeave();
            if (out.escalateTimer !== undefined) clock.clearTimeout(out.escalateTimer);
          }
          gate.onSent(now);
          out.sentAt = now;
        },
        check: (body) => (parseJobStatus(job.id, body) ? undefined : 'the request-status body has no status'),
      })
      .then(
        (res) => {
          if (out.withdrawn) return;
          if (job.outstanding === out) job.outstanding = undefined;
          job.polls++;
          const status = parseJobStatus(job.id, res.body);
          if (status) this.#d.onResult(job, status, out.sentAt);
        },
        (error: unknown) => {
          if (out.withdrawn) return;
          if (!out.dispatched) {
            gate.onLeave();
            if (out.escalateTimer !== undefined) clock.clearTimeout(out.escalateTimer);
          }
          if (job.outstanding === out) job.outstanding = undefined;
          if (out.dispatched) job.polls++;
          this.#d.onError(job, error);
        },
      )
      .catch((error: unknown) => this.#d.logger.error({ err: error, requestId: job.id }, 'poll handler threw'))
      .finally(() => this.#pump());
  }

  /** A poll starved in the queue for a window: send it again above submissions. */
  #escalate(job: TrackedJob, out: OutstandingPoll): void {
    if (out.dispatched || out.withdrawn || job.outstanding !== out || this.#closed) return;
    out.withdrawn = true;
    out.controller.abort(new Withdrawn());
    this.#d.gate.onLeave();
    job.outstanding = undefined;
    this.#d.logger.debug({ requestId: job.id }, 'poll starved behind submissions: escalated');
    this.#release(job, ESCALATED_PRIORITY);
  }

  /** Cancels a queued poll (a poll already sent is let finish; its answer is ignored). */
  #withdraw(job: TrackedJob, evenIfSent = false): void {
    const out = job.outstanding;
    if (!out) return;
    job.outstanding = undefined;
    out.withdrawn = true;
    if (out.escalateTimer !== undefined) this.#d.clock.clearTimeout(out.escalateTimer);
    if (!out.dispatched) {
      this.#d.gate.onLeave();
      out.controller.abort(new Withdrawn());
    } else if (evenIfSent) {
      out.controller.abort(new Withdrawn());
    }
  }

  #arm(at: number): void {
    if (at === Infinity) {
      this.#clearTimer();
      return;
    }
    if (this.#timer !== undefined && this.#timerAt <= at) return;
    this.#clearTimer();
    this.#timerAt = at;
    this.#timer = this.#d.clock.setTimeout(
      () => {
        this.#timer = undefined;
        this.#timerAt = Infinity;
        this.#pump();
      },
      Math.max(0, at - this.#d.clock.now()),
    );
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) this.#d.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }
}
