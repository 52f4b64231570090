/** Tables as console text and as markdown. */
import type { Align, Table } from './types.js';

function alignments(table: Table): Align[] {
  return table.columns.map((_, i) => {
    const given = table.align?.[i];
    if (given) return given;
    const first = table.rows[0]?.[i];
    return typeof first === 'number' ? 'right' : 'left';
  });
}

function cell(value: string | number): string {
  return typeof value === 'number' ? String(value) : value;
}

/** Monospace text: a title line, a header, a rule, the rows. */
export function formatText(table: Table): string {
  const align = alignments(table);
  const rows = table.rows.map((row) => row.map(cell));
  const widths = table.columns.map((c, i) => Math.max([...c].length, ...rows.map((r) => [...(r[i] ?? '')].length)));
  const pad = (text: string, i: number): string => {
    const gap = ' '.repeat(Math.max(0, (widths[i] ?? 0) - [...text].length));
    return align[i] === 'right' ? gap + text : text + gap;
  };
  const line = (cells: readonly string[]): string => cells.map((c, i) => pad(c, i)).join('  ').trimEnd();
  const out = [table.title, line(table.columns), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const row of rows) out.push(line(row));
  return out.join('\n');
}

function escapeMd(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** A GitHub-flavoured markdown table (without the title). */
export function formatMarkdown(table: Table): string {
  const align = alignments(table);
  const head = `| ${table.columns.map(escapeMd).join(' | ')} |`;
  const rule = `|${align.map((a) => (a === 'right' ? '---:' : ':---')).join('|')}|`;
  const body = table.rows.map((row) => `| ${row.map((v) => escapeMd(cell(v))).join(' | ')} |`);
  return [head, rule, ...body].join('\n');
}
