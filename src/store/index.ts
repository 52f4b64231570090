export type {
  Store,
  BudgetConfig,
  BudgetView,
  WindowView,
  Ticket,
  Outcome,
  ReserveResult,
  SettleResult,
  BlockReason,
} from './types.js';
export { MemoryStore } from './memory-store.js';
export { BudgetState } from './budget-state.js';
