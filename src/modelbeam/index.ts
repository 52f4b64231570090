/**
 * The ModelBeam client: asynchronous jobs end to end, polling that spends
 * little quota, signed webhooks.
 * @module
 */
export { ModelBeamClient } from './client.js';
export type {
  CallOptions,
  GenerateOptions,
  GenerateResult,
  Model,
  ModelsFilter,
  SubmitOptions,
  SubmitResult,
  WaitOptions,
} from './client.js';
export { CLIENT_DEFAULTS } from './options.js';
export type { JobRetryOptions, ModelBeamClientOptions, PollingOptions, WebhookClientOptions } from './options.js';
export type { LimitScope } from './limit-scope.js';
export {
  FILE_FIELDS,
  KNOWN_ENDPOINTS,
  TYPED_ENDPOINTS,
  isValidEndpointName,
  maxFileBytes,
  validateParams,
} from './endpoints.js';
export type {
  EndpointParams,
  FileInput,
  Img2ImgParams,
  Img2TxtParams,
  Img2VideoParams,
  Lora,
  NamedFile,
  TranscribeParams,
  Txt2AudioParams,
  Txt2EmbeddingParams,
  Txt2ImgParams,
  Txt2MusicParams,
  Txt2VideoParams,
  TypedEndpoint,
} from './endpoints.js';
export {
  JOB_ERROR_CODES,
  isRetryableJobError,
  parseJobStatus,
  readJobError,
  readRequestId,
  retryAllowanceFor,
} from './jobs.js';
export type { JobErrorCode, JobResult, JobState, JobStatus, RetryableJobErrorCode } from './jobs.js';
export { DurationEstimator, firstPollDelay, nextPollDelay, predictRemaining, predictTotal } from './poll-planner.js';
export type { DurationObservation, EstimatorOptions, FirstPollChoice, FollowUpInput, PlannerConfig, ProgressSample } from './poll-planner.js';
export { PollGate } from './poll-gate.js';
export {
  DELIVERY_HEADER,
  EVENT_HEADER,
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
  createWebhookHandler,
  listenWebhookServer,
  verifyWebhook,
} from './webhooks.js';
export type {
  VerifyWebhookOptions,
  WebhookEvent,
  WebhookHandler,
  WebhookHandlerOptions,
  WebhookHeaders,
  WebhookProcessResult,
  WebhookRejection,
  WebhookServer,
  WebhookServerOptions,
} from './webhooks.js';
export type { DownloadOptions } from './download.js';
export type {
  BalanceExhaustedEvent,
  ClientOutcomeUnknownEvent,
  ClientStats,
  CompletedEvent,
  JobFailedEvent,
  LearnedVia,
  ModelBeamClientEvents,
  PollFailedEvent,
  PolledEvent,
  ResubmittedEvent,
  StatusChangedEvent,
  SubmissionsResumedEvent,
  SubmittedEvent,
  WebhookAcceptedEvent,
  WebhookDuplicateEvent,
  WebhookFallbackEvent,
  WebhookRejectedEvent,
  WebhookUnknownJobEvent,
} from './events.js';
