/**
 * One batch item, as a small state machine. Each phase is one handler that returns the next phase:
 *
 * | phase | does | next |
 * |---|---|---|
 * | (enter) | reads what the results file says of the item | `submitted` (a request id is known: poll it), `submitting` (resubmitted flagged when the last outcome is unknown), or end |
 * | `submitting` | with `maxSpend`, prices the job (a price the API refuses fails the item, `PRICE_UNAVAILABLE`); waits for a submission slot; with `maxSpend`, reserves the price (refused: the item waits for the next run); writes `submitting` (with the price), POSTs | `submitted` (writes `submitted`); `submitting` again (unknown outcome, resubmitted flagged); terminal (an inline result, or a refusal that is the item's own); end (released or left pending: a stop, a configuration error, a transient failure) |
 * | `submitted` | waits for the job | terminal (done or failed); `submitting` (a failed job that may be resubmitted); end (pending: the `submitted` record stands and the next run polls it) |
 *
 * "End" without a terminal record always leaves the item resumable: a `released` record (the POST was refused
 * unsent: the next run submits afresh) or its open `submitting`/`submitted` record. What the item needs from
 * its run (the results file, the client, counters, stops) comes through {@link ItemHost}.
 */
import type { Clock } from '../internal/clock.js';
import type { Logger } from '../internal/logger.js';
import { classifyError, configurationStop, errorCode, isConfigurationError, mayResubmit, stopFor, toItemError } from './classify.js';
import type { ParsedItem } from './input.js';
import type { Journal, OpenEntry, TerminalRecord } from './journal.js';
import type { RunSpend } from './spend.js';
import { fromNano } from '../internal/money.js';
import { publishSpend } from '../diagnostics/channels.js';
import type { BatchClient, BatchJobResult, ItemError, JobOutput, StopInfo, TerminalState } from './types.js';

/** Counters an item adds to, owned by its run. */
export interface ItemCounters {
  /** Items left pending (resumable). */
  deferred: number;
  /** Items picked up by polling a request id from an earlier run. */
  resumed: number;
  resubmissions: number;
  resubmittedUnknown: number;
}

/** What an item needs from the run it belongs to. */
export interface ItemHost {
  readonly journal: Journal;
  readonly client: BatchClient;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly counters: ItemCounters;
  readonly maxResubmissions: number;
  readonly resubmitUnknown: boolean;
  readonly keepPreview: boolean;
  /** The API base URL, for the message of a configuration stop. */
  readonly apiBaseUrl: string | undefined;
  /** With `maxSpend`: prices and the cap. */
  readonly spend: RunSpend | undefined;
  /** True once a stop was requested. */
  readonly stopping: boolean;
  /** True when a stop cut requests on the wire (their outcome is unknown). */
  readonly hardAbort: boolean;
  /** True once the API answered a submission or a job's end in this run: the base URL and the key work. */
  apiConfirmed: boolean;
  /**
   * Waits until fewer than `maxSubmitting` items are between their `submitting` record and the POST's answer,
   * and takes the slot (give it back with `submitting(-1)`). Resolves false, taking nothing, on a stop.
   */
  waitForSubmitSlot(signal: AbortSignal): Promise<boolean>;
  /** One fewer (`-1`) item is submitting (`+1`: one more, without waiting). */
  submitting(delta: 1 | -1): void;
  requestStop(info: StopInfo): void;
  /** A request succeeded or an item reached a terminal state by the API's word: the run of transient failures ends. */
  noteSuccess(): void;
  noteTransient(error: unknown): void;
  /** Writes the terminal record and hands the result out. */
  finishTerminal(record: TerminalRecord, resumed: boolean): void;
}

type Phase = 'submitting' | 'submitted' | 'end';

/** Reads `resultUrl`, `resultsAltFormats`, `result` (and `preview` when kept) off a job result. */
function outputOf(job: BatchJobResult, keepPreview: boolean): JobOutput {
  const j = job as unknown as Record<string, unknown>;
  const out: JobOutput = {};
  if (typeof j['resultUrl'] === 'string') out.resultUrl = j['resultUrl'];
  if (typeof j['resultsAltFormats'] === 'object' && j['resultsAltFormats'] !== null) {
    out.resultsAltFormats = j['resultsAltFormats'] as Record<string, string>;
  }
  if (j['result'] !== undefined && j['result'] !== null) out.result = j['result'];
  if (keepPreview && j['preview'] !== undefined && j['preview'] !== null) out.preview = j['preview'];
  return out;
}

/** Runs one item from where its results-file records left it (`prior`) to a terminal record, a release, or a stop. */
export function runItem(host: ItemHost, id: string, prior: OpenEntry | undefined, item: ParsedItem | undefined, signal: AbortSignal): Promise<void> {
  return new ItemRun(host, id, prior, item, signal).run();
}

class ItemRun {
  readonly #host: ItemHost;
  readonly #id: string;
  readonly #item: ParsedItem | undefined;
  readonly #signal: AbortSignal;
  readonly #prior: OpenEntry | undefined;
  readonly #line: number;
  readonly #endpoint: string;
  readonly #model: string | undefined;
  #attempt: number;
  #resubmissions: number;
  #possibleDuplicate: boolean;
  #requestId: string | undefined;
  #submittedAt = 0;
  /** The price reserved for the submission under way, nano-dollars (0: none). */
  #priceNano = 0;
  /** Resubmissions spent in this run, in all and by job error code. */
  readonly #spent = { total: 0, byCode: new Map<string, number>() };

  constructor(host: ItemHost, id: string, prior: OpenEntry | undefined, item: ParsedItem | undefined, signal: AbortSignal) {
    this.#host = host;
    this.#id = id;
    this.#item = item;
    this.#signal = signal;
    this.#prior = prior;
    this.#line = item?.line ?? prior?.line ?? 0;
    this.#endpoint = item?.endpoint ?? prior?.endpoint ?? '';
    this.#model = typeof item?.params['model'] === 'string' ? item.params['model'] : prior?.model;
    this.#attempt = prior?.attempt ?? 0;
    this.#resubmissions = prior?.resubmissions ?? 0;
    this.#possibleDuplicate = prior?.possibleDuplicate ?? false;
  }

  async run(): Promise<void> {
    let phase = this.#enter();
    while (phase !== 'end') phase = phase === 'submitting' ? await this.#submit() : await this.#awaitJob();
  }

  /** The first phase, from what the results file says of the item. */
  #enter(): Phase {
    const prior = this.#prior;
    if (prior?.state === 'submitted' && prior.requestId !== undefined) {
      this.#requestId = prior.requestId;
      this.#submittedAt = prior.at;
      this.#host.counters.resumed++;
      return 'submitted';
    }
    if (prior?.state === 'submitting') {
      // The previous run died (or stopped hard) between the POST and its answer: the job may exist.
      if (!this.#host.resubmitUnknown) return this.#leavePending();
      this.#possibleDuplicate = true;
      this.#countResubmission();
      this.#host.counters.resubmittedUnknown++;
    }
    return 'submitting';
  }

  // ------------------------------------------------------------------ submitting

  async #submit(): Promise<Phase> {
    const host = this.#host;
    const item = this.#item;
    // An orphan whose job failed: without its input it cannot be sent again.
    if (item === undefined) return this.#leavePending();
    if (this.#stopped()) return this.#leavePending();
    let priceNano: number | undefined;
    if (host.spend !== undefined) {
      try {
        priceNano = await host.spend.quote(this.#endpoint, item.params, this.#line, this.#signal);
      } catch (error) {
        return this.#onPriceError(error);
      }
      host.apiConfirmed = true; // the API priced a job: the base URL and the key work
      if (this.#stopped()) return this.#leavePending();
    }
    if (!(await host.waitForSubmitSlot(this.#signal))) return this.#leavePending();
    if (this.#stopped()) {
      host.submitting(-1);
      return this.#leavePending();
    }
    if (host.spend !== undefined && priceNano !== undefined) {
      // Reserved before the `submitting` record: a crash from here on counts the price as spent, never as free.
      try {
        await host.spend.reserve(priceNano);
      } catch (error) {
        host.submitting(-1);
        return this.#onPriceError(error);
      }
      this.#priceNano = priceNano;
      if (this.#stopped()) {
        host.submitting(-1);
        this.#giveBack();
        return this.#leavePending();
      }
    }
    this.#attempt++;
    try {
      host.journal.append({
        id: this.#id,
        line: this.#line,
        state: 'submitting',
        attempt: this.#attempt,
        ...(this.#possibleDuplicate ? { possibleDuplicate: true } : {}),
        ...(this.#priceNano > 0 ? { price: fromNano(this.#priceNano) } : {}),
        at: host.clock.now(),
      });
    } catch (error) {
      host.submitting(-1);
      throw error;
    }
    let submitted: { requestId: string; result?: unknown } | undefined;
    let failure: { error: unknown } | undefined;
    try {
      submitted = await host.client.submit(this.#endpoint, item.params, {
        signal: this.#signal,
        ...(item.priority !== undefined ? { priority: item.priority } : {}),
      });
    } catch (error) {
      failure = { error };
    } finally {
      host.submitting(-1);
    }
    if (failure !== undefined || submitted === undefined) return this.#onSubmitError(failure?.error);
    const price = this.#priceNano;
    this.#priceNano = 0; // charged
    if (price > 0) publishSpend(host.client, fromNano(price), this.#endpoint);
    host.apiConfirmed = true;
    this.#requestId = submitted.requestId;
    if (submitted.result !== undefined) {
      // The API answered with the output inline (`return_result_in_response`): nothing to wait for.
      if (this.#requestId === '') this.#requestId = undefined;
      host.noteSuccess();
      return this.#finish('done', { output: { result: submitted.result } });
    }
    this.#submittedAt = host.clock.now();
    host.journal.append({
      id: this.#id,
      line: this.#line,
      state: 'submitted',
      requestId: submitted.requestId,
      endpoint: this.#endpoint,
      ...(this.#model !== undefined ? { model: this.#model } : {}),
      attempt: this.#attempt,
      resubmissions: this.#resubmissions,
      ...(this.#possibleDuplicate ? { possibleDuplicate: true } : {}),
      ...(price > 0 ? { price: fromNano(price) } : {}),
      at: this.#submittedAt,
    });
    return 'submitted';
  }

  /** A price that could not be had, or a reservation refused: nothing was sent, nothing is spent. */
  #onPriceError(error: unknown): Phase {
    const host = this.#host;
    if (this.#signal.aborted) return this.#leavePending();
    const code = errorCode(error);
    // The cap: this item waits for the next run (the run ends as 'spend-cap' once the items under way finish).
    if (code === 'SPEND_CAP_REACHED') return this.#leavePending();
    if (code === 'PRICE_UNAVAILABLE') {
      const cause = (error as { cause?: unknown }).cause;
      if (!host.apiConfirmed && isConfigurationError(cause)) {
        // Nothing has worked at this base URL yet: the URL is wrong, not the line.
        host.requestStop(configurationStop(cause, host.apiBaseUrl, `${this.#endpoint}/price-calculation`, 'POST'));
        return this.#leavePending();
      }
      host.noteSuccess();
      return this.#finish('failed', { error: toItemError(error) });
    }
    return this.#leaveFor(error, classifyError(error) === 'stop');
  }

  /** An error that leaves the item pending: it stops the run (`stop`), or is one more transient failure. */
  #leaveFor(error: unknown, stop: boolean): Phase {
    if (stop) this.#host.requestStop(stopFor(error, this.#host.apiBaseUrl));
    else this.#host.noteTransient(error);
    return this.#leavePending();
  }

  /** Gives back the reservation of a submission that was definitely not charged. */
  #giveBack(): void {
    if (this.#priceNano > 0) this.#host.spend?.release(this.#priceNano);
    this.#priceNano = 0;
  }

  #onSubmitError(error: unknown): Phase {
    const host = this.#host;
    if (this.#signal.aborted) {
      // Aborted by a stop. After a graceful stop nothing was on the wire: the POST never left.
      if (!host.hardAbort) this.#release('stopped');
      return this.#leavePending();
    }
    if (!host.apiConfirmed && isConfigurationError(error)) {
      // Nothing has worked at this base URL yet: the URL is wrong, not the item. Stop before every item fails.
      this.#release('configuration');
      host.requestStop(configurationStop(error, host.apiBaseUrl, this.#endpoint, 'POST'));
      return this.#leavePending();
    }
    switch (classifyError(error)) {
      case 'unknown-outcome':
        this.#priceNano = 0; // the job may exist: its price stays spent
        host.logger.warn({ id: this.#id, line: this.#line, attempt: this.#attempt }, 'submission outcome unknown');
        if (host.resubmitUnknown && this.#spent.total < host.maxResubmissions && !host.stopping) {
          this.#possibleDuplicate = true;
          this.#spent.total++;
          this.#countResubmission();
          return 'submitting';
        }
        // Its `submitting` record stays: the next run resubmits it, flagged. A run of these means the API is
        // not answering: counted as transient, so that the run stops and the summary names the cause.
        host.noteTransient(error);
        return this.#leavePending();
      case 'stop':
        // 401, 403, a daily 429, a balance 422, an unreachable store: the POST was refused or never left.
        // A closed client may have cut a POST on the wire: keep its `submitting` record then.
        if (errorCode(error) !== 'QUEUE_CLOSED') this.#release(errorCode(error) ?? 'stop');
        host.requestStop(stopFor(error, host.apiBaseUrl));
        return this.#leavePending();
      case 'fatal':
      case 'job-failed':
        host.noteSuccess();
        // Refused for its parameters: not charged. The `released` record gives the price back on resume too.
        if (this.#priceNano > 0) this.#release(errorCode(error) ?? 'refused');
        return this.#finish('failed', { error: toItemError(error) });
      case 'transient':
        // Retries ran out on failures the engine knows were not processed (5xx, refused connections): no job
        // exists. Anything else unexpected may have reached the server: keep the `submitting` record, so that
        // the next run resubmits it flagged as a possible duplicate.
        if (errorCode(error) === 'RETRIES_EXHAUSTED') this.#release('RETRIES_EXHAUSTED');
        host.noteTransient(error);
        return this.#leavePending();
    }
  }

  // ------------------------------------------------------------------ submitted

  async #awaitJob(): Promise<Phase> {
    const host = this.#host;
    let job: BatchJobResult;
    try {
      job = await host.client.wait(this.#requestId as string, {
        signal: this.#signal,
        ...(this.#endpoint !== '' ? { endpoint: this.#endpoint } : {}),
        ...(this.#model !== undefined ? { model: this.#model } : {}),
        submittedAt: this.#submittedAt,
      });
    } catch (error) {
      return this.#onWaitError(error);
    }
    host.apiConfirmed = true;
    host.noteSuccess();
    return this.#finish('done', { output: outputOf(job, host.keepPreview) });
  }

  #onWaitError(error: unknown): Phase {
    const host = this.#host;
    // Its `submitted` record stands in every case that leaves the item pending: the next run polls it.
    if (this.#signal.aborted) return this.#leavePending();
    const kind = classifyError(error);
    if (kind === 'job-failed') host.apiConfirmed = true;
    if (!host.apiConfirmed && isConfigurationError(error)) {
      host.requestStop(configurationStop(error, host.apiBaseUrl, 'request-status', 'GET'));
      return this.#leavePending();
    }
    switch (kind) {
      case 'job-failed': {
        host.noteSuccess();
        if (this.#item !== undefined && !host.stopping && mayResubmit(error, this.#spent, host.maxResubmissions)) {
          const jobCode = (error as { jobErrorCode?: string }).jobErrorCode ?? 'UNKNOWN_ERROR';
          this.#spent.total++;
          this.#spent.byCode.set(jobCode, (this.#spent.byCode.get(jobCode) ?? 0) + 1);
          this.#countResubmission();
          host.logger.debug({ id: this.#id, line: this.#line, requestId: this.#requestId, jobErrorCode: jobCode }, 'job failed; resubmitting');
          this.#requestId = undefined;
          return 'submitting';
        }
        return this.#finish('failed', { error: toItemError(error) });
      }
      case 'fatal':
        host.noteSuccess();
        return this.#finish('failed', { error: toItemError(error) });
      default:
        return this.#leaveFor(error, kind === 'stop');
    }
  }

  // ------------------------------------------------------------------ ends

  #stopped(): boolean {
    return this.#signal.aborted || this.#host.stopping;
  }

  #countResubmission(): void {
    this.#resubmissions++;
    this.#host.counters.resubmissions++;
  }

  /** Ends the item without a terminal record: the next run picks it up where its records leave it. */
  #leavePending(): 'end' {
    this.#host.counters.deferred++;
    return 'end';
  }

  /** Writes a `released` record: the submission was refused unsent, so the next run submits it afresh. */
  #release(reason: string): void {
    const host = this.#host;
    host.journal.append({ id: this.#id, line: this.#line, state: 'released', reason, at: host.clock.now() });
    this.#giveBack();
  }

  #finish(state: TerminalState, extra: { output?: JobOutput; error?: ItemError }): 'end' {
    const record: TerminalRecord = {
      id: this.#id,
      line: this.#line,
      state,
      attempts: this.#attempt,
      resubmissions: this.#resubmissions,
      possibleDuplicate: this.#possibleDuplicate,
      at: this.#host.clock.now(),
    };
    if (this.#requestId !== undefined) record.requestId = this.#requestId;
    if (extra.output !== undefined) record.output = extra.output;
    if (extra.error !== undefined) record.error = extra.error;
    if (this.#item?.meta !== undefined) record.meta = this.#item.meta;
    this.#host.finishTerminal(record, this.#prior !== undefined);
    return 'end';
  }
}
