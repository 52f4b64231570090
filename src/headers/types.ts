/** The two windows the API limits. */
export type WindowName = 'minute' | 'daily';

/** What one response said about one window. Every field is optional: servers send some, all or none. */
export interface WindowSnapshot {
  /** The most requests the window allows. A non-negative integer. */
  limit?: number;
  /** Requests left in the current window, as the server counted when it answered. A non-negative integer. */
  remaining?: number;
  /** Milliseconds from the response until the window resets, when the server said so (IETF `t`, `Reset`). */
  resetInMs?: number;
  /**
   * The window's length in milliseconds, when the server said so: the `w`
   * (seconds) of the `RateLimit-Policy` item for this window (draft-6/7
   * `30;w=2`, draft-8 `"30-in-2sec"; q=30; w=2`). A positive integer. The
   * engine's configured window length may differ; this is what the server uses.
   */
  windowMs?: number;
}

/**
 * Everything rate-limit related one response carried, normalized. Produced by
 * `parseRateLimitHeaders`; consumed by the engine. Never holds a negative,
 * NaN or infinite number.
 */
export interface RateLimitSnapshot {
  minute: WindowSnapshot;
  daily: WindowSnapshot;
  /** `X-RateLimit-Type`: which window a 429 was about. */
  type?: WindowName;
  /** From `retry-after-ms`, else `Retry-After` (delta-seconds or HTTP-date), in ms from the response. */
  retryAfterMs?: number;
  /** True when any rate-limit header at all was present and valid. */
  present: boolean;
}

/** Headers as undici, fetch or node:http hand them over. */
export type HeaderSource =
  | Headers
  | Record<string, string | string[] | number | undefined | null>
  | Iterable<[string, string]>;
