/**
 * Small HTTP helpers of the fake server: body reading and parsing, replies.
 */
import type { IncomingMessage } from 'node:http';
import type { RawParams } from './validation.js';

export interface Reply {
  status: number;
  body: string | Buffer;
  contentType: string;
  headers?: Record<string, string>;
}

export function json(status: number, value: unknown): Reply {
  return { status, body: JSON.stringify(value), contentType: 'application/json' };
}

/** Reads the whole body; undefined when it exceeds `maxBytes`. */
export async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) return undefined;
    chunks.push(chunk);
  }
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size);
}

/**
 * Parses JSON, multipart/form-data or urlencoded bodies into params.
 * Malformed bodies yield `{}` (Laravel then answers 422 "required").
 * Repeated fields and `name[]` fields become arrays.
 */
export async function parseParams(body: Buffer, contentType: string | undefined): Promise<RawParams> {
  const ct = (contentType ?? '').toLowerCase();
  if (ct.startsWith('multipart/form-data')) {
    try {
      const form = await new Response(body, { headers: { 'content-type': contentType ?? '' } }).formData();
      return fromEntries(form.entries());
    } catch {
      return {};
    }
  }
  if (ct.startsWith('application/x-www-form-urlencoded')) {
    return fromEntries(new URLSearchParams(body.toString('utf8')).entries());
  }
  if (body.length === 0) return {};
  try {
    const parsed: unknown = JSON.parse(body.toString('utf8'));
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as RawParams) : {};
  } catch {
    return {};
  }
}

function fromEntries(entries: Iterable<[string, unknown]>): RawParams {
  const out: RawParams = {};
  for (const [rawName, value] of entries) {
    const isArray = rawName.endsWith('[]');
    const name = isArray ? rawName.slice(0, -2) : rawName;
    const prev = out[name];
    if (isArray || prev !== undefined) {
      out[name] = Array.isArray(prev) ? [...(prev as unknown[]), value] : prev === undefined ? [value] : [prev, value];
    } else {
      out[name] = value;
    }
  }
  return out;
}

/** Params as stored on a job: files replaced by `{filename, size, type}`. */
export function storableParams(params: RawParams): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(params)) {
    out[key] = Array.isArray(value) ? value.map(describeFile) : describeFile(value);
  }
  return out;
}

function describeFile(value: unknown): unknown {
  return value instanceof File ? { filename: value.name, size: value.size, type: value.type } : value;
}

export function gatewayPage(status: number): string {
  const text = status === 502 ? 'Bad Gateway' : status === 503 ? 'Service Temporarily Unavailable' : 'Gateway Time-out';
  return `<html>\r\n<head><title>${status} ${text}</title></head>\r\n<body>\r\n<center><h1>${status} ${text}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`;
}
