/**
 * The scheduler, the ModelBeam client and RedisStore are real `node:events`
 * emitters: `events.once()` / `events.on()` with an abort signal work and an
 * aborted signal rejects cleanly (it used to crash with ERR_INVALID_ARG_TYPE,
 * the emitters having no `removeListener`).
 */
import { EventEmitter, on, once } from 'node:events';
import { randomUUID } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { ModelBeamClient } from '../src/modelbeam/client.js';
import type { Logger } from '../src/internal/logger.js';
import { RedisStore } from '../src/store/redis-store.js';
import { res, roomy, setup } from './helpers/engine.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('events.once / events.on on the scheduler', () => {
  it('is a node:events EventEmitter', () => {
    const { scheduler } = setup();
    expect(scheduler).toBeInstanceOf(EventEmitter);
  });

  it('events.once with a signal aborted while waiting rejects with an AbortError and leaves no listener', async () => {
    const { scheduler } = setup();
    const controller = new AbortController();
    const waiting = once(scheduler, 'idle', { signal: controller.signal });
    expect(scheduler.listenerCount('idle')).toBe(1);
    controller.abort();
    await expect(waiting).rejects.toMatchObject({ name: 'AbortError' });
    expect(scheduler.listenerCount('idle')).toBe(0);
    expect(scheduler.listenerCount()).toBe(0);
  });

  it('events.once with an already aborted signal rejects at once', async () => {
    const { scheduler } = setup();
    await expect(once(scheduler, 'idle', { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
    expect(scheduler.listenerCount()).toBe(0);
  });

  it('events.once resolves with the one payload object', async () => {
    const { clock, scheduler } = setup();
    const idle = once(scheduler, 'idle');
    const done = scheduler.schedule(() => res(200, roomy()));
    await clock.flush();
    await done;
    const [event] = (await idle) as [unknown];
    expect(event).toEqual({ succeeded: 1, failed: 0 });
    expect(scheduler.listenerCount('idle')).toBe(0);
  });

  it('events.on iterates events and ends cleanly when its signal aborts', async () => {
    const { clock, scheduler } = setup();
    const controller = new AbortController();
    const seen: unknown[] = [];
    const loop = (async () => {
      try {
        for await (const [event] of on(scheduler, 'succeeded', { signal: controller.signal })) {
          seen.push((event as { id: number }).id);
          if (seen.length === 2) controller.abort();
        }
      } catch (error) {
        return error;
      }
      return undefined;
    })();
    const a = scheduler.schedule(() => res(200, roomy()));
    const b = scheduler.schedule(() => res(200, roomy()));
    await clock.flush();
    await Promise.all([a, b]);
    const ended = await loop;
    expect(seen).toEqual([1, 2]);
    expect(ended).toMatchObject({ name: 'AbortError' });
    expect(scheduler.listenerCount('succeeded')).toBe(0);
  });

  it('a throwing listener is reported and neither breaks the task nor stops the other listeners', async () => {
    const errors: unknown[] = [];
    const logger: Logger = {
      error: (obj) => errors.push((obj as { err?: unknown }).err),
      warn: () => {},
      info: () => {},
      debug: () => {},
      child: () => logger,
    };
    const { clock, scheduler } = setup({ logger });
    const boom = new Error('listener bug');
    const after = vi.fn();
    scheduler.on('succeeded', () => {
      throw boom;
    });
    scheduler.once('succeeded', after);
    const done = scheduler.schedule(() => res(200, roomy()));
    await clock.flush();
    await expect(done).resolves.toMatchObject({ status: 200 });
    expect(after).toHaveBeenCalledTimes(1);
    expect(scheduler.listenerCount('succeeded')).toBe(1); // the once listener removed itself
    expect(errors).toContain(boom);
  });

  it('typed on/once/off: a wrong event name or payload is a type error', () => {
    const { scheduler } = setup();
    // @ts-expect-error: not an event of the scheduler
    scheduler.on('nope', () => {});
    // @ts-expect-error: `idle` carries { succeeded, failed }, not a number
    scheduler.on('idle', (e: number) => e);
    scheduler.on('idle', (e) => e.succeeded);
    scheduler.removeAllListeners();
    expect(scheduler.listenerCount()).toBe(0);
  });
});

describe('the client and RedisStore are EventEmitters too', () => {
  it('events.once on the client rejects cleanly on abort', async () => {
    const client = new ModelBeamClient({ apiKey: 'k', baseUrl: 'http://127.0.0.1:9/api/v1/client' });
    try {
      expect(client).toBeInstanceOf(EventEmitter);
      const controller = new AbortController();
      const waiting = once(client, 'completed', { signal: controller.signal });
      controller.abort();
      await expect(waiting).rejects.toMatchObject({ name: 'AbortError' });
      expect(client.listenerCount('completed')).toBe(0);
    } finally {
      await client.close();
    }
  });

  it('events.once on RedisStore rejects cleanly on abort', async () => {
    const store = new RedisStore({ redis: REDIS_URL, keyPrefix: `mbs-test:events:${randomUUID()}:`, account: 'a' });
    try {
      expect(store).toBeInstanceOf(EventEmitter);
      const waiting = once(store, 'unavailable', { signal: AbortSignal.abort() });
      await expect(waiting).rejects.toMatchObject({ name: 'AbortError' });
      expect(store.listenerCount('unavailable')).toBe(0);
    } finally {
      await store.close();
    }
  });
});
