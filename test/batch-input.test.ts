import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { autoId, checkReadable, countLines, parseInput, readJsonlLines } from '../src/batch/input.js';
import { validateBatchItem } from '../src/batch/run-batch.js';
import { formatSummary } from '../src/batch/summary.js';
import type { BatchSummary } from '../src/batch/types.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'batch-input-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const defaults = { endpoint: 'txt2img', validate: validateBatchItem };
const good = { prompt: 'a fox', model: 'Flux1schnell', width: 512, height: 512, steps: 4 };
const raw = (line: number, value: unknown): { line: number; raw: string } => ({ line, raw: typeof value === 'string' ? value : JSON.stringify(value) });

describe('parseInput', () => {
  test.each([
    ['malformed JSON', raw(3, '{"prompt": "x"'), 'malformed-json', /Line 3 is not valid JSON/],
    ['an array', raw(3, [1]), 'not-an-object', /must be a JSON object, got an array/],
    ['a string', raw(3, '"text"'), 'not-an-object', /got a string/],
    ['null', raw(3, 'null'), 'not-an-object', /got null/],
    ['an object id', raw(3, { ...good, id: { a: 1 } }), 'bad-id', /`id` must be/],
    ['an empty id', raw(3, { ...good, id: '' }), 'bad-id', /`id` must be/],
    ['an unknown endpoint', raw(3, { ...good, endpoint: 'txt2hologram' }), 'unknown-endpoint', /Unknown endpoint "txt2hologram"/],
    ['a non-string endpoint', raw(3, { ...good, endpoint: 5 }), 'unknown-endpoint', /`endpoint` must be a non-empty string/],
    ['params that are not an object', raw(3, { params: 'x' }), 'invalid-params', /`params` must be an object/],
    ['a width out of range', raw(3, { ...good, width: 4096 }), 'invalid-params', /width: The width field must be between 256 and 2048/],
    ['steps out of range', raw(3, { ...good, steps: 0 }), 'invalid-params', /steps/],
    ['a missing prompt', raw(3, { model: 'Flux1schnell', width: 512, height: 512, steps: 4 }), 'invalid-params', /missing required field\(s\): prompt/],
    ['a bad priority', raw(3, { ...good, priority: 'high' }), 'invalid-params', /`priority` must be a finite number/],
  ])('%s is refused with its line number', (_name, input, kind, message) => {
    const parsed = parseInput(input, 99, defaults);
    expect(parsed).toMatchObject({ status: 'invalid', line: 3, kind });
    expect(parsed?.status === 'invalid' ? parsed.message : '').toMatch(message);
  });

  test('a missing endpoint with no default', () => {
    expect(parseInput(raw(1, good), 1, { validate: validateBatchItem })).toMatchObject({ status: 'invalid', kind: 'missing-endpoint' });
  });

  test('blank lines are not items; a BOM on line 1 is ignored', () => {
    expect(parseInput(raw(4, '   '), 4, defaults)).toBeUndefined();
    expect(parseInput({ line: 1, raw: `\uFEFF${JSON.stringify({ ...good, id: 'x' })}` }, 1, defaults)).toMatchObject({ status: 'ok', id: 'x' });
  });

  test('flat parameters, a params object, defaults, meta and priority', () => {
    const flat = parseInput(raw(1, { id: 'f', ...good, meta: { row: 7 }, priority: 2 }), 1, { ...defaults, params: { guidance: 3 } });
    expect(flat).toEqual({ status: 'ok', id: 'f', line: 1, endpoint: 'txt2img', params: { guidance: 3, ...good }, meta: { row: 7 }, priority: 2 });
    const nested = parseInput(raw(2, { id: 9, endpoint: 'txt2img', params: good }), 2, { validate: validateBatchItem, params: { steps: 8 } });
    expect(nested).toMatchObject({ status: 'ok', id: '9', params: { ...good } });
    // an object input (not a raw line) counts its position as its line
    expect(parseInput({ ...good }, 5, defaults)).toMatchObject({ status: 'ok', line: 5, id: expect.stringMatching(/^line-5-[0-9a-f]{12}$/) });
  });

  test('ids without an `id` field are stable: line number plus a hash of the content', () => {
    const a = parseInput(raw(3, good), 3, defaults);
    const b = parseInput(raw(3, good), 3, defaults);
    const c = parseInput(raw(4, good), 4, defaults);
    expect(a?.id).toBe(b?.id);
    expect(a?.id).not.toBe(c?.id);
    expect(a?.id).toBe(autoId(3, JSON.stringify(good)));
    // the same malformed line keeps its id too, so a rerun skips it
    expect(parseInput(raw(2, '{oops'), 2, defaults)?.id).toBe(parseInput(raw(2, '{oops'), 2, defaults)?.id);
  });

  test('skip() is asked once the id is known, before validation', () => {
    const seen: string[] = [];
    const parsed = parseInput(raw(1, { id: 'done-already', width: 1 }), 1, { ...defaults, skip: (id) => (seen.push(id), true) });
    expect(parsed).toEqual({ status: 'skip', id: 'done-already', line: 1 });
    expect(seen).toEqual(['done-already']);
  });
});

describe('reading JSONL files', () => {
  test('numbers lines from 1, blank ones included; handles CRLF and a last line without newline', async () => {
    const path = join(dir, 'in.jsonl');
    writeFileSync(path, '{"a":1}\r\n\r\n{"a":2}\n{"a":3}');
    const lines = [];
    for await (const l of readJsonlLines(path)) lines.push(l);
    expect(lines).toEqual([
      { line: 1, raw: '{"a":1}' },
      { line: 2, raw: '' },
      { line: 3, raw: '{"a":2}' },
      { line: 4, raw: '{"a":3}' },
    ]);
    expect(await countLines(path)).toBe(3);
  });

  test('checkReadable names the problem', async () => {
    await expect(checkReadable(join(dir, 'nope.jsonl'))).rejects.toThrow(/no such file or directory/);
    await expect(checkReadable(dir)).rejects.toThrow(/it is a directory/);
    writeFileSync(join(dir, 'ok.jsonl'), '');
    await expect(checkReadable(join(dir, 'ok.jsonl'))).resolves.toBeUndefined();
  });
});

describe('formatSummary', () => {
  const base: BatchSummary = {
    out: 'r.jsonl',
    errorsOut: 'r.jsonl.errors.jsonl',
    complete: false,
    stopped: { reason: 'daily-quota', message: 'The daily quota is exhausted; it resets at 2030-01-01T00:00:00.000Z (in 3 h 00 min).', resetAt: 1 },
    items: 10,
    run: { done: 4, failed: 1, invalid: 1 },
    totals: { done: 6, failed: 1, invalid: 1 },
    skipped: 2,
    resumed: 1,
    resubmittedUnknown: 1,
    possibleDuplicates: 1,
    resubmissions: 1,
    pending: 3,
    duplicateIds: 0,
    failuresByCode: { 'JOB_FAILED:AGE_RESTRICTED': 1 },
    invalidLines: [{ line: 7, id: 'x', kind: 'invalid-params', message: 'Line 7 has invalid parameters: width: too big' }],
    elapsedMs: 65_000,
    requests: { dispatched: 20, rateLimited: 2 },
    journal: { records: 12, corruptLines: 0, tornTail: true },
  };

  test('a stopped run says why, when the quota resets, and how to resume', () => {
    const text = formatSummary(base, { resumeCommand: 'modelbeam-batch run in.jsonl --out r.jsonl' });
    expect(text).toContain('Batch stopped (daily quota exhausted), resumable.');
    expect(text).toContain('it resets at 2030-01-01T00:00:00.000Z');
    expect(text).toContain('pending:   3 items started and not finished');
    expect(text).toContain('JOB_FAILED:AGE_RESTRICTED ×1');
    expect(text).toContain('line 7 [invalid-params]');
    expect(text).toContain('possible duplicates: 1');
    expect(text).toContain('torn last line');
    expect(text).toMatch(/To resume, run the same command again:\n {2}modelbeam-batch run in\.jsonl --out r\.jsonl\n$/);
  });

  test('a complete run has no resume line', () => {
    const text = formatSummary({ ...base, complete: true, stopped: undefined, pending: 0, run: { done: 4, failed: 0, invalid: 0 }, totals: { done: 4, failed: 0, invalid: 0 }, invalidLines: [], failuresByCode: {}, possibleDuplicates: 0, resubmittedUnknown: 0, journal: { records: 0, corruptLines: 0, tornTail: false } }, { resumeCommand: 'x' });
    expect(text.startsWith('Batch complete: every item done.')).toBe(true);
    expect(text).not.toContain('To resume');
  });
});
