/**
 * The CLI's edges (issue 12): a base URL that is not the API, `--retry-failed`, `--out` that must not be
 * appended to, timeouts against a server that never answers, help and typos, and log lines on a terminal.
 * Over real HTTP: the fake server on loopback, and a node:net server that accepts and stays silent.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { startFakeModelBeam, type FakeModelBeamServer } from '../src/testing/fake-server.js';
import { EXIT } from '../src/cli/exit-codes.js';
import { humanLine, runCommand, type CliIo } from '../src/cli/run.js';
import { describeCause } from '../src/cli/cause.js';
import { jsonLines, runCli, terminalRecords } from './helpers/cli.js';

const KEY = 'mbk-edges-5a4b3c2d1e0f9a8b';

let dir: string;
let server: FakeModelBeamServer;

beforeAll(async () => {
  server = await startFakeModelBeam({
    accounts: { [KEY]: 'acct-edges' },
    limits: { minute: { limit: 3000, windowMs: 1000 } },
    jobs: { pendingMs: 5, processingMs: 20 },
  });
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cli-edges-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function prompts(path: string, n: number, make: (i: number) => Record<string, unknown> = (i) => ({ id: `e${i}`, prompt: `edge prompt ${i}` })): void {
  const lines = Array.from({ length: n }, (_, i) => JSON.stringify({ model: 'Flux1schnell', width: 512, height: 512, steps: 4, ...make(i) }));
  writeFileSync(path, `${lines.join('\n')}\n`);
}

function args(input: string, out: string, baseUrl = server.baseUrl, ...extra: string[]): string[] {
  return ['run', input, '--out', out, '--endpoint', 'txt2img', '--base-url', baseUrl, '--minute-ms', '1000', '--progress', 'none', '--log-level', 'warn', ...extra];
}

describe('a base URL that is not the API', () => {
  test('404 on the first submissions: stops at once, exit 2, names the URL; nothing is marked finished, and a rerun at the right URL runs every item', async () => {
    const input = join(dir, 'in.jsonl');
    const out = join(dir, 'out.jsonl');
    prompts(input, 40);
    const wrong = new URL(server.baseUrl).origin; // `/api/v1/client` left out
    const before = server.stats().requests;
    const first = await runCli(args(input, out, wrong), { MODELBEAM_API_KEY: KEY });
    expect(first.code, first.stdout + first.stderr).toBe(EXIT.USAGE);
    expect(first.stdout).toContain(`POST ${wrong}/txt2img answered HTTP 404`);
    expect(first.stdout).toMatch(/Batch stopped \(the API base URL looks wrong\), resumable\./);
    expect(first.stdout).toMatch(/Nothing was marked finished\. Fix the base URL \(--base-url\)/);
    // It stopped within the first submissions (at most `maxSubmitting` were under way), not after 40 items.
    expect(server.stats().requests - before).toBeLessThanOrEqual(8);
    expect(terminalRecords(out).size).toBe(0);
    const records = jsonLines(out);
    expect(records.length).toBeGreaterThan(0);
    // Every submission left a `submitting` record and a release: by the 404 itself, or by the stop it caused.
    const released = records.filter((r) => r['state'] !== 'submitting').map((r) => `${String(r['state'])}:${String(r['reason'])}`);
    expect(released.length).toBe(records.length / 2);
    expect(released.every((r) => r === 'released:configuration' || r === 'released:stopped')).toBe(true);
    expect(released).toContain('released:configuration');

    const second = await runCli(args(input, out), { MODELBEAM_API_KEY: KEY });
    expect(second.code, second.stdout + second.stderr).toBe(EXIT.OK);
    expect(second.stdout).toMatch(/this run: {2}40 done, 0 failed, 0 invalid \(40 input items read; 0 already finished/);
    const terminal = terminalRecords(out);
    expect(terminal.size).toBe(40);
    expect([...terminal.values()].every((l) => l.length === 1 && l[0]?.['state'] === 'done' && l[0]?.['possibleDuplicate'] === false)).toBe(true);
  });

  test('a resumed run at a wrong URL does not fail the jobs it polls: it stops, and they stay resumable', async () => {
    const input = join(dir, 'in.jsonl');
    const out = join(dir, 'out.jsonl');
    prompts(input, 3);
    // An earlier run submitted these jobs at the right URL, then died.
    const ids: string[] = [];
    const lines: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${server.baseUrl}/txt2img`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ prompt: `edge prompt ${i}`, model: 'Flux1schnell', width: 512, height: 512, steps: 4 }),
      });
      const body = (await res.json()) as { data: { request_id: string } };
      ids.push(body.data.request_id);
      lines.push(JSON.stringify({ id: `e${i}`, line: i + 1, state: 'submitted', requestId: body.data.request_id, endpoint: 'txt2img', attempt: 1, resubmissions: 0, at: Date.now() }));
    }
    writeFileSync(out, `${lines.join('\n')}\n`);
    const wrong = `${new URL(server.baseUrl).origin}/v1`;
    const first = await runCli(args(input, out, wrong), { MODELBEAM_API_KEY: KEY });
    expect(first.code, first.stdout + first.stderr).toBe(EXIT.USAGE);
    expect(first.stdout).toContain(`GET ${wrong}/request-status/…`);
    expect(terminalRecords(out).size).toBe(0);
    const second = await runCli(args(input, out), { MODELBEAM_API_KEY: KEY });
    expect(second.code, second.stdout + second.stderr).toBe(EXIT.OK);
    expect(second.stdout).toMatch(/3 resumed by polling/);
    expect([...terminalRecords(out).values()].map((l) => l[0]?.['requestId']).sort()).toEqual([...ids].sort());
  });
});

describe('--retry-failed', () => {
  test('runs again only the items whose terminal state was failed; without it a rerun changes nothing', async () => {
    const input = join(dir, 'in.jsonl');
    const out = join(dir, 'out.jsonl');
    prompts(input, 6, (i) => ({ id: `r${i}`, prompt: i % 3 === 0 ? `retry me ${i} FAIL_ONCE:PROCESSING_ERROR` : `fine ${i}` }));
    const first = await runCli(args(input, out, server.baseUrl, '--max-resubmissions', '0'), { MODELBEAM_API_KEY: KEY });
    expect(first.code, first.stderr).toBe(EXIT.ITEMS_FAILED);
    expect(first.stdout).toMatch(/this run: {2}4 done, 2 failed/);
    const again = await runCli(args(input, out), { MODELBEAM_API_KEY: KEY });
    expect(again.code).toBe(EXIT.ITEMS_FAILED);
    expect(again.stdout).toMatch(/this run: {2}0 done, 0 failed, 0 invalid \(6 input items read; 6 already finished/);
    const jobsBefore = server.jobs.size;
    const retried = await runCli(args(input, out, server.baseUrl, '--retry-failed'), { MODELBEAM_API_KEY: KEY });
    expect(retried.code, retried.stderr).toBe(EXIT.OK);
    expect(retried.stdout).toMatch(/this run: {2}2 done, 0 failed, 0 invalid \(6 input items read; 4 already finished/);
    expect(retried.stdout).toMatch(/in total: {2}6 done, 0 failed, 0 invalid/);
    expect(server.jobs.size - jobsBefore).toBe(2); // only the failed ones were sent again
    const terminal = terminalRecords(out);
    expect(terminal.get('r0')?.map((r) => r['state'])).toEqual(['failed', 'done']);
    expect(terminal.get('r1')?.map((r) => r['state'])).toEqual(['done']);
    // And the file now reads as finished: a plain rerun has nothing left to do.
    const last = await runCli(args(input, out), { MODELBEAM_API_KEY: KEY });
    expect(last.code).toBe(EXIT.OK);
  });
});

describe('--out', () => {
  test('the input file as --out is refused before anything is sent, naming the file; the input is untouched', async () => {
    const input = join(dir, 'in.jsonl');
    prompts(input, 3);
    const text = readFileSync(input, 'utf8');
    const before = server.stats().requests;
    const { code, stderr } = await runCli(args(input, input), { MODELBEAM_API_KEY: KEY });
    expect(code).toBe(EXIT.USAGE);
    expect(stderr).toContain(`--out ${input} is the input file`);
    expect(server.stats().requests).toBe(before);
    expect(readFileSync(input, 'utf8')).toBe(text);
  });

  test('an existing file that is not a results file is refused before anything is sent, naming the file', async () => {
    const input = join(dir, 'in.jsonl');
    const other = join(dir, 'other.jsonl');
    prompts(input, 3);
    prompts(other, 2); // some other JSONL: items, not results
    const text = readFileSync(other, 'utf8');
    const before = server.stats().requests;
    const { code, stderr } = await runCli(args(input, other), { MODELBEAM_API_KEY: KEY });
    expect(code).toBe(EXIT.USAGE);
    expect(stderr).toContain(`--out ${other} exists and is not a results file of modelbeam-batch (line 1 is not a record`);
    expect(server.stats().requests).toBe(before);
    expect(readFileSync(other, 'utf8')).toBe(text);
  });

  test('a results file of an earlier run, and an empty file, are accepted', async () => {
    const input = join(dir, 'in.jsonl');
    const out = join(dir, 'out.jsonl');
    prompts(input, 2);
    writeFileSync(out, '');
    expect((await runCli(args(input, out), { MODELBEAM_API_KEY: KEY })).code).toBe(EXIT.OK);
    expect((await runCli(args(input, out), { MODELBEAM_API_KEY: KEY })).code).toBe(EXIT.OK);
  });
});

describe('timeouts', () => {
  let silent: Server;
  const sockets = new Set<Socket>();
  beforeAll(async () => {
    // Accepts connections and reads requests, and never answers.
    silent = createServer((socket) => {
      sockets.add(socket);
      socket.on('data', () => {});
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  });

  test('a server that accepts and never answers: the run ends within the timeouts and the summary names the cause', async () => {
    const input = join(dir, 'in.jsonl');
    const out = join(dir, 'out.jsonl');
    prompts(input, 1);
    const address = silent.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    const baseUrl = `http://127.0.0.1:${port}/api/v1/client`;
    const started = Date.now();
    const { code, stdout, stderr } = await runCli(args(input, out, baseUrl, '--timeout', '300', '--connect-timeout', '300', '--limit-minute', '100'), {
      MODELBEAM_API_KEY: KEY,
    });
    expect(code, stdout + stderr).toBe(EXIT.STOPPED);
    expect(stdout).toContain(`cause:     no answer from ${baseUrl} within 300 ms (headers timeout`);
    expect(stdout).toMatch(/pending: {3}1 item started and not finished/);
    expect(terminalRecords(out).size).toBe(0);
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  test.each([
    [{ message: 'x', code: 'OUTCOME_UNKNOWN', causeCode: 'UND_ERR_HEADERS_TIMEOUT' }, 'no answer from http://h:1/api within 10 s (headers timeout'],
    [{ message: 'x', code: 'OUTCOME_UNKNOWN', causeCode: 'UND_ERR_BODY_TIMEOUT' }, 'the answer from http://h:1/api stalled for 10 s (body timeout'],
    [{ message: 'x', code: 'RETRIES_EXHAUSTED', causeCode: 'UND_ERR_CONNECT_TIMEOUT' }, 'no connection to http://h:1 within 500 ms (connect timeout'],
    [{ message: 'x', code: 'RETRIES_EXHAUSTED', causeCode: 'ECONNREFUSED' }, 'http://h:1 refused the connection'],
    [{ message: 'Gave up after 5 attempt(s): HTTP 503', code: 'RETRIES_EXHAUSTED' }, 'Gave up after 5 attempt(s): HTTP 503'],
  ])('describeCause(%j)', (cause, expected) => {
    expect(describeCause(cause, { baseUrl: 'http://h:1/api', connectTimeoutMs: 500, timeoutMs: 10_000 })).toContain(expected);
  });
});

describe('help and typos', () => {
  test('--help has Examples and Environment sections naming every variable the CLI reads', async () => {
    for (const argv of [['--help'], ['run', '--help']]) {
      const { code, stdout } = await runCli(argv);
      expect(code).toBe(EXIT.OK);
      expect(stdout).toMatch(/\nExamples:\n {2}# run a batch/);
      expect(stdout).toMatch(/modelbeam-batch run prompts\.jsonl --out results\.jsonl --endpoint txt2img/);
      expect(stdout).toMatch(/\nEnvironment:\n {2}MODELBEAM_API_KEY .*\n {2}MODELBEAM_WEBHOOK_SECRET /);
    }
    const source = ['run.ts', 'program.ts', 'demo.ts'].map((f) => readFileSync(new URL(`../src/cli/${f}`, import.meta.url), 'utf8')).join('\n');
    const read = new Set([...source.matchAll(/env\['([A-Z_]+)'\]/g)].map((m) => m[1]));
    const { stdout } = await runCli(['--help']);
    for (const name of read) expect(stdout).toContain(`  ${name as string} `);
  });

  test('a typo such as --ou is an unknown option with a suggestion, not a missing --out', async () => {
    const input = join(dir, 'in.jsonl');
    prompts(input, 1);
    const { code, stderr } = await runCli(['run', input, '--ou', join(dir, 'out.jsonl')], { MODELBEAM_API_KEY: KEY });
    expect(code).toBe(EXIT.USAGE);
    expect(stderr).toMatch(/unknown option '--ou'\n\(Did you mean --out\?\)/);
    expect(stderr).not.toMatch(/required option/);
    const missing = await runCli(['run', input], { MODELBEAM_API_KEY: KEY });
    expect(missing.code).toBe(EXIT.USAGE);
    expect(missing.stderr).toMatch(/required option '-o, --out <file>' not specified/);
  });

  test('run --help shows --minute-ms (the fake server prints it in its command line); a bad value says the bound', async () => {
    const help = await runCli(['run', '--help'], {});
    expect(help.stdout).toMatch(/--minute-ms <ms>/);
    const input = join(dir, 'in.jsonl');
    prompts(input, 1);
    const bad = await runCli(['run', input, '--out', join(dir, 'o.jsonl'), '--minute-ms', 'abc'], { MODELBEAM_API_KEY: KEY });
    expect(bad.code).toBe(EXIT.USAGE);
    expect(bad.stderr).toMatch(/--minute-ms <ms>' argument 'abc' is invalid\. expected an integer >= 1\./);
  });
});

describe('log lines on a terminal', () => {
  function tty(): { stream: NodeJS.WriteStream; text: () => string } {
    const stream = Object.assign(new PassThrough(), { isTTY: true, columns: 80, cursorTo() {}, moveCursor() {}, clearLine() {}, clearScreenDown() {} });
    let text = '';
    stream.on('data', (d: Buffer) => {
      text += d.toString();
    });
    return { stream: stream as unknown as NodeJS.WriteStream, text: () => text };
  }

  async function run(extra: { logFormat?: 'json' }): Promise<{ stderr: string; stdout: string; code: number }> {
    const input = join(dir, 'in.jsonl');
    const out = join(dir, `out-${extra.logFormat ?? 'auto'}.jsonl`);
    prompts(input, 5);
    const stderr = tty();
    const stdout = tty();
    const io: CliIo = {
      stdout: stdout.stream,
      stderr: stderr.stream,
      env: { MODELBEAM_API_KEY: KEY },
      argv: ['node', 'modelbeam-batch'],
      execArgv: [],
      cwd: dir,
      exitNow: () => {},
      handleSignals: false,
    };
    const code = await runCommand(input, { out, endpoint: 'txt2img', baseUrl: server.baseUrl, minuteMs: 1000, progress: 'none', logLevel: 'info', ...extra }, io);
    return { stderr: stderr.text(), stdout: stdout.text(), code };
  }

  test('no JSON on a terminal unless asked: pretty lines, and no summary blob before the human summary', async () => {
    const { stderr, stdout, code } = await run({});
    expect(code).toBe(EXIT.OK);
    expect(stdout).toMatch(/^Batch complete: every item done\./);
    expect(stderr).toMatch(/^INFO {2}\[batch\] starting batch out=\S+ records=0/m);
    for (const line of stderr.split('\n').filter((l) => l !== '')) expect(line).not.toMatch(/^\{|[{[]"/);
    expect(stderr).not.toMatch(/summary/);
  });

  test('--log-format json on a terminal: every log line is whole JSON, the summary among them', async () => {
    const { stderr, code } = await run({ logFormat: 'json' });
    expect(code).toBe(EXIT.OK);
    const lines = stderr.split('\n').filter((l) => l !== '');
    expect(lines.length).toBeGreaterThan(1);
    for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
    expect(lines.some((l) => (JSON.parse(l) as { msg?: string }).msg === 'summary')).toBe(true);
  });

  test('humanLine writes key=value pairs, never a JSON object, and passes unparseable lines through', () => {
    expect(humanLine('{"level":40,"time":1,"pid":2,"component":"batch","msg":"transient failure; item left pending","code":"RETRIES_EXHAUSTED","inARow":3,"err":"Gave up after 5 attempt(s)"}\n')).toBe(
      'WARN  [batch] transient failure; item left pending code=RETRIES_EXHAUSTED inARow=3 err="Gave up after 5 attempt(s)"\n',
    );
    expect(humanLine('not json\n')).toBe('not json\n');
  });
});
