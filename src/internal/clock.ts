/**
 * The time seam. Every timer and every reading of "now" in the library goes
 * through a `Clock`, so tests can run on a fake one and benchmarks can
 * compress time. `systemClock` looks the globals up at call time, so vitest's
 * fake timers also take effect through it.
 */
export type TimerHandle = unknown;

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** A random source in [0, 1). Injected so that jitter is testable. */
export type Random = () => number;

/**
 * Waits `ms` on `clock`. Rejects with `signal.reason` when aborted, and
 * removes its listener and timer either way.
 */
export function sleep(ms: number, clock: Clock, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clock.clearTimeout(handle);
      reject(signal?.reason);
    };
    const handle = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, Math.max(0, ms));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
