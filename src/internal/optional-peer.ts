/**
 * Optional peer dependencies (ioredis for `modelbeam-scheduler/redis`,
 * `@opentelemetry/api` for `modelbeam-scheduler/otel`), loaded on demand: only
 * the entry point that needs one loads it, and a missing package becomes an
 * error that names it and the entry point.
 */
import { createRequire } from 'node:module';
import { SchedulerError } from '../errors/scheduler-error.js';

export type Require = (id: string) => unknown;

/** Loads `pkg` for `entry` with `load` (Node's `require` by default): a missing package is a `MISSING_DEPENDENCY` error. */
export function loadOptionalPeer<T>(pkg: string, entry: string, load: Require = createRequire(import.meta.url)): T {
  try {
    return load(pkg) as T;
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    if (code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND') {
      throw new SchedulerError(
        'MISSING_DEPENDENCY',
        `${entry} needs the package \`${pkg}\` (an optional peer dependency), which is not installed. Install it next to modelbeam-scheduler: npm install ${pkg}`,
        { cause: error },
      );
    }
    throw error;
  }
}
