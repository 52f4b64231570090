import { describe, expect, it } from 'vitest';
import {
  isRetryableJobError,
  parseJobStatus,
  readJobError,
  readRequestId,
  retryAllowanceFor,
} from '../src/modelbeam/jobs.js';
import { JobTracker } from '../src/modelbeam/job-tracker.js';
import { DurationEstimator } from '../src/modelbeam/poll-planner.js';
import { silentLogger } from '../src/internal/logger.js';
import { ManualClock } from '../src/testing/manual-clock.js';

describe('parseJobStatus', () => {
  it.each([
    ['pending', { status: 'pending', progress: 0 }, { state: 'pending', terminal: false, progress: 0 }],
    ['processing with float progress', { status: 'processing', progress: 45.5 }, { state: 'running', terminal: false, progress: 45.5 }],
    ['in_progress (the WebSocket flow)', { status: 'in_progress' }, { state: 'running', terminal: false }],
    ['unknown status: not terminal', { status: 'queued_for_gpu' }, { state: 'unknown', terminal: false, status: 'queued_for_gpu' }],
    ['upper case status', { status: 'DONE' }, { state: 'done', terminal: true, status: 'done' }],
    ['progress as a string, clamped', { status: 'processing', progress: '120' }, { progress: 100 }],
    ['garbage progress dropped', { status: 'processing', progress: 'soon' }, { progress: undefined }],
  ])('%s', (_name, data, expected) => {
    const parsed = parseJobStatus('r1', { data });
    expect(parsed).toMatchObject(Object.fromEntries(Object.entries(expected).filter(([, v]) => v !== undefined)));
    if ('progress' in expected && expected.progress === undefined) expect(parsed?.progress).toBeUndefined();
  });

  it('reads the result fields of a done job (base64 or URL preview, alt formats, text result)', () => {
    const parsed = parseJobStatus('r1', {
      data: {
        status: 'done',
        progress: 100,
        result_url: 'https://storage.example/r1.png',
        results_alt_formats: { webp: 'https://storage.example/r1.webp' },
        result: null,
        preview: 'data:image/png;base64,AAAA',
        error_code: null,
      },
    });
    expect(parsed).toEqual({
      requestId: 'r1',
      status: 'done',
      state: 'done',
      terminal: true,
      progress: 100,
      resultUrl: 'https://storage.example/r1.png',
      resultsAltFormats: { webp: 'https://storage.example/r1.webp' },
      preview: 'data:image/png;base64,AAAA',
    });
  });

  it('accepts a body without the data envelope, and rejects one without a status', () => {
    expect(parseJobStatus('r1', { status: 'pending' })?.state).toBe('pending');
    expect(parseJobStatus('r1', { data: { progress: 3 } })).toBeUndefined();
    expect(parseJobStatus('r1', 'done')).toBeUndefined();
    expect(parseJobStatus('r1', null)).toBeUndefined();
  });

  it.each([
    ['error_code / error_message', { error_code: 'WORKER_TIMEOUT', error_message: 'slow' }, { code: 'WORKER_TIMEOUT', message: 'slow' }],
    ['camelCase', { errorCode: 'AGE_RESTRICTED', errorMessage: 'no' }, { code: 'AGE_RESTRICTED', message: 'no' }],
    ['nested error object', { error: { code: 'invalid_input', message: 'bad' } }, { code: 'INVALID_INPUT', message: 'bad' }],
    ['error is the code', { error: 'CONTEXT_LENGTH_EXCEEDED' }, { code: 'CONTEXT_LENGTH_EXCEEDED' }],
    ['error is a sentence', { error: 'GPU fell over' }, { message: 'GPU fell over' }],
    ['bare code field', { code: 'PROCESSING_ERROR' }, { code: 'PROCESSING_ERROR' }],
    ['nothing at all (deAPI shows this)', { progress: 100 }, {}],
    ['nulls', { error_code: null, error_message: null }, {}],
  ])('job error fields: %s', (_name, data, expected) => {
    expect(readJobError(data)).toEqual(expected);
    const parsed = parseJobStatus('r1', { data: { status: 'error', ...data } });
    expect(parsed?.errorCode).toBe((expected as { code?: string }).code);
  });
});

describe('job error retry rules', () => {
  it.each([
    ['WORKER_TIMEOUT', true, 'WORKER_TIMEOUT'],
    ['PROCESSING_ERROR', true, 'PROCESSING_ERROR'],
    ['UNKNOWN_ERROR', true, 'UNKNOWN_ERROR'],
    ['SOME_NEW_CODE', true, 'UNKNOWN_ERROR'],
    ['AGE_RESTRICTED', false, undefined],
    ['CONTEXT_LENGTH_EXCEEDED', false, undefined],
    ['INVALID_INPUT', false, undefined],
  ])('%s: retryable %s, allowance %s', (code, retryable, allowance) => {
    expect(isRetryableJobError(code)).toBe(retryable);
    expect(retryAllowanceFor(code)).toBe(allowance);
  });
});

describe('readRequestId', () => {
  it.each([
    [{ data: { request_id: 'abc' } }, 'abc'],
    [{ request_id: 'top' }, 'top'],
    [{ data: { requestId: 'camel' } }, 'camel'],
    [{ data: { request_id: 42 } }, '42'],
    [{ data: { request_id: '' } }, undefined],
    [{ data: {} }, undefined],
    ['abc', undefined],
  ])('%j → %s', (body, expected) => {
    expect(readRequestId(body)).toBe(expected);
  });
});

describe('JobTracker.pollsToKeep: daily units kept for polls due before the day ends', () => {
  const T0 = Date.UTC(2026, 0, 5, 10, 0, 0);
  function tracker(): { t: JobTracker; clock: ManualClock } {
    const clock = new ManualClock(T0);
    const config = { minIntervalMs: 10, maxIntervalMs: 60_000, overdueFactor: 3 };
    const t = new JobTracker({
      clock,
      logger: silentLogger,
      emit: () => {},
      estimator: new DurationEstimator({ initialMs: 500 }),
      config,
      counters: { completed: 0, failed: 0, pollErrors: 0, webhooksUnknownJob: 0 },
      webhookConfigured: false,
      rememberFinished: 10,
    });
    return { t, clock };
  }

  it('with nothing in flight, keeps the new job\'s polls (2 before any job finished) while they fall before the day ends', () => {
    const { t } = tracker();
    // The day's end not known, or far: the new job's polls are kept (the day's last unit must not buy a submission
    // whose result would wait for the reset).
    expect(t.pollsToKeep(0, 500, undefined)).toBe(2);
    expect(t.pollsToKeep(0, 500, T0 + 10_000)).toBe(2);
    expect(t.pollsToKeep(1, 500, T0 + 10_000)).toBe(4);
    // Its first poll due after the day's end: it polls on the next day's units, nothing is kept today.
    expect(t.pollsToKeep(0, 500, T0 + 400)).toBe(0);
  });

  it('keeps for a job in flight only while its next poll is due before the day ends', () => {
    const { t, clock } = tracker();
    const job = t.register('job-1', { endpoint: 'txt2img', submittedAt: T0, submittedKnown: true, learns: true });
    job.due = T0 + 300;
    // Its poll (at most 2 - 0, at least 1) and the new job's 2.
    expect(t.pollsToKeep(0, 100, T0 + 10_000)).toBe(4);
    // The new job would be polled after the end: only the one in flight keeps.
    expect(t.pollsToKeep(0, 100, T0 + 250)).toBe(2);
    // Both after the end: nothing.
    expect(t.pollsToKeep(0, 100, T0 + 50)).toBe(0);
    // A poll on its way (no due time): kept until the day ends.
    job.due = undefined;
    expect(t.pollsToKeep(0, 100, T0 + 50)).toBe(2);
    clock.advance(60);
    expect(t.pollsToKeep(0, 100, T0 + 50)).toBe(0);
  });
});
