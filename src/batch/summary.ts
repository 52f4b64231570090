import { formatDuration } from './classify.js';
import { RunSpend } from './spend.js';
import type { BatchSummary } from './types.js';

export interface FormatSummaryOptions {
  /** The command that resumes the batch, shown when it stopped or left items pending. */
  resumeCommand?: string;
  /** How many invalid lines to list. @default 5 */
  invalidLinesShown?: number;
  /** The cause of a run left incomplete, in words. @default `summary.lastTransient.message` */
  cause?: string;
}

/** How to resume after a stop that the same command line would meet again. */
const RESUME_HINTS: Record<string, string> = {
  'spend-cap': 'To resume, raise the cap (--max-spend) in the same command and run it again:',
  configuration: 'To resume, fix the base URL (--base-url) in the same command and run it again:',
  authentication: 'To resume, fix the key (MODELBEAM_API_KEY) and run the same command again:',
};

const STOP_TITLES: Record<string, string> = {
  signal: 'stopped by a signal',
  'daily-quota': 'daily quota exhausted',
  authentication: 'API key refused',
  'insufficient-balance': 'balance too low',
  'api-unavailable': 'API unavailable',
  'store-unavailable': 'shared quota store unavailable',
  'input-error': 'input unreadable',
  'output-error': 'results file unwritable',
  configuration: 'the API base URL looks wrong',
  'spend-cap': 'spend cap reached',
  stopped: 'stopped',
};

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** The end-of-run summary as text, for a terminal or a log. Ends with a newline. */
export function formatSummary(summary: BatchSummary, options: FormatSummaryOptions = {}): string {
  const lines: string[] = [];
  const { run, totals } = summary;
  const head = summary.complete
    ? run.failed + run.invalid + totals.failed + totals.invalid === 0 && summary.duplicateIds === 0
      ? 'Batch complete: every item done.'
      : 'Batch complete, with failures.'
    : summary.stopped
      ? `Batch stopped (${STOP_TITLES[summary.stopped.reason] ?? summary.stopped.reason}), resumable.`
      : 'Batch incomplete, resumable.';
  lines.push(head);
  if (summary.stopped) lines.push(`  ${summary.stopped.message}`);
  lines.push(
    `  this run:  ${run.done} done, ${run.failed} failed, ${run.invalid} invalid` +
      ` (${plural(summary.items, 'input item')} read; ${summary.skipped} already finished, ${summary.resumed} resumed by polling)`,
  );
  lines.push(`  in total:  ${totals.done} done, ${totals.failed} failed, ${totals.invalid} invalid in the results file`);
  if (summary.pending > 0) lines.push(`  pending:   ${plural(summary.pending, 'item')} started and not finished (they resume on the next run)`);
  const cause = options.cause ?? summary.lastTransient?.message;
  if (!summary.complete && cause !== undefined) lines.push(`  cause:     ${cause}`);
  const codes = Object.entries(summary.failuresByCode).sort((a, b) => b[1] - a[1]);
  if (codes.length > 0) lines.push(`  failures:  ${codes.map(([code, n]) => `${code} ×${n}`).join(', ')}`);
  if (summary.possibleDuplicates > 0 || summary.resubmittedUnknown > 0) {
    lines.push(
      `  possible duplicates: ${summary.possibleDuplicates} result(s) flagged possibleDuplicate — a submission's outcome was unknown` +
        ' (connection lost or process killed after the POST), so it was sent again and the account may hold a second, billed job',
    );
  }
  if (summary.resubmissions > 0) lines.push(`  resubmissions: ${summary.resubmissions} (failed jobs retried, unknown outcomes resent)`);
  const bad = summary.invalidLines;
  if (bad.length > 0) {
    const shown = options.invalidLinesShown ?? 5;
    lines.push(`  bad input: ${plural(run.invalid + summary.duplicateIds, 'line')} (all in ${summary.errorsOut}):`);
    for (const entry of bad.slice(0, shown)) lines.push(`    line ${entry.line} [${entry.kind}]: ${truncate(entry.message, 160)}`);
    const more = run.invalid + summary.duplicateIds - Math.min(shown, bad.length);
    if (more > 0) lines.push(`    … and ${more} more`);
  }
  if (summary.spend) lines.push(`  spend:     ${RunSpend.describe(summary.spend)}`);
  lines.push(`  requests:  ${summary.requests.dispatched} sent, ${summary.requests.rateLimited} answered 429`);
  lines.push(`  time:      ${formatDuration(summary.elapsedMs)}`);
  lines.push(`  results:   ${summary.out}`);
  if (summary.journal.corruptLines > 0 || summary.journal.tornTail) {
    lines.push(
      `  note: the results file had ${summary.journal.corruptLines} unreadable line(s)${summary.journal.tornTail ? ' and a torn last line (a crash mid-write)' : ''}; they were skipped`,
    );
  }
  if (!summary.complete && options.resumeCommand) {
    lines.push('');
    lines.push(RESUME_HINTS[summary.stopped?.reason ?? ''] ?? 'To resume, run the same command again:');
    lines.push(`  ${options.resumeCommand}`);
  }
  return `${lines.join('\n')}\n`;
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
