/**
 * The metrics tests' shared scenario: a fake server that makes every metric
 * move (failing jobs, 5xx answers, a minute and a daily window in compressed
 * time), the mid-run squeeze that brings a minute 429 and reset polls, the
 * readings of both backends as backend-neutral series ids (`metricKey{label="v"}`),
 * and the one list of series that must move.
 */
import { METRICS, type MetricKey } from '../../src/metrics/definitions.js';
import type { FakeModelBeamServer, FakeServerOptions } from '../../src/testing/index.js';

export const ITEMS = 120;
export const MINUTE_MS = 1000;
export const DAY_MS = 2500;

export function scenarioServer(key: string): FakeServerOptions {
  return {
    accounts: { [key]: 'acct-metrics' },
    limits: { minute: { limit: 100, windowMs: MINUTE_MS }, daily: { limit: 60, windowMs: DAY_MS } },
    // The daily quota counts submissions only: polls do not run it out.
    countPolls: 'minute',
    jobs: { pendingMs: 10, processingMs: 60, failureRate: 0.15, failureCodes: ['WORKER_TIMEOUT'] },
    faults: { error5xxRate: 0.04, error5xxStatuses: [500] },
    seed: 14,
  };
}

/**
 * Another user of the account takes the minute window (until a request meets
 * a minute 429, or 5 s), the daily limit rises (a new limit; raised, not
 * lowered, so that the 429 reads as the minute's and not as a spent day), and three
 * status polls have their connection reset (retried: polls are idempotent).
 */
export function squeeze(server: FakeModelBeamServer): void {
  const before = server.stats().rejected429.minute;
  const deadline = Date.now() + 5000;
  server.setLimits({ minute: 1, daily: 70 });
  server.failNext('reset', 3, (request) => !request.submit);
  const timer = setInterval(() => {
    if (server.stats().rejected429.minute > before || Date.now() > deadline) {
      clearInterval(timer);
      server.setLimits({ minute: 100 });
    }
  }, 20);
}

/** One reading: series id → value (a histogram's id carries its count). */
export type Sample = Map<string, number>;

function labelText(attributes: Readonly<Record<string, unknown>>): string {
  const entries = Object.entries(attributes).sort(([a], [b]) => a.localeCompare(b));
  return entries.length === 0 ? '' : `{${entries.map(([k, v]) => `${k}="${String(v)}"`).join(',')}}`;
}

/** A backend-neutral series id: `rateLimited{window="minute"}`. */
export function seriesId(key: MetricKey, attributes: Readonly<Record<string, unknown>> = {}): string {
  return `${key}${labelText(attributes)}`;
}

const BY_PROMETHEUS = new Map<string, MetricKey>(Object.entries(METRICS).map(([key, def]) => [def.prometheus, key as MetricKey]));
const BY_OTEL = new Map<string, MetricKey>(Object.entries(METRICS).map(([key, def]) => [def.name, key as MetricKey]));

/** Reads a Prometheus text body (counters' `_total`, histograms' `_count`, gauges). */
export function fromPrometheus(text: string): Sample {
  const out: Sample = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`not a Prometheus sample line: ${line}`);
    const [, name = '', labels = '', value = ''] = match;
    let base = name;
    if (name.endsWith('_total')) base = name.slice(0, -'_total'.length);
    else if (name.endsWith('_count')) base = name.slice(0, -'_count'.length);
    else if (name.endsWith('_bucket') || name.endsWith('_sum')) continue;
    const key = BY_PROMETHEUS.get(base);
    if (key === undefined) throw new Error(`unknown metric ${name}`);
    out.set(`${key}${labels}`, Number(value));
  }
  return out;
}

interface OtelPoint {
  attributes: Record<string, unknown>;
  value: number | { count: number };
}
interface OtelMetric {
  descriptor: { name: string };
  dataPoints: OtelPoint[];
}

/** Reads the metrics of an OpenTelemetry collection (`ResourceMetrics.scopeMetrics`). */
export function fromOtel(scopeMetrics: readonly { metrics: readonly unknown[] }[]): Sample {
  const out: Sample = new Map();
  for (const scope of scopeMetrics) {
    for (const metric of scope.metrics as OtelMetric[]) {
      const key = BY_OTEL.get(metric.descriptor.name);
      if (key === undefined) throw new Error(`unknown metric ${metric.descriptor.name}`);
      for (const point of metric.dataPoints) {
        out.set(seriesId(key, point.attributes), typeof point.value === 'number' ? point.value : point.value.count);
      }
    }
  }
  return out;
}

/**
 * What each series must do: `level` takes at least two values and is above 0
 * at some reading; `value` takes at least two values (absent counts as one);
 * `count` ends higher than it started.
 */
export const MUST_MOVE: readonly [string, 'level' | 'value' | 'count'][] = [
  [seriesId('queueSize'), 'level'],
  [seriesId('inFlight'), 'level'],
  [seriesId('budgetRemaining', { window: 'minute' }), 'value'],
  [seriesId('budgetRemaining', { window: 'daily' }), 'value'],
  [seriesId('budgetLimit', { window: 'minute' }), 'value'],
  [seriesId('budgetLimit', { window: 'daily' }), 'value'],
  [seriesId('gateClosed'), 'level'],
  [seriesId('parked'), 'level'],
  [seriesId('attempts'), 'count'],
  [seriesId('rateLimited', { window: 'minute' }), 'count'],
  [seriesId('rateLimited', { window: 'daily' }), 'count'],
  [seriesId('retries', { reason: 'server-error' }), 'count'],
  [seriesId('retries', { reason: 'outcome-unknown' }), 'count'],
  [seriesId('requestDuration'), 'count'],
  [seriesId('tasks', { outcome: 'succeeded' }), 'count'],
  [seriesId('jobsSubmitted', { endpoint: 'txt2img' }), 'count'],
  [seriesId('jobs', { state: 'done' }), 'count'],
  [seriesId('jobs', { state: 'error' }), 'count'],
  [seriesId('jobDuration'), 'count'],
  [seriesId('jobsInFlight'), 'level'],
];

/** The series of `MUST_MOVE` that did not move across `samples` (empty when all did). */
export function notMoving(samples: readonly Sample[]): string[] {
  return MUST_MOVE.filter(([id, how]) => {
    const values = samples.map((s) => s.get(id));
    if (how === 'count') return !(((values.at(-1) ?? 0) as number) > ((values[0] ?? 0) as number));
    const moved = new Set(values).size >= 2;
    return how === 'value' ? !moved : !(moved && values.some((v) => (v ?? 0) > 0));
  }).map(([id]) => id);
}
