/**
 * What a run counts, and the summary made from it. One object per run: the
 * run and its items add to it, and {@link Tally.summarize} turns it into the
 * {@link BatchSummary} at the end.
 */
import type { InvalidItem } from './input.js';
import type { ItemCounters } from './item.js';
import { CODE_STATE, STATE_CODE, type JournalIndex, type TerminalRecord } from './journal.js';
import type { BatchResult, BatchSummary, ItemError, InvalidLine, StateCounts, StopInfo, TransientCause } from './types.js';

/** The summary keeps this many invalid lines (the errors file keeps all). */
const INVALID_LINES_KEPT = 100;

export class Tally {
  /** Input items read, skipped ones included. */
  items = 0;
  skipped = 0;
  possibleDuplicates = 0;
  duplicateIds = 0;
  readonly counters: ItemCounters = { deferred: 0, resumed: 0, resubmissions: 0, resubmittedUnknown: 0 };
  readonly run: StateCounts = { done: 0, failed: 0, invalid: 0 };
  readonly failuresByCode: Record<string, number> = {};
  readonly invalidLines: InvalidLine[] = [];
  lastTransient: TransientCause | undefined;

  /** Counts a bad input line (invalid, or a repeated id) for the summary. */
  badLine(entry: InvalidLine): void {
    if (this.invalidLines.length < INVALID_LINES_KEPT) this.invalidLines.push(entry);
  }

  /** Counts a terminal record written by this run, and applies it to the results file's index. */
  terminal(record: TerminalRecord, index: JournalIndex): void {
    const table = index.table;
    const previous = table.get(record.id);
    const old = CODE_STATE[previous & 3];
    if (old !== undefined) index.totals[old]--;
    table.set(record.id, (previous & ~3) | STATE_CODE[record.state]);
    index.totals[record.state]++;
    index.open.delete(record.id);
    this.run[record.state]++;
    if (record.possibleDuplicate) this.possibleDuplicates++;
    if (record.state === 'failed') {
      const code = record.error?.jobErrorCode ? `${record.error.code}:${record.error.jobErrorCode}` : (record.error?.code ?? 'UNKNOWN');
      this.failuresByCode[code] = (this.failuresByCode[code] ?? 0) + 1;
    }
  }

  summarize(end: {
    out: string;
    errorsOut: string;
    inputDone: boolean;
    stopped: StopInfo | undefined;
    /** Items an earlier run submitted that this run did not take up. */
    orphaned: number;
    index: JournalIndex;
    elapsedMs: number;
    requests: { dispatched: number; rateLimited: number };
  }): BatchSummary {
    const { index } = end;
    const pending = this.counters.deferred + end.orphaned;
    return {
      out: end.out,
      errorsOut: end.errorsOut,
      complete: end.inputDone && end.stopped === undefined && this.counters.deferred === 0,
      stopped: end.stopped,
      items: this.items,
      run: { ...this.run },
      totals: { ...index.totals },
      skipped: this.skipped,
      resumed: this.counters.resumed,
      resubmittedUnknown: this.counters.resubmittedUnknown,
      possibleDuplicates: this.possibleDuplicates,
      resubmissions: this.counters.resubmissions,
      pending,
      duplicateIds: this.duplicateIds,
      failuresByCode: { ...this.failuresByCode },
      invalidLines: [...this.invalidLines],
      elapsedMs: end.elapsedMs,
      requests: end.requests,
      journal: { records: index.records, corruptLines: index.corruptLines, tornTail: index.tornTail },
      ...(this.lastTransient !== undefined && pending > 0 ? { lastTransient: this.lastTransient } : {}),
    };
  }
}

/** A terminal record as the result handed to the caller. */
export function toResult(record: TerminalRecord, resumed: boolean): BatchResult {
  const result: BatchResult = {
    id: record.id,
    line: record.line,
    state: record.state,
    attempts: record.attempts,
    resubmissions: record.resubmissions,
    possibleDuplicate: record.possibleDuplicate,
    resumed,
  };
  if (record.requestId !== undefined) result.requestId = record.requestId;
  if (record.output !== undefined) result.output = record.output;
  if (record.error !== undefined) result.error = record.error;
  if (record.meta !== undefined) result.meta = record.meta;
  return result;
}

/** The terminal record of an input line refused before anything was sent. */
export function invalidRecord(item: InvalidItem, at: number): TerminalRecord {
  const error: ItemError = { code: 'INVALID_INPUT', kind: item.kind, message: item.message };
  if (item.fields !== undefined) error.fields = item.fields;
  const record: TerminalRecord = { id: item.id, line: item.line, state: 'invalid', error, attempts: 0, resubmissions: 0, possibleDuplicate: false, at };
  if (item.meta !== undefined) record.meta = item.meta;
  return record;
}
