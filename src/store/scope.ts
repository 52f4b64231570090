/**
 * Budget scopes: a store keeps one budget per scope, each with its own
 * windows, `Remaining`/`Limit`, phase, 429 gate and daily park, all run by
 * the same `BudgetState` rules. A request draws from the scope its task
 * names (`ScheduleOptions.scope`), else from the default one; its ticket
 * carries the scope back to `settle`.
 */
import type { BudgetConfig, Ticket } from './types.js';

/** The scope every request draws from unless it names another. */
export const DEFAULT_SCOPE = 'default';

/** Longest scope name accepted (it is part of the shared state's document). */
export const MAX_SCOPE_LENGTH = 200;

/** The scope a ticket was granted in. */
export function scopeOf(ticket: Pick<Ticket, 'scope'>): string {
  return ticket.scope ?? DEFAULT_SCOPE;
}

/**
 * The budget config of one scope: the seeds (limits the caller knows in
 * advance) are the default scope's; another scope learns its limits from
 * the server's answers.
 */
export function scopeConfig(config: BudgetConfig, scope: string): BudgetConfig {
  return scope === DEFAULT_SCOPE ? config : { ...config, seeds: {} };
}
