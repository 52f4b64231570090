import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { startFakeModelBeam, type FakeModelBeamServer } from '../src/testing/fake-server.js';
import { EXIT } from '../src/cli/exit-codes.js';
import { resumeCommandLine, exitCodeFor, makeScrubber } from '../src/cli/run.js';
import { HEAP_GROWING_PERCENT, tuneHeapForBatch } from '../src/cli/heap.js';
import { freePort, jsonLines, runCli, startCli, terminalRecords, until } from './helpers/cli.js';

const KEY = 'mbk-live-7d1e2f9a0b3c4d5e6f';
const SECRET = 'whsec-Z9y8X7w6V5u4T3s2R1q0';

let dir: string;
let server: FakeModelBeamServer;

beforeAll(async () => {
  server = await startFakeModelBeam({
    accounts: { [KEY]: 'acct-cli' },
    limits: { minute: { limit: 3000, windowMs: 1000 } },
    jobs: { pendingMs: 5, processingMs: 20 },
    webhook: { secret: SECRET },
  });
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cli-run-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function prompts(path: string, n: number, make: (i: number) => Record<string, unknown> = (i) => ({ id: `p${i}`, prompt: `prompt number ${i}` })): void {
  const lines = Array.from({ length: n }, (_, i) => JSON.stringify({ model: 'Flux1schnell', width: 512, height: 512, steps: 4, ...make(i) }));
  writeFileSync(path, `${lines.join('\n')}\n`);
}

function baseArgs(input: string, out: string): string[] {
  return ['run', input, '--out', out, '--endpoint', 'txt2img', '--base-url', server.baseUrl, '--minute-ms', '1000', '--progress', 'none'];
}

describe('modelbeam-batch run', () => {
  test('runs a batch to the end: exit 0, one done record per line, a summary on stdout', async () => {
    const input = join(dir, 'in.jsonl');
    const out = join(dir, 'out.jsonl');
    prompts(input, 40);
    const { code, stdout } = await runCli(baseArgs(input, out), { MODELBEAM_API_KEY: KEY });
    expect(code).toBe(EXIT.OK);
    expect(stdout).toMatch(/Batch complete: every item done/);
    expect(stdout).toMatch(/this run: {2}40 done, 0 failed, 0 invalid/);
    const terminal = terminalRecords(out);
    expect(terminal.size).toBe(40);
    expect([...terminal.values()].every((l) => l.length === 1 && l[0]?.['state'] === 'done')).toBe(true);
  });

  test('failed jobs and bad lines: exit 1, reported with line numbers; running again changes nothing', async () => {
    const input = join(dir, 'in.jsonl');
    const out = join(dir, 'out.jsonl');
    writeFileSync(
      input,
      [
        JSON.stringify({ id: 'good', prompt: 'fine', model: 'Flux1schnell', width: 512, height: 512, steps: 4 }),
        JSON.stringify({ id: 'nsfw', prompt: 'FAIL:AGE_RESTRICTED', model: 'Flux1schnell', width: 512, height: 512, steps: 4 }),
        '{not json',
        JSON.stringify({ id: 'huge', prompt: 'big', model: 'Flux1schnell', width: 99999, height: 512, steps: 4 }),
      ].join('\n'),
    );
    const first = await runCli(baseArgs(input, out), { MODELBEAM_API_KEY: KEY });
    expect(first.code).toBe(EXIT.ITEMS_FAILED);
    expect(first.stdout).toMatch(/1 done, 1 failed, 2 invalid/);
    expect(first.stdout).toMatch(/JOB_FAILED:AGE_RESTRICTED ×1/);
    expect(first.stdout).toMatch(/line 3 \[malformed-json\]/);
    expect(first.stdout).toMatch(/line 4 \[invalid-params\].*width/);
    const errors = jsonLines(`${out}.errors.jsonl`);
    expect(errors.map((e) => e['line'])).toEqual([3, 4]);
    const second = await runCli(baseArgs(input, out), { MODELBEAM_API_KEY: KEY });
    expect(second.code).toBe(EXIT.ITEMS_FAILED);
    expect(second.stdout).toMatch(/this run: {2}0 done, 0 failed, 0 invalid \(4 input items read; 4 already finished/);
  });

  test.each([
    ['no API key', (input: string, out: string) => [...baseArgs(input, out)], {}, /no API key.*MODELBEAM_API_KEY/s],
    ['a missing input file', (_i: string, out: string) => baseArgs(join(dir, 'nope.jsonl'), out), { MODELBEAM_API_KEY: KEY }, /Cannot read the input file .*nope\.jsonl: no such file/],
    ['an input that is a directory', (_i: string, out: string) => baseArgs(dir, out), { MODELBEAM_API_KEY: KEY }, /Cannot read the input file .*: it is a directory/],
    ['an unwritable results file', (input: string) => baseArgs(input, join(dir, 'missing-dir', 'out.jsonl')), { MODELBEAM_API_KEY: KEY }, /Cannot write the results file .*missing-dir.*no such file/],
    ['a results file that is a directory', (input: string) => baseArgs(input, dir), { MODELBEAM_API_KEY: KEY }, /Cannot write the results file .*: it is a directory/],
    ['a bad option value', (input: string, out: string) => [...baseArgs(input, out), '--max-in-flight', '0'], { MODELBEAM_API_KEY: KEY }, /--max-in-flight.*expected an integer >= 1\./],
    ['an unknown option', (input: string, out: string) => [...baseArgs(input, out), '--max-inflight', '3'], { MODELBEAM_API_KEY: KEY }, /unknown option '--max-inflight'/],
    ['a bad --params', (input: string, out: string) => [...baseArgs(input, out), '--params', '[1]'], { MODELBEAM_API_KEY: KEY }, /--params.*expected a JSON object/],
    ['--webhook-port without a secret', (input: string, out: string) => [...baseArgs(input, out), '--webhook-port', '0'], { MODELBEAM_API_KEY: KEY }, /expected an integer from 1 to 65535\.|MODELBEAM_WEBHOOK_SECRET/],
  ])('bad usage (%s): exit 2 with a clear message, and nothing sent', async (_name, args, env, message) => {
    const input = join(dir, 'in.jsonl');
    prompts(input, 3);
    const before = server.stats().requests;
    const { code, stderr } = await runCli(args(input, join(dir, 'out.jsonl')), env as Record<string, string>);
    expect(code).toBe(EXIT.USAGE);
    expect(stderr).toMatch(message);
    expect(server.stats().requests).toBe(before);
  });

  test('--api-key works but warns that it leaks into shell history and ps', async () => {
    const input = join(dir, 'in.jsonl');
    const out = join(dir, 'out.jsonl');
    prompts(input, 2);
    const { code, stdout, stderr } = await runCli([...baseArgs(input, out), '--api-key', KEY]);
    expect(code).toBe(EXIT.OK);
    expect(stderr).toMatch(/--api-key puts the key in your shell history and in the process list/);
    expect(stdout + stderr).not.toContain(KEY);
  });

  test('secrets never appear in output, logs, results or errors files, even at debug level', async () => {
    const input = join(dir, 'in.jsonl');
    const out = join(dir, 'out.jsonl');
    const log = join(dir, 'log.jsonl');
    prompts(input, 20, (i) => (i === 3 ? { id: 'bad', prompt: 'x', width: 1 } : { id: `s${i}`, prompt: `secret test ${i}${i === 5 ? ' FAIL:INVALID_INPUT' : ''}` }));
    const port = await freePort();
    const deliveredBefore = server.webhookLog().filter((a) => a.outcome === 'delivered' && a.url.includes(`:${port}`)).length;
    const { code, stdout, stderr } = await runCli(
      [...baseArgs(input, out), '--log-level', 'debug', '--log-file', log, '--webhook-port', String(port)],
      { MODELBEAM_API_KEY: KEY, MODELBEAM_WEBHOOK_SECRET: SECRET },
    );
    expect(code).toBe(EXIT.ITEMS_FAILED);
    // signed deliveries reached the CLI's webhook server
    expect(server.webhookLog().filter((a) => a.outcome === 'delivered' && a.url.includes(`:${port}`)).length).toBeGreaterThan(deliveredBefore);
    const logText = readFileSync(log, 'utf8');
    expect(logText.split('\n').filter((l) => l.includes('"level":20')).length).toBeGreaterThan(10); // debug lines were written
    for (const text of [stdout, stderr, logText, readFileSync(out, 'utf8'), readFileSync(`${out}.errors.jsonl`, 'utf8')]) {
      expect(text).not.toContain(KEY);
      expect(text).not.toContain(SECRET);
    }
  });

  test('off a terminal, progress comes as periodic JSON lines through pino', async () => {
    const input = join(dir, 'in.jsonl');
    const out = join(dir, 'out.jsonl');
    prompts(input, 30);
    const args = baseArgs(input, out).filter((a) => a !== 'none' && a !== '--progress');
    const { code, stderr } = await runCli([...args, '--progress-interval', '0.1'], { MODELBEAM_API_KEY: KEY });
    expect(code).toBe(EXIT.OK);
    const progress = stderr
      .split('\n')
      .filter((l) => l.includes('"msg":"progress"'))
      .map((l) => JSON.parse(l) as { progress: Record<string, unknown> });
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)?.progress).toMatchObject({ total: 30, finished: 30, done: 30, inFlight: 0 });
    expect(Object.keys(progress[0]?.progress ?? {})).toEqual(expect.arrayContaining(['done', 'failed', 'inFlight', 'queued', 'ratePerMinute', 'rateLimited']));
  });

  test('a revoked key (401) stops dispatch within one request, retries nothing, exits 4, and resumes once fixed', async () => {
    const revokable = 'mbk-revokable-000111222333';
    server.addKey(revokable, 'acct-revoke');
    const input = join(dir, 'in.jsonl');
    const out = join(dir, 'out.jsonl');
    prompts(input, 200);
    const run = startCli([...baseArgs(input, out), '--max-concurrent', '1'], { MODELBEAM_API_KEY: revokable });
    await until(() => [...terminalRecords(out).values()].length >= 10);
    const before401 = server.stats().unauthorized401;
    server.revokeKey(revokable);
    const { code } = await run.exited;
    expect(code).toBe(EXIT.AUTH_FAILED);
    expect(server.stats().unauthorized401 - before401).toBe(1);
    expect(run.stdout()).toMatch(/API key refused.*\n.*HTTP 401.*nothing was retried/);
    expect(run.stdout()).toMatch(/To resume, fix the key \(MODELBEAM_API_KEY\) and run the same command again:\n {2}node --import tsx src\/cli\/main\.ts run /);
    expect(run.stdout()).not.toContain(revokable);
    server.addKey(revokable, 'acct-revoke');
    const again = await runCli(baseArgs(input, out), { MODELBEAM_API_KEY: revokable });
    expect(again.code).toBe(EXIT.OK);
    const terminal = terminalRecords(out);
    expect(terminal.size).toBe(200);
    expect([...terminal.values()].every((l) => l.length === 1)).toBe(true);
  });
});

test('an exhausted balance stops the run, resumable (exit 3), and says to top up', async () => {
  const poor = 'mbk-poor-account-55667788';
  server.addKey(poor, 'acct-poor');
  server.setBalance('acct-poor', 0);
  const input = join(dir, 'in.jsonl');
  const out = join(dir, 'out.jsonl');
  prompts(input, 5);
  const first = await runCli(baseArgs(input, out), { MODELBEAM_API_KEY: poor });
  expect(first.code).toBe(EXIT.STOPPED);
  expect(first.stdout).toMatch(/Batch stopped \(balance too low\), resumable\.\n {2}The account balance is too low for more jobs\. Top it up/);
  server.setBalance('acct-poor', 100);
  const second = await runCli(baseArgs(input, out), { MODELBEAM_API_KEY: poor });
  expect(second.code).toBe(EXIT.OK);
  expect(terminalRecords(out).size).toBe(5);
});

describe('--redis', () => {
  const redisUp = async (): Promise<boolean> => {
    const { createConnection } = await import('node:net');
    return new Promise((resolve) => {
      const socket = createConnection({ host: '127.0.0.1', port: 6379 });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
  };

  test('shares the quota through Redis when given a URL', async () => {
    if (!(await redisUp())) {
      console.warn('SKIPPED: no Redis on 127.0.0.1:6379 — the --redis CLI test did not run');
      return;
    }
    const input = join(dir, 'in.jsonl');
    const out = join(dir, 'out.jsonl');
    prompts(input, 10);
    const { code, stdout, stderr } = await runCli([...baseArgs(input, out), '--redis', 'redis://127.0.0.1:6379'], { MODELBEAM_API_KEY: KEY });
    expect(code, stderr).toBe(EXIT.OK);
    expect(stdout).toMatch(/10 done/);
  });

  test('an unreachable Redis fails at once, before any request', async () => {
    const input = join(dir, 'in.jsonl');
    prompts(input, 3);
    const before = server.stats().requests;
    const { code, stderr } = await runCli([...baseArgs(input, join(dir, 'out.jsonl')), '--redis', 'redis://127.0.0.1:1'], { MODELBEAM_API_KEY: KEY });
    expect(code).toBe(EXIT.USAGE);
    expect(stderr).toMatch(/Redis/);
    expect(server.stats().requests).toBe(before);
  });
});

describe('helpers of the run command', () => {
  test('the resume command repeats the command line without the key, and quotes what needs it', () => {
    expect(
      resumeCommandLine(
        ['/usr/bin/node', '/repo/dist/cli/main.js', 'run', 'my prompts.jsonl', '--out', 'r.jsonl', '--api-key', 'sk-123', '--redis', 'redis://u:pw@h:6379'],
        [],
        '/repo',
      ),
    ).toBe("node dist/cli/main.js run 'my prompts.jsonl' --out r.jsonl --redis 'redis://u:***@h:6379'");
    expect(resumeCommandLine(['/usr/bin/node', '/usr/lib/node_modules/.bin/modelbeam-batch', 'run', 'a.jsonl', '--api-key=sk'], [], '/x')).toBe(
      'modelbeam-batch run a.jsonl',
    );
  });

  test('exit codes follow the summary', () => {
    const base = { complete: true, stopped: undefined, totals: { done: 3, failed: 0, invalid: 0 }, duplicateIds: 0 };
    expect(exitCodeFor(base as never)).toBe(0);
    expect(exitCodeFor({ ...base, totals: { done: 2, failed: 1, invalid: 0 } } as never)).toBe(1);
    expect(exitCodeFor({ ...base, complete: false, stopped: { reason: 'daily-quota' } } as never)).toBe(3);
    expect(exitCodeFor({ ...base, complete: false, stopped: { reason: 'authentication' } } as never)).toBe(4);
  });

  test('the CLI caps V8 heap growth and compiles WebAssembly with Liftoff, unless told otherwise', () => {
    const tune = (env: NodeJS.ProcessEnv, execArgv: string[] = []): string[] => {
      const set: string[] = [];
      tuneHeapForBatch({ env, execArgv, setFlags: (flags) => set.push(flags) });
      return set;
    };
    expect(tune({})).toEqual(['--liftoff-only', `--heap-growing-percent=${HEAP_GROWING_PERCENT}`]);
    expect(tune({ MODELBEAM_BATCH_HEAP_GROWING_PERCENT: '50' })).toEqual(['--liftoff-only', '--heap-growing-percent=50']);
    expect(tune({ MODELBEAM_BATCH_HEAP_GROWING_PERCENT: '0' })).toEqual(['--liftoff-only']);
    expect(tune({ MODELBEAM_BATCH_HEAP_GROWING_PERCENT: 'lots' })).toEqual(['--liftoff-only']);
    expect(tune({}, ['--heap-growing-percent=10'])).toEqual(['--liftoff-only']);
    expect(tune({ NODE_OPTIONS: '--enable-source-maps --heap_growing_percent=20' })).toEqual(['--liftoff-only']);
    expect(tune({}, ['--no-liftoff'])).toEqual([`--heap-growing-percent=${HEAP_GROWING_PERCENT}`]);
  });

  test('the scrubber removes secrets wherever they appear', () => {
    const scrub = makeScrubber([KEY, SECRET, 'short']);
    expect(scrub(`Bearer ${KEY} and ${SECRET}; short stays`)).toBe('Bearer [redacted] and [redacted]; short stays');
  });
});

void mkdirSync;
void existsSync;
