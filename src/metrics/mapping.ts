/**
 * The one mapping of events and stats to metrics, shared by the
 * OpenTelemetry adapter and the Prometheus endpoint: a `MetricsBridge`
 * subscribes to the diagnostics channels (`src/diagnostics/channels.ts`),
 * turns each event into counter and histogram updates on a `MetricSink`, and,
 * when a backend collects, reads the gauges (and the per-task counters, which
 * the scheduler keeps anyway) from the `stats()` of every scheduler and client
 * it has seen. Per task, the metrics then cost nothing but, for an HTTP
 * answer, one `answered` message and one histogram record: `bench/RESULTS.md`,
 * "Metrics cost".
 *
 * With several schedulers (or clients) in one process the gauges aggregate:
 * queue size, in flight, backing off, concurrency and jobs in flight are
 * summed; budget remaining is the lowest, the limit the highest; gate, park
 * and pause read 1 when any of them is.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { SchedulerStats } from '../engine/scheduler.js';
import type { ClientStats } from '../modelbeam/events.js';
import { channelName, type ChannelMessage, type ChannelSource } from '../diagnostics/channels.js';
import type { Attributes, CounterKey, HistogramKey, ObservedKey } from './definitions.js';
import { hasMethods, invalid } from '../internal/validate.js';

/** Where counter and histogram updates go (the OpenTelemetry instruments, or the Prometheus registry). */
export interface MetricSink {
  add(key: CounterKey, value: number, attributes: Attributes): void;
  record(key: HistogramKey, value: number, attributes: Attributes): void;
}

/** Receives one reading of a gauge or of a counter read from `stats()`. */
export type Observer = (key: ObservedKey, value: number, attributes: Attributes) => void;

/** What the bridge reads gauges from: a `RateLimitScheduler`. */
export interface SchedulerLike {
  stats(): SchedulerStats;
}
/** What the bridge reads gauges from: a `ModelBeamClient`. */
export interface ClientLike {
  stats(): ClientStats;
  readonly scheduler: SchedulerLike;
}

const NONE: Attributes = Object.freeze({});
const WINDOWS = ['minute', 'daily'] as const;

type Handler = (event: Record<string, unknown>) => void;

/** A number, or undefined when the value is not a finite number. */
function finite(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

/** Tracks objects weakly: a scheduler or client the bridge has seen is not kept alive by it. */
class WeakList<T extends object> {
  readonly #seen = new WeakSet<T>();
  readonly #refs = new Set<WeakRef<T>>();

  add(value: T): void {
    if (this.#seen.has(value)) return;
    this.#seen.add(value);
    this.#refs.add(new WeakRef(value));
  }

  *values(): IterableIterator<T> {
    for (const ref of this.#refs) {
      const value = ref.deref();
      if (value === undefined) this.#refs.delete(ref);
      else yield value;
    }
  }
}

/**
 * Connects the diagnostics channels to a sink. `close()` unsubscribes.
 * Subscribing makes the emitters build and publish their events (they skip
 * that while nobody subscribes), so the bridge costs only while it is open.
 */
export class MetricsBridge {
  readonly #schedulers = new WeakList<SchedulerLike>();
  readonly #clients = new WeakList<ClientLike>();
  readonly #subscriptions: [string, (message: unknown, name: string | symbol) => void][] = [];
  /** Attribute objects by `key=value`, made once: events carry a handful of distinct values. */
  readonly #attributes = new Map<string, Attributes>();
  #closed = false;
  /** The source of the last message, compared by identity (weakly held: the bridge keeps no scheduler alive). */
  #last: WeakRef<object> | undefined;

  constructor(sink: MetricSink) {
    const attr = (key: string, value: unknown): Attributes => this.#attr(key, value);
    // Request latency: every HTTP answer (ANSWERED_CHANNEL); a task that returns no response publishes nothing.
    this.#on('scheduler', 'answered', (e) => {
      const ms = finite(e['latencyMs']);
      if (ms !== undefined) sink.record('requestDuration', ms / 1000, NONE);
    });
    this.#on('scheduler', 'rateLimited', (e) => sink.add('rateLimited', 1, attr('window', e['window'])));
    this.#on('scheduler', 'retrying', (e) => sink.add('retries', 1, attr('reason', e['reason'])));
    this.#on('client', 'submitted', (e) => sink.add('jobsSubmitted', 1, attr('endpoint', e['endpoint'])));
    this.#on('client', 'completed', (e) => {
      sink.add('jobs', 1, attr('state', 'done'));
      const ms = finite(e['durationMs']);
      if (ms !== undefined) sink.record('jobDuration', ms / 1000, NONE);
    });
    this.#on('client', 'jobFailed', () => sink.add('jobs', 1, attr('state', 'error')));
    this.#on('client', 'resubmitted', (e) => sink.add('resubmissions', 1, attr('reason', e['reason'])));
    this.#on('client', 'polled', () => sink.add('polls', 1, NONE));
    this.#on('client', 'spent', (e) => {
      const amount = finite(e['amount']);
      if (amount !== undefined && amount > 0) sink.add('spend', amount, NONE);
    });
  }

  /** Reads gauges from this scheduler or client from now on (the bridge also picks up every one that publishes). */
  track(source: SchedulerLike | ClientLike): this {
    if (!hasMethods(source, ['stats'])) invalid('source', 'a RateLimitScheduler or a ModelBeamClient (with stats())', source);
    if ('scheduler' in source) {
      this.#clients.add(source);
      this.#schedulers.add(source.scheduler);
    } else {
      this.#schedulers.add(source);
    }
    return this;
  }

  /** Reads every gauge and observed counter (called by a backend when it collects). */
  collect(observe: Observer): void {
    let queued = 0;
    let inFlight = 0;
    let backingOff = 0;
    let concurrency = 0;
    let gate = 0;
    let parked = 0;
    let paused = 0;
    let attempts = 0;
    let succeeded = 0;
    let failed = 0;
    let cancelled = 0;
    const remaining: Record<string, number> = {};
    const limit: Record<string, number> = {};
    for (const scheduler of this.#schedulers.values()) {
      const s = scheduler.stats();
      queued += s.queued;
      inFlight += s.inFlight;
      backingOff += s.backingOff;
      concurrency += s.concurrency;
      if (s.gateUntil !== undefined) gate = 1;
      if (s.parkedUntil !== undefined) parked = 1;
      if (s.paused) paused = 1;
      attempts += s.counts.dispatched;
      succeeded += s.counts.succeeded;
      failed += s.counts.failed;
      cancelled += s.counts.cancelled;
      for (const window of WINDOWS) {
        const view = s.budget?.[window];
        if (view?.remaining !== undefined) remaining[window] = Math.min(remaining[window] ?? Infinity, view.remaining);
        if (view?.limit !== undefined) limit[window] = Math.max(limit[window] ?? -Infinity, view.limit);
      }
    }
    observe('queueSize', queued, NONE);
    observe('inFlight', inFlight, NONE);
    observe('backingOff', backingOff, NONE);
    observe('concurrency', concurrency, NONE);
    observe('gateClosed', gate, NONE);
    observe('parked', parked, NONE);
    observe('paused', paused, NONE);
    observe('attempts', attempts, NONE);
    observe('tasks', succeeded, this.#attr('outcome', 'succeeded'));
    observe('tasks', failed, this.#attr('outcome', 'failed'));
    observe('tasks', cancelled, this.#attr('outcome', 'cancelled'));
    for (const window of WINDOWS) {
      const r = remaining[window];
      const l = limit[window];
      if (r !== undefined) observe('budgetRemaining', r, this.#attr('window', window));
      if (l !== undefined) observe('budgetLimit', l, this.#attr('window', window));
    }
    let jobsInFlight = 0;
    let submissionsPaused = 0;
    for (const client of this.#clients.values()) {
      const c = client.stats();
      jobsInFlight += c.inFlightJobs;
      if (c.submissionsPaused) submissionsPaused = 1;
    }
    observe('jobsInFlight', jobsInFlight, NONE);
    observe('submissionsPaused', submissionsPaused, NONE);
  }

  /** Unsubscribes from every channel. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const [name, listener] of this.#subscriptions) unsubscribe(name, listener);
    this.#subscriptions.length = 0;
  }

  #attr(key: string, value: unknown): Attributes {
    const text = typeof value === 'string' ? value : String(value);
    const id = `${key}=${text}`;
    let found = this.#attributes.get(id);
    if (found === undefined) {
      found = Object.freeze({ [key]: text });
      // Bounded: values come from a few enums and endpoint names; anything beyond is not cached.
      if (this.#attributes.size < 1000) this.#attributes.set(id, found);
    }
    return found;
  }

  #on(source: ChannelSource, event: string, handle: Handler): void {
    const name = channelName(source, event); // ('client', 'spent') is SPEND_CHANNEL: publishers need not be clients
    const listener = (message: unknown): void => {
      // A subscriber that throws is reported by Node as an uncaught exception: never throw.
      try {
        const { source: from, event: payload } = message as ChannelMessage;
        // The same source as last time costs one comparison; a new one is tracked (weakly).
        if (typeof from === 'object' && from !== null && this.#last?.deref() !== from && typeof (from as SchedulerLike).stats === 'function') {
          this.#last = new WeakRef(from);
          this.track(from as SchedulerLike | ClientLike);
        }
        if (typeof payload === 'object' && payload !== null) handle(payload as Record<string, unknown>);
      } catch {
        // A malformed message (someone else publishing on our channel) is ignored.
      }
    };
    subscribe(name, listener);
    this.#subscriptions.push([name, listener]);
  }
}
