/**
 * The balance stop: after a 422 about the balance, submissions pause (polls
 * go on). While paused, `/balance` is checked now and then, and submissions
 * resume once it has risen; `resume()` does it by hand.
 */
import type { InsufficientBalanceError } from '../errors/insufficient-balance-error.js';
import type { Clock, TimerHandle } from '../internal/clock.js';
import type { Logger } from '../internal/logger.js';
import type { Emit } from './events.js';

export interface SubmitGateDeps {
  clock: Clock;
  logger: Logger;
  emit: Emit;
  action: 'wait' | 'reject';
  /** 0: never check. */
  checkIntervalMs: number;
  checkBalance: () => Promise<number>;
}

interface Waiter {
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class SubmitGate {
  readonly #d: SubmitGateDeps;
  #paused = false;
  #error: InsufficientBalanceError | undefined;
  #closed: Error | undefined;
  readonly #waiters = new Set<Waiter>();
  #timer: TimerHandle | undefined;
  #baseline: number | undefined;

  constructor(deps: SubmitGateDeps) {
    this.#d = deps;
  }

  get paused(): boolean {
    return this.#paused;
  }

  /** Resolves when a submission may go; rejects while paused in `reject` mode, or once closed. */
  pass(signal: AbortSignal | undefined): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closed);
    if (!this.#paused) return Promise.resolve();
    if (this.#d.action === 'reject' && this.#error) return Promise.reject(this.#error);
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        this.#waiters.delete(waiter);
        reject(signal?.reason);
      };
      const waiter: Waiter = {
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        reject: (error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(error);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.add(waiter);
    });
  }

  /** A submission was refused for the balance. */
  pause(error: InsufficientBalanceError, endpoint: string): void {
    this.#error = error;
    if (this.#paused || this.#closed) return;
    this.#paused = true;
    this.#baseline = undefined;
    this.#d.logger.warn({ endpoint, action: this.#d.action }, 'insufficient balance: submissions paused (polls go on)');
    this.#d.emit('balanceExhausted', { endpoint, error, action: this.#d.action });
    if (this.#d.checkIntervalMs > 0) void this.#check();
  }

  /** Lets submissions go again. */
  resume(reason: 'manual' | 'balance' = 'manual', balance?: number): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#error = undefined;
    this.#clearTimer();
    this.#d.logger.info({ reason, balance }, 'submissions resumed');
    this.#d.emit('submissionsResumed', { reason, balance });
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const w of waiters) w.resolve();
  }

  close(error: Error): void {
    this.#closed = error;
    this.#clearTimer();
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const w of waiters) w.reject(error);
  }

  async #check(): Promise<void> {
    if (!this.#paused || this.#closed) return;
    try {
      const balance = await this.#d.checkBalance();
      if (!this.#paused || this.#closed) return;
      if (this.#baseline === undefined) this.#baseline = balance;
      else if (balance > this.#baseline) {
        this.resume('balance', balance);
        return;
      } else this.#baseline = Math.min(this.#baseline, balance);
    } catch (error) {
      this.#d.logger.debug({ err: error instanceof Error ? error.message : String(error) }, 'balance check failed');
    }
    if (!this.#paused || this.#closed) return;
    this.#clearTimer();
    this.#timer = this.#d.clock.setTimeout(() => {
      this.#timer = undefined;
      void this.#check();
    }, this.#d.checkIntervalMs);
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) this.#d.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
