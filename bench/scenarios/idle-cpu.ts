/**
 * `idle-cpu`: what the client costs while it waits at the quota (issue 6,
 * "Idle cost at the quota"). The fake server (its own process) allows 300
 * requests per 60 s fixed window, ModelBeam's Premium limit, in real time.
 * A fresh client process hands a backlog of `client.balance()` calls (more
 * than the run can send) to a `ModelBeamClient` with its default scheduler
 * and measures its own CPU time (`process.cpuUsage`) over 60 s of wall time
 * (`--quick`: 10 s). Twice: default (a window's budget spent at once) and
 * `smooth: true` (one request every 200 ms). Target: under 1 % of one core.
 */
import { ensureBuild } from '../perf/build.js';
import { runChild } from '../perf/children.js';
import { ServerProcess } from '../lib/server-process.js';
import { fmt } from '../lib/stats.js';
import { formatMarkdown } from '../lib/table.js';
import type { Chart, ChartSeries, Scenario, ScenarioContext, ScenarioResult, Table } from '../lib/types.js';

const LIMIT = 300;
const WINDOW_MS = 60_000;
const BACKLOG = 1_000;
const TARGET_PERCENT = 1;

interface IdleResult {
  style: string;
  seconds: number;
  wallMs: number;
  cpuMs: number;
  userMs: number;
  systemMs: number;
  answered: number;
  dispatched: number;
  rateLimited: number;
  queuedAtEnd: number;
  minuteLimit: number | undefined;
  perSecond: { t: number; cpuMs: number; answered: number }[];
  answeredAt: number[];
  maxRssMB: number;
}

const STYLES = [
  { key: 'burst', name: 'default (budget spent at the window start)' },
  { key: 'smooth', name: '`smooth: true` (one request per minute / limit)' },
  { key: 'raw', name: 'floor: raw undici, one request every 200 ms (no client, no scheduler)' },
] as const;

async function run(ctx: ScenarioContext): Promise<ScenarioResult> {
  const seconds = ctx.quick ? 10 : 60;
  const child = (await ensureBuild(ctx.log)).js('bench/perf/http-child.ts');
  const results: { style: (typeof STYLES)[number]; r: IdleResult; boundaryS: number }[] = [];
  for (const style of STYLES) {
    const server = await ServerProcess.spawn();
    try {
      // The child starts measuring at `startAt` (time enough to load); a window boundary falls halfway through.
      const startAt = Date.now() + 5_000;
      const boundary = startAt + (seconds * 1000) / 2;
      const { baseUrl } = await server.startServer({
        limits: { minute: { limit: LIMIT, windowMs: WINDOW_MS, kind: 'fixed', phaseMs: boundary % WINDOW_MS } },
        balance: 1_000_000,
      });
      ctx.log(`idle-cpu: ${style.key}, ${seconds} s at ${LIMIT} requests per ${WINDOW_MS / 1000} s`);
      const { result } = await runChild<IdleResult>(child, ['idle', baseUrl, String(seconds), String(startAt), String(BACKLOG), style.key], {
        timeoutMs: (seconds + 60) * 1000,
        signal: ctx.signal,
        loader: false,
      });
      results.push({ style, r: result, boundaryS: (boundary - startAt) / 1000 });
    } finally {
      await server.close();
    }
  }

  const pct = (r: IdleResult): number => (r.cpuMs / r.wallMs) * 100;
  const met = results.filter(({ style }) => style.key !== 'raw').every(({ r }) => pct(r) < TARGET_PERCENT);
  const table: Table = {
    title: `Idle cost at the quota: ${seconds} s at ${LIMIT} requests / ${WINDOW_MS / 1000} s (fake server in another process)`,
    columns: ['scheduler', 'wall s', 'requests answered', 'CPU ms (user + sys)', 'CPU % of one core', 'CPU µs / request', 'peak RSS MB', 'target'],
    rows: results.map(({ style, r }) => [
      style.name,
      fmt(r.wallMs / 1000, 1),
      r.answered,
      `${fmt(r.cpuMs, 0)} (${fmt(r.userMs, 0)} + ${fmt(r.systemMs, 0)})`,
      fmt(pct(r), 3),
      fmt((r.cpuMs * 1000) / Math.max(1, r.answered), 0),
      fmt(r.maxRssMB, 0),
      style.key === 'raw' ? '' : pct(r) < TARGET_PERCENT ? 'PASS' : `FAIL (≥ ${TARGET_PERCENT} %)`,
    ]),
    align: ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'left'],
  };
  // CPU per second, as % of one core.
  // One line per style in both charts, named and dashed alike.
  const styleLine = (style: (typeof STYLES)[number]): { name: string; dash?: 'dotted' } => ({
    name: style.key === 'burst' ? 'default' : style.key,
    ...(style.key === 'raw' ? { dash: 'dotted' as const } : {}),
  });
  const cpuChart: Chart = {
    file: 'idle-cpu.svg',
    title: `Idle cost at the quota: client CPU per second (${LIMIT} requests / minute)`,
    subtitle: `CPU time of the client process in each second, as % of one core. The server's window boundary falls at ${fmt(results[0]?.boundaryS ?? 0, 0)} s. Dashed: the 1 % target.`,
    xLabel: 'time since start (s)',
    yLabel: '% of one core',
    series: [
      ...results.map(({ style, r }) => ({
        ...styleLine(style),
        points: [...r.perSecond.map((p) => [p.t - 1, (p.cpuMs / 1000) * 100] as const), [r.wallMs / 1000, (r.perSecond.at(-1)?.cpuMs ?? 0) / 10] as const],
      })),
      { name: 'target 1 %', points: [[0, TARGET_PERCENT], [seconds, TARGET_PERCENT]], step: false, dash: 'dashed', color: '#999999', width: 1.5 },
    ],
    yFromZero: true,
  };
  const cumulative = (times: readonly number[], wallMs: number): Array<readonly [number, number]> => {
    const pts: Array<readonly [number, number]> = [[0, 0]];
    times.filter((t) => t <= wallMs).forEach((t, i) => pts.push([t / 1000, i + 1]));
    pts.push([wallMs / 1000, pts.at(-1)?.[1] ?? 0]);
    return pts;
  };
  const boundaryS = results[0]?.boundaryS ?? seconds / 2;
  const allowance: ChartSeries = {
    name: `server allowance (${LIMIT} per window)`,
    points: [
      [0, LIMIT],
      [boundaryS, 2 * LIMIT],
      [seconds, 2 * LIMIT],
    ],
    dash: 'dashed',
    color: '#999999',
  };
  const reqChart: Chart = {
    file: 'idle-cpu-requests.svg',
    title: 'Idle cost at the quota: requests answered over time',
    subtitle: `Cumulative answered requests against the server's cumulative allowance (${LIMIT} per ${WINDOW_MS / 1000} s fixed window, boundary at ${fmt(boundaryS, 0)} s).`,
    xLabel: 'time since start (s)',
    yLabel: 'requests answered',
    series: [
      ...results.map(({ style, r }) => ({
        ...styleLine(style),
        points: cumulative(r.answeredAt, r.wallMs),
      })),
      allowance,
    ],
    markers: [{ x: boundaryS, label: 'window boundary' }],
  };
  const floor = results.find(({ style }) => style.key === 'raw')?.r;
  const overFloor = (r: IdleResult): string => (floor ? `, ${fmt(pct(r) - pct(floor), 3)} points above the raw-undici floor` : '');
  const notes = results.map(({ style, r }) =>
    style.key === 'raw'
      ? `raw (floor): ${fmt(pct(r), 3)} % of one core over ${fmt(r.wallMs / 1000, 1)} s (${r.answered} requests): what undici and Node cost at this pace without our code.`
      : `${style.key}: ${fmt(pct(r), 3)} % of one core over ${fmt(r.wallMs / 1000, 1)} s (${r.answered} requests, ${r.rateLimited} answered 429, limit read: ${r.minuteLimit ?? 'none'}${overFloor(r)}) — target < ${TARGET_PERCENT} %: ${pct(r) < TARGET_PERCENT ? 'met' : 'MISSED'}.`,
  );
  const markdown = [
    ctx.quick ? `> **Quick run** (\`--quick\`): ${seconds} s instead of 60 s. Not a valid result; run without \`--quick\`.\n` : '',
    `Issue 6's idle cost: ${seconds} s of real time at ${LIMIT} requests per minute (ModelBeam's Premium limit), printing the CPU use of`,
    'the process that runs the scheduler. Target: under 1 % of one core.',
    '',
    formatMarkdown(table),
    '',
    ...notes.map((n) => `- ${n}`),
    '',
    `![${cpuChart.title}](results/${cpuChart.file})`,
    '',
    `![${reqChart.title}](results/${reqChart.file})`,
    '',
    '### Set-up',
    '',
    `- The fake server runs in its own process with a ${LIMIT}-per-${WINDOW_MS / 1000}-s fixed window (its default kind), real time,`,
    '  phased so that one window boundary falls halfway through the measurement. So a run sends at most two windows\' worth',
    `  (${2 * LIMIT}): what is left of the first window, and the second.`,
    `- The client process (tsc output of \`bench/perf/http-child.ts idle\`) builds a \`ModelBeamClient\` with its default scheduler`,
    `  (real 60 s minute, nothing seeded: it learns the limit from the first answer), waits until an agreed start instant (module`,
    `  loading is not measured), hands it ${BACKLOG.toLocaleString('en-US')} \`client.balance()\` calls at once (more than ${seconds} s can send: the scheduler`,
    `  spends the run blocked at the quota, as a long batch does), and reads \`process.cpuUsage()\` at the start, every second and`,
    `  after ${seconds} s. The figure is the whole process: scheduler, client, undici, timers and GC.`,
    '- Nothing polls while blocked: the scheduler sets one timer for the moment the budget can move (the predicted reset),',
    '  and a smooth scheduler one per request slot.',
    '- The last row is the floor: raw undici `Pool.request` on a 200 ms timer (300 a minute), no client and no scheduler, in',
    '  the same kind of process. At a few requests a second Node and undici run mostly cold code: about 0.7–0.8 ms of CPU',
    '  per request (against ≈ 40 µs at full speed, see `http-ceiling`), plus the first requests\' warm-up. The difference',
    '  between a row and the floor is what the client and the scheduler add.',
  ].join('\n');
  return {
    tables: [table],
    charts: [cpuChart, reqChart],
    targetsMet: met,
    notes,
    section: { id: 'idle-cpu', title: 'Idle cost at the quota', markdown },
  };
}

export const scenario: Scenario = {
  name: 'idle-cpu',
  description: '60 s at 300 requests/minute against the fake server: CPU use of the client process (target < 1 % of a core)',
  run,
};
