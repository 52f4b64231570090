import type { RateLimitSnapshot, WindowName } from './types.js';

/**
 * Which window a 429 is about: `X-RateLimit-Type` when sent, else the daily
 * one when its `Remaining` is 0, else the minute one.
 */
export function refusedWindow(snapshot: RateLimitSnapshot | undefined): WindowName {
  if (snapshot?.type !== undefined) return snapshot.type;
  return snapshot?.daily.remaining === 0 ? 'daily' : 'minute';
}
