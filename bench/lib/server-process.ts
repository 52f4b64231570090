/**
 * Parent side of `server-child.ts`: a fake ModelBeam server in a child
 * process, driven over IPC. Every call has a timeout, and the child is killed
 * when this process exits, whatever the reason.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { FakeServerOptions, FakeServerStats } from '../../src/testing/index.js';
import type { AppliedChange, ScheduledChange } from './server-child.js';

export type { AppliedChange, ScheduledChange };

export interface Collected {
  /** Server-clock (epoch ms) time of every request the limiter counted, in order. */
  accepted: number[];
  stats: FakeServerStats;
  applied: AppliedChange[];
}

interface Reply {
  id: number;
  ok: boolean;
  value?: unknown;
  error?: string;
}

const CHILD = fileURLToPath(new URL('./server-child.ts', import.meta.url));
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

export class ServerProcess {
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  #nextId = 1;
  #exited = false;

  private constructor(child: ChildProcess) {
    this.#child = child;
    child.on('message', (raw: unknown) => {
      const reply = raw as Reply;
      const waiter = this.#pending.get(reply.id);
      if (!waiter) return;
      this.#pending.delete(reply.id);
      clearTimeout(waiter.timer);
      if (reply.ok) waiter.resolve(reply.value);
      else waiter.reject(new Error(`fake server child: ${reply.error ?? 'unknown error'}`));
    });
    child.on('exit', (code, signal) => {
      this.#exited = true;
      live.delete(child);
      for (const [id, waiter] of this.#pending) {
        clearTimeout(waiter.timer);
        waiter.reject(new Error(`fake server child exited (code ${code}, signal ${signal}) before answering request ${id}`));
      }
      this.#pending.clear();
    });
  }

  /** Forks the child (with the same loader flags as this process, e.g. tsx) and waits until it is ready. */
  static async spawn(timeoutMs = 20_000): Promise<ServerProcess> {
    installExitHook();
    const child = fork(CHILD, [], {
      execArgv: process.execArgv,
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    live.add(child);
    const handle = new ServerProcess(child);
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`fake server child not ready after ${timeoutMs} ms`)), timeoutMs);
        handle.#pending.set(0, {
          resolve: () => resolve(),
          reject,
          timer,
        });
        child.once('error', reject);
      });
    } catch (error) {
      await handle.close();
      throw error;
    }
    return handle;
  }

  #call<T>(op: string, payload: Record<string, unknown> = {}, timeoutMs = 10_000): Promise<T> {
    if (this.#exited) return Promise.reject(new Error('fake server child has exited'));
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`fake server child: \`${op}\` timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.#child.send({ id, op, ...payload });
    });
  }

  /** Starts a server in the child. Only one at a time: `stopServer()` first. */
  startServer(options: FakeServerOptions): Promise<{ url: string; baseUrl: string }> {
    return this.#call('start', { options });
  }

  /** Applies `setLimits(limits)` at each change's epoch time `at`, in the child. */
  schedule(changes: readonly ScheduledChange[]): Promise<void> {
    return this.#call('schedule', { changes: [...changes] });
  }

  collect(): Promise<Collected> {
    return this.#call('collect', {}, 30_000);
  }

  stopServer(): Promise<void> {
    return this.#call('stop');
  }

  /** Stops the server and the child. Kills the child if it does not exit in time. Idempotent. */
  async close(timeoutMs = 5_000): Promise<void> {
    if (this.#exited) return;
    const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    try {
      await this.#call('exit', {}, timeoutMs);
    } catch {
      // Fall through to the kill below.
    }
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), timeoutMs);
    await exited;
    clearTimeout(timer);
  }
}
