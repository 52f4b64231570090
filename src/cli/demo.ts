/**
 * `modelbeam-batch demo`: a batch of bundled prompts through the real `run`
 * code path, against the fake ModelBeam API started in this process, in
 * compressed time. No key, no network. It prints the batch's estimate first
 * (`estimate`), then runs it with a spend cap a little above it.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFakeModelBeam } from '../testing/fake-server.js';
import { describeFsError } from '../batch/input.js';
import { EXIT, type ExitCode } from './exit-codes.js';
import { runEstimate } from './estimate.js';
import { runCommand, type CliIo } from './run.js';
import type { ProgressMode } from './progress.js';

export interface DemoOptions {
  /** Prompts in the batch. @default 240 */
  items?: number;
  /** Length of the compressed "minute". @default 2000 */
  minuteMs?: number;
  /** Requests per compressed minute. @default 60 */
  limit?: number;
  /** Where the results go. @default a new directory under the OS temp dir */
  dir?: string;
  progress?: ProgressMode | 'auto';
}

const SUBJECTS = ['a red fox', 'a lighthouse', 'a tin robot', 'a teapot', 'an old tram', 'a paper crane', 'a snow owl', 'a koi pond', 'a cactus', 'a hot-air balloon', 'a violin', 'a sleeping cat'];
const STYLES = ['watercolor', 'ink sketch', 'isometric 3D', 'oil painting', 'pixel art', 'linocut', 'pastel', 'blueprint'];
const SETTINGS = ['at dawn', 'in the rain', 'on the moon', 'under neon lights', 'in a snowstorm', 'by the sea', 'in a library', 'at golden hour', 'in fog'];

/** The demo's input lines: `count` deterministic prompts, a few that fail on purpose, and two bad lines. */
export function demoLines(count: number): string[] {
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    const subject = SUBJECTS[i % SUBJECTS.length] as string;
    const style = STYLES[(i * 7) % STYLES.length] as string;
    const setting = SETTINGS[(i * 13) % SETTINGS.length] as string;
    let prompt = `${subject}, ${style}, ${setting}`;
    if (i % 97 === 41) prompt += ' FAIL:AGE_RESTRICTED';
    else if (i % 89 === 30) prompt += ' FAIL_ONCE:WORKER_TIMEOUT';
    else if (i === Math.floor(count / 2)) prompt += ' FAIL:INVALID_INPUT';
    lines.push(JSON.stringify({ id: `demo-${String(i + 1).padStart(4, '0')}`, prompt, model: 'Flux1schnell', width: 512, height: 512, steps: 4 }));
    if (i === 9) lines.push(JSON.stringify({ id: 'demo-too-wide', prompt: 'a panorama', model: 'Flux1schnell', width: 4096, height: 512, steps: 4 }));
    if (i === 19) lines.push('{"id": "demo-broken", "prompt": "a half-written line');
  }
  return lines;
}

/** A job's processing time from its prompt: 100–300 ms, the same each run. */
function processingMs(_endpoint: string, params: Readonly<Record<string, unknown>>): number {
  const text = String(params['prompt'] ?? '');
  let h = 0;
  for (let i = 0; i < text.length; i++) h = (h * 31 + text.charCodeAt(i)) >>> 0;
  return 100 + (h % 201);
}

export async function demoCommand(options: DemoOptions, io: CliIo): Promise<ExitCode> {
  const items = options.items ?? 240;
  const minuteMs = options.minuteMs ?? 2000;
  const limit = options.limit ?? 60;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'modelbeam-demo-'));
  const input = join(dir, 'prompts.jsonl');
  const out = join(dir, 'results.jsonl');
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(input, `${demoLines(items).join('\n')}\n`);
  } catch (error) {
    io.stderr.write(`modelbeam-batch demo: cannot write the demo input ${input}: ${describeFsError(error)}\n`);
    return EXIT.USAGE;
  }

  const server = await startFakeModelBeam({
    port: 0,
    seed: 7,
    accounts: { 'test-key': 'demo' },
    limits: { minute: { limit, windowMs: minuteMs } },
    jobs: { pendingMs: 30, processingMs },
  });
  io.stdout.write(
    [
      'modelbeam-batch demo — no key, no network.',
      `A fake ModelBeam API runs in this process in compressed time: a "minute" lasts ${minuteMs / 1000} s and allows ${limit} requests`,
      `(submits and status polls both count). ${items} prompts go through the same code path as \`modelbeam-batch run\`;`,
      'a few fail on purpose, one fails once and is retried, and two input lines are bad.',
      '',
    ].join('\n'),
  );
  let code: ExitCode;
  try {
    // First what it will cost: the same price route a real batch would ask, one call per distinct setting.
    io.stdout.write('What will it cost? (`modelbeam-batch estimate`: nothing is submitted)\n');
    const demoIo = { ...io, env: { MODELBEAM_API_KEY: 'test-key' } };
    const { estimate } = await runEstimate(input, { endpoint: 'txt2img', baseUrl: server.baseUrl, minuteMs, dayMs: minuteMs * 1440, logLevel: 'error' }, demoIo);
    // A cap a little above the estimate: retried jobs are billed again.
    const maxSpend = estimate && estimate.total > 0 ? Math.ceil(estimate.total * 1.1 * 100) / 100 : undefined;
    io.stdout.write(maxSpend === undefined ? '\n' : `\nRunning it with --max-spend ${maxSpend} (the estimate plus 10 % for jobs retried after a failure):\n\n`);
    code = await runCommand(
      input,
      {
        out,
        endpoint: 'txt2img',
        baseUrl: server.baseUrl,
        minuteMs,
        dayMs: minuteMs * 1440,
        gracePeriod: 5,
        maxInFlight: 32,
        progress: options.progress ?? 'auto',
        progressInterval: 2,
        logLevel: 'warn',
        ...(maxSpend !== undefined ? { maxSpend } : {}),
      },
      {
        ...io,
        env: { MODELBEAM_API_KEY: 'test-key' },
        resumeCommand: 'npm run demo   (each demo starts a fresh batch)',
      },
    );
  } finally {
    await server.close();
  }
  const stats = server.stats();
  io.stdout.write(
    [
      '',
      `The fake server saw ${stats.requests} requests: ${stats.accepted} counted against the limit, ${stats.rejected429.total} answered 429, ${stats.polls} of them status polls.`,
      `Input:    ${input}`,
      `Results:  ${out}`,
      '          one JSON record per line; an item\'s last record has state done | failed | invalid.',
      `Errors:   ${out}.errors.jsonl (the bad input lines, with their line numbers)`,
      '',
      'Against the real API:',
      '  export MODELBEAM_API_KEY=…   # modelbeam.ai/dashboard/api-keys',
      `  modelbeam-batch run ${input} --out results.jsonl --endpoint txt2img`,
      '',
    ].join('\n'),
  );
  // Failures are part of the demo; only a real problem is an error.
  return code === EXIT.ITEMS_FAILED ? EXIT.OK : code;
}
