/**
 * The contract between `bench/run.ts` and the scenarios.
 *
 * A scenario is a module under `bench/scenarios/` that default-exports (or
 * exports as `scenario`) a {@link Scenario}, and is listed in
 * `bench/scenarios/index.ts`. The runner selects scenarios by name from argv,
 * runs them one after the other, prints their tables, renders their charts to
 * SVG, and writes their section of `bench/RESULTS.md`.
 */

/** What the runner hands to every scenario. */
export interface ScenarioContext {
  /** `--quick`: a smoke run (shorter, fewer repetitions). Its results do not replace the committed ones. */
  readonly quick: boolean;
  /** Flags from argv the runner did not consume (e.g. `--trace`), for scenario-specific options. */
  readonly flags: ReadonlySet<string>;
  /** Aborted on SIGINT/SIGTERM: stop early, but still close servers and child processes. */
  readonly signal: AbortSignal;
  /** Scratch directory for traces and logs (`bench/.work/`, git-ignored). Exists. */
  readonly workDir: string;
  /** Progress output (stderr). */
  log(line: string): void;
}

export type Align = 'left' | 'right';

/** A table printed to the console and, as markdown, available to the section. */
export interface Table {
  title: string;
  columns: readonly string[];
  rows: ReadonlyArray<ReadonlyArray<string | number>>;
  /** Per column; numbers default to right, text to left. */
  align?: readonly Align[];
}

export interface ChartSeries {
  name: string;
  /**
   * `[x, y]` points in data units. With `step` (the default) each point holds
   * its value until the next point's x (draw the last bin's end as a final point).
   */
  points: ReadonlyArray<readonly [number, number]>;
  step?: boolean;
  /** CSS colour; a palette colour by position when absent. */
  color?: string;
  dash?: 'solid' | 'dashed' | 'dotted';
  /** Stroke width in px. @default 2 */
  width?: number;
  /** Drawing order (higher on top); the legend keeps the given order. @default 0 */
  layer?: number;
}

/** A line/step chart, rendered by `bench/lib/svg-chart.ts`. */
export interface Chart {
  /** File name (no directory), e.g. `scheduler-steady.svg`. Written to `bench/results/`. */
  file: string;
  title: string;
  subtitle?: string;
  xLabel: string;
  yLabel: string;
  series: readonly ChartSeries[];
  /** Vertical lines with a label (e.g. daily resets). */
  markers?: ReadonlyArray<{ x: number; label: string }>;
  /** Force the y axis to start at 0 (the default) or fit the data. */
  yFromZero?: boolean;
}

/** One scenario's part of `bench/RESULTS.md`, between its own markers. */
export interface ResultsSection {
  /** Marker id: the section lives between `<!-- bench:<id>:begin -->` and `<!-- bench:<id>:end -->`. */
  id: string;
  /** Heading (`## <title>`). */
  title: string;
  /**
   * Markdown body. Link charts as `results/<file>`. The runner adds the
   * heading, the command, the machine and the date above it.
   */
  markdown: string;
}

export interface ScenarioResult {
  tables: readonly Table[];
  charts: readonly Chart[];
  section?: ResultsSection;
  /** Whether every target the scenario checks was met (undefined: it checks none). */
  targetsMet?: boolean;
  /** Lines printed after the tables (misses, notes). */
  notes?: readonly string[];
}

export interface Scenario {
  /** Selects the scenario on the command line: `npx tsx bench/run.ts <name>`. */
  readonly name: string;
  /** One line, shown by `--list`. */
  readonly description: string;
  run(ctx: ScenarioContext): Promise<ScenarioResult>;
}
