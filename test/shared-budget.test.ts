/**
 * What sharing adds to the budget rules (shared-budget.ts and the trust
 * options of BudgetState.settle), on plain documents: no Redis needed, every
 * value exact.
 */
import { describe, expect, it } from 'vitest';
import { BudgetState } from '../src/store/budget-state.js';
import { SharedBudget, createDoc, parseDoc, type SharedDoc } from '../src/store/shared-budget.js';
import type { Outcome, Ticket } from '../src/store/types.js';
import { config, snap } from './helpers/store-cases.js';

const T = 1_000_000;
const cfg = config({ seeds: { minute: 10, daily: 100 }, leaseMs: 500 });

function doc(): SharedDoc {
  return createDoc(cfg, 'g1');
}

function at(d: SharedDoc, now: number): SharedBudget {
  const b = new SharedBudget(d, cfg);
  b.at(now);
  return b;
}

function outcome(now: number, extra: Partial<Outcome> = {}): Outcome {
  return { now, status: 200, snapshot: undefined, sent: true, jitterMs: 0, fallbackGateMs: 1000, ...extra };
}

/** Grants `n` units at `now` and returns the document after it, with their tickets. */
function granted(n: number, now = T): { d: SharedDoc; tickets: Ticket[] } {
  const b = at(doc(), now);
  const r = b.reserve(n, Infinity, 'p.1:', cfg.leaseMs);
  const tickets = Array.from({ length: r.granted }, (_, i) => ({ ...r.ticket, lease: `p.1:${i}` }));
  return { d: b.toDoc(), tickets };
}

describe('leases', () => {
  it('every granted unit is leased until leaseMs later; the earliest expiry is reported', () => {
    const b = at(doc(), T);
    const r = b.reserve(3, Infinity, 'p.1:', 500);
    expect(r.granted).toBe(3);
    expect(r.leasePrefix).toBe('p.1:');
    expect(b.doc.leases).toEqual({ 'p.1:0': T + 500, 'p.1:1': T + 500, 'p.1:2': T + 500 });
    expect(r.oldestLease).toEqual({ expiresAt: T + 500, id: 'p.1:0' });
  });

  it('an expired lease is reclaimed as an answer of unknown outcome: done + 1, nothing raised', () => {
    const { d } = granted(3);
    const b = at(d, T + 500);
    const r = b.reserve(0, Infinity, 'p.2:', 500);
    expect(r.reclaimed).toBe(3);
    expect(b.doc.leases).toEqual({});
    expect(b.state.data.done).toBe(3);
    expect(b.state.data.minute.unc).toBe(3); // still uncounted: their answers were never seen
  });

  it('a lease not yet expired stays', () => {
    const { d } = granted(2);
    const b = at(d, T + 499);
    expect(b.reserve(0, Infinity, 'p.2:', 500).reclaimed).toBe(0);
    expect(Object.keys(b.doc.leases)).toHaveLength(2);
  });

  it('settling releases the lease and counts the answer once', () => {
    const { d, tickets } = granted(2);
    const b = at(d, T + 10);
    b.settle(tickets[0]!, outcome(T + 10), false);
    expect(Object.keys(b.doc.leases)).toEqual(['p.1:1']);
    expect(b.state.data.done).toBe(1);
    b.settle(tickets[0]!, outcome(T + 11), false); // a replay: its lease is gone
    expect(b.state.data.done).toBe(1);
  });
});

describe('answers that are not trusted (unknown lease, or a ticket of an earlier generation)', () => {
  function settledUntrusted(s: ReturnType<typeof snap> | undefined, status = 200): SharedBudget {
    const { d, tickets } = granted(2);
    const b = at(d, T + 10);
    b.settle(tickets[0]!, outcome(T + 10, { status, snapshot: s }), true);
    return b;
  }

  it('may lower the limit and the remaining count', () => {
    const b = settledUntrusted(snap({ limit: 6, remaining: 3 }, { limit: 50, remaining: 20 }));
    const { minute, daily } = b.state.data;
    expect([minute.limit, minute.rem, minute.srvRem]).toEqual([6, 3, -1]);
    expect([daily.limit, daily.rem]).toEqual([50, 20]);
    expect(minute.snapAt).toBe(T + 10);
  });

  it('never raises them', () => {
    const b = settledUntrusted(snap({ limit: 20, remaining: 20 }, { limit: 500, remaining: 500 }));
    const { minute, daily } = b.state.data;
    expect([minute.limit, minute.rem]).toEqual([10, 10]);
    expect([daily.limit, daily.rem]).toEqual([100, 100]);
  });

  it('never lowers uncounted, is not logged, and no count is absorbed from it', () => {
    const b = settledUntrusted(snap({ limit: 10, remaining: 9 }));
    expect(b.state.data.minute.unc).toBe(2);
    expect(b.state.data.daily.unc).toBe(2);
    expect(b.state.toJSON().log).toEqual([]);
  });

  it('a 429 still closes the gate', () => {
    const b = settledUntrusted(snap({ limit: 10, remaining: 0 }, undefined, { retryAfterMs: 300 }), 429);
    expect(b.state.data.gateUntil).toBe(T + 310);
  });

  it('an answer that never left gives nothing back', () => {
    const { d, tickets } = granted(2);
    const b = at(d, T + 10);
    b.settle(tickets[0]!, outcome(T + 10, { sent: false, status: undefined }), true);
    expect(b.state.data.minute.unc).toBe(2);
  });

  it('the same answer trusted lowers uncounted and is logged', () => {
    const { d, tickets } = granted(2);
    const b = at(d, T + 10);
    b.settle(tickets[0]!, outcome(T + 10, { snapshot: snap({ limit: 10, remaining: 9 }) }), false);
    expect(b.state.data.minute.unc).toBe(1);
    expect(b.state.toJSON().log).toEqual([[T, T + 10]]);
  });
});

describe('a state re-created after it was lost', () => {
  it('adopts the leases it does not hold: sent and uncounted grow by their number', () => {
    const { d } = granted(1);
    const b = at(d, T + 20);
    expect(b.adopt(['p.1:0', 'q.1:0', 'q.1:1'], 500)).toBe(2);
    expect(b.doc.leases).toEqual({ 'p.1:0': T + 500, 'q.1:0': T + 520, 'q.1:1': T + 520 });
    expect([b.state.data.sent, b.state.data.minute.unc, b.state.data.daily.unc]).toEqual([3, 3, 3]);
  });
});

describe('scopes in one document', () => {
  it('each scope has its budget, log and leases under scopes.<name>; the default scope stays at the top', () => {
    const b = at(doc(), T);
    const r = b.reserve(2, Infinity, 'p.1:', 500, true, 'txt2img');
    expect(r.ticket.scope).toBe('txt2img');
    expect(r.granted).toBe(1); // no seeds in another scope: one request until the first answer
    const d = b.toDoc();
    expect(d.leases).toEqual({});
    expect(d.scopes?.['txt2img']?.leases).toEqual({ 'p.1:0': T + 500 });
    expect(d.scopes?.['txt2img']?.budget.sent).toBe(1);
    expect(d.budget.sent).toBe(0);
    // Its answer settles in its scope, read back from the stored document.
    const b2 = at(parseDoc(JSON.stringify(d), 'test'), T + 10);
    b2.settle({ ...r.ticket, lease: 'p.1:0' }, outcome(T + 10, { snapshot: snap({ limit: 3, remaining: 2 }) }), false);
    expect(b2.view('txt2img').minute.limit).toBe(3);
    expect(b2.view().minute.limit).toBe(10); // the default scope keeps its seed
    expect(b2.toDoc().scopes?.['txt2img']?.leases).toEqual({});
  });

  it('leases expire and are reclaimed in their own scope; adopt puts each lease back in its scope', () => {
    const b = at(doc(), T);
    b.reserve(1, Infinity, 'p.1:', 500, true, 'a');
    b.reserve(3, Infinity, 'p.2:', 500);
    const later = at(b.toDoc(), T + 500);
    expect(later.reserve(0, Infinity, 'p.3:', 500, true, 'a').reclaimed).toBe(1);
    expect(later.stateOf('a').data.done).toBe(1);
    expect(later.state.data.done).toBe(0); // the default scope's leases wait for its own next reserve
    const lost = at(createDoc(cfg, 'g2'), T + 600);
    expect(lost.adopt([['x.1:0', 'a'], 'x.2:0', ['x.2:1', 'b']], 500)).toBe(3);
    expect([lost.stateOf('a').data.sent, lost.state.data.sent, lost.stateOf('b').data.sent]).toEqual([1, 1, 1]);
    expect(Object.keys(lost.toDoc().scopes ?? {}).sort()).toEqual(['a', 'b']);
  });
});

describe('what a process did alone while the store was away (absorbOffline)', () => {
  it('counts its requests as sent, answered and uncounted, and shares its gate and park', () => {
    const s = new BudgetState(cfg);
    s.absorbOffline(4, T + 300, T + 900, T);
    expect([s.data.sent, s.data.done, s.data.minute.unc, s.data.daily.unc]).toEqual([4, 4, 4, 4]);
    expect([s.data.gateUntil, s.data.gated, s.data.parkUntil, s.data.parked]).toEqual([T + 300, 1, T + 900, 1]);
  });

  it('ignores a gate or park already over, and never shortens a longer park', () => {
    const s = new BudgetState(cfg);
    s.absorbOffline(0, T - 1, T, T);
    expect([s.data.gateUntil, s.data.parked]).toEqual([0, 0]);
    s.absorbOffline(0, 0, T + 900, T);
    s.absorbOffline(0, 0, T + 500, T);
    expect(s.data.parkUntil).toBe(T + 900);
  });
});

describe('the backlog decides whether units are held back for a late probe or a scout', () => {
  /** A fixed window whose phase is known, with a late probe planned later in this window. */
  function known(): BudgetState {
    const s = new BudgetState(cfg);
    Object.assign(s.data.minute, { kind: 1, nextLo: T + 900, nextHi: T + 920, scoutAt: T + 775, rem: 5, srvRem: 5, lastSrvRem: 5, snapAt: T });
    s.data.headers = 1;
    return s;
  }

  it('with more work than budget, one unit waits for the late probe', () => {
    const r = known().reserve(5, T + 10, 10);
    expect(r.granted).toBe(4);
  });

  it('with no work beyond what is asked, nothing is held back', () => {
    const r = known().reserve(5, T + 10, 0);
    expect(r.granted).toBe(5);
  });

  it('by default (backlog unknown) there is assumed to be more work', () => {
    expect(known().reserve(5, T + 10).granted).toBe(4);
  });
});

describe('parseDoc', () => {
  it.each([
    ['not JSON', '{', /is not JSON/],
    ['another format', JSON.stringify({ format: 2 }), /has format 2; this version reads format 1/],
    ['a bare value', '42', /has format number/],
  ])('refuses %s, naming where', (_name, text, message) => {
    expect(() => parseDoc(text, 'k (redis://h)')).toThrow(message);
    expect(() => parseDoc(text, 'k (redis://h)')).toThrow(/k \(redis:\/\/h\)/);
  });

  it('reads back what createDoc wrote', () => {
    const d = doc();
    expect(parseDoc(JSON.stringify(d), 'k')).toEqual(d);
  });
});
