/**
 * Child side of `child-rpc.ts`: answers `{ id, op, ... }` with
 * `{ id, ok, value | error }`. `stop` and `exit` are handled here (`exit`
 * stops, then exits); every other op goes to `handle`. The child exits by
 * itself when the parent goes away, and leaves Ctrl-C to the parent (which
 * reaches the whole process group; the parent sends `exit`).
 */
export interface RpcMessage {
  id: number;
  op: string;
}

function send(message: unknown): void {
  if (process.connected) process.send?.(message);
}

async function dispatch<M extends RpcMessage>(message: M, handle: (message: M) => Promise<unknown>, stop: () => Promise<void>): Promise<unknown> {
  switch (message.op) {
    case 'stop':
      await stop();
      return undefined;
    case 'exit':
      await stop();
      setImmediate(() => process.exit(0));
      return undefined;
    default:
      return handle(message);
  }
}

/** Serves the parent's calls, then tells it this child is ready. */
export function serveRpc<M extends RpcMessage>(handle: (message: M) => Promise<unknown>, stop: () => Promise<void>): void {
  process.on('message', (raw: unknown) => {
    const message = raw as M;
    dispatch(message, handle, stop).then(
      (value) => send({ id: message.id, ok: true, value }),
      (error: unknown) => send({ id: message.id, ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
    );
  });
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => {});
  process.on('disconnect', () => {
    void stop().finally(() => process.exit(0));
  });
  send({ id: 0, ok: true, value: 'ready' });
}

/** The one server a child hosts at a time. */
export class ServerSlot<S extends { close(): Promise<void> }> {
  readonly #noun: string;
  #server: S | undefined;

  /** `noun` names the server in errors, e.g. `limiter server`. */
  constructor(noun: string) {
    this.#noun = noun;
  }

  /** Starts one with `open`; throws if one is already running. */
  async start(open: () => Promise<S>): Promise<S> {
    if (this.#server) throw new Error(`a ${this.#noun} is already running in this child; stop it first`);
    this.#server = await open();
    return this.#server;
  }

  /** The running one; throws if none is. */
  get(): S {
    if (!this.#server) throw new Error(`no ${this.#noun} running`);
    return this.#server;
  }

  /** Closes the running one, if any. */
  async stop(): Promise<void> {
    const s = this.#server;
    this.#server = undefined;
    if (s) await s.close();
  }
}
