import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { IdTable } from '../src/batch/id-table.js';
import { Journal, loadJournal, readJournal } from '../src/batch/journal.js';
import { ManualClock } from '../src/testing/manual-clock.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'batch-journal-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('IdTable', () => {
  test('stores a small code per id, grows, and tells ids apart', () => {
    const table = new IdTable(4);
    const n = 50_000;
    for (let i = 0; i < n; i++) table.set(`line-${i}-abcdef012345`, (i % 3) + 1);
    expect(table.size).toBe(n);
    for (let i = 0; i < n; i++) expect(table.get(`line-${i}-abcdef012345`)).toBe((i % 3) + 1);
    expect(table.get('never-set')).toBe(0);
    expect(table.has('line-7-abcdef012345')).toBe(true);
    // 13 bytes a slot, over half full (at most 26 bytes an id)
    expect(table.byteLength).toBeLessThanOrEqual(n * 13 * 2);
    expect(table.byteLength).toBeGreaterThanOrEqual(n * 13);
  });

  test('grows without losing ids, from any initial capacity', () => {
    for (const initial of [0, 1, 100, 5000]) {
      const table = new IdTable(initial);
      const n = 20_000;
      let lost = 0;
      for (let i = 0; i < n; i++) {
        if (table.set(`id-${i}`, 1) !== 0) lost++;
        // Every id set so far is still there after each growth step.
        if (i % 997 === 0) for (let j = 0; j <= i; j++) if (table.get(`id-${j}`) !== 1) lost++;
      }
      let found = 0;
      let phantom = 0;
      for (let i = 0; i < n; i++) {
        if (table.get(`id-${i}`) === 1) found++;
        if (table.get(`other-${i}`) !== 0) phantom++;
      }
      expect({ initial, size: table.size, lost, found, phantom }).toEqual({ initial, size: n, lost: 0, found: n, phantom: 0 });
    }
  });

  test('a large table (many chunks, reused as it grows) keeps every id, at 16–26 bytes an id', () => {
    const table = new IdTable();
    const n = 400_000;
    for (let i = 0; i < n; i++) table.set(`item-${i}`, (i % 255) + 1);
    let wrong = 0;
    let phantom = 0;
    for (let i = 0; i < n; i++) {
      if (table.get(`item-${i}`) !== (i % 255) + 1) wrong++;
      if (table.get(`absent-${i}`) !== 0) phantom++;
    }
    expect({ size: table.size, wrong, phantom }).toEqual({ size: n, wrong: 0, phantom: 0 });
    expect(table.byteLength / n).toBeGreaterThanOrEqual(16);
    expect(table.byteLength / n).toBeLessThanOrEqual(26);
  });

  test('set returns the code it replaced; mark adds flag bits', () => {
    const table = new IdTable();
    expect(table.set('a', 1)).toBe(0);
    expect(table.set('a', 2)).toBe(1);
    expect(table.mark('a', 8)).toBe(2);
    expect(table.get('a')).toBe(10);
    expect(table.mark('b', 4)).toBe(0);
    expect(table.get('b')).toBe(4);
    expect(table.size).toBe(2);
  });

  test('refuses codes outside 1..255', () => {
    const table = new IdTable();
    expect(() => table.set('a', 0)).toThrow(/1\.\.255/);
    expect(() => table.set('a', 256)).toThrow(/1\.\.255/);
  });
});

describe('loadJournal', () => {
  test('a missing file is an empty index', async () => {
    const index = await loadJournal(join(dir, 'nope.jsonl'));
    expect(index).toMatchObject({ records: 0, corruptLines: 0, tornTail: false, totals: { done: 0, failed: 0, invalid: 0 } });
    expect(index.open.size).toBe(0);
  });

  test('replays records: the last state of an id wins; open items keep what resuming needs', async () => {
    const path = join(dir, 'r.jsonl');
    const lines = [
      { id: 'a', line: 1, state: 'submitting', attempt: 1, at: 1 },
      { id: 'a', line: 1, state: 'submitted', requestId: 'r-a', endpoint: 'txt2img', model: 'M', attempt: 1, resubmissions: 0, at: 2 },
      { id: 'a', line: 1, state: 'done', attempts: 1, resubmissions: 0, possibleDuplicate: false, at: 3 },
      { id: 'b', line: 2, state: 'submitting', attempt: 1, at: 4 },
      { id: 'b', line: 2, state: 'submitted', requestId: 'r-b', endpoint: 'txt2img', attempt: 1, resubmissions: 0, at: 5 },
      { id: 'c', line: 3, state: 'submitting', attempt: 2, possibleDuplicate: true, at: 6 },
      { id: 'd', line: 4, state: 'submitting', attempt: 1, at: 7 },
      { id: 'd', line: 4, state: 'released', reason: 'stopped', at: 8 },
      { id: 'e', line: 5, state: 'invalid', attempts: 0, resubmissions: 0, possibleDuplicate: false, at: 9 },
      { id: 'f', line: 6, state: 'failed', attempts: 1, resubmissions: 0, possibleDuplicate: false, at: 10 },
      { id: 'a', line: 1, state: 'submitting', attempt: 9, at: 11 }, // stale: a is finished
    ];
    writeFileSync(path, `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`);
    const index = await loadJournal(path);
    expect(index.records).toBe(lines.length);
    expect(index.totals).toEqual({ done: 1, failed: 1, invalid: 1 });
    expect(index.table.get('a') & 3).toBe(1);
    expect(index.table.get('e') & 3).toBe(3);
    expect([...index.open.keys()].sort()).toEqual(['b', 'c']);
    expect(index.open.get('b')).toMatchObject({ state: 'submitted', requestId: 'r-b', endpoint: 'txt2img', attempt: 1, at: 5 });
    expect(index.open.get('c')).toMatchObject({ state: 'submitting', attempt: 2, possibleDuplicate: true });
  });

  test('tolerates a torn last line and corrupt lines, and counts them', async () => {
    const path = join(dir, 'r.jsonl');
    writeFileSync(
      path,
      '{"id":"a","line":1,"state":"done","attempts":1,"resubmissions":0,"possibleDuplicate":false,"at":1}\n' +
        '\u0000\u0000garbage\n' +
        '[1,2]\n' +
        '{"id":"b","line":2,"state":"submitting","attempt":1,"at":2}\n' +
        '{"id":"b","line":2,"state":"subm',
    );
    const index = await loadJournal(path);
    expect(index).toMatchObject({ records: 2, corruptLines: 2, tornTail: true });
    expect(index.open.get('b')?.state).toBe('submitting');
  });
});

describe('Journal', () => {
  test('ends a torn tail with a newline before appending, so new records stay whole', async () => {
    const path = join(dir, 'r.jsonl');
    writeFileSync(path, '{"id":"a","line":1,"state":"done","attempts":1,"resubmissions":0,"possibleDuplicate":false,"at":1}\n{"id":"b","li');
    const journal = await Journal.open(path);
    journal.append({ id: 'b', line: 2, state: 'submitting', attempt: 1, at: 2 });
    await journal.close();
    const records = [];
    for await (const r of readJournal(path)) records.push(r);
    expect(records.map((r) => `${r.id}:${r.state}`)).toEqual(['a:done', 'b:submitting']);
    expect(readFileSync(path, 'utf8').endsWith('\n')).toBe(true);
  });

  test('fsyncs every N records and T ms after a write, and at close', async () => {
    const clock = new ManualClock(0);
    const journal = await Journal.open(join(dir, 'r.jsonl'), { fsyncEveryRecords: 3, fsyncIntervalMs: 1000, clock });
    journal.append({ id: 'a', line: 1, state: 'submitting', attempt: 1, at: 0 });
    journal.append({ id: 'b', line: 2, state: 'submitting', attempt: 1, at: 0 });
    expect(journal.fsyncs).toBe(0);
    journal.append({ id: 'c', line: 3, state: 'submitting', attempt: 1, at: 0 }); // 3rd record: fsync (async)
    await new Promise((r) => setTimeout(r, 20));
    expect(journal.fsyncs).toBe(1);
    journal.append({ id: 'd', line: 4, state: 'submitting', attempt: 1, at: 0 });
    clock.advance(999);
    await new Promise((r) => setTimeout(r, 20));
    expect(journal.fsyncs).toBe(1);
    clock.advance(1);
    await new Promise((r) => setTimeout(r, 20));
    expect(journal.fsyncs).toBe(2);
    journal.append({ id: 'e', line: 5, state: 'submitting', attempt: 1, at: 0 });
    await journal.close();
    expect(journal.fsyncs).toBe(3);
    expect(journal.written).toBe(5);
  });

  test('fsyncEveryRecords: 1 fsyncs each record before returning', async () => {
    const journal = await Journal.open(join(dir, 'r.jsonl'), { fsyncEveryRecords: 1 });
    journal.append({ id: 'a', line: 1, state: 'submitting', attempt: 1, at: 0 });
    expect(journal.fsyncs).toBe(1);
    journal.append({ id: 'b', line: 2, state: 'submitting', attempt: 1, at: 0 });
    expect(journal.fsyncs).toBe(2);
    await journal.close();
  });

  test('one writer per file: a live lock refuses, a stale one (dead pid) is taken over', async () => {
    const path = join(dir, 'r.jsonl');
    const first = await Journal.open(path);
    await expect(Journal.open(path)).rejects.toThrow(/in use by another run \(pid \d+\)/);
    await first.close();
    expect(existsSync(`${path}.lock`)).toBe(false);
    // A lock left by a process that died (kill -9)
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    writeFileSync(`${path}.lock`, `${dead.stdout} 00000000-0000-0000-0000-000000000000`);
    const second = await Journal.open(path);
    second.append({ id: 'a', line: 1, state: 'submitting', attempt: 1, at: 0 });
    await second.close();
    expect(existsSync(`${path}.lock`)).toBe(false);
  });

  test('an unwritable path fails with the reason', async () => {
    await expect(Journal.open(join(dir, 'missing', 'r.jsonl'))).rejects.toThrow(/Cannot write the results file .*: no such file or directory/);
    await expect(Journal.open(dir)).rejects.toThrow(/Cannot write the results file .*: it is a directory/);
  });
});
