/**
 * Golden traces of the budget rules: every scripted scenario of the
 * conformance suite and a fixed set of random sequences, run on the budget
 * state machine, with every output and the full state (both windows, the
 * answer log) after every step. The file under test/golden/ pins today's
 * behaviour: a change to any rule shows up here as a diff to review, and a
 * refactor that claims to change nothing must leave it byte for byte.
 *
 * After an intended rule change: `npx vitest run test/budget-golden.test.ts -u`,
 * then read the diff of the golden file before committing it.
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BudgetState } from '../src/store/budget-state.js';
import type { BudgetConfig, Store } from '../src/store/types.js';
import { randomConfigArb, randomOpArb, randomScenario, record, scenarios, type Scenario } from './helpers/store-cases.js';

/** A Store over one BudgetState that logs the full state after every call. */
function tracingStore(states: string[]): Store {
  let state: BudgetState | undefined;
  const dump = (): void => {
    states.push(createHash('sha256').update(JSON.stringify(state?.toJSON())).digest('hex').slice(0, 16));
  };
  return {
    shared: false,
    init(config: BudgetConfig) {
      state = new BudgetState(config);
    },
    reserve(want, now, backlog, countsDaily, _scope, keepDaily) {
      const r = state!.reserve(want, now, backlog, countsDaily, keepDaily);
      dump();
      return r;
    },
    settle(ticket, outcome) {
      const r = state!.settle(ticket, outcome);
      dump();
      return r;
    },
    view(now) {
      const r = state!.view(now);
      dump();
      return r;
    },
    close() {},
  };
}

/** One line per step: the step's outputs, then the hash of the whole state after it. */
async function trace(cfg: BudgetConfig, scenario: Scenario): Promise<string> {
  const states: string[] = [];
  const steps = await record(tracingStore(states), cfg, scenario);
  let k = 0;
  return steps.map((step) => (step.op === 'note' ? JSON.stringify(step) : `${JSON.stringify(step)} ${states[k++]}`)).join('\n');
}

const RANDOM_CASES = 60;

describe('budget golden traces', () => {
  it('scripted scenarios and seeded random sequences match test/golden/budget-traces.txt', async () => {
    const parts: string[] = [];
    for (const s of scenarios) parts.push(`## ${s.name}\n${await trace(s.config, s.run)}`);
    const cases = fc.sample(
      fc.tuple(randomConfigArb, fc.array(randomOpArb, { minLength: 1, maxLength: 80 }), fc.integer({ min: 1, max: 12 })),
      { numRuns: RANDOM_CASES, seed: 20261207 },
    );
    for (const [i, [cfg, ops, limit]] of cases.entries()) {
      parts.push(`## random ${i}\n${await trace(cfg, randomScenario(ops, limit, cfg.minuteMs))}`);
    }
    await expect(parts.join('\n\n') + '\n').toMatchFileSnapshot('./golden/budget-traces.txt');
  });
});
