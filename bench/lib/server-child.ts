/**
 * Child-process host for fake ModelBeam servers (started by
 * `server-process.ts` with `child_process.fork`). Running the server in its
 * own process keeps the client's CPU work off the server's event loop, so
 * the server's timestamps and window decisions are not delayed by the
 * contender under test.
 *
 * Protocol (IPC, `serialization: 'advanced'`): the parent sends
 * `{ id, op, ... }`, the child answers `{ id, ok: true, value }` or
 * `{ id, ok: false, error }`. Ops:
 * - `start { options }` → `{ url, baseUrl }`: a new server (the previous one must be stopped);
 * - `schedule { changes: [{ at, limits }] }`: applies `setLimits(limits)` at epoch ms `at`;
 * - `collect` → `{ accepted, stats, applied }`: the accepted log, counters and applied changes;
 * - `stop`: closes the server and clears the scheduled changes;
 * - `exit`: stops and exits.
 * The child exits by itself when the parent goes away.
 */
import { serveRpc, ServerSlot } from './child-rpc-host.js';
import { startFakeModelBeam, type FakeModelBeamServer, type FakeServerOptions } from '../../src/testing/index.js';

type Limits = { minute?: number | false; daily?: number | false };

export interface ScheduledChange {
  /** Epoch ms at which to apply. */
  at: number;
  limits: Limits;
}

export interface AppliedChange extends ScheduledChange {
  /** Epoch ms at which it was applied. */
  appliedAt: number;
}

type Message =
  | { id: number; op: 'start'; options: FakeServerOptions }
  | { id: number; op: 'schedule'; changes: ScheduledChange[] }
  | { id: number; op: 'collect' };

const server = new ServerSlot<FakeModelBeamServer>('server');
let timers: NodeJS.Timeout[] = [];
let applied: AppliedChange[] = [];

async function stop(): Promise<void> {
  for (const t of timers) clearTimeout(t);
  timers = [];
  await server.stop();
}

async function handle(message: Message): Promise<unknown> {
  switch (message.op) {
    case 'start': {
      const s = await server.start(() => {
        applied = [];
        const options: FakeServerOptions = { ...message.options, host: '127.0.0.1' };
        return startFakeModelBeam(options);
      });
      return { url: s.url, baseUrl: s.baseUrl };
    }
    case 'schedule': {
      const s = server.get();
      for (const change of message.changes) {
        const fire = (): void => {
          // setTimeout may fire a little early on the wall clock; wait out the rest.
          const early = change.at - Date.now();
          if (early > 0) {
            timers.push(setTimeout(fire, early));
            return;
          }
          s.setLimits(change.limits);
          applied.push({ ...change, appliedAt: Date.now() });
        };
        timers.push(setTimeout(fire, Math.max(0, change.at - Date.now())));
      }
      return undefined;
    }
    case 'collect': {
      const s = server.get();
      const logs = s.acceptedLog();
      const accepted = Object.values(logs)[0] ?? [];
      return { accepted, stats: s.stats(), applied };
    }
  }
}

serveRpc(handle, stop);

