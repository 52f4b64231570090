/**
 * `modelbeam-scheduler/testing`: a fake ModelBeam API server for tests,
 * benchmarks and demos, plus helpers (webhook signing, a manual clock).
 */
export { startFakeModelBeam } from './fake-server.js';
export type { FakeClientOptions, FakeJobs, FakeModelBeamServer, FakeRefusal } from './fake-server.js';
export type {
  Error5xxStatus,
  FakeEndpoint,
  FakeServerOptions,
  FaultOptions,
  HeaderOptions,
  JobOptions,
  JobOutcome,
  JobParams,
  JobScript,
  JobScriptContext,
  LimitsOptions,
  WebhookOptions,
} from './options.js';
export { FAKE_ENDPOINTS, FAKE_SERVER_DEFAULTS } from './options.js';
// The same list (and the same object) as the root's: one meaning per name across entry points.
export { JOB_ERROR_CODES, type JobErrorCode } from '../modelbeam/jobs.js';
// `FakeJobStatus` (a job's state in the fake) is not the root's `JobStatus` (a parsed status response).
export type { FakeJob, FakeJobView, JobStatus as FakeJobStatus, RequestStatusData } from './jobs.js';
export type { FaultFilter, FaultKind, FaultRequestInfo } from './faults.js';
export { FAULT_KINDS } from './faults.js';
export type { FakeServerStats } from './stats.js';
export { signWebhook } from './webhooks.js';
// `FakeWebhookEvent` (an event name the fake sends) is not the root's `WebhookEvent` (a verified delivery).
export type { WebhookAttempt, WebhookCounters, WebhookEvent as FakeWebhookEvent } from './webhooks.js';
export { RateWindow, maxInAnyWindow, retryAfterSeconds } from './windows.js';
export type { MaxInWindowOptions, ResolvedWindowOptions, WindowKind, WindowOptions } from './windows.js';
export { FAKE_MODELS } from './models.js';
export type { FakeModel } from './models.js';
export { ManualClock } from './manual-clock.js';
