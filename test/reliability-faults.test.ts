/**
 * The fault matrix of issue 7, small enough for CI: a batch through
 * `runBatch` + `ModelBeamClient` (real HTTP, a 1 s "minute") against the fake
 * server, once per combination of 5xx, resets, slow responses, malformed
 * JSON, "accepted, then the connection dropped", missing headers and job
 * failures (none; each alone; a strength-2 covering array whose first row is
 * every fault at once), resumed until complete. For every row: 0 lost items,
 * exactly one terminal record per item (reported once), each agreeing with
 * the server's job, and a second job for an input only where its submission's
 * outcome was unknown, and then flagged `possibleDuplicate` (jobs counted on
 * the server per input prompt). The table is printed; the `fault-matrix`
 * bench scenario runs the same matrix larger.
 *
 * Also the key revoked mid-run (401) at the library level (the CLI's case is
 * in `cli-run.test.ts`): dispatch stops within one request, nothing is
 * retried or polled after, and the batch resumes once the key is fixed.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runBatch } from '../src/batch/run-batch.js';
import { ModelBeamClient } from '../src/modelbeam/client.js';
import { startFakeModelBeam } from '../src/testing/index.js';
import { until } from './modelbeam-harness.js';
import {
  coveringRows,
  coversAllPairs,
  FAULT_FACTORS,
  matrixRows,
  printMatrix,
  rowLabel,
  runMatrix,
  type RowOutcome,
} from '../bench/scenarios/fault-matrix.js';

const ITEMS = 100;
const LIMIT = 60; // per 1 s window: a batch spans several windows, so the limit binds

describe('the fault matrix', () => {
  it('the covering array covers every pair of faults in all four on/off combinations, and its first row is every fault', () => {
    const rows = coveringRows();
    expect(rows).toHaveLength(6);
    expect(coversAllPairs(rows)).toBe(true);
    expect(rows[0]).toEqual([...FAULT_FACTORS]);
    // dropping any row breaks the coverage: six rows are needed and used
    for (let i = 0; i < rows.length; i++) expect(coversAllPairs(rows.filter((_, j) => j !== i))).toBe(false);
    expect(matrixRows().map(rowLabel)).toEqual(expect.arrayContaining(['none', 'ALL', ...FAULT_FACTORS]));
  });

  it(`every combination over a batch of ${ITEMS}: 0 lost, one reported terminal state each, duplicates only where the outcome was unknown, and flagged`, async () => {
    const rows = matrixRows();
    const outcomes: RowOutcome[] = await runMatrix(rows, { items: ITEMS, limit: LIMIT, seed: Number(process.env['FAULT_MATRIX_SEED'] ?? 7), concurrency: 5 });
    console.log(`\n${printMatrix(outcomes, `Fault matrix (${rows.length} combinations × ${ITEMS} items)`)}\n`);
    expect(outcomes).toHaveLength(rows.length);
    for (const o of outcomes) {
      const label = rowLabel(o.row);
      expect(o.complete, `${label}: complete within ${o.runs} runs (stops: ${o.stops.join(', ')})`).toBe(true);
      expect(o.lost, `${label}: lost items`).toBe(0);
      expect(o.multiTerminal, `${label}: items with several terminal records`).toBe(0);
      expect(o.misreported, `${label}: items not reported exactly once`).toBe(0);
      expect(o.done + o.failed, label).toBe(ITEMS);
      expect(o.inconsistent, `${label}: terminal records that disagree with the server`).toEqual([]);
      expect(o.unflagged, `${label}: duplicate jobs not flagged`).toEqual([]);
      // Job failures are the only reason an item may fail here, and only when they are injected.
      if (!o.row.faults.includes('job-fail')) expect(o.failed, `${label}: failed without job failures`).toBe(0);
      // Without a fault that loses a submission's answer, no item is flagged at all.
      const mayLoseAnswers = ['5xx', 'reset', 'malformed', 'accept-reset'].some((f) => o.row.faults.includes(f as never));
      if (!mayLoseAnswers) expect(o.flagged, `${label}: flagged without a lost answer`).toBe(0);
      // Each fault that is on was injected at least once (the row tests what it says).
      const kinds: Record<string, string[]> = {
        '5xx': ['500', '502', '503', '504'],
        reset: ['reset'],
        slow: ['slow'],
        malformed: ['malformed-json'],
        'accept-reset': ['accept-then-reset'],
      };
      for (const f of o.row.faults) {
        const k = kinds[f];
        if (k) expect(k.reduce((n, kind) => n + (o.injected[kind] ?? 0), 0), `${label}: ${f} injected`).toBeGreaterThan(0);
      }
    }
    // The baseline needs one run, sends about one submission and one or two polls per item, and meets no 429.
    const base = outcomes[0] as RowOutcome;
    expect(base.runs).toBe(1);
    expect(base.rateLimited).toBe(0);
    expect(base.requestsPerItem).toBeLessThan(4);
  }, 90_000);
});

describe('a key revoked mid-run (401), library level: client + runBatch over real HTTP', () => {
  it('dispatch stops within one request, nothing is retried or polled after, and the run resumes once the key is fixed, with no duplicates', async () => {
    const key = 'mbk-revoked-mid-run-0001';
    const server = await startFakeModelBeam({ accounts: { [key]: 'acct-401' }, limits: { minute: { limit: 300, windowMs: 1000 } }, jobs: { pendingMs: 5, processingMs: 150 } });
    const dir = mkdtempSync(join(tmpdir(), 'rel-401-'));
    const make = (): ModelBeamClient =>
      new ModelBeamClient({
        apiKey: key,
        baseUrl: server.baseUrl,
        scheduler: { windows: { minuteMs: 1000 }, maxConcurrent: 4 },
        polling: { minIntervalMs: 20, maxIntervalMs: 300, initialEstimateMs: 150 },
      });
    try {
      const items = Array.from({ length: 120 }, (_, i) => ({ id: `k${i}`, prompt: `revoked key item ${i}`, model: 'Flux1schnell', width: 512, height: 512, steps: 4 }));
      const out = join(dir, 'out.jsonl');
      const first = make();
      let dispatchedAfterStop = 0;
      let stoppedAt: { inFlight: number; dispatched: number } | undefined;
      first.scheduler.on('dispatched', () => {
        if (stoppedAt) dispatchedAfterStop++;
      });
      first.scheduler.on('paused', (e) => {
        if (e.reason === 'authentication') stoppedAt = { inFlight: first.scheduler.stats().inFlight, dispatched: first.scheduler.stats().counts.dispatched };
      });
      let results = 0;
      const batch = runBatch(first, items, { out, endpoint: 'txt2img', maxInFlight: 16, onResult: () => void results++ });
      await until(() => results >= 20, 'twenty results before the key is revoked', 15_000);
      const before = server.stats().unauthorized401;
      server.revokeKey(key);
      const summary = await batch.summary;
      expect(summary.stopped?.reason).toBe('authentication');
      expect(summary.stopped?.message).toMatch(/HTTP 401.*nothing was retried/);
      expect(stoppedAt, 'the scheduler stopped on the 401').toBeDefined();
      // Within one request: nothing was dispatched after the first 401; only requests already on the wire met the bad key.
      expect(dispatchedAfterStop).toBe(0);
      const refused = server.stats().unauthorized401 - before;
      expect(refused).toBeGreaterThanOrEqual(1);
      expect(refused).toBeLessThanOrEqual(1 + (stoppedAt?.inFlight ?? 0));
      expect(first.scheduler.stats().counts.retried).toBe(0);
      // Nothing else goes out: no retries, no polls of the jobs in flight.
      const requestsAfter = server.stats().requests;
      await new Promise((r) => setTimeout(r, 400));
      expect(server.stats().requests).toBe(requestsAfter);
      // Later calls fail at once, without a request.
      await expect(first.balance()).rejects.toMatchObject({ code: 'AUTHENTICATION_FAILED' });
      expect(server.stats().requests).toBe(requestsAfter);
      await first.close();

      // The key is fixed: a new client resumes the same results file.
      server.addKey(key, 'acct-401');
      const second = make();
      const resumed = await runBatch(second, items, { out, endpoint: 'txt2img', maxInFlight: 16 }).summary;
      await second.close();
      expect(resumed).toMatchObject({ complete: true, stopped: undefined, possibleDuplicates: 0 });
      expect(resumed.skipped + resumed.run.done).toBe(items.length);
      const terminal = new Map<string, number>();
      for (const line of readFileSync(out, 'utf8').split('\n')) {
        if (line.trim() === '') continue;
        const r = JSON.parse(line) as { id: string; state: string };
        if (r.state === 'done' || r.state === 'failed' || r.state === 'invalid') terminal.set(r.id, (terminal.get(r.id) ?? 0) + 1);
      }
      expect(terminal.size).toBe(items.length);
      expect([...terminal.values()].every((n) => n === 1)).toBe(true);
      // The refused submissions created no job: one job per input.
      const perPrompt = new Map<string, number>();
      for (const job of server.jobs.list()) perPrompt.set(String(job.params['prompt']), (perPrompt.get(String(job.params['prompt'])) ?? 0) + 1);
      expect(perPrompt.size).toBe(items.length);
      expect([...perPrompt.values()].every((n) => n === 1)).toBe(true);
      console.log(`401 mid-run: ${results} results before the revocation, ${refused} requests met the revoked key (${stoppedAt?.inFlight ?? 0} others in flight), 0 dispatched after; the resume: ${resumed.resumed} resumed by polling, ${resumed.run.done} done`);
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);

  it('pending generate() calls all settle (done or AuthenticationError), none hangs, and later calls send nothing', async () => {
    const key = 'mbk-revoked-generate-0002';
    const server = await startFakeModelBeam({ accounts: { [key]: 'acct-401b' }, limits: { minute: { limit: 300, windowMs: 1000 } }, jobs: { pendingMs: 5, processingMs: 100 } });
    const client = new ModelBeamClient({
      apiKey: key,
      baseUrl: server.baseUrl,
      scheduler: { windows: { minuteMs: 1000 }, maxConcurrent: 2 },
      polling: { minIntervalMs: 20, maxIntervalMs: 200, initialEstimateMs: 100 },
      jobRetryDelayMs: 0,
    });
    try {
      const calls = Array.from({ length: 30 }, (_, i) =>
        client.generate('txt2img', { prompt: `generate ${i}`, model: 'Flux1schnell', width: 512, height: 512, steps: 4 }).then(
          () => 'done',
          (e: unknown) => (e as { code?: string }).code ?? String(e),
        ),
      );
      await until(() => server.jobs.size >= 5, 'some jobs created', 10_000);
      server.revokeKey(key);
      const outcomes = await Promise.race([Promise.all(calls), new Promise<string[]>((r) => setTimeout(() => r(['TIMEOUT']), 10_000))]);
      expect(outcomes).not.toContain('TIMEOUT');
      expect(outcomes.every((o) => o === 'done' || o === 'AUTHENTICATION_FAILED')).toBe(true);
      expect(outcomes.filter((o) => o === 'AUTHENTICATION_FAILED').length).toBeGreaterThan(0);
      expect(client.scheduler.stats().counts.retried).toBe(0);
      const requests = server.stats().requests;
      await expect(client.submit('txt2img', { prompt: 'after', model: 'Flux1schnell', width: 512, height: 512, steps: 4 })).rejects.toMatchObject({ code: 'AUTHENTICATION_FAILED' });
      expect(server.stats().requests).toBe(requests);
    } finally {
      await client.close();
      await server.close();
    }
  }, 30_000);
});

describe('stopping with requests on the wire', () => {
  it('leaves no timer of the batch behind once the summary is in (a 5 s cap used to outlive the stop)', async () => {
    const server = await startFakeModelBeam({ jobs: { pendingMs: 5, processingMs: 60_000 }, faults: { slowRate: 1, slowMs: 1500 } });
    const client = new ModelBeamClient({ apiKey: 'test-key', baseUrl: server.baseUrl, polling: { minIntervalMs: 50, maxIntervalMs: 500, initialEstimateMs: 100 } });
    const dir = mkdtempSync(join(tmpdir(), 'rel-stop-'));
    // The system clock, counting the timers the batch sets and has not cleared or seen fire.
    const pending = new Set<ReturnType<typeof setTimeout>>();
    const clock = {
      now: () => Date.now(),
      setTimeout: (fn: () => void, ms: number) => {
        const handle = setTimeout(() => {
          pending.delete(handle);
          fn();
        }, ms);
        pending.add(handle);
        return handle;
      },
      clearTimeout: (handle: unknown) => {
        pending.delete(handle as ReturnType<typeof setTimeout>);
        clearTimeout(handle as ReturnType<typeof setTimeout>);
      },
    };
    try {
      const items = Array.from({ length: 6 }, (_, i) => ({ id: `s${i}`, prompt: `stop ${i}`, model: 'Flux1schnell', width: 512, height: 512, steps: 4 }));
      const batch = runBatch(client, items, { out: join(dir, 'out.jsonl'), endpoint: 'txt2img', clock, fsyncIntervalMs: 200 });
      await until(() => server.stats().requests >= 3, 'requests on the wire', 5000);
      const summary = await batch.stop({ graceMs: 50 });
      expect(summary.stopped?.reason).toBe('stopped');
      expect(pending.size).toBe(0);
    } finally {
      await client.close();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
