/**
 * The CLI's Prometheus endpoint (`run --metrics-port`), read over real HTTP
 * while a spawned CLI runs a batch against the fake server: every metric of
 * issue 14 moves (queue, in flight, budget remaining and limit per window,
 * gate and park, 429s by window, retries by reason, latency, jobs by state, spend).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { EXIT } from '../src/cli/exit-codes.js';
import { PROMETHEUS_CONTENT_TYPE } from '../src/metrics/prometheus.js';
import { startFakeModelBeam, type FakeModelBeamServer } from '../src/testing/fake-server.js';
import { freePort, jsonLines, runCli, startCli, terminalRecords } from './helpers/cli.js';
import { DAY_MS, fromPrometheus, ITEMS, MINUTE_MS, notMoving, scenarioServer, seriesId, squeeze, type Sample } from './helpers/metrics-scenario.js';

const KEY = 'mbk-metrics-4c1d2e3f4a5b6c7d';

let dir: string;
let server: FakeModelBeamServer;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'metrics-cli-'));
  server = await startFakeModelBeam(scenarioServer(KEY));
});
afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('modelbeam-batch run --metrics-port', () => {
  test('a running batch serves every metric at /metrics, and every one moves', async () => {
    const input = join(dir, 'in.jsonl');
    const out = join(dir, 'out.jsonl');
    const lines = Array.from({ length: ITEMS }, (_, i) => JSON.stringify({ id: `m${i}`, prompt: `metrics prompt ${i}`, model: 'Flux1schnell', width: 512, height: 512, steps: 4 }));
    writeFileSync(input, `${lines.join('\n')}\n`);
    const port = await freePort();
    const cli = startCli(
      [
        'run', input, '--out', out, '--endpoint', 'txt2img', '--base-url', server.baseUrl,
        '--minute-ms', String(MINUTE_MS), '--day-ms', String(DAY_MS), '--on-daily-limit', 'wait', '--max-resubmissions', '0', '--max-spend', '100',
        '--progress', 'none', '--log-format', 'json', '--metrics-port', String(port),
      ],
      { MODELBEAM_API_KEY: KEY },
    );
    const url = `http://127.0.0.1:${port}/metrics`;
    const scrapes: Sample[] = [];
    let exited = false;
    void cli.exited.then(() => {
      exited = true;
    });
    let contentType: string | null = null;
    let squeezed = false;
    const scrape = async (): Promise<void> => {
      try {
        const response = await fetch(url);
        contentType = response.headers.get('content-type');
        scrapes.push(fromPrometheus(await response.text()));
      } catch {
        // not listening yet, or just closed
      }
    };
    while (!exited) {
      await scrape();
      const last = scrapes.at(-1);
      // Another user of the account takes the minute window for a moment: the CLI meets a minute 429.
      if (!squeezed && (last?.get(seriesId('attempts')) ?? 0) > 40) {
        squeezed = true;
        squeeze(server);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    const { code } = await cli.exited;
    expect(cli.stderr()).toContain('serving Prometheus metrics');
    expect(code, cli.stderr().slice(-2000)).toBe(EXIT.ITEMS_FAILED); // some jobs failed (failureRate), none resubmitted
    expect(terminalRecords(out).size).toBe(ITEMS);
    expect(contentType).toBe(PROMETHEUS_CONTENT_TYPE);
    expect(scrapes.length).toBeGreaterThan(10);

    expect(notMoving(scrapes)).toEqual([]);
    // The spend: with --max-spend every submission is priced, and each charged price lands on the spend counter.
    const spend = scrapes.map((sample) => sample.get(seriesId('spend')) ?? 0);
    expect(spend[0]).toBe(0);
    expect(spend.at(-1)).toBeGreaterThan(0);
    const charged = jsonLines(out).filter((r) => r['state'] === 'submitted').reduce((sum, r) => sum + ((r['price'] as number | undefined) ?? 0), 0);
    expect(spend.at(-1)).toBeLessThanOrEqual(charged + 1e-9);
  }, 90_000);

  test('a busy metrics port is a usage error before anything is sent', async () => {
    const blocker = await startFakeModelBeam();
    const port = Number(new URL(blocker.baseUrl).port);
    try {
      const input = join(dir, 'busy.jsonl');
      writeFileSync(input, `${JSON.stringify({ prompt: 'x', model: 'Flux1schnell', width: 512, height: 512, steps: 4 })}\n`);
      const before = server.stats().requests;
      const { code, stderr } = await runCli(
        ['run', input, '--out', join(dir, 'busy.out.jsonl'), '--endpoint', 'txt2img', '--base-url', server.baseUrl, '--progress', 'none', '--metrics-port', String(port)],
        { MODELBEAM_API_KEY: KEY },
      );
      expect(code).toBe(EXIT.USAGE);
      expect(stderr).toMatch(new RegExp(`Cannot serve metrics on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`));
      expect(server.stats().requests).toBe(before);
    } finally {
      await blocker.close();
    }
  }, 30_000);
});

