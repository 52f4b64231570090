/**
 * Issue 14: estimates and spend caps, over real HTTP against the fake server (which prices jobs by their
 * parameters and charges the balance on submit).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { runBatch } from '../src/batch/run-batch.js';
import { loadJournal } from '../src/batch/journal.js';
import { estimateDurationMs } from '../src/modelbeam/estimate.js';
import { priceKey } from '../src/modelbeam/price-key.js';
import { fromNano, toNano } from '../src/internal/money.js';
import { ValidationError } from '../src/errors/validation-error.js';
import { closeAll, harness, img } from './modelbeam-harness.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'spend-'));
});
afterEach(async () => {
  await closeAll();
  rmSync(dir, { recursive: true, force: true });
});

const SIZES = [256, 384, 512, 640, 768, 1024] as const;
const STEPS = [1, 2, 4] as const;

/** Line i of a batch: 18 distinct price settings (size × steps), each prompt and seed its own. */
function line(i: number): Record<string, unknown> {
  const size = SIZES[i % SIZES.length] as number;
  const steps = STEPS[Math.floor(i / SIZES.length) % STEPS.length] as number;
  return { id: `p${i}`, prompt: `prompt number ${i}`, seed: i, width: size, height: size, steps };
}

const FAST_LIMITS = { minute: { limit: 1_000_000, windowMs: 60_000 }, daily: false } as const;

describe('priceKey', () => {
  test.each([
    ['prompt, seed and webhook_url do not change an image price', 'txt2img', img({ prompt: 'a', seed: 1, webhook_url: 'https://x/y' }), img({ prompt: 'b', seed: 2 }), true],
    ['the size does', 'txt2img', img({ width: 512 }), img({ width: 768 }), false],
    ['the steps do', 'txt2img', img({ steps: 4 }), img({ steps: 2 }), false],
    ['the model does', 'txt2img', img({ model: 'A' }), img({ model: 'B' }), false],
    ['key order does not matter', 'txt2img', { model: 'A', width: 1, height: 2 }, { height: 2, width: 1, model: 'A' }, true],
    ['TTS: texts of one length price the same', 'txt2audio', { text: 'abc', model: 'Kokoro' }, { text: 'xyz', model: 'Kokoro' }, true],
    ['TTS: another length does not', 'txt2audio', { text: 'abc', model: 'Kokoro' }, { text: 'abcd', model: 'Kokoro' }, false],
    ['embeddings (tokens unknown): the whole input counts', 'txt2embedding', { input: 'a', model: 'M' }, { input: 'b', model: 'M' }, false],
    ['video: the prompt does not count', 'txt2video', { prompt: 'a', frames: 10 }, { prompt: 'b', frames: 10 }, true],
    ['video: the frames do', 'txt2video', { prompt: 'a', frames: 10 }, { prompt: 'a', frames: 20 }, false],
    ['another endpoint never shares a key', 'txt2img', img(), img(), true],
  ])('%s', (_name, endpoint, a, b, same) => {
    const ka = priceKey(endpoint, a);
    expect(ka).toBeDefined();
    expect(ka === priceKey(endpoint, b)).toBe(same);
    expect(priceKey('img2img', a) === ka).toBe(false);
  });

  test('a value that is not plain data is not keyed (priced on its own)', () => {
    expect(priceKey('img2img', { image: Buffer.from('x'), prompt: 'a' })).toBeUndefined();
  });
});

describe('estimateDurationMs', () => {
  const w = { minuteMs: 60_000, dayMs: 86_400_000 };
  test.each([
    ['no minute limit known', 10, { minute: undefined, daily: undefined, dailyRemaining: undefined }, undefined],
    ['at the minute rate', 600, { minute: 300, daily: undefined, dailyRemaining: undefined }, 120_000],
    ['within what is left today', 100, { minute: 100, daily: 1000, dailyRemaining: 500 }, 60_000],
    ['past today: whole day windows, then the rest', 1700, { minute: 100, daily: 1000, dailyRemaining: 500 }, 2 * 86_400_000 + 120_000],
  ])('%s', (_name, jobs, limits, expected) => {
    expect(estimateDurationMs(jobs, { ...w, ...limits })).toBe(expected);
  });
});

describe('estimate and spend on the fake server', () => {
  test('the estimate of a 10,000-line batch matches what the run spends to the cent, with one price call per distinct price setting', async () => {
    const h = await harness({ limits: FAST_LIMITS, jobs: { pendingMs: 0, processingMs: 0 } });
    const n = 10_000;
    const defaults = { model: 'Flux1schnell' };
    const items = Array.from({ length: n }, (_, i) => {
      const { id: _id, ...params } = line(i);
      return { endpoint: 'txt2img', params: { ...defaults, ...params }, line: i + 1 };
    });
    const estimate = await h.client.estimate(items);
    const distinct = SIZES.length * STEPS.length;
    expect(estimate).toMatchObject({ items: n, priced: n, failed: 0, distinctPrices: distinct, balance: 1000, balanceCovers: true });
    expect(h.server.stats().byRoute['POST /txt2img/price-calculation']).toBe(distinct);
    expect(estimate.priceCalls).toBe(distinct);
    expect(estimate.limits.minute).toBe(1_000_000);
    expect(estimate.durationMs).toBeGreaterThan(0);
    // The estimate's sum is what the fake's price formula gives, line by line.
    let expectedNano = 0;
    for (const it of items) {
      const p = it.params as unknown as { width: number; height: number; steps: number };
      expectedNano += toNano(Math.round((0.00034 + 6.485e-10 * p.width * p.height * p.steps) * 1e6) / 1e6);
    }
    expect(estimate.total).toBe(fromNano(expectedNano));

    // The run, with a cap above the estimate: it prices through the same cache (no new price call).
    const before = h.server.balance('acct-1');
    const out = join(dir, 'results.jsonl');
    const batch = runBatch(h.client, Array.from({ length: n }, (_, i) => line(i)), {
      out,
      endpoint: 'txt2img',
      params: defaults,
      maxSpend: estimate.total + 1,
    });
    const summary = await batch.summary;
    expect(summary).toMatchObject({ complete: true, run: { done: n } });
    expect(batch.progress().spend).toMatchObject({ spent: estimate.total, cap: estimate.total + 1 });
    const spentOnServer = before - h.server.balance('acct-1');
    expect(spentOnServer.toFixed(2)).toBe(estimate.total.toFixed(2));
    expect(toNano(spentOnServer)).toBe(toNano(estimate.total));
    expect(summary.spend).toMatchObject({ spent: estimate.total, run: estimate.total, shared: false });
    expect(h.server.stats().byRoute['POST /txt2img/price-calculation']).toBe(distinct);
    expect((await loadJournal(out)).spentNano).toBe(toNano(estimate.total));
    console.log(
      `estimate vs run, ${n} lines: ${JSON.stringify({ estimate: estimate.total, spentOnServer: Math.round(spentOnServer * 1e9) / 1e9, priceCalls: h.server.stats().byRoute['POST /txt2img/price-calculation'], distinct })}`,
    );
  }, 120_000);

  test('a line whose price cannot be computed is its line error; the others are summed', async () => {
    const h = await harness({ limits: FAST_LIMITS });
    const estimate = await h.client.estimate([
      { endpoint: 'txt2img', params: img(), line: 1 },
      { endpoint: 'txt2img', params: img({ width: 99_999 }), line: 2 },
      { endpoint: 'txt2img', params: img(), line: 3 },
    ]);
    expect(estimate).toMatchObject({ items: 3, priced: 2, failed: 1 });
    expect(estimate.errors).toEqual([expect.objectContaining({ line: 2, code: 'PRICE_UNAVAILABLE', message: expect.stringMatching(/^Line 2: /) })]);
    expect(estimate.total).toBe(fromNano(2 * toNano(0.00102)));
  });

  test('prices vary by parameters on the fake (video by size, frames and steps; TTS by characters)', async () => {
    const h = await harness({ limits: FAST_LIMITS });
    const small = await h.client.price('txt2video', { prompt: 'a', model: 'Ltx', width: 512, height: 512, frames: 100, steps: 4 });
    const big = await h.client.price('txt2video', { prompt: 'a', model: 'Ltx', width: 1024, height: 512, frames: 100, steps: 4 });
    expect(small).toBeCloseTo(0.0056, 4);
    expect(big).toBeGreaterThan(small);
    const short = await h.client.price('txt2audio', { text: 'x'.repeat(1000), model: 'Kokoro', lang: 'en-us', speed: 1, format: 'mp3', sample_rate: 44100 });
    const long = await h.client.price('txt2audio', { text: 'x'.repeat(10_000), model: 'Kokoro', lang: 'en-us', speed: 1, format: 'mp3', sample_rate: 44100 });
    expect([short, long]).toEqual([0.00077, 0.0077]);
  });

  test('a capped run stops at the cap and never past it; the rest stays resumable and a rerun with a higher cap finishes', async () => {
    const h = await harness({ limits: FAST_LIMITS, jobs: { pendingMs: 0, processingMs: 5 } });
    const price = 0.00102; // 512², 4 steps
    const cap = 0.025; // 24 jobs and a bit
    const out = join(dir, 'results.jsonl');
    const lines = Array.from({ length: 60 }, (_, i) => ({ id: `p${i}`, prompt: `p ${i}`, model: 'Flux1schnell', width: 512, height: 512, steps: 4 }));
    const before = h.server.balance('acct-1');
    const summary = await runBatch(h.client, lines, { out, endpoint: 'txt2img', maxSpend: cap, maxSubmitting: 8 }).summary;
    const spent = before - h.server.balance('acct-1');
    expect(summary.stopped?.reason).toBe('spend-cap');
    expect(spent).toBeLessThanOrEqual(cap);
    expect(toNano(spent)).toBe(24 * toNano(price));
    expect(summary.spend).toMatchObject({ cap, spent: fromNano(24 * toNano(price)) });
    expect(summary.run.done + summary.pending).toBeGreaterThanOrEqual(24);
    expect(h.server.jobs.size).toBe(24);

    // Resumed with the same cap: nothing more fits, nothing is sent.
    const again = await runBatch(h.client, lines, { out, endpoint: 'txt2img', maxSpend: cap }).summary;
    expect(again.stopped?.reason).toBe('spend-cap');
    expect(h.server.jobs.size).toBe(24);
    expect(again.spend?.spent).toBe(fromNano(24 * toNano(price)));

    // A higher cap: the rest runs, and the total continues from the results file.
    const done = await runBatch(h.client, lines, { out, endpoint: 'txt2img', maxSpend: 1 }).summary;
    expect(done.complete).toBe(true);
    expect(h.server.jobs.size).toBe(60);
    expect(done.spend?.spent).toBe(fromNano(60 * toNano(price)));
    expect(toNano(before - h.server.balance('acct-1'))).toBe(60 * toNano(price));
  });

  test('a line the API will not price fails with its line number and spends nothing; the balance can run out mid-run', async () => {
    const h = await harness({ limits: FAST_LIMITS, jobs: { pendingMs: 0, processingMs: 5 } });
    h.server.setBalance('acct-1', 10 * 0.00102);
    const out = join(dir, 'results.jsonl');
    const lines = Array.from({ length: 20 }, (_, i) => ({ id: `p${i}`, prompt: `p ${i}`, model: 'Flux1schnell', width: 512, height: 512, steps: 4 }));
    // Line 3: a size the local check lets through and the fake refuses (not a multiple of 8 is fine locally).
    const validate = (): undefined => undefined;
    lines[2] = { ...lines[2]!, width: 99_999 };
    const summary = await runBatch(h.client, lines, { out, endpoint: 'txt2img', maxSpend: 100, validate, maxSubmitting: 1, maxInFlight: 1 }).summary;
    expect(summary.stopped?.reason).toBe('insufficient-balance');
    expect(summary.failuresByCode).toEqual({ PRICE_UNAVAILABLE: 1 });
    const failed = readFileSync(out, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>).find((r) => r['state'] === 'failed');
    expect(failed).toMatchObject({ id: 'p2', line: 3, error: { code: 'PRICE_UNAVAILABLE', message: expect.stringMatching(/^Line 3: /) } });
    expect(h.server.jobs.size).toBe(10);
    expect(h.server.balance('acct-1')).toBeCloseTo(0, 9);
    // The refused 11th submission was given back: the results file counts the 10 charged jobs only.
    expect((await loadJournal(out)).spentNano).toBe(10 * toNano(0.00102));
    expect(summary.spend?.spent).toBe(fromNano(10 * toNano(0.00102)));
  });
});

test('a submission refused for its parameters after it was priced gives its price back (a released record before the failed one)', async () => {
  const h = await harness({ limits: FAST_LIMITS, jobs: { pendingMs: 0, processingMs: 5 } });
  const real = h.client;
  const client = {
    scheduler: real.scheduler,
    quote: real.quote.bind(real),
    wait: real.wait.bind(real),
    submit: (endpoint: string, params: Record<string, unknown>, options: { signal?: AbortSignal }) =>
      params['prompt'] === 'refused'
        ? Promise.reject(new ValidationError({ body: { message: 'The selected model is invalid.' }, fieldErrors: { model: ['The selected model is invalid.'] } }))
        : real.submit(endpoint as "txt2img", params as never, options),
  };
  const out = join(dir, 'results.jsonl');
  const lines = ['a', 'refused', 'b'].map((prompt, i) => ({ id: `r${i}`, prompt, model: 'Flux1schnell', width: 512, height: 512, steps: 4 }));
  const summary = await runBatch(client as never, lines, { out, endpoint: 'txt2img', maxSpend: 1 }).summary;
  expect(summary).toMatchObject({ complete: true, run: { done: 2, failed: 1 } });
  const states = readFileSync(out, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { id: string; state: string }).filter((r) => r.id === 'r1').map((r) => r.state);
  expect(states).toEqual(['submitting', 'released', 'failed']);
  expect(summary.spend?.spent).toBe(fromNano(2 * toNano(0.00102)));
  expect((await loadJournal(out)).spentNano).toBe(2 * toNano(0.00102));
});

test('with a cap, a price route that answers 404 before anything worked is a wrong base URL: the run stops, no line fails', async () => {
  const h = await harness({ limits: FAST_LIMITS });
  const wrong = h.make({ baseUrl: `${h.server.url}/not-the-api` });
  const out = join(dir, 'results.jsonl');
  const lines = Array.from({ length: 10 }, (_, i) => ({ id: `w${i}`, prompt: `p${i}`, model: 'Flux1schnell', width: 512, height: 512, steps: 4 }));
  const summary = await runBatch(wrong, lines, { out, endpoint: 'txt2img', maxSpend: 1, apiBaseUrl: `${h.server.url}/not-the-api` }).summary;
  expect(summary.stopped?.reason).toBe('configuration');
  expect(summary.stopped?.message).toMatch(/txt2img\/price-calculation answered HTTP 404/);
  expect(summary).toMatchObject({ run: { done: 0, failed: 0, invalid: 0 } });
  expect(h.server.jobs.size).toBe(0);
});

describe('the results file counts what was spent', () => {
  const sub = (id: string, price: number, attempt = 1): string => JSON.stringify({ id, line: 1, state: 'submitting', attempt, price, at: 1 });
  const ok = (id: string): string => JSON.stringify({ id, line: 1, state: 'submitted', requestId: `r-${id}`, endpoint: 'txt2img', attempt: 1, resubmissions: 0, price: 0.5, at: 2 });
  const rel = (id: string): string => JSON.stringify({ id, line: 1, state: 'released', reason: 'stopped', at: 3 });
  const done = (id: string): string => JSON.stringify({ id, line: 1, state: 'done', attempts: 1, resubmissions: 0, possibleDuplicate: false, at: 4 });
  test.each([
    ['a charged submission', [sub('a', 0.5), ok('a'), done('a')], 0.5],
    ['an unknown outcome counts as spent', [sub('a', 0.5)], 0.5],
    ['an unknown outcome resubmitted: both count', [sub('a', 0.5), sub('a', 0.5, 2), ok('a')], 1],
    ['a released submission was not charged', [sub('a', 0.5), rel('a')], 0],
    ['a refusal (released, then failed) was not charged', [sub('a', 0.5), rel('a'), JSON.stringify({ id: 'a', line: 1, state: 'failed', attempts: 1, resubmissions: 0, possibleDuplicate: false, at: 5 })], 0],
    ['records without a price (no cap) count nothing', [JSON.stringify({ id: 'a', line: 1, state: 'submitting', attempt: 1, at: 1 }), ok('a')], 0],
    ['prices sum exactly', Array.from({ length: 10 }, (_, i) => sub(`x${i}`, 0.1)), 1],
  ])('%s', async (_name, lines, usd) => {
    const path = join(dir, 'r.jsonl');
    writeFileSync(path, `${lines.join('\n')}\n`);
    expect((await loadJournal(path)).spentNano).toBe(toNano(usd));
  });
});

describe('options', () => {
  test.each([
    [{ maxSpend: 0 }, /Expected `maxSpend` to be a number > 0/],
    [{ maxSpend: -1 }, /Expected `maxSpend` to be a number > 0/],
    [{ maxSpend: Number.NaN }, /Expected `maxSpend` to be a number > 0/],
    [{ maxSpend: '5' }, /Expected `maxSpend` to be a number > 0/],
    [{ maxSpend: 5, spendLedger: {} }, /Expected `spendLedger` to be a spend ledger/],
    [{ spendLedger: { open() {}, reserve() {}, release() {}, total() {} } }, /Expected `maxSpend` to be set with `spendLedger`/],
  ])('runBatch refuses %j', async (bad, message) => {
    const h = await harness();
    expect(() => runBatch(h.client, [], { out: join(dir, 'o.jsonl'), ...(bad as object) })).toThrow(message);
  });

  test('runBatch with maxSpend needs a client that can quote', async () => {
    const h = await harness();
    const client = { scheduler: h.client.scheduler, submit: () => Promise.reject(new Error('x')), wait: () => Promise.reject(new Error('x')) };
    expect(() => runBatch(client as never, [], { out: join(dir, 'o.jsonl'), maxSpend: 1 })).toThrow(/`quote\(endpoint, params\)`/);
  });

  test('client.estimate refuses bad items and options before any request', async () => {
    const h = await harness();
    await expect(h.client.estimate(null as never)).rejects.toThrow(/iterable/);
    await expect(h.client.estimate([], { concurrency: 0 })).rejects.toThrow(/Expected `concurrency` to be an integer >= 1/);
    await expect(h.client.estimate([], { nope: 1 } as never)).rejects.toThrow(/nope/);
    await expect(h.client.estimate([{ endpoint: 'txt2img' } as never])).rejects.toThrow(/Expected item 1 to be/);
    expect(h.server.stats().requests).toBe(0);
  });
});
