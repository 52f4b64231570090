/**
 * One variant of the `jobs` benchmark, ours only, traced: per server day, the
 * client's submissions, polls (done or not), 429s and daily-exhaustion events;
 * the held samples ([finished, day end, known] after the start); the server's
 * refusals. For finding why a result was held to the next day.
 *
 *     npx tsx bench/tools/jobs-trace.ts daily-polls 0.9,0.1 [jobs]
 *
 * FROM=a,b also lists every event between a and b ms after the start (and every
 * poll that found its job unfinished); BINS=a,b,w counts submissions / polls /
 * server-counted requests per w ms from a to b. Phases use the bench's seeds.
 */
import { clientJobRun, oursJobs, type JobContender } from '../lib/job-contenders.js';
import { runTrial, VARIANTS } from '../scenarios/jobs.js';
import { ModelBeamClient } from '../../src/modelbeam/index.js';

const PHASES = [0.1, 0.3, 0.5, 0.7, 0.9];
const DAY_MS = 4000;
const key = (process.argv[2] ?? 'daily-polls') as keyof typeof VARIANTS;
const phases = (process.argv[3] ?? '0.9').split(',').map(Number);
const jobs = Number(process.argv[4] ?? 320);
const variant = VARIANTS[key];
if (!variant) throw new Error(`unknown variant ${key}; one of ${Object.keys(VARIANTS).join(', ')}`);

interface Ev {
  at: number;
  kind: string;
  id?: string;
  info?: string;
}
let log: Ev[] = [];
const traced: JobContender = {
  ...oursJobs,
  start(setup) {
    const client = new ModelBeamClient(setup.server.clientOptions());
    // The warm-up run has no day: only the trial is traced.
    if (setup.dayMs !== undefined) {
      client.on('submitted', (e) => log.push({ at: Date.now(), kind: 'submit', id: e.requestId }));
      client.on('polled', (e) => log.push({ at: Date.now(), kind: e.status === 'done' ? 'poll-done' : 'poll-miss', id: e.requestId, info: `polls=${e.polls} next=${e.nextPollInMs}` }));
      client.on('pollFailed', (e) => log.push({ at: Date.now(), kind: 'poll-failed', id: e.requestId, info: String((e.error as Error | undefined)?.name) }));
      client.scheduler.on('rateLimited', (e) => log.push({ at: Date.now(), kind: 'rateLimited', info: `${e.window} wait=${e.waitMs}` }));
      client.scheduler.on('dailyQuotaExhausted', (e) => log.push({ at: Date.now(), kind: 'dailyExhausted', info: `reset=${e.resetAt}` }));
    }
    return clientJobRun(client, setup);
  },
};

for (const phase of phases) {
  log = [];
  const seed = 101 + Math.max(0, PHASES.indexOf(phase));
  const t = await runTrial(variant, traced, jobs, phase, seed, new AbortController().signal);
  const start = t.trace.start;
  const dayPhase = start + phase * DAY_MS;
  const dayOf = (x: number): number => Math.floor((x - dayPhase) / DAY_MS);
  const refused = t.trace.refused.map((r) => `${r.at - start} ${r.type} ${r.route}`);
  console.log(`phase ${phase} (seed ${seed}): ${t.ratio.toFixed(3)} × ideal (${t.makespanMs} / ${t.idealMs} ms), held ${t.heldToNextDay}, refused [${refused.join('; ')}]`);
  console.log(`  days end at ${[0, 1, 2, 3].map((k) => dayPhase + k * DAY_MS - start).join(', ')} ms; last submission at ${t.trace.lastSubmitAt} ms`);
  const perDay = new Map<number, Record<string, number>>();
  for (const e of log) {
    const counts = perDay.get(dayOf(e.at)) ?? {};
    counts[e.kind] = (counts[e.kind] ?? 0) + 1;
    perDay.set(dayOf(e.at), counts);
  }
  for (const [day, counts] of [...perDay].sort((a, b) => a[0] - b[0])) console.log(`  day ${day}: ${JSON.stringify(counts)}`);
  console.log(`  held samples [finished, day end, known]: ${JSON.stringify(t.trace.heldSamples)}`);
  const from = process.env['FROM']?.split(',').map(Number);
  if (from) {
    for (const e of log) {
      const at = e.at - start;
      if ((at >= (from[0] ?? 0) && at <= (from[1] ?? Infinity)) || e.kind === 'poll-miss') console.log(`    ${at} ${e.kind} ${e.id ?? ''} ${e.info ?? ''}`);
    }
  }
  const bins = process.env['BINS']?.split(',').map(Number);
  if (bins) {
    const [a = 0, b = 0, w = 100] = bins;
    const line: string[] = [];
    for (let x = a; x < b; x += w) {
      const inBin = (at: number): boolean => at - start >= x && at - start < x + w;
      const ev = log.filter((e) => inBin(e.at));
      line.push(`${x}:${ev.filter((e) => e.kind === 'submit').length}s/${ev.filter((e) => e.kind.startsWith('poll-')).length}p/${t.trace.counted.filter(inBin).length}c`);
    }
    console.log(`  per ${w} ms (submissions/polls/counted): ${line.join(' ')}`);
  }
}
process.exit(0);
