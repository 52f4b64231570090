/**
 * Run with `@opentelemetry/*` hidden (test/helpers/hide-otel.cjs): the library loads and runs a job
 * against the fake server; the diagnostics channels and the Prometheus registry work; only
 * `modelbeam-scheduler/otel` fails, with an error naming the package. Prints one JSON line.
 */
import { createRequire } from 'node:module';
import * as library from '../../src/index.js';
import { startFakeModelBeam } from '../../src/testing/index.js';

const require = createRequire(import.meta.url);
const report: Record<string, unknown> = {};
try {
  require.resolve('@opentelemetry/api');
  report['hidden'] = false;
} catch {
  report['hidden'] = true;
}
try {
  await import('@opentelemetry/api');
  report['importHidden'] = false;
} catch {
  report['importHidden'] = true;
}
const server = await startFakeModelBeam({ jobs: { pendingMs: 5, processingMs: 10 } });
const metrics = new library.PrometheusMetrics();
const client = new library.ModelBeamClient({ apiKey: 'test-key', baseUrl: server.baseUrl, polling: { minIntervalMs: 5, initialEstimateMs: 15 } });
const result = await client.generate('txt2img', { prompt: 'a fox', model: 'Flux1schnell', width: 512, height: 512, steps: 4 });
report['status'] = result.status;
report['jobsDone'] = /modelbeam_client_jobs_total\{state="done"\} 1\n/.test(metrics.render());
await metrics.close();
await client.close();
await server.close();
try {
  await import('../../src/otel.js');
  report['otel'] = 'loaded';
} catch (error) {
  report['otel'] = { code: (error as { code?: string }).code, isSchedulerError: library.isSchedulerError(error), message: (error as Error).message };
}
console.log(JSON.stringify(report));
