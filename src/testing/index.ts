/**
 * `modelbeam-scheduler/testing`: a fake ModelBeam API server for tests,
 * benchmarks and demos, plus helpers (webhook signing, a manual clock).
 */
export { startFakeModelBeam } from './fake-server.js';
export type { FakeClientOptions, FakeJobs, FakeModelBeamServer } from './fake-server.js';
export type {
  Error5xxStatus,
  FakeEndpoint,
  FakeServerOptions,
  FaultOptions,
  HeaderOptions,
  JobErrorCode,
  JobOptions,
  JobOutcome,
  JobParams,
  JobScript,
  JobScriptContext,
  LimitsOptions,
  WebhookOptions,
} from './options.js';
export { FAKE_ENDPOINTS, FAKE_SERVER_DEFAULTS, JOB_ERROR_CODES } from './options.js';
export type { FakeJob, FakeJobView, JobStatus, RequestStatusData } from './jobs.js';
export type { FaultFilter, FaultKind, FaultRequestInfo } from './faults.js';
export { FAULT_KINDS } from './faults.js';
export type { FakeServerStats } from './stats.js';
export { signWebhook } from './webhooks.js';
export type { WebhookAttempt, WebhookCounters, WebhookEvent } from './webhooks.js';
export { RateWindow, maxInAnyWindow, retryAfterSeconds } from './windows.js';
export type { MaxInWindowOptions, ResolvedWindowOptions, WindowKind, WindowOptions } from './windows.js';
export { FAKE_MODELS } from './models.js';
export type { FakeModel } from './models.js';
export { ManualClock } from './manual-clock.js';
