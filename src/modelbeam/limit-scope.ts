/**
 * Limit scope: which requests share a rate-limit counter on the server.
 *
 * ModelBeam's docs (§7) limit Basic accounts per endpoint (RPM and RPD per
 * endpoint; the Whisper endpoints share one) and Premium accounts "across all
 * endpoints". The client gives each counter a budget scope of the scheduler
 * (`ScheduleOptions.scope`): one for the account, or one per route.
 *
 * - `'account'`: every request draws from one budget.
 * - `'endpoint'`: each route draws from its own (`routeOf`): each job
 *   endpoint, `request-status` (polls), `balance`, `models`,
 *   `price-calculation`; the Whisper endpoints share `transcription`.
 * - `'auto'` starts as `'account'` (the conservative reading: one budget can
 *   only under-use separate counters, while separate budgets would overrun a
 *   shared one several times over) and switches to `'endpoint'`, for good,
 *   once the answers show two routes on different counters (`compareReadings`).
 *
 * This module is pure: readings in, a decision out.
 */

export type LimitScope = 'auto' | 'account' | 'endpoint';

/** The Whisper transcription endpoints: one counter (deAPI's limits page), one scope. */
const TRANSCRIPTION = new Set(['transcribe', 'aud2txt', 'vid2txt', 'videofile2txt', 'audiofile2txt']);

/** The routes (scopes in `'endpoint'` mode) of the reads: their first path segment. */
const READS: Readonly<Record<string, string>> = { 'request-status': 'request-status', balance: 'balance', models: 'models' };

/**
 * The route a request counts on, from its path below the base URL:
 * `/txt2img` → `txt2img`, `/request-status/{id}` → `request-status`,
 * `/{endpoint}/price-calculation` → `price-calculation`, a Whisper endpoint → `transcription`.
 */
export function routeOf(path: string): string {
  const trimmed = path.replace(/^\/+/, '').split('?')[0] ?? '';
  if (trimmed.endsWith('/price-calculation')) return 'price-calculation';
  const first = trimmed.split('/')[0] ?? '';
  if (READS[first] !== undefined) return READS[first];
  if (TRANSCRIPTION.has(trimmed)) return 'transcription';
  return trimmed;
}

/** One answer's minute-window numbers, as the learner keeps them. */
export interface ScopeReading {
  route: string;
  limit: number | undefined;
  remaining: number | undefined;
  /** Answers received (of every route) before this request was sent. */
  answersAtSend: number;
  /** This answer's place in the order of arrival (1 for the first). */
  answerNo: number;
  /** Requests of this route sent before this one. */
  routeSent: number;
  /** When the answer arrived (the client's clock). */
  at: number;
}

/** What a pair of answers says: different counters, one counter, or nothing either way. */
export type Evidence = 'limits-differ' | 'separate' | 'shared' | 'none';

/**
 * What `next` says about its route's counter and `prev`'s (another route),
 * given `ownPrev`, the last answer of `next`'s own route before `prev`.
 * Only pairs the server surely counted in this order are compared: `next`
 * was sent after `prev` arrived, within one window (`windowMs`) of it.
 *
 * - Both state a minute limit and the limits differ: `'limits-differ'`
 *   (one counter has one limit).
 * - `next`'s `Remaining` is above `prev`'s (one counter would have freed at
 *   least two units in between), while `next`'s own route counted down from
 *   `ownPrev` (its counter did not reset meanwhile): `'separate'`.
 * - `next`'s `Remaining` fell below `prev`'s, and by more since `ownPrev`
 *   than its own route sent: something else counted there, as on a shared
 *   counter: `'shared'`.
 * - Anything else (a reset explains it, or too little is known): `'none'`.
 */
export function compareReadings(prev: ScopeReading, next: ScopeReading, ownPrev: ScopeReading | undefined, windowMs: number): Evidence {
  if (prev.route === next.route) return 'none';
  if (next.answersAtSend < prev.answerNo || next.at - prev.at > windowMs) return 'none';
  if (prev.limit !== undefined && next.limit !== undefined && prev.limit !== next.limit) return 'limits-differ';
  if (prev.remaining === undefined || next.remaining === undefined) return 'none';
  const own =
    ownPrev !== undefined && ownPrev.route === next.route && ownPrev.remaining !== undefined && ownPrev.answerNo < prev.answerNo && next.at - ownPrev.at <= windowMs
      ? ownPrev
      : undefined;
  if (own === undefined) return 'none';
  const ownSent = next.routeSent - own.routeSent;
  const ownRemaining = own.remaining as number;
  if (next.remaining > prev.remaining && next.remaining < ownRemaining) return 'separate';
  if (next.remaining < prev.remaining && next.remaining < ownRemaining - ownSent) return 'shared';
  return 'none';
}

/** How many `'separate'` answers (more than the `'shared'` ones) switch `'auto'` to per-endpoint scopes. */
export const SEPARATE_VOTES = 2;

/** What the learner has concluded. */
export type ScopeMode = 'account' | 'endpoint';

/**
 * The decision after one more piece of evidence: `'endpoint'` at once when
 * two routes state different limits, or once `SEPARATE_VOTES` answers showed
 * separate counters and outnumber those that showed one; otherwise
 * `'account'`. Sticky: `'endpoint'` is never taken back.
 */
export function decide(mode: ScopeMode, votes: { separate: number; shared: number }, evidence: Evidence): ScopeMode {
  if (mode === 'endpoint') return mode;
  if (evidence === 'limits-differ') return 'endpoint';
  if (votes.separate >= SEPARATE_VOTES && votes.separate > votes.shared) return 'endpoint';
  return 'account';
}

/**
 * Learns the limit scope from answers (`'auto'`), or holds the one given.
 * `scopeFor(route)` is the scheduler scope a request on `route` draws from
 * (undefined: the default, shared scope).
 */
export class ScopeLearner {
  #mode: ScopeMode;
  readonly #learning: boolean;
  readonly #windowMs: number;
  #answers = 0;
  readonly #sent = new Map<string, number>();
  /** The newest answer, and the newest answer of each route. */
  #last: ScopeReading | undefined;
  readonly #lastOf = new Map<string, ScopeReading>();
  readonly #votes = { separate: 0, shared: 0 };

  constructor(limitScope: LimitScope, windowMs: number) {
    this.#mode = limitScope === 'endpoint' ? 'endpoint' : 'account';
    this.#learning = limitScope === 'auto';
    this.#windowMs = windowMs;
  }

  /** The current decision. */
  get mode(): ScopeMode {
    return this.#mode;
  }

  /** True while answers are still read (`'auto'` not yet decided on per-endpoint scopes). */
  get learning(): boolean {
    return this.#learning && this.#mode === 'account';
  }

  scopeFor(route: string): string | undefined {
    return this.#mode === 'endpoint' ? route : undefined;
  }

  /** A request on `route` leaves: what the learner must remember of that moment. */
  sent(route: string): { answersAtSend: number; routeSent: number } {
    const routeSent = this.#sent.get(route) ?? 0;
    this.#sent.set(route, routeSent + 1);
    return { answersAtSend: this.#answers, routeSent };
  }

  /**
   * Its answer arrived, with the minute window's numbers (undefined when the
   * answer had none). Returns the evidence it gave.
   */
  answered(route: string, at: { answersAtSend: number; routeSent: number }, now: number, limit: number | undefined, remaining: number | undefined): Evidence {
    const reading: ScopeReading = { route, limit, remaining, answersAtSend: at.answersAtSend, routeSent: at.routeSent, answerNo: ++this.#answers, at: now };
    if (!this.learning || (limit === undefined && remaining === undefined)) return 'none';
    const prev = this.#last;
    const evidence = prev ? compareReadings(prev, reading, this.#lastOf.get(route), this.#windowMs) : 'none';
    if (evidence === 'separate') this.#votes.separate++;
    else if (evidence === 'shared') this.#votes.shared++;
    this.#mode = decide(this.#mode, this.#votes, evidence);
    this.#last = reading;
    this.#lastOf.set(route, reading);
    return evidence;
  }
}
