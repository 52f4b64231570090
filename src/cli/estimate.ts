/**
 * `modelbeam-batch estimate <input>`: prices a batch before anything is
 * submitted (`client.estimate()`): one `price-calculation` call per distinct
 * set of price-changing parameters, through the scheduler (and through Redis
 * with `--redis`, sharing the quota with runs on the same key), summed, with
 * the balance, the limits and a duration beside it. Lines are read as `run`
 * reads them (`--endpoint`, `--params`, the same local checks).
 */
import { pino, type Logger as PinoLogger } from 'pino';
import { checkReadable, readJsonlLines } from '../batch/input.js';
import { parseInput } from '../batch/input.js';
import { configurationProblem, formatDuration, isConfigurationError, transientCause } from '../batch/classify.js';
import { validateBatchItem } from '../batch/options.js';
import { RateLimitScheduler } from '../engine/scheduler.js';
import { REDACT_PATHS } from '../internal/logger.js';
import { formatUsd } from '../internal/money.js';
import { ModelBeamClient } from '../modelbeam/client.js';
import type { BatchEstimate, EstimateItem, EstimateLineError } from '../modelbeam/estimate.js';
import { CLIENT_DEFAULTS } from '../modelbeam/options.js';
import type { Store } from '../store/types.js';
import { describeCause } from './cause.js';
import { EXIT, type ExitCode } from './exit-codes.js';
import { DEFAULT_IO, makeScrubber, redisAccount, schedulerOptionsFor, type CliIo, type RunCommandOptions } from './run.js';

/** The options of `estimate`: those of `run` that say how lines are read and how the API is reached. */
export type EstimateCommandOptions = Pick<
  RunCommandOptions,
  'endpoint' | 'params' | 'maxConcurrent' | 'limitMinute' | 'limitDaily' | 'minuteMs' | 'dayMs' | 'redis' | 'baseUrl' | 'logLevel' | 'apiKey' | 'connectTimeout' | 'timeout' | 'maxSpend'
> & {
  /** Print the estimate as one JSON object instead of text. */
  json?: boolean;
};

/** What `estimate` prints: the library's estimate, with the input lines that could not be read. */
export interface CliEstimate extends BatchEstimate {
  /** Lines refused before pricing (bad JSON, unknown endpoint, invalid parameters). */
  invalidLines: number;
}

const ERRORS_SHOWN = 10;

/** The estimate as text, for a terminal. Ends with a newline. */
export function formatEstimate(e: CliEstimate, maxSpend?: number): string {
  const lines: string[] = [];
  lines.push(`Estimate: $${formatUsd(e.total)} for ${e.priced} job${e.priced === 1 ? '' : 's'}`);
  lines.push(`  priced:    ${e.priced} of ${e.items + e.invalidLines} lines, with ${e.priceCalls} price call${e.priceCalls === 1 ? '' : 's'} (${e.distinctPrices} distinct price setting${e.distinctPrices === 1 ? '' : 's'})`);
  if (e.balance !== undefined) {
    lines.push(`  balance:   $${formatUsd(e.balance)}${e.balanceCovers ? ' (covers the batch)' : ` — NOT enough: $${formatUsd(e.total - e.balance)} short; the run will stop when it runs out`}`);
  }
  if (maxSpend !== undefined) {
    lines.push(`  cap:       $${formatUsd(maxSpend)}${maxSpend >= e.total ? ' (covers the batch)' : ' — the run will stop at the cap, resumable'}`);
  }
  const l = e.limits;
  const per = (n: number | undefined, ms: number, unit: string): string => (n === undefined ? 'unknown' : `${n} requests per ${ms === (unit === 'minute' ? 60_000 : 86_400_000) ? unit : `${ms} ms`}`);
  lines.push(`  limits:    ${per(l.minute, l.minuteMs, 'minute')}; ${l.daily === undefined ? 'no daily limit seen' : `${per(l.daily, l.dayMs, 'day')}${l.dailyRemaining !== undefined ? ` (${l.dailyRemaining} left now)` : ''}`}`);
  lines.push(
    `  duration:  ${e.durationMs === undefined ? 'unknown until the API says its minute limit (or pass --limit-minute)' : `~${formatDuration(e.durationMs)} of submissions at those limits (polls come on top unless webhooks carry the results)`}`,
  );
  const bad = e.failed + e.invalidLines;
  if (bad > 0) {
    lines.push(`  errors:    ${bad} line${bad === 1 ? '' : 's'} could not be priced:`);
    // Every message names its line ("Line 12: …", "Line 12 is not valid JSON …").
    for (const err of e.errors.slice(0, ERRORS_SHOWN)) lines.push(`    [${err.code}] ${err.message}`);
    if (bad > Math.min(ERRORS_SHOWN, e.errors.length)) lines.push(`    … and ${bad - Math.min(ERRORS_SHOWN, e.errors.length)} more`);
  }
  return `${lines.join('\n')}\n`;
}

/** Reads `input` as `run` would, yielding the lines to price and collecting those refused before pricing. */
async function* itemsOf(input: string, options: EstimateCommandOptions, refused: EstimateLineError[], count: { invalid: number }): AsyncGenerator<EstimateItem> {
  let position = 0;
  const defaults = { endpoint: options.endpoint, params: options.params, validate: validateBatchItem };
  for await (const raw of readJsonlLines(input)) {
    position++;
    const item = parseInput(raw, position, defaults);
    if (item === undefined || item.status === 'skip') continue;
    if (item.status === 'invalid') {
      count.invalid++;
      if (refused.length < 100) refused.push({ line: item.line, endpoint: options.endpoint ?? '', code: 'INVALID_INPUT', message: item.message });
      continue;
    }
    yield { endpoint: item.endpoint, params: item.params, line: item.line };
  }
}

/**
 * Runs `estimate <input>` and returns the exit code: 0 every line priced, 1 some could not be, 2 usage (or a
 * base URL that is not the API), 3 the API could not be reached, 4 key refused.
 */
export async function estimateCommand(input: string, options: EstimateCommandOptions, io: CliIo = DEFAULT_IO()): Promise<ExitCode> {
  return (await runEstimate(input, options, io)).code;
}

/** As {@link estimateCommand}, also handing back the estimate (the demo sets its cap from it). */
export async function runEstimate(input: string, options: EstimateCommandOptions, io: CliIo): Promise<{ code: ExitCode; estimate?: CliEstimate }> {
  const code = (c: ExitCode, estimate?: CliEstimate): { code: ExitCode; estimate?: CliEstimate } => (estimate ? { code: c, estimate } : { code: c });
  const envKey = io.env['MODELBEAM_API_KEY'];
  const apiKey = options.apiKey ?? envKey;
  const scrub = makeScrubber([apiKey, envKey]);
  const say = (stream: NodeJS.WriteStream, text: string): void => {
    stream.write(scrub(text.endsWith('\n') ? text : `${text}\n`));
  };
  const usage = (message: string): { code: ExitCode } => {
    say(io.stderr, `modelbeam-batch estimate: ${message}`);
    return code(EXIT.USAGE);
  };
  if (!apiKey) return usage('no API key. Set MODELBEAM_API_KEY (the price route needs it too).');
  try {
    await checkReadable(input);
  } catch (error) {
    return usage((error as Error).message);
  }
  const logger: PinoLogger = pino(
    { level: options.logLevel ?? 'warn', redact: { paths: [...REDACT_PATHS, 'options.apiKey'], censor: '[redacted]' } },
    { write: (line: string) => void io.stderr.write(scrub(line)) },
  );
  let store: Store | undefined;
  let scheduler: RateLimitScheduler | undefined;
  let client: ModelBeamClient | undefined;
  try {
    if (options.redis !== undefined) {
      const mod = await import('../store/redis-store.js');
      store = new mod.RedisStore({ redis: options.redis, account: redisAccount(apiKey), logger });
    }
    try {
      scheduler = new RateLimitScheduler(schedulerOptionsFor(options, logger, store));
      await scheduler.ready();
      client = new ModelBeamClient({
        apiKey,
        scheduler,
        logger,
        baseUrl: options.baseUrl ?? CLIENT_DEFAULTS.baseUrl,
        connectTimeoutMs: options.connectTimeout ?? CLIENT_DEFAULTS.connectTimeoutMs,
        headersTimeoutMs: options.timeout ?? CLIENT_DEFAULTS.headersTimeoutMs,
        bodyTimeoutMs: options.timeout ?? CLIENT_DEFAULTS.headersTimeoutMs,
      });
    } catch (error) {
      return usage((error as Error).message);
    }
    const refused: EstimateLineError[] = [];
    const count = { invalid: 0 };
    let estimate: BatchEstimate;
    const baseUrl = options.baseUrl ?? CLIENT_DEFAULTS.baseUrl;
    try {
      estimate = await client.estimate(itemsOf(input, options, refused, count));
    } catch (error) {
      const errorCode = (error as { code?: string }).code;
      if (errorCode === 'AUTHENTICATION_FAILED') {
        say(io.stderr, `modelbeam-batch estimate: ${baseUrl} refused the API key (${(error as Error).message}). Check MODELBEAM_API_KEY (or --api-key) and --base-url.`);
        return code(EXIT.AUTH_FAILED);
      }
      if (isConfigurationError(error)) {
        const problem = configurationProblem(error, baseUrl, `${options.endpoint ?? '{endpoint}'}/price-calculation`, 'POST');
        say(io.stderr, `modelbeam-batch estimate: ${problem} Fix --base-url and try again.`);
        return code(EXIT.USAGE);
      }
      if (errorCode === 'RETRIES_EXHAUSTED' || errorCode === 'OUTCOME_UNKNOWN' || errorCode === 'TIMEOUT') {
        const cause = describeCause(transientCause(error), {
          baseUrl,
          connectTimeoutMs: options.connectTimeout ?? CLIENT_DEFAULTS.connectTimeoutMs,
          timeoutMs: options.timeout ?? CLIENT_DEFAULTS.headersTimeoutMs,
        });
        say(io.stderr, `modelbeam-batch estimate: the API could not be reached: ${cause}. Nothing was submitted; try again later.`);
        return code(EXIT.STOPPED);
      }
      throw error;
    }
    const result: CliEstimate = { ...estimate, errors: [...refused, ...estimate.errors].sort((a, b) => (a.line ?? 0) - (b.line ?? 0)).slice(0, 100), invalidLines: count.invalid };
    say(io.stdout, options.json === true ? JSON.stringify(result) : formatEstimate(result, options.maxSpend));
    return code(result.failed + result.invalidLines > 0 ? EXIT.ITEMS_FAILED : EXIT.OK, result);
  } catch (error) {
    say(io.stderr, `modelbeam-batch estimate: ${error instanceof Error ? error.message : String(error)}`);
    return code(EXIT.INTERNAL);
  } finally {
    await client?.close().catch(() => {});
    await scheduler?.close({ drain: false }).catch(() => {});
    await Promise.resolve(store?.close()).catch(() => {});
  }
}
