/**
 * Request bodies: JSON when no file is attached, multipart otherwise.
 *
 * Files are resolved once, before the first attempt (paths become lazy
 * Blobs, streams are read into memory), so that every attempt (a 429 re-run,
 * a 5xx retry, a job-level resubmission) can send the same bytes again.
 */
import { openAsBlob } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FormData } from 'undici';
import { isFileLike, maxFileBytes } from './endpoints.js';

/** A file ready to be sent any number of times. */
export interface PreparedFile {
  readonly kind: 'file';
  readonly blob: Blob;
  readonly filename: string;
}

/** Parameters with every file resolved. */
export interface PreparedParams {
  readonly values: ReadonlyMap<string, unknown>;
  readonly multipart: boolean;
}

/** A fresh body for one attempt. */
export interface EncodedBody {
  body: string | FormData;
  headers: Record<string, string>;
}

const SIGNATURES: [string, number[], number][] = [
  ['image/png', [0x89, 0x50, 0x4e, 0x47], 0],
  ['image/jpeg', [0xff, 0xd8, 0xff], 0],
  ['image/gif', [0x47, 0x49, 0x46, 0x38], 0],
  ['image/bmp', [0x42, 0x4d], 0],
  ['audio/flac', [0x66, 0x4c, 0x61, 0x43], 0],
  ['audio/ogg', [0x4f, 0x67, 0x67, 0x53], 0],
  ['audio/mpeg', [0x49, 0x44, 0x33], 0],
  ['video/mp4', [0x66, 0x74, 0x79, 0x70], 4],
];

const EXTENSIONS: Record<string, string> = {
  'image/png': 'png',
  'image/jpeg': 'jpg',
  'image/gif': 'gif',
  'image/bmp': 'bmp',
  'image/webp': 'webp',
  'audio/flac': 'flac',
  'audio/ogg': 'ogg',
  'audio/mpeg': 'mp3',
  'audio/wav': 'wav',
  'video/mp4': 'mp4',
};

/** Guesses a media type from the first bytes (enough for the formats the API takes). */
export function sniffType(bytes: Uint8Array): string | undefined {
  const at = (i: number): number | undefined => bytes[i];
  const ascii = (from: number, text: string): boolean => [...text].every((c, i) => at(from + i) === c.charCodeAt(0));
  if (ascii(0, 'RIFF') && ascii(8, 'WEBP')) return 'image/webp';
  if (ascii(0, 'RIFF') && ascii(8, 'WAVE')) return 'audio/wav';
  for (const [type, signature, offset] of SIGNATURES) {
    if (signature.every((b, i) => at(offset + i) === b)) return type;
  }
  return undefined;
}

async function readAll(source: AsyncIterable<Uint8Array>, limit: number, field: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of source) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    size += buf.length;
    if (size > limit) throw new RangeError(`The ${field} file is larger than ${limit} bytes`);
    chunks.push(buf);
  }
  return Buffer.concat(chunks, size);
}

async function toBlob(bytes: Uint8Array, contentType: string | undefined): Promise<Blob> {
  const type = contentType ?? sniffType(bytes.subarray(0, 16)) ?? 'application/octet-stream';
  return new Blob([bytes], { type });
}

async function sniffBlob(blob: Blob): Promise<string | undefined> {
  return sniffType(new Uint8Array(await blob.slice(0, 16).arrayBuffer()));
}

function filenameFor(field: string, type: string, given: string | undefined): string {
  if (given) return given;
  const ext = EXTENSIONS[type];
  return ext ? `${field}.${ext}` : field;
}

/** Resolves one file input into bytes that can be sent again and again. */
export async function prepareFile(value: unknown, field: string, limit: number): Promise<PreparedFile> {
  let source: unknown = value;
  let filename: string | undefined;
  let contentType: string | undefined;
  if (typeof value === 'object' && value !== null && !(value instanceof Blob) && !(value instanceof Uint8Array) && !(value instanceof URL)) {
    const named = value as { path?: unknown; data?: unknown; filename?: unknown; contentType?: unknown };
    if (typeof named.path === 'string' || named.data !== undefined) {
      source = typeof named.path === 'string' ? named.path : named.data;
      if (typeof named.filename === 'string') filename = named.filename;
      if (typeof named.contentType === 'string') contentType = named.contentType;
    }
  }
  let blob: Blob;
  if (typeof source === 'string' || source instanceof URL) {
    const path = source instanceof URL ? fileURLToPath(source) : source;
    const opened = await openAsBlob(path);
    filename ??= basename(path);
    if (opened.size > limit) throw new RangeError(`The ${field} file is larger than ${limit} bytes`);
    blob = contentType || opened.type ? opened : new Blob([opened], { type: (await sniffBlob(opened)) ?? 'application/octet-stream' });
  } else if (source instanceof Blob) {
    blob = source;
    if (!blob.type && !contentType) blob = new Blob([blob], { type: (await sniffBlob(blob)) ?? 'application/octet-stream' });
    const maybeName = (source as { name?: unknown }).name;
    if (typeof maybeName === 'string' && maybeName) filename ??= maybeName;
  } else if (source instanceof Uint8Array) {
    blob = await toBlob(source, contentType);
  } else if (typeof source === 'object' && source !== null && Symbol.asyncIterator in source) {
    blob = await toBlob(await readAll(source as AsyncIterable<Uint8Array>, limit, field), contentType);
  } else {
    throw new TypeError(`Expected \`${field}\` to be a file (a path, a Buffer, a Blob or a stream), got ${typeof source}`);
  }
  if (contentType && blob.type !== contentType) blob = new Blob([blob], { type: contentType });
  return { kind: 'file', blob, filename: filenameFor(field, blob.type, filename) };
}

function isPrepared(value: unknown): value is PreparedFile {
  return typeof value === 'object' && value !== null && (value as PreparedFile).kind === 'file' && (value as PreparedFile).blob instanceof Blob;
}

/**
 * Resolves every file of `params` once. `maxUploadBytes` caps what a stream
 * may buffer; the documented per-field limits apply on top.
 */
export async function prepareParams(endpoint: string, params: Readonly<Record<string, unknown>>, maxUploadBytes: number): Promise<PreparedParams> {
  const values = new Map<string, unknown>();
  let multipart = false;
  for (const [field, value] of Object.entries(params)) {
    if (value === undefined) continue;
    const limit = Math.min(maxUploadBytes, maxFileBytes(endpoint, field) ?? Infinity);
    if (Array.isArray(value) && value.length > 0 && value.every((item) => isFileLike(item, field))) {
      values.set(field, await Promise.all(value.map((item) => prepareFile(item, field, limit))));
      multipart = true;
    } else if (isFileLike(value, field)) {
      values.set(field, await prepareFile(value, field, limit));
      multipart = true;
    } else {
      values.set(field, value);
    }
  }
  return { values, multipart };
}

function formValue(value: unknown): string {
  if (typeof value === 'boolean') return value ? '1' : '0'; // Laravel's boolean rule refuses "true"/"false"
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  return JSON.stringify(value);
}

/** Builds a fresh body for one attempt (a FormData can be sent only once). */
export function encodeBody(prepared: PreparedParams): EncodedBody {
  if (!prepared.multipart) {
    return { body: JSON.stringify(Object.fromEntries(prepared.values)), headers: { 'content-type': 'application/json' } };
  }
  const form = new FormData();
  for (const [field, value] of prepared.values) {
    if (value === null) continue;
    if (isPrepared(value)) {
      form.append(field, value.blob, value.filename);
    } else if (Array.isArray(value) && value.length > 0 && value.every(isPrepared)) {
      for (const file of value) form.append(`${field}[]`, file.blob, file.filename);
    } else if (Array.isArray(value) && value.every((v) => typeof v !== 'object' || v === null)) {
      for (const item of value) form.append(`${field}[]`, formValue(item));
    } else {
      form.append(field, formValue(value)); // objects and arrays of objects (loras) as JSON strings
    }
  }
  return { body: form, headers: {} };
}
