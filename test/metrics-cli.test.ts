/**
 * The CLI's Prometheus endpoint (`run --metrics-port`), read over real HTTP
 * while a spawned CLI runs a batch against the fake server: every metric of
 * issue 14 moves (queue, in flight, budget remaining and limit per window,
 * gate and park, 429s by window, retries by reason, latency, jobs by state).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { EXIT } from '../src/cli/exit-codes.js';
import { PROMETHEUS_CONTENT_TYPE } from '../src/metrics/prometheus.js';
import { startFakeModelBeam, type FakeModelBeamServer } from '../src/testing/fake-server.js';
import { freePort, runCli, startCli, terminalRecords } from './helpers/cli.js';

const KEY = 'mbk-metrics-4c1d2e3f4a5b6c7d';
const ITEMS = 120;

let dir: string;
let server: FakeModelBeamServer;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'metrics-cli-'));
  server = await startFakeModelBeam({
    accounts: { [KEY]: 'acct-metrics' },
    limits: { minute: { limit: 100, windowMs: 1000 }, daily: { limit: 60, windowMs: 2500 } },
    // The daily quota counts submissions only: polls do not run it out.
    countPolls: 'minute',
    jobs: { pendingMs: 10, processingMs: 60, failureRate: 0.15, failureCodes: ['WORKER_TIMEOUT'] },
    faults: { error5xxRate: 0.04, error5xxStatuses: [500] },
    seed: 14,
  });
});
afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

/** `name{labels}` → value, from a Prometheus text body. */
export function parsePrometheus(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

/** Every value a series took across the scrapes (undefined: absent from a scrape). */
function history(scrapes: Map<string, number>[], series: string): (number | undefined)[] {
  return scrapes.map((s) => s.get(series));
}

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
        '--minute-ms', '1000', '--day-ms', '2500', '--on-daily-limit', 'wait', '--max-resubmissions', '0',
        '--progress', 'none', '--log-format', 'json', '--metrics-port', String(port),
      ],
      { MODELBEAM_API_KEY: KEY },
    );
    const url = `http://127.0.0.1:${port}/metrics`;
    const scrapes: Map<string, number>[] = [];
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
        scrapes.push(parsePrometheus(await response.text()));
      } catch {
        // not listening yet, or just closed
      }
    };
    while (!exited) {
      await scrape();
      const last = scrapes.at(-1);
      // Another user of the account takes the minute window for a moment: the CLI meets a minute 429.
      if (!squeezed && (last?.get('modelbeam_scheduler_attempts_total') ?? 0) > 40) {
        squeezed = true;
        server.setLimits({ minute: 1, daily: 50 });
        setTimeout(() => server.setLimits({ minute: 100 }), 300);
        // Connections reset under status polls: retried as requests whose outcome is unknown (polls are idempotent).
        server.failNext('reset', 3, (request) => !request.submit);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    const { code } = await cli.exited;
    expect(cli.stderr()).toContain('serving Prometheus metrics');
    expect(code, cli.stderr().slice(-2000)).toBe(EXIT.ITEMS_FAILED); // some jobs failed (failureRate), none resubmitted
    expect(terminalRecords(out).size).toBe(ITEMS);
    expect(contentType).toBe(PROMETHEUS_CONTENT_TYPE);
    expect(scrapes.length).toBeGreaterThan(10);

    const moved = (series: string): boolean => new Set(history(scrapes, series)).size >= 2;
    const grew = (series: string): boolean => {
      const values = history(scrapes, series).map((v) => v ?? 0);
      return (values.at(-1) as number) > (values[0] as number);
    };
    const rose = (series: string): boolean => history(scrapes, series).some((v) => (v ?? 0) > 0);
    const report: Record<string, boolean> = {
      queue: moved('modelbeam_scheduler_queue_size') && rose('modelbeam_scheduler_queue_size'),
      inFlight: moved('modelbeam_scheduler_in_flight') && rose('modelbeam_scheduler_in_flight'),
      minuteRemaining: moved('modelbeam_scheduler_budget_remaining{window="minute"}'),
      dailyRemaining: moved('modelbeam_scheduler_budget_remaining{window="daily"}'),
      minuteLimit: moved('modelbeam_scheduler_budget_limit{window="minute"}'),
      dailyLimit: moved('modelbeam_scheduler_budget_limit{window="daily"}'),
      gate: moved('modelbeam_scheduler_gate_closed') && rose('modelbeam_scheduler_gate_closed'),
      park: moved('modelbeam_scheduler_parked') && rose('modelbeam_scheduler_parked'),
      minute429: grew('modelbeam_scheduler_rate_limited_total{window="minute"}'),
      daily429: grew('modelbeam_scheduler_rate_limited_total{window="daily"}'),
      serverErrorRetries: grew('modelbeam_scheduler_retries_total{reason="server-error"}'),
      unknownOutcomeRetries: grew('modelbeam_scheduler_retries_total{reason="outcome-unknown"}'),
      attempts: grew('modelbeam_scheduler_attempts_total'),
      latency: grew('modelbeam_scheduler_request_duration_seconds_count') && grew('modelbeam_scheduler_request_duration_seconds_sum'),
      done: grew('modelbeam_client_jobs_total{state="done"}'),
      error: grew('modelbeam_client_jobs_total{state="error"}'),
      submitted: grew('modelbeam_client_jobs_submitted_total{endpoint="txt2img"}'),
      jobsInFlight: moved('modelbeam_client_jobs_in_flight') && rose('modelbeam_client_jobs_in_flight'),
      jobDuration: grew('modelbeam_client_job_duration_seconds_count'),
    };
    expect(Object.entries(report).filter(([, ok]) => !ok).map(([name]) => name)).toEqual([]);
    // The spend counter is served (it moves once submissions publish their price on the spend channel).
    expect(scrapes.at(-1)?.get('modelbeam_client_spend_usd_total')).toBe(0);
  }, 90_000);

  test('a busy metrics port is a usage error before anything is sent', async () => {
    const blocker = await startFakeModelBeam();
    const port = Number(new URL(blocker.baseUrl).port);
    try {
      const input = join(dir, 'busy.jsonl');
      writeFileSync(input, `${JSON.stringify({ prompt: 'x', model: 'Flux1schnell', width: 512, height: 512, steps: 4 })}\n`);
      const before = server.stats().requests.total;
      const { code, stderr } = await runCli(
        ['run', input, '--out', join(dir, 'busy.out.jsonl'), '--endpoint', 'txt2img', '--base-url', server.baseUrl, '--progress', 'none', '--metrics-port', String(port)],
        { MODELBEAM_API_KEY: KEY },
      );
      expect(code).toBe(EXIT.USAGE);
      expect(stderr).toMatch(new RegExp(`Cannot serve metrics on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`));
      expect(server.stats().requests.total).toBe(before);
    } finally {
      await blocker.close();
    }
  }, 30_000);
});

