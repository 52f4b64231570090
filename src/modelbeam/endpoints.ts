/**
 * The job-creating endpoints: names, parameter types, and LOCAL validation of
 * the documented ranges, so that bad input spends no quota and no money.
 *
 * Only facts the ModelBeam docs state ([DOC] in `modelbeam-api.md`) are
 * enforced as ranges or requirements; fields known only from the sibling API
 * or inferred are type-checked when present, never required. Unknown fields
 * pass through untouched (the API may add some), except one that looks like a
 * typo of a documented field that is not given (`widht` without `width`).
 */
import type { FieldErrors } from '../errors/validation-error.js';
import { suggest } from '../internal/validate.js';

/** A file to upload: a path (string or `file:` URL), a Buffer/Uint8Array, a Blob, a readable stream, or one of these with a name. */
export type FileInput =
  | string
  | URL
  | Blob
  | Uint8Array
  | AsyncIterable<Uint8Array>
  | NamedFile;

/** A file with an explicit name and type. `path` and `data` are alternatives. */
export type NamedFile =
  | { path: string; filename?: string; contentType?: string }
  | { data: Blob | Uint8Array | AsyncIterable<Uint8Array>; filename?: string; contentType?: string };

export interface Lora {
  name: string;
  weight: number;
}

interface Common {
  /** HTTPS URL (≤2048 chars) for this job's webhooks. The client sets it when `webhook.url` is configured. */
  webhook_url?: string;
}

/** `POST /txt2img` (JSON). */
export interface Txt2ImgParams extends Common {
  prompt: string;
  model: string;
  /** 256–2048; the model's own limits (`/models`) may be stricter. */
  width: number;
  height: number;
  /** 1–50. */
  steps: number;
  /** 0–20. @default 1 */
  guidance?: number;
  /** @default -1 (random) */
  seed?: number;
  negative_prompt?: string;
  loras?: Lora[];
}

/** `POST /img2img` (multipart). Send `image` or `images`, not both. */
export interface Img2ImgParams extends Common {
  image?: FileInput;
  images?: FileInput[];
  prompt: string;
  model: string;
  steps: number;
  seed: number;
  negative_prompt?: string;
  width?: number;
  height?: number;
  guidance?: number;
  /** Sent as a JSON-encoded string in the multipart body. */
  loras?: Lora[] | string;
}

/** `POST /txt2audio` (text to speech, multipart). */
export interface Txt2AudioParams extends Common {
  text: string;
  model: string;
  lang: string;
  /** 0.5–2. */
  speed: number;
  format: 'mp3' | 'wav' | 'flac';
  sample_rate: number;
  mode?: 'custom_voice' | 'voice_clone' | 'voice_design';
  voice?: string;
  /** 3–10 s of audio, ≤10 MB, for voice cloning. */
  ref_audio?: FileInput;
  ref_text?: string;
  instruct?: string;
}

/** `POST /txt2embedding` (JSON). */
export interface Txt2EmbeddingParams extends Common {
  /** A string or up to 2048 strings. */
  input: string | string[];
  model: string;
  return_result_in_response?: boolean;
}

/** `POST /transcribe` (multipart). Exactly one of `source_url` and `source_file`. */
export interface TranscribeParams extends Common {
  include_ts: boolean;
  model: string;
  source_url?: string;
  source_file?: FileInput;
  return_result_in_response?: boolean;
}

/** `POST /img2txt` (OCR, multipart). */
export interface Img2TxtParams extends Common {
  image: FileInput;
  model: string;
  language?: string;
  format?: 'text' | 'json';
  return_result_in_response?: boolean;
}

/** `POST /txt2video`. No ModelBeam page documents it; fields follow the sibling API. */
export interface Txt2VideoParams extends Common {
  prompt: string;
  model: string;
  width?: number;
  height?: number;
  guidance?: number;
  steps?: number;
  frames?: number;
  seed?: number;
  fps?: number;
  negative_prompt?: string;
}

/** `POST /img2video`. No ModelBeam page documents it; fields follow the sibling API. */
export interface Img2VideoParams extends Txt2VideoParams {
  first_frame_image: FileInput;
  last_frame_image?: FileInput;
}

/**
 * `POST /txt2music`. The docs' field names are partly cut off; the names
 * below follow the sibling SDK, and any other field is passed through.
 */
export interface Txt2MusicParams extends Common {
  model: string;
  /** Style prompt, 1–2000 chars. */
  caption?: string;
  lyrics?: string;
  /** 10–600 s. */
  duration?: number;
  /** 1–100. */
  inference_steps?: number;
  /** 0–20. */
  guidance_scale?: number;
  seed?: number;
  format?: string;
  /** 30–300. */
  bpm?: number;
  /** 2, 3, 4 or 6. */
  time_signature?: number;
  [field: string]: unknown;
}

/** The endpoints with typed methods on the client. */
export const TYPED_ENDPOINTS = [
  'txt2img',
  'img2img',
  'txt2embedding',
  'txt2audio',
  'transcribe',
  'img2txt',
  'txt2video',
  'img2video',
  'txt2music',
] as const;
export type TypedEndpoint = (typeof TYPED_ENDPOINTS)[number];

/** Parameter type of each typed endpoint. */
export interface EndpointParams {
  txt2img: Txt2ImgParams;
  img2img: Img2ImgParams;
  txt2embedding: Txt2EmbeddingParams;
  txt2audio: Txt2AudioParams;
  transcribe: TranscribeParams;
  img2txt: Img2TxtParams;
  txt2video: Txt2VideoParams;
  img2video: Img2VideoParams;
  txt2music: Txt2MusicParams;
}

/** Job-creating endpoints the docs name whose parameters are not typed here (any object is sent as given). */
export const UNTYPED_ENDPOINTS = [
  'aud2video',
  'aud2txt',
  'vid2txt',
  'videofile2txt',
  'audiofile2txt',
  'img-upscale',
  'img-rmbg',
  'videos/replace',
] as const;
export type UntypedEndpoint = (typeof UNTYPED_ENDPOINTS)[number];

/** Every endpoint name `submit()` and `generate()` accept at the type level. */
export type KnownEndpoint = TypedEndpoint | UntypedEndpoint;

/** The parameters of `endpoint`: typed for a {@link TypedEndpoint}, any object for the others. */
export type ParamsOf<E extends KnownEndpoint> = E extends TypedEndpoint ? EndpointParams[E] : Record<string, unknown>;

/** Every job-creating endpoint the docs name (paths under the base URL). */
export const KNOWN_ENDPOINTS: readonly string[] = [...TYPED_ENDPOINTS, ...UNTYPED_ENDPOINTS];

/** `endpoint` must be a relative path of plain segments: no `..`, no query, no scheme. */
const ENDPOINT_RE = /^[a-z0-9][a-z0-9_-]*(?:\/[a-z0-9][a-z0-9_-]*)*$/i;

export function isValidEndpointName(endpoint: unknown): endpoint is string {
  return typeof endpoint === 'string' && endpoint.length <= 100 && ENDPOINT_RE.test(endpoint);
}

// ------------------------------------------------------------------ rules

const MB = 1024 * 1024;

type Kind = 'string' | 'integer' | 'number' | 'boolean' | 'file' | 'files' | 'url' | 'inputs' | 'loras' | 'enum';

interface Rule {
  field: string;
  kind: Kind;
  required?: boolean;
  min?: number;
  max?: number;
  /** Strings: length bounds. */
  minLength?: number;
  maxLength?: number;
  values?: readonly (string | number)[];
  /** Files: the documented size limit, checked when the size is known. */
  maxBytes?: number;
  maxItems?: number;
}

const r = (field: string, kind: Kind, extra: Omit<Rule, 'field' | 'kind'> = {}): Rule => ({ field, kind, ...extra });
const req = (field: string, kind: Kind, extra: Omit<Rule, 'field' | 'kind'> = {}): Rule => ({ field, kind, required: true, ...extra });

const WEBHOOK = r('webhook_url', 'url', { maxLength: 2048 });
const MODEL = req('model', 'string', { minLength: 1 });
const IMAGE_BYTES = 10 * MB;

/** Per-endpoint rules. Cross-field rules live in `CROSS`. */
const RULES: Record<string, readonly Rule[]> = {
  txt2img: [
    req('prompt', 'string', { minLength: 1 }),
    MODEL,
    req('width', 'integer', { min: 256, max: 2048 }),
    req('height', 'integer', { min: 256, max: 2048 }),
    req('steps', 'integer', { min: 1, max: 50 }),
    r('guidance', 'number', { min: 0, max: 20 }),
    r('seed', 'integer'),
    r('negative_prompt', 'string'),
    r('loras', 'loras'),
    WEBHOOK,
  ],
  img2img: [
    r('image', 'file', { maxBytes: IMAGE_BYTES }),
    r('images', 'files', { maxBytes: IMAGE_BYTES }),
    req('prompt', 'string', { minLength: 1 }),
    MODEL,
    req('steps', 'integer', { min: 1, max: 50 }),
    req('seed', 'integer'),
    r('negative_prompt', 'string'),
    r('width', 'integer', { min: 256, max: 2048 }),
    r('height', 'integer', { min: 256, max: 2048 }),
    r('guidance', 'number', { min: 0, max: 20 }),
    r('loras', 'loras'),
    WEBHOOK,
  ],
  txt2audio: [
    req('text', 'string', { minLength: 1 }),
    MODEL,
    req('lang', 'string', { minLength: 1 }),
    req('speed', 'number', { min: 0.5, max: 2 }),
    req('format', 'enum', { values: ['mp3', 'wav', 'flac'] }),
    req('sample_rate', 'integer', { min: 1 }),
    r('mode', 'enum', { values: ['custom_voice', 'voice_clone', 'voice_design'] }),
    r('voice', 'string'),
    r('ref_audio', 'file', { maxBytes: 10 * MB }),
    r('ref_text', 'string'),
    r('instruct', 'string'),
    WEBHOOK,
  ],
  txt2embedding: [
    req('input', 'inputs', { maxItems: 2048 }),
    MODEL,
    r('return_result_in_response', 'boolean'),
    WEBHOOK,
  ],
  transcribe: [
    req('include_ts', 'boolean'),
    MODEL,
    r('source_url', 'url'),
    r('source_file', 'file'),
    r('return_result_in_response', 'boolean'),
    WEBHOOK,
  ],
  img2txt: [
    req('image', 'file', { maxBytes: IMAGE_BYTES }),
    MODEL,
    r('language', 'string'),
    r('format', 'enum', { values: ['text', 'json'] }),
    r('return_result_in_response', 'boolean'),
    WEBHOOK,
  ],
  // [SIB] only: type checks, nothing required beyond the model and prompt every generator takes.
  txt2video: [
    req('prompt', 'string', { minLength: 1 }),
    MODEL,
    r('width', 'integer'),
    r('height', 'integer'),
    r('guidance', 'number'),
    r('steps', 'integer'),
    r('frames', 'integer'),
    r('seed', 'integer'),
    r('fps', 'integer'),
    r('negative_prompt', 'string'),
    WEBHOOK,
  ],
  img2video: [
    req('prompt', 'string', { minLength: 1 }),
    MODEL,
    r('first_frame_image', 'file', { maxBytes: IMAGE_BYTES }),
    r('last_frame_image', 'file', { maxBytes: IMAGE_BYTES }),
    r('width', 'integer'),
    r('height', 'integer'),
    r('guidance', 'number'),
    r('steps', 'integer'),
    r('frames', 'integer'),
    r('seed', 'integer'),
    r('fps', 'integer'),
    r('negative_prompt', 'string'),
    WEBHOOK,
  ],
  // [DOC] ranges, field names partly [SIB]: each name is checked when present.
  txt2music: [
    MODEL,
    r('caption', 'string', { minLength: 1, maxLength: 2000 }),
    r('prompt', 'string', { minLength: 1, maxLength: 2000 }),
    r('lyrics', 'string'),
    r('duration', 'number', { min: 10, max: 600 }),
    r('steps', 'integer', { min: 1, max: 100 }),
    r('inference_steps', 'integer', { min: 1, max: 100 }),
    r('guidance', 'number', { min: 0, max: 20 }),
    r('guidance_scale', 'number', { min: 0, max: 20 }),
    r('seed', 'integer'),
    r('bpm', 'integer', { min: 30, max: 300 }),
    r('time_signature', 'enum', { values: [2, 3, 4, 6] }),
    r('reference_audio', 'file', { maxBytes: 10 * MB }),
    r('ref_audio', 'file', { maxBytes: 10 * MB }),
    WEBHOOK,
  ],
  aud2video: [
    req('prompt', 'string', { minLength: 1 }),
    req('audio', 'file', { maxBytes: 20 * MB }),
    MODEL,
    req('width', 'integer', { min: 256, max: 1280 }),
    req('height', 'integer', { min: 256, max: 1280 }),
    req('seed', 'integer'),
    req('frames', 'integer', { min: 1, max: 120 }),
    r('guidance', 'number', { min: 0, max: 20 }),
    r('steps', 'integer', { min: 1, max: 50 }),
    r('fps', 'integer'),
    r('negative_prompt', 'string'),
    r('first_frame_image', 'file', { maxBytes: IMAGE_BYTES }),
    r('last_frame_image', 'file', { maxBytes: IMAGE_BYTES }),
    WEBHOOK,
  ],
  aud2txt: [req('audio_url', 'url'), req('include_ts', 'boolean'), MODEL, r('return_result_in_response', 'boolean'), WEBHOOK],
  'videos/replace': [
    req('video', 'file'),
    req('ref_image', 'file', { maxBytes: IMAGE_BYTES }),
    MODEL,
    r('prompt', 'string'),
    r('width', 'integer'),
    r('height', 'integer'),
    r('steps', 'integer'),
    r('seed', 'integer'),
    WEBHOOK,
  ],
  'img-upscale': [req('image', 'file', { maxBytes: IMAGE_BYTES }), MODEL, WEBHOOK],
  'img-rmbg': [req('image', 'file', { maxBytes: IMAGE_BYTES }), MODEL, WEBHOOK],
};

type Cross = (params: Record<string, unknown>, errors: FieldErrors) => void;

const CROSS: Record<string, Cross> = {
  img2img: (p, e) => {
    const image = !isBlank(p['image']);
    const images = !isBlank(p['images']);
    if (!image && !images) add(e, 'image', 'The image field is required when images is not present.');
    if (image && images) add(e, 'image', 'Send either image or images, not both.');
  },
  transcribe: (p, e) => {
    const url = !isBlank(p['source_url']);
    const file = !isBlank(p['source_file']);
    if (url === file) add(e, 'source_url', 'Exactly one of source_url and source_file is required.');
  },
  'videos/replace': (p, e) => {
    if (isBlank(p['width']) !== isBlank(p['height'])) add(e, 'width', 'The width and height fields must be sent together.');
  },
};

/** Fields whose string values are file paths (elsewhere a string is just a string). */
export const FILE_FIELDS: ReadonlySet<string> = new Set([
  'image',
  'images',
  'audio',
  'video',
  'ref_audio',
  'reference_audio',
  'ref_image',
  'source_file',
  'first_frame_image',
  'last_frame_image',
]);

// ------------------------------------------------------------------ checks

function add(errors: FieldErrors, field: string, message: string): void {
  (errors[field] ??= []).push(message);
}

function isBlank(value: unknown): boolean {
  if (value === undefined || value === null) return true;
  if (typeof value === 'string') return value.trim() === '';
  if (Array.isArray(value)) return value.length === 0;
  return false;
}

function asNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) return Number(value);
  return undefined;
}

function asInteger(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? value : undefined;
  if (typeof value === 'string' && /^\s*[-+]?\d{1,15}\s*$/.test(value)) return Number(value);
  return undefined;
}

/** A value the client can upload (see {@link FileInput}). */
export function isFileLike(value: unknown, field?: string): boolean {
  if (typeof value === 'string') return field !== undefined && FILE_FIELDS.has(field);
  if (value instanceof URL) return value.protocol === 'file:';
  if (value instanceof Blob || value instanceof Uint8Array) return true;
  if (typeof value !== 'object' || value === null) return false;
  if (Symbol.asyncIterator in value) return true;
  const named = value as { path?: unknown; data?: unknown };
  return typeof named.path === 'string' || (named.data !== undefined && isFileLike(named.data));
}

/** The size of a file input, when it is known without reading it. */
function knownSize(value: unknown): number | undefined {
  if (value instanceof Blob) return value.size;
  if (value instanceof Uint8Array) return value.byteLength;
  if (typeof value === 'object' && value !== null && 'data' in value) return knownSize((value as { data: unknown }).data);
  return undefined;
}

function label(field: string): string {
  return field.replace(/_/g, ' ');
}

function checkValue(rule: Rule, value: unknown): string | undefined {
  const l = label(rule.field);
  switch (rule.kind) {
    case 'string':
    case 'url': {
      if (typeof value !== 'string') return `The ${l} field must be a string.`;
      if (rule.minLength !== undefined && value.length < rule.minLength) return `The ${l} field must be at least ${rule.minLength} characters.`;
      if (rule.maxLength !== undefined && value.length > rule.maxLength) {
        return `The ${l} field must not be greater than ${rule.maxLength} characters.`;
      }
      if (rule.kind === 'url' && !(/^https?:\/\//i.test(value) && URL.canParse(value))) return `The ${l} field must be a valid URL.`;
      return undefined;
    }
    case 'integer':
    case 'number': {
      const n = rule.kind === 'integer' ? asInteger(value) : asNumber(value);
      if (n === undefined) return `The ${l} field must be ${rule.kind === 'integer' ? 'an integer' : 'a number'}.`;
      if (rule.min !== undefined && rule.max !== undefined && (n < rule.min || n > rule.max)) {
        return `The ${l} field must be between ${rule.min} and ${rule.max}.`;
      }
      if (rule.min !== undefined && n < rule.min) return `The ${l} field must be at least ${rule.min}.`;
      if (rule.max !== undefined && n > rule.max) return `The ${l} field must not be greater than ${rule.max}.`;
      return undefined;
    }
    case 'boolean':
      // Laravel's `boolean` rule: true, false, 0, 1, "0", "1" (not "true"/"false").
      return [true, false, 0, 1, '0', '1'].includes(value as never) ? undefined : `The ${l} field must be true or false.`;
    case 'enum':
      return rule.values?.some((v) => v === value || String(v) === String(value))
        ? undefined
        : `The selected ${l} is invalid (expected one of ${rule.values?.join(', ')}).`;
    case 'file':
      return checkFile(rule, value, l);
    case 'files': {
      if (!Array.isArray(value)) return `The ${l} field must be an array of files.`;
      for (const item of value) {
        const message = checkFile(rule, item, l);
        if (message) return message;
      }
      return undefined;
    }
    case 'inputs': {
      if (typeof value === 'string') return value.length === 0 ? `The ${l} field is required.` : undefined;
      if (!Array.isArray(value)) return `The ${l} field must be a string or an array of strings.`;
      if (rule.maxItems !== undefined && value.length > rule.maxItems) return `The ${l} field must not have more than ${rule.maxItems} items.`;
      if (!value.every((item) => typeof item === 'string')) return `Every item of the ${l} field must be a string.`;
      return undefined;
    }
    case 'loras': {
      let list: unknown = value;
      if (typeof value === 'string') {
        try {
          list = JSON.parse(value);
        } catch {
          return `The ${l} field must be a valid JSON string.`;
        }
      }
      if (!Array.isArray(list)) return `The ${l} field must be an array.`;
      for (const item of list) {
        const lora = item as { name?: unknown; weight?: unknown } | null;
        if (typeof lora !== 'object' || lora === null || typeof lora.name !== 'string' || asNumber(lora.weight) === undefined) {
          return `Every item of the ${l} field must be {name: string, weight: number}.`;
        }
      }
      return undefined;
    }
  }
}

function checkFile(rule: Rule, value: unknown, l: string): string | undefined {
  if (!isFileLike(value, rule.field)) return `The ${l} field must be a file (a path, a Buffer, a Blob or a stream).`;
  const size = knownSize(value);
  if (size !== undefined && rule.maxBytes !== undefined && size > rule.maxBytes) {
    return `The ${l} field must not be greater than ${Math.round(rule.maxBytes / 1024)} kilobytes.`;
  }
  if (size === 0) return `The ${l} field must not be empty.`;
  return undefined;
}

/**
 * Checks `params` against what the docs say about `endpoint`, without
 * sending anything. Returns the field errors (Laravel-shaped, like a 422
 * body's `errors`), or `undefined` when nothing is wrong. Unknown endpoints
 * get only the checks every endpoint shares (`webhook_url`). Files given as
 * paths or streams are checked for type only; their size is checked once read.
 *
 * @example
 * const errors = validateParams('txt2img', { prompt: 'fox', model: 'Flux1schnell', width: 100, height: 512, steps: 4 });
 * // { width: ['The width field must be between 256 and 2048.'] }
 */
export function validateParams(endpoint: string, params: Readonly<Record<string, unknown>>): FieldErrors | undefined {
  const errors: FieldErrors = {};
  if (typeof params !== 'object' || params === null || Array.isArray(params)) {
    return { params: ['The parameters must be an object.'] };
  }
  const rules = RULES[endpoint] ?? [WEBHOOK];
  for (const rule of rules) {
    const value = params[rule.field];
    if (isBlank(value)) {
      if (rule.required) add(errors, rule.field, `The ${label(rule.field)} field is required.`);
      continue;
    }
    const message = checkValue(rule, value);
    if (message !== undefined) add(errors, rule.field, message);
  }
  CROSS[endpoint]?.(params as Record<string, unknown>, errors);
  const known = RULES[endpoint];
  if (known) {
    const fields = known.map((rule) => rule.field);
    for (const key of Object.keys(params)) {
      if (fields.includes(key)) continue;
      const guess = suggest(key, fields);
      if (guess !== undefined && isBlank(params[guess])) {
        add(errors, key, `Unknown parameter \`${key}\`; did you mean \`${guess}\`? (Other unknown parameters are sent as they are; \`validate: false\` sends this one too.)`);
      }
    }
  }
  return Object.keys(errors).length > 0 ? errors : undefined;
}

/** The field errors of an endpoint the docs do not name (the client and the batch runner refuse it before sending). */
export function unknownEndpointErrors(endpoint: string): FieldErrors | undefined {
  if (KNOWN_ENDPOINTS.includes(endpoint)) return undefined;
  const guess = suggest(endpoint, KNOWN_ENDPOINTS);
  return {
    endpoint: [
      `Unknown endpoint ${JSON.stringify(endpoint)}${guess ? ` (did you mean ${JSON.stringify(guess)}?)` : ''}; expected one of ${KNOWN_ENDPOINTS.join(', ')}`,
    ],
  };
}

/** The documented size limit of a file field, for checks after a stream or path is read. */
export function maxFileBytes(endpoint: string, field: string): number | undefined {
  return RULES[endpoint]?.find((rule) => rule.field === field)?.maxBytes;
}
