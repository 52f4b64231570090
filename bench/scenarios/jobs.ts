/**
 * `jobs`: issue 11's job-level benchmark. Asynchronous jobs (submit, then
 * poll until done) through the ModelBeam client against the fake server over
 * real HTTP, in compressed time, with the limit not told to ours; Bottleneck
 * and p-queue, told the limits, run the same jobs beside it
 * (`bench/lib/job-contenders.ts`).
 *
 * - A minute window of W = 250 ms with a limit of 30; job durations from
 *   15 % to 75 % of W (fixed per job, from the seed); network latency up to
 *   1.5 % of W per round trip (`latencyMs`, half each way); 320 jobs, each
 *   a submission and at least one poll, both counted in the minute window:
 *   over 21 windows of work.
 * - Five variants: fixed, first-hit and sliding minute windows; a daily quota
 *   of half the jobs that counts submissions only (`countPolls: 'minute'`);
 *   the same with polls counted daily too (a quota of one submission and
 *   one poll for half the jobs).
 * - Five phases per variant (the minute and daily boundaries at 0.1, 0.3,
 *   0.5, 0.7, 0.9 of a window / day after the start; for first-hit and
 *   sliding windows, which have no phase, five repetitions), each with its
 *   own job durations. The median over phases is reported.
 *
 * The ideal is `bench/lib/job-ideal.ts`: a clairvoyant client that knows the
 * limits and each job's duration and sends each submission and each job's
 * one poll at the earliest moment the server's windows accept it.
 */
import { setMaxListeners } from 'node:events';
import { startFakeModelBeam, type FakeModelBeamServer, type FakeServerOptions, type WindowKind } from '../../src/testing/index.js';
import { mulberry32 } from '../../src/testing/prng.js';
import { until } from '../lib/attempts.js';
import { selected } from '../lib/flags.js';
import { idealJobs } from '../lib/job-ideal.js';
import { JOB_CONTENDERS, type JobContender, type JobSetup } from '../lib/job-contenders.js';
import { fmt, max, median } from '../lib/stats.js';
import { formatMarkdown } from '../lib/table.js';
import { unusedCapacity, unusedPer1000 } from '../lib/unused.js';
import type { Scenario, ScenarioContext, ScenarioResult, Table } from '../lib/types.js';

/** The compressed minute. */
const WINDOW_MS = 250;
const LIMIT = 30;
const JOBS = 320;
const QUICK_JOBS = 120;
/** The compressed day: 16 windows, so that half the jobs (a day's quota) are done well within one. */
const DAY_MS = 16 * WINDOW_MS;
/** Job durations: 15 % to 75 % of a window, uniform. */
const MIN_DURATION = 0.15 * WINDOW_MS;
const MAX_DURATION = 0.75 * WINDOW_MS;
/** Round-trip latency up to 1.5 % of a window (half each way, uniform). */
const LATENCY_MS = 0.015 * WINDOW_MS;
const PHASES = [0.1, 0.3, 0.5, 0.7, 0.9] as const;
const QUICK_PHASES = [0.3, 0.7] as const;
const MAX_CONCURRENT = 64;
/** Time between choosing the start and starting: enough to build the contender and warm its pool. */
const LEAD_MS = 400;
/** Jobs of the warm-up run before each trial (against a server without limits). */
const WARM_JOBS = 40;

/** Targets for ours (issue 11, "Done when"). */
const TARGET_RATIO = 1.05;
const TARGET_RATIO_DAILY = 1.08;
const TARGET_UNUSED = 10;

type VariantKey = 'fixed' | 'first-hit' | 'sliding' | 'daily-submissions' | 'daily-polls';
const VARIANT_KEYS: readonly VariantKey[] = ['fixed', 'first-hit', 'sliding', 'daily-submissions', 'daily-polls'];

interface Variant {
  key: VariantKey;
  title: string;
  kind: WindowKind;
  /** The daily quota, as a share of the jobs' requests, when there is one. */
  daily: 'submissions' | 'polls' | undefined;
}

export const VARIANTS: Readonly<Record<VariantKey, Variant>> = {
  fixed: { key: 'fixed', title: '1. Fixed window', kind: 'fixed', daily: undefined },
  'first-hit': { key: 'first-hit', title: '2. First-hit window', kind: 'first-hit', daily: undefined },
  sliding: { key: 'sliding', title: '3. Sliding window', kind: 'sliding', daily: undefined },
  'daily-submissions': { key: 'daily-submissions', title: '4. Daily quota, submissions counted', kind: 'fixed', daily: 'submissions' },
  'daily-polls': { key: 'daily-polls', title: '5. Daily quota, polls counted too', kind: 'fixed', daily: 'polls' },
};

/** The daily quota: half the jobs' submissions, or their submissions and one poll each. */
function dailyLimit(v: Variant, jobs: number): number | undefined {
  if (v.daily === undefined) return undefined;
  return v.daily === 'submissions' ? jobs / 2 : jobs;
}

interface Trial {
  variant: Variant;
  contender: string;
  phase: number;
  ratio: number;
  makespanMs: number;
  idealMs: number;
  total429: number;
  /** 429s of requests the server saw at least one window after the start. */
  after429: number;
  daily429: number;
  /** The most daily 429s in one server day. */
  maxDaily429PerDay: number;
  /** Minute-window unused capacity per 1,000 counted requests (windows without a daily quota only). */
  unusedPer1000: number;
  requestsPerJob: number;
  /** Jobs whose result waited for the next day: finished at least a window before their day ended, known after it. */
  heldToNextDay: number;
  /** Polls the daily window refused. */
  pollsRefusedDaily: number;
  failed: number;
  cutOff: boolean;
  /** For tracing (bench/tools): the start, the server's counted log and the ideal's acceptance times. */
  trace: { start: number; counted: number[]; refused: { at: number; type: string; route: string }[]; ideal: number[]; heldSamples: [number, number, number][]; lastSubmitAt: number };
}

/** Job `i`'s duration in trial `seed` (ms): 15–75 % of a window. */
function durationsFor(seed: number, jobs: number): number[] {
  const next = mulberry32(seed);
  return Array.from({ length: jobs }, () => Math.round(MIN_DURATION + (MAX_DURATION - MIN_DURATION) * next()));
}

function serverOptions(v: Variant, seed: number, jobs: number, start: number, phase: number, durations: readonly number[]): FakeServerOptions {
  const q = dailyLimit(v, jobs);
  return {
    seed,
    latencyMs: LATENCY_MS,
    limits: {
      minute: { limit: LIMIT, windowMs: WINDOW_MS, kind: v.kind, phaseMs: start + phase * WINDOW_MS },
      daily: q === undefined ? false : { limit: q, windowMs: DAY_MS, kind: 'fixed', phaseMs: start + phase * DAY_MS },
    },
    countPolls: v.daily === 'submissions' ? 'minute' : true,
    // Compressed time: a whole-second Retry-After would be four windows. Every contender reads the ms header first.
    headers: { retryAfterMs: true },
    jobs: {
      pendingMs: 0,
      jitter: 0,
      processingMs: (_endpoint, params) => durations[Number(/(\d+)$/.exec(String(params['prompt']))?.[1] ?? 0)] ?? MAX_DURATION,
    },
  };
}

/**
 * Runs `WARM_JOBS` jobs of contender `c` against a throwaway server without
 * limits, so that the code paths of the contender and of the server are
 * compiled before the clock starts (in compressed time, a cold first request
 * takes a fifth of a window).
 */
async function warmUp(c: JobContender, signal: AbortSignal): Promise<void> {
  const server = await startFakeModelBeam({ limits: { minute: false }, countPolls: false, jobs: { pendingMs: 0, processingMs: 1, jitter: 0 } });
  const local = new AbortController();
  setMaxListeners(0, local.signal);
  const onAbort = (): void => local.abort(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  const run = c.start({
    server,
    windowMs: WINDOW_MS,
    dayMs: undefined,
    limit: 1000,
    dailyLimit: undefined,
    pollsDaily: false,
    firstPollMs: 1,
    pollEveryMs: 1,
    maxConcurrent: MAX_CONCURRENT,
    signal: local.signal,
  });
  try {
    await run.warm();
    await Promise.allSettled(Array.from({ length: WARM_JOBS }, (_, i) => run.run(i, () => {})));
  } finally {
    signal.removeEventListener('abort', onAbort);
    await run.close().catch(() => {});
    await server.close();
  }
}

export async function runTrial(v: Variant, c: JobContender, jobs: number, phase: number, seed: number, signal: AbortSignal): Promise<Trial> {
  const durations = durationsFor(seed, jobs);
  await warmUp(c, signal);
  const start = Date.now() + LEAD_MS;
  const q = dailyLimit(v, jobs);
  const minuteWindow = { kind: v.kind, windowMs: WINDOW_MS, phaseMs: start + phase * WINDOW_MS, limit: LIMIT };
  const dailyWindow = q === undefined ? undefined : { kind: 'fixed' as const, windowMs: DAY_MS, phaseMs: start + phase * DAY_MS, limit: q };
  const ideal = idealJobs({ start, durations, minute: minuteWindow, daily: dailyWindow, pollsDaily: v.daily === 'polls' });
  const server: FakeModelBeamServer = await startFakeModelBeam(serverOptions(v, seed, jobs, start, phase, durations));
  const trialAbort = new AbortController();
  setMaxListeners(0, trialAbort.signal);
  const onOuterAbort = (): void => trialAbort.abort(signal.reason);
  signal.addEventListener('abort', onOuterAbort, { once: true });
  const ids = new Array<string | undefined>(jobs).fill(undefined);
  const completedAt = new Array<number>(jobs).fill(Number.NaN);
  let failed = 0;
  let cutOff = false;
  const firstFailures: string[] = [];
  const setup: JobSetup = {
    server,
    windowMs: WINDOW_MS,
    dayMs: q === undefined ? undefined : DAY_MS,
    limit: LIMIT,
    dailyLimit: q,
    pollsDaily: v.daily === 'polls',
    firstPollMs: Math.round((MIN_DURATION + MAX_DURATION) / 2),
    pollEveryMs: Math.round(0.1 * WINDOW_MS),
    maxConcurrent: MAX_CONCURRENT,
    signal: trialAbort.signal,
  };
  const run = c.start(setup);
  try {
    await run.warm();
    await until(start);
    const settled = Promise.allSettled(
      Array.from({ length: jobs }, (_, i) =>
        run
          .run(i, (id) => {
            ids[i] = id;
          })
          .then(
            () => {
              completedAt[i] = Date.now();
            },
            (error: unknown) => {
              failed++;
              if (firstFailures.length < 3) firstFailures.push(`job ${i}: ${error instanceof Error ? error.message : String(error)}`);
            },
          ),
      ),
    );
    const capMs = 4 * ideal.makespanMs + 5_000;
    let timer: NodeJS.Timeout | undefined;
    const capped = new Promise<'cap'>((resolve) => {
      timer = setTimeout(() => resolve('cap'), capMs);
      trialAbort.signal.addEventListener('abort', () => resolve('cap'), { once: true });
    });
    const first = await Promise.race([settled.then(() => 'done' as const), capped]);
    clearTimeout(timer);
    if (first === 'cap') {
      cutOff = true;
      trialAbort.abort(new Error('trial cut short'));
      await run.abort().catch(() => {});
      await Promise.race([settled, new Promise((r) => setTimeout(r, 2_000))]);
    } else {
      await run.close();
    }
  } finally {
    signal.removeEventListener('abort', onOuterAbort);
    if (!trialAbort.signal.aborted) trialAbort.abort(new Error('trial over'));
  }
  try {
    const counted = server.acceptedLog('acct-1');
    const refused = server.refusedLog();
    const stats = server.stats();
    const dayOf = (t: number): number => Math.floor((t - (dailyWindow?.phaseMs ?? 0)) / DAY_MS);
    const dailyRefused = refused.filter((r) => r.type === 'daily');
    const perDay = new Map<number, number>();
    for (const r of dailyRefused) perDay.set(dayOf(r.at), (perDay.get(dayOf(r.at)) ?? 0) + 1);
    let held = 0;
    const heldSamples: [number, number, number][] = [];
    // Days the quota ran out in: a daily 429 came, or the day's submissions took its quota (with polls counted
    // daily, half of it: each job needs a poll too).
    const spentDays = new Set(dailyRefused.map((r) => dayOf(r.at)));
    if (dailyWindow) {
      const perDaySubmissions = new Map<number, number>();
      for (const j of server.jobs.list()) perDaySubmissions.set(dayOf(j.createdAt), (perDaySubmissions.get(dayOf(j.createdAt)) ?? 0) + 1);
      const fills = v.daily === 'polls' ? dailyWindow.limit / 2 : dailyWindow.limit;
      for (const [day, n] of perDaySubmissions) if (n >= fills) spentDays.add(day);
    }
    if (dailyWindow) {
      for (let i = 0; i < jobs; i++) {
        const job = ids[i] === undefined ? undefined : server.jobs.get(ids[i] as string);
        if (!job || job.finishedAt === undefined) continue;
        const dayEnd = dailyWindow.phaseMs + (dayOf(job.finishedAt) + 1) * DAY_MS;
        const known = Number.isNaN(completedAt[i] as number) ? Infinity : (completedAt[i] as number);
        // Held by the day, not by the minute budget: the last window of its day still had room for a poll.
        const roomAtDayEnd = counted.filter((t) => t >= dayEnd - WINDOW_MS && t < dayEnd).length < LIMIT;
        if (job.finishedAt <= dayEnd - WINDOW_MS && known >= dayEnd && roomAtDayEnd && spentDays.has(dayOf(job.finishedAt))) {
          held++;
          if (heldSamples.length < 5) heldSamples.push([job.finishedAt - start, dayEnd - start, known - start]);
        }
      }
    }
    const requests = Object.entries(stats.byRoute)
      .filter(([route]) => route !== 'GET /storage' && route !== 'unmatched')
      .reduce((sum, [, n]) => sum + n, 0);
    const done = completedAt.filter((t) => !Number.isNaN(t));
    const makespanMs = cutOff || failed > 0 || done.length === 0 ? Infinity : Math.max(...done) - start;
    if (firstFailures.length > 0) process.stderr.write(`  ${v.key} ${c.key} failures: ${firstFailures.join('; ')}\n`);
    return {
      variant: v,
      contender: c.key,
      phase,
      ratio: makespanMs / ideal.makespanMs,
      makespanMs,
      idealMs: ideal.makespanMs,
      total429: refused.length,
      after429: refused.filter((r) => r.at >= start + WINDOW_MS).length,
      daily429: dailyRefused.length,
      maxDaily429PerDay: Math.max(0, ...perDay.values()),
      unusedPer1000: dailyWindow ? Number.NaN : unusedPer1000(unusedCapacity({ ...minuteWindow, counted }), counted.length),
      requestsPerJob: requests / jobs,
      heldToNextDay: held,
      pollsRefusedDaily: dailyRefused.filter((r) => r.route === 'GET /request-status').length,
      failed,
      cutOff,
      trace: { start, counted, refused, ideal: [...ideal.submitted, ...ideal.polled].sort((a, b) => a - b), heldSamples, lastSubmitAt: Math.max(0, ...server.jobs.list().map((j) => j.createdAt)) - start },
    };
  } finally {
    await server.close();
  }
}

interface Summary {
  variant: Variant;
  contender: JobContender;
  trials: Trial[];
  ratio: number;
  unused: number;
  after429: number;
  maxDaily429PerDay: number;
  held: number;
  pollsRefusedDaily: number;
  requestsPerJob: number;
}

function summarize(variant: Variant, contender: JobContender, trials: Trial[]): Summary {
  return {
    variant,
    contender,
    trials,
    ratio: median(trials.map((t) => t.ratio)),
    unused: median(trials.map((t) => t.unusedPer1000)),
    after429: median(trials.map((t) => t.after429)),
    // Absolute claims hold in every phase: the worst is reported.
    maxDaily429PerDay: max(trials.map((t) => t.maxDaily429PerDay)),
    held: max(trials.map((t) => t.heldToNextDay)),
    pollsRefusedDaily: max(trials.map((t) => t.pollsRefusedDaily)),
    requestsPerJob: median(trials.map((t) => t.requestsPerJob)),
  };
}

/** Ours against the targets of its variant: the failed ones, in words (empty: PASS). */
function misses(s: Summary): string[] {
  const out: string[] = [];
  if (s.variant.daily === undefined) {
    if (!(s.ratio <= TARGET_RATIO)) out.push(`ratio ${fmt(s.ratio, 3)} > ${TARGET_RATIO}`);
    if (!(s.unused <= TARGET_UNUSED)) out.push(`unused ${fmt(s.unused, 1)} > ${TARGET_UNUSED}/1000`);
    if (!(s.after429 === 0)) out.push(`${fmt(s.after429, 0)} 429s after the first window`);
  } else {
    if (!(s.ratio <= TARGET_RATIO_DAILY)) out.push(`ratio ${fmt(s.ratio, 3)} > ${TARGET_RATIO_DAILY}`);
    if (s.variant.daily === 'submissions' && s.maxDaily429PerDay > 1) out.push(`${s.maxDaily429PerDay} daily 429s in one day`);
    if (s.held > 0) out.push(`${s.held} results held to the next day`);
  }
  return out;
}

function targetText(v: Variant): string {
  if (v.daily === undefined) return `≤ ${TARGET_RATIO} × ideal, unused ≤ ${TARGET_UNUSED}/1000, 0 429s after the first window`;
  if (v.daily === 'submissions') return `≤ ${TARGET_RATIO_DAILY} × ideal, ≤ 1 daily 429 per day, no result held to the next day`;
  return `≤ ${TARGET_RATIO_DAILY} × ideal, no job left unpollable (no result held to the next day)`;
}

async function run(ctx: ScenarioContext): Promise<ScenarioResult> {
  const jobs = ctx.quick ? QUICK_JOBS : JOBS;
  const phases = ctx.quick ? QUICK_PHASES : PHASES;
  const variants = selected(ctx.flags, 'variant', VARIANT_KEYS).map((k) => VARIANTS[k]);
  const contenderKeys = selected(
    ctx.flags,
    'contender',
    JOB_CONTENDERS.map((c) => c.key),
  );
  const contenders = JOB_CONTENDERS.filter((c) => contenderKeys.includes(c.key));
  const summaries: Summary[] = [];
  for (const v of variants) {
    for (const c of contenders) {
      const trials: Trial[] = [];
      for (const [index, phase] of phases.entries()) {
        if (ctx.signal.aborted) throw new Error('interrupted');
        const t = await runTrial(v, c, jobs, phase, 101 + index, ctx.signal);
        ctx.log(
          `${v.key} / ${c.key} / phase ${phase}: ${fmt(t.ratio, 3)} × ideal (${fmt(t.makespanMs, 0)} / ${fmt(t.idealMs, 0)} ms), ` +
            `429s ${t.total429} (${t.after429} after the first window, ${t.daily429} daily, ≤ ${t.maxDaily429PerDay}/day), ` +
            `unused ${fmt(t.unusedPer1000, 1)}/1000, ${fmt(t.requestsPerJob, 2)} requests/job, held to next day ${t.heldToNextDay}, ` +
            `polls refused daily ${t.pollsRefusedDaily}${t.failed > 0 ? `, ${t.failed} failed` : ''}${t.cutOff ? ', CUT OFF' : ''}`,
        );
        trials.push(t);
      }
      summaries.push(summarize(v, c, trials));
    }
  }

  const notes: string[] = [];
  let targetsMet = true;
  const rows = summaries.map((s) => {
    const isOurs = s.contender.key === 'ours';
    const missed = isOurs ? misses(s) : [];
    if (isOurs && missed.length > 0) {
      targetsMet = false;
      notes.push(`MISS ${s.variant.title}: ${missed.join(', ')}`);
    }
    return [
      s.variant.title,
      s.contender.name,
      fmt(s.ratio, 3),
      s.variant.daily === undefined ? fmt(s.unused, 1) : '–',
      fmt(s.after429, 0),
      s.variant.daily === undefined ? '–' : String(s.maxDaily429PerDay),
      s.variant.daily === undefined ? '–' : String(s.held),
      s.variant.daily === 'polls' ? String(s.pollsRefusedDaily) : '–',
      fmt(s.requestsPerJob, 2),
      isOurs ? (missed.length === 0 ? 'PASS' : `FAIL (${missed.join('; ')})`) : '',
    ];
  });
  for (const s of summaries.filter((x) => x.contender.key === 'ours')) {
    for (const t of s.trials) {
      const limit = s.variant.daily === undefined ? TARGET_RATIO : TARGET_RATIO_DAILY;
      if (!(t.ratio <= limit) || (s.variant.daily === undefined && t.after429 > 0)) {
        notes.push(`single phase over a target: ${s.variant.title}, phase ${t.phase}: ${fmt(t.ratio, 3)} × ideal, ${t.after429} 429s after the first window`);
      }
    }
  }
  const table: Table = {
    title: `Jobs: ${jobs} jobs (submit, then poll), ${LIMIT} requests per ${WINDOW_MS} ms window, median over ${phases.length} phases (ours told no limit; Bottleneck and p-queue told the limits)`,
    columns: [
      'variant',
      'contender',
      'makespan / ideal',
      'unused / 1000',
      '429s after 1st window',
      'daily 429s per day (max)',
      'results held to next day (max)',
      'polls refused daily (max)',
      'requests / job',
      'target (ours)',
    ],
    rows,
    align: ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'left'],
  };
  const perPhase: Table = {
    title: 'Per phase: makespan / ideal · 429s after the first window · requests / job',
    columns: ['variant', 'contender', ...phases.map((p) => `phase ${p}`)],
    rows: summaries.map((s) => [
      s.variant.title,
      s.contender.name,
      ...s.trials.map((t) => `${t.cutOff ? 'cut off' : fmt(t.ratio, 3)} · ${t.after429} · ${fmt(t.requestsPerJob, 2)}`),
    ]),
  };
  const given = { windowMs: WINDOW_MS, limit: LIMIT, maxConcurrent: MAX_CONCURRENT, firstPollMs: Math.round((MIN_DURATION + MAX_DURATION) / 2), pollEveryMs: Math.round(0.1 * WINDOW_MS) };
  const contenderLines = contenders.map(
    (c) =>
      `- ${c.name}: ${c.given({ ...given, dayMs: undefined, dailyLimit: undefined, pollsDaily: false })}` +
      (c.key === 'ours' ? '' : ` With a daily quota: ${c.given({ ...given, dayMs: DAY_MS, dailyLimit: jobs / 2, pollsDaily: false })}`),
  );
  const markdown = [
    ctx.quick ? `> **Quick run** (\`--quick\`): ${jobs} jobs, ${phases.length} phases. Not a valid result.\n` : '',
    "Issue 11's job-level benchmark: each job is a `txt2img` submission, then status polls until `done`, against the fake",
    'ModelBeam server over real HTTP (in this process), in compressed time. Ours is told no limit; Bottleneck and p-queue are',
    'told the limits. Targets for ours:',
    '',
    ...variants.map((v) => `- ${v.title}: ${targetText(v)}.`),
    '',
    '### Results',
    '',
    formatMarkdown(table),
    '',
    ...notes.map((n) => `- ${n}`),
    '',
    '<details><summary>Per phase</summary>',
    '',
    formatMarkdown(perPhase),
    '',
    '</details>',
    '',
    '### Set-up',
    '',
    `- **Compressed time.** A "minute" window is W = ${WINDOW_MS} ms with a limit of ${LIMIT} (120 a second); a "day" is ${DAY_MS} ms (${DAY_MS / WINDOW_MS} windows).`,
    '  The client runs in the same time (`server.clientOptions()` gives it the windows as its `timeScale`).',
    `- **Jobs.** ${jobs} \`txt2img\` jobs, all handed over at the start. Job i takes ${MIN_DURATION}–${MAX_DURATION} ms (15–75 % of W, uniform, drawn from the`,
    '  trial\'s seed; the same for every contender), from its creation to `done`. Each job needs one submission and at least one poll.',
    `- **Latency.** The server delays each request by a uniform 0–${LATENCY_MS / 2} ms before it counts it and each answer by another`,
    `  0–${LATENCY_MS / 2} ms (\`latencyMs: ${LATENCY_MS}\`): a round trip of up to 1.5 % of W, on top of loopback.`,
    '- **Variants.** 1–3: the minute window fixed, first-hit or sliding; submissions and polls both count in it; no daily',
    `  quota. 4: a fixed minute window and a daily quota of ${jobs / 2} (half the jobs) that counts submissions only`,
    `  (\`countPolls: 'minute'\`). 5: the same with polls counted daily too, a quota of ${jobs} (a submission and one poll for`,
    '  half the jobs).',
    `- **Phases.** The minute boundary falls at ${phases.join(', ')} of a window after the start and the daily boundary at the same`,
    '  share of a day; first-hit and sliding windows have no phase, their runs are repetitions. Each phase has its own seed (job',
    '  durations). 429s carry `retry-after-ms`.',
    `- **Warm-up.** Before each trial the contender runs ${WARM_JOBS} jobs against a throwaway server without limits, so that neither its`,
    '  code nor the server\'s is compiled on the clock (a cold first request takes a fifth of a window here). The static contenders',
    '  also open their connections beforehand; the client opens its own on demand.',
    '',
    '### How the figures are computed',
    '',
    '- **Ideal** (`bench/lib/job-ideal.ts`): a clairvoyant client that knows the limits and every job\'s duration. Each submission',
    '  (all ready at the start, in job order) and each job\'s one poll (ready when the server has finished the job) is accepted',
    '  at the earliest moment the server\'s own windows accept it (the fake server\'s rules, as `bench/lib/ideal.ts`); a',
    '  submission goes before a ready poll; with a daily quota that counts polls, a submission goes only while the day has',
    '  room for it, its poll and the polls of the jobs in flight. Round trips are not counted. The ideal makespan runs from the',
    '  start to the last poll\'s acceptance.',
    '- **Makespan**: from the start until the contender has the last job\'s result; ÷ the ideal. A run that fails a job or',
    '  reaches its cap (4 × ideal + 5 s) is "cut off" (∞).',
    '- **Unused / 1000**: units the minute window would have accepted between the first and the last counted request that went',
    '  unused, on the server\'s own windows (`bench/lib/unused.ts`), per 1,000 counted requests. Not shown with a daily quota',
    '  (the minute windows rest by design while the day is spent).',
    '- **429s after the first window**: 429s (server log) of requests the server saw at least W after the start.',
    '- **Daily 429s per day**: the most daily 429s in one server day, over all phases.',
    '- **Results held to the next day**: jobs that finished at least W before their server day ended and whose result the',
    '  contender had only after that day ended, although the server counted fewer than the minute limit in the last W of',
    '  that day (so a poll would have been accepted: the day held the result, not the minute budget), in a day whose quota ran',
    '  out (a daily 429 came, or that day\'s submissions took the quota; with polls counted daily, half of it); the most over',
    '  all phases. With polls counted daily, a job left unpollable',
    '  shows here (and in **polls refused daily**).',
    '- **Requests / job**: every API request the server received (429s included) ÷ jobs.',
    '- Targets for ours: makespan and unused on the median over phases; 429s after the first window on the median;',
    '  daily 429s per day and results held on the worst phase.',
    '',
    '### What each contender was given',
    '',
    ...contenderLines,
  ].join('\n');
  return {
    tables: [table, perPhase],
    charts: [],
    section: { id: 'jobs', title: 'Jobs: submit, then poll (issue 11)', markdown },
    targetsMet,
    notes,
  };
}

export const scenario: Scenario = {
  name: 'jobs',
  description: 'job-level runs (submit, then poll) through the ModelBeam client vs Bottleneck and p-queue: fixed, first-hit and sliding windows, daily quotas',
  run,
};

