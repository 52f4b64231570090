/**
 * The V8 heap setting the `modelbeam-batch` process applies to itself.
 *
 * A batch at full speed turns over a lot of short-lived objects that still
 * outlive V8's young generation (each item's objects live through one or two
 * HTTP round trips), while its live heap stays small (20–40 MB). With Node's
 * defaults V8 lets the old generation grow to up to four times the live heap
 * between full collections, and that headroom, not live data, was most of the
 * batch process's RSS. `--heap-growing-percent` caps the growth between full
 * collections; V8 reads it at every collection, so setting it at start-up takes
 * effect for the whole run (measured: the same peak RSS as the command-line
 * flag). It costs more frequent full collections, at nearly the same
 * throughput (bench `batch-rss`).
 *
 * It also sets `--liftoff-only`: undici compiles its HTTP parser (llhttp, in
 * WebAssembly) when the first connection opens, and V8's optimizing compiler
 * took ~30 MB of memory for a moment to do it; that moment was the peak RSS of
 * a resumed batch (the id table already full). V8's baseline WebAssembly
 * compiler does it without the spike. V8 reads the flag when it compiles, so
 * setting it before the first request is enough.
 *
 * Only the CLI's entry point calls this: a library (`runBatch`) must not change
 * a process-wide V8 setting. A value given on the command line or in
 * `NODE_OPTIONS` is left alone, and `MODELBEAM_BATCH_HEAP_GROWING_PERCENT=0`
 * keeps V8's own heap heuristics.
 */
import { setFlagsFromString } from 'node:v8';

/** The percentage the old generation may grow by between full collections (V8's default lets it grow up to 300 %). */
export const HEAP_GROWING_PERCENT = 30;

const FLAG = /^--heap[-_]growing[-_]percent(=|$)/;
const LIFTOFF_FLAG = /^--(no[-_])?liftoff/;

/** Where `tuneHeapForBatch` looks, and how it sets the flag (tests pass their own). */
export interface HeapTuning {
  env?: NodeJS.ProcessEnv;
  execArgv?: readonly string[];
  setFlags?: (flags: string) => void;
}

/**
 * Applies `--heap-growing-percent` (and `--liftoff-only`) to this process unless
 * they were set already. Returns the percentage applied, or undefined when it
 * left the heap setting as it was.
 */
export function tuneHeapForBatch({ env = process.env, execArgv = process.execArgv, setFlags = setFlagsFromString }: HeapTuning = {}): number | undefined {
  const given = [...execArgv, ...(env['NODE_OPTIONS'] ?? '').split(/\s+/)];
  if (!given.some((arg) => LIFTOFF_FLAG.test(arg))) setFlags('--liftoff-only');
  if (given.some((arg) => FLAG.test(arg))) return undefined;
  const override = env['MODELBEAM_BATCH_HEAP_GROWING_PERCENT'];
  const percent = override === undefined || override.trim() === '' ? HEAP_GROWING_PERCENT : Number(override);
  if (!Number.isInteger(percent) || percent <= 0 || percent > 1000) return undefined;
  setFlags(`--heap-growing-percent=${percent}`);
  return percent;
}
