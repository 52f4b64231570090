/**
 * A cache of `price-calculation` answers, keyed by the parameters that can
 * change a price ({@link priceKey}): a batch of 100,000 lines over a few
 * distinct settings costs a few price calls, not 100,000. Shared by
 * `client.estimate()` and by runs with a spend cap, so a run after an
 * estimate on the same client asks again for nothing.
 */
import { priceKey } from './price-key.js';

/** Asks the API for one price (through the scheduler). */
export type PriceFetcher = (endpoint: string, params: Record<string, unknown>, signal?: AbortSignal) => Promise<number>;

export interface PriceBookStats {
  /** `price-calculation` calls made. */
  calls: number;
  /** Distinct keys priced. */
  keys: number;
  /** Prices answered from the cache. */
  hits: number;
}

export class PriceBook {
  readonly #fetch: PriceFetcher;
  readonly #cache = new Map<string, Promise<number>>();
  readonly #stats: PriceBookStats = { calls: 0, keys: 0, hits: 0 };

  constructor(fetch: PriceFetcher) {
    this.#fetch = fetch;
  }

  /** The cache key of a job's price ({@link priceKey}). */
  keyOf(endpoint: string, params: Record<string, unknown>): string | undefined {
    return priceKey(endpoint, params);
  }

  stats(): PriceBookStats {
    return { ...this.#stats, keys: this.#cache.size };
  }

  /**
   * The price of one job of `endpoint` with `params`, USD. A price call that fails is not cached (the
   * failure may be the line's own, e.g. an empty prompt the key leaves out); a caller that joined a call
   * that failed asks again with its own parameters, so one bad line never fails another.
   */
  async quote(endpoint: string, params: Record<string, unknown>, signal?: AbortSignal): Promise<number> {
    const key = priceKey(endpoint, params);
    if (key === undefined) return this.#call(endpoint, params, signal);
    const cached = this.#cache.get(key);
    if (cached !== undefined) {
      try {
        const price = await cached;
        this.#stats.hits++;
        return price;
      } catch {
        // fall through: ask with this line's own parameters
      }
    }
    const own = this.#call(endpoint, params, signal);
    this.#cache.set(key, own);
    try {
      return await own;
    } catch (error) {
      if (this.#cache.get(key) === own) this.#cache.delete(key);
      throw error;
    }
  }

  #call(endpoint: string, params: Record<string, unknown>, signal: AbortSignal | undefined): Promise<number> {
    this.#stats.calls++;
    return this.#fetch(endpoint, params, signal);
  }
}
