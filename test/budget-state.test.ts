import { describe, expect, it } from 'vitest';
import { BudgetState } from '../src/store/budget-state.js';
import type { Outcome, Ticket } from '../src/store/types.js';
import { MemoryStore } from '../src/store/memory-store.js';
import { record, scenarios } from './helpers/store-cases.js';

const config = { minuteMs: 1000, dayMs: 100_000, seeds: {}, marginMs: 2, leaseMs: 5000 };
const ticketOf = (r: ReturnType<BudgetState['reserve']>): Ticket => ({ ...r.ticket, lease: '' });
const outcome = (now: number, status: number | undefined, sent = true): Outcome => ({
  now,
  status,
  snapshot: undefined,
  sent,
  jitterMs: 0,
  fallbackGateMs: 1000,
});

describe('budget state: nothing known yet', () => {
  it.each([
    ['a give-back (never sent)', undefined, false],
    ['a network error', undefined, true],
    ['a gateway 502 without headers', 502, true],
    ['a 503 without headers', 503, true],
  ] as const)('%s proves nothing: still one request at a time', (_name, status, sent) => {
    const state = new BudgetState(config);
    const first = state.reserve(5, 0);
    expect(first.granted).toBe(1);
    state.settle(ticketOf(first), outcome(1, status, sent));
    expect(state.reserve(100, 2).granted).toBe(1);
  });

  it('a counted answer without headers proves the server sends none', () => {
    const state = new BudgetState(config);
    const first = state.reserve(5, 0);
    state.settle(ticketOf(first), outcome(1, 200));
    expect(state.reserve(100, 2).granted).toBe(100);
  });
});

describe('budget state: answers without a count', () => {
  const snapOf = (limit: number, remaining: number, retryAfterMs?: number): Outcome['snapshot'] => ({
    minute: { limit, remaining },
    daily: {},
    present: true,
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  });
  const answer = (now: number, status: number, snapshot?: Outcome['snapshot']): Outcome => ({ ...outcome(now, status), snapshot });
  /** Sends `want` requests at `now` (backlog 0: no unit is held back for a scout); all must be granted. */
  const send = (state: BudgetState, want: number, now: number): Ticket => {
    const r = state.reserve(want, now, 0);
    expect(r.granted).toBe(want);
    return ticketOf(r);
  };

  it('after a time raise, a header-less answer is counted: no "refresh" request into a spent window', () => {
    const state = new BudgetState(config);
    state.settle(send(state, 1, 0), answer(1, 200, snapOf(2, 1)));
    state.settle(send(state, 1, 1), answer(2, 200, snapOf(2, 0)));
    // 1003: the first answer has left every window; its unit comes back (a count, not a guess)
    state.settle(send(state, 1, 1003), answer(1004, 200));
    state.settle(send(state, 1, 1004), answer(1005, 200));
    // both header-less answers were counted by the server: nothing is left until they expire
    const c = state.reserve(1, 1005, 0);
    expect(c.granted).toBe(0);
    expect(c.blockedBy).toBe('budget');
    expect(c.retryAt).toBeGreaterThan(1005);
  });

  it('after a 429 gate, a header-less answer to the probe lets another request read the numbers', () => {
    const state = new BudgetState(config);
    state.settle(send(state, 1, 0), answer(1, 200, snapOf(2, 1)));
    state.settle(send(state, 1, 1), answer(2, 429, snapOf(2, 0, 500)));
    expect(state.reserve(1, 400, 0).granted).toBe(0);
    const probe = state.reserve(3, 503, 0);
    expect(probe.granted).toBe(1);
    state.settle(ticketOf(probe), answer(504, 200));
    expect(state.reserve(3, 504, 0).granted).toBe(1);
  });

  it('header-less answers counted since the previous snapshot reveal a reset that a lower fresh Remaining hides', () => {
    const state = new BudgetState({ ...config, seeds: {} });
    state.settle(send(state, 1, 0), answer(1, 200, snapOf(5, 4)));
    // three requests late in the window, answered without headers
    const late = send(state, 3, 900);
    for (let i = 0; i < 3; i++) state.settle(late, answer(905, 200));
    // the window resets at 1000; two requests go after it, and the one processed second answers first
    const next = send(state, 2, 1003);
    state.settle(next, answer(1004, 200, snapOf(5, 3)));
    state.settle(next, answer(1005, 200, snapOf(5, 4)));
    // 3 is below the previous 4, but 4 - 3 header-less answers - 1 = 0 would be the count without a reset:
    // the window reset, and the three late answers must not come back again at 1907
    const view = state.view(1950);
    expect(view.minute.kind).toBe('fixed');
    expect(view.minute.available).toBeLessThanOrEqual(3);
    expect(state.reserve(5, 1950, 0).granted).toBeLessThanOrEqual(3);
  });

  it('a state saved without zeroAt (an older version) reads as none seen', () => {
    const saved = new BudgetState(config).toJSON();
    delete (saved.data.minute as Partial<typeof saved.data.minute>).zeroAt;
    expect(BudgetState.restore(config, saved).data.minute.zeroAt).toBe(0);
  });

  it('answers out of order: no refresh request after a fresh count the server had already spent (a stale 0 came first)', () => {
    // Limit 7. The server takes A, P, X, Y, L, F, Z in that order (Remaining 6 down to 0); the answers come
    // back A, P, L (lowering), then F is sent, then X and Y (ignored, absorbed), Z's 0 (ignored), F's fresh 1.
    const state = new BudgetState(config);
    state.settle(send(state, 1, 0), answer(1, 200, snapOf(7, 6)));
    const [p, x, y, l, z] = [send(state, 1, 2), send(state, 1, 2), send(state, 1, 2), send(state, 1, 2), send(state, 1, 2)];
    state.settle(p, answer(3, 200, snapOf(7, 5)));
    state.settle(l, answer(4, 200, snapOf(7, 2)));
    const f = send(state, 1, 5);
    state.settle(x, answer(6, 200, snapOf(7, 4)));
    state.settle(y, answer(7, 200, snapOf(7, 3)));
    state.settle(z, answer(8, 200, snapOf(7, 0)));
    state.settle(f, answer(9, 200, snapOf(7, 1)));
    // Nothing in flight; Z's count may not be in F's, and Z said 0: the window is full.
    expect(state.view(10).minute.available).toBe(0);
    expect(state.reserve(1, 10, 0).granted).toBe(0);
  });
});

describe('budget state: a server count above its limit', () => {
  it('is read as the limit (a limit lowered mid-window may still report the old count)', () => {
    const state = new BudgetState(config);
    const first = state.reserve(1, 0);
    state.settle(ticketOf(first), { ...outcome(5, 200), snapshot: { minute: { limit: 4, remaining: 9 }, daily: {}, present: true } });
    expect(state.view(6).minute).toMatchObject({ limit: 4, remaining: 4, available: 4 });
    expect(state.reserve(4, 7, 0).granted).toBe(4);
  });
});

describe('budget state: untrusted answers (shared stores: a lost lease, an earlier generation)', () => {
  const snapOf = (limit: number, remaining: number): Outcome['snapshot'] => ({ minute: { limit, remaining }, daily: {}, present: true });
  const untrusted = { countDone: false, trusted: false };

  it('an answer older than the count it lowers does not bring the raise forward (a settle replayed after an outage)', () => {
    const state = new BudgetState(config);
    const first = state.reserve(1, 1000);
    state.settle(ticketOf(first), { ...outcome(1010, 200), snapshot: snapOf(40, 1) });
    // Answered at 100, replayed now: it lowers the count, but what the count of 1010 saw still counts until 2012.
    state.settle(ticketOf(first), { ...outcome(100, 200), snapshot: snapOf(40, 0) }, untrusted);
    expect(state.view(1500).minute).toMatchObject({ remaining: 0, available: 0 });
    expect(state.reserve(5, 1500, 0).granted).toBe(0);
    expect(state.reserve(5, 1010 + 1000 + 2, 0).granted).toBe(5);
  });
});

describe('budget state: resets the server states', () => {
  const minuteSnap = (limit: number, remaining: number, resetInMs?: number): Outcome['snapshot'] => ({
    minute: resetInMs === undefined ? { limit, remaining } : { limit, remaining, resetInMs },
    daily: {},
    present: true,
  });
  const cfg = { ...config, minuteMs: 60_000, marginMs: 50 };

  it('a stated reset in whole seconds brackets the next reset within the second before it', () => {
    const state = new BudgetState(cfg);
    const first = state.reserve(1, 1000);
    state.settle(ticketOf(first), { ...outcome(1040, 200), snapshot: minuteSnap(10, 9, 30_000) });
    // Rounded up: the reset is after sentAt + 29 s and no later than now + 30 s.
    expect(state.view(1041).minute).toMatchObject({ kind: 'fixed', nextResetAfter: 30_000, nextResetBy: 31_040 });
  });

  it('the budget comes back right after the stated reset, one read first', () => {
    const state = new BudgetState(cfg);
    const first = state.reserve(1, 1000);
    state.settle(ticketOf(first), { ...outcome(1040, 200), snapshot: minuteSnap(10, 0, 30_000) });
    expect(state.reserve(5, 31_000, 0).granted).toBe(0);
    expect(state.reserve(5, 31_040 + 50, 0).granted).toBe(1);
  });

  it('a later answer narrows the bracket; one that contradicts it replaces it', () => {
    const state = new BudgetState(cfg);
    const a = state.reserve(2, 1000, 0);
    const [t1, t2] = [ticketOf(a), ticketOf(a)];
    state.settle(t1, { ...outcome(1040, 200), snapshot: minuteSnap(10, 9, 30_000) });
    const b = state.reserve(1, 1500, 0);
    state.settle(ticketOf(b), { ...outcome(1530, 200), snapshot: minuteSnap(10, 8, 30_000) });
    expect(state.view(1531).minute).toMatchObject({ nextResetAfter: 30_500, nextResetBy: 31_040 });
    void t2;
    const c = state.reserve(1, 2000, 0);
    state.settle(ticketOf(c), { ...outcome(2010, 200), snapshot: minuteSnap(10, 7, 45_000) });
    expect(state.view(2011).minute).toMatchObject({ nextResetAfter: 46_000, nextResetBy: 47_010 });
  });

  it('a reset stated as an epoch second (legacy X-RateLimit-Reset, rounded up) is read the same: within the second before it', () => {
    const state = new BudgetState(cfg);
    const first = state.reserve(1, 1000);
    // The parser turns an epoch second into milliseconds to go: not a whole number of seconds.
    state.settle(ticketOf(first), { ...outcome(1040, 200), snapshot: minuteSnap(10, 9, 29_417) });
    expect(state.view(1041).minute).toMatchObject({ kind: 'fixed', nextResetAfter: 29_417, nextResetBy: 30_457 });
  });

  // A stated reset is known to within its grain (a second, rounded up), and the window that counted the request
  // resets no later than a window after it: the bracket is the stated second, cut at now + W.
  it.each([
    // [what, windowMs, sentAt, now, resetInMs, nextResetAfter, nextResetBy]
    ['seconds to go, within the window', 60_000, 1000, 1040, 30_000, 30_000, 31_040],
    ['an epoch second, within the window', 60_000, 1000, 1040, 29_417, 29_417, 30_457],
    ['an epoch second rounded up past the window (1 s window, a whole second late)', 1000, 1000, 1001, 1999, 1999, 2001],
    ['an epoch second rounded up past the window (half a second late)', 1000, 1000, 1002, 1498, 1498, 2002],
    ['seconds to go rounded up past the window (2 s stated of a 1.5 s window)', 1500, 1000, 1010, 2000, 2000, 2510],
    ['a reset stated exactly a window away', 1000, 1000, 1010, 1000, 1000, 2010],
  ] as const)('%s', (_what, windowMs, sentAt, now, resetInMs, after, by) => {
    const state = new BudgetState({ ...cfg, minuteMs: windowMs });
    const first = state.reserve(1, sentAt);
    state.settle(ticketOf(first), { ...outcome(now, 200), snapshot: minuteSnap(10, 9, resetInMs) });
    expect(state.view(now + 1).minute).toMatchObject({ kind: 'fixed', nextResetAfter: after, nextResetBy: by });
  });

  it('an epoch second rounded up a whole window late: the budget comes back a window after the first request, not a second later', () => {
    const state = new BudgetState({ ...cfg, minuteMs: 1000 });
    const first = state.reserve(1, 1000);
    // A first-hit window opened at 1000.5: it resets at 2000.5, stated as the epoch second 3 (3000 ms: 1999 ms to go).
    state.settle(ticketOf(first), { ...outcome(1001, 200), snapshot: minuteSnap(10, 9, 1999) });
    const rest = state.reserve(9, 1002, 0);
    expect(rest.granted).toBe(9);
    for (let i = 0; i < 9; i++) state.settle(ticketOf(rest), { ...outcome(1010, 200), snapshot: minuteSnap(10, 8 - i, 1990) });
    expect(state.reserve(5, 2040, 0).granted).toBe(0);
    // Surely reset a window (and the margin) after the first answer: one read goes, not a second later.
    expect(state.reserve(5, 2001 + 50, 0).granted).toBe(1);
  });

  it('first-hit windows of 1 s from a whole second, resets stated as epoch seconds: every window full, no 429 (the conformance scenario)', async () => {
    const scenario = scenarios.find((c) => c.name.startsWith('stated resets as epoch seconds'))!;
    const steps = await record(new MemoryStore(), scenario.config, scenario.run);
    const note = steps.find((x) => x.op === 'note')!.value as { accepted: number; rejected: number; maxInWindow: number };
    expect(note.rejected).toBe(0);
    expect(note.maxInWindow).toBeLessThanOrEqual(10);
    // 12 s of requests at 10 per first-hit window, each opened by a read a margin and a round trip after the one
    // before ended: 12 windows, all full. (A scout held for the stated second, sent after the reset, wastes its unit
    // of the first window: 119.)
    expect(note.accepted).toBe(120);
  });

  it('a stated reset further away than the window is long is not used', () => {
    const state = new BudgetState(cfg);
    const first = state.reserve(1, 1000);
    state.settle(ticketOf(first), { ...outcome(1040, 200), snapshot: minuteSnap(10, 9, 120_000) });
    expect(state.view(1041).minute.kind).toBe('unknown');
  });
});

describe('budget state: the day', () => {
  const DAY = 86_400_000;
  const midnight = 20_000 * DAY; // a UTC midnight
  const dailySnap = (limit: number, remaining: number, extra: Partial<NonNullable<Outcome['snapshot']>> = {}): Outcome['snapshot'] => ({
    minute: {},
    daily: { limit, remaining },
    present: true,
    ...extra,
  });

  it('spent on a guessed reset, it sends one probe instead of parking on the guess', () => {
    const state = new BudgetState({ ...config, dayMs: 20_000 });
    const a = state.reserve(1, 100);
    state.settle(ticketOf(a), { ...outcome(110, 200), snapshot: dailySnap(2, 1) });
    const b = state.reserve(1, 200);
    state.settle(ticketOf(b), { ...outcome(210, 200), snapshot: dailySnap(2, 2) }); // a jump: a day began; its end is a guess
    const c = state.reserve(2, 300, 0);
    expect(c.granted).toBe(2);
    for (const t of [ticketOf(c), ticketOf(c)]) state.settle(t, { ...outcome(310, 200), snapshot: dailySnap(2, 0) });
    const probe = state.reserve(1, 400);
    expect(probe).toMatchObject({ granted: 1, dailyUnknownReset: true });
    expect(state.reserve(1, 401).granted).toBe(0); // only one probe
    // Its refusal says when the day resets: parked until then.
    const settled = state.settle(ticketOf(probe), { ...outcome(420, 429), snapshot: dailySnap(2, 0, { type: 'daily', retryAfterMs: 5000 }) });
    expect(settled.parked?.until).toBe(5420);
    expect(state.reserve(1, 5000)).toMatchObject({ granted: 0, blockedBy: 'park' });
  });

  it('a stated daily reset is the server\'s word: spent, it parks until then', () => {
    const state = new BudgetState({ ...config, dayMs: 20_000 });
    const a = state.reserve(1, 100);
    const r = state.settle(ticketOf(a), { ...outcome(110, 200), snapshot: { minute: {}, daily: { limit: 1, remaining: 0, resetInMs: 7000 }, present: true } });
    expect(r.parked?.until).toBe(7110 + config.marginMs);
  });

  it('a real day is predicted to end at midnight UTC; a daily 429 without Retry-After parks until then', () => {
    const state = new BudgetState({ ...config, dayMs: DAY });
    const t = midnight + 5 * 3_600_000;
    const a = state.reserve(1, t);
    const r = state.settle(ticketOf(a), { ...outcome(t + 10, 429), snapshot: dailySnap(100, 0, { type: 'daily' }) });
    expect(r.parked?.until).toBe(midnight + DAY);
  });

  it('a real day that began (a jump) is guessed to end at the next midnight UTC, not a whole day later', () => {
    const state = new BudgetState({ ...config, dayMs: DAY });
    const t = midnight + 23 * 3_600_000;
    const a = state.reserve(1, t);
    state.settle(ticketOf(a), { ...outcome(t + 10, 200), snapshot: dailySnap(100, 50) });
    const b = state.reserve(1, t + 20);
    state.settle(ticketOf(b), { ...outcome(t + 30, 200), snapshot: dailySnap(100, 99) });
    expect(state.data.nextDailyReset).toBe(midnight + DAY);
    expect(state.data.dailyResetKnown).toBe(0);
  });
});

describe('budget state: requests the daily window does not count (countsDaily false)', () => {
  const both = (mRem: number, dRem: number, extra: Partial<NonNullable<Outcome['snapshot']>> = {}): Outcome['snapshot'] => ({
    minute: { limit: 100, remaining: mRem },
    daily: { limit: 5, remaining: dRem },
    present: true,
    ...extra,
  });
  /** A day spent with its reset known (a daily 429): parked. */
  function parked(): BudgetState {
    const state = new BudgetState({ ...config, dayMs: 50_000 });
    const a = state.reserve(1, 100);
    state.settle(ticketOf(a), { ...outcome(110, 429), snapshot: both(99, 0, { type: 'daily', retryAfterMs: 30_000 }) });
    return state;
  }
  /** Parked, and one request said not to count daily was answered (the word is proven). */
  function proven(): BudgetState {
    const state = parked();
    const test = state.reserve(1, 150, 0, false);
    state.settle(ticketOf(test), { ...outcome(160, 200), snapshot: both(98, 0) });
    return state;
  }

  it('while the day is spent, the first goes alone: the test of their word', () => {
    const state = parked();
    expect(state.reserve(3, 200, 0)).toMatchObject({ granted: 0, blockedBy: 'park' });
    const test = state.reserve(3, 200, 0, false);
    expect(test.granted).toBe(1);
    expect(test.ticket).toMatchObject({ minuteOnly: true, minuteOnlyTest: true });
    expect(state.reserve(3, 201, 0, false)).toMatchObject({ granted: 0, blockedBy: 'daily' });
    expect(state.data.daily.unc).toBe(0);
    expect(state.data.minute.unc).toBe(1);
  });

  it('answered, the word is proven: a daily park holds daily requests only', () => {
    const state = proven();
    expect(state.data.minuteOnly).toBe(1);
    expect(state.reserve(3, 200, 0)).toMatchObject({ granted: 0, blockedBy: 'park' });
    const polls = state.reserve(3, 200, 0, false);
    expect(polls.granted).toBe(3);
    expect(polls.ticket.minuteOnlyTest).toBeUndefined();
    expect(state.data.daily.unc).toBe(0);
  });

  it('refused by the daily window, the word is revoked until the day resets', () => {
    const state = parked();
    const test = state.reserve(1, 150, 0, false);
    state.settle(ticketOf(test), { ...outcome(160, 429), snapshot: both(98, 0, { type: 'daily', retryAfterMs: 29_900 }) });
    expect(state.data.minuteOnly).toBe(2);
    expect(state.reserve(3, 200, 0, false)).toMatchObject({ granted: 0, blockedBy: 'park' });
    // The day resets: their word is heard again.
    expect(state.reserve(1, 30_200, 0).granted).toBe(1);
    expect(state.data.minuteOnly).toBe(0);
  });

  it('their answers never pass for a new day, and their give-backs give nothing back to the day', () => {
    const state = proven();
    const polls = state.reserve(2, 200, 0, false);
    state.settle(ticketOf(polls), { ...outcome(210, 200), snapshot: both(97, 0) }); // Daily-Remaining unchanged: no jump
    state.settle(ticketOf(polls), { ...outcome(211, undefined, false) });
    expect(state.data.daily.unc).toBe(0);
    expect(state.data.parked).toBe(1);
    expect(state.reserve(1, 300, 0)).toMatchObject({ granted: 0, blockedBy: 'park' });
  });

  it('a day spent with daily answers in flight blocks daily requests (`daily`), not the others', () => {
    const state = new BudgetState({ ...config, dayMs: 50_000 });
    const a = state.reserve(1, 100);
    state.settle(ticketOf(a), { ...outcome(110, 200), snapshot: both(99, 1) });
    const last = state.reserve(2, 200, 0);
    expect(last.granted).toBe(1);
    expect(state.reserve(1, 201, 0)).toMatchObject({ granted: 0, blockedBy: 'daily' });
    expect(state.reserve(1, 201, 0, false)).toMatchObject({ granted: 1, ticket: { minuteOnlyTest: true } });
  });

  /** A day with room (4 of 5 left), nothing daily in flight. */
  function dayWithRoom(): BudgetState {
    const state = new BudgetState({ ...config, dayMs: 50_000 });
    const a = state.reserve(1, 100);
    state.settle(ticketOf(a), { ...outcome(110, 200), snapshot: both(99, 4) });
    return state;
  }

  it("their fresh answer with nothing daily in flight: Daily-Remaining moved, so they count there (held like the rest, for good)", () => {
    const state = dayWithRoom();
    expect(state.data.minuteOnly).toBe(0);
    const poll = state.reserve(1, 120, 0, false);
    state.settle(ticketOf(poll), { ...outcome(130, 200), snapshot: both(98, 3) });
    expect(state.data.minuteOnly).toBe(3);
    // From now on they take daily units: the day's 3 go, then nothing said not to count daily goes either.
    expect(state.reserve(5, 140, 0, false).granted).toBe(3);
    expect(state.data.daily.unc).toBe(3);
  });

  it('Daily-Remaining unchanged on their fresh answer: proven not to count there', () => {
    const state = dayWithRoom();
    const poll = state.reserve(1, 120, 0, false);
    state.settle(ticketOf(poll), { ...outcome(130, 200), snapshot: both(98, 4) });
    expect(state.data.minuteOnly).toBe(1);
  });

  it('with a daily request in flight, their answer tells nothing', () => {
    const state = dayWithRoom();
    const submission = state.reserve(1, 115);
    const poll = state.reserve(1, 120, 0, false);
    state.settle(ticketOf(poll), { ...outcome(130, 200), snapshot: both(97, 3) });
    expect(state.data.minuteOnly).toBe(0);
    state.settle(ticketOf(submission), { ...outcome(131, 200), snapshot: both(96, 3) });
    expect(state.data.minuteOnly).toBe(0);
  });

  it('the minute window still holds them', () => {
    const state = proven();
    const b = state.reserve(1, 300, 0, false);
    state.settle(ticketOf(b), { ...outcome(310, 200), snapshot: { minute: { limit: 3, remaining: 2 }, daily: { limit: 5, remaining: 0 }, present: true } });
    expect(state.reserve(2, 400, 0, false).granted).toBe(2);
    expect(state.reserve(1, 401, 0, false)).toMatchObject({ granted: 0, blockedBy: 'budget' });
  });
});

describe('budget state: the day left uncounted', () => {
  it('answers lost on the network leave the day uncounted: with nothing in flight one request refreshes it, no park', () => {
    const state = new BudgetState({ ...config, dayMs: 50_000 });
    const a = state.reserve(1, 100);
    state.settle(ticketOf(a), {
      ...outcome(110, 200),
      snapshot: { minute: {}, daily: { limit: 5, remaining: 2, resetInMs: 30_000 }, present: true },
    });
    const b = state.reserve(2, 200, 0);
    expect(b.granted).toBe(2);
    for (let i = 0; i < 2; i++) state.settle(ticketOf(b), outcome(210, undefined)); // sent, no answer: not counted
    expect(state.view(220).daily).toMatchObject({ remaining: 2, uncounted: 2, available: 0 });
    const refresh = state.reserve(3, 300, 0);
    expect(refresh).toMatchObject({ granted: 1, dailyUnknownReset: false });
    expect(state.data.parked).toBe(0);
  });
});

describe('budget state: requests said not to count daily that do (the server counts job polls too)', () => {
  const both = (mRem: number, dRem: number, dLimit = 10): Outcome['snapshot'] => ({
    minute: { limit: 100, remaining: mRem },
    daily: { limit: dLimit, remaining: dRem },
    present: true,
  });
  /** One daily request answered (Daily-Remaining 8 of 10), then one said not to count daily answered with `dRem`. */
  function afterPoll(dRem: number, dLimit = 10): BudgetState {
    const state = new BudgetState(config);
    const a = state.reserve(1, 0);
    state.settle(ticketOf(a), { ...outcome(10, 200), snapshot: both(99, 8) });
    const poll = state.reserve(1, 20, 0, false);
    state.settle(ticketOf(poll), { ...outcome(30, 200), snapshot: both(98, dRem, dLimit) });
    return state;
  }

  it.each([
    ['lower than the daily requests explain', 7, 10, 3],
    ['unchanged (proof they do not count)', 8, 10, 1],
    ['lower, but the limit changed (proves nothing)', 7, 9, 0],
  ] as const)('a poll answered with Daily-Remaining %s: minuteOnly %#', (_name, dRem, dLimit, expected) => {
    expect(afterPoll(dRem, dLimit).data.minuteOnly).toBe(expected);
  });

  it('a daily request in flight explains one unit: not proof', () => {
    const state = new BudgetState(config);
    const a = state.reserve(1, 0);
    state.settle(ticketOf(a), { ...outcome(10, 200), snapshot: both(99, 8) });
    state.reserve(1, 15); // a submission, still in flight when the poll's answer says 7
    const poll = state.reserve(1, 20, 0, false);
    const r = state.settle(ticketOf(poll), { ...outcome(30, 200), snapshot: both(98, 7) });
    expect(state.data.minuteOnly).toBe(0);
    expect(r.minuteLaneCountsDaily).toBeUndefined();
  });

  it('once shown, they count daily: they spend daily units and a spent day holds them', () => {
    const state = afterPoll(7);
    const polls = state.reserve(3, 40, 0, false);
    expect(polls.granted).toBe(3);
    expect(polls.ticket.minuteOnly).toBeUndefined();
    expect(state.data.daily.unc).toBe(3);
  });

  it('the settle result says so, and it outlasts a new day', () => {
    const state = new BudgetState(config);
    const a = state.reserve(1, 0);
    state.settle(ticketOf(a), { ...outcome(10, 200), snapshot: both(99, 8) });
    const poll = state.reserve(1, 20, 0, false);
    expect(state.settle(ticketOf(poll), { ...outcome(30, 200), snapshot: both(98, 7) }).minuteLaneCountsDaily).toBe(true);
    const b = state.reserve(1, 40);
    state.settle(ticketOf(b), { ...outcome(50, 200), snapshot: both(97, 9) }); // the day reset (a jump)
    expect(state.data.minuteOnly).toBe(3);
  });

  it('shown to count daily for good, a daily 429 of one sent before that stays a rule, not a day\'s word', () => {
    const state = new BudgetState(config);
    const a = state.reserve(1, 0);
    state.settle(ticketOf(a), { ...outcome(10, 200), snapshot: both(99, 8) });
    const early = state.reserve(1, 15, 0, false); // sent while the word still stood
    const poll = state.reserve(1, 20, 0, false);
    state.settle(ticketOf(poll), { ...outcome(30, 200), snapshot: both(98, 6) }); // below what daily requests explain
    expect(state.data.minuteOnly).toBe(3);
    state.settle(ticketOf(early), { ...outcome(40, 429), snapshot: { ...both(97, 0)!, type: 'daily', retryAfterMs: 5000 } });
    expect(state.data.minuteOnly).toBe(3);
  });

  it('keepDaily: granted down to the kept units, then held as `daily` (no park), others may use them', () => {
    const state = afterPoll(7); // 7 daily units left
    const subs = state.reserve(10, 40, 0, true, 4);
    expect(subs.granted).toBe(3);
    expect(state.reserve(1, 41, 0, true, 4)).toMatchObject({ granted: 0, blockedBy: 'daily', parkedUntil: undefined });
    expect(state.data.parked).toBe(0);
    // The kept units serve the polls (and daily requests that keep nothing).
    expect(state.reserve(3, 42, 0, false).granted).toBe(3);
    expect(state.reserve(5, 43, 0, true).granted).toBe(1);
  });

  it('keepDaily holds for the day its numbers are of: a day after the last daily word, one goes to read the new day', () => {
    const state = afterPoll(7); // last daily word at 30; no reset predicted
    expect(state.reserve(1, 40, 0, true, 7)).toMatchObject({ granted: 0, blockedBy: 'daily' });
    expect(state.reserve(1, 30 + config.dayMs - 1, 0, true, 7)).toMatchObject({ granted: 0, blockedBy: 'daily' });
    expect(state.reserve(1, 30 + config.dayMs, 0, true, 7).granted).toBe(1);
  });

  it('keepDaily counts only where the daily window is known', () => {
    const state = new BudgetState(config);
    const a = state.reserve(1, 0);
    state.settle(ticketOf(a), { ...outcome(10, 200), snapshot: { minute: { limit: 100, remaining: 99 }, daily: {}, present: true } });
    expect(state.reserve(5, 20, 0, true, 50).granted).toBe(5);
  });
});
