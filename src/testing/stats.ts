/**
 * Counters of the fake server, and the public snapshot shape.
 */
import type { FaultKind } from './faults.js';
import type { WebhookCounters } from './webhooks.js';

export interface FakeServerStats {
  /** Every HTTP request received, storage downloads included. */
  requests: number;
  /**
   * Requests by route key: `'POST /txt2img'`, `'POST /txt2img/price-calculation'`, `'GET /request-status'`,
   * `'GET /balance'`, `'GET /models'`, `'GET /storage'`, `'unmatched'` (404 before routing), and
   * `'<METHOD> /<path>'` for 405s.
   */
  byRoute: Record<string, number>;
  /** Requests counted against the windows (admitted by the limiter). */
  accepted: number;
  rejected429: { minute: number; daily: number; total: number };
  unauthorized401: number;
  /** Unmatched routes and unknown/foreign request ids. */
  notFound404: number;
  /** All 422s, insufficient balance included. */
  validation422: number;
  insufficientBalance: number;
  /** Injected faults by kind. */
  injected: Record<FaultKind, number>;
  /** Injected 500 + 502 + 503 + 504. */
  injected5xx: number;
  /** Injected `reset` + `accept-then-reset`. */
  resetsInjected: number;
  /** `GET /request-status` requests that reached the handler (counted or not; 429s excluded). */
  polls: number;
  /** Job counts by state at the time of the call (O(jobs)). */
  jobs: { created: number; pending: number; processing: number; done: number; failed: number };
  webhooks: WebhookCounters & { disabledAccounts: string[] };
  storageDownloads: number;
}

export function emptyInjected(): Record<FaultKind, number> {
  return {
    '500': 0,
    '502': 0,
    '503': 0,
    '504': 0,
    reset: 0,
    'accept-then-reset': 0,
    slow: 0,
    'malformed-json': 0,
    'no-headers': 0,
    '401': 0,
  };
}

/** The mutable counters the server keeps (jobs and webhooks are read from their owners). */
export class Counters {
  requests = 0;
  readonly byRoute = new Map<string, number>();
  accepted = 0;
  rejectedMinute = 0;
  rejectedDaily = 0;
  unauthorized401 = 0;
  notFound404 = 0;
  validation422 = 0;
  insufficientBalance = 0;
  readonly injected = emptyInjected();
  polls = 0;
  storageDownloads = 0;

  route(key: string): void {
    this.byRoute.set(key, (this.byRoute.get(key) ?? 0) + 1);
  }
}
