/**
 * Parent side of `server-child.ts`: a fake ModelBeam server in a child
 * process, driven over IPC. Every call has a timeout, and the child is killed
 * when this process exits, whatever the reason.
 */
import { fileURLToPath } from 'node:url';
import type { FakeServerOptions, FakeServerStats } from '../../src/testing/index.js';
import { ChildRpc, ServerChild } from './child-rpc.js';
import type { AppliedChange, ScheduledChange } from './server-child.js';

export type { AppliedChange, ScheduledChange };

export interface Collected {
  /** Server-clock (epoch ms) time of every request the limiter counted, in order. */
  accepted: number[];
  stats: FakeServerStats;
  applied: AppliedChange[];
}

const CHILD = fileURLToPath(new URL('./server-child.ts', import.meta.url));

export class ServerProcess extends ServerChild<FakeServerOptions, { url: string; baseUrl: string }, Collected> {
  /** Forks the child (with the same loader flags as this process, e.g. tsx) and waits until it is ready. */
  static async spawn(timeoutMs = 20_000): Promise<ServerProcess> {
    return new ServerProcess(await ChildRpc.fork(CHILD, { label: 'fake server child', serialization: 'advanced', timeoutMs }));
  }

  /** Applies `setLimits(limits)` at each change's epoch time `at`, in the child. */
  schedule(changes: readonly ScheduledChange[]): Promise<void> {
    return this.rpc.call('schedule', { changes: [...changes] });
  }
}
