import { BudgetState, type BudgetStateJSON } from './budget-state.js';
import { DEFAULT_SCOPE, scopeConfig, scopeOf } from './scope.js';
import type { BudgetConfig, BudgetView, Outcome, ReserveResult, SettleResult, Store, Ticket } from './types.js';

/**
 * The default store: the budget state of one process, in memory, answered
 * synchronously so the dispatch loop never waits on it. One `BudgetState`
 * per scope, created on first use.
 */
export class MemoryStore implements Store {
  readonly shared = false;
  #config: BudgetConfig | undefined;
  readonly #states = new Map<string, BudgetState>();

  init(config: BudgetConfig): void {
    this.#config = config;
    this.#states.clear();
    this.#states.set(DEFAULT_SCOPE, new BudgetState(config));
  }

  reserve(want: number, now: number, backlog?: number, countsDaily?: boolean, scope = DEFAULT_SCOPE, keepDaily?: number): ReserveResult {
    const result = this.#require(scope).reserve(want, now, backlog, countsDaily, keepDaily);
    if (scope !== DEFAULT_SCOPE) result.ticket.scope = scope;
    return result;
  }

  settle(ticket: Ticket, outcome: Outcome): SettleResult {
    return this.#require(scopeOf(ticket)).settle(ticket, outcome);
  }

  view(now: number, scope = DEFAULT_SCOPE): BudgetView {
    return this.#require(scope).view(now);
  }

  close(): void {}

  /** The scopes used so far (the default one first). */
  scopes(): string[] {
    return [...this.#states.keys()];
  }

  /** The whole budget state of `scope`, as plain data (for inspection and tests). */
  toJSON(scope = DEFAULT_SCOPE): BudgetStateJSON {
    return this.#require(scope).toJSON();
  }

  #require(scope: string): BudgetState {
    if (!this.#config) throw new Error('MemoryStore used before init(): pass it to one RateLimitScheduler');
    let state = this.#states.get(scope);
    if (!state) {
      state = new BudgetState(scopeConfig(this.#config, scope));
      this.#states.set(scope, state);
    }
    return state;
  }
}
