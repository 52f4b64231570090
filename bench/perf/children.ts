/**
 * Child processes for the performance scenarios (`overhead`, `memory`,
 * `http-ceiling`, `idle-cpu`, `batch-rss`): each measurement runs in a fresh
 * Node process, so that one contender's heap, JIT state and garbage do not
 * pollute the next one's figures.
 *
 * A child prints one JSON line starting with `RESULT ` on stdout; the parent
 * parses it. Every child has a wall-clock cap, is killed when the run is
 * aborted (Ctrl-C), and is killed when this process exits for any reason.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { killOnExit } from '../lib/kill-on-exit.js';

/** The loader flags this process runs under (tsx's `--import`/`--require`), so a `.ts` child runs the same way. */
export function loaderArgs(): string[] {
  return process.execArgv.filter((a, i, all) => {
    const prev = all[i - 1];
    // Keep --import/--require and their values; drop inspector and profiling flags of the parent.
    if (a === '--import' || a === '--require' || a === '--loader') return true;
    if (prev === '--import' || prev === '--require' || prev === '--loader') return true;
    return /^--(import|require|loader)=/.test(a);
  });
}

export interface RunChildOptions {
  /** Node flags before the script (e.g. `--expose-gc`). The loader flags are added unless `loader: false`. */
  nodeArgs?: readonly string[];
  loader?: boolean;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs: number;
  signal?: AbortSignal;
  /** Called with the child right after spawning (e.g. to sample its RSS from /proc). */
  onSpawn?: (child: ChildProcess) => void;
  /** Lines the child writes to stderr, for progress (default: dropped unless the child fails). */
  onStderr?: (line: string) => void;
}

export interface ChildOutcome<T> {
  result: T;
  /** Wall time of the child, ms. */
  wallMs: number;
}

export interface ProcessOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall time of the child, ms. */
  wallMs: number;
  /** Killed by the time cap. */
  timedOut: boolean;
}

/** Spawns `node [loader] [nodeArgs] script args…` and waits for it (output kept, capped at the last ~1 MB). */
export async function runProcess(script: string, args: readonly string[], options: RunChildOptions): Promise<ProcessOutcome> {
  options.signal?.throwIfAborted();
  const nodeArgs = [...(options.loader === false ? [] : loaderArgs()), ...(options.nodeArgs ?? [])];
  const began = Date.now();
  const child = killOnExit(
    spawn(process.execPath, [...nodeArgs, script, ...args], {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  let stdout = '';
  let stderr = '';
  let stderrLine = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    if (stdout.length > 1_000_000) stdout = stdout.slice(-500_000);
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
    if (stderr.length > 200_000) stderr = stderr.slice(-100_000);
    if (options.onStderr) {
      stderrLine += d;
      const lines = stderrLine.split('\n');
      stderrLine = lines.pop() ?? '';
      for (const line of lines) options.onStderr(line);
    }
  });
  let timedOut = false;
  const kill = (): void => {
    child.kill('SIGKILL');
  };
  const timer = setTimeout(() => {
    timedOut = true;
    kill();
  }, options.timeoutMs);
  options.signal?.addEventListener('abort', kill, { once: true });
  try {
    options.onSpawn?.(child);
    const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (c, s) => resolve({ code: c, signal: s }));
    });
    options.signal?.throwIfAborted();
    return { code, signal, stdout, stderr, wallMs: Date.now() - began, timedOut };
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', kill);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

/** Spawns `node [loader] [nodeArgs] script args…`, waits, and returns the parsed `RESULT` line. */
export async function runChild<T>(script: string, args: readonly string[], options: RunChildOptions): Promise<ChildOutcome<T>> {
  const out = await runProcess(script, args, options);
  const line = out.stdout
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('RESULT '));
  if (out.code !== 0 || line === undefined) {
    const why = out.signal ? `killed by ${out.signal}${out.timedOut ? ` (time cap ${options.timeoutMs} ms)` : ''}` : `exit code ${out.code}`;
    throw new Error(`child ${script} ${args.join(' ')}: ${why}\n${out.stderr.slice(-4000)}`);
  }
  return { result: JSON.parse(line.slice('RESULT '.length)) as T, wallMs: out.wallMs };
}

/** Prints the result line a parent's {@link runChild} reads. */
export function reportResult(value: unknown): void {
  process.stdout.write(`RESULT ${JSON.stringify(value)}\n`);
}

/** Resident set size and its high-water mark of a live process, MB (from /proc; Linux only). */
export function procMemory(pid: number): { rssMB: number; hwmMB: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = /VmRSS:\s+(\d+)\s+kB/.exec(text)?.[1];
    const hwm = /VmHWM:\s+(\d+)\s+kB/.exec(text)?.[1];
    if (rss === undefined || hwm === undefined) return undefined;
    return { rssMB: Number(rss) / 1024, hwmMB: Number(hwm) / 1024 };
  } catch {
    return undefined;
  }
}

/** Bars for the line chart writer: one closed outline per value, centred on 1, 2, 3… */
export function barOutline(index: number, value: number, width = 0.6): Array<readonly [number, number]> {
  const x = index + 1;
  return [
    [x - width / 2, 0],
    [x - width / 2, value],
    [x + width / 2, value],
    [x + width / 2, 0],
  ];
}

/** Pids of this process's children whose command line contains `match` (Linux /proc). */
export function childPids(match: string): number[] {
  const out: number[] = [];
  try {
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      try {
        const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        if (ppid !== process.pid) continue;
        if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(match)) out.push(Number(name));
      } catch {
        // The process ended meanwhile.
      }
    }
  } catch {
    // No /proc.
  }
  return out;
}
