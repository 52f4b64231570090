import { describe, expect, it } from 'vitest';
import { AuthenticationError } from '../src/errors/authentication-error.js';
import { HttpError } from '../src/errors/http-error.js';
import { NotFoundError } from '../src/errors/not-found-error.js';
import { OutcomeUnknownError } from '../src/errors/outcome-unknown-error.js';
import { RetriesExhaustedError } from '../src/errors/retries-exhausted-error.js';
import { ValidationError } from '../src/errors/validation-error.js';
import type { RetryReason } from '../src/engine/events.js';
import { netError, of, prng, record, roomy, Script, setup, T0, track, type Answer } from './helpers/engine.js';

const fetchFailed = (code: string) => new TypeError('fetch failed', { cause: netError(code) });

describe('transient failures are retried with full-jitter backoff', () => {
  it.each<[string, Answer, RetryReason]>([
    ['500', { status: 500 }, 'server-error'],
    ['502 thrown as an error carrying a response', { status: 502, throws: true }, 'server-error'],
    ['503', { status: 503 }, 'server-error'],
    ['408', { status: 408 }, 'request-timeout'],
    ['ECONNREFUSED (never sent)', { error: netError('ECONNREFUSED') }, 'network'],
    ['undici connect timeout (never sent)', { error: netError('UND_ERR_CONNECT_TIMEOUT') }, 'network'],
  ])('%s is retried (reason %s)', async (_label, failure, reason) => {
    const { clock, scheduler } = setup();
    const script = new Script(clock, [failure, failure]);
    const log = record(scheduler, clock, ['retrying', 'outcomeUnknown']);
    const p = track(scheduler.schedule(script.task));
    await clock.advance(5000);
    expect(p.state).toBe('fulfilled');
    expect(script.calls.map((c) => c.attempt)).toEqual([1, 2, 3]);
    expect(of(log, 'retrying').map((e) => [e.attempt, e.reason])).toEqual([
      [1, reason],
      [2, reason],
    ]);
    expect(of(log, 'outcomeUnknown')).toEqual([]);
  });

  it('waits random × min(maxDelayMs, baseDelayMs × 2^(n-1)) before attempt n+1', async () => {
    const values = [0.9, 0.1, 0.999, 0.5, 0.7, 0.3];
    let i = 0;
    const { clock, scheduler } = setup({
      random: () => values[i++ % values.length] as number,
      retry: { maxAttempts: 6, baseDelayMs: 100, maxDelayMs: 1000 },
      gateJitter: 0,
    });
    const script = new Script(clock, Array.from({ length: 5 }, () => ({ status: 503 })), { latencyMs: 10 });
    const log = record(scheduler, clock, ['retrying']);
    const p = track(scheduler.schedule(script.task));
    await clock.advance(10_000);
    expect(p.state).toBe('fulfilled');
    const delays = of(log, 'retrying').map((e) => e.delayMs);
    const caps = [100, 200, 400, 800, 1000];
    expect(delays).toHaveLength(5);
    delays.forEach((d, n) => {
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(caps[n] as number);
      expect(d).toBeCloseTo((values[n] as number) * (caps[n] as number), 2);
    });
    // each attempt starts exactly when its backoff ends
    for (let n = 1; n < script.calls.length; n++) {
      const prev = script.calls[n - 1]!;
      expect(script.calls[n]!.start - (prev.end as number)).toBeCloseTo(delays[n - 1] as number, 2);
    }
  });

  it('gives up after maxAttempts with RetriesExhaustedError carrying the attempts and the last error', async () => {
    const { clock, scheduler } = setup({ retry: { maxAttempts: 3, baseDelayMs: 10 } });
    const script = new Script(clock, [], { fallback: { status: 503, headers: { 'x-request-id': 'r1' } } });
    const log = record(scheduler, clock, ['failed', 'retrying']);
    const p = track(scheduler.schedule(script.task));
    await clock.advance(5000);
    expect(script.calls).toHaveLength(3);
    expect(p.error).toBeInstanceOf(RetriesExhaustedError);
    const error = p.error as RetriesExhaustedError;
    expect(error.code).toBe('RETRIES_EXHAUSTED');
    expect(error.attempts).toBe(3);
    expect(error.message).toBe('Gave up after 3 attempt(s): HTTP 503');
    expect(error.cause).toBeInstanceOf(HttpError);
    expect((error.cause as HttpError).status).toBe(503);
    expect((error.cause as HttpError).attempt).toBe(3);
    expect(of(log, 'retrying')).toHaveLength(2);
    expect(of(log, 'failed')).toEqual([{ id: 1, attempt: 3, error }]);
    expect(scheduler.stats().counts).toMatchObject({ dispatched: 3, retried: 2, failed: 1 });
  });

  it('counts attempts, not 429s, in RetriesExhaustedError', async () => {
    const { clock, scheduler } = setup({ retry: { maxAttempts: 3, baseDelayMs: 10 } });
    const r429 = { status: 429, headers: { 'retry-after-ms': '50', ...roomy(0) } };
    const r503 = { status: 503, headers: roomy(900) };
    const script = new Script(clock, [r503, r429, r503, r429, r429, r503]);
    const p = track(scheduler.schedule(script.task));
    await clock.advance(5000);
    expect(script.calls.map((c) => `${c.attempt}:${c.outcome}`)).toEqual(['1:503', '2:429', '2:503', '3:429', '3:429', '3:503']);
    expect((p.error as RetriesExhaustedError).attempts).toBe(3);
  });

  it('stops retrying once the total time would pass maxRetryTimeMs', async () => {
    const { clock, scheduler } = setup({ random: () => 0.99, retry: { maxAttempts: 10, baseDelayMs: 400, maxDelayMs: 10_000, maxRetryTimeMs: 2000 } });
    const script = new Script(clock, [], { fallback: { status: 500 } });
    const p = track(scheduler.schedule(script.task));
    await clock.advance(20_000);
    // delays ≈ 396, 792, 1584: the third would end past 2 s after the first dispatch
    expect(script.calls).toHaveLength(3);
    expect(p.error).toBeInstanceOf(RetriesExhaustedError);
    expect((p.error as RetriesExhaustedError).attempts).toBe(3);
    const last = script.calls.at(-1)!;
    expect((last.end as number) - T0).toBeLessThanOrEqual(2000);
  });

  it('a retry spends budget like any request, and waits for it', async () => {
    const { clock, scheduler } = setup({ windows: { minuteMs: 1000 }, retry: { baseDelayMs: 10 } });
    // the failed attempt used the last unit of the window
    const script = new Script(clock, [{ status: 503, headers: roomy(0, 5) }], { fallback: { status: 200, headers: roomy(4, 5) } });
    const p = track(scheduler.schedule(script.task));
    await clock.advance(500);
    expect(scheduler.stats().budget?.minute).toMatchObject({ limit: 5, available: 0 });
    expect(scheduler.stats()).toMatchObject({ backingOff: 0, queued: 1 });
    expect(script.calls).toHaveLength(1);
    await clock.advance(1500);
    expect(p.state).toBe('fulfilled');
    expect(script.calls).toHaveLength(2);
    // not before the failed attempt's unit left the window
    expect(script.calls[1]!.start).toBeGreaterThanOrEqual((script.calls[0]!.end as number) + 1000);
    expect(scheduler.stats().budget?.sent).toBe(2);
  });

  it('a task waiting out a backoff holds no concurrency slot', async () => {
    const { clock, scheduler } = setup({ maxConcurrent: 1, retry: { baseDelayMs: 10_000, maxDelayMs: 10_000 } });
    const script = new Script(clock).plan(1, { status: 503 });
    const a = track(scheduler.schedule(script.task));
    const others = Array.from({ length: 3 }, () => track(scheduler.schedule(script.task)));
    await clock.advance(100);
    expect(scheduler.stats()).toMatchObject({ backingOff: 1, inFlight: 0 });
    expect(others.every((t) => t.state === 'fulfilled')).toBe(true);
    expect(a.state).toBe('pending');
    await clock.advance(10_000);
    expect(a.state).toBe('fulfilled');
    expect(script.calls.map((c) => c.id)).toEqual([1, 2, 3, 4, 1]);
  });
});

describe('outcome unknown: resent only when idempotent', () => {
  it.each([
    ['ECONNRESET', netError('ECONNRESET')],
    ['undici socket error', netError('UND_ERR_SOCKET')],
    ['fetch failed (cause ECONNRESET)', fetchFailed('ECONNRESET')],
    ['EPIPE', netError('EPIPE')],
  ])('%s on a non-idempotent task fails with OutcomeUnknownError, not resent', async (_label, error) => {
    const { clock, scheduler } = setup();
    const script = new Script(clock, [{ error }]);
    const log = record(scheduler, clock, ['outcomeUnknown', 'retrying']);
    const p = track(scheduler.schedule(script.task));
    await clock.advance(5000);
    expect(script.calls).toHaveLength(1);
    expect(p.error).toBeInstanceOf(OutcomeUnknownError);
    expect((p.error as OutcomeUnknownError).attempt).toBe(1);
    expect((p.error as OutcomeUnknownError).cause).toBe(error);
    expect(of(log, 'outcomeUnknown')).toEqual([{ id: 1, attempt: 1, resent: false, error }]);
    expect(of(log, 'retrying')).toEqual([]);
    expect(scheduler.stats().counts.outcomeUnknown).toBe(1);
  });

  it('the same failure on an idempotent task is resent, and the event says so', async () => {
    const { clock, scheduler } = setup();
    const error = netError('ECONNRESET');
    const script = new Script(clock, [{ error }]);
    const log = record(scheduler, clock, ['outcomeUnknown', 'retrying']);
    const p = track(scheduler.schedule(script.task, { idempotent: true }));
    await clock.advance(5000);
    expect(p.state).toBe('fulfilled');
    expect(script.calls).toHaveLength(2);
    expect(of(log, 'outcomeUnknown')).toEqual([{ id: 1, attempt: 1, resent: true, error }]);
    expect(of(log, 'retrying')).toEqual([expect.objectContaining({ attempt: 1, reason: 'outcome-unknown', error })]);
  });

  it('an outcome-unknown failure on a later attempt of a non-idempotent task ends the retries', async () => {
    const { clock, scheduler } = setup();
    const script = new Script(clock, [{ status: 503 }, { error: netError('ECONNRESET') }]);
    const p = track(scheduler.schedule(script.task));
    await clock.advance(5000);
    expect(script.calls).toHaveLength(2);
    expect(p.error).toBeInstanceOf(OutcomeUnknownError);
    expect((p.error as OutcomeUnknownError).attempt).toBe(2);
  });
});

describe('failures that are not retried', () => {
  it('401 stops the whole queue at once with AuthenticationError', async () => {
    const { clock, scheduler } = setup({ maxConcurrent: 3, retry: { baseDelayMs: 60_000, maxDelayMs: 60_000 } });
    const script = new Script(clock, [], { latencyMs: 100 })
      .plan(1, { status: 200, headers: roomy(), after: 10 }) // learns the budget
      .plan(2, { status: 503, after: 20 }) // backs off ~30 s
      .plan(3, { status: 401, after: 40, body: { message: 'Unauthenticated.' } });
    const log = record(scheduler, clock, ['paused', 'failed', 'dispatched']);
    const tasks = Array.from({ length: 8 }, () => track(scheduler.schedule(script.task)));
    await clock.advance(10); // task 1 answers; 2, 3, 4 go
    await clock.advance(20); // task 2: 503; task 5 takes its slot
    expect(scheduler.stats().backingOff).toBe(1);
    await clock.advance(20); // task 3: 401 at 50
    const dispatchedBefore = of(log, 'dispatched').length;
    expect(dispatchedBefore).toBe(5);
    const auth = tasks[2]!.error as AuthenticationError;
    expect(auth).toBeInstanceOf(AuthenticationError);
    expect(auth.code).toBe('AUTHENTICATION_FAILED');
    expect(auth.status).toBe(401);
    expect(auth.body).toEqual({ message: 'Unauthenticated.' });
    expect(of(log, 'paused')).toEqual([{ reason: 'authentication' }]);
    // the queued ones and the one backing off fail at once, with the same error
    for (const i of [1, 5, 6, 7]) expect(tasks[i]!.error).toBe(auth);
    expect(scheduler.stats()).toMatchObject({ queued: 0, backingOff: 0, inFlight: 2 });
    // the ones in flight finish normally
    await clock.advance(100);
    expect(tasks[3]!.state).toBe('fulfilled');
    expect(tasks[4]!.state).toBe('fulfilled');
    await expect(scheduler.schedule(script.task)).rejects.toBe(auth);
    await clock.advance(120_000);
    expect(of(log, 'dispatched').length).toBe(dispatchedBefore);
    expect(script.calls).toHaveLength(5);
    expect(scheduler.stats().counts.retried).toBe(1);
    await scheduler.close();
    expect(clock.pendingTimers).toBe(0);
  });

  it.each([
    ['404', { status: 404, body: { message: 'Not Found' } }, NotFoundError, 'NOT_FOUND'],
    ['400', { status: 400 }, HttpError, 'HTTP_ERROR'],
    ['403', { status: 403, throws: true }, HttpError, 'HTTP_ERROR'],
    ['503 with x-should-retry: false', { status: 503, headers: { 'x-should-retry': 'false' } }, HttpError, 'HTTP_ERROR'],
  ] as const)('%s fails the task without a retry', async (_label, answer, type, code) => {
    const { clock, scheduler } = setup();
    const script = new Script(clock, [answer]);
    const p = track(scheduler.schedule(script.task));
    await clock.advance(5000);
    expect(script.calls).toHaveLength(1);
    expect(p.error).toBeInstanceOf(type);
    expect((p.error as HttpError).code).toBe(code);
    expect((p.error as HttpError).status).toBe(answer.status);
    expect(scheduler.stats().counts.retried).toBe(0);
  });

  it('422 fails the task with the field errors from the body', async () => {
    const { clock, scheduler } = setup();
    const body = { message: 'The given data was invalid.', errors: { width: ['The width must be at least 256.'], steps: 'too many' } };
    const script = new Script(clock, [{ status: 422, body, headers: { 'x-request-id': 'abc' } }]);
    const p = track(scheduler.schedule(script.task));
    await clock.advance(100);
    expect(script.calls).toHaveLength(1);
    const error = p.error as ValidationError;
    expect(error).toBeInstanceOf(ValidationError);
    expect(error.code).toBe('VALIDATION_FAILED');
    expect(error.fieldErrors).toEqual({ width: ['The width must be at least 256.'], steps: ['too many'] });
    expect(error.message).toBe('Validation failed (HTTP 422): width: The width must be at least 256., steps: too many');
    expect(error.headers).toMatchObject({ 'x-request-id': 'abc' });
    expect(error.body).toBe(body);
  });

  it('x-should-retry: true makes an otherwise fatal status transient', async () => {
    const { clock, scheduler } = setup();
    const script = new Script(clock, [{ status: 409, headers: { 'x-should-retry': 'true' } }]);
    const p = track(scheduler.schedule(script.task));
    await clock.advance(5000);
    expect(p.state).toBe('fulfilled');
    expect(script.calls).toHaveLength(2);
  });

  it('an HttpError thrown by the task keeps its identity', async () => {
    const { clock, scheduler } = setup();
    const mine = new NotFoundError({ body: { message: 'no such job' } });
    const p = track(scheduler.schedule(async () => Promise.reject(mine)));
    await clock.advance(10);
    expect(p.error).toBe(mine);
  });

  it.each([
    ['a TypeError', new TypeError("Cannot read properties of undefined (reading 'x')")],
    ['a TypeError that looks like a network failure', new TypeError('fetch failed')],
    ['a RangeError', new RangeError('bad')],
    ['a thrown string', 'oops'],
  ])('%s from the task is a bug: never retried, even on a later attempt', async (_label, bug) => {
    const { clock, scheduler } = setup();
    const script = new Script(clock, [{ status: 503 }, { error: bug }]);
    const log = record(scheduler, clock, ['retrying']);
    const p = track(scheduler.schedule(script.task));
    await clock.advance(5000);
    expect(script.calls).toHaveLength(2);
    expect(p.error).toBe(bug);
    expect(of(log, 'retrying')).toHaveLength(1);
  });

  it('a task resolving with an error response has its body released', async () => {
    const { clock, scheduler } = setup({ retry: { maxAttempts: 1 } });
    let released = 0;
    const p = track(
      scheduler.schedule(async () => ({ statusCode: 500, headers: {}, body: { dump: async () => void released++ } })),
    );
    await clock.advance(10);
    expect(p.error).toBeInstanceOf(RetriesExhaustedError);
    expect(released).toBe(1);
  });
});

describe('retries under a seeded random source', () => {
  it.each([1, 2, 3, 4, 5])('seed %d: every task ends, attempts never pass the bound', async (seed) => {
    const random = prng(seed);
    const { clock, scheduler } = setup({ random, retry: { maxAttempts: 4, baseDelayMs: 50 }, maxConcurrent: 4 });
    const kinds: Answer[] = [
      { status: 200, headers: roomy() },
      { status: 503 },
      { status: 500 },
      { error: netError('ECONNREFUSED') },
      { error: netError('ECONNRESET') },
      { status: 404 },
    ];
    const script = new Script(clock);
    script.fallback = { status: 200, headers: roomy() };
    const tasks = Array.from({ length: 40 }, (_, i) => {
      script.plan(i + 1, ...Array.from({ length: 5 }, () => kinds[Math.floor(random() * kinds.length)] as Answer));
      return track(scheduler.schedule(script.task, { idempotent: i % 2 === 0 }));
    });
    await clock.runUntil(() => tasks.every((t) => t.state !== 'pending'), 60_000, 100);
    expect(tasks.every((t) => t.state !== 'pending')).toBe(true);
    const perTask = new Map<number, number>();
    for (const c of script.calls) perTask.set(c.id, Math.max(perTask.get(c.id) ?? 0, c.attempt));
    expect(Math.max(...perTask.values())).toBeLessThanOrEqual(4);
    const { counts } = scheduler.stats();
    expect(counts.succeeded + counts.failed).toBe(40);
    expect(counts.dispatched).toBe(script.calls.length);
    expect(scheduler.stats()).toMatchObject({ queued: 0, inFlight: 0, backingOff: 0 });
  });
});
