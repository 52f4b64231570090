/**
 * Clean stops of the CLI: SIGINT/SIGTERM (graceful, then at once), and the daily quota (stop and
 * resume, or wait through the reset). Each test runs the CLI as a child process against its own
 * fake server.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { startFakeModelBeam, type FakeModelBeamServer } from '../src/testing/fake-server.js';
import type { FakeServerOptions } from '../src/testing/options.js';
import { EXIT } from '../src/cli/exit-codes.js';
import { jsonLines, runCli, startCli, terminalRecords, until } from './helpers/cli.js';

const KEY = 'mbk-stops-test-9876543210';

let dir: string;
let server: FakeModelBeamServer | undefined;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cli-stops-'));
});
afterEach(async () => {
  await server?.close();
  server = undefined;
  rmSync(dir, { recursive: true, force: true });
});

async function serve(options: FakeServerOptions): Promise<FakeModelBeamServer> {
  server = await startFakeModelBeam({ accounts: { [KEY]: 'acct-stops' }, ...options });
  return server;
}

function writeInput(n: number): string {
  const input = join(dir, 'in.jsonl');
  const lines = Array.from({ length: n }, (_, i) =>
    JSON.stringify({ id: `s${i}`, prompt: `stop test ${i}`, model: 'Flux1schnell', width: 512, height: 512, steps: 4 }),
  );
  writeFileSync(input, `${lines.join('\n')}\n`);
  return input;
}

function args(input: string, out: string, fake: FakeModelBeamServer, ...extra: string[]): string[] {
  return ['run', input, '--out', out, '--endpoint', 'txt2img', '--base-url', fake.baseUrl, '--minute-ms', '1000', '--progress', 'none', '--log-level', 'warn', ...extra];
}

function jobsPerPrompt(fake: FakeModelBeamServer): Map<string, number> {
  const counts = new Map<string, number>();
  for (const job of fake.jobs.list()) {
    const prompt = String(job.params['prompt']);
    counts.set(prompt, (counts.get(prompt) ?? 0) + 1);
  }
  return counts;
}

describe('signals', () => {
  test('SIGINT: no new requests, in-flight requests finish, exit 3 with the resume command; the resume polls, never resubmits', async () => {
    const fake = await serve({ limits: { minute: { limit: 2000, windowMs: 1000 } }, jobs: { pendingMs: 50, processingMs: 2500 } });
    const input = writeInput(60);
    const out = join(dir, 'out.jsonl');
    const run = startCli(args(input, out, fake, '--max-in-flight', '20'), { MODELBEAM_API_KEY: KEY });
    await until(() => jsonLines(out).filter((r) => r['state'] === 'submitted').length >= 20);
    const requestsAtSignal = fake.stats().requests;
    run.child.kill('SIGINT');
    const { code } = await run.exited;
    expect(code, run.stderr()).toBe(EXIT.STOPPED);
    expect(run.stdout()).toMatch(/Batch stopped \(stopped by a signal\), resumable\.\n {2}Stopped by SIGINT\./);
    expect(run.stdout()).toMatch(/pending: {3}20 items started and not finished/);
    expect(run.stdout()).toMatch(/To resume, run the same command again:\n {2}node --import tsx src\/cli\/main\.ts run .*in\.jsonl --out .*out\.jsonl/);
    expect(fake.stats().requests - requestsAtSignal).toBeLessThanOrEqual(20); // only what was already under way
    // The jobs finish on the server meanwhile; the resume picks them up by polling.
    await until(() => fake.jobs.list().every((job) => job.status === 'done'));
    const resumed = await runCli(args(input, out, fake), { MODELBEAM_API_KEY: KEY });
    expect(resumed.code, resumed.stderr).toBe(EXIT.OK);
    expect(resumed.stdout).toMatch(/20 resumed by polling/);
    const terminal = terminalRecords(out);
    expect(terminal.size).toBe(60);
    expect([...terminal.values()].every((l) => l.length === 1 && l[0]?.['possibleDuplicate'] === false)).toBe(true);
    expect([...jobsPerPrompt(fake).values()].every((n) => n === 1)).toBe(true);
    expect(fake.jobs.size).toBe(60);
  });

  test('a second signal exits at once, still resumable', async () => {
    const fake = await serve({ limits: { minute: { limit: 2000, windowMs: 1000 } }, jobs: { pendingMs: 10, processingMs: 100 }, faults: { slowMs: 20_000 } });
    const input = writeInput(40);
    const out = join(dir, 'out.jsonl');
    const run = startCli(args(input, out, fake, '--grace-period', '60'), { MODELBEAM_API_KEY: KEY });
    await until(() => terminalRecords(out).size >= 5);
    fake.setFaults({ slowRate: 1 }); // every answer from now on hangs for 20 s
    await new Promise((r) => setTimeout(r, 200));
    run.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 600));
    expect(run.child.exitCode).toBeNull(); // the first signal waits for the hanging requests (grace 60 s)
    expect(run.stderr()).toMatch(/SIGTERM: stopping/);
    const sentAt = Date.now();
    run.child.kill('SIGINT');
    const { code } = await run.exited;
    expect(Date.now() - sentAt).toBeLessThan(3000);
    expect(code).toBe(EXIT.STOPPED);
    expect(run.stderr()).toMatch(/Stopped at once by a second SIGINT\. The results file is consistent\. To resume, run the same command again:\n {2}node --import tsx/);
    fake.setFaults({ slowRate: 0 });
    // The resume finishes everything; a job may exist twice only for an item flagged possibleDuplicate.
    const resumed = await runCli(args(input, out, fake), { MODELBEAM_API_KEY: KEY });
    expect(resumed.code, resumed.stderr).toBe(EXIT.OK);
    const terminal = terminalRecords(out);
    expect(terminal.size).toBe(40);
    for (const [id, list] of terminal) {
      expect(list, id).toHaveLength(1);
      const jobs = jobsPerPrompt(fake).get(`stop test ${id.slice(1)}`) ?? 0;
      if (jobs > 1) expect(list[0]?.['possibleDuplicate'], id).toBe(true);
    }
  });
});

describe('daily quota', () => {
  test('stop: exits 3 saying when the quota resets and how to resume; the resume after the reset finishes the batch', async () => {
    const dayMs = 8000;
    // The day starts now, so the quota runs out well before it resets, however slowly the CLI starts.
    const fake = await serve({
      limits: { minute: { limit: 1000, windowMs: 1000 }, daily: { limit: 50, windowMs: dayMs, phaseMs: Date.now() % dayMs } },
      jobs: { pendingMs: 5, processingMs: 20 },
    });
    const input = writeInput(40);
    const out = join(dir, 'out.jsonl');
    const first = await runCli(args(input, out, fake, '--day-ms', String(dayMs)), { MODELBEAM_API_KEY: KEY });
    expect(first.code, first.stderr).toBe(EXIT.STOPPED);
    expect(first.stdout).toMatch(/Batch stopped \(daily quota exhausted\), resumable\./);
    const reset = /it resets at (\S+) \(in /.exec(first.stdout);
    expect(reset, first.stdout).not.toBeNull();
    const resetAt = Date.parse(reset?.[1] ?? '');
    expect(resetAt).toBeGreaterThan(Date.now() - 1000);
    expect(resetAt).toBeLessThanOrEqual(Date.now() + dayMs + 1000);
    expect(first.stdout).toMatch(/To resume, run the same command again:\n {2}node --import tsx src\/cli\/main\.ts run .* --day-ms 8000/);
    const doneFirst = [...terminalRecords(out).values()].length;
    expect(doneFirst).toBeGreaterThan(5);
    expect(doneFirst).toBeLessThan(40);
    expect(fake.stats().rejected429.daily).toBeGreaterThanOrEqual(1);

    await new Promise((r) => setTimeout(r, Math.max(0, resetAt - Date.now()) + 100));
    const second = await runCli(args(input, out, fake, '--day-ms', String(dayMs)), { MODELBEAM_API_KEY: KEY });
    expect(second.code, second.stdout + second.stderr).toBe(EXIT.OK);
    const terminal = terminalRecords(out);
    expect(terminal.size).toBe(40);
    expect([...terminal.values()].every((l) => l.length === 1 && l[0]?.['state'] === 'done' && l[0]?.['possibleDuplicate'] === false)).toBe(true);
    expect([...jobsPerPrompt(fake).values()].every((n) => n === 1)).toBe(true);
  }, 40_000);

  test('wait: the run parks through the reset and finishes', async () => {
    const dayMs = 8000;
    const fake = await serve({
      limits: { minute: { limit: 1000, windowMs: 1000 }, daily: { limit: 40, windowMs: dayMs, phaseMs: Date.now() % dayMs } },
      jobs: { pendingMs: 5, processingMs: 20 },
    });
    const input = writeInput(30);
    const out = join(dir, 'out.jsonl');
    const run = await runCli(args(input, out, fake, '--day-ms', String(dayMs), '--on-daily-limit', 'wait'), { MODELBEAM_API_KEY: KEY });
    expect(run.code, run.stdout + run.stderr).toBe(EXIT.OK);
    expect(terminalRecords(out).size).toBe(30);
    expect(fake.stats().rejected429.daily).toBeGreaterThanOrEqual(1);
  }, 40_000);
});
