/**
 * Which source a benchmark measured: the git commit, whether `src/` had
 * uncommitted changes, and a content hash of `src/` (so results from a dirty
 * tree can still be matched to the code that produced them).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { listFiles } from './files.js';

export interface SourceInfo {
  commit: string;
  /** `src/` differs from the commit. */
  dirty: boolean;
  /** First 12 hex digits of a SHA-256 over every file under `src/` (path and content, sorted by path). */
  srcHash: string;
}

function git(root: string, args: string[]): string | undefined {
  try {
    return execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 }).trim();
  } catch {
    return undefined;
  }
}

export function sourceInfo(root: string): SourceInfo {
  const src = join(root, 'src');
  const hash = createHash('sha256');
  for (const file of listFiles(src).sort()) {
    hash.update(relative(root, file));
    hash.update('\0');
    hash.update(readFileSync(file));
    hash.update('\0');
  }
  const status = git(root, ['status', '--porcelain', '--', 'src']);
  return {
    commit: git(root, ['rev-parse', '--short', 'HEAD']) ?? 'unknown',
    dirty: status === undefined ? true : status.length > 0,
    srcHash: hash.digest('hex').slice(0, 12),
  };
}

export function sourceLine(s: SourceInfo): string {
  return `commit \`${s.commit}\`${s.dirty ? ' with uncommitted changes in `src/`' : ''} (\`src/\` content hash \`${s.srcHash}\`)`;
}
