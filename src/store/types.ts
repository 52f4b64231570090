import type { RateLimitSnapshot, WindowName } from '../headers/types.js';

/** Window lengths and seeds that every process sharing a store must agree on. */
export interface BudgetConfig {
  /** Length of the short window. */
  minuteMs: number;
  /** Length of the daily window. */
  dayMs: number;
  /** Seeds: limits the caller knows in advance. */
  seeds: { minute?: number | undefined; daily?: number | undefined };
  /** Slack added to every predicted reset and expiry, for timer skew. */
  marginMs: number;
  /** How long a reservation held by a process is trusted before it is reclaimed. */
  leaseMs: number;
}

/** What a dispatched request carries back to `settle`. */
export interface Ticket {
  /** Responses received (by every process) before this request was sent. */
  doneAtSend: number;
  /** Snapshot version of each window when this request was sent. */
  verMinute: number;
  verDaily: number;
  /** Reset epoch of each window when this request was sent. */
  epochMinute: number;
  epochDaily: number;
  /** Store time when the request was sent. */
  sentAt: number;
  /** Lease id (shared stores); empty for the memory store. */
  lease: string;
  /** Present (true) when the request counts against the minute window only, not the daily one. */
  minuteOnly?: boolean;
  /** Present (true) when the request tests that word: sent alone while the day is spent. */
  minuteOnlyTest?: boolean;
  /** The budget scope it was granted in; absent for the default scope. */
  scope?: string;
}


/**
 * Why fewer were granted than wanted. `'park'` and `'daily'` are about the
 * daily window alone (a request that does not count there may still go):
 * parked until the day resets, or spent with answers in flight that may say more.
 */
export type BlockReason = 'gate' | 'park' | 'daily' | 'budget' | 'unknown-limit' | 'scout' | 'store';

export interface ReserveResult {
  /** Store time of this answer; `retryAt` and `parkedUntil` are on the same clock. */
  now: number;
  /** How many requests may be sent now (0..want). */
  granted: number;
  /** Common ticket fields for the granted requests (lease ids are `${leasePrefix}${i}`). */
  ticket: Omit<Ticket, 'lease'>;
  leasePrefix: string;
  /** When fewer than wanted were granted: when to ask again (store time), if known. */
  retryAt: number | undefined;
  blockedBy: BlockReason | undefined;
  /** Set while the queue is parked on the daily window. */
  parkedUntil: number | undefined;
  /** True when the daily window is exhausted and its reset time is still unknown (one probe allowed). */
  dailyUnknownReset: boolean;
}

export interface Outcome {
  /** Store time when the response (or failure) arrived. */
  now: number;
  /** HTTP status, or undefined when no response arrived. */
  status: number | undefined;
  snapshot: RateLimitSnapshot | undefined;
  /** False when the request never left (cancelled before sending). */
  sent: boolean;
  /** Extra gate delay chosen by the caller (jitter), added to Retry-After on 429. */
  jitterMs: number;
  /** Gate length to use on a 429 that carries no Retry-After (the caller's backoff). */
  fallbackGateMs: number;
}

export interface SettleResult {
  /** Store time of this answer. */
  now: number;
  /** A 429 closed the gate until this time (store time). */
  gateUntil: number | undefined;
  /** Which window the 429 was about. */
  gateWindow: WindowName | undefined;
  /** The daily window is exhausted: parked until this time (undefined: unknown yet). */
  parked: { until: number | undefined } | undefined;
  /** The budget moved (a snapshot was applied). */
  changed: boolean;
  /**
   * What the answers showed of requests scheduled with `countsDaily: false`:
   * true, they count in the daily window all the same; false, they do not;
   * absent while nothing showed either.
   */
  minuteLaneCountsDaily?: boolean;
}

/** One window's budget as the engine reports it in stats and events. */
export interface WindowView {
  limit: number | undefined;
  /** Server-reported (or predicted) remaining, minus requests possibly not yet counted. */
  available: number | undefined;
  remaining: number | undefined;
  uncounted: number;
  /** What kind of window the engine believes the server runs. */
  kind: 'unknown' | 'fixed';
  /**
   * Bracket of the next predicted reset, when known (store time). For the daily window: its reset where it is
   * the server's word (both the same), not a guess.
   */
  nextResetAfter: number | undefined;
  nextResetBy: number | undefined;
}

export interface BudgetView {
  minute: WindowView;
  daily: WindowView;
  gateUntil: number | undefined;
  parkedUntil: number | undefined;
  sent: number;
  done: number;
}

/**
 * Where the engine keeps budgets, reservations, the 429 gate and the daily
 * park. `MemoryStore` answers synchronously; shared stores return promises.
 * Both must pass the conformance suite in `test/store-conformance.ts`.
 */
export interface Store {
  /** True when several processes share this state (times then come from the store's clock). */
  readonly shared: boolean;
  /** Called once by the scheduler before the first reservation. */
  init(config: BudgetConfig): void | Promise<void>;
  /**
   * Grants up to `want` requests now. `backlog` counts tasks queued beyond
   * `want`: a unit is held back for a scout only when there is more work than
   * budget (default: assume there is). `countsDaily: false` grants requests
   * the daily window does not count: its budget and its park do not hold them.
   * `scope` names the budget they draw from (default `DEFAULT_SCOPE`, see scope.ts); the
   * tickets of another scope carry its name, and `settle` applies their
   * answers to that scope alone. `keepDaily`: daily units to leave for other
   * requests (these wait, blocked as `'daily'`, while granting them would leave fewer).
   */
  reserve(
    want: number,
    now: number,
    backlog?: number,
    countsDaily?: boolean,
    scope?: string,
    keepDaily?: number,
  ): ReserveResult | Promise<ReserveResult>;
  settle(ticket: Ticket, outcome: Outcome): SettleResult | Promise<SettleResult>;
  /** The budget of `scope` (default `DEFAULT_SCOPE`). */
  view(now: number, scope?: string): BudgetView | Promise<BudgetView>;
  close(): void | Promise<void>;
}
