/**
 * The `modelbeam-batch` command line (commander): `run`, `estimate`, `fake-server`, `demo`.
 *
 * `fake-server` and `demo` are imported when their command runs: the fake
 * server's code is not loaded into a `run` process, where every module's code
 * and objects stay in the heap that V8 sizes its garbage headroom from.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { EXIT, EXIT_CODES_HELP, type ExitCode } from './exit-codes.js';
import { DEFAULT_IO, runCommand, type CliIo, type RunCommandOptions } from './run.js';

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

function int(min: number, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(max === Number.MAX_SAFE_INTEGER ? `expected an integer >= ${min}.` : `expected an integer from ${min} to ${max}.`);
    }
    return n;
  };
}

function number(min: number, max = Infinity): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a number from ${min}${max === Infinity ? ' up' : ` to ${max}`}.`);
    }
    return n;
  };
}

function positiveNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a number > 0 (USD).');
  return n;
}

function spendKey(value: string): string {
  if (!/^[\w.:-]{1,100}$/.test(value)) throw new InvalidArgumentError("expected 1 to 100 letters, digits, '_', '.', ':' or '-'.");
  return value;
}

function url(value: string): string {
  if (!/^https?:\/\//i.test(value) || !URL.canParse(value)) throw new InvalidArgumentError('expected an http(s) URL.');
  return value;
}

function redisUrl(value: string): string {
  if (!/^rediss?:\/\//i.test(value) || !URL.canParse(value)) throw new InvalidArgumentError('expected a redis:// or rediss:// URL.');
  return value;
}

function jsonObject(value: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch (error) {
    throw new InvalidArgumentError(`expected a JSON object (${(error as Error).message}).`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new InvalidArgumentError('expected a JSON object.');
  return parsed as Record<string, unknown>;
}

/** The `Examples` section of `--help`. */
export const EXAMPLES_HELP = `Examples:
  # run a batch (the key from the environment); run the same command again to resume
  export MODELBEAM_API_KEY=…
  modelbeam-batch run prompts.jsonl --out results.jsonl --endpoint txt2img

  # default parameters for every line, and a seed of the minute limit
  modelbeam-batch run prompts.jsonl -o results.jsonl -e txt2img --params '{"model":"Flux1schnell","steps":4}' --limit-minute 300

  # what will it cost? (nothing is submitted); then run it with a spend cap
  modelbeam-batch estimate prompts.jsonl -e txt2img --params '{"model":"Flux1schnell","steps":4}'
  modelbeam-batch run prompts.jsonl -o results.jsonl -e txt2img --max-spend 25

  # after fixing what made items fail, run them again
  modelbeam-batch run prompts.jsonl -o results.jsonl -e txt2img --retry-failed

  # several processes sharing one quota
  modelbeam-batch run part1.jsonl -o part1.results.jsonl -e txt2img --redis redis://127.0.0.1:6379

  # try it with no key and no network
  modelbeam-batch demo`;

/** The `Environment` section of `--help`: every variable the CLI reads. */
export const ENVIRONMENT_HELP = `Environment:
  MODELBEAM_API_KEY         the API key for \`run\` (preferred over --api-key, which leaks into shell history and ps)
  MODELBEAM_WEBHOOK_SECRET  the webhook signing secret, for --webhook-port (never read from the command line)`;

/** Builds the program. `setCode` receives the exit code of the command that ran. */
export function buildProgram(io: CliIo, setCode: (code: ExitCode) => void): Command {
  const program = new Command('modelbeam-batch');
  program
    .description('Run JSONL batches through the ModelBeam API within its rate limits, resumably.')
    .version(version(), '-V, --version')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    })
    .showHelpAfterError('(add --help for usage)')
    .showSuggestionAfterError(true)
    .addHelpText('after', `\n${EXAMPLES_HELP}\n\n${ENVIRONMENT_HELP}\n\n${EXIT_CODES_HELP}\n`);

  const run = program
    .command('run')
    .description(
      'Run every line of <input> (JSONL) as a job, writing results to --out. The results file is the checkpoint: ' +
        'run the same command again to resume after a crash, a Ctrl-C or an exhausted daily quota.',
    )
    .argument('<input>', 'JSONL file, one job per line: {"id": …, "prompt": …, "model": …, …} (id and endpoint optional)')
    // Checked in the action, not by commander: commander reports a missing required option before an unknown
    // one, so a typo such as `--ou` would read "required option --out not specified" instead of its suggestion.
    .option('-o, --out <file>', 'results file (JSONL, append-only; also the checkpoint) (required)')
    .option('-e, --endpoint <name>', 'endpoint for lines without an "endpoint" field (e.g. txt2img)')
    .option('--params <json>', 'default parameters merged under each line\'s, e.g. \'{"model":"Flux1schnell","steps":4}\'', jsonObject)
    .option('--errors <file>', 'where bad input lines are reported (default: <out>.errors.jsonl)')
    .option('--max-in-flight <n>', 'most items between submit and result at once', int(1), 256)
    .option('--max-concurrent <n>', 'most HTTP requests at once', int(1))
    .option('--limit-minute <n>', 'requests per minute to assume until the server says (seed)', int(1))
    .option('--limit-daily <n>', 'requests per day to assume until the server says (seed)', int(1))
    .option('--max-resubmissions <n>', 'most resubmissions per item (failed jobs, unknown outcomes); each is a new billed job', int(0), 2)
    .option('--no-resubmit-unknown', 'leave items whose submission outcome is unknown pending instead of resubmitting them')
    .addOption(new Option('--on-daily-limit <mode>', 'when the daily quota runs out: stop (resumable) or wait for the reset').choices(['stop', 'wait']).default('stop'))
    .option('--retry-failed', 'run again the items whose result in --out is "failed" (a new job each)')
    .option('--connect-timeout <ms>', 'milliseconds to wait for a connection to the API', int(1), 10_000)
    .option('--timeout <ms>', 'milliseconds to wait for an answer from the API (and between chunks of it)', int(1), 60_000)
    .option('--grace-period <seconds>', 'on Ctrl-C/SIGTERM, how long requests in flight may finish', number(0), 30)
    .option('--webhook-url <url>', 'public URL ModelBeam posts job events to (polling becomes a safety net)', url)
    .option('--webhook-port <port>', 'receive webhooks on this local port (secret from MODELBEAM_WEBHOOK_SECRET)', int(1, 65535))
    .option('--redis <url>', 'share the quota with other processes through Redis (redis://host:6379)', redisUrl)
    .option('--max-spend <usd>', 'spend cap in USD: no job is submitted whose price would take the spend past it; the run then stops, resumable (shared by every process with --redis)', positiveNumber)
    .option('--spend-key <name>', 'with --redis and --max-spend: the name of the shared spend counter (default: default); a new name starts from zero', spendKey)
    .option('--base-url <url>', 'API base URL (default https://api.modelbeam.ai/api/v1/client)', url)
    .option('--metrics-port <port>', 'serve Prometheus metrics at http://<metrics-host>:<port>/metrics while the run lasts (0: any free port, logged)', int(0, 65535))
    .option('--metrics-host <host>', 'interface of the metrics endpoint (0.0.0.0 to expose it beyond this machine)', '127.0.0.1')
    .addOption(new Option('--log-level <level>', 'log level').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'))
    .option('--log-file <file>', 'write logs (JSON lines) here instead of stderr')
    .addOption(new Option('--log-format <format>', 'log lines on stderr: pretty text or JSON (auto: pretty on a terminal, JSON elsewhere)').choices(['auto', 'pretty', 'json']).default('auto'))
    .addOption(new Option('--progress <mode>', 'progress display: a bar on a terminal, JSON log lines elsewhere').choices(['auto', 'bar', 'json', 'none']).default('auto'))
    .option('--progress-interval <seconds>', 'seconds between JSON progress lines', number(0.05), 5)
    .option('--api-key <key>', 'API key (discouraged: use MODELBEAM_API_KEY; a command-line key leaks into shell history and ps)')
    .addOption(new Option('--max-queued <n>', 'read input while fewer requests than this wait in the scheduler').argParser(int(1)).hideHelp())
    .addOption(new Option('--minute-ms <ms>', "length of the rate-limit minute: the fake server's --minute-ms (compressed time)").argParser(int(1)))
    .addOption(new Option('--day-ms <ms>', 'length of the rate-limit day (compressed time)').argParser(int(1)))
    .addOption(new Option('--fsync-every <n>', 'fsync the results file every n records (1: every record)').argParser(int(1)).hideHelp())
    .addHelpText('after', `\n${EXAMPLES_HELP}\n\n${ENVIRONMENT_HELP}\n`)
    .action(async (input: string, opts: Record<string, unknown>) => {
      if (typeof opts['out'] !== 'string') run.error("error: required option '-o, --out <file>' not specified", { code: 'commander.missingMandatoryOptionValue' });
      const options: RunCommandOptions = { out: opts['out'] as string };
      const copy = <K extends keyof RunCommandOptions>(key: K, from: string = key): void => {
        if (opts[from] !== undefined) options[key] = opts[from] as RunCommandOptions[K];
      };
      copy('endpoint');
      copy('params');
      copy('errors');
      copy('maxInFlight');
      copy('maxQueued');
      copy('maxConcurrent');
      copy('limitMinute');
      copy('limitDaily');
      copy('maxResubmissions');
      copy('resubmitUnknown');
      copy('onDailyLimit');
      copy('gracePeriod');
      copy('webhookUrl');
      copy('webhookPort');
      copy('redis');
      copy('baseUrl');
      copy('logLevel');
      copy('logFile');
      copy('apiKey');
      copy('minuteMs');
      copy('dayMs');
      copy('progress');
      copy('progressInterval');
      copy('fsyncEvery');
      copy('retryFailed');
      copy('connectTimeout');
      copy('timeout');
      copy('logFormat');
      copy('metricsPort');
      if (options.metricsPort !== undefined) copy('metricsHost');
      copy('maxSpend');
      copy('spendKey');
      setCode(await runCommand(input, options, io));
    });

  program
    .command('estimate')
    .description(
      'Price every line of <input> (JSONL) before running it: one price-calculation call per distinct set of price-changing ' +
        'parameters, summed, with the balance, the rate limits and how long the run will take. Nothing is submitted.',
    )
    .argument('<input>', 'JSONL file, as for run')
    .option('-e, --endpoint <name>', 'endpoint for lines without an "endpoint" field (e.g. txt2img)')
    .option('--params <json>', "default parameters merged under each line's", jsonObject)
    .option('--max-spend <usd>', 'say whether this cap covers the batch', positiveNumber)
    .option('--limit-minute <n>', 'requests per minute to assume until the server says (seed)', int(1))
    .option('--limit-daily <n>', 'requests per day to assume until the server says (seed)', int(1))
    .option('--max-concurrent <n>', 'most HTTP requests at once', int(1))
    .option('--redis <url>', 'share the quota with running batches through Redis (redis://host:6379)', redisUrl)
    .option('--base-url <url>', 'API base URL (default https://api.modelbeam.ai/api/v1/client)', url)
    .option('--connect-timeout <ms>', 'milliseconds to wait for a connection to the API', int(1), 10_000)
    .option('--timeout <ms>', 'milliseconds to wait for an answer from the API', int(1), 60_000)
    .option('--json', 'print the estimate as one JSON object')
    .addOption(new Option('--log-level <level>', 'log level').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('warn'))
    .option('--api-key <key>', 'API key (discouraged: use MODELBEAM_API_KEY)')
    .addOption(new Option('--minute-ms <ms>', 'length of the rate-limit minute (compressed time)').argParser(int(1)))
    .addOption(new Option('--day-ms <ms>', 'length of the rate-limit day (compressed time)').argParser(int(1)))
    .action(async (input: string, opts: Record<string, unknown>) => {
      const { estimateCommand } = await import('./estimate.js');
      const options: Record<string, unknown> = {};
      for (const key of ['endpoint', 'params', 'maxSpend', 'limitMinute', 'limitDaily', 'maxConcurrent', 'redis', 'baseUrl', 'connectTimeout', 'timeout', 'json', 'logLevel', 'apiKey', 'minuteMs', 'dayMs']) {
        if (opts[key] !== undefined) options[key] = opts[key];
      }
      setCode(await estimateCommand(input, options, io));
    });

  program
    .command('fake-server')
    .description('Start the bundled fake ModelBeam API (for trying the CLI with no key and no network).')
    .option('-p, --port <port>', 'port (0: any free one)', int(0, 65535), 8787)
    .option('--host <host>', 'interface', '127.0.0.1')
    .option('--key <key>', 'the API key the fake accepts', 'test-key')
    .option('--minute-limit <n>', 'requests per minute window', int(0), 300)
    .option('--minute-ms <ms>', 'length of the minute window (compress time with e.g. 2000)', int(1), 60_000)
    .option('--daily-limit <n>', 'requests per day window (default: none)', int(0))
    .option('--day-ms <ms>', 'length of the day window', int(1))
    .option('--pending-ms <ms>', 'time a job waits for a worker', int(0), 200)
    .option('--processing-ms <ms>', 'time a job runs', int(0), 1000)
    .option('--failure-rate <p>', 'share of jobs that fail at random', number(0, 1), 0)
    .option('--reset-rate <p>', 'share of requests whose connection is reset', number(0, 1))
    .option('--accept-then-reset-rate <p>', 'share of submits accepted, then answered with a reset (outcome unknown)', number(0, 1))
    .option('--error-rate <p>', 'share of requests answered with a 5xx', number(0, 1))
    .option('--seed <n>', 'seed of the random faults and durations', int(0), 1)
    .action(async (opts: Record<string, unknown>) => {
      const { fakeServerCommand } = await import('./fake-server.js');
      setCode(
        await fakeServerCommand(
          {
            port: opts['port'] as number,
            host: opts['host'] as string,
            key: opts['key'] as string,
            minuteLimit: opts['minuteLimit'] as number,
            minuteMs: opts['minuteMs'] as number,
            ...(opts['dailyLimit'] !== undefined ? { dailyLimit: opts['dailyLimit'] as number } : {}),
            ...(opts['dayMs'] !== undefined ? { dayMs: opts['dayMs'] as number } : {}),
            pendingMs: opts['pendingMs'] as number,
            processingMs: opts['processingMs'] as number,
            failureRate: opts['failureRate'] as number,
            ...(opts['resetRate'] !== undefined ? { resetRate: opts['resetRate'] as number } : {}),
            ...(opts['acceptThenResetRate'] !== undefined ? { acceptThenResetRate: opts['acceptThenResetRate'] as number } : {}),
            ...(opts['errorRate'] !== undefined ? { errorRate: opts['errorRate'] as number } : {}),
            seed: opts['seed'] as number,
          },
          io,
        ),
      );
    });

  program
    .command('demo')
    .description('Run a demo batch of bundled prompts against the fake API, in compressed time. No key, no network.')
    .option('--items <n>', 'prompts in the batch', int(1, 100_000), 240)
    .option('--minute-ms <ms>', 'length of the compressed minute', int(100), 2000)
    .option('--limit <n>', 'requests per compressed minute', int(1), 60)
    .option('--dir <dir>', 'where to write the input and the results (default: a new temp dir)')
    .addOption(new Option('--progress <mode>', 'progress display').choices(['auto', 'bar', 'json', 'none']).default('auto'))
    .action(async (opts: Record<string, unknown>) => {
      const { demoCommand } = await import('./demo.js');
      setCode(
        await demoCommand(
          {
            items: opts['items'] as number,
            minuteMs: opts['minuteMs'] as number,
            limit: opts['limit'] as number,
            progress: opts['progress'] as 'auto',
            ...(opts['dir'] !== undefined ? { dir: opts['dir'] as string } : {}),
          },
          io,
        ),
      );
    });

  return program;
}

/** Parses `argv` (`process.argv` form), runs the command, and resolves with the exit code. */
export async function main(argv: readonly string[] = process.argv, io: CliIo = DEFAULT_IO()): Promise<ExitCode> {
  let code: ExitCode = EXIT.OK;
  const program = buildProgram(io, (c) => {
    code = c;
  });
  try {
    await program.parseAsync([...argv]);
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return EXIT.OK;
      return EXIT.USAGE;
    }
    io.stderr.write(`modelbeam-batch: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return EXIT.INTERNAL;
  }
  return code;
}
