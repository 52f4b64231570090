/**
 * Crash-safe batch runs: streaming input, bounded work in flight, results as
 * they complete, and the results file as the checkpoint.
 */
export { runBatch, validateBatchItem, BatchSetupError, BATCH_DEFAULTS, type Batch } from './run-batch.js';
export { readJsonlLines, countLines, parseInput, autoId, RESERVED_KEYS } from './input.js';
export type { ParsedItem, InvalidItem, SkippedItem, ParseDefaults } from './input.js';
export { Journal, JournalWriteError, loadJournal, readJournal } from './journal.js';
export type {
  JournalRecord,
  SubmittingRecord,
  SubmittedRecord,
  ReleasedRecord,
  TerminalRecord,
  JournalIndex,
  JournalOptions,
  OpenEntry,
} from './journal.js';
export { IdTable } from './id-table.js';
export { formatSummary, type FormatSummaryOptions } from './summary.js';
export type {
  BatchClient,
  BatchScheduler,
  BatchJobResult,
  BatchInput,
  RawLine,
  BatchResult,
  BatchSummary,
  BatchProgress,
  RunBatchOptions,
  JobOutput,
  ItemError,
  InputErrorKind,
  TerminalState,
  StopReason,
  StopInfo,
  InvalidLine,
  StateCounts,
  TransientCause,
} from './types.js';
