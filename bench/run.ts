/**
 * The benchmark runner.
 *
 *     npx tsx bench/run.ts                 # every scenario
 *     npx tsx bench/run.ts scheduler       # named scenarios, in the order given
 *     npx tsx bench/run.ts --quick         # smoke run: shorter, results go to bench/.work/quick/
 *     npx tsx bench/run.ts --list          # names and descriptions
 *
 * For each scenario it prints the tables, writes the charts to
 * `bench/results/` and replaces the scenario's section of `bench/RESULTS.md`
 * (adding the command, the machine and the date). A `--quick` run writes to
 * `bench/.work/quick/` instead, so that it never replaces committed results.
 * Flags other than `--quick`, `--list` and `--help` are passed to the
 * scenarios (`ctx.flags`).
 *
 * Exit code: 0 when every scenario ran (targets met or not: see the tables),
 * 1 when a scenario threw, 2 for a usage error, 130 on a second Ctrl-C.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { machineInfo, machineLine } from './lib/machine.js';
import { writeSection } from './lib/results-md.js';
import { sourceInfo, sourceLine } from './lib/source.js';
import { renderChart } from './lib/svg-chart.js';
import { formatText } from './lib/table.js';
import type { Scenario, ScenarioContext } from './lib/types.js';
import { scenarios } from './scenarios/index.js';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(BENCH_DIR);

function usage(): string {
  const names = scenarios.map((s) => `  ${s.name.padEnd(16)} ${s.description}`).join('\n');
  return `Usage: npx tsx bench/run.ts [scenario…] [--quick] [--list]\n\nScenarios:\n${names}\n`;
}

async function main(argv: readonly string[]): Promise<number> {
  const names = argv.filter((a) => !a.startsWith('--'));
  const flags = new Set(argv.filter((a) => a.startsWith('--')));
  if (flags.has('--help') || flags.has('-h')) {
    process.stdout.write(usage());
    return 0;
  }
  if (flags.has('--list')) {
    process.stdout.write(usage());
    return 0;
  }
  const unknown = names.filter((n) => !scenarios.some((s) => s.name === n));
  if (unknown.length > 0) {
    process.stderr.write(`Unknown scenario${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}\n\n${usage()}`);
    return 2;
  }
  const selected: Scenario[] = names.length > 0 ? names.map((n) => scenarios.find((s) => s.name === n) as Scenario) : [...scenarios];
  const quick = flags.has('--quick');
  flags.delete('--quick');

  const workDir = join(BENCH_DIR, '.work');
  const outDir = quick ? join(workDir, 'quick') : BENCH_DIR;
  const chartsDir = join(outDir, 'results');
  const resultsFile = join(outDir, 'RESULTS.md');
  await mkdir(chartsDir, { recursive: true });

  // The code under test was loaded with this module graph, just before main(): fingerprint it now.
  const source = sourceInfo(ROOT);

  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    process.stderr.write(`\n${signal}: stopping after cleaning up (press Ctrl-C again to exit at once)\n`);
    controller.abort(new Error(`interrupted by ${signal}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const ctx: ScenarioContext = {
    quick,
    flags,
    signal: controller.signal,
    workDir,
    log: (line) => process.stderr.write(`${line}\n`),
  };

  let failed = 0;
  for (const scenario of selected) {
    if (controller.signal.aborted) break;
    const began = Date.now();
    process.stdout.write(`\n=== ${scenario.name}: ${scenario.description}${quick ? ' [quick]' : ''}\n`);
    try {
      const result = await scenario.run(ctx);
      const wallS = (Date.now() - began) / 1000;
      for (const table of result.tables) process.stdout.write(`\n${formatText(table)}\n`);
      if (result.notes && result.notes.length > 0) process.stdout.write(`\n${result.notes.map((n) => `- ${n}`).join('\n')}\n`);
      for (const chart of result.charts) {
        const file = join(chartsDir, chart.file);
        await writeFile(file, renderChart(chart));
        process.stdout.write(`chart: ${relative(ROOT, file)}\n`);
      }
      if (result.section) {
        const m = machineInfo(new Date(began));
        const command = `npx tsx bench/run.ts ${scenario.name}${quick ? ' --quick' : ''}`;
        const header = [
          `## ${result.section.title}`,
          '',
          `- Command: \`${command}\` (or \`npm run bench\` for every scenario)`,
          `- Machine: ${machineLine(m)}`,
          `- Source: ${sourceLine(source)}`,
          `- Date: ${m.date} (wall time ${wallS.toFixed(0)} s)`,
          '',
        ].join('\n');
        await writeSection(resultsFile, result.section.id, `${header}\n${result.section.markdown}`);
        process.stdout.write(`results: ${relative(ROOT, resultsFile)} (section \`${result.section.id}\`)\n`);
      }
      if (result.targetsMet !== undefined) process.stdout.write(`targets: ${result.targetsMet ? 'met' : 'MISSED'}\n`);
      process.stdout.write(`(${scenario.name} took ${wallS.toFixed(0)} s)\n`);
    } catch (error) {
      if (controller.signal.aborted) {
        process.stderr.write(`\n${scenario.name}: interrupted; nothing written\n`);
        break;
      }
      failed++;
      process.stderr.write(`\n${scenario.name} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    }
  }
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  if (controller.signal.aborted) return 130;
  return failed > 0 ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
