/**
 * Checks of the per-call options of `ModelBeamClient` (`submit`, `generate`,
 * `wait`, `status`, `balance`, `price`, `models`): a typo or a wrong type is a
 * `TypeError` naming the option before anything is queued or sent, as for the
 * constructor's options.
 */
import { invalid, unknownOption } from '../internal/validate.js';

type Check = (name: string, value: unknown) => void;

const signal: Check = (name, value) => {
  if (!(value instanceof AbortSignal)) invalid(name, 'an AbortSignal', value);
};
const finite: Check = (name, value) => {
  if (typeof value !== 'number' || !Number.isFinite(value)) invalid(name, 'a finite number', value);
};
const callback: Check = (name, value) => {
  if (typeof value !== 'function') invalid(name, 'a function', value);
};
const text: Check = (name, value) => {
  if (typeof value !== 'string' || value === '') invalid(name, 'a non-empty string', value);
};

const SUBMIT = { signal, priority: finite, onDispatch: callback };
const GENERATE = { ...SUBMIT, onSubmitted: callback };
const WAIT = { signal, endpoint: text, model: text, submittedAt: finite };
const CALL = { signal };
const positiveInteger: Check = (name, value) => {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) invalid(name, 'an integer >= 1', value);
};
const flag: Check = (name, value) => {
  if (typeof value !== 'boolean') invalid(name, 'a boolean', value);
};
const ESTIMATE = { signal, concurrency: positiveInteger, balance: flag };

/** The option checks of each method, by option name. */
export const CALL_OPTIONS = { submit: SUBMIT, generate: GENERATE, wait: WAIT, call: CALL, estimate: ESTIMATE } as const;

/**
 * Throws a `TypeError` for an options argument that is not an object, has a
 * key the method does not know, or a value of the wrong type. `undefined`
 * values are allowed (they mean "not given").
 */
export function checkCallOptions(options: unknown, checks: Readonly<Record<string, Check>>): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) invalid('options', 'an object', options);
  for (const [key, value] of Object.entries(options)) {
    const check = checks[key];
    if (!check) unknownOption('', key, Object.keys(checks));
    if (value !== undefined) check(key, value);
  }
}
