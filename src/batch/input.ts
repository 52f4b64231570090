import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { hash } from 'node:crypto';
import { createInterface } from 'node:readline';
import type { InputErrorKind, RawLine } from './types.js';

/** Keys of an input object that are not job parameters. */
export const RESERVED_KEYS = ['id', 'endpoint', 'params', 'meta', 'priority'] as const;

/** Longest accepted explicit `id`. */
export const MAX_ID_LENGTH = 512;

/** A line that can be sent. */
export interface ParsedItem {
  status: 'ok';
  id: string;
  line: number;
  endpoint: string;
  params: Record<string, unknown>;
  meta: unknown;
  priority: number | undefined;
}

/** A line that cannot. Its `id` is still stable, so the results file records it once. */
export interface InvalidItem {
  status: 'invalid';
  id: string;
  line: number;
  kind: InputErrorKind;
  message: string;
  fields?: Record<string, string[]>;
  meta?: unknown;
}

/** A line whose id `skip` said to pass over (already finished, or a repeat). Not validated. */
export interface SkippedItem {
  status: 'skip';
  id: string;
  line: number;
}

export interface ParseDefaults {
  /** Asked once the id is known, before validation: true passes the item over. */
  skip?: (id: string, line: number) => boolean;
  endpoint?: string | undefined;
  params?: Record<string, unknown> | undefined;
  validate: (endpoint: string, params: Record<string, unknown>) => Record<string, string[]> | undefined;
}

/** `line-<n>-<first 12 hex of the SHA-1 of the content>`: stable across runs while the line is unchanged. */
export function autoId(line: number, content: string): string {
  return `line-${line}-${hash('sha1', content, 'hex').slice(0, 12)}`;
}

/** True for `{ line: number, raw: string }` and nothing else. */
export function isRawLine(value: unknown): value is RawLine {
  if (typeof value !== 'object' || value === null) return false;
  const keys = Object.keys(value);
  return (
    keys.length === 2 &&
    typeof (value as RawLine).line === 'number' &&
    typeof (value as RawLine).raw === 'string'
  );
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Turns one input (a raw JSONL line or an object) into an item to send, or an
 * invalid one with the reason. Blank lines give `undefined`.
 *
 * An input object holds `id?`, `endpoint?`, `meta?`, `priority?` and either a
 * `params` object or the parameters themselves at the top level:
 * `{"id":"a1","endpoint":"txt2img","prompt":"a cat","model":"Flux1schnell","width":512,"height":512,"steps":4}`.
 */
export function parseInput(
  input: unknown,
  position: number,
  defaults: ParseDefaults,
): ParsedItem | InvalidItem | SkippedItem | undefined {
  let line = position;
  let value: unknown = input;
  let content: string;
  if (isRawLine(input)) {
    line = input.line;
    let raw = input.raw;
    if (line === 1 && raw.charCodeAt(0) === 0xfeff) raw = raw.slice(1);
    content = raw.trim();
    if (content === '') return undefined;
    try {
      value = JSON.parse(content);
    } catch (error) {
      const id = autoId(line, content);
      if (defaults.skip?.(id, line)) return { status: 'skip', id, line };
      return invalid(id, line, 'malformed-json', `Line ${line} is not valid JSON: ${(error as Error).message}`);
    }
  } else {
    try {
      content = JSON.stringify(input) ?? String(input);
    } catch {
      content = String(input);
    }
  }
  const fallbackId = autoId(line, content);
  if (!isPlainObject(value)) {
    if (defaults.skip?.(fallbackId, line)) return { status: 'skip', id: fallbackId, line };
    const kind = Array.isArray(value) ? 'an array' : value === null ? 'null' : `a ${typeof value}`;
    return invalid(fallbackId, line, 'not-an-object', `Line ${line} must be a JSON object, got ${kind}`);
  }
  const item = value;
  const meta = item['meta'];

  let id = fallbackId;
  const rawId = item['id'];
  if (rawId !== undefined) {
    if (typeof rawId === 'string' && rawId.length > 0 && rawId.length <= MAX_ID_LENGTH) id = rawId;
    else if (typeof rawId === 'number' && Number.isSafeInteger(rawId)) id = String(rawId);
    else {
      if (defaults.skip?.(fallbackId, line)) return { status: 'skip', id: fallbackId, line };
      return invalid(
        fallbackId,
        line,
        'bad-id',
        `Line ${line}: \`id\` must be a non-empty string of at most ${MAX_ID_LENGTH} characters or an integer`,
        meta,
      );
    }
  }

  if (defaults.skip?.(id, line)) return { status: 'skip', id, line };

  const endpoint = item['endpoint'] ?? defaults.endpoint;
  if (endpoint === undefined) {
    return invalid(id, line, 'missing-endpoint', `Line ${line} has no \`endpoint\` and no default endpoint was given (--endpoint)`, meta);
  }
  if (typeof endpoint !== 'string' || endpoint === '') {
    return invalid(id, line, 'unknown-endpoint', `Line ${line}: \`endpoint\` must be a non-empty string`, meta);
  }

  let own: Record<string, unknown>;
  if (item['params'] !== undefined) {
    if (!isPlainObject(item['params'])) {
      return invalid(id, line, 'invalid-params', `Line ${line}: \`params\` must be an object`, meta);
    }
    own = item['params'];
  } else {
    own = {};
    for (const key of Object.keys(item)) {
      if (!(RESERVED_KEYS as readonly string[]).includes(key)) own[key] = item[key];
    }
  }
  const params = defaults.params ? { ...defaults.params, ...own } : own;

  const priority = item['priority'];
  if (priority !== undefined && (typeof priority !== 'number' || !Number.isFinite(priority))) {
    return invalid(id, line, 'invalid-params', `Line ${line}: \`priority\` must be a finite number`, meta);
  }

  let fields: Record<string, string[]>;
  try {
    fields = defaults.validate(endpoint, params) ?? {};
  } catch (error) {
    return invalid(id, line, 'unknown-endpoint', `Line ${line}: ${(error as Error).message}`, meta);
  }
  const names = Object.keys(fields);
  if (names.length > 0) {
    const unknownEndpoint = names.length === 1 && names[0] === 'endpoint';
    const detail = names.map((name) => `${name}: ${(fields[name] ?? []).join('; ')}`).join(', ');
    if (unknownEndpoint) return invalid(id, line, 'unknown-endpoint', `Line ${line}: ${detail}`, meta);
    const missing = names.filter((name) => (fields[name] ?? []).some((m) => /required/i.test(m)));
    const message = missing.length > 0 && missing.length === names.length
      ? `Line ${line} is missing required field(s): ${missing.join(', ')}`
      : `Line ${line} has invalid parameters: ${detail}`;
    return { ...invalid(id, line, 'invalid-params', message, meta), fields };
  }

  return { status: 'ok', id, line, endpoint, params, meta, priority: priority as number | undefined };
}

function invalid(id: string, line: number, kind: InputErrorKind, message: string, meta?: unknown): InvalidItem {
  const out: InvalidItem = { status: 'invalid', id, line, kind, message };
  if (meta !== undefined) out.meta = meta;
  return out;
}

/**
 * Checks that `path` is a readable regular file. Throws an error whose message
 * says what is wrong, before anything is sent.
 */
export async function checkReadable(path: string): Promise<void> {
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    throw new Error(`Cannot read the input file ${path}: ${describeFsError(error)}`, { cause: error });
  }
  if (info.isDirectory()) throw new Error(`Cannot read the input file ${path}: it is a directory`);
  try {
    const handle = await open(path, 'r');
    await handle.close();
  } catch (error) {
    throw new Error(`Cannot read the input file ${path}: ${describeFsError(error)}`, { cause: error });
  }
}

/** A short reason for a file-system error: `permission denied`, `no such file`, or the message. */
export function describeFsError(error: unknown): string {
  const code = (error as { code?: string } | null)?.code;
  switch (code) {
    case 'ENOENT':
      return 'no such file or directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'it is a directory';
    case 'ENOTDIR':
      return 'a parent of it is not a directory';
    case 'EROFS':
      return 'read-only file system';
    case 'ENOSPC':
      return 'no space left on the device';
    default:
      return error instanceof Error ? error.message : String(error);
  }
}

/**
 * Reads a JSONL file line by line with `node:readline`, yielding `{ line, raw }`
 * (1-based line numbers, blank lines included). It reads only as fast as the
 * consumer pulls: readline's iterator pauses the file stream when its buffer
 * fills, so memory stays flat whatever the file's size.
 */
export async function* readJsonlLines(path: string, options: { signal?: AbortSignal } = {}): AsyncGenerator<RawLine> {
  const stream = createReadStream(path, { encoding: 'utf8', highWaterMark: 64 * 1024 });
  let failure: unknown;
  stream.on('error', (error) => {
    failure = error;
  });
  const rl = createInterface({ input: stream, crlfDelay: Infinity });
  stream.on('error', () => rl.close());
  let line = 0;
  try {
    for await (const raw of rl) {
      if (failure !== undefined) break;
      if (options.signal?.aborted) return;
      line++;
      yield { line, raw };
    }
    if (failure !== undefined) {
      throw new Error(`Cannot read the input file ${path}: ${describeFsError(failure)}`, { cause: failure });
    }
  } finally {
    rl.close();
    stream.destroy();
  }
}

/** Counts the non-blank lines of a file without holding it in memory (for an ETA). */
export async function countLines(path: string): Promise<number> {
  let count = 0;
  let inLine = false;
  const stream = createReadStream(path, { highWaterMark: 256 * 1024 });
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i] as number;
      if (byte === 0x0a) {
        if (inLine) count++;
        inLine = false;
      } else if (byte !== 0x20 && byte !== 0x09 && byte !== 0x0d) {
        inLine = true;
      }
    }
  }
  if (inLine) count++;
  return count;
}
