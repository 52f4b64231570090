/**
 * The OpenTelemetry adapter (`modelbeam-scheduler/otel`) with the SDK's
 * in-memory exporter: the library runs the metrics scenario against the fake
 * server over real HTTP, and every metric moves in the SDK's collections, as
 * it does on the CLI's Prometheus endpoint. Both backends, fed by the one
 * mapping, end with the same counts. Also: the diagnostics channels alone.
 */
import { channel, subscribe, unsubscribe } from 'node:diagnostics_channel';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { afterEach, describe, expect, test } from 'vitest';
import { ANSWERED_CHANNEL, channelName, SPEND_CHANNEL } from '../src/diagnostics/channels.js';
import { RateLimitScheduler } from '../src/engine/scheduler.js';
import { METRICS } from '../src/metrics/definitions.js';
import { PrometheusMetrics } from '../src/metrics/prometheus.js';
import { ModelBeamClient } from '../src/modelbeam/index.js';
import { instrumentOpenTelemetry, type OpenTelemetryMetrics } from '../src/otel.js';
import { startFakeModelBeam, type FakeModelBeamServer } from '../src/testing/index.js';
import { DAY_MS, fromOtel, fromPrometheus, ITEMS, MINUTE_MS, notMoving, scenarioServer, seriesId, squeeze, type Sample } from './helpers/metrics-scenario.js';

const KEY = 'mbk-otel-9a8b7c6d5e4f3a2b';
const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

function sdk(): { provider: MeterProvider; exporter: InMemoryMetricExporter; reader: PeriodicExportingMetricReader } {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
  const provider = new MeterProvider({ readers: [reader] });
  cleanup.push(() => provider.shutdown());
  return { provider, exporter, reader };
}

/** Collects once through the SDK and reads what the exporter got. */
async function collect(reader: PeriodicExportingMetricReader, exporter: InMemoryMetricExporter): Promise<Sample> {
  await reader.forceFlush();
  const last = exporter.getMetrics().at(-1);
  exporter.reset();
  return fromOtel(last?.scopeMetrics ?? []);
}

describe('OpenTelemetry metrics', () => {
  test('a batch through the library moves every metric in the SDK, with the same counts as the Prometheus registry', async () => {
    const server: FakeModelBeamServer = await startFakeModelBeam(scenarioServer(KEY));
    cleanup.push(() => server.close());
    const { provider, exporter, reader } = sdk();
    const otel: OpenTelemetryMetrics = instrumentOpenTelemetry({ meterProvider: provider });
    cleanup.push(() => otel.close());
    const prometheus = new PrometheusMetrics();
    cleanup.push(() => prometheus.close());

    const scheduler = new RateLimitScheduler({ windows: { minuteMs: MINUTE_MS, dayMs: DAY_MS }, onDailyLimit: 'wait' });
    const client = new ModelBeamClient({
      apiKey: KEY,
      baseUrl: server.baseUrl,
      scheduler,
      maxResubmissions: 1,
      jobRetryDelayMs: 0,
      polling: { windowMs: MINUTE_MS, minIntervalMs: 10, maxIntervalMs: 1000, initialEstimateMs: 80 },
    });
    cleanup.push(async () => {
      await client.close();
      await scheduler.close({ drain: false });
    });
    otel.track(client);
    prometheus.track(client);

    const samples: Sample[] = [await collect(reader, exporter)];
    let running = true;
    const calls = Promise.allSettled(
      Array.from({ length: ITEMS }, (_, i) =>
        client.generate('txt2img', { prompt: `otel prompt ${i}`, model: 'Flux1schnell', width: 512, height: 512, steps: 4 }),
      ),
    ).finally(() => {
      running = false;
    });
    let squeezed = false;
    while (running) {
      const sample = await collect(reader, exporter);
      samples.push(sample);
      if (!squeezed && (sample.get(seriesId('attempts')) ?? 0) > 40) {
        squeezed = true;
        squeeze(server);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    const results = await calls;
    samples.push(await collect(reader, exporter));
    expect(results.filter((r) => r.status === 'fulfilled').length).toBeGreaterThan(ITEMS / 2);
    expect(results.some((r) => r.status === 'rejected')).toBe(true); // some jobs failed twice

    expect(notMoving(samples)).toEqual([]);
    // The resubmissions counter (the CLI test runs without resubmissions).
    expect(samples.at(-1)?.get(seriesId('resubmissions', { reason: 'job-failed' }))).toBeGreaterThan(0);

    // One mapping, two backends: every counter and histogram count is the same in both.
    const fromProm = fromPrometheus(prometheus.render());
    const final = samples.at(-1) as Sample;
    const counted = [...final.keys()].filter((id) => {
      const key = id.replace(/\{.*$/, '') as keyof typeof METRICS;
      return METRICS[key].kind !== 'gauge';
    });
    expect(counted.length).toBeGreaterThan(10);
    for (const id of counted) expect([id, fromProm.get(id)]).toEqual([id, final.get(id)]);
    // And the client's own stats agree with them.
    const stats = client.stats();
    expect(final.get(seriesId('jobs', { state: 'done' }))).toBe(stats.completed);
    expect(final.get(seriesId('jobs', { state: 'error' }))).toBe(stats.failed);
    expect(final.get(seriesId('attempts'))).toBe(stats.scheduler.counts.dispatched);
    expect(final.get(seriesId('rateLimited', { window: 'minute' })) ?? 0).toBeGreaterThan(0);
  }, 90_000);

  test('the spend counter adds the amounts published on the spend channel (where a client `spent` event lands)', async () => {
    const { provider, exporter, reader } = sdk();
    const otel = instrumentOpenTelemetry({ meterProvider: provider });
    cleanup.push(() => otel.close());
    channel(SPEND_CHANNEL).publish({ source: undefined, event: { amount: 0.0019, endpoint: 'txt2img' } });
    channel(SPEND_CHANNEL).publish({ source: undefined, event: { amount: 0.0037, endpoint: 'txt2img' } });
    channel(SPEND_CHANNEL).publish({ source: undefined, event: { amount: Number.NaN } }); // ignored
    channel(SPEND_CHANNEL).publish('not an object'); // ignored
    const sample = await collect(reader, exporter);
    expect(sample.get(seriesId('spend'))).toBeCloseTo(0.0056, 10);
  });

  test('close() stops recording, and the gauges of a tracked scheduler read its stats', async () => {
    const { provider, exporter, reader } = sdk();
    const otel = instrumentOpenTelemetry({ meterProvider: provider });
    const scheduler = new RateLimitScheduler({ limits: { minute: 120, daily: 5000 } });
    cleanup.push(() => scheduler.close({ drain: false }));
    otel.track(scheduler);
    scheduler.pause();
    const queued = [scheduler.schedule(() => 1), scheduler.schedule(() => 2)];
    let sample = await collect(reader, exporter);
    expect(sample.get(seriesId('queueSize'))).toBe(2);
    expect(sample.get(seriesId('paused'))).toBe(1);
    expect(sample.get(seriesId('budgetLimit', { window: 'minute' }))).toBe(120);
    expect(sample.get(seriesId('budgetLimit', { window: 'daily' }))).toBe(5000);
    scheduler.resume();
    await Promise.all(queued);
    sample = await collect(reader, exporter);
    expect(sample.get(seriesId('queueSize'))).toBe(0);
    expect(sample.get(seriesId('tasks', { outcome: 'succeeded' }))).toBe(2);
    otel.close();
    otel.close(); // idempotent
    scheduler.pause();
    const third = scheduler.schedule(() => 3);
    sample = await collect(reader, exporter);
    expect(sample.get(seriesId('queueSize')) ?? 0).toBe(0); // the gauge callback is gone: the queued task is not seen
    scheduler.resume();
    await third;
    sample = await collect(reader, exporter);
    expect(sample.get(seriesId('tasks', { outcome: 'succeeded' }))).toBe(2);
  });
});

describe('options are checked when given', () => {
  test('instrumentOpenTelemetry, listen() and track() name the bad field', async () => {
    expect(() => instrumentOpenTelemetry({ meterProvider: {} as never })).toThrow(/`meterProvider`.*MeterProvider/);
    expect(() => instrumentOpenTelemetry({ trak: [] } as never)).toThrow(/trak/);
    expect(() => instrumentOpenTelemetry({ track: {} as never })).toThrow(/`track`/);
    const metrics = new PrometheusMetrics();
    cleanup.push(() => metrics.close());
    await expect(metrics.listen({ port: 70_000 })).rejects.toThrow(/`port`.*65535/);
    await expect(metrics.listen({ port: 0, host: '' })).rejects.toThrow(/`host`/);
    expect(() => metrics.track({} as never)).toThrow(/`source`.*stats\(\)/);
  });

  test('a served endpoint answers /metrics and nothing else', async () => {
    const metrics = new PrometheusMetrics();
    cleanup.push(() => metrics.close());
    const server = await metrics.listen({ port: 0 });
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/metrics`);
    const ok = await fetch(server.url);
    expect(ok.status).toBe(200);
    expect(await ok.text()).toMatch(/^# HELP modelbeam_scheduler_queue_size /);
    expect((await fetch(server.url.replace('/metrics', '/other'))).status).toBe(404);
    expect((await fetch(server.url, { method: 'POST' })).status).toBe(405);
    await server.close();
    await expect(fetch(server.url)).rejects.toThrow();
  });
});

describe('diagnostics channels', () => {
  test('every event is published on modelbeam-scheduler:<source>:<event> with its emitter, only while subscribed', async () => {
    const scheduler = new RateLimitScheduler();
    cleanup.push(() => scheduler.close({ drain: false }));
    expect(scheduler.has('dispatched')).toBe(false);
    const seen: { name: string | symbol; message: unknown }[] = [];
    const listener = (message: unknown, name: string | symbol): void => {
      seen.push({ name, message });
    };
    for (const event of ['queued', 'dispatched', 'succeeded', 'idle']) subscribe(channelName('scheduler', event), listener);
    expect(scheduler.has('dispatched')).toBe(true); // payloads are built while the channel has subscribers
    await scheduler.schedule(() => 'ok');
    expect(seen.map((s) => s.name)).toEqual([
      'modelbeam-scheduler:scheduler:queued',
      'modelbeam-scheduler:scheduler:dispatched',
      'modelbeam-scheduler:scheduler:succeeded',
      'modelbeam-scheduler:scheduler:idle',
    ]);
    expect(seen[1]?.message).toEqual({ source: scheduler, event: { id: 1, attempt: 1, inFlight: 1 } });
    for (const event of ['queued', 'dispatched', 'succeeded', 'idle']) unsubscribe(channelName('scheduler', event), listener);
    expect(scheduler.has('dispatched')).toBe(false);
    await scheduler.schedule(() => 'again');
    expect(seen).toHaveLength(4);
  });

  test('every HTTP answer (any status) is published on the answered channel; a task without a response publishes nothing', async () => {
    const scheduler = new RateLimitScheduler();
    cleanup.push(() => scheduler.close({ drain: false }));
    const seen: unknown[] = [];
    const listener = (message: unknown): void => {
      seen.push(message);
    };
    subscribe(ANSWERED_CHANNEL, listener);
    try {
      await scheduler.schedule(() => 'not a response');
      expect(seen).toEqual([]);
      await scheduler.schedule(() => ({ status: 200, headers: {} }));
      await expect(scheduler.schedule(() => ({ status: 404, headers: {} }))).rejects.toMatchObject({ status: 404 });
    } finally {
      unsubscribe(ANSWERED_CHANNEL, listener);
    }
    expect(seen).toEqual([
      { source: scheduler, event: { id: 2, attempt: 1, status: 200, latencyMs: expect.any(Number) } },
      { source: scheduler, event: { id: 3, attempt: 1, status: 404, latencyMs: expect.any(Number) } },
    ]);
  });
});
