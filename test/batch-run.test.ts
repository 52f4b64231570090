import { mkdtempSync, readFileSync, rmSync, writeFileSync, appendFileSync, mkdirSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { runBatch, BatchSetupError } from '../src/batch/run-batch.js';
import { readJsonlLines } from '../src/batch/input.js';
import { DailyQuotaExhaustedError } from '../src/errors/daily-quota-exhausted-error.js';
import { RetriesExhaustedError } from '../src/errors/retries-exhausted-error.js';
import type { BatchResult } from '../src/batch/types.js';
import { StubClient, item } from './helpers/batch-stub-client.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'batch-run-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function records(path: string): Record<string, unknown>[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
}

function terminalById(path: string): Map<string, Record<string, unknown>[]> {
  const out = new Map<string, Record<string, unknown>[]>();
  for (const r of records(path)) {
    if (r['state'] === 'done' || r['state'] === 'failed' || r['state'] === 'invalid') {
      const list = out.get(r['id'] as string) ?? [];
      list.push(r);
      out.set(r['id'] as string, list);
    }
  }
  return out;
}

describe('runBatch', () => {
  test('runs every item once, yields results with their ids as they complete, and writes one terminal record each', async () => {
    const client = new StubClient();
    const out = join(dir, 'results.jsonl');
    const inputs = Array.from({ length: 50 }, (_, i) => item(`item-${i}`));
    const batch = runBatch(client, inputs, { out });
    const seen: BatchResult[] = [];
    for await (const r of batch) seen.push(r);
    const summary = await batch.summary;
    expect(seen).toHaveLength(50);
    expect(new Set(seen.map((r) => r.id)).size).toBe(50);
    expect(seen.every((r) => r.state === 'done' && r.output?.resultUrl?.startsWith('https://') && r.attempts === 1)).toBe(true);
    expect(summary).toMatchObject({ complete: true, stopped: undefined, items: 50, run: { done: 50, failed: 0, invalid: 0 }, pending: 0 });
    const terminal = terminalById(out);
    expect(terminal.size).toBe(50);
    for (const list of terminal.values()) expect(list).toHaveLength(1);
    // every item: submitting, submitted, done
    expect(records(out)).toHaveLength(150);
    expect(client.created).toBe(50);
  });

  test('reads input only as fast as it drains: items in flight and requests queued stay bounded', async () => {
    const client = new StubClient({ latencyMs: 1, jobMs: 2, scheduler: { maxConcurrent: 8 } });
    const out = join(dir, 'results.jsonl');
    const maxInFlight = 40;
    const maxQueued = 16;
    let pulled = 0;
    let finished = 0;
    let maxAhead = 0;
    let maxSchedulerQueue = 0;
    const total = 10_000;
    function* generate(): Generator<Record<string, unknown>> {
      for (let i = 0; i < total; i++) {
        maxAhead = Math.max(maxAhead, pulled - finished);
        maxSchedulerQueue = Math.max(maxSchedulerQueue, client.scheduler.size);
        pulled++;
        yield item(`i${i}`);
      }
    }
    const batch = runBatch(client, generate(), {
      out,
      maxInFlight,
      maxQueued,
      onResult: () => {
        finished++;
      },
    });
    let maxActive = 0;
    const timer = setInterval(() => {
      maxActive = Math.max(maxActive, batch.progress().inFlight);
    }, 5);
    const summary = await batch.summary;
    clearInterval(timer);
    expect(summary.run.done).toBe(total);
    expect(maxActive).toBeLessThanOrEqual(maxInFlight);
    // Pulled but unfinished items never exceed the in-flight cap (plus the one being handed over).
    expect(maxAhead).toBeLessThanOrEqual(maxInFlight + 1);
    // The scheduler's queue holds at most maxQueued submits plus one poll per item in flight.
    expect(maxSchedulerQueue).toBeLessThanOrEqual(maxQueued + maxInFlight);
  }, 60_000);

  test('reports bad input with line numbers, in the summary and the errors file, and goes on', async () => {
    const client = new StubClient();
    const input = join(dir, 'input.jsonl');
    const out = join(dir, 'results.jsonl');
    const lines = [
      JSON.stringify(item('ok-1')), //                                         1
      '{"id": "broken", "prompt": ', //                                          2 malformed
      '[1, 2, 3]', //                                                            3 not an object
      JSON.stringify({ ...item('x'), id: { nested: true } }), //                 4 bad id
      JSON.stringify({ id: 'no-endpoint', prompt: 'p' }), //                     5 missing endpoint
      JSON.stringify({ ...item('bad-endpoint'), endpoint: 'txt2hologram' }), //  6 unknown endpoint
      JSON.stringify(item('too-wide', 'p', { width: 100_000 })), //             7 out of range
      JSON.stringify({ id: 'no-prompt', endpoint: 'txt2img', model: 'Flux1schnell', width: 512, height: 512, steps: 4 }), // 8 missing field
      '', //                                                                     9 blank: not an item
      JSON.stringify(item('ok-1', 'again')), //                                 10 duplicate id
      JSON.stringify(item('ok-2')), //                                          11
    ];
    writeFileSync(input, `${lines.join('\n')}\n`);
    const batch = runBatch(client, readJsonlLines(input), { out });
    const summary = await batch.summary;
    expect(summary.run).toEqual({ done: 2, failed: 0, invalid: 7 });
    expect(summary.duplicateIds).toBe(1);
    expect(summary.items).toBe(10);
    const byLine = new Map(summary.invalidLines.map((l) => [l.line, l.kind]));
    expect(Object.fromEntries(byLine)).toEqual({
      2: 'malformed-json',
      3: 'not-an-object',
      4: 'bad-id',
      5: 'missing-endpoint',
      6: 'unknown-endpoint',
      7: 'invalid-params',
      8: 'invalid-params',
      10: 'duplicate-id',
    });
    const errors = records(`${out}.errors.jsonl`);
    expect(errors.map((e) => e['line'])).toEqual([2, 3, 4, 5, 6, 7, 8, 10]);
    expect(String(errors.find((e) => e['line'] === 7)?.['message'])).toMatch(/width/);
    expect(String(errors.find((e) => e['line'] === 8)?.['message'])).toMatch(/missing required field\(s\): prompt/);
    // nothing was sent for the bad lines
    expect(client.submitCalls).toBe(2);
    // A second run skips everything, and re-reports only the duplicate
    const again = await runBatch(new StubClient(), readJsonlLines(input), { out }).summary;
    expect(again).toMatchObject({ complete: true, skipped: 9, run: { done: 0, failed: 0, invalid: 0 }, duplicateIds: 1 });
  });

  test('job failures: retryable codes are resubmitted within the budget, content errors never', async () => {
    const client = new StubClient();
    const out = join(dir, 'results.jsonl');
    const inputs = [
      item('timeout-always', 'FAIL:WORKER_TIMEOUT'),
      item('timeout-once', 'FAIL_ONCE:WORKER_TIMEOUT'),
      item('processing', 'FAIL:PROCESSING_ERROR'),
      item('age', 'FAIL:AGE_RESTRICTED'),
    ];
    const results = new Map<string, BatchResult>();
    for await (const r of runBatch(client, inputs, { out, maxResubmissions: 2 })) results.set(r.id, r);
    expect(results.get('timeout-always')).toMatchObject({ state: 'failed', attempts: 3, resubmissions: 2, error: { code: 'JOB_FAILED', jobErrorCode: 'WORKER_TIMEOUT' } });
    expect(results.get('timeout-once')).toMatchObject({ state: 'done', attempts: 2, resubmissions: 1, possibleDuplicate: false });
    expect(results.get('processing')).toMatchObject({ state: 'failed', attempts: 2, resubmissions: 1 });
    expect(results.get('age')).toMatchObject({ state: 'failed', attempts: 1, resubmissions: 0, error: { jobErrorCode: 'AGE_RESTRICTED' } });
  });

  test('an unknown submission outcome is resubmitted and flagged as a possible duplicate', async () => {
    const client = new StubClient();
    const out = join(dir, 'results.jsonl');
    const results: BatchResult[] = [];
    for await (const r of runBatch(client, [item('lost', 'UNKNOWN_ONCE'), item('fine')], { out })) results.push(r);
    const lost = results.find((r) => r.id === 'lost');
    expect(lost).toMatchObject({ state: 'done', possibleDuplicate: true, attempts: 2, resubmissions: 1 });
    expect(results.find((r) => r.id === 'fine')?.possibleDuplicate).toBe(false);
    expect(client.createdByText.get('UNKNOWN_ONCE')).toBe(2); // the duplicate really exists, and is flagged
  });

  test('resumes from the results file: skips finished items, polls known request ids, resubmits unknown outcomes flagged', async () => {
    const first = new StubClient({ jobMs: 60_000 });
    const out = join(dir, 'results.jsonl');
    // Prepare a job that exists on "the server" of the second client.
    const second = new StubClient();
    const { requestId } = await second.submit('txt2img', item('polled'), {});
    const createdBefore = second.created;
    writeFileSync(
      out,
      [
        { id: 'finished', line: 1, state: 'submitting', attempt: 1, at: 1 },
        { id: 'finished', line: 1, state: 'done', attempts: 1, resubmissions: 0, possibleDuplicate: false, at: 2 },
        { id: 'polled', line: 2, state: 'submitting', attempt: 1, at: 3 },
        { id: 'polled', line: 2, state: 'submitted', requestId, endpoint: 'txt2img', attempt: 1, resubmissions: 0, at: 4 },
        { id: 'unknown', line: 3, state: 'submitting', attempt: 1, at: 5 },
      ]
        .map((r) => JSON.stringify(r))
        .join('\n') + '\n{"id":"torn","line":4,"sta',
    );
    void first;
    const results = new Map<string, BatchResult>();
    const batch = runBatch(second, [item('finished'), item('polled'), item('unknown'), item('torn'), item('fresh')], { out });
    for await (const r of batch) results.set(r.id, r);
    const summary = await batch.summary;
    expect([...results.keys()].sort()).toEqual(['fresh', 'polled', 'torn', 'unknown']);
    expect(results.get('polled')).toMatchObject({ state: 'done', resumed: true, requestId, possibleDuplicate: false, attempts: 1 });
    expect(results.get('unknown')).toMatchObject({ state: 'done', resumed: true, possibleDuplicate: true, resubmissions: 1, attempts: 2 });
    expect(results.get('fresh')?.possibleDuplicate).toBe(false);
    expect(second.created - createdBefore).toBe(3); // unknown, torn, fresh — never "polled"
    expect(summary).toMatchObject({ skipped: 1, resumed: 1, resubmittedUnknown: 1, possibleDuplicates: 1, journal: { tornTail: true } });
    expect(summary.totals).toEqual({ done: 5, failed: 0, invalid: 0 });
    // the torn fragment got its own line; every id has exactly one terminal record
    const terminal = terminalById(out);
    expect([...terminal.keys()].sort()).toEqual(['finished', 'fresh', 'polled', 'torn', 'unknown']);
    for (const list of terminal.values()) expect(list).toHaveLength(1);
  });

  test('a 401 stops dispatch, retries nothing, and leaves the rest resumable', async () => {
    const client = new StubClient({ scheduler: { maxConcurrent: 1 } });
    const out = join(dir, 'results.jsonl');
    const inputs = [item('a'), item('b'), item('revoked', 'AUTH'), ...Array.from({ length: 20 }, (_, i) => item(`later-${i}`))];
    const summary = await runBatch(client, inputs, { out, maxInFlight: 1 }).summary;
    expect(summary.stopped?.reason).toBe('authentication');
    expect(summary.stopped?.message).toMatch(/refused \(HTTP 401\).*nothing was retried/);
    expect(summary.run.done).toBe(2);
    expect(summary.complete).toBe(false);
    expect(client.submitCalls).toBe(3); // nothing after the 401
    const revoked = records(out).filter((r) => r['id'] === 'revoked');
    expect(revoked.map((r) => r['state'])).toEqual(['submitting', 'released']);
    // resumable: a fixed key finishes the rest, with no duplicates
    const fixed = new StubClient();
    const resumed = await runBatch(fixed, [item('a'), item('b'), item('revoked', 'fixed'), ...inputs.slice(3)], { out }).summary;
    expect(resumed).toMatchObject({ complete: true, skipped: 2, possibleDuplicates: 0, run: { done: 21 } });
  });

  test('an exhausted daily quota stops the run with the reset time; the resume finishes it', async () => {
    const resetAt = Date.now() + 3_600_000;
    let allowed = 5;
    const client = new StubClient({
      scheduler: { maxConcurrent: 1 },
      onSubmit: () => {
        if (allowed-- <= 0) throw new DailyQuotaExhaustedError(resetAt);
      },
    });
    const out = join(dir, 'results.jsonl');
    const inputs = Array.from({ length: 12 }, (_, i) => item(`d${i}`));
    const summary = await runBatch(client, inputs, { out, maxInFlight: 1 }).summary;
    expect(summary.stopped).toMatchObject({ reason: 'daily-quota', resetAt });
    expect(summary.stopped?.message).toContain(new Date(resetAt).toISOString());
    expect(summary.run.done).toBe(5);
    const resumed = await runBatch(new StubClient(), inputs, { out }).summary;
    expect(resumed).toMatchObject({ complete: true, skipped: 5, run: { done: 7 }, possibleDuplicates: 0 });
  });

  test('stop(): no new item starts, jobs waiting for results stay checkpointed and are polled (not resubmitted) on resume', async () => {
    const client = new StubClient({ jobMs: 60_000 });
    const out = join(dir, 'results.jsonl');
    const inputs = Array.from({ length: 30 }, (_, i) => item(`s${i}`));
    const batch = runBatch(client, inputs, { out, maxInFlight: 10 });
    await new Promise((r) => setTimeout(r, 100));
    const summary = await batch.stop({ graceMs: 1000 });
    expect(summary.stopped?.reason).toBe('stopped');
    expect(summary.pending).toBe(10);
    expect(client.created).toBe(10);
    // Resume against the same "server", where the jobs have finished by now.
    for (const job of client.jobs.values()) job.doneAt = 0;
    client.jobMs = 5;
    const again = await runBatch(client, inputs, { out }).summary;
    expect(again).toMatchObject({ complete: true, resumed: 10, possibleDuplicates: 0, run: { done: 30 } });
    expect(client.created).toBe(30);
  });

  test('a run of transient failures stops the batch as api-unavailable, leaving items pending', async () => {
    const client = new StubClient({
      onSubmit: () => {
        throw new RetriesExhaustedError(5, new Error('HTTP 503'));
      },
    });
    const out = join(dir, 'results.jsonl');
    const summary = await runBatch(client, Array.from({ length: 100 }, (_, i) => item(`t${i}`)), {
      out,
      maxInFlight: 1,
      maxConsecutiveTransient: 3,
    }).summary;
    expect(summary.stopped?.reason).toBe('api-unavailable');
    expect(summary.run).toEqual({ done: 0, failed: 0, invalid: 0 });
    expect(client.submitCalls).toBe(3);
  });

  test('an unwritable results file fails at once, before any request', async () => {
    const client = new StubClient();
    const blocked = join(dir, 'not-a-dir');
    writeFileSync(blocked, 'x');
    const batch = runBatch(client, [item('a')], { out: join(blocked, 'results.jsonl') });
    await expect(batch.summary).rejects.toThrow(BatchSetupError);
    await expect(batch.summary).rejects.toThrow(/Cannot write the results file .*not-a-dir/);
    expect(client.submitCalls).toBe(0);
  });

  test('two runs never write one results file at once', async () => {
    const client = new StubClient({ jobMs: 200 });
    const out = join(dir, 'results.jsonl');
    const first = runBatch(client, [item('a')], { out });
    await new Promise((r) => setTimeout(r, 50));
    const second = runBatch(client, [item('b')], { out });
    await expect(second.summary).rejects.toThrow(/in use by another run/);
    await first.summary;
    // after the first run ends, the file is free again
    const third = await runBatch(client, [item('a'), item('b')], { out }).summary;
    expect(third.run.done).toBe(1);
  });

  test('corrupt lines in the middle of the results file are counted and skipped', async () => {
    const out = join(dir, 'results.jsonl');
    writeFileSync(out, '{"id":"a","line":1,"state":"done","attempts":1,"resubmissions":0,"possibleDuplicate":false,"at":1}\nnot json\n{"no":"id"}\n');
    const summary = await runBatch(new StubClient(), [item('a'), item('b')], { out }).summary;
    expect(summary).toMatchObject({ skipped: 1, run: { done: 1 }, journal: { corruptLines: 2, tornTail: false } });
  });

  test('bad options name what is wrong', () => {
    const client = new StubClient();
    expect(() => runBatch(client, [], {} as never)).toThrow(/`out`/);
    expect(() => runBatch(client, [], { out: 'x', maxInFlight: 0 })).toThrow(/`maxInFlight` to be an integer >= 1/);
    expect(() => runBatch(client, [], { out: 'x', onDailyLimit: 'later' as never })).toThrow(/`onDailyLimit`/);
    expect(() => runBatch(client, [], { out: 'x', maxInflight: 3 } as never)).toThrow(/Unknown option `maxInflight`/);
    expect(() => runBatch({} as never, [], { out: 'x' })).toThrow(/ModelBeamClient/);
    expect(() => runBatch(client, 5 as never, { out: 'x' })).toThrow(/iterable/);
  });
});

void appendFileSync;
void mkdirSync;
void chmodSync;
