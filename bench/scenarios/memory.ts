/**
 * `memory`: what a queued task costs (issue 6, "Memory per queued task").
 * 1,000,000 tasks held queued and not running in our paused
 * `RateLimitScheduler` and in p-queue (`autoStart: false`); Bottleneck with
 * 100,000 (measured as soon as `schedule()` returned: its jobs then sit in
 * the RECEIVED state) and 10,000 (measured once every job reached QUEUED,
 * which its submit lock takes about 2.5 ms a job to do). Each contender runs
 * in its own `--expose-gc` process; growth of the V8 heap and of the RSS
 * after full GCs, per task, counting the promise `schedule`/`add` returned.
 * Target for ours: ≤ 400 bytes of heap per queued task.
 */
import { ensureBuild } from '../perf/build.js';
import { barOutline, runChild } from '../perf/children.js';
import { fmt, median } from '../lib/stats.js';
import { formatMarkdown } from '../lib/table.js';
import type { Chart, Scenario, ScenarioContext, ScenarioResult, Table } from '../lib/types.js';

const CONCURRENCY = 100;
const TARGET_HEAP_PER_TASK = 400;

interface MemoryResult {
  contender: string;
  tasks: number;
  queued: number;
  state: string;
  enqueueMs: number;
  heapPerTask: number;
  rssPerTask: number;
  heapMB: number;
  rssMB: number;
}

interface Plan {
  key: 'ours' | 'p-queue' | 'bottleneck';
  name: string;
  tasks: number;
  runs: number;
  extra?: string;
  how: string;
}

function plans(quick: boolean): Plan[] {
  const big = quick ? 200_000 : 1_000_000;
  return [
    { key: 'ours', name: 'ours (RateLimitScheduler)', tasks: big, runs: quick ? 1 : 3, how: 'paused (`pause()` before scheduling)' },
    { key: 'p-queue', name: 'p-queue 9.3.5', tasks: big, runs: quick ? 1 : 3, how: '`autoStart: false`' },
    {
      key: 'bottleneck',
      name: 'Bottleneck 2.19.5 (RECEIVED)',
      tasks: quick ? 10_000 : 100_000,
      runs: 1,
      extra: 'received',
      how: '`reservoir: 0`; measured right after the `schedule()` loop (jobs in RECEIVED)',
    },
    {
      key: 'bottleneck',
      name: 'Bottleneck 2.19.5 (QUEUED)',
      tasks: quick ? 1_000 : 10_000,
      runs: 1,
      how: '`reservoir: 0`; measured once every job reached QUEUED',
    },
  ];
}

async function run(ctx: ScenarioContext): Promise<ScenarioResult> {
  const list = plans(ctx.quick);
  const child = (await ensureBuild(ctx.log)).js('bench/perf/queue-child.ts');
  const results: MemoryResult[][] = list.map(() => []);
  const rounds = Math.max(...list.map((p) => p.runs));
  for (let round = 0; round < rounds; round++) {
    for (const [i, p] of list.entries()) {
      if (round >= p.runs) continue;
      ctx.log(`memory: ${p.name}, ${p.tasks.toLocaleString('en-US')} tasks, run ${round + 1}/${p.runs}`);
      const args = ['memory', p.key, String(p.tasks), String(CONCURRENCY), ...(p.extra ? [p.extra] : [])];
      const { result } = await runChild<MemoryResult>(child, args, {
        nodeArgs: ['--expose-gc'],
        timeoutMs: p.key === 'bottleneck' && !p.extra ? 15 * 60_000 : 5 * 60_000,
        signal: ctx.signal,
        loader: false,
      });
      if (result.queued !== p.tasks) throw new Error(`${p.name}: ${result.queued} of ${p.tasks} tasks queued`);
      results[i]?.push(result);
    }
  }
  const rows = list.map((p, i) => {
    const rs = results[i] ?? [];
    return {
      p,
      heap: median(rs.map((r) => r.heapPerTask)),
      rss: median(rs.map((r) => r.rssPerTask)),
      heapMB: median(rs.map((r) => r.heapMB)),
      rssMB: median(rs.map((r) => r.rssMB)),
      enqueueMs: median(rs.map((r) => r.enqueueMs)),
      state: rs[0]?.state ?? '',
      runs: rs.length,
    };
  });
  const ours = rows[0];
  const met = (ours?.heap ?? Infinity) <= TARGET_HEAP_PER_TASK;
  const table: Table = {
    title: `Memory per queued task (growth after full GCs ÷ tasks, promise included; median of runs)`,
    columns: ['contender', 'tasks queued', 'runs', 'heap B/task', 'RSS B/task', 'heap after MB', 'RSS after MB', 'enqueue ms', 'vs ours (heap)', 'target (ours)'],
    rows: rows.map((r) => [
      r.p.name,
      r.p.tasks.toLocaleString('en-US'),
      r.runs,
      fmt(r.heap, 0),
      fmt(r.rss, 0),
      fmt(r.heapMB, 0),
      fmt(r.rssMB, 0),
      fmt(r.enqueueMs, 0),
      `${fmt(r.heap / (ours?.heap ?? Number.NaN), 2)}×`,
      r.p.key === 'ours' ? (met ? 'PASS' : `FAIL (> ${TARGET_HEAP_PER_TASK} B)`) : '',
    ]),
    align: ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'left'],
  };
  const chart: Chart = {
    file: 'memory-per-task.svg',
    title: 'Memory per queued task (bytes of V8 heap, promise included)',
    subtitle: `Bars from left: ${rows.map((r) => `${r.p.name} ${fmt(r.heap, 0)} B (RSS ${fmt(r.rss, 0)} B)`).join('; ')}. Dashed: the 400 B target for ours.`,
    xLabel: 'contender',
    yLabel: 'bytes per queued task',
    series: [
      ...rows.map((r, i) => ({ name: `${r.p.name}: ${fmt(r.heap, 0)} B heap`, points: barOutline(i, r.heap), step: false, width: 3 })),
      { name: 'target 400 B', points: [[0.4, TARGET_HEAP_PER_TASK], [4.6, TARGET_HEAP_PER_TASK]], step: false, dash: 'dashed', color: '#999999', width: 1.5 },
    ],
  };
  const notes = [
    `ours: ${fmt(ours?.heap ?? Number.NaN, 0)} B of heap per queued task (target ≤ ${TARGET_HEAP_PER_TASK}): ${met ? 'met' : 'MISSED'}.`,
    `p-queue takes ${fmt((rows[1]?.heap ?? Number.NaN) / (ours?.heap ?? Number.NaN), 1)}× ours; Bottleneck ${fmt((rows[2]?.heap ?? Number.NaN) / (ours?.heap ?? Number.NaN), 1)}× (RECEIVED) and ${fmt((rows[3]?.heap ?? Number.NaN) / (ours?.heap ?? Number.NaN), 1)}× (QUEUED).`,
  ];
  const markdown = [
    ctx.quick ? '> **Quick run** (`--quick`): fewer tasks and runs. Not a valid result; run without `--quick`.\n' : '',
    `Issue 6's memory benchmark: tasks held queued (not running), measured as the growth of the V8 heap (\`heapUsed\`) and of the`,
    'RSS across the `schedule`/`add` loop, after full GCs, divided by the number of tasks. Target for ours: at most 400 bytes',
    'of heap per queued task, counting the promise `schedule` returns.',
    '',
    formatMarkdown(table),
    '',
    ...notes.map((n) => `- ${n}`),
    '',
    `![${chart.title}](results/${chart.file})`,
    '',
    '### Set-up',
    '',
    '- One fresh `node --expose-gc` process per contender and run (`bench/perf/queue-child.ts memory …`), so the contenders do',
    '  not share a heap. The queue is built first; then three `gc()` calls, a `process.memoryUsage()` baseline, the loop, three',
    '  `gc()` calls and the second reading. Every returned promise is kept in an array allocated (and filled) before the',
    '  baseline, so the promises are counted and the array\'s own 8 bytes a slot are not.',
    ...rows.map((r) => `- **${r.p.name}**: ${r.p.how}; concurrency ${CONCURRENCY}.`),
    '- RSS per task is noisier than heap per task: it includes the free space V8 keeps in the pages it grew into.',
    '- What one of our queued tasks holds: the `Entry` (13 in-object fields: id, task, priority, options, state flags, resolve',
    '  and reject), the promise and its two resolving functions with their shared context, and one slot of the ring buffer.',
  ].join('\n');
  return {
    tables: [table],
    charts: [chart],
    targetsMet: met,
    notes,
    section: { id: 'memory', title: 'Memory per queued task', markdown },
  };
}

export const scenario: Scenario = {
  name: 'memory',
  description: 'heap and RSS per queued task with 1,000,000 queued: ours vs p-queue and Bottleneck, one process each',
  run,
};
