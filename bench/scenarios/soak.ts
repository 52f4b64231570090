/**
 * `soak` (issue 7): continuous batch traffic through one `ModelBeamClient`
 * (webhooks on) against the fake ModelBeam server with faults on, for a long
 * run of compressed time, sampling this process's memory every second.
 *
 * "10 minutes in compressed time", as measured here: 10 minutes of wall time
 * with a 1-second rate-limit "minute", i.e. 600 rate-limit windows, the
 * traffic of 10 hours at the real minute (`--quick`: 1 minute, 60 windows;
 * `--soak-seconds=N` for any other length). The fake server runs in a child
 * process, so its job store (which keeps every job) is not in the heap
 * measured.
 *
 * Figures: the least-squares slope of the live heap (sampled right after a
 * full GC, so that the slope is not garbage waiting to be collected) and of
 * the RSS, in bytes per minute, over the run after a warm-up, and whether it
 * is flat; then, after `close()`, the listener counts of the client and its
 * scheduler and the process's active handles and timers
 * (`process.getActiveResourcesInfo()`), against a baseline taken before the
 * client existed.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { runBatch, type Batch } from '../../src/batch/run-batch.js';
import type { BatchSummary } from '../../src/batch/types.js';
import { ModelBeamClient } from '../../src/modelbeam/client.js';
import { ServerProcess } from '../lib/server-process.js';
import { fmt, slope } from '../lib/stats.js';
import { formatMarkdown } from '../lib/table.js';
import type { Chart, Scenario, ScenarioContext, ScenarioResult, Table } from '../lib/types.js';
import { readParts, reliabilityMarkdown, RELIABILITY_SECTION, saveParts } from './fault-matrix.js';

/** Fewer than two samples (or all at one time) show no trend. */
const slopeOrZero = (points: ReadonlyArray<readonly [number, number]>): number => {
  const s = slope(points);
  return Number.isNaN(s) ? 0 : s;
};

const WINDOW_MS = 1000;
const LIMIT = 300;
const BATCH_ITEMS = 400;
const SECRET = 'whsec_soak';
const MiB = 1024 * 1024;
/** Jobs after which the client's bounded memories (10,000 finished jobs, 10,000 delivery ids) are surely full. */
const FILLED_AFTER_JOBS = 12_000;

interface Sample {
  /** Seconds since the start of the traffic. */
  t: number;
  heapAfterGc: number;
  heapUsed: number;
  rss: number;
  external: number;
  listeners: number;
  /** Jobs the client has seen finish so far. */
  finished: number;
  resources: Record<string, number>;
}

/** A `gc()` function: `--expose-gc` switched on at run time (the bench runs under plain `tsx`). */
function gcFunction(): () => void {
  const existing = (globalThis as { gc?: () => void }).gc;
  if (typeof existing === 'function') return existing;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/** Counts of `process.getActiveResourcesInfo()` by type. */
function resources(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) out[r] = (out[r] ?? 0) + 1;
  return out;
}

function seconds(flags: ReadonlySet<string>, quick: boolean): number {
  for (const f of flags) {
    const m = /^--soak-seconds=(\d+)$/.exec(f);
    if (m?.[1]) return Number(m[1]);
  }
  return quick ? 60 : 600;
}

const sum = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0);

const settle = async (ms: number): Promise<void> => {
  await new Promise((r) => setTimeout(r, ms));
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

export const scenario: Scenario = {
  name: 'soak',
  description: 'issue 7: 10 min (600 one-second "minutes") of batches with faults and webhooks; heap/RSS slope; nothing left after close()',
  async run(ctx: ScenarioContext): Promise<ScenarioResult> {
    const durationS = seconds(ctx.flags, ctx.quick);
    const gc = gcFunction();
    const dir = mkdtempSync(join(tmpdir(), 'soak-'));
    const server = await ServerProcess.spawn();
    const samples: Sample[] = [];
    let client: ModelBeamClient | undefined;
    let sampler: NodeJS.Timeout | undefined;
    const totals = { batches: 0, items: 0, done: 0, failed: 0, possibleDuplicates: 0, resubmissions: 0, stops: 0, pending: 0 };
    let baseline: Record<string, number> = {};
    let afterClose: Record<string, number> = {};
    let listenersAfter = { client: -1, scheduler: -1 };
    let listenersMax = 0;
    let clientStats: ReturnType<ModelBeamClient['stats']> | undefined;
    try {
      const { baseUrl } = await server.startServer({
        seed: 7,
        limits: { minute: { limit: LIMIT, windowMs: WINDOW_MS } },
        jobs: { pendingMs: 10, processingMs: 60, jitter: 0.5, failureRate: 0.05, failureCodes: ['WORKER_TIMEOUT', 'AGE_RESTRICTED'] },
        headers: { missingRate: 0.1 },
        faults: { error5xxRate: 0.03, error5xxStatuses: [500, 502, 503, 504], resetRate: 0.02, acceptThenResetRate: 0.03, slowRate: 0.03, slowMs: 200, malformedJsonRate: 0.02 },
        webhook: { secret: SECRET, duplicateRate: 0.05, retryBaseMs: 100 },
      });
      gc();
      await settle(200);
      baseline = resources();

      client = new ModelBeamClient({
        apiKey: 'test-key',
        baseUrl,
        // The one time setting: the server's minute is WINDOW_MS long; tighter retries and polling than its defaults.
        scheduler: { timeScale: WINDOW_MS / 60_000, retry: { maxAttempts: 6, baseDelayMs: 20, maxDelayMs: 250 } },
        polling: { minIntervalMs: 20, maxIntervalMs: 1000, initialEstimateMs: 80 },
        webhook: { url: 'http://127.0.0.1:9/replaced-below', secret: SECRET },
        jobRetryDelayMs: 0,
      });
      const wh = await client.startWebhookServer({ port: 0 });
      client.setWebhookUrl(wh.url);
      const c = client;

      const started = Date.now();
      const deadline = started + durationS * 1000;
      sampler = setInterval(() => {
        const raw = process.memoryUsage();
        gc();
        const after = process.memoryUsage();
        const res = resources();
        const listeners = c.listenerCount() + c.scheduler.listenerCount();
        listenersMax = Math.max(listenersMax, listeners);
        const st = c.stats();
        samples.push({
          t: (Date.now() - started) / 1000,
          heapAfterGc: after.heapUsed,
          heapUsed: raw.heapUsed,
          rss: after.rss,
          external: after.external,
          listeners,
          finished: st.completed + st.failed,
          resources: res,
        });
      }, 1000);

      let n = 0;
      let current: Batch | undefined;
      const onAbort = (): void => void current?.stop({ graceMs: 2000 });
      ctx.signal.addEventListener('abort', onAbort);
      const stopAtDeadline = setTimeout(() => void current?.stop({ graceMs: 2000, message: 'soak deadline' }), Math.max(0, deadline - Date.now()));
      try {
        while (Date.now() < deadline && !ctx.signal.aborted) {
          const b = n++;
          const out = join(dir, `batch-${b}.jsonl`);
          const items = Array.from({ length: BATCH_ITEMS }, (_, i) => ({ id: `b${b}-${i}`, prompt: `soak batch ${b} item ${i}`, model: 'Flux1schnell', width: 512, height: 512, steps: 4 }));
          current = runBatch(c, items, { out, endpoint: 'txt2img', maxInFlight: 64, graceMs: 2000, fsyncIntervalMs: 5000 });
          let summary: BatchSummary = await current.summary;
          // Leave nothing pending: resume the batch (a run of transient failures stops it, resumable) unless time is up.
          while (!summary.complete && Date.now() < deadline && !ctx.signal.aborted) {
            current = runBatch(c, items, { out, endpoint: 'txt2img', maxInFlight: 64, graceMs: 2000, fsyncIntervalMs: 5000 });
            summary = await current.summary;
            totals.stops++;
          }
          current = undefined;
          totals.batches++;
          totals.items += BATCH_ITEMS;
          totals.done += summary.totals.done;
          totals.failed += summary.totals.failed;
          totals.possibleDuplicates += summary.possibleDuplicates;
          totals.resubmissions += summary.resubmissions;
          totals.pending += summary.pending;
          rmSync(out, { force: true });
          rmSync(`${out}.errors.jsonl`, { force: true });
          if (b % 10 === 0) {
            const last = samples.at(-1);
            ctx.log(`soak: ${Math.round((Date.now() - started) / 1000)} s, ${totals.batches} batches, ${totals.done} done; heap ${last ? fmt(last.heapAfterGc / MiB, 1) : '?'} MiB, rss ${last ? fmt(last.rss / MiB, 1) : '?'} MiB`);
          }
        }
      } finally {
        clearTimeout(stopAtDeadline);
        ctx.signal.removeEventListener('abort', onAbort);
      }
      clearInterval(sampler);
      sampler = undefined;
      clientStats = c.stats();
      await wh.close();
      await c.close();
      listenersAfter = { client: c.listenerCount(), scheduler: c.scheduler.listenerCount() };
      client = undefined;
      gc();
      await settle(500);
      afterClose = resources();
    } finally {
      if (sampler) clearInterval(sampler);
      await client?.close().catch(() => {});
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
    if (ctx.signal.aborted) throw new Error('interrupted');

    // The raw samples, for a closer look (bench/.work is not committed).
    writeFileSync(join(ctx.workDir, `soak-samples${ctx.quick ? '-quick' : ''}.json`), JSON.stringify({ durationS, baseline, afterClose, listenersAfter, totals, samples }));

    // ------------------------------------------------------------------ figures
    // The client keeps bounded memories that fill first, by design: the last 10,000 finished jobs, and 10,000
    // webhook delivery ids and (request, event) pairs for dedupe. The warm-up lasts until they are full
    // (12,000 jobs finished), and at least a fifth of the run.
    const filledAt = samples.find((s) => s.finished >= FILLED_AFTER_JOBS)?.t;
    const warmupS = Math.round(Math.max(durationS * 0.2, filledAt ?? durationS * 0.5));
    const steady = samples.filter((s) => s.t >= warmupS);
    const lastThird = samples.filter((s) => s.t >= (durationS * 2) / 3);
    const perMin = (pick: (s: Sample) => number, set: readonly Sample[]): number => slopeOrZero(set.map((s) => [s.t / 60, pick(s)]));
    const mean = (pick: (s: Sample) => number, set: readonly Sample[]): number => set.reduce((a, s) => a + pick(s), 0) / Math.max(1, set.length);
    const spanMin = steady.length > 1 ? ((steady.at(-1) as Sample).t - (steady[0] as Sample).t) / 60 : 0;
    const heapSlope = perMin((s) => s.heapAfterGc, steady);
    const rssSlope = perMin((s) => s.rss, steady);
    const heapMean = mean((s) => s.heapAfterGc, steady);
    const rssMean = mean((s) => s.rss, steady);
    // Flat: a leak grows all along; a plateau (a bounded memory filling, the allocator growing its arenas in steps)
    // stops. So: the slope over the run's last third, carried over ten minutes, moves the mean by less than 2 %, and
    // the trend after the warm-up, carried over the span measured, by less than 5 %.
    const heapGrowth = heapSlope * spanMin;
    const rssGrowth = rssSlope * spanMin;
    const heapLate = perMin((s) => s.heapAfterGc, lastThird);
    const rssLate = perMin((s) => s.rss, lastThird);
    const heapFlat = heapLate * 10 < 0.02 * heapMean && heapGrowth < 0.05 * heapMean;
    const rssFlat = rssLate * 10 < 0.02 * rssMean && rssGrowth < 0.05 * rssMean;
    const during: Record<string, number> = {};
    for (const s of samples) for (const [t, n] of Object.entries(s.resources)) during[t] = Math.max(during[t] ?? 0, n);
    const types = [...new Set([...Object.keys(baseline), ...Object.keys(afterClose), ...Object.keys(during)])].sort();
    const leftOver = types.filter((t) => (afterClose[t] ?? 0) > (baseline[t] ?? 0));
    const listenersZero = listenersAfter.client === 0 && listenersAfter.scheduler === 0;
    const nothingLeft = leftOver.length === 0 && listenersZero;

    const run: Table = {
      title: `Soak: ${durationS} s of wall time, a ${WINDOW_MS} ms "minute" (${Math.round((durationS * 1000) / WINDOW_MS)} windows), ${LIMIT} requests per window`,
      columns: ['batches', 'items', 'done', 'failed', 'flagged dup.', 'resumed runs', 'requests', '429s', 'webhooks accepted', 'polls / job'],
      align: ['right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
      rows: [[totals.batches, totals.items, totals.done, totals.failed, totals.possibleDuplicates, totals.stops, clientStats?.requests.total ?? 0, clientStats?.['429s'] ?? 0, clientStats?.webhooksAccepted ?? 0, fmt(clientStats?.pollsPerJob ?? 0, 2)]],
    };
    const memory: Table = {
      title: `Memory after a ${warmupS} s warm-up (least squares over ${steady.length} one-second samples)`,
      columns: ['series', 'first (MiB)', 'last (MiB)', 'mean (MiB)', 'slope (KiB/min)', 'slope, last third (KiB/min)', 'trend over the run (MiB)', 'flat'],
      align: ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'left'],
      rows: [
        ['live heap (after a full GC)', fmt((steady[0]?.heapAfterGc ?? 0) / MiB, 1), fmt((steady.at(-1)?.heapAfterGc ?? 0) / MiB, 1), fmt(heapMean / MiB, 1), fmt(heapSlope / 1024, 1), fmt(heapLate / 1024, 1), fmt(heapGrowth / MiB, 2), heapFlat ? 'yes' : 'NO'],
        ['RSS', fmt((steady[0]?.rss ?? 0) / MiB, 1), fmt((steady.at(-1)?.rss ?? 0) / MiB, 1), fmt(rssMean / MiB, 1), fmt(rssSlope / 1024, 1), fmt(rssLate / 1024, 1), fmt(rssGrowth / MiB, 2), rssFlat ? 'yes' : 'NO'],
        ['heap in use (before GC)', fmt((steady[0]?.heapUsed ?? 0) / MiB, 1), fmt((steady.at(-1)?.heapUsed ?? 0) / MiB, 1), fmt(mean((s) => s.heapUsed, steady) / MiB, 1), fmt(perMin((s) => s.heapUsed, steady) / 1024, 1), fmt(perMin((s) => s.heapUsed, lastThird) / 1024, 1), '', ''],
      ],
    };
    const after: Table = {
      title: 'After close(): listeners and active resources (process.getActiveResourcesInfo()), against the baseline taken before the client was created',
      columns: ['what', 'baseline', 'during the run (max)', 'after close()'],
      align: ['left', 'right', 'right', 'right'],
      rows: [
        ['listeners on the client + its scheduler', 0, listenersMax, listenersAfter.client + listenersAfter.scheduler],
        ...types.map((t): (string | number)[] => [t === 'Timeout' ? 'Timeout (timers)' : t, baseline[t] ?? 0, during[t] ?? 0, afterClose[t] ?? 0]),
        ['all handles and requests', sum(baseline), Math.max(...samples.map((s) => sum(s.resources))), sum(afterClose)],
      ],
    };
    const chart: Chart = {
      file: 'soak-memory.svg',
      title: 'Soak: memory over time',
      subtitle: `${durationS} s of batches (${totals.done.toLocaleString('en-US')} jobs) with faults and webhooks; live heap sampled after a full GC each second. Slopes after the ${warmupS} s warm-up: heap ${fmt(heapSlope / 1024, 1)} KiB/min, RSS ${fmt(rssSlope / 1024, 1)} KiB/min.`,
      xLabel: 'seconds',
      yLabel: 'MiB',
      yFromZero: true,
      series: [
        { name: 'RSS', points: samples.map((s) => [s.t, s.rss / MiB]), step: false },
        { name: 'heap in use (before GC)', points: samples.map((s) => [s.t, s.heapUsed / MiB]), step: false, dash: 'dotted', width: 1 },
        { name: 'live heap (after GC)', points: samples.map((s) => [s.t, s.heapAfterGc / MiB]), step: false },
      ],
      markers: [{ x: warmupS, label: 'warm-up ends' }],
    };

    const targetsMet = heapFlat && rssFlat && nothingLeft;
    const minutes = durationS / 60;
    const markdown = `### Soak

${minutes >= 1 ? `${fmt(minutes, minutes % 1 === 0 ? 0 : 1)} minute${minutes === 1 ? '' : 's'}` : `${durationS} s`} of wall time with a ${WINDOW_MS / 1000} s rate-limit "minute": ${Math.round((durationS * 1000) / WINDOW_MS)} windows, the traffic of
${fmt((durationS * 1000) / WINDOW_MS / 60, ((durationS * 1000) / WINDOW_MS) % 60 === 0 ? 0 : 1)} hours at the real minute. One \`ModelBeamClient\` (webhooks on, its own receiver) runs batches of ${BATCH_ITEMS} items
back to back through \`runBatch\` against the fake server (a child process, so that its job store is not in the heap
measured) with faults on: 5xx 3 %, resets 2 %, accepted-then-reset 3 % of submissions, slow 3 %, malformed JSON 2 %,
missing headers 10 %, job failures 5 %, duplicated webhook deliveries 5 %. Memory is sampled every second; the live heap
right after a full GC. The client keeps bounded memories that fill first, by design (the last 10,000 finished jobs;
10,000 webhook delivery ids and request-event pairs for dedupe): the warm-up lasts until ${FILLED_AFTER_JOBS.toLocaleString('en-US')} jobs have finished,
and at least a fifth of the run (here ${warmupS} s). Slopes are least squares over the samples after it, and over the
run's last third. A leak grows all along; a plateau (a bounded memory filling, the allocator growing its arenas in
steps, which shows in the RSS) stops. **Flat** means: the last third's slope, carried over ten minutes, moves the mean
by less than 2 %, and the trend after the warm-up, carried over the span measured, by less than 5 %.

${formatMarkdown(run)}

${formatMarkdown(memory)}

Slope of the live heap: **${fmt(heapSlope / 1024, 1)} KiB/min** after the warm-up, **${fmt(heapLate / 1024, 1)} KiB/min** over the last third (${heapFlat ? 'flat' : 'NOT flat'}); RSS: **${fmt(rssSlope / 1024, 1)} KiB/min** and **${fmt(rssLate / 1024, 1)} KiB/min** (${rssFlat ? 'flat' : 'NOT flat'}).

![Soak: memory over time](results/soak-memory.svg)

${formatMarkdown(after)}

After \`close()\`: ${listenersZero ? '**0 listeners** on the client and its scheduler' : `**${listenersAfter.client + listenersAfter.scheduler} listeners left**`}, and ${leftOver.length === 0 ? 'every kind of active resource (timers, sockets, servers) back to its baseline or below' : `**more than the baseline of: ${leftOver.join(', ')}**`}.
`;
    const parts = readParts(ctx);
    parts.soak = { markdown, command: `npx tsx bench/run.ts soak${ctx.quick ? ' --quick' : ''}${[...ctx.flags].filter((f) => f.startsWith('--soak-')).map((f) => ` ${f}`).join('')}`, date: new Date().toISOString() };
    await saveParts(ctx, parts);
    const notes: string[] = [];
    if (!heapFlat) notes.push(`the live heap is not flat: ${fmt(heapGrowth / MiB, 2)} MiB over the run after the warm-up, ${fmt(heapLate / 1024, 1)} KiB/min over the last third (mean ${fmt(heapMean / MiB, 1)} MiB)`);
    if (!rssFlat) notes.push(`the RSS is not flat: ${fmt(rssGrowth / MiB, 2)} MiB over the run after the warm-up, ${fmt(rssLate / 1024, 1)} KiB/min over the last third (mean ${fmt(rssMean / MiB, 1)} MiB)`);
    if (!listenersZero) notes.push(`listeners left after close(): client ${listenersAfter.client}, scheduler ${listenersAfter.scheduler}`);
    if (leftOver.length > 0) notes.push(`resources above the baseline after close(): ${leftOver.map((t) => `${t} ${baseline[t] ?? 0} → ${afterClose[t] ?? 0}`).join(', ')}`);
    return { tables: [run, memory, after], charts: [chart], section: { ...RELIABILITY_SECTION, markdown: reliabilityMarkdown(parts) }, targetsMet, notes };
  },
};
