import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { EXIT } from '../src/cli/exit-codes.js';
import { demoLines } from '../src/cli/demo.js';
import { runCli, startCli, terminalRecords, until } from './helpers/cli.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cli-commands-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('modelbeam-batch', () => {
  test('--help lists the commands and the exit codes; --version prints the version', async () => {
    const help = await runCli(['--help']);
    expect(help.code).toBe(EXIT.OK);
    expect(help.stdout).toMatch(/run \[options\] <input>/);
    expect(help.stdout).toMatch(/fake-server/);
    expect(help.stdout).toMatch(/demo/);
    expect(help.stdout).toMatch(/Exit codes:\n {2}0 {3}every item done/);
    const runHelp = await runCli(['run', '--help']);
    expect(runHelp.stdout).toMatch(/--api-key <key> .*discouraged/);
    const version = await runCli(['--version']);
    expect(version.code).toBe(EXIT.OK);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  test('an unknown command is bad usage', async () => {
    const { code, stderr } = await runCli(['frobnicate']);
    expect(code).toBe(EXIT.USAGE);
    expect(stderr).toMatch(/unknown command 'frobnicate'/);
  });

  test('fake-server prints its URL and test key, serves the CLI, and stops on SIGINT', async () => {
    const server = startCli(['fake-server', '--port', '0', '--minute-ms', '1000', '--minute-limit', '500', '--pending-ms', '5', '--processing-ms', '20']);
    await until(() => /base URL: {2}(\S+)/.test(server.stdout()));
    const baseUrl = /base URL: {2}(\S+)/.exec(server.stdout())?.[1] ?? '';
    expect(server.stdout()).toMatch(/test key: {2}test-key/);
    const input = join(dir, 'in.jsonl');
    writeFileSync(input, `${Array.from({ length: 5 }, (_, i) => JSON.stringify({ prompt: `p${i}`, model: 'Flux1schnell', width: 512, height: 512, steps: 4 })).join('\n')}\n`);
    const out = join(dir, 'out.jsonl');
    const run = await runCli(['run', input, '--out', out, '--endpoint', 'txt2img', '--base-url', baseUrl, '--minute-ms', '1000', '--progress', 'none'], {
      MODELBEAM_API_KEY: 'test-key',
    });
    expect(run.code, run.stderr).toBe(EXIT.OK);
    expect(terminalRecords(out).size).toBe(5);
    server.child.kill('SIGINT');
    const { code } = await server.exited;
    expect(code).toBe(EXIT.OK);
    expect(server.stdout()).toMatch(/Fake server stopped after \d+ requests/);
  });

  test('demo runs a bundled batch against the in-process fake, with no key, and says where the results are', async () => {
    const { code, stdout, stderr } = await runCli(['demo', '--items', '60', '--minute-ms', '500', '--limit', '100', '--progress', 'none', '--dir', dir]);
    expect(code, stderr).toBe(EXIT.OK);
    expect(stdout).toMatch(/no key, no network/);
    // The estimate comes first (60 jobs of 512², 4 steps at $0.00102), then the run under a cap from it.
    expect(stdout).toMatch(/Estimate: \$0\.0612 for 60 jobs\n {2}priced: {4}60 of 62 lines, with 1 price call/);
    expect(stdout.indexOf('Estimate:')).toBeLessThan(stdout.indexOf('Batch complete'));
    expect(stdout).toMatch(/--max-spend 0\.07 /);
    expect(stdout).toMatch(/spend: {5}\$0\.06\d* of \$0\.07/);
    expect(stdout).toMatch(/Batch complete, with failures\./);
    expect(stdout).toMatch(/bad input: 2 lines/);
    expect(stdout).toMatch(/Results: {2}.*results\.jsonl/);
    const terminal = terminalRecords(join(dir, 'results.jsonl'));
    expect(terminal.size).toBe(62);
    expect([...terminal.values()].every((l) => l.length === 1)).toBe(true);
  });

  test('the demo input is deterministic and holds the failures it promises', () => {
    const lines = demoLines(240);
    expect(lines).toEqual(demoLines(240));
    expect(lines).toHaveLength(242);
    expect(lines.filter((l) => l.includes('FAIL:')).length).toBeGreaterThanOrEqual(3);
    expect(lines.filter((l) => l.includes('FAIL_ONCE:')).length).toBeGreaterThanOrEqual(1);
  });
});
