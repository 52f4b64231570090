/**
 * `metrics-overhead`: what the metrics cost (issue 14, "bench/ shows the
 * metrics' cost"). The `overhead` measurement (no-op tasks through a bare
 * `RateLimitScheduler`, no limit) and the `http-ceiling` measurement
 * (`client.balance()` against the fake server, no limit) each run with
 * metrics off, on through the Prometheus registry (what `--metrics-port`
 * serves), and on through the OpenTelemetry adapter on a real SDK
 * `MeterProvider`, interleaved run by run in one scenario, each run a fresh
 * process; and, to compare them under the same load, batches with metrics
 * on and off alternated in one process (`bench/perf/metrics-ab-child.ts`).
 * Target: every "on" variant within 5 % of "off" (tasks/s and requests/s,
 * medians of the alternating batches): on this shared 2-core machine the
 * rates of neighbouring fresh-process runs scatter by up to 2x.
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

interface AbBatch {
  on: boolean;
  ms: number;
  cpuMs: number;
}
interface AbResult {
  size: number;
  batches: AbBatch[];
}

interface AbRow {
  what: string;
  backend: string;
  offRate: number;
  onRate: number;
  offCpuUs: number;
  onCpuUs: number;
  /** Median of the ratios of neighbouring on/off batches (wall rate). */
  pairs: number;
}

function abRow(what: string, backend: string, r: AbResult): AbRow {
  const rate = (b: AbBatch): number => (r.size / b.ms) * 1000;
  const cpu = (b: AbBatch): number => (b.cpuMs * 1000) / r.size;
  const on = r.batches.filter((b) => b.on);
  const off = r.batches.filter((b) => !b.on);
  const pairs: number[] = [];
  for (let i = 0; i + 1 < r.batches.length; i += 2) {
    const a = r.batches[i] as AbBatch;
    const b = r.batches[i + 1] as AbBatch;
    const [x, y] = a.on ? [a, b] : [b, a];
    pairs.push(rate(x) / rate(y));
  }
  return {
    what,
    backend,
    offRate: median(off.map(rate)),
    onRate: median(on.map(rate)),
    offCpuUs: median(off.map(cpu)),
    onCpuUs: median(on.map(cpu)),
    pairs: median(pairs),
  };
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
  const runs = ctx.quick ? 1 : 5;
  const build = await ensureBuild(ctx.log);
  const queueChild = build.js('bench/perf/queue-child.ts');
  const httpChild = build.js('bench/perf/http-child.ts');
  const abChild = build.js('bench/perf/metrics-ab-child.ts');
  const abBatches = ctx.quick ? 4 : 20;
  const abTasks = ctx.quick ? 20_000 : 50_000;
  const abRequests = ctx.quick ? 500 : 2_000;
  const abEvents = ctx.quick ? 200_000 : 1_000_000;
  const ab: AbRow[] = [];
  const loadBefore = loadavg()[0] ?? Number.NaN;
  const queue = new Map<MetricsMode, QueueResult[]>(MODES.map((m) => [m.key, []]));
  const answered = new Map<MetricsMode, QueueResult[]>(MODES.map((m) => [m.key, []]));
  const http = new Map<MetricsMode, HttpResult[]>(MODES.map((m) => [m.key, []]));
  const env = (mode: MetricsMode, task = 'noop'): NodeJS.ProcessEnv => ({ ...process.env, BENCH_METRICS: mode, BENCH_TASK: task });

  for (let round = 0; round < runs; round++) {
    for (const [kind, into] of [['noop', queue], ['response', answered]] as const) {
      for (const m of MODES) {
        ctx.log(`metrics-overhead: tasks (${kind}), ${m.key}, run ${round + 1}/${runs}`);
        const { result } = await runChild<QueueResult>(queueChild, ['throughput', 'ours', String(tasks), String(CONCURRENCY)], {
          timeoutMs: 3 * 60_000,
          signal: ctx.signal,
          loader: false,
          env: env(m.key, kind),
        });
        if (m.key !== 'off' && result.counted !== tasks) throw new Error(`${m.key}: the metrics counted ${String(result.counted)} attempts of ${tasks}`);
        into.get(m.key)?.push(result);
      }
    }
  }

  const events: AbRow[] = [];
  for (const backend of ['prometheus', 'otel'] as const) {
    ctx.log(`metrics-overhead: alternating batches, succeeded events, ${backend}`);
    const { result } = await runChild<AbResult>(abChild, ['events', 'succeeded', backend, String(abBatches), String(abEvents)], { timeoutMs: 5 * 60_000, signal: ctx.signal, loader: false });
    events.push(abRow('succeeded events', backend, result));
  }
  for (const kind of ['noop', 'response'] as const) {
    for (const backend of ['prometheus', 'otel'] as const) {
      ctx.log(`metrics-overhead: alternating batches, ${kind} tasks, ${backend}`);
      const { result } = await runChild<AbResult>(abChild, ['tasks', kind, backend, String(abBatches), String(abTasks)], { timeoutMs: 5 * 60_000, signal: ctx.signal, loader: false });
      ab.push(abRow(kind === 'noop' ? 'no-op tasks' : '200 tasks', backend, result));
    }
  }

  const server = await ServerProcess.spawn();
  try {
    const { baseUrl } = await server.startServer({ limits: { minute: { limit: 1_000_000_000, windowMs: 60_000 } }, balance: 1_000_000 });
    for (const backend of ['prometheus', 'otel'] as const) {
      ctx.log(`metrics-overhead: alternating batches, requests, ${backend}`);
      const { result } = await runChild<AbResult>(abChild, ['requests', baseUrl, backend, String(abBatches), String(abRequests)], { timeoutMs: 5 * 60_000, signal: ctx.signal, loader: false });
      ab.push(abRow('requests', backend, result));
    }
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
  const answeredRows = rowsOf(answered, (r) => r.tasks);
  const httpRows = rowsOf(http, (r) => r.requests);
  const queueTable = table(`Tasks: ${tasks.toLocaleString('en-US')} no-op tasks, no limit, concurrency ${CONCURRENCY} (median of ${runs})`, 'tasks', queueRows);
  const answeredTable = table(
    `Tasks answering like an HTTP 200 (the latency histogram records each): ${tasks.toLocaleString('en-US')} tasks, no limit, concurrency ${CONCURRENCY} (median of ${runs})`,
    'tasks',
    answeredRows,
  );
  const httpTable = table(
    `Requests: ${requests.toLocaleString('en-US')} client.balance() against the fake server, no limit, ${CONNECTIONS} connections (median of ${runs})`,
    'requests',
    httpRows,
  );
  const met = ab.every((r) => r.onRate / r.offRate >= TARGET);
  const eventTable: Table = {
    title: `What one answered request adds: the scheduler's \`answered\` publish and \`succeeded\` guard, ${abEvents.toLocaleString('en-US')} a batch, ${abBatches} batches each way (medians)`,
    columns: ['metrics on through', 'off: ns per event', 'on: ns per event', 'added ns', 'added ÷ no-op task CPU (off)', 'added ÷ request CPU (off)'],
    rows: events.map((r) => {
      const added = (r.onCpuUs - r.offCpuUs) * 1000;
      const task = ab.find((x) => x.what === 'no-op tasks' && x.backend === r.backend)?.offCpuUs ?? Number.NaN;
      const request = ab.find((x) => x.what === 'requests' && x.backend === r.backend)?.offCpuUs ?? Number.NaN;
      return [
        r.backend === 'otel' ? 'OpenTelemetry SDK' : 'PrometheusMetrics',
        fmt(r.offCpuUs * 1000, 1),
        fmt(r.onCpuUs * 1000, 1),
        fmt(added, 1),
        `${fmt((added / (task * 1000)) * 100, 1)} %`,
        `${fmt((added / (request * 1000)) * 100, 2)} %`,
      ];
    }),
    align: ['left', 'right', 'right', 'right', 'right', 'right'],
  };
  const abTable: Table = {
    title: `Alternating batches in one process (${abBatches} on and ${abBatches} off, ABBA order): ${abTasks.toLocaleString('en-US')} tasks or ${abRequests.toLocaleString('en-US')} requests a batch, medians`,
    columns: ['work', 'metrics on through', 'off: /s', 'on: /s', 'on ÷ off (rate)', 'neighbouring pairs, median', 'off: CPU µs each', 'on: CPU µs each', 'CPU on ÷ off', 'target (rate)'],
    rows: ab.map((r) => [
      r.what,
      r.backend === 'otel' ? 'OpenTelemetry SDK' : 'PrometheusMetrics',
      Math.round(r.offRate).toLocaleString('en-US'),
      Math.round(r.onRate).toLocaleString('en-US'),
      fmt(r.onRate / r.offRate, 3),
      fmt(r.pairs, 3),
      fmt(r.offCpuUs, 2),
      fmt(r.onCpuUs, 2),
      fmt(r.onCpuUs / r.offCpuUs, 3),
      r.onRate / r.offRate >= TARGET ? 'PASS' : `FAIL (< ${TARGET})`,
    ]),
    align: ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'left'],
  };
  const cpuOf = <T extends { cpuMs: number }>(results: Map<MetricsMode, T[]>, key: MetricsMode, units: (r: T) => number): string[] =>
    (results.get(key) ?? []).map((r) => fmt((r.cpuMs * 1000) / units(r), 2));
  const perRun: Table = {
    title: 'Per run, in the order they ran: wall rate / CPU µs per unit',
    columns: ['variant', ...Array.from({ length: runs }, (_, i) => `run ${i + 1}`)],
    rows: [
      ...queueRows.map((r, i) => {
        const cpu = cpuOf(queue, MODES[i]?.key ?? 'off', (x) => x.tasks);
        return [`no-op tasks, ${r.name}`, ...r.rates.map((x, j) => `${Math.round(x).toLocaleString('en-US')} / ${cpu[j] ?? ''}`)];
      }),
      ...answeredRows.map((r, i) => {
        const cpu = cpuOf(answered, MODES[i]?.key ?? 'off', (x) => x.tasks);
        return [`200 tasks, ${r.name}`, ...r.rates.map((x, j) => `${Math.round(x).toLocaleString('en-US')} / ${cpu[j] ?? ''}`)];
      }),
      ...httpRows.map((r, i) => {
        const cpu = cpuOf(http, MODES[i]?.key ?? 'off', (x) => x.requests);
        return [`requests, ${r.name}`, ...r.rates.map((x, j) => `${Math.round(x).toLocaleString('en-US')} / ${cpu[j] ?? ''}`)];
      }),
    ],
  };
  const notes = [
    `target: every "on" variant at ≥ ${TARGET} × "off" (rate, alternating batches in one process): ${met ? 'met' : 'MISSED'}.`,
    `fresh processes, on ÷ off per CPU-second: no-op tasks ${queueRows.slice(1).map((r) => fmt(cpuRatio(r, queueRows[0]), 3)).join(' / ')}, 200 tasks ${answeredRows.slice(1).map((r) => fmt(cpuRatio(r, answeredRows[0]), 3)).join(' / ')}, requests ${httpRows.slice(1).map((r) => fmt(cpuRatio(r, httpRows[0]), 3)).join(' / ')} (Prometheus / OpenTelemetry).`,
    `wall rates, on ÷ off, median of the run-by-run ratios: no-op tasks ${queueRows.slice(1).map((r) => `${r.name} ${fmt(pairRatio(r, queueRows[0]), 3)}`).join(', ')}; 200 tasks ${answeredRows.slice(1).map((r) => `${r.name} ${fmt(pairRatio(r, answeredRows[0]), 3)}`).join(', ')}; requests ${httpRows.slice(1).map((r) => `${r.name} ${fmt(pairRatio(r, httpRows[0]), 3)}`).join(', ')}.`,
    `machine load (1-minute load average, 2 cores, shared): ${fmt(loadBefore, 2)} at the start, ${fmt(loadAfter, 2)} at the end.`,
  ];
  const markdown = [
    ctx.quick ? '> **Quick run** (`--quick`): fewer tasks, requests and runs. Not a valid result; run without `--quick`.\n' : '',
    "Issue 14's metrics cost: the `overhead` and `http-ceiling` measurements with metrics off and on, in the same run.",
    'Target: every "on" variant within 5 % of "off". Two designs, in one run:',
    '',
    '1. **Alternating batches in one process** (the target is checked here): one scheduler or client, batches of tasks or',
    '   requests with the metrics backend opened before the batch and closed after, or not opened, in ABBA order. Off and on',
    '   then share the process, its JIT state and the machine\'s load of that moment.',
    '2. **Fresh processes**, as "Overhead per task" and "HTTP ceiling" measure: one process per run, off and the two "on"',
    '   variants interleaved run by run. This machine has 2 cores shared with other work: the wall rates of neighbouring runs',
    '   of the same variant scatter by up to 2× (see "min – max" and the per-run table) and even the CPU per task by ±10 %,',
    '   so these tables show the order of magnitude, not a 5 % difference.',
    '',
    formatMarkdown(abTable),
    '',
    formatMarkdown(eventTable),
    '',
    formatMarkdown(queueTable),
    '',
    formatMarkdown(answeredTable),
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
    '- Alternating batches: `bench/perf/metrics-ab-child.ts` (`tasks <noop|response> <backend> <batches> <size>` and',
    '  `requests <baseUrl> <backend> <batches> <size>`), two untimed warm-up batches of each kind first. An "on" batch creates',
    '  the backend (a `PrometheusMetrics`, or `instrumentOpenTelemetry` on one sdk-metrics `MeterProvider`) before its clock',
    '  starts and closes it after; with it closed, nothing subscribes to the channels, as with metrics never opened.',
    '- "What one answered request adds": the same child (`events succeeded <backend> <batches> <size>`) runs only what',
    '  `#settled` does about events and channels for a 200: `publishAnswered(…)` (the `answered` diagnostics channel, which',
    '  the latency histogram reads) and `if (has(\'succeeded\')) emit(\'succeeded\', …)`; with metrics on the first builds',
    '  a message, publishes it and records the histogram (nothing subscribes to `succeeded`). Per CPU time of the batch.',
    '  Compared with the CPU per task or request with metrics off (the table above), it says what share of a request the',
    '  metrics take, without the load noise of a whole request.',
    '- Fresh processes: the children and the set-up are those of "Overhead per task" (`bench/perf/queue-child.ts throughput ours`) and "HTTP',
    '  ceiling" (`bench/perf/http-child.ts ceiling ours`), compiled by `bench/perf/build.ts`, each run a fresh process; the',
    '  variants are interleaved run by run (off, Prometheus, OpenTelemetry, off, …) so machine load hits them alike.',
    '  `BENCH_METRICS` picks the variant (`bench/perf/metrics-mode.ts`): `off` subscribes nothing; `prometheus` opens a',
    '  `PrometheusMetrics` (the registry the CLI serves); `otel` calls `instrumentOpenTelemetry` on an sdk-metrics 2',
    '  `MeterProvider` with a periodic reader and an in-memory exporter (no export during the run). The metrics are set up and',
    '  the scheduler or client tracked before the clock starts. After the run each "on" child reads the attempts counter back',
    '  from its backend, and the scenario checks it equals the tasks (requests + warm-up) sent.',
    '- What "on" costs per task: for an HTTP answer, the scheduler publishes it on the `answered` diagnostics channel (a',
    '  message object) and the bridge records the request-latency histogram. The no-op tasks return no response, so they',
    '  publish nothing; the "200 tasks" return one shared `{ statusCode: 200, headers: {} }` (`BENCH_TASK=response`), so',
    '  they pay it with no network in the way: the metrics\' cost per request without the noise of an HTTP round trip. The',
    '  request bench pays it too. Attempts',
    '  and tasks by outcome are read from `stats()` at collection, not counted per task. Per job (the request bench has',
    '  none) the client events add counters. The other channels have no subscriber, so their events cost a map lookup,',
    '  as with metrics off.',
    '- "CPU µs" is the child\'s user + system CPU over the timed span, per task or request; "per CPU-second" is its inverse',
    '  (median of runs). The request bench\'s figure is the client process only; the fake server runs in its own process.',
  ].join('\n');
  return {
    tables: [abTable, eventTable, queueTable, answeredTable, httpTable, perRun],
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
