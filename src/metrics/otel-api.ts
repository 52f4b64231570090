/**
 * `@opentelemetry/api`, loaded on demand. It is an optional peer dependency:
 * only `modelbeam-scheduler/otel` needs it. Without it, importing that entry
 * point fails with an error that names the package to install (as
 * `modelbeam-scheduler/redis` does for ioredis).
 */
import { createRequire } from 'node:module';
import type * as OtelApi from '@opentelemetry/api';
import { SchedulerError } from '../errors/scheduler-error.js';

type Require = (id: string) => unknown;

/** Loads `@opentelemetry/api` with `load` (Node's `require` by default): a missing package becomes a clear error. */
export function loadOtelApi(load: Require = createRequire(import.meta.url)): typeof OtelApi {
  try {
    return load('@opentelemetry/api') as typeof OtelApi;
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    if (code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND') {
      throw new SchedulerError(
        'MISSING_DEPENDENCY',
        'modelbeam-scheduler/otel needs the package `@opentelemetry/api` (an optional peer dependency), which is not installed. ' +
          'Install it next to modelbeam-scheduler: npm install @opentelemetry/api',
        { cause: error },
      );
    }
    throw error;
  }
}
