/**
 * Parent side of `limiter-child.ts`: one real limiter server (express or
 * fastify) at a time in a child process, driven over IPC with timeouts; the
 * child is killed when this process exits.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { LimiterHit, LimiterServerOptions } from './limiter-servers.js';

const CHILD = fileURLToPath(new URL('./limiter-child.ts', import.meta.url));
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

interface Reply {
  id: number;
  ok: boolean;
  value?: unknown;
  error?: string;
}

export class LimiterProcess {
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
      else waiter.reject(new Error(`limiter child: ${reply.error ?? 'unknown error'}`));
    });
    child.on('exit', (code, signal) => {
      this.#exited = true;
      live.delete(child);
      for (const [id, waiter] of this.#pending) {
        clearTimeout(waiter.timer);
        waiter.reject(new Error(`limiter child exited (code ${code}, signal ${signal}) before answering request ${id}`));
      }
      this.#pending.clear();
    });
  }

  /** Forks the child (same loader flags as this process, e.g. tsx) and waits until it is ready. */
  static async spawn(timeoutMs = 20_000): Promise<LimiterProcess> {
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.on('exit', () => {
        for (const child of live) child.kill('SIGKILL');
      });
    }
    const child = fork(CHILD, [], { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    live.add(child);
    const handle = new LimiterProcess(child);
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`limiter child not ready after ${timeoutMs} ms`)), timeoutMs);
        handle.#pending.set(0, { resolve: () => resolve(), reject, timer });
        child.once('error', reject);
      });
    } catch (error) {
      await handle.close();
      throw error;
    }
    return handle;
  }

  #call<T>(op: string, payload: Record<string, unknown> = {}, timeoutMs = 10_000): Promise<T> {
    if (this.#exited) return Promise.reject(new Error('limiter child has exited'));
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`limiter child: \`${op}\` timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.#child.send({ id, op, ...payload });
    });
  }

  /** Starts a server in the child. One at a time: `stopServer()` first. */
  startServer(options: LimiterServerOptions): Promise<{ url: string; origin: string }> {
    return this.#call('start', { options });
  }

  /** Every request that reached the limiter so far, in arrival order. */
  collect(): Promise<LimiterHit[]> {
    return this.#call('collect', {}, 30_000);
  }

  stopServer(): Promise<void> {
    return this.#call('stop');
  }

  /** Stops the server and the child; kills it if it does not exit in time. Idempotent. */
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
