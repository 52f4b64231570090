/**
 * `metrics-overhead`: what the metrics cost (issue 14, "bench/ shows the
 * metrics' cost"). The `overhead` measurement (no-op tasks through a bare
 * `RateLimitScheduler`, no limit) and the `http-ceiling` measurement
 * (`client.balance()` against the fake server, no limit) each run with
 * metrics off, on through the Prometheus registry (what `--metrics-port`
 * serves), and on through the OpenTelemetry adapter on a real SDK
 * `MeterProvider`, interleaved run by run in one scenario, each run a fresh
 * process. Target: every "on" variant within 5 % of "off" (tasks/s and
 * requests/s, medians), checked per CPU-second of the measured process: on
 * this shared 2-core machine the wall rates of neighbouring runs scatter by
 * up to 2x with the other load, the CPU per task by a few percent. The wall
 * rates are reported beside it, with the median of the run-by-run ratios.
 */
import { loadavg } from 'node:os';
import { ensureBuild } from '../perf/build.js';
import { runChild } from '../perf/children.js';
import type { MetricsMode } from '../perf/metrics-mode.js';
import { ServerProcess } from '../lib/server-process.js';
import { fmt, max, median, min } from '../lib/stats.js';
import { formatMarkdown } from '../lib/table.js';
import type { Scenario, ScenarioContext, ScenarioResult, Table } from '../lib/types.js';

const CONCURRENCY = 100;
const CONNECTIONS = 50;
const TARGET = 0.95;
const MODES: readonly { key: MetricsMode; name: string }[] = [
  { key: 'off', name: 'metrics off' },
  { key: 'prometheus', name: 'on: PrometheusMetrics' },
  { key: 'otel', name: 'on: OpenTelemetry (sdk-metrics MeterProvider)' },
];

interface QueueResult {
  tasks: number;
  ms: number;
  cpuMs: number;
  counted: number | undefined;
}
interface HttpResult {
  requests: number;
  ms: number;
  cpuMs: number;
  perSecond: number;
  errors: number;
  warmupErrors: number;
  counted: number | undefined;
}

interface Row {
  name: string;
  rates: number[];
  median: number;
  cpuUs: number;
  /** Units per CPU-second of the measured process (median of runs). */
  perCpuSecond: number;
}

function rowsOf<T extends { ms: number; cpuMs: number }>(results: Map<MetricsMode, T[]>, units: (r: T) => number): Row[] {
  return MODES.map((m) => {
    const rs = results.get(m.key) ?? [];
    const rates = rs.map((r) => (units(r) / r.ms) * 1000);
    const cpuUs = median(rs.map((r) => (r.cpuMs * 1000) / units(r)));
    return { name: m.name, rates, median: median(rates), cpuUs, perCpuSecond: median(rs.map((r) => (units(r) / r.cpuMs) * 1000)) };
  });
}

/** on ÷ off per CPU-second: the figure the target is checked on. */
function cpuRatio(row: Row, off: Row | undefined): number {
  return row.perCpuSecond / (off?.perCpuSecond ?? Number.NaN);
}

/** The median of the run-by-run wall-rate ratios (each "on" run against the "off" run of its round). */
function pairRatio(row: Row, off: Row | undefined): number {
  return median(row.rates.map((x, i) => x / (off?.rates[i] ?? Number.NaN)));
}

function table(title: string, unit: string, rows: Row[]): Table {
  const off = rows[0];
  const one = unit.replace(/s$/, '');
  return {
    title,
    columns: ['variant', `${unit} per CPU-second`, `CPU µs/${one}`, '÷ off (per CPU-s)', `${unit}/s wall (median)`, 'wall min – max', '÷ off (wall, run by run)', 'target (per CPU-s)'],
    rows: rows.map((r, i) => {
      const ratio = cpuRatio(r, off);
      return [
        r.name,
        Math.round(r.perCpuSecond).toLocaleString('en-US'),
        fmt(r.cpuUs, 2),
        fmt(ratio, 3),
        Math.round(r.median).toLocaleString('en-US'),
        `${Math.round(min(r.rates)).toLocaleString('en-US')} – ${Math.round(max(r.rates)).toLocaleString('en-US')}`,
        fmt(pairRatio(r, off), 3),
        i === 0 ? '' : ratio >= TARGET ? 'PASS' : `FAIL (< ${TARGET})`,
      ];
    }),
    align: ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'left'],
  };
}

async function run(ctx: ScenarioContext): Promise<ScenarioResult> {
  const tasks = ctx.quick ? 200_000 : 1_000_000;
  const requests = ctx.quick ? 3_000 : 20_000;
  const warmup = ctx.quick ? 200 : 500;
  const runs = ctx.quick ? 1 : 7;
  const build = await ensureBuild(ctx.log);
  const queueChild = build.js('bench/perf/queue-child.ts');
  const httpChild = build.js('bench/perf/http-child.ts');
  const loadBefore = loadavg()[0] ?? Number.NaN;
  const queue = new Map<MetricsMode, QueueResult[]>(MODES.map((m) => [m.key, []]));
  const http = new Map<MetricsMode, HttpResult[]>(MODES.map((m) => [m.key, []]));
  const env = (mode: MetricsMode): NodeJS.ProcessEnv => ({ ...process.env, BENCH_METRICS: mode });

  for (let round = 0; round < runs; round++) {
    for (const m of MODES) {
      ctx.log(`metrics-overhead: tasks, ${m.key}, run ${round + 1}/${runs}`);
      const { result } = await runChild<QueueResult>(queueChild, ['throughput', 'ours', String(tasks), String(CONCURRENCY)], {
        timeoutMs: 3 * 60_000,
        signal: ctx.signal,
        loader: false,
        env: env(m.key),
      });
      if (m.key !== 'off' && result.counted !== tasks) throw new Error(`${m.key}: the metrics counted ${String(result.counted)} attempts of ${tasks}`);
      queue.get(m.key)?.push(result);
    }
  }

  const server = await ServerProcess.spawn();
  try {
    const { baseUrl } = await server.startServer({ limits: { minute: { limit: 1_000_000_000, windowMs: 60_000 } }, balance: 1_000_000 });
    for (let round = 0; round < runs; round++) {
      for (const m of MODES) {
        ctx.log(`metrics-overhead: requests, ${m.key}, run ${round + 1}/${runs}`);
        const { result } = await runChild<HttpResult>(httpChild, ['ceiling', 'ours', baseUrl, String(requests), String(CONNECTIONS), String(warmup)], {
          timeoutMs: 5 * 60_000,
          signal: ctx.signal,
          loader: false,
          env: env(m.key),
        });
        if (result.errors > 0 || result.warmupErrors > 0) throw new Error(`${m.key}: ${result.errors + result.warmupErrors} requests failed`);
        if (m.key !== 'off' && result.counted !== requests + warmup) {
          throw new Error(`${m.key}: the metrics counted ${String(result.counted)} attempts of ${requests + warmup}`);
        }
        http.get(m.key)?.push(result);
      }
    }
  } finally {
    await server.close();
  }
  const loadAfter = loadavg()[0] ?? Number.NaN;

  const queueRows = rowsOf(queue, (r) => r.tasks);
  const httpRows = rowsOf(http, (r) => r.requests);
  const queueTable = table(`Tasks: ${tasks.toLocaleString('en-US')} no-op tasks, no limit, concurrency ${CONCURRENCY} (median of ${runs})`, 'tasks', queueRows);
  const httpTable = table(
    `Requests: ${requests.toLocaleString('en-US')} client.balance() against the fake server, no limit, ${CONNECTIONS} connections (median of ${runs})`,
    'requests',
    httpRows,
  );
  const ratiosTo = (rows: Row[]): number[] => rows.slice(1).map((r) => cpuRatio(r, rows[0]));
  const met = [...ratiosTo(queueRows), ...ratiosTo(httpRows)].every((x) => x >= TARGET);
  const perRun: Table = {
    title: 'Per run, in the order they ran (tasks/s, then requests/s)',
    columns: ['variant', ...Array.from({ length: runs }, (_, i) => `run ${i + 1}`)],
    rows: [
      ...queueRows.map((r) => [`tasks, ${r.name}`, ...r.rates.map((x) => Math.round(x).toLocaleString('en-US'))]),
      ...httpRows.map((r) => [`requests, ${r.name}`, ...r.rates.map((x) => Math.round(x).toLocaleString('en-US'))]),
    ],
  };
  const notes = [
    `target: every "on" variant at ≥ ${TARGET} × "off", per CPU-second of the measured process: ${met ? 'met' : 'MISSED'}.`,
    `wall rates, on ÷ off, median of the run-by-run ratios: tasks ${queueRows.slice(1).map((r) => `${r.name} ${fmt(pairRatio(r, queueRows[0]), 3)}`).join(', ')}; requests ${httpRows.slice(1).map((r) => `${r.name} ${fmt(pairRatio(r, httpRows[0]), 3)}`).join(', ')}.`,
    `machine load (1-minute load average, 2 cores, shared): ${fmt(loadBefore, 2)} at the start, ${fmt(loadAfter, 2)} at the end.`,
  ];
  const markdown = [
    ctx.quick ? '> **Quick run** (`--quick`): fewer tasks, requests and runs. Not a valid result; run without `--quick`.\n' : '',
    "Issue 14's metrics cost: the `overhead` and `http-ceiling` measurements with metrics off and on, in the same run.",
    'Target: every "on" variant within 5 % of "off". It is checked per CPU-second of the measured process (tasks or requests',
    'divided by the process\'s user + system CPU time): this machine has 2 cores shared with other work, and the wall rates of',
    'neighbouring runs of the same variant scatter by up to 2× with that load (see "min – max" and the per-run table), while',
    'the CPU per task moves by a few percent. The wall rates are shown beside it, as the median of the run-by-run ratios.',
    '',
    formatMarkdown(queueTable),
    '',
    formatMarkdown(httpTable),
    '',
    ...notes.map((n) => `- ${n}`),
    '',
    `<details><summary>${perRun.title}</summary>`,
    '',
    formatMarkdown(perRun),
    '',
    '</details>',
    '',
    '### Set-up',
    '',
    '- The children and the set-up are those of "Overhead per task" (`bench/perf/queue-child.ts throughput ours`) and "HTTP',
    '  ceiling" (`bench/perf/http-child.ts ceiling ours`), compiled by `bench/perf/build.ts`, each run a fresh process; the',
    '  variants are interleaved run by run (off, Prometheus, OpenTelemetry, off, …) so machine load hits them alike.',
    '  `BENCH_METRICS` picks the variant (`bench/perf/metrics-mode.ts`): `off` subscribes nothing; `prometheus` opens a',
    '  `PrometheusMetrics` (the registry the CLI serves); `otel` calls `instrumentOpenTelemetry` on an sdk-metrics 2',
    '  `MeterProvider` with a periodic reader and an in-memory exporter (no export during the run). The metrics are set up and',
    '  the scheduler or client tracked before the clock starts. After the run each "on" child reads the attempts counter back',
    '  from its backend, and the scenario checks it equals the tasks (requests + warm-up) sent.',
    '- What "on" costs per task: the scheduler publishes `succeeded` on its diagnostics channel (a payload and a message',
    '  object) and the bridge records the request-latency histogram when the task returned an HTTP response (the no-op',
    '  tasks return none, so the task bench pays the message but not the histogram; the request bench pays both). Attempts',
    '  and tasks by outcome are read from `stats()` at collection, not counted per task. Per job (the request bench has',
    '  none) the client events add counters. The other channels have no subscriber, so their events cost a map lookup,',
    '  as with metrics off.',
    '- "CPU µs" is the child\'s user + system CPU over the timed span, per task or request; "per CPU-second" is its inverse',
    '  (median of runs). The request bench\'s figure is the client process only; the fake server runs in its own process.',
  ].join('\n');
  return {
    tables: [queueTable, httpTable, perRun],
    charts: [],
    targetsMet: met,
    notes,
    section: { id: 'metrics-overhead', title: 'Metrics cost (on vs off)', markdown },
  };
}

export const scenario: Scenario = {
  name: 'metrics-overhead',
  description: 'overhead tasks/s and client requests/s with metrics off, on (Prometheus) and on (OpenTelemetry), in the same run',
  run,
};
