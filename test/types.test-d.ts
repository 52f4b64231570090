/**
 * Type tests of the public signatures (vitest `*.test-d.ts` convention). They
 * are checked by `npm run typecheck` (strict, exactOptionalPropertyTypes), not
 * run: an `expectTypeOf` that no longer holds, or an `@ts-expect-error` whose
 * line became valid, fails the typecheck.
 */
import { once } from 'node:events';
import { describe, expectTypeOf, it } from 'vitest';
import {
  BatchSetupError,
  ModelBeamClient,
  RateLimitScheduler,
  SchedulerError,
  runBatch,
  type Batch,
  type ErrorCode,
  type GenerateResult,
  type IdleEvent,
  type JobResult,
  type KnownEndpoint,
  type ModelBeamClientEvents,
  type ParamsOf,
  type SchedulerEvents,
  type SubmitResult,
  type Txt2ImgParams,
  type TypedEndpoint,
  type BatchEstimate,
  type RunBatchOptions,
  type SpendLedger,
  type StopReason,
} from '../src/index.js';
import { RedisStore, type RedisStoreOptions } from '../src/redis.js';
import { startFakeModelBeam, type FakeJobStatus, type FakeModelBeamServer, type FakeWebhookEvent } from '../src/testing/index.js';
import type { JobStatus, WebhookEvent } from '../src/index.js';

declare const client: ModelBeamClient;
declare const scheduler: RateLimitScheduler;

describe('ModelBeamClient', () => {
  it('generate() and submit() are typed per endpoint', () => {
    expectTypeOf(client.generate('txt2img', { prompt: 'p', model: 'm', width: 512, height: 512, steps: 4 })).toEqualTypeOf<Promise<GenerateResult>>();
    expectTypeOf(client.submit('txt2img', { prompt: 'p', model: 'm', width: 512, height: 512, steps: 4 })).toEqualTypeOf<Promise<SubmitResult>>();
    expectTypeOf<ParamsOf<'txt2img'>>().toEqualTypeOf<Txt2ImgParams>();
    expectTypeOf<ParamsOf<'img-rmbg'>>().toEqualTypeOf<Record<string, unknown>>();
    expectTypeOf<'txt2img'>().toExtend<TypedEndpoint>();
    expectTypeOf<'videos/replace'>().toExtend<KnownEndpoint>();
    expectTypeOf<'txt2imgg'>().not.toExtend<KnownEndpoint>();

    const never = (): void => {
      // @ts-expect-error: a misspelt endpoint
      void client.generate('txt2imgg', { prompt: 'p', model: 'm', width: 512, height: 512, steps: 4 });
      // @ts-expect-error: a misspelt endpoint
      void client.submit('tx2img', { prompt: 'p' });
      // @ts-expect-error: `width` is a number
      void client.generate('txt2img', { prompt: 'p', model: 'm', width: '512', height: 512, steps: 4 });
      // @ts-expect-error: `prompt` is required
      void client.submit('txt2img', { model: 'm', width: 512, height: 512, steps: 4 });
      // @ts-expect-error: a misspelt parameter
      void client.submit('txt2img', { prompt: 'p', model: 'm', width: 512, height: 512, steps: 4, sed: 1 });
      // @ts-expect-error: img2txt takes an image, not a prompt only
      void client.generate('img2txt', { prompt: 'p' });
      // @ts-expect-error: an unknown option
      void client.generate('txt2img', { prompt: 'p', model: 'm', width: 512, height: 512, steps: 4 }, { priorty: 1 });
      // An endpoint the types do not describe takes any object.
      void client.submit('img-rmbg', { image: 'https://example.com/a.png' });
    };
    void never;
  });

  it('wait(), typed helpers and events', () => {
    expectTypeOf(client.wait).parameter(0).toEqualTypeOf<string>();
    expectTypeOf(client.wait('r')).toEqualTypeOf<Promise<JobResult>>();
    expectTypeOf(client.txt2img).parameter(0).toEqualTypeOf<Txt2ImgParams>();
    expectTypeOf(client.scheduler).toEqualTypeOf<RateLimitScheduler>();
    client.on('completed', (e) => expectTypeOf(e).toEqualTypeOf<ModelBeamClientEvents['completed']>());
    // @ts-expect-error: not an event of the client
    client.on('idle', () => {});
  });

  it('the constructor needs an apiKey', () => {
    expectTypeOf(ModelBeamClient).constructorParameters.toExtend<[{ apiKey: string }]>();
    // @ts-expect-error: an unknown option
    const bad = (): ModelBeamClient => new ModelBeamClient({ apiKey: 'k', apikey: 'k' });
    void bad;
  });
});

describe('RateLimitScheduler', () => {
  it('schedule() returns what the task returns', () => {
    expectTypeOf(scheduler.schedule(() => ({ status: 200, headers: {} }))).toEqualTypeOf<Promise<{ status: number; headers: {} }>>();
    expectTypeOf(scheduler.schedule(async ({ signal, attempt }) => (signal.aborted ? attempt : 0))).toEqualTypeOf<Promise<number>>();
  });

  it('events are typed, and events.once accepts the scheduler', () => {
    scheduler.on('idle', (e) => expectTypeOf(e).toEqualTypeOf<IdleEvent>());
    scheduler.once('rateLimited', (e) => expectTypeOf(e).toEqualTypeOf<SchedulerEvents['rateLimited']>());
    expectTypeOf(scheduler.emit).returns.toEqualTypeOf<boolean>();
    expectTypeOf(once(scheduler, 'idle', { signal: AbortSignal.timeout(1) })).toEqualTypeOf<Promise<any[]>>();
    // @ts-expect-error: a listener of the wrong payload
    scheduler.on('idle', (e: string) => e);
  });
});

describe('errors, batch, redis, testing', () => {
  it('every error code is one of ErrorCode', () => {
    expectTypeOf<SchedulerError['code']>().toEqualTypeOf<ErrorCode>();
    expectTypeOf<BatchSetupError>().toExtend<SchedulerError>();
    expectTypeOf<'BATCH_SETUP_FAILED'>().toExtend<ErrorCode>();
    expectTypeOf<'RATE_LIMITED'>().not.toExtend<ErrorCode>();
  });

  it('runBatch returns a Batch', () => {
    expectTypeOf(runBatch).returns.toEqualTypeOf<Batch>();
  });

  it('RedisStore options hold under exactOptionalPropertyTypes', () => {
    expectTypeOf<RedisStoreOptions['redis']>().toExtend<string | object | undefined>();
    expectTypeOf(RedisStore).constructorParameters.toEqualTypeOf<[options?: RedisStoreOptions | undefined]>();
  });

  it('the fake server and the names that differ from the root', () => {
    expectTypeOf(startFakeModelBeam).returns.toEqualTypeOf<Promise<FakeModelBeamServer>>();
    expectTypeOf<FakeJobStatus>().toEqualTypeOf<'pending' | 'processing' | 'done' | 'error'>();
    expectTypeOf<FakeWebhookEvent>().toEqualTypeOf<'job.processing' | 'job.completed' | 'job.failed'>();
    expectTypeOf<JobStatus>().not.toEqualTypeOf<FakeJobStatus>();
    expectTypeOf<WebhookEvent>().toHaveProperty('requestId');
  });

  it('estimates and spend caps', () => {
    expectTypeOf<ModelBeamClient['estimate']>().returns.toEqualTypeOf<Promise<BatchEstimate>>();
    expectTypeOf<ModelBeamClient['quote']>().returns.toEqualTypeOf<Promise<number>>();
    expectTypeOf<BatchEstimate['total']>().toEqualTypeOf<number>();
    expectTypeOf<BatchEstimate['durationMs']>().toEqualTypeOf<number | undefined>();
    expectTypeOf<RunBatchOptions['maxSpend']>().toEqualTypeOf<number | undefined>();
    expectTypeOf<RedisStore['spendLedger']>().returns.toExtend<SpendLedger>();
    expectTypeOf<'spend-cap'>().toExtend<StopReason>();
    expectTypeOf<'PRICE_UNAVAILABLE' | 'SPEND_CAP_REACHED'>().toExtend<ErrorCode>();
  });
});
