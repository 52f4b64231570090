/**
 * Job status parsing (pure): the `request-status` body, the job error fields
 * (whose names no ModelBeam page gives, so they are read defensively), and
 * the rules for what is terminal and what may be retried.
 */

/** The job error codes the docs list (§6.2). Others may appear; they are kept as sent. */
export const JOB_ERROR_CODES = [
  'WORKER_TIMEOUT',
  'PROCESSING_ERROR',
  'AGE_RESTRICTED',
  'CONTEXT_LENGTH_EXCEEDED',
  'INVALID_INPUT',
  'UNKNOWN_ERROR',
] as const;
export type JobErrorCode = (typeof JOB_ERROR_CODES)[number];

/** Codes that will fail again the same way: never resubmitted. */
const DETERMINISTIC = new Set<string>(['AGE_RESTRICTED', 'CONTEXT_LENGTH_EXCEEDED', 'INVALID_INPUT']);

/** The codes with their own retry allowance in `jobRetries`. */
export type RetryableJobErrorCode = 'WORKER_TIMEOUT' | 'PROCESSING_ERROR' | 'UNKNOWN_ERROR';

/** Whether a job that failed with `code` may succeed if submitted again. Unknown codes count as `UNKNOWN_ERROR`. */
export function isRetryableJobError(code: string): boolean {
  return !DETERMINISTIC.has(code);
}

/** Which `jobRetries` allowance a failure spends; undefined for codes never retried. */
export function retryAllowanceFor(code: string): RetryableJobErrorCode | undefined {
  if (DETERMINISTIC.has(code)) return undefined;
  if (code === 'WORKER_TIMEOUT' || code === 'PROCESSING_ERROR') return code;
  return 'UNKNOWN_ERROR';
}

/** How the client reads a status value. */
export type JobState = 'pending' | 'running' | 'done' | 'error' | 'unknown';

/** One reading of a job's status. */
export interface JobStatus {
  requestId: string;
  /** The status value as the API sent it (`pending`, `processing`, `in_progress`, `done`, `error`, …). */
  status: string;
  /** `unknown` for values the client does not recognise: non-terminal, logged, never fatal. */
  state: JobState;
  /** True for `done` and `error` only. */
  terminal: boolean;
  /** 0–100 when reported. */
  progress?: number;
  /** Base64 thumbnail or URL (the docs disagree), when present. */
  preview?: unknown;
  resultUrl?: string;
  resultsAltFormats?: unknown;
  /** Text output (transcription, OCR) or inline embeddings. */
  result?: unknown;
  /** Read from `error_code`, `errorCode`, `error.code`, `code` or a code-like `error`. */
  errorCode?: string;
  errorMessage?: string;
}

/** A finished job. */
export interface JobResult {
  requestId: string;
  status: 'done';
  resultUrl?: string;
  resultsAltFormats?: unknown;
  result?: unknown;
  preview?: unknown;
}

const STATES: Record<string, JobState> = {
  pending: 'pending',
  processing: 'running',
  in_progress: 'running',
  done: 'done',
  error: 'error',
};

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const CODE_RE = /^[A-Z][A-Z0-9_]{2,63}$/;

function present(value: unknown): boolean {
  return value !== undefined && value !== null && value !== '';
}

/** Reads the job error code and message from wherever the API put them. */
export function readJobError(data: Record<string, unknown>): { code?: string; message?: string } {
  const out: { code?: string; message?: string } = {};
  const error = data['error'];
  const nested = isObject(error) ? error : undefined;
  for (const candidate of [data['error_code'], data['errorCode'], nested?.['code'], nested?.['error_code'], data['code']]) {
    if (typeof candidate === 'string' && candidate.trim() !== '') {
      out.code = candidate.trim().toUpperCase();
      break;
    }
  }
  if (out.code === undefined && typeof error === 'string' && CODE_RE.test(error.trim())) out.code = error.trim();
  for (const candidate of [data['error_message'], data['errorMessage'], nested?.['message'], data['message']]) {
    if (typeof candidate === 'string' && candidate.trim() !== '') {
      out.message = candidate;
      break;
    }
  }
  if (out.message === undefined && typeof error === 'string' && !CODE_RE.test(error.trim()) && error.trim() !== '') out.message = error;
  return out;
}

function readProgress(value: unknown): number | undefined {
  const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
  if (!Number.isFinite(n)) return undefined;
  return Math.min(100, Math.max(0, n));
}

/** The `data` object of a body, or the body itself when it has no envelope. */
export function unwrapData(body: unknown): Record<string, unknown> | undefined {
  if (!isObject(body)) return undefined;
  if (isObject(body['data'])) return body['data'];
  return body;
}

/**
 * Parses a `request-status` body (`{"data": {...}}`, or the bare object).
 * Returns undefined when it carries no status string at all.
 */
export function parseJobStatus(requestId: string, body: unknown): JobStatus | undefined {
  const data = unwrapData(body);
  if (!data) return undefined;
  const raw = data['status'];
  if (typeof raw !== 'string' || raw.trim() === '') return undefined;
  const status = raw.trim().toLowerCase();
  const state = STATES[status] ?? 'unknown';
  const out: JobStatus = { requestId, status, state, terminal: state === 'done' || state === 'error' };
  const progress = readProgress(data['progress']);
  if (progress !== undefined) out.progress = progress;
  copyResultFields(data, out);
  if (state === 'error') {
    const { code, message } = readJobError(data);
    if (code !== undefined) out.errorCode = code;
    if (message !== undefined) out.errorMessage = message;
  }
  return out;
}

/** Copies `result_url`, `results_alt_formats`, `result` and `preview` (snake or camel case) when present. */
export function copyResultFields(
  data: Record<string, unknown>,
  out: { resultUrl?: string; resultsAltFormats?: unknown; result?: unknown; preview?: unknown },
): void {
  const url = data['result_url'] ?? data['resultUrl'];
  if (typeof url === 'string' && url !== '') out.resultUrl = url;
  const alt = data['results_alt_formats'] ?? data['resultsAltFormats'];
  if (present(alt)) out.resultsAltFormats = alt;
  if (present(data['result'])) out.result = data['result'];
  if (present(data['preview'])) out.preview = data['preview'];
}

/** A `JobResult` from a `done` status (or webhook data). */
export function toJobResult(requestId: string, fields: { resultUrl?: string; resultsAltFormats?: unknown; result?: unknown; preview?: unknown }): JobResult {
  const result: JobResult = { requestId, status: 'done' };
  if (fields.resultUrl !== undefined) result.resultUrl = fields.resultUrl;
  if (fields.resultsAltFormats !== undefined) result.resultsAltFormats = fields.resultsAltFormats;
  if (fields.result !== undefined) result.result = fields.result;
  if (fields.preview !== undefined) result.preview = fields.preview;
  return result;
}

/** Whether a finished job's fields hold its output (a URL or inline result). */
export function hasOutput(fields: { resultUrl?: string; result?: unknown }): boolean {
  return fields.resultUrl !== undefined || fields.result !== undefined;
}

/** Reads `request_id` from a submission's 200 body (`{"data":{"request_id"}}`, defensively). */
export function readRequestId(body: unknown): string | undefined {
  const data = unwrapData(body);
  const outer = isObject(body) ? body : undefined;
  for (const candidate of [data?.['request_id'], data?.['requestId'], outer?.['request_id'], outer?.['requestId']]) {
    if (typeof candidate === 'string' && candidate.trim() !== '') return candidate.trim();
    if (typeof candidate === 'number' && Number.isFinite(candidate)) return String(candidate);
  }
  return undefined;
}
