/**
 * Pure rate-limit header parsing. See {@link parseRateLimitHeaders}.
 * @module
 */
export {
  DAILY_WINDOW_THRESHOLD_SECONDS,
  DEFAULT_MAX_RETRY_AFTER_MS,
  EPOCH_SECONDS_THRESHOLD,
  MAX_COUNT,
  parseCount,
  parseDecimal,
  parseHttpDate,
  parseRateLimitDictionary,
  parseRateLimitHeaders,
  parseResetSeconds,
  parseRetryAfter,
  parseStructuredRateLimit,
  windowOfItem,
} from './parse.js';
export type { ParseOptions, RateLimitDictionary, RateLimitItem } from './parse.js';
export type { HeaderSource, RateLimitSnapshot, WindowName, WindowSnapshot } from './types.js';
