/**
 * Parent side of `limiter-child.ts`: one real limiter server (express or
 * fastify) at a time in a child process, driven over IPC with timeouts; the
 * child is killed when this process exits.
 */
import { fileURLToPath } from 'node:url';
import { ChildRpc, ServerChild } from './child-rpc.js';
import type { LimiterHit, LimiterServerOptions } from './limiter-servers.js';

const CHILD = fileURLToPath(new URL('./limiter-child.ts', import.meta.url));

/** `collect()` gives every request that reached the limiter so far, in arrival order. */
export class LimiterProcess extends ServerChild<LimiterServerOptions, { url: string; origin: string }, LimiterHit[]> {
  /** Forks the child (same loader flags as this process, e.g. tsx) and waits until it is ready. */
  static async spawn(timeoutMs = 20_000): Promise<LimiterProcess> {
    return new LimiterProcess(await ChildRpc.fork(CHILD, { label: 'limiter child', timeoutMs }));
  }
}
