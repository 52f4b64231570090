/**
 * `scheduler`: the core scheduler against the fake ModelBeam server in
 * compressed time (issue 2, "Done when"). Five server behaviours, each at
 * three window phases, for three contenders: ours (told nothing but the
 * window lengths), Bottleneck and p-queue (told the documented limits).
 * Prints makespan / ideal, 429s per 1,000 requests and requests per job
 * (median over phases), checks ours against the targets, draws one chart per
 * scenario and writes the "Core scheduler" section of RESULTS.md.
 */
import { join } from 'node:path';
import { idealSchedule } from '../lib/ideal.js';
import { CONTENDERS, type Contender } from '../lib/rate-contenders.js';
import { perWindowSeries, runTrial, type TrialMetrics, type TrialOutcome, type TrialSpec } from '../lib/rate-trial.js';
import { ServerProcess } from '../lib/server-process.js';
import { fmt, max, median } from '../lib/stats.js';
import { formatMarkdown } from '../lib/table.js';
import type { Chart, ChartSeries, Scenario, ScenarioContext, ScenarioResult, Table } from '../lib/types.js';

/** The compressed minute. A multiple of Bottleneck's default heartbeat, and short enough for the whole run to take ~6 minutes. */
const WINDOW_MS = 250;
/**
 * The documented minute limit: 50 per 250 ms window (200 requests/s). With
 * 21.5 windows' worth of jobs a run sends over 1,000 requests after its first
 * window, so a single 429 stays within the 1-per-1,000 target.
 */
const LIMIT = 50;
const MAX_CONCURRENT = 64;

/** Targets for ours (issue 2). */
const TARGET_RATIO = 1.05;
const TARGET_PER_1000 = 1;

export interface SchedulerCase {
  /** Short key, used in file names and traces. */
  key: string;
  title: string;
  /** What the server does, in words. */
  server: string;
  spec: Omit<TrialSpec, 'phase' | 'seed' | 'capMs' | 'scenario'>;
}

/** The five server behaviours of issue 2, full-size or quick. */
export function schedulerCases(quick: boolean): SchedulerCase[] {
  const W = WINDOW_MS;
  // Full runs span at least 20 windows at every phase (jobs = 22.5 windows' worth for a steady limit:
  // a half-full last window, so one request more or less does not decide a whole window) and send
  // over 1,000 requests after the first window.
  const steadyJobs = quick ? 10.5 * LIMIT : 22.5 * LIMIT;
  const day = quick ? { dayMs: 6 * W, limit: 200 } : { dayMs: 12 * W, limit: 400 };
  return [
    {
      key: 'steady',
      title: '1. Steady limit',
      server: `fixed window, ${LIMIT} per ${W} ms`,
      spec: { windowMs: W, kind: 'fixed', limit: LIMIT, jobs: steadyJobs, maxConcurrent: MAX_CONCURRENT },
    },
    {
      key: 'raise-lower',
      title: '2. Limit raised, then lowered',
      server: quick
        ? `fixed window, ${LIMIT} → ${3 * LIMIT} at 2.3 W → ${LIMIT} at 5.3 W`
        : `fixed window, ${LIMIT} → ${3 * LIMIT} at 5.3 W → ${LIMIT} at 11.3 W (\`server.setLimits\`, mid-window at every phase)`,
      spec: {
        windowMs: W,
        kind: 'fixed',
        limit: LIMIT,
        // Sized like steady (issue 11, item 8): half a window's worth more than fills the ideal's last window exactly,
        // so that one request more or less does not decide a whole window.
        jobs: quick ? 850 + LIMIT / 2 : 1800 + LIMIT / 2,
        maxConcurrent: MAX_CONCURRENT,
        changes: quick
          ? [
              { atWindows: 2.3, minute: 3 * LIMIT },
              { atWindows: 5.3, minute: LIMIT },
            ]
          : [
              { atWindows: 5.3, minute: 3 * LIMIT },
              { atWindows: 11.3, minute: LIMIT },
            ],
      },
    },
    {
      key: 'daily',
      title: '3. Daily quota smaller than the work',
      server: `fixed window, ${LIMIT} per ${W} ms; daily quota ${day.limit} per ${day.dayMs} ms day (${day.dayMs / W} windows)`,
      spec: { windowMs: W, kind: 'fixed', limit: LIMIT, daily: day, jobs: quick ? 450 : 1100, maxConcurrent: MAX_CONCURRENT },
    },
    {
      key: 'sliding',
      title: '4. Sliding window',
      server: `sliding log, ${LIMIT} per any ${W} ms`,
      spec: { windowMs: W, kind: 'sliding', limit: LIMIT, jobs: steadyJobs, maxConcurrent: MAX_CONCURRENT },
    },
    {
      key: 'missing-headers',
      title: '5. Headers missing on 30% of responses',
      server: `fixed window, ${LIMIT} per ${W} ms; 30% of responses carry no X-RateLimit-* (429s keep Retry-After)`,
      spec: { windowMs: W, kind: 'fixed', limit: LIMIT, jobs: steadyJobs, maxConcurrent: MAX_CONCURRENT, missingRate: 0.3 },
    },
  ];
}

/** The ideal for a planned trial (start 0), to size its time cap and check the span before running. */
export function plannedIdeal(spec: SchedulerCase['spec'], phase: number): number {
  const W = spec.windowMs;
  return idealSchedule({
    start: 0,
    requests: spec.jobs,
    minute: { kind: spec.kind, windowMs: W, phaseMs: phase * W, limit: spec.limit },
    daily: spec.daily ? { kind: 'fixed', windowMs: spec.daily.dayMs, phaseMs: phase * spec.daily.dayMs, limit: spec.daily.limit } : undefined,
    changes: (spec.changes ?? []).map((c) => ({
      at: Math.round(c.atWindows * W),
      ...(c.minute !== undefined ? { minute: c.minute } : {}),
      ...(c.daily !== undefined ? { daily: c.daily } : {}),
    })),
  }).makespanMs;
}

interface CaseResult {
  c: SchedulerCase;
  /** outcomes[phaseIndex][contenderIndex] */
  outcomes: TrialOutcome[][];
}

function ratioText(x: number): string {
  return Number.isFinite(x) ? fmt(x, 3) : 'cut off';
}

function summaryRows(results: readonly CaseResult[], contenders: readonly Contender[]) {
  return results.flatMap(({ c, outcomes }) =>
    contenders.map((k, ci) => {
      const os = outcomes.map((row) => row[ci]).filter((o) => o !== undefined);
      const ms = os.map((o) => o.metrics);
      const ratio = median(ms.map((m) => m.ratio));
      const per1000 = median(ms.map((m) => m.per1000));
      const rpj = median(ms.map((m) => m.requestsPerJob));
      return { c, k, ratio, per1000, rpj, ms, os };
    }),
  );
}

/**
 * PASS when the medians meet both targets and no phase's run stalled or
 * failed a job (a run that never finishes is a defect, whatever the median).
 */
function verdict(k: Contender, ratio: number, per1000: number, ms: readonly TrialMetrics[]): string {
  if (k.key !== 'ours') return '';
  const a = ratio <= TARGET_RATIO;
  const b = per1000 <= TARGET_PER_1000;
  const cut = ms.filter((m) => !Number.isFinite(m.ratio)).length;
  if (a && b && cut === 0) return 'PASS';
  const why = [a ? '' : `ratio > ${TARGET_RATIO}`, b ? '' : `429s > ${TARGET_PER_1000}/1k`, cut === 0 ? '' : `${cut} run${cut > 1 ? 's' : ''} cut off`];
  return `FAIL (${why.filter(Boolean).join(', ')})`;
}

function charts(results: readonly CaseResult[], contenders: readonly Contender[], chartPhaseIndex: number): Chart[] {
  return results.map(({ c, outcomes }) => {
    const row = outcomes[Math.min(chartPhaseIndex, outcomes.length - 1)] ?? [];
    const any = row[0];
    const W = c.spec.windowMs;
    if (!any) throw new Error(`no outcome for ${c.key}`);
    const origin = c.spec.kind === 'fixed' ? any.minutePhaseMs : any.start;
    const series: ChartSeries[] = [];
    // Each trial has its own start; the server's window grid is fixed relative to it, so align on the start.
    const lastT = max(row.flatMap((o) => [o.collected.accepted.at(-1) ?? o.start, o.ideal.end].map((t) => t - o.start)));
    const bins = Math.ceil((lastT + (any.start - (origin + Math.floor((any.start - origin) / W) * W))) / W) + 1;
    series.push({
      name: 'ideal',
      points: perWindowSeries(any.ideal.times, any.start, W, origin, bins),
      color: '#999999',
      dash: 'dotted',
      width: 3,
      layer: 4,
    });
    contenders.forEach((k, i) => {
      const o = row[i];
      if (!o) return;
      const o0 = c.spec.kind === 'fixed' ? o.minutePhaseMs : o.start;
      series.push({
        name: `${k.name}${Number.isFinite(o.metrics.ratio) ? ` (${fmt(o.metrics.ratio, 2)}× ideal)` : ' (cut off)'}`,
        points: perWindowSeries(o.collected.accepted, o.start, W, o0, bins),
        color: ['#0072B2', '#D55E00', '#009E73'][i] ?? '#000',
        // Bottleneck and p-queue often coincide: draw Bottleneck wide underneath, ours on top.
        width: k.key === 'bottleneck' ? 5 : k.key === 'ours' ? 2.5 : 2,
        layer: k.key === 'ours' ? 3 : k.key === 'bottleneck' ? 1 : 2,
      });
    });
    // The minute limit over time, as the server applied it.
    const limitPoints: Array<[number, number]> = [[0, c.spec.limit]];
    for (const a of any.collected.applied) {
      if (typeof a.limits.minute === 'number') limitPoints.push([(a.appliedAt - any.start) / 1000, a.limits.minute]);
    }
    const xEnd = ((series[0]?.points.at(-1)?.[0] ?? 0) as number);
    limitPoints.push([xEnd, limitPoints.at(-1)?.[1] ?? c.spec.limit]);
    series.push({ name: 'minute limit', points: limitPoints, color: '#000000', dash: 'dashed', width: 1.5 });
    const markers: Array<{ x: number; label: string }> = [];
    if (c.spec.daily && any.dailyPhaseMs !== undefined) {
      const D = c.spec.daily.dayMs;
      for (let t = any.dailyPhaseMs; t - any.start <= xEnd * 1000; t += D) {
        if (t > any.start) markers.push({ x: (t - any.start) / 1000, label: 'daily reset' });
      }
    }
    const phase = any.spec.phase;
    return {
      file: `scheduler-${c.key}.svg`,
      title: `Core scheduler — ${c.title}: accepted requests per window`,
      subtitle: `${c.server}; ${c.spec.jobs} jobs; ${c.spec.kind === 'fixed' ? `window phase ${phase}` : `repetition ${chartPhaseIndex + 1}`}. Bins are the server's windows.`,
      xLabel: 'seconds since start',
      yLabel: `accepted per ${W} ms window`,
      series,
      markers,
    };
  });
}

async function run(ctx: ScenarioContext): Promise<ScenarioResult> {
  const phases = ctx.quick ? [0.5] : [0.1, 0.5, 0.9];
  const list = schedulerCases(ctx.quick);
  const contenders = CONTENDERS;
  const traceDir = join(ctx.workDir, 'traces', 'scheduler');
  const results: CaseResult[] = [];

  for (const c of list) {
    for (const phase of phases) {
      const ideal = plannedIdeal(c.spec, phase);
      if (!ctx.quick && ideal < 20 * c.spec.windowMs) throw new Error(`${c.key}: the ideal spans ${ideal / c.spec.windowMs} windows at phase ${phase}; need ≥ 20`);
    }
  }

  const server = await ServerProcess.spawn();
  try {
    for (const [ci, c] of list.entries()) {
      const outcomes: TrialOutcome[][] = [];
      for (const [pi, phase] of phases.entries()) {
        const row: TrialOutcome[] = [];
        const idealMs = plannedIdeal(c.spec, phase);
        for (const k of contenders) {
          if (ctx.signal.aborted) throw new Error('interrupted');
          const spec: TrialSpec = {
            ...c.spec,
            scenario: c.key,
            phase,
            seed: 1000 * (ci + 1) + pi + 1,
            capMs: Math.round(4 * idealMs + 5_000),
          };
          const o = await runTrial(server, spec, k, { signal: ctx.signal, traceDir });
          if (ctx.signal.aborted) throw new Error('interrupted');
          const m = o.metrics;
          ctx.log(
            `  ${c.key.padEnd(15)} phase ${String(phase).padEnd(3)} ${k.key.padEnd(10)} ` +
              `makespan ${fmt(m.makespanMs / 1000, 2)} s / ideal ${fmt(m.idealMs / 1000, 2)} s = ${ratioText(m.ratio)}; ` +
              `429s ${m.total429} (counted ${m.counted429}, ${fmt(m.per1000, 2)}/1k); req/job ${fmt(m.requestsPerJob, 3)}` +
              (m.failures > 0 ? `; ${m.failures} FAILED (${o.failureSamples[0] ?? ''})` : '') +
              (m.timedOut ? '; CUT OFF at the time cap' : '') +
              (o.lateMs > 2 ? ` (started ${o.lateMs} ms late: phase ${fmt(spec.phase - o.lateMs / spec.windowMs, 3)})` : ''),
          );
          row.push(o);
        }
        outcomes.push(row);
      }
      results.push({ c, outcomes });
    }
  } finally {
    await server.close();
  }

  const rows = summaryRows(results, contenders);
  const summary: Table = {
    title: `Core scheduler: median over ${phases.length} phase${phases.length > 1 ? 's' : ''} (W = ${WINDOW_MS} ms, limit ${LIMIT}/window)`,
    columns: ['scenario', 'contender', 'makespan / ideal', '429s per 1,000', 'requests / job', 'target (ours)'],
    rows: rows.map((r) => [r.c.title, r.k.name, ratioText(r.ratio), fmt(r.per1000, 2), fmt(r.rpj, 3), verdict(r.k, r.ratio, r.per1000, r.ms)]),
    align: ['left', 'left', 'right', 'right', 'right', 'left'],
  };
  const detail: Table = {
    title: 'Per phase: makespan / ideal · counted 429s (all 429s) · requests / job',
    columns: ['scenario', 'contender', ...phases.map((p) => `phase ${p}`)],
    rows: rows.map((r) => [
      r.c.title,
      r.k.name,
      ...r.os.map((o) => {
        const m = o.metrics;
        const late = o.lateMs > 2 ? ` (late start: phase ${fmt((((o.spec.phase - o.lateMs / o.spec.windowMs) % 1) + 1) % 1, 2)})` : '';
        return `${ratioText(m.ratio)} · ${m.counted429} (${m.total429}) · ${fmt(m.requestsPerJob, 3)}${late}`;
      }),
    ]),
  };
  const ours = rows.filter((r) => r.k.key === 'ours');
  const misses = ours.filter((r) => verdict(r.k, r.ratio, r.per1000, r.ms) !== 'PASS');
  const perPhaseMisses = ours.flatMap((r) =>
    r.ms
      .map((m, i) => ({ m, phase: phases[i] }))
      .filter(({ m }) => m.ratio > TARGET_RATIO || m.per1000 > TARGET_PER_1000)
      .map(({ m, phase }) => `${r.c.title}, phase ${phase}: ${Number.isFinite(m.ratio) ? `${fmt(m.ratio, 3)}× ideal` : 'cut off (stalled or failed jobs)'}, ${fmt(m.per1000, 2)} counted 429s/1k`),
  );
  const notes = [
    misses.length === 0
      ? `ours meets both targets (≤ ${TARGET_RATIO}× ideal, ≤ ${TARGET_PER_1000} 429/1k) in every scenario (median).`
      : `ours misses a target in: ${misses.map((r) => r.c.title).join('; ')}.`,
    ...(perPhaseMisses.length > 0 ? [`single phases over a target: ${perPhaseMisses.join('; ')}`] : []),
    `traces (one JSON line per request): ${traceDir}`,
  ];

  const chartList = charts(results, contenders, ctx.quick ? 0 : 1);
  return {
    tables: [summary, detail],
    charts: chartList,
    targetsMet: misses.length === 0,
    notes,
    section: {
      id: 'scheduler',
      title: 'Core scheduler',
      markdown: markdown(ctx, list, phases, results, summary, detail, chartList, notes),
    },
  };
}

function markdown(
  ctx: ScenarioContext,
  list: readonly SchedulerCase[],
  phases: readonly number[],
  results: readonly CaseResult[],
  summary: Table,
  detail: Table,
  chartList: readonly Chart[],
  notes: readonly string[],
): string {
  const W = WINDOW_MS;
  const base = list[0]?.spec;
  const dailyCase = list.find((c) => c.spec.daily);
  const setup = (c: SchedulerCase | undefined) => ({
    windowMs: W,
    dayMs: c?.spec.daily?.dayMs,
    limit: LIMIT,
    dailyLimit: c?.spec.daily?.limit,
    maxConcurrent: MAX_CONCURRENT,
  });
  const scenarioRows = results.map(({ c, outcomes }) => {
    const ideals = outcomes.map((row) => (row[0]?.ideal.makespanMs ?? Number.NaN) / W);
    return `| ${c.title} | ${c.server} | ${c.spec.jobs} | ${ideals.map((x) => fmt(x, 1)).join(' / ')} |`;
  });
  const lines = [
    ctx.quick ? '> **Quick run** (`--quick`): one phase, shorter runs. Not a valid result; run without `--quick`.\n' : '',
    'Issue 2\'s benchmark: our `RateLimitScheduler` against Bottleneck and p-queue, each draining a queue of jobs into the',
    'fake ModelBeam server in compressed time. Ours is told nothing but the window lengths; Bottleneck and p-queue are',
    'told the documented limit (their best case). Targets for ours, in every scenario: makespan ≤ 1.05 × ideal, and',
    '≤ 1 429 per 1,000 requests after the first window, not counting one daily 429 per day.',
    '',
    '### Results',
    '',
    `Median over ${phases.length} window phase${phases.length > 1 ? 's' : ''}.`,
    '',
    formatMarkdown(summary),
    '',
    ...notes.filter((n) => !n.startsWith('traces')).map((n) => `- ${n}`),
    '',
    '<details><summary>Per phase</summary>',
    '',
    formatMarkdown(detail),
    '',
    '</details>',
    '',
    '### Charts',
    '',
    `Accepted requests per server window over time, at window phase ${ctx.quick ? phases[0] : phases[1]}, all contenders, with the ideal`,
    'schedule (dotted) and the minute limit (dashed).',
    '',
    ...chartList.map((c) => `![${c.title}](results/${c.file})\n`),
    '### Set-up',
    '',
    `- **Compressed time.** A "minute" window is W = ${W} ms with a documented limit of ${LIMIT} requests (${(LIMIT * 1000) / W} requests/s),`,
    `  short enough for the full run (5 scenarios × ${phases.length} phases × 3 contenders) to take about six minutes.`,
    `  ${dailyCase?.spec.daily ? `The compressed day is ${dailyCase.spec.daily.dayMs} ms (${dailyCase.spec.daily.dayMs / W} windows), so every daily run spans at least two daily resets. ` : ''}A run of`,
    '  22.5 windows (and each daily run) sends over 1,000 requests after its first window, so one 429 in a run is within the',
    '  1-per-1,000 target.',
    '- **What compression does not scale.** Network and CPU costs stay the same while the window shrinks 240-fold, so they',
    `  weigh more than in real time. Bottleneck's local datastore dispatches about one job per 1–2 ms (it waits on`,
    `  timers; see \`../shared/deps.md\` §3), so its burst of ${LIMIT} takes 50–110 ms here, a fifth to nearly half of a window`,
    '  (in a real minute, 1–2 %). When the server\'s boundary falls inside that burst (small phases), the tail of one burst and',
    '  the next burst share a server window and Bottleneck draws 429s that its users would rarely see in real time.',
    '- **Jobs.** Every job is one `POST /api/v1/client/txt2embedding` (it answers at once) through an undici `Pool` with',
    `  ${MAX_CONCURRENT} connections, opened beforehand on a route that is not rate limited. All jobs are handed to the contender at`,
    '  the start. Steady runs have 22.5 windows\' worth of jobs, so the last window is half full and one request more or less',
    '  does not decide a whole window.',
    '- **The server** (`startFakeModelBeam`) runs in a **child process** (`bench/lib/server-child.ts`), so the client\'s CPU work',
    '  (bursts of dispatches, Bottleneck\'s timers) cannot delay the server\'s event loop and shift its window decisions.',
    '  It answers 429s with `Retry-After` **and `retry-after-ms`** (`headers.retryAfterMs: true`) in every scenario: with a',
    `  ${W} ms minute, a whole-second \`Retry-After\` would be ${1000 / W} windows long (in real time it is 1/60 of one). All three`,
    '  contenders read `retry-after-ms` first.',
    '- **Phases.** The server\'s first window boundary falls at 0.1, 0.5 and 0.9 of a window after the start (the daily boundary',
    '  at the same share of a day). A sliding window has no phase: its three runs are repetitions with different seeds.',
    '',
    '| scenario | server | jobs | ideal makespan (windows, per phase) |',
    '|:---|:---|---:|:---|',
    ...scenarioRows,
    '',
    '### How the figures are computed',
    '',
    '- **Ideal** (`bench/lib/ideal.ts`): every request sent at the earliest moment the server\'s own limiter accepts it, all',
    '  jobs ready at the start. It applies the server\'s rules exactly: fixed windows `[phase + k·W, phase + (k+1)·W)`, the',
    '  sliding log (a request accepted at `e` holds a slot while `t < e + W`), the daily fixed window (so daily resets are',
    '  included), and each limit change at the time the server applied it, with the requests already counted staying counted.',
    '  Greedy earliest acceptance is optimal for these rules. Each run replays its ideal through the server\'s `RateWindow`',
    '  and checks that every request is accepted at its ideal time and none 1 ms earlier.',
    '- **Makespan**: from the start until the client has read the last job\'s response. **makespan / ideal** divides it by the',
    '  ideal time of the last acceptance. A run that fails a job or hits its time cap (4 × ideal + 5 s) is "cut off".',
    '- **429s per 1,000**: from the client\'s trace of every request. A 429 counts when its request was sent at least one',
    '  window (W) after the start. The first `X-RateLimit-Type: daily` 429 of each server day is not counted (a daily 429',
    '  is the only way to learn when the day resets); a 429 without a type header counts as a minute 429. Divided by the',
    '  requests sent at least one window after the start, × 1,000.',
    '- **Requests / job**: HTTP requests sent (429s included) ÷ jobs.',
    '- The median over phases is taken per figure.',
    '',
    '### What each contender was given',
    '',
    `- **ours**: ${CONTENDERS[0]?.given(setup(base ? list[0] : undefined)) ?? ''}`,
    `- **Bottleneck**: ${CONTENDERS[1]?.given(setup(undefined)) ?? ''} In the daily scenario: ${CONTENDERS[1]?.given(setup(dailyCase)) ?? ''}`,
    '  The chain puts the daily limiter first so that a job waiting for the day does not hold a minute token; retries',
    '  (from the `failed` listener of `daily`) go through `minute` again but not through `daily`, whose reservoir',
    '  already paid for the job.',
    `- **p-queue**: ${CONTENDERS[2]?.given(setup(undefined)) ?? ''} In the daily scenario: ${CONTENDERS[2]?.given(setup(dailyCase)) ?? ''}`,
    '  `strict` (sliding) mode is left off, as by default, in every scenario. A retry keeps its concurrency slot and does',
    '  not use the interval cap again, as with the usual `queue.add(() => pRetry(…))`.',
    '- Both static contenders get the limit documented at the start. In scenario 2 they never learn of the change; in',
    '  scenario 5 they do not read headers anyway.',
    '',
    `Traces (one JSON line per request: time, status, limit, remaining, type, retry-after) are written to \`bench/.work/traces/scheduler/\` (git-ignored).`,
  ];
  return lines.join('\n');
}

export const scenario: Scenario = {
  name: 'scheduler',
  description: 'Core scheduler vs Bottleneck and p-queue against the fake server in compressed time (issue 2): makespan/ideal, 429s, requests/job',
  run,
};

export default scenario;
