import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { ProgressDisplay } from '../src/cli/progress.js';
import { installSignalHandlers } from '../src/cli/signals.js';
import type { BatchProgress } from '../src/batch/types.js';
import { EventEmitter } from 'node:events';

function snapshot(over: Partial<BatchProgress> = {}): BatchProgress {
  return {
    items: 0,
    skipped: 0,
    done: 0,
    failed: 0,
    invalid: 0,
    inFlight: 0,
    queued: 0,
    resumed: 0,
    possibleDuplicates: 0,
    dispatched: 0,
    rateLimited: 0,
    minuteLimit: 60,
    parkedUntil: undefined,
    stopping: false,
    elapsedMs: 0,
    ...over,
  };
}

const silent = { debug() {}, info() {}, warn() {}, error() {}, child() { return silent; } };

describe('ProgressDisplay', () => {
  test('rate is the requests sent in the last minute window; ETA from items finished per second', () => {
    let current = snapshot();
    const display = new ProgressDisplay({ mode: 'none', logger: silent, minuteMs: 60_000 });
    display.setTotal(1000);
    display.start({ progress: () => current });
    expect(display.view(0)?.etaMs).toBeUndefined();
    current = snapshot({ done: 100, dispatched: 200 });
    const view = display.view(10_000);
    // 200 requests sent, all within the last minute window: 200 (issue 12: it was extrapolated to 1200 "a minute"
    // from 10 s, a rate above what was ever sent in a window).
    expect(view?.rate).toBe(200);
    expect(view?.itemsPerSecond).toBeCloseTo(10);
    expect(view?.etaMs).toBeCloseTo(90_000); // 900 left at 10/s
    current = snapshot({ done: 990, failed: 5, invalid: 5, dispatched: 2000 });
    expect(display.view(20_000)?.etaMs).toBe(0);
  });

  test('the rate never exceeds the limit when every window stays within it, even when each window is spent in a burst', () => {
    // A 2 s "minute" with a limit of 60, spent at the start of each window (the scheduler spends what the
    // window has left at once). It showed "195 per 2 s (limit 60)": a 0.6 s span extrapolated to the window.
    let current = snapshot({ minuteLimit: 60 });
    const display = new ProgressDisplay({ mode: 'none', logger: silent, minuteMs: 2000 });
    display.start({ progress: () => current });
    let dispatched = 0;
    let peak = 0;
    for (let t = 0; t <= 10_000; t += 100) {
      if (t % 2000 === 100) dispatched += 60; // the window's whole budget, in one burst
      current = snapshot({ minuteLimit: 60, dispatched });
      const rate = display.view(t)?.rate ?? 0;
      peak = Math.max(peak, rate);
      expect(rate, `at ${t} ms`).toBeLessThanOrEqual(60);
    }
    expect(peak).toBe(60); // and it does show the burst
  });

  test('with the server\'s count of its window known, the rate is that count, window for window', () => {
    let current = snapshot({ minuteLimit: 60 });
    const display = new ProgressDisplay({ mode: 'none', logger: silent, minuteMs: 2000 });
    display.start({ progress: () => current });
    display.view(0);
    // 40 sent at the end of one window and 60 at the start of the next: 100 in the last 2 s, 60 in the window.
    current = snapshot({ minuteLimit: 60, dispatched: 100, minuteUsed: 60 });
    expect(display.view(1500)?.rate).toBe(60);
    current = snapshot({ minuteLimit: 60, dispatched: 100 });
    expect(display.view(1600)?.rate).toBe(100); // unknown: the sliding count
  });

  test('the bar reaches 100 % when the input repeats ids (repeats count as finished)', () => {
    const display = new ProgressDisplay({ mode: 'none', logger: silent });
    display.setTotal(10);
    display.start({ progress: () => snapshot({ done: 8, duplicateIds: 2 }) });
    expect(display.view(0)).toMatchObject({ finished: 10, etaMs: 0 });
  });

  test('off a terminal: periodic JSON lines through the logger, and a last one at stop', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = { ...silent, info: (obj: object) => void lines.push(obj as Record<string, unknown>) };
    const display = new ProgressDisplay({ mode: 'json', logger, intervalMs: 20 });
    display.setTotal(10);
    let current = snapshot({ done: 3, inFlight: 2, queued: 4, rateLimited: 1 });
    display.start({ progress: () => current });
    await new Promise((r) => setTimeout(r, 70));
    current = snapshot({ done: 10 });
    display.stop();
    expect(lines.length).toBeGreaterThanOrEqual(2);
    expect(lines[0]).toMatchObject({ progress: { total: 10, done: 3, inFlight: 2, queued: 4, rateLimited: 1, minuteLimit: 60 } });
    expect(lines.at(-1)).toMatchObject({ progress: { done: 10, finished: 10, etaSeconds: 0 } });
  });

  test('on a terminal: a two-line bar with counts, rate against the limit, 429s and ETA', async () => {
    const stream = Object.assign(new PassThrough(), { isTTY: true, columns: 160, cursorTo() {}, moveCursor() {}, clearLine() {}, clearScreenDown() {} });
    let text = '';
    stream.on('data', (d: Buffer) => {
      text += d.toString();
    });
    const display = new ProgressDisplay({ mode: 'bar', logger: silent, stream: stream as unknown as NodeJS.WriteStream, minuteMs: 2000 });
    display.setTotal(50);
    display.start({ progress: () => snapshot({ done: 20, failed: 2, invalid: 1, inFlight: 7, queued: 3, rateLimited: 4, resumed: 2 }) });
    await new Promise((r) => setTimeout(r, 250));
    display.log('a line above the bar');
    display.stop();
    expect(text).toMatch(/23\/50 · done 20 · failed 2 · invalid 1/);
    expect(text).toMatch(/in flight 7 · queued 3 · rate \d+ per 2 s \(limit 60\) · 429s 4 · resumed 2/);
    expect(text).toContain('a line above the bar');
  });
});

describe('ProgressDisplay: --progress bar off a terminal', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  test('draws a frame every 5 s while the run lasts, then one last frame (asked for by name, never silent)', async () => {
    vi.useFakeTimers();
    const stream = new PassThrough();
    let text = '';
    stream.on('data', (d: Buffer) => {
      text += d.toString();
    });
    const display = new ProgressDisplay({ mode: 'bar', logger: silent, stream: stream as unknown as NodeJS.WriteStream, minuteMs: 2000 });
    display.setTotal(50);
    let done = 10;
    display.start({ progress: () => snapshot({ done }) });
    await vi.advanceTimersByTimeAsync(5_100);
    expect(text).toMatch(/10\/50 · done 10/);
    done = 50;
    await vi.advanceTimersByTimeAsync(1_000);
    display.stop();
    await vi.advanceTimersByTimeAsync(0);
    expect(text.match(/50\/50 · done 50/g)).toHaveLength(1);
  });
});

describe('installSignalHandlers', () => {
  test('the first signal stops gracefully, the second exits; uninstall removes both', () => {
    const target = new EventEmitter() as unknown as NodeJS.Process;
    const calls: string[] = [];
    const uninstall = installSignalHandlers({ onFirst: (s) => calls.push(`first:${s}`), onSecond: (s) => calls.push(`second:${s}`) }, target);
    target.emit('SIGTERM');
    target.emit('SIGINT');
    expect(calls).toEqual(['first:SIGTERM', 'second:SIGINT']);
    uninstall();
    expect((target as unknown as EventEmitter).listenerCount('SIGINT')).toBe(0);
    expect((target as unknown as EventEmitter).listenerCount('SIGTERM')).toBe(0);
  });
});
