import type { Txt2ImgParams } from '../src/modelbeam/endpoints.js';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ModelBeamClient, type ModelBeamClientOptions } from '../src/modelbeam/index.js';
import { startFakeModelBeam, type FakeModelBeamServer, type FakeServerOptions, type ManualClock } from '../src/testing/index.js';

/** Short fake-server durations (tens of ms) and polling tuned to match. */
export const FAST_JOBS = { pendingMs: 10, processingMs: 40 } as const;
export const FAST_POLLING = { minIntervalMs: 5, maxIntervalMs: 200, initialEstimateMs: 40 } as const;

export interface Harness {
  server: FakeModelBeamServer;
  client: ModelBeamClient;
  make(options?: Partial<ModelBeamClientOptions>): ModelBeamClient;
}

const open: { close(): Promise<void> }[] = [];

/**
 * Steps a fake clock 1 ms at a time whenever the client has nothing in flight, until `done` (the HTTP
 * answers come on real time; the clock moves only between them).
 */
export async function advanceWhileQuiet(clock: ManualClock, client: ModelBeamClient, done: () => boolean, maxFakeMs = 60_000): Promise<void> {
  const end = clock.now() + maxFakeMs;
  const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
  while (!done()) {
    for (let i = 0; i < 3; i++) await turn();
    while (client.stats().scheduler.inFlight > 0) await new Promise((resolve) => setTimeout(resolve, 1));
    if (done()) return;
    if (clock.now() >= end) throw new Error(`not done after ${maxFakeMs} ms of fake time`);
    clock.advance(1);
  }
}

export async function closeAll(): Promise<void> {
  const items = open.splice(0).reverse();
  for (const item of items) await item.close();
}

export async function harness(server: FakeServerOptions = {}, client: Partial<ModelBeamClientOptions> = {}): Promise<Harness> {
  const fake = await startFakeModelBeam({ ...server, jobs: { ...FAST_JOBS, ...server.jobs } });
  open.push(fake);
  const make = (options: Partial<ModelBeamClientOptions> = {}): ModelBeamClient => {
    const c = new ModelBeamClient({
      apiKey: 'test-key',
      baseUrl: fake.baseUrl,
      jobRetryDelayMs: 0,
      ...client,
      ...options,
      polling: { ...FAST_POLLING, ...client.polling, ...options.polling },
    });
    open.push(c);
    return c;
  };
  return { server: fake, client: make(), make };
}

export const img = (over: Record<string, unknown> = {}): Txt2ImgParams & Record<string, unknown> => ({
  prompt: 'a red fox',
  model: 'Flux1schnell',
  width: 512,
  height: 512,
  steps: 4,
  ...over,
});

export interface StubRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A tiny scripted API for shapes the fake does not produce. */
export async function stubApi(
  handle: (req: StubRequest, res: ServerResponse) => void,
): Promise<{ baseUrl: string; requests: StubRequest[]; close(): Promise<void> }> {
  const requests: StubRequest[] = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      requests.push(r);
      handle(r, res);
    });
  });
  const stub = { ...(await serve(server)), requests };
  open.push(stub);
  return stub;
}

/** Listens on a loopback port: the API base URL there, and a close that drops open connections first. */
export async function serve(server: Server): Promise<{ baseUrl: string; close(): Promise<void> }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/api/v1/client`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

/** Waits (real time) until `test` holds. */
export async function until(test: () => boolean, what: string, maxMs = 5000): Promise<void> {
  const end = Date.now() + maxMs;
  while (!test()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
