import { describe, expect, it } from 'vitest';
import { defaults, resolveOptions, type RetryOptions, type SchedulerOptions } from '../src/engine/options.js';
import { RateLimitScheduler } from '../src/engine/scheduler.js';
import { describe as describeValue, expectedNumber, keyList, suggest, type Keys } from '../src/internal/validate.js';
import { MemoryStore } from '../src/store/memory-store.js';
import { ManualClock } from './helpers/manual-clock.js';
import { roomy, Script, setup, T0 } from './helpers/engine.js';

const make = (options: unknown) => () => new RateLimitScheduler(options as SchedulerOptions);

describe('options: bad values throw a TypeError naming the option, the value and the expectation', () => {
  // [label, options, the whole message]
  const cases: [string, unknown, string][] = [
    ['maxConcurrent 0', { maxConcurrent: 0 }, 'Expected `maxConcurrent` to be an integer >= 1 (or Infinity), got `0` (number)'],
    ['maxConcurrent -1', { maxConcurrent: -1 }, 'Expected `maxConcurrent` to be an integer >= 1 (or Infinity), got `-1` (number)'],
    ['maxConcurrent 1.5', { maxConcurrent: 1.5 }, 'Expected `maxConcurrent` to be an integer >= 1 (or Infinity), got `1.5` (number)'],
    ['maxConcurrent NaN', { maxConcurrent: Number.NaN }, 'Expected `maxConcurrent` to be an integer >= 1 (or Infinity), got `NaN` (number)'],
    ['maxConcurrent "4"', { maxConcurrent: '4' }, 'Expected `maxConcurrent` to be an integer >= 1 (or Infinity), got `"4"` (string)'],
    ['maxConcurrent null', { maxConcurrent: null }, 'Expected `maxConcurrent` to be an integer >= 1 (or Infinity), got `null` (null)'],
    ['windows not an object', { windows: 60_000 }, 'Expected `windows` to be an object, got `60000` (number)'],
    ['windows an array', { windows: [] }, 'Expected `windows` to be an object, got `[0 items]` (object)'],
    ['windows.minuteMs 0', { windows: { minuteMs: 0 } }, 'Expected `windows.minuteMs` to be a number > 0, got `0` (number)'],
    ['windows.minuteMs -5', { windows: { minuteMs: -5 } }, 'Expected `windows.minuteMs` to be a number > 0, got `-5` (number)'],
    ['windows.minuteMs Infinity', { windows: { minuteMs: Infinity } }, 'Expected `windows.minuteMs` to be a number > 0, got `Infinity` (number)'],
    ['windows.dayMs NaN', { windows: { dayMs: Number.NaN } }, 'Expected `windows.dayMs` to be a number > 0, got `NaN` (number)'],
    [
      'windows.dayMs shorter than minuteMs',
      { windows: { minuteMs: 2000, dayMs: 1000 } },
      'Expected `windows.dayMs` to be at least windows.minuteMs (2000), got `1000` (number)',
    ],
    ['limits.minute 0', { limits: { minute: 0 } }, 'Expected `limits.minute` to be an integer >= 1, got `0` (number)'],
    ['limits.minute 2.5', { limits: { minute: 2.5 } }, 'Expected `limits.minute` to be an integer >= 1, got `2.5` (number)'],
    ['limits.minute "300"', { limits: { minute: '300' } }, 'Expected `limits.minute` to be an integer >= 1, got `"300"` (string)'],
    ['limits.daily -1', { limits: { daily: -1 } }, 'Expected `limits.daily` to be an integer >= 1, got `-1` (number)'],
    ['retry.maxAttempts 0', { retry: { maxAttempts: 0 } }, 'Expected `retry.maxAttempts` to be an integer >= 1, got `0` (number)'],
    ['retry.maxAttempts Infinity', { retry: { maxAttempts: Infinity } }, 'Expected `retry.maxAttempts` to be an integer >= 1, got `Infinity` (number)'],
    ['retry.baseDelayMs -1', { retry: { baseDelayMs: -1 } }, 'Expected `retry.baseDelayMs` to be a number >= 0, got `-1` (number)'],
    ['retry.maxDelayMs NaN', { retry: { maxDelayMs: Number.NaN } }, 'Expected `retry.maxDelayMs` to be a number >= 0, got `NaN` (number)'],
    [
      'retry.maxRetryTimeMs -1',
      { retry: { maxRetryTimeMs: -1 } },
      'Expected `retry.maxRetryTimeMs` to be a number >= 0 (or Infinity), got `-1` (number)',
    ],
    ['onDailyLimit "stop"', { onDailyLimit: 'stop' }, 'Expected `onDailyLimit` to be \'wait\' or \'reject\', got `"stop"` (string)'],
    ['smooth "yes"', { smooth: 'yes' }, 'Expected `smooth` to be a boolean, got `"yes"` (string)'],
    ['gateJitter -0.1', { gateJitter: -0.1 }, 'Expected `gateJitter` to be a number >= 0, got `-0.1` (number)'],
    ['timeoutMs -1', { timeoutMs: -1 }, 'Expected `timeoutMs` to be a number >= 0, got `-1` (number)'],
    ['timeoutMs Infinity', { timeoutMs: Infinity }, 'Expected `timeoutMs` to be a number >= 0, got `Infinity` (number)'],
    ['marginMs NaN', { marginMs: Number.NaN }, 'Expected `marginMs` to be a number >= 0, got `NaN` (number)'],
    ['leaseMs 0', { leaseMs: 0 }, 'Expected `leaseMs` to be a number > 0, got `0` (number)'],
    ['store {}', { store: {} }, 'Expected `store` to be a Store (MemoryStore or RedisStore), got `{}` (object)'],
    ['clock without clearTimeout', { clock: { now: () => 0, setTimeout: () => 0 } }, 'Expected `clock` to be an object with now(), setTimeout() and clearTimeout(), got `{ now, setTimeout }` (object)'],
    ['random 0.5', { random: 0.5 }, 'Expected `random` to be a function returning [0, 1), got `0.5` (number)'],
    ['logger console-like', { logger: { info() {} } }, 'Expected `logger` to be a pino logger (child(), debug(), info(), warn(), error()), got `{ info }` (object): it has no child(), debug(), warn(), error()'],
    ['options null', null, 'Expected `options` to be an object, got `null` (null)'],
    ['timeScale 0', { timeScale: 0 }, 'Expected `timeScale` to be a number > 0, got `0` (number)'],
    ['timeScale -1', { timeScale: -1 }, 'Expected `timeScale` to be a number > 0, got `-1` (number)'],
    ['timeScale Infinity', { timeScale: Infinity }, 'Expected `timeScale` to be a number > 0, got `Infinity` (number)'],
    ['timeScale "1/30"', { timeScale: '1/30' }, 'Expected `timeScale` to be a number > 0, got `"1/30"` (string)'],
  ];

  it.each(cases)('%s', (_label, options, message) => {
    expect(make(options)).toThrow(TypeError);
    expect(make(options)).toThrow(message);
  });

  it.each([
    [{ maxConcurent: 4 }, /^Unknown option `maxConcurent`; expected one of `limits`, /],
    [{ retry: { attempts: 3 } }, /^Unknown option `retry\.attempts`; expected one of `maxAttempts`, `baseDelayMs`/],
    [{ windows: { minute: 1000 } }, /^Unknown option `windows\.minute`; expected one of `minuteMs`, `dayMs`; did you mean `minuteMs`\?$/],
    [{ limits: { perMinute: 10 } }, /^Unknown option `limits\.perMinute`; expected one of `minute`, `daily`; did you mean `minute`\?$/],
  ])('unknown key %j throws instead of vanishing', (options, message) => {
    expect(make(options)).toThrow(TypeError);
    expect(make(options)).toThrow(message);
  });

  it('accepts the documented extremes', () => {
    expect(() => new RateLimitScheduler({ maxConcurrent: Infinity, retry: { maxRetryTimeMs: Infinity, baseDelayMs: 0 }, gateJitter: 0 })).not.toThrow();
    expect(() => new RateLimitScheduler({ windows: { minuteMs: 1000, dayMs: 1000 }, limits: { minute: 1, daily: 1 } })).not.toThrow();
    expect(() => new RateLimitScheduler({ store: new MemoryStore(), clock: new ManualClock(), onDailyLimit: 'reject', smooth: true })).not.toThrow();
  });
});

describe('options: resolution and defaults', () => {
  it('fills every default from the one defaults object', () => {
    const r = resolveOptions({});
    expect(r).toEqual({
      timeScale: 1,
      minuteMs: defaults.minuteMs,
      dayMs: defaults.dayMs,
      seeds: { minute: undefined, daily: undefined },
      maxConcurrent: defaults.maxConcurrent,
      smooth: false,
      onDailyLimit: 'wait',
      retry: { ...defaults.retry },
      gateJitter: 0.05,
      timeoutMs: 0,
      marginMs: 120, // 60 000 / 500
      leaseMs: 90_000,
    });
  });

  it.each([
    [1000, 2], // minuteMs / 500
    [100, 1], // at least 1
    [600_000, 250], // at most 250
  ])('marginMs defaults from a %d ms minute to %d ms', (minuteMs, marginMs) => {
    expect(resolveOptions({ windows: { minuteMs } }).marginMs).toBe(marginMs);
  });

  it('keeps what the caller gave', () => {
    const r = resolveOptions({ limits: { minute: 30, daily: 500 }, retry: { maxAttempts: 2 }, marginMs: 0, leaseMs: 5 });
    expect(r.seeds).toEqual({ minute: 30, daily: 500 });
    expect(r.retry).toEqual({ ...defaults.retry, maxAttempts: 2 });
    expect(r.marginMs).toBe(0);
    expect(r.leaseMs).toBe(5);
  });
});

describe('schedule(): bad per-task input rejects with a TypeError', () => {
  const cases: [string, unknown, unknown, string][] = [
    ['task not a function', 'fetch', undefined, 'Expected `task` to be a function, got `fetch` (string)'],
    ['options null', 'task', null, 'Expected `options` to be an object, got `null` (null)'],
    ['priority NaN', 'task', { priority: Number.NaN }, 'Expected `priority` to be a finite number, got `NaN` (number)'],
    ['priority -Infinity', 'task', { priority: -Infinity }, 'Expected `priority` to be a finite number, got `-Infinity` (number)'],
    ['priority "high"', 'task', { priority: 'high' }, 'Expected `priority` to be a finite number, got `"high"` (string)'],
    ['options an array', 'task', [], 'Expected `options` to be an object, got `[0 items]` (object)'],
    ['timeoutMs -1', 'task', { timeoutMs: -1 }, 'Expected `timeoutMs` to be a number >= 0, got `-1` (number)'],
    ['signal not a signal', 'task', { signal: { aborted: false } }, 'Expected `signal` to be an AbortSignal, got `{ aborted }` (object)'],
    ['idempotent "yes"', 'task', { idempotent: 'yes' }, 'Expected `idempotent` to be a boolean, got `"yes"` (string)'],
    ['countsDaily "no"', 'task', { countsDaily: 'no' }, 'Expected `countsDaily` to be a boolean, got `"no"` (string)'],
    ['a typo', 'task', { priorty: 5 }, 'Unknown option `priorty`; expected one of `priority`, `signal`, `timeoutMs`, `idempotent`, `countsDaily`, `keepDaily`, `scope`; did you mean `priority`?'],
  ];

  it.each(cases)('%s', async (_label, task, options, message) => {
    const { clock, scheduler } = setup();
    const script = new Script(clock);
    const fn = task === 'task' ? script.task : task;
    const p = scheduler.schedule(fn as never, options as never);
    await expect(p).rejects.toThrow(TypeError);
    await expect(p).rejects.toThrow(message);
    expect(script.calls).toHaveLength(0);
    expect(scheduler.stats().counts.scheduled).toBe(0);
  });

  it('an already aborted signal rejects at once with its reason', async () => {
    const { clock, scheduler } = setup();
    const script = new Script(clock);
    const reason = new Error('caller gave up');
    await expect(scheduler.schedule(script.task, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(script.calls).toHaveLength(0);
  });

  it('valid per-task options are accepted', async () => {
    const { clock, scheduler } = setup();
    const script = new Script(clock, [], { fallback: { status: 200, headers: roomy() } });
    const p = scheduler.schedule(script.task, { priority: -5, timeoutMs: 0, idempotent: true, signal: new AbortController().signal });
    await clock.advance(50);
    await expect(p).resolves.toMatchObject({ status: 200 });
  });
});

describe('random sources that misbehave', () => {
  it.each([
    ['NaN', () => Number.NaN],
    ['1.5', () => 1.5],
    ['-1', () => -1],
  ])('a random() returning %s never opens the 429 gate early nor yields NaN', async (_label, random) => {
    const clock = new ManualClock(T0);
    const scheduler = new RateLimitScheduler({ clock, random });
    const script = new Script(clock, [{ status: 429, headers: { 'retry-after': '2', ...roomy(0, 10) } }], {
      fallback: { status: 200, headers: roomy(5, 10) },
    });
    const p = scheduler.schedule(script.task);
    await clock.advance(20);
    const gate = scheduler.stats().gateUntil;
    expect(gate).toBeDefined();
    expect(Number.isFinite(gate)).toBe(true);
    expect(gate as number).toBeGreaterThanOrEqual(T0 + 10 + 2000);
    await clock.advance(1900);
    expect(script.calls).toHaveLength(1);
    await clock.advance(1200);
    await expect(p).resolves.toMatchObject({ status: 200 });
    expect(script.calls).toHaveLength(2);
  });
});

describe('options: timeScale, the one time setting', () => {
  it('scales every time default: windows, retry backoff, marginMs, and leaseMs with its 30 s part', () => {
    const r = resolveOptions({ timeScale: 1 / 30 });
    expect(r.timeScale).toBe(1 / 30);
    expect(r.minuteMs).toBeCloseTo(2000, 9);
    expect(r.dayMs).toBeCloseTo(2_880_000, 9);
    expect(r.retry.baseDelayMs).toBeCloseTo(500 / 30, 9);
    expect(r.retry.maxDelayMs).toBeCloseTo(1000, 9);
    expect(r.retry.maxRetryTimeMs).toBeCloseTo(10_000, 9);
    expect(r.marginMs).toBeCloseTo(4, 9); // minuteMs / 500
    expect(r.leaseMs).toBeCloseTo(2000 + 1000, 9); // minuteMs + 30 000 × timeScale
    // What is not time stays as it was.
    expect(r.retry.maxAttempts).toBe(defaults.retry.maxAttempts);
    expect(r.maxConcurrent).toBe(defaults.maxConcurrent);
    expect(r.timeoutMs).toBe(0);
  });

  it('options given explicitly are taken as they are', () => {
    const r = resolveOptions({ timeScale: 0.5, windows: { minuteMs: 1000 }, retry: { baseDelayMs: 7 }, leaseMs: 99 });
    expect(r.minuteMs).toBe(1000);
    expect(r.dayMs).toBe(43_200_000);
    expect(r.retry.baseDelayMs).toBe(7);
    expect(r.retry.maxDelayMs).toBe(15_000);
    expect(r.leaseMs).toBe(99);
  });

  it('a scheduler tells its time settings to the client and store built on it', () => {
    expect(new RateLimitScheduler({ timeScale: 0.1 }).timing).toEqual({ timeScale: 0.1, minuteMs: 6000, dayMs: 8_640_000 });
    expect(new RateLimitScheduler({ windows: { minuteMs: 500, dayMs: 5000 } }).timing).toEqual({ timeScale: 1, minuteMs: 500, dayMs: 5000 });
  });
});

describe('the one validation module (src/internal/validate.ts)', () => {
  it('a key list is tied to its interface: a missing or an extra key is a type error (npm run typecheck)', () => {
    const all = keyList({ maxAttempts: true, baseDelayMs: true, maxDelayMs: true, maxRetryTimeMs: true } satisfies Keys<RetryOptions>);
    // @ts-expect-error -- `maxRetryTimeMs` is missing
    const missing = keyList({ maxAttempts: true, baseDelayMs: true, maxDelayMs: true } satisfies Keys<RetryOptions>);
    // @ts-expect-error -- `jitter` is not an option
    const extra = keyList({ maxAttempts: true, baseDelayMs: true, maxDelayMs: true, maxRetryTimeMs: true, jitter: true } satisfies Keys<RetryOptions>);
    expect(all).toEqual(['maxAttempts', 'baseDelayMs', 'maxDelayMs', 'maxRetryTimeMs']);
    expect([missing.length, extra.length]).toEqual([3, 5]);
  });

  it.each([
    ['maxConcurent', ['limits', 'maxConcurrent', 'smooth'], 'maxConcurrent'],
    ['acount', ['account', 'keyPrefix'], 'account'],
    ['maxSahre', ['maxShare', 'minIntervalMs'], 'maxShare'], // a transposition counts once
    ['minute', ['minuteMs', 'dayMs'], 'minuteMs'], // the key without its unit
    ['TIMESCALE', ['timeScale', 'windows'], 'timeScale'], // case does not count
    ['timeoutMs', ['apiKey', 'baseUrl', 'connectTimeoutMs'], undefined], // nothing close enough
    ['x', ['y', 'z'], 'y'], // one edit on a one-letter key
    ['ab', ['port', 'host'], undefined],
  ])('suggest(%j) → %j', (key, known, expected) => {
    expect(suggest(key, known)).toBe(expected);
  });

  it.each([
    ['4', '`"4"` (string)'],
    ['', '`""` (string)'],
    [-1, '`-1` (number)'],
    [Number.NaN, '`NaN` (number)'],
    [null, '`null` (null)'],
    [undefined, '`undefined` (undefined)'],
    [[], '`[0 items]` (object)'],
    [{}, '`{}` (object)'],
    [{ minute: { limit: 10 } }, '`{ minute }` (object)'], // keys, never values
    ['redis://:pw@127.0.0.1:6379/5', '`"redis://***@127.0.0.1:6379/5"` (string)'], // credentials masked
    [Object.create(null) as object, '`[object Object]` (object)'], // String() throws on it
  ])('describe(%j) → %s', (value, shown) => {
    expect(describeValue(value)).toBe(shown);
  });

  it.each([
    [{}, 'a number >= 0'],
    [{ min: 1, integer: true }, 'an integer >= 1'],
    [{ min: 1, integer: true, allowInfinity: true }, 'an integer >= 1 (or Infinity)'],
    [{ min: 0, exclusiveMin: true }, 'a number > 0'],
    [{ min: 0, exclusiveMin: true, max: 1 }, 'a number in (0, 1]'],
    [{ max: 1 }, 'a number in [0, 1]'],
    [{ min: -Infinity }, 'a finite number'],
  ])('expectedNumber(%j) → %s', (rule, words) => {
    expect(expectedNumber(rule)).toBe(words);
  });
});
