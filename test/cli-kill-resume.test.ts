/**
 * Crash safety of the results file: the CLI runs as a child process against a fake server in this
 * process, and is killed with SIGKILL at random points, many times, resuming each time. Then every
 * input must have exactly one terminal result, nothing may be lost, and every duplicate job the
 * server holds must belong to an item flagged `possibleDuplicate`.
 */
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startFakeModelBeam, type FakeModelBeamServer } from '../src/testing/fake-server.js';
import { EXIT } from '../src/cli/exit-codes.js';
import { jsonLines, runCli, startCli, terminalRecords, until } from './helpers/cli.js';

const KEY = 'mbk-kill-test-0123456789';
const ITEMS = 2000;
const MIN_KILLS = 20;

let dir: string;
let server: FakeModelBeamServer;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cli-kill-'));
  server = await startFakeModelBeam({
    accounts: { [KEY]: 'acct-kill' },
    // ~400 requests a second: fast, yet slow enough that each life of the process finishes only some items
    // (at 600 a second a client needing fewer requests per item finished 2,000 items in 17 lives).
    limits: { minute: { limit: 400, windowMs: 1000 } },
    jobs: { pendingMs: 5, processingMs: 30, jitter: 0.5 },
    seed: 42,
  });
});
afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A small seeded PRNG (mulberry32), so that a failing run can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function size(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

test(`kill -9 at random points, at least ${MIN_KILLS} times over ${ITEMS} items: every input ends with exactly one terminal result`, async () => {
  const seed = Number(process.env['KILL_TEST_SEED'] ?? Date.now() % 1_000_000);
  const random = prng(seed);
  const input = join(dir, 'in.jsonl');
  const out = join(dir, 'out.jsonl');
  const lines = Array.from({ length: ITEMS }, (_, i) =>
    JSON.stringify({ id: `k${i}`, prompt: `kill test item ${i}`, model: 'Flux1schnell', width: 512, height: 512, steps: 4 }),
  );
  writeFileSync(input, `${lines.join('\n')}\n`);
  const args = ['run', input, '--out', out, '--endpoint', 'txt2img', '--base-url', server.baseUrl, '--minute-ms', '1000', '--progress', 'none', '--log-level', 'warn', '--max-in-flight', '64'];
  const env = { MODELBEAM_API_KEY: KEY };

  const started = Date.now();
  let kills = 0;
  let lives = 0;
  let tornTails = 0;
  let simulatedTorn = 0;
  let finishedEarly = false;
  while (kills < 40 && Date.now() - started < 50_000) {
    const sizeBefore = size(out);
    const run = startCli(args, env);
    lives++;
    let exited = false;
    void run.exited.then(() => {
      exited = true;
    });
    if (random() < 0.3) {
      // Anywhere in the life, startup and the reading of the results file included.
      await new Promise((r) => setTimeout(r, random() * 700));
    } else {
      // Mid-run: once it has written, at a random moment.
      await until(() => exited || size(out) > sizeBefore, 15_000, 2);
      await new Promise((r) => setTimeout(r, random() * 250));
    }
    if (!exited) {
      run.child.kill('SIGKILL');
      kills++;
    }
    const { code, signal } = await run.exited;
    if (signal === null) {
      // It finished before the kill: the batch is done.
      expect(code, run.stderr()).toBe(EXIT.OK);
      finishedEarly = true;
      break;
    }
    const text = existsSync(out) ? readFileSync(out, 'utf8') : ''; // killed before it created the file
    if (text.length > 0 && !text.endsWith('\n')) tornTails++;
    else if (text.length > 0 && lives % 5 === 0) {
      // What a power loss mid-write leaves: half a record, no newline. The next life must shrug it off.
      appendFileSync(out, '{"id":"k1","line":2,"state":"do');
      simulatedTorn++;
    }
    if (kills >= MIN_KILLS && terminalRecords(out).size > ITEMS * 0.6) break;
  }
  expect(kills, `seed ${seed}`).toBeGreaterThanOrEqual(MIN_KILLS);

  // The last life runs to the end.
  let final = { code: null as number | null, stdout: '', stderr: '' };
  if (!finishedEarly) final = await runCli(args, env);
  if (!finishedEarly) expect(final.code, final.stderr).toBe(EXIT.OK);

  // Every input: exactly one terminal record, and it is `done`.
  const terminal = terminalRecords(out);
  expect(terminal.size).toBe(ITEMS);
  for (let i = 0; i < ITEMS; i++) {
    const list = terminal.get(`k${i}`);
    expect(list?.length, `k${i}`).toBe(1);
    expect(list?.[0]?.['state'], `k${i}`).toBe('done');
  }

  // Duplicates: jobs the server created more than once for one item exist only where flagged.
  const jobsByPrompt = new Map<string, number>();
  for (const job of server.jobs.list()) {
    const prompt = String(job.params['prompt']);
    jobsByPrompt.set(prompt, (jobsByPrompt.get(prompt) ?? 0) + 1);
  }
  let actualDuplicates = 0;
  let flagged = 0;
  for (let i = 0; i < ITEMS; i++) {
    const record = terminal.get(`k${i}`)?.[0] ?? {};
    const jobs = jobsByPrompt.get(`kill test item ${i}`) ?? 0;
    expect(jobs, `k${i} has a job`).toBeGreaterThanOrEqual(1);
    if (record['possibleDuplicate'] === true) flagged++;
    if (jobs > 1) {
      actualDuplicates++;
      expect(record['possibleDuplicate'], `k${i} has ${jobs} jobs and must be flagged`).toBe(true);
    }
  }
  const summary = { seed, lives, kills, tornTails, simulatedTorn, items: ITEMS, flaggedPossibleDuplicates: flagged, actualDuplicateItems: actualDuplicates, jobs: server.jobs.size, records: jsonLines(out).length, seconds: Math.round((Date.now() - started) / 1000) };
  console.log(`kill -9 test: ${JSON.stringify(summary)}`);
}, 120_000);
