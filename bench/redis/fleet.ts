/**
 * Parent side of `worker.ts`: starts N worker processes
 * (`node --import tsx bench/redis/worker.ts <args>`, with an IPC channel),
 * waits until every one is connected and warm, hands them one common start
 * time, and collects what each did. Every child is killed when the trial ends,
 * fails or is interrupted, and when this process exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { killOnExit } from '../lib/kill-on-exit.js';
import type { ParentMessage, WorkerArgs, WorkerMessage, WorkerResult } from './protocol.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..');
const WORKER = join(HERE, 'worker.ts');

export interface FleetTrial {
  /** Per worker: everything but the index, its jobs and its trace file. */
  base: Omit<WorkerArgs, 'index' | 'firstJob' | 'jobs' | 'clearDatastore' | 'traceFile'>;
  workers: number;
  jobsPerWorker: number;
  traceFile(index: number): string;
  /** Bottleneck: `clearDatastore` on the first process only, which starts (and initialises the shared state) before the others. */
  firstClearsAlone: boolean;
  /** The first worker creates its limiter no earlier than this (epoch ms). */
  firstInitAt?: number | undefined;
  /** The start is the first `origin + k·period` at least `leadMs` from now (so the server's window phase is as planned). */
  origin: number;
  period: number;
  leadMs?: number;
  /** Hard cap on the run after the start. */
  capMs: number;
  signal: AbortSignal;
  log?(line: string): void;
}

export interface FleetOutcome {
  start: number;
  results: WorkerResult[];
  /** The cap was hit (or the run was interrupted): the workers were told to abort. */
  timedOut: boolean;
  /** Time from spawn to ready, per worker. */
  setupMs: number[];
  /** When each worker's limiter was ready (epoch ms). */
  readyAt: number[];
}

interface Handle {
  index: number;
  child: ChildProcess;
  stderr: string;
  ready: Promise<{ setupMs: number; readyAt: number }>;
  done: Promise<WorkerResult>;
  exited: Promise<void>;
}

function sendTo(h: Handle, message: ParentMessage): void {
  if (h.child.connected) h.child.send(message, () => {});
}

function startWorker(args: WorkerArgs): Handle {
  const child = killOnExit(
    spawn(process.execPath, ['--import', 'tsx', WORKER, JSON.stringify(args)], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      // Structured clone, not JSON: a job that never finished is NaN, not null.
      serialization: 'advanced',
    }),
  );
  const h = { index: args.index, child, stderr: '' } as Handle;
  child.stderr?.on('data', (chunk: Buffer) => {
    h.stderr = (h.stderr + chunk.toString()).slice(-4000);
  });
  h.exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
  });
  const exitError = (what: string) => (): Error => new Error(`worker ${args.index} (${args.config}) exited ${what}: ${h.stderr.trim().slice(-1500) || '(no stderr)'}`);
  h.ready = new Promise<{ setupMs: number; readyAt: number }>((resolve, reject) => {
    child.on('message', (raw: unknown) => {
      const m = raw as WorkerMessage;
      if (m.type === 'ready') resolve({ setupMs: m.setupMs, readyAt: m.readyAt });
      else if (m.type === 'error') reject(new Error(`worker ${args.index} (${args.config}): ${m.message}`));
    });
    child.once('exit', () => reject(exitError('before it was ready')()));
    child.once('error', reject);
  });
  h.done = new Promise<WorkerResult>((resolve, reject) => {
    child.on('message', (raw: unknown) => {
      const m = raw as WorkerMessage;
      if (m.type === 'done') resolve(m.result);
      else if (m.type === 'error') reject(new Error(`worker ${args.index} (${args.config}): ${m.message}`));
    });
    child.once('exit', () => reject(exitError('before it reported')()));
  });
  // Observed through Promise.all/race below; never unhandled.
  h.ready.catch(() => {});
  h.done.catch(() => {});
  return h;
}

function timeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Stops every worker: `exit`, then SIGKILL after `graceMs`. */
async function stopAll(handles: readonly Handle[], graceMs = 3000): Promise<void> {
  for (const h of handles) sendTo(h, { type: 'exit' });
  const timer = setTimeout(() => {
    for (const h of handles) if (h.child.exitCode === null && h.child.signalCode === null) h.child.kill('SIGKILL');
  }, graceMs);
  await Promise.all(handles.map((h) => h.exited));
  clearTimeout(timer);
}

/** Runs one trial of N worker processes. Throws when a worker fails; the workers are gone either way. */
export async function runFleet(t: FleetTrial): Promise<FleetOutcome> {
  const handles: Handle[] = [];
  const argsOf = (index: number): WorkerArgs => ({
    ...t.base,
    index,
    firstJob: index * t.jobsPerWorker,
    jobs: t.jobsPerWorker,
    clearDatastore: t.firstClearsAlone && index === 0,
    initAt: index === 0 ? t.firstInitAt : undefined,
    traceFile: t.traceFile(index),
  });
  const aborted = new Promise<'abort'>((resolve) => {
    if (t.signal.aborted) resolve('abort');
    else t.signal.addEventListener('abort', () => resolve('abort'), { once: true });
  });
  const guard = async <T>(p: Promise<T>): Promise<T> => {
    const r = await Promise.race([p, aborted]);
    if (r === 'abort') throw new Error('interrupted');
    return r as T;
  };
  try {
    if (t.firstClearsAlone) {
      const first = startWorker(argsOf(0));
      handles.push(first);
      await guard(timeout(first.ready, 30_000, 'worker 0 start'));
      for (let i = 1; i < t.workers; i++) handles.push(startWorker(argsOf(i)));
    } else {
      for (let i = 0; i < t.workers; i++) handles.push(startWorker(argsOf(i)));
    }
    const ready = await guard(timeout(Promise.all(handles.map((h) => h.ready)), 30_000, 'workers start'));
    const setupMs = ready.map((r) => r.setupMs);
    const readyAt = ready.map((r) => r.readyAt);

    const lead = t.leadMs ?? 250;
    const k = Math.max(0, Math.ceil((Date.now() + lead - t.origin) / t.period));
    const start = t.origin + k * t.period;
    for (const h of handles) sendTo(h, { type: 'go', start });

    let capTimer: NodeJS.Timeout | undefined;
    const capped = new Promise<'cap'>((resolve) => {
      capTimer = setTimeout(() => resolve('cap'), Math.max(0, start - Date.now()) + t.capMs);
    });
    const all = Promise.all(handles.map((h) => h.done));
    all.catch(() => {});
    const first = await Promise.race([all, capped, aborted]);
    clearTimeout(capTimer);
    if (first === 'cap' || first === 'abort') {
      t.log?.(`  … ${first === 'cap' ? `cap of ${t.capMs} ms reached` : 'interrupted'}: aborting the workers`);
      for (const h of handles) sendTo(h, { type: 'abort' });
      const results = await timeout(all, 8_000, 'aborted workers');
      if (first === 'abort') throw new Error('interrupted');
      return { start, results, timedOut: true, setupMs, readyAt };
    }
    return { start, results: first, timedOut: false, setupMs, readyAt };
  } finally {
    await stopAll(handles);
  }
}
