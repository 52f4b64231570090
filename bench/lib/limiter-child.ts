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
import { serveRpc } from './child-rpc-host.js';
import { startLimiterServer, type LimiterServer, type LimiterServerOptions } from './limiter-servers.js';

type Message = { id: number; op: 'start'; options: LimiterServerOptions } | { id: number; op: 'collect' };

let server: LimiterServer | undefined;

async function stop(): Promise<void> {
  const s = server;
  server = undefined;
  if (s) await s.close();
}

async function handle(message: Message): Promise<unknown> {
  switch (message.op) {
    case 'start': {
      if (server) throw new Error('a limiter server is already running in this child; stop it first');
      server = await startLimiterServer(message.options);
      return { url: server.url, origin: server.origin };
    }
    case 'collect':
      if (!server) throw new Error('no limiter server running');
      return server.hits;
  }
}

serveRpc(handle, stop);
