/**
 * `modelbeam-batch run`: the batch runner behind the CLI (and the demo).
 * Thin over `runBatch`: it turns options into a scheduler, a client and a
 * logger, checks the files before anything is sent, shows progress, handles
 * signals, prints the summary, and returns the exit code.
 */
import { closeSync, openSync, statSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { basename, isAbsolute, relative } from 'node:path';
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';
import { RateLimitScheduler } from '../engine/scheduler.js';
import type { SchedulerOptions } from '../engine/options.js';
import { REDACT_PATHS } from '../internal/logger.js';
import { checkReadable, countLines, describeFsError, readJsonlLines } from '../batch/input.js';
import { notAResultsFile } from '../batch/journal.js';
import { BatchSetupError, runBatch, type Batch } from '../batch/run-batch.js';
import { formatSummary } from '../batch/summary.js';
import type { BatchSummary } from '../batch/types.js';
import { PrometheusMetrics, type MetricsServer } from '../metrics/prometheus.js';
import { ModelBeamClient } from '../modelbeam/client.js';
import { CLIENT_DEFAULTS } from '../modelbeam/options.js';
import type { SpendLedger } from '../store/spend-ledger.js';
import type { Store } from '../store/types.js';
import { describeCause } from './cause.js';
import { EXIT, type ExitCode } from './exit-codes.js';
import { ProgressDisplay, type ProgressMode } from './progress.js';
import { installSignalHandlers } from './signals.js';

/** The options of `run`, as commander hands them over (already parsed and range-checked). */
export interface RunCommandOptions {
  out: string;
  endpoint?: string;
  params?: Record<string, unknown>;
  errors?: string;
  maxInFlight?: number;
  maxQueued?: number;
  maxConcurrent?: number;
  limitMinute?: number;
  limitDaily?: number;
  maxResubmissions?: number;
  resubmitUnknown?: boolean;
  onDailyLimit?: 'wait' | 'stop';
  /** Seconds. */
  gracePeriod?: number;
  webhookUrl?: string;
  webhookPort?: number;
  redis?: string;
  baseUrl?: string;
  logLevel?: string;
  logFile?: string;
  apiKey?: string;
  minuteMs?: number;
  dayMs?: number;
  progress?: ProgressMode | 'auto';
  /** Seconds between JSON progress lines. */
  progressInterval?: number;
  fsyncEvery?: number;
  /** Run again the items whose terminal state in the results file is `failed`. */
  retryFailed?: boolean;
  /** Milliseconds to wait for a TCP (and TLS) connection to the API. */
  connectTimeout?: number;
  /** Milliseconds to wait for an answer (response headers), and between two chunks of its body. */
  timeout?: number;
  /** `pretty` log lines (`WARN  message key=value`) or pino's JSON lines. `auto`: pretty on a terminal, JSON elsewhere. */
  logFormat?: 'auto' | 'pretty' | 'json';
  /** Serve Prometheus metrics on this port (0: any free one) at `/metrics` while the run lasts. */
  metricsPort?: number;
  /** Interface of the metrics endpoint. @default '127.0.0.1' */
  metricsHost?: string;
  /** The spend cap, USD (`maxSpend`). */
  maxSpend?: number;
  /** With `--redis`: the name of the shared spend counter. */
  spendKey?: string;
}

/** What the command talks to. Tests and the demo pass their own. */
export interface CliIo {
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  env: NodeJS.ProcessEnv;
  /** `process.argv`, for the resume command. */
  argv: readonly string[];
  execArgv: readonly string[];
  cwd: string;
  /** Called on a second signal, after the results file is closed. */
  exitNow: (code: ExitCode) => void;
  /** Overrides the resume command shown (the demo's is not a `run` line). */
  resumeCommand?: string;
  /** Installs SIGINT/SIGTERM handlers. @default true */
  handleSignals?: boolean;
}

export const DEFAULT_IO = (): CliIo => ({
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  argv: process.argv,
  execArgv: process.execArgv,
  cwd: process.cwd(),
  exitNow: (code) => process.exit(code),
});

/** Replaces every occurrence of the given secrets (at least 6 characters) in `text`. */
export function makeScrubber(secrets: readonly (string | undefined)[]): (text: string) => string {
  const list = secrets.filter((s): s is string => typeof s === 'string' && s.length >= 6);
  if (list.length === 0) return (text) => text;
  return (text) => {
    let out = text;
    for (const secret of list) if (out.includes(secret)) out = out.split(secret).join('[redacted]');
    return out;
  };
}

const SHELL_SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

function shellQuote(arg: string): string {
  if (arg !== '' && SHELL_SAFE.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

function maskUrlPassword(arg: string): string {
  return arg.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/:@\s]*:)[^@/\s]+@/i, '$1***@');
}

/**
 * The command line that resumes this run: the same program and arguments,
 * without `--api-key` (the key never appears in output; set MODELBEAM_API_KEY),
 * and with URL passwords masked.
 */
export function resumeCommandLine(argv: readonly string[], execArgv: readonly string[], cwd: string): string {
  const script = argv[1] ?? 'modelbeam-batch';
  let program: string[];
  if (basename(script) === 'modelbeam-batch') program = ['modelbeam-batch'];
  else {
    const rel = isAbsolute(script) ? relative(cwd, script) : script;
    const shown = rel.startsWith('..') || rel === '' ? script : rel;
    program = ['node', ...execArgv.filter((a) => !a.startsWith('--inspect')), shown];
  }
  const args: string[] = [];
  const rest = argv.slice(2);
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i] as string;
    if (arg === '--api-key') {
      i++;
      continue;
    }
    if (arg.startsWith('--api-key=')) continue;
    args.push(maskUrlPassword(arg));
  }
  return [...program, ...args].map(shellQuote).join(' ');
}

/** The Redis account of an API key: processes with the same key share one quota; the key itself is never stored. */
export function redisAccount(apiKey: string): string {
  return `key-${createHash('sha256').update(apiKey).digest('hex').slice(0, 16)}`;
}

/** The scheduler options of `run` and `estimate`, from their shared command-line options. */
export function schedulerOptionsFor(
  options: Pick<RunCommandOptions, 'onDailyLimit' | 'maxConcurrent' | 'limitMinute' | 'limitDaily' | 'minuteMs' | 'dayMs'>,
  logger: PinoLogger,
  store: Store | undefined,
): SchedulerOptions {
  const minuteMs = options.minuteMs ?? 60_000;
  return {
    onDailyLimit: options.onDailyLimit === 'wait' ? 'wait' : 'reject',
    logger,
    ...(options.maxConcurrent !== undefined ? { maxConcurrent: options.maxConcurrent } : {}),
    ...(options.limitMinute !== undefined || options.limitDaily !== undefined
      ? {
          limits: {
            ...(options.limitMinute !== undefined ? { minute: options.limitMinute } : {}),
            ...(options.limitDaily !== undefined ? { daily: options.limitDaily } : {}),
          },
        }
      : {}),
    ...(options.minuteMs !== undefined || options.dayMs !== undefined
      ? { windows: { minuteMs, ...(options.dayMs !== undefined ? { dayMs: options.dayMs } : {}) } }
      : {}),
    ...(store ? { store } : {}),
  };
}

/** The exit code a summary calls for. */
export function exitCodeFor(summary: BatchSummary): ExitCode {
  if (summary.stopped?.reason === 'authentication') return EXIT.AUTH_FAILED;
  if (summary.stopped?.reason === 'configuration') return EXIT.USAGE;
  if (!summary.complete) return EXIT.STOPPED;
  const bad = summary.totals.failed + summary.totals.invalid + summary.duplicateIds;
  return bad > 0 ? EXIT.ITEMS_FAILED : EXIT.OK;
}

/** A usage error: printed with the usage hint, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The same file (device and inode), when both exist. */
function sameFile(a: string, b: string): boolean {
  try {
    const x = statSync(a);
    const y = statSync(b);
    return x.dev === y.dev && x.ino === y.ino;
  } catch {
    return false;
  }
}

/**
 * Refuses a results (or errors) file that would append into the input, into each other, or into a file that is
 * not a results file of this tool. Runs before anything is sent.
 */
function checkOutputs(input: string, out: string, errorsPath: string): void {
  if (sameFile(input, out)) {
    throw new UsageError(`--out ${out} is the input file. The results file is appended to (it is also the checkpoint): give it a file of its own, e.g. --out results.jsonl.`);
  }
  if (sameFile(input, errorsPath) || sameFile(out, errorsPath) || errorsPath === out) {
    throw new UsageError(`--errors ${errorsPath} is the ${sameFile(input, errorsPath) ? 'input' : 'results'} file: give the errors file a file of its own.`);
  }
  const why = notAResultsFile(out);
  if (why !== undefined) {
    throw new UsageError(
      `--out ${out} exists and is not a results file of modelbeam-batch (${why}). A run appends to its results file: ` +
        'choose a new file, or the results file of an earlier run to resume it.',
    );
  }
}

function checkWritable(path: string, what: string): void {
  try {
    closeSync(openSync(path, 'a', 0o644));
  } catch (error) {
    throw new UsageError(`Cannot write the ${what} ${path}: ${describeFsError(error)}`);
  }
}

/** A pino destination that scrubs secrets from every line, to a file (sync) or through `write`. */
function destination(write: (line: string) => void, scrub: (text: string) => string): DestinationStream {
  return { write: (line: string) => write(scrub(line)) };
}

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/** A value of a pretty log line: plain when it is a simple word or number, JSON otherwise. */
function prettyValue(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'string') return /^[\w.:/@+-]+$/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value) ?? String(value);
}

/** The fields of a log line as `key` / `key.sub` pairs (objects flattened, arrays kept whole), undefined ones left out. */
function pairs(fields: Record<string, unknown>, prefix = ''): [string, unknown][] {
  return Object.entries(fields).flatMap(([key, value]): [string, unknown][] => {
    if (value === undefined) return [];
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return pairs(value as Record<string, unknown>, `${prefix}${key}.`);
    return [[`${prefix}${key}`, value]];
  });
}

/**
 * A pino JSON line as `WARN  [component] message key=value key=value` (no JSON object on the line, and
 * never cut: the terminal wraps it). Lines that do not parse are passed through.
 */
export function humanLine(line: string): string {
  try {
    const { level, msg, time: _time, pid: _pid, hostname: _host, component, ...rest } = JSON.parse(line) as Record<string, unknown>;
    const extra = pairs(rest)
      .map(([key, value]) => ` ${key}=${prettyValue(value)}`)
      .join('');
    return `${(LEVEL_NAMES[level as number] ?? 'LOG').padEnd(5)} ${component ? `[${String(component)}] ` : ''}${String(msg ?? '')}${extra}\n`;
  } catch {
    return line;
  }
}

/**
 * Runs `run <input> --out <results>` and returns the exit code. Never throws
 * for a usage problem: it prints the reason and returns 2.
 */
export async function runCommand(input: string, options: RunCommandOptions, io: CliIo = DEFAULT_IO()): Promise<ExitCode> {
  const envKey = io.env['MODELBEAM_API_KEY'];
  const webhookSecret = io.env['MODELBEAM_WEBHOOK_SECRET'];
  const apiKey = options.apiKey ?? envKey;
  const scrub = makeScrubber([apiKey, envKey, webhookSecret]);
  const say = (stream: NodeJS.WriteStream, text: string): void => {
    stream.write(scrub(text.endsWith('\n') ? text : `${text}\n`));
  };
  const usage = (message: string): ExitCode => {
    say(io.stderr, `modelbeam-batch run: ${message}`);
    return EXIT.USAGE;
  };

  if (options.apiKey !== undefined) {
    say(
      io.stderr,
      'Warning: --api-key puts the key in your shell history and in the process list (ps). Prefer the MODELBEAM_API_KEY environment variable.',
    );
  }
  if (!apiKey) {
    return usage(
      'no API key. Set MODELBEAM_API_KEY, e.g.\n  export MODELBEAM_API_KEY=…  # from modelbeam.ai/dashboard/api-keys\n' +
        'or try the bundled demo, which needs no key: modelbeam-batch demo',
    );
  }
  if (options.webhookPort !== undefined && !webhookSecret) {
    return usage('--webhook-port needs the webhook signing secret in MODELBEAM_WEBHOOK_SECRET (it is never read from the command line).');
  }
  if (options.spendKey !== undefined && (options.maxSpend === undefined || options.redis === undefined)) {
    return usage('--spend-key names the spend counter shared through Redis: it needs --max-spend and --redis.');
  }
  if (options.webhookUrl !== undefined && options.webhookPort === undefined && !webhookSecret) {
    // Deliveries go to a receiver elsewhere; polling stays the source of truth here.
  }

  // Files first: fail before anything is sent.
  const errorsPath = options.errors ?? `${options.out}.errors.jsonl`;
  try {
    await checkReadable(input);
    checkOutputs(input, options.out, errorsPath);
    checkWritable(options.out, 'results file');
    checkWritable(errorsPath, 'errors file');
    if (options.logFile !== undefined) checkWritable(options.logFile, 'log file');
  } catch (error) {
    return usage((error as Error).message);
  }

  // Logger: pino, secrets redacted by path and scrubbed by value.
  const isTTY = io.stderr.isTTY === true;
  const pretty = options.logFormat === 'pretty' || ((options.logFormat ?? 'auto') === 'auto' && isTTY && options.logFile === undefined);
  const mode: ProgressMode = options.progress === undefined || options.progress === 'auto' ? (isTTY ? 'bar' : 'json') : options.progress;
  let progress: ProgressDisplay | undefined;
  let logFd: number | undefined;
  let dest: DestinationStream;
  if (options.logFile !== undefined) {
    const fd = openSync(options.logFile, 'a', 0o644);
    logFd = fd;
    dest = destination((line) => void writeSync(fd, line), scrub);
  } else if (pretty) {
    dest = destination((line) => (progress ? progress.log(humanLine(line)) : io.stderr.write(humanLine(line))), scrub);
  } else if (isTTY) {
    dest = destination((line) => (progress ? progress.log(line) : io.stderr.write(line)), scrub);
  } else {
    dest = destination((line) => void io.stderr.write(line), scrub);
  }
  const logger: PinoLogger = pino(
    { level: options.logLevel ?? 'info', redact: { paths: [...REDACT_PATHS, 'webhook.secret', 'options.apiKey'], censor: '[redacted]' }, base: { pid: process.pid } },
    dest,
  );

  const minuteMs = options.minuteMs ?? 60_000;
  const baseUrl = options.baseUrl ?? CLIENT_DEFAULTS.baseUrl;
  const connectTimeoutMs = options.connectTimeout ?? CLIENT_DEFAULTS.connectTimeoutMs;
  const timeoutMs = options.timeout ?? CLIENT_DEFAULTS.headersTimeoutMs;
  const scale = minuteMs / 60_000;
  let store: Store | undefined;
  let spendLedger: SpendLedger | undefined;
  let scheduler: RateLimitScheduler | undefined;
  let client: ModelBeamClient | undefined;
  let webhookServer: { url: string; close(): Promise<void> } | undefined;
  let uninstall: (() => void) | undefined;
  let metrics: PrometheusMetrics | undefined;
  const resumeCommand = io.resumeCommand ?? resumeCommandLine(io.argv, io.execArgv, io.cwd);
  try {
    if (options.metricsPort !== undefined) {
      // Before anything is sent: a busy port is a usage error, and the counters see every request.
      metrics = new PrometheusMetrics();
      let server: MetricsServer;
      try {
        server = await metrics.listen({ port: options.metricsPort, ...(options.metricsHost !== undefined ? { host: options.metricsHost } : {}) });
      } catch (error) {
        return usage(`Cannot serve metrics on ${options.metricsHost ?? '127.0.0.1'}:${options.metricsPort}: ${describeFsError(error)}`);
      }
      logger.info({ url: server.url }, 'serving Prometheus metrics');
    }
    if (options.redis !== undefined) {
      let mod: typeof import('../store/redis-store.js');
      try {
        mod = await import('../store/redis-store.js');
      } catch (error) {
        return usage(`--redis needs the Redis store, which this build does not have (${(error as Error).message}).`);
      }
      store = new mod.RedisStore({
        redis: options.redis,
        // Processes with the same key share one quota; the key itself is never stored.
        account: redisAccount(apiKey),
        logger,
      });
      if (options.maxSpend !== undefined) spendLedger = (store as InstanceType<typeof mod.RedisStore>).spendLedger(options.spendKey);
    }
    const schedulerOptions = schedulerOptionsFor(options, logger, store);
    try {
      scheduler = new RateLimitScheduler(schedulerOptions);
      await scheduler.ready();
    } catch (error) {
      return usage((error as Error).message);
    }

    let webhookUrl = options.webhookUrl;
    if (options.webhookPort !== undefined && webhookUrl === undefined) webhookUrl = `http://127.0.0.1:${options.webhookPort}/`;
    try {
      client = new ModelBeamClient({
        apiKey,
        scheduler,
        logger,
        onInsufficientBalance: 'reject',
        // The batch takes every result as it comes: a large memory of finished jobs is only heap to carry.
        rememberFinishedJobs: 100,
        baseUrl,
        connectTimeoutMs,
        headersTimeoutMs: timeoutMs,
        bodyTimeoutMs: timeoutMs,
        ...(webhookUrl !== undefined ? { webhook: { url: webhookUrl, ...(webhookSecret ? { secret: webhookSecret } : {}) } } : {}),
        ...(scale !== 1
          ? {
              polling: {
                windowMs: minuteMs,
                minIntervalMs: Math.max(10, Math.round(1000 * scale)),
                maxIntervalMs: Math.max(100, Math.round(60_000 * scale)),
                initialEstimateMs: Math.max(20, Math.round(5000 * scale)),
              },
            }
          : { polling: { windowMs: minuteMs } }),
      });
    } catch (error) {
      return usage((error as Error).message);
    }
    metrics?.track(client);
    if (options.webhookPort !== undefined) {
      try {
        webhookServer = await client.startWebhookServer({ port: options.webhookPort });
      } catch (error) {
        return usage(`Cannot listen for webhooks on port ${options.webhookPort}: ${describeFsError(error)}`);
      }
    }

    progress = new ProgressDisplay({
      mode,
      stream: io.stderr,
      // Progress lines are governed by --progress, not by the log level (unless logging is silenced).
      logger: logger.child({ component: 'progress' }, { level: logger.level === 'silent' ? 'silent' : 'info' }),
      intervalMs: Math.round((options.progressInterval ?? 5) * 1000),
      minuteMs,
    });
    const graceMs = Math.round((options.gracePeriod ?? 30) * 1000);
    const batch: Batch = runBatch(client, readJsonlLines(input), {
      out: options.out,
      errorsOut: errorsPath,
      logger,
      graceMs,
      onDailyLimit: options.onDailyLimit ?? 'stop',
      apiBaseUrl: baseUrl,
      ...(options.retryFailed === true ? { retryFailed: true } : {}),
      ...(options.endpoint !== undefined ? { endpoint: options.endpoint } : {}),
      ...(options.params !== undefined ? { params: options.params } : {}),
      ...(options.maxInFlight !== undefined ? { maxInFlight: options.maxInFlight } : {}),
      ...(options.maxQueued !== undefined ? { maxQueued: options.maxQueued } : {}),
      ...(options.maxResubmissions !== undefined ? { maxResubmissions: options.maxResubmissions } : {}),
      ...(options.resubmitUnknown !== undefined ? { resubmitOnUnknownOutcome: options.resubmitUnknown } : {}),
      ...(options.fsyncEvery !== undefined ? { fsyncEveryRecords: options.fsyncEvery } : {}),
      ...(options.maxSpend !== undefined ? { maxSpend: options.maxSpend } : {}),
      ...(options.maxSpend !== undefined && spendLedger !== undefined ? { spendLedger } : {}),
    });
    progress.start(batch);
    if (mode !== 'none') {
      countLines(input).then(
        (n) => progress?.setTotal(n),
        () => {},
      );
    }
    if (io.handleSignals !== false) {
      uninstall = installSignalHandlers({
        onFirst: (signal) => {
          progress?.log(
            `${signal}: stopping — no new requests; waiting up to ${options.gracePeriod ?? 30} s for those in flight. ` +
              'Press Ctrl-C again to exit at once (still resumable).',
          );
          void batch.stop({ reason: 'signal', message: `Stopped by ${signal}.`, graceMs });
        },
        onSecond: (signal) => {
          batch.abort(`Stopped at once by a second ${signal}.`);
          progress?.stop();
          say(io.stderr, `Stopped at once by a second ${signal}. The results file is consistent. To resume, run the same command again:\n  ${resumeCommand}`);
          io.exitNow(EXIT.STOPPED);
        },
      });
    }

    let summary: BatchSummary;
    try {
      summary = await batch.summary;
    } catch (error) {
      progress.stop();
      if (error instanceof BatchSetupError) return usage(error.message);
      throw error;
    }
    progress.stop();
    // The summary as one JSON log line is for machines (log files, JSON logs); a terminal gets the text below.
    if (!pretty) logger.info({ summary: { ...summary, invalidLines: undefined } }, 'summary');
    const cause = summary.lastTransient && describeCause(summary.lastTransient, { baseUrl, connectTimeoutMs, timeoutMs });
    say(io.stdout, formatSummary(summary, { resumeCommand, ...(cause ? { cause } : {}) }));
    return exitCodeFor(summary);
  } catch (error) {
    progress?.stop();
    logger.error({ err: error instanceof Error ? error.message : String(error) }, 'internal error');
    say(io.stderr, `modelbeam-batch: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    say(io.stderr, `The results file is consistent. To resume, run the same command again:\n  ${resumeCommand}`);
    return EXIT.INTERNAL;
  } finally {
    uninstall?.();
    await metrics?.close().catch(() => {});
    await webhookServer?.close().catch(() => {});
    await client?.close().catch(() => {});
    await scheduler?.close({ drain: false }).catch(() => {});
    await Promise.resolve(store?.close()).catch(() => {});
    if (logFd !== undefined) closeSync(logFd);
  }
}
