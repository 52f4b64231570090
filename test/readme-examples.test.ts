/**
 * The README's self-contained examples, run as written (the package name
 * pointed at this checkout's source): an example that stops working, or
 * exits without printing, fails here. Examples that need a real API are not
 * run.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const README = readFileSync(resolve('README.md'), 'utf8');
const dir = mkdtempSync(join(tmpdir(), 'readme-examples-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The ```ts block of the README that follows `heading`. */
function blockAfter(heading: string): string {
  const at = README.indexOf(heading);
  if (at < 0) throw new Error(`README has no ${heading}`);
  const match = /```ts\n([\s\S]*?)```/.exec(README.slice(at));
  if (!match) throw new Error(`no ts block after ${heading}`);
  return match[1] as string;
}

function run(code: string): string {
  const file = join(dir, `example-${Math.random().toString(36).slice(2)}.mts`);
  writeFileSync(file, code.replaceAll("from 'modelbeam-scheduler'", `from '${resolve('src/index.ts')}'`));
  return execFileSync(process.execPath, ['--import', 'tsx', file], { encoding: 'utf8', timeout: 30_000 });
}

describe('README examples', () => {
  it('Events: the idle payload is printed and the process exits 0', () => {
    expect(run(blockAfter('## Events'))).toContain('{ succeeded: 1, failed: 0 }');
  });
});
