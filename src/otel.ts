/**
 * `modelbeam-scheduler/otel`: records the scheduler's and the client's
 * metrics with OpenTelemetry, through `@opentelemetry/api` (an optional peer
 * dependency: a no-op until the application installs an SDK). The metrics and
 * the events that move them are the same as the CLI's Prometheus endpoint
 * (see docs/metrics.md).
 * @module
 */
import type { Meter, MeterProvider, Observable } from '@opentelemetry/api';
import { METRICS, type CounterKey, type HistogramKey, type MetricDefinition, type MetricKey, type ObservedKey } from './metrics/definitions.js';
import { MetricsBridge, type ClientLike, type SchedulerLike } from './metrics/mapping.js';
import { loadOtelApi } from './metrics/otel-api.js';
import { hasMethods, invalid, options as rootOptions } from './internal/validate.js';

const api = loadOtelApi();

/** The instrumentation scope's name. */
export const METER_NAME = 'modelbeam-scheduler';

export { METRICS, type MetricDefinition, type MetricKind, type MetricKey } from './metrics/definitions.js';
export type { ClientLike, SchedulerLike } from './metrics/mapping.js';

/** Options of {@link instrumentOpenTelemetry}. */
export interface OpenTelemetryMetricsOptions {
  /**
   * Where the meter comes from.
   * @default the global meter provider (`metrics.getMeterProvider()` of `@opentelemetry/api`)
   */
  meterProvider?: MeterProvider;
  /**
   * Schedulers and clients to read the gauges of from the start. One that
   * emits an event is picked up anyway; list those that should report gauges
   * before their first event.
   * @default []
   */
  track?: readonly (SchedulerLike | ClientLike)[];
}

/** A running instrumentation. */
export interface OpenTelemetryMetrics {
  /** The meter the instruments belong to. */
  readonly meter: Meter;
  /** Reads gauges from this scheduler or client from now on. */
  track(source: SchedulerLike | ClientLike): this;
  /** Stops recording: unsubscribes from the channels and removes the gauge callback. Idempotent. */
  close(): void;
}

/**
 * Records the metrics (docs/metrics.md) of every scheduler and client in the
 * process on an OpenTelemetry meter: counters and histograms as events
 * happen, gauges and the per-task counters from `stats()` whenever the SDK
 * collects.
 *
 * @example
 * import { instrumentOpenTelemetry } from 'modelbeam-scheduler/otel';
 * const instrumentation = instrumentOpenTelemetry({ track: [client] });
 * // ... on shutdown
 * instrumentation.close();
 */
export function instrumentOpenTelemetry(options: OpenTelemetryMetricsOptions = {}): OpenTelemetryMetrics {
  rootOptions(options, ['meterProvider', 'track']);
  if (options.meterProvider !== undefined && !hasMethods(options.meterProvider, ['getMeter'])) {
    invalid('meterProvider', 'an OpenTelemetry MeterProvider (with getMeter())', options.meterProvider);
  }
  if (options.track !== undefined && !Array.isArray(options.track)) invalid('track', 'an array of schedulers and clients', options.track);
  const provider = options.meterProvider ?? api.metrics.getMeterProvider();
  const meter = provider.getMeter(METER_NAME);
  const counters = {} as Record<CounterKey, ReturnType<Meter['createCounter']>>;
  const histograms = {} as Record<HistogramKey, ReturnType<Meter['createHistogram']>>;
  const observed = {} as Record<ObservedKey, Observable>;
  for (const key of Object.keys(METRICS) as MetricKey[]) {
    const def: MetricDefinition = METRICS[key];
    const base = { unit: def.unit, description: def.description };
    if (def.kind === 'counter' && def.observed === true) observed[key as ObservedKey] = meter.createObservableCounter(def.name, base);
    else if (def.kind === 'counter') counters[key as CounterKey] = meter.createCounter(def.name, base);
    else if (def.kind === 'gauge') observed[key as ObservedKey] = meter.createObservableGauge(def.name, base);
    else histograms[key as HistogramKey] = meter.createHistogram(def.name, { ...base, advice: { explicitBucketBoundaries: [...METRICS[key as HistogramKey].buckets] } });
  }
  const bridge = new MetricsBridge({
    add: (key, value, attributes) => counters[key].add(value, attributes),
    record: (key, value, attributes) => histograms[key].record(value, attributes),
  });
  for (const source of options.track ?? []) bridge.track(source);
  const observables = Object.values(observed);
  const collect = (result: { observe(observable: Observable, value: number, attributes?: Record<string, string>): void }): void => {
    bridge.collect((key, value, attributes) => result.observe(observed[key], value, attributes));
  };
  meter.addBatchObservableCallback(collect, observables);
  let closed = false;
  const instrumentation: OpenTelemetryMetrics = {
    meter,
    track(source) {
      bridge.track(source);
      return this;
    },
    close() {
      if (closed) return;
      closed = true;
      bridge.close();
      meter.removeBatchObservableCallback(collect, observables);
    },
  };
  return instrumentation;
}
