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
import { serveRpc } from './child-rpc-host.js';
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

let server: FakeModelBeamServer | undefined;
let timers: NodeJS.Timeout[] = [];
let applied: AppliedChange[] = [];

async function stop(): Promise<void> {
  for (const t of timers) clearTimeout(t);
  timers = [];
  const s = server;
  server = undefined;
  if (s) await s.close();
}

async function handle(message: Message): Promise<unknown> {
  switch (message.op) {
    case 'start': {
      if (server) throw new Error('a server is already running in this child; stop it first');
      applied = [];
      const options: FakeServerOptions = { ...message.options, host: '127.0.0.1' };
      server = await startFakeModelBeam(options);
      return { url: server.url, baseUrl: server.baseUrl };
    }
    case 'schedule': {
      const s = server;
      if (!s) throw new Error('no server running');
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
      const s = server;
      if (!s) throw new Error('no server running');
      const logs = s.acceptedLog();
      const accepted = Object.values(logs)[0] ?? [];
      return { accepted, stats: s.stats(), applied };
    }
  }
}

serveRpc(handle, stop);

