/**
 * The live progress display of a batch run.
 *
 * - On a terminal: a two-line cli-progress bar — done / failed / invalid out
 *   of the input, with an ETA; then items in flight, requests queued, the
 *   requests sent in the last minute window against the minute limit, 429s,
 *   and the daily park.
 * - Off a terminal: one JSON progress line through pino every `intervalMs`.
 */
import { createRequire } from 'node:module';
import type * as CliProgress from 'cli-progress';
import type { Options, Params, SingleBar } from 'cli-progress';
import type { BatchProgress } from '../batch/types.js';
import { formatDuration } from '../batch/classify.js';
import type { Logger } from '../internal/logger.js';

type MultiBar = InstanceType<typeof CliProgress.MultiBar>;

/**
 * cli-progress (CommonJS), loaded when a bar is first drawn: a run off a
 * terminal never draws one, and its modules would only add to the process's
 * memory (about 6 MB of RSS when loaded into a bare Node process).
 */
let cliProgress: typeof CliProgress | undefined;
function loadCliProgress(): typeof CliProgress {
  cliProgress ??= createRequire(import.meta.url)('cli-progress') as typeof CliProgress;
  return cliProgress;
}

export type ProgressMode = 'bar' | 'json' | 'none';

export interface ProgressOptions {
  mode: ProgressMode;
  /** Where the bar is drawn. @default process.stderr */
  stream?: NodeJS.WriteStream;
  /** Receives the JSON progress lines. */
  logger: Logger;
  /** JSON mode: time between lines. @default 5000 */
  intervalMs?: number;
  /** Length of the rate-limit "minute" (compressed in demos). @default 60_000 */
  minuteMs?: number;
}

interface Source {
  progress(): BatchProgress;
}

/** What both modes show, computed from successive snapshots. */
export interface ProgressView extends BatchProgress {
  total: number | undefined;
  finished: number;
  /**
   * Requests in the minute window, the window the limit is stated for: the server's own count of its current
   * window when its answers carry one (`minuteUsed`), else the requests sent in the last `minuteMs` (since the
   * start while the run is younger). A count, never an extrapolation: within the limit whenever the requests were.
   */
  rate: number;
  /** Items finished per second, smoothed. */
  itemsPerSecond: number;
  etaMs: number | undefined;
}

export class ProgressDisplay {
  readonly #options: Required<Omit<ProgressOptions, 'stream'>> & { stream: NodeJS.WriteStream };
  #source: Source | undefined;
  #total: number | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #multibar: MultiBar | undefined;
  #bars: [SingleBar, SingleBar] | undefined;
  #format: typeof CliProgress.Format | undefined;
  /** Snapshots of the counts over the last minute window (the oldest may be older), oldest first. */
  #samples: { t: number; dispatched: number; finished: number }[] = [];
  /** Takes a sample at a steady pace in JSON mode, whose lines may be further apart than the window. */
  #sampler: ReturnType<typeof setInterval> | undefined;
  #itemsPerSecond = 0;

  constructor(options: ProgressOptions) {
    this.#options = {
      mode: options.mode,
      stream: options.stream ?? process.stderr,
      logger: options.logger,
      intervalMs: options.intervalMs ?? 5000,
      minuteMs: options.minuteMs ?? 60_000,
    };
  }

  get mode(): ProgressMode {
    return this.#options.mode;
  }

  /** The number of input items, once known (for the bar's length and the ETA). */
  setTotal(total: number): void {
    this.#total = total;
  }

  start(source: Source): void {
    this.#source = source;
    const { mode } = this.#options;
    if (mode === 'none') return;
    if (mode === 'bar') {
      const base: Options = {
        stream: this.#options.stream,
        hideCursor: true,
        gracefulExit: false,
        clearOnComplete: false,
        stopOnComplete: false,
        fps: 10,
        // Asked for by name off a terminal (`--progress bar | tee log`): a frame every few seconds, not silence.
        noTTYOutput: true,
        notTTYSchedule: 5000,
        linewrap: false,
        emptyOnZero: true,
        barsize: 24,
        barCompleteChar: '\u2588',
        barIncompleteChar: '\u2591',
      };
      const { Format, MultiBar } = loadCliProgress();
      this.#format = Format;
      this.#multibar = new MultiBar({ ...base, format: (opts, params, payload) => this.#line1(opts, params, payload as ProgressView) });
      const first = this.#multibar.create(1, 0, {});
      const second = this.#multibar.create(1, 0, {}, { ...base, format: (_o, _p, payload) => this.#line2(payload as ProgressView) });
      this.#bars = [first, second];
      this.#tick();
      this.#timer = setInterval(() => this.#tick(), 200);
    } else {
      this.#timer = setInterval(() => this.#emitJson(), this.#options.intervalMs);
      this.#sampler = setInterval(() => this.view(), Math.max(50, Math.min(1000, Math.round(this.#options.minuteMs / 20))));
      this.#sampler.unref?.();
    }
    this.#timer.unref?.();
  }

  /** Prints a line above the bar (or plainly when there is none). */
  log(text: string): void {
    const line = text.endsWith('\n') ? text : `${text}\n`;
    if (this.#multibar) this.#multibar.log(line);
    else this.#options.stream.write(line);
  }

  /** Draws a last frame (or writes a last JSON line) and stops. */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    if (this.#sampler !== undefined) clearInterval(this.#sampler);
    this.#timer = undefined;
    this.#sampler = undefined;
    if (this.#multibar) {
      this.#tick();
      // Renders now, flushing lines logged since the last frame (off a terminal, stop() draws the last one).
      if (this.#options.stream.isTTY) this.#multibar.update();
      this.#multibar.stop();
      this.#multibar = undefined;
    } else if (this.#options.mode === 'json' && this.#source) {
      this.#emitJson();
    }
  }

  /** A snapshot with rate and ETA (also used by tests). */
  view(now = Date.now()): ProgressView | undefined {
    const p = this.#source?.progress();
    if (!p) return undefined;
    // Lines whose id repeats an earlier one are finished too (reported, never run): without them the bar stops short.
    const finished = p.skipped + p.done + p.failed + p.invalid + (p.duplicateIds ?? 0);
    const { minuteMs } = this.#options;
    const samples = this.#samples;
    samples.push({ t: now, dispatched: p.dispatched, finished: p.done + p.failed + p.invalid });
    // Keep one sample at or before the window's start (the baseline), and the ones after it.
    while (samples.length > 2 && (samples[1] as { t: number }).t <= now - minuteMs) samples.shift();
    // The requests sent in the window: counted from the oldest sample inside it (an undercount by at most one
    // sampling step), or from the start when the run is younger than the window.
    const base = samples.find((s) => s.t >= now - minuteMs) ?? (samples.at(-1) as { dispatched: number });
    // A sliding count may hold the end of one fixed window and the start of the next (up to twice the limit,
    // with nothing over it): the server's count of its window is the one to compare, when it is known.
    const rate = p.minuteUsed ?? p.dispatched - base.dispatched;
    // Items finished per second over the last few seconds (skipped ones excluded: they cost nothing).
    const horizon = Math.min(minuteMs, 10_000);
    const first = samples.find((s) => s.t >= now - horizon) ?? (samples[0] as { t: number; finished: number });
    const span = now - first.t;
    const ran = p.done + p.failed + p.invalid;
    this.#itemsPerSecond = span >= 1000 ? ((ran - first.finished) / span) * 1000 : this.#itemsPerSecond;
    const remaining = this.#total === undefined ? undefined : Math.max(0, this.#total - finished);
    let etaMs: number | undefined;
    if (remaining === 0) etaMs = 0;
    else if (remaining !== undefined && this.#itemsPerSecond > 0) etaMs = (remaining / this.#itemsPerSecond) * 1000;
    if (etaMs !== undefined && etaMs > 100 * 3_600_000) etaMs = undefined;
    return { ...p, total: this.#total, finished, rate, itemsPerSecond: this.#itemsPerSecond, etaMs };
  }

  #tick(): void {
    const view = this.view();
    if (!view || !this.#bars) return;
    const total = view.total ?? Math.max(1, view.finished + view.inFlight);
    this.#bars[0].setTotal(Math.max(1, total));
    this.#bars[0].update(Math.min(view.finished, total), view);
    this.#bars[1].update(0, view);
  }

  #emitJson(): void {
    const v = this.view();
    if (!v) return;
    this.#options.logger.info(
      {
        progress: {
          total: v.total,
          finished: v.finished,
          done: v.done,
          failed: v.failed,
          invalid: v.invalid,
          skipped: v.skipped,
          inFlight: v.inFlight,
          queued: v.queued,
          resumed: v.resumed,
          ratePerMinute: Math.round(v.rate * 10) / 10,
          minuteLimit: v.minuteLimit,
          rateLimited: v.rateLimited,
          etaSeconds: v.etaMs === undefined ? undefined : Math.round(v.etaMs / 1000),
          parkedUntil: v.parkedUntil === undefined ? undefined : new Date(v.parkedUntil).toISOString(),
          stopping: v.stopping || undefined,
        },
      },
      'progress',
    );
  }

  #line1(options: Options, params: Params, v: ProgressView | undefined): string {
    const bar = this.#format?.BarFormat(params.progress, options) ?? '';
    if (!v || v.finished === undefined) return `${bar} starting…`;
    const pct = v.total ? `${Math.floor((v.finished / Math.max(1, v.total)) * 100)}%` : '';
    const of = v.total === undefined ? `${v.finished}` : `${v.finished}/${v.total}`;
    const eta = v.etaMs === undefined ? 'ETA –' : v.etaMs === 0 ? 'ETA 0 s' : `ETA ${formatDuration(v.etaMs)}`;
    return `${bar} ${pct.padStart(4)} ${of} · done ${v.done} · failed ${v.failed} · invalid ${v.invalid}${v.skipped ? ` · skipped ${v.skipped}` : ''} · ${eta}`;
  }

  #line2(v: ProgressView | undefined): string {
    if (!v || v.finished === undefined) return '';
    const per = this.#options.minuteMs === 60_000 ? '/min' : ` per ${formatDuration(this.#options.minuteMs).replace(' 00 s', '')}`;
    const limit = v.minuteLimit === undefined ? '' : ` (limit ${v.minuteLimit})`;
    const parts = [
      `in flight ${v.inFlight}`,
      `queued ${v.queued}`,
      `rate ${Math.round(v.rate)}${per}${limit}`,
      `429s ${v.rateLimited}`,
    ];
    if (v.resumed) parts.push(`resumed ${v.resumed}`);
    if (v.possibleDuplicates) parts.push(`possible duplicates ${v.possibleDuplicates}`);
    if (v.parkedUntil !== undefined) parts.push(`daily quota spent until ${new Date(v.parkedUntil).toISOString()}`);
    if (v.stopping) parts.push('stopping…');
    return `  ${parts.join(' · ')}`;
  }
}
