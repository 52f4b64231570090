/**
 * Fault injection: scripted (`failNext`) faults first, then random ones drawn
 * from the seeded PRNG. At most one fault per request.
 */
import { checkNumber } from '../internal/validate.js';
import type { Error5xxStatus, FakeEndpoint, FaultOptions } from './options.js';
import { mergeFaults } from './options.js';
import type { Prng } from './prng.js';

/**
 * - `'500'`: the app fails after the limiter (counted, no job, JSON body, rate-limit headers).
 * - `'502' | '503' | '504'`: the gateway fails before the app (not counted, HTML body, no rate-limit headers).
 * - `'reset'`: the socket is destroyed before anything happens (not counted, no job).
 * - `'accept-then-reset'`: processed normally (counted, job created on submits), then the socket is destroyed.
 * - `'slow'`: processed normally, the response held back `faults.slowMs` on the server clock.
 * - `'malformed-json'`: processed normally, the body truncated mid-JSON (status unchanged).
 * - `'no-headers'`: processed normally without any rate-limit header (`Retry-After` stays on 429).
 * - `'401'`: answered 401 `Unauthenticated.` whatever the key (not counted).
 */
export type FaultKind =
  | '500'
  | '502'
  | '503'
  | '504'
  | 'reset'
  | 'accept-then-reset'
  | 'slow'
  | 'malformed-json'
  | 'no-headers'
  | '401';

export const FAULT_KINDS: readonly FaultKind[] = [
  '500',
  '502',
  '503',
  '504',
  'reset',
  'accept-then-reset',
  'slow',
  'malformed-json',
  'no-headers',
  '401',
];

/** What a fault filter sees of a request. */
export interface FaultRequestInfo {
  /** `GET`, `POST`, ... */
  method: string;
  /** The route key as in `stats().requests.byRoute`, e.g. `'POST /txt2img'`, `'GET /request-status'`. */
  route: string;
  /** The job endpoint for submits and price calculations. */
  endpoint?: FakeEndpoint;
  /** True for a job-creating `POST /{endpoint}`. */
  submit: boolean;
}

export type FaultFilter = (request: FaultRequestInfo) => boolean;

interface Scripted {
  kind: FaultKind;
  remaining: number;
  filter: FaultFilter | undefined;
}

export class FaultInjector {
  #rates: Required<FaultOptions>;
  readonly #prng: Prng;
  readonly #queue: Scripted[] = [];

  constructor(rates: Required<FaultOptions>, prng: Prng) {
    this.#rates = rates;
    this.#prng = prng;
  }

  get rates(): Readonly<Required<FaultOptions>> {
    return this.#rates;
  }

  /** Merges and validates a patch of rates. */
  set(patch: FaultOptions): void {
    this.#rates = mergeFaults(this.#rates, patch);
  }

  failNext(kind: FaultKind, count: number, filter: FaultFilter | undefined): void {
    if (!FAULT_KINDS.includes(kind)) {
      throw new TypeError(`Expected \`kind\` to be one of ${FAULT_KINDS.join(', ')}, got \`${String(kind)}\``);
    }
    checkNumber('count', count, { min: 1, integer: true });
    this.#queue.push({ kind, remaining: count, filter });
  }

  /** Scripted faults not yet consumed. */
  get pendingScripted(): number {
    return this.#queue.reduce((n, s) => n + s.remaining, 0);
  }

  clearScripted(): void {
    this.#queue.length = 0;
  }

  /** The fault for this request, if any. Consumes a scripted one when it matches. */
  draw(info: FaultRequestInfo): FaultKind | undefined {
    for (let i = 0; i < this.#queue.length; i++) {
      const s = this.#queue[i];
      if (!s || (s.filter && !s.filter(info))) continue;
      if (--s.remaining === 0) this.#queue.splice(i, 1);
      return s.kind;
    }
    const r = this.#rates;
    const acceptThenReset = info.submit ? r.acceptThenResetRate : 0;
    const total = r.resetRate + r.error5xxRate + acceptThenReset + r.slowRate + r.malformedJsonRate;
    if (total <= 0) return undefined;
    let u = this.#prng.next();
    if ((u -= r.resetRate) < 0) return 'reset';
    if ((u -= r.error5xxRate) < 0) return String(this.#pick5xx()) as FaultKind;
    if ((u -= acceptThenReset) < 0) return 'accept-then-reset';
    if ((u -= r.slowRate) < 0) return 'slow';
    if ((u -= r.malformedJsonRate) < 0) return 'malformed-json';
    return undefined;
  }

  #pick5xx(): Error5xxStatus {
    const statuses = this.#rates.error5xxStatuses;
    return statuses[statuses.length === 1 ? 0 : this.#prng.int(statuses.length)] ?? 500;
  }
}
