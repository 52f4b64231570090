/**
 * Spend caps through the CLI, as child processes against the fake server in this process:
 * `estimate`, a capped run killed with SIGKILL at random points and resumed, and 4 processes sharing
 * one cap through real Redis. In every case the server-side spend (the fake charges each job's price on
 * submit) never goes past the cap.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadJournal } from '../src/batch/journal.js';
import { EXIT } from '../src/cli/exit-codes.js';
import { redisAccount } from '../src/cli/run.js';
import { toNano } from '../src/internal/money.js';
import { startFakeModelBeam, type FakeModelBeamServer } from '../src/testing/fake-server.js';
import { runCli, startCli, until } from './helpers/cli.js';
import { REDIS_URL, deletePrefix, redisReachable } from './helpers/store-cases.js';

const reachable = await redisReachable('cli-spend.test.ts');
/** 512², 4 steps on the fake: 0.00034 + 6.485e-10 × 512 × 512 × 4, rounded to 6 decimals. */
const PRICE_NANO = toNano(0.00102);

let dir: string;
let server: FakeModelBeamServer;
const keys: string[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cli-spend-'));
  server = await startFakeModelBeam({
    accounts: { 'mbk-unused-key-000000': 'acct-unused' },
    limits: { minute: { limit: 600, windowMs: 1000 } },
    jobs: { pendingMs: 5, processingMs: 30, jitter: 0.5 },
    seed: 7,
  });
});
afterAll(async () => {
  await server.close();
  if (process.env['KEEP_SPEND_DIR'] === undefined) rmSync(dir, { recursive: true, force: true });
  else console.log(`kept ${dir}`);
  if (reachable) {
    const c = new Redis(REDIS_URL);
    for (const key of keys) await deletePrefix(c, `mbs:{${redisAccount(key)}}`);
    c.disconnect();
  }
});

/** A fresh account on the fake: its own key, balance and jobs. */
function account(): { key: string; id: string; spentNano: () => number; jobs: () => number } {
  const id = `acct-${randomUUID().slice(0, 8)}`;
  const key = `mbk-${randomUUID()}`;
  server.addKey(key, id);
  keys.push(key);
  const mine = () => server.jobs.list().filter((j) => j.account === id);
  return { key, id, spentNano: () => mine().reduce((s, j) => s + toNano(j.price), 0), jobs: () => mine().length };
}

function input(name: string, n: number, from = 0): string {
  const path = join(dir, name);
  const lines = Array.from({ length: n }, (_, i) =>
    JSON.stringify({ id: `s${from + i}`, prompt: `spend item ${from + i}`, model: 'Flux1schnell', width: 512, height: 512, steps: 4 }),
  );
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

const common = (): string[] => ['--endpoint', 'txt2img', '--base-url', server.baseUrl, '--minute-ms', '1000'];

test('estimate against a base URL that is not the API: exit 2, the URL named, nothing priced', async () => {
  const acct = account();
  const path = join(dir, 'est-url.jsonl');
  writeFileSync(path, `${JSON.stringify({ prompt: 'a' })}\n`);
  const wrong = `${server.baseUrl.replace(/\/+$/, '')}/v2`;
  const r = await runCli(['estimate', path, '--endpoint', 'txt2img', '--base-url', wrong, '--params', '{"model":"Flux1schnell","steps":4,"width":512,"height":512}'], {
    MODELBEAM_API_KEY: acct.key,
  });
  expect(r.code, r.stderr).toBe(EXIT.USAGE);
  expect(r.stderr).toContain(`${wrong}/txt2img/price-calculation`);
  expect(r.stderr).toMatch(/--base-url/);
  expect(r.stderr).not.toContain(acct.key);
}, 30_000);

test('estimate prints the total, the balance, the limits and a duration, with one price call per setting; bad lines by number', async () => {
  const acct = account();
  const path = join(dir, 'est.jsonl');
  const rows = [
    ...Array.from({ length: 300 }, (_, i) => ({ prompt: `p${i}`, width: i % 2 === 0 ? 512 : 1024, height: i % 2 === 0 ? 512 : 1024 })),
    { prompt: 'bad', width: 100_000, height: 512 },
    'not json',
  ];
  writeFileSync(path, `${rows.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n')}\n`);
  const before = server.stats().byRoute['POST /txt2img/price-calculation'] ?? 0;
  const args = ['estimate', path, ...common(), '--params', '{"model":"Flux1schnell","steps":4}', '--limit-minute', '600'];
  const json = await runCli([...args, '--json'], { MODELBEAM_API_KEY: acct.key });
  expect(json.code, json.stderr).toBe(EXIT.ITEMS_FAILED);
  const e = JSON.parse(json.stdout) as Record<string, unknown>;
  expect(e).toMatchObject({ priced: 300, failed: 0, invalidLines: 2, distinctPrices: 2, priceCalls: 2, balance: 1000, balanceCovers: true, limits: { minute: 600, minuteMs: 1000 } });
  expect(e['total']).toBe((150 * PRICE_NANO + 150 * toNano(0.00306)) / 1e9);
  expect((e['errors'] as { line: number }[]).map((x) => x.line)).toEqual([301, 302]);
  expect(e['durationMs']).toBe(500);
  expect((server.stats().byRoute['POST /txt2img/price-calculation'] ?? 0) - before).toBe(2);
  expect(acct.jobs()).toBe(0);

  const text = await runCli([...args, '--max-spend', '0.1'], { MODELBEAM_API_KEY: acct.key });
  expect(text.stdout).toMatch(/^Estimate: \$0\.6120{0,4} for 300 jobs\n/);
  expect(text.stdout).toMatch(/balance: {3}\$1000\.00 \(covers the batch\)/);
  expect(text.stdout).toMatch(/cap: {7}\$0\.10 — the run will stop at the cap, resumable/);
  expect(text.stdout).toMatch(/\[INVALID_INPUT\] Line 301 /);
  expect(text.stdout).toMatch(/\[INVALID_INPUT\] Line 302 /);
}, 60_000);

function size(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

test('a capped run killed with kill -9 at random points and resumed stops at the cap and never past it', async () => {
  const acct = account();
  const items = 600;
  const capJobs = 300;
  const cap = (capJobs * PRICE_NANO + 500_000) / 1e9; // 300 jobs and half a job
  const path = input('kill.jsonl', items);
  const out = join(dir, 'kill.out.jsonl');
  const args = ['run', path, '--out', out, ...common(), '--max-spend', String(cap), '--progress', 'none', '--log-level', 'error', '--max-in-flight', '64'];
  const env = { MODELBEAM_API_KEY: acct.key };
  let kills = 0;
  let seed = Date.now() % 1000;
  const random = (): number => {
    seed = (seed * 16807) % 2147483647;
    return seed / 2147483647;
  };
  for (let life = 0; life < 12 && kills < 6; life++) {
    const before = size(out);
    const run = startCli(args, env);
    let exited = false;
    void run.exited.then(() => {
      exited = true;
    });
    await until(() => exited || size(out) > before, 15_000, 2);
    await new Promise((r) => setTimeout(r, random() * 200));
    if (!exited) {
      run.child.kill('SIGKILL');
      kills++;
    }
    await run.exited;
    // Never past the cap, at any moment: what the server charged, and what the results file counts.
    expect(acct.spentNano()).toBeLessThanOrEqual(toNano(cap));
    if (existsSync(out)) expect((await loadJournal(out)).spentNano).toBeLessThanOrEqual(toNano(cap));
  }
  expect(kills).toBeGreaterThanOrEqual(3);
  const last = await runCli(args, env);
  expect(last.code, last.stderr).toBe(EXIT.STOPPED);
  expect(last.stdout).toMatch(/Batch stopped \(spend cap reached\), resumable\./);
  expect(last.stdout).toMatch(/spend: {5}\$0\.30\d* of \$0\.3065/);
  // The same command would stop at once again: the hint says what to change.
  expect(last.stdout).toMatch(/To resume, raise the cap \(--max-spend\) in the same command and run it again:\n {2}\S/);
  const journal = await loadJournal(out);
  // Stopped at the cap: the next job did not fit. Unknown outcomes (killed between POST and answer) count as spent.
  expect(journal.spentNano).toBeLessThanOrEqual(toNano(cap));
  expect(journal.spentNano + PRICE_NANO).toBeGreaterThan(toNano(cap));
  expect(acct.spentNano()).toBeLessThanOrEqual(journal.spentNano);
  // What counts as spent without a charge: at most the `maxSubmitting` (8) submissions each kill cut off.
  expect(journal.spentNano - acct.spentNano()).toBeLessThanOrEqual(kills * 8 * PRICE_NANO);
  console.log(`kill -9 with a cap: ${JSON.stringify({ kills, capNano: toNano(cap), journalNano: journal.spentNano, serverNano: acct.spentNano(), jobs: acct.jobs() })}`);
}, 120_000);

describe.skipIf(!reachable)('through Redis', () => {
  test('estimate --redis prices through the shared store', async () => {
    const acct = account();
    const path = input('est-redis.jsonl', 50);
    const r = await runCli(['estimate', path, ...common(), '--redis', REDIS_URL, '--json'], { MODELBEAM_API_KEY: acct.key });
    expect(r.code, r.stderr).toBe(EXIT.OK);
    expect(JSON.parse(r.stdout)).toMatchObject({ priced: 50, priceCalls: 1, total: (50 * PRICE_NANO) / 1e9 });
  }, 60_000);

  test('4 processes sharing one cap never spend past it together', async () => {
    const acct = account();
    const spendKey = `t-${randomUUID().slice(0, 8)}`;
    const capJobs = 150;
    const cap = (capJobs * PRICE_NANO + 300_000) / 1e9;
    const runs = [0, 1, 2, 3].map((i) => {
      const path = input(`part${i}.jsonl`, 100, i * 100);
      const out = join(dir, `part${i}.out.jsonl`);
      return { out, run: startCli(['run', path, '--out', out, ...common(), '--max-spend', String(cap), '--redis', REDIS_URL, '--spend-key', spendKey, '--progress', 'none', '--log-level', 'error'], { MODELBEAM_API_KEY: acct.key }) };
    });
    const exits = await Promise.all(runs.map((r) => r.run.exited));
    for (const [i, e] of exits.entries()) expect([EXIT.OK, EXIT.STOPPED], runs[i]!.run.stderr()).toContain(e.code);
    expect(exits.some((e) => e.code === EXIT.STOPPED)).toBe(true);
    const c = new Redis(REDIS_URL);
    const counter = Number(await c.get(`mbs:{${redisAccount(acct.key)}}:spend:${spendKey}`));
    c.disconnect();
    const journals = await Promise.all(runs.map((r) => loadJournal(r.out)));
    const sum = journals.reduce((s, j) => s + j.spentNano, 0);
    // Exactly the cap's worth of jobs: none past it, and the shared counter is what every process spent.
    expect(acct.jobs()).toBe(capJobs);
    expect(acct.spentNano()).toBe(capJobs * PRICE_NANO);
    expect(counter).toBe(capJobs * PRICE_NANO);
    expect(sum).toBe(counter);
    expect(journals.filter((j) => j.spentNano > 0).length).toBeGreaterThanOrEqual(2);
  }, 120_000);
});
