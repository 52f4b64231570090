/**
 * Per-endpoint request validation with Laravel-shaped messages (422
 * `{"message":"The given data was invalid.","errors":{field:[msg]}}`).
 * One message per field: the first rule that fails.
 */
import type { FakeEndpoint } from './options.js';
import { findModel } from './models.js';

export type ValidationErrors = Record<string, string[]>;

/** Parsed request parameters; uploaded files are `File` instances. */
export type RawParams = Record<string, unknown>;

type Check = (value: unknown, label: string) => string | undefined;

interface FieldRule {
  field: string;
  required?: boolean;
  checks: Check[];
}

const label = (field: string): string => field.replace(/_/g, ' ');

/** Laravel's `required`: null, a blank string, an empty array or an empty file fail. */
export function isBlank(value: unknown): boolean {
  if (value === undefined || value === null) return true;
  if (typeof value === 'string') return value.trim() === '';
  if (Array.isArray(value)) return value.length === 0;
  if (value instanceof File) return value.size === 0 && value.name === '';
  return false;
}

export function toInteger(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? value : undefined;
  if (typeof value === 'string' && /^\s*[-+]?\d{1,15}\s*$/.test(value)) return Number(value);
  return undefined;
}

export function toNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) return Number(value);
  return undefined;
}

const string: Check = (v, l) => (typeof v === 'string' ? undefined : `The ${l} field must be a string.`);
const integer: Check = (v, l) => (toInteger(v) === undefined ? `The ${l} field must be an integer.` : undefined);
const numeric: Check = (v, l) => (toNumber(v) === undefined ? `The ${l} field must be a number.` : undefined);
const file: Check = (v, l) => (v instanceof File ? undefined : `The ${l} field must be a file.`);
const array: Check = (v, l) => (Array.isArray(v) ? undefined : `The ${l} field must be an array.`);
const boolean: Check = (v, l) =>
  [true, false, 0, 1, '0', '1', 'true', 'false'].includes(v as never) ? undefined : `The ${l} field must be true or false.`;
const between =
  (min: number, max: number): Check =>
  (v, l) => {
    const n = toNumber(v);
    return n !== undefined && n >= min && n <= max ? undefined : `The ${l} field must be between ${min} and ${max}.`;
  };
const maxChars =
  (max: number): Check =>
  (v, l) =>
    typeof v === 'string' && v.length > max ? `The ${l} field must not be greater than ${max} characters.` : undefined;
const maxKilobytes =
  (kb: number): Check =>
  (v, l) =>
    v instanceof File && v.size > kb * 1024 ? `The ${l} field must not be greater than ${kb} kilobytes.` : undefined;
const url: Check = (v, l) =>
  typeof v === 'string' && /^https?:\/\//i.test(v) && URL.canParse(v) ? undefined : `The ${l} field must be a valid URL.`;
const stringOrArray: Check = (v, l) => (typeof v === 'string' || Array.isArray(v) ? undefined : `The ${l} field must be a string or an array.`);
const maxItems =
  (max: number): Check =>
  (v, l) =>
    Array.isArray(v) && v.length > max ? `The ${l} field must not have more than ${max} items.` : undefined;
const jsonOrArray: Check = (v, l) => {
  if (Array.isArray(v)) return undefined;
  if (typeof v === 'string') {
    try {
      if (Array.isArray(JSON.parse(v))) return undefined;
    } catch {
      // fall through
    }
  }
  return `The ${l} field must be a valid JSON string.`;
};

const webhookUrl: FieldRule = { field: 'webhook_url', checks: [string, url, maxChars(2048)] };
const model: FieldRule = { field: 'model', required: true, checks: [string] };

const RULES: Partial<Record<FakeEndpoint, FieldRule[]>> = {
  txt2img: [
    { field: 'prompt', required: true, checks: [string] },
    { field: 'negative_prompt', checks: [string] },
    model,
    { field: 'width', required: true, checks: [integer, between(256, 2048)] },
    { field: 'height', required: true, checks: [integer, between(256, 2048)] },
    { field: 'steps', required: true, checks: [integer, between(1, 50)] },
    { field: 'guidance', checks: [numeric, between(0, 20)] },
    { field: 'seed', checks: [integer] },
    { field: 'loras', checks: [array] },
    webhookUrl,
  ],
  img2img: [
    { field: 'image', required: true, checks: [file, maxKilobytes(10_240)] },
    { field: 'prompt', required: true, checks: [string] },
    { field: 'negative_prompt', checks: [string] },
    model,
    { field: 'steps', required: true, checks: [integer, between(1, 50)] },
    { field: 'seed', required: true, checks: [integer] },
    { field: 'width', checks: [integer, between(256, 2048)] },
    { field: 'height', checks: [integer, between(256, 2048)] },
    { field: 'guidance', checks: [numeric, between(0, 20)] },
    { field: 'loras', checks: [jsonOrArray] },
    webhookUrl,
  ],
  txt2embedding: [
    { field: 'input', required: true, checks: [stringOrArray, maxItems(2048)] },
    model,
    { field: 'return_result_in_response', checks: [boolean] },
    webhookUrl,
  ],
};

const GENERIC_RULES: FieldRule[] = [model, webhookUrl];

/** Validates `params` for `endpoint`; returns the Laravel `errors` object, or undefined when valid. */
export function validateParams(endpoint: FakeEndpoint, params: RawParams, strictModels = false): ValidationErrors | undefined {
  const errors: ValidationErrors = {};
  for (const rule of RULES[endpoint] ?? GENERIC_RULES) {
    const value = params[rule.field];
    if (isBlank(value)) {
      if (rule.required) errors[rule.field] = [`The ${label(rule.field)} field is required.`];
      continue;
    }
    for (const check of rule.checks) {
      const message = check(value, label(rule.field));
      if (message !== undefined) {
        errors[rule.field] = [message];
        break;
      }
    }
  }
  if (endpoint === 'txt2embedding' && Array.isArray(params['input']) && errors['input'] === undefined) {
    params['input'].forEach((item: unknown, i) => {
      if (typeof item !== 'string') errors[`input.${i}`] = [`The input.${i} field must be a string.`];
    });
  }
  if (strictModels && errors['model'] === undefined && typeof params['model'] === 'string') {
    checkModel(endpoint, params, errors);
  }
  return Object.keys(errors).length > 0 ? errors : undefined;
}

function checkModel(endpoint: FakeEndpoint, params: RawParams, errors: ValidationErrors): void {
  const found = findModel(params['model'] as string);
  if (!found || !found.inference_types.includes(endpoint)) {
    errors['model'] = ['The selected model is invalid.'];
    return;
  }
  if (endpoint !== 'txt2img' && endpoint !== 'img2img') return;
  const limits = found.info.limits;
  const step = limits.resolution_step;
  for (const [field, min, max] of [
    ['width', limits.min_width, limits.max_width],
    ['height', limits.min_height, limits.max_height],
    ['steps', limits.min_steps, limits.max_steps],
  ] as const) {
    if (errors[field] !== undefined) continue;
    const n = toInteger(params[field]);
    if (n === undefined) continue;
    if (min !== undefined && max !== undefined && (n < min || n > max)) {
      errors[field] = [`The ${field} field must be between ${min} and ${max}.`];
    } else if (field !== 'steps' && step !== undefined && n % step !== 0) {
      errors[field] = [`The ${field} field must be a multiple of ${step}.`];
    }
  }
}

/** The text scanned for `FAIL:` markers and used as the resubmission key. */
export function primaryText(params: Readonly<Record<string, unknown>>): string {
  for (const key of ['prompt', 'input', 'text', 'caption', 'lyrics']) {
    const value = params[key];
    if (typeof value === 'string') return value;
    if (Array.isArray(value)) return value.map(String).join('\n');
  }
  return '';
}
