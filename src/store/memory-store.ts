import { BudgetState, type BudgetStateJSON } from './budget-state.js';
import type { BudgetConfig, BudgetView, Outcome, ReserveResult, SettleResult, Store, Ticket } from './types.js';

/**
 * The default store: the budget state of one process, in memory, answered
 * synchronously so the dispatch loop never waits on it.
 */
export class MemoryStore implements Store {
  readonly shared = false;
  #state: BudgetState | undefined;

  init(config: BudgetConfig): void {
    this.#state = new BudgetState(config);
  }

  reserve(want: number, now: number, backlog?: number, countsDaily?: boolean, keepDaily?: number): ReserveResult {
    return this.#require().reserve(want, now, backlog, countsDaily, keepDaily);
  }

  settle(ticket: Ticket, outcome: Outcome): SettleResult {
    return this.#require().settle(ticket, outcome);
  }

  view(now: number): BudgetView {
    return this.#require().view(now);
  }

  close(): void {}

  /** The whole budget state, as plain data (for inspection and tests). */
  toJSON(): BudgetStateJSON {
    return this.#require().toJSON();
  }

  #require(): BudgetState {
    if (!this.#state) throw new Error('MemoryStore used before init(): pass it to one RateLimitScheduler');
    return this.#state;
  }
}
