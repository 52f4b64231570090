/**
 * `batch-rss`: peak RSS of the batch process for a 1,000,000-line batch, and
 * of its resume from a half-done results file (issue 4, "Done when"; issue 6).
 *
 * The input is generated on disk under `bench/.work/batch-rss/` (git-ignored).
 * The fake server runs in another process with an unlimited quota and
 * instant jobs. The batch process is the real CLI (`modelbeam-batch run`,
 * tsc output): its peak RSS is `process.resourceUsage().maxRSS` (written at
 * exit by a preloaded reporter), and its RSS is sampled from /proc every
 * 500 ms to show that it stays flat (the slope is printed). Then the results
 * file is cut back to the line where half the items are done, and the same
 * command resumes it. Target: at most 150 MB for both. `--quick`: 100,000
 * lines.
 *
 * Each run is done twice: with Node's defaults, and with
 * `--heap-growing-percent=30` (the V8 heap setting the CLI could apply to
 * itself; see the Profiling paragraph).
 */
import { createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, statSync, truncateSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ensureBuild } from '../perf/build.js';
import { childPids, procMemory, runProcess, slope } from '../perf/children.js';
import { ServerProcess } from '../lib/server-process.js';
import { fmt, max } from '../lib/stats.js';
import { formatMarkdown } from '../lib/table.js';
import type { Chart, ChartSeries, Scenario, ScenarioContext, ScenarioResult, Table } from '../lib/types.js';

const TARGET_MB = 150;
/** The compressed minute of the CLI and the server: polls follow instant jobs after ~17 ms instead of 1 s. */
const MINUTE_MS = 1000;
const SAMPLE_MS = 500;

interface Variant {
  key: string;
  name: string;
  nodeArgs: string[];
}

const VARIANTS: Variant[] = [
  { key: 'default', name: 'Node defaults', nodeArgs: [] },
  { key: 'hgp30', name: '`--heap-growing-percent=30`', nodeArgs: ['--heap-growing-percent=30'] },
];

interface RunFigures {
  phase: 'full' | 'resume';
  variant: Variant;
  wallS: number;
  peakMB: number;
  /** RSS samples: [seconds since start, MB]. */
  samples: Array<readonly [number, number]>;
  /** Slope of the RSS over the steady part (after the first 20 % of the run), MB per minute. */
  slopeMBPerMin: number;
  /** max − min of the RSS over the steady part, MB. */
  steadySpreadMB: number;
  heapUsedAtExitMB: number;
  itemsPerS: number;
  summary: string;
  serverPeakMB: number;
  exitCode: number | null;
}

async function generateInput(file: string, lines: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const out = createWriteStream(file);
    out.on('error', reject);
    let i = 0;
    const write = (): void => {
      let ok = true;
      while (i < lines && ok) {
        ok = out.write(`{"id":"item-${String(i).padStart(7, '0')}","params":{"input":"prompt number ${i} of the batch-rss benchmark","model":"Bge_M3_FP16"}}\n`);
        i++;
      }
      if (i < lines) out.once('drain', write);
      else out.end(resolve);
    };
    write();
  });
}

/** Streams the results file: terminal `done` records, distinct ids done, and the byte offset just after the `stopAt`-th done record. */
async function scanResults(file: string, stopAt = Infinity): Promise<{ done: number; distinctDone: number; records: number; cutAt: number | undefined }> {
  const ids = new Set<string>();
  let done = 0;
  let records = 0;
  let offset = 0;
  let cutAt: number | undefined;
  let rest = '';
  for await (const chunk of createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 20 })) {
    const lines = (rest + (chunk as string)).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) {
      offset += Buffer.byteLength(line) + 1;
      if (line === '') continue;
      records++;
      if (!line.includes('"state":"done"')) continue;
      done++;
      const id = /"id":"([^"]+)"/.exec(line)?.[1];
      if (id !== undefined) ids.add(id);
      if (done === stopAt && cutAt === undefined) cutAt = offset;
    }
  }
  return { done, distinctDone: ids.size, records, cutAt };
}

function summaryLine(stdout: string): string {
  const lines = stdout.split('\n').map((l) => l.trim());
  const first = lines.find((l) => /^Batch /.test(l)) ?? '';
  const run = lines.find((l) => l.startsWith('this run:')) ?? '';
  return `${first} ${run}`.trim();
}

async function runBatchProcess(
  ctx: ScenarioContext,
  phase: 'full' | 'resume',
  variant: Variant,
  paths: { cli: string; preload: string; input: string; out: string; rssFile: string },
  baseUrl: string,
  items: number,
  timeoutMs: number,
): Promise<RunFigures> {
  rmSync(paths.rssFile, { force: true });
  const samples: Array<readonly [number, number]> = [];
  let serverPeak = 0;
  const serverPid = childPids('server-child')[0];
  let sampler: NodeJS.Timeout | undefined;
  const began = Date.now();
  const outcome = await runProcess(
    paths.cli,
    ['run', paths.input, '--out', paths.out, '--endpoint', 'txt2embedding', '--base-url', baseUrl, '--progress', 'none', '--log-level', 'warn', '--minute-ms', String(MINUTE_MS)],
    {
      loader: false,
      nodeArgs: [...variant.nodeArgs, '--import', paths.preload],
      env: { ...process.env, MODELBEAM_API_KEY: 'test-key', BENCH_EXIT_RSS_FILE: paths.rssFile },
      timeoutMs,
      signal: ctx.signal,
      onSpawn: (child) => {
        let lastLog = 0;
        sampler = setInterval(() => {
          const t = (Date.now() - began) / 1000;
          const m = child.pid === undefined ? undefined : procMemory(child.pid);
          if (m) samples.push([t, m.rssMB]);
          if (serverPid !== undefined) serverPeak = Math.max(serverPeak, procMemory(serverPid)?.rssMB ?? 0);
          if (t - lastLog >= 30) {
            lastLog = t;
            const size = existsSync(paths.out) ? statSync(paths.out).size / 1e6 : 0;
            ctx.log(`batch-rss: ${variant.key} ${phase}: ${fmt(t, 0)} s, RSS ${fmt(m?.rssMB ?? Number.NaN, 0)} MB, results file ${fmt(size, 0)} MB`);
          }
        }, SAMPLE_MS);
      },
    },
  );
  if (sampler) clearInterval(sampler);
  const wallS = outcome.wallMs / 1000;
  if (outcome.timedOut) throw new Error(`batch-rss: ${variant.key} ${phase} hit its time cap (${timeoutMs} ms)`);
  const report = existsSync(paths.rssFile)
    ? (JSON.parse(readFileSync(paths.rssFile, 'utf8')) as { maxRssKB: number; memory: NodeJS.MemoryUsage })
    : undefined;
  if (!report) throw new Error(`batch-rss: ${variant.key} ${phase}: no RSS report (exit ${outcome.code}, ${outcome.signal ?? ''})\n${outcome.stderr.slice(-3000)}`);
  const steady = samples.filter(([t]) => t >= wallS * 0.2);
  const rss = steady.map(([, mb]) => mb);
  return {
    phase,
    variant,
    wallS,
    peakMB: report.maxRssKB / 1024,
    samples,
    slopeMBPerMin: slope(steady) * 60,
    steadySpreadMB: rss.length > 0 ? max(rss) - Math.min(...rss) : Number.NaN,
    heapUsedAtExitMB: report.memory.heapUsed / 1e6,
    itemsPerS: items / wallS,
    summary: summaryLine(outcome.stdout),
    serverPeakMB: serverPeak,
    exitCode: outcome.code,
  };
}

async function run(ctx: ScenarioContext): Promise<ScenarioResult> {
  const lines = ctx.quick ? 100_000 : 1_000_000;
  const half = lines / 2;
  const build = await ensureBuild(ctx.log);
  const dir = join(ctx.workDir, 'batch-rss', String(Date.now()));
  mkdirSync(dir, { recursive: true });
  const input = join(dir, 'input.jsonl');
  const figures: RunFigures[] = [];
  const checks: string[] = [];
  try {
    ctx.log(`batch-rss: writing ${lines.toLocaleString('en-US')} input lines to ${relative(process.cwd(), input)}`);
    await generateInput(input, lines);
    const inputMB = statSync(input).size / 1e6;
    for (const variant of VARIANTS) {
      const server = await ServerProcess.spawn();
      try {
        const { baseUrl } = await server.startServer({
          // Unlimited: a minute limit no run reaches (the server still sends its headers); instant jobs.
          limits: { minute: { limit: 1_000_000_000, windowMs: MINUTE_MS } },
          jobs: { pendingMs: 0, processingMs: 0 },
          balance: 1_000_000_000,
        });
        const paths = {
          cli: build.js('src/cli/main.ts'),
          preload: build.js('bench/perf/exit-rss.ts'),
          input,
          out: join(dir, `results-${variant.key}.jsonl`),
          rssFile: join(dir, `rss-${variant.key}.json`),
        };
        const cap = (ctx.quick ? 10 : 60) * 60_000;
        ctx.log(`batch-rss: ${variant.key}: full run of ${lines.toLocaleString('en-US')} lines`);
        const full = await runBatchProcess(ctx, 'full', variant, paths, baseUrl, lines, cap);
        figures.push(full);
        const afterFull = await scanResults(paths.out, half);
        checks.push(`${variant.key} full: exit ${full.exitCode}, ${afterFull.distinctDone.toLocaleString('en-US')} of ${lines.toLocaleString('en-US')} items done (${afterFull.records.toLocaleString('en-US')} records). ${full.summary}`);
        if (afterFull.distinctDone !== lines || afterFull.cutAt === undefined) throw new Error(`batch-rss: ${variant.key}: the full run left ${lines - afterFull.distinctDone} items not done`);
        // Half done: cut the file just after the record that made half the items done (items started
        // later are left in flight: `submitting` or `submitted`, as a killed run leaves them).
        truncateSync(paths.out, afterFull.cutAt);
        rmSync(`${paths.out}.errors.jsonl`, { force: true });
        const cut = await scanResults(paths.out);
        ctx.log(`batch-rss: ${variant.key}: results cut to ${cut.distinctDone.toLocaleString('en-US')} done (${cut.records.toLocaleString('en-US')} records); resuming`);
        const resume = await runBatchProcess(ctx, 'resume', variant, paths, baseUrl, lines - cut.distinctDone, cap);
        figures.push(resume);
        const afterResume = await scanResults(paths.out);
        checks.push(
          `${variant.key} resume: from ${cut.distinctDone.toLocaleString('en-US')} done (${cut.records.toLocaleString('en-US')} records kept); exit ${resume.exitCode}, ${afterResume.distinctDone.toLocaleString('en-US')} of ${lines.toLocaleString('en-US')} done after. ${resume.summary}`,
        );
        if (afterResume.distinctDone !== lines) throw new Error(`batch-rss: ${variant.key}: the resumed run left ${lines - afterResume.distinctDone} items not done`);
        rmSync(paths.out, { force: true });
      } finally {
        await server.close();
      }
    }
    checks.push(`input: ${lines.toLocaleString('en-US')} lines, ${fmt(inputMB, 0)} MB.`);
  } finally {
    if (!ctx.flags.has('--keep')) rmSync(dir, { recursive: true, force: true });
  }

  const main = figures.filter((f) => f.variant.key === 'default');
  const met = main.length === 2 && main.every((f) => f.peakMB <= TARGET_MB);
  const table: Table = {
    title: `Batch RSS: ${lines.toLocaleString('en-US')}-line batch through the CLI against the fake server (unlimited, instant jobs)`,
    columns: ['V8 heap setting', 'run', 'items run', 'wall s', 'items/s', 'peak RSS MB', 'RSS slope MB/min (steady part)', 'RSS spread MB (steady part)', 'target ≤ 150 MB'],
    rows: figures.map((f) => [
      f.variant.name,
      f.phase === 'full' ? `full (${lines.toLocaleString('en-US')})` : 'resume from half done',
      Math.round(f.itemsPerS * f.wallS).toLocaleString('en-US'),
      fmt(f.wallS, 0),
      Math.round(f.itemsPerS).toLocaleString('en-US'),
      fmt(f.peakMB, 0),
      fmt(f.slopeMBPerMin, 2),
      fmt(f.steadySpreadMB, 0),
      f.peakMB <= TARGET_MB ? 'PASS' : 'FAIL',
    ]),
    align: ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'left'],
  };
  const series: ChartSeries[] = figures.map((f, i) => ({
    name: `${f.variant.key === 'default' ? 'defaults' : 'heap-growing 30 %'}, ${f.phase} (peak ${fmt(f.peakMB, 0)} MB)`,
    points: f.samples,
    step: false,
    color: ['#0072B2', '#56B4E9', '#D55E00', '#E69F00'][i] ?? '#000000',
    dash: f.phase === 'resume' ? 'dashed' : 'solid',
  }));
  const longest = max(figures.map((f) => f.wallS));
  series.push({ name: 'target 150 MB', points: [[0, TARGET_MB], [longest, TARGET_MB]], step: false, dash: 'dotted', color: '#999999', width: 1.5 });
  const chart: Chart = {
    file: 'batch-rss.svg',
    title: `Batch process RSS over time: ${lines.toLocaleString('en-US')}-line batch and its resume from half done`,
    subtitle: `RSS of the CLI process sampled every ${SAMPLE_MS} ms (VmRSS). Solid: full run; dashed: resume. Dotted: the 150 MB target.`,
    xLabel: 'time since the process started (s)',
    yLabel: 'RSS (MB)',
    series,
  };
  const notes = [
    ...figures.map(
      (f) =>
        `${f.variant.key} ${f.phase}: peak RSS ${fmt(f.peakMB, 0)} MB (target ≤ ${TARGET_MB}): ${f.peakMB <= TARGET_MB ? 'met' : 'MISSED'}; slope ${fmt(f.slopeMBPerMin, 2)} MB/min over the last 80 % of ${fmt(f.wallS, 0)} s; fake server peak RSS ${fmt(f.serverPeakMB, 0)} MB.`,
    ),
    ...checks,
  ];
  const markdown = [
    ctx.quick ? `> **Quick run** (\`--quick\`): ${lines.toLocaleString('en-US')} lines. Not a valid result; run without \`--quick\`.\n` : '',
    `Issue 4's benchmark: peak RSS of the batch process for a ${lines.toLocaleString('en-US')}-line batch, and when resuming it from a results`,
    'file that is half done, against the fake server in another process with an unlimited quota and instant jobs. Target: at',
    'most 150 MB for both. The first two rows are the CLI as shipped; the last two add one V8 flag (see Profiling).',
    '',
    formatMarkdown(table),
    '',
    ...notes.map((n) => `- ${n}`),
    '',
    `![${chart.title}](results/${chart.file})`,
    '',
    '### Set-up',
    '',
    `- **Input**: ${lines.toLocaleString('en-US')} JSONL lines, \`{"id":"item-…","params":{"input":"prompt number …","model":"Bge_M3_FP16"}}\`, written to`,
    '  `bench/.work/batch-rss/<run>/` (git-ignored; deleted afterwards unless `--keep`).',
    '- **Batch process**: the CLI, compiled by tsc (`bench/perf/build.ts`), run as',
    `  \`node <build>/src/cli/main.js run input.jsonl --out results.jsonl --endpoint txt2embedding --base-url <fake> --progress none --log-level warn --minute-ms ${MINUTE_MS}\``,
    '  with `MODELBEAM_API_KEY` set and its defaults otherwise (`--max-in-flight 256`, 16 connections). The compressed',
    `  minute (${MINUTE_MS} ms, and the same window on the server) only scales the client's polling intervals: a job is first polled`,
    '  ~17 ms after its submission instead of 1 s, so instant jobs do not leave 256 items waiting a second each. Every item is',
    '  one `POST /txt2embedding` and one `GET /request-status/{id}`.',
    '- **Peak RSS** is `process.resourceUsage().maxRSS` of the CLI process, written at exit by a preloaded reporter',
    '  (`bench/perf/exit-rss.ts`, `--import`; it registers one exit listener). The RSS is also sampled from `/proc/<pid>/status`',
    `  every ${SAMPLE_MS} ms; the slope is a least-squares fit over the last 80 % of the run (the first 20 % is start-up).`,
    `- **Resume**: after the full run, the results file is cut just after the record that made item ${half.toLocaleString('en-US')} done (by count),`,
    '  so the items started after it are left as a killed run leaves them (`submitting` or `submitted`), and the same command',
    '  runs again: it skips the finished half, polls or resubmits the open items, and runs the rest.',
    '- **Server**: `startFakeModelBeam` in its own process (`bench/lib/server-child.ts`) with `limits.minute` 1,000,000,000 per',
    `  ${MINUTE_MS} ms and \`jobs: { pendingMs: 0, processingMs: 0 }\`. It keeps every job (and its \`accepted\` log) in memory, so`,
    '  its own RSS grows with the batch; that is the server process, not the batch process (its peak is in the notes).',
    '',
    '### Profiling',
    '',
    '- What grows with the input is by design: the results file\'s index (`IdTable`, `src/batch/id-table.ts`) keeps 13 bytes',
    '  for every id of the run (to skip finished items and report duplicate ids), in a table at most half full: 13.6 MB up',
    '  to 524,288 ids, then 27 MB (the step near the middle of a full run in the chart; the resume starts with it). It is',
    '  outside the V8 heap (typed arrays), so V8\'s growing factor does not multiply it. The slope over the rest of the run',
    '  is a few MB a minute at most and flattens.',
    '- The batch process\'s live JS heap is small and flat: 25–45 MB after a full GC at any point of the run, with',
    '  `maxInFlight` items in flight. What fills the RSS is V8\'s heap headroom: with Node\'s defaults on this machine (a',
    '  4 GB heap limit) V8 lets the old generation grow to about four times the live heap between full GCs when the',
    '  program promotes objects fast, and a batch at full speed promotes ~14 KB per item (objects that live through one',
    '  HTTP round trip outlive the young generation): `heapTotal` settles near 150 MB, the RSS near 200 MB',
    '  before the id table\'s last step.',
    '- The sampling heap profiler (counting only objects that outlived the young generation) split those ~14 KB per item',
    '  as: the client (`src/modelbeam`) ≈ 4.3 KB, the engine ≈ 2.9 KB (half of it the per-attempt `AbortSignal`), the batch',
    '  runner ≈ 1.1 KB, Node internals and Maps ≈ 3.5 KB, undici ≈ 1.3 KB.',
    '- The live heap itself (a heap snapshot at 15 s: 27 MB) is mostly code, strings and the client\'s record of finished',
    '  jobs: `JobTracker` keeps the last 10,000 finished jobs with their results (`MAX_DONE` in `src/modelbeam/job-tracker.ts`)',
    '  for late `wait()` calls, which a batch never makes. Those jobs are live data that V8 multiplies by its growing',
    '  factor, and every job outlives the young generation. With that bound set to 100 in a copy of the build (not in the',
    '  source: `src/modelbeam/` is another engineer\'s), a full 1,000,000-line run peaked at **189 MB** with Node\'s defaults',
    '  (3,350 items/s) and at **159 MB** with `--heap-growing-percent=30` (3,695 items/s), against 239 MB and 174 MB here.',
    '- What is left above 150 MB in that best case: the CLI process starts at about 90 MB RSS before the first item (Node,',
    '  undici, pino, commander, cli-progress, the client), the id table\'s 27 MB, and for a moment its 13.6 MB old copy while it',
    '  doubles at 524,288 ids.',
    '- Fixed in `src/batch/run-batch.ts`: one `AbortController` for all items of a run instead of one per item (a stop always',
    '  aborted every item at once), and one promise step less per item.',
    '- The heap headroom itself is a V8 setting. `--heap-growing-percent=30` (or `--max-old-space-size=512`, which lowers V8\'s',
    '  maximum growing factor) keeps `heapTotal` near 80 MB: the RSS drops by about 65 MB at nearly the same throughput',
    '  (last two rows), but the id table and the client\'s 10,000 kept jobs still put a million-line run above 150 MB.',
    '  `--heap-growing-percent` is read at every GC, so the CLI can set it for itself at start-up',
    '  (`v8.setFlagsFromString(\'--heap-growing-percent=30\')` measured the same as the command-line flag); a library',
    '  (`runBatch`) should not change a process-wide V8 setting.',
  ].join('\n');
  return {
    tables: [table],
    charts: [chart],
    targetsMet: met,
    notes,
    section: { id: 'batch-rss', title: 'Batch process RSS (1,000,000 lines, and the resume)', markdown },
  };
}

export const scenario: Scenario = {
  name: 'batch-rss',
  description: 'peak RSS of the batch CLI for a 1,000,000-line batch and its resume from half done (target ≤ 150 MB)',
  run,
};
