/**
 * `@opentelemetry/api`, loaded on demand. It is an optional peer dependency:
 * only `modelbeam-scheduler/otel` needs it. Without it, importing that entry
 * point fails with an error that names the package to install (as
 * `modelbeam-scheduler/redis` does for ioredis).
 */
import type * as OtelApi from '@opentelemetry/api';
import { loadOptionalPeer, type Require } from '../internal/optional-peer.js';

/** Loads `@opentelemetry/api` with `load` (Node's `require` by default): a missing package becomes a clear error. */
export function loadOtelApi(load?: Require): typeof OtelApi {
  return loadOptionalPeer<typeof OtelApi>('@opentelemetry/api', 'modelbeam-scheduler/otel', load);
}
