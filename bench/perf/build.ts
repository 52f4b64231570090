/**
 * Compiles `src/` and the measurement children of `bench/perf/` with the
 * project's `tsc` into `bench/.work/build/<hash>/`, so the children run the
 * JavaScript users run (no tsx loader: tsx's esbuild transform wraps every
 * named closure in a `__name(fn, …)` call, a `defineProperty` per closure
 * that costs ~1 µs a request on the HTTP path and adds bytes per queued task).
 * p-queue, Bottleneck and undici are plain JS in `node_modules` either way.
 *
 * The output directory is keyed by a hash of the inputs, so a build is reused
 * while nothing changed and two runs never write into each other's build.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { listFiles } from '../lib/files.js';

const PERF_DIR = dirname(fileURLToPath(import.meta.url));
const ROOT = join(PERF_DIR, '..', '..');
const BUILDS = join(ROOT, 'bench', '.work', 'build');

export interface Build {
  /** The build's root: `src/…` and `bench/perf/…` below it, as in the repository. */
  dir: string;
  hash: string;
  /** Path of a compiled file, e.g. `js('bench/perf/queue-child.ts')`. */
  js(sourcePath: string): string;
}

function inputsHash(): string {
  const hash = createHash('sha256');
  const inputs = [
    ...listFiles(join(ROOT, 'src')),
    ...readdirSync(PERF_DIR).map((f) => join(PERF_DIR, f)),
    // Imported by children.ts, so compiled into the children too.
    join(ROOT, 'bench', 'lib', 'kill-on-exit.ts'),
    join(ROOT, 'tsconfig.json'),
  ].sort();
  for (const file of inputs) {
    if (!statSync(file).isFile()) continue;
    hash.update(relative(ROOT, file));
    hash.update('\0');
    hash.update(readFileSync(file));
    hash.update('\0');
  }
  return hash.digest('hex').slice(0, 12);
}

let current: Promise<Build> | undefined;

/** Builds once per process (and once per source state across processes). */
export function ensureBuild(log: (line: string) => void = () => {}): Promise<Build> {
  current ??= build(log);
  return current;
}

async function build(log: (line: string) => void): Promise<Build> {
  const hash = inputsHash();
  const dir = join(BUILDS, hash);
  const done = join(dir, '.complete');
  const result: Build = {
    dir,
    hash,
    js: (sourcePath) => join(dir, sourcePath.replace(/\.ts$/, '.js')),
  };
  if (existsSync(done)) return result;
  log(`bench: compiling src/ and bench/perf/ with tsc into ${relative(ROOT, dir)}/`);
  rmSync(dir, { recursive: true, force: true });
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  await new Promise<void>((resolve, reject) => {
    execFile(
      process.execPath,
      [tsc, '-p', join(PERF_DIR, 'tsconfig.json'), '--outDir', dir],
      { cwd: ROOT, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout) => {
        // Type errors do not stop the emit (noEmitOnError is off); only a missing output does.
        if (!existsSync(join(dir, 'src', 'index.js'))) reject(new Error(`tsc produced no output: ${error?.message ?? ''}\n${stdout.slice(-4000)}`));
        else {
          if (error) log(`bench: tsc reported type errors (emitted anyway):\n${stdout.split('\n').slice(0, 10).join('\n')}`);
          resolve();
        }
      },
    );
  });
  // The Redis store loads its Lua scripts relative to the compiled module (as `npm run build` does).
  cpSync(join(ROOT, 'src', 'store', 'lua'), join(dir, 'src', 'store', 'lua'), { recursive: true });
  writeFileSync(done, `${new Date().toISOString()}\n`);
  // Drop builds older than a day (others may still be in use by a concurrent run).
  for (const name of readdirSync(BUILDS)) {
    const path = join(BUILDS, name);
    if (name !== hash && Date.now() - statSync(path).mtimeMs > 24 * 3600_000) rmSync(path, { recursive: true, force: true });
  }
  return result;
}
