/**
 * Metrics off and on, alternated batch by batch in one process (started by
 * `metrics-overhead`), so that both see the same machine load:
 *
 *     node bench/perf/metrics-ab-child.js tasks <noop|response> <prometheus|otel> <batches> <tasksPerBatch>
 *     node bench/perf/metrics-ab-child.js requests <baseUrl> <prometheus|otel> <batches> <requestsPerBatch>
 *     node bench/perf/metrics-ab-child.js events succeeded <prometheus|otel> <batches> <eventsPerBatch>
 *
 * `events` isolates what the metrics add per answered request: what
 * `#settled` does for a 200 about events and channels, nothing else
 * (`publishAnswered(…)`, then `if (has('succeeded')) emit('succeeded', { … })`).
 *
 * One scheduler (no limit, concurrency 100) or one `ModelBeamClient` (50
 * connections) serves every batch. An "on" batch opens the backend before it
 * starts (a `PrometheusMetrics`, or `instrumentOpenTelemetry` on one SDK
 * `MeterProvider`) and closes it after; an "off" batch subscribes nothing.
 * The order is off, on, on, off, off, on, … (ABBA: a drift in load hits both
 * alike), after two untimed warm-up batches of each. Prints each batch's wall
 * time and CPU time.
 */
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { publishAnswered } from '../../src/diagnostics/channels.js';
import { RateLimitScheduler } from '../../src/engine/scheduler.js';
import { PrometheusMetrics } from '../../src/metrics/prometheus.js';
import { ModelBeamClient } from '../../src/modelbeam/client.js';
import { instrumentOpenTelemetry } from '../../src/otel.js';
import { reportResult } from './children.js';

const [what, arg, backend, batchesArg, sizeArg] = process.argv.slice(2);
const batches = Number(batchesArg);
const size = Number(sizeArg);
if ((what !== 'tasks' && what !== 'requests' && what !== 'events') || !arg || (backend !== 'prometheus' && backend !== 'otel') || !(batches > 0) || !(size > 0)) {
  process.stderr.write('usage: metrics-ab-child.ts <tasks|requests> <noop|response|baseUrl> <prometheus|otel> <batches> <size>\n');
  process.exit(2);
}

const RESPONSE = Object.freeze({ statusCode: 200, headers: Object.freeze({}) });
const noop = async (): Promise<unknown> => undefined;
const answer = async (): Promise<unknown> => RESPONSE;

const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
const provider = new MeterProvider({ readers: [reader] });

function open(): () => Promise<void> {
  if (backend === 'prometheus') {
    const metrics = new PrometheusMetrics();
    return () => metrics.close();
  }
  const instrumentation = instrumentOpenTelemetry({ meterProvider: provider });
  return async () => instrumentation.close();
}

let runBatch: () => Promise<void>;
let close: () => Promise<void>;
if (what === 'events') {
  const scheduler = new RateLimitScheduler();
  let skipped = 0;
  runBatch = async () => {
    for (let i = 0; i < size; i++) {
      publishAnswered(scheduler, i, 1, 200, i & 63);
      if (scheduler.has('succeeded')) scheduler.emit('succeeded', { id: i, attempt: 1, status: 200, latencyMs: i & 63 });
      else skipped++;
    }
  };
  close = async () => {
    await scheduler.close();
    if (skipped === 0) throw new Error('no succeeded event was skipped: something besides the metrics subscribes');
  };
} else if (what === 'tasks') {
  const scheduler = new RateLimitScheduler({ maxConcurrent: 100, limits: { minute: Number.MAX_SAFE_INTEGER } });
  const task = arg === 'response' ? answer : noop;
  runBatch = async () => {
    for (let i = 0; i < size; i++) void scheduler.schedule(task);
    await scheduler.onIdle();
  };
  close = () => scheduler.close();
} else {
  const client = new ModelBeamClient({ apiKey: 'test-key', baseUrl: arg, connections: 50, scheduler: { maxConcurrent: 50 } });
  runBatch = async () => {
    let next = 0;
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        while (next < size) {
          next++;
          if (typeof (await client.balance()) !== 'number') throw new Error('balance: not a number');
        }
      }),
    );
  };
  close = () => client.close();
}

interface Batch {
  on: boolean;
  ms: number;
  cpuMs: number;
}

async function measure(on: boolean): Promise<Batch> {
  const stop = on ? open() : undefined;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await runBatch();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  await stop?.();
  return { on, ms, cpuMs: (cpu.user + cpu.system) / 1000 };
}

for (let i = 0; i < 2; i++) {
  await measure(false);
  await measure(true);
}
const results: Batch[] = [];
for (let i = 0; i < batches; i++) {
  // off on | on off | off on | …
  const first = i % 2 === 0 ? false : true;
  results.push(await measure(first));
  results.push(await measure(!first));
}
await close();
await provider.shutdown();
reportResult({ what, arg: what === 'requests' ? 'balance' : arg, backend, size, batches: results });
process.exit(0);
