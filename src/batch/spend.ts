/**
 * A run's spend under `maxSpend`: each submission is priced (through the
 * client's price cache), its price reserved in the {@link SpendLedger} before
 * the `submitting` record and the POST, and given back only when the
 * submission was definitely not charged (a `released` record). The results
 * file carries each submission's price, so a resumed run starts from what the
 * file says was spent; a shared ledger (Redis) holds the one total of every
 * process on the account.
 */
import { PriceUnavailableError } from '../errors/price-unavailable-error.js';
import { SpendCapReachedError } from '../errors/spend-cap-reached-error.js';
import type { Logger } from '../internal/logger.js';
import { formatUsd, fromNano, toNano } from '../internal/money.js';
import { MemorySpendLedger, type SpendLedger } from '../store/spend-ledger.js';
import { classifyError } from './classify.js';
import type { BatchClient, SpendSummary } from './types.js';

export class RunSpend {
  readonly capNano: number;
  readonly #client: BatchClient;
  readonly #ledger: SpendLedger;
  readonly #logger: Logger;
  /** What the results file said was spent when the run started. */
  #startNano = 0;
  /** Reserved by this run, minus what it gave back. */
  #runNano = 0;
  /** The ledger's total, as last seen. */
  #totalNano = 0;
  readonly #releasing = new Set<Promise<void>>();
  /** The first refusal: from then on the run starts nothing new and reserves nothing more. */
  #reached: SpendCapReachedError | undefined;

  constructor(client: BatchClient, cap: number, ledger: SpendLedger | undefined, logger: Logger) {
    if (typeof client.quote !== 'function') {
      throw new TypeError('Expected the client to have `quote(endpoint, params)` for `maxSpend` (ModelBeamClient has it)');
    }
    this.#client = client;
    this.capNano = toNano(cap);
    this.#ledger = ledger ?? new MemorySpendLedger();
    this.#logger = logger;
  }

  /** Starts from what the results file says was spent (a shared ledger that exists keeps its own total). */
  async open(journalNano: number): Promise<void> {
    this.#startNano = journalNano;
    this.#totalNano = await this.#ledger.open(journalNano);
    this.#logger.info({ cap: fromNano(this.capNano), spent: fromNano(this.#totalNano), shared: this.#ledger.shared }, 'spend cap');
  }

  /**
   * The price of one submission, nano-dollars. A price the API refuses for this line's parameters (a 4xx, a
   * local parameter check) rejects with {@link PriceUnavailableError} naming the line; anything else rejects
   * with the error of the price call (a stop, a transient failure), classified as a submission's would be.
   */
  async quote(endpoint: string, params: Record<string, unknown>, line: number, signal: AbortSignal): Promise<number> {
    try {
      return toNano(await (this.#client.quote as NonNullable<BatchClient['quote']>)(endpoint, params, { signal }));
    } catch (error) {
      const kind = classifyError(error);
      if (kind === 'fatal' || kind === 'job-failed') throw new PriceUnavailableError(endpoint, line, { cause: error });
      throw error;
    }
  }

  /**
   * Reserves `priceNano`; rejects with {@link SpendCapReachedError} when it does not fit under the cap. After
   * the first refusal every reservation is refused: what is left stops, resumable, while the submissions
   * that hold a reservation go out and their jobs finish.
   */
  async reserve(priceNano: number): Promise<void> {
    if (this.#reached) throw this.#reached;
    const r = await this.#ledger.reserve(priceNano, this.capNano);
    this.#totalNano = r.totalNano;
    if (!r.ok) {
      this.#reached ??= new SpendCapReachedError(fromNano(this.capNano), fromNano(r.totalNano), fromNano(priceNano));
      this.#logger.warn({ cap: fromNano(this.capNano), spent: fromNano(r.totalNano), price: fromNano(priceNano) }, 'spend cap reached: no new submissions');
      throw this.#reached;
    }
    this.#runNano += priceNano;
  }

  /** Set once a reservation was refused: the run starts nothing new. */
  get reached(): SpendCapReachedError | undefined {
    return this.#reached;
  }

  /** Gives back a reservation whose submission was definitely not charged (in the background; {@link settled} waits). */
  release(priceNano: number): void {
    this.#runNano -= priceNano;
    const p: Promise<void> = this.#ledger
      .release(priceNano)
      .then(
        (total) => {
          this.#totalNano = total;
        },
        (error: unknown) => {
          // Not given back: it stays counted (spent, never free). Only the cap is the tighter for it.
          this.#logger.warn({ err: (error as Error).message, price: fromNano(priceNano) }, 'could not give back a reservation of the spend cap');
        },
      )
      .finally(() => this.#releasing.delete(p));
    this.#releasing.add(p);
  }

  /** Waits for the background releases, then reads the ledger's total. */
  async settled(): Promise<void> {
    while (this.#releasing.size > 0) await Promise.all(this.#releasing);
    try {
      this.#totalNano = await this.#ledger.total();
    } catch {
      // keep the last total seen
    }
  }

  summary(): SpendSummary {
    return {
      cap: fromNano(this.capNano),
      spent: fromNano(this.#totalNano),
      run: fromNano(this.#runNano),
      results: fromNano(this.#startNano + this.#runNano),
      shared: this.#ledger.shared,
    };
  }

  static describe(s: SpendSummary): string {
    return `$${formatUsd(s.spent)} of $${formatUsd(s.cap)}${s.shared ? ' (shared)' : ''}; this run $${formatUsd(s.run)}`;
  }
}
