/**
 * The shared budget: what `RedisStore` keeps in Redis for one account, and the
 * operations every process runs on it. The budget rules are `BudgetState`'s,
 * the same code `MemoryStore` runs; this module adds only what sharing needs:
 *
 * - leases: every granted unit is held under an id until it is settled; an
 *   expired lease (its process died or stalled) is reclaimed as an answer of
 *   unknown outcome;
 * - generations: a state lost in Redis (a flush, a restart without
 *   persistence) is re-created under a new id, and each process re-registers
 *   what it still has in flight (`adopt`); answers to requests of an earlier
 *   generation are trusted only to lower the budget;
 * - one clock: every time in the state is Redis time (`RedisStore` turns
 *   its engine's times into Redis time before an operation runs).
 *
 * - scopes: the default scope's state sits at the top of the document, every
 *   other scope's (its budget, log and leases) under `scopes`, all in the one
 *   document of the account, written together.
 *
 * Every operation is a pure function of (document, inputs) → (document,
 * result): `RedisStore` reads the document, runs the operation in process and
 * writes the result back only if nobody wrote in between (compare-and-set),
 * else runs it again on the newer document.
 */
import { BudgetState, type BudgetStateData } from './budget-state.js';
import { DEFAULT_SCOPE, scopeConfig, scopeOf } from './scope.js';
import type { BudgetConfig, BudgetView, Outcome, ReserveResult, SettleResult, Ticket } from './types.js';

/** The JSON document kept in Redis. */
export interface SharedDoc {
  /** Format of the document; a process that reads another refuses it. */
  format: 1;
  /** Generation id: new whenever the state is created. */
  gen: string;
  /** The windows of the process that created the state: every process must run the same. */
  cfg: { minuteMs: number; dayMs: number; marginMs: number };
  budget: BudgetStateData;
  /** The answer log, oldest first: [sentAt, recvAt]. */
  log: [number, number][];
  /** Lease id → expiry (store time). */
  leases: Record<string, number>;
  /** The other scopes' states, by name (absent while only the default scope is used). */
  scopes?: Record<string, ScopeDoc>;
}

/** One non-default scope's part of the document. */
export interface ScopeDoc {
  budget: BudgetStateData;
  log: [number, number][];
  leases: Record<string, number>;
}

/** One scope's state and leases, as an operation works on them. */
interface ScopePart {
  state: BudgetState;
  leases: Record<string, number>;
}

export const DOC_FORMAT = 1;

/** A new account state, for a process with `config`. */
export function createDoc(config: BudgetConfig, gen: string): SharedDoc {
  const { data, log } = new BudgetState(config).toJSON();
  return {
    format: DOC_FORMAT,
    gen,
    cfg: { minuteMs: config.minuteMs, dayMs: config.dayMs, marginMs: config.marginMs },
    budget: data,
    log,
    leases: {},
  };
}

/** Parses a stored document; throws a TypeError naming what is wrong. */
export function parseDoc(text: string, where: string): SharedDoc {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new TypeError(`RedisStore: the shared state at ${where} is not JSON; it was not written by this library`);
  }
  const d = doc as Partial<SharedDoc> | null;
  if (d === null || typeof d !== 'object' || d.format !== DOC_FORMAT || typeof d.gen !== 'string' || !d.budget || !d.cfg) {
    const format = d !== null && typeof d === 'object' ? String(d.format) : typeof d;
    throw new TypeError(`RedisStore: the shared state at ${where} has format ${format}; this version reads format ${DOC_FORMAT}`);
  }
  return d as SharedDoc;
}

/** Operations on one read of the document, in order, each at the store time `at` set. */
export class SharedBudget {
  readonly doc: SharedDoc;
  readonly #config: BudgetConfig;
  /** Scopes read from the document (or created) by this run of operations. */
  readonly #parts = new Map<string, ScopePart>();
  #now: number;

  constructor(doc: SharedDoc, config: BudgetConfig) {
    this.doc = doc;
    // The stored windows win (init refuses a process whose windows differ).
    this.#config = { ...config, ...doc.cfg };
    this.#parts.set(DEFAULT_SCOPE, { state: BudgetState.restore(this.#config, { data: doc.budget, log: doc.log }), leases: doc.leases });
    this.#now = 0;
  }

  /** The default scope's state. */
  get state(): BudgetState {
    return this.#part(DEFAULT_SCOPE).state;
  }

  /** The state of `scope` (created on first use). */
  stateOf(scope: string): BudgetState {
    return this.#part(scope).state;
  }

  /** Every scope the document holds. */
  scopes(): string[] {
    return [DEFAULT_SCOPE, ...Object.keys(this.doc.scopes ?? {}).filter((s) => s !== DEFAULT_SCOPE)];
  }

  /** The store time of the next operation. */
  get now(): number {
    return this.#now;
  }

  at(now: number): void {
    this.#now = now;
  }

  /** The view of a scope's state as it is, without letting time raise anything (replies, stats). */
  currentView(scope = DEFAULT_SCOPE): BudgetView {
    return this.#part(scope).state.currentView(this.#now);
  }

  /** The views of the scopes these operations read or wrote, as they are now (see `currentView`). */
  touchedViews(): Map<string, BudgetView> {
    const views = new Map<string, BudgetView>();
    for (const [scope, part] of this.#parts) views.set(scope, part.state.currentView(this.#now));
    return views;
  }

  /** The document after the operations, as stored. */
  toDoc(): SharedDoc {
    const { data, log } = this.state.toJSON();
    const out: SharedDoc = { ...this.doc, budget: data, log, leases: this.#part(DEFAULT_SCOPE).leases };
    let scopes: Record<string, ScopeDoc> | undefined = this.doc.scopes ? { ...this.doc.scopes } : undefined;
    for (const [name, part] of this.#parts) {
      if (name === DEFAULT_SCOPE) continue;
      const json = part.state.toJSON();
      scopes ??= {};
      scopes[name] = { budget: json.data, log: json.log, leases: part.leases };
    }
    if (scopes) out.scopes = scopes;
    return out;
  }

  /** Reclaims the scope's expired leases (each an answer of unknown outcome), then grants and leases up to `want`. */
  reserve(
    want: number,
    backlog: number,
    leasePrefix: string,
    leaseMs: number,
    countsDaily = true,
    scope = DEFAULT_SCOPE,
    keepDaily = 0,
  ): ReserveResult & { reclaimed: number; oldestLease: { expiresAt: number; id: string } | undefined } {
    const part = this.#part(scope);
    const reclaimed = this.#reclaim(part);
    const result = part.state.reserve(want, this.now, backlog, countsDaily, keepDaily);
    for (let i = 0; i < result.granted; i++) part.leases[`${leasePrefix}${i}`] = this.now + leaseMs;
    result.leasePrefix = result.granted > 0 ? leasePrefix : '';
    if (scope !== DEFAULT_SCOPE) result.ticket.scope = scope;
    return { ...result, reclaimed, oldestLease: oldestLease(part.leases) };
  }

  /**
   * Settles one answer in its ticket's scope. Its lease is released; an
   * unknown lease (reclaimed already, or of a lost state) is not counted
   * again, and its snapshot is trusted only to lower the budget, as is one
   * from an earlier generation.
   */
  settle(ticket: Ticket, outcome: Outcome, foreign: boolean): SettleResult {
    const part = this.#part(scopeOf(ticket));
    let known = true;
    if (ticket.lease !== '') {
      known = ticket.lease in part.leases;
      delete part.leases[ticket.lease];
    }
    return part.state.settle(ticket, { ...outcome, now: this.now }, { countDone: known, trusted: known && !foreign });
  }

  /**
   * Registers leases still in flight that this state does not hold (see
   * `BudgetState.adopt`), each in its scope: a lease id (default scope) or
   * `[leaseId, scope]`. Returns how many.
   */
  adopt(leases: Iterable<string | readonly [string, string]>, leaseMs: number): number {
    let n = 0;
    const byScope = new Map<string, number>();
    for (const lease of leases) {
      const [id, scope] = typeof lease === 'string' ? [lease, DEFAULT_SCOPE] : lease;
      const part = this.#part(scope);
      if (id in part.leases) continue;
      part.leases[id] = this.now + leaseMs;
      byScope.set(scope, (byScope.get(scope) ?? 0) + 1);
      n++;
    }
    for (const [scope, count] of byScope) this.#part(scope).state.adopt(count);
    return n;
  }

  view(scope = DEFAULT_SCOPE): BudgetView {
    return this.#part(scope).state.view(this.now);
  }

  #part(scope: string): ScopePart {
    let part = this.#parts.get(scope);
    if (part) return part;
    const saved = this.doc.scopes?.[scope];
    const config = scopeConfig(this.#config, scope);
    part = saved
      ? { state: BudgetState.restore(config, { data: saved.budget, log: saved.log }), leases: saved.leases }
      : { state: new BudgetState(config), leases: {} };
    this.#parts.set(scope, part);
    return part;
  }

  #reclaim(part: ScopePart): number {
    let n = 0;
    for (const [id, expiry] of Object.entries(part.leases)) {
      if (expiry > this.now) continue;
      delete part.leases[id];
      n++;
    }
    part.state.data.done += n;
    return n;
  }
}

function oldestLease(leases: Record<string, number>): { expiresAt: number; id: string } | undefined {
  let oldest: { expiresAt: number; id: string } | undefined;
  for (const [id, expiresAt] of Object.entries(leases)) {
    if (!oldest || expiresAt < oldest.expiresAt || (expiresAt === oldest.expiresAt && id < oldest.id)) oldest = { expiresAt, id };
  }
  return oldest;
}
