/**
 * The metrics, defined once: name, kind, unit, description, attributes and
 * histogram buckets. The OpenTelemetry adapter (`modelbeam-scheduler/otel`)
 * creates its instruments from this list and the Prometheus endpoint of the
 * CLI renders it; `mapping.ts` says which event or stat moves each one.
 */

export type MetricKind = 'counter' | 'gauge' | 'histogram';

export interface MetricDefinition {
  /** OpenTelemetry name (dotted). */
  name: string;
  /** Prometheus name (without the `_total` / `_bucket` suffixes the format adds). */
  prometheus: string;
  kind: MetricKind;
  /** UCUM unit, as OpenTelemetry takes it. */
  unit: string;
  description: string;
  /** The attributes (labels) a value may carry. */
  attributes: readonly string[];
  /** Histogram bucket upper bounds, in `unit`. */
  buckets?: readonly number[];
  /**
   * A counter read from `stats()` when collected (an observable counter)
   * instead of moved by events: the per-task counters, which the scheduler
   * keeps anyway, so a task costs the metrics nothing for them.
   */
  observed?: boolean;
}

const REQUEST_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] as const;
const JOB_BUCKETS = [0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800] as const;

/** Every metric, by key. */
export const METRICS = {
  // ---- scheduler gauges (read from `stats()` when collected) ----
  queueSize: {
    name: 'modelbeam.scheduler.queue.size',
    prometheus: 'modelbeam_scheduler_queue_size',
    kind: 'gauge',
    unit: '{task}',
    description: 'Tasks queued, not counting those in flight or backing off.',
    attributes: [],
  },
  inFlight: {
    name: 'modelbeam.scheduler.in_flight',
    prometheus: 'modelbeam_scheduler_in_flight',
    kind: 'gauge',
    unit: '{request}',
    description: 'Requests in flight.',
    attributes: [],
  },
  backingOff: {
    name: 'modelbeam.scheduler.backing_off',
    prometheus: 'modelbeam_scheduler_backing_off',
    kind: 'gauge',
    unit: '{task}',
    description: 'Tasks waiting out a retry backoff.',
    attributes: [],
  },
  concurrency: {
    name: 'modelbeam.scheduler.concurrency',
    prometheus: 'modelbeam_scheduler_concurrency',
    kind: 'gauge',
    unit: '{request}',
    description: 'Most requests in flight at once, as currently tuned.',
    attributes: [],
  },
  budgetRemaining: {
    name: 'modelbeam.scheduler.budget.remaining',
    prometheus: 'modelbeam_scheduler_budget_remaining',
    kind: 'gauge',
    unit: '{request}',
    description: 'Requests left in the window, as the server last said (or as predicted).',
    attributes: ['window'],
  },
  budgetLimit: {
    name: 'modelbeam.scheduler.budget.limit',
    prometheus: 'modelbeam_scheduler_budget_limit',
    kind: 'gauge',
    unit: '{request}',
    description: 'Requests allowed per window, as the server last said (or as seeded).',
    attributes: ['window'],
  },
  gateClosed: {
    name: 'modelbeam.scheduler.gate.closed',
    prometheus: 'modelbeam_scheduler_gate_closed',
    kind: 'gauge',
    unit: '1',
    description: '1 while a 429 holds the whole queue (the gate is closed), else 0.',
    attributes: [],
  },
  parked: {
    name: 'modelbeam.scheduler.parked',
    prometheus: 'modelbeam_scheduler_parked',
    kind: 'gauge',
    unit: '1',
    description: '1 while the daily quota is exhausted and the queue is parked until its reset, else 0.',
    attributes: [],
  },
  paused: {
    name: 'modelbeam.scheduler.paused',
    prometheus: 'modelbeam_scheduler_paused',
    kind: 'gauge',
    unit: '1',
    description: '1 while the scheduler is paused (by the user, an authentication failure or a closed store), else 0.',
    attributes: [],
  },
  // ---- scheduler counters (attempts and tasks read from `stats()`, the rest from events) and histograms ----
  attempts: {
    name: 'modelbeam.scheduler.attempts',
    prometheus: 'modelbeam_scheduler_attempts',
    kind: 'counter',
    unit: '{request}',
    description: 'Requests sent (every attempt, 429s included).',
    attributes: [],
    observed: true,
  },
  tasks: {
    name: 'modelbeam.scheduler.tasks',
    prometheus: 'modelbeam_scheduler_tasks',
    kind: 'counter',
    unit: '{task}',
    description: 'Tasks settled, by outcome (succeeded, failed, cancelled by the caller).',
    attributes: ['outcome'],
    observed: true,
  },
  rateLimited: {
    name: 'modelbeam.scheduler.rate_limited',
    prometheus: 'modelbeam_scheduler_rate_limited',
    kind: 'counter',
    unit: '{response}',
    description: '429 responses, by the window that refused (minute, daily).',
    attributes: ['window'],
  },
  retries: {
    name: 'modelbeam.scheduler.retries',
    prometheus: 'modelbeam_scheduler_retries',
    kind: 'counter',
    unit: '{retry}',
    description: 'Attempts retried after a backoff, by reason (server-error, request-timeout, network, timeout, outcome-unknown).',
    attributes: ['reason'],
  },
  requestDuration: {
    name: 'modelbeam.scheduler.request.duration',
    prometheus: 'modelbeam_scheduler_request_duration_seconds',
    kind: 'histogram',
    unit: 's',
    description: 'Time from sending a request to its answer (any HTTP status, 429s and errors included).',
    attributes: [],
    buckets: REQUEST_BUCKETS,
  },
  // ---- client ----
  jobsInFlight: {
    name: 'modelbeam.client.jobs.in_flight',
    prometheus: 'modelbeam_client_jobs_in_flight',
    kind: 'gauge',
    unit: '{job}',
    description: 'Jobs submitted (or waited on) whose outcome is not known yet.',
    attributes: [],
  },
  submissionsPaused: {
    name: 'modelbeam.client.submissions.paused',
    prometheus: 'modelbeam_client_submissions_paused',
    kind: 'gauge',
    unit: '1',
    description: '1 while submissions are held because the balance ran out, else 0.',
    attributes: [],
  },
  jobsSubmitted: {
    name: 'modelbeam.client.jobs.submitted',
    prometheus: 'modelbeam_client_jobs_submitted',
    kind: 'counter',
    unit: '{job}',
    description: 'Jobs created (submissions answered with a request id).',
    attributes: ['endpoint'],
  },
  jobs: {
    name: 'modelbeam.client.jobs',
    prometheus: 'modelbeam_client_jobs',
    kind: 'counter',
    unit: '{job}',
    description: 'Jobs that reached a terminal state (done, error).',
    attributes: ['state'],
  },
  jobDuration: {
    name: 'modelbeam.client.job.duration',
    prometheus: 'modelbeam_client_job_duration_seconds',
    kind: 'histogram',
    unit: 's',
    description: 'Time from a job\'s submission to its known outcome (jobs this client submitted).',
    attributes: [],
    buckets: JOB_BUCKETS,
  },
  resubmissions: {
    name: 'modelbeam.client.resubmissions',
    prometheus: 'modelbeam_client_resubmissions',
    kind: 'counter',
    unit: '{job}',
    description: 'Billed resubmissions, by reason (job-failed, outcome-unknown).',
    attributes: ['reason'],
  },
  polls: {
    name: 'modelbeam.client.polls',
    prometheus: 'modelbeam_client_polls',
    kind: 'counter',
    unit: '{request}',
    description: 'Status polls answered.',
    attributes: [],
  },
  spend: {
    name: 'modelbeam.client.spend',
    prometheus: 'modelbeam_client_spend_usd',
    kind: 'counter',
    unit: '{USD}',
    description: 'Money spent on submissions (USD), from the prices published on the spend channel.',
    attributes: [],
  },
} as const satisfies Record<string, MetricDefinition>;

export type MetricKey = keyof typeof METRICS;
type KeysOf<K extends MetricKind> = { [P in MetricKey]: (typeof METRICS)[P]['kind'] extends K ? P : never }[MetricKey];
type Observed = { [P in MetricKey]: (typeof METRICS)[P] extends { observed: true } ? P : never }[MetricKey];
/** Counters moved by events. */
export type CounterKey = Exclude<KeysOf<'counter'>, Observed>;
/** Counters read from `stats()` when collected. */
export type ObservedCounterKey = Extract<KeysOf<'counter'>, Observed>;
export type GaugeKey = KeysOf<'gauge'>;
export type HistogramKey = KeysOf<'histogram'>;
/** What a collection reads: gauges and the observed counters. */
export type ObservedKey = GaugeKey | ObservedCounterKey;

/** Attribute values of one data point. */
export type Attributes = Readonly<Record<string, string>>;
