/**
 * ioredis, loaded on demand. It is an optional peer dependency: only
 * `modelbeam-scheduler/redis` needs it, so users of the in-process scheduler
 * never install it. Without it, importing `modelbeam-scheduler/redis` fails
 * with an error that names the package to install.
 */
import { createRequire } from 'node:module';
import type * as IORedis from 'ioredis';
import { SchedulerError } from '../errors/scheduler-error.js';

type Require = (id: string) => unknown;

/** Loads ioredis with `load` (Node's `require` by default): a missing package becomes a clear error. */
export function loadIoredis(load: Require = createRequire(import.meta.url)): typeof IORedis {
  try {
    return load('ioredis') as typeof IORedis;
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    if (code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND') {
      throw new SchedulerError(
        'MISSING_DEPENDENCY',
        "modelbeam-scheduler/redis needs the package `ioredis` (an optional peer dependency), which is not installed. Install it next to modelbeam-scheduler: npm install ioredis",
        { cause: error },
      );
    }
    throw error;
  }
}

export const { Redis } = loadIoredis();
export type Redis = IORedis.Redis;
