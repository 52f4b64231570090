/**
 * The spend counter of a capped batch (`maxSpend`): reserve a job's price
 * before its POST, give it back only when the submission was definitely not
 * charged. A crash after reserving leaves the reservation counted: spent,
 * never free. Amounts are integer nano-dollars (see `internal/money.ts`).
 *
 * `MemorySpendLedger` is one run's counter; `RedisSpendLedger` (from
 * `RedisStore.spendLedger()`) is one counter beside the account's budgets,
 * shared by every process that uses it, changed atomically by `lua/spend.lua`.
 * Both pass `test/spend-ledger.test.ts`.
 */
import { readFileSync } from 'node:fs';
import { StoreUnavailableError } from '../errors/store-unavailable-error.js';

/** The cap rule, in one place (`lua/spend.lua` applies the same comparison inside Redis). */
export function fitsUnderCap(totalNano: number, amountNano: number, capNano: number): boolean {
  return totalNano + amountNano <= capNano;
}

/** The answer of a reservation. */
export interface SpendReservation {
  /** True when the amount was reserved. */
  ok: boolean;
  /** The counter after the call (nano-dollars). */
  totalNano: number;
}

/** A spend counter. */
export interface SpendLedger {
  /** True when other processes share the counter. */
  readonly shared: boolean;
  /**
   * Starts using the counter. A counter that does not exist yet starts at `startNano` (what the results file
   * says was spent); one that exists keeps its value. Resolves with the total.
   */
  open(startNano: number): Promise<number>;
  /** Reserves `amountNano` when the total stays within `capNano`. */
  reserve(amountNano: number, capNano: number): Promise<SpendReservation>;
  /** Gives back a reservation whose submission was definitely not charged. Resolves with the total. */
  release(amountNano: number): Promise<number>;
  /** The total now. */
  total(): Promise<number>;
}

/** A counter in memory: one run's. */
export class MemorySpendLedger implements SpendLedger {
  readonly shared = false;
  #total: number | undefined;

  open(startNano: number): Promise<number> {
    this.#total ??= startNano;
    return Promise.resolve(this.#total);
  }

  reserve(amountNano: number, capNano: number): Promise<SpendReservation> {
    const total = this.#total ?? 0;
    if (!fitsUnderCap(total, amountNano, capNano)) return Promise.resolve({ ok: false, totalNano: total });
    this.#total = total + amountNano;
    return Promise.resolve({ ok: true, totalNano: this.#total });
  }

  release(amountNano: number): Promise<number> {
    this.#total = (this.#total ?? 0) - amountNano;
    return Promise.resolve(this.#total);
  }

  total(): Promise<number> {
    return Promise.resolve(this.#total ?? 0);
  }
}

/** The slice of an ioredis client the Redis ledger uses. */
export interface SpendRedis {
  eval(script: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
}

let script: string | undefined;

function spendScript(): string {
  script ??= readFileSync(new URL('./lua/spend.lua', import.meta.url), 'utf8');
  return script;
}

/** A counter in Redis, shared by every process that names the same key. Get one from `RedisStore.spendLedger()`. */
export class RedisSpendLedger implements SpendLedger {
  readonly shared = true;
  /** The Redis key of the counter. */
  readonly key: string;
  readonly #redis: SpendRedis;
  readonly #timeoutMs: number;
  readonly #where: string;

  constructor(redis: SpendRedis, key: string, options: { commandTimeoutMs?: number; url?: string } = {}) {
    this.#redis = redis;
    this.key = key;
    this.#timeoutMs = options.commandTimeoutMs ?? 5000;
    this.#where = options.url ?? 'Redis';
  }

  async open(startNano: number): Promise<number> {
    return (await this.#run('open', startNano, 0)).totalNano;
  }

  reserve(amountNano: number, capNano: number): Promise<SpendReservation> {
    return this.#run('reserve', amountNano, capNano);
  }

  async release(amountNano: number): Promise<number> {
    return (await this.#run('release', amountNano, 0)).totalNano;
  }

  async total(): Promise<number> {
    return (await this.#run('read', 0, 0)).totalNano;
  }

  /**
   * One atomic call. A call that fails or times out rejects with `StoreUnavailableError`; a reservation whose
   * answer was lost may have been made, and then stays counted (spent, never free).
   */
  async #run(op: string, amount: number, cap: number): Promise<SpendReservation> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const reply = await Promise.race([
        this.#redis.eval(spendScript(), 1, this.key, op, String(Math.round(amount)), String(Math.round(cap))),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${this.#timeoutMs} ms`)), this.#timeoutMs);
        }),
      ]);
      if (!Array.isArray(reply) || reply.length !== 2) throw new Error(`unexpected reply ${JSON.stringify(reply)}`);
      return { ok: Number(reply[0]) === 1, totalNano: Number(reply[1]) };
    } catch (error) {
      throw new StoreUnavailableError(`The spend counter at ${this.#where} failed (${op}): ${(error as Error).message}`, { cause: error });
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
  }
}
