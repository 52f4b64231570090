/**
 * `client.estimate(items)`: what a batch will cost before anything is
 * submitted. Each job is priced through the {@link PriceBook} (one
 * `price-calculation` call per distinct set of price-changing parameters),
 * the prices are summed exactly (nano-dollars), and the balance, the limits
 * the scheduler will run under and a duration from them are put beside it.
 */
import { PriceUnavailableError } from '../errors/price-unavailable-error.js';
import { fromNano, toNano } from '../internal/money.js';
import type { PriceBook } from './price-book.js';

/** One job to price. */
export interface EstimateItem {
  endpoint: string;
  params: Record<string, unknown>;
  /** The input line, named in the item's error. */
  line?: number;
}

/** Options of `client.estimate()`. */
export interface EstimateOptions {
  signal?: AbortSignal;
  /**
   * Most price calls at once (each distinct set of price-changing parameters is priced once, through the
   * scheduler).
   * @default 8
   */
  concurrency?: number;
  /**
   * Ask for the balance too (one `GET /balance`).
   * @default true
   */
  balance?: boolean;
}

/** A line that could not be priced. */
export interface EstimateLineError {
  line: number | undefined;
  endpoint: string;
  code: string;
  message: string;
}

/** The limits the scheduler will run the batch under, as it knows them after the price calls. */
export interface EstimateLimits {
  /** Requests per minute window. */
  minute: number | undefined;
  /** Requests per day window. */
  daily: number | undefined;
  /** Left in the current day window. */
  dailyRemaining: number | undefined;
  minuteMs: number;
  dayMs: number;
}

/** What `client.estimate()` resolves with. Amounts are USD. */
export interface BatchEstimate {
  /** Jobs read. */
  items: number;
  /** Jobs priced. */
  priced: number;
  /** The sum of their prices (exact to the nano-dollar). */
  total: number;
  /** `price-calculation` calls this estimate made (cached answers are free). */
  priceCalls: number;
  /** Distinct sets of price-changing parameters seen. */
  distinctPrices: number;
  /** The account balance, when asked for. */
  balance: number | undefined;
  /** Whether the balance covers `total` (undefined when the balance was not asked for). */
  balanceCovers: boolean | undefined;
  /** Jobs that could not be priced (each its line's error; nothing is counted for them). */
  failed: number;
  /** The first 100 of them. */
  errors: EstimateLineError[];
  limits: EstimateLimits;
  /**
   * How long the submissions take under those limits, ms (one request each; polls and resubmissions come
   * on top unless webhooks carry the results). Undefined while the minute limit is unknown.
   */
  durationMs: number | undefined;
}

/** What the estimate needs from the client. */
export interface EstimateHost {
  prices: PriceBook;
  balance(signal?: AbortSignal): Promise<number>;
  limits(): EstimateLimits;
}

const MAX_ERRORS = 100;

/**
 * How long `jobs` submissions take at `minute` requests per `minuteMs`, with `dailyRemaining` left today and
 * `daily` per `dayMs` after that. Pure: the CLI and the library share it.
 */
export function estimateDurationMs(jobs: number, limits: EstimateLimits): number | undefined {
  const { minute, daily, minuteMs, dayMs } = limits;
  if (minute === undefined || minute <= 0) return undefined;
  const rate = (n: number): number => Math.ceil((n / minute) * minuteMs);
  if (daily === undefined || daily <= 0) return rate(jobs);
  const today = Math.max(0, Math.min(limits.dailyRemaining ?? daily, daily));
  if (jobs <= today) return rate(jobs);
  const rest = jobs - today;
  const fullDays = Math.ceil(rest / daily);
  const lastDay = rest - (fullDays - 1) * daily;
  // Each day window that must reset is counted whole (the current one may end sooner), then the last day's share.
  return fullDays * dayMs + rate(lastDay);
}

export async function estimateBatch(
  host: EstimateHost,
  items: Iterable<EstimateItem> | AsyncIterable<EstimateItem>,
  options: EstimateOptions = {},
): Promise<BatchEstimate> {
  const concurrency = options.concurrency ?? 8;
  const signal = options.signal;
  const before = host.prices.stats();
  let count = 0;
  let priced = 0;
  let totalNano = 0;
  let failed = 0;
  const errors: EstimateLineError[] = [];
  const running = new Set<Promise<void>>();
  const seenKeys = new Set<string>();

  const priceOne = async (item: EstimateItem, position: number): Promise<void> => {
    const line = item.line ?? position;
    try {
      const price = await host.prices.quote(item.endpoint, item.params, signal);
      totalNano += toNano(price);
      priced++;
    } catch (error) {
      if (signal?.aborted || isAccountError(error)) throw error;
      failed++;
      const e = error instanceof PriceUnavailableError ? error : new PriceUnavailableError(item.endpoint, line, { cause: error });
      if (errors.length < MAX_ERRORS) errors.push({ line, endpoint: item.endpoint, code: e.code, message: e.message });
    }
  };

  for await (const item of items) {
    signal?.throwIfAborted();
    count++;
    checkItem(item, count);
    const key = host.prices.keyOf(item.endpoint, item.params);
    if (key !== undefined) seenKeys.add(key);
    const p: Promise<void> = priceOne(item, count).finally(() => running.delete(p));
    running.add(p);
    if (running.size >= concurrency) await Promise.race(running);
  }
  await Promise.all(running);

  const balance = options.balance === false ? undefined : await host.balance(signal);
  const limits = host.limits();
  const total = fromNano(totalNano);
  return {
    items: count,
    priced,
    total,
    priceCalls: host.prices.stats().calls - before.calls,
    distinctPrices: seenKeys.size,
    balance,
    balanceCovers: balance === undefined ? undefined : toNano(balance) >= totalNano,
    failed,
    errors,
    limits,
    durationMs: estimateDurationMs(priced, limits),
  };
}

/** Errors about the account or the client, not the line: the estimate fails with them. */
function isAccountError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'AUTHENTICATION_FAILED' || code === 'DAILY_QUOTA_EXHAUSTED' || code === 'QUEUE_CLOSED' || code === 'STORE_UNAVAILABLE';
}

function checkItem(item: EstimateItem, position: number): void {
  if (typeof item !== 'object' || item === null || typeof item.endpoint !== 'string' || typeof item.params !== 'object' || item.params === null) {
    throw new TypeError(`Expected item ${position} to be \`{ endpoint: string, params: object, line?: number }\`, got \`${JSON.stringify(item)?.slice(0, 100)}\``);
  }
}
