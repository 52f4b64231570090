/**
 * Metrics on or off in a measurement child, from `BENCH_METRICS`:
 * `off` (or unset) subscribes nothing; `prometheus` opens a `PrometheusMetrics`
 * registry (what the CLI's `--metrics-port` serves); `otel` instruments an
 * OpenTelemetry SDK `MeterProvider` (sdk-metrics, in-memory exporter, no export
 * during the run). `check()` reads one counter back, proving the metrics counted.
 */
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import type { ClientLike, SchedulerLike } from '../../src/metrics/mapping.js';
import { PrometheusMetrics } from '../../src/metrics/prometheus.js';
import { instrumentOpenTelemetry } from '../../src/otel.js';

export type MetricsMode = 'off' | 'prometheus' | 'otel';

export interface BenchMetrics {
  mode: MetricsMode;
  track(source: SchedulerLike | ClientLike): void;
  /** The value of a counter series as the backend reports it (Prometheus line prefix / OTel name), or undefined when off. */
  check(prometheusSeries: string, otelName: string): Promise<number | undefined>;
  close(): Promise<void>;
}

export function metricsMode(): MetricsMode {
  const mode = process.env['BENCH_METRICS'] ?? 'off';
  if (mode !== 'off' && mode !== 'prometheus' && mode !== 'otel') throw new Error(`BENCH_METRICS: expected off, prometheus or otel, got ${mode}`);
  return mode;
}

export function startMetrics(mode: MetricsMode = metricsMode()): BenchMetrics {
  if (mode === 'prometheus') {
    const metrics = new PrometheusMetrics();
    return {
      mode,
      track: (source) => void metrics.track(source),
      check: async (series) => {
        const line = metrics.render().split('\n').find((l) => l.startsWith(`${series} `));
        return line === undefined ? undefined : Number(line.slice(series.length + 1));
      },
      close: () => metrics.close(),
    };
  }
  if (mode === 'otel') {
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
    const provider = new MeterProvider({ readers: [reader] });
    const otel = instrumentOpenTelemetry({ meterProvider: provider });
    return {
      mode,
      track: (source) => void otel.track(source),
      check: async (_series, name) => {
        await reader.forceFlush();
        const metric = exporter
          .getMetrics()
          .flatMap((r) => r.scopeMetrics.flatMap((s) => s.metrics))
          .find((m) => m.descriptor.name === name);
        const point = metric?.dataPoints[0];
        return typeof point?.value === 'number' ? point.value : undefined;
      },
      close: async () => {
        otel.close();
        await provider.shutdown();
      },
    };
  }
  return { mode, track: () => {}, check: async () => undefined, close: async () => {} };
}
