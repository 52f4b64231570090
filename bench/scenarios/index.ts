/**
 * The scenario registry. To add one:
 *
 * 1. write `bench/scenarios/<name>.ts` exporting a `Scenario`
 *    (`{ name, description, run(ctx) }`, see `bench/lib/types.ts`);
 * 2. import it below and add it to `scenarios` (the order is the run order of
 *    `npx tsx bench/run.ts` with no names).
 *
 * Planned (see issue 6): `overhead`, `memory`, `http-ceiling`, `idle-cpu`,
 * `client-polling`, `batch-rss`, `redis-shared`, `soak`.
 */
import type { Scenario } from '../lib/types.js';
import { scenario as clientPolling } from './client-polling.js';
import { scenario as scheduler } from './scheduler.js';
import { scenario as redisShared } from './redis-shared.js';
import { scenario as faultMatrix } from './fault-matrix.js';
import { scenario as soak } from './soak.js';
import { scenario as overhead } from './overhead.js';
import { scenario as memory } from './memory.js';
import { scenario as httpCeiling } from './http-ceiling.js';
import { scenario as idleCpu } from './idle-cpu.js';
import { scenario as batchRss } from './batch-rss.js';
import { scenario as limiters } from './limiters.js';
import { scenario as scopes } from './scopes.js';
import { scenario as metricsOverhead } from './metrics-overhead.js';
import { scenario as jobs } from './jobs.js';

export const scenarios: readonly Scenario[] = [
  scheduler,
  clientPolling,
  redisShared,
  faultMatrix,
  soak,
  overhead,
  memory,
  httpCeiling,
  idleCpu,
  batchRss,
  limiters,
  jobs,
  scopes,
  metricsOverhead,
];
