/**
 * ioredis, loaded on demand. It is an optional peer dependency: only
 * `modelbeam-scheduler/redis` needs it, so users of the in-process scheduler
 * never install it. Without it, importing `modelbeam-scheduler/redis` fails
 * with an error that names the package to install.
 */
import type * as IORedis from 'ioredis';
import { loadOptionalPeer, type Require } from '../internal/optional-peer.js';

/** Loads ioredis with `load` (Node's `require` by default): a missing package becomes a clear error. */
export function loadIoredis(load?: Require): typeof IORedis {
  return loadOptionalPeer<typeof IORedis>('ioredis', 'modelbeam-scheduler/redis', load);
}

export const { Redis } = loadIoredis();
export type Redis = IORedis.Redis;
