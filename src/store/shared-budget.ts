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
 * Every operation is a pure function of (document, inputs) → (document,
 * result): `RedisStore` reads the document, runs the operation in process and
 * writes the result back only if nobody wrote in between (compare-and-set),
 * else runs it again on the newer document.
 */
import { BudgetState, type BudgetStateData } from './budget-state.js';
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
  readonly state: BudgetState;
  #now: number;

  constructor(doc: SharedDoc, config: BudgetConfig) {
    this.doc = doc;
    // The stored windows win (init refuses a process whose windows differ).
    this.state = BudgetState.restore({ ...config, ...doc.cfg }, { data: doc.budget, log: doc.log });
    this.#now = 0;
  }

  /** The store time of the next operation. */
  get now(): number {
    return this.#now;
  }

  at(now: number): void {
    this.#now = now;
  }

  /** The view of the state as it is, without letting time raise anything (replies, stats). */
  currentView(): BudgetView {
    return this.state.currentView(this.#now);
  }

  /** The document after the operation, as stored. */
  toDoc(): SharedDoc {
    const { data, log } = this.state.toJSON();
    return { ...this.doc, budget: data, log };
  }

  /** Reclaims expired leases (each an answer of unknown outcome), then grants and leases up to `want`. */
  reserve(
    want: number,
    backlog: number,
    leasePrefix: string,
    leaseMs: number,
    countsDaily = true,
    keepDaily = 0,
  ): ReserveResult & { reclaimed: number; oldestLease: { expiresAt: number; id: string } | undefined } {
    const reclaimed = this.#reclaim();
    const result = this.state.reserve(want, this.now, backlog, countsDaily, keepDaily);
    for (let i = 0; i < result.granted; i++) this.doc.leases[`${leasePrefix}${i}`] = this.now + leaseMs;
    result.leasePrefix = result.granted > 0 ? leasePrefix : '';
    return { ...result, reclaimed, oldestLease: this.#oldestLease() };
  }

  /**
   * Settles one answer. Its lease is released; an unknown lease (reclaimed
   * already, or of a lost state) is not counted again, and its snapshot is
   * trusted only to lower the budget, as is one from an earlier generation.
   */
  settle(ticket: Ticket, outcome: Outcome, foreign: boolean): SettleResult {
    let known = true;
    if (ticket.lease !== '') {
      known = ticket.lease in this.doc.leases;
      delete this.doc.leases[ticket.lease];
    }
    return this.state.settle(ticket, { ...outcome, now: this.now }, { countDone: known, trusted: known && !foreign });
  }

  /** Registers leases still in flight that this state does not hold (see `BudgetState.adopt`). Returns how many. */
  adopt(leaseIds: Iterable<string>, leaseMs: number): number {
    let n = 0;
    for (const id of leaseIds) {
      if (id in this.doc.leases) continue;
      this.doc.leases[id] = this.now + leaseMs;
      n++;
    }
    if (n > 0) this.state.adopt(n);
    return n;
  }

  view(): BudgetView {
    return this.state.view(this.now);
  }

  #reclaim(): number {
    let n = 0;
    for (const [id, expiry] of Object.entries(this.doc.leases)) {
      if (expiry > this.now) continue;
      delete this.doc.leases[id];
      n++;
    }
    this.state.data.done += n;
    return n;
  }

  #oldestLease(): { expiresAt: number; id: string } | undefined {
    let oldest: { expiresAt: number; id: string } | undefined;
    for (const [id, expiresAt] of Object.entries(this.doc.leases)) {
      if (!oldest || expiresAt < oldest.expiresAt || (expiresAt === oldest.expiresAt && id < oldest.id)) oldest = { expiresAt, id };
    }
    return oldest;
  }
}
