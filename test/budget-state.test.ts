import { describe, expect, it } from 'vitest';
import { BudgetState } from '../src/store/budget-state.js';
import type { Outcome, Ticket } from '../src/store/types.js';

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
