/**
 * Parent side of `child-rpc-host.ts`: a child process driven over IPC with a
 * timeout on every call, killed when this process exits. `ServerChild` is the
 * part every server host shares: start one server, collect what it saw, stop
 * it, and stop the child.
 *
 * Protocol: `{ id, op, ... }` out, `{ id, ok, value | error }` back; the child
 * sends `{ id: 0, ok: true }` once it is ready.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { killOnExit } from './kill-on-exit.js';

interface Reply {
  id: number;
  ok: boolean;
  value?: unknown;
  error?: string;
}

export interface ForkOptions {
  /** Names the child in errors, e.g. `limiter child`. */
  label: string;
  /** IPC serialization (`json` by default, as with `fork`). */
  serialization?: 'json' | 'advanced';
  /** How long the child may take to say it is ready. */
  timeoutMs?: number;
}

export class ChildRpc {
  readonly #child: ChildProcess;
  readonly #label: string;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  #nextId = 1;
  #exited = false;

  private constructor(child: ChildProcess, label: string) {
    this.#child = child;
    this.#label = label;
    child.on('message', (raw: unknown) => {
      const reply = raw as Reply;
      const waiter = this.#pending.get(reply.id);
      if (!waiter) return;
      this.#pending.delete(reply.id);
      clearTimeout(waiter.timer);
      if (reply.ok) waiter.resolve(reply.value);
      else waiter.reject(new Error(`${label}: ${reply.error ?? 'unknown error'}`));
    });
    child.on('exit', (code, signal) => {
      this.#exited = true;
      for (const [id, waiter] of this.#pending) {
        clearTimeout(waiter.timer);
        waiter.reject(new Error(`${label} exited (code ${code}, signal ${signal}) before answering request ${id}`));
      }
      this.#pending.clear();
    });
  }

  /** Forks `file` (with the same loader flags as this process, e.g. tsx) and waits until it is ready. */
  static async fork(file: string, options: ForkOptions): Promise<ChildRpc> {
    const { label, serialization = 'json', timeoutMs = 20_000 } = options;
    const child = killOnExit(
      fork(file, [], { execArgv: process.execArgv, serialization, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
    );
    const handle = new ChildRpc(child, label);
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${label} not ready after ${timeoutMs} ms`)), timeoutMs);
        handle.#pending.set(0, { resolve: () => resolve(), reject, timer });
        child.once('error', reject);
      });
    } catch (error) {
      await handle.close();
      throw error;
    }
    return handle;
  }

  call<T>(op: string, payload: Record<string, unknown> = {}, timeoutMs = 10_000): Promise<T> {
    if (this.#exited) return Promise.reject(new Error(`${this.#label} has exited`));
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${this.#label}: \`${op}\` timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.#child.send({ id, op, ...payload });
    });
  }

  /** Asks the child to exit; kills it if it does not exit in time. Idempotent. */
  async close(timeoutMs = 5_000): Promise<void> {
    if (this.#exited) return;
    const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    try {
      await this.call('exit', {}, timeoutMs);
    } catch {
      // Fall through to the kill below.
    }
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), timeoutMs);
    await exited;
    clearTimeout(timer);
  }
}

/** A child that hosts one server at a time (`start`, `collect`, `stop`, `exit`). */
export class ServerChild<Options, Started, Collected> {
  protected readonly rpc: ChildRpc;

  protected constructor(rpc: ChildRpc) {
    this.rpc = rpc;
  }

  /** Starts a server in the child. One at a time: `stopServer()` first. */
  startServer(options: Options): Promise<Started> {
    return this.rpc.call('start', { options });
  }

  /** What the server saw so far. */
  collect(): Promise<Collected> {
    return this.rpc.call('collect', {}, 30_000);
  }

  stopServer(): Promise<void> {
    return this.rpc.call('stop');
  }

  /** Stops the server and the child; kills the child if it does not exit in time. Idempotent. */
  close(timeoutMs = 5_000): Promise<void> {
    return this.rpc.close(timeoutMs);
  }
}
