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
