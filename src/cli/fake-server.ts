/**
 * `modelbeam-batch fake-server`: the bundled fake ModelBeam API on a port,
 * for trying the CLI (or your own code) with no key and no network.
 */
import { startFakeModelBeam, type FakeModelBeamServer } from '../testing/fake-server.js';
import type { FakeServerOptions } from '../testing/options.js';
import { EXIT, type ExitCode } from './exit-codes.js';
import type { CliIo } from './run.js';

export interface FakeServerCommandOptions {
  port: number;
  host: string;
  key: string;
  minuteLimit: number;
  minuteMs: number;
  dailyLimit?: number;
  dayMs?: number;
  pendingMs: number;
  processingMs: number;
  failureRate: number;
  resetRate?: number;
  acceptThenResetRate?: number;
  errorRate?: number;
  seed: number;
}

/** The fake's options for these command-line options. */
export function fakeServerOptions(o: FakeServerCommandOptions): FakeServerOptions {
  return {
    port: o.port,
    host: o.host,
    seed: o.seed,
    accounts: { [o.key]: 'acct-1' },
    limits: {
      minute: { limit: o.minuteLimit, windowMs: o.minuteMs },
      daily: o.dailyLimit === undefined ? false : { limit: o.dailyLimit, windowMs: o.dayMs ?? 86_400_000 },
    },
    jobs: { pendingMs: o.pendingMs, processingMs: o.processingMs, failureRate: o.failureRate },
    faults: {
      ...(o.resetRate !== undefined ? { resetRate: o.resetRate } : {}),
      ...(o.acceptThenResetRate !== undefined ? { acceptThenResetRate: o.acceptThenResetRate } : {}),
      ...(o.errorRate !== undefined ? { error5xxRate: o.errorRate } : {}),
    },
  };
}

/** Starts the fake, prints how to use it, and runs until SIGINT/SIGTERM. */
export async function fakeServerCommand(o: FakeServerCommandOptions, io: CliIo): Promise<ExitCode> {
  let server: FakeModelBeamServer;
  try {
    server = await startFakeModelBeam(fakeServerOptions(o));
  } catch (error) {
    io.stderr.write(`modelbeam-batch fake-server: cannot start: ${(error as Error).message}\n`);
    return EXIT.USAGE;
  }
  const windows = o.minuteMs === 60_000 ? 'per minute' : `per ${o.minuteMs} ms window`;
  io.stdout.write(
    [
      `Fake ModelBeam API listening on ${server.url}`,
      `  base URL:  ${server.baseUrl}`,
      `  test key:  ${o.key}   (a fake key for this server only)`,
      `  limits:    ${o.minuteLimit} requests ${windows}${o.dailyLimit !== undefined ? `, ${o.dailyLimit} per ${o.dayMs ?? 86_400_000} ms "day"` : ''}`,
      `  jobs:      pending ${o.pendingMs} ms, processing ${o.processingMs} ms; prompts with FAIL:<CODE> fail`,
      '',
      'Try (prompts.jsonl: one {"prompt": "…"} per line):',
      `  MODELBEAM_API_KEY=${o.key} modelbeam-batch run prompts.jsonl --out results.jsonl --endpoint txt2img \\`,
      `    --params '{"model":"Flux1schnell","width":512,"height":512,"steps":4}' \\`,
      `    --base-url ${server.baseUrl}${o.minuteMs !== 60_000 ? ` --minute-ms ${o.minuteMs}` : ''}${o.dayMs !== undefined ? ` --day-ms ${o.dayMs}` : ''}`,
      '',
      'Ctrl-C stops it.',
      '',
    ].join('\n'),
  );
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await server.close();
  const stats = server.stats();
  io.stdout.write(`Fake server stopped after ${stats.requests} requests (${stats.accepted} counted, ${stats.rejected429.total} answered 429).\n`);
  return EXIT.OK;
}
