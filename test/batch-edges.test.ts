/**
 * runBatch's side of issue 12: the configuration-error rule, `retryFailed` and the results file that
 * reopens a failed item, the results-file check, and the options module.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { runBatch } from '../src/batch/run-batch.js';
import { loadJournal, notAResultsFile } from '../src/batch/journal.js';
import { BATCH_DEFAULTS, BATCH_OPTION_KEYS, resolveBatchOptions } from '../src/batch/options.js';
import { isConfigurationError, transientCause } from '../src/batch/classify.js';
import { NotFoundError } from '../src/errors/not-found-error.js';
import { HttpError } from '../src/errors/http-error.js';
import { OutcomeUnknownError } from '../src/errors/outcome-unknown-error.js';
import { RetriesExhaustedError } from '../src/errors/retries-exhausted-error.js';
import { UnreadableResponseError } from '../src/modelbeam/transport.js';
import { jsonLines, terminalRecords } from './helpers/cli.js';
import { StubClient, item } from './helpers/batch-stub-client.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'batch-edges-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('configuration errors', () => {
  test('a 404 before any submission succeeded stops the run: nothing terminal, the item released, the URL named', async () => {
    const client = new StubClient({
      scheduler: { maxConcurrent: 1 },
      onSubmit: () => {
        throw new NotFoundError({});
      },
    });
    const out = join(dir, 'results.jsonl');
    const summary = await runBatch(client, Array.from({ length: 20 }, (_, i) => item(`c${i}`)), {
      out,
      maxInFlight: 1,
      apiBaseUrl: 'http://127.0.0.1:9/wrong/',
    }).summary;
    expect(summary.stopped?.reason).toBe('configuration');
    expect(summary.stopped?.message).toMatch(/^POST http:\/\/127\.0\.0\.1:9\/wrong\/txt2img answered HTTP 404 before any request of this run succeeded/);
    expect(summary).toMatchObject({ complete: false, run: { done: 0, failed: 0, invalid: 0 }, totals: { done: 0, failed: 0, invalid: 0 } });
    expect(client.submitCalls).toBe(1);
    expect(jsonLines(out).map((r) => `${String(r['id'])}:${String(r['state'])}`)).toEqual(['c0:submitting', 'c0:released']);
  });

  test('a 404 after a submission succeeded is the item’s own: it fails, and the run goes on', async () => {
    const client = new StubClient({
      scheduler: { maxConcurrent: 1 },
      onSubmit: (_endpoint, params) => {
        if (params['prompt'] === 'gone') throw new NotFoundError({});
      },
    });
    const out = join(dir, 'results.jsonl');
    const summary = await runBatch(client, [item('a'), item('b', 'gone'), item('c')], { out, maxInFlight: 1 }).summary;
    expect(summary).toMatchObject({ complete: true, stopped: undefined, run: { done: 2, failed: 1 } });
    expect(terminalRecords(out).get('b')?.[0]).toMatchObject({ state: 'failed', error: { code: 'NOT_FOUND' } });
  });

  test('a refused key (401) stays its own stop (exit 4 in the CLI), and its message names the base URL', async () => {
    const client = new StubClient({ scheduler: { maxConcurrent: 1 } });
    const out = join(dir, 'results.jsonl');
    const summary = await runBatch(client, [item('k', 'AUTH'), item('l')], { out, maxInFlight: 1, apiBaseUrl: 'http://127.0.0.1:9/api' }).summary;
    expect(summary.stopped?.reason).toBe('authentication');
    expect(summary.stopped?.message).toMatch(/refused \(HTTP 401 from http:\/\/127\.0\.0\.1:9\/api\)\..*or the base URL \(--base-url\)/);
    expect(terminalRecords(out).size).toBe(0);
  });

  test.each([
    ['404', new NotFoundError({}), true],
    ['405', new HttpError({ status: 405 }), true],
    ['410', new HttpError({ status: 410 }), true],
    ['400', new HttpError({ status: 400 }), false],
    ['422', Object.assign(new HttpError({ status: 422 }), { code: 'VALIDATION_FAILED' }), false],
    // A body cut by the network reads the same as a web page: ridden out as an unknown outcome, never a stop.
    ['a 2xx that is not JSON', new OutcomeUnknownError(1, new UnreadableResponseError('HTTP 200: not JSON', new TypeError('x'))), false],
    ['a dropped connection', new OutcomeUnknownError(1, Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })), false],
    ['retries exhausted', new RetriesExhaustedError(5, new Error('HTTP 503')), false],
  ])('isConfigurationError(%s) is %s', (_name, error, expected) => {
    expect(isConfigurationError(error)).toBe(expected);
  });

  test('transientCause keeps the lowest code of the cause chain', () => {
    const error = new OutcomeUnknownError(1, Object.assign(new Error('Headers Timeout Error'), { code: 'UND_ERR_HEADERS_TIMEOUT' }));
    expect(transientCause(error)).toEqual({ message: error.message, code: 'OUTCOME_UNKNOWN', causeCode: 'UND_ERR_HEADERS_TIMEOUT' });
  });
});

describe('lines refused as invalid', () => {
  test('are checked again by a later run: a run-wide setting that was wrong (the default endpoint) no longer burns them', async () => {
    const client = new StubClient();
    const out = join(dir, 'results.jsonl');
    const inputs = ['a', 'b'].map((id) => {
      const { endpoint: _, ...rest } = item(id);
      return rest;
    });
    const first = await runBatch(client, inputs, { out, endpoint: 'txt2imgg' }).summary;
    expect(first.run).toEqual({ done: 0, failed: 0, invalid: 2 });
    // The same wrong setting again: still invalid, and not written twice.
    const again = await runBatch(client, inputs, { out, endpoint: 'txt2imgg' }).summary;
    expect(again).toMatchObject({ skipped: 2, run: { done: 0, failed: 0, invalid: 0 }, totals: { invalid: 2 } });
    const fixed = await runBatch(client, inputs, { out, endpoint: 'txt2img' }).summary;
    expect(fixed).toMatchObject({ run: { done: 2, invalid: 0 }, totals: { done: 2, failed: 0, invalid: 0 }, complete: true });
    expect(terminalRecords(out).get('a')?.map((r) => r['state'])).toEqual(['invalid', 'done']);
    // Loaded back, the file agrees: the later record supersedes the refusal.
    expect((await loadJournal(out)).totals).toEqual({ done: 2, failed: 0, invalid: 0 });
  });

  test('a later run that starts one and stops before it ends: the summary totals no longer count it invalid, as the file does not', async () => {
    const client = new StubClient({ scheduler: { maxConcurrent: 1 } });
    const out = join(dir, 'results.jsonl');
    const inputs = [item('a', 'AUTH'), item('b')].map(({ endpoint: _, ...rest }) => rest);
    expect((await runBatch(client, inputs, { out, endpoint: 'txt2imgg' }).summary).totals).toEqual({ done: 0, failed: 0, invalid: 2 });
    // Fixed, but `a` draws a 401: the run stops with `a` started (pending) and `b` not read.
    const stopped = await runBatch(client, inputs, { out, endpoint: 'txt2img', maxInFlight: 1 }).summary;
    expect(stopped.stopped?.reason).toBe('authentication');
    expect(stopped.totals).toEqual((await loadJournal(out)).totals);
    expect(stopped.totals.invalid + stopped.pending).toBeLessThanOrEqual(2);
  });
});

describe('retryFailed', () => {
  test('runs again the failed items only; a plain rerun skips them', async () => {
    const client = new StubClient();
    const out = join(dir, 'results.jsonl');
    const inputs = [item('ok'), item('flaky', 'FAIL_ONCE:PROCESSING_ERROR'), item('bad', 'FAIL:AGE_RESTRICTED')];
    const first = await runBatch(client, inputs, { out, maxResubmissions: 0 }).summary;
    expect(first.run).toEqual({ done: 1, failed: 2, invalid: 0 });
    const plain = await runBatch(client, inputs, { out }).summary;
    expect(plain).toMatchObject({ skipped: 3, run: { done: 0, failed: 0 } });
    const retried = await runBatch(client, inputs, { out, retryFailed: true, maxResubmissions: 0 }).summary;
    expect(retried).toMatchObject({ skipped: 1, run: { done: 1, failed: 1 }, totals: { done: 2, failed: 1, invalid: 0 }, complete: true });
    expect(terminalRecords(out).get('flaky')?.map((r) => r['state'])).toEqual(['failed', 'done']);
  });

  test('the results file reopens a failed item that a retry submitted: a crash mid-retry resumes it by polling, not as failed', async () => {
    const out = join(dir, 'results.jsonl');
    const client = new StubClient();
    const { requestId } = await client.submit('txt2img', item('x'), {});
    writeFileSync(
      out,
      [
        { id: 'x', line: 1, state: 'failed', attempts: 1, resubmissions: 0, possibleDuplicate: false, error: { code: 'JOB_FAILED', message: 'm' }, at: 1 },
        { id: 'x', line: 1, state: 'submitting', attempt: 1, at: 2 },
        { id: 'x', line: 1, state: 'submitted', requestId, endpoint: 'txt2img', attempt: 1, resubmissions: 0, at: 3 },
        { id: 'y', line: 2, state: 'done', attempts: 1, resubmissions: 0, possibleDuplicate: false, at: 4 },
        { id: 'y', line: 2, state: 'submitting', attempt: 2, at: 5 },
      ]
        .map((r) => `${JSON.stringify(r)}\n`)
        .join(''),
    );
    const index = await loadJournal(out);
    expect(index.totals).toEqual({ done: 1, failed: 0, invalid: 0 });
    expect(index.open.get('x')).toMatchObject({ state: 'submitted', requestId });
    expect(index.open.has('y')).toBe(false); // a done item is never reopened
    const createdBefore = client.created;
    const summary = await runBatch(client, [item('x'), item('y')], { out }).summary;
    expect(summary).toMatchObject({ resumed: 1, skipped: 1, run: { done: 1 }, totals: { done: 2, failed: 0 } });
    expect(client.created).toBe(createdBefore); // polled, not resubmitted
  });
});

describe('the results-file check', () => {
  test.each([
    ['missing', undefined, undefined],
    ['empty', '', undefined],
    ['blank lines', '\n\n  \n', undefined],
    ['a results file', '{"id":"a","line":1,"state":"submitting","attempt":1,"at":1}\n', undefined],
    ['a torn first record', '{"id":"a","line":1,"sta', undefined],
    ['an input file', '{"id":"a","prompt":"p"}\n', 'line 1 is not a record of a results file'],
    ['text', 'hello\n', 'line 1 is not JSON'],
    ['a torn line that is not a record', '{"prompt":"p', 'line 1 is not JSON'],
    ['a JSON array', '[1,2]\n', 'line 1 is not a record'],
  ])('%s', (_name, content, expected) => {
    const path = join(dir, 'f.jsonl');
    if (content !== undefined) writeFileSync(path, content);
    const why = notAResultsFile(path);
    if (expected === undefined) expect(why).toBeUndefined();
    else expect(why).toContain(expected);
  });
});

describe('options', () => {
  test('one defaults object, every key known, and each bad value named', () => {
    expect(resolveBatchOptions({ out: 'r.jsonl' })).toMatchObject({ ...BATCH_DEFAULTS, errorsOut: 'r.jsonl.errors.jsonl' });
    expect(BATCH_OPTION_KEYS).toContain('retryFailed');
    expect(() => resolveBatchOptions({ out: 'r', retryFailed: 'yes' as never })).toThrow(/`retryFailed` to be a boolean/);
    expect(() => resolveBatchOptions({ out: 'r', apiBaseUrl: 3 as never })).toThrow(/`apiBaseUrl`/);
    expect(() => resolveBatchOptions({ out: 'r', graceMs: -1 })).toThrow(/`graceMs` to be an integer >= 0/);
    expect(() => resolveBatchOptions({ out: 'r', retryfailed: true } as never)).toThrow(/Unknown option `retryfailed`; expected one of .*`retryFailed`/);
  });
});
