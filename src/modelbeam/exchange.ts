/**
 * One HTTP exchange on an undici dispatcher, read whole: status, headers and
 * the body as text.
 *
 * `Pool.request` wraps every response body in a Node `Readable` (stream
 * state, event emitters, an async resource, a promise to read it), which is
 * a large share of undici's own cost per request when the bodies are a few
 * bytes of JSON, as the API's are. This handler goes one level down
 * (`dispatch`, the path `Pool.request` itself takes) and collects the bytes.
 * What the caller sees is what `Pool.request` + `body.text()` gave: the same
 * parsed headers, the same errors from undici, the same abort reasons, the
 * same text (UTF-8, a byte-order mark dropped).
 */
import { errors, util, type Dispatcher } from 'undici';
import { AttemptAbort } from '../engine/scheduler.js';

export type ResponseHeaders = Record<string, string | string[] | undefined>;

/** A response whose status and headers arrived. */
export interface Exchanged {
  statusCode: number;
  headers: ResponseHeaders;
  /** The body as text; `''` when it could not be read whole. */
  text: string;
  /** Why the body could not be read whole (a cut connection, a body timeout, an abort), else undefined. */
  bodyError: Error | undefined;
}

/**
 * Sends `options` on `dispatcher`. Rejects with undici's error when no
 * response arrived; resolves once the body is read or failed (`bodyError`).
 * `abort` aborts the exchange with its reason at any point.
 */
export function exchange(dispatcher: Dispatcher, options: Dispatcher.DispatchOptions, abort: AttemptAbort | AbortSignal): Promise<Exchanged> {
  return new Promise((resolve, reject) => {
    dispatcher.dispatch(options, new ExchangeHandler(resolve, reject, abort));
  });
}

const BOM = [0xef, 0xbb, 0xbf] as const;

function decode(chunks: Buffer[], length: number): string {
  if (length === 0) return '';
  const buffer = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, length);
  const start = buffer.length > 2 && buffer[0] === BOM[0] && buffer[1] === BOM[1] && buffer[2] === BOM[2] ? 3 : 0;
  return buffer.toString('utf8', start);
}

/** undici's handler interface (the one `Pool.request` itself implements). */
class ExchangeHandler implements Dispatcher.DispatchHandler {
  readonly #resolve: (value: Exchanged) => void;
  readonly #reject: (error: unknown) => void;
  readonly #abort: AttemptAbort | AbortSignal;
  /** undici's abort of this request, once it is bound to a connection. */
  #abortRequest: ((error: Error) => void) | undefined = undefined;
  /** Set when aborted before the request was bound to a connection. */
  #reason: Error | undefined = undefined;
  #statusCode = 0;
  #headers: ResponseHeaders | undefined = undefined;
  #chunks: Buffer[] = [];
  #length = 0;
  #settled = false;
  readonly #onAbort = (): void => {
    const reason = (this.#abort.reason as Error | undefined) ?? new errors.RequestAbortedError();
    if (this.#abortRequest) this.#abortRequest(reason);
    else this.#reason = reason;
  };

  constructor(resolve: (value: Exchanged) => void, reject: (error: unknown) => void, abort: AttemptAbort | AbortSignal) {
    this.#resolve = resolve;
    this.#reject = reject;
    this.#abort = abort;
    if (abort.aborted) this.#onAbort();
    else if (abort instanceof AttemptAbort) abort.on('abort', this.#onAbort);
    else abort.addEventListener('abort', this.#onAbort, { once: true });
  }

  onConnect(abort: (error?: Error) => void): void {
    if (this.#reason !== undefined) {
      abort(this.#reason);
      return;
    }
    this.#abortRequest = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[]): boolean {
    if (statusCode < 200) return true; // informational (1xx): the response follows
    this.#statusCode = statusCode;
    this.#headers = util.parseHeaders(rawHeaders) as ResponseHeaders;
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.#chunks.push(chunk);
    this.#length += chunk.length;
    return true;
  }

  onComplete(): void {
    this.#finish(decode(this.#chunks, this.#length), undefined);
  }

  onError(error: Error): void {
    if (this.#headers === undefined) {
      if (this.#settled) return;
      this.#settled = true;
      this.#unlisten();
      this.#reject(error);
      return;
    }
    this.#finish('', error);
  }

  #finish(text: string, bodyError: Error | undefined): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#unlisten();
    this.#resolve({ statusCode: this.#statusCode, headers: this.#headers ?? {}, text, bodyError });
  }

  #unlisten(): void {
    const abort = this.#abort;
    if (abort instanceof AttemptAbort) abort.removeListener('abort', this.#onAbort);
    else abort.removeEventListener('abort', this.#onAbort);
  }
}
