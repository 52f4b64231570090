/**
 * Streams a job's `result_url` (temporary storage) to a file or a stream,
 * through undici. Storage is not the API: no rate limit, and the API key is
 * never sent there.
 */
import { createWriteStream } from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { Agent, interceptors, request, type Dispatcher } from 'undici';
import { headerRecord } from '../engine/classify.js';
import { HttpError } from '../errors/http-error.js';
import { NotFoundError } from '../errors/not-found-error.js';
import { sleep, type Clock, type Random } from '../internal/clock.js';
import type { Logger } from '../internal/logger.js';
import { errorForResponse } from './transport.js';

export interface DownloadOptions {
  signal?: AbortSignal;
}

export interface DownloaderOptions {
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  userAgent: string;
  clock: Clock;
  random: Random;
  logger: Logger;
}

const ATTEMPTS = 3;

function retryable(error: unknown): boolean {
  if (error instanceof HttpError) return error.status === 408 || error.status === 429 || error.status >= 500;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('UND_ERR') || code.startsWith('EC') || code === 'ETIMEDOUT' || code === 'EPIPE');
}

export class Downloader {
  readonly #agent: Agent;
  readonly #dispatcher: Dispatcher;
  readonly #o: DownloaderOptions;

  constructor(options: DownloaderOptions) {
    this.#o = options;
    this.#agent = new Agent({
      connectTimeout: options.connectTimeoutMs,
      headersTimeout: options.headersTimeoutMs,
      bodyTimeout: options.bodyTimeoutMs,
    });
    this.#dispatcher = this.#agent.compose(interceptors.redirect({ maxRedirections: 5 }));
  }

  /**
   * Downloads `url` to `dest`: a path (written to a temporary file, renamed
   * when complete: never a partial file) or a writable stream (ended when
   * done). Network errors and 5xx are retried (a stream only before its
   * first byte). A 404 usually means the result expired.
   */
  async download(url: string, dest: string | NodeJS.WritableStream, options: DownloadOptions = {}): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      let started = false;
      try {
        const res = await request(url, {
          method: 'GET',
          dispatcher: this.#dispatcher,
          headers: { accept: '*/*', 'user-agent': this.#o.userAgent },
          ...(options.signal ? { signal: options.signal } : {}),
        });
        if (res.statusCode < 200 || res.statusCode >= 300) {
          const text = await res.body.text().catch(() => '');
          const error = errorForResponse(res.statusCode, headerRecord(res.headers), text, attempt, undefined);
          if (error instanceof NotFoundError) error.message = `Result not found (HTTP 404): result URLs are temporary and this one may have expired`;
          throw error;
        }
        started = true;
        if (typeof dest === 'string') {
          const tmp = `${dest}.${Math.floor(this.#o.random() * 1e9).toString(36)}.part`;
          try {
            await pipeline(res.body, createWriteStream(tmp));
            await rename(tmp, dest);
          } catch (error) {
            await unlink(tmp).catch(() => undefined);
            started = false; // nothing reached `dest`: safe to try again
            throw error;
          }
        } else {
          await pipeline(res.body, dest);
        }
        return;
      } catch (error) {
        if (options.signal?.aborted || attempt >= ATTEMPTS || started || !retryable(error)) throw error;
        const delay = 250 * 2 ** (attempt - 1) * (0.5 + this.#o.random());
        this.#o.logger.debug({ attempt, delay, err: error instanceof Error ? error.message : String(error) }, 'download failed; retrying');
        await sleep(delay, this.#o.clock, options.signal);
      }
    }
  }

  async close(): Promise<void> {
    await this.#agent.close().catch(() => this.#agent.destroy());
  }
}
