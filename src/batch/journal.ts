/**
 * The results file, which is also the checkpoint.
 *
 * It is append-only JSONL, one record per line, written through one file
 * descriptor opened with `O_APPEND`:
 *
 * | record | written |
 * |---|---|
 * | `{id, line, state:'submitting', attempt, price?, at}` | before the item's POST is handed to the client |
 * | `{id, line, state:'submitted', requestId, endpoint, attempt, price?, at}` | as soon as the POST's `request_id` is known |
 * | `{id, line, state:'released', reason, at}` | when a submission was refused and not charged (a stop, a 401, a daily 429; with `maxSpend`, also a refusal of the item's parameters, just before its `failed` record) |
 * | `{id, line, state:'done'\|'failed'\|'invalid', ...}` | when the item reaches its terminal state |
 *
 * **Flushing.** Every record is written with one `fs.writeSync` call, before
 * the step it guards goes on: the `submitting` record before the POST can
 * leave, the `submitted` record before polling starts, the terminal record
 * before the result is yielded. A written record is in the kernel's page
 * cache, so it survives the process being killed (`kill -9`) at any moment.
 *
 * **Fsync.** The file is fsynced (to survive a power loss or a kernel crash)
 * at most `fsyncIntervalMs` (default 1 s) after a record is written, after
 * every `fsyncEveryRecords` records (default 1000), and when the run ends or
 * stops. `fsyncEveryRecords: 1` fsyncs each record before going on.
 *
 * **What a crash costs.** Killed between writing `submitting` and writing
 * `submitted`, an item's POST may or may not have reached the server. The
 * next run cannot ask (the API has no idempotency key and no job listing), so
 * it submits the item again and flags its result `possibleDuplicate`. At most
 * `maxSubmitting` items (default 8) are in that window at any moment. Killed
 * after `submitted`, an item is resumed by polling its request id: never
 * resubmitted. Killed after the terminal record, it is skipped.
 *
 * **Spend.** With `maxSpend`, a `submitting` record carries the submission's
 * price (USD, reserved before the record is written). The index sums them,
 * minus the price of each submission a `released` record gives back: a
 * submission whose outcome is unknown counts as spent, never as free.
 *
 * **On restart** the file is read back into a compact index: terminal ids in
 * an {@link IdTable} (16–25 bytes an id, ~17 MB for a million ids), and the few
 * items that were between `submitting` and their terminal record in a `Map`.
 * A torn last line (the process died mid-write) is skipped and ended with a
 * newline so that new records start on a line of their own; unparseable lines
 * elsewhere are counted and skipped.
 */
import { closeSync, createReadStream, fstatSync, fsync, fsyncSync, openSync, readFileSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { systemClock, type Clock, type TimerHandle } from '../internal/clock.js';
import { toNano } from '../internal/money.js';
import { IdTable } from './id-table.js';
import { describeFsError } from './input.js';
import type { ItemError, JobOutput, StateCounts, TerminalState } from './types.js';
import { JournalWriteError } from '../errors/journal-write-error.js';

export { JournalWriteError };

/** Codes kept in the id table. The low two bits are the terminal state. */
export const STATE_CODE = { done: 1, failed: 2, invalid: 3 } as const satisfies Record<TerminalState, number>;
export const CODE_STATE: readonly (TerminalState | undefined)[] = [undefined, 'done', 'failed', 'invalid'];
/** Flag: the item was taken up by this run (read from the input, or resumed). */
export const CLAIMED = 4;
/** Flag: a line of this run's input carried the id. */
export const SEEN = 8;
/**
 * Flag: the item's last terminal record was `failed` or `invalid`, and a newer `submitting` or `submitted`
 * record follows (a `retryFailed` run took it up again, or a later run found the line valid under its
 * settings): it is open, with no terminal state, until a new terminal record.
 */
export const REOPENED = 16;

export interface SubmittingRecord {
  id: string;
  line: number;
  state: 'submitting';
  attempt: number;
  /** True when this submission follows one whose outcome was unknown. */
  possibleDuplicate?: boolean;
  /** The submission's price, USD (with `maxSpend`). */
  price?: number;
  at: number;
}

export interface SubmittedRecord {
  id: string;
  line: number;
  state: 'submitted';
  requestId: string;
  endpoint: string;
  model?: string;
  attempt: number;
  resubmissions: number;
  possibleDuplicate?: boolean;
  /** The job's price, USD (with `maxSpend`). */
  price?: number;
  at: number;
}

export interface ReleasedRecord {
  id: string;
  line: number;
  state: 'released';
  reason: string;
  at: number;
}

export interface TerminalRecord {
  id: string;
  line: number;
  state: TerminalState;
  requestId?: string;
  output?: JobOutput;
  error?: ItemError;
  attempts: number;
  resubmissions: number;
  possibleDuplicate: boolean;
  meta?: unknown;
  at: number;
}

export type JournalRecord = SubmittingRecord | SubmittedRecord | ReleasedRecord | TerminalRecord;

/** An item that an earlier run started and did not finish. */
export interface OpenEntry {
  state: 'submitting' | 'submitted';
  line: number;
  /** Jobs submitted for the item so far (the one in `requestId` included). */
  attempt: number;
  resubmissions: number;
  possibleDuplicate: boolean;
  requestId?: string;
  endpoint?: string;
  model?: string;
  /** When the record was written (for `submitted`: when the job was created). */
  at: number;
  /** The price of the latest `submitting` record, nano-dollars, until a `released` record gives it back. */
  priceNano?: number;
}

/** What reading a results file found. */
export interface JournalIndex {
  /** Terminal ids, with their state codes. The run adds its own flags. */
  table: IdTable;
  /** Items started and not finished, by id. */
  open: Map<string, OpenEntry>;
  totals: StateCounts;
  records: number;
  corruptLines: number;
  tornTail: boolean;
  /** What the submissions recorded cost, nano-dollars (see "Spend" above). */
  spentNano: number;
}

export interface JournalOptions {
  /** @default 1000 */
  fsyncIntervalMs?: number;
  /** @default 1000 */
  fsyncEveryRecords?: number;
  clock?: Clock;
  /** Take `${path}.lock` so that two runs never write one file. @default true */
  lock?: boolean;
}

const TERMINAL = new Set<string>(['done', 'failed', 'invalid']);

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Whether a `submitting`/`submitted` record may (re)open `id`: it has no terminal record, or its terminal
 * record is `failed` (a `retryFailed` run sent it again) or `invalid` (a later run, with other settings,
 * found the line valid): that run's records supersede the earlier end.
 */
function isOpenable(index: JournalIndex, id: string): boolean {
  if (CODE_STATE[index.table.get(id) & 3] === 'done') return false;
  reopen(index, id);
  return true;
}

/**
 * `id` runs again after a `failed` or `invalid` end (a later record supersedes it): that end no longer counts in
 * the totals, and the item is open (`REOPENED`) until a new terminal record. Other flags stay. No-op for an item
 * without an end.
 */
export function reopen(index: JournalIndex, id: string): void {
  const code = index.table.get(id);
  const state = CODE_STATE[code & 3];
  if (state === undefined) return;
  index.totals[state]--;
  index.table.set(id, (code & ~3) | REOPENED);
}

/** Applies one parsed record to the index. Returns false when the record is not one. */
function apply(index: JournalIndex, record: unknown): boolean {
  if (!isObject(record)) return false;
  const { id, state } = record;
  if (typeof id !== 'string' || typeof state !== 'string') return false;
  const line = typeof record['line'] === 'number' ? record['line'] : 0;
  const at = typeof record['at'] === 'number' ? record['at'] : 0;
  const attempt = typeof record['attempt'] === 'number' ? record['attempt'] : 1;
  const possibleDuplicate = record['possibleDuplicate'] === true;
  if (TERMINAL.has(state)) {
    const code = STATE_CODE[state as TerminalState];
    const previous = index.table.set(id, code) & 3;
    const old = CODE_STATE[previous];
    if (old !== undefined) index.totals[old]--;
    index.totals[state as TerminalState]++;
    index.open.delete(id);
    return true;
  }
  if (state === 'released') {
    index.spentNano -= index.open.get(id)?.priceNano ?? 0;
    index.open.delete(id);
    return true;
  }
  if (state === 'submitting') {
    const priceNano = typeof record['price'] === 'number' && Number.isFinite(record['price']) ? toNano(record['price']) : 0;
    // Spent even when stale: the submission was about to be sent.
    index.spentNano += priceNano;
    if (!isOpenable(index, id)) return true; // stale: already terminal
    const prior = index.open.get(id);
    const entry: OpenEntry = {
      state: 'submitting',
      line,
      attempt,
      resubmissions: prior?.resubmissions ?? Math.max(0, attempt - 1),
      possibleDuplicate: possibleDuplicate || prior?.possibleDuplicate === true,
      at,
    };
    if (priceNano > 0) entry.priceNano = priceNano;
    index.open.set(id, entry);
    return true;
  }
  if (state === 'submitted') {
    if (typeof record['requestId'] !== 'string' || !isOpenable(index, id)) return typeof record['requestId'] === 'string';
    const entry: OpenEntry = {
      state: 'submitted',
      line,
      attempt,
      resubmissions: typeof record['resubmissions'] === 'number' ? record['resubmissions'] : Math.max(0, attempt - 1),
      possibleDuplicate: possibleDuplicate || index.open.get(id)?.possibleDuplicate === true,
      requestId: record['requestId'],
      at,
    };
    if (typeof record['endpoint'] === 'string') entry.endpoint = record['endpoint'];
    if (typeof record['model'] === 'string') entry.model = record['model'];
    index.open.set(id, entry);
    return true;
  }
  return false;
}

/**
 * Reads a results file into an index, streaming (memory stays with the
 * index, not the file). A missing file gives an empty index.
 */
export async function loadJournal(path: string): Promise<JournalIndex> {
  const index: JournalIndex = {
    table: new IdTable(),
    open: new Map(),
    totals: { done: 0, failed: 0, invalid: 0 },
    records: 0,
    corruptLines: 0,
    tornTail: false,
    spentNano: 0,
  };
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    if ((error as { code?: string }).code === 'ENOENT') return index;
    throw error;
  }
  let size: number;
  try {
    size = fstatSync(fd).size;
    if (size > 0) {
      const last = Buffer.alloc(1);
      readSync(fd, last, 0, 1, size - 1);
      index.tornTail = last[0] !== 0x0a;
    }
  } finally {
    closeSync(fd);
  }
  if (size === 0) return index;

  const stream = createReadStream(path, { encoding: 'utf8', end: size - 1, highWaterMark: 256 * 1024 });
  const rl = createInterface({ input: stream, crlfDelay: Infinity });
  let pendingTail: string | undefined;
  const handle = (text: string): void => {
    if (text.trim() === '') return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      index.corruptLines++;
      return;
    }
    if (apply(index, parsed)) index.records++;
    else index.corruptLines++;
  };
  for await (const text of rl) {
    if (pendingTail !== undefined) handle(pendingTail);
    pendingTail = text;
  }
  if (pendingTail !== undefined) {
    if (index.tornTail) {
      // The last line has no newline: the process died while writing it. A whole record still parses.
      let parsed: unknown;
      try {
        parsed = JSON.parse(pendingTail);
      } catch {
        parsed = undefined;
      }
      if (parsed !== undefined && apply(index, parsed)) index.records++;
    } else {
      handle(pendingTail);
    }
  }
  return index;
}

/** Locks held by this process, so that a stale lock with our own pid (a container's pid 1) is told apart. */
const heldLocks = new Set<string>();

function acquireLock(lockPath: string, resultsPath: string): string {
  const token = `${process.pid} ${randomUUID()}`;
  for (let tries = 0; tries < 3; tries++) {
    try {
      const fd = openSync(lockPath, 'wx', 0o600);
      writeSync(fd, token);
      closeSync(fd);
      heldLocks.add(lockPath);
      return token;
    } catch (error) {
      if ((error as { code?: string }).code !== 'EEXIST') {
        throw new Error(`Cannot create the lock file ${lockPath}: ${describeFsError(error)}`, { cause: error });
      }
    }
    let pid = NaN;
    try {
      pid = Number(readFileSync(lockPath, 'utf8').split(' ')[0]);
    } catch {
      // vanished or unreadable: try again
    }
    const alive = Number.isInteger(pid) && pid > 0 && (pid === process.pid ? heldLocks.has(lockPath) : isAlive(pid));
    if (alive) {
      throw new Error(
        `The results file ${resultsPath} is in use by another run (pid ${pid}). If no such run exists, delete ${lockPath}.`,
      );
    }
    try {
      unlinkSync(lockPath); // stale: its process is gone
    } catch {
      // raced with another starter: loop and see
    }
  }
  throw new Error(`Cannot take the lock ${lockPath}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === 'EPERM';
  }
}

function releaseLock(lockPath: string, token: string): void {
  heldLocks.delete(lockPath);
  try {
    if (readFileSync(lockPath, 'utf8') === token) unlinkSync(lockPath);
  } catch {
    // already gone
  }
}

/**
 * The writer of a results file. Open it with {@link Journal.open}, which
 * fails at once (before any request) when the file cannot be written.
 */
export class Journal {
  readonly path: string;
  readonly index: JournalIndex;
  #fd: number | undefined;
  #lock: { path: string; token: string } | undefined;
  readonly #clock: Clock;
  readonly #intervalMs: number;
  readonly #everyRecords: number;
  #unsynced = 0;
  #timer: TimerHandle | undefined;
  #syncing: Promise<void> | undefined;
  #syncAgain = false;
  /** Records written by this writer. */
  written = 0;
  /** Fsyncs done. */
  fsyncs = 0;

  private constructor(path: string, index: JournalIndex, fd: number, lock: { path: string; token: string } | undefined, options: JournalOptions) {
    this.path = path;
    this.index = index;
    this.#fd = fd;
    this.#lock = lock;
    this.#clock = options.clock ?? systemClock;
    this.#intervalMs = options.fsyncIntervalMs ?? 1000;
    this.#everyRecords = options.fsyncEveryRecords ?? 1000;
  }

  /** Opens (creating when missing) and locks `path`, and reads what it holds. */
  static async open(path: string, options: JournalOptions = {}): Promise<Journal> {
    let fd: number;
    try {
      fd = openSync(path, 'a', 0o644);
    } catch (error) {
      throw new Error(`Cannot write the results file ${path}: ${describeFsError(error)}`, { cause: error });
    }
    let lock: { path: string; token: string } | undefined;
    try {
      if (options.lock !== false) {
        const lockPath = `${path}.lock`;
        lock = { path: lockPath, token: acquireLock(lockPath, path) };
      }
      const index = await loadJournal(path);
      const journal = new Journal(path, index, fd, lock, options);
      if (index.tornTail) journal.#write('\n');
      return journal;
    } catch (error) {
      closeSync(fd);
      if (lock) releaseLock(lock.path, lock.token);
      throw error;
    }
  }

  get closed(): boolean {
    return this.#fd === undefined;
  }

  /** Writes one record (one line, one `writeSync`), then applies the fsync policy. Throws when the write fails. */
  append(record: JournalRecord): void {
    this.#write(`${JSON.stringify(record)}\n`);
    this.written++;
    this.#unsynced++;
    if (this.#everyRecords <= 1) this.syncNow();
    else if (this.#unsynced >= this.#everyRecords) this.#syncSoon();
    else if (this.#timer === undefined) {
      this.#timer = this.#clock.setTimeout(() => {
        this.#timer = undefined;
        this.#syncSoon();
      }, this.#intervalMs);
    }
  }

  #write(text: string): void {
    const fd = this.#fd;
    if (fd === undefined) throw new JournalWriteError(`The results file ${this.path} is closed`);
    const buffer = Buffer.from(text, 'utf8');
    let offset = 0;
    try {
      while (offset < buffer.length) offset += writeSync(fd, buffer, offset, buffer.length - offset);
    } catch (error) {
      throw new JournalWriteError(`Cannot write the results file ${this.path}: ${describeFsError(error)}`, { cause: error });
    }
  }

  /** Fsyncs now, synchronously. */
  syncNow(): void {
    if (this.#fd === undefined || this.#unsynced === 0) return;
    this.#clearTimer();
    fsyncSync(this.#fd);
    this.#unsynced = 0;
    this.fsyncs++;
  }

  #syncSoon(): void {
    this.#clearTimer();
    if (this.#syncing) {
      this.#syncAgain = true;
      return;
    }
    const fd = this.#fd;
    if (fd === undefined || this.#unsynced === 0) return;
    this.#unsynced = 0;
    this.#syncing = new Promise<void>((resolve) => {
      fsync(fd, () => {
        this.fsyncs++;
        this.#syncing = undefined;
        resolve();
        if (this.#syncAgain) {
          this.#syncAgain = false;
          if (this.#fd !== undefined) this.#syncSoon();
        }
      });
    });
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Fsyncs, closes the file and releases the lock. Idempotent. */
  async close(): Promise<void> {
    this.#clearTimer();
    while (this.#syncing) await this.#syncing;
    this.closeSync();
  }

  /** As {@link close}, without waiting for a background fsync: for a process about to exit. */
  closeSync(): void {
    this.#clearTimer();
    const fd = this.#fd;
    if (fd === undefined) return;
    try {
      fsyncSync(fd);
      this.fsyncs++;
    } finally {
      this.#fd = undefined;
      closeSync(fd);
      if (this.#lock) releaseLock(this.#lock.path, this.#lock.token);
      this.#lock = undefined;
    }
  }
}

/** An append-only JSONL file for bad input lines (`<out>.errors.jsonl`). Opened eagerly so an unwritable path fails early. */
export class ErrorsFile {
  readonly path: string;
  #fd: number | undefined;

  constructor(path: string) {
    this.path = path;
    try {
      this.#fd = openSync(path, 'a', 0o644);
    } catch (error) {
      throw new Error(`Cannot write the errors file ${path}: ${describeFsError(error)}`, { cause: error });
    }
  }

  append(entry: Record<string, unknown>): void {
    if (this.#fd === undefined) return;
    const buffer = Buffer.from(`${JSON.stringify(entry)}\n`, 'utf8');
    let offset = 0;
    while (offset < buffer.length) offset += writeSync(this.#fd, buffer, offset, buffer.length - offset);
  }

  close(): void {
    if (this.#fd === undefined) return;
    const fd = this.#fd;
    this.#fd = undefined;
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
}

/** Reads every record of a results file (for tests and tools). Skips lines that do not parse. */
export async function* readJournal(path: string): AsyncGenerator<JournalRecord> {
  const rl = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
  for await (const text of rl) {
    if (text.trim() === '') continue;
    try {
      const record = JSON.parse(text) as JournalRecord;
      if (isObject(record) && typeof record.id === 'string') yield record;
    } catch {
      // torn or corrupt line
    }
  }
}

/** The first bytes read to tell a results file from another file. */
const SNIFF_BYTES = 64 * 1024;

/**
 * Why `path` cannot be used as a results file, or `undefined` when it can: it is missing, empty, or its first
 * line is a record of this tool (`{"id": …, "state": …}`, or the torn start of one). Reads at most 64 KB.
 * A run appends to its results file; this keeps it from appending to an input or to any other JSONL file.
 */
export function notAResultsFile(path: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return undefined; // missing (or unreadable: opening it for writing reports that)
  }
  let text: string;
  try {
    if (!fstatSync(fd).isFile()) return undefined;
    const buffer = Buffer.alloc(SNIFF_BYTES);
    const n = readSync(fd, buffer, 0, SNIFF_BYTES, 0);
    text = buffer.subarray(0, n).toString('utf8');
  } finally {
    closeSync(fd);
  }
  const lines = text.split('\n');
  const index = lines.findIndex((l) => l.trim() !== '');
  if (index < 0) return undefined;
  const first = (lines[index] as string).trim();
  const complete = index < lines.length - 1;
  let parsed: unknown;
  try {
    parsed = JSON.parse(first);
  } catch {
    // The only line, torn by a crash mid-write: records start with their id.
    if (!complete && first.startsWith('{"id":')) return undefined;
    return `line ${index + 1} is not JSON`;
  }
  if (isObject(parsed) && typeof parsed['id'] === 'string' && typeof parsed['state'] === 'string' && RECORD_STATES.has(parsed['state'])) return undefined;
  return `line ${index + 1} is not a record of a results file (one has "id" and "state")`;
}

const RECORD_STATES = new Set<string>(['submitting', 'submitted', 'released', ...TERMINAL]);
