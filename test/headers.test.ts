import { describe, it, expect } from 'vitest';
import {
  DEFAULT_MAX_RETRY_AFTER_MS,
  parseCount,
  parseDecimal,
  parseHttpDate,
  parseRateLimitDictionary,
  parseRateLimitHeaders,
  parseResetSeconds,
  parseRetryAfter,
  parseStructuredRateLimit,
  windowOfItem,
  type HeaderSource,
  type RateLimitSnapshot,
} from '../src/headers/index.js';
import type { Logger } from '../src/internal/logger.js';

/** 2025-01-15T12:00:00Z */
const NOW = Date.UTC(2025, 0, 15, 12, 0, 0);
/** Sun, 06 Nov 1994 08:49:37 GMT */
const RFC_EXAMPLE = Date.UTC(1994, 10, 6, 8, 49, 37);

interface LogEntry {
  obj: object;
  msg: string | undefined;
}

function recordingLogger(): Logger & { entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const logger: Logger & { entries: LogEntry[] } = {
    entries,
    debug: (obj, msg) => void entries.push({ obj, msg }),
    info: () => {},
    warn: () => {},
    error: () => {},
    child: () => logger,
  };
  return logger;
}

function parse(headers: Record<string, unknown>, options: { maxRetryAfterMs?: number } = {}): RateLimitSnapshot {
  return parseRateLimitHeaders(headers as HeaderSource, { now: NOW, ...options });
}

/** Formats an epoch-ms instant as IMF-fixdate, the way servers do. */
function imf(ms: number): string {
  return new Date(ms).toUTCString();
}

function numbersOf(s: RateLimitSnapshot): number[] {
  const out: number[] = [];
  for (const w of [s.minute, s.daily]) {
    for (const v of [w.limit, w.remaining, w.resetInMs, w.windowMs]) if (v !== undefined) out.push(v);
  }
  if (s.retryAfterMs !== undefined) out.push(s.retryAfterMs);
  return out;
}

// ---------------------------------------------------------------------------

describe('parseDecimal', () => {
  it.each<[unknown, number | undefined]>([
    ['0', 0],
    ['42', 42],
    [' 42 ', 42],
    ['\t7\t', 7],
    ['1.5', 1.5],
    ['007', 7],
    [3.25, 3.25],
    [0, 0],
    ['', undefined],
    ['   ', undefined],
    ['-1', undefined],
    ['+1', undefined],
    ['1.', undefined],
    ['.5', undefined],
    ['1.2.3', undefined],
    ['1e3', undefined],
    ['1e400', undefined],
    ['0x10', undefined],
    ['Infinity', undefined],
    ['NaN', undefined],
    ['abc', undefined],
    ['4 2', undefined],
    ['9'.repeat(400), undefined],
    [-1, undefined],
    [Number.NaN, undefined],
    [Number.POSITIVE_INFINITY, undefined],
    [null, undefined],
    [undefined, undefined],
    [{}, undefined],
  ])('parseDecimal(%j) → %j', (input, expected) => {
    expect(parseDecimal(input)).toBe(expected);
  });

  it('rejects a bigint', () => {
    expect(parseDecimal(10n)).toBeUndefined();
  });
});

describe('parseCount', () => {
  it.each<[unknown, number | undefined]>([
    ['42', 42],
    [' 42 ', 42],
    ['0', 0],
    ['4.2', 4],
    ['4.9', 4],
    [7.9, 7],
    [1e9, 1e9],
    ['1000000000', 1e9],
    ['1000000001', undefined],
    [1e9 + 1, undefined],
    ['-1', undefined],
    [-1, undefined],
    ['-0', undefined],
    ['NaN', undefined],
    [Number.NaN, undefined],
    ['Infinity', undefined],
    [Number.POSITIVE_INFINITY, undefined],
    ['', undefined],
    ['abc', undefined],
    ['1e400', undefined],
    ['42abc', undefined],
  ])('parseCount(%j) → %j', (input, expected) => {
    expect(parseCount(input)).toBe(expected);
  });
});

describe('parseHttpDate', () => {
  describe('the three RFC 9110 forms', () => {
    it.each([
      ['IMF-fixdate', 'Sun, 06 Nov 1994 08:49:37 GMT'],
      ['RFC 850', 'Sunday, 06-Nov-94 08:49:37 GMT'],
      ['asctime, space-padded day', 'Sun Nov  6 08:49:37 1994'],
      ['asctime, zero-padded day', 'Sun Nov 06 08:49:37 1994'],
      ['IMF-fixdate with surrounding spaces', '  Sun, 06 Nov 1994 08:49:37 GMT '],
    ])('%s: %j', (_form, input) => {
      expect(parseHttpDate(input, NOW)).toBe(RFC_EXAMPLE);
    });
  });

  it.each([
    ['Thu, 29 Feb 2024 23:59:59 GMT', Date.UTC(2024, 1, 29, 23, 59, 59)],
    ['Tue, 29 Feb 2000 00:00:00 GMT', Date.UTC(2000, 1, 29)],
    ['Thu, 01 Jan 1970 00:00:00 GMT', 0],
    ['Wed, 31 Dec 2025 23:59:60 GMT', Date.UTC(2026, 0, 1)],
    ['Mon, 01 Jan 0001 00:00:00 GMT', Date.UTC(2001, 0, 1) - 2000 * 365.2425 * 86_400_000],
    ['Wednesday, 15-Jan-25 12:00:30 GMT', NOW + 30_000],
    ['Wed Jan 15 12:00:30 2025', NOW + 30_000],
    ['Mon Dec 31 23:59:59 2001', Date.UTC(2001, 11, 31, 23, 59, 59)],
  ])('%j → %d', (input, expected) => {
    expect(parseHttpDate(input, NOW)).toBe(expected);
  });

  it.each([
    ['day 30 of February', 'Sun, 30 Feb 2025 08:49:37 GMT'],
    ['Feb 29 in a non-leap year', 'Sat, 29 Feb 2025 08:49:37 GMT'],
    ['Feb 29 in 1900', 'Thu, 29 Feb 1900 08:49:37 GMT'],
    ['day 31 of April', 'Thu, 31 Apr 2025 08:49:37 GMT'],
    ['day 00', 'Sun, 00 Nov 1994 08:49:37 GMT'],
    ['hour 24', 'Sun, 06 Nov 1994 24:00:00 GMT'],
    ['minute 60', 'Sun, 06 Nov 1994 08:60:37 GMT'],
    ['second 61', 'Sun, 06 Nov 1994 08:49:61 GMT'],
    ['lower-case day name', 'sun, 06 Nov 1994 08:49:37 GMT'],
    ['unknown day name', 'Sux, 06 Nov 1994 08:49:37 GMT'],
    ['upper-case month', 'Sun, 06 NOV 1994 08:49:37 GMT'],
    ['unknown month', 'Sun, 06 Nox 1994 08:49:37 GMT'],
    ['UTC instead of GMT', 'Sun, 06 Nov 1994 08:49:37 UTC'],
    ['single-digit day in IMF', 'Sun, 6 Nov 1994 08:49:37 GMT'],
    ['missing seconds', 'Sun, 06 Nov 1994 08:49 GMT'],
    ['letters in the time', 'Sun, 06 Nov 1994 08:4x:37 GMT'],
    ['bad time separator', 'Sun, 06 Nov 1994 08.49.37 GMT'],
    ['letters in the year', 'Sun, 06 Nov 19x4 08:49:37 GMT'],
    ['IMF without the space after the comma', 'Sun,006 Nov 1994 08:49:37 GMT'],
    ['IMF with a dash instead of a space', 'Sun, 06-Nov 1994 08:49:37 GMT'],
    ['RFC 850 with a short day name', 'Sun, 06-Nov-94 08:49:37 GMT'],
    ['RFC 850 with a four-digit year', 'Sunday, 06-Nov-1994 08:49:37 GMT'],
    ['RFC 850 without dashes', 'Sunday, 06 Nov 94 08:49:37 GMT'],
    ['RFC 850 without GMT', 'Sunday, 06-Nov-94 08:49:37 UTC'],
    ['RFC 850 with letters in the year', 'Sunday, 06-Nov-9x 08:49:37 GMT'],
    ['RFC 850 with a bad weekday', 'Sundae, 06-Nov-94 08:49:37 GMT'],
    ['RFC 850 missing the space after the comma', 'Sunday,_06-Nov-94 08:49:37 GMT'],
    ['RFC 850 with a bad time', 'Sunday, 06-Nov-94 08:49:7x GMT'],
    ['asctime with a long day name', 'Sund Nov  6 08:49:37 1994'],
    ['asctime with a bad day', 'Sun Nov  x 08:49:37 1994'],
    ['asctime with an extra space', 'Sun Nov  6  08:49:37 199'],
    ['asctime with GMT appended', 'Sun Nov  6 08:49:37 1994 GMT'],
    ['ISO 8601', '1994-11-06T08:49:37Z'],
    ['what Date.parse accepts', 'Nov 6 1994'],
    ['a number', '12345'],
    ['empty', ''],
    ['very long', `Sun, 06 Nov 1994 08:49:37 GMT${' '.repeat(100)}x`],
  ])('rejects %s: %j', (_why, input) => {
    expect(parseHttpDate(input, NOW)).toBeUndefined();
  });

  it('returns undefined for a non-string', () => {
    expect(parseHttpDate(42 as unknown as string, NOW)).toBeUndefined();
  });

  describe('RFC 850 two-digit years: more than 50 years ahead means the past century', () => {
    it.each([
      [2025, '94', 1994],
      [2025, '25', 2025],
      [2025, '00', 2000],
      [2025, '75', 2075],
      [2025, '76', 1976],
      [2025, '99', 1999],
      [2090, '10', 2110],
      [2090, '40', 2140],
      [2090, '41', 2041],
      [1999, '49', 2049],
      [1999, '50', 1950],
    ])('in %d, %s → %d', (thisYear, yy, expected) => {
      const now = Date.UTC(thisYear, 5, 1);
      expect(parseHttpDate(`Monday, 01-Mar-${yy} 00:00:00 GMT`, now)).toBe(Date.UTC(expected, 2, 1));
    });
  });

  it('agrees with Date.UTC on 2,000 random valid dates in each form', () => {
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let k = 0; k < 2000; k++) {
      const ms = Date.UTC(1970 + rand(129), rand(12), 1 + rand(31), rand(24), rand(60), rand(60));
      const d = new Date(ms);
      const asIs = parseHttpDate(d.toUTCString(), NOW);
      expect(asIs).toBe(ms);
      const [dow, dd, mon, yyyy, time] = d.toUTCString().split(' ') as [string, string, string, string, string];
      const asctime = `${dow.slice(0, 3)} ${mon} ${dd.replace(/^0/, ' ')} ${time} ${yyyy}`;
      expect(parseHttpDate(asctime, NOW)).toBe(ms);
    }
  });
});

describe('parseRetryAfter', () => {
  it.each<[unknown, number | undefined]>([
    ['0', 0],
    ['1', 1000],
    ['120', 120_000],
    [' 3 ', 3000],
    ['1.5', 1500],
    ['0.0004', 0],
    ['0.0006', 1],
    [2, 2000],
    [imf(NOW + 30_000), 30_000],
    ['Wednesday, 15-Jan-25 12:01:00 GMT', 60_000],
    ['Wed Jan 15 12:00:10 2025', 10_000],
    [imf(NOW - 60_000), 0],
    ['Sun, 06 Nov 1994 08:49:37 GMT', 0],
    [imf(NOW), 0],
    ['-1', undefined],
    ['-1.5', undefined],
    ['soon', undefined],
    ['', undefined],
    ['1e3', undefined],
    [Number.NaN, undefined],
    [-5, undefined],
    [null, undefined],
    [{}, undefined],
  ])('parseRetryAfter(%j) → %j', (input, expected) => {
    expect(parseRetryAfter(input, NOW)).toBe(expected);
  });
});

describe('parseResetSeconds (X-RateLimit-Reset, ky rule)', () => {
  const nowSec = NOW / 1000;
  it.each<[unknown, number | undefined]>([
    ['30', 30_000],
    ['0', 0],
    ['1.5', 1500],
    [String(nowSec + 60), 60_000],
    [nowSec + 60, 60_000],
    [String(nowSec - 60), 0],
    ['1704067200', 0], // exactly the threshold: epoch seconds, in the past
    ['1704067199', 1_704_067_199_000], // just below: delta seconds
    ['-1', undefined],
    ['abc', undefined],
    ['', undefined],
  ])('parseResetSeconds(%j) → %j', (input, expected) => {
    expect(parseResetSeconds(input, NOW)).toBe(expected);
  });
});

describe('parseStructuredRateLimit', () => {
  it.each<[string, object[]]>([
    ['"minute";q=60;w=60, "daily";q=1000;w=86400', [
      { name: 'minute', q: 60, w: 60 },
      { name: 'daily', q: 1000, w: 86400 },
    ]],
    ['"minute";r=42;t=18', [{ name: 'minute', r: 42, t: 18 }]],
    ['default;r=5;t=1', [{ name: 'default', r: 5, t: 1 }]],
    ['  "a" ; r=1 ; t=2 ,"b";r=3  ', [{ name: 'a', r: 1, t: 2 }, { name: 'b', r: 3 }]],
    ['"a";R=1;T=2', [{ name: 'a', r: 1, t: 2 }]],
    ['"a";r=1;r=2', [{ name: 'a', r: 1 }]],
    ['"esc\\"aped";q=1', [{ name: 'esc"aped', q: 1 }]],
    ['"with, comma";q=1, "b";q=2', [{ name: 'with, comma', q: 1 }, { name: 'b', q: 2 }]],
    ['"p";q=10;w=60;qu="requests";pk=:cHJvamVjdDEyMw==:', [{ name: 'p', q: 10, w: 60 }]],
    ['"p";q=10;flag;w=60', [{ name: 'p', q: 10, w: 60 }]],
    ['"p";r=-1;t=5', [{ name: 'p', t: 5 }]],
    ['"p";r="x";t=?1', [{ name: 'p' }]],
    ['"p";r=1.5', [{ name: 'p', r: 1.5 }]],
    ['', []],
    [' , ,', []],
    // malformed members are skipped, the rest are kept
    ['"bad, "ok";r=1', []],
    ['"unterminated;r=1', []],
    ['"a";r=1 junk, "b";r=2', [{ name: 'b', r: 2 }]],
    [';r=1, "b";r=2', [{ name: 'b', r: 2 }]],
    ['"a";=1, "b";r=2', [{ name: 'b', r: 2 }]],
    ['"a";r=, "b";r=2', [{ name: 'b', r: 2 }]],
    ['"a";pk=:abc, "b";r=2', [{ name: 'b', r: 2 }]],
    ['=x, "b";r=2', [{ name: 'b', r: 2 }]],
    ['"a\\', []],
    ['"a";r=1, "b";r=2, garbage"here, "c";r=3', [{ name: 'a', r: 1 }, { name: 'b', r: 2 }]],
  ])('%j', (input, expected) => {
    expect(parseStructuredRateLimit(input)).toEqual(expected);
  });

  it('logs each skipped member and each ignored parameter at debug', () => {
    const logger = recordingLogger();
    parseStructuredRateLimit('"a";r=1 junk, "b";r=-2, "c";t=3', logger);
    expect(logger.entries.map((e) => e.msg)).toEqual([
      'rate-limit: skipped malformed structured item',
      'rate-limit: ignored parameter',
    ]);
  });

  it('returns [] for a non-string', () => {
    expect(parseStructuredRateLimit(5 as unknown as string)).toEqual([]);
  });
});

describe('parseRateLimitDictionary (draft-7 RateLimit)', () => {
  it.each<[string, object | undefined]>([
    ['limit=30, remaining=29, reset=2', { limit: 30, remaining: 29, reset: 2 }],
    ['limit=3, remaining=0, reset=2', { limit: 3, remaining: 0, reset: 2 }],
    ['  LIMIT=30 ,remaining=29,reset=2  ', { limit: 30, remaining: 29, reset: 2 }],
    ['remaining=5', { remaining: 5 }],
    ['limit=30;w=2, remaining=29', { limit: 30, remaining: 29 }],
    ['limit=30, flag, remaining=29', { limit: 30, remaining: 29 }],
    ['limit=30, remaining=7, remaining=9', { limit: 30, remaining: 7 }],
    ['limit="30", reset=1.5', { limit: 30, reset: 1.5 }],
    ['limit=abc, remaining=29', { remaining: 29 }],
    ['limit=30 junk, remaining=29', { remaining: 29 }],
    ['limit=-1, remaining=29', { remaining: 29 }],
    ['policy=x, other=3', {}],
    // Not a dictionary: the list forms go to parseStructuredRateLimit.
    ['"30-in-2sec"; r=29; t=2', undefined],
    ['default;r=5;t=1', undefined],
    ['30', undefined],
    ['', undefined],
    ['=5', undefined],
  ])('%j → %j', (value, expected) => {
    expect(parseRateLimitDictionary(value)).toEqual(expected);
  });

  it('notes a malformed member and a non-numeric value at debug', () => {
    const logger = recordingLogger();
    parseRateLimitDictionary('limit=30 junk, remaining=x', logger);
    expect(logger.entries.map((e) => e.msg)).toEqual([
      'rate-limit: skipped malformed dictionary member',
      'rate-limit: ignored dictionary member',
    ]);
  });
});

describe('windowOfItem', () => {
  it.each<[string, number | undefined, 'minute' | 'daily']>([
    ['minute', 60, 'minute'],
    ['daily', 86400, 'daily'],
    ['Daily', undefined, 'daily'],
    ['DAILY-quota', 60, 'daily'],
    ['requests_per_day', undefined, 'daily'],
    ['per-day', 60, 'daily'],
    ['DAY', undefined, 'daily'],
    ['default', 86400, 'daily'],
    ['default', 43200, 'daily'],
    ['default', 43199, 'minute'],
    ['default', undefined, 'minute'],
    ['hourly', 3600, 'minute'],
  ])('%j with w=%j → %s', (name, w, expected) => {
    expect(windowOfItem(name, w)).toBe(expected);
  });
});

// ---------------------------------------------------------------------------

describe('parseRateLimitHeaders', () => {
  const modelBeam429 = {
    'X-RateLimit-Limit': '60',
    'X-RateLimit-Remaining': '0',
    'X-RateLimit-Daily-Limit': '1000',
    'X-RateLimit-Daily-Remaining': '517',
    'X-RateLimit-Type': 'minute',
    'Retry-After': '18',
  };
  const modelBeamSnapshot: RateLimitSnapshot = {
    minute: { limit: 60, remaining: 0 },
    daily: { limit: 1000, remaining: 517 },
    type: 'minute',
    retryAfterMs: 18_000,
    present: true,
  };

  it('reads the full ModelBeam 429 set', () => {
    expect(parse(modelBeam429)).toEqual(modelBeamSnapshot);
  });

  describe.each<[string, () => HeaderSource]>([
    ['WHATWG Headers', () => new Headers(modelBeam429)],
    ['plain object', () => ({ ...modelBeam429 })],
    ['plain object, lower-case (node:http)', () => Object.fromEntries(Object.entries(modelBeam429).map(([k, v]) => [k.toLowerCase(), v]))],
    ['plain object with string[] values', () => Object.fromEntries(Object.entries(modelBeam429).map(([k, v]) => [k, ['', v, 'ignored']]))],
    ['array of pairs', () => Object.entries(modelBeam429) as [string, string][]],
    ['Map', () => new Map(Object.entries(modelBeam429))],
    ['generator of pairs', () => (function* gen(): Generator<[string, string]> { yield* Object.entries(modelBeam429); })()],
    ['Headers-like object with get()', () => {
      const lower = new Map(Object.entries(modelBeam429).map(([k, v]) => [k.toLowerCase(), v]));
      return { get: (name: string) => lower.get(name.toLowerCase()) ?? null } as unknown as Headers;
    }],
  ])('container: %s', (_name, make) => {
    it('gives the same snapshot', () => {
      expect(parseRateLimitHeaders(make(), { now: NOW })).toEqual(modelBeamSnapshot);
    });
  });

  describe('plain-object values', () => {
    it.each<[unknown, number | undefined]>([
      ['7', 7],
      [7, 7],
      [7.8, 7],
      [['7'], 7],
      [['', '  ', '7', '8'], 7],
      [[null, 7, '8'], 7],
      [[], undefined],
      [[''], undefined],
      [undefined, undefined],
      [null, undefined],
      ['', undefined],
      [true, undefined],
      [{ value: 7 }, undefined],
      [[['7']], undefined],
    ])('X-RateLimit-Limit: %j → %j', (value, expected) => {
      expect(parse({ 'X-RateLimit-Limit': value }).minute.limit).toBe(expected);
    });

    it('takes the first non-empty of duplicate names (different case or repeated pairs)', () => {
      expect(parse({ 'x-ratelimit-limit': '', 'X-RateLimit-Limit': '5', 'X-RATELIMIT-LIMIT': '6' }).minute.limit).toBe(5);
      const pairs: [string, string][] = [['x-ratelimit-limit', '5'], ['X-RateLimit-Limit', '6']];
      expect(parseRateLimitHeaders(pairs).minute.limit).toBe(5);
    });

    it('ignores inherited properties', () => {
      const proto = { 'x-ratelimit-limit': '5' };
      expect(parse(Object.create(proto) as Record<string, unknown>).present).toBe(false);
    });
  });

  describe('header names are case-insensitive', () => {
    it.each([
      'x-ratelimit-remaining',
      'X-RateLimit-Remaining',
      'X-RATELIMIT-REMAINING',
      'x-RateLimit-remaining',
    ])('%s', (name) => {
      expect(parse({ [name]: '3' }).minute.remaining).toBe(3);
      expect(parseRateLimitHeaders([[name, '3']]).minute.remaining).toBe(3);
    });

    it.each(['RateLimit', 'ratelimit', 'RATELIMIT'])('%s', (name) => {
      expect(parse({ [name]: '"m";r=3' }).minute.remaining).toBe(3);
    });
  });

  describe('limits and remaining', () => {
    it.each<[string, unknown, number | undefined]>([
      ['X-RateLimit-Limit', '42', 42],
      ['X-RateLimit-Limit', ' 42 ', 42],
      ['X-RateLimit-Limit', '4.2', 4],
      ['X-RateLimit-Limit', '0', 0],
      ['X-RateLimit-Limit', '-1', undefined],
      ['X-RateLimit-Limit', 'NaN', undefined],
      ['X-RateLimit-Limit', 'Infinity', undefined],
      ['X-RateLimit-Limit', '', undefined],
      ['X-RateLimit-Limit', 'abc', undefined],
      ['X-RateLimit-Limit', '1e400', undefined],
      ['X-RateLimit-Limit', '2000000000', undefined],
      ['X-RateLimit-Limit', -3, undefined],
      ['X-RateLimit-Limit', Number.NaN, undefined],
      ['X-RateLimit-Remaining', '17', 17],
      ['X-RateLimit-Remaining', 'unlimited', undefined],
    ])('%s: %j → %j', (name, value, expected) => {
      const s = parse({ [name]: value });
      const field = name.endsWith('Limit') ? 'limit' : 'remaining';
      expect(s.minute[field]).toBe(expected);
      expect(s.present).toBe(expected !== undefined);
    });

    it.each<[unknown, unknown, { limit?: number; remaining?: number }]>([
      ['1000', '517', { limit: 1000, remaining: 517 }],
      ['-1', '-1', {}],
      ['', '5', { remaining: 5 }],
      ['100', 'x', { limit: 100 }],
    ])('daily: limit %j, remaining %j → %j', (limit, remaining, expected) => {
      expect(parse({ 'X-RateLimit-Daily-Limit': limit, 'X-RateLimit-Daily-Remaining': remaining }).daily).toEqual(expected);
    });

    it('logs an ignored value at debug', () => {
      const logger = recordingLogger();
      parseRateLimitHeaders({ 'X-RateLimit-Limit': '-5' }, { now: NOW, logger });
      expect(logger.entries).toHaveLength(1);
      expect(logger.entries[0]?.obj).toMatchObject({ header: 'x-ratelimit-limit', value: '-5' });
    });

    it('truncates a long ignored value in the log', () => {
      const logger = recordingLogger();
      parseRateLimitHeaders({ 'X-RateLimit-Limit': 'x'.repeat(500) }, { now: NOW, logger });
      const logged = (logger.entries[0]?.obj as { value: string }).value;
      expect(logged.length).toBeLessThanOrEqual(101);
    });
  });

  describe('remaining above limit is clamped', () => {
    it.each<[Record<string, string>, 'minute' | 'daily', { limit?: number; remaining?: number; windowMs?: number }]>([
      [{ 'X-RateLimit-Limit': '10', 'X-RateLimit-Remaining': '50' }, 'minute', { limit: 10, remaining: 10 }],
      [{ 'X-RateLimit-Limit': '10', 'X-RateLimit-Remaining': '10' }, 'minute', { limit: 10, remaining: 10 }],
      [{ 'X-RateLimit-Limit': '10', 'X-RateLimit-Remaining': '9' }, 'minute', { limit: 10, remaining: 9 }],
      [{ 'X-RateLimit-Remaining': '50' }, 'minute', { remaining: 50 }],
      [{ 'X-RateLimit-Daily-Limit': '100', 'X-RateLimit-Daily-Remaining': '101' }, 'daily', { limit: 100, remaining: 100 }],
      [{ 'RateLimit-Policy': '"m";q=5;w=60', RateLimit: '"m";r=9' }, 'minute', { limit: 5, remaining: 5, windowMs: 60_000 }],
    ])('%j → %s %j', (headers, window, expected) => {
      expect(parse(headers)[window]).toEqual(expected);
    });

    it('logs the clamp at debug', () => {
      const logger = recordingLogger();
      parseRateLimitHeaders({ 'X-RateLimit-Limit': '10', 'X-RateLimit-Remaining': '50' }, { logger });
      expect(logger.entries).toEqual([
        { obj: { window: 'minute', limit: 10, remaining: 50 }, msg: 'rate-limit: remaining above limit, clamped' },
      ]);
    });
  });

  describe('X-RateLimit-Type', () => {
    it.each<[unknown, 'minute' | 'daily' | undefined]>([
      ['minute', 'minute'],
      ['daily', 'daily'],
      ['Daily', 'daily'],
      [' MINUTE ', 'minute'],
      ['hourly', undefined],
      ['', undefined],
      ['minute,daily', undefined],
      [1, undefined],
      ['x'.repeat(1000), undefined],
    ])('%j → %j', (value, expected) => {
      const s = parse({ 'X-RateLimit-Type': value });
      expect(s.type).toBe(expected);
      expect(s.present).toBe(expected !== undefined);
      expect('type' in s).toBe(expected !== undefined);
    });
  });

  describe('X-RateLimit-Reset → minute.resetInMs', () => {
    const nowSec = NOW / 1000;
    it.each<[unknown, number | undefined]>([
      ['30', 30_000],
      ['0', 0],
      [String(nowSec + 45), 45_000],
      [String(nowSec - 45), 0],
      ['1704067200', 0],
      ['1704067199', undefined], // delta seconds: 54 years is absurd
      [String(nowSec + 365 * 86400), undefined], // a year ahead: absurd
      ['-5', undefined],
      ['soon', undefined],
    ])('%j → %j', (value, expected) => {
      expect(parse({ 'X-RateLimit-Reset': value }).minute.resetInMs).toBe(expected);
    });
  });

  describe('Retry-After / retry-after-ms', () => {
    it.each<[string, Record<string, unknown>, number | undefined]>([
      ['delta seconds', { 'Retry-After': '120' }, 120_000],
      ['zero', { 'Retry-After': '0' }, 0],
      ['decimal seconds', { 'Retry-After': '1.5' }, 1500],
      ['IMF-fixdate', { 'Retry-After': imf(NOW + 90_000) }, 90_000],
      ['RFC 850 date', { 'Retry-After': 'Wednesday, 15-Jan-25 12:00:05 GMT' }, 5000],
      ['asctime date', { 'Retry-After': 'Wed Jan 15 12:00:07 2025' }, 7000],
      ['past date', { 'Retry-After': 'Sun, 06 Nov 1994 08:49:37 GMT' }, 0],
      ['a year: absurd', { 'Retry-After': String(365 * 86400) }, undefined],
      ['exactly the 2-day cap', { 'Retry-After': String(2 * 86400) }, DEFAULT_MAX_RETRY_AFTER_MS],
      ['just over the cap', { 'Retry-After': String(2 * 86400 + 1) }, undefined],
      ['date a year ahead', { 'Retry-After': imf(NOW + 365 * 86_400_000) }, undefined],
      ['negative', { 'Retry-After': '-1' }, undefined],
      ['NaN', { 'Retry-After': 'NaN' }, undefined],
      ['garbage', { 'Retry-After': 'later' }, undefined],
      ['number value', { 'Retry-After': 3 }, 3000],
      ['retry-after-ms alone', { 'retry-after-ms': '250' }, 250],
      ['retry-after-ms decimal', { 'retry-after-ms': '250.4' }, 250],
      ['retry-after-ms wins', { 'retry-after-ms': '250', 'Retry-After': '10' }, 250],
      ['retry-after-ms wins even when 0', { 'retry-after-ms': '0', 'Retry-After': '10' }, 0],
      ['invalid retry-after-ms falls back', { 'retry-after-ms': '-250', 'Retry-After': '10' }, 10_000],
      ['absurd retry-after-ms falls back', { 'retry-after-ms': '1e12', 'Retry-After': '10' }, 10_000],
      ['huge retry-after-ms falls back', { 'retry-after-ms': '999999999999', 'Retry-After': '10' }, 10_000],
      ['both invalid', { 'retry-after-ms': 'x', 'Retry-After': 'y' }, undefined],
    ])('%s', (_why, headers, expected) => {
      const s = parse(headers);
      expect(s.retryAfterMs).toBe(expected);
      expect('retryAfterMs' in s).toBe(expected !== undefined);
      expect(s.present).toBe(expected !== undefined);
    });

    it.each<[number | undefined, string, number | undefined]>([
      [60_000, '60', 60_000],
      [60_000, '61', undefined],
      [0, '0', 0],
      [0, '1', undefined],
      [Number.NaN, '3600', 3_600_000], // invalid option → default
      [-1, '3600', 3_600_000],
      [undefined, '172800', 172_800_000],
    ])('maxRetryAfterMs %j, Retry-After %j → %j', (maxRetryAfterMs, value, expected) => {
      const options = maxRetryAfterMs === undefined ? {} : { maxRetryAfterMs };
      expect(parse({ 'Retry-After': value }, options).retryAfterMs).toBe(expected);
    });

    it('uses Date.now() when no `now` is given (or it is not finite)', () => {
      const inAMinute = imf(Date.now() + 60_000);
      for (const options of [undefined, {}, { now: Number.NaN }]) {
        const ms = parseRateLimitHeaders({ 'retry-after': inAMinute }, options).retryAfterMs ?? -1;
        expect(ms).toBeGreaterThan(55_000);
        expect(ms).toBeLessThanOrEqual(60_000);
      }
    });

    it('logs an ignored Retry-After at debug', () => {
      const logger = recordingLogger();
      parseRateLimitHeaders({ 'Retry-After': String(365 * 86400) }, { now: NOW, logger });
      expect(logger.entries).toHaveLength(1);
      expect(logger.entries[0]?.obj).toMatchObject({ header: 'retry-after', reason: 'longer than maxRetryAfterMs' });
    });
  });

  describe('IETF structured fields', () => {
    it.each<[string, Record<string, string>, Partial<RateLimitSnapshot>]>([
      ['policy + ratelimit, two windows', {
        'RateLimit-Policy': '"minute";q=60;w=60, "daily";q=1000;w=86400',
        RateLimit: '"minute";r=42;t=18, "daily";r=900;t=3600',
      }, {
        minute: { limit: 60, remaining: 42, resetInMs: 18_000, windowMs: 60_000 },
        daily: { limit: 1000, remaining: 900, resetInMs: 3_600_000, windowMs: 86_400_000 },
      }],
      ['RateLimit only', { RateLimit: '"minute";r=42;t=18' }, { minute: { remaining: 42, resetInMs: 18_000 }, daily: {} }],
      ['policy only', { 'RateLimit-Policy': '"minute";q=60;w=60' }, { minute: { limit: 60, windowMs: 60_000 }, daily: {} }],
      ['daily by window length, via the policy name', {
        'RateLimit-Policy': '"p1";q=10;w=60, "p2";q=500;w=43200',
        RateLimit: '"p2";r=7;t=100, "p1";r=3;t=5',
      }, {
        minute: { limit: 10, remaining: 3, resetInMs: 5000, windowMs: 60_000 },
        daily: { limit: 500, remaining: 7, resetInMs: 100_000, windowMs: 43_200_000 },
      }],
      ['daily by name', { RateLimit: '"per-day";r=7' }, { minute: {}, daily: { remaining: 7 } }],
      ['unknown name without policy → minute', { RateLimit: 'default;r=7;t=30' }, { minute: { remaining: 7, resetInMs: 30_000 }, daily: {} }],
      ['w on the RateLimit item itself', { RateLimit: '"x";r=7;w=86400' }, { minute: {}, daily: { remaining: 7 } }],
      ['first item per window wins', {
        'RateLimit-Policy': '"burst";q=10;w=1, "minute";q=60;w=60',
        RateLimit: '"burst";r=2;t=1, "minute";r=50;t=30',
      }, { minute: { limit: 10, remaining: 2, resetInMs: 1000, windowMs: 1000 }, daily: {} }],
      ['malformed item skipped, others used', {
        RateLimit: '"minute";r=oops junk, "daily";r=99',
      }, { minute: {}, daily: { remaining: 99 } }],
      ['decimal r floored', { RateLimit: '"m";r=4.7' }, { minute: { remaining: 4 }, daily: {} }],
      ['absurd q ignored', { 'RateLimit-Policy': '"m";q=5000000000' }, { minute: {}, daily: {}, present: false }],
      ['absurd t ignored', { RateLimit: '"m";r=1;t=99999999' }, { minute: { remaining: 1 }, daily: {} }],
      ['legacy drafts', {
        'RateLimit-Limit': '100', 'RateLimit-Remaining': '50', 'RateLimit-Reset': '30',
      }, { minute: { limit: 100, remaining: 50, resetInMs: 30_000 }, daily: {} }],
      ['legacy list form: first member', {
        'RateLimit-Limit': '10, 10;w=1, 50;w=60', 'RateLimit-Remaining': '9;w=1',
      }, { minute: { limit: 10, remaining: 9 }, daily: {} }],
      ['legacy RateLimit-Reset is delta seconds only', { 'RateLimit-Reset': String(NOW / 1000 + 30) }, { minute: {}, daily: {}, present: false }],
      ['legacy invalid ignored', { 'RateLimit-Limit': 'abc', 'RateLimit-Reset': '-1' }, { minute: {}, daily: {}, present: false }],
    ])('%s', (_why, headers, expected) => {
      expect(parse(headers)).toMatchObject({ present: true, ...expected });
      expect(parse(headers).minute).toEqual(expected.minute);
      expect(parse(headers).daily).toEqual(expected.daily);
    });

    it('ignores a non-string structured value', () => {
      expect(parse({ RateLimit: 5, 'RateLimit-Policy': 6 }).present).toBe(false);
    });
  });

  /**
   * The exact header strings real server-side limiters send (captured from
   * express 5.3.0 + express-rate-limit 8.7.5 and fastify 5.12.8 +
   * @fastify/rate-limit 11.2.0, limit 3 per 2 s, on loopback; the live check
   * is test/limiters-headers.test.ts). `now` is the response time; the legacy
   * express reset is epoch seconds (Math.ceil of the window's end).
   */
  describe('real server-side limiters, every dialect', () => {
    const AT = 1_796_617_640_400;
    it.each<[string, Record<string, string>, RateLimitSnapshot]>([
      ["express-rate-limit draft-6", {
        'ratelimit-limit': '3', 'ratelimit-policy': '3;w=2', 'ratelimit-remaining': '2', 'ratelimit-reset': '2',
      }, { minute: { limit: 3, remaining: 2, resetInMs: 2000, windowMs: 2000 }, daily: {}, present: true }],
      ["express-rate-limit draft-6, 429", {
        'ratelimit-limit': '3', 'ratelimit-policy': '3;w=2', 'ratelimit-remaining': '0', 'ratelimit-reset': '2', 'retry-after': '2',
      }, { minute: { limit: 3, remaining: 0, resetInMs: 2000, windowMs: 2000 }, daily: {}, retryAfterMs: 2000, present: true }],
      ["express-rate-limit draft-7", {
        ratelimit: 'limit=3, remaining=2, reset=2', 'ratelimit-policy': '3;w=2',
      }, { minute: { limit: 3, remaining: 2, resetInMs: 2000, windowMs: 2000 }, daily: {}, present: true }],
      ["express-rate-limit draft-7 (the issue's strings)", {
        ratelimit: 'limit=30, remaining=29, reset=2', 'ratelimit-policy': '30;w=2',
      }, { minute: { limit: 30, remaining: 29, resetInMs: 2000, windowMs: 2000 }, daily: {}, present: true }],
      ["express-rate-limit draft-7, 429", {
        ratelimit: 'limit=3, remaining=0, reset=2', 'ratelimit-policy': '3;w=2', 'retry-after': '2',
      }, { minute: { limit: 3, remaining: 0, resetInMs: 2000, windowMs: 2000 }, daily: {}, retryAfterMs: 2000, present: true }],
      ["express-rate-limit draft-8", {
        ratelimit: '"3-in-2sec"; r=2; t=2', 'ratelimit-policy': '"3-in-2sec"; q=3; w=2; pk=:MTJjYTE3YjQ5YWYy:',
      }, { minute: { limit: 3, remaining: 2, resetInMs: 2000, windowMs: 2000 }, daily: {}, present: true }],
      ["express-rate-limit draft-8, 429", {
        ratelimit: '"3-in-2sec"; r=0; t=2', 'ratelimit-policy': '"3-in-2sec"; q=3; w=2; pk=:MTJjYTE3YjQ5YWYy:', 'retry-after': '2',
      }, { minute: { limit: 3, remaining: 0, resetInMs: 2000, windowMs: 2000 }, daily: {}, retryAfterMs: 2000, present: true }],
      ["express-rate-limit legacyHeaders (reset in epoch seconds)", {
        'x-ratelimit-limit': '3', 'x-ratelimit-remaining': '2', 'x-ratelimit-reset': '1796617643',
      }, { minute: { limit: 3, remaining: 2, resetInMs: 2600 }, daily: {}, present: true }],
      ["express-rate-limit legacyHeaders, 429", {
        'retry-after': '2', 'x-ratelimit-limit': '3', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '1796617643',
      }, { minute: { limit: 3, remaining: 0, resetInMs: 2600 }, daily: {}, retryAfterMs: 2000, present: true }],
      ["express-rate-limit with no headers, 429", {}, { minute: {}, daily: {}, present: false }],
      ["@fastify/rate-limit default (reset in seconds to go)", {
        'x-ratelimit-limit': '3', 'x-ratelimit-remaining': '2', 'x-ratelimit-reset': '2',
      }, { minute: { limit: 3, remaining: 2, resetInMs: 2000 }, daily: {}, present: true }],
      ["@fastify/rate-limit default, 429", {
        'retry-after': '2', 'x-ratelimit-limit': '3', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '2',
      }, { minute: { limit: 3, remaining: 0, resetInMs: 2000 }, daily: {}, retryAfterMs: 2000, present: true }],
      ["@fastify/rate-limit enableDraftSpec", {
        'ratelimit-limit': '3', 'ratelimit-remaining': '2', 'ratelimit-reset': '2',
      }, { minute: { limit: 3, remaining: 2, resetInMs: 2000 }, daily: {}, present: true }],
      ["@fastify/rate-limit enableDraftSpec, 429", {
        'ratelimit-limit': '3', 'ratelimit-remaining': '0', 'ratelimit-reset': '2', 'retry-after': '2',
      }, { minute: { limit: 3, remaining: 0, resetInMs: 2000 }, daily: {}, retryAfterMs: 2000, present: true }],
    ])('%s', (_why, headers, expected) => {
      expect(parseRateLimitHeaders(headers, { now: AT })).toEqual(expected);
      expect(parseRateLimitHeaders(new Headers(headers), { now: AT })).toEqual(expected);
    });

    it.each<[string, string, number]>([
      // express-rate-limit legacyHeaders: epoch seconds, told apart by magnitude (EPOCH_SECONDS_THRESHOLD, 2024-01-01).
      ['epoch seconds, 2.6 s ahead', '1796617643', 2600],
      ['epoch seconds in the past', '1796617640', 0],
      // ModelBeam and @fastify/rate-limit: seconds to go.
      ['seconds to go', '2', 2000],
      ['a day to go', '86400', 86_400_000],
    ])('X-RateLimit-Reset: %s', (_why, value, resetInMs) => {
      expect(parseRateLimitHeaders({ 'x-ratelimit-reset': value }, { now: AT }).minute.resetInMs).toBe(resetInMs);
    });

    it.each<[string, Record<string, string>, RateLimitSnapshot['minute'], RateLimitSnapshot['daily']]>([
      ['a numeric policy item gives the quota; q wins over it', { 'ratelimit-policy': '7;q=9;w=5' }, { limit: 9, windowMs: 5000 }, {}],
      ['numeric policy items per window', { 'ratelimit-policy': '30;w=2, 1000;w=86400' }, { limit: 30, windowMs: 2000 }, { limit: 1000, windowMs: 86_400_000 }],
      ['draft-7 dictionary goes to the daily window when the policy is a day long', {
        ratelimit: 'limit=1000, remaining=999, reset=3600', 'ratelimit-policy': '1000;w=86400',
      }, {}, { limit: 1000, remaining: 999, resetInMs: 3_600_000, windowMs: 86_400_000 }],
      ['draft-7 dictionary without a policy → minute', { ratelimit: 'limit=30, remaining=29, reset=2' }, { limit: 30, remaining: 29, resetInMs: 2000 }, {}],
      ['draft-7 remaining above limit is clamped', { ratelimit: 'limit=3, remaining=9' }, { limit: 3, remaining: 3 }, {}],
      ['draft-7 below X-RateLimit-*', {
        ratelimit: 'limit=30, remaining=29, reset=2', 'x-ratelimit-limit': '10', 'x-ratelimit-remaining': '4', 'x-ratelimit-reset': '1',
      }, { limit: 10, remaining: 4, resetInMs: 1000 }, {}],
      ['draft-7 above RateLimit-Limit/-Remaining/-Reset', {
        ratelimit: 'limit=30, remaining=29, reset=2', 'ratelimit-limit': '10', 'ratelimit-remaining': '4', 'ratelimit-reset': '1',
      }, { limit: 30, remaining: 29, resetInMs: 2000 }, {}],
      ['draft-7 with an absurd reset keeps the rest', { ratelimit: 'limit=30, remaining=29, reset=99999999' }, { limit: 30, remaining: 29 }, {}],
      ['w=0 is not a window', { 'ratelimit-policy': '30;w=0' }, { limit: 30 }, {}],
      ['an absurd w is ignored (the item is still a daily one)', { 'ratelimit-policy': '"m";q=5;w=9999999999' }, {}, { limit: 5 }],
      ['w is not bounded by maxRetryAfterMs: a window is not a wait', { 'ratelimit-policy': '"d";q=5;w=2592000' }, {}, { limit: 5, windowMs: 2_592_000_000 }],
      ['fractional w is rounded to the ms', { 'ratelimit-policy': '"m";q=5;w=1.5' }, { limit: 5, windowMs: 1500 }, {}],
      ['policy w alone is present', { 'ratelimit-policy': '"m";w=2' }, { windowMs: 2000 }, {}],
    ])('%s', (_why, headers, minute, daily) => {
      const s = parse(headers);
      expect(s.minute).toEqual(minute);
      expect(s.daily).toEqual(daily);
      expect(s.present).toBe(true);
    });
  });

  describe('precedence', () => {
    const all = {
      'X-RateLimit-Limit': '1',
      'X-RateLimit-Remaining': '1',
      'X-RateLimit-Reset': '1',
      'X-RateLimit-Daily-Limit': '1',
      'X-RateLimit-Daily-Remaining': '1',
      'RateLimit-Policy': '"m";q=2;w=60, "d";q=2;w=86400',
      RateLimit: '"m";r=2;t=2, "d";r=2;t=2',
      'RateLimit-Limit': '3',
      'RateLimit-Remaining': '3',
      'RateLimit-Reset': '3',
    };
    type Key = keyof typeof all;
    const without = (...keys: Key[]): Record<string, string> =>
      Object.fromEntries(Object.entries(all).filter(([k]) => !keys.includes(k as Key)));

    it.each<[string, Record<string, string>, RateLimitSnapshot['minute'], RateLimitSnapshot['daily']]>([
      ['X-RateLimit-* first', all, { limit: 1, remaining: 1, resetInMs: 1000, windowMs: 60_000 }, { limit: 1, remaining: 1, resetInMs: 2000, windowMs: 86_400_000 }],
      ['then structured', without('X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset', 'X-RateLimit-Daily-Limit', 'X-RateLimit-Daily-Remaining'),
        { limit: 2, remaining: 2, resetInMs: 2000, windowMs: 60_000 }, { limit: 2, remaining: 2, resetInMs: 2000, windowMs: 86_400_000 }],
      ['then legacy', without('X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset', 'X-RateLimit-Daily-Limit', 'X-RateLimit-Daily-Remaining', 'RateLimit-Policy', 'RateLimit'),
        { limit: 3, remaining: 3, resetInMs: 3000 }, {}],
      ['per field: only X-RateLimit-Limit', without('X-RateLimit-Remaining', 'X-RateLimit-Reset'),
        { limit: 1, remaining: 1, resetInMs: 2000, windowMs: 60_000 }, { limit: 1, remaining: 1, resetInMs: 2000, windowMs: 86_400_000 }],
    ])('%s', (_why, headers, minute, daily) => {
      const s = parse(headers);
      expect(s.minute).toEqual(minute);
      expect(s.daily).toEqual(daily);
    });

    it('an invalid X-RateLimit value falls back to the IETF one', () => {
      expect(parse({ 'X-RateLimit-Limit': 'abc', 'RateLimit-Policy': '"m";q=2' }).minute.limit).toBe(2);
    });
  });

  describe('present', () => {
    it.each<[string, Record<string, unknown>, boolean]>([
      ['no headers', {}, false],
      ['unrelated headers', { 'content-type': 'application/json', 'x-request-id': 'abc', date: imf(NOW), 'retry-count': '3' }, false],
      ['only invalid values', { 'X-RateLimit-Limit': 'x', 'Retry-After': 'y', 'X-RateLimit-Type': 'z' }, false],
      ['blank values', { 'X-RateLimit-Limit': '', 'Retry-After': '  ' }, false],
      ['remaining 0', { 'X-RateLimit-Remaining': '0' }, true],
      ['type only', { 'X-RateLimit-Type': 'daily' }, true],
      ['retry-after only', { 'Retry-After': '0' }, true],
      ['reset only', { 'X-RateLimit-Reset': '5' }, true],
      ['daily reset only', { RateLimit: '"day";t=5' }, true],
    ])('%s → %s', (_why, headers, expected) => {
      expect(parse(headers).present).toBe(expected);
    });

    it('returns empty windows and no optional keys when nothing is present', () => {
      expect(parse({ 'content-type': 'text/plain' })).toEqual({ minute: {}, daily: {}, present: false });
      expect(Object.keys(parse({}))).toEqual(['minute', 'daily', 'present']);
    });

    it('does not log or look further when nothing relevant is present', () => {
      const logger = recordingLogger();
      parseRateLimitHeaders({ 'content-type': 'text/plain', 'x-powered-by': 'x', 'ratelimited': 'no' }, { logger });
      expect(logger.entries).toEqual([]);
    });

    it('returns a fresh object every call', () => {
      const a = parse({});
      a.minute.limit = 5;
      expect(parse({}).minute).toEqual({});
    });
  });

  describe('never throws on garbage', () => {
    const throwing = (): never => {
      throw new Error('boom');
    };
    const cases: [string, unknown][] = [
      ['null', null],
      ['undefined', undefined],
      ['a number', 42],
      ['a string', 'X-RateLimit-Limit: 5'],
      ['a symbol', Symbol('x')],
      ['a function', () => 1],
      ['an array of non-pairs', [1, 'a', null, [], [null, null], [5, '5'], { 0: 'x-ratelimit-limit' }]],
      ['values of every type', {
        'X-RateLimit-Limit': Symbol('x'),
        'X-RateLimit-Remaining': 10n,
        'X-RateLimit-Daily-Limit': () => 5,
        'X-RateLimit-Daily-Remaining': { toString: throwing },
        'X-RateLimit-Type': ['minute'],
        'X-RateLimit-Reset': [Symbol('y')],
        'Retry-After': new Date(),
        'retry-after-ms': Number.NEGATIVE_INFINITY,
        RateLimit: ['"m";r=1;t=', 5],
        'RateLimit-Policy': { q: 1 },
        'RateLimit-Limit': Number.MAX_VALUE,
        'RateLimit-Remaining': -0,
        'RateLimit-Reset': '\u0000\uffff',
      }],
      ['a throwing getter', Object.defineProperty({}, 'x-ratelimit-limit', { get: throwing, enumerable: true })],
      ['a throwing get()', { get: throwing }],
      ['a throwing iterator', { [Symbol.iterator]: throwing }],
      ['an iterator yielding garbage', { *[Symbol.iterator]() { yield 1; yield ['retry-after', '5']; yield null; } }],
      ['a throwing proxy', new Proxy({}, { ownKeys: throwing, get: throwing, has: throwing, getOwnPropertyDescriptor: throwing })],
    ];

    it.each(cases)('%s', (_why, input) => {
      const logger = recordingLogger();
      let s: RateLimitSnapshot | undefined;
      expect(() => {
        s = parseRateLimitHeaders(input as HeaderSource, { now: NOW, logger });
      }).not.toThrow();
      for (const n of numbersOf(s!)) {
        expect(Number.isFinite(n) && n >= 0).toBe(true);
      }
    });

    it('an iterator yielding garbage still reads the valid pair', () => {
      const source = { *[Symbol.iterator]() { yield 1; yield ['retry-after', '5']; } };
      expect(parseRateLimitHeaders(source as unknown as HeaderSource, { now: NOW }).retryAfterMs).toBe(5000);
    });

    it('survives a throwing logger, and keeps every valid value beside the one it was told about', () => {
      const logger: Logger = { ...recordingLogger(), debug: throwing };
      const headers = { 'x-ratelimit-limit': 'bad', 'x-ratelimit-remaining': '5', 'x-ratelimit-daily-limit': '900', 'retry-after': '3' };
      expect(() => parseRateLimitHeaders(headers, { now: NOW, logger })).not.toThrow();
      const withLogger = parseRateLimitHeaders(headers, { now: NOW, logger });
      expect(withLogger).toEqual(parseRateLimitHeaders(headers, { now: NOW }));
      expect(withLogger).toMatchObject({ minute: { remaining: 5 }, daily: { limit: 900 }, retryAfterMs: 3000 });
    });

    it('survives garbage options', () => {
      const options = { now: 'yesterday', maxRetryAfterMs: 'forever', logger: undefined } as unknown as { now: number };
      expect(parseRateLimitHeaders({ 'retry-after': '5' }, options).retryAfterMs).toBe(5000);
    });
  });

  it('property: random strings in every header give only finite, non-negative numbers', () => {
    const names = [
      'X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Daily-Limit', 'X-RateLimit-Daily-Remaining',
      'X-RateLimit-Type', 'X-RateLimit-Reset', 'Retry-After', 'retry-after-ms', 'RateLimit-Policy', 'RateLimit',
      'RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset',
    ];
    const alphabet = '0123456789.-+eE ,;="\\:?*abcdqrtwGMTSunNov\t\u00e9';
    const fragments = ['1e400', 'Infinity', 'NaN', '-0', '"minute";r=', ';q=', ';w=86400', ';t=', 'Sun, 06 Nov 1994 08:49:37 GMT', '999999999999999999999'];
    let seed = 42;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const randomString = (): string => {
      let s = '';
      const parts = rand(6);
      for (let p = 0; p < parts; p++) {
        if (rand(3) === 0) s += fragments[rand(fragments.length)];
        else for (let k = rand(12); k > 0; k--) s += alphabet[rand(alphabet.length)];
      }
      return s;
    };
    for (let iteration = 0; iteration < 3000; iteration++) {
      const headers: Record<string, string> = {};
      for (const name of names) if (rand(3) !== 0) headers[name] = randomString();
      const s = parseRateLimitHeaders(headers, { now: NOW });
      for (const n of numbersOf(s)) {
        expect(Number.isFinite(n) && n >= 0 && Number.isInteger(n), JSON.stringify(headers)).toBe(true);
      }
      if (s.minute.limit !== undefined && s.minute.remaining !== undefined) expect(s.minute.remaining).toBeLessThanOrEqual(s.minute.limit);
      if (s.daily.limit !== undefined && s.daily.remaining !== undefined) expect(s.daily.remaining).toBeLessThanOrEqual(s.daily.limit);
      if (s.type !== undefined) expect(['minute', 'daily']).toContain(s.type);
      expect(s.present).toBe(numbersOf(s).length > 0 || s.type !== undefined);
    }
  });
});
