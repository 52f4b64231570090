import { formatUsd } from '../internal/money.js';
import { SchedulerError } from './scheduler-error.js';

/**
 * A submission was not sent because its price would take the run's spend past `maxSpend`. A batch stops on
 * it (`summary.stopped.reason: 'spend-cap'`, resumable with a higher cap); amounts are USD.
 */
export class SpendCapReachedError extends SchedulerError {
  /** The cap, USD. */
  readonly cap: number;
  /** Spent (and reserved) so far, USD. */
  readonly spent: number;
  /** The price of the submission that did not fit, USD. */
  readonly price: number;

  constructor(cap: number, spent: number, price: number) {
    super(
      'SPEND_CAP_REACHED',
      `Spend cap reached: $${formatUsd(spent)} of $${formatUsd(cap)} spent; the next job ($${formatUsd(price)}) would go past it`,
    );
    this.cap = cap;
    this.spent = spent;
    this.price = price;
  }
}
