/**
 * The one way options are validated, for every options object of the
 * package (scheduler, client, Redis store, fake server, batch): one message
 * shape, one `describe()`, one unknown-key message with a "did you mean".
 *
 * Message shape (p-queue's):
 *   TypeError: Expected `retry.maxAttempts` to be an integer >= 1, got `0` (number)
 *   TypeError: Unknown option `maxConcurent`; expected one of `limits`, …; did you mean `maxConcurrent`?
 *
 * Key lists are tied to their interfaces: write them as
 * `keyList({ a: true, b: true } satisfies Keys<Options>)`, so that a field
 * added to the interface but not to the list (or the reverse) is a type error.
 *
 * Hand-written on purpose: the checks are a dozen small functions, the
 * messages must stay exactly this shape (tests assert them), and a schema
 * library (zod, valibot, ajv) would be a runtime dependency of every user for
 * what is ~150 lines here, with its own message format to translate.
 */

/** One `true` per key of `T`, optional keys included: the shape a key list is checked against with `satisfies`. */
export type Keys<T> = { readonly [K in keyof Required<T>]: true };

/** The keys of a `satisfies Keys<T>` record, in the order written. */
export function keyList<T extends Readonly<Record<string, true>>>(record: T): readonly (keyof T & string)[] {
  return Object.keys(record) as (keyof T & string)[];
}

/**
 * How a bad value appears in a message: `` `"4"` (string) ``, `` `-1` (number) ``, `` `null` (null) ``,
 * `` `{ minute }` (object) `` (an object's keys, never its values), `` `[3 items]` (array) ``. Credentials in a URL
 * (`redis://:password@host`) are masked wherever they appear in a string.
 */
export function describe(value: unknown): string {
  let shown: string;
  try {
    if (typeof value === 'string') shown = JSON.stringify(maskCredentials(value));
    else if (Array.isArray(value)) shown = `[${value.length} item${value.length === 1 ? '' : 's'}]`;
    else if (typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype) {
      const keys = Object.keys(value);
      shown = keys.length === 0 ? '{}' : `{ ${keys.slice(0, 6).join(', ')}${keys.length > 6 ? ', …' : ''} }`;
    } else shown = String(value);
  } catch {
    shown = Object.prototype.toString.call(value);
  }
  return `\`${shown}\` (${value === null ? 'null' : typeof value})`;
}

/** A string as an error message may show it: the credentials of any URL in it (`user:password@`) masked. */
export function maskCredentials(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/?#\s@]*@/gi, '$1***@');
}

/** Throws the one message shape for a bad value. */
export function invalid(name: string, expected: string, value: unknown): never {
  throw new TypeError(`Expected \`${name}\` to be ${expected}, got ${describe(value)}`);
}

/** The same shape for a value that must never be shown (a key, a secret): only its type appears. */
export function invalidSecret(name: string, expected: string, value: unknown): never {
  throw new TypeError(`Expected \`${name}\` to be ${expected}, got a value of type ${value === null ? 'null' : typeof value}`);
}

/** A required option that is missing, with an example of a good one. */
export function missing(name: string, example: string): never {
  throw new TypeError(`Expected \`${name}\` to be set, e.g. ${example}`);
}

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions), case-insensitive. */
function distance(a: string, b: string): number {
  const s = a.toLowerCase();
  const t = b.toLowerCase();
  const d: number[][] = Array.from({ length: s.length + 1 }, (_, i) => [i, ...Array<number>(t.length).fill(0)]);
  for (let j = 1; j <= t.length; j++) d[0]![j] = j;
  for (let i = 1; i <= s.length; i++) {
    for (let j = 1; j <= t.length; j++) {
      const cost = s[i - 1] === t[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && s[i - 1] === t[j - 2] && s[i - 2] === t[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[s.length]![t.length]!;
}

/** The known key a typo most likely meant, if one is close enough. */
export function suggest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  const lower = key.toLowerCase();
  for (const candidate of known) {
    const c = candidate.toLowerCase();
    // A known key that the typo is a prefix of (`minute` for `minuteMs`) counts as close.
    const d = lower.length >= 3 && (c.startsWith(lower) || lower.startsWith(c)) ? 1 : distance(key, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(1, Math.floor(key.length / 3)) ? best : undefined;
}

/** Where a key that is unknown here belongs instead (`maxConcurrent` on a client: a scheduler option), in words. */
export type KeyHints = Readonly<Record<string, string>>;

/** Throws the one unknown-key message. `path` is the parent's name (`''` at the top). */
export function unknownOption(path: string, key: string, known: readonly string[], hints?: KeyHints): never {
  const elsewhere = hints !== undefined && Object.hasOwn(hints, key) ? hints[key] : undefined;
  const guess = elsewhere === undefined ? suggest(key, known) : undefined;
  throw new TypeError(
    `Unknown option \`${path ? `${path}.` : ''}${key}\`; expected one of ${known.map((k) => `\`${k}\``).join(', ')}` +
      (elsewhere !== undefined ? `; ${elsewhere}` : guess ? `; did you mean \`${guess}\`?` : ''),
  );
}

/** Throws for the first key of `value` not in `known`. */
export function checkKeys(path: string, value: object, known: readonly string[], hints?: KeyHints): void {
  for (const key of Object.keys(value)) if (!known.includes(key)) unknownOption(path, key, known, hints);
}

/** The top-level options argument: an object (not null, not an array, not missing) with only known keys. */
export function options(value: unknown, known: readonly string[], hints?: KeyHints): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) invalid('options', 'an object', value);
  checkKeys('', value, known, hints);
  return value as Record<string, unknown>;
}

/**
 * A nested options object (not null, not an array) with only known keys.
 * `undefined` gives `{}`. `path` names it in messages.
 */
export function object(path: string, value: unknown, known: readonly string[]): Record<string, unknown> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) invalid(path, 'an object', value);
  checkKeys(path, value, known);
  return value as Record<string, unknown>;
}

/** Bounds of a number option. */
export interface NumberRule {
  /** @default 0 (-Infinity: any finite number) */
  min?: number;
  /** `> min` instead of `>= min`. */
  exclusiveMin?: boolean;
  /** Inclusive upper bound. */
  max?: number;
  integer?: boolean;
  /** Also accept `Infinity` (meaning "no bound"). */
  allowInfinity?: boolean;
}

/** What a rule asks for, in words: `an integer >= 1 (or Infinity)`, `a number in (0, 1]`, `a finite number`. */
export function expectedNumber({ min = 0, exclusiveMin = false, max, integer = false, allowInfinity = false }: NumberRule): string {
  const kind = integer ? 'an integer' : 'a number';
  let text: string;
  if (max !== undefined) text = `${kind} in ${exclusiveMin ? '(' : '['}${min}, ${max}]`;
  else if (min === -Infinity) text = integer ? 'an integer' : 'a finite number';
  else text = `${kind} ${exclusiveMin ? '>' : '>='} ${min}`;
  return allowInfinity ? `${text} (or Infinity)` : text;
}

/** Checks a number against `rule`; returns it. */
export function checkNumber(name: string, value: unknown, rule: NumberRule = {}): number {
  const { min = 0, exclusiveMin = false, max, integer = false, allowInfinity = false } = rule;
  const ok =
    typeof value === 'number' &&
    !Number.isNaN(value) &&
    (Number.isFinite(value) || (allowInfinity && value === Infinity)) &&
    (exclusiveMin ? value > min : value >= min) &&
    (max === undefined || value <= max) &&
    (!integer || Number.isInteger(value) || value === Infinity);
  if (!ok) invalid(name, expectedNumber(rule), value);
  return value as number;
}

/** `fallback` when `value` is undefined, else the checked number. */
export function num(name: string, value: unknown, fallback: number, rule: NumberRule = {}): number {
  return value === undefined ? fallback : checkNumber(name, value, rule);
}

/** `fallback` when `value` is undefined, else the checked boolean. */
export function bool(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') invalid(name, 'a boolean', value);
  return value;
}

/** `fallback` when `value` is undefined, else a non-empty string. */
export function text(name: string, value: unknown, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || value === '') invalid(name, 'a non-empty string', value);
  return value;
}

/** `fallback` when `value` is undefined, else one of `values`: `'wait' or 'reject'`. */
export function oneOf<const T extends string>(name: string, value: unknown, fallback: T, values: readonly T[]): T {
  if (value === undefined) return fallback;
  if (!values.includes(value as T)) {
    const quoted = values.map((v) => `'${v}'`);
    invalid(name, quoted.length === 1 ? quoted[0]! : `${quoted.slice(0, -1).join(', ')} or ${quoted[quoted.length - 1]}`, value);
  }
  return value as T;
}

/** `undefined` when `value` is, else a function. */
export function fn<T>(name: string, value: unknown): T | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'function') invalid(name, 'a function', value);
  return value as T;
}

/** An object with these methods (a clock, a logger, a store). */
export function hasMethods(value: unknown, methods: readonly string[]): boolean {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    methods.every((m) => typeof (value as Record<string, unknown>)[m] === 'function')
  );
}

/** The clock check every options object shares. */
export function checkClock<T>(value: unknown, fallback: T): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'object' || !hasMethods(value, ['now', 'setTimeout', 'clearTimeout'])) {
    invalid('clock', 'an object with now(), setTimeout() and clearTimeout()', value);
  }
  return value as T;
}

/** The logger check every options object shares: pino, or anything with the methods of pino the engine calls. */
export function checkLogger<T>(value: unknown, fallback: T): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'object' || value === null || !hasMethods(value, LOGGER_METHODS)) {
    const lacking = typeof value === 'object' && value !== null ? LOGGER_METHODS.filter((m) => !hasMethods(value, [m])) : [];
    const which = value === globalThis.console ? 'console' : 'it';
    const why = lacking.length > 0 ? `: ${which} has no ${lacking.map((m) => `${m}()`).join(', ')}` : '';
    throw new TypeError(`Expected \`logger\` to be a pino logger (${LOGGER_METHODS.map((m) => `${m}()`).join(', ')}), got ${describe(value)}${why}`);
  }
  return value as T;
}

/** What the engine calls on a logger (pino's names). */
const LOGGER_METHODS = ['child', 'debug', 'info', 'warn', 'error'] as const;

/** The random-source check: a function returning [0, 1). */
export function checkRandom<T>(value: unknown, fallback: T): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'function') invalid('random', 'a function returning [0, 1)', value);
  return value as T;
}

/** An http(s) URL (of at most `maxLength` characters, when given); the value shown with any credentials masked. */
export function checkHttpUrl(name: string, value: unknown, maxLength?: number): string {
  if (typeof value !== 'string' || (maxLength !== undefined && value.length > maxLength) || !/^https?:\/\//i.test(value) || !URL.canParse(value)) {
    invalid(name, maxLength === undefined ? 'an http(s) URL' : `an http(s) URL of at most ${maxLength} characters`, maskUrl(value));
  }
  return value;
}

/** A URL as an error message may show it: any credentials (`user:password@`) masked. */
export function maskUrl(value: unknown): unknown {
  return typeof value === 'string' ? maskCredentials(value) : value;
}
