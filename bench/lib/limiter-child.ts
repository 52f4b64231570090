/**
 * Child-process host for the real limiter servers of `limiter-servers.ts`
 * (started by `limiter-process.ts`), so that the contender's CPU work does not
 * delay the server's clock reads and window decisions, as with
 * `server-child.ts` for the fake ModelBeam server.
 *
 * Protocol (IPC): `{ id, op, ... }` in, `{ id, ok, value | error }` out. Ops:
 * `start { options }` → `{ url, origin }`; `collect` → `LimiterHit[]`;
 * `stop`; `exit`. The child exits when the parent goes away.
 */
import { serveRpc, ServerSlot } from './child-rpc-host.js';
import { startLimiterServer, type LimiterServer, type LimiterServerOptions } from './limiter-servers.js';

type Message = { id: number; op: 'start'; options: LimiterServerOptions } | { id: number; op: 'collect' };

const server = new ServerSlot<LimiterServer>('limiter server');

async function handle(message: Message): Promise<unknown> {
  switch (message.op) {
    case 'start': {
      const s = await server.start(() => startLimiterServer(message.options));
      return { url: s.url, origin: s.origin };
    }
    case 'collect':
      return server.get().hits;
  }
}

serveRpc(handle, () => server.stop());
